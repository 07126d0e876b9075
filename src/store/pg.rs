//! PostgreSQL as the store shared by several postdesk nodes: connecting,
//! the schema's migrations (applied once, under an advisory lock, however
//! many nodes start together), and what only several nodes need.

use std::str::FromStr;

use super::Error;
use super::db::{Connection, DbError, Pg};

/// A PostgreSQL store and this node's name in it.
#[derive(Clone)]
pub struct Target {
    /// `postgres://user@host:port/db` (no password).
    pub url: String,
    /// From `password_env` or `password_file`.
    pub password: Option<String>,
    /// This node's name (`[store] node`, `serve --node`, else the host name).
    pub node: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// The migrations for PostgreSQL: (version, name, SQL). A store starts at
/// the first; each later one has the number of its SQLite twin.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        13,
        "0013_schema",
        include_str!("migrations/pg/0013_schema.sql"),
    ),
    (
        14,
        "0014_search_content",
        include_str!("migrations/pg/0014_search_content.sql"),
    ),
    (
        15,
        "0015_drop_requester_index",
        include_str!("migrations/pg/0015_drop_requester_index.sql"),
    ),
];

/// The advisory lock key under which nodes migrate one at a time.
const MIGRATION_LOCK: i64 = 0x706f_7374_6465_736b; // "postdesk"

/// Connect, and migrate the schema if this node is the first to need it.
///
/// # Errors
///
/// [`Error::Open`] when the server cannot be reached or refuses the
/// login, [`Error::Settings`] for a bad URL, [`Error::TooNew`], or a
/// migration's failure.
pub fn connect(target: &Target) -> Result<Connection, Error> {
    let open_err = |source: DbError| Error::Open {
        path: target.url.clone().into(),
        source,
    };
    let mut config = postgres::Config::from_str(&target.url)
        .map_err(|e| Error::Settings(format!("[store] url: {e}")))?;
    if config.get_password().is_some() {
        return Err(Error::Settings(
            "[store] url holds a password: use password_env or password_file".into(),
        ));
    }
    if let Some(p) = &target.password {
        config.password(p);
    }
    config.application_name(&format!("postdesk {}", target.node));
    // The server's notices ("already exists, skipping") are not news.
    config.options("-c client_min_messages=warning");
    config.connect_timeout(std::time::Duration::from_secs(10));
    super::db::off_runtime(|| {
        let mut client = config
            .connect(postgres::NoTls)
            .map_err(|e| open_err(e.into()))?;
        migrate(&mut client)?;
        Ok(Connection::Pg(Box::new(Pg::new(
            client,
            target.node.clone(),
        ))))
    })
}

fn migrate(client: &mut postgres::Client) -> Result<(), Error> {
    let sql = |what: &'static str| move |e: postgres::Error| Error::sql(what, e);
    // Transaction-scoped: released by the COMMIT, or by the server when
    // this node dies half-way (and then the migration is rolled back).
    let mut tx = client.transaction().map_err(sql("BEGIN"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(sql("pg_advisory_xact_lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS postdesk_schema (
             version BIGINT NOT NULL,
             name TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(sql("CREATE TABLE postdesk_schema"))?;
    let current: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM postdesk_schema", &[])
        .and_then(|r| r.try_get(0))
        .map_err(sql("SELECT version"))?;
    let latest = super::SCHEMA_VERSION;
    if current > latest {
        return Err(Error::TooNew {
            found: current,
            supported: latest,
        });
    }
    for (version, name, text) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(text).map_err(|e| Error::sql(*name, e))?;
        tx.execute(
            "INSERT INTO postdesk_schema (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .map_err(sql("INSERT INTO postdesk_schema"))?;
        tracing::info!(migration = name, version, "postgresql schema migrated");
    }
    tx.commit().map_err(sql("COMMIT"))?;
    Ok(())
}

/// The advisory lock key of `name` (a thread key, a duty): the first 64
/// bits of its SHA-256.
pub fn advisory_key(name: &str) -> i64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(name.as_bytes());
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// A node whose last heartbeat is older than this is taken for dead: the
/// mail and webhook rows it claimed are sent by another node.
pub const DEAD_AFTER_SECS: i64 = 20;

/// The schema version of a PostgreSQL store.
///
/// # Errors
///
/// [`Error::Sql`].
pub fn schema_version(conn: &Connection) -> Result<i64, Error> {
    const Q: &str = "SELECT COALESCE(MAX(version), 0) FROM postdesk_schema";
    conn.query_row(Q, [], |r| r.get(0))
        .map_err(|e| Error::sql(Q, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_postgresql_migration_is_the_newest_sqlite_one() {
        assert_eq!(
            MIGRATIONS.last().map(|m| m.0),
            Some(super::super::SCHEMA_VERSION)
        );
    }
}
