//! `postdesk search`: full-text search over subjects, message texts and
//! attachment names, best match first, with a snippet around it.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::{Common, instant, open, print_json};
use crate::domain::Time;
use crate::report::printable;
use crate::store::SearchFilter;

#[derive(Args)]
pub(super) struct SearchArgs {
    #[command(flatten)]
    common: Common,
    /// Words that must all occur (accents and case do not matter; `word*`
    /// matches a prefix).
    #[arg(required_unless_present = "rebuild")]
    query: Option<String>,
    /// Only tickets in this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only tickets with this status.
    #[arg(long)]
    status: Option<String>,
    /// Only messages from this address.
    #[arg(long)]
    from: Option<String>,
    /// Only messages since a date (`2026-12-01`) or for a span back from
    /// now (`30d`, `12h`).
    #[arg(long)]
    since: Option<String>,
    /// At most this many results.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Build the index again from every stored message (for a store
    /// written before the index existed, or after a restore).
    #[arg(long, conflicts_with = "query")]
    rebuild: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let (cfg, mut store) = open(&args.common)?;
    if args.rebuild {
        let n = store.rebuild_search()?;
        println!("search index rebuilt: {n} messages");
        return Ok(ExitCode::SUCCESS);
    }
    let query = args.query.unwrap_or_default();
    let filter = SearchFilter {
        queue: args.queue,
        status: args.status,
        from: args.from.map(|f| f.to_ascii_lowercase()),
        since: args
            .since
            .map(|s| instant("--since", &s, Time::now()))
            .transpose()?,
        limit: args.limit,
    };
    let hits = store.search(&query, &filter)?;
    let number = |h: &crate::store::SearchHit| {
        h.ticket_number.map(|n| {
            cfg.tickets
                .format_number(n, &h.queue, Time::from_secs(h.ticket_opened))
        })
    };
    if args.json {
        let items: Vec<serde_json::Value> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "ticket": number(h),
                    "ticket_id": h.ticket_id,
                    "message_id": h.message_id,
                    "subject": h.subject,
                    "snippet": h.snippet,
                    "rank": h.rank,
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(items))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for h in &hits {
        writeln!(
            out,
            "{:<10} {}\n           {}",
            number(h).unwrap_or_else(|| "-".into()),
            printable(&h.subject),
            printable(&h.snippet)
        )?;
    }
    if hits.is_empty() {
        writeln!(out, "no matches")?;
    }
    Ok(ExitCode::SUCCESS)
}
