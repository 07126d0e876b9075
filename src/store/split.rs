//! Splitting a ticket: a message and the ones after it move to a new
//! ticket (a customer who asks a second question in the same thread).

use super::db::{OptionalExtension, params};

use super::{Error, Tx};
use crate::domain::{MessageRowId, TicketId, Time};

/// A message of a ticket, as splitting needs it.
#[derive(Debug, Clone)]
pub struct SplitPoint {
    /// Its row.
    pub row: MessageRowId,
    /// Its ticket.
    pub ticket: TicketId,
    /// Its subject.
    pub subject: String,
    /// `inbound` or `outbound`.
    pub direction: String,
}

impl Tx<'_> {
    /// The message stored under Message-ID `message_id` (without angle
    /// brackets), or with row id `row`: the newest when several share it.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn split_point(
        &self,
        message_id: &str,
        row: Option<i64>,
    ) -> Result<Option<SplitPoint>, Error> {
        const Q: &str = "SELECT id, ticket_id, subject, direction FROM messages
            WHERE (message_id = ?1 OR id = ?2) AND ticket_id IS NOT NULL
            ORDER BY message_id = ?1 DESC, id DESC LIMIT 1";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| {
                st.query_row(params![message_id, row.unwrap_or(-1)], |r| {
                    Ok(SplitPoint {
                        row: MessageRowId(r.get(0)?),
                        ticket: TicketId(r.get(1)?),
                        subject: r.get(2)?,
                        direction: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(|e| Error::sql(Q, e))
    }

    /// The newest inbound message of `ticket` stored before `row`: the
    /// customer message a notification stored as `row` was about.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn inbound_before(
        &self,
        ticket: TicketId,
        row: MessageRowId,
    ) -> Result<Option<SplitPoint>, Error> {
        const Q: &str = "SELECT id, ticket_id, subject, direction FROM messages
            WHERE ticket_id = ?1 AND id < ?2 AND direction = 'inbound' AND kind = 'customer'
            ORDER BY id DESC LIMIT 1";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| {
                st.query_row(params![ticket.0, row.0], |r| {
                    Ok(SplitPoint {
                        row: MessageRowId(r.get(0)?),
                        ticket: TicketId(r.get(1)?),
                        subject: r.get(2)?,
                        direction: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(|e| Error::sql(Q, e))
    }

    /// Whether `ticket` has a message stored before `row`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn has_messages_before(&self, ticket: TicketId, row: MessageRowId) -> Result<bool, Error> {
        const Q: &str = "SELECT EXISTS (SELECT 1 FROM messages WHERE ticket_id = ?1 AND id < ?2)";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| st.query_row(params![ticket.0, row.0], |r| r.get(0)))
            .map_err(|e| Error::sql(Q, e))
    }

    /// Move the messages of `source` from row `from` on (except `keep`,
    /// the mail that asked for the split) to `target`, with their thread
    /// references and outbox rows; `target` gets `source`'s participants.
    /// How many messages moved (postdesk's own mail not counted).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn move_messages_from(
        &self,
        source: TicketId,
        target: TicketId,
        from: MessageRowId,
        keep: Option<MessageRowId>,
        now: Time,
    ) -> Result<i64, Error> {
        let keep = keep.map_or(-1, |k| k.0);
        let run = |q: &str, p: &[&dyn rusqlite::ToSql]| -> Result<usize, Error> {
            let mut st = self.conn.prepare_cached(q).map_err(|e| Error::sql(q, e))?;
            st.execute(p).map_err(|e| Error::sql(q, e))
        };
        // Counted as the ticket counts them: postdesk's own mail not.
        const COUNT: &str = "SELECT COUNT(*) FROM messages
            WHERE ticket_id = ?1 AND id >= ?2 AND id <> ?3 AND direction <> 'outbound'";
        let moved: i64 = self
            .conn
            .prepare_cached(COUNT)
            .and_then(|mut st| st.query_row(params![source.0, from.0, keep], |r| r.get(0)))
            .map_err(|e| Error::sql(COUNT, e))?;
        run(
            "UPDATE messages SET ticket_id = ?2 WHERE ticket_id = ?1 AND id >= ?3 AND id <> ?4",
            &[&source.0, &target.0, &from.0, &keep],
        )?;
        run(
            "UPDATE message_refs SET ticket_id = ?2
             WHERE ticket_id = ?1 AND message_row_id >= ?3 AND message_row_id <> ?4",
            &[&source.0, &target.0, &from.0, &keep],
        )?;
        run(
            "UPDATE outbox SET ticket_id = ?2
             WHERE ticket_id = ?1 AND message_row_id >= ?3 AND message_row_id <> ?4",
            &[&source.0, &target.0, &from.0, &keep],
        )?;
        run(
            "INSERT INTO participants (ticket_id, contact_id, role, added_at)
             SELECT ?2, contact_id, role, ?3 FROM participants WHERE ticket_id = ?1
             ON CONFLICT DO NOTHING",
            &[&source.0, &target.0, &now.secs()],
        )?;
        for t in [source, target] {
            run(
                "UPDATE tickets SET message_count =
                    (SELECT COUNT(*) FROM messages WHERE ticket_id = ?1 AND direction <> 'outbound'),
                    updated_at = ?2
                 WHERE id = ?1",
                &[&t.0, &now.secs()],
            )?;
        }
        Ok(moved)
    }
}
