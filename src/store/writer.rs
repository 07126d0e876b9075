//! The one writer: a dedicated thread that group-commits.
//!
//! Sessions hand a [`Job`] (envelope, raw bytes, parsed message) to the
//! thread through a bounded channel and wait on a oneshot. The thread takes
//! whatever jobs are waiting (up to [`MAX_BATCH`]), runs the pipeline for each
//! inside one transaction, commits once (one fsync for the whole batch) and
//! only then answers every job. While it commits, new jobs queue up, so the
//! batch size grows with the load without any timer.
//!
//! Every other write of the server goes through the same thread as a task
//! ([`Writer::task`]): detector rescans, mailbox health, digests and the
//! IMAP UID state. Tasks are batched and group-committed with the
//! messages, so writes never compete for the database through a busy
//! timeout.
//!
//! Why this cannot lose or double-acknowledge mail: a job is answered `Ok`
//! only after `COMMIT` returned; if the commit fails every job of the batch
//! is answered `Err` (the sender gets a 4xx and retries, and the duplicate
//! check by Message-ID plus content hash absorbs a retry of something that
//! did get through). If the process dies mid-batch nothing of the batch was
//! acknowledged.

use std::any::Any;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{Notify, mpsc, oneshot};

use super::db::Connection;
use super::{Error, Tx};
use crate::domain::{Accepted, Envelope};
use crate::parse::ParsedMessage;
use crate::parse::classify::Class;

/// Why a message could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The store could not commit; the sender should retry later.
    #[error("store unavailable")]
    Store(#[from] super::Error),
    /// The server is shutting down or the writer is gone.
    #[error("spool is shutting down")]
    ShuttingDown,
}

impl SubmitError {
    /// Whether the sender should retry (SMTP 4xx, exit 75). Every spool error is
    /// transient today: input that is not mail is still stored raw and
    /// flagged, never refused here.
    pub fn is_transient(&self) -> bool {
        true
    }
}

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// Jobs that may wait for the writer; senders beyond this wait for room
/// (backpressure reaches the SMTP session, which simply answers later).
const QUEUE: usize = 4096;

/// One message waiting to be committed.
pub struct Job {
    /// Its envelope.
    pub envelope: Envelope,
    /// The bytes as accepted.
    pub raw: Vec<u8>,
    /// What parse made of them.
    pub parsed: ParsedMessage,
    /// Mail about mail, as classified beside the parse.
    pub class: Option<Class>,
    /// An IMAP poller's UID bookkeeping, applied in the same transaction
    /// right after the pipeline stored the message (see
    /// [`Writer::submit_with_sync`]).
    pub sync: Option<super::SyncUpdate>,
    reply: oneshot::Sender<Result<Accepted, Error>>,
    /// When it was handed to the writer: the pipeline's latency runs from
    /// here to the answer after the commit.
    submitted: std::time::Instant,
}

/// A task's closure: runs in the writer thread inside the batch
/// transaction (again, if the batch is rerun with savepoints).
type TaskFn = Box<dyn FnMut(&mut Tx<'_>) -> Result<Box<dyn Any + Send>, Error> + Send>;

/// What the writer thread takes: a message, or a task.
#[allow(clippy::large_enum_variant)] // nearly all work is a message: boxing it saves nothing
enum Work {
    Message(Job),
    Task {
        run: TaskFn,
        reply: oneshot::Sender<Result<Box<dyn Any + Send>, Error>>,
    },
}

/// A finished piece of work, answered after the commit.
enum Done {
    Accepted(Accepted),
    Value(Box<dyn Any + Send>),
}

impl Work {
    fn octets(&self) -> usize {
        match self {
            Work::Message(job) => job.raw.len(),
            Work::Task { .. } => 0,
        }
    }

    fn answer(self, result: Result<Done, Error>) {
        // A closed receiver means the caller went away; what was committed
        // stays committed (a resent message dedupes).
        match self {
            Work::Message(job) => {
                let result = result.and_then(|d| match d {
                    Done::Accepted(a) => Ok(a),
                    Done::Value(_) => Err(Error::Invariant(
                        "a message job answered with a value".into(),
                    )),
                });
                let outcome = match &result {
                    Ok(a) if a.duplicate => "duplicate",
                    Ok(_) => "stored",
                    Err(_) => "failed",
                };
                let source = job.envelope.source.as_str();
                metrics::counter!("postdesk_messages_total", "source" => source, "outcome" => outcome)
                    .increment(1);
                metrics::histogram!("postdesk_pipeline_duration_seconds", "source" => source)
                    .record(job.submitted.elapsed().as_secs_f64());
                let _ = job.reply.send(result);
            }
            Work::Task { reply, .. } => {
                let _ = reply.send(result.and_then(|d| match d {
                    Done::Value(v) => Ok(v),
                    Done::Accepted(_) => {
                        Err(Error::Invariant("a task answered as a message".into()))
                    }
                }));
            }
        }
    }
}

/// A job queued by [`Writer::submit_with_sync`]: resolves once its batch
/// committed.
pub struct Pending {
    rx: oneshot::Receiver<Result<Accepted, Error>>,
}

impl Pending {
    /// Wait for the commit of the batch holding the job.
    ///
    /// # Errors
    ///
    /// As [`Writer::submit`].
    pub async fn committed(self) -> Result<Accepted, SubmitError> {
        match self.rx.await {
            Ok(r) => r.map_err(SubmitError::Store),
            Err(_) => Err(SubmitError::ShuttingDown),
        }
    }
}

/// What the writer runs for each job, inside the batch's transaction.
pub type Handler = Box<dyn FnMut(&mut Tx<'_>, &Job) -> Result<Accepted, Error> + Send>;

/// Handle for submitting jobs (cheap to clone).
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Work>,
}

/// The writer thread; join it after every [`Writer`] is dropped to flush.
pub struct WriterThread {
    handle: JoinHandle<()>,
    checkpointer: JoinHandle<()>,
}

impl WriterThread {
    /// Wait until the writer has committed everything submitted and exited.
    /// It exits once every [`Writer`] handle is dropped.
    pub fn join(self) {
        if self.handle.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
        if self.checkpointer.join().is_err() {
            tracing::error!("store checkpoint thread panicked");
        }
    }
}

impl Writer {
    /// Open the database in `data_dir` and start the writer thread running
    /// `handler` for each job.
    ///
    /// # Errors
    ///
    /// When the database cannot be opened or migrated.
    pub fn start(
        at: impl Into<super::Location>,
        handler: Handler,
    ) -> Result<(Writer, WriterThread), Error> {
        Self::start_waking(at, handler, None)
    }

    /// [`Writer::start`], waking `mail_queued` after each commit that
    /// queued outbox rows (the delivery worker), and only then: a commit
    /// that queued nothing gives the worker nothing to claim.
    ///
    /// # Errors
    ///
    /// When the database cannot be opened or migrated.
    pub fn start_waking(
        at: impl Into<super::Location>,
        handler: Handler,
        mail_queued: Option<Arc<Notify>>,
    ) -> Result<(Writer, WriterThread), Error> {
        let at = at.into();
        let conn = super::open_at(&at)?;
        // A checkpoint thread (below) copies the WAL back into the database
        // while the writer works. The writer keeps its own autocheckpoint
        // (every 4000 frames) all the same: a checkpoint that runs beside a
        // busy writer never reaches the end of the WAL, so the WAL would
        // never restart and would grow without bound (seen: 3 GB after
        // 100,000 messages, and the rate falling with it). The writer's
        // checkpoint runs between its transactions, finds most frames already
        // copied, finishes, and lets the next transaction restart the WAL.
        // PostgreSQL checkpoints by itself.
        let checkpoint_conn = match &at {
            super::Location::Sqlite(dir) => Some(super::connect_lite(&super::db_path(dir))?),
            super::Location::Postgres(_) => None,
        };
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let spawn_err = |source| Error::Io {
            path: "store writer thread".into(),
            source,
        };
        let checkpointer = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                if let Some(conn) = checkpoint_conn {
                    checkpoint_loop(conn, stop_rx);
                }
            })
            .map_err(spawn_err)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                run(conn, rx, handler, mail_queued.as_deref());
                // Dropping the sender tells the checkpointer to finish.
                drop(stop_tx);
            })
            .map_err(spawn_err)?;
        Ok((
            Writer { tx },
            WriterThread {
                handle,
                checkpointer,
            },
        ))
    }

    /// Submit one message and wait until the batch holding it is committed.
    ///
    /// # Errors
    ///
    /// [`SubmitError::ShuttingDown`] when the writer is gone,
    /// [`SubmitError::Store`] when the commit failed.
    pub async fn submit(
        &self,
        envelope: Envelope,
        raw: Vec<u8>,
        parsed: ParsedMessage,
        class: Option<Class>,
    ) -> Result<Accepted, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Work::Message(Job {
                envelope,
                raw,
                parsed,
                class,
                sync: None,
                reply,
                submitted: std::time::Instant::now(),
            }))
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        match rx.await {
            Ok(r) => r.map_err(SubmitError::Store),
            Err(_) => Err(SubmitError::ShuttingDown),
        }
    }

    /// Queue one message fetched by an IMAP poller, with the UID state to
    /// record in the same transaction; returns once it is queued, so a
    /// poller can queue a whole fetch in UID order and then wait for the
    /// commits. Jobs leave the queue in the order they entered it.
    ///
    /// # Errors
    ///
    /// [`SubmitError::ShuttingDown`] when the writer is gone.
    pub async fn submit_with_sync(
        &self,
        envelope: Envelope,
        raw: Vec<u8>,
        parsed: ParsedMessage,
        class: Option<Class>,
        sync: super::SyncUpdate,
    ) -> Result<Pending, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Work::Message(Job {
                envelope,
                raw,
                parsed,
                class,
                sync: Some(sync),
                reply,
                submitted: std::time::Instant::now(),
            }))
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        Ok(Pending { rx })
    }

    /// Run `f` in the writer thread inside a batch transaction and return
    /// its value once that batch committed. `f` may run twice when its batch
    /// is rerun with savepoints (the first run's writes rolled back), so it
    /// must not act outside the transaction. A failing `f` is rolled back
    /// alone; the batch commits.
    ///
    /// # Errors
    ///
    /// `f`'s error, the commit's, or [`Error::WriterGone`].
    pub async fn task<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Tx<'_>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let (work, rx) = task_work(f);
        self.tx.send(work).await.map_err(|_| Error::WriterGone)?;
        task_result(rx.await)
    }

    /// [`Writer::task`] from a thread that may block (never from an async
    /// task).
    ///
    /// # Errors
    ///
    /// As [`Writer::task`].
    pub fn task_blocking<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Tx<'_>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let (work, rx) = task_work(f);
        self.tx.blocking_send(work).map_err(|_| Error::WriterGone)?;
        task_result(rx.blocking_recv())
    }
}

type TaskReply = oneshot::Receiver<Result<Box<dyn Any + Send>, Error>>;

fn task_work<T: Send + 'static>(
    mut f: impl FnMut(&mut Tx<'_>) -> Result<T, Error> + Send + 'static,
) -> (Work, TaskReply) {
    let (reply, rx) = oneshot::channel();
    let run: TaskFn = Box::new(move |tx| f(tx).map(|v| Box::new(v) as Box<dyn Any + Send>));
    (Work::Task { run, reply }, rx)
}

fn task_result<T: 'static>(
    r: Result<Result<Box<dyn Any + Send>, Error>, oneshot::error::RecvError>,
) -> Result<T, Error> {
    match r {
        Ok(Ok(v)) => v
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| Error::Invariant("a task's value of another type".into())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::WriterGone),
    }
}

/// Write through the store's one writer, or (outside the server) through a
/// store of one's own: what rescans and digests are written with.
pub trait Writes {
    /// Run `f` in a transaction and commit it.
    ///
    /// # Errors
    ///
    /// `f`'s error, or the commit's.
    fn write<T: Send + 'static>(
        &mut self,
        f: impl FnMut(&mut Tx<'_>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error>;
}

impl Writes for super::Store {
    fn write<T: Send + 'static>(
        &mut self,
        f: impl FnMut(&mut Tx<'_>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        super::Store::write(self, f)
    }
}

impl Writes for Writer {
    fn write<T: Send + 'static>(
        &mut self,
        f: impl FnMut(&mut Tx<'_>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        self.task_blocking(f)
    }
}

/// How many times a batch that lost to another node's is run again.
const SHARED_RETRIES: u64 = 5;

/// How often the WAL is copied back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// A WAL file larger than this, once wholly copied back, is truncated.
const WAL_KEEP: u64 = 32 * 1024 * 1024;

/// Copy the WAL into the database file every [`CHECKPOINT_EVERY`] with a
/// PASSIVE checkpoint, which never blocks the writer and leaves the writer's
/// own autocheckpoint little to do; a TRUNCATE one at the end, or when a
/// batch of large messages left a WAL over [`WAL_KEEP`] that is wholly
/// copied back, leaves a small WAL behind (that one waits for the writer,
/// which then has nothing left to copy). Durability does not depend on
/// this: a committed frame in the WAL is already on disk.
fn checkpoint_loop(conn: rusqlite::Connection, stop: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    let wal = conn.path().map(|p| format!("{p}-wal"));
    // Ends when the writer drops its sender (or sends, which it never does).
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        // (busy, frames in the WAL, frames copied back)
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match done {
            Ok((0, log, copied)) if log == copied => {
                let size = wal
                    .as_deref()
                    .and_then(|w| std::fs::metadata(w).ok())
                    .map_or(0, |m| m.len());
                if size > WAL_KEEP {
                    match conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
                        Ok(()) => tracing::debug!(size, "large wal truncated"),
                        Err(e) => tracing::warn!(error = %e, "wal truncation failed"),
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "wal checkpoint failed"),
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "final wal checkpoint failed");
    }
}

fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Work>,
    mut handler: Handler,
    mail_queued: Option<&Notify>,
) {
    let mut batch: Vec<Work> = Vec::with_capacity(MAX_BATCH);
    let mut results: Vec<Result<Done, Error>> = Vec::with_capacity(MAX_BATCH);
    // blocking_recv returns None once every Writer is dropped and the queue
    // is empty: that is the drain on shutdown.
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let batch_octets: usize = batch.iter().map(Work::octets).sum();
        let mut outcome = commit_batch(&mut conn, &mut batch, &mut results, &mut handler);
        // On a shared store a batch can lose to another node's (a deadlock
        // on thread keys, a unique key inserted at the same moment): run it
        // again, a few times, before answering with a temporary failure.
        let mut again = 0;
        while let Err(e) = &outcome
            && conn.is_pg()
            && e.is_transient()
            && again < SHARED_RETRIES
        {
            again += 1;
            tracing::debug!(error = %e, again, "batch lost to another node; running it again");
            std::thread::sleep(std::time::Duration::from_millis(5 * again));
            outcome = commit_batch(&mut conn, &mut batch, &mut results, &mut handler);
        }
        match outcome {
            Ok(queued) => {
                tracing::debug!(size = batch.len(), "batch committed");
                metrics::histogram!("postdesk_writer_batch_size").record(batch.len() as f64);
                if queued && let Some(n) = mail_queued {
                    // notify_one keeps a permit when the worker is busy, so
                    // a wake-up is never lost between two waits.
                    n.notify_one();
                }
                for (work, result) in batch.drain(..).zip(results.drain(..)) {
                    work.answer(result);
                }
            }
            Err(e) => {
                crate::logging::log_error("batch commit failed", &e);
                results.clear();
                for work in batch.drain(..) {
                    work.answer(Err(copy_err(&e)));
                }
            }
        }
        // The batch's messages, parses and rendered mail are dropped by
        // now; after large ones, give the memory back.
        if crate::memory::release_after(batch_octets) {
            tracing::debug!(octets = batch_octets, "memory released after a large batch");
        }
    }
    tracing::info!("store writer stopped");
}

fn commit_batch(
    conn: &mut Connection,
    batch: &mut [Work],
    results: &mut Vec<Result<Done, Error>>,
    handler: &mut Handler,
) -> Result<bool, Error> {
    // Fast path: no savepoints. If any job failed part-way, its partial
    // writes cannot be undone alone, so the whole transaction is rolled back
    // (nothing of it was acknowledged) and the batch rerun with a savepoint
    // per job, where a failure is contained and handled by the pipeline.
    if let Some(queued) = run_pass(conn, batch, results, handler, false)? {
        return Ok(queued);
    }
    tracing::debug!(size = batch.len(), "batch rerun with savepoints");
    Ok(run_pass(conn, batch, results, handler, true)?.unwrap_or(false))
}

/// One attempt at the batch: whether it queued mail once committed, `None`
/// when it was rolled back because an optimistic job failed part-way.
fn run_pass(
    conn: &mut Connection,
    batch: &mut [Work],
    results: &mut Vec<Result<Done, Error>>,
    handler: &mut Handler,
    savepoints: bool,
) -> Result<Option<bool>, Error> {
    results.clear();
    let txn = conn
        .transaction_with_behavior(super::db::Begin::Immediate)
        .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
    let (poisoned, queued) = {
        let mut tx = if savepoints {
            Tx::new(&txn)
        } else {
            Tx::optimistic(&txn)
        };
        for work in batch.iter_mut() {
            let result = match work {
                Work::Message(job) => run_message(&mut tx, job, handler).map(Done::Accepted),
                Work::Task { run, .. } => tx.attempt(|tx| run(tx)).map(Done::Value),
            };
            results.push(result);
            if tx.is_poisoned() {
                break;
            }
        }
        if !tx.is_poisoned() {
            tx.flush_search()?;
        }
        (tx.is_poisoned(), tx.queued_mail.get())
    };
    if poisoned {
        txn.rollback().map_err(|e| Error::sql("ROLLBACK", e))?;
        return Ok(None);
    }
    // A job lost to another node (see `SHARED_RETRIES`): the batch runs
    // again whole rather than answer that sender with a failure.
    if savepoints
        && txn.is_pg()
        && let Some(Err(e)) = results
            .iter()
            .find(|r| r.as_ref().is_err_and(Error::is_transient))
    {
        let e = copy_err(e);
        txn.rollback().map_err(|e| Error::sql("ROLLBACK", e))?;
        return Err(e);
    }
    txn.commit().map_err(|e| Error::sql("COMMIT", e))?;
    Ok(Some(queued))
}

/// One message: the pipeline, then its IMAP UID state.
fn run_message(tx: &mut Tx<'_>, job: &Job, handler: &mut Handler) -> Result<Accepted, Error> {
    let result = handler(tx, job);
    // The UID state moves only with a stored message, in its transaction:
    // a crash before COMMIT loses both, after it keeps both, so the message
    // is fetched again or not at all.
    if let (Ok(_), Some(sync)) = (&result, &job.sync)
        && let Err(e) = tx.attempt(|tx| tx.advance_sync(sync))
        && !tx.is_poisoned()
    {
        // Savepoint pass: the message stands; the state stays behind it
        // and the next fetch dedupes the message.
        crate::logging::log_error("recording the imap sync state failed", &e);
    }
    result
}

/// A per-job copy of a batch failure (driver errors are not Clone).
fn copy_err(e: &Error) -> Error {
    match e {
        Error::Sql { statement, source } => Error::Sql {
            statement: statement.clone(),
            source: source.copy(),
        },
        _ => Error::WriterGone,
    }
}
