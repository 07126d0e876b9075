//! `postdesk migrate-store --to postgres://…`: copy the SQLite store of a
//! data directory into a PostgreSQL database, table by table, in batches
//! that each commit; run again after an interruption, it skips the rows
//! already there and copies the rest. Then it checks every table: the
//! same number of rows, and the same hash of their values (a sum of each
//! row's SHA-256, so the order rows come back in does not matter).

use std::path::Path;

use rusqlite::types::ValueRef;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::db::Connection;
use super::{Error, lock, pg};

/// The tables, parents before children (foreign keys hold at each batch).
const TABLES: &[&str] = &[
    "contacts",
    "tickets",
    "messages",
    "message_raw",
    "participants",
    "attachments",
    "events",
    "mailbox_sync",
    "message_refs",
    "outbox",
    "ticket_tags",
    "suppressed_addresses",
    "ticket_clients",
    "mailbox_health",
    "digests",
    "digest_items",
    "digest_schedule",
    "notices",
    "detector_scans",
    "detector_flags",
    "detector_hits",
    "suspensions",
    "ticket_sla",
    "sla_alerts",
    "ratings",
    "api_keys",
    "web_alerts",
    "message_search",
    "assignment_cursor",
    "automation_idle",
    "webhook_deliveries",
];

/// Columns that may point at a later row of their own table: copied as
/// NULL first, set once every row is there.
const LATER: &[(&str, &[&str])] = &[("tickets", &["linked_ticket_id", "merged_into"])];

/// Rows per committed batch.
const BATCH: usize = 500;

/// What was copied of one table and how it checked.
#[derive(Debug, Clone, Serialize)]
pub struct TableCopy {
    /// The table.
    pub table: String,
    /// Rows in the SQLite store.
    pub rows: i64,
    /// Rows added to PostgreSQL by this run (the others were there).
    pub copied: u64,
    /// Rows in PostgreSQL afterwards.
    pub target_rows: i64,
    /// Whether the counts and the hashes of the values match.
    pub verified: bool,
}

/// What can stop a copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
    /// The data directory is in use (a server runs on it).
    #[error(transparent)]
    Lock(#[from] lock::Error),
    /// The SQLite store has a table this build does not know.
    #[error("the SQLite store has a table this postdesk does not know: {0}")]
    UnknownTable(String),
}

/// Copy the store of `data_dir` to `target`; `progress` hears each table
/// when it is done.
///
/// # Errors
///
/// [`CopyError`]; what was committed stays, and a second run goes on.
pub fn copy(
    data_dir: &Path,
    target: &pg::Target,
    mut progress: impl FnMut(&TableCopy),
) -> Result<Vec<TableCopy>, CopyError> {
    // Nothing may write the SQLite store meanwhile.
    let _held = lock::exclusive(data_dir)?;
    let source = super::connect_lite(&super::db_path(data_dir))?;
    let dest = pg::connect(target)?;
    let known: Vec<String> = {
        const Q: &str = "SELECT name FROM sqlite_schema WHERE type = 'table'
            AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'message_search_%' ORDER BY name";
        let mut st = source.prepare(Q).map_err(|e| Error::sql(Q, e))?;
        st.query_map([], |r| r.get(0))
            .map_err(|e| Error::sql(Q, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(Q, e))?
    };
    if let Some(t) = known.iter().find(|t| !TABLES.contains(&t.as_str())) {
        return Err(CopyError::UnknownTable(t.clone()));
    }
    let mut out = Vec::new();
    for table in TABLES.iter().filter(|t| known.iter().any(|k| k == *t)) {
        let done = copy_table(&source, &dest, table)?;
        progress(&done);
        out.push(done);
    }
    // Identities and the ticket numbers go on after the copied rows.
    for table in TABLES {
        let q = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))"
        );
        let has_id: bool = dest
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_name::text = ?1 AND column_name::text = 'id'
                      AND is_identity::text = 'YES')",
                super::db::params![table],
                |r| r.get(0),
            )
            .map_err(|e| Error::sql("identity columns", e))?;
        if has_id {
            dest.execute_batch(&q)
                .map_err(|e| Error::sql(q.clone(), e))?;
        }
    }
    const NUMBERS: &str =
        "SELECT setval('ticket_numbers', GREATEST((SELECT MAX(number) FROM tickets), 1))";
    dest.execute_batch(NUMBERS)
        .map_err(|e| Error::sql(NUMBERS, e))?;
    Ok(out)
}

/// The columns of `table` as SQLite has them (`rowid` first for the
/// search index, whose rows are keyed by it).
fn columns(source: &rusqlite::Connection, table: &str) -> Result<Vec<String>, Error> {
    if table == "message_search" {
        return Ok(["rowid", "subject", "body", "attachments"]
            .map(str::to_owned)
            .to_vec());
    }
    let q = format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid");
    let mut st = source.prepare(&q).map_err(|e| Error::sql(q.clone(), e))?;
    st.query_map([], |r| r.get(0))
        .map_err(|e| Error::sql(q.clone(), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| Error::sql(q.clone(), e))
}

/// A value to keep past its row.
fn owned_value(v: ValueRef<'_>) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// One row's contribution to a table's hash.
fn row_hash(values: &[ValueRef<'_>]) -> u128 {
    let mut h = Sha256::new();
    for v in values {
        match v {
            ValueRef::Null => h.update(b"n"),
            ValueRef::Integer(i) => {
                h.update(b"i");
                h.update(i.to_be_bytes());
            }
            ValueRef::Real(f) => {
                h.update(b"r");
                h.update(f.to_be_bytes());
            }
            ValueRef::Text(t) => {
                h.update(b"t");
                h.update((t.len() as u64).to_be_bytes());
                h.update(t);
            }
            ValueRef::Blob(b) => {
                h.update(b"b");
                h.update((b.len() as u64).to_be_bytes());
                h.update(b);
            }
        }
    }
    let d = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    u128::from_be_bytes(first)
}

fn copy_table(
    source: &rusqlite::Connection,
    dest: &Connection,
    table: &str,
) -> Result<TableCopy, Error> {
    let cols = columns(source, table)?;
    let later: &[&str] = LATER
        .iter()
        .find(|(t, _)| *t == table)
        .map_or(&[], |(_, c)| c);
    // Quoted: a column may be a keyword of one of the two (`end`).
    let list = cols
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let select = format!("SELECT {list} FROM {table}");
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let insert = format!(
        "INSERT INTO {table} ({list}) VALUES ({}) ON CONFLICT DO NOTHING",
        marks.join(", ")
    );
    let mut st = source
        .prepare(&select)
        .map_err(|e| Error::sql(select.clone(), e))?;
    let mut rows = st.query([]).map_err(|e| Error::sql(select.clone(), e))?;
    let mut source_rows = 0i64;
    let mut source_hash = 0u128;
    let mut copied = 0u64;
    let mut pending: Vec<Vec<rusqlite::types::Value>> = Vec::with_capacity(BATCH);
    let mut fixups: Vec<Vec<rusqlite::types::Value>> = Vec::new();
    let flush = |pending: &mut Vec<Vec<rusqlite::types::Value>>| -> Result<u64, Error> {
        if pending.is_empty() {
            return Ok(0);
        }
        dest.execute_batch("BEGIN")
            .map_err(|e| Error::sql("BEGIN", e))?;
        let mut n = 0u64;
        for row in pending.drain(..) {
            let refs: Vec<&dyn rusqlite::ToSql> =
                row.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
            n += dest
                .execute(&insert, refs.as_slice())
                .map_err(|e| Error::sql(insert.clone(), e))? as u64;
        }
        dest.execute_batch("COMMIT")
            .map_err(|e| Error::sql("COMMIT", e))?;
        Ok(n)
    };
    while let Some(r) = rows.next().map_err(|e| Error::sql(select.clone(), e))? {
        let values: Vec<ValueRef<'_>> = (0..cols.len())
            .map(|i| r.get_ref(i))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(select.clone(), e))?;
        source_rows += 1;
        source_hash = source_hash.wrapping_add(row_hash(&values));
        let mut owned: Vec<rusqlite::types::Value> =
            values.iter().map(|v| owned_value(*v)).collect();
        if !later.is_empty() {
            let mut fix = vec![owned[0].clone()];
            for c in later {
                if let Some(i) = cols.iter().position(|x| x == c) {
                    fix.push(std::mem::replace(
                        &mut owned[i],
                        rusqlite::types::Value::Null,
                    ));
                }
            }
            if fix[1..].iter().any(|v| *v != rusqlite::types::Value::Null) {
                fixups.push(fix);
            }
        }
        pending.push(owned);
        if pending.len() >= BATCH {
            copied += flush(&mut pending)?;
        }
    }
    copied += flush(&mut pending)?;
    if !fixups.is_empty() {
        let sets: Vec<String> = later
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{c}\" = ?{}", i + 2))
            .collect();
        let update = format!(
            "UPDATE {table} SET {} WHERE {} = ?1",
            sets.join(", "),
            cols[0]
        );
        for fix in &fixups {
            let refs: Vec<&dyn rusqlite::ToSql> =
                fix.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
            dest.execute(&update, refs.as_slice())
                .map_err(|e| Error::sql(update.clone(), e))?;
        }
    }
    // The check: read every row back from PostgreSQL.
    let mut st = dest
        .prepare(&select)
        .map_err(|e| Error::sql(select.clone(), e))?;
    let mut back = st.query([]).map_err(|e| Error::sql(select.clone(), e))?;
    let mut target_rows = 0i64;
    let mut target_hash = 0u128;
    while let Some(r) = back.next().map_err(|e| Error::sql(select.clone(), e))? {
        let values: Vec<ValueRef<'_>> = (0..cols.len())
            .map(|i| r.get_ref(i))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(select.clone(), e))?;
        target_rows += 1;
        target_hash = target_hash.wrapping_add(row_hash(&values));
    }
    Ok(TableCopy {
        table: table.to_owned(),
        rows: source_rows,
        copied,
        target_rows,
        verified: source_rows == target_rows && source_hash == target_hash,
    })
}
