//! SLA clocks and auto-close: the rows behind `sla` (see migration
//! `0008_sla`). Rows only; the rules are in `sla`.

use std::collections::HashMap;

use super::db::{OptionalExtension, Row, params};

use super::{Error, Tx};
use crate::domain::sla::{Clock, Clocks, Kind, Target};
use crate::domain::{TicketId, Time};

/// What the SLA needs of a ticket.
#[derive(Debug, Clone)]
pub struct SlaTicket {
    /// Number (unformatted).
    pub number: i64,
    /// Status.
    pub status: String,
    /// Priority as stored.
    pub priority: String,
    /// Queue.
    pub queue: String,
    /// Issue type.
    pub issue_type: String,
    /// The address it came in through.
    pub inbound_address: String,
    /// Assigned agent's name, empty if none.
    pub assignee: String,
    /// Opened, Unix seconds.
    pub created_at: i64,
    /// Clients it belongs to.
    pub clients: Vec<String>,
}

fn clock(r: &Row<'_>, at: usize) -> rusqlite::Result<Clock> {
    Ok(Clock {
        start: r.get(at)?,
        base: r.get(at + 1)?,
        cycle: r.get(at + 2)?,
        met: r.get(at + 3)?,
        due: r.get(at + 4)?,
    })
}

/// The clock columns (`policy` … `res_due`) from column `at` on.
fn clocks(r: &Row<'_>, at: usize) -> rusqlite::Result<Clocks> {
    Ok(Clocks {
        policy: r.get(at)?,
        status_seen: r.get(at + 1)?,
        paused_since: r.get(at + 2)?,
        paused_secs: r.get(at + 3)?,
        first: clock(r, at + 4)?,
        next: clock(r, at + 9)?,
        resolution: clock(r, at + 14)?,
    })
}

/// A ticket's row with its clocks, as listed by [`Tx::sla_open`].
#[derive(Debug, Clone)]
pub struct SlaRow {
    /// The ticket.
    pub ticket: TicketId,
    /// Its number.
    pub number: i64,
    /// Its priority as stored.
    pub priority: String,
    /// Its clocks.
    pub clocks: Clocks,
}

impl Tx<'_> {
    /// The SLA clocks of `ticket`, if it runs under a policy.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sla_clocks(&self, ticket: TicketId) -> Result<Option<Clocks>, Error> {
        const Q: &str = "SELECT policy, status_seen, paused_since, paused_secs,
                first_start, first_base, first_cycle, first_met, first_due,
                next_start, next_base, next_cycle, next_met, next_due,
                res_start, res_base, res_cycle, res_met, res_due
            FROM ticket_sla WHERE ticket_id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row([ticket.0], |r| clocks(r, 0))
            .optional()
            .map_err(|e| Error::sql(Q, e))
    }

    /// The clocks of each of `tickets` that has them.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sla_clocks_of(
        &self,
        tickets: impl IntoIterator<Item = TicketId>,
    ) -> Result<HashMap<TicketId, Clocks>, Error> {
        let mut out = HashMap::new();
        for t in tickets {
            if !out.contains_key(&t)
                && let Some(c) = self.sla_clocks(t)?
            {
                out.insert(t, c);
            }
        }
        Ok(out)
    }

    /// Store `ticket`'s clocks with when to look at them next; `None`
    /// removes them (no policy applies any more).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn put_sla(
        &self,
        ticket: TicketId,
        clocks: Option<&Clocks>,
        next_check: Option<i64>,
    ) -> Result<(), Error> {
        let Some(c) = clocks else {
            const Q: &str = "DELETE FROM ticket_sla WHERE ticket_id = ?1";
            let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
            st.execute([ticket.0]).map_err(|e| Error::sql(Q, e))?;
            return Ok(());
        };
        const Q: &str = "INSERT INTO ticket_sla (ticket_id, policy, status_seen,
                paused_since, paused_secs,
                first_start, first_base, first_cycle, first_met, first_due,
                next_start, next_base, next_cycle, next_met, next_due,
                res_start, res_base, res_cycle, res_met, res_due, next_check)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                ?16, ?17, ?18, ?19, ?20, ?21)
            ON CONFLICT (ticket_id) DO UPDATE SET policy = excluded.policy,
                status_seen = excluded.status_seen, paused_since = excluded.paused_since,
                paused_secs = excluded.paused_secs, first_start = excluded.first_start,
                first_base = excluded.first_base, first_cycle = excluded.first_cycle,
                first_met = excluded.first_met, first_due = excluded.first_due,
                next_start = excluded.next_start, next_base = excluded.next_base,
                next_cycle = excluded.next_cycle, next_met = excluded.next_met,
                next_due = excluded.next_due, res_start = excluded.res_start,
                res_base = excluded.res_base, res_cycle = excluded.res_cycle,
                res_met = excluded.res_met, res_due = excluded.res_due,
                next_check = excluded.next_check";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let (f, n, r) = (&c.first, &c.next, &c.resolution);
        st.execute(params![
            ticket.0,
            c.policy,
            c.status_seen,
            c.paused_since,
            c.paused_secs,
            f.start,
            f.base,
            f.cycle,
            f.met,
            f.due,
            n.start,
            n.base,
            n.cycle,
            n.met,
            n.due,
            r.start,
            r.base,
            r.cycle,
            r.met,
            r.due,
            next_check,
        ])
        .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// Set only when to look at `ticket` next.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_sla_next_check(&self, ticket: TicketId, at: Option<i64>) -> Result<(), Error> {
        const Q: &str = "UPDATE ticket_sla SET next_check = ?2 WHERE ticket_id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![ticket.0, at])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// Tickets whose next SLA check is due at `now`, soonest first, at
    /// most `limit`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sla_due(&self, now: Time, limit: usize) -> Result<Vec<TicketId>, Error> {
        const Q: &str = "SELECT ticket_id FROM ticket_sla
            WHERE next_check IS NOT NULL AND next_check <= ?1
            ORDER BY next_check LIMIT ?2";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map(params![now.secs(), limit as i64], |r| {
                r.get(0).map(TicketId)
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// The warnings and breaches of `ticket` that fired.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sla_fired(&self, ticket: TicketId) -> Result<Vec<(Target, i64, Kind)>, Error> {
        const Q: &str = "SELECT target, cycle, kind FROM sla_alerts WHERE ticket_id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([ticket.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| Error::sql(Q, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (target, cycle, kind) = row.map_err(|e| Error::sql(Q, e))?;
            let kind = if kind == Kind::Breached.as_str() {
                Kind::Breached
            } else {
                Kind::Warning
            };
            if let Some(t) = Target::parse(&target) {
                out.push((t, cycle, kind));
            }
        }
        Ok(out)
    }

    /// Record that a warning or breach fired; `false` when it had already
    /// (nothing is written then).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn record_sla_alert(
        &self,
        ticket: TicketId,
        target: Target,
        cycle: i64,
        kind: Kind,
        now: Time,
    ) -> Result<bool, Error> {
        const Q: &str =
            "INSERT OR IGNORE INTO sla_alerts (ticket_id, target, cycle, kind, fired_at)
            VALUES (?1, ?2, ?3, ?4, ?5)";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let n = st
            .execute(params![
                ticket.0,
                target.as_str(),
                cycle,
                kind.as_str(),
                now.secs()
            ])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(n == 1)
    }

    /// What the SLA needs of `ticket`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sla_ticket(&self, ticket: TicketId) -> Result<Option<SlaTicket>, Error> {
        const Q: &str = "SELECT number, status, priority, queue, issue_type, inbound_address,
                assignee, created_at FROM tickets WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let Some(mut t) = st
            .query_row([ticket.0], |r| {
                Ok(SlaTicket {
                    number: r.get(0)?,
                    status: r.get(1)?,
                    priority: r.get(2)?,
                    queue: r.get(3)?,
                    issue_type: r.get(4)?,
                    inbound_address: r.get(5)?,
                    assignee: r.get(6)?,
                    created_at: r.get(7)?,
                    clients: Vec::new(),
                })
            })
            .optional()
            .map_err(|e| Error::sql(Q, e))?
        else {
            return Ok(None);
        };
        const C: &str = "SELECT client FROM ticket_clients WHERE ticket_id = ?1 ORDER BY client";
        let mut st = self.conn.prepare_cached(C).map_err(|e| Error::sql(C, e))?;
        let rows = st
            .query_map([ticket.0], |r| r.get::<_, String>(0))
            .map_err(|e| Error::sql(C, e))?;
        t.clients = rows
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(C, e))?;
        Ok(Some(t))
    }

    /// Open tickets that run under a policy, with their clocks, by number.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sla_open(&self) -> Result<Vec<SlaRow>, Error> {
        const Q: &str = concat!(
            "SELECT t.id, t.number, t.priority, s.policy, s.status_seen, s.paused_since,
                s.paused_secs,
                s.first_start, s.first_base, s.first_cycle, s.first_met, s.first_due,
                s.next_start, s.next_base, s.next_cycle, s.next_met, s.next_due,
                s.res_start, s.res_base, s.res_cycle, s.res_met, s.res_due
            FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id
            WHERE t.status COLLATE NOCASE NOT IN ",
            closed_statuses!(),
            " ORDER BY t.number"
        );
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([], |r| {
                Ok(SlaRow {
                    ticket: TicketId(r.get(0)?),
                    number: r.get(1)?,
                    priority: r.get(2)?,
                    clocks: clocks(r, 3)?,
                })
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Tickets in one of `statuses` whose status has not changed since
    /// `before` (Unix seconds), oldest first, at most `limit`: the
    /// candidates for auto-close.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn unchanged_since(
        &self,
        statuses: [&str; 2],
        before: i64,
        limit: usize,
    ) -> Result<Vec<(TicketId, i64, i64)>, Error> {
        const Q: &str = "SELECT id, number, status_changed_at FROM tickets
            WHERE status IN (?1, ?2) AND status_changed_at <= ?3
            ORDER BY status_changed_at LIMIT ?4";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map(
                params![statuses[0], statuses[1], before, limit as i64],
                |r| Ok((TicketId(r.get(0)?), r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }
}

impl super::Store {
    /// Open tickets under a policy, with their clocks (see [`Tx::sla_open`]).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn sla_open(&self) -> Result<Vec<SlaRow>, Error> {
        Tx::new(&self.conn).sla_open()
    }

    /// Auto-close candidates (see [`Tx::unchanged_since`]).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn unchanged_since(
        &self,
        statuses: [&str; 2],
        before: i64,
        limit: usize,
    ) -> Result<Vec<(TicketId, i64, i64)>, Error> {
        Tx::new(&self.conn).unchanged_since(statuses, before, limit)
    }
}
