//! Domain verbs inside one write transaction.
//!
//! The pipeline receives a [`Tx`] from the writer thread and calls these;
//! it never sees SQL. All statements are cached (`prepare_cached`): the
//! writer runs the same few thousands of times a second.

use std::collections::HashMap;

use super::db::{Connection, OptionalExtension, params};

use super::Error;
use super::facts::{SenderHistory, TicketFacts};
use crate::domain::{ContactId, MessageRowId, TicketId, Time};
use crate::parse::AttachmentInfo;

/// A handle on an open transaction.
pub struct Tx<'c> {
    pub(super) conn: &'c Connection,
    /// Whether [`Tx::attempt`] wraps its closure in a savepoint. The writer
    /// first runs a batch without them (savepoints copy every page they touch
    /// to a sub-journal, a tenth of the writer's time) and reruns the batch
    /// with them only when some attempt failed.
    savepoints: bool,
    /// Set when an attempt failed without a savepoint to undo it: the whole
    /// transaction must be rolled back and rerun.
    poisoned: bool,
    /// Set when a row was queued in the outbox, so the writer wakes the
    /// delivery worker after the commit (and only then).
    pub(super) queued_mail: std::cell::Cell<bool>,
    /// Search index rows of the messages stored so far, written by
    /// [`Tx::flush_search`] just before the commit (see
    /// [`Tx::index_message`]).
    pub(super) search_rows: std::cell::RefCell<Vec<super::search::SearchRow>>,
    /// A transaction that is rolled back ([`super::Store::dry_run`]):
    /// decisions record why, for `explain`.
    dry_run: bool,
}

/// A ticket to open.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    /// Subject as shown.
    pub subject: &'a str,
    /// Normalised subject for the recent-ticket rule.
    pub normalized_subject: &'a str,
    /// Status, e.g. `Open`.
    pub status: &'a str,
    /// Priority name.
    pub priority: &'a str,
    /// Queue (`support`, `sales`, `unrouted`, ...).
    pub queue: &'a str,
    /// Issue type.
    pub issue_type: &'a str,
    /// The requester's contact.
    pub requester: Option<ContactId>,
    /// The requester's display name.
    pub requester_name: &'a str,
    /// The address the mail came in through.
    pub inbound_address: &'a str,
    /// A ticket this one continues (reply to a closed ticket).
    pub linked_ticket: Option<TicketId>,
    /// Now.
    pub now: Time,
}

/// What [`Tx::stored_under`] found under a Message-ID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredUnder {
    /// The stored message with the same content: this one again.
    pub duplicate: Option<(MessageRowId, Option<TicketId>)>,
    /// Another message, with other content, uses the id.
    pub other: bool,
}

/// Why a ticket was opened: its `ticket_opened` event.
#[derive(Debug, Clone, Copy)]
pub struct Opened<'a> {
    /// The rule or cause (`support_address`, `detector`, ...).
    pub cause: &'a str,
    /// Details, as JSON text.
    pub detail: &'a str,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// The ticket it belongs to, if ticketed.
    pub ticket: Option<TicketId>,
    /// Message-ID (synthetic when the mail had none).
    pub message_id: &'a str,
    /// Whether `message_id` was made up by postdesk.
    pub is_synthetic_id: bool,
    /// Content hash (see `parse::content_hash`).
    pub content_hash: &'a str,
    /// `inbound` or `outbound`.
    pub direction: &'a str,
    /// `customer`, `agent`, `note` or `system`.
    pub kind: &'a str,
    /// `ticketed`, `quarantined`, `internal` or `unrouted`.
    pub state: &'a str,
    /// Why it is flagged; empty when it is not.
    pub flag: &'a str,
    /// The thread rule that matched.
    pub thread_match: &'a str,
    /// The route decision, as JSON.
    pub route: &'a str,
    /// `smtp`, `lmtp`, `ingest`, `imap`.
    pub source: &'a str,
    /// Envelope sender.
    pub envelope_from: &'a str,
    /// Envelope recipients, as a JSON array.
    pub envelope_to: &'a str,
    /// The peer address, if any.
    pub peer: &'a str,
    /// From address.
    pub from_addr: &'a str,
    /// From display name.
    pub from_name: &'a str,
    /// To addresses, JSON array.
    pub to_addrs: &'a str,
    /// Cc addresses, JSON array.
    pub cc_addrs: &'a str,
    /// Subject.
    pub subject: &'a str,
    /// In-Reply-To ids, JSON array.
    pub in_reply_to: &'a str,
    /// References ids, JSON array.
    pub refs: &'a str,
    /// Date header, Unix seconds.
    pub date_header: Option<i64>,
    /// Headers, JSON array of `[name, value]`.
    pub headers: &'a str,
    /// Text body.
    pub text: &'a str,
    /// HTML body.
    pub html: Option<&'a str>,
    /// The raw bytes as accepted.
    pub raw: &'a [u8],
    /// What its attachments are (their bytes are in `raw`).
    pub attachments: &'a [AttachmentInfo],
    /// Now.
    pub now: Time,
}

/// One `attachments` row: what the attachment is and which part of its
/// message's raw bytes holds it. The bytes are stored once, in
/// `message_raw`.
#[derive(Debug, Clone)]
pub(super) struct AttachmentRow<'a> {
    pub(super) name: &'a str,
    pub(super) content_type: &'a str,
    pub(super) size: u64,
    pub(super) sha256: String,
    pub(super) part: usize,
}

impl<'a> From<&'a AttachmentInfo> for AttachmentRow<'a> {
    fn from(a: &'a AttachmentInfo) -> Self {
        AttachmentRow {
            name: a.name.as_deref().unwrap_or(""),
            content_type: &a.content_type,
            size: a.size,
            sha256: a.sha256.clone(),
            part: a.part,
        }
    }
}

/// Raw messages up to this size are bound whole; larger ones are written
/// into a zero-filled blob in [`RAW_CHUNK`] pieces.
const RAW_INLINE_MAX: usize = 256 * 1024;

/// The piece a large raw message is written in.
const RAW_CHUNK: usize = 256 * 1024;

/// An audit event.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// Ticket concerned.
    pub ticket: Option<TicketId>,
    /// Message concerned.
    pub message: Option<MessageRowId>,
    /// What happened (`ticket_opened`, `message_added`, ...).
    pub kind: &'a str,
    /// Why (the rule or actor).
    pub cause: &'a str,
    /// Details, JSON object.
    pub detail: &'a str,
    /// Now.
    pub now: Time,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Tx {
            conn,
            savepoints: true,
            poisoned: false,
            queued_mail: std::cell::Cell::new(false),
            search_rows: std::cell::RefCell::new(Vec::new()),
            dry_run: false,
        }
    }

    /// A handle whose attempts run without savepoints; see
    /// [`Tx::is_poisoned`].
    pub(crate) fn optimistic(conn: &'c Connection) -> Self {
        Tx {
            conn,
            savepoints: false,
            poisoned: false,
            queued_mail: std::cell::Cell::new(false),
            search_rows: std::cell::RefCell::new(Vec::new()),
            dry_run: false,
        }
    }

    /// A handle for a transaction that will be rolled back, whose
    /// decisions record why they were taken.
    pub(crate) fn dry(conn: &'c Connection) -> Self {
        Tx {
            dry_run: true,
            ..Tx::new(conn)
        }
    }

    /// Whether this transaction is a dry run (`explain`, `rules test`).
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Whether an attempt failed in optimistic mode, leaving partial writes
    /// that only rolling back the whole transaction can undo.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Run `f` inside a savepoint: if it fails, everything it wrote is undone
    /// and the rest of the transaction (other messages of the batch) stands.
    ///
    /// # Errors
    ///
    /// `f`'s error, or [`Error::Sql`] if the savepoint itself fails.
    pub fn attempt<T>(
        &mut self,
        f: impl FnOnce(&mut Tx<'c>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if !self.savepoints {
            let out = f(self);
            if out.is_err() {
                self.poisoned = true;
            }
            return out;
        }
        self.conn
            .execute_batch("SAVEPOINT attempt")
            .map_err(|e| Error::sql("SAVEPOINT", e))?;
        let indexed = self.search_rows.borrow().len();
        match f(self) {
            Ok(v) => {
                self.conn
                    .execute_batch("RELEASE attempt")
                    .map_err(|e| Error::sql("RELEASE", e))?;
                Ok(v)
            }
            Err(e) => {
                self.conn
                    .execute_batch("ROLLBACK TO attempt; RELEASE attempt")
                    .map_err(|e| Error::sql("ROLLBACK TO", e))?;
                // Its messages are gone, so are their index rows.
                self.search_rows.borrow_mut().truncate(indexed);
                Err(e)
            }
        }
    }

    /// Whether other nodes write the same store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.conn.is_pg()
    }

    /// Serialise this transaction with every other node's on these thread
    /// keys (a Message-ID, a referenced id, a recent-ticket key): on
    /// PostgreSQL a transaction-scoped advisory lock per key, taken in a
    /// fixed order, so two messages of one new conversation reaching two
    /// nodes at once are decided one after the other and the second sees
    /// the first's ticket. SQLite has one writer: nothing to do.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`] (a deadlock between two nodes' batches is one, and
    /// transient: the writer runs the batch again).
    pub fn lock_thread_keys<'k>(&self, keys: impl Iterator<Item = &'k str>) -> Result<(), Error> {
        if !self.conn.is_pg() {
            return Ok(());
        }
        let mut hashed: Vec<i64> = keys
            .filter(|k| !k.is_empty())
            .map(super::pg::advisory_key)
            .collect();
        hashed.sort_unstable();
        hashed.dedup();
        const Q: &str = "SELECT pg_advisory_xact_lock(?1)";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        for k in hashed {
            st.execute(params![k]).map_err(|e| Error::sql(Q, e))?;
        }
        Ok(())
    }

    /// What is stored under this Message-ID: the message with the same
    /// content hash (a duplicate delivery), else whether any other message
    /// uses the id (a sender reusing Message-IDs). One lookup.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn stored_under(&self, message_id: &str, content_hash: &str) -> Result<StoredUnder, Error> {
        const Q: &str =
            "SELECT id, ticket_id, content_hash = ?2 FROM messages WHERE message_id = ?1
            ORDER BY content_hash = ?2 DESC, id LIMIT 1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let row = st
            .query_row(params![message_id, content_hash], |r| {
                Ok((
                    MessageRowId(r.get(0)?),
                    r.get::<_, Option<i64>>(1)?.map(TicketId),
                    r.get::<_, bool>(2)?,
                ))
            })
            .optional()
            .map_err(|e| Error::sql(Q, e))?;
        Ok(match row {
            Some((id, ticket, true)) => StoredUnder {
                duplicate: Some((id, ticket)),
                other: false,
            },
            Some((_, _, false)) => StoredUnder {
                duplicate: None,
                other: true,
            },
            None => StoredUnder::default(),
        })
    }

    /// Run `query` (one `?1` parameter, one ticket id column) for each
    /// distinct id in `ids`; the ids it finds a ticket for, with that ticket.
    fn ticket_per_id(
        &self,
        query: &'static str,
        ids: &[String],
    ) -> Result<HashMap<String, TicketId>, Error> {
        let mut st = self
            .conn
            .prepare_cached(query)
            .map_err(|e| Error::sql(query, e))?;
        let mut out = HashMap::new();
        for id in ids {
            if out.contains_key(id) {
                continue;
            }
            if let Some(t) = st
                .query_row([id], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(|e| Error::sql(query, e))?
            {
                out.insert(id.clone(), TicketId(t));
            }
        }
        Ok(out)
    }

    /// For each id in `ids` that postdesk has stored or sent with a ticket,
    /// the ticket of its newest such message.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn tickets_by_message_ids(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, TicketId>, Error> {
        const Q: &str = "SELECT ticket_id FROM messages WHERE message_id = ?1 AND ticket_id IS NOT NULL ORDER BY id DESC LIMIT 1";
        self.ticket_per_id(Q, ids)
    }

    /// For each id in `ids` that a ticketed message lists in its
    /// In-Reply-To or References, the ticket of the newest such message.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn tickets_by_references(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, TicketId>, Error> {
        const Q: &str = "SELECT ticket_id FROM message_refs WHERE ref_id = ?1 ORDER BY message_row_id DESC LIMIT 1";
        self.ticket_per_id(Q, ids)
    }

    /// What threading needs to know about each of `tickets` that exists.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket_facts(
        &self,
        tickets: &[TicketId],
    ) -> Result<HashMap<TicketId, TicketFacts>, Error> {
        const Q: &str = "SELECT t.id, t.number, t.status, t.queue, COALESCE(c.address, ''),
                t.inbound_address, t.normalized_subject, t.updated_at, t.closed_at,
                t.issue_type, t.priority, t.assignee, t.created_at
            FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id
            WHERE t.id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let mut out = HashMap::new();
        for t in tickets {
            if out.contains_key(t) {
                continue;
            }
            let facts = st
                .query_row([t.0], |r| {
                    Ok(TicketFacts {
                        id: TicketId(r.get(0)?),
                        number: r.get(1)?,
                        status: r.get(2)?,
                        queue: r.get(3)?,
                        requester: r.get(4)?,
                        inbound_address: r.get(5)?,
                        normalized_subject: r.get(6)?,
                        updated_at: r.get(7)?,
                        closed_at: r.get(8)?,
                        issue_type: r.get(9)?,
                        priority: r.get(10)?,
                        assignee: r.get(11)?,
                        created_at: r.get(12)?,
                    })
                })
                .optional()
                .map_err(|e| Error::sql(Q, e))?;
            if let Some(f) = facts {
                out.insert(*t, f);
            }
        }
        Ok(out)
    }

    /// The ticket with number `number`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket_by_number(&self, number: i64) -> Result<Option<TicketId>, Error> {
        const Q: &str = "SELECT id FROM tickets WHERE number = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row([number], |r| r.get(0))
            .optional()
            .map(|t| t.map(TicketId))
            .map_err(|e| Error::sql(Q, e))
    }

    /// The queue, issue type and status of `ticket`, if it exists (what
    /// decides whether the detector scans its messages).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket_scope(
        &self,
        ticket: TicketId,
    ) -> Result<Option<(String, String, String)>, Error> {
        const Q: &str = "SELECT queue, issue_type, status FROM tickets WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row([ticket.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(|e| Error::sql(Q, e))
    }

    /// The addresses of every participant of `ticket`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn participant_addresses(&self, ticket: TicketId) -> Result<Vec<String>, Error> {
        const Q: &str =
            "SELECT c.address FROM participants p JOIN contacts c ON c.id = p.contact_id
            WHERE p.ticket_id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([ticket.0], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Candidates for the recent-ticket rule: the newest few tickets that
    /// `sender` opened through `inbound_address` with this normalised
    /// subject (status and window are the rule's to judge).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn recent_tickets(
        &self,
        sender: &str,
        inbound_address: &str,
        normalized_subject: &str,
    ) -> Result<Vec<TicketId>, Error> {
        const Q: &str = "SELECT t.id FROM tickets t JOIN contacts c ON c.id = t.requester_id
            WHERE c.address = ?1 AND t.inbound_address = ?2 AND t.normalized_subject = ?3
            ORDER BY t.updated_at DESC, t.id DESC LIMIT 8";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map(params![sender, inbound_address, normalized_subject], |r| {
                r.get(0).map(TicketId)
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// What routing needs to know about `sender`: any support ticket, and
    /// the newest open lead.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sender_history(&self, sender: &str) -> Result<SenderHistory, Error> {
        const SUPPORT: &str =
            "SELECT EXISTS (SELECT 1 FROM tickets t JOIN contacts c ON c.id = t.requester_id
            WHERE c.address = ?1 AND t.queue = 'support')";
        let mut st = self
            .conn
            .prepare_cached(SUPPORT)
            .map_err(|e| Error::sql(SUPPORT, e))?;
        let has_support_ticket = st
            .query_row([sender], |r| r.get(0))
            .map_err(|e| Error::sql(SUPPORT, e))?;
        const LEAD: &str = concat!(
            "SELECT t.id FROM tickets t JOIN contacts c ON c.id = t.requester_id
            WHERE c.address = ?1 AND t.queue = 'sales'
              AND t.status COLLATE NOCASE NOT IN ",
            closed_statuses!(),
            " ORDER BY t.updated_at DESC, t.id DESC LIMIT 1"
        );
        let mut st = self
            .conn
            .prepare_cached(LEAD)
            .map_err(|e| Error::sql(LEAD, e))?;
        let open_lead = st
            .query_row([sender], |r| r.get(0))
            .optional()
            .map_err(|e| Error::sql(LEAD, e))?
            .map(TicketId);
        Ok(SenderHistory {
            has_support_ticket,
            open_lead,
        })
    }

    /// Reopen a closed ticket: status `Open`, no closing time.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn reopen_ticket(&self, ticket: TicketId, now: Time) -> Result<(), Error> {
        const Q: &str =
            "UPDATE tickets SET status = 'Open', closed_at = NULL, updated_at = ?2 WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![ticket.0, now.secs()])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// Record the ids `message` (of `ticket`) refers to, for threading mail
    /// that arrives out of order.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn insert_refs(
        &self,
        message: MessageRowId,
        ticket: TicketId,
        ids: &[String],
    ) -> Result<(), Error> {
        const Q: &str = "INSERT OR IGNORE INTO message_refs (ref_id, ticket_id, message_row_id) VALUES (?1, ?2, ?3)";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        for id in ids {
            st.execute(params![id, ticket.0, message.0])
                .map_err(|e| Error::sql(Q, e))?;
        }
        Ok(())
    }

    /// Create or update the contact for `address`; returns its id.
    ///
    /// A lookup, then an UPDATE by id or an INSERT, rather than one
    /// `INSERT … ON CONFLICT DO UPDATE … RETURNING`: SQLite buffers
    /// RETURNING rows in a temporary table and gives an upsert a statement
    /// journal, which cost half of the pipeline's commit time on a known
    /// sender; three plain statements need neither. The first write takes
    /// the write lock, and the transaction holds it, so no other writer can
    /// insert the address in between.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn upsert_contact(&self, address: &str, name: &str, now: Time) -> Result<ContactId, Error> {
        const FIND: &str = "SELECT id FROM contacts WHERE address = ?1";
        const UPDATE: &str = "UPDATE contacts SET
                name = CASE WHEN ?2 <> '' THEN ?2 ELSE name END,
                last_seen = ?3,
                message_count = message_count + 1
            WHERE id = ?1";
        const INSERT: &str =
            "INSERT INTO contacts (address, name, first_seen, last_seen, message_count)
            VALUES (?1, ?2, ?3, ?3, 1)";
        let found: Option<i64> = self
            .conn
            .prepare_cached(FIND)
            .and_then(|mut st| st.query_row([address], |r| r.get(0)).optional())
            .map_err(|e| Error::sql(FIND, e))?;
        if let Some(id) = found {
            self.conn
                .prepare_cached(UPDATE)
                .and_then(|mut st| st.execute(params![id, name, now.secs()]))
                .map_err(|e| Error::sql(UPDATE, e))?;
            return Ok(ContactId(id));
        }
        self.conn
            .prepare_insert(INSERT)
            .and_then(|mut st| st.insert_one(params![address, name, now.secs()]))
            .map(ContactId)
            .map_err(|e| Error::sql(INSERT, e))
    }

    /// The next free ticket number, starting at `start`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    fn next_ticket_number(&self, start: i64) -> Result<i64, Error> {
        if self.conn.is_pg() {
            // Several nodes: a sequence, never handed out twice; raised to
            // the configured start the first time.
            const PG: &str = "SELECT CASE WHEN n >= ?1 THEN n ELSE setval('ticket_numbers', ?1) END
                FROM (SELECT nextval('ticket_numbers') AS n) s";
            return self
                .conn
                .query_row(PG, params![start], |r| r.get(0))
                .map_err(|e| Error::sql(PG, e));
        }
        const Q: &str = "SELECT MAX(number) FROM tickets";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let max: Option<i64> = st
            .query_row([], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))?;
        Ok(max.map_or(start, |m| (m + 1).max(start)))
    }

    /// Open a ticket: the next number, the row, and its `ticket_opened`
    /// event saying why. The one way a ticket is opened.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn open_ticket(
        &self,
        t: &NewTicket<'_>,
        number_start: i64,
        why: &Opened<'_>,
    ) -> Result<TicketId, Error> {
        let number = self.next_ticket_number(number_start)?;
        let id = self.insert_ticket(number, t)?;
        self.record_event(&NewEvent {
            ticket: Some(id),
            message: None,
            kind: "ticket_opened",
            cause: why.cause,
            detail: why.detail,
            now: t.now,
        })?;
        Ok(id)
    }

    fn insert_ticket(&self, number: i64, t: &NewTicket<'_>) -> Result<TicketId, Error> {
        const Q: &str =
            "INSERT INTO tickets (number, subject, normalized_subject, status, priority,
                queue, issue_type, requester_id, requester_name, inbound_address, linked_ticket_id,
                message_count, created_at, updated_at, status_changed_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?12, ?12)";
        let mut st = self.conn.prepare_insert(Q).map_err(|e| Error::sql(Q, e))?;
        let id = st
            .insert_one(params![
                number,
                t.subject,
                t.normalized_subject,
                t.status,
                t.priority,
                t.queue,
                t.issue_type,
                t.requester.map(|c| c.0),
                t.requester_name,
                t.inbound_address,
                t.linked_ticket.map(|l| l.0),
                t.now.secs(),
            ])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(TicketId(id))
    }

    /// Store a message, its raw bytes and its attachments; counts it on its
    /// ticket.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn insert_message(&self, m: &NewMessage<'_>) -> Result<MessageRowId, Error> {
        const Q: &str =
            "INSERT INTO messages (ticket_id, message_id, is_synthetic_id, content_hash,
                direction, kind, state, flag, thread_match, route, source, envelope_from,
                envelope_to, peer, from_addr, from_name, to_addrs, cc_addrs, subject, in_reply_to,
                refs, date_header, headers, text, html, size, received_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)";
        let mut st = self.conn.prepare_insert(Q).map_err(|e| Error::sql(Q, e))?;
        let id = st
            .insert_one(params![
                m.ticket.map(|t| t.0),
                m.message_id,
                m.is_synthetic_id,
                m.content_hash,
                m.direction,
                m.kind,
                m.state,
                m.flag,
                m.thread_match,
                m.route,
                m.source,
                m.envelope_from,
                m.envelope_to,
                m.peer,
                m.from_addr,
                m.from_name,
                m.to_addrs,
                m.cc_addrs,
                m.subject,
                m.in_reply_to,
                m.refs,
                m.date_header,
                m.headers,
                m.text,
                m.html,
                m.raw.len() as i64,
                m.now.secs(),
            ])
            .map_err(|e| Error::sql(Q, e))?;
        let id = MessageRowId(id);

        let rows: Vec<AttachmentRow<'_>> = m.attachments.iter().map(AttachmentRow::from).collect();
        self.insert_raw_and_attachments(id, m.raw, &rows)?;
        self.index_message(
            id,
            m.kind,
            m.subject,
            m.text,
            m.attachments.iter().filter_map(|a| a.name.as_deref()),
        )?;

        if let Some(ticket) = m.ticket {
            const TOUCH: &str = "UPDATE tickets SET message_count = message_count + 1, updated_at = ?2 WHERE id = ?1";
            let mut st = self
                .conn
                .prepare_cached(TOUCH)
                .map_err(|e| Error::sql(TOUCH, e))?;
            st.execute(params![ticket.0, m.now.secs()])
                .map_err(|e| Error::sql(TOUCH, e))?;
        }
        Ok(id)
    }

    /// Store the raw bytes and the attachments of message `id` (received or
    /// sent: both paths write them the same way). The raw bytes are written
    /// into a blob of their size in pieces, so SQLite makes no copy of a
    /// large message; an attachment row names its part of them and holds
    /// no bytes of its own.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub(super) fn insert_raw_and_attachments(
        &self,
        id: MessageRowId,
        raw: &[u8],
        attachments: &[AttachmentRow<'_>],
    ) -> Result<(), Error> {
        const RAW: &str = "INSERT INTO message_raw (message_row_id, raw) VALUES (?1, ?2)";
        let mut st = self
            .conn
            .prepare_cached(RAW)
            .map_err(|e| Error::sql(RAW, e))?;
        if raw.len() <= RAW_INLINE_MAX || self.conn.is_pg() {
            st.execute(params![id.0, raw])
                .map_err(|e| Error::sql(RAW, e))?;
        } else {
            st.execute(params![id.0, rusqlite::blob::ZeroBlob(raw.len() as u64)])
                .map_err(|e| Error::sql(RAW, e))?;
            const BLOB: &str = "message_raw blob write";
            let lite = self
                .conn
                .lite()
                .ok_or_else(|| Error::Invariant("incremental blob write on PostgreSQL".into()))?;
            let mut blob = lite
                .blob_open("main", "message_raw", "raw", id.0, false)
                .map_err(|e| Error::sql(BLOB, e))?;
            for (i, chunk) in raw.chunks(RAW_CHUNK).enumerate() {
                blob.write_at(chunk, i * RAW_CHUNK)
                    .map_err(|e| Error::sql(BLOB, e))?;
            }
        }
        const ATT: &str =
            "INSERT INTO attachments (message_row_id, name, content_type, size, sha256, content, part)
                VALUES (?1, ?2, ?3, ?4, ?5, ?7, ?6)";
        for a in attachments {
            let mut st = self
                .conn
                .prepare_cached(ATT)
                .map_err(|e| Error::sql(ATT, e))?;
            st.execute(params![
                id.0,
                a.name,
                a.content_type,
                a.size as i64,
                a.sha256,
                a.part as i64,
                // Read from the raw message when asked for.
                &[][..] as &[u8],
            ])
            .map_err(|e| Error::sql(ATT, e))?;
        }
        Ok(())
    }

    /// Add `contact` to `ticket` with `role`, unless already there; returns
    /// whether it was added.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn add_participant(
        &self,
        ticket: TicketId,
        contact: ContactId,
        role: &str,
        now: Time,
    ) -> Result<bool, Error> {
        const Q: &str = "INSERT INTO participants (ticket_id, contact_id, role, added_at)
            VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![ticket.0, contact.0, role, now.secs()])
            .map(|n| n > 0)
            .map_err(|e| Error::sql(Q, e))
    }

    /// Make `address` a Cc participant of `ticket` (adding the contact and
    /// the participant if need be; a requester stays the requester);
    /// returns the role it had before (`None`: it was not a participant).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn copy_participant(
        &self,
        ticket: TicketId,
        address: &str,
        now: Time,
    ) -> Result<Option<String>, Error> {
        const CONTACT: &str =
            "INSERT INTO contacts (address, name, first_seen, last_seen, message_count)
            VALUES (?1, '', ?2, ?2, 0)
            ON CONFLICT (address) DO UPDATE SET address = excluded.address
            RETURNING id";
        const ROLE: &str = "SELECT role FROM participants WHERE ticket_id = ?1 AND contact_id = ?2";
        const SET: &str = "INSERT INTO participants (ticket_id, contact_id, role, added_at)
            VALUES (?1, ?2, 'cc', ?3)
            ON CONFLICT (ticket_id, contact_id) DO UPDATE SET role = 'cc'
            WHERE participants.role <> 'requester'";
        let contact: i64 = self
            .conn
            .prepare_cached(CONTACT)
            .and_then(|mut st| st.query_row(params![address, now.secs()], |r| r.get(0)))
            .map_err(|e| Error::sql(CONTACT, e))?;
        let before: Option<String> = self
            .conn
            .prepare_cached(ROLE)
            .and_then(|mut st| {
                st.query_row(params![ticket.0, contact], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| Error::sql(ROLE, e))?;
        self.conn
            .prepare_cached(SET)
            .and_then(|mut st| st.execute(params![ticket.0, contact, now.secs()]))
            .map_err(|e| Error::sql(SET, e))?;
        Ok(before)
    }

    /// Append to the audit log: `detail` is stored as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn event(
        &self,
        ticket: Option<TicketId>,
        message: Option<MessageRowId>,
        kind: &str,
        cause: &str,
        detail: &impl serde::Serialize,
        now: Time,
    ) -> Result<(), Error> {
        let detail = serde_json::to_string(detail).unwrap_or_else(|_| "null".into());
        self.record_event(&NewEvent {
            ticket,
            message,
            kind,
            cause,
            detail: &detail,
            now,
        })
    }

    /// Append to the audit log, and queue the webhook deliveries the event
    /// is published as (see [`Tx::publish`]): the one writer of `events`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn record_event(&self, e: &NewEvent<'_>) -> Result<(), Error> {
        const Q: &str = "INSERT INTO events (ticket_id, message_row_id, at, kind, cause, detail)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![
            e.ticket.map(|t| t.0),
            e.message.map(|m| m.0),
            e.now.secs(),
            e.kind,
            e.cause,
            e.detail
        ])
        .map_err(|err| Error::sql(Q, err))?;
        self.publish(e)
    }
}
