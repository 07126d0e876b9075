//! Satisfaction ratings: one row per ticket, written by the pipeline when
//! mail reaches a ticket's signed rating address, read by `show` and
//! `stats satisfaction`.
//!
//! The store only keeps and counts rows; which mail is a rating and what
//! it says is decided by `agent::sender` and `satisfaction`.

use super::db::{OptionalExtension, params};
use serde::Serialize;

use super::{Error, Store, Tx};
use crate::domain::{MessageRowId, TicketId, Time};

/// A rating to record.
#[derive(Debug, Clone, Copy)]
pub struct NewRating<'a> {
    /// The ticket rated.
    pub ticket: TicketId,
    /// 1 to 5.
    pub score: u8,
    /// What the customer wrote, quotes removed.
    pub comment: &'a str,
    /// The From address of the rating mail.
    pub rater: &'a str,
    /// The stored rating mail.
    pub message: MessageRowId,
    /// When.
    pub now: Time,
}

/// A ticket's rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rating {
    /// 1 (worst) to 5 (best).
    pub score: u8,
    /// What the customer wrote with it (may be empty).
    pub comment: String,
    /// When it was given, Unix seconds.
    pub rated_at: i64,
}

/// How many ratings of one score the tickets of one queue and assignee got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RatingCount {
    /// The ticket's queue.
    pub queue: String,
    /// The ticket's assignee (empty: nobody).
    pub assignee: String,
    /// The score.
    pub score: u8,
    /// How many.
    pub count: i64,
}

impl Tx<'_> {
    /// Record `r` as its ticket's rating, replacing an earlier one; whether
    /// there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn record_rating(&self, r: &NewRating<'_>) -> Result<bool, Error> {
        const SEEN: &str = "SELECT 1 FROM ratings WHERE ticket_id = ?1";
        let replaced = self
            .conn
            .prepare_cached(SEEN)
            .and_then(|mut st| st.query_row([r.ticket.0], |_| Ok(())).optional())
            .map_err(|e| Error::sql(SEEN, e))?
            .is_some();
        const Q: &str = "INSERT INTO ratings (ticket_id, score, comment, rater, message_row_id,
                rated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT (ticket_id) DO UPDATE SET score = excluded.score,
                comment = excluded.comment, rater = excluded.rater,
                message_row_id = excluded.message_row_id, rated_at = excluded.rated_at";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| {
                st.execute(params![
                    r.ticket.0,
                    r.score,
                    r.comment,
                    r.rater,
                    r.message.0,
                    r.now.secs()
                ])
            })
            .map_err(|e| Error::sql(Q, e))?;
        Ok(replaced)
    }
}

impl Store {
    /// The rating of `ticket`, if it has one.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn rating(&self, ticket: TicketId) -> Result<Option<Rating>, Error> {
        const Q: &str = "SELECT score, comment, rated_at FROM ratings WHERE ticket_id = ?1";
        self.conn
            .query_row(Q, [ticket.0], |r| {
                Ok(Rating {
                    score: r.get(0)?,
                    comment: r.get(1)?,
                    rated_at: r.get(2)?,
                })
            })
            .optional()
            .map_err(|e| Error::sql(Q, e))
    }

    /// Ratings given at or after `since` (Unix seconds), counted by the
    /// ticket's queue and assignee as they are now, and by score.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn rating_counts(&self, since: i64) -> Result<Vec<RatingCount>, Error> {
        const Q: &str = "SELECT t.queue, t.assignee, r.score, COUNT(*)
            FROM ratings r JOIN tickets t ON t.id = r.ticket_id
            WHERE r.rated_at >= ?1
            GROUP BY t.queue, t.assignee, r.score
            ORDER BY t.queue, t.assignee, r.score";
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([since], |r| {
                Ok(RatingCount {
                    queue: r.get(0)?,
                    assignee: r.get(1)?,
                    score: r.get(2)?,
                    count: r.get(3)?,
                })
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }
}
