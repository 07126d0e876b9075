//! Where the scheduler gets "now": the process's one clock
//! ([`crate::domain::Time::now`]), which tests may drive from a file.
//!
//! Test hook: when the environment variable [`CLOCK_FILE_ENV`]
//! (`POSTDESK_CLOCK_FILE`) names a file, every "now" of the process —
//! ticket and message times, SLA clocks, the scheduler, the outbox's due
//! times — is the RFC 3339 timestamp in that file (such as
//! `2026-03-02T13:00:00Z`), read each time, so an integration test can move
//! time to a digest's firing or past an SLA target without waiting for it.
//! The scheduler then looks every 500 ms instead of every 20 s. Not for
//! production use.

use std::sync::Arc;

pub use crate::domain::CLOCK_FILE_ENV;

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

/// The process clock: the system clock, or the clock file when
/// [`CLOCK_FILE_ENV`] is set.
pub struct ProcessClock;

impl Clock for ProcessClock {
    fn now(&self) -> jiff::Timestamp {
        crate::domain::now_timestamp()
    }

    fn is_controlled(&self) -> bool {
        crate::domain::clock_file().is_some()
    }
}

/// The clock `postdesk serve` uses (see [`ProcessClock`]).
pub fn from_env() -> Arc<dyn Clock> {
    if let Some(p) = crate::domain::clock_file() {
        tracing::warn!(path = %p.display(), "time comes from a clock file (test hook)");
    }
    Arc::new(ProcessClock)
}
