//! The delivery worker: claim due outbox rows, send them, mark them.
//!
//! One tokio task, tracked by the server's [`crate::shutdown::Shutdown`].
//! Its loop, each turn:
//!
//! 1. in one store transaction (off the runtime, on its own connection):
//!    mark the sends that finished since the last turn (sent, retry at a
//!    backoff time, or failed, with the failure's event, suppression,
//!    agent notice and admin alert committed with the mark), then claim as
//!    many due rows as there are free send slots (`max_in_flight`);
//! 2. start one send per claimed row (a `JoinSet`: bounded by the claim);
//! 3. wait for whichever comes first: a send finishing, a nudge (the
//!    store's writer wakes the worker after each commit that queued mail),
//!    the next row falling due, the poll interval, or shutdown.
//!
//! Why this neither loses nor doubles mail: a row is `sending` from its
//! claim until its mark, and a mark is only written after the send
//! returned. If the process dies in between, the row is still `sending` at
//! the next start and [`crate::store::Outbox::recover`] queues it again:
//! the mail is sent again with the same bytes and Message-ID. So a crash
//! between claim and send loses nothing; a crash between a completed send
//! and its mark may send the mail twice, and the receiver can tell the
//! copies apart by their identical Message-ID (the README says so). The
//! Maildir fallback overwrites the same file, so there it is exactly once.
//!
//! On shutdown the worker stops claiming, waits for the sends in flight (up
//! to [`STOP_DEADLINE`]), marks them and exits; sends cut by the deadline
//! stay `sending` and are recovered at the next start.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Config;
use super::smarthost::{Envelope as SendEnvelope, SendError, Transport};
use super::{Failure, permanent_failure};
use crate::domain::Time;
use crate::store::{self, Claimed, Outbox, OutboxId, Settlement};

/// How long sends in flight get to finish after shutdown begins.
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// What one send task reports back.
struct Done {
    row: Claimed,
    result: Result<(), SendError>,
}

/// The current time, in milliseconds since the Unix epoch (as the
/// outbox's due times).
fn now_ms() -> i64 {
    Time::now().millis()
}

/// How many claimed rows wait for a free send slot, per slot: claims run
/// ahead of the sends so that a store transaction (one fsync) serves many
/// sends, and sends go on while it runs.
const PREFETCH: usize = 4;

/// The result of one store turn, with the store handed back.
type Turn = (Outbox, Result<(Vec<Claimed>, Option<i64>), store::Error>);

/// Start one store turn off the runtime: mark `done`, then claim up to
/// `limit` due rows. Rows in `release` were claimed but never sent (shut
/// down): they are queued again as they were.
fn start_turn(
    mut outbox: Outbox,
    cfg: Arc<Config>,
    done: &[Done],
    release: &[Claimed],
    limit: usize,
) -> tokio::task::JoinHandle<Turn> {
    let mut settled = settle(&cfg, done);
    settled.extend(release.iter().map(|r| (r.id, Settlement::Unclaimed)));
    let failures: HashMap<OutboxId, FailureInfo> = done
        .iter()
        .filter_map(|d| Some((d.row.id, FailureInfo::new(&d.row, d.result.as_ref().err()?))))
        .collect();
    tokio::task::spawn_blocking(move || {
        let result = outbox.settle_and_claim(
            &settled,
            |tx, id, error| match failures.get(&id) {
                Some(f) => permanent_failure(
                    tx,
                    &cfg,
                    &Failure {
                        ticket: f.ticket,
                        kind: &f.kind,
                        address: &f.rcpt,
                        status: &f.status,
                        diagnostic: error,
                        is_recipient_failure: f.is_recipient_failure,
                        // An alert about a failed alert could loop.
                        alert_admins: f.kind != "alert",
                        source: f.source,
                    },
                    Time::now(),
                ),
                None => Ok(()),
            },
            limit,
            Time::now(),
        );
        (outbox, result)
    })
}

/// Run the delivery worker until `stop` is cancelled.
pub async fn run(
    mut outbox: Outbox,
    config: watch::Receiver<Arc<Config>>,
    data_dir: PathBuf,
    notify: Arc<Notify>,
    stop: CancellationToken,
) {
    recover(&mut outbox);
    let mut cfg = config.borrow().clone();
    let mut transport = transport_for(&cfg, &data_dir);
    // Sends in flight (bounded by `max_in_flight`); the store turn running;
    // the rows on either side of them.
    let mut sending: JoinSet<Done> = JoinSet::new();
    let mut turn: Option<tokio::task::JoinHandle<Turn>> = None;
    let mut rows = Rows::new(outbox);
    let mut stopping = false;
    let mut stop_deadline = tokio::time::Instant::now();

    loop {
        // A reloaded configuration applies to the next sends.
        let latest = config.borrow().clone();
        if !Arc::ptr_eq(&latest, &cfg) {
            cfg = latest;
            transport = transport_for(&cfg, &data_dir);
        }
        let slots = cfg.outbound.max_in_flight;
        if !stopping {
            start_sends(&mut sending, &mut rows.ready, slots, &cfg, &transport);
        }
        if let Some(at) = rows.next_due
            && at <= now_ms()
            && !stopping
        {
            rows.want_claim = true;
        }
        let room = (slots * PREFETCH).saturating_sub(rows.ready.len() + sending.len());
        // One store turn at a time: mark what finished, claim what is due.
        if turn.is_none() {
            turn = rows.begin_turn(&cfg, stopping, room);
        }
        if stopping
            && turn.is_none()
            && sending.is_empty()
            && rows.finished.is_empty()
            && rows.ready.is_empty()
        {
            break;
        }
        let wake_in = wake_in(rows.next_due, room, cfg.outbound.poll);
        tokio::select! {
            biased;
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                stop_deadline = tokio::time::Instant::now() + STOP_DEADLINE;
                tracing::info!(in_flight = sending.len(), "outbox stops claiming");
            }
            joined = async { turn.as_mut().expect("guarded by the condition").await }, if turn.is_some() => {
                turn = None;
                if !rows.turned(joined) {
                    return;
                }
            }
            Some(done) = sending.join_next(), if !sending.is_empty() => {
                for done in std::iter::once(done).chain(std::iter::from_fn(|| sending.try_join_next())) {
                    match done {
                        Ok(d) => rows.finished.push(d),
                        Err(e) => tracing::error!(error = %e, "send task failed; its row is recovered at the next start"),
                    }
                }
            }
            _ = notify.notified(), if !stopping => rows.want_claim = true,
            _ = tokio::time::sleep(wake_in), if !stopping => rows.want_claim = true,
            _ = tokio::time::sleep_until(stop_deadline), if stopping => {
                tracing::warn!(cut = sending.len(), "outbox stop deadline passed; unfinished sends are recovered at the next start");
                sending.abort_all();
                break;
            }
        }
    }
    tracing::info!("outbox worker stopped");
}

/// Queue again the rows a crash left `sending`.
fn recover(outbox: &mut Outbox) {
    match outbox.recover() {
        Ok(0) => {}
        Ok(n) => tracing::warn!(rows = n, "outbox rows cut by a crash queued again"),
        Err(e) => crate::logging::log_error("outbox recovery failed", &e),
    }
}

/// The transport `cfg` sends with.
fn transport_for(cfg: &Config, data_dir: &std::path::Path) -> Arc<Transport> {
    Arc::new(Transport::from_settings(
        &cfg.outbound,
        &cfg.server.hostname,
        data_dir,
    ))
}

/// Start a send for each ready row while there are free send slots.
fn start_sends(
    sending: &mut JoinSet<Done>,
    ready: &mut VecDeque<Claimed>,
    slots: usize,
    cfg: &Config,
    transport: &Arc<Transport>,
) {
    while sending.len() < slots {
        let Some(row) = ready.pop_front() else { break };
        let transport = transport.clone();
        let dkim = cfg.outbound.dkim.as_ref().map(|d| d.signer.clone());
        sending.spawn(async move {
            let result = send(&transport, dkim.as_deref(), &row).await;
            Done { row, result }
        });
    }
}

/// How long the loop may wait: until the next row falls due, at most the
/// poll interval. With no room for more claims, a finishing send wakes the
/// loop; waking for a due row then would only spin.
fn wake_in(next_due: Option<i64>, room: usize, poll: Duration) -> Duration {
    match next_due {
        Some(at) if room > 0 => {
            Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(poll)
        }
        _ => poll,
    }
}

/// The rows on either side of the sends, and the store between turns.
struct Rows {
    /// Claimed rows not yet sending.
    ready: VecDeque<Claimed>,
    /// Finished sends not yet marked.
    finished: Vec<Done>,
    /// Finished sends the store turn running is marking.
    marking: Vec<Done>,
    /// The store, while no turn has it.
    store: Option<Outbox>,
    /// Whether the next turn claims due rows.
    want_claim: bool,
    /// How many rows the last turn asked for.
    asked: usize,
    /// When the next queued row falls due, Unix milliseconds.
    next_due: Option<i64>,
}

impl Rows {
    /// Nothing claimed or finished yet; the first turn claims.
    fn new(outbox: Outbox) -> Rows {
        Rows {
            ready: VecDeque::new(),
            finished: Vec::new(),
            marking: Vec::new(),
            store: Some(outbox),
            want_claim: true,
            asked: 0,
            next_due: None,
        }
    }

    /// Start a store turn when there is something to mark, claim or
    /// release (the ready rows, once stopping), handing it the store.
    fn begin_turn(
        &mut self,
        cfg: &Arc<Config>,
        stopping: bool,
        room: usize,
    ) -> Option<tokio::task::JoinHandle<Turn>> {
        let outbox = self.store.take()?;
        let limit = if stopping || !self.want_claim {
            0
        } else {
            room
        };
        let release: Vec<Claimed> = if stopping {
            self.ready.drain(..).collect()
        } else {
            Vec::new()
        };
        if self.finished.is_empty() && limit == 0 && release.is_empty() {
            self.store = Some(outbox);
            return None;
        }
        self.marking = std::mem::take(&mut self.finished);
        let turn = start_turn(outbox, cfg.clone(), &self.marking, &release, limit);
        self.asked = limit;
        if limit > 0 {
            self.want_claim = false;
        }
        Some(turn)
    }

    /// Take back the store from a finished turn: log the marks and queue
    /// the claimed rows, or, when its transaction failed, mark them again
    /// next turn. `false` when the store task itself failed: the worker
    /// stops.
    fn turned(&mut self, joined: Result<Turn, tokio::task::JoinError>) -> bool {
        match joined {
            Ok((outbox, Ok((claimed, due)))) => {
                self.store = Some(outbox);
                for d in self.marking.drain(..) {
                    log_result(&d);
                }
                // A full claim may have left more due rows behind.
                self.want_claim |= self.asked > 0 && claimed.len() >= self.asked;
                self.ready.extend(claimed);
                self.next_due = due;
            }
            Ok((outbox, Err(e))) => {
                // Nothing was committed: mark these again next turn.
                crate::logging::log_error("outbox transaction failed, will retry", &e);
                self.store = Some(outbox);
                self.finished.append(&mut self.marking);
                self.next_due = Some(now_ms() + 200);
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox store task failed; the worker stops and its rows are recovered at the next start");
                return false;
            }
        }
        true
    }
}

/// What a failure handler needs about the failed row.
struct FailureInfo {
    ticket: Option<crate::domain::TicketId>,
    kind: String,
    rcpt: String,
    status: String,
    is_recipient_failure: bool,
    source: &'static str,
}

impl FailureInfo {
    fn new(row: &Claimed, e: &SendError) -> FailureInfo {
        FailureInfo {
            ticket: row.ticket,
            kind: row.kind.clone(),
            rcpt: row.rcpt_to.clone(),
            status: e.status_code(),
            is_recipient_failure: e.is_recipient_failure(),
            source: if e.is_transient() {
                "retries"
            } else {
                "smarthost"
            },
        }
    }
}

/// The marks for finished sends: sent; retry after the backoff; or failed
/// (a permanent error, or a transient one after `max_attempts`).
fn settle(cfg: &Config, finished: &[Done]) -> Vec<(OutboxId, Settlement)> {
    finished
        .iter()
        .map(|d| {
            let outcome = Settlement::of_attempt(
                d.result
                    .as_ref()
                    .err()
                    .map(|e| (e.is_transient(), crate::logging::chain(e))),
                d.row.attempts,
                cfg.outbound.max_attempts,
                cfg.outbound.backoff(d.row.attempts),
                now_ms(),
            );
            (d.row.id, outcome)
        })
        .collect()
}

/// Log one finished send, once, where its outcome was decided, and count
/// it (`postdesk_outbox_sends_total` by outcome: sent, retry, failed).
fn log_result(d: &Done) {
    let outcome = match &d.result {
        Ok(()) => "sent",
        Err(e) if e.is_transient() => "retry",
        Err(_) => "failed",
    };
    metrics::counter!("postdesk_outbox_sends_total", "outcome" => outcome).increment(1);
    match &d.result {
        Ok(()) => tracing::info!(
            outbox = d.row.id.0,
            kind = %d.row.kind,
            to = %d.row.rcpt_to,
            message_id = %d.row.message_id,
            attempt = d.row.attempts,
            "mail sent"
        ),
        Err(e) if e.is_transient() => tracing::warn!(
            outbox = d.row.id.0,
            to = %d.row.rcpt_to,
            attempt = d.row.attempts,
            error = %crate::logging::chain(e),
            "send failed, retry scheduled"
        ),
        Err(e) => tracing::warn!(
            outbox = d.row.id.0,
            to = %d.row.rcpt_to,
            error = %crate::logging::chain(e),
            "send failed permanently"
        ),
    }
}

/// Sign (when DKIM is on) and send one claimed row.
async fn send(
    transport: &Transport,
    dkim: Option<&super::dkim::Signer>,
    row: &Claimed,
) -> Result<(), SendError> {
    let signed;
    let raw: &[u8] = match dkim {
        Some(signer) => {
            signed = super::dkim::sign(signer, &row.raw).map_err(SendError::Dkim)?;
            &signed
        }
        None => &row.raw,
    };
    transport
        .send(&SendEnvelope {
            outbox_id: row.id.0,
            mail_from: &row.mail_from,
            rcpt_to: &row.rcpt_to,
            raw,
        })
        .await
}

/// Open the outbox for the worker.
///
/// # Errors
///
/// When the database cannot be opened.
pub fn open(at: &store::Location) -> Result<Outbox, store::Error> {
    Outbox::open(at)
}
