//! The web door's commands: `apikey` (new, list, revoke) and `alert` (a
//! monitor alert from the host, through the same path as `POST
//! /api/v1/alerts`).

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Common, load, open, print_json, refuse, runtime};
use crate::domain::Time;
use crate::store::NewKey;
use crate::web::api::{Scope, key_hash, new_key, parse_severity};

#[derive(Subcommand)]
pub(super) enum ApikeyAction {
    /// Make a key; it is printed once, only its hash is stored.
    New(ApikeyNewArgs),
    /// List the keys (names, scopes, dates; never the keys).
    List(ApikeyListArgs),
    /// Revoke a key by name.
    Revoke(ApikeyRevokeArgs),
}

#[derive(Args)]
pub(super) struct ApikeyNewArgs {
    #[command(flatten)]
    common: Common,
    /// A name for the key (who or what uses it).
    name: String,
    /// `read` (the read API) or `alerts` (POST /api/v1/alerts).
    #[arg(long, default_value = "read")]
    scope: String,
}

#[derive(Args)]
pub(super) struct ApikeyListArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct ApikeyRevokeArgs {
    #[command(flatten)]
    common: Common,
    /// The key's name.
    name: String,
}

#[derive(Args)]
pub(super) struct AlertArgs {
    #[command(flatten)]
    common: Common,
    /// What broke.
    #[arg(long)]
    title: String,
    /// The monitor or host that saw it.
    #[arg(long)]
    source: String,
    /// low, medium, high or urgent.
    #[arg(long, default_value = "high")]
    severity: String,
    /// Alerts with the same key share one open ticket.
    #[arg(long)]
    dedupe_key: Option<String>,
    /// The trouble is over: note it on the open ticket and resolve it.
    #[arg(long)]
    resolved: bool,
    /// Detail: text, or `-` to read it from standard input.
    #[arg(long)]
    body: Option<String>,
}

/// `postdesk apikey new NAME --scope read|alerts`.
pub(super) fn apikey_new(args: ApikeyNewArgs) -> anyhow::Result<ExitCode> {
    let Some(scope) = Scope::parse(&args.scope) else {
        return Err(refuse(format!(
            "unknown scope {:?}: use read or alerts",
            args.scope
        )));
    };
    let name = args.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(refuse("a key name is 1 to 100 printable characters"));
    }
    let (_, mut store) = open(&args.common)?;
    let key = new_key().context("reading the system's random source")?;
    match store.add_api_key(name, scope.as_str(), &key_hash(&key), Time::now())? {
        NewKey::Stored => {
            eprintln!(
                "postdesk: API key {name:?} (scope {}); it is shown only now:",
                scope.as_str()
            );
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        NewKey::NameTaken => Err(refuse(format!("a key named {name:?} exists already"))),
    }
}

/// `postdesk apikey list`.
pub(super) fn apikey_list(args: ApikeyListArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&args.common)?;
    let keys = store.api_keys()?;
    if args.json {
        print_json(&serde_json::to_value(&keys)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if keys.is_empty() {
        println!("no API keys");
    }
    let day = |secs: i64| {
        jiff::Timestamp::from_second(secs)
            .map(|t| t.strftime("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    for k in &keys {
        let state = if k.revoked_at > 0 {
            format!("revoked {}", day(k.revoked_at))
        } else {
            "in force".to_owned()
        };
        let used = if k.last_used_at > 0 {
            format!("last used {}", day(k.last_used_at))
        } else {
            "never used".to_owned()
        };
        println!(
            "{}  {}  created {}  {state}  {used}",
            crate::report::printable(&k.name),
            k.scope,
            day(k.created_at)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `postdesk apikey revoke NAME`.
pub(super) fn apikey_revoke(args: ApikeyRevokeArgs) -> anyhow::Result<ExitCode> {
    let (_, mut store) = open(&args.common)?;
    if store.revoke_api_key(&args.name, Time::now())? {
        println!("revoked {}", crate::report::printable(&args.name));
        Ok(ExitCode::SUCCESS)
    } else {
        Err(refuse(format!("no key in force named {:?}", args.name)))
    }
}

/// `postdesk alert ...`: stored through a writer of its own, as `ingest`
/// does; prints the ticket as `{"number", "id"}` once committed.
pub(super) fn alert(args: AlertArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.common)?;
    let Some(severity) = parse_severity(&args.severity) else {
        return Err(refuse("--severity is low, medium, high or urgent"));
    };
    let body = match args.body.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .take(cfg.limits.max_message_size as u64)
                .read_to_string(&mut s)
                .context("reading the alert body from standard input")?;
            s
        }
        Some(b) => b.to_owned(),
        None => String::new(),
    };
    let json = serde_json::json!({
        "title": args.title,
        "source": args.source,
        "severity": severity.as_str().to_ascii_lowercase(),
        "body": body,
        "dedupe_key": args.dedupe_key,
        "resolved": args.resolved,
    });
    let alert = match crate::web::api::alert_from_json(&json) {
        Ok(a) => a,
        Err((field, why)) => return Err(refuse(format!("--{}: {why}", field.replace('_', "-")))),
    };
    let (env, raw) = crate::web::message::alert(&cfg, &alert, None)?;
    let store_at = cfg.store_location();
    let number_format = cfg.tickets.clone();
    let accepted = runtime()?.block_on(async move {
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(cfg));
        let (writer, thread) = crate::store::Writer::start(&store_at, crate::pipeline::handler(rx))
            .with_context(|| format!("opening the store {store_at}"))?;
        let spool = crate::spool::Spool::new(writer);
        let result = spool.accept(env, raw).await;
        drop(spool);
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("joining the store writer")?;
        anyhow::Ok((result?, store_at))
    })?;
    let (accepted, store_at) = accepted;
    let store = crate::store::Store::open(&store_at)?;
    let number = match accepted.ticket {
        Some(t) => store.ticket_number(t)?,
        None => None,
    };
    print_json(&serde_json::json!({
        "number": number.map(|(n, queue, opened)| {
            number_format.format_number(n, &queue, crate::domain::Time::from_secs(opened))
        }),
        "id": accepted.ticket.map(|t| t.0),
    }))?;
    Ok(ExitCode::SUCCESS)
}
