//! `postdesk rules test`: dry-run the automation rules on a mail as if it
//! joined a ticket.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Common, open, print_json, refuse};
use crate::domain::TicketId;

/// `postdesk rules ...`.
#[derive(Subcommand)]
pub(super) enum RulesAction {
    /// Run the automation rules on a .eml file as if it joined ticket N,
    /// changing nothing: each rule, its conditions and its actions.
    Test(TestArgs),
}

#[derive(Args)]
pub(super) struct TestArgs {
    #[command(flatten)]
    common: Common,
    /// The .eml file.
    file: PathBuf,
    /// The ticket (number, e.g. 1001 or #1001, or row id).
    #[arg(long)]
    ticket: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `postdesk rules test FILE --ticket N [--json]`.
pub(super) fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(&args.common)?;
    let Some(ticket) = super::tickets::find_ticket(&cfg, &store, &args.ticket)? else {
        return Err(refuse(format!("no ticket {}", args.ticket)));
    };
    drop(store);
    let raw =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let v = crate::explain::rules_test(&cfg, &raw, TicketId(ticket.ticket.id))?;
    if args.json {
        print_json(&v)?;
    } else if cfg.automation.is_empty() {
        println!("no automation rules");
    } else {
        let mut out = String::new();
        crate::explain::automation_text(&v["automation"], &mut out);
        if out.is_empty() {
            println!("no rule listens to {}", v["on"]);
        }
        print!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}
