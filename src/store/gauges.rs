//! What `/metrics` reads from the database at each scrape: counts that are
//! the state of the store (open tickets, backlogs, SLA, mailboxes, flags)
//! rather than events of this process, so they are right after a restart
//! and agree with the CLI.
//!
//! Every label value comes from a small set (queues, priorities, statuses,
//! row states): no address or subject is ever a label.

use super::{Error, Store};

/// One scrape's counts from the store.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Open (not closed) tickets: queue, priority, status, count.
    pub open_tickets: Vec<(String, String, String, i64)>,
    /// Outbox rows not sent: status (`queued`, `sending`, `failed`), count.
    pub outbox: Vec<(String, i64)>,
    /// Webhook deliveries not sent: status, count.
    pub webhooks: Vec<(String, i64)>,
    /// Open tickets with an SLA warning fired and no breach.
    pub sla_at_risk: i64,
    /// Open tickets with an SLA breach fired.
    pub sla_breached: i64,
    /// Polled mailboxes reported broken, and those reported healthy.
    pub mailboxes_broken: i64,
    /// Polled mailboxes with a health row that is not broken.
    pub mailboxes_healthy: i64,
    /// Messages the detector flagged, by queue.
    pub detector_flags: Vec<(String, i64)>,
}

impl Store {
    /// Count what `/metrics` shows of the store.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn gauges(&self) -> Result<Gauges, Error> {
        let pairs = |q: &'static str| -> Result<Vec<(String, i64)>, Error> {
            let mut st = self.conn.prepare_cached(q).map_err(|e| Error::sql(q, e))?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| Error::sql(q, e))?;
            rows.collect::<Result<_, _>>().map_err(|e| Error::sql(q, e))
        };
        let one = |q: &'static str| -> Result<i64, Error> {
            self.conn
                .query_row(q, [], |r| r.get(0))
                .map_err(|e| Error::sql(q, e))
        };
        const OPEN: &str = concat!(
            "SELECT queue, lower(priority), status, COUNT(*) FROM tickets
            WHERE status COLLATE NOCASE NOT IN ",
            closed_statuses!(),
            " GROUP BY queue, lower(priority), status"
        );
        let mut st = self
            .conn
            .prepare_cached(OPEN)
            .map_err(|e| Error::sql(OPEN, e))?;
        let open_tickets = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(|e| Error::sql(OPEN, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(OPEN, e))?;
        const SLA: &str = concat!(
            "SELECT a.kind, COUNT(DISTINCT a.ticket_id) FROM sla_alerts a
            JOIN tickets t ON t.id = a.ticket_id
            WHERE t.status COLLATE NOCASE NOT IN ",
            closed_statuses!(),
            " GROUP BY a.kind"
        );
        let sla = pairs(SLA)?;
        let sla_count = |k: &str| sla.iter().find(|(kind, _)| kind == k).map_or(0, |p| p.1);
        const BREACHED_AND_WARNED: &str = concat!(
            "SELECT COUNT(DISTINCT w.ticket_id) FROM sla_alerts w
            JOIN sla_alerts b ON b.ticket_id = w.ticket_id AND b.kind = 'breached'
            JOIN tickets t ON t.id = w.ticket_id
            WHERE w.kind = 'warning' AND t.status COLLATE NOCASE NOT IN ",
            closed_statuses!()
        );
        let both = one(BREACHED_AND_WARNED)?;
        Ok(Gauges {
            open_tickets,
            outbox: pairs(
                "SELECT status, COUNT(*) FROM outbox WHERE status <> 'sent' GROUP BY status",
            )?,
            webhooks: self.webhook_backlog()?,
            sla_at_risk: sla_count("warning") - both,
            sla_breached: sla_count("breached"),
            mailboxes_broken: one("SELECT COUNT(*) FROM mailbox_health WHERE broken <> 0")?,
            mailboxes_healthy: one("SELECT COUNT(*) FROM mailbox_health WHERE broken = 0")?,
            detector_flags: pairs(
                "SELECT queue, COUNT(DISTINCT message_row_id) FROM detector_flags GROUP BY queue",
            )?,
        })
    }
}
