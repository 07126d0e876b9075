//! Reload on edit: watch the configuration files and swap in a new
//! [`Config`] when they change and still validate.
//!
//! Receives the config directory and the `watch::Sender` every stage reads
//! its snapshot from; sends a new `Arc<Config>` only when the whole
//! directory loads without a single diagnostic. A broken edit is logged,
//! one line per diagnostic, and the last good configuration stays in force.
//!
//! Polling the files' size and modification time every couple of seconds was
//! chosen over an inotify watcher: it needs no extra thread, sees edits made
//! through symlinks, renames and network file systems alike, and its delay
//! is far below what an admin notices. A change is loaded only once the
//! files have stopped changing for one interval, so an editor's half-written
//! save is not read.
//!
//! What is loaded is the caller's: `watch` is given the loader
//! (`outbound::whole::load` for the server, which reads the tables `config`
//! leaves to others too) and works on any configuration that derefs to the
//! core [`Config`].
//!
//! `[server]` (listen addresses, data directory) is taken from the running
//! configuration, not the file: moving a listener or the database needs a
//! restart, and command-line overrides (`--data`, `--smtp`) must survive a
//! reload.

use std::ops::DerefMut;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Config, ConfigError};

/// How often the files are looked at.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// What the files looked like: path, length and modification time of
/// `rules.toml` and each `mailboxes/*` entry.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let stat = |p: PathBuf| {
        let meta = std::fs::metadata(&p).ok();
        let len = meta.as_ref().map_or(u64::MAX, std::fs::Metadata::len);
        let modified = meta.and_then(|m| m.modified().ok());
        (p, len, modified)
    };
    let mut out = vec![stat(dir.join("rules.toml"))];
    if let Ok(entries) = std::fs::read_dir(dir.join("mailboxes")) {
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        out.extend(files.into_iter().map(stat));
    }
    out
}

/// Watch `dir` until `token` is cancelled, sending each new valid config,
/// as `load` reads it, on `tx`.
pub async fn watch<C>(
    dir: PathBuf,
    tx: watch::Sender<Arc<C>>,
    token: CancellationToken,
    interval: Duration,
    load: fn(&Path) -> Result<C, ConfigError>,
) where
    C: DerefMut<Target = Config> + Send + Sync + 'static,
{
    let mut loaded = fingerprint(&dir);
    let mut pending: Option<Fingerprint> = None;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let now = fingerprint(&dir);
        if now == loaded {
            pending = None;
            continue;
        }
        // Changed since the last load: wait one more interval for the
        // files to settle before reading them.
        if pending.as_ref() != Some(&now) {
            pending = Some(now);
            continue;
        }
        pending = None;
        loaded = now;
        let load_dir = dir.clone();
        let result = tokio::task::spawn_blocking(move || load(&load_dir)).await;
        match result {
            Ok(Ok(mut cfg)) => {
                let current = tx.borrow().clone();
                cfg.server = current.server.clone();
                // The HTTP listener, like [server], needs a restart; a
                // public_url derived from it stays the running one.
                cfg.http.listen = current.http.listen;
                if cfg.http.public_url_is_default {
                    cfg.http.public_url = current.http.public_url.clone();
                }
                cfg.dir = current.dir.clone();
                if let Err(e) = cfg.use_generated_secret(false) {
                    tracing::warn!(error = %e, "configuration rejected, keeping the last good one");
                    continue;
                }
                tracing::info!(clients = cfg.clients.len(), "configuration reloaded");
                tx.send_replace(Arc::new(cfg));
            }
            Ok(Err(e)) => {
                for d in &e.diagnostics {
                    tracing::warn!(diagnostic = %d, "configuration rejected, keeping the last good one");
                }
            }
            Err(e) => tracing::error!(error = %e, "configuration reload task failed"),
        }
    }
}
