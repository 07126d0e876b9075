//! What automation rules read and write beyond the ticket's own fields:
//! how long a ticket has been in its status, its tags, each agent's
//! unfinished tickets, the round-robin cursor and the idle rules that ran.

use super::db::{OptionalExtension, params};

use super::{Error, Tx};
use crate::domain::{TicketId, Time};

impl Tx<'_> {
    /// Since when `ticket` is in its status, Unix seconds.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn status_since(&self, ticket: TicketId) -> Result<Option<i64>, Error> {
        const Q: &str = "SELECT COALESCE(status_changed_at, created_at) FROM tickets WHERE id = ?1";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| st.query_row([ticket.0], |r| r.get(0)).optional())
            .map_err(|e| Error::sql(Q, e))
    }

    /// Remove `tag` from `ticket`; whether it had it.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn remove_tag(&self, ticket: TicketId, tag: &str) -> Result<bool, Error> {
        const Q: &str = "DELETE FROM ticket_tags WHERE ticket_id = ?1 AND tag = ?2";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| st.execute(params![ticket.0, tag]))
            .map(|n| n > 0)
            .map_err(|e| Error::sql(Q, e))
    }

    /// How many tickets each of `agents` has that are not Resolved or
    /// Closed (merged ones not counted), in the order given.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn unfinished_counts(&self, agents: &[&str]) -> Result<Vec<i64>, Error> {
        const Q: &str = "SELECT COUNT(*) FROM tickets WHERE assignee = ?1
            AND status NOT IN ('Resolved', 'Closed') AND merged_into IS NULL";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        agents
            .iter()
            .map(|a| {
                st.query_row([a], |r| r.get(0))
                    .map_err(|e| Error::sql(Q, e))
            })
            .collect()
    }

    /// The agent `team` last gave a ticket to by rule.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn assignment_cursor(&self, team: &str) -> Result<Option<String>, Error> {
        const Q: &str = "SELECT agent FROM assignment_cursor WHERE team = ?1";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| st.query_row([team], |r| r.get(0)).optional())
            .map_err(|e| Error::sql(Q, e))
    }

    /// Record that `team` gave its last ticket to `agent`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_assignment_cursor(&self, team: &str, agent: &str, now: Time) -> Result<(), Error> {
        const Q: &str = "INSERT INTO assignment_cursor (team, agent, at) VALUES (?1, ?2, ?3)
            ON CONFLICT (team) DO UPDATE SET agent = excluded.agent, at = excluded.at";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| st.execute(params![team, agent, now.secs()]))
            .map(|_| ())
            .map_err(|e| Error::sql(Q, e))
    }

    /// Up to `limit` tickets, not Closed, in their status since at most
    /// `cutoff` (Unix seconds), that idle rule `rule` has not run on for
    /// that stay: `(ticket, since)`, longest idle first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn idle_candidates(
        &self,
        rule: &str,
        cutoff: i64,
        limit: usize,
    ) -> Result<Vec<(TicketId, i64)>, Error> {
        const Q: &str = "SELECT t.id, t.status_changed_at FROM tickets t
            WHERE t.status_changed_at <= ?2 AND t.status <> 'Closed' AND t.merged_into IS NULL
              AND NOT EXISTS (SELECT 1 FROM automation_idle a
                  WHERE a.rule = ?1 AND a.ticket_id = t.id AND a.since = t.status_changed_at)
            ORDER BY t.status_changed_at LIMIT ?3";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map(
                params![rule, cutoff, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| Ok((TicketId(r.get(0)?), r.get(1)?)),
            )
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Record that idle rule `rule` ran on `ticket` for its stay since
    /// `since`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn mark_idle(
        &self,
        rule: &str,
        ticket: TicketId,
        since: i64,
        now: Time,
    ) -> Result<(), Error> {
        const Q: &str = "INSERT INTO automation_idle (rule, ticket_id, since, at)
            VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
        self.conn
            .prepare_cached(Q)
            .and_then(|mut st| st.execute(params![rule, ticket.0, since, now.secs()]))
            .map(|_| ())
            .map_err(|e| Error::sql(Q, e))
    }
}
