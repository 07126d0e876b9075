//! The ticket commands: `tickets` (the list), `show` (one ticket with its
//! messages, or one of its attachments) and `close`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::mail::attachment_content;
use super::{Common, open, print_json, refuse, write_output};
use crate::domain::{TicketId, Time};
use crate::outbound::Config;
use crate::report::{self, printable};
use crate::store::{Store, TicketDetail, TicketFilter, TicketRef};

#[derive(Args)]
pub(super) struct TicketsArgs {
    #[command(flatten)]
    common: Common,
    /// Only tickets with this status.
    #[arg(long)]
    status: Option<String>,
    /// Only tickets in this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only tickets with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only tickets with an SLA target past due.
    #[arg(long)]
    overdue: bool,
    /// Only tickets with an SLA target past its warning, not yet due.
    #[arg(long)]
    at_risk: bool,
    /// Only tickets that auto-close within 24 hours.
    #[arg(long)]
    closing_soon: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct ShowArgs {
    #[command(flatten)]
    common: Common,
    /// Ticket number or id.
    ticket: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Write the attachment NAME of the ticket's messages (the newest of
    /// that name) to standard output, or to the file given by -o.
    #[arg(long, value_name = "NAME")]
    attachment: Option<String>,
    /// With --attachment: the file to write (created, never overwritten).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        requires = "attachment"
    )]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub(super) struct CloseArgs {
    #[command(flatten)]
    common: Common,
    /// Ticket number or id.
    ticket: String,
}

/// `postdesk ticket ...`: change one ticket.
#[derive(Subcommand)]
pub(super) enum TicketAction {
    /// Move a ticket to another queue (support, sales, ...), its messages,
    /// participants and history kept.
    Move(MoveArgs),
    /// Split a ticket: MESSAGE_ID and the messages after it move to a new
    /// ticket, linked to this one.
    Split(SplitArgs),
}

#[derive(Args)]
pub(super) struct SplitArgs {
    #[command(flatten)]
    common: Common,
    /// Ticket number or id.
    ticket: String,
    /// The first message to move: its Message-ID (as in `show`), or its
    /// row id.
    message_id: String,
}

/// Split a ticket at a message; prints the new ticket's number.
pub(super) fn split_ticket(args: SplitArgs) -> anyhow::Result<ExitCode> {
    let (cfg, mut store) = open(&args.common)?;
    let Some(detail) = find_ticket(&cfg, &store, &args.ticket)? else {
        return Err(refuse(format!("no ticket {}", args.ticket)));
    };
    let ticket = TicketId(detail.ticket.id);
    let id = args
        .message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let row = id.parse::<i64>().ok();
    let now = Time::now();
    let cfg_ = &cfg;
    let done = store.write(|tx| {
        let Some(at) = tx.split_point(id, row)? else {
            return Ok(Err(format!("no message {id}")));
        };
        let Some(conv) = tx.conversation(ticket)? else {
            return Ok(Err(format!("no ticket {}", args.ticket)));
        };
        crate::agent::split::split(tx, cfg_, &conv, &at, None, "cli", now)
    })?;
    match done {
        Ok(s) => {
            println!(
                "{}: {} message(s) moved to {}",
                printable(&args.ticket),
                s.moved,
                s.number
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => Err(refuse(why)),
    }
}

#[derive(Args)]
pub(super) struct MoveArgs {
    #[command(flatten)]
    common: Common,
    /// Ticket number or id.
    ticket: String,
    /// The queue to move it to.
    queue: String,
}

/// Move a ticket to another queue: one `moved` event; its SLA follows the
/// policy of the new queue.
pub(super) fn move_ticket(args: MoveArgs) -> anyhow::Result<ExitCode> {
    let (cfg, mut store) = open(&args.common)?;
    let Some(queue) = crate::domain::Queue::from_name(&args.queue) else {
        let names: Vec<&str> = crate::domain::Queue::ALL
            .iter()
            .map(|q| q.as_str())
            .collect();
        return Err(refuse(format!(
            "`{}` is not a queue; the queues are {}",
            args.queue,
            names.join(", ")
        )));
    };
    let Some(detail) = find_ticket(&cfg, &store, &args.ticket)? else {
        return Err(refuse(format!("no ticket {}", args.ticket)));
    };
    let ticket = TicketId(detail.ticket.id);
    let from = detail.ticket.queue.clone();
    let now = Time::now();
    if from != queue.as_str() {
        store.write(|tx| {
            tx.set_ticket_field(
                ticket,
                crate::store::TicketField::Queue,
                queue.as_str(),
                now,
            )?;
            tx.event(
                Some(ticket),
                None,
                "moved",
                "cli",
                &serde_json::json!({ "from": from, "to": queue.as_str() }),
                now,
            )?;
            crate::timers::record(tx, &cfg.sla, ticket, crate::sla::Happened::Changed, now)?;
            Ok(())
        })?;
    }
    println!(
        "{}: {} -> {}",
        cfg.tickets.format_number(
            detail.ticket.number,
            queue.as_str(),
            Time::from_secs(detail.ticket.created_at)
        ),
        printable(&from),
        queue.as_str()
    );
    Ok(ExitCode::SUCCESS)
}

/// List tickets, filtered by status and queue.
pub(super) fn tickets(args: TicketsArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(&args.common)?;
    let flags = args_flags(&args);
    let mut rows = store.list_tickets(&TicketFilter {
        status: args.status,
        queue: args.queue,
        tag: args.tag,
    })?;
    if flags.overdue || flags.at_risk || flags.closing_soon {
        let keep = selected(&cfg, &store, &flags)?;
        rows.retain(|t| keep.contains(&t.id));
    }
    if args.json {
        print_json(&serde_json::Value::Array(
            rows.iter().map(|t| report::ticket_json(&cfg, t)).collect(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for t in &rows {
        writeln!(out, "{}", report::ticket_line(&cfg, t))?;
    }
    if rows.is_empty() {
        writeln!(out, "no tickets")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--overdue`, `--at-risk`, `--closing-soon`.
struct Flags {
    overdue: bool,
    at_risk: bool,
    closing_soon: bool,
}

fn args_flags(a: &TicketsArgs) -> Flags {
    Flags {
        overdue: a.overdue,
        at_risk: a.at_risk,
        closing_soon: a.closing_soon,
    }
}

/// The ticket row ids any of the given flags selects.
fn selected(
    cfg: &crate::outbound::Config,
    store: &Store,
    f: &Flags,
) -> anyhow::Result<std::collections::HashSet<i64>> {
    let now = Time::now();
    let mut keep = std::collections::HashSet::new();
    if f.overdue || f.at_risk {
        for row in store.sla_open()? {
            let Some(policy) = cfg.sla.policy(&row.clocks.policy) else {
                continue;
            };
            let p = crate::sla::priority(&row.priority);
            let v = crate::sla::view(policy, &row.clocks, p, now);
            if (f.overdue && v.overdue) || (f.at_risk && v.state == crate::sla::State::AtRisk) {
                keep.insert(row.ticket.0);
            }
        }
    }
    let days = i64::from(cfg.tickets.auto_close_days);
    if f.closing_soon && days > 0 {
        let before = now.secs() + 86_400 - days * 86_400;
        for (t, _, _) in
            store.unchanged_since(crate::timers::sweep::WAITING, before, usize::MAX >> 1)?
        {
            keep.insert(t.0);
        }
    }
    Ok(keep)
}

/// Show one ticket with its messages, or write one of its attachments.
pub(super) fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(&args.common)?;
    let ticket = &args.ticket;
    let Some(detail) = find_ticket(&cfg, &store, ticket)? else {
        return Err(refuse(format!("no ticket {ticket}")));
    };
    if let Some(name) = &args.attachment {
        let content = match store.attachment_named(TicketId(detail.ticket.id), name)? {
            Some((message, index)) => attachment_content(&store, message, index)?,
            None => None,
        };
        let Some(content) = content else {
            return Err(refuse(format!(
                "ticket {ticket} has no attachment named {name:?}"
            )));
        };
        write_output(args.output.as_deref(), &content)?;
    } else if args.json {
        print_json(&report::detail_json(&cfg, &detail))?;
    } else {
        write!(
            std::io::stdout().lock(),
            "{}",
            report::detail_text(&cfg, &detail)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Close a ticket; a later reply reopens it within the reopen window.
pub(super) fn close(args: CloseArgs) -> anyhow::Result<ExitCode> {
    let (cfg, mut store) = open(&args.common)?;
    let ticket = &args.ticket;
    let n = ticket_arg(&cfg, ticket)?;
    let now = Time::now();
    let changed = match store.set_status(TicketRef::Number(n), "Closed", "cli", now)? {
        Some(c) => Some(c),
        None => store.set_status(TicketRef::Id(n), "Closed", "cli", now)?,
    };
    let Some(c) = changed else {
        return Err(refuse(format!("no ticket {ticket}")));
    };
    // The SLA's resolution clock stops with the close.
    store.write(|tx| {
        crate::timers::record(
            tx,
            &cfg.sla,
            crate::domain::TicketId(c.id),
            crate::sla::Happened::Changed,
            now,
        )
    })?;
    println!(
        "{}: {} -> {}",
        cfg.tickets
            .format_number(c.number, &c.queue, Time::from_secs(c.created_at)),
        printable(&c.from),
        printable(&c.to)
    );
    Ok(ExitCode::SUCCESS)
}

/// The number in `1001`, `#1001`, `S-2026-0042` (a displayed form) or a
/// row id.
fn ticket_arg(cfg: &Config, arg: &str) -> anyhow::Result<i64> {
    if let Some(n) = cfg.tickets.parse_number(arg) {
        return Ok(n);
    }
    let digits: String = arg.chars().filter(|c| c.is_ascii_digit()).collect();
    digits
        .parse()
        .with_context(|| format!("{arg:?} is not a ticket number or id"))
}

/// The ticket `arg` names: by number (`1001`, `#1001`) first, else by row id.
pub(super) fn find_ticket(
    cfg: &Config,
    store: &Store,
    arg: &str,
) -> anyhow::Result<Option<TicketDetail>> {
    let n = ticket_arg(cfg, arg)?;
    if let Some(d) = store.ticket(TicketRef::Number(n))? {
        return Ok(Some(d));
    }
    Ok(store.ticket(TicketRef::Id(n))?)
}
