//! The words every part of postdesk shares: ids, ticket status, priority and
//! queue, the envelope of a message, and time.
//!
//! This module imports nothing else of the crate, so any module may use it
//! without forming an import circle; the store, the decisions and the mail
//! side all speak these types.

mod envelope;
mod ids;
pub mod sla;
mod ticket;
mod time;
pub mod webhook;

pub use envelope::{Accepted, Envelope, Source, WebIntake, WebKind};
pub use ids::{ContactId, MessageRowId, OutboxId, TicketId};
pub use ticket::{Priority, Queue, Status};
pub use time::{CLOCK_FILE_ENV, Time, clock_file, now_timestamp};
