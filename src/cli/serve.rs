//! `postdesk serve` (the listeners, pollers and pipeline until a signal)
//! and `postdesk check` (the configuration, validated, and what it sets up).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

use super::{Common, load, refuse, runtime};
use crate::app;

#[derive(Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// SMTP listen address (overrides rules.toml).
    #[arg(long)]
    smtp: Option<SocketAddr>,
    /// LMTP listen address (overrides rules.toml).
    #[arg(long)]
    lmtp: Option<SocketAddr>,
    /// HTTP listen address (overrides `[http] listen`); `none` turns the
    /// web door off.
    #[arg(long, value_parser = parse_http)]
    http: Option<HttpListen>,
    /// This node's name in a shared PostgreSQL store (overrides `[store]
    /// node`; default: the host name).
    #[arg(long, value_parser = parse_node)]
    node: Option<String>,
}

fn parse_node(s: &str) -> Result<String, String> {
    if crate::config::store::valid_node_name(s) {
        Ok(s.to_owned())
    } else {
        Err("1 to 64 letters, digits, `-`, `_` or `.`".to_owned())
    }
}

/// `--http ADDR` or `--http none`.
#[derive(Clone, Copy)]
enum HttpListen {
    Off,
    At(SocketAddr),
}

fn parse_http(s: &str) -> Result<HttpListen, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(HttpListen::Off);
    }
    s.parse()
        .map(HttpListen::At)
        .map_err(|e| format!("{e}; expected IP:PORT or `none`"))
}

#[derive(Args)]
pub(super) struct CheckArgs {
    #[command(flatten)]
    common: Common,
}

/// Run the server until SIGINT or SIGTERM, then drain.
pub(super) fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = load(&args.common)?;
    if args.smtp.is_some() {
        cfg.server.smtp = args.smtp;
    }
    if args.lmtp.is_some() {
        cfg.server.lmtp = args.lmtp;
    }
    match args.http {
        Some(HttpListen::Off) => cfg.http.listen = None,
        Some(HttpListen::At(addr)) => cfg.http.listen = Some(addr),
        None => {}
    }
    if let Some(node) = args.node {
        cfg.store.node = node;
    }
    let generated = cfg.threading.token_secret.is_none();
    match cfg.use_generated_secret(true) {
        Ok(Some(path)) => tracing::info!(
            file = %path.display(),
            "no [threading] token_secret_file configured: generated a token secret for \
             signed reply addresses"
        ),
        Ok(None) => {}
        Err(e) => return Err(refuse(format!("the generated token secret: {e}"))),
    }
    if generated && cfg.store.backend == crate::config::store::Backend::Postgres {
        // Each node would sign with its own: a reply address or page link
        // made by one would not verify on another.
        tracing::warn!(
            "the store is shared by several nodes but [threading] token_secret_file is not \
             set: this node signs with the secret of its own data directory; give every \
             node the same token_secret_file"
        );
    }
    runtime()?.block_on(app::serve(cfg))?;
    Ok(ExitCode::SUCCESS)
}

/// Validate the configuration and print what it sets up.
pub(super) fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.common)?;
    let mailboxes: usize = cfg.clients.iter().map(|c| c.mailboxes.len()).sum();
    println!(
        "{}: ok ({} client files, {} mailboxes, schema version {})",
        args.common.config.join("rules.toml").display(),
        cfg.clients.len(),
        mailboxes,
        crate::store::SCHEMA_VERSION
    );
    for line in crate::report::outbox::check_summary(&cfg) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
