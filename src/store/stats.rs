//! The rows behind `postdesk stats` and `postdesk export`: tickets with
//! what the figures need (SLA clocks, rating, status transitions), and
//! messages for the export, each streamed to a callback one row at a time
//! so a store of any size is read in constant memory.
//!
//! Rows only: what counts as resolved, first response or compliance is
//! decided in `report::overview`.

use super::db::{Row, params};

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
    /// Its status changes, oldest first.
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
/// until, `t` the ticket. A ticket rated in the window is read whatever
/// its dates (`?3`, the rated tickets' condition, is the same `IN`).
macro_rules! activity {
    () => {
        "t.created_at < ?2 AND (t.created_at >= ?1 OR t.closed_at >= ?1
            OR t.id IN (SELECT ticket_id FROM ratings WHERE rated_at >= ?1))"
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
                COALESCE(c.address, ''), t.assignee, t.message_count, t.created_at,
                t.updated_at, t.first_response_at, t.closed_at
            FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id
            WHERE ",
            $filter,
            " ORDER BY t.id"
        )
    };
}

// The tables beside the ticket, each read in ticket order and merged with
// the tickets in one pass: a join would search each table's B-tree once
// per ticket, which is most of the time on a large store.
const CLIENTS: &str = "SELECT ticket_id, client FROM ticket_clients ORDER BY ticket_id";
const CLOCKS: &str = "SELECT ticket_id, policy,
        first_start, first_base, first_cycle, first_met, first_due,
        res_start, res_base, res_cycle, res_met, res_due
    FROM ticket_sla ORDER BY ticket_id";
const RATINGS: &str = "SELECT ticket_id, score, rated_at FROM ratings ORDER BY ticket_id";
/// Status changes, ordered as the tickets are and then in log order. The
/// detail (JSON) is read only for `status_changed` and parsed here.
const TRANSITIONS: &str = "SELECT ticket_id, at, kind,
        CASE kind WHEN 'status_changed' THEN detail ELSE '' END
    FROM events
    WHERE kind IN ('status_changed', 'auto_closed', 'ticket_reopened')
      AND ticket_id IS NOT NULL
    ORDER BY ticket_id, id";

type Read<T> = fn(&Row<'_>) -> rusqlite::Result<(i64, T)>;

/// One side table's rows in ticket order, consumed as the tickets pass.
struct Side<'s, T> {
    rows: super::db::Rows<'s>,
    read: Read<T>,
    query: &'static str,
    pending: Option<(i64, T)>,
}

impl<'s, T> Side<'s, T> {
    fn new(rows: super::db::Rows<'s>, read: Read<T>, query: &'static str) -> Result<Self, Error> {
        let mut side = Side {
            rows,
            read,
            query,
            pending: None,
        };
        side.advance()?;
        Ok(side)
    }

    fn advance(&mut self) -> Result<(), Error> {
        self.pending = match self.rows.next().map_err(|e| Error::sql(self.query, e))? {
            Some(r) => Some((self.read)(&r).map_err(|e| Error::sql(self.query, e))?),
            None => None,
        };
        Ok(())
    }

    /// The rows of `ticket`, in order; rows of tickets before it are
    /// skipped (tickets come in increasing id).
    fn take(&mut self, ticket: i64, mut each: impl FnMut(T)) -> Result<(), Error> {
        while let Some((id, _)) = &self.pending {
            if *id > ticket {
                break;
            }
            let is_this = *id == ticket;
            if let Some((_, row)) = self.pending.take()
                && is_this
            {
                each(row);
            }
            self.advance()?;
        }
        Ok(())
    }
}

fn read_client(r: &Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

type ClockRow = (String, Clock, Clock);

fn read_clocks(r: &Row<'_>) -> rusqlite::Result<(i64, ClockRow)> {
    let clock = |at: usize| -> rusqlite::Result<Clock> {
        Ok(Clock {
            start: r.get(at)?,
            base: r.get(at + 1)?,
            cycle: r.get(at + 2)?,
            met: r.get(at + 3)?,
            due: r.get(at + 4)?,
        })
    };
    Ok((r.get(0)?, (r.get(1)?, clock(2)?, clock(7)?)))
}

fn read_rating(r: &Row<'_>) -> rusqlite::Result<(i64, (u8, i64))> {
    Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
}

fn read_transition(r: &Row<'_>) -> rusqlite::Result<(i64, Transition)> {
    #[derive(serde::Deserialize)]
    struct Detail {
        #[serde(default)]
        to: String,
    }
    let kind: String = r.get(2)?;
    let to = match kind.as_str() {
        "auto_closed" => "Closed".to_owned(),
        "ticket_reopened" => "Open".to_owned(),
        // A detail that does not parse names no status: it counts as a
        // change to something not closed, the safe side.
        _ => r
            .get_ref(3)?
            .as_str()
            .ok()
            .and_then(|d| serde_json::from_str::<Detail>(d).ok())
            .map(|d| d.to)
            .unwrap_or_default(),
    };
    Ok((r.get(0)?, Transition { at: r.get(1)?, to }))
}

fn stats_ticket(r: &Row<'_>) -> rusqlite::Result<StatsTicket> {
    Ok(StatsTicket {
        id: r.get(0)?,
        number: r.get(1)?,
        subject: r.get(2)?,
        status: r.get(3)?,
        priority: r.get(4)?,
        queue: r.get(5)?,
        issue_type: r.get(6)?,
        requester: r.get(7)?,
        assignee: r.get(8)?,
        message_count: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        first_response_at: r.get(12)?,
        closed_at: r.get(13)?,
        ..StatsTicket::default()
    })
}

fn rows<'s>(
    st: &'s mut super::db::Statement<'_>,
    q: &'static str,
) -> Result<super::db::Rows<'s>, Error> {
    st.query([]).map_err(|e| Error::sql(q, e))
}

impl Store {
    /// Call `f` with each ticket of `scope` in `[since, until)` (Unix
    /// seconds), in row order, with its client, SLA clocks, rating and
    /// status transitions. One ticket is in memory at a time.
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
        let prepare = |q: &'static str| self.conn.prepare(q).map_err(|e| Error::sql(q, e));
        let (mut tickets, mut clients, mut clocks, mut ratings, mut events) = (
            prepare(q)?,
            prepare(CLIENTS)?,
            prepare(CLOCKS)?,
            prepare(RATINGS)?,
            prepare(TRANSITIONS)?,
        );
        let mut ticket_rows = tickets
            .query(params![since, until])
            .map_err(|e| Error::sql(q, e))?;
        let mut clients = Side::new(rows(&mut clients, CLIENTS)?, read_client, CLIENTS)?;
        let mut clocks = Side::new(rows(&mut clocks, CLOCKS)?, read_clocks, CLOCKS)?;
        let mut ratings = Side::new(rows(&mut ratings, RATINGS)?, read_rating, RATINGS)?;
        let mut events = Side::new(
            rows(&mut events, TRANSITIONS)?,
            read_transition,
            TRANSITIONS,
        )?;
        while let Some(r) = ticket_rows.next().map_err(|e| Error::sql(q, e))? {
            let mut t = stats_ticket(&r).map_err(|e| Error::sql(q, e))?;
            clients.take(t.id, |c| t.client = c)?;
            clocks.take(t.id, |(policy, first, resolution)| {
                t.sla_policy = Some(policy);
                t.sla_first = Some(first);
                t.sla_resolution = Some(resolution);
            })?;
            ratings.take(t.id, |r| t.rating = Some(r))?;
            events.take(t.id, |tr| t.transitions.push(tr))?;
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
