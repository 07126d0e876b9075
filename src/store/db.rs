//! The store's database connection: SQLite (the default, rusqlite) or
//! PostgreSQL (the `postgres` crate), behind the small part of rusqlite's
//! API the store's verbs use.
//!
//! The verbs are written once, in SQLite's dialect; on PostgreSQL each
//! statement is translated once when it is first prepared ([`translate`])
//! and kept prepared on its connection. Values travel as rusqlite's
//! [`ValueRef`]: parameters are bound by the type PostgreSQL inferred for
//! them, and columns are read into the value SQLite would have given, so
//! the verbs' row readers work unchanged on both. The few statements whose
//! SQL cannot be shared name both spellings with [`Connection::pick`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use bytes::BufMut;
use postgres::types::{IsNull, Type};
use rusqlite::types::{FromSql, ToSql, ToSqlOutput, ValueRef};

/// A driver error of either backend.
#[derive(Debug)]
pub enum DbError {
    /// From SQLite (or reading a row of either backend).
    Lite(rusqlite::Error),
    /// From PostgreSQL.
    Pg(postgres::Error),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Lite(e) => e.fmt(f),
            DbError::Pg(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => e.fmt(f),
            },
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Lite(e) => e.source(),
            DbError::Pg(e) => e.source(),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Lite(e)
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Pg(e)
    }
}

impl DbError {
    /// Whether retrying later may succeed: a busy or locked database, a
    /// full disk, an I/O hiccup, a lost connection, a deadlock or a
    /// serialization failure between nodes.
    pub fn is_transient(&self) -> bool {
        use postgres::error::SqlState;
        match self {
            DbError::Lite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::CannotOpen
                )
            ),
            DbError::Pg(e) => match e.code() {
                None => e.is_closed() || e.as_db_error().is_none(),
                Some(code) => {
                    *code == SqlState::T_R_SERIALIZATION_FAILURE
                        || *code == SqlState::T_R_DEADLOCK_DETECTED
                        || *code == SqlState::LOCK_NOT_AVAILABLE
                        || *code == SqlState::ADMIN_SHUTDOWN
                        || *code == SqlState::CANNOT_CONNECT_NOW
                        || *code == SqlState::DISK_FULL
                        || *code == SqlState::TOO_MANY_CONNECTIONS
                        // Two nodes inserting the same key at once: the
                        // loser runs again and finds the winner's row.
                        || *code == SqlState::UNIQUE_VIOLATION
                        || code.code().starts_with("08")
                }
            },
        }
    }

    /// A copy for each job of a failed batch (driver errors are not Clone):
    /// the same text and the same transience.
    pub fn copy(&self) -> DbError {
        let code = if self.is_transient() {
            rusqlite::ffi::SQLITE_BUSY
        } else {
            rusqlite::ffi::SQLITE_ERROR
        };
        let code = match self {
            DbError::Lite(e) => e.sqlite_error().map_or(code, |s| s.extended_code),
            DbError::Pg(_) => code,
        };
        DbError::Lite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some(self.to_string()),
        ))
    }
}

/// A driver result.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// `.optional()` on a query's result: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    /// `Ok(None)` for "no row".
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::Lite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A statement's parameters: `params![...]`, an array of values, or `[]`.
pub trait Params {
    /// Call `f` with the parameters, in order.
    fn bind<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R;
}

impl Params for &[&dyn ToSql] {
    fn bind<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
}

impl Params for [&(dyn ToSql + Send + Sync); 0] {
    fn bind<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

macro_rules! array_params {
    ($($n:literal)+) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn bind<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
                let refs: [&dyn ToSql; $n] = std::array::from_fn(|i| &self[i] as &dyn ToSql);
                f(&refs)
            }
        }
    )+};
}

array_params!(1 2 3 4 5 6 7 8);

pub use rusqlite::params;

/// An open connection.
pub enum Connection {
    /// SQLite.
    Lite(rusqlite::Connection),
    /// PostgreSQL (boxed: its client and statement map are larger).
    Pg(Box<Pg>),
}

/// A PostgreSQL connection and the statements prepared on it.
pub struct Pg {
    /// This node's name.
    node: String,
    client: RefCell<postgres::Client>,
    /// Keyed by the SQLite text of the statement.
    prepared: RefCell<HashMap<String, postgres::Statement>>,
}

/// Run a call of the synchronous PostgreSQL client, which drives its own
/// small runtime and so cannot run on a thread inside tokio's: in place on
/// a plain thread (the writer, the workers' blocking tasks), with
/// `block_in_place` on a runtime worker, else on a scoped thread.
pub fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => f(),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

impl Pg {
    /// Wrap a connected client of node `node`.
    pub fn new(client: postgres::Client, node: String) -> Pg {
        Pg {
            node,
            client: RefCell::new(client),
            prepared: RefCell::new(HashMap::new()),
        }
    }

    fn prepare(&self, sql: &str) -> Result<postgres::Statement> {
        if let Some(st) = self.prepared.borrow().get(sql) {
            return Ok(st.clone());
        }
        let text = translate(sql);
        let mut client = self.client.borrow_mut();
        let client = &mut *client;
        let st = off_runtime(|| client.prepare(&text))?;
        self.prepared
            .borrow_mut()
            .insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Run `call` with the client and `p` bound as PostgreSQL parameters.
    fn bound<R: Send>(
        &self,
        p: &[&dyn ToSql],
        call: impl FnOnce(
            &mut postgres::Client,
            &[&(dyn postgres::types::ToSql + Sync)],
        ) -> std::result::Result<R, postgres::Error>
        + Send,
    ) -> Result<R> {
        let values = outputs(p)?;
        let wrapped: Vec<PgParam<'_>> = values.iter().map(PgParam).collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = wrapped
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        Ok(self.with_client(|c| call(c, &refs))?)
    }

    fn rows(&self, st: &postgres::Statement, p: &[&dyn ToSql]) -> Result<Vec<postgres::Row>> {
        self.bound(p, |c, refs| c.query(st, refs))
    }

    fn execute(&self, st: &postgres::Statement, p: &[&dyn ToSql]) -> Result<usize> {
        let n = self.bound(p, |c, refs| c.execute(st, refs))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Run `f` with the client, for what only PostgreSQL does (advisory
    /// locks).
    pub fn with_client<R: Send>(&self, f: impl FnOnce(&mut postgres::Client) -> R + Send) -> R {
        let mut client = self.client.borrow_mut();
        let client = &mut *client;
        off_runtime(|| f(client))
    }
}

fn outputs<'a>(p: &'a [&dyn ToSql]) -> Result<Vec<ToSqlOutput<'a>>> {
    p.iter()
        .map(|v| v.to_sql().map_err(DbError::Lite))
        .collect()
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy)]
pub enum Begin {
    /// Take the write lock at once (SQLite `BEGIN IMMEDIATE`).
    Immediate,
    /// Take it at the first write.
    Deferred,
}

impl Connection {
    /// The SQLite connection, for what only SQLite does (pragmas, backup,
    /// blobs); `None` on PostgreSQL.
    pub fn lite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Connection::Lite(c) => Some(c),
            Connection::Pg(_) => None,
        }
    }

    /// The PostgreSQL connection; `None` on SQLite.
    pub fn pg(&self) -> Option<&Pg> {
        match self {
            Connection::Lite(_) => None,
            Connection::Pg(p) => Some(p),
        }
    }

    /// This node's name on a shared store; `""` on SQLite.
    pub fn node(&self) -> &str {
        match self {
            Connection::Lite(_) => "",
            Connection::Pg(p) => &p.node,
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_pg(&self) -> bool {
        matches!(self, Connection::Pg(_))
    }

    /// The statement text for this backend, where the two differ.
    pub fn pick<'s>(&self, lite: &'s str, pg: &'s str) -> &'s str {
        match self {
            Connection::Lite(_) => lite,
            Connection::Pg(_) => pg,
        }
    }

    /// Run statements without parameters (no translation on PostgreSQL).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Connection::Lite(c) => Ok(c.execute_batch(sql)?),
            Connection::Pg(p) => Ok(p.with_client(|c| c.batch_execute(sql))?),
        }
    }

    /// A statement, prepared once per connection and kept.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        match self {
            Connection::Lite(c) => Ok(Statement::Cached(c.prepare_cached(sql)?)),
            Connection::Pg(p) => Ok(Statement::Pg {
                pg: p,
                st: p.prepare(sql)?,
            }),
        }
    }

    /// An INSERT into a table with an `id` column, kept like
    /// [`prepare_cached`](Self::prepare_cached), to run with
    /// [`Statement::insert`] or [`Statement::insert_one`] for the new row's
    /// id (on PostgreSQL through `RETURNING id`: one round trip, not a second
    /// for `lastval()`).
    pub fn prepare_insert(&self, sql: &str) -> Result<Statement<'_>> {
        match self {
            Connection::Lite(c) => Ok(Statement::Cached(c.prepare_cached(sql)?)),
            Connection::Pg(p) => Ok(Statement::Pg {
                pg: p,
                st: p.prepare(&format!("{sql} RETURNING id"))?,
            }),
        }
    }

    /// A statement used rarely (not kept on SQLite).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        match self {
            Connection::Lite(c) => Ok(Statement::Once(c.prepare(sql)?)),
            Connection::Pg(p) => Ok(Statement::Pg {
                pg: p,
                st: p.prepare(sql)?,
            }),
        }
    }

    /// Run one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, p: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    /// The first row of a query, or `QueryReturnedNoRows`.
    pub fn query_row<T, P: Params, F>(&self, sql: &str, p: P, f: F) -> Result<T>
    where
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(p, f)
    }

    /// Begin a transaction; it rolls back when dropped uncommitted.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.transaction_with_behavior(Begin::Deferred)
    }

    /// Begin a transaction the given way.
    pub fn transaction_with_behavior(&mut self, how: Begin) -> Result<Transaction<'_>> {
        let sql = match (&*self, how) {
            (Connection::Lite(_), Begin::Immediate) => "BEGIN IMMEDIATE",
            (Connection::Lite(_), Begin::Deferred) => "BEGIN DEFERRED",
            (Connection::Pg(_), _) => "BEGIN",
        };
        self.execute_batch(sql)?;
        Ok(Transaction {
            conn: self,
            done: false,
        })
    }
}

/// An open transaction; derefs to its connection.
pub struct Transaction<'c> {
    conn: &'c Connection,
    done: bool,
}

impl Transaction<'_> {
    /// Commit it.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.conn.execute_batch("COMMIT")
    }

    /// Roll it back.
    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.conn.execute_batch("ROLLBACK")
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "rolling back a dropped transaction failed");
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// A prepared statement.
pub enum Statement<'c> {
    /// SQLite, kept in the connection's cache.
    Cached(rusqlite::CachedStatement<'c>),
    /// SQLite, finalized when dropped.
    Once(rusqlite::Statement<'c>),
    /// PostgreSQL.
    Pg {
        /// Its connection.
        pg: &'c Pg,
        /// The prepared statement.
        st: postgres::Statement,
    },
}

impl Statement<'_> {
    /// Run it; the number of rows changed.
    pub fn execute<P: Params>(&mut self, p: P) -> Result<usize> {
        match self {
            Statement::Cached(s) => p.bind(|p| Ok(s.execute(p)?)),
            Statement::Once(s) => p.bind(|p| Ok(s.execute(p)?)),
            Statement::Pg { pg, st } => p.bind(|p| pg.execute(st, p)),
        }
    }

    /// Run an INSERT prepared by [`Connection::prepare_insert`]: the new
    /// row's id, or `None` when it inserted nothing (`INSERT OR IGNORE`,
    /// `ON CONFLICT DO NOTHING`).
    pub fn insert<P: Params>(&mut self, p: P) -> Result<Option<i64>> {
        fn lite(r: rusqlite::Result<i64>) -> Result<Option<i64>> {
            match r {
                Ok(id) => Ok(Some(id)),
                Err(rusqlite::Error::StatementChangedRows(0)) => Ok(None),
                Err(e) => Err(DbError::Lite(e)),
            }
        }
        match self {
            Statement::Cached(s) => p.bind(|p| lite(s.insert(p))),
            Statement::Once(s) => p.bind(|p| lite(s.insert(p))),
            Statement::Pg { pg, st } => {
                let rows = p.bind(|p| pg.rows(st, p))?;
                Ok(rows.first().map(|r| r.get::<_, i64>(0)))
            }
        }
    }

    /// [`insert`](Self::insert) of a row that is always inserted: its id.
    pub fn insert_one<P: Params>(&mut self, p: P) -> Result<i64> {
        self.insert(p)?
            .ok_or(DbError::Lite(rusqlite::Error::StatementChangedRows(0)))
    }

    /// Whether the query returns a row.
    pub fn exists<P: Params>(&mut self, p: P) -> Result<bool> {
        match self {
            Statement::Cached(s) => p.bind(|p| Ok(s.exists(p)?)),
            Statement::Once(s) => p.bind(|p| Ok(s.exists(p)?)),
            Statement::Pg { pg, st } => p.bind(|p| Ok(!pg.rows(st, p)?.is_empty())),
        }
    }

    /// The first row, read by `f`, or `QueryReturnedNoRows`.
    pub fn query_row<T, P: Params, F>(&mut self, p: P, f: F) -> Result<T>
    where
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        match self {
            Statement::Cached(s) => p.bind(|p| Ok(s.query_row(p, |r| f(&Row::Lite(r)))?)),
            Statement::Once(s) => p.bind(|p| Ok(s.query_row(p, |r| f(&Row::Lite(r)))?)),
            Statement::Pg { pg, st } => {
                let rows = p.bind(|p| pg.rows(st, p))?;
                let first = rows
                    .first()
                    .ok_or(DbError::Lite(rusqlite::Error::QueryReturnedNoRows))?;
                Ok(f(&Row::Pg(first))?)
            }
        }
    }

    /// The rows, each read by `f`.
    pub fn query_map<T, P: Params, F>(&mut self, p: P, f: F) -> Result<MappedRows<'_, F>>
    where
        F: FnMut(&Row<'_>) -> rusqlite::Result<T>,
    {
        Ok(MappedRows {
            rows: self.query(p)?,
            f,
        })
    }

    /// The rows, to step through with [`Rows::next`].
    pub fn query<P: Params>(&mut self, p: P) -> Result<Rows<'_>> {
        match self {
            Statement::Cached(s) => p.bind(|p| Ok(Rows::Lite(s.query(p)?))),
            Statement::Once(s) => p.bind(|p| Ok(Rows::Lite(s.query(p)?))),
            Statement::Pg { pg, st } => Ok(Rows::Pg(p.bind(|p| pg.rows(st, p))?.into_iter(), None)),
        }
    }
}

/// Claim the due rows of a queue (the outbox, webhook deliveries):
/// `queries` is the statement for SQLite and for PostgreSQL, binding ?1
/// now in milliseconds, ?2 in seconds, ?3 the most rows, and on
/// PostgreSQL ?4 this node's name (the claim's owner).
pub fn claim_due<T>(
    conn: &Connection,
    queries: (&str, &str),
    now: crate::domain::Time,
    limit: usize,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let q = conn.pick(queries.0, queries.1);
    let mut st = conn.prepare_cached(q)?;
    let node = conn.node().to_owned();
    let all = params![now.millis(), now.secs(), limit as i64, node];
    let bound = if conn.is_pg() { all } else { &all[..3] };
    st.query_map(bound, read)?.collect()
}

/// Rows of a query (PostgreSQL's are read whole first).
pub enum Rows<'s> {
    /// SQLite's, stepped one by one.
    Lite(rusqlite::Rows<'s>),
    /// PostgreSQL's, and the current one.
    Pg(std::vec::IntoIter<postgres::Row>, Option<postgres::Row>),
}

impl Rows<'_> {
    /// The next row, or `None` after the last.
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self {
            Rows::Lite(r) => Ok(r.next()?.map(Row::Lite)),
            Rows::Pg(it, current) => {
                *current = it.next();
                Ok(current.as_ref().map(Row::Pg))
            }
        }
    }
}

/// Rows read by a function.
pub struct MappedRows<'s, F> {
    rows: Rows<'s>,
    f: F,
}

impl<T, F> Iterator for MappedRows<'_, F>
where
    F: FnMut(&Row<'_>) -> rusqlite::Result<T>,
{
    type Item = Result<T>;
    fn next(&mut self) -> Option<Result<T>> {
        match self.rows.next() {
            Ok(Some(r)) => Some((self.f)(&r).map_err(DbError::Lite)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// One row of a result.
pub enum Row<'r> {
    /// SQLite's.
    Lite(&'r rusqlite::Row<'r>),
    /// PostgreSQL's.
    Pg(&'r postgres::Row),
}

/// A column index: its position, or its name.
pub trait RowIndex: rusqlite::RowIndex + Copy {
    /// The position in a PostgreSQL row.
    fn position(self, row: &postgres::Row) -> Option<usize>;
}

impl RowIndex for usize {
    fn position(self, row: &postgres::Row) -> Option<usize> {
        (self < row.len()).then_some(self)
    }
}

impl RowIndex for &str {
    fn position(self, row: &postgres::Row) -> Option<usize> {
        row.columns().iter().position(|c| c.name() == self)
    }
}

impl Row<'_> {
    /// A column's value as `T`, read the way SQLite's value would be.
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> rusqlite::Result<T> {
        match self {
            Row::Lite(r) => r.get(idx),
            Row::Pg(r) => {
                let at = idx
                    .position(r)
                    .ok_or(rusqlite::Error::InvalidColumnIndex(0))?;
                let value = pg_value(r, at)?;
                T::column_result(value).map_err(|e| match e {
                    rusqlite::types::FromSqlError::InvalidType => {
                        rusqlite::Error::InvalidColumnType(
                            at,
                            r.columns()[at].name().to_string(),
                            value.data_type(),
                        )
                    }
                    other => rusqlite::Error::FromSqlConversionFailure(
                        at,
                        value.data_type(),
                        Box::new(other),
                    ),
                })
            }
        }
    }

    /// A column's value as it is.
    pub fn get_ref(&self, idx: usize) -> rusqlite::Result<ValueRef<'_>> {
        match self {
            Row::Lite(r) => r.get_ref(idx),
            Row::Pg(r) => pg_value(r, idx),
        }
    }
}

/// A PostgreSQL column's raw bytes (binary format), or `None` for NULL.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> postgres::types::FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }
    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn bad_column(at: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Null, what.into())
}

/// The value SQLite would have given for a PostgreSQL column.
fn pg_value(row: &postgres::Row, at: usize) -> rusqlite::Result<ValueRef<'_>> {
    let Raw(raw) = row
        .try_get::<_, Raw<'_>>(at)
        .map_err(|e| bad_column(at, e.to_string()))?;
    let Some(raw) = raw else {
        return Ok(ValueRef::Null);
    };
    let ty = row.columns()[at].type_();
    let fixed = |n: usize| -> rusqlite::Result<[u8; 8]> {
        let mut b = [0u8; 8];
        if raw.len() != n {
            return Err(bad_column(at, format!("{ty}: {} bytes", raw.len())));
        }
        b[8 - n..].copy_from_slice(raw);
        Ok(b)
    };
    Ok(match *ty {
        Type::INT8 => ValueRef::Integer(i64::from_be_bytes(fixed(8)?)),
        Type::INT4 | Type::OID => {
            let b = fixed(4)?;
            ValueRef::Integer(i64::from(i32::from_be_bytes([b[4], b[5], b[6], b[7]])))
        }
        Type::INT2 => {
            let b = fixed(2)?;
            ValueRef::Integer(i64::from(i16::from_be_bytes([b[6], b[7]])))
        }
        Type::BOOL => ValueRef::Integer(i64::from(raw.first().copied().unwrap_or(0) != 0)),
        Type::FLOAT8 => ValueRef::Real(f64::from_be_bytes(fixed(8)?)),
        Type::FLOAT4 => {
            let b = fixed(4)?;
            ValueRef::Real(f64::from(f32::from_be_bytes([b[4], b[5], b[6], b[7]])))
        }
        Type::NUMERIC => numeric(raw).ok_or_else(|| bad_column(at, "numeric".into()))?,
        Type::BYTEA => ValueRef::Blob(raw),
        Type::JSONB => ValueRef::Text(raw.get(1..).unwrap_or_default()),
        _ => ValueRef::Text(raw),
    })
}

/// A NUMERIC in PostgreSQL's binary form: an integer when it has no
/// fraction and fits, else a float (sums and averages).
fn numeric(raw: &[u8]) -> Option<ValueRef<'static>> {
    let word =
        |i: usize| -> Option<i16> { Some(i16::from_be_bytes([*raw.get(i)?, *raw.get(i + 1)?])) };
    let ndigits = usize::try_from(word(0)?).ok()?;
    let weight = i32::from(word(2)?);
    let sign = word(4)? as u16;
    if sign == 0xC000 {
        return Some(ValueRef::Real(f64::NAN));
    }
    let mut value = 0f64;
    let mut integral = true;
    for d in 0..ndigits {
        let digit = f64::from(word(8 + 2 * d)?);
        let power = weight - i32::try_from(d).ok()?;
        if power < 0 && digit != 0.0 {
            integral = false;
        }
        value += digit * 10_000f64.powi(power);
    }
    if sign == 0x4000 {
        value = -value;
    }
    if integral && value.abs() < 9.0e15 {
        Some(ValueRef::Integer(value as i64))
    } else {
        Some(ValueRef::Real(value))
    }
}

/// A parameter bound as the type PostgreSQL inferred for it.
#[derive(Debug)]
struct PgParam<'a>(&'a ToSqlOutput<'a>);

impl PgParam<'_> {
    fn value(&self) -> ValueRef<'_> {
        match self.0 {
            ToSqlOutput::Borrowed(v) => *v,
            ToSqlOutput::Owned(v) => ValueRef::from(v),
            _ => ValueRef::Null,
        }
    }
}

impl postgres::types::ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let zeros;
        let value = match self.0 {
            ToSqlOutput::ZeroBlob(n) => {
                zeros = vec![0u8; usize::try_from(*n).unwrap_or(0)];
                ValueRef::Blob(&zeros)
            }
            _ => self.value(),
        };
        let wrong = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("cannot bind {:?} as {ty}", value.data_type()).into()
        };
        match (value, ty) {
            (ValueRef::Null, _) => return Ok(IsNull::Yes),
            (ValueRef::Integer(i), &Type::INT8) => out.put_i64(i),
            (ValueRef::Integer(i), &Type::INT4) => out.put_i32(i32::try_from(i)?),
            (ValueRef::Integer(i), &Type::INT2) => out.put_i16(i16::try_from(i)?),
            (ValueRef::Integer(i), &Type::BOOL) => out.put_u8(u8::from(i != 0)),
            (ValueRef::Integer(i), &Type::FLOAT8) => out.put_f64(i as f64),
            (ValueRef::Real(f), &Type::FLOAT8) => out.put_f64(f),
            (ValueRef::Real(f), &Type::FLOAT4) => out.put_f32(f as f32),
            (ValueRef::Integer(i), &Type::NUMERIC) => numeric_out(out, i),
            (ValueRef::Integer(i), _) if is_text(ty) => out.put_slice(i.to_string().as_bytes()),
            (ValueRef::Real(f), _) if is_text(ty) => out.put_slice(f.to_string().as_bytes()),
            (ValueRef::Text(t) | ValueRef::Blob(t), &Type::BYTEA) => out.put_slice(t),
            (ValueRef::Text(t), &Type::JSONB) => {
                out.put_u8(1);
                out.put_slice(t);
            }
            // PostgreSQL's text cannot hold NUL: such a character (the raw
            // message keeps it) is stored as U+FFFD.
            (ValueRef::Text(t), _) if is_text(ty) && t.contains(&0) => {
                for part in t.split(|b| *b == 0).enumerate() {
                    if part.0 > 0 {
                        out.put_slice("\u{FFFD}".as_bytes());
                    }
                    out.put_slice(part.1);
                }
            }
            (ValueRef::Text(t), _) if is_text(ty) => out.put_slice(t),
            (ValueRef::Text(t), &Type::INT8) => {
                out.put_i64(std::str::from_utf8(t)?.trim().parse()?);
            }
            _ => return Err(wrong()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON
    )
}

/// An integer as a NUMERIC in binary form.
fn numeric_out(out: &mut bytes::BytesMut, i: i64) {
    let mut digits = Vec::new();
    let mut n = i.unsigned_abs();
    while n > 0 {
        digits.push((n % 10_000) as i16);
        n /= 10_000;
    }
    digits.reverse();
    let weight = i16::try_from(digits.len()).unwrap_or(1) - 1;
    out.put_i16(i16::try_from(digits.len()).unwrap_or(0));
    out.put_i16(weight.max(0));
    out.put_u16(if i < 0 { 0x4000 } else { 0 });
    out.put_i16(0);
    for d in digits {
        out.put_i16(d);
    }
}

/// A statement in SQLite's dialect, spelled for PostgreSQL: `?N` and `?`
/// become `$N`, `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`,
/// `group_concat` becomes `string_agg`. Text inside quotes is left alone.
pub fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let mut highest = 0u32;
    let mut chars = sql.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((_, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut n = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_digit() {
                        n.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                // A bare `?` is one more than the highest number so far.
                if n.is_empty() {
                    n = (highest + 1).to_string();
                }
                highest = highest.max(n.parse().unwrap_or(0));
                out.push('$');
                out.push_str(&n);
            }
            _ => out.push(c),
        }
    }
    let upper = out.to_ascii_uppercase();
    if let Some(at) = upper.find("INSERT OR IGNORE INTO") {
        out.replace_range(at..at + "INSERT OR IGNORE INTO".len(), "INSERT INTO");
        let upper = out.to_ascii_uppercase();
        let end = out.trim_end().trim_end_matches(';').len();
        let at = upper.find("RETURNING").unwrap_or(end);
        out.insert_str(at, " ON CONFLICT DO NOTHING ");
    }
    replace_word(&mut out, "group_concat(", "string_agg(");
    out
}

fn replace_word(s: &mut String, from: &str, to: &str) {
    loop {
        let lower = s.to_ascii_lowercase();
        let Some(at) = lower.find(from) else { return };
        s.replace_range(at..at + from.len(), to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_conflicts_and_aggregates_are_spelled_for_postgres() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $2"
        );
        assert_eq!(
            translate("INSERT OR IGNORE INTO t (a) VALUES (?1)"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING "
        );
        assert_eq!(
            translate("INSERT OR IGNORE INTO t (a) VALUES (?1) RETURNING id"),
            "INSERT INTO t (a) VALUES ($1)  ON CONFLICT DO NOTHING RETURNING id"
        );
        assert_eq!(
            translate("SELECT group_concat(a, ' ') FROM t"),
            "SELECT string_agg(a, ' ') FROM t"
        );
    }

    #[test]
    fn numerics_read_as_sqlite_would() {
        // 12345678 = digits [1234, 5678], weight 1.
        let raw = [0, 2, 0, 1, 0, 0, 0, 0, 0x04, 0xD2, 0x16, 0x2E];
        assert_eq!(numeric(&raw), Some(ValueRef::Integer(12_345_678)));
        // -1.5 = digits [1, 5000], weight 0, negative.
        let raw = [0, 2, 0, 0, 0x40, 0, 0, 1, 0, 1, 0x13, 0x88];
        assert_eq!(numeric(&raw), Some(ValueRef::Real(-1.5)));
        let mut out = bytes::BytesMut::new();
        numeric_out(&mut out, 12_345_678);
        assert_eq!(&out[..], &[0, 2, 0, 1, 0, 0, 0, 0, 0x04, 0xD2, 0x16, 0x2E]);
    }
}
