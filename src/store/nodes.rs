//! Several nodes on one PostgreSQL store: each node's heartbeat, the rows
//! a silent node had claimed, and duties (IMAP mailboxes, the scheduler,
//! rescans) held by exactly one node through session advisory locks.

use serde::Serialize;

use super::db::{Connection, params};
use super::pg::{DEAD_AFTER_SECS, Target, advisory_key};
use super::{Error, Store};
use crate::domain::Time;

/// A node's own connection for its heartbeat and duty locks. The locks are
/// the connection's: when the node dies, PostgreSQL drops them with it,
/// and another node takes the duties at its next try.
pub struct NodeLink {
    conn: Connection,
}

/// One row of `postdesk nodes`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    /// The node's name.
    pub name: String,
    /// When it started, Unix seconds.
    pub started_at: i64,
    /// Its last heartbeat, Unix seconds.
    pub heartbeat_at: i64,
    /// Whether the heartbeat is recent (within the takeover delay).
    pub alive: bool,
    /// The duties it holds.
    pub duties: Vec<String>,
}

/// The nodes and the duties' holders.
pub type NodeList = (Vec<NodeRow>, Vec<DutyRow>);

/// One duty and who holds it.
#[derive(Debug, Clone, Serialize)]
pub struct DutyRow {
    /// `scheduler`, `rescan` or `imap:<mailbox>`.
    pub duty: String,
    /// The node holding it.
    pub node: String,
    /// Since when, Unix seconds.
    pub since: i64,
    /// Whether that node is alive; when not, the duty is being taken over.
    pub alive: bool,
}

impl NodeLink {
    /// Connect (the store is migrated already by the writer).
    ///
    /// # Errors
    ///
    /// [`Error::Open`].
    pub fn open(target: &Target) -> Result<NodeLink, Error> {
        Ok(NodeLink {
            conn: super::pg::connect(target)?,
        })
    }

    /// Record this node as alive at `now`; `started` is when it started.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn heartbeat(&self, started: Time, now: Time) -> Result<(), Error> {
        const Q: &str = "INSERT INTO nodes (name, started_at, heartbeat_at) VALUES (?1, ?2, ?3)
            ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at,
                heartbeat_at = excluded.heartbeat_at";
        self.conn
            .execute(Q, params![self.conn.node(), started.secs(), now.secs()])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// Queue again the mail and webhook rows claimed by nodes silent for
    /// longer than [`DEAD_AFTER_SECS`]: sent again by whichever node claims
    /// them, with the same Message-ID (or event id). Returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn take_over(&self, now: Time) -> Result<usize, Error> {
        let alive_since = now.secs() - DEAD_AFTER_SECS;
        let mut n = 0;
        for q in [
            "UPDATE outbox SET status = 'queued', claimed_at = NULL, claimed_by = ''
                WHERE status = 'sending' AND claimed_by <> ''
                  AND claimed_by NOT IN (SELECT name FROM nodes WHERE heartbeat_at >= ?1)",
            "UPDATE webhook_deliveries SET status = 'queued', claimed_at = NULL, claimed_by = ''
                WHERE status = 'sending' AND claimed_by <> ''
                  AND claimed_by NOT IN (SELECT name FROM nodes WHERE heartbeat_at >= ?1)",
        ] {
            n += self
                .conn
                .execute(q, params![alive_since])
                .map_err(|e| Error::sql(q, e))?;
        }
        Ok(n)
    }

    /// Try to take `duty` (never waits); records the holder when taken.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn try_duty(&self, duty: &str, now: Time) -> Result<bool, Error> {
        const LOCK: &str = "SELECT pg_try_advisory_lock(?1)";
        let key = advisory_key(&format!("duty\n{duty}"));
        let got: bool = self
            .conn
            .query_row(LOCK, params![key], |r| r.get(0))
            .map_err(|e| Error::sql(LOCK, e))?;
        if got {
            const HOLDER: &str = "INSERT INTO duties (duty, node, since) VALUES (?1, ?2, ?3)
                ON CONFLICT (duty) DO UPDATE SET node = excluded.node, since = excluded.since";
            self.conn
                .execute(HOLDER, params![duty, self.conn.node(), now.secs()])
                .map_err(|e| Error::sql(HOLDER, e))?;
        }
        Ok(got)
    }

    /// Give `duty` up (a mailbox removed from the configuration).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn release_duty(&self, duty: &str) -> Result<(), Error> {
        const UNLOCK: &str = "SELECT pg_advisory_unlock(?1)";
        let key = advisory_key(&format!("duty\n{duty}"));
        self.conn
            .query_row(UNLOCK, params![key], |r| r.get::<_, bool>(0))
            .map_err(|e| Error::sql(UNLOCK, e))?;
        const GONE: &str = "DELETE FROM duties WHERE duty = ?1 AND node = ?2";
        self.conn
            .execute(GONE, params![duty, self.conn.node()])
            .map_err(|e| Error::sql(GONE, e))?;
        Ok(())
    }
}

impl Store {
    /// The nodes seen and the duties' holders; `None` on SQLite (one node,
    /// holding every duty).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn nodes(&self, now: Time) -> Result<Option<NodeList>, Error> {
        if !self.conn.is_pg() {
            return Ok(None);
        }
        let alive_since = now.secs() - DEAD_AFTER_SECS;
        const DUTIES: &str = "SELECT d.duty, d.node, d.since,
                COALESCE((SELECT n.heartbeat_at >= ?1 FROM nodes n WHERE n.name = d.node), FALSE)
            FROM duties d ORDER BY d.duty";
        let mut st = self
            .conn
            .prepare(DUTIES)
            .map_err(|e| Error::sql(DUTIES, e))?;
        let duties: Vec<DutyRow> = st
            .query_map(params![alive_since], |r| {
                Ok(DutyRow {
                    duty: r.get(0)?,
                    node: r.get(1)?,
                    since: r.get(2)?,
                    alive: r.get(3)?,
                })
            })
            .map_err(|e| Error::sql(DUTIES, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(DUTIES, e))?;
        const NODES: &str = "SELECT name, started_at, heartbeat_at FROM nodes ORDER BY name";
        let mut st = self.conn.prepare(NODES).map_err(|e| Error::sql(NODES, e))?;
        let nodes: Vec<NodeRow> = st
            .query_map([], |r| {
                let heartbeat_at: i64 = r.get(2)?;
                Ok(NodeRow {
                    name: r.get(0)?,
                    started_at: r.get(1)?,
                    heartbeat_at,
                    alive: heartbeat_at >= alive_since,
                    duties: Vec::new(),
                })
            })
            .map_err(|e| Error::sql(NODES, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::sql(NODES, e))?
            .into_iter()
            .map(|mut n| {
                n.duties = duties
                    .iter()
                    .filter(|d| d.node == n.name)
                    .map(|d| d.duty.clone())
                    .collect();
                n
            })
            .collect();
        Ok(Some((nodes, duties)))
    }
}
