//! Store verbs of the conversation by mail: the outbox, outbound messages,
//! agent commands (status, priority, assignee, type, tags, merge),
//! suppressed addresses; the delivery worker's own connection
//! ([`Outbox`]); and the read queries behind `postdesk outbox`.
//!
//! Promise: an outbox row is written by [`Tx::enqueue`] inside the
//! transaction of the change that caused it, so a committed change always
//! has its mail queued and a rolled-back one never does. The worker's
//! [`Outbox::settle_and_claim`] marks the results of finished sends and
//! claims the next due rows in one transaction: a row is `sending` only
//! while a send is in flight, and a row still `sending` when the process
//! starts was cut by a crash; [`Outbox::recover`] queues it again with the
//! same bytes and Message-ID.

use super::db::{Connection, OptionalExtension, params};
use serde::Serialize;

use sha2::{Digest, Sha256};

use super::tx::AttachmentRow;
use super::{Error, MessageSummary, Store, Tx};
use crate::domain::{MessageRowId, TicketId, Time};
use crate::parse::{Attachment, AttachmentInfo};

pub use crate::domain::OutboxId;
use crate::domain::Status;

/// An outbound mail stored as a `messages` row, so replies to it thread
/// (threading looks Message-IDs up in `messages`) and `show` lists it.
#[derive(Debug, Clone)]
pub struct NewOutbound<'a> {
    /// The ticket it belongs to.
    pub ticket: Option<TicketId>,
    /// Its Message-ID.
    pub message_id: &'a str,
    /// `agent` (a relayed reply), `system` (acknowledgement, notification,
    /// command answer, notice) or `note`.
    pub kind: &'a str,
    /// From address.
    pub from_addr: &'a str,
    /// From display name.
    pub from_name: &'a str,
    /// To addresses.
    pub to: &'a [String],
    /// Cc addresses.
    pub cc: &'a [String],
    /// Subject.
    pub subject: &'a str,
    /// The text as sent.
    pub text: &'a str,
    /// In-Reply-To.
    pub in_reply_to: Option<&'a str>,
    /// References.
    pub references: &'a [String],
    /// The bytes as composed (unsigned).
    pub raw: &'a [u8],
    /// Attachments sent with it.
    pub attachments: &'a [Attachment],
    /// Now.
    pub now: Time,
}

/// One outbox row to write.
#[derive(Debug, Clone)]
pub struct Enqueue<'a> {
    /// The ticket the mail is about.
    pub ticket: Option<TicketId>,
    /// The outbound `messages` row of the same mail.
    pub message_row: Option<MessageRowId>,
    /// `ack`, `notification`, `relay`, `command_error`, `bounce_notice`,
    /// `alert`, `warning`, `digest`.
    pub kind: &'a str,
    /// An automatic reply (rate-limited, loop-protected).
    pub is_automatic: bool,
    /// Its Message-ID.
    pub message_id: &'a str,
    /// Envelope sender; empty for the null reverse-path.
    pub mail_from: &'a str,
    /// The one recipient.
    pub rcpt_to: &'a str,
    /// Subject (for `postdesk outbox`).
    pub subject: &'a str,
    /// The bytes.
    pub raw: &'a [u8],
    /// Now: due at once.
    pub now: Time,
}

/// What the conversation needs to know about one ticket.
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    /// Row id.
    pub id: TicketId,
    /// Number (unformatted).
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
    /// Requester address (lower-case), empty if none.
    pub requester: String,
    /// Requester display name.
    pub requester_name: String,
    /// Assigned agent's name, empty if none.
    pub assignee: String,
    /// Address the ticket came in through.
    pub inbound_address: String,
    /// Ticket this one was merged into.
    pub merged_into: Option<TicketId>,
    /// When it was opened, Unix seconds (the `{year}` of its number).
    pub created_at: i64,
    /// Message-ID of the newest inbound customer message (after
    /// [`Tx::load_thread`]).
    pub last_customer_message: Option<String>,
    /// References of that message, oldest first.
    pub last_customer_refs: Vec<String>,
    /// Message-IDs of mail postdesk sent to the customer on this ticket,
    /// oldest first.
    pub sent_to_customer: Vec<String>,
}

impl Conversation {
    /// When the ticket was opened.
    pub fn opened(&self) -> Time {
        Time::from_secs(self.created_at)
    }
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl<'c> Tx<'c> {
    /// Store an outbound mail as a `messages` row (direction `outbound`,
    /// state `sent`) with its raw bytes and attachments. It does not count
    /// in the ticket's `message_count`, which counts mail received.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn insert_outbound_message(&self, m: &NewOutbound<'_>) -> Result<MessageRowId, Error> {
        const Q: &str =
            "INSERT INTO messages (ticket_id, message_id, is_synthetic_id, content_hash,
                direction, kind, state, source, from_addr, from_name, to_addrs, cc_addrs, subject,
                in_reply_to, refs, date_header, text, size, received_at)
            VALUES (?1, ?2, 0, ?3, 'outbound', ?4, 'sent', 'postdesk', ?5, ?6, ?7, ?8, ?9, ?10,
                ?11, ?12, ?13, ?14, ?12)";
        let mut st = self.conn.prepare_insert(Q).map_err(|e| Error::sql(Q, e))?;
        let irt: Vec<String> = m.in_reply_to.map(str::to_owned).into_iter().collect();
        let id = MessageRowId(
            st.insert_one(params![
                m.ticket.map(|t| t.0),
                m.message_id,
                crate::parse::content_hash(m.raw),
                m.kind,
                m.from_addr,
                m.from_name,
                json(m.to),
                json(m.cc),
                m.subject,
                json(&irt),
                json(m.references),
                m.now.secs(),
                m.text,
                m.raw.len() as i64,
            ])
            .map_err(|e| Error::sql(Q, e))?,
        );
        // What was attached to the draft, in the order the composed mail
        // carries it (see `compose::build`).
        let infos: Vec<AttachmentInfo> = m
            .attachments
            .iter()
            .enumerate()
            .map(|(part, a)| AttachmentInfo {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: a.content.len() as u64,
                sha256: hex::encode(Sha256::digest(&a.content)),
                part,
            })
            .collect();
        let rows: Vec<AttachmentRow<'_>> = infos.iter().map(AttachmentRow::from).collect();
        self.insert_raw_and_attachments(id, m.raw, &rows)?;
        self.index_message(
            id,
            m.kind,
            m.subject,
            m.text,
            infos.iter().filter_map(|a| a.name.as_deref()),
        )?;
        Ok(id)
    }

    /// Queue one mail for one recipient, due at once.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn enqueue(&self, e: &Enqueue<'_>) -> Result<OutboxId, Error> {
        const Q: &str = "INSERT INTO outbox (ticket_id, message_row_id, kind, is_automatic,
                message_id, mail_from, rcpt_to, subject, raw, status, attempts, created_at,
                next_attempt_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', 0, ?10, ?11)";
        self.queued_mail.set(true);
        let mut st = self.conn.prepare_insert(Q).map_err(|e| Error::sql(Q, e))?;
        Ok(OutboxId(
            st.insert_one(params![
                e.ticket.map(|t| t.0),
                e.message_row.map(|m| m.0),
                e.kind,
                e.is_automatic,
                e.message_id,
                e.mail_from,
                e.rcpt_to.to_ascii_lowercase(),
                e.subject,
                e.raw,
                e.now.secs(),
                e.now.millis(),
            ])
            .map_err(|e| Error::sql(Q, e))?,
        ))
    }

    /// Set the envelope sender of outbox row `id` (its bounce address,
    /// which names the row).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_outbox_sender(&self, id: OutboxId, mail_from: &str) -> Result<(), Error> {
        const Q: &str = "UPDATE outbox SET mail_from = ?2 WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![id.0, mail_from])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// How many automatic mails were queued for `rcpt` at or after `since`
    /// (Unix seconds): what the per-recipient rate limit counts.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn automatic_mails_since(&self, rcpt: &str, since: i64) -> Result<u32, Error> {
        const Q: &str = "SELECT COUNT(*) FROM outbox
            WHERE rcpt_to = ?1 AND created_at >= ?2 AND is_automatic = 1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(params![rcpt.to_ascii_lowercase(), since], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))
    }

    /// Why `address` gets no mail now, if it is suppressed at `now`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn suppression(&self, address: &str, now: Time) -> Result<Option<String>, Error> {
        const Q: &str = "SELECT reason FROM suppressed_addresses WHERE address = ?1 AND until > ?2";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(params![address.to_ascii_lowercase(), now.secs()], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| Error::sql(Q, e))
    }

    /// Suppress mail to `address` until `until` (Unix seconds).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn suppress(
        &self,
        address: &str,
        until: i64,
        reason: &str,
        ticket: Option<TicketId>,
        now: Time,
    ) -> Result<(), Error> {
        const Q: &str =
            "INSERT INTO suppressed_addresses (address, until, reason, ticket_id, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT (address) DO UPDATE SET until = excluded.until, reason = excluded.reason,
                ticket_id = excluded.ticket_id, created_at = excluded.created_at";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![
            address.to_ascii_lowercase(),
            until,
            reason,
            ticket.map(|t| t.0),
            now.secs()
        ])
        .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// The ticket and kind of the outbox row that sent `message_id` to
    /// `rcpt`, if postdesk sent that mail to that address. A report about
    /// mail (a feedback report) is believed only for mail postdesk sent.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sent_to(
        &self,
        message_id: &str,
        rcpt: &str,
    ) -> Result<Option<(Option<TicketId>, String)>, Error> {
        const Q: &str = "SELECT ticket_id, kind FROM outbox WHERE message_id = ?1 AND rcpt_to = ?2
            LIMIT 1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(params![message_id, rcpt.to_ascii_lowercase()], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?.map(TicketId),
                r.get::<_, String>(1)?,
            ))
        })
        .optional()
        .map_err(|e| Error::sql(Q, e))
    }

    /// How many distinct recipients postdesk sent `message_id` to.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn recipient_count(&self, message_id: &str) -> Result<u32, Error> {
        const Q: &str = "SELECT COUNT(DISTINCT rcpt_to) FROM outbox WHERE message_id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(params![message_id], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))
    }

    /// The recipient, ticket and kind of outbox row `id`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn outbox_recipient(
        &self,
        id: OutboxId,
    ) -> Result<Option<(String, Option<TicketId>, String)>, Error> {
        const Q: &str = "SELECT rcpt_to, ticket_id, kind FROM outbox WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(params![id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?.map(TicketId),
                r.get::<_, String>(2)?,
            ))
        })
        .optional()
        .map_err(|e| Error::sql(Q, e))
    }

    /// Mark the outbox row that sent `message_id` to `rcpt` as failed
    /// (a bounce arrived after the relay accepted it). Returns its ticket
    /// and kind, if there is such a row.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn mark_bounced(
        &self,
        message_id: &str,
        rcpt: &str,
        detail: &str,
    ) -> Result<Option<(Option<TicketId>, String)>, Error> {
        const Q: &str = "UPDATE outbox SET status = 'failed', last_error = ?3
            WHERE message_id = ?1 AND rcpt_to = ?2 RETURNING ticket_id, kind";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(
            params![message_id, rcpt.to_ascii_lowercase(), detail],
            |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?.map(TicketId),
                    r.get::<_, String>(1)?,
                ))
            },
        )
        .optional()
        .map_err(|e| Error::sql(Q, e))
    }

    /// The ticket of the outbox row or stored message with `message_id`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket_of_message_id(&self, message_id: &str) -> Result<Option<TicketId>, Error> {
        const Q: &str =
            "SELECT ticket_id FROM outbox WHERE message_id = ?1 AND ticket_id IS NOT NULL
            UNION ALL
            SELECT ticket_id FROM messages WHERE message_id = ?1 AND ticket_id IS NOT NULL
            LIMIT 1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row([message_id], |r| r.get(0))
            .optional()
            .map(|t| t.map(TicketId))
            .map_err(|e| Error::sql(Q, e))
    }

    /// The ticket `ticket` was (transitively) merged into, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn merge_target(&self, ticket: TicketId) -> Result<Option<TicketId>, Error> {
        const Q: &str = "SELECT merged_into FROM tickets WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let mut current = ticket;
        let mut found = None;
        // A chain longer than this is a cycle nothing should have made.
        for _ in 0..16 {
            let next: Option<i64> = st
                .query_row([current.0], |r| r.get(0))
                .optional()
                .map_err(|e| Error::sql(Q, e))?
                .flatten();
            match next {
                Some(n) if n != current.0 => {
                    current = TicketId(n);
                    found = Some(current);
                }
                _ => break,
            }
        }
        Ok(found)
    }

    /// What the conversation needs to know about `ticket` (the thread
    /// fields stay empty; see [`Tx::load_thread`]).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn conversation(&self, ticket: TicketId) -> Result<Option<Conversation>, Error> {
        const Q: &str = "SELECT t.id, t.number, t.subject, t.status, t.priority, t.queue,
                t.issue_type, COALESCE(c.address, ''), t.requester_name, t.assignee,
                t.inbound_address, t.merged_into, t.created_at
            FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id WHERE t.id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let Some(conv) = st
            .query_row([ticket.0], |r| {
                Ok(Conversation {
                    id: TicketId(r.get(0)?),
                    number: r.get(1)?,
                    subject: r.get(2)?,
                    status: r.get(3)?,
                    priority: r.get(4)?,
                    queue: r.get(5)?,
                    issue_type: r.get(6)?,
                    requester: r.get(7)?,
                    requester_name: r.get(8)?,
                    assignee: r.get(9)?,
                    inbound_address: r.get(10)?,
                    merged_into: r.get::<_, Option<i64>>(11)?.map(TicketId),
                    created_at: r.get(12)?,
                    last_customer_message: None,
                    last_customer_refs: Vec::new(),
                    sent_to_customer: Vec::new(),
                })
            })
            .optional()
            .map_err(|e| Error::sql(Q, e))?
        else {
            return Ok(None);
        };
        Ok(Some(conv))
    }

    /// Fill in what a reply to the customer threads under: the newest
    /// customer message with its references, and postdesk's earlier replies.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn load_thread(&self, conv: &mut Conversation) -> Result<(), Error> {
        let ticket = conv.id;
        const LAST: &str = "SELECT message_id, refs FROM messages
            WHERE ticket_id = ?1 AND direction = 'inbound' AND kind = 'customer'
            ORDER BY id DESC LIMIT 1";
        let mut st = self
            .conn
            .prepare_cached(LAST)
            .map_err(|e| Error::sql(LAST, e))?;
        if let Some((id, refs)) = st
            .query_row([ticket.0], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()
            .map_err(|e| Error::sql(LAST, e))?
        {
            conv.last_customer_message = Some(id);
            conv.last_customer_refs = json_list(&refs);
        }
        const SENT: &str = "SELECT message_id FROM messages
            WHERE ticket_id = ?1 AND direction = 'outbound' AND kind = 'agent'
            ORDER BY id DESC LIMIT 10";
        let mut st = self
            .conn
            .prepare_cached(SENT)
            .map_err(|e| Error::sql(SENT, e))?;
        let mut sent: Vec<String> = st
            .query_map([ticket.0], |r| r.get(0))
            .map_err(|e| Error::sql(SENT, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(SENT, e))?;
        sent.reverse();
        conv.sent_to_customer = sent;
        Ok(())
    }

    /// The Message-IDs of the mail `agent` has of `ticket`, oldest first:
    /// what postdesk sent to them about it (notifications, answers) and
    /// what they sent to it. A notification threads under these, so the
    /// agent's mail client roots the ticket in mail the agent holds.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn agent_thread(&self, ticket: TicketId, agent: &str) -> Result<Vec<String>, Error> {
        const Q: &str = "SELECT message_id FROM messages
            WHERE ticket_id = ?1 AND is_synthetic_id = 0 AND (
                (direction = 'outbound'
                 AND EXISTS (SELECT 1 FROM json_each(to_addrs) WHERE value = ?2))
                OR (direction = 'inbound' AND kind IN ('agent', 'note') AND from_addr = ?2))
            ORDER BY id DESC LIMIT 20";
        const PG: &str = "SELECT message_id FROM messages
            WHERE ticket_id = ?1 AND is_synthetic_id = 0 AND (
                (direction = 'outbound'
                 AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(to_addrs::jsonb) j
                             WHERE j = ?2))
                OR (direction = 'inbound' AND kind IN ('agent', 'note') AND from_addr = ?2))
            ORDER BY id DESC LIMIT 20";
        let q = self.conn.pick(Q, PG);
        let mut st = self.conn.prepare_cached(q).map_err(|e| Error::sql(q, e))?;
        let mut ids: Vec<String> = st
            .query_map(params![ticket.0, agent.to_ascii_lowercase()], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(Q, e))?;
        ids.reverse();
        Ok(ids)
    }

    /// The Cc participants of `ticket` (role `cc`), with their names.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn cc_participants(&self, ticket: TicketId) -> Result<Vec<(String, String)>, Error> {
        const Q: &str =
            "SELECT c.address, c.name FROM participants p JOIN contacts c ON c.id = p.contact_id
            WHERE p.ticket_id = ?1 AND p.role = 'cc' ORDER BY p.added_at, c.id";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([ticket.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Set `ticket`'s status. A closed status stamps `closed_at`, any other
    /// clears it; `first_response` sets `first_response_at` if it is unset.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_ticket_status(
        &self,
        ticket: TicketId,
        status: &str,
        first_response: bool,
        now: Time,
    ) -> Result<(), Error> {
        const Q: &str = "UPDATE tickets SET status = ?2, updated_at = ?3,
                closed_at = CASE WHEN ?4 = 1 THEN CAST(?3 AS BIGINT) END,
                first_response_at = CASE WHEN ?5 = 1 AND first_response_at IS NULL
                    THEN CAST(?3 AS BIGINT) ELSE first_response_at END
            WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![
            ticket.0,
            status,
            now.secs(),
            Status::name_is_closed(status),
            first_response
        ])
        .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// Set one of `ticket`'s agent-editable fields.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_ticket_field(
        &self,
        ticket: TicketId,
        field: TicketField,
        value: &str,
        now: Time,
    ) -> Result<(), Error> {
        let q = match field {
            TicketField::Priority => {
                "UPDATE tickets SET priority = ?2, updated_at = ?3 WHERE id = ?1"
            }
            TicketField::Assignee => {
                "UPDATE tickets SET assignee = ?2, updated_at = ?3 WHERE id = ?1"
            }
            TicketField::IssueType => {
                "UPDATE tickets SET issue_type = ?2, updated_at = ?3 WHERE id = ?1"
            }
            TicketField::Queue => "UPDATE tickets SET queue = ?2, updated_at = ?3 WHERE id = ?1",
        };
        let mut st = self.conn.prepare_cached(q).map_err(|e| Error::sql(q, e))?;
        st.execute(params![ticket.0, value, now.secs()])
            .map_err(|e| Error::sql(q, e))?;
        Ok(())
    }

    /// Tag `ticket` (once).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn add_tag(&self, ticket: TicketId, tag: &str, now: Time) -> Result<bool, Error> {
        const Q: &str = "INSERT INTO ticket_tags (ticket_id, tag, added_at) VALUES (?1, ?2, ?3)
            ON CONFLICT DO NOTHING";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let n = st
            .execute(params![ticket.0, tag, now.secs()])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(n > 0)
    }

    /// The tags of `ticket`, sorted.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn tags(&self, ticket: TicketId) -> Result<Vec<String>, Error> {
        const Q: &str = "SELECT tag FROM ticket_tags WHERE ticket_id = ?1 ORDER BY tag";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([ticket.0], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Merge `source` into `target`: its messages (with their threading
    /// references), participants and tags move to the target, and the
    /// source is closed with a pointer to the target, so mail naming either
    /// ticket joins the target. Returns how many messages moved.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn merge_ticket(
        &self,
        source: TicketId,
        target: TicketId,
        now: Time,
    ) -> Result<i64, Error> {
        let run = |q: &str, p: &[&dyn rusqlite::ToSql]| -> Result<usize, Error> {
            let mut st = self.conn.prepare_cached(q).map_err(|e| Error::sql(q, e))?;
            st.execute(p).map_err(|e| Error::sql(q, e))
        };
        let moved = run(
            "UPDATE messages SET ticket_id = ?2 WHERE ticket_id = ?1",
            &[&source.0, &target.0],
        )?;
        run(
            "UPDATE message_refs SET ticket_id = ?2 WHERE ticket_id = ?1",
            &[&source.0, &target.0],
        )?;
        run(
            "UPDATE outbox SET ticket_id = ?2 WHERE ticket_id = ?1",
            &[&source.0, &target.0],
        )?;
        // A participant of both keeps the target's role.
        run(
            "INSERT INTO participants (ticket_id, contact_id, role, added_at)
             SELECT ?2, contact_id, CASE WHEN role = 'requester' THEN 'cc' ELSE role END, added_at
             FROM participants WHERE ticket_id = ?1
             ON CONFLICT DO NOTHING",
            &[&source.0, &target.0],
        )?;
        run(
            "DELETE FROM participants WHERE ticket_id = ?1",
            &[&source.0],
        )?;
        run(
            "INSERT INTO ticket_tags (ticket_id, tag, added_at)
             SELECT ?2, tag, added_at FROM ticket_tags WHERE ticket_id = ?1
             ON CONFLICT DO NOTHING",
            &[&source.0, &target.0],
        )?;
        let moved_i64 = i64::try_from(moved).unwrap_or(i64::MAX);
        run(
            "UPDATE tickets SET message_count = message_count +
                (SELECT message_count FROM tickets WHERE id = ?1), updated_at = ?3
             WHERE id = ?2",
            &[&source.0, &target.0, &now.secs()],
        )?;
        run(
            "UPDATE tickets SET status = 'Closed', closed_at = ?3, updated_at = ?3,
                merged_into = ?2, message_count = 0
             WHERE id = ?1",
            &[&source.0, &target.0, &now.secs()],
        )?;
        Ok(moved_i64)
    }
}

/// A field an agent command sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketField {
    /// `#priority`.
    Priority,
    /// `#assign`.
    Assignee,
    /// `#type`.
    IssueType,
    /// `#move`.
    Queue,
}

/// One claimed outbox row: what the worker sends.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Row id.
    pub id: OutboxId,
    /// Ticket.
    pub ticket: Option<TicketId>,
    /// Kind (`ack`, `relay`, ...).
    pub kind: String,
    /// Message-ID (the same on every attempt).
    pub message_id: String,
    /// Envelope sender.
    pub mail_from: String,
    /// Recipient.
    pub rcpt_to: String,
    /// Subject.
    pub subject: String,
    /// The bytes.
    pub raw: Vec<u8>,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// How one send ended.
#[derive(Debug, Clone)]
pub enum Settlement {
    /// Delivered (or written to the Maildir).
    Sent,
    /// Failed for now; try again at this time (Unix milliseconds).
    Retry {
        /// When.
        at_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// Failed for good.
    Failed {
        /// Why.
        error: String,
    },
    /// Claimed but never sent (the worker is stopping): queued again, the
    /// attempt not counted.
    Unclaimed,
}

impl Settlement {
    /// The mark of one finished attempt (a mail's send, a webhook's POST):
    /// sent when `failure` is `None`; a transient failure (`(true, why)`)
    /// retried `backoff` after `now_ms` while `attempts` (this one
    /// included) is below `max_attempts`, then failed; a permanent one
    /// failed at once.
    pub fn of_attempt(
        failure: Option<(bool, String)>,
        attempts: u32,
        max_attempts: u32,
        backoff: std::time::Duration,
        now_ms: i64,
    ) -> Settlement {
        match failure {
            None => Settlement::Sent,
            Some((true, error)) if attempts < max_attempts => Settlement::Retry {
                at_ms: now_ms
                    .saturating_add(i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX / 4)),
                error,
            },
            Some((true, error)) => Settlement::Failed {
                error: format!("gave up after {attempts} attempts: {error}"),
            },
            Some((false, error)) => Settlement::Failed { error },
        }
    }
}

/// The delivery worker's connection.
pub struct Outbox {
    conn: Connection,
}

impl Outbox {
    /// Open the outbox of the database in `data_dir`.
    ///
    /// # Errors
    ///
    /// When the database cannot be opened or migrated.
    pub fn open(at: impl Into<super::Location>) -> Result<Outbox, Error> {
        let conn = super::open_at(&at.into())?;
        // The worker's marks survive a crash of the process without an
        // fsync each (WAL with synchronous=NORMAL: a committed transaction
        // is in the WAL file, which the OS keeps); only a power loss can
        // lose the newest marks, and then those mails are sent again with
        // their Message-ID, the duplicate the README already allows. The
        // writer's connection keeps synchronous=FULL: a 250 needs it.
        if conn.lite().is_some() {
            conn.execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(|e| Error::sql("PRAGMA synchronous = NORMAL", e))?;
        }
        Ok(Outbox { conn })
    }

    /// Queue again every row left `sending` by a process that died between
    /// its claim and its mark. Its bytes and Message-ID are unchanged, so
    /// the resend is the same mail. Returns how many rows.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn recover(&mut self) -> Result<usize, Error> {
        recover_claims(&self.conn, "outbox")
    }

    /// In one transaction: record `settled` (calling `on_failed` with the
    /// transaction for each row that failed for good, so the event, the
    /// alert and the suppression commit with the mark), then claim up to
    /// `limit` rows due at `now` (status `sending`, attempts + 1).
    /// Returns the claimed rows and when the next queued row is due.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`], or `on_failed`'s error; nothing is committed then.
    pub fn settle_and_claim<F>(
        &mut self,
        settled: &[(OutboxId, Settlement)],
        mut on_failed: F,
        limit: usize,
        now: Time,
    ) -> Result<(Vec<Claimed>, Option<i64>), Error>
    where
        F: FnMut(&mut Tx<'_>, OutboxId, &str) -> Result<(), Error>,
    {
        let txn = self
            .conn
            .transaction_with_behavior(super::db::Begin::Immediate)
            .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
        {
            let mut tx = Tx::new(&txn);
            for (id, outcome) in settled {
                match outcome {
                    Settlement::Sent => {
                        const Q: &str = "UPDATE outbox SET status = 'sent', sent_at = ?2,
                            last_error = '', claimed_at = NULL WHERE id = ?1";
                        let mut st = txn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
                        st.execute(params![id.0, now.secs()])
                            .map_err(|e| Error::sql(Q, e))?;
                    }
                    Settlement::Retry { at_ms, error } => {
                        const Q: &str = "UPDATE outbox SET status = 'queued', next_attempt_at = ?2,
                            last_error = ?3, claimed_at = NULL WHERE id = ?1";
                        let mut st = txn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
                        st.execute(params![id.0, at_ms, error])
                            .map_err(|e| Error::sql(Q, e))?;
                    }
                    Settlement::Unclaimed => {
                        const Q: &str = "UPDATE outbox SET status = 'queued', claimed_at = NULL,
                            attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
                            WHERE id = ?1 AND status = 'sending'";
                        let mut st = txn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
                        st.execute(params![id.0]).map_err(|e| Error::sql(Q, e))?;
                    }
                    Settlement::Failed { error } => {
                        const Q: &str = "UPDATE outbox SET status = 'failed', last_error = ?2,
                            claimed_at = NULL WHERE id = ?1";
                        let mut st = txn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
                        st.execute(params![id.0, error])
                            .map_err(|e| Error::sql(Q, e))?;
                        on_failed(&mut tx, *id, error)?;
                    }
                }
            }
            tx.flush_search()?;
        }
        let mut claimed = Vec::new();
        if limit > 0 {
            const Q: &str = "UPDATE outbox SET status = 'sending', attempts = attempts + 1,
                    claimed_at = ?2
                WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?1
                    ORDER BY next_attempt_at, id LIMIT ?3)
                RETURNING id, ticket_id, kind, message_id, mail_from, rcpt_to, subject, raw, attempts";
            // Several nodes: rows another node is claiming are skipped, and
            // the claim names this node.
            const PG: &str = "UPDATE outbox SET status = 'sending', attempts = attempts + 1,
                    claimed_at = ?2, claimed_by = ?4
                WHERE status = 'queued' AND id IN (SELECT id FROM outbox
                    WHERE status = 'queued' AND next_attempt_at <= ?1
                    ORDER BY next_attempt_at, id LIMIT ?3 FOR UPDATE SKIP LOCKED)
                RETURNING id, ticket_id, kind, message_id, mail_from, rcpt_to, subject, raw, attempts";
            let rows = super::db::claim_due(&txn, (Q, PG), now, limit, |r| {
                Ok(Claimed {
                    id: OutboxId(r.get(0)?),
                    ticket: r.get::<_, Option<i64>>(1)?.map(TicketId),
                    kind: r.get(2)?,
                    message_id: r.get(3)?,
                    mail_from: r.get(4)?,
                    rcpt_to: r.get(5)?,
                    subject: r.get(6)?,
                    raw: r.get(7)?,
                    attempts: r.get(8)?,
                })
            })
            .map_err(|e| Error::sql(Q, e))?;
            claimed.extend(rows);
        }
        const NEXT: &str = "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'queued'";
        let next: Option<i64> = txn
            .query_row(NEXT, [], |r| r.get(0))
            .map_err(|e| Error::sql(NEXT, e))?;
        txn.commit().map_err(|e| Error::sql("COMMIT", e))?;
        Ok((claimed, next))
    }
}

/// Queue again the rows of `table` (the outbox, webhook deliveries) left
/// `sending` by a process that died between claim and mark. Several nodes:
/// only this node's own rows (from before its restart) and those of nodes
/// gone silent; the others' are being sent right now.
pub(super) fn recover_claims(conn: &Connection, table: &'static str) -> Result<usize, Error> {
    if conn.is_pg() {
        let q = format!(
            "UPDATE {table} SET status = 'queued', claimed_at = NULL, claimed_by = ''
            WHERE status = 'sending' AND (claimed_by = ?1 OR claimed_by NOT IN
                (SELECT name FROM nodes WHERE heartbeat_at >= ?2))"
        );
        let alive_since = Time::now().secs() - super::pg::DEAD_AFTER_SECS;
        return conn
            .execute(&q, params![conn.node(), alive_since])
            .map_err(|e| Error::sql(q.clone(), e));
    }
    let q =
        format!("UPDATE {table} SET status = 'queued', claimed_at = NULL WHERE status = 'sending'");
    conn.execute(&q, []).map_err(|e| Error::sql(q.clone(), e))
}

/// One row of `postdesk outbox`.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Ticket number (unformatted), if any.
    pub ticket: Option<i64>,
    /// The ticket's queue (empty without a ticket), for its number format.
    pub ticket_queue: String,
    /// When the ticket was opened, Unix seconds (0 without a ticket).
    pub ticket_opened_at: i64,
    /// Kind.
    pub kind: String,
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error, empty if none.
    pub last_error: String,
    /// Message-ID.
    pub message_id: String,
    /// When the next attempt is due, Unix milliseconds.
    pub next_attempt_at_ms: i64,
    /// When it was queued, Unix seconds.
    pub created_at: i64,
    /// When it was sent, Unix seconds.
    pub sent_at: Option<i64>,
}

/// What `postdesk outbox retry` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The row is queued again, due now.
    Requeued,
    /// The row was already sent; nothing changed.
    AlreadySent,
    /// The row is queued or being sent already; nothing changed.
    Pending,
}

impl Store {
    /// Every outbox row, newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn outbox(&self) -> Result<Vec<OutboxRow>, Error> {
        const Q: &str = "SELECT o.id, t.number, o.kind, o.rcpt_to, o.subject, o.status, o.attempts,
                o.last_error, o.message_id, o.next_attempt_at, o.created_at, o.sent_at,
                COALESCE(t.queue, ''), COALESCE(t.created_at, 0)
            FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id ORDER BY o.id DESC";
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    ticket: r.get(1)?,
                    ticket_queue: r.get(12)?,
                    ticket_opened_at: r.get(13)?,
                    kind: r.get(2)?,
                    to: r.get(3)?,
                    subject: r.get(4)?,
                    status: r.get(5)?,
                    attempts: r.get(6)?,
                    last_error: r.get(7)?,
                    message_id: r.get(8)?,
                    next_attempt_at_ms: r.get(9)?,
                    created_at: r.get(10)?,
                    sent_at: r.get(11)?,
                })
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Queue outbox row `id` again, due now, with its attempts reset (a
    /// failed row; `postdesk outbox retry`). Records an event on its
    /// ticket. `None` when there is no such row.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn retry_outbox(&mut self, id: i64, now: Time) -> Result<Option<RetryOutcome>, Error> {
        const FIND: &str = "SELECT status, ticket_id, rcpt_to FROM outbox WHERE id = ?1";
        const REQUEUE: &str = "UPDATE outbox SET status = 'queued', attempts = 0,
            next_attempt_at = ?2 WHERE id = ?1";
        self.retry_failed(id, now, (FIND, REQUEUE), |tx, ticket, rcpt| {
            // Retrying by hand overrides a suppression of the address.
            const UNSUPPRESS: &str = "DELETE FROM suppressed_addresses WHERE address = ?1";
            tx.conn
                .execute(UNSUPPRESS, [rcpt])
                .map_err(|e| Error::sql(UNSUPPRESS, e))?;
            match ticket {
                Some(t) => tx.event(
                    Some(t),
                    None,
                    "delivery_retried",
                    "cli",
                    &serde_json::json!({ "outbox": id, "to": rcpt }),
                    now,
                ),
                None => Ok(()),
            }
        })
    }

    /// A row queued again by hand, in one immediate transaction: `find`
    /// reads `(status, ticket_id, target)` of row `?1`; a `failed` row is
    /// set back by `requeue` (`?1` the id, `?2` now in milliseconds), then
    /// `requeued` records what goes with it; a `sent` row is left alone.
    pub(super) fn retry_failed(
        &mut self,
        id: i64,
        now: Time,
        (find, requeue): (&str, &str),
        requeued: impl FnOnce(&Tx<'_>, Option<TicketId>, &str) -> Result<(), Error>,
    ) -> Result<Option<RetryOutcome>, Error> {
        let txn = self
            .conn
            .transaction_with_behavior(super::db::Begin::Immediate)
            .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
        let Some((status, ticket, target)) = txn
            .query_row(find, [id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()
            .map_err(|e| Error::sql(find, e))?
        else {
            return Ok(None);
        };
        let outcome = match status.as_str() {
            "sent" => RetryOutcome::AlreadySent,
            "failed" => {
                txn.execute(requeue, params![id, now.millis()])
                    .map_err(|e| Error::sql(requeue, e))?;
                requeued(&Tx::new(&txn), ticket.map(TicketId), &target)?;
                RetryOutcome::Requeued
            }
            _ => RetryOutcome::Pending,
        };
        txn.commit().map_err(|e| Error::sql("COMMIT", e))?;
        Ok(Some(outcome))
    }

    /// Every message postdesk received (direction `inbound`), oldest first:
    /// `postdesk messages`. Mail postdesk sent is in `postdesk outbox` and
    /// in each ticket's `show`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn inbound_messages(&self) -> Result<Vec<MessageSummary>, Error> {
        self.message_summaries(true)
    }

    /// The tags of ticket `ticket` (row id), sorted.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket_tags(&self, ticket: i64) -> Result<Vec<String>, Error> {
        Tx::new(&self.conn).tags(TicketId(ticket))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    fn enqueue(outbox: &Outbox, rcpt: &str, automatic: bool, now: Time) -> OutboxId {
        Tx::new(&outbox.conn)
            .enqueue(&Enqueue {
                ticket: None,
                message_row: None,
                kind: "ack",
                is_automatic: automatic,
                message_id: &format!("{rcpt}.{}@desk.test", now.millis()),
                mail_from: "",
                rcpt_to: rcpt,
                subject: "s",
                raw: b"Subject: s\r\n\r\nx\r\n",
                now,
            })
            .unwrap()
    }

    fn status(outbox: &Outbox, id: OutboxId) -> (String, i64) {
        outbox
            .conn
            .query_row(
                "SELECT status, attempts FROM outbox WHERE id = ?1",
                [id.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    #[test]
    fn claim_mark_retry_and_recover_keep_one_row_per_mail() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        let a = enqueue(&outbox, "a@x.test", true, Time::from_millis(1_000));
        let b = enqueue(&outbox, "b@x.test", false, Time::from_millis(1_000));
        let ok = |_: &mut Tx<'_>, _: OutboxId, _: &str| Ok(());

        // Not due yet at 999 ms; both due at 1000.
        let (claimed, next) = outbox
            .settle_and_claim(&[], ok, 10, Time::from_millis(999))
            .unwrap();
        assert!(claimed.is_empty());
        assert_eq!(next, Some(1_000));
        let (claimed, next) = outbox
            .settle_and_claim(&[], ok, 1, Time::from_millis(1_000))
            .unwrap();
        assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), [a]);
        assert_eq!(claimed[0].attempts, 1);
        assert_eq!(next, Some(1_000), "b is still due");
        assert_eq!(status(&outbox, a), ("sending".into(), 1));

        // A crash now: a is recovered with its bytes and id.
        assert_eq!(outbox.recover().unwrap(), 1);
        assert_eq!(status(&outbox, a), ("queued".into(), 1));

        let (claimed, _) = outbox
            .settle_and_claim(&[], ok, 10, Time::from_millis(2_000))
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let mut failed = Vec::new();
        let (_, next) = outbox
            .settle_and_claim(
                &[
                    (a, Settlement::Sent),
                    (
                        b,
                        Settlement::Retry {
                            at_ms: 5_000,
                            error: "451 busy".into(),
                        },
                    ),
                ],
                |_, id, e| {
                    failed.push((id, e.to_owned()));
                    Ok(())
                },
                0,
                Time::from_millis(3_000),
            )
            .unwrap();
        assert!(failed.is_empty());
        assert_eq!(next, Some(5_000));
        assert_eq!(status(&outbox, a), ("sent".into(), 2));
        assert_eq!(status(&outbox, b), ("queued".into(), 1));

        let (claimed, _) = outbox
            .settle_and_claim(&[], ok, 10, Time::from_millis(5_000))
            .unwrap();
        assert_eq!(claimed[0].id, b);
        outbox
            .settle_and_claim(
                &[(
                    b,
                    Settlement::Failed {
                        error: "550 no".into(),
                    },
                )],
                |_, id, e| {
                    failed.push((id, e.to_owned()));
                    Ok(())
                },
                0,
                Time::from_millis(6_000),
            )
            .unwrap();
        assert_eq!(failed, [(b, "550 no".to_owned())]);
        assert_eq!(status(&outbox, b), ("failed".into(), 2));

        // The rate limit counts automatic mail only.
        let tx = Tx::new(&outbox.conn);
        assert_eq!(tx.automatic_mails_since("A@x.test", 0).unwrap(), 1);
        assert_eq!(tx.automatic_mails_since("b@x.test", 0).unwrap(), 0);
        drop(outbox);

        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.retry_outbox(b.0, Time::from_millis(7_000)).unwrap(),
            Some(RetryOutcome::Requeued)
        );
        assert_eq!(
            store.retry_outbox(a.0, Time::from_millis(7_000)).unwrap(),
            Some(RetryOutcome::AlreadySent)
        );
        assert_eq!(
            store.retry_outbox(999, Time::from_millis(7_000)).unwrap(),
            None
        );
        let rows = store.outbox().unwrap();
        let row_b = rows.iter().find(|r| r.id == b.0).unwrap();
        assert_eq!((row_b.status.as_str(), row_b.attempts), ("queued", 0));
    }

    #[test]
    fn a_failing_failure_handler_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        let a = enqueue(&outbox, "a@x.test", true, Time::from_millis(1_000));
        outbox
            .settle_and_claim(&[], |_, _, _| Ok(()), 10, Time::from_millis(1_000))
            .unwrap();
        let r = outbox.settle_and_claim(
            &[(
                a,
                Settlement::Failed {
                    error: "550".into(),
                },
            )],
            |_, _, _| Err(Error::WriterGone),
            10,
            Time::from_millis(2_000),
        );
        assert!(r.is_err());
        assert_eq!(
            status(&outbox, a),
            ("sending".into(), 1),
            "the mark rolled back"
        );
    }

    #[test]
    fn suppression_expires() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let tx = Tx::new(&outbox.conn);
        tx.suppress(
            "Gone@X.test",
            100,
            "5.1.1 user unknown",
            None,
            Time::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            tx.suppression("gone@x.test", Time::from_secs(99))
                .unwrap()
                .as_deref(),
            Some("5.1.1 user unknown")
        );
        assert_eq!(
            tx.suppression("gone@x.test", Time::from_secs(100)).unwrap(),
            None
        );
    }
}
