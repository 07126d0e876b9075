//! The bypass detector's bookkeeping: which rules version scanned each
//! message, the hits acted on, the flags, and suspended clients.
//!
//! Written by the bypass detector's actions in the transaction of the scan (the
//! message's own, or a rescan batch), so a flag, its warning, its alert and
//! a suspension commit together or not at all.

use super::db::{OptionalExtension, params};

use super::{Error, Store, Tx};
use crate::domain::{MessageRowId, TicketId, Time};

/// A flag to record.
#[derive(Debug, Clone)]
pub struct NewFlag<'a> {
    /// The flagged message.
    pub message: MessageRowId,
    /// Its ticket.
    pub ticket: TicketId,
    /// The client: the sender's address, lower case.
    pub client: &'a str,
    /// The ticket's queue.
    pub queue: &'a str,
    /// The rules version that found it.
    pub version: &'a str,
    /// The verdict's score.
    pub score: u32,
    /// The hits acted on, as JSON.
    pub hits: &'a str,
    /// Now.
    pub now: Time,
}

/// One hit's identity and what it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitKey {
    /// `phone`, `email`, ...
    pub category: String,
    /// Byte offsets into the message's text.
    pub start: i64,
    /// End offset (exclusive).
    pub end: i64,
}

/// A client's access to a queue, suspended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Suspension {
    /// Row id.
    pub id: i64,
    /// The client's address.
    pub client: String,
    /// The queue.
    pub queue: String,
    /// Since when (Unix seconds).
    pub since: i64,
    /// The Compliance Alert ticket that reported it.
    pub alert_ticket: Option<TicketId>,
    /// The message whose flag caused it.
    pub message: Option<MessageRowId>,
    /// When it was lifted, if it was.
    pub lifted_at: Option<i64>,
    /// Who lifted it.
    pub lifted_by: String,
}

/// A stored customer message the rescan looks at.
#[derive(Debug, Clone)]
pub struct ScanCandidate {
    /// The message.
    pub message: MessageRowId,
    /// Its ticket.
    pub ticket: TicketId,
    /// Its ticket's queue.
    pub queue: String,
    /// The sender's address.
    pub from: String,
    /// The message's Message-ID.
    pub message_id: String,
    /// Its text (quotes not yet stripped).
    pub text: String,
}

/// Which tickets are in the detector's scope, as the rescan asks for them:
/// lists of names (any case), an empty list meaning any.
#[derive(Debug, Clone, Copy)]
pub struct ScopeFilter<'a> {
    /// Queues.
    pub queues: &'a [String],
    /// Issue types.
    pub issue_types: &'a [String],
    /// Statuses.
    pub statuses: &'a [String],
}

/// The suspension query with `$where` appended, as one literal (so the
/// statement cache is keyed without building a string per call).
macro_rules! suspension_query {
    ($where:literal) => {
        concat!(
            "SELECT s.id, s.client, s.queue, s.since, s.alert_ticket_id,
                f.message_row_id, s.lifted_at, s.lifted_by
            FROM suspensions s LEFT JOIN detector_flags f ON f.id = s.flag_id ",
            $where
        )
    };
}

fn suspension_row(r: &super::db::Row<'_>) -> rusqlite::Result<Suspension> {
    Ok(Suspension {
        id: r.get(0)?,
        client: r.get(1)?,
        queue: r.get(2)?,
        since: r.get(3)?,
        alert_ticket: r.get::<_, Option<i64>>(4)?.map(TicketId),
        message: r.get::<_, Option<i64>>(5)?.map(MessageRowId),
        lifted_at: r.get(6)?,
        lifted_by: r.get(7)?,
    })
}

impl Tx<'_> {
    /// Record that `message` was scanned under `version`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn record_scan(
        &self,
        message: MessageRowId,
        version: &str,
        flagged: bool,
        now: Time,
    ) -> Result<(), Error> {
        const Q: &str = "INSERT INTO detector_scans (message_row_id, version, flagged, scanned_at)
            VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT (message_row_id) DO UPDATE SET version = excluded.version,
                flagged = excluded.flagged, scanned_at = excluded.scanned_at";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![message.0, version, i64::from(flagged), now.secs()])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// The hits of `message` that earlier flags acted on.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn known_hits(&self, message: MessageRowId) -> Result<Vec<HitKey>, Error> {
        const Q: &str =
            "SELECT category, start, \"end\" FROM detector_hits WHERE message_row_id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([message.0], |r| {
                Ok(HitKey {
                    category: r.get(0)?,
                    start: r.get(1)?,
                    end: r.get(2)?,
                })
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Remember a hit acted on (once per message, category and span).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn insert_hit(
        &self,
        message: MessageRowId,
        key: &HitKey,
        rule: &str,
        text: &str,
        version: &str,
    ) -> Result<(), Error> {
        const Q: &str = "INSERT OR IGNORE INTO detector_hits
            (message_row_id, category, start, \"end\", rule, text, version)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![
            message.0,
            key.category,
            key.start,
            key.end,
            rule,
            text,
            version
        ])
        .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// Whether an earlier flag names `message`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn message_flagged(&self, message: MessageRowId) -> Result<bool, Error> {
        const Q: &str = "SELECT 1 FROM detector_flags WHERE message_row_id = ?1 LIMIT 1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.exists([message.0]).map_err(|e| Error::sql(Q, e))
    }

    /// Record a flag; `None` when this message was already flagged under
    /// this version.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn insert_flag(&self, f: &NewFlag<'_>) -> Result<Option<i64>, Error> {
        const Q: &str = "INSERT OR IGNORE INTO detector_flags
            (message_row_id, ticket_id, client, queue, version, score, hits, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        let mut st = self.conn.prepare_insert(Q).map_err(|e| Error::sql(Q, e))?;
        st.insert(params![
            f.message.0,
            f.ticket.0,
            f.client,
            f.queue,
            f.version,
            f.score,
            f.hits,
            f.now.secs()
        ])
        .map_err(|e| Error::sql(Q, e))
    }

    /// Name the Compliance Alert ticket a flag was reported on.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn set_flag_alert(&self, flag: i64, alert: TicketId) -> Result<(), Error> {
        const Q: &str = "UPDATE detector_flags SET alert_ticket_id = ?2 WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![flag, alert.0])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }

    /// How many distinct messages of `client` have been flagged.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn client_flagged_messages(&self, client: &str) -> Result<u32, Error> {
        const Q: &str =
            "SELECT count(DISTINCT message_row_id) FROM detector_flags WHERE client = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row([client], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))
    }

    /// The newest Compliance Alert ticket of `client` that is not closed.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn open_alert_ticket(&self, client: &str) -> Result<Option<TicketId>, Error> {
        const Q: &str = concat!(
            "SELECT t.id FROM detector_flags f JOIN tickets t ON t.id = f.alert_ticket_id
            WHERE f.client = ?1 AND t.status COLLATE NOCASE NOT IN ",
            closed_statuses!(),
            " ORDER BY f.id DESC LIMIT 1"
        );
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row([client], |r| r.get(0))
            .optional()
            .map(|t| t.map(TicketId))
            .map_err(|e| Error::sql(Q, e))
    }

    /// Every suspension of `client` in force (one per queue).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn active_suspensions(&self, client: &str) -> Result<Vec<Suspension>, Error> {
        const Q: &str = suspension_query!("WHERE s.client = ?1 AND s.lifted_at IS NULL");
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([client.to_lowercase()], suspension_row)
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// The suspension of `client`'s access to `queue`, if one is active.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn active_suspension(
        &self,
        client: &str,
        queue: &str,
    ) -> Result<Option<Suspension>, Error> {
        const Q: &str =
            suspension_query!("WHERE s.client = ?1 AND s.queue = ?2 AND s.lifted_at IS NULL");
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(params![client.to_lowercase(), queue], suspension_row)
            .optional()
            .map_err(|e| Error::sql(Q, e))
    }

    /// Suspend `client`'s access to `queue`; `None` if it already was.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn suspend(
        &self,
        client: &str,
        queue: &str,
        alert: Option<TicketId>,
        flag: i64,
        now: Time,
    ) -> Result<Option<i64>, Error> {
        const Q: &str = "INSERT OR IGNORE INTO suspensions
            (client, queue, since, alert_ticket_id, flag_id) VALUES (?1, ?2, ?3, ?4, ?5)";
        let mut st = self.conn.prepare_insert(Q).map_err(|e| Error::sql(Q, e))?;
        st.insert(params![
            client.to_lowercase(),
            queue,
            now.secs(),
            alert.map(|t| t.0),
            flag
        ])
        .map_err(|e| Error::sql(Q, e))
    }

    /// Lift every active suspension of `client` (of `queue` only, if
    /// given); returns the suspensions lifted.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn lift_suspensions(
        &self,
        client: &str,
        queue: Option<&str>,
        by: &str,
        now: Time,
    ) -> Result<Vec<Suspension>, Error> {
        let client = client.to_lowercase();
        const Q: &str = suspension_query!(
            "WHERE s.client = ?1 AND s.lifted_at IS NULL AND (CAST(?2 AS TEXT) IS NULL OR s.queue = ?2)"
        );
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let mut lifted: Vec<Suspension> = st
            .query_map(params![client, queue], suspension_row)
            .map_err(|e| Error::sql(Q, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(Q, e))?;
        const U: &str = "UPDATE suspensions SET lifted_at = ?2, lifted_by = ?3 WHERE id = ?1";
        let mut up = self.conn.prepare_cached(U).map_err(|e| Error::sql(U, e))?;
        for s in &mut lifted {
            up.execute(params![s.id, now.secs(), by])
                .map_err(|e| Error::sql(U, e))?;
            s.lifted_at = Some(now.secs());
            s.lifted_by = by.to_owned();
        }
        Ok(lifted)
    }

    /// Customer messages of in-scope tickets not scanned under `version`,
    /// oldest first, after row `after`, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn rescan_candidates(
        &self,
        scope: &ScopeFilter<'_>,
        version: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ScanCandidate>, Error> {
        // Scope names are compared in lower case; each list is bound as a
        // JSON array, empty meaning any.
        let list = |v: &[String]| {
            serde_json::to_string(&v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into())
        };
        const Q: &str = "SELECT m.id, t.id, t.queue, m.from_addr, m.message_id, m.text
            FROM tickets t
            JOIN messages m ON m.ticket_id = t.id
            LEFT JOIN detector_scans s ON s.message_row_id = m.id
            WHERE (json_array_length(?1) = 0
                   OR lower(t.queue) IN (SELECT value FROM json_each(?1)))
              AND (json_array_length(?2) = 0
                   OR lower(t.issue_type) IN (SELECT value FROM json_each(?2)))
              AND (json_array_length(?3) = 0
                   OR lower(t.status) IN (SELECT value FROM json_each(?3)))
              AND t.merged_into IS NULL
              AND m.direction = 'inbound' AND m.kind = 'customer' AND m.state = 'ticketed'
              AND (s.version IS NULL OR s.version <> ?4)
              AND m.id > ?5
            ORDER BY m.id LIMIT ?6";
        const PG: &str = "SELECT m.id, t.id, t.queue, m.from_addr, m.message_id, m.text
            FROM tickets t
            JOIN messages m ON m.ticket_id = t.id
            LEFT JOIN detector_scans s ON s.message_row_id = m.id
            WHERE (jsonb_array_length(?1::jsonb) = 0
                   OR lower(t.queue) IN (SELECT jsonb_array_elements_text(?1::jsonb)))
              AND (jsonb_array_length(?2::jsonb) = 0
                   OR lower(t.issue_type) IN (SELECT jsonb_array_elements_text(?2::jsonb)))
              AND (jsonb_array_length(?3::jsonb) = 0
                   OR lower(t.status) IN (SELECT jsonb_array_elements_text(?3::jsonb)))
              AND t.merged_into IS NULL
              AND m.direction = 'inbound' AND m.kind = 'customer' AND m.state = 'ticketed'
              AND (s.version IS NULL OR s.version <> ?4)
              AND m.id > ?5
            ORDER BY m.id LIMIT ?6";
        let q = self.conn.pick(Q, PG);
        let mut st = self.conn.prepare_cached(q).map_err(|e| Error::sql(q, e))?;
        let rows = st
            .query_map(
                params![
                    list(scope.queues),
                    list(scope.issue_types),
                    list(scope.statuses),
                    version,
                    after,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(ScanCandidate {
                        message: MessageRowId(r.get(0)?),
                        ticket: TicketId(r.get(1)?),
                        queue: r.get(2)?,
                        from: r.get(3)?,
                        message_id: r.get(4)?,
                        text: r.get(5)?,
                    })
                },
            )
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// The clients with an active suspension reported on `ticket`, as the
    /// flagged ticket or as its Compliance Alert.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn suspended_clients_of_ticket(&self, ticket: TicketId) -> Result<Vec<String>, Error> {
        const Q: &str = "SELECT DISTINCT s.client FROM suspensions s
            LEFT JOIN detector_flags f ON f.id = s.flag_id
            WHERE s.lifted_at IS NULL AND (s.alert_ticket_id = ?1 OR f.ticket_id = ?1)
            ORDER BY s.client";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([ticket.0], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// The ticket of a stored message.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket_of_message_row(&self, message: MessageRowId) -> Result<Option<TicketId>, Error> {
        const Q: &str = "SELECT ticket_id FROM messages WHERE id = ?1";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row([message.0], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .map(|t| t.flatten().map(TicketId))
            .map_err(|e| Error::sql(Q, e))
    }

    /// Store an internal note on `ticket`, written by postdesk (`source`
    /// says which part: `poller`, `detector`, ...).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn add_note(
        &self,
        ticket: TicketId,
        text: &str,
        source: &str,
        now: Time,
    ) -> Result<MessageRowId, Error> {
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        let message_id = format!(
            "note-{}-{}-{}@postdesk.invalid",
            ticket.0,
            now.secs(),
            &hash[..16]
        );
        self.insert_message(&super::NewMessage {
            ticket: Some(ticket),
            message_id: &message_id,
            is_synthetic_id: true,
            content_hash: &hash,
            direction: "internal",
            kind: "note",
            state: "ticketed",
            flag: "",
            thread_match: "",
            route: "",
            source,
            envelope_from: "",
            envelope_to: "[]",
            peer: "",
            from_addr: "",
            from_name: "postdesk",
            to_addrs: "[]",
            cc_addrs: "[]",
            subject: "",
            in_reply_to: "[]",
            refs: "[]",
            date_header: None,
            headers: "[]",
            text,
            html: None,
            raw: text.as_bytes(),
            attachments: &[],
            now,
        })
    }
}

impl Store {
    /// Suspensions, newest first: the active ones only, or all of them.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn suspensions(&self, active_only: bool) -> Result<Vec<Suspension>, Error> {
        const Q: &str =
            suspension_query!("WHERE (?1 = 0 OR s.lifted_at IS NULL) ORDER BY s.id DESC");
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([i64::from(active_only)], suspension_row)
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Flagged messages per client: `(client, flagged messages)`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn flag_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        const Q: &str = "SELECT client, count(DISTINCT message_row_id) FROM detector_flags
            GROUP BY client ORDER BY client";
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }
}
