//! Read queries for the CLI (`tickets`, `show`, `messages`).

use super::db::{OptionalExtension, params};
use serde::Serialize;

use super::{Error, Store, Tx};
use crate::domain::TicketId;

/// Filter for [`Store::list_tickets`].
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only this status (case-insensitive).
    pub status: Option<String>,
    /// Only this queue (case-insensitive).
    pub queue: Option<String>,
    /// Only tickets with this tag (case-insensitive).
    pub tag: Option<String>,
}

/// How a user names a ticket: its row id or its number.
#[derive(Debug, Clone, Copy)]
pub enum TicketRef {
    /// Row id.
    Id(i64),
    /// Ticket number.
    Number(i64),
}

/// One row of `postdesk tickets`.
#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    /// Row id.
    pub id: i64,
    /// Ticket number (unformatted).
    pub number: i64,
    /// Subject.
    pub subject: String,
    /// Status.
    pub status: String,
    /// Priority.
    pub priority: String,
    /// Queue.
    pub queue: String,
    /// Issue type.
    pub issue_type: String,
    /// Requester address.
    pub requester: String,
    /// Requester display name.
    pub requester_name: String,
    /// Address the ticket came in through.
    pub inbound_address: String,
    /// Assigned agent.
    pub assignee: String,
    /// Linked (earlier) ticket number.
    pub linked_ticket: Option<i64>,
    /// The linked ticket's queue (empty without one), for its number format.
    pub linked_queue: String,
    /// When the linked ticket was opened, Unix seconds (0 without one).
    pub linked_opened_at: i64,
    /// Messages on the ticket.
    pub message_count: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Tags, sorted.
    pub tags: Vec<String>,
}

/// An attachment's metadata.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentSummary {
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone)]
pub enum AttachmentBytes {
    /// In the row itself (stored before schema version 7).
    Stored(Vec<u8>),
    /// Part `part` of the message's raw bytes, to be decoded
    /// (`parse::attachment`).
    InRaw {
        /// The message's raw bytes.
        raw: Vec<u8>,
        /// Position among the message's attachments, from 0.
        part: usize,
    },
}

/// One attachment row with the means to its bytes.
#[derive(Debug, Clone)]
pub struct StoredAttachment {
    /// What `show` lists.
    pub summary: AttachmentSummary,
    /// Its bytes, or where they are.
    pub bytes: AttachmentBytes,
}

/// One message of `postdesk show`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageDetail {
    /// Row id.
    pub id: i64,
    /// Message-ID.
    pub message_id: String,
    /// `inbound`/`outbound`.
    pub direction: String,
    /// `customer`/`agent`/`note`/`system`.
    pub kind: String,
    /// From address.
    pub from: String,
    /// From display name.
    pub from_name: String,
    /// To addresses.
    pub to: Vec<String>,
    /// Cc addresses.
    pub cc: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Text.
    pub text: String,
    /// The thread rule that matched.
    pub thread_match: String,
    /// State (`ticketed`, ...).
    pub state: String,
    /// Flag, empty if none.
    pub flag: String,
    /// Unix seconds.
    pub received_at: i64,
    /// Attachments.
    pub attachments: Vec<AttachmentSummary>,
}

/// One audit event.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Unix seconds.
    pub at: i64,
    /// Kind.
    pub kind: String,
    /// Cause.
    pub cause: String,
    /// Detail (JSON text).
    pub detail: String,
}

/// A ticket with its messages and events.
#[derive(Debug, Clone, Serialize)]
pub struct TicketDetail {
    /// The ticket's fields.
    #[serde(flatten)]
    pub ticket: TicketSummary,
    /// Messages, oldest first.
    pub messages: Vec<MessageDetail>,
    /// Events, oldest first.
    pub events: Vec<EventRow>,
    /// Participants: `(address, role)`, role `requester`, `cc` (copied on
    /// replies) or `held` (wrote in, not copied until `#cc`).
    pub participants: Vec<(String, String)>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// The SLA clocks, when the ticket runs under a policy.
    #[serde(skip)]
    pub sla: Option<crate::domain::sla::Clocks>,
    /// The customer's satisfaction rating, if they gave one.
    pub satisfaction: Option<super::Rating>,
}

/// One row of `postdesk messages`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageSummary {
    /// Row id.
    pub id: i64,
    /// Message-ID.
    pub message_id: String,
    /// Ticket row id, if ticketed.
    pub ticket_id: Option<i64>,
    /// State.
    pub state: String,
    /// Flag, or null.
    pub flag: Option<String>,
    /// Raw size in bytes.
    pub size: i64,
    /// Content hash.
    pub content_hash: String,
    /// From address.
    pub from: String,
    /// Subject.
    pub subject: String,
    /// Source channel.
    pub source: String,
    /// Unix seconds.
    pub received_at: i64,
}

const TICKET_COLS: &str = "t.id, t.number, t.subject, t.status, t.priority, t.queue, t.issue_type,
    COALESCE(c.address, ''), t.requester_name, t.inbound_address, t.assignee,
    (SELECT l.number FROM tickets l WHERE l.id = t.linked_ticket_id),
    t.message_count, t.created_at, t.updated_at,
    COALESCE((SELECT l.queue FROM tickets l WHERE l.id = t.linked_ticket_id), ''),
    COALESCE((SELECT l.created_at FROM tickets l WHERE l.id = t.linked_ticket_id), 0),
    (SELECT json_group_array(g.tag) FROM
        (SELECT tag FROM ticket_tags WHERE ticket_id = t.id ORDER BY tag) g)";

/// [`TICKET_COLS`] for PostgreSQL (`json_agg` for `json_group_array`).
const TICKET_COLS_PG: &str =
    "t.id, t.number, t.subject, t.status, t.priority, t.queue, t.issue_type,
    COALESCE(c.address, ''), t.requester_name, t.inbound_address, t.assignee,
    (SELECT l.number FROM tickets l WHERE l.id = t.linked_ticket_id),
    t.message_count, t.created_at, t.updated_at,
    COALESCE((SELECT l.queue FROM tickets l WHERE l.id = t.linked_ticket_id), ''),
    COALESCE((SELECT l.created_at FROM tickets l WHERE l.id = t.linked_ticket_id), 0),
    COALESCE((SELECT json_agg(g.tag ORDER BY g.tag)::text FROM ticket_tags g
        WHERE g.ticket_id = t.id), '[]')";

fn ticket_row(r: &super::db::Row<'_>) -> rusqlite::Result<TicketSummary> {
    Ok(TicketSummary {
        id: r.get(0)?,
        number: r.get(1)?,
        subject: r.get(2)?,
        status: r.get(3)?,
        priority: r.get(4)?,
        queue: r.get(5)?,
        issue_type: r.get(6)?,
        requester: r.get(7)?,
        requester_name: r.get(8)?,
        inbound_address: r.get(9)?,
        assignee: r.get(10)?,
        linked_ticket: r.get(11)?,
        linked_queue: r.get(15)?,
        linked_opened_at: r.get(16)?,
        message_count: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        tags: json_list(r.get(17)?),
    })
}

fn json_list(s: String) -> Vec<String> {
    serde_json::from_str(&s).unwrap_or_default()
}

impl Store {
    /// The newest attachment named `name` (exactly, else ignoring case) of
    /// `ticket`'s messages, as `(message row, index from 1)` for
    /// [`Store::attachment`].
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn attachment_named(
        &self,
        ticket: TicketId,
        name: &str,
    ) -> Result<Option<(i64, usize)>, Error> {
        const Q: &str = "SELECT a.message_row_id,
                (SELECT COUNT(*) FROM attachments b
                 WHERE b.message_row_id = a.message_row_id AND b.id <= a.id)
            FROM attachments a JOIN messages m ON m.id = a.message_row_id
            WHERE m.ticket_id = ?1 AND a.name = ?2 COLLATE NOCASE
            ORDER BY a.name = ?2 DESC, a.id DESC LIMIT 1";
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(params![ticket.0, name], |r| {
            Ok((r.get(0)?, usize::try_from(r.get::<_, i64>(1)?).unwrap_or(0)))
        })
        .optional()
        .map_err(|e| Error::sql(Q, e))
    }

    /// Tickets matching `filter`, newest number first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, Error> {
        self.list_tickets_page(filter, 0, i64::MAX)
    }

    /// Tickets matching `filter`, newest number first: `limit` of them
    /// (`i64::MAX`: all) after skipping `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn list_tickets_page(
        &self,
        filter: &TicketFilter,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<TicketSummary>, Error> {
        let cols = self.conn.pick(TICKET_COLS, TICKET_COLS_PG);
        let q = format!(
            "SELECT {cols} FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id
             WHERE (CAST(?1 AS TEXT) IS NULL OR t.status = ?1 COLLATE NOCASE)
               AND (CAST(?2 AS TEXT) IS NULL OR t.queue = ?2 COLLATE NOCASE)
               AND (CAST(?3 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM ticket_tags g
                    WHERE g.ticket_id = t.id AND g.tag = ?3 COLLATE NOCASE))
             ORDER BY t.number DESC
             LIMIT ?4 OFFSET ?5"
        );
        let mut st = self
            .conn
            .prepare_cached(&q)
            .map_err(|e| Error::sql("list tickets", e))?;
        let rows = st
            .query_map(
                params![filter.status, filter.queue, filter.tag, limit, offset],
                ticket_row,
            )
            .map_err(|e| Error::sql("list tickets", e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| Error::sql("list tickets", e))
    }

    /// One ticket with its messages and events.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket(&self, which: TicketRef) -> Result<Option<TicketDetail>, Error> {
        let (clause, value) = match which {
            TicketRef::Id(id) => ("t.id = ?1", id),
            TicketRef::Number(n) => ("t.number = ?1", n),
        };
        let cols = self.conn.pick(TICKET_COLS, TICKET_COLS_PG);
        let q = format!(
            "SELECT {cols} FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id WHERE {clause}"
        );
        let Some(ticket) = self
            .conn
            .query_row(&q, [value], ticket_row)
            .optional()
            .map_err(|e| Error::sql("show ticket", e))?
        else {
            return Ok(None);
        };

        const MSGS: &str = "SELECT id, message_id, direction, kind, from_addr, from_name, to_addrs,
                cc_addrs, subject, text, thread_match, state, flag, received_at
            FROM messages WHERE ticket_id = ?1 ORDER BY id";
        let mut st = self.conn.prepare(MSGS).map_err(|e| Error::sql(MSGS, e))?;
        let mut messages: Vec<MessageDetail> = st
            .query_map([ticket.id], |r| {
                Ok(MessageDetail {
                    id: r.get(0)?,
                    message_id: r.get(1)?,
                    direction: r.get(2)?,
                    kind: r.get(3)?,
                    from: r.get(4)?,
                    from_name: r.get(5)?,
                    to: json_list(r.get(6)?),
                    cc: json_list(r.get(7)?),
                    subject: r.get(8)?,
                    text: r.get(9)?,
                    thread_match: r.get(10)?,
                    state: r.get(11)?,
                    flag: r.get(12)?,
                    received_at: r.get(13)?,
                    attachments: Vec::new(),
                })
            })
            .map_err(|e| Error::sql(MSGS, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(MSGS, e))?;

        const ATT: &str = "SELECT name, content_type, size, sha256 FROM attachments WHERE message_row_id = ?1 ORDER BY id";
        let mut st = self.conn.prepare(ATT).map_err(|e| Error::sql(ATT, e))?;
        for m in &mut messages {
            m.attachments = st
                .query_map([m.id], |r| {
                    Ok(AttachmentSummary {
                        name: r.get(0)?,
                        content_type: r.get(1)?,
                        size: r.get(2)?,
                        sha256: r.get(3)?,
                    })
                })
                .map_err(|e| Error::sql(ATT, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| Error::sql(ATT, e))?;
        }

        const EVS: &str =
            "SELECT at, kind, cause, detail FROM events WHERE ticket_id = ?1 ORDER BY id";
        let mut st = self.conn.prepare(EVS).map_err(|e| Error::sql(EVS, e))?;
        let events = st
            .query_map([ticket.id], |r| {
                Ok(EventRow {
                    at: r.get(0)?,
                    kind: r.get(1)?,
                    cause: r.get(2)?,
                    detail: r.get(3)?,
                })
            })
            .map_err(|e| Error::sql(EVS, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(EVS, e))?;

        const PARTS: &str = "SELECT c.address, p.role FROM participants p
            JOIN contacts c ON c.id = p.contact_id
            WHERE p.ticket_id = ?1 ORDER BY p.added_at, c.address";
        let mut st = self.conn.prepare(PARTS).map_err(|e| Error::sql(PARTS, e))?;
        let participants = st
            .query_map([ticket.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| Error::sql(PARTS, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(PARTS, e))?;
        const TAGS: &str = "SELECT tag FROM ticket_tags WHERE ticket_id = ?1 ORDER BY tag";
        let mut st = self.conn.prepare(TAGS).map_err(|e| Error::sql(TAGS, e))?;
        let tags = st
            .query_map([ticket.id], |r| r.get(0))
            .map_err(|e| Error::sql(TAGS, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(TAGS, e))?;

        let sla = Tx::new(&self.conn).sla_clocks(TicketId(ticket.id))?;
        let satisfaction = self.rating(TicketId(ticket.id))?;
        Ok(Some(TicketDetail {
            satisfaction,
            ticket,
            messages,
            events,
            participants,
            tags,
            sla,
        }))
    }

    /// Every stored message, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn messages(&self) -> Result<Vec<MessageSummary>, Error> {
        self.message_summaries(false)
    }

    /// Message rows, oldest first; only received ones when `only_inbound`.
    pub(super) fn message_summaries(
        &self,
        only_inbound: bool,
    ) -> Result<Vec<MessageSummary>, Error> {
        const Q: &str =
            "SELECT id, message_id, ticket_id, state, flag, size, content_hash, from_addr,
                subject, source, received_at
            FROM messages WHERE (?1 = 0 OR direction = 'inbound') ORDER BY id";
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([only_inbound], |r| {
                let flag: String = r.get(4)?;
                Ok(MessageSummary {
                    id: r.get(0)?,
                    message_id: r.get(1)?,
                    ticket_id: r.get(2)?,
                    state: r.get(3)?,
                    flag: (!flag.is_empty()).then_some(flag),
                    size: r.get(5)?,
                    content_hash: r.get(6)?,
                    from: r.get(7)?,
                    subject: r.get(8)?,
                    source: r.get(9)?,
                    received_at: r.get(10)?,
                })
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// The raw bytes of a stored message.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn raw(&self, message_row_id: i64) -> Result<Option<Vec<u8>>, Error> {
        const Q: &str = "SELECT raw FROM message_raw WHERE message_row_id = ?1";
        self.conn
            .query_row(Q, [message_row_id], |r| r.get(0))
            .optional()
            .map_err(|e| Error::sql(Q, e))
    }

    /// Attachment `index` (from 1, in `show`'s order) of message
    /// `message_row_id`; `None` when there is no such attachment.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn attachment(
        &self,
        message_row_id: i64,
        index: usize,
    ) -> Result<Option<StoredAttachment>, Error> {
        const Q: &str = "SELECT name, content_type, size, sha256, part, content FROM attachments
            WHERE message_row_id = ?1 ORDER BY id LIMIT 1 OFFSET ?2";
        let Some(offset) = index.checked_sub(1) else {
            return Ok(None);
        };
        let row = self
            .conn
            .query_row(Q, params![message_row_id, offset as i64], |r| {
                let part: Option<i64> = r.get(4)?;
                let summary = AttachmentSummary {
                    name: r.get(0)?,
                    content_type: r.get(1)?,
                    size: r.get(2)?,
                    sha256: r.get(3)?,
                };
                // Only rows from before the part column hold their bytes.
                let content: Option<Vec<u8>> = match part {
                    Some(_) => None,
                    None => Some(r.get(5)?),
                };
                Ok((summary, part, content))
            })
            .optional()
            .map_err(|e| Error::sql(Q, e))?;
        let Some((summary, part, content)) = row else {
            return Ok(None);
        };
        let bytes = match (part, content) {
            (Some(part), _) => {
                let Some(raw) = self.raw(message_row_id)? else {
                    return Ok(None);
                };
                AttachmentBytes::InRaw {
                    raw,
                    part: usize::try_from(part).unwrap_or(usize::MAX),
                }
            }
            (None, content) => AttachmentBytes::Stored(content.unwrap_or_default()),
        };
        Ok(Some(StoredAttachment { summary, bytes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with one message whose raw bytes carry one attachment, and
    /// two attachment rows: one as written before schema version 7 (bytes
    /// in the row), one as written since (a part of the raw message).
    fn store_with_both_kinds() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        let raw = b"From: a@b.c\r\nSubject: att\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--XX\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--XX--\r\n";
        store
            .conn
            .execute_batch(
                "INSERT INTO messages (id, message_id, content_hash) VALUES (1, 'a@x', 'h');
                 INSERT INTO attachments (message_row_id, name, content_type, size, sha256, content)
                 VALUES (1, 'old.txt', 'text/plain', 3, 's', x'6f6c64');
                 INSERT INTO attachments (message_row_id, name, content_type, size, sha256, content, part)
                 VALUES (1, 'r.pdf', 'application/pdf', 8, 's', x'', 0);",
            )
            .expect("rows");
        store
            .conn
            .execute(
                "INSERT INTO message_raw (message_row_id, raw) VALUES (1, ?1)",
                [&raw[..]],
            )
            .expect("raw");
        (dir, store)
    }

    #[test]
    fn attachments_of_both_schemas_are_found() {
        let (_dir, store) = store_with_both_kinds();
        let old = store.attachment(1, 1).expect("query").expect("first");
        assert_eq!(old.summary.name, "old.txt");
        assert!(matches!(old.bytes, AttachmentBytes::Stored(ref b) if b == b"old"));
        let new = store.attachment(1, 2).expect("query").expect("second");
        assert_eq!(new.summary.name, "r.pdf");
        let AttachmentBytes::InRaw { raw, part } = new.bytes else {
            panic!("a part of the raw message")
        };
        assert_eq!(part, 0);
        let decoded = crate::parse::attachment(&raw, part).expect("decodes");
        assert_eq!(decoded.content, b"%PDF-1.4");
        assert!(store.attachment(1, 3).expect("query").is_none());
        assert!(store.attachment(1, 0).expect("query").is_none());
        assert!(store.attachment(2, 1).expect("query").is_none());
    }
}
