//! Domain verbs of mailbox monitoring: IMAP sync state, broken-mailbox
//! health, the client a ticket belongs to, digest items and digests, and the
//! alert/digest notices.
//!
//! The verbs on [`Tx`] run inside someone else's transaction (the writer's
//! batch, or [`Store::write`]), so what they record commits with its cause:
//! a sync update with its message, a digest item with its ticket, a notice
//! with the ticket or digest it reports.

use super::db::{OptionalExtension, params};
use serde::Serialize;

use super::{Error, Store, Tx};
use crate::domain::{MessageRowId, TicketId, Time};

/// What a poller records with each fetched message: the mailbox's UID
/// state moves from `prev_uid` to `uid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncUpdate {
    /// The mailbox (its address).
    pub mailbox: String,
    /// The folder's UIDVALIDITY the UIDs belong to.
    pub uid_validity: u32,
    /// The last UID the state must hold for this update to apply.
    pub prev_uid: u32,
    /// The message's UID.
    pub uid: u32,
    /// Now.
    pub now: Time,
}

/// A mailbox's stored UID state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncState {
    /// UIDVALIDITY of the folder.
    pub uid_validity: u32,
    /// Every message up to this UID is stored.
    pub last_uid: u32,
    /// Where the sync of this folder started: messages at or below it were
    /// never fetched (a first sync of only new or unseen mail), so the
    /// after-ingest step never touches them.
    pub start_uid: u32,
    /// The folder it describes (see `ImapAccount::source`).
    pub source: String,
}

/// A mailbox's stored health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailboxHealth {
    /// Whether it is reported broken.
    pub broken: bool,
    /// The ticket that reports it.
    pub ticket: Option<TicketId>,
    /// The reason last recorded.
    pub reason: String,
    /// When it broke, Unix seconds.
    pub since: i64,
}

/// A digest item to record.
#[derive(Debug, Clone)]
pub struct NewDigestItem<'a> {
    /// Client short name.
    pub client: &'a str,
    /// The ticket.
    pub ticket: TicketId,
    /// The message that opened it.
    pub message: MessageRowId,
    /// Mailbox address.
    pub mailbox: &'a str,
    /// Priority name.
    pub priority: &'a str,
    /// Sender address.
    pub sender: &'a str,
    /// Subject.
    pub subject: &'a str,
    /// Now.
    pub now: Time,
}

/// A digest item waiting for (or listed in) a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestItem {
    /// Row id.
    pub id: i64,
    /// Ticket number.
    pub ticket_number: i64,
    /// The ticket's queue, for its number format.
    pub ticket_queue: String,
    /// When the ticket was opened, Unix seconds.
    pub ticket_opened_at: i64,
    /// Mailbox address.
    pub mailbox: String,
    /// Priority name.
    pub priority: String,
    /// Sender address.
    pub sender: String,
    /// Subject.
    pub subject: String,
    /// When it was recorded, Unix seconds.
    pub created_at: i64,
    /// The ticket's status now.
    pub status: String,
}

/// An alert or digest mail to record.
#[derive(Debug, Clone)]
pub struct NewNotice<'a> {
    /// `alert`, `mailbox_broken`, `mailbox_recovered`, `digest`,
    /// `admin_digest`.
    pub kind: &'a str,
    /// Client short name, or empty.
    pub client: &'a str,
    /// The ticket it is about.
    pub ticket: Option<TicketId>,
    /// The digest it carries.
    pub digest: Option<i64>,
    /// Sender address.
    pub sender: &'a str,
    /// Recipients.
    pub recipients: &'a [String],
    /// Subject.
    pub subject: &'a str,
    /// Plain-text body.
    pub body: &'a str,
    /// Now.
    pub now: Time,
}

/// A recorded notice (`postdesk notices`).
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// Row id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// Client short name, or empty.
    pub client: String,
    /// Ticket number it is about.
    pub ticket_number: Option<i64>,
    /// Recipients.
    pub recipients: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Open tickets of one queue and priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenCount {
    /// Queue.
    pub queue: String,
    /// Priority.
    pub priority: String,
    /// How many.
    pub count: i64,
}

/// A ticket line of the admin digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketLine {
    /// Number.
    pub number: i64,
    /// Subject.
    pub subject: String,
    /// Queue.
    pub queue: String,
    /// Priority.
    pub priority: String,
    /// Status.
    pub status: String,
    /// Requester address.
    pub requester: String,
    /// When it was opened, Unix seconds.
    pub created_at: i64,
}

/// A polled mailbox's stored state (`postdesk mailboxes`).
#[derive(Debug, Clone, Serialize)]
pub struct MailboxState {
    /// The mailbox address.
    pub mailbox: String,
    /// Its UID state.
    pub sync: Option<SyncState>,
    /// Its health.
    pub health: Option<MailboxHealth>,
    /// The number of the ticket that reports its health (what people see;
    /// `health.ticket` is the row id).
    pub health_ticket_number: Option<i64>,
    /// That ticket's queue (empty without one), for its number format.
    pub health_ticket_queue: String,
    /// When that ticket was opened, Unix seconds (0 without one).
    pub health_ticket_opened_at: i64,
}

/// One ticket opened through a client mailbox.
#[derive(Debug, Clone, Serialize)]
pub struct ClientTicket {
    /// Ticket number.
    pub number: i64,
    /// Client short name.
    pub client: String,
    /// Customer name.
    pub customer: String,
    /// Mailbox address.
    pub mailbox: String,
}

fn sql(q: &str) -> impl FnOnce(super::db::DbError) -> Error + '_ {
    move |e| Error::sql(q, e)
}

impl Tx<'_> {
    /// Set a mailbox's UID state outright (a first sync, a UIDVALIDITY
    /// change, a new folder).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_sync_state(&self, mailbox: &str, s: &SyncState, now: Time) -> Result<(), Error> {
        const Q: &str = "INSERT INTO mailbox_sync (mailbox, uid_validity, last_uid, updated_at,
                source, start_uid)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT (mailbox) DO UPDATE SET uid_validity = excluded.uid_validity,
                last_uid = excluded.last_uid, updated_at = excluded.updated_at,
                source = excluded.source, start_uid = excluded.start_uid";
        self.conn
            .execute(
                Q,
                params![
                    mailbox,
                    s.uid_validity,
                    s.last_uid,
                    now.secs(),
                    s.source,
                    s.start_uid
                ],
            )
            .map_err(sql(Q))?;
        Ok(())
    }

    /// Move a mailbox's UID state from `prev_uid` to `uid`, only if it is
    /// still at `prev_uid` under the same UIDVALIDITY. Returns whether it
    /// moved. A chain of such updates never skips a UID: if message 6 was
    /// not stored, the update of message 7 finds the state at 5 and leaves
    /// it there, and the next fetch starts again at 6 (7 is then a
    /// duplicate and is recognised as one).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn advance_sync(&self, u: &SyncUpdate) -> Result<bool, Error> {
        const Q: &str = "UPDATE mailbox_sync SET last_uid = ?4, updated_at = ?5
            WHERE mailbox = ?1 AND uid_validity = ?2 AND last_uid = ?3";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        let n = st
            .execute(params![
                u.mailbox,
                u.uid_validity,
                u.prev_uid,
                u.uid,
                u.now.secs()
            ])
            .map_err(sql(Q))?;
        Ok(n == 1)
    }

    /// Record that `ticket` belongs to `client` (first mailbox wins).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn link_ticket_client(
        &self,
        ticket: TicketId,
        client: &str,
        customer: &str,
        mailbox: &str,
    ) -> Result<(), Error> {
        const Q: &str = "INSERT INTO ticket_clients (ticket_id, client, customer, mailbox)
            VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        st.execute(params![ticket.0, client, customer, mailbox])
            .map_err(sql(Q))?;
        Ok(())
    }

    /// Record a digest item.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn add_digest_item(&self, i: &NewDigestItem<'_>) -> Result<(), Error> {
        const Q: &str = "INSERT INTO digest_items (client, ticket_id, message_row_id, mailbox,
                priority, sender, subject, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        st.execute(params![
            i.client,
            i.ticket.0,
            i.message.0,
            i.mailbox,
            i.priority,
            i.sender,
            i.subject,
            i.now.secs()
        ])
        .map_err(sql(Q))?;
        Ok(())
    }

    /// Record a notice; returns its row id.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn add_notice(&self, n: &NewNotice<'_>) -> Result<i64, Error> {
        const Q: &str = "INSERT INTO notices (kind, client, ticket_id, digest_id, sender,
                recipients, subject, body, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
        let recipients = serde_json::to_string(n.recipients).unwrap_or_else(|_| "[]".into());
        let mut st = self.conn.prepare_insert(Q).map_err(sql(Q))?;
        st.insert_one(params![
            n.kind,
            n.client,
            n.ticket.map(|t| t.0),
            n.digest,
            n.sender,
            recipients,
            n.subject,
            n.body,
            n.now.secs()
        ])
        .map_err(sql(Q))
    }

    /// The number and status of `ticket`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket_number_status(&self, ticket: TicketId) -> Result<Option<(i64, String)>, Error> {
        const Q: &str = "SELECT number, status FROM tickets WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        st.query_row([ticket.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql(Q))
    }

    /// A mailbox's stored health.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn mailbox_health(&self, mailbox: &str) -> Result<Option<MailboxHealth>, Error> {
        const Q: &str =
            "SELECT broken, ticket_id, reason, since FROM mailbox_health WHERE mailbox = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        st.query_row([mailbox], |r| {
            Ok(MailboxHealth {
                broken: r.get(0)?,
                ticket: r.get::<_, Option<i64>>(1)?.map(TicketId),
                reason: r.get(2)?,
                since: r.get(3)?,
            })
        })
        .optional()
        .map_err(sql(Q))
    }

    /// Store a mailbox's health.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_mailbox_health(
        &self,
        mailbox: &str,
        h: &MailboxHealth,
        now: Time,
    ) -> Result<(), Error> {
        const Q: &str = "INSERT INTO mailbox_health (mailbox, broken, ticket_id, reason, since,
                updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT (mailbox) DO UPDATE SET broken = excluded.broken,
                ticket_id = excluded.ticket_id, reason = excluded.reason,
                since = excluded.since, updated_at = excluded.updated_at";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        st.execute(params![
            mailbox,
            h.broken,
            h.ticket.map(|t| t.0),
            h.reason,
            h.since,
            now.secs()
        ])
        .map_err(sql(Q))?;
        Ok(())
    }

    /// The last firing handled of schedule `client` ('' for admin).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn digest_slot(&self, client: &str) -> Result<Option<i64>, Error> {
        const Q: &str = "SELECT last_slot FROM digest_schedule WHERE client = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        st.query_row([client], |r| r.get(0))
            .optional()
            .map_err(sql(Q))
    }

    /// Record `slot` as the last firing handled of schedule `client`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_digest_slot(&self, client: &str, slot: i64) -> Result<(), Error> {
        const Q: &str = "INSERT INTO digest_schedule (client, last_slot) VALUES (?1, ?2)
            ON CONFLICT (client) DO UPDATE SET last_slot = CASE
                WHEN excluded.last_slot > digest_schedule.last_slot THEN excluded.last_slot
                ELSE digest_schedule.last_slot END";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        st.execute(params![client, slot]).map_err(sql(Q))?;
        Ok(())
    }

    /// Items of `client` not yet in a digest, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn pending_digest_items(&self, client: &str) -> Result<Vec<DigestItem>, Error> {
        const Q: &str = "SELECT d.id, t.number, d.mailbox, d.priority, d.sender, d.subject,
                d.created_at, t.status, t.queue, t.created_at
            FROM digest_items d JOIN tickets t ON t.id = d.ticket_id
            WHERE d.client = ?1 AND d.digest_id IS NULL ORDER BY d.id";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        let rows = st
            .query_map([client], |r| {
                Ok(DigestItem {
                    id: r.get(0)?,
                    ticket_number: r.get(1)?,
                    ticket_queue: r.get(8)?,
                    ticket_opened_at: r.get(9)?,
                    mailbox: r.get(2)?,
                    priority: r.get(3)?,
                    sender: r.get(4)?,
                    subject: r.get(5)?,
                    created_at: r.get(6)?,
                    status: r.get(7)?,
                })
            })
            .map_err(sql(Q))?;
        rows.collect::<Result<_, _>>().map_err(sql(Q))
    }

    /// Create the digest of `client` for `slot` and claim `items` for it;
    /// `None` (and nothing claimed) when that slot already has a digest.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn create_digest(
        &self,
        client: &str,
        slot: i64,
        items: &[i64],
        now: Time,
    ) -> Result<Option<i64>, Error> {
        const Q: &str = "INSERT INTO digests (client, slot, created_at, item_count)
            VALUES (?1, ?2, ?3, ?4) ON CONFLICT (client, slot) DO NOTHING";
        let inserted = self
            .conn
            .prepare_insert(Q)
            .and_then(|mut st| st.insert(params![client, slot, now.secs(), items.len() as i64]))
            .map_err(sql(Q))?;
        let Some(id) = inserted else {
            return Ok(None);
        };
        const CLAIM: &str =
            "UPDATE digest_items SET digest_id = ?1 WHERE id = ?2 AND digest_id IS NULL";
        let mut st = self.conn.prepare_cached(CLAIM).map_err(sql(CLAIM))?;
        for item in items {
            st.execute(params![id, item]).map_err(sql(CLAIM))?;
        }
        Ok(Some(id))
    }

    /// Open tickets (not closed or resolved) by queue and priority.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn open_ticket_counts(&self) -> Result<Vec<OpenCount>, Error> {
        const Q: &str = concat!(
            "SELECT queue, priority, COUNT(*) FROM tickets
            WHERE status COLLATE NOCASE NOT IN ",
            closed_statuses!(),
            " GROUP BY queue, priority
            ORDER BY queue,
                CASE priority WHEN 'Urgent' THEN 0 WHEN 'High' THEN 1 WHEN 'Medium' THEN 2
                    ELSE 3 END"
        );
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        let rows = st
            .query_map([], |r| {
                Ok(OpenCount {
                    queue: r.get(0)?,
                    priority: r.get(1)?,
                    count: r.get(2)?,
                })
            })
            .map_err(sql(Q))?;
        rows.collect::<Result<_, _>>().map_err(sql(Q))
    }

    /// Tickets created at or after `since`, by number.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn tickets_created_since(&self, since: i64) -> Result<Vec<TicketLine>, Error> {
        const Q: &str = "SELECT t.number, t.subject, t.queue, t.priority, t.status,
                COALESCE(c.address, ''), t.created_at
            FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id
            WHERE t.created_at >= ?1 ORDER BY t.number";
        let mut st = self.conn.prepare_cached(Q).map_err(sql(Q))?;
        let rows = st
            .query_map([since], |r| {
                Ok(TicketLine {
                    number: r.get(0)?,
                    subject: r.get(1)?,
                    queue: r.get(2)?,
                    priority: r.get(3)?,
                    status: r.get(4)?,
                    requester: r.get(5)?,
                    created_at: r.get(6)?,
                })
            })
            .map_err(sql(Q))?;
        rows.collect::<Result<_, _>>().map_err(sql(Q))
    }
}

impl Store {
    /// Run `f` in an immediate transaction of its own and commit it: for
    /// writes outside the writer thread (a poller's state, a digest). The
    /// busy timeout waits for the writer's batch to finish.
    ///
    /// # Errors
    ///
    /// `f`'s error (the transaction is rolled back), or [`Error::Sql`].
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let txn = self
            .conn
            .transaction_with_behavior(super::db::Begin::Immediate)
            .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
        let tx = &mut Tx::new(&txn);
        let out = f(tx)?;
        tx.flush_search()?;
        txn.commit().map_err(|e| Error::sql("COMMIT", e))?;
        Ok(out)
    }

    /// A mailbox's stored UID state.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sync_state(&self, mailbox: &str) -> Result<Option<SyncState>, Error> {
        const Q: &str = "SELECT uid_validity, last_uid, source, start_uid FROM mailbox_sync
            WHERE mailbox = ?1";
        self.conn
            .query_row(Q, [mailbox], |r| {
                Ok(SyncState {
                    uid_validity: r.get(0)?,
                    last_uid: r.get(1)?,
                    start_uid: r.get(3)?,
                    source: r.get(2)?,
                })
            })
            .optional()
            .map_err(sql(Q))
    }

    /// Notices with a row id above `after`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn notices(&self, after: i64) -> Result<Vec<Notice>, Error> {
        const Q: &str = "SELECT n.id, n.kind, n.client, t.number, n.recipients, n.subject,
                n.body, n.created_at
            FROM notices n LEFT JOIN tickets t ON t.id = n.ticket_id
            WHERE n.id > ?1 ORDER BY n.id";
        let mut st = self.conn.prepare(Q).map_err(sql(Q))?;
        let rows = st
            .query_map([after], |r| {
                let recipients: String = r.get(4)?;
                Ok(Notice {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    client: r.get(2)?,
                    ticket_number: r.get(3)?,
                    recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                    subject: r.get(5)?,
                    body: r.get(6)?,
                    created_at: r.get(7)?,
                })
            })
            .map_err(sql(Q))?;
        rows.collect::<Result<_, _>>().map_err(sql(Q))
    }

    /// Every ticket opened through a client mailbox, by number.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn client_tickets(&self) -> Result<Vec<ClientTicket>, Error> {
        const Q: &str = "SELECT t.number, c.client, c.customer, c.mailbox
            FROM ticket_clients c JOIN tickets t ON t.id = c.ticket_id ORDER BY t.number";
        let mut st = self.conn.prepare(Q).map_err(sql(Q))?;
        let rows = st
            .query_map([], |r| {
                Ok(ClientTicket {
                    number: r.get(0)?,
                    client: r.get(1)?,
                    customer: r.get(2)?,
                    mailbox: r.get(3)?,
                })
            })
            .map_err(sql(Q))?;
        rows.collect::<Result<_, _>>().map_err(sql(Q))
    }

    /// Every polled mailbox's stored state and health, by mailbox.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn mailbox_states(&self) -> Result<Vec<MailboxState>, Error> {
        const Q: &str = "SELECT m.mailbox, s.uid_validity, s.last_uid, s.source, h.broken,
                h.ticket_id, h.reason, h.since, t.number, s.start_uid,
                COALESCE(t.queue, ''), COALESCE(t.created_at, 0)
            FROM (SELECT mailbox FROM mailbox_sync UNION SELECT mailbox FROM mailbox_health) m
            LEFT JOIN mailbox_sync s ON s.mailbox = m.mailbox
            LEFT JOIN mailbox_health h ON h.mailbox = m.mailbox
            LEFT JOIN tickets t ON t.id = h.ticket_id
            ORDER BY m.mailbox";
        let mut st = self.conn.prepare(Q).map_err(sql(Q))?;
        let rows = st
            .query_map([], |r| {
                let sync = match r.get::<_, Option<u32>>(1)? {
                    Some(v) => Some(SyncState {
                        uid_validity: v,
                        last_uid: r.get(2)?,
                        start_uid: r.get(9)?,
                        source: r.get(3)?,
                    }),
                    None => None,
                };
                let health = match r.get::<_, Option<bool>>(4)? {
                    Some(broken) => Some(MailboxHealth {
                        broken,
                        ticket: r.get::<_, Option<i64>>(5)?.map(TicketId),
                        reason: r.get(6)?,
                        since: r.get(7)?,
                    }),
                    None => None,
                };
                Ok(MailboxState {
                    mailbox: r.get(0)?,
                    sync,
                    health,
                    health_ticket_number: r.get(8)?,
                    health_ticket_queue: r.get(10)?,
                    health_ticket_opened_at: r.get(11)?,
                })
            })
            .map_err(sql(Q))?;
        rows.collect::<Result<_, _>>().map_err(sql(Q))
    }
}
