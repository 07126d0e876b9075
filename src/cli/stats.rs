//! `postdesk stats <what>`: figures over the store. `satisfaction` is the
//! first; later figures are more subcommands of the same group.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Common, open, print_json, refuse};
use crate::domain::Time;
use crate::report::stats;

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
    /// for this many days back (`30d`); default: all.
    #[arg(long, value_name = "DATE|Nd")]
    since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `stats satisfaction`.
pub(super) fn satisfaction(args: SatisfactionArgs) -> anyhow::Result<ExitCode> {
    let since = match &args.since {
        Some(s) => match since_secs(s, Time::now()) {
            Some(secs) => secs,
            None => {
                return Err(refuse(format!(
                    "--since {s:?}: expected a date (2026-12-01) or a number of days (30d)"
                )));
            }
        },
        None => 0,
    };
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

/// `--since` as Unix seconds: `YYYY-MM-DD` is that day's start in UTC,
/// `Nd` is N days before `now`.
fn since_secs(arg: &str, now: Time) -> Option<i64> {
    if let Some(days) = arg.strip_suffix('d') {
        let days: i64 = days.parse().ok().filter(|d| *d >= 0)?;
        return Some(now.secs() - days * 86_400);
    }
    let date: jiff::civil::Date = arg.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_utc_date_or_days_back() {
        let now = Time::from_secs(1_800_000_000);
        assert_eq!(since_secs("30d", now), Some(1_800_000_000 - 30 * 86_400));
        assert_eq!(since_secs("2026-12-01", now), Some(1_796_083_200));
        assert_eq!(since_secs("yesterday", now), None);
        assert_eq!(since_secs("-3d", now), None);
    }
}
