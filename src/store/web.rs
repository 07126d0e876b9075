//! What the web door keeps: API keys (their hashes only) and the ticket
//! each monitor alert's dedupe key opened.
//!
//! Receives key hashes and dedupe keys; returns rows. The web module and
//! the CLI never see SQL, like every other caller of the store.

use super::db::{OptionalExtension, params};
use serde::Serialize;

use super::{Error, Store, Tx};
use crate::domain::{TicketId, Time};

/// One API key as `postdesk apikey list` shows it (never the key).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyRow {
    /// The admin's name for it.
    pub name: String,
    /// `read` or `alerts`.
    pub scope: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; 0 while in force.
    pub revoked_at: i64,
    /// Unix seconds of the last request it authorised; 0: never used.
    pub last_used_at: i64,
}

/// An API key that is in force, as found by its hash.
#[derive(Debug, Clone)]
pub struct ApiKeyMatch {
    /// The key's name.
    pub name: String,
    /// Its scope.
    pub scope: String,
    /// The stored hash, to compare in constant time with the presented
    /// key's (the lookup is by an index; the comparison is what decides).
    pub key_hash: String,
}

/// Why a new key was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKey {
    /// Stored.
    Stored,
    /// A key (in force or revoked) already has this name.
    NameTaken,
}

impl Store {
    /// Store a new API key's hash under `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn add_api_key(
        &mut self,
        name: &str,
        scope: &str,
        key_hash: &str,
        now: Time,
    ) -> Result<NewKey, Error> {
        const Q: &str = "INSERT INTO api_keys (name, scope, key_hash, created_at)
            VALUES (?1, ?2, ?3, ?4) ON CONFLICT(name) DO NOTHING";
        let n = self
            .conn
            .execute(Q, params![name, scope, key_hash, now.secs()])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(if n == 1 {
            NewKey::Stored
        } else {
            NewKey::NameTaken
        })
    }

    /// Every API key, by name.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRow>, Error> {
        const Q: &str = "SELECT name, scope, created_at, revoked_at, last_used_at
            FROM api_keys ORDER BY name";
        let mut st = self.conn.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        let rows = st
            .query_map([], |r| {
                Ok(ApiKeyRow {
                    name: r.get(0)?,
                    scope: r.get(1)?,
                    created_at: r.get(2)?,
                    revoked_at: r.get(3)?,
                    last_used_at: r.get(4)?,
                })
            })
            .map_err(|e| Error::sql(Q, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| Error::sql(Q, e))
    }

    /// Revoke the key named `name`; false when no key in force has it.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn revoke_api_key(&mut self, name: &str, now: Time) -> Result<bool, Error> {
        const Q: &str = "UPDATE api_keys SET revoked_at = ?2 WHERE name = ?1 AND revoked_at = 0";
        let n = self
            .conn
            .execute(Q, params![name, now.secs()])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(n == 1)
    }

    /// The key in force whose hash is `key_hash`, marked used at `now`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn api_key_by_hash(
        &mut self,
        key_hash: &str,
        now: Time,
    ) -> Result<Option<ApiKeyMatch>, Error> {
        const Q: &str = "SELECT name, scope, key_hash FROM api_keys
            WHERE key_hash = ?1 AND revoked_at = 0";
        let found = self
            .conn
            .query_row(Q, params![key_hash], |r| {
                Ok(ApiKeyMatch {
                    name: r.get(0)?,
                    scope: r.get(1)?,
                    key_hash: r.get(2)?,
                })
            })
            .optional()
            .map_err(|e| Error::sql(Q, e))?;
        if found.is_some() {
            const U: &str = "UPDATE api_keys SET last_used_at = ?2 WHERE key_hash = ?1";
            self.conn
                .execute(U, params![key_hash, now.secs()])
                .map_err(|e| Error::sql(U, e))?;
        }
        Ok(found)
    }
}

impl Store {
    /// The number of ticket `ticket` with what its display needs: its
    /// queue and when it was opened (Unix seconds).
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn ticket_number(&self, ticket: TicketId) -> Result<Option<(i64, String, i64)>, Error> {
        const Q: &str = "SELECT number, queue, created_at FROM tickets WHERE id = ?1";
        self.conn
            .query_row(Q, params![ticket.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(|e| Error::sql(Q, e))
    }

    /// Whether the database takes a write lock now (`/readyz`): begins an
    /// immediate transaction and rolls it back.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`] when it does not.
    pub fn check_writable(&mut self) -> Result<(), Error> {
        let tx = self
            .conn
            .transaction_with_behavior(super::db::Begin::Immediate)
            .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
        tx.rollback().map_err(|e| Error::sql("ROLLBACK", e))
    }
}

impl Tx<'_> {
    /// The first message of the open (not resolved, not closed) alert
    /// ticket of `dedupe_key`: a later alert with the key threads to it
    /// as a reply would.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn open_alert_message(&self, dedupe_key: &str) -> Result<Option<String>, Error> {
        const Q: &str = "SELECT (SELECT m.message_id FROM messages m
                    WHERE m.ticket_id = t.id ORDER BY m.id LIMIT 1)
            FROM web_alerts a JOIN tickets t ON t.id = a.ticket_id
            WHERE a.dedupe_key = ?1
              AND t.status COLLATE NOCASE NOT IN ('Resolved', 'Closed')";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_row(params![dedupe_key], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| Error::sql(Q, e))
    }

    /// Record that `ticket` is the open alert ticket of `dedupe_key`.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn record_alert_ticket(
        &self,
        dedupe_key: &str,
        ticket: TicketId,
        now: Time,
    ) -> Result<(), Error> {
        const Q: &str = "INSERT INTO web_alerts (dedupe_key, ticket_id, opened_at)
            VALUES (?1, ?2, ?3)
            ON CONFLICT(dedupe_key) DO UPDATE SET ticket_id = ?2, opened_at = ?3";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        st.execute(params![dedupe_key, ticket.0, now.secs()])
            .map_err(|e| Error::sql(Q, e))?;
        Ok(())
    }
}
