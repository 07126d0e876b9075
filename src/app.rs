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

use crate::ingest;
use crate::listener::{self, ConnLimits, Protocol, Settings};
use crate::outbound::Config;
use crate::pipeline;
use crate::shutdown::Shutdown;
use crate::spool::Spool;
use crate::store::Writer;

/// How long sessions get to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Run the server until SIGTERM/SIGINT.
///
/// # Errors
///
/// When the store cannot be opened or a listener cannot bind.
pub async fn serve(mut cfg: Config) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir();
    let store_at = cfg.store_location();
    // Held until the writer is joined: `restore` refuses while it is.
    let _held = crate::store::lock::share(&data_dir)?;
    // Counting starts before anything is counted (see `metrics`).
    crate::metrics::install();
    // The HTTP listener is bound first: the links in mail name its real
    // address when no public_url is configured (port 0 in tests).
    let http = bind_http(&mut cfg).await?;
    let cfg = Arc::new(cfg);
    let (cfg_tx, cfg_rx) = watch::channel(cfg.clone());
    // The writer wakes the outbox worker after each commit that queued
    // mail, so the mail a message (or a digest, or an alert) causes leaves
    // at once.
    let outbox_nudge = Arc::new(tokio::sync::Notify::new());
    let (writer, writer_thread) = Writer::start_waking(
        &store_at,
        pipeline::handler(cfg_rx.clone()),
        Some(outbox_nudge.clone()),
    )
    .with_context(|| format!("opening the store {store_at}"))?;
    // Background tasks write through the same writer thread.
    let shared_store = crate::poller::SharedStore::new(store_at.clone(), writer.clone());
    let spool = Arc::new(Spool::new(writer));

    let shutdown = Shutdown::new();
    let outbox = crate::outbound::outbox::open(&store_at)
        .with_context(|| format!("opening the outbox of the store {store_at}"))?;
    shutdown.tracker.spawn(crate::outbound::outbox::run(
        outbox,
        cfg_rx.clone(),
        data_dir.clone(),
        outbox_nudge,
        shutdown.token.child_token(),
    ));
    // Webhooks: every transaction of this process publishes to the
    // subscriptions in force (set now and after each reload); the worker
    // POSTs what they queued.
    crate::store::subscribe(crate::webhooks::subscriptions(&cfg.webhooks));
    shutdown.tracker.spawn(follow_subscriptions(cfg_rx.clone()));
    let hooks = crate::store::WebhookQueue::open(&store_at)
        .with_context(|| format!("opening the webhook queue of the store {store_at}"))?;
    shutdown.tracker.spawn(crate::webhooks::run(
        hooks,
        cfg_rx.clone(),
        shutdown.token.child_token(),
    ));
    // Reload on edit, IMAP pollers and the digest scheduler. The
    // pollers stop after their current batch commits, before the writer
    // is joined below.
    shutdown.tracker.spawn(crate::config::reload::watch(
        cfg.dir.clone(),
        cfg_tx,
        shutdown.token.child_token(),
        crate::config::reload::INTERVAL,
        crate::outbound::whole::load,
    ));
    // One node holds every duty; several share them (see `nodes`).
    let duties = match &store_at {
        crate::store::Location::Postgres(target) => {
            crate::nodes::start(target.clone(), cfg_rx.clone(), shutdown.token.child_token())
        }
        crate::store::Location::Sqlite(_) => crate::nodes::Duties::all(),
    };
    shutdown.tracker.spawn(crate::poller::supervise(
        crate::poller::Context {
            spool: spool.clone(),
            store: shared_store.clone(),
            config: cfg_rx.clone(),
            duties: duties.clone(),
        },
        shutdown.token.child_token(),
    ));
    shutdown.tracker.spawn(crate::compliance::run(
        cfg_rx.clone(),
        shared_store.clone(),
        duties.clone(),
        shutdown.token.child_token(),
    ));
    let cfg_rx_web = cfg_rx.clone();
    shutdown.tracker.spawn(crate::scheduler::run(
        cfg_rx,
        shared_store,
        crate::clock::from_env(),
        duties,
        shutdown.token.child_token(),
    ));
    let settings = Arc::new(Settings::from_config(&cfg)?);
    let limits = Arc::new(ConnLimits::from_config(&cfg.limits));
    let mut ports = serde_json::Map::new();

    for (protocol, addr) in [
        (Protocol::Smtp, cfg.server.smtp),
        (Protocol::Lmtp, cfg.server.lmtp),
    ] {
        let Some(addr) = addr else { continue };
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {protocol:?} listener to {addr}"))?;
        let local = tcp.local_addr().context("reading the bound address")?;
        tracing::info!(protocol = ?protocol, addr = %local, "listening");
        ports.insert(
            protocol.as_str().to_string(),
            serde_json::Value::String(local.to_string()),
        );
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
    // The web door: its own reading connection to the store; what it
    // accepts goes through the same spool (and writer) as mail.
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some((tcp, local)) = http {
        ports.insert(
            "http".to_string(),
            serde_json::Value::String(local.to_string()),
        );
        let web = Arc::new(crate::web::Web {
            spool: spool.clone(),
            config: cfg_rx_web,
            store: std::sync::Mutex::new(
                crate::store::Store::open(&store_at)
                    .with_context(|| format!("opening the store {store_at}"))?,
            ),
            limit: crate::web::limit::RateLimit::new(),
            ready: ready.clone(),
        });
        let token = shutdown.token.child_token();
        let idle = cfg.limits.idle_timeout;
        shutdown
            .tracker
            .spawn(crate::web::serve(tcp, web, limits.clone(), idle, token));
    }
    write_ports(&data_dir, &serde_json::Value::Object(ports))?;
    ready.store(true, std::sync::atomic::Ordering::Release);

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

/// Keep the store's webhook subscriptions equal to the configuration in
/// force: a reload that changes `[[webhook]]` applies to the next event.
/// Ends when the configuration's sender is dropped (shutdown).
async fn follow_subscriptions(mut config: watch::Receiver<Arc<Config>>) {
    while config.changed().await.is_ok() {
        let subs = crate::webhooks::subscriptions(&config.borrow_and_update().webhooks);
        crate::store::subscribe(subs);
    }
}

/// Bind the HTTP listener of `[http] listen`, if there is one, and make
/// the configuration name the address it got (and, unless configured,
/// the `public_url` links in mail point to).
async fn bind_http(
    cfg: &mut Config,
) -> anyhow::Result<Option<(TcpListener, std::net::SocketAddr)>> {
    let Some(addr) = cfg.http.listen else {
        return Ok(None);
    };
    let tcp = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the HTTP listener to {addr}"))?;
    let local = tcp.local_addr().context("reading the bound address")?;
    tracing::info!(protocol = "http", addr = %local, "listening");
    cfg.http.listen = Some(local);
    if cfg.http.public_url_is_default {
        cfg.http.public_url = format!("http://{local}");
    }
    Ok(Some((tcp, local)))
}

/// `<data>/ports.json`, written atomically, so tests and scripts that bind
/// port 0 learn the real ports.
fn write_ports(data_dir: &std::path::Path, ports: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = data_dir.join("ports.json.tmp");
    let dst = data_dir.join("ports.json");
    // Owner-only like everything in the data directory.
    let mut f = crate::config::create_private(&tmp, true)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(ports.to_string().as_bytes())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &dst).with_context(|| format!("renaming to {}", dst.display()))?;
    Ok(())
}

/// Run `postdesk ingest` with a writer of its own.
///
/// # Errors
///
/// The outer error is a setup failure (store cannot open: exit 75); the
/// inner one is ingest's own outcome.
pub async fn ingest(
    cfg: Config,
    path: &str,
) -> anyhow::Result<Result<ingest::Summary, ingest::Error>> {
    let data_dir = cfg.data_dir();
    // Refused (exit 75, the MTA retries) while `restore` replaces the store.
    let _held = crate::store::lock::share(&data_dir)?;
    let max_message_size = cfg.limits.max_message_size;
    let (_cfg_tx, cfg_rx) = watch::channel(Arc::new(cfg));
    let store_at = cfg_rx.borrow().store_location();
    let (writer, writer_thread) = Writer::start(&store_at, pipeline::handler(cfg_rx))
        .with_context(|| format!("opening the store {store_at}"))?;
    let spool = Spool::new(writer);
    let result = ingest::run(&spool, path, max_message_size).await;
    drop(spool);
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .context("joining the store writer")?;
    Ok(result)
}
