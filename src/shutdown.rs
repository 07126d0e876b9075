//! Shutdown: one root cancellation token and one task tracker.
//!
//! Order on SIGTERM/SIGINT: the token is cancelled, so listeners stop
//! accepting and idle sessions close with `421`; sessions inside a
//! transaction finish it (their `250` still waits for the commit); then we
//! wait for every tracked task up to a deadline, and log what was cut.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The root token and tracker of a running server.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Cancelled when shutdown begins.
    pub token: CancellationToken,
    /// Every long-running task.
    pub tracker: TaskTracker,
}

impl Shutdown {
    /// A new, not yet cancelled, shutdown pair.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolve on SIGINT or SIGTERM.
    pub async fn signalled() {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    /// Cancel everything and wait up to `deadline` for tracked tasks.
    /// Returns false (and logs) when the deadline cut tasks short.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.token.cancel();
        self.tracker.close();
        match tokio::time::timeout(deadline, self.tracker.wait()).await {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!(
                    remaining = self.tracker.len(),
                    "drain deadline passed, tasks cut"
                );
                false
            }
        }
    }
}
