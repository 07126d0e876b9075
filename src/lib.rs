//! postdesk: a mail-native helpdesk server.
//!
//! The journey of one message, and the module that owns each step
//! (`ARCHITECTURE.md` draws it larger, with the import rules):
//!
//! ```text
//!  SMTP/LMTP listener ─┐
//!  IMAP pollers ───────┤
//!  postdesk ingest ────┤
//!  HTTP (web) ─────────┴─> spool ─> store::writer ─> pipeline: load ─> decide ─> commit ─> outbox ─> smarthost
//!                          (ack only after commit)   (thread, route, guard, agent, detector, monitor)
//! ```
//!
//! - [`domain`]: the types every stage shares (ids, status, priority,
//!   queue, envelope, time); imports nothing else of the crate.
//! - [`config`]: `rules.toml` and `mailboxes/*.toml`, typed and validated with
//!   `file:line:column` errors; [`outbound::Config`] adds the tables
//!   `outbound` and `detect` read themselves.
//! - [`listener`]: the SMTP and LMTP session loops (smtp-proto under tokio).
//! - [`ingest`]: `.eml`, mbox, Maildir and stdin into the same accept path.
//! - [`spool`]: the one way in to "accepted": returns only after the commit.
//! - [`pipeline`]: one message through load, decide (pure, a `Plan`) and
//!   commit, on the writer thread.
//! - [`explain`]: `postdesk explain`: the Plan for a message, rolled back.
//! - [`parse`]: mail-parser into our owned [`parse::ParsedMessage`]; DSNs
//!   and the recognition of mail about mail.
//! - [`thread`]: which ticket a message joins (pure decision).
//! - [`route`]: queue, priority, issue type, requester (pure decision).
//! - [`guard`]: loop and abuse protection for automatic mail (pure).
//! - [`agent`]: agent replies and commands by mail, and mail about mail
//!   (bounces, feedback reports, automatic replies; see
//!   [`parse::classify`]).
//! - [`command`]: the `#command` and `/canned` lines of an agent's mail.
//! - [`detect`]: the off-platform bypass detector (pure scan).
//! - [`compliance`]: the detector's scope, flags, warnings and rescans.
//! - [`monitor`]: alerts and digest items for client mailboxes (a pure
//!   decision, then its rows).
//! - [`satisfaction`]: the survey mail on Resolved and the one-click
//!   rating mailed back to a signed rating address.
//! - [`token`]: signed reply-address tokens (HMAC-SHA256 over the ticket id).
//! - [`store`]: SQLite storage with a group-committing writer thread; every
//!   SQL string lives here; `backup` and `restore` of the store, and the
//!   data directory's lock they respect.
//! - [`poller`]: one IMAP task per client mailbox (IDLE or polling), UID
//!   state committed with the messages, broken-mailbox tickets.
//! - [`scheduler`]: client and admin digests on their schedules.
//! - [`clock`]: the scheduler's time (system, or a test-controlled file).
//! - [`outbound`]: templates, composing, the outbox worker, the smarthost.
//! - [`webhooks`]: the worker POSTing ticket events to `[[webhook]]`
//!   URLs, signed, with retries (the rows are queued with each event).
//! - [`metrics`]: the counters and gauges `GET /metrics` shows.
//! - [`report`]: store rows rendered for the CLI (`--json`, CSV or text),
//!   and the figures of `postdesk stats` (pure aggregation).
//! - [`web`]: the HTTP door (contact form and widget, customer page,
//!   read API, monitor alerts) into the same spool.
//! - [`app`]: wiring for `postdesk serve`.
//! - [`cli`]: the `postdesk` command line, one function per subcommand.
//! - [`files`]: owner-only files and the secrets read from them.
//! - [`logging`]: tracing setup and error chains in logs.
//! - [`shutdown`]: cancellation and draining.
//! - [`sla`]: SLA targets on business hours: clocks, pauses, warnings, breaches (pure).
//! - [`timers`]: the SLA clocks stored after each change; the scheduler's pass of warnings, breaches and auto-close.
//! - [`memory`]: freed memory back to the system after a large message.

pub mod agent;
pub mod app;
pub mod automation;
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
pub mod ingest;
pub mod listener;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod monitor;
pub mod nodes;
pub mod outbound;
pub mod parse;
pub mod pipeline;
pub mod poller;
pub mod report;
pub mod route;
pub mod satisfaction;
pub mod scheduler;
pub mod shutdown;
pub mod sla;
pub mod spool;
pub mod store;
pub mod thread;
pub mod timers;
pub mod token;
pub mod triggers;
pub mod web;
pub mod webhooks;
