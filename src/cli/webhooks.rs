//! `postdesk webhooks`: the webhook deliveries (queued, sending, sent,
//! failed) and `postdesk webhooks retry ID` for a failed one.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Common, open, print_json, refuse};
use crate::domain::Time;
use crate::store::RetryOutcome;

#[derive(Args)]
pub(super) struct WebhooksArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    action: Option<WebhooksAction>,
}

#[derive(Subcommand)]
enum WebhooksAction {
    /// Queue a failed delivery again, due now, with the same event id (the
    /// server POSTs it within half a second).
    Retry {
        /// The delivery id (see `postdesk webhooks`).
        id: i64,
    },
}

pub(super) fn webhooks(args: WebhooksArgs) -> anyhow::Result<ExitCode> {
    let (_cfg, mut store) = open(&args.common)?;
    if let Some(WebhooksAction::Retry { id }) = args.action {
        return match store.retry_webhook(id, Time::now())? {
            None => Err(refuse(format!("no webhook delivery {id}"))),
            Some(RetryOutcome::Requeued) => {
                println!("webhook delivery {id}: queued again");
                Ok(ExitCode::SUCCESS)
            }
            Some(RetryOutcome::AlreadySent) => Err(refuse(format!(
                "webhook delivery {id} was already delivered; nothing to retry"
            ))),
            Some(RetryOutcome::Pending) => {
                println!("webhook delivery {id}: already queued");
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    let rows = store.webhook_deliveries()?;
    if args.json {
        print_json(&serde_json::to_value(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for r in &rows {
        let ticket = r.ticket.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let error = if r.last_error.is_empty() {
            String::new()
        } else {
            format!("  {}", r.last_error)
        };
        writeln!(
            out,
            "{:>6}  {:<8} {:<21} ticket {:<8} attempts {:<3} {} {}{}",
            r.id, r.status, r.event, ticket, r.attempts, r.event_id, r.url, error
        )?;
    }
    if rows.is_empty() {
        writeln!(out, "no webhook deliveries")?;
    }
    Ok(ExitCode::SUCCESS)
}
