//! Where the scheduler gets "now": the system clock, or a file that tests
//! control.
//!
//! Test hook: when the environment variable [`CLOCK_FILE_ENV`]
//! (`POSTDESK_CLOCK_FILE`) names a file, `postdesk serve` reads the current
//! time from it (an RFC 3339 timestamp such as `2026-03-02T13:00:00Z`) at
//! every scheduler tick, so an integration test can move time to a digest's
//! firing without waiting for it. Only the scheduler reads this clock;
//! tickets and messages keep the system time. Not for production use.

use std::path::PathBuf;
use std::sync::Arc;

/// The environment variable naming a clock file (test hook).
pub const CLOCK_FILE_ENV: &str = "POSTDESK_CLOCK_FILE";

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> jiff::Timestamp;
    /// Whether time is driven from outside (the scheduler then looks more
    /// often).
    fn is_controlled(&self) -> bool {
        false
    }
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// A clock read from a file holding an RFC 3339 timestamp.
pub struct FileClock {
    path: PathBuf,
}

impl FileClock {
    /// A clock reading `path`.
    pub fn new(path: PathBuf) -> Self {
        FileClock { path }
    }
}

impl Clock for FileClock {
    fn now(&self) -> jiff::Timestamp {
        match std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<jiff::Timestamp>().ok())
        {
            Some(t) => t,
            None => {
                tracing::warn!(path = %self.path.display(), "clock file unreadable, using the system clock");
                jiff::Timestamp::now()
            }
        }
    }

    fn is_controlled(&self) -> bool {
        true
    }
}

/// The clock `postdesk serve` uses: [`FileClock`] when [`CLOCK_FILE_ENV`]
/// is set, else [`SystemClock`].
pub fn from_env() -> Arc<dyn Clock> {
    match std::env::var_os(CLOCK_FILE_ENV) {
        Some(p) if !p.is_empty() => {
            tracing::warn!(path = ?p, "scheduler time comes from a clock file (test hook)");
            Arc::new(FileClock::new(PathBuf::from(p)))
        }
        _ => Arc::new(SystemClock),
    }
}
