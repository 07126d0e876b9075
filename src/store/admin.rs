//! Admin verbs for the CLI (`postdesk close`): small writes outside the
//! pipeline, each in its own transaction with its audit event.
//!
//! They run beside a live server: SQLite's WAL lets this connection write
//! between the writer thread's batches (the busy timeout waits for the lock),
//! and each change commits whole or not at all.

use super::db::{OptionalExtension, params};

use super::{Error, Store, TicketRef};
use crate::domain::{Status, Time};

/// What [`Store::set_status`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The ticket's row id.
    pub id: i64,
    /// Its number (unformatted).
    pub number: i64,
    /// Its queue, for its number format.
    pub queue: String,
    /// When it was opened, Unix seconds.
    pub created_at: i64,
    /// The status before.
    pub from: String,
    /// The status now.
    pub to: String,
}

impl Store {
    /// Set a ticket's status, recording a `status_changed` event with
    /// `cause`. A closed status ([`Status::is_closed`]) stamps
    /// `closed_at` (the start of the reopen window); any other clears it.
    /// `None` when there is no such ticket.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_status(
        &mut self,
        which: TicketRef,
        status: &str,
        cause: &str,
        now: Time,
    ) -> Result<Option<StatusChange>, Error> {
        let txn = self
            .conn
            .transaction_with_behavior(super::db::Begin::Immediate)
            .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
        let (clause, value) = match which {
            TicketRef::Id(id) => ("id = ?1", id),
            TicketRef::Number(n) => ("number = ?1", n),
        };
        let q = format!("SELECT id, number, status, queue, created_at FROM tickets WHERE {clause}");
        let Some((id, number, from, queue, created_at)) = txn
            .query_row(&q, [value], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(|e| Error::sql("find ticket", e))?
        else {
            return Ok(None);
        };
        const SET: &str = "UPDATE tickets SET status = ?2, updated_at = ?3,
                closed_at = CASE WHEN ?4 = 1 THEN CAST(?3 AS BIGINT) END
            WHERE id = ?1";
        txn.execute(
            SET,
            params![id, status, now.secs(), Status::name_is_closed(status)],
        )
        .map_err(|e| Error::sql(SET, e))?;
        let detail = serde_json::json!({ "from": from, "to": status }).to_string();
        super::Tx::new(&txn).record_event(&super::NewEvent {
            ticket: Some(crate::domain::TicketId(id)),
            message: None,
            kind: "status_changed",
            cause,
            detail: &detail,
            now,
        })?;
        txn.commit().map_err(|e| Error::sql("COMMIT", e))?;
        Ok(Some(StatusChange {
            id,
            number,
            queue,
            created_at,
            from,
            to: status.to_string(),
        }))
    }
}
