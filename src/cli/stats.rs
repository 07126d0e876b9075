//! `postdesk stats`: figures over the store. Without a subcommand, the
//! overview of a window (`--since`, `--until`, `--by`) as text, JSON or
//! CSV; `stats satisfaction` is the ratings alone.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Common, instant, open, print_json, window};
use crate::domain::Time;
use crate::report::overview::{Dimension, Overview, Window};
use crate::report::stats;
use crate::store::TicketScope;

/// `stats [OPTIONS]` or `stats satisfaction [OPTIONS]`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct StatsArgs {
    #[command(subcommand)]
    action: Option<StatsAction>,
    #[command(flatten)]
    overview: OverviewArgs,
}

#[derive(Args)]
pub(super) struct OverviewArgs {
    #[command(flatten)]
    common: Common,
    /// Only what happened since this date (`2026-12-01`, UTC midnight) or
    /// for this span back from now (`30d`, `12h`); default: everything.
    #[arg(long, value_name = "DATE|SPAN")]
    since: Option<String>,
    /// Only what happened before this date (UTC midnight, not included)
    /// or span back from now; default: now.
    #[arg(long, value_name = "DATE|SPAN")]
    until: Option<String>,
    /// Figures per group as well as in total.
    #[arg(long, value_parser = ["queue", "priority", "agent", "client", "type"])]
    by: Option<String>,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (RFC 4180): the total, then a row per group.
    #[arg(long)]
    csv: bool,
}

#[derive(Subcommand)]
pub(super) enum StatsAction {
    /// Satisfaction ratings per queue and per agent (the ticket's
    /// assignee): count, average score, distribution 1-5.
    Satisfaction(SatisfactionArgs),
}

#[derive(Args)]
pub(super) struct SatisfactionArgs {
    #[command(flatten)]
    common: Common,
    /// Only ratings given since this date (`2026-12-01`, UTC midnight) or
    /// for this span back from now (`30d`); default: all.
    #[arg(long, value_name = "DATE|SPAN")]
    since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `stats`: the overview, or the subcommand named.
pub(super) fn stats(args: StatsArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Some(StatsAction::Satisfaction(args)) => satisfaction(args),
        None => overview(args.overview),
    }
}

/// `stats` without a subcommand.
fn overview(args: OverviewArgs) -> anyhow::Result<ExitCode> {
    let now = Time::now();
    let (since, until) = window(args.since.as_deref(), args.until.as_deref(), now)?;
    let by = args.by.as_deref().and_then(Dimension::parse);
    let (cfg, store) = open(&args.common)?;
    let mut o = Overview::new(Window { since, until }, by, now);
    store.each_stats_ticket(
        TicketScope::Activity,
        since.unwrap_or(i64::MIN),
        until,
        |t| -> anyhow::Result<()> {
            o.add(t, &cfg.sla);
            Ok(())
        },
    )?;
    if args.json {
        print_json(&o.json())?;
    } else if args.csv {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        o.write_csv(&mut out)?;
        out.flush()?;
    } else {
        write!(std::io::stdout().lock(), "{}", o.text())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `stats satisfaction`.
fn satisfaction(args: SatisfactionArgs) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| instant("--since", s, Time::now()))
        .transpose()?
        .unwrap_or(0);
    let (_, store) = open(&args.common)?;
    let figures = stats::satisfaction(&store.rating_counts(since)?);
    if args.json {
        print_json(&stats::satisfaction_json(&figures, args.since.as_deref()))?;
    } else {
        write!(
            std::io::stdout().lock(),
            "{}",
            stats::satisfaction_text(&figures)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
