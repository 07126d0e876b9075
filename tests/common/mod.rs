//! Test harness shared by the integration tests: temp dirs, a real
//! `postdesk serve` on loopback port 0, real SMTP/LMTP/IMAP peers and
//! polling, one module per concern:
//!
//! - [`wait`]: [`eventually`] and deadlines; nothing here sleeps to wait
//!   for something to happen.
//! - [`server`]: [`Options`], [`rules_toml`], the per-test [`Env`] and the
//!   [`TestServer`] (ports from `ports.json`, log per start, restarts).
//! - [`cli`]: `postdesk` commands run to completion, `--json` parsed.
//! - [`smtp`]: the `smtplib` driver ([`Outcome`], [`Reply`]) and
//!   [`RawSmtp`] for what a polite client never sends.
//! - [`mail`]: [`Mail`], [`mail`], [`text_mail`], fixtures, [`noise`] and
//!   JSON field helpers.
//! - [`sink`], [`dovecot`], [`postfix_sink`]: outbound and IMAP peers;
//!   [`receiver`]: an HTTP receiver for webhooks.
//! - [`postfix_mta`]: a throwaway Postfix in front of postdesk (LMTP or
//!   pipe delivery).
//!
//! Every test gets its own [`Env`] and, when it needs the server, its own
//! [`TestServer`] on port 0, so the tests of one file run in parallel
//! without sharing a port or a database.
//!
//! Each test binary compiles this whole tree and uses a different part of
//! it, so each module is declared with `allow(dead_code)` and each
//! re-export with `allow(unused_imports)`: what one binary leaves unused
//! another uses. Nothing else in the harness is exempt from lints.

#[allow(dead_code)]
pub mod cli;
#[allow(dead_code)]
pub mod dovecot;
#[allow(dead_code)]
pub mod http;
#[allow(dead_code)]
pub mod mail;
#[allow(dead_code)]
pub mod pg;
#[allow(dead_code)]
pub mod postfix_mta;
#[allow(dead_code)]
pub mod postfix_sink;
#[allow(dead_code)]
pub mod receiver;
#[allow(dead_code)]
pub mod server;
#[allow(dead_code)]
pub mod sink;
#[allow(dead_code)]
pub mod smtp;
#[allow(dead_code)]
pub mod wait;

#[allow(unused_imports)]
pub use cli::*;
#[allow(unused_imports)]
pub use mail::*;
#[allow(unused_imports)]
pub use server::*;
#[allow(unused_imports)]
pub use smtp::*;
#[allow(unused_imports)]
pub use wait::*;
