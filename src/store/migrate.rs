//! Versioned schema migrations.
//!
//! Each file in `migrations/` runs once, in order, in its own transaction,
//! and bumps `PRAGMA user_version`. A shipped migration is never edited; a fix
//! is a new file.

use rusqlite::Connection;

use super::Error;

/// The migrations, in order; index + 1 is the schema version.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    (
        "0002_threading",
        include_str!("migrations/0002_threading.sql"),
    ),
    ("0003_outbox", include_str!("migrations/0003_outbox.sql")),
    (
        "0004_monitoring",
        include_str!("migrations/0004_monitoring.sql"),
    ),
    (
        "0005_detector",
        include_str!("migrations/0005_detector.sql"),
    ),
    (
        "0006_sync_start",
        include_str!("migrations/0006_sync_start.sql"),
    ),
    (
        "0007_attachment_parts",
        include_str!("migrations/0007_attachment_parts.sql"),
    ),
    ("0008_sla", include_str!("migrations/0008_sla.sql")),
    (
        "0009_satisfaction",
        include_str!("migrations/0009_satisfaction.sql"),
    ),
    ("0010_web", include_str!("migrations/0010_web.sql")),
    ("0011_search", include_str!("migrations/0011_search.sql")),
    (
        "0012_automation",
        include_str!("migrations/0012_automation.sql"),
    ),
    (
        "0013_webhooks",
        include_str!("migrations/0013_webhooks.sql"),
    ),
    (
        "0014_search_content",
        include_str!("migrations/0014_search_content.sql"),
    ),
    (
        "0015_drop_requester_index",
        include_str!("migrations/0015_drop_requester_index.sql"),
    ),
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Apply every migration newer than the database's `user_version`.
///
/// # Errors
///
/// [`Error::Sql`] when a migration fails (it is rolled back whole), or
/// [`Error::TooNew`] when the database was written by a newer postdesk.
pub fn apply(conn: &mut Connection) -> Result<i64, Error> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| Error::sql("PRAGMA user_version", e))?;
    if current > LATEST {
        return Err(Error::TooNew {
            found: current,
            supported: LATEST,
        });
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        // Under the write lock, and read again: another process opening
        // the same new database may have applied it meanwhile.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
        let applied: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| Error::sql("PRAGMA user_version", e))?;
        if applied >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| Error::sql(*name, e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| Error::sql("PRAGMA user_version =", e))?;
        tx.commit().map_err(|e| Error::sql("COMMIT", e))?;
        tracing::info!(migration = name, version, "schema migrated");
    }
    Ok(LATEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_reaches_latest_and_reapplying_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(apply(&mut conn).unwrap(), LATEST);
        assert_eq!(apply(&mut conn).unwrap(), LATEST);
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST);
    }

    #[test]
    fn the_search_index_reads_the_messages_after_it_stops_copying_them() {
        let mut conn = Connection::open_in_memory().unwrap();
        let before = MIGRATIONS
            .iter()
            .position(|(name, _)| *name == "0014_search_content")
            .unwrap();
        for (i, (_, sql)) in MIGRATIONS.iter().enumerate().take(before) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1)
                .unwrap();
        }
        // A message indexed as the older schema did it (its own copy), and
        // system mail, which is never indexed.
        conn.execute_batch(
            "INSERT INTO messages (id, message_id, content_hash, subject, text, kind)
                VALUES (1, 'a@x', 'h1', 'Invoice Müller', 'the quarterly invoice is attached', 'customer'),
                       (2, 'b@x', 'h2', 'Received', 'quarterly acknowledgement', 'system');
             INSERT INTO message_search (rowid, subject, body, attachments)
                VALUES (1, 'Invoice Müller', 'the quarterly invoice is attached', '');",
        )
        .unwrap();
        assert_eq!(apply(&mut conn).unwrap(), LATEST);
        let matches = |q: &str| -> Vec<i64> {
            let mut st = conn
                .prepare(
                    "SELECT rowid FROM message_search WHERE message_search MATCH ?1 ORDER BY rowid",
                )
                .unwrap();
            st.query_map([q], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(matches("muller"), vec![1]);
        assert_eq!(matches("quarterly"), vec![1]);
        let snippet: String = conn
            .query_row(
                "SELECT snippet(message_search, -1, '[', ']', '…', 12) FROM message_search
                    WHERE message_search MATCH 'quarterly' AND rowid = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(snippet.contains("[quarterly]"), "{snippet}");
        // A message stored afterwards is indexed by its own insert, as the
        // writer does it, and the index agrees with the messages.
        conn.execute_batch(
            "INSERT INTO messages (id, message_id, content_hash, subject, text)
                VALUES (3, 'c@x', 'h3', 'Payroll', 'the W-2 forms for March');
             INSERT INTO attachments (message_row_id, name, content_type, size, content)
                VALUES (3, 'w2.pdf', 'application/pdf', 10, X'');
             INSERT INTO message_search (rowid, subject, body, attachments)
                VALUES (3, 'Payroll', 'the W-2 forms for March', 'w2.pdf');",
        )
        .unwrap();
        assert_eq!(matches("march"), vec![3]);
        assert_eq!(matches("w2"), vec![3]);
        conn.execute_batch(
            "INSERT INTO message_search (message_search, rank) VALUES ('integrity-check', 1)",
        )
        .unwrap();
    }

    /// The schema as SQLite reports it: every object's SQL, by name.
    fn schema(conn: &Connection) -> Vec<(String, String)> {
        let mut st = conn
            .prepare("SELECT name, COALESCE(sql, '') FROM sqlite_schema ORDER BY name")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn database_migrated_from_0001_matches_a_fresh_one_and_backfills_refs() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(MIGRATIONS[0].1).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute_batch(
            "INSERT INTO tickets (id, number) VALUES (1, 1001);
             INSERT INTO messages (id, ticket_id, message_id, content_hash, in_reply_to, refs)
             VALUES (1, 1, 'a@x', 'h1', '[]', '[]'),
                    (2, 1, 'b@x', 'h2', '[\"a@x\"]', '[\"root@x\",\"a@x\"]'),
                    (3, NULL, 'c@x', 'h3', '[\"a@x\"]', '[]');",
        )
        .unwrap();
        assert_eq!(apply(&mut old).unwrap(), LATEST);
        let mut fresh = Connection::open_in_memory().unwrap();
        apply(&mut fresh).unwrap();
        assert_eq!(schema(&old), schema(&fresh));
        let mut st = old
            .prepare("SELECT ref_id, ticket_id, message_row_id FROM message_refs ORDER BY ref_id")
            .unwrap();
        let refs: Vec<(String, i64, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(refs, [("a@x".into(), 1, 2), ("root@x".into(), 1, 2)]);
    }
}
