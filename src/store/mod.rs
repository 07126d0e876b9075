//! Store: SQLite (rusqlite, bundled) in WAL mode, or PostgreSQL shared by
//! several nodes (see [`db`] and [`pg`]).
//!
//! Speaks the domain, not SQL: the pipeline calls verbs on [`Tx`] inside the
//! writer's transaction, the CLI calls the read queries on [`Store`]. No
//! driver type leaves this module except as an error's source.
//!
//! Durability: `journal_mode=WAL` with `synchronous=FULL`, so every commit
//! makes the WAL durable (fdatasync, see `.cargo/config.toml`) before it
//! returns. One writer thread (see [`writer`])
//! commits many messages per transaction (group commit), so concurrent
//! sessions share one fsync; each sender is answered only after the commit
//! holding its message returned.

use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;

/// `status NOT IN` this list is "not closed": the SQL spelling of
/// [`crate::domain::Status::CLOSED`] (a test keeps the two equal). Compare
/// with `COLLATE NOCASE`.
macro_rules! closed_statuses {
    () => {
        "('Closed', 'Resolved')"
    };
}
use rusqlite::OpenFlags;

use db::{Connection, DbError};

mod admin;
mod automation;
pub mod backup;
pub mod copy;
pub(crate) mod db;
mod detector;
mod facts;
mod gauges;
pub mod lock;
mod migrate;
pub mod nodes;
mod outbox;
pub mod pcache;
pub mod pg;
mod poll;
mod read;
mod satisfaction;
mod search;
mod sla;
mod split;
mod stats;
mod tx;
mod web;
mod webhooks;
pub mod writer;

pub use admin::StatusChange;
pub use detector::{HitKey, NewFlag, ScanCandidate, ScopeFilter, Suspension};
pub use facts::{SenderHistory, TicketFacts};
pub use gauges::Gauges;
pub use migrate::LATEST as SCHEMA_VERSION;
pub use outbox::{
    Claimed, Conversation, Enqueue, NewOutbound, Outbox, OutboxId, OutboxRow, RetryOutcome,
    Settlement, TicketField,
};
pub use poll::{
    ClientTicket, DigestItem, MailboxHealth, MailboxState, NewDigestItem, NewNotice, Notice,
    OpenCount, SyncState, SyncUpdate, TicketLine,
};
pub use read::{
    AttachmentBytes, AttachmentSummary, EventRow, MessageDetail, MessageSummary, StoredAttachment,
    TicketDetail, TicketFilter, TicketRef, TicketSummary,
};
pub use satisfaction::{NewRating, Rating, RatingCount};
pub use search::{SearchFilter, SearchHit, fts_query};
pub use sla::{SlaRow, SlaTicket};
pub use split::SplitPoint;
pub use stats::{ExportMessage, StatsTicket, TicketScope, Transition};
pub use tx::Opened;
pub use tx::{NewEvent, NewMessage, NewTicket, StoredUnder, Tx};
pub use web::{ApiKeyMatch, ApiKeyRow, NewKey};
pub use webhooks::{Delivery, Subscription, TicketSnapshot, WebhookQueue, WebhookRow, subscribe};
pub use writer::{Job, Writer, WriterThread, Writes};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A statement failed.
    #[error("sql: {statement}")]
    Sql {
        /// The statement (or its name) that failed.
        statement: String,
        /// The driver's error.
        #[source]
        source: DbError,
    },
    /// The database could not be opened.
    #[error("opening database {path}")]
    Open {
        /// The database file, or the PostgreSQL URL without its password.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: DbError,
    },
    /// The `[store]` settings are unusable.
    #[error("store settings: {0}")]
    Settings(String),
    /// The data directory could not be created.
    #[error("creating data directory {path}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer postdesk.
    #[error("database schema version {found} is newer than this postdesk supports ({supported})")]
    TooNew {
        /// The version found.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The writer thread has stopped.
    #[error("store writer has stopped")]
    WriterGone,
    /// A caller broke a rule of the store's verbs (a bug, reported instead
    /// of a panic).
    #[error("invariant broken: {0}")]
    Invariant(String),
}

impl Error {
    pub(crate) fn sql(statement: impl Into<String>, source: impl Into<DbError>) -> Self {
        Error::Sql {
            statement: statement.into(),
            source: source.into(),
        }
    }

    /// Whether retrying later may succeed (a busy or locked database, a full
    /// disk, an I/O hiccup), as opposed to a bug or a corrupt file.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Sql { source, .. } | Error::Open { source, .. } => source.is_transient(),
            Error::Io { .. } | Error::WriterGone => true,
            Error::TooNew { .. } | Error::Invariant(_) | Error::Settings(_) => false,
        }
    }
}

/// The database file inside a data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("postdesk.sqlite3")
}

/// Where the store lives: the SQLite file of a data directory (the
/// default), or a PostgreSQL database shared by several nodes.
#[derive(Debug, Clone)]
pub enum Location {
    /// `postdesk.sqlite3` in this data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(std::sync::Arc<pg::Target>),
}

impl From<&Path> for Location {
    fn from(data_dir: &Path) -> Self {
        Location::Sqlite(data_dir.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(data_dir: &PathBuf) -> Self {
        Location::Sqlite(data_dir.clone())
    }
}

impl From<&Location> for Location {
    fn from(at: &Location) -> Self {
        at.clone()
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(dir) => write!(f, "in {}", dir.display()),
            Location::Postgres(t) => write!(f, "{} (node {})", t.url, t.node),
        }
    }
}

impl Location {
    /// Whether several nodes may share it.
    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

/// Open (creating and migrating if needed) a connection to the store.
pub(crate) fn open_at(at: &Location) -> Result<Connection, Error> {
    match at {
        Location::Sqlite(dir) => Ok(Connection::Lite(connect_lite(&db_path(dir))?)),
        Location::Postgres(target) => pg::connect(target),
    }
}

/// Open (creating and migrating if needed) an SQLite database file.
#[cfg(test)]
pub(crate) fn connect(path: &Path) -> Result<Connection, Error> {
    Ok(Connection::Lite(connect_lite(path)?))
}

/// Open (creating and migrating if needed) a connection with postdesk's
/// pragmas.
pub(super) fn connect_lite(path: &Path) -> Result<rusqlite::Connection, Error> {
    use std::os::unix::fs::DirBuilderExt;
    // The store holds every customer's mail: the data directory is the
    // owner's alone (0700), and so is the database (0600). SQLite gives
    // the `-wal` and `-shm` files the database file's mode, so creating it
    // here, before SQLite does with its default 0644, covers all three.
    // An existing directory or file keeps the mode it has.
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    // Only a missing file is created: an existing one is left to SQLite
    // untouched (opened for writing here, a read-only one would fail
    // where SQLite falls back to reading).
    match crate::files::create_private(path, false) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    pcache::install();
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source: source.into(),
    })?;
    // WAL lets readers (the CLI, explain) run beside the one writer.
    // synchronous=FULL: a commit returns only after the WAL is fsynced, which
    // is what makes "250 after commit" mean "on disk". journal_size_limit:
    // a WAL grown by a batch of large messages is cut back to 32 MiB once
    // it has been checkpointed, instead of keeping its largest size.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -65536;
         PRAGMA wal_autocheckpoint = 4000;
         PRAGMA journal_size_limit = 33554432;",
    )
    .map_err(|e| Error::sql("PRAGMA setup", e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| Error::sql("busy_timeout", e))?;
    // Every statement on a message's path is `prepare_cached`; rusqlite's
    // cache holds 16 by default, fewer than the path has, so they were
    // parsed again for every message (a quarter of the writer's CPU).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner's stability guarantee: a plan never depends on the
    // values bound to it. Without it SQLite 3.54 marks a cached SELECT to
    // be prepared again whenever a parameter it could plan on gets a new
    // value, which here was every SELECT of every message (12 % of the
    // server's CPU); postdesk's lookups are equality probes on indexes,
    // whose plan no value changes.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|e| Error::sql("SQLITE_DBCONFIG_ENABLE_QPSG", e))?;
    migrate::apply(&mut conn)?;
    Ok(conn)
}

/// Statements each connection keeps prepared: more than every distinct
/// statement of the writer's path (about 90), so none is parsed twice.
const STATEMENT_CACHE: usize = 256;

/// Read access to the store (one connection; open one per thread).
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Open the database in `data_dir`, creating and migrating it if needed.
    ///
    /// # Errors
    ///
    /// [`Error::Open`], [`Error::Io`] or a migration failure.
    pub fn open(at: impl Into<Location>) -> Result<Store, Error> {
        Ok(Store {
            conn: open_at(&at.into())?,
        })
    }

    /// The schema version of the open database.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`] if the pragma cannot be read.
    pub fn schema_version(&self) -> Result<i64, Error> {
        match &self.conn {
            Connection::Lite(c) => c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| Error::sql("PRAGMA user_version", e)),
            Connection::Pg(_) => pg::schema_version(&self.conn),
        }
    }

    /// Run `f` inside a transaction that is always rolled back: how `explain`
    /// runs the real pipeline without changing anything.
    ///
    /// # Errors
    ///
    /// Whatever `f` returns, or [`Error::Sql`] when the transaction cannot
    /// begin.
    pub fn dry_run<T>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // The pipeline reads and then writes: taking the write lock first
        // makes a busy server a wait (the busy timeout), not a stale-read
        // error half-way through.
        let txn = self
            .conn
            .transaction_with_behavior(db::Begin::Immediate)
            .map_err(|e| Error::sql("BEGIN IMMEDIATE", e))?;
        let out = f(&mut Tx::dry(&txn));
        txn.rollback().map_err(|e| Error::sql("ROLLBACK", e))?;
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::Status;

    #[test]
    fn the_sql_list_of_closed_statuses_is_the_domain_one() {
        let names: Vec<String> = Status::CLOSED
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert_eq!(closed_statuses!(), format!("({})", names.join(", ")));
    }
}
