//! Wiring only: open the store, start the writer, bind the listeners, wait
//! for a signal, drain.
//!
//! Drain order on SIGTERM/SIGINT: the root token is cancelled (listeners
//! stop accepting; sessions finish their transaction), tracked tasks are
//! awaited up to a deadline, the last spool handle is dropped, and the writer
//! thread is joined so every submitted message is committed before exit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::ingest;
use crate::listener::{self, ConnLimits, Protocol, Settings};
use crate::pipeline;
use crate::shutdown::Shutdown;
use crate::spool::Spool;
use crate::store::{self, Writer};

/// How long sessions get to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Run the server until SIGTERM/SIGINT.
///
/// # Errors
///
/// When the store cannot be opened or a listener cannot bind.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir();
    let cfg = Arc::new(cfg);
    let (_cfg_tx, cfg_rx) = watch::channel(cfg.clone());
    let (writer, writer_thread) = Writer::start(&data_dir, pipeline::handler(cfg_rx))
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let spool = Arc::new(Spool::new(writer));

    let shutdown = Shutdown::new();
    let settings = Arc::new(Settings::from_config(&cfg)?);
    let limits = Arc::new(ConnLimits::from_config(&cfg.limits));
    let mut ports = serde_json::Map::new();

    for (protocol, addr) in [(Protocol::Smtp, cfg.server.smtp), (Protocol::Lmtp, cfg.server.lmtp)] {
        let Some(addr) = addr else { continue };
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {protocol:?} listener to {addr}"))?;
        let local = tcp.local_addr().context("reading the bound address")?;
        tracing::info!(protocol = ?protocol, addr = %local, "listening");
        ports.insert(protocol.as_str().to_string(), serde_json::Value::String(local.to_string()));
        shutdown.tracker.spawn(listener::serve(
            tcp,
            protocol,
            settings.clone(),
            spool.clone(),
            limits.clone(),
            shutdown.token.child_token(),
            shutdown.tracker.clone(),
        ));
    }
    write_ports(&data_dir, &serde_json::Value::Object(ports))?;

    Shutdown::signalled().await;
    tracing::info!("shutdown requested, draining");
    shutdown.drain(DRAIN_DEADLINE).await;
    // The writer exits once its last handle is gone and its queue is empty;
    // joining it is what flushes the final batch.
    drop(spool);
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .context("joining the store writer")?;
    tracing::info!("stopped");
    Ok(())
}

/// `<data>/ports.json`, written atomically, so tests and scripts that bind
/// port 0 learn the real ports.
fn write_ports(data_dir: &std::path::Path, ports: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = data_dir.join("ports.json.tmp");
    let dst = data_dir.join("ports.json");
    std::fs::write(&tmp, ports.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &dst).with_context(|| format!("renaming to {}", dst.display()))?;
    Ok(())
}

/// Run `postdesk ingest` with a writer of its own.
///
/// # Errors
///
/// The outer error is a setup failure (store cannot open: exit 75); the
/// inner one is ingest's own outcome.
pub async fn ingest(cfg: Config, path: &str) -> anyhow::Result<Result<ingest::Summary, ingest::Error>> {
    let data_dir = cfg.data_dir();
    let (_cfg_tx, cfg_rx) = watch::channel(Arc::new(cfg));
    let (writer, writer_thread) = Writer::start(&data_dir, pipeline::handler(cfg_rx))
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let spool = Spool::new(writer);
    let result = ingest::run(&spool, path).await;
    drop(spool);
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .context("joining the store writer")?;
    Ok(result)
}

/// Run the pipeline on `raw` inside a rolled-back transaction.
///
/// # Errors
///
/// When the store cannot be opened.
pub fn explain(cfg: Arc<Config>, raw: Vec<u8>) -> anyhow::Result<serde_json::Value> {
    let parsed = crate::parse::parse(&raw);
    let mut store = store::Store::open(&cfg.data_dir())?;
    let envelope = crate::spool::Envelope {
        mail_from: String::new(),
        rcpt_to: Vec::new(),
        source: crate::spool::Source::Ingest,
        peer: None,
        helo: String::new(),
    };
    let now = jiff::Timestamp::now().as_second();
    let outcome = store.dry_run(|tx| pipeline::process(tx, &cfg, &envelope, &raw, &parsed, now))?;
    Ok(serde_json::json!({
        "message_id": outcome.message_id,
        "duplicate": outcome.duplicate,
        "state": outcome.state,
        "would_open_ticket": outcome.opened,
        "ticket": outcome.ticket,
        "thread": outcome.thread,
        "route": outcome.route,
        "problem": parsed.problem,
    }))
}
