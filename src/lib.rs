//! postdesk: a mail-native helpdesk server.
//!
//! The journey of one message, and the module that owns each step:
//!
//! ```text
//!  SMTP/LMTP listener ─┐
//!  postdesk ingest ────┴─> spool ─> parse ─> thread ─> route ─> store
//!                          (ack only after commit)
//! ```
//!
//! - [`config`]: `rules.toml` and `mailboxes/*.toml`, typed and validated with
//!   `file:line:column` errors.
//! - [`listener`]: the SMTP and LMTP session loops (smtp-proto under tokio).
//! - [`ingest`]: `.eml`, mbox, Maildir and stdin into the same accept path.
//! - [`spool`]: the one way in to "accepted": returns only after the commit.
//! - [`pipeline`]: drives one message through parse, thread, route, store.
//! - [`parse`]: mail-parser into our owned [`parse::ParsedMessage`].
//! - [`thread`]: which ticket a message joins (pure decision).
//! - [`route`]: queue, priority, issue type, requester (pure decision).
//! - [`token`]: signed reply-address tokens (HMAC-SHA256 over the ticket id).
//! - [`detect`]: the off-platform bypass detector (pure, fast).
//! - [`store`]: SQLite storage with a group-committing writer thread.
//! - [`app`]: wiring for `postdesk serve`.
//! - [`shutdown`]: cancellation and draining.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod app;
pub mod config;
pub mod detect;
pub mod ids;
pub mod ingest;
pub mod listener;
pub mod logging;
pub mod parse;
pub mod pipeline;
pub mod report;
pub mod route;
pub mod shutdown;
pub mod spool;
pub mod store;
pub mod thread;
pub mod token;
