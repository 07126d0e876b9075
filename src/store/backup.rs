//! `postdesk backup` and `postdesk restore`: the store copied to one file
//! and back, with SQLite's online backup API.
//!
//! A backup copies the database in one step (`sqlite3_backup_step(-1)`),
//! which reads every page inside one read transaction: the copy is the
//! store as of one commit, and since the store is in WAL mode the server's
//! writer goes on committing while it runs (a copy made page batch by page
//! batch would start over each time the server wrote). The copy is written
//! to `FILE.partial-PID`, switched to a rollback journal so it is one
//! self-contained file, fsynced, and only then linked to `FILE`: a backup
//! cut short never leaves a file under the name the admin asked for, and an
//! existing file is never overwritten.
//!
//! A restore takes the data directory's lock alone (see [`super::lock`]),
//! so it refuses while a server or an ingest runs, and none starts while
//! it works. It copies the file into the data directory first and checks
//! the copy, not the original (which could change between the check and
//! the use): `PRAGMA integrity_check`, the postdesk tables, and a schema
//! version this build knows (an older one is migrated at once). Only then
//! is the current database moved aside, with its WAL, as
//! `postdesk.sqlite3.before-restore-TIMESTAMP`, and the copy renamed into
//! its place. Nothing is deleted: the store a restore replaced can be put
//! back by renaming it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{db_path, lock, migrate};

/// How long a copy may wait for the source or destination lock.
const BUSY_DEADLINE: Duration = Duration::from_secs(60);

/// The tables every postdesk store has had since its first schema.
const POSTDESK_TABLES: [&str; 3] = ["tickets", "messages", "message_raw"];

/// What a backup or restored store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// Tickets stored.
    pub tickets: i64,
    /// Messages stored (received and sent).
    pub messages: i64,
    /// Size of the database file, octets.
    pub bytes: u64,
}

/// What [`restore`] did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The restored store, after migration to this build's schema.
    pub contents: Contents,
    /// Its schema version in the file restored from.
    pub restored_version: i64,
    /// Where the store it replaced was moved, if there was one.
    pub replaced: Option<PathBuf>,
}

/// Why a backup or a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory holds no store.
    #[error("no postdesk store in {dir} (no {file})", file = super::db_path(.dir).display())]
    NoStore {
        /// The data directory.
        dir: PathBuf,
    },
    /// The backup file exists; a backup never overwrites one.
    #[error("{path} exists; a backup never overwrites a file, name a new one")]
    Exists {
        /// The file named.
        path: PathBuf,
    },
    /// The file is not a postdesk store.
    #[error("{path} is not a postdesk store: {why}")]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The file fails SQLite's integrity check.
    #[error("{path} is damaged (PRAGMA integrity_check): {}", problems.join("; "))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The first problems the check reported.
        problems: Vec<String>,
    },
    /// The file was written by a newer postdesk.
    #[error(
        "{path} has schema version {found}, newer than this postdesk knows ({supported}); \
         restore it with the postdesk that wrote it"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The data directory's lock.
    #[error(transparent)]
    Lock(#[from] lock::Error),
    /// A file could not be read, written, renamed or synced.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A statement on the copy failed.
    #[error(transparent)]
    Store(#[from] super::Error),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// Copy the store in `data_dir` to `dest`, a new file, while the server may
/// be running.
///
/// # Errors
///
/// [`Error::NoStore`], [`Error::Exists`], [`Error::NotAStore`] when the
/// data directory holds something else, [`Error::Io`], [`Error::Store`].
pub fn backup(data_dir: &Path, dest: &Path) -> Result<Contents, Error> {
    let source_path = db_path(data_dir);
    if !source_path.is_file() {
        return Err(Error::NoStore {
            dir: data_dir.to_path_buf(),
        });
    }
    if dest.symlink_metadata().is_ok() {
        return Err(Error::Exists {
            path: dest.to_path_buf(),
        });
    }
    // Read-only: a backup run by another user than the server's (root)
    // creates no file in the data directory.
    let source = open_read_only(&source_path)?;
    kind(&source, &source_path)?;
    let mut partial = dest.as_os_str().to_owned();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = PathBuf::from(partial);
    crate::files::create_private(&partial, false).map_err(io("creating", &partial))?;
    let copied = copy_to(&source, &partial).and_then(|()| {
        let copy = open_copy(&partial)?;
        let contents = contents(&copy, &partial)?;
        drop(copy);
        sync(&partial)?;
        Ok(contents)
    });
    let linked = copied.and_then(|contents| {
        // A hard link never replaces an existing file, as a rename would.
        std::fs::hard_link(&partial, dest).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Exists {
                path: dest.to_path_buf(),
            },
            _ => io("linking", dest)(e),
        })?;
        Ok(contents)
    });
    let _ = std::fs::remove_file(&partial);
    let contents = linked?;
    sync_parent(dest)?;
    Ok(contents)
}

/// Replace the store in `data_dir` with the one in `file`, keeping the
/// replaced one aside.
///
/// # Errors
///
/// [`Error::Lock`] while a server or an ingest runs; [`Error::NotAStore`],
/// [`Error::Corrupt`], [`Error::TooNew`] for a file that cannot be
/// restored (the data directory is then left as it was); [`Error::Io`],
/// [`Error::Store`].
pub fn restore(data_dir: &Path, file: &Path) -> Result<Restored, Error> {
    std::fs::File::open(file).map_err(io("reading", file))?;
    let _held = lock::exclusive(data_dir)?;
    let db = db_path(data_dir);
    let incoming = sibling(&db, ".restoring");
    // A restore cut short left its copy; the lock says nobody uses it.
    for leftover in [incoming.clone(), sibling(&incoming, "-journal")] {
        match std::fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing", &leftover)(e)),
        }
    }
    crate::files::create_private(&incoming, false).map_err(io("creating", &incoming))?;
    let checked = check_copy(file, &incoming);
    let restored_version = match checked {
        Ok(version) => version,
        Err(e) => {
            let _ = std::fs::remove_file(&incoming);
            return Err(e);
        }
    };
    sync(&incoming)?;
    let replaced = if db.exists() {
        let aside = aside_name(&db);
        std::fs::rename(&db, &aside).map_err(io("moving aside", &db))?;
        // The WAL goes with its database (SQLite finds it by name); the
        // shared-memory index is rebuilt from it.
        let wal = sibling(&db, "-wal");
        if wal.exists() {
            let to = sibling(&aside, "-wal");
            std::fs::rename(&wal, &to).map_err(io("moving aside", &wal))?;
        }
        let shm = sibling(&db, "-shm");
        match std::fs::remove_file(&shm) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing", &shm)(e)),
        }
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&incoming, &db).map_err(io("renaming", &incoming))?;
    sync_parent(&db)?;
    adopt(data_dir, &db)?;
    // Migrated now, so a failure shows here and not at the next start.
    let conn = super::connect_lite(&db)?;
    for f in ["-wal", "-shm"] {
        adopt(data_dir, &sibling(&db, f))?;
    }
    let contents = contents(&conn, &db)?;
    Ok(Restored {
        contents,
        restored_version,
        replaced,
    })
}

/// Copy `file` into `incoming` and check the copy; returns its schema
/// version.
fn check_copy(file: &Path, incoming: &Path) -> Result<i64, Error> {
    let not_sqlite = |e: rusqlite::Error| classify(file, e);
    let source = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(not_sqlite)?;
    copy_to(&source, incoming).map_err(|e| match e {
        Error::Store(super::Error::Sql {
            source: super::db::DbError::Lite(source),
            ..
        }) => classify(file, source),
        other => other,
    })?;
    drop(source);
    let copy = open_copy(incoming)?;
    let version = kind(&copy, incoming).map_err(|e| rename_in(e, file))?;
    integrity(&copy).map_err(|e| rename_in(e, file))?;
    Ok(version)
}

/// Report an error about the copy under the name of the file the admin gave.
fn rename_in(e: Error, file: &Path) -> Error {
    match e {
        Error::NotAStore { why, .. } => Error::NotAStore {
            path: file.to_path_buf(),
            why,
        },
        Error::Corrupt { problems, .. } => Error::Corrupt {
            path: file.to_path_buf(),
            problems,
        },
        Error::TooNew {
            found, supported, ..
        } => Error::TooNew {
            path: file.to_path_buf(),
            found,
            supported,
        },
        other => other,
    }
}

/// An SQLite error about a file given to restore, in the admin's terms.
fn classify(file: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::NotAStore {
            path: file.to_path_buf(),
            why: "not an SQLite database".into(),
        },
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            path: file.to_path_buf(),
            problems: vec![e.to_string()],
        },
        _ => Error::Store(super::Error::Open {
            path: file.to_path_buf(),
            source: e.into(),
        }),
    }
}

fn open_read_only(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| super::Error::Open {
        path: path.to_path_buf(),
        source: source.into(),
    })?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| super::Error::sql("busy_timeout", e))?;
    Ok(conn)
}

/// Open a copy this module is writing (an existing, empty or whole file).
fn open_copy(path: &Path) -> Result<Connection, Error> {
    Ok(Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| super::Error::Open {
        path: path.to_path_buf(),
        source: source.into(),
    })?)
}

/// Copy every page of `source` into the (empty) file `dest` in one step,
/// then make `dest` a rollback-journal database: one file, nothing beside.
fn copy_to(source: &Connection, dest: &Path) -> Result<(), Error> {
    let mut copy = open_copy(dest)?;
    {
        let backup =
            Backup::new(source, &mut copy).map_err(|e| super::Error::sql("backup init", e))?;
        let start = Instant::now();
        loop {
            match backup
                .step(-1)
                .map_err(|e| super::Error::sql("backup step", e))?
            {
                StepResult::Done => break,
                // Busy or locked: another connection holds a lock this
                // step needs; try again, for a bounded time.
                _ if start.elapsed() < BUSY_DEADLINE => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    return Err(super::Error::Invariant(format!(
                        "the copy to {} waited {BUSY_DEADLINE:?} for a lock",
                        dest.display()
                    ))
                    .into());
                }
            }
        }
    }
    // The copy carries the source's header, WAL mode included.
    let mode: String = copy
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(|e| super::Error::sql("PRAGMA journal_mode = DELETE", e))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(super::Error::Invariant(format!(
            "{} stayed in journal mode {mode}",
            dest.display()
        ))
        .into());
    }
    Ok(())
}

/// The schema version of a postdesk store, or why `conn` is not one this
/// build can use.
fn kind(conn: &Connection, path: &Path) -> Result<i64, Error> {
    let sql_err = |statement: &'static str| {
        let path = path.to_path_buf();
        move |e: rusqlite::Error| match classify(&path, e) {
            Error::Store(super::Error::Open { source, .. }) => {
                super::Error::sql(statement, source).into()
            }
            other => other,
        }
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err("PRAGMA user_version"))?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN (?1, ?2, ?3)",
            POSTDESK_TABLES,
            |r| r.get(0),
        )
        .map_err(sql_err("SELECT postdesk tables"))?;
    if version < 1 || tables < POSTDESK_TABLES.len() as i64 {
        return Err(Error::NotAStore {
            path: path.to_path_buf(),
            why: format!(
                "schema version {version}, {tables} of the tables {} found",
                POSTDESK_TABLES.join(", ")
            ),
        });
    }
    if version > migrate::LATEST {
        return Err(Error::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: migrate::LATEST,
        });
    }
    Ok(version)
}

/// Problems beyond this many are not listed.
const PROBLEMS_SHOWN: usize = 5;

/// `PRAGMA integrity_check` on the copy.
fn integrity(conn: &Connection) -> Result<(), Error> {
    let path = PathBuf::from(conn.path().unwrap_or_default());
    let corrupt = |e: rusqlite::Error| Error::Corrupt {
        path: path.clone(),
        problems: vec![e.to_string()],
    };
    let mut st = conn.prepare("PRAGMA integrity_check").map_err(&corrupt)?;
    let rows: Vec<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.take(PROBLEMS_SHOWN + 1).collect())
        .map_err(&corrupt)?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    let mut problems: Vec<String> = rows.into_iter().take(PROBLEMS_SHOWN).collect();
    if problems.len() == PROBLEMS_SHOWN {
        problems.push("...".into());
    }
    Err(Error::Corrupt { path, problems })
}

fn contents(conn: &Connection, path: &Path) -> Result<Contents, Error> {
    let count = |statement: &'static str| -> Result<i64, Error> {
        Ok(conn
            .query_row(statement, [], |r| r.get(0))
            .map_err(|e| super::Error::sql(statement, e))?)
    };
    Ok(Contents {
        schema_version: count("PRAGMA user_version")?,
        tickets: count("SELECT count(*) FROM tickets")?,
        messages: count("SELECT count(*) FROM messages")?,
        bytes: std::fs::metadata(path).map_err(io("reading", path))?.len(),
    })
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A free name for the replaced store: `postdesk.sqlite3.before-restore-
/// 20261206T141500Z` (with `-2`, `-3`, ... after a second restore within
/// the same second).
fn aside_name(db: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let base = sibling(db, &format!(".before-restore-{stamp}"));
    let mut name = base.clone();
    let mut n = 1;
    while name.exists() || sibling(&name, "-wal").exists() {
        n += 1;
        name = sibling(&base, &format!("-{n}"));
    }
    name
}

fn sync(path: &Path) -> Result<(), Error> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", path))
}

/// Make a rename or a link durable: fsync the directory holding `path`.
fn sync_parent(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    sync(dir)
}

/// When run as root, give a file created in the data directory to the
/// directory's owner, so the server (running as that user) can open it.
fn adopt(data_dir: &Path, path: &Path) -> Result<(), Error> {
    lock::give_to_owner(data_dir, path).map_err(io("changing the owner of", path))
}
