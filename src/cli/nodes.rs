//! `postdesk nodes`: the nodes sharing a PostgreSQL store (name, start,
//! last heartbeat) and which node holds each duty (each IMAP mailbox, the
//! scheduler, rescans).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::{Common, open, print_json};
use crate::domain::Time;

#[derive(Args)]
pub(super) struct NodesArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn at(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |t| t.to_string())
}

pub(super) fn nodes(args: NodesArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(&args.common)?;
    let Some((nodes, duties)) = store.nodes(Time::now())? else {
        if args.json {
            print_json(&serde_json::json!({
                "backend": "sqlite", "nodes": [], "duties": []
            }))?;
        } else {
            println!(
                "The store is SQLite ({}): one node, which holds every duty.",
                crate::store::db_path(&cfg.data_dir()).display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    if args.json {
        print_json(&serde_json::json!({
            "backend": "postgres", "nodes": nodes, "duties": duties
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "NODE                 STATE  LAST HEARTBEAT        STARTED"
    )?;
    for n in &nodes {
        writeln!(
            out,
            "{:<20} {:<6} {:<21} {}",
            n.name,
            if n.alive { "alive" } else { "silent" },
            at(n.heartbeat_at),
            at(n.started_at)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "DUTY                           NODE                 SINCE"
    )?;
    for d in &duties {
        let holder = if d.alive {
            d.node.clone()
        } else {
            format!("{} (silent: being taken over)", d.node)
        };
        writeln!(out, "{:<30} {:<20} {}", d.duty, holder, at(d.since))?;
    }
    Ok(ExitCode::SUCCESS)
}
