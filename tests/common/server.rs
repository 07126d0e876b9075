//! The per-test world and the server under test: [`Options`] and
//! [`rules_toml`] for the config the harness writes, [`Env`] (a temp dir
//! with its own config and data directory) and [`TestServer`], a real
//! `postdesk serve` on loopback port 0.
//!
//! The server's real ports come from `<data>/ports.json`, which the binary
//! writes (temp file + rename) once its listeners are bound. Its stderr is
//! kept in a log file per start: tests read it back for failure messages
//! and wait on the lines it logs (see [`TestServer::wait_log`]).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::mail::Mail;
use super::smtp::{Outcome, smtp_send};
use super::wait::{DEADLINE, eventually, wait_with_deadline};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_postdesk");

/// The repository root (where the shipped `rules.toml` lives).
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The tracing target of the server's ticks, which the harness turns on
/// (at debug) for every server it starts: one line per completed pass.
pub const TICK_TARGET: &str = "postdesk::tick";

/// The tick the scheduler logs after each completed pass (its digests
/// committed).
pub const SCHEDULER_PASS: &str = "scheduler pass done";

/// The tick a poller logs each time it has caught up with its folder
/// (everything fetched so far committed).
pub const POLL_PASS: &str = "mailbox caught up";

/// The warning a poller logs after each failed attempt (connect, login,
/// select, fetch), before it backs off.
pub const POLL_FAILED: &str = "poll failed";

/// How long the server may take to bind and write `ports.json`.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// Knobs a test may turn in the `rules.toml` the harness writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// `[limits] max_message_size` (bytes); `None` keeps the default (25 MiB).
    pub max_message_size: Option<usize>,
    /// `[limits] max_errors`; `None` keeps the default.
    pub max_errors: Option<u32>,
    /// Whether to start an LMTP listener as well.
    pub lmtp: bool,
    /// Extra TOML appended verbatim to `rules.toml` (new tables only).
    pub extra_toml: String,
    /// Extra lines of the `[http]` table (its `listen` is loopback port 0).
    pub http_toml: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_message_size: None,
            max_errors: None,
            lmtp: true,
            extra_toml: String::new(),
            http_toml: String::new(),
        }
    }
}

/// The `rules.toml` the harness writes: example.com served, support@, sales@
/// and info@ addresses, listeners on loopback port 0.
pub fn rules_toml(opts: &Options) -> String {
    let mut s = String::new();
    s.push_str("# Written by tests/common for one test: loopback only, port 0.\n");
    s.push_str("[server]\n");
    s.push_str("smtp = \"127.0.0.1:0\"\n");
    if opts.lmtp {
        s.push_str("lmtp = \"127.0.0.1:0\"\n");
    }
    s.push_str("hostname = \"postdesk.test\"\n");
    s.push_str("\n[domains]\n");
    s.push_str("served = [\"example.com\"]\n");
    s.push_str("internal = [\"staff.example.net\"]\n");
    s.push_str("\n[addresses]\n");
    s.push_str("support = [\"support@example.com\"]\n");
    s.push_str("sales = [\"sales@example.com\"]\n");
    s.push_str("info = [\"info@example.com\"]\n");
    s.push_str("\n[limits]\n");
    if let Some(n) = opts.max_message_size {
        s.push_str(&format!("max_message_size = {n}\n"));
    }
    if let Some(n) = opts.max_errors {
        s.push_str(&format!("max_errors = {n}\n"));
    }
    s.push_str("idle_timeout_secs = 60\n");
    s.push_str("\n[http]\n");
    s.push_str("listen = \"127.0.0.1:0\"\n");
    s.push_str(&opts.http_toml);
    s.push('\n');
    if !opts.extra_toml.is_empty() {
        s.push('\n');
        s.push_str(&opts.extra_toml);
        s.push('\n');
    }
    s
}

/// One test's world: a temp dir holding `config/rules.toml` and `data/`.
/// Runs CLI commands against it with `--config` and `--data`.
pub struct Env {
    /// Owns the temp dir; removed on drop.
    pub dir: tempfile::TempDir,
    /// Holds `rules.toml` (and `mailboxes/` if a test adds it).
    pub config_dir: PathBuf,
    /// The data directory given with `--data`.
    pub data_dir: PathBuf,
    /// Extra environment variables for `postdesk serve` in this env (see
    /// [`TestServer::start_in`]).
    pub server_vars: Vec<(String, String)>,
    /// The PostgreSQL database of this env, when the store is there.
    pub pg_database: Option<String>,
}

impl Env {
    /// A fresh temp dir with a `rules.toml` written from `opts`.
    pub fn new(opts: &Options) -> Env {
        Env::make(opts, super::pg::enabled())
    }

    /// [`Env::new`] with the store on SQLite whatever the run's backend.
    pub fn new_sqlite(opts: &Options) -> Env {
        Env::make(opts, false)
    }

    /// [`Env::new`] with the store on PostgreSQL whatever the run's
    /// backend (the tests of several nodes).
    pub fn new_postgres(opts: &Options) -> Env {
        Env::make(opts, true)
    }

    /// Another node of this env's PostgreSQL store, named `name`: a
    /// config directory of its own holding a copy of this one's files
    /// (rules, secrets, mailboxes) with `node = "<name>"`, and a data
    /// directory of its own.
    pub fn node(&self, name: &str) -> Env {
        let db = self
            .pg_database
            .clone()
            .expect("several nodes need the store on PostgreSQL");
        let dir = tempfile::Builder::new()
            .prefix("postdesk-node-")
            .tempdir()
            .expect("create temp dir");
        let config_dir = dir.path().join("config");
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&data_dir).expect("create data dir");
        copy_tree(&self.config_dir, &config_dir);
        let rules = fs::read_to_string(config_dir.join("rules.toml")).expect("rules.toml");
        let rules = rules.replace("[store]\n", &format!("[store]\nnode = \"{name}\"\n"));
        fs::write(config_dir.join("rules.toml"), rules).expect("write rules.toml");
        Env {
            dir,
            config_dir,
            data_dir,
            server_vars: Vec::new(),
            pg_database: Some(db),
        }
    }

    fn make(opts: &Options, postgres: bool) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("postdesk-test-")
            .tempdir()
            .expect("create temp dir");
        let config_dir = dir.path().join("config");
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&config_dir).expect("create config dir");
        fs::create_dir_all(&data_dir).expect("create data dir");
        let mut rules = rules_toml(opts);
        let mut pg_database = None;
        if postgres {
            // The same test on PostgreSQL: a database of its own.
            let cluster = super::pg::cluster();
            let database = cluster.new_database();
            let password = config_dir.join("store-password");
            write_private(&password, cluster.password.as_bytes());
            rules.push('\n');
            rules.push_str(&cluster.store_toml(&database, &password));
            pg_database = Some(database);
        }
        fs::write(config_dir.join("rules.toml"), rules).expect("write rules.toml");
        Env {
            dir,
            config_dir,
            data_dir,
            server_vars: Vec::new(),
            pg_database,
        }
    }

    /// A read-only connection to the data directory's database, for what
    /// no CLI command prints (UID state, detector scans). Waits up to 10 s
    /// on the server's write lock.
    pub fn db(&self) -> rusqlite::Connection {
        let path = self.data_dir.join("postdesk.sqlite3");
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn
    }

    /// The detector's record of the stored message with this Message-ID
    /// (given without angle brackets): the rules version it was last
    /// scanned under and whether that scan flagged it; `None` when the
    /// detector never scanned it. The pipeline writes it in the message's
    /// own transaction, zero hits included.
    pub fn detector_scan(&self, message_id: &str) -> Option<(String, bool)> {
        const Q: &str = "SELECT s.version, s.flagged FROM detector_scans s
            JOIN messages m ON m.id = s.message_row_id WHERE m.message_id = ?1";
        if let Some(db) = &self.pg_database {
            const PG: &str = "SELECT s.version, s.flagged FROM detector_scans s
                JOIN messages m ON m.id = s.message_row_id WHERE m.message_id = $1";
            let rows: Vec<(String, bool)> = super::pg::cluster()
                .connect(db)
                .query(PG, &[&message_id])
                .unwrap_or_else(|e| panic!("{PG}: {e:?}"))
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) != 0))
                .collect();
            assert!(rows.len() <= 1, "{message_id} stored twice: {rows:?}");
            return rows.into_iter().next();
        }
        let rows: Vec<(String, bool)> = self
            .db()
            .prepare(Q)
            .and_then(|mut st| {
                st.query_map([message_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0))
                })?
                .collect()
            })
            .unwrap_or_else(|e| panic!("{Q}: {e}"));
        assert!(rows.len() <= 1, "{message_id} stored twice: {rows:?}");
        rows.into_iter().next()
    }

    /// Write a file under the config dir (e.g. `mailboxes/acme.toml`).
    pub fn write_config(&self, rel: &str, contents: &str) {
        let path = self.config_dir.join(rel);
        // A rules.toml rewritten by a test keeps this env's store.
        if rel == "rules.toml"
            && let Some(db) = &self.pg_database
        {
            let store =
                super::pg::cluster().store_toml(db, &self.config_dir.join("store-password"));
            fs::write(path, format!("{contents}\n{store}")).expect("write config file");
            return;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create config subdir");
        }
        fs::write(path, contents).expect("write config file");
    }

    /// Write a secret under the config dir (a password, the token secret,
    /// a key) readable by its owner only, as postdesk requires.
    pub fn write_secret(&self, rel: &str, contents: &str) {
        let path = self.config_dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create config subdir");
        }
        write_private(&path, contents.as_bytes());
    }
}

/// Copy directory `from` to `to` (created), files with their modes.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Write `contents` to `path` with mode 0600 (postdesk refuses a secret
/// file that other users can read).
pub fn write_private(path: &Path, contents: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod 600 {}: {e}", path.display()));
}

/// A running `postdesk serve` on loopback port 0 in its own [`Env`].
/// Killed (SIGKILL) on drop; its stderr is kept in a log file per start and
/// printed when a test fails.
pub struct TestServer {
    /// The test's temp dir, config and data.
    pub env: Env,
    child: Option<Child>,
    /// The bound SMTP address, read from `ports.json`.
    pub smtp: SocketAddr,
    /// The bound LMTP address, if an LMTP listener was configured.
    pub lmtp: Option<SocketAddr>,
    /// The bound HTTP address, if the web door is on.
    pub http: Option<SocketAddr>,
    starts: u32,
}

impl TestServer {
    /// Start a server with the default [`Options`].
    pub fn start() -> TestServer {
        TestServer::start_with(Options::default())
    }

    /// Start a server with `opts`.
    pub fn start_with(opts: Options) -> TestServer {
        TestServer::start_in(Env::new(&opts), Vec::new())
    }

    /// Start a server in a prepared `env` (config files already written)
    /// with extra environment variables (e.g. `POSTDESK_CLOCK_FILE`).
    pub fn start_in(mut env: Env, vars: Vec<(String, String)>) -> TestServer {
        env.server_vars = vars;
        let mut server = TestServer {
            env,
            child: None,
            smtp: "127.0.0.1:9".parse().expect("placeholder addr"),
            lmtp: None,
            http: None,
            starts: 0,
        };
        server.spawn();
        server
    }

    fn ports_file(&self) -> PathBuf {
        self.env.data_dir.join("ports.json")
    }

    fn log_path(&self, n: u32) -> PathBuf {
        self.env.dir.path().join(format!("server-{n}.log"))
    }

    /// Start `postdesk serve` and wait until `ports.json` names its ports.
    fn spawn(&mut self) {
        // A stale ports.json from an earlier run would name dead ports.
        let _ = fs::remove_file(self.ports_file());
        self.starts += 1;
        let log = fs::File::create(self.log_path(self.starts)).expect("create server log");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&self.env.config_dir)
            .arg("--data")
            .arg(&self.env.data_dir)
            .env(
                "RUST_LOG",
                format!(
                    "{},{TICK_TARGET}=debug",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())
                ),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .envs(self.env.server_vars.iter().map(|(k, v)| (k, v)))
            .spawn()
            .expect("spawn postdesk serve");
        self.child = Some(child);
        let ports = self.ports_file();
        let (smtp, lmtp, http) = eventually(START_DEADLINE, || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "postdesk serve exited with {status} before writing ports.json\n{}",
                    self.stderr()
                );
            }
            let text =
                fs::read_to_string(&ports).map_err(|e| format!("{}: {e}", ports.display()))?;
            parse_ports(&text)
        });
        self.smtp = smtp;
        self.lmtp = lmtp;
        self.http = http;
    }

    /// The LMTP address; panics if the server has none.
    pub fn lmtp(&self) -> SocketAddr {
        self.lmtp.expect("ports.json names no lmtp listener")
    }

    /// The server's stderr, every start so far, for failure messages.
    pub fn stderr(&self) -> String {
        let mut all = String::new();
        for n in 1..=self.starts {
            let text = fs::read_to_string(self.log_path(n)).unwrap_or_default();
            all.push_str(&format!("----- server stderr (start {n}) -----\n{text}"));
        }
        all
    }

    /// How many lines of the current start's log contain `needle`.
    pub fn log_lines(&self, needle: &str) -> usize {
        fs::read_to_string(self.log_path(self.starts))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Wait until the current start's log holds `more` lines containing
    /// `needle` beyond those it holds now, e.g. two more completed
    /// [`SCHEDULER_PASS`]es before asserting that a pass sent nothing.
    /// Panics after `deadline`; dropping the server then prints its log.
    pub fn wait_log_lines(&self, needle: &str, more: usize, deadline: Duration) {
        let want = self.log_lines(needle) + more;
        eventually(deadline, || {
            let have = self.log_lines(needle);
            if have >= want {
                Ok(())
            } else {
                // The log itself is printed when the panic drops the server.
                Err(format!("{have} of {want} lines with {needle:?}"))
            }
        });
    }

    /// SIGKILL the server and reap it. Nothing gets a chance to flush.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill is SIGKILL on unix.
            child.kill().expect("SIGKILL postdesk");
            let _ = child.wait();
        }
    }

    /// The server's process id (for reading `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Send `signal` (e.g. `libc::SIGTERM`) to the server.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("server is running");
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Wait for the server to exit on its own within `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        wait_with_deadline(&mut child, deadline, "postdesk serve")
    }

    /// Start the server again on the same config and data dir (after
    /// [`kill9`](Self::kill9) or an exit); the ports change.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `postdesk tickets --json` on this server's data dir.
    pub fn tickets_json(&self) -> Vec<Value> {
        self.env.tickets_json()
    }

    /// `postdesk show ID_OR_NUMBER --json`.
    pub fn show_json(&self, id_or_number: &str) -> Value {
        self.env.show_json(id_or_number)
    }

    /// `postdesk messages --json`.
    pub fn messages_json(&self) -> Vec<Value> {
        self.env.messages_json()
    }

    /// Send `mails` over SMTP with smtplib (one connection, reconnecting
    /// after an error).
    pub fn send(&self, mails: &[Mail]) -> Vec<Outcome> {
        smtp_send(self.smtp, false, mails)
    }

    /// Send one mail over SMTP and return its outcome.
    pub fn send_one(&self, mail: &Mail) -> Outcome {
        self.send(std::slice::from_ref(mail)).remove(0)
    }

    /// Send `mails` over LMTP with smtplib.
    pub fn send_lmtp(&self, mails: &[Mail]) -> Vec<Outcome> {
        smtp_send(self.lmtp(), true, mails)
    }

    /// Send mails that must all be accepted (250); panics with the server's
    /// stderr otherwise.
    pub fn deliver(&self, mails: &[Mail]) {
        for (i, outcome) in self.send(mails).iter().enumerate() {
            assert_eq!(
                outcome.code,
                Some(250),
                "message {i} was not accepted: {outcome:?}\n{}",
                self.stderr()
            );
        }
    }

    /// Poll `tickets --json` until it lists `n` tickets; return them.
    pub fn wait_tickets(&self, n: usize) -> Vec<Value> {
        eventually(DEADLINE, || {
            let t = self.tickets_json();
            if t.len() == n {
                Ok(t)
            } else {
                Err(format!("expected {n} tickets, have {}: {t:?}", t.len()))
            }
        })
    }

    /// Poll `messages --json` until it lists `n` messages; return them.
    pub fn wait_messages(&self, n: usize) -> Vec<Value> {
        eventually(DEADLINE, || {
            let m = self.messages_json();
            if m.len() == n {
                Ok(m)
            } else {
                Err(format!("expected {n} messages, have {}: {m:?}", m.len()))
            }
        })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("{}", self.stderr());
        }
    }
}

/// Parse `{"smtp":"127.0.0.1:PORT","lmtp":"127.0.0.1:PORT"|null,"http":...}`.
type Ports = (SocketAddr, Option<SocketAddr>, Option<SocketAddr>);

fn parse_ports(text: &str) -> Result<Ports, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("ports.json: {e}: {text}"))?;
    let addr = |key: &str| -> Result<Option<SocketAddr>, String> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|e| format!("ports.json {key}={s}: {e}")),
            Some(other) => Err(format!("ports.json {key} is not a string: {other}")),
        }
    };
    let smtp = addr("smtp")?.ok_or_else(|| format!("ports.json has no smtp: {text}"))?;
    Ok((smtp, addr("lmtp")?, addr("http")?))
}
