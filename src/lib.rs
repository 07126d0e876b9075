//! postdesk: a mail-native helpdesk server.
//!
//! The journey of one message, and the module that owns each step:
//!
//! ```text
//!  SMTP/LMTP listener ─┐
//!  IMAP pollers ───────┤
//!  postdesk ingest ────┴─> spool ─> parse ─> thread ─> route ─> store ─> outbox ─> smarthost
//!                          (ack only after commit)   └─> agent (agent mail, bounces)
//! ```
//!
//! - [`config`]: `rules.toml` and `mailboxes/*.toml`, typed and validated with
//!   `file:line:column` errors: the core tables; `[outbound]`, `[teams]` and
//!   `[detector]` are read by their owners, and [`outbound::Config`] is the
//!   whole configuration the server runs on (see [`outbound::whole`]).
//! - [`listener`]: the SMTP and LMTP session loops (smtp-proto under tokio).
//! - [`ingest`]: `.eml`, mbox, Maildir and stdin into the same accept path.
//! - [`spool`]: the one way in to "accepted": returns only after the commit.
//! - [`pipeline`]: drives one message through parse, thread, route, store.
//! - [`parse`]: mail-parser into our owned [`parse::ParsedMessage`]; DSNs
//!   and the recognition of mail about mail.
//! - [`thread`]: which ticket a message joins (pure decision).
//! - [`route`]: queue, priority, issue type, requester (pure decision).
//! - [`token`]: signed reply-address tokens (HMAC-SHA256 over the ticket id).
//! - [`store`]: SQLite storage with a group-committing writer thread.
//! - [`poller`]: one IMAP task per client mailbox (IDLE or polling), UID
//!   state committed with the messages, broken-mailbox tickets; alerts and
//!   digest items for tickets from client mailboxes.
//! - [`scheduler`]: client and admin digests on their schedules.
//! - [`clock`]: the scheduler's time (system, or a test-controlled file).
//! - [`agent`]: agent replies and commands by mail, and mail about mail
//!   (bounces, feedback reports, automatic replies; see
//!   [`parse::classify`]).
//! - [`command`]: the `#command` and `/canned` lines of an agent's mail.
//! - [`guard`]: loop and abuse protection for automatic mail (pure).
//! - [`outbound`]: templates, composing, the outbox worker, the smarthost;
//!   the whole configuration ([`outbound::Config`]).
//! - [`app`]: wiring for `postdesk serve`.
//! - [`cli`]: the `postdesk` command line, one function per subcommand.
//! - [`shutdown`]: cancellation and draining.
//! - [`memory`]: freed memory back to the system after a large message.

pub mod agent;
pub mod app;
pub mod cli;
pub mod clock;
pub mod command;
pub mod compliance;
pub mod config;
pub mod detect;
pub mod domain;
pub mod explain;
pub mod files;
pub mod guard;
pub mod ids {
    //! Typed identifiers (see [`crate::domain`]).
    pub use crate::domain::{ContactId, MessageRowId, OutboxId, TicketId};
}
pub mod ingest;
pub mod listener;
pub mod logging;
pub mod memory;
pub mod monitor;
pub mod outbound;
pub mod parse;
pub mod pipeline;
pub mod poller;
pub mod report;
pub mod route;
pub mod scheduler;
pub mod shutdown;
pub mod spool;
pub mod store;
pub mod thread;
pub mod token;
