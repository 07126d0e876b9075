//! Duties of a node among several (on a PostgreSQL store): who polls each
//! IMAP mailbox, who runs the scheduler (digests, SLA sweeps, auto-close)
//! and the detector's rescans. Exactly one node at a time holds each, by
//! a session advisory lock on the node's own connection; when that node
//! dies its connection closes, the server drops its locks, and another
//! node takes each duty at its next round (every [`ROUND`]). The same
//! round writes the node's heartbeat and hands the mail and webhook rows
//! of a node gone silent to the live ones.
//!
//! On SQLite there is one node: it holds every duty ([`Duties::all`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::domain::Time;
use crate::outbound::Config;
use crate::store::nodes::NodeLink;
use crate::store::pg::Target;

/// How often a node beats and tries the duties it lacks.
pub const ROUND: Duration = Duration::from_secs(2);

/// The scheduler's duty.
pub const SCHEDULER: &str = "scheduler";
/// The detector rescan's duty.
pub const RESCAN: &str = "rescan";

/// The duty of polling `mailbox`.
pub fn imap(mailbox: &str) -> String {
    format!("imap:{mailbox}")
}

/// The duties this node holds now, for the tasks that do them.
#[derive(Clone)]
pub struct Duties {
    /// `None`: the only node, holding all.
    held: Option<watch::Receiver<Arc<BTreeSet<String>>>>,
}

impl Duties {
    /// One node: every duty is its own.
    pub fn all() -> Duties {
        Duties { held: None }
    }

    /// Whether this node holds `duty` now.
    pub fn holds(&self, duty: &str) -> bool {
        self.held.as_ref().is_none_or(|h| h.borrow().contains(duty))
    }

    /// Wait until the duties held change (never, with one node).
    pub async fn changed(&mut self) {
        match &mut self.held {
            Some(h) => {
                if h.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// The duties `cfg` asks of some node.
fn wanted(cfg: &Config) -> BTreeSet<String> {
    let mut w: BTreeSet<String> = crate::poller::accounts(cfg)
        .keys()
        .map(|m| imap(m))
        .collect();
    w.insert(SCHEDULER.to_owned());
    w.insert(RESCAN.to_owned());
    w
}

/// Start the node's round on a thread of its own (it holds a connection
/// for its locks); returns what the duty tasks read. Ends with `stop`.
pub fn start(
    target: Arc<Target>,
    config: watch::Receiver<Arc<Config>>,
    stop: CancellationToken,
) -> Duties {
    let (tx, rx) = watch::channel(Arc::new(BTreeSet::new()));
    let started = Time::now();
    let spawned = std::thread::Builder::new()
        .name("node-duties".into())
        .spawn(move || {
            let mut link: Option<NodeLink> = None;
            let mut held: BTreeSet<String> = BTreeSet::new();
            while !stop.is_cancelled() {
                let want = wanted(&config.borrow());
                match round(&target, &mut link, &mut held, &want, started) {
                    Ok(()) => {}
                    Err(e) => {
                        // The connection (and with it every lock) is gone
                        // or going: hold nothing until it is back.
                        crate::logging::log_error("node round failed; duties given up", &e);
                        link = None;
                        held.clear();
                    }
                }
                tx.send_if_modified(|h| {
                    if **h == held {
                        false
                    } else {
                        *h = Arc::new(held.clone());
                        true
                    }
                });
                std::thread::sleep(ROUND);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the node's duty thread; this node takes no duty");
    }
    Duties { held: Some(rx) }
}

fn round(
    target: &Target,
    link: &mut Option<NodeLink>,
    held: &mut BTreeSet<String>,
    want: &BTreeSet<String>,
    started: Time,
) -> Result<(), crate::store::Error> {
    if link.is_none() {
        *link = Some(NodeLink::open(target)?);
        held.clear();
    }
    let Some(l) = link.as_ref() else {
        return Ok(());
    };
    let now = Time::now();
    l.heartbeat(started, now)?;
    let taken = l.take_over(now)?;
    if taken > 0 {
        tracing::warn!(rows = taken, "rows claimed by a silent node queued again");
    }
    for duty in held.difference(want).cloned().collect::<Vec<_>>() {
        l.release_duty(&duty)?;
        held.remove(&duty);
        tracing::info!(duty = %duty, "duty released");
    }
    for duty in want.difference(held).cloned().collect::<Vec<_>>() {
        if l.try_duty(&duty, now)? {
            tracing::info!(duty = %duty, node = %target.node, "duty taken");
            held.insert(duty);
        }
    }
    Ok(())
}
