//! `postdesk export tickets|messages --csv`: one row per ticket or
//! message for spreadsheets, RFC 4180 in UTF-8 (see `report::csv`),
//! written while the store is read: a row is written before the next is
//! read, so the export of a large store runs in constant memory.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Common, open};
use crate::domain::Time;
use crate::report::csv::{Record, header};
use crate::report::overview;
use crate::store::TicketScope;

#[derive(Subcommand)]
pub(super) enum ExportAction {
    /// One row per ticket opened in the window.
    Tickets(ExportArgs),
    /// One row per message received or sent in the window (no bodies).
    Messages(ExportArgs),
}

#[derive(Args)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    common: Common,
    /// Only tickets opened (messages stored) since this date (`2026-12-01`,
    /// UTC midnight) or for this span back from now (`30d`); default: all.
    #[arg(long, value_name = "DATE|SPAN")]
    since: Option<String>,
    /// Only before this date (UTC midnight, not included) or span back
    /// from now; default: now.
    #[arg(long, value_name = "DATE|SPAN")]
    until: Option<String>,
    /// Write CSV (RFC 4180, UTF-8; the only format, named so that scripts
    /// say what they read).
    #[arg(long, required = true)]
    csv: bool,
}

/// The ticket export's columns.
pub(super) const TICKET_COLUMNS: [&str; 19] = [
    "number",
    "subject",
    "status",
    "priority",
    "queue",
    "issue_type",
    "client",
    "requester",
    "assignee",
    "messages",
    "created_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "updated_at",
    "sla_policy",
    "first_response_seconds",
    "resolution_seconds",
    "satisfaction",
];

/// The message export's columns.
pub(super) const MESSAGE_COLUMNS: [&str; 10] = [
    "ticket",
    "id",
    "message_id",
    "date",
    "from",
    "direction",
    "kind",
    "subject",
    "size",
    "attachments",
];

fn window(args: &ExportArgs) -> anyhow::Result<(i64, i64)> {
    let (since, until) = super::window(args.since.as_deref(), args.until.as_deref(), Time::now())?;
    Ok((since.unwrap_or(i64::MIN), until))
}

/// An RFC 3339 UTC time, or empty.
fn when(secs: Option<i64>) -> String {
    secs.and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `export tickets --csv`.
pub(super) fn tickets(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let (since, until) = window(&args)?;
    let (cfg, store) = open(&args.common)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    header(&mut out, &TICKET_COLUMNS)?;
    let mut r = Record::new();
    store.each_stats_ticket(
        TicketScope::Opened,
        since,
        until,
        |t| -> anyhow::Result<()> {
            let resolved = overview::resolved_at(t);
            let elapsed =
                |at: Option<i64>| at.map(|at| overview::elapsed(&cfg.sla, t, t.created_at, at));
            r.text(
                &cfg.tickets
                    .format_number(t.number, &t.queue, Time::from_secs(t.created_at)),
            )
            .text(&t.subject)
            .text(&t.status)
            .text(&t.priority)
            .text(&t.queue)
            .text(&t.issue_type)
            .text(&overview::client(t))
            .text(&t.requester)
            .text(&t.assignee)
            .number(t.message_count)
            .text(&when(Some(t.created_at)))
            .text(&when(t.first_response_at))
            .text(&when(resolved))
            .text(&when(t.closed_at))
            .text(&when(Some(t.updated_at)))
            .text(t.sla_policy.as_deref().unwrap_or(""))
            .maybe(elapsed(t.first_response_at))
            .maybe(elapsed(resolved))
            .maybe(t.rating.map(|(score, _)| score));
            r.write(&mut out)?;
            Ok(())
        },
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `export messages --csv`.
pub(super) fn messages(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let (since, until) = window(&args)?;
    let (cfg, store) = open(&args.common)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    header(&mut out, &MESSAGE_COLUMNS)?;
    let mut r = Record::new();
    store.each_export_message(since, until, |m| -> anyhow::Result<()> {
        let ticket = m
            .ticket
            .as_ref()
            .map(|(n, queue, opened)| {
                cfg.tickets
                    .format_number(*n, queue, Time::from_secs(*opened))
            })
            .unwrap_or_default();
        r.text(&ticket)
            .number(m.id)
            .text(&m.message_id)
            .text(&when(Some(m.received_at)))
            .text(&m.from)
            .text(&m.direction)
            .text(&m.kind)
            .text(&m.subject)
            .number(m.size)
            .number(m.attachments);
        r.write(&mut out)?;
        Ok(())
    })?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
