//! Versioned schema migrations.
//!
//! Each file in `migrations/` runs once, in order, in its own transaction,
//! and bumps `PRAGMA user_version`. A shipped migration is never edited; a fix
//! is a new file.

use rusqlite::Connection;

use super::Error;

/// The migrations, in order; index + 1 is the schema version.
const MIGRATIONS: &[(&str, &str)] = &[("0001_init", include_str!("migrations/0001_init.sql"))];

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
        return Err(Error::TooNew { found: current, supported: LATEST });
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction().map_err(|e| Error::sql("BEGIN", e))?;
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
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, LATEST);
    }
}
