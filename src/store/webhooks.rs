//! Store verbs of the webhooks: the subscriptions every transaction fans
//! events out to, the delivery rows, the worker's connection
//! ([`WebhookQueue`]) and the reads behind `postdesk webhooks`.
//!
//! Promise: a delivery row is written by [`Tx::record_event`] (through
//! [`Tx::publish`]) inside the transaction of the event, as an outbox row
//! is, so a committed event always has its deliveries queued and a
//! rolled-back one never does. A row is `sending` from its claim until its
//! mark; a row still `sending` when the worker starts was cut by a crash and
//! [`WebhookQueue::recover`] queues it again with the same event id.
//!
//! The subscriptions are a process-wide value ([`subscribe`]) rather than a
//! field of [`Tx`]: every writer of events (the writer thread, the outbox
//! worker's marks, the CLI's admin verbs) makes its `Tx` from a bare
//! connection, and all of them must publish. `serve` sets it at start and
//! on each reload; a CLI command sets it from the configuration it loaded.

use std::sync::{Arc, RwLock};

use super::db::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Error, RetryOutcome, Settlement, Store, Tx};
use crate::domain::{TicketId, Time};

/// One `[[webhook]]`, as the store needs it to queue deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Where deliveries are POSTed.
    pub url: String,
    /// `json` or `slack`.
    pub format: String,
    /// Public event names it takes.
    pub events: Vec<String>,
    /// Only tickets in these queues (lower-case); empty: all.
    pub queues: Vec<String>,
    /// Only tickets with these priorities (lower-case); empty: all.
    pub priorities: Vec<String>,
    /// Only tickets that came in through these client domains
    /// (lower-case); empty: all.
    pub client_domains: Vec<String>,
}

/// The subscriptions in force in this process.
static SUBSCRIPTIONS: RwLock<Option<Arc<Vec<Subscription>>>> = RwLock::new(None);

/// Make `subs` the subscriptions every later transaction of this process
/// publishes to.
pub fn subscribe(subs: Vec<Subscription>) {
    let mut slot = SUBSCRIPTIONS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *slot = (!subs.is_empty()).then(|| Arc::new(subs));
}

fn subscriptions() -> Option<Arc<Vec<Subscription>>> {
    SUBSCRIPTIONS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The ticket as an event leaves it: what a delivery's `data` is made of.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TicketSnapshot {
    /// Number (unformatted).
    pub number: i64,
    /// Subject.
    pub subject: String,
    /// Priority.
    pub priority: String,
    /// Status.
    pub status: String,
    /// Queue.
    pub queue: String,
    /// Assigned agent, empty if none.
    pub assignee: String,
    /// Requester address, empty if none.
    pub requester: String,
    /// When it was opened, Unix seconds.
    pub created_at: i64,
    /// The internal event kind.
    pub kind: String,
    /// The rule or actor behind the event.
    pub cause: String,
    /// The event's details.
    pub detail: serde_json::Value,
}

impl Tx<'_> {
    /// Queue one delivery per subscription that takes this event: called by
    /// [`Tx::record_event`] for every event, so nothing else writes
    /// delivery rows. Events without a ticket, and kinds that are not
    /// published (see [`crate::domain::webhook`]), queue nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub(super) fn publish(&self, e: &super::NewEvent<'_>) -> Result<(), Error> {
        let Some(subs) = subscriptions() else {
            return Ok(());
        };
        let Some(ticket) = e.ticket else {
            return Ok(());
        };
        let Some(event) = crate::domain::webhook::public_event(e.kind, e.detail) else {
            return Ok(());
        };
        if !subs.iter().any(|s| s.events.iter().any(|n| n == event)) {
            return Ok(());
        }
        let Some((snap, inbound, messages)) = self.snapshot(ticket, e)? else {
            return Ok(());
        };
        // A new ticket's first message is its `ticket.created`, not a
        // comment on it.
        if e.kind == "message_added" && messages <= 1 {
            return Ok(());
        }
        let domain = inbound
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let data = serde_json::to_string(&snap)
            .map_err(|err| Error::Invariant(format!("webhook data: {err}")))?;
        const Q: &str = "INSERT INTO webhook_deliveries (event, source_kind, url, format,
                ticket_id, data, created_at, next_attempt_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let takes = |s: &Subscription| {
            let within = |list: &[String], v: &str| {
                list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(v))
            };
            s.events.iter().any(|n| n == event)
                && within(&s.queues, &snap.queue)
                && within(&s.priorities, &snap.priority)
                && within(&s.client_domains, &domain)
        };
        for s in subs.iter().filter(|s| takes(s)) {
            st.execute(params![
                event,
                e.kind,
                s.url,
                s.format,
                ticket.0,
                data,
                e.now.secs(),
                e.now.millis()
            ])
            .map_err(|err| Error::sql(Q, err))?;
        }
        Ok(())
    }

    /// `ticket` as it is now, its inbound address and its message count.
    fn snapshot(
        &self,
        ticket: TicketId,
        e: &super::NewEvent<'_>,
    ) -> Result<Option<(TicketSnapshot, String, i64)>, Error> {
        const Q: &str = "SELECT t.number, t.subject, t.priority, t.status, t.queue,
                COALESCE(t.assignee, ''), COALESCE(c.address, ''), t.created_at,
                t.inbound_address, t.message_count
            FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id WHERE t.id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row([ticket.0], |r| {
            Ok((
                TicketSnapshot {
                    number: r.get(0)?,
                    subject: r.get(1)?,
                    priority: r.get(2)?,
                    status: r.get(3)?,
                    queue: r.get(4)?,
                    assignee: r.get(5)?,
                    requester: r.get(6)?,
                    created_at: r.get(7)?,
                    kind: e.kind.to_owned(),
                    cause: e.cause.to_owned(),
                    detail: serde_json::from_str(e.detail).unwrap_or(serde_json::Value::Null),
                },
                r.get(8)?,
                r.get(9)?,
            ))
        })
        .optional()
        .map_err(|e| Error::sql(Q, e))
    }
}

/// One claimed delivery: what the worker POSTs.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// The payload's `id`: the same on every attempt.
    pub event_id: String,
    /// Public event name.
    pub event: String,
    /// Where to POST.
    pub url: String,
    /// `json` or `slack`.
    pub format: String,
    /// The ticket.
    pub ticket: Option<TicketId>,
    /// The ticket as the event left it.
    pub data: TicketSnapshot,
    /// When the event happened, Unix seconds.
    pub created_at: i64,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// The webhook worker's connection.
pub struct WebhookQueue {
    conn: Connection,
}

impl WebhookQueue {
    /// Open the delivery queue of the database in `data_dir`.
    ///
    /// # Errors
    ///
    /// When the database cannot be opened or migrated.
    pub fn open(at: impl Into<super::Location>) -> Result<WebhookQueue, Error> {
        let conn = super::open_at(&at.into())?;
        // As the outbox's marks: a power loss may lose the newest marks,
        // and those events are POSTed again with their id.
        if conn.lite().is_some() {
            conn.execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(|e| Error::sql("PRAGMA synchronous = NORMAL", e))?;
        }
        Ok(WebhookQueue { conn })
    }

    /// Queue again every row left `sending` by a process that died between
    /// its claim and its mark; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn recover(&mut self) -> Result<usize, Error> {
        super::outbox::recover_claims(&self.conn, "webhook_deliveries")
    }

    /// In one transaction: record `settled` (calling `on_failed` for each
    /// row that failed for good, so its event and alert commit with the
    /// mark), then claim up to `limit` rows due at `now`. Returns the
    /// claimed rows and when the next queued row is due (Unix ms).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`], or `on_failed`'s error; nothing is committed then.
    pub fn settle_and_claim<F>(
        &mut self,
        settled: &[(i64, Settlement)],
        mut on_failed: F,
        limit: usize,
        now: Time,
    ) -> Result<(Vec<Delivery>, Option<i64>), Error>
    where
        F: FnMut(&Tx<'_>, i64, Option<TicketId>, &str) -> Result<(), Error>,
    {
        let txn = self
            .conn
            .transaction_with_behavior(super::db::Begin::Immediate)
            .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
        {
            let tx = Tx::new(&txn);
            for (id, outcome) in settled {
                let (q, at, error): (&str, i64, &str) = match outcome {
                    Settlement::Sent => (
                        "UPDATE webhook_deliveries SET status = 'sent', sent_at = ?2,
                            last_error = ?3, claimed_at = NULL WHERE id = ?1",
                        now.secs(),
                        "",
                    ),
                    Settlement::Retry { at_ms, error } => (
                        "UPDATE webhook_deliveries SET status = 'queued', next_attempt_at = ?2,
                            last_error = ?3, claimed_at = NULL WHERE id = ?1",
                        *at_ms,
                        error,
                    ),
                    Settlement::Failed { error } => (
                        "UPDATE webhook_deliveries SET status = 'failed', claimed_at = ?2,
                            last_error = ?3 WHERE id = ?1 RETURNING ticket_id",
                        now.secs(),
                        error,
                    ),
                    Settlement::Unclaimed => (
                        "UPDATE webhook_deliveries SET status = 'queued', claimed_at = NULL,
                            next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                        now.millis(),
                        "not sent: the worker stopped",
                    ),
                };
                let mut st = txn.prepare_cached(q).map_err(|e| Error::sql(q, e))?;
                if let Settlement::Failed { error } = outcome {
                    let ticket: Option<i64> = st
                        .query_row(params![id, at, error], |r| r.get(0))
                        .optional()
                        .map_err(|e| Error::sql(q, e))?
                        .flatten();
                    on_failed(&tx, *id, ticket.map(TicketId), error)?;
                } else {
                    st.execute(params![id, at, error])
                        .map_err(|e| Error::sql(q, e))?;
                }
            }
            tx.flush_search()?;
        }
        let mut claimed = Vec::new();
        if limit > 0 {
            const Q: &str = "UPDATE webhook_deliveries SET status = 'sending',
                    attempts = attempts + 1, claimed_at = ?2
                WHERE id IN (SELECT id FROM webhook_deliveries
                    WHERE status = 'queued' AND next_attempt_at <= ?1
                    ORDER BY next_attempt_at, id LIMIT ?3)
                RETURNING id, event_id, event, url, format, ticket_id, data, created_at, attempts";
            const PG: &str = "UPDATE webhook_deliveries SET status = 'sending',
                    attempts = attempts + 1, claimed_at = ?2, claimed_by = ?4
                WHERE status = 'queued' AND id IN (SELECT id FROM webhook_deliveries
                    WHERE status = 'queued' AND next_attempt_at <= ?1
                    ORDER BY next_attempt_at, id LIMIT ?3 FOR UPDATE SKIP LOCKED)
                RETURNING id, event_id, event, url, format, ticket_id, data, created_at, attempts";
            let rows = super::db::claim_due(&txn, (Q, PG), now, limit, |r| {
                let data: String = r.get(6)?;
                Ok((
                    Delivery {
                        id: r.get(0)?,
                        event_id: r.get(1)?,
                        event: r.get(2)?,
                        url: r.get(3)?,
                        format: r.get(4)?,
                        ticket: r.get::<_, Option<i64>>(5)?.map(TicketId),
                        data: empty_snapshot(),
                        created_at: r.get(7)?,
                        attempts: r.get(8)?,
                    },
                    data,
                ))
            })
            .map_err(|e| Error::sql(Q, e))?;
            for (mut d, data) in rows {
                d.data = serde_json::from_str(&data).map_err(|e| {
                    Error::Invariant(format!("webhook delivery {} data: {e}", d.id))
                })?;
                claimed.push(d);
            }
        }
        const NEXT: &str =
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'queued'";
        let next: Option<i64> = txn
            .query_row(NEXT, [], |r| r.get(0))
            .map_err(|e| Error::sql(NEXT, e))?;
        txn.commit().map_err(|e| Error::sql("COMMIT", e))?;
        Ok((claimed, next))
    }
}

fn empty_snapshot() -> TicketSnapshot {
    TicketSnapshot {
        number: 0,
        subject: String::new(),
        priority: String::new(),
        status: String::new(),
        queue: String::new(),
        assignee: String::new(),
        requester: String::new(),
        created_at: 0,
        kind: String::new(),
        cause: String::new(),
        detail: serde_json::Value::Null,
    }
}

/// One row of `postdesk webhooks`.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookRow {
    /// Row id.
    pub id: i64,
    /// The payload's `id`.
    pub event_id: String,
    /// Public event name.
    pub event: String,
    /// Ticket number (unformatted), if any.
    pub ticket: Option<i64>,
    /// Where it is POSTed.
    pub url: String,
    /// `json` or `slack`.
    pub format: String,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error, empty if none.
    pub last_error: String,
    /// When it was queued, Unix seconds.
    pub created_at: i64,
    /// When the next attempt is due, Unix milliseconds.
    pub next_attempt_at_ms: i64,
    /// When it was delivered, Unix seconds.
    pub sent_at: Option<i64>,
}

impl Store {
    /// Every webhook delivery, newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn webhook_deliveries(&self) -> Result<Vec<WebhookRow>, Error> {
        const Q: &str = "SELECT w.id, w.event_id, w.event, t.number, w.url, w.format, w.status,
                w.attempts, w.last_error, w.created_at, w.next_attempt_at, w.sent_at
            FROM webhook_deliveries w LEFT JOIN tickets t ON t.id = w.ticket_id
            ORDER BY w.id DESC";
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([], |r| {
                Ok(WebhookRow {
                    id: r.get(0)?,
                    event_id: r.get(1)?,
                    event: r.get(2)?,
                    ticket: r.get(3)?,
                    url: r.get(4)?,
                    format: r.get(5)?,
                    status: r.get(6)?,
                    attempts: r.get(7)?,
                    last_error: r.get(8)?,
                    created_at: r.get(9)?,
                    next_attempt_at_ms: r.get(10)?,
                    sent_at: r.get(11)?,
                })
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Queue delivery `id` again, due now, attempts reset (a failed row;
    /// `postdesk webhooks retry`), with a `webhook_retried` event on its
    /// ticket. `None` when there is no such row.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn retry_webhook(&mut self, id: i64, now: Time) -> Result<Option<RetryOutcome>, Error> {
        const FIND: &str = "SELECT status, ticket_id, url FROM webhook_deliveries WHERE id = ?1";
        const REQUEUE: &str = "UPDATE webhook_deliveries SET status = 'queued', attempts = 0,
            next_attempt_at = ?2 WHERE id = ?1";
        self.retry_failed(id, now, (FIND, REQUEUE), |tx, ticket, url| {
            tx.event(
                ticket,
                None,
                "webhook_retried",
                "cli",
                &serde_json::json!({ "delivery": id, "url": url }),
                now,
            )
        })
    }

    /// Webhook deliveries by status (`queued`, `sending`, `failed`; `sent`
    /// is not counted here): the backlog `/metrics` shows.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn webhook_backlog(&self) -> Result<Vec<(String, i64)>, Error> {
        const Q: &str = "SELECT status, COUNT(*) FROM webhook_deliveries
            WHERE status <> 'sent' GROUP BY status";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;
    use crate::store::{NewEvent, NewTicket, Opened};

    fn sub(events: &[&str], queues: &[&str]) -> Subscription {
        Subscription {
            url: "http://127.0.0.1:9/hook".into(),
            format: "json".into(),
            events: events.iter().map(|s| (*s).to_owned()).collect(),
            queues: queues.iter().map(|s| (*s).to_owned()).collect(),
            priorities: Vec::new(),
            client_domains: Vec::new(),
        }
    }

    fn count(q: &WebhookQueue) -> i64 {
        q.conn
            .query_row("SELECT COUNT(*) FROM webhook_deliveries", [], |r| r.get(0))
            .unwrap()
    }

    // One test owns the process-wide subscriptions: tests run in threads.
    #[test]
    fn events_fan_out_to_matching_subscriptions_and_rows_settle() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = WebhookQueue::open(dir.path()).unwrap();
        subscribe(vec![
            sub(&["ticket.created", "ticket.closed"], &[]),
            sub(&["ticket.created"], &["sales"]),
        ]);
        let now = Time::from_millis(10_000);
        let ticket = Tx::new(&q.conn)
            .open_ticket(
                &NewTicket {
                    subject: "Printer",
                    normalized_subject: "printer",
                    status: "Open",
                    priority: "normal",
                    queue: "support",
                    issue_type: "question",
                    requester: None,
                    requester_name: "",
                    inbound_address: "help@desk.test",
                    linked_ticket: None,
                    now,
                },
                1000,
                &Opened {
                    cause: "test",
                    detail: "{}",
                },
            )
            .unwrap();
        assert_eq!(count(&q), 1, "the sales-only webhook does not take it");
        let tx = Tx::new(&q.conn);
        tx.record_event(&NewEvent {
            ticket: Some(ticket),
            message: None,
            kind: "status_changed",
            cause: "t",
            detail: r#"{"from":"Open","to":"Pending"}"#,
            now,
        })
        .unwrap();
        assert_eq!(count(&q), 1, "ticket.updated is not subscribed");
        tx.record_event(&NewEvent {
            ticket: Some(ticket),
            message: None,
            kind: "status_changed",
            cause: "t",
            detail: r#"{"from":"Open","to":"Closed"}"#,
            now,
        })
        .unwrap();
        assert_eq!(count(&q), 2);
        subscribe(Vec::new());

        let (claimed, _) = q
            .settle_and_claim(&[], |_, _, _, _| Ok(()), 10, now)
            .unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(claimed[0].event, "ticket.created");
        assert_eq!(claimed[0].data.subject, "Printer");
        assert_eq!(claimed[0].event_id.len(), 32);
        let id = claimed[0].event_id.clone();
        assert_eq!(q.recover().unwrap(), 2, "a crash leaves both sending");
        let (again, _) = q
            .settle_and_claim(&[], |_, _, _, _| Ok(()), 1, now)
            .unwrap();
        assert_eq!(again[0].event_id, id, "the same id after recovery");
        assert_eq!(again[0].attempts, 2);
        let mut failed = Vec::new();
        q.settle_and_claim(
            &[(
                again[0].id,
                Settlement::Failed {
                    error: "410 Gone".into(),
                },
            )],
            |_, id, t, e| {
                failed.push((id, t, e.to_owned()));
                Ok(())
            },
            0,
            now,
        )
        .unwrap();
        assert_eq!(failed, [(again[0].id, Some(ticket), "410 Gone".to_owned())]);
        drop(q);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.retry_webhook(again[0].id, now).unwrap(),
            Some(RetryOutcome::Requeued)
        );
        let rows = store.webhook_deliveries().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(store.webhook_backlog().unwrap(), [("queued".to_owned(), 2)]);
    }
}
