//! The rows behind `postdesk stats` and `postdesk export`: tickets with
//! what the figures need (SLA clocks, rating, status transitions), and
//! messages for the export, each streamed to a callback one row at a time
//! so a store of any size is read in constant memory.
//!
//! Rows only: what counts as resolved, first response or compliance is
//! decided in `report::overview`.

use rusqlite::{Row, params};

use super::{Error, Store};
use crate::domain::sla::Clock;

/// One change of a ticket's status, from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// When, Unix seconds.
    pub at: i64,
    /// The status it changed to (`Open` for a reopen).
    pub to: String,
}

/// A ticket as the figures and the ticket export read it.
#[derive(Debug, Clone, Default)]
pub struct StatsTicket {
    /// Row id.
    pub id: i64,
    /// Number (unformatted).
    pub number: i64,
    /// Subject.
    pub subject: String,
    /// Status now.
    pub status: String,
    /// Priority as stored.
    pub priority: String,
    /// Queue.
    pub queue: String,
    /// Issue type.
    pub issue_type: String,
    /// The client (`mailboxes/*.toml` short name) whose mailbox opened it;
    /// empty for other tickets.
    pub client: String,
    /// The requester's address (empty: none).
    pub requester: String,
    /// The assigned agent (empty: nobody).
    pub assignee: String,
    /// Messages on the ticket.
    pub message_count: i64,
    /// Opened, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// The first agent reply, Unix seconds.
    pub first_response_at: Option<i64>,
    /// When it last took a closed status (Resolved or Closed), while it
    /// has one.
    pub closed_at: Option<i64>,
    /// The SLA policy its clocks run under, if any.
    pub sla_policy: Option<String>,
    /// Its first-response clock, if under a policy.
    pub sla_first: Option<Clock>,
    /// Its resolution clock (the current cycle), if under a policy.
    pub sla_resolution: Option<Clock>,
    /// Its satisfaction rating: score and when given.
    pub rating: Option<(u8, i64)>,
    /// Its status changes, oldest first (filled only for tickets that are
    /// Resolved or Closed now: nothing else needs them).
    pub transitions: Vec<Transition>,
}

/// Which tickets [`Store::each_stats_ticket`] reads for `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketScope {
    /// Opened, resolved, closed or rated in the window: everything a
    /// figure of the window may count.
    Activity,
    /// Opened in the window (the export).
    Opened,
}

/// One message as the message export writes it.
#[derive(Debug, Clone, Default)]
pub struct ExportMessage {
    /// Row id.
    pub id: i64,
    /// Its ticket's number (unformatted), queue and opening time, for the
    /// configured number format; `None` for an unticketed message.
    pub ticket: Option<(i64, String, i64)>,
    /// RFC 5322 Message-ID without angle brackets.
    pub message_id: String,
    /// Received (or sent), Unix seconds.
    pub received_at: i64,
    /// From address.
    pub from: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `customer`, `agent`, `system`, `note`, ...
    pub kind: String,
    /// Subject.
    pub subject: String,
    /// Size of the raw message in bytes.
    pub size: i64,
    /// How many attachments.
    pub attachments: i64,
}

/// The window and the ticket filter of each scope: `?1` since, `?2`
/// until, `t` the ticket, `r` its rating.
macro_rules! activity {
    () => {
        "t.created_at < ?2 AND (t.created_at >= ?1 OR t.closed_at >= ?1 OR r.rated_at >= ?1)"
    };
}
macro_rules! opened {
    () => {
        "t.created_at >= ?1 AND t.created_at < ?2"
    };
}

macro_rules! ticket_query {
    ($filter:expr) => {
        concat!(
            "SELECT t.id, t.number, t.subject, t.status, t.priority, t.queue, t.issue_type,
                COALESCE(tc.client, ''), COALESCE(c.address, ''), t.assignee,
                t.message_count, t.created_at, t.updated_at, t.first_response_at,
                t.closed_at, s.policy,
                s.first_start, s.first_base, s.first_cycle, s.first_met, s.first_due,
                s.res_start, s.res_base, s.res_cycle, s.res_met, s.res_due,
                r.score, r.rated_at
            FROM tickets t
            LEFT JOIN ticket_clients tc ON tc.ticket_id = t.id
            LEFT JOIN contacts c ON c.id = t.requester_id
            LEFT JOIN ticket_sla s ON s.ticket_id = t.id
            LEFT JOIN ratings r ON r.ticket_id = t.id
            WHERE ",
            $filter,
            " ORDER BY t.id"
        )
    };
}

/// Status changes of the tickets that are closed now, ordered as the
/// ticket query is (ticket, then log order). A superset of the tickets of
/// either scope is fine: the merge skips what it does not need.
const TRANSITIONS: &str = concat!(
    "SELECT e.ticket_id, e.at,
        CASE e.kind
            WHEN 'status_changed' THEN COALESCE(json_extract(e.detail, '$.to'), '')
            WHEN 'auto_closed' THEN 'Closed'
            ELSE 'Open' END
    FROM events e JOIN tickets t ON t.id = e.ticket_id
    WHERE e.kind IN ('status_changed', 'auto_closed', 'ticket_reopened')
      AND t.status COLLATE NOCASE IN ",
    closed_statuses!(),
    " AND t.created_at < ?2 AND (t.created_at >= ?1 OR t.closed_at >= ?1)
    ORDER BY e.ticket_id, e.id"
);

fn clock(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<Clock>> {
    let policy: Option<String> = r.get(15)?;
    if policy.is_none() {
        return Ok(None);
    }
    Ok(Some(Clock {
        start: r.get(at)?,
        base: r.get::<_, Option<i64>>(at + 1)?.unwrap_or(0),
        cycle: r.get::<_, Option<i64>>(at + 2)?.unwrap_or(0),
        met: r.get(at + 3)?,
        due: r.get(at + 4)?,
    }))
}

fn stats_ticket(r: &Row<'_>) -> rusqlite::Result<StatsTicket> {
    let score: Option<u8> = r.get(26)?;
    let rated_at: Option<i64> = r.get(27)?;
    Ok(StatsTicket {
        id: r.get(0)?,
        number: r.get(1)?,
        subject: r.get(2)?,
        status: r.get(3)?,
        priority: r.get(4)?,
        queue: r.get(5)?,
        issue_type: r.get(6)?,
        client: r.get(7)?,
        requester: r.get(8)?,
        assignee: r.get(9)?,
        message_count: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        first_response_at: r.get(13)?,
        closed_at: r.get(14)?,
        sla_policy: r.get(15)?,
        sla_first: clock(r, 16)?,
        sla_resolution: clock(r, 21)?,
        rating: score.zip(rated_at),
        transitions: Vec::new(),
    })
}

impl Store {
    /// Call `f` with each ticket of `scope` in `[since, until)` (Unix
    /// seconds), in row order, with its status transitions when it is
    /// closed now. One ticket is in memory at a time.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`], or what `f` returned.
    pub fn each_stats_ticket<E: From<Error>>(
        &self,
        scope: TicketScope,
        since: i64,
        until: i64,
        mut f: impl FnMut(&StatsTicket) -> Result<(), E>,
    ) -> Result<(), E> {
        const ACTIVITY: &str = ticket_query!(activity!());
        const OPENED: &str = ticket_query!(opened!());
        let q = match scope {
            TicketScope::Activity => ACTIVITY,
            TicketScope::Opened => OPENED,
        };
        let mut tickets = self.conn.prepare(q).map_err(|e| Error::sql(q, e))?;
        let mut events = self
            .conn
            .prepare(TRANSITIONS)
            .map_err(|e| Error::sql(TRANSITIONS, e))?;
        let mut ticket_rows = tickets
            .query(params![since, until])
            .map_err(|e| Error::sql(q, e))?;
        let mut event_rows = events
            .query(params![since, until])
            .map_err(|e| Error::sql(TRANSITIONS, e))?;
        let mut next_event = || -> Result<Option<(i64, Transition)>, Error> {
            let Some(r) = event_rows.next().map_err(|e| Error::sql(TRANSITIONS, e))? else {
                return Ok(None);
            };
            let read = || -> rusqlite::Result<(i64, Transition)> {
                Ok((
                    r.get(0)?,
                    Transition {
                        at: r.get(1)?,
                        to: r.get(2)?,
                    },
                ))
            };
            read().map(Some).map_err(|e| Error::sql(TRANSITIONS, e))
        };
        // Both queries are ordered by ticket id: a merge join, one pass.
        let mut pending = next_event()?;
        while let Some(r) = ticket_rows.next().map_err(|e| Error::sql(q, e))? {
            let mut t = stats_ticket(r).map_err(|e| Error::sql(q, e))?;
            while let Some((ticket, _)) = &pending {
                if *ticket > t.id {
                    break;
                }
                if *ticket == t.id
                    && let Some((_, tr)) = pending.take()
                {
                    t.transitions.push(tr);
                }
                pending = next_event()?;
            }
            f(&t)?;
        }
        Ok(())
    }

    /// Call `f` with each message received (or sent) in `[since, until)`
    /// (Unix seconds), in the order they were stored, one row in memory at a time. Bodies
    /// and raw bytes are not read.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`], or what `f` returned.
    pub fn each_export_message<E: From<Error>>(
        &self,
        since: i64,
        until: i64,
        mut f: impl FnMut(&ExportMessage) -> Result<(), E>,
    ) -> Result<(), E> {
        const Q: &str = "SELECT m.id, t.number, t.queue, t.created_at, m.message_id,
                m.received_at, m.from_addr, m.direction, m.kind, m.subject, m.size,
                (SELECT COUNT(*) FROM attachments a WHERE a.message_row_id = m.id)
            FROM messages m LEFT JOIN tickets t ON t.id = m.ticket_id
            WHERE m.received_at >= ?1 AND m.received_at < ?2
            ORDER BY m.id";
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        let mut rows = st
            .query(params![since, until])
            .map_err(|e| Error::sql(Q, e))?;
        while let Some(r) = rows.next().map_err(|e| Error::sql(Q, e))? {
            let read = || -> rusqlite::Result<ExportMessage> {
                let number: Option<i64> = r.get(1)?;
                let queue: Option<String> = r.get(2)?;
                let opened: Option<i64> = r.get(3)?;
                Ok(ExportMessage {
                    id: r.get(0)?,
                    ticket: number.map(|n| (n, queue.unwrap_or_default(), opened.unwrap_or(0))),
                    message_id: r.get(4)?,
                    received_at: r.get(5)?,
                    from: r.get(6)?,
                    direction: r.get(7)?,
                    kind: r.get(8)?,
                    subject: r.get(9)?,
                    size: r.get(10)?,
                    attachments: r.get(11)?,
                })
            };
            let m = read().map_err(|e| Error::sql(Q, e))?;
            f(&m)?;
        }
        Ok(())
    }
}
