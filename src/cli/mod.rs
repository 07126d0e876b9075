//! The `postdesk` command line: the argument grammar (clap) and one
//! function per subcommand. `main.rs` only sets up logging and calls [`run`].
//!
//! Every subcommand that reads the configuration goes through one loader,
//! which prints each diagnostic as `file:line:column: message` and ends the
//! command with exit status 1; a command never runs on a configuration with
//! an error in it.

mod admin;
mod backup;
mod export;
mod mail;
mod migrate;
mod nodes;
mod rules;
mod search;
mod serve;
mod stats;
mod tickets;
mod web;
mod webhooks;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config;
use crate::domain::Time;
use crate::logging;
use crate::outbound::Config;
use crate::store::Store;

/// The parsed command line of `postdesk`.
#[derive(Parser)]
#[command(name = "postdesk", version, about = "A mail-native helpdesk server")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Directory holding rules.toml, mailboxes/ and templates/.
    #[arg(long, global = true, default_value = ".")]
    config: PathBuf,
    /// Data directory (overrides `server.data_dir`).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SMTP/LMTP listeners and the pipeline.
    Serve(serve::ServeArgs),
    /// Validate the configuration; errors as file:line:column.
    Check(serve::CheckArgs),
    /// Store a .eml file, an mbox, a Maildir, or stdin (`-`); a message over
    /// `max_message_size` is refused (exit 65), the others are stored; exit
    /// 75 when the store or the configuration failed (an MTA retries).
    Ingest(mail::IngestArgs),
    /// List tickets.
    Tickets(tickets::TicketsArgs),
    /// Show one ticket with its messages (by number, e.g. 1001 or #1001, or row id).
    Show(tickets::ShowArgs),
    /// Write one attachment of a stored message to stdout (or a file).
    Attachment(mail::AttachmentArgs),
    /// List every message received, ticketed or not (sent mail: `outbox`).
    Messages(mail::MessagesArgs),
    /// Show how a message would be threaded and routed, changing nothing.
    Explain(mail::ExplainArgs),
    /// Client and admin digests: compose them now, or preview them.
    #[command(subcommand)]
    Digest(admin::DigestAction),
    /// Alert and digest mails composed so far, oldest first.
    Notices(admin::NoticesArgs),
    /// Polled mailboxes: stored UID state and health.
    Mailboxes(admin::MailboxesArgs),
    /// Mail postdesk sent or will send: queued, sent, failed.
    Outbox(admin::OutboxArgs),
    /// Clients the bypass detector suspended: list, lift.
    #[command(subcommand)]
    Client(admin::ClientAction),
    /// Rescan stored customer messages of in-scope tickets under the current
    /// detector rules now (the server does it at start, on every change of
    /// the rules and every `rescan_interval_minutes`).
    Rescan(admin::RescanArgs),
    /// Close a ticket (by number, e.g. 1001 or #1001, or row id): a later
    /// reply reopens it within the reopen window, else opens a linked ticket.
    Close(tickets::CloseArgs),
    /// Search subjects, message texts and attachment names.
    Search(search::SearchArgs),
    /// Change one ticket: move it to another queue, or split it.
    #[command(subcommand)]
    Ticket(tickets::TicketAction),
    /// Figures: tickets opened, resolved and closed, first-response and
    /// resolution times, SLA compliance and satisfaction, over a window and
    /// by queue, priority, agent, client or type; `stats satisfaction` for
    /// the ratings alone.
    Stats(stats::StatsArgs),
    /// Tickets or messages as CSV for spreadsheets, one row each.
    #[command(subcommand)]
    Export(export::ExportAction),
    /// API keys for the read and alert APIs: new, list, revoke.
    #[command(subcommand)]
    Apikey(web::ApikeyAction),
    /// Post a monitor alert from this host (as POST /api/v1/alerts does).
    Alert(web::AlertArgs),
    /// Automation rules: `rules test FILE.eml --ticket N` dry-runs them.
    #[command(subcommand)]
    Rules(rules::RulesAction),
    /// Copy the store to a new file, safe while the server runs.
    Backup(backup::BackupArgs),
    /// Replace the store with a backup (the server stopped); the replaced
    /// store is kept aside in the data directory.
    Restore(backup::RestoreArgs),
    /// Webhook deliveries: queued, sending, sent, failed; `retry ID`.
    Webhooks(webhooks::WebhooksArgs),
    /// The nodes sharing a PostgreSQL store and which holds each duty
    /// (each IMAP mailbox, the scheduler, rescans).
    Nodes(nodes::NodesArgs),
    /// Copy the SQLite store of the data directory into a PostgreSQL
    /// database (resumable; every table checked by count and hash).
    MigrateStore(migrate::MigrateArgs),
}

/// Run the command `cli` names and return the process's exit status.
///
/// An error is printed once, with its source chain, as `postdesk: ...`
/// (exit 1); a reader that went away (`postdesk tickets | head`) is not an
/// error (exit 0).
pub fn run(cli: Cli) -> ExitCode {
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<Reported>().is_some() => ExitCode::from(1),
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postdesk: {}", logging::chain(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::serve(args),
        Command::Check(args) => serve::check(args),
        Command::Ingest(args) => mail::ingest(args),
        Command::Tickets(args) => tickets::tickets(args),
        Command::Show(args) => tickets::show(args),
        Command::Attachment(args) => mail::attachment(args),
        Command::Messages(args) => mail::messages(args),
        Command::Explain(args) => mail::explain(args),
        Command::Digest(admin::DigestAction::Run(args)) => admin::digest_run(args),
        Command::Notices(args) => admin::notices(args),
        Command::Mailboxes(args) => admin::mailboxes(args),
        Command::Outbox(args) => admin::outbox(args),
        Command::Client(admin::ClientAction::Unsuspend(args)) => admin::unsuspend(args),
        Command::Client(admin::ClientAction::List(args)) => admin::client_list(args),
        Command::Rescan(args) => admin::rescan(args),
        Command::Close(args) => tickets::close(args),
        Command::Search(args) => search::search(args),
        Command::Ticket(tickets::TicketAction::Move(args)) => tickets::move_ticket(args),
        Command::Ticket(tickets::TicketAction::Split(args)) => tickets::split_ticket(args),
        Command::Stats(args) => stats::stats(args),
        Command::Export(export::ExportAction::Tickets(args)) => export::tickets(args),
        Command::Export(export::ExportAction::Messages(args)) => export::messages(args),
        Command::Apikey(web::ApikeyAction::New(args)) => web::apikey_new(args),
        Command::Apikey(web::ApikeyAction::List(args)) => web::apikey_list(args),
        Command::Apikey(web::ApikeyAction::Revoke(args)) => web::apikey_revoke(args),
        Command::Alert(args) => web::alert(args),
        Command::Rules(rules::RulesAction::Test(args)) => rules::test(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Webhooks(args) => webhooks::webhooks(args),
        Command::Nodes(args) => nodes::nodes(args),
        Command::MigrateStore(args) => migrate::migrate_store(args),
    }
}

/// The command already told the user what went wrong on standard error;
/// [`run`] ends it with exit status 1 without printing more.
#[derive(Debug, thiserror::Error)]
#[error("reported on standard error")]
struct Reported;

/// Print `message` as `postdesk: message` and end the command with exit
/// status 1.
fn refuse(message: impl std::fmt::Display) -> anyhow::Error {
    eprintln!("postdesk: {message}");
    Reported.into()
}

/// The configuration in `common.config`, with `--data` applied, or its
/// diagnostics printed as `file:line:column: message`.
fn load(common: &Common) -> anyhow::Result<Config> {
    let mut cfg = match crate::outbound::whole::load(&common.config) {
        Ok(cfg) => cfg,
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!(
                    "{}:{}:{}: {}",
                    d.file.display(),
                    d.line,
                    d.column,
                    d.message
                );
            }
            return Err(Reported.into());
        }
    };
    if let Some(d) = &common.data {
        cfg.server.data_dir = std::path::absolute(d).unwrap_or_else(|_| d.clone());
    }
    // The secret `serve` generated, when none is configured, so `explain`
    // and `ingest` verify what the server signs.
    if let Err(e) = cfg.use_generated_secret(false) {
        return Err(refuse(e));
    }
    // What this command writes (a status set by `close`, a move) is
    // published to the webhooks as the server's own writes are.
    crate::store::subscribe(crate::webhooks::subscriptions(&cfg.webhooks));
    Ok(cfg)
}

/// The configuration and the store in its data directory.
fn open(common: &Common) -> anyhow::Result<(Config, Store)> {
    let cfg = load(common)?;
    let store = Store::open(cfg.store_location())?;
    Ok((cfg, store))
}

/// A `--since` or `--until` value as Unix seconds: a date (`2026-12-01`,
/// that day's start in UTC) or a span back from `now` (`30d`, `12h`,
/// `1w`); `None` when it is neither.
fn parse_instant(value: &str, now: Time) -> Option<i64> {
    if let Ok(d) = value.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_second());
    }
    crate::sla::parse_duration(value)
        .ok()
        .map(|secs| now.secs() - secs)
}

/// [`parse_instant`] for the option `flag`, refused with a message
/// naming it.
fn instant(flag: &str, value: &str, now: Time) -> anyhow::Result<i64> {
    parse_instant(value, now).ok_or_else(|| {
        refuse(format!(
            "{flag} `{value}` is neither a date like 2026-12-01 nor a span like 30d"
        ))
    })
}

/// `--since` and `--until` as a window `[since, until)` of Unix seconds;
/// without `--since` from the beginning of time, without `--until` up to
/// and including the current second. An empty window is refused.
fn window(
    since: Option<&str>,
    until: Option<&str>,
    now: Time,
) -> anyhow::Result<(Option<i64>, i64)> {
    let from = since.map(|s| instant("--since", s, now)).transpose()?;
    let to = match until {
        Some(u) => instant("--until", u, now)?,
        None => now.secs() + 1,
    };
    if let Some(from) = from
        && from >= to
    {
        return Err(refuse(format!(
            "--since `{}` is not before --until `{}`",
            since.unwrap_or_default(),
            until.unwrap_or("now")
        )));
    }
    Ok((from, to))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Write `bytes` to `path` (created 0600, never overwriting a file), or to
/// standard output.
fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            let mut f = config::create_private(path, false)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(bytes)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => std::io::stdout().lock().write_all(bytes)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_is_a_utc_date_or_a_span_back() {
        let now = Time::from_secs(1_800_000_000);
        assert_eq!(parse_instant("30d", now), Some(1_800_000_000 - 30 * 86_400));
        assert_eq!(parse_instant("12h", now), Some(1_800_000_000 - 12 * 3600));
        assert_eq!(parse_instant("2026-12-01", now), Some(1_796_083_200));
        assert_eq!(parse_instant("yesterday", now), None);
        assert_eq!(parse_instant("-3d", now), None);
        assert_eq!(parse_instant("2026-13-01", now), None);
    }

    #[test]
    fn the_command_line_grammar_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
