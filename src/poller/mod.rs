//! IMAP pollers: one task per configured mailbox, kept in step with the
//! configuration.
//!
//! Receives the configuration watch channel, the [`Spool`] and the data
//! directory; for every mailbox with an IMAP account it runs one task that
//! connects, catches up by UID ([`sync`]), then waits for new mail with IDLE
//! or by polling ([`idle`]), and reconnects with backoff when anything
//! fails ([`health`] turns repeated failures into one broken-mailbox
//! ticket). The promise it keeps is the spool's: a message is marked
//! `\Seen` (or moved) only after the transaction holding it committed, and
//! that transaction also holds the UID state, so a crash anywhere neither
//! loses nor repeats a message.
//!
//! The [`supervise`] loop diffs the set of accounts on every configuration
//! change: a removed or changed mailbox's task is cancelled and awaited
//! (it stops after its current batch commits) before a new one starts, so
//! two tasks never poll one mailbox; tasks of unchanged mailboxes are not
//! touched.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ImapAccount;
use crate::outbound::Config;
use crate::spool::Spool;
use crate::store::{self, Store};

pub mod connect;
pub mod health;
pub mod idle;
pub mod sync;

/// Why a poll failed. Every variant is retried with backoff; the variants
/// only tell the admin (in the broken-mailbox ticket) what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// TCP or TLS connection failed.
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    /// The TLS configuration could not be built.
    #[error("tls")]
    Tls(#[source] tokio_rustls::rustls::Error),
    /// The CA file could not be read.
    #[error("reading ca_file {path}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The password could not be read.
    #[error("no password: {what}")]
    Password {
        /// What is missing.
        what: String,
    },
    /// The server refused the login.
    #[error("login refused")]
    Login(#[source] async_imap::error::Error),
    /// An IMAP command failed.
    #[error("imap")]
    Imap(#[source] async_imap::error::Error),
    /// The server said something postdesk cannot work with.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A step took longer than the account's timeout.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// The store could not be read or written.
    #[error("store")]
    Store(#[from] store::Error),
    /// The spool refused the message (store failure or shutting down).
    #[error("spool")]
    Spool(#[from] crate::spool::Error),
}

impl Error {
    /// Whether retrying may help. Everything here is retried (a refused
    /// login may be fixed on the server at any time); a permanent-looking
    /// error only reaches the broken threshold sooner in the admin's eyes.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            Error::Login(_) | Error::Password { .. } | Error::CaFile { .. }
        )
    }
}

/// Run `fut` with a timeout naming the step.
pub(crate) async fn timed<T>(
    limit: Duration,
    step: &'static str,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(Error::Timeout(step)))
}

/// The store as the server's background tasks (pollers, scheduler,
/// rescans) see it: reads on a connection of their own, used from
/// `spawn_blocking`; every write through the one writer thread
/// ([`store::Writer::task`]), group-committed with incoming mail.
#[derive(Clone)]
pub struct SharedStore {
    at: store::Location,
    store: Arc<Mutex<Option<Store>>>,
    writer: store::Writer,
}

impl SharedStore {
    /// A handle reading the store at `at` (opened on first use) and
    /// writing through `writer`.
    pub fn new(at: store::Location, writer: store::Writer) -> Self {
        SharedStore {
            at,
            store: Arc::new(Mutex::new(None)),
            writer,
        }
    }

    /// Run `f` in a transaction of the writer thread; its value once
    /// committed.
    ///
    /// # Errors
    ///
    /// `f`'s error, the commit's, or [`store::Error::WriterGone`].
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut store::Tx<'_>) -> Result<T, store::Error> + Send + 'static,
    ) -> Result<T, store::Error> {
        self.writer.task(f).await
    }

    /// Run `f` on a blocking thread with the writer as its [`store::Writes`]:
    /// a job of many transactions (a rescan in batches, a digest pass).
    ///
    /// # Errors
    ///
    /// `f`'s error.
    pub async fn writing<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut store::Writer) -> Result<T, store::Error> + Send + 'static,
    ) -> Result<T, store::Error> {
        let mut writer = self.writer.clone();
        tokio::task::spawn_blocking(move || f(&mut writer))
            .await
            .unwrap_or(Err(store::Error::WriterGone))
    }

    /// Run `f` with the store on a blocking thread.
    ///
    /// # Errors
    ///
    /// `f`'s error, or the store's if it cannot be opened.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, store::Error> + Send + 'static,
    ) -> Result<T, store::Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            // A poisoned lock only means another poller panicked while it
            // held the connection; the connection itself is still sound.
            let mut guard = this
                .store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if guard.is_none() {
                *guard = Some(Store::open(&this.at)?);
            }
            match guard.as_mut() {
                Some(store) => f(store),
                None => Err(store::Error::WriterGone),
            }
        })
        .await
        .unwrap_or(Err(store::Error::WriterGone))
    }
}

/// What one poller task needs.
#[derive(Clone)]
pub struct Context {
    /// Where fetched mail goes.
    pub spool: Arc<Spool>,
    /// State and health writes.
    pub store: SharedStore,
    /// The configuration (for tickets and notices; the account is fixed
    /// for the task's life).
    pub config: watch::Receiver<Arc<Config>>,
    /// The mailboxes this node polls (all of them, but on a store shared
    /// by several nodes).
    pub duties: crate::nodes::Duties,
}

/// The accounts the configuration asks for, by mailbox address.
pub fn accounts(cfg: &Config) -> HashMap<String, (String, ImapAccount)> {
    cfg.clients
        .iter()
        .flat_map(|c| {
            c.mailboxes.iter().filter_map(move |m| {
                m.imap
                    .as_ref()
                    .map(|a| (m.address.clone(), (c.name.clone(), a.clone())))
            })
        })
        .collect()
}

struct Running {
    account: ImapAccount,
    token: CancellationToken,
    handle: JoinHandle<()>,
}

/// How long a stopping poller may take to finish its batch.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

async fn stop(address: &str, r: Running) {
    r.token.cancel();
    let abort = r.handle.abort_handle();
    if tokio::time::timeout(STOP_DEADLINE, r.handle).await.is_err() {
        tracing::warn!(mailbox = address, "poller did not stop in time, aborted");
        abort.abort();
    }
}

/// Keep one poller task per configured account until `token` is cancelled;
/// then stop them all (each after its current batch commits).
pub async fn supervise(ctx: Context, token: CancellationToken) {
    let mut config = ctx.config.clone();
    let mut duties = ctx.duties.clone();
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        let mut wanted = accounts(&config.borrow_and_update());
        wanted.retain(|mailbox, _| duties.holds(&crate::nodes::imap(mailbox)));
        let stale: Vec<String> = running
            .iter()
            .filter(|(addr, r)| wanted.get(*addr).is_none_or(|(_, a)| *a != r.account))
            .map(|(addr, _)| addr.clone())
            .collect();
        for addr in stale {
            if let Some(r) = running.remove(&addr) {
                tracing::info!(mailbox = %addr, "poller stopping (mailbox removed or changed)");
                stop(&addr, r).await;
            }
        }
        for (addr, (client, account)) in wanted {
            if running.contains_key(&addr) {
                continue;
            }
            tracing::info!(mailbox = %addr, host = %account.host, folder = %account.folder, "poller starting");
            let child = token.child_token();
            let handle = tokio::spawn(run_mailbox(
                ctx.clone(),
                addr.clone(),
                client,
                account.clone(),
                child.clone(),
            ));
            running.insert(
                addr,
                Running {
                    account,
                    token: child,
                    handle,
                },
            );
        }
        tokio::select! {
            () = token.cancelled() => break,
            changed = config.changed() => if changed.is_err() { break },
            () = duties.changed() => {}
        }
    }
    let all: Vec<_> = running.drain().collect();
    futures::future::join_all(
        all.into_iter()
            .map(|(a, r)| async move { stop(&a, r).await }),
    )
    .await;
}

/// Backoff after the `n`th consecutive failure: 1 s doubling to a cap.
fn backoff(n: u32, cap: Duration) -> Duration {
    let secs = 1u64 << n.saturating_sub(1).min(16);
    Duration::from_secs(secs).min(cap)
}

/// One mailbox, for as long as its token lives: sessions, and backoff
/// between failed ones.
async fn run_mailbox(
    ctx: Context,
    mailbox: String,
    client: String,
    account: ImapAccount,
    token: CancellationToken,
) {
    let span = tracing::info_span!("poller", mailbox = %mailbox);
    let mut health = health::Health::new(&mailbox, &client, account.failures_before_broken);
    let cap = account.poll_interval.min(Duration::from_secs(300));
    loop {
        let result = tracing::Instrument::instrument(
            sync::session(&ctx, &mailbox, &account, &token, &mut health),
            span.clone(),
        )
        .await;
        match result {
            Ok(()) => return,
            Err(e) => {
                if token.is_cancelled() {
                    return;
                }
                let n = health.failed(&ctx, &e).await;
                let wait = backoff(n, cap);
                tracing::warn!(
                    parent: &span,
                    failures = n,
                    retry_in_secs = wait.as_secs(),
                    error = %crate::logging::chain(&e),
                    "poll failed"
                );
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cap = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n, cap).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
