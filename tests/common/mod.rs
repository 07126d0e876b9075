//! Test harness shared by the integration tests: temp dirs, a real
//! `postdesk serve` on loopback port 0, real SMTP/LMTP peers and polling.
//!
//! Every test gets its own [`Env`] (a temp dir with its own `rules.toml` and
//! data directory) and, when it needs the server, its own [`TestServer`] on
//! port 0, so the tests of one file run in parallel without sharing a port or
//! a database. The server's real ports come from `<data>/ports.json`, which
//! the binary writes (temp file + rename) once its listeners are bound.
//!
//! Peers are real: Python's `smtplib` (`tests/common/smtp_send.py`) for
//! well-formed SMTP and LMTP, and [`RawSmtp`] over a `std::net::TcpStream`
//! for protocol abuse that a polite client library refuses to send.
//!
//! Nothing here sleeps to wait for something to happen: [`eventually`] polls
//! a check until it passes or its deadline runs out.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod sink;

pub mod dovecot;
pub mod postfix_sink;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_postdesk");

/// The repository root (where the shipped `rules.toml` lives).
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// How long a CLI command (`tickets`, `show`, `ingest`, ...) may take.
pub const CLI_DEADLINE: Duration = Duration::from_secs(60);

/// How long the server may take to bind and write `ports.json`.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// The default deadline for [`eventually`] checks in tests.
pub const DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

/// Poll `check` until it returns `Ok`, and return its value; panic with the
/// last `Err` once `deadline` has passed. The pause between polls is short
/// and only paces the loop: the outcome is decided by `check`, never by the
/// length of a sleep.
pub fn eventually<T>(deadline: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) => {
                if start.elapsed() >= deadline {
                    panic!("still not true after {deadline:?}: {why}");
                }
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Wait for `child` to exit within `deadline`; kill it and panic otherwise.
fn wait_with_deadline(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if start.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {deadline:?}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration and the per-test environment
// ---------------------------------------------------------------------------

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_message_size: None,
            max_errors: None,
            lmtp: true,
            extra_toml: String::new(),
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
}

impl Env {
    /// A fresh temp dir with a `rules.toml` written from `opts`.
    pub fn new(opts: &Options) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("postdesk-test-")
            .tempdir()
            .expect("create temp dir");
        let config_dir = dir.path().join("config");
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&config_dir).expect("create config dir");
        fs::create_dir_all(&data_dir).expect("create data dir");
        fs::write(config_dir.join("rules.toml"), rules_toml(opts)).expect("write rules.toml");
        Env {
            dir,
            config_dir,
            data_dir,
            server_vars: Vec::new(),
        }
    }

    /// `postdesk ARGS --config DIR --data DIR`, stdin closed, output piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--config")
            .arg(&self.config_dir)
            .arg("--data")
            .arg(&self.data_dir)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Run a CLI command to completion (with a deadline) and return its output.
    pub fn run(&self, args: &[&str]) -> Output {
        run_command(
            self.command(args),
            None,
            &format!("postdesk {}", args.join(" ")),
        )
    }

    /// Run a CLI command with `stdin` piped in.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        run_command(cmd, Some(stdin), &format!("postdesk {}", args.join(" ")))
    }

    /// Run a CLI command that must exit 0; return its stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "postdesk {} failed with {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("stdout is UTF-8")
    }

    /// Run a `--json` command and parse its stdout.
    pub fn run_json(&self, args: &[&str]) -> Value {
        let stdout = self.run_ok(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "postdesk {} printed invalid JSON ({e}):\n{stdout}",
                args.join(" ")
            )
        })
    }

    /// `postdesk tickets --json`.
    pub fn tickets_json(&self) -> Vec<Value> {
        as_array(self.run_json(&["tickets", "--json"]), "tickets --json")
    }

    /// `postdesk show ID_OR_NUMBER --json`.
    pub fn show_json(&self, id_or_number: &str) -> Value {
        let v = self.run_json(&["show", id_or_number, "--json"]);
        assert!(v.is_object(), "show --json did not print an object: {v}");
        v
    }

    /// `postdesk messages --json`.
    pub fn messages_json(&self) -> Vec<Value> {
        as_array(self.run_json(&["messages", "--json"]), "messages --json")
    }

    /// Write a file under the config dir (e.g. `mailboxes/acme.toml`).
    pub fn write_config(&self, rel: &str, contents: &str) {
        let path = self.config_dir.join(rel);
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

/// Write `contents` to `path` with mode 0600 (postdesk refuses a secret
/// file that other users can read).
pub fn write_private(path: &Path, contents: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod 600 {}: {e}", path.display()));
}

fn as_array(v: Value, what: &str) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("{what} did not print a JSON array: {other}"),
    }
}

/// Run `cmd` with an optional stdin, collecting output, under [`CLI_DEADLINE`].
/// stdout and stderr are drained on threads so a chatty child cannot block.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, what: &str) -> Output {
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let input = input.to_vec();
        // A writer thread: the child may print before it has read all input.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let out_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let status = wait_with_deadline(&mut child, CLI_DEADLINE, what);
    Output {
        status,
        stdout: out_t.join().expect("stdout reader"),
        stderr: err_t.join().expect("stderr reader"),
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

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
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .envs(self.env.server_vars.iter().map(|(k, v)| (k, v)))
            .spawn()
            .expect("spawn postdesk serve");
        self.child = Some(child);
        let ports = self.ports_file();
        let (smtp, lmtp) = eventually(START_DEADLINE, || {
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

/// Parse `{"smtp":"127.0.0.1:PORT","lmtp":"127.0.0.1:PORT"|null}`.
fn parse_ports(text: &str) -> Result<(SocketAddr, Option<SocketAddr>), String> {
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
    Ok((smtp, addr("lmtp")?))
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// One message to send: envelope and raw bytes (CRLF line ends).
#[derive(Debug, Clone)]
pub struct Mail {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`, in order.
    pub to: Vec<String>,
    /// The message as it goes over the wire, before dot-stuffing.
    pub raw: Vec<u8>,
    /// ESMTP parameters for `MAIL FROM` (e.g. `SIZE=123`).
    pub mail_options: Vec<String>,
}

impl Mail {
    /// A message from `from` to `to` with these raw bytes.
    pub fn new(from: &str, to: &[&str], raw: Vec<u8>) -> Mail {
        Mail {
            from: from.to_owned(),
            to: to.iter().map(|s| (*s).to_owned()).collect(),
            raw,
            mail_options: Vec::new(),
        }
    }

    /// A plain-text message to support@example.com; see [`text_mail`].
    pub fn text(from: &str, subject: &str, message_id: &str, body: &str) -> Mail {
        Mail::new(
            from,
            &["support@example.com"],
            text_mail(from, "support@example.com", subject, message_id, &[], body),
        )
    }
}

/// A plain-text RFC 5322 message with CRLF line ends. `message_id` is given
/// without angle brackets; `extra` headers go before `MIME-Version`.
pub fn text_mail(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let mut head = String::new();
    head.push_str(&format!("From: {from}\r\n"));
    head.push_str(&format!("To: {to}\r\n"));
    head.push_str(&format!("Subject: {subject}\r\n"));
    head.push_str("Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n");
    head.push_str(&format!("Message-ID: <{message_id}>\r\n"));
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("MIME-Version: 1.0\r\n");
    head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    head.push_str("Content-Transfer-Encoding: 8bit\r\n");
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&crlf(body.as_bytes()));
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Convert bare LF line ends to CRLF (CRLF stays CRLF).
pub fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// The path of a file under `tests/fixtures/`.
pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(REPO).join("tests/fixtures").join(rel)
}

/// A fixture's bytes as stored (LF line ends), for `ingest`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = fixture_path(rel);
    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A fixture message with CRLF line ends, for SMTP.
pub fn fixture_crlf(rel: &str) -> Vec<u8> {
    crlf(&fixture(rel))
}

/// Strip surrounding angle brackets and whitespace from a Message-ID.
pub fn bare_id(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// A JSON field as a string, or a panic naming the field and the object.
pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("field {key:?} missing or not a string in {v}"))
}

/// A JSON field as an integer, or a panic naming the field and the object.
pub fn int_field(v: &Value, key: &str) -> i64 {
    v.get(key)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("field {key:?} missing or not an integer in {v}"))
}

/// The stored message (from `messages --json` or `show`'s `messages`) with
/// this Message-ID, if any.
pub fn find_message<'a>(messages: &'a [Value], message_id: &str) -> Option<&'a Value> {
    messages.iter().find(|m| {
        m.get("message_id").and_then(Value::as_str).map(bare_id) == Some(bare_id(message_id))
    })
}

// ---------------------------------------------------------------------------
// smtplib peer
// ---------------------------------------------------------------------------

/// A reply line pair as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text, lines joined with `\n`.
    pub text: String,
}

/// What happened to one message sent by `smtp_send.py`.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Index in the list sent.
    pub index: usize,
    /// The deciding code: the end-of-data reply (the first one for LMTP), or
    /// the MAIL/RCPT/DATA reply that stopped the transaction. `None` when the
    /// connection failed before any reply for this message.
    pub code: Option<u16>,
    /// The text of that reply.
    pub text: String,
    /// The MAIL FROM reply.
    pub mail: Option<Reply>,
    /// One reply per RCPT TO.
    pub rcpt: Vec<Reply>,
    /// End-of-data replies: one for SMTP, one per accepted recipient for LMTP.
    pub data: Vec<Reply>,
    /// The exception, if the client raised one (disconnect, refused, ...).
    pub error: Option<String>,
}

impl Outcome {
    /// Whether the server acknowledged the message: the end-of-data reply
    /// (the first one, for LMTP) was 250.
    pub fn accepted(&self) -> bool {
        self.data.first().map(|r| r.code) == Some(250)
    }
}

fn reply_from(v: &Value) -> Option<Reply> {
    let code = v.get("code")?.as_u64()?;
    Some(Reply {
        code: u16::try_from(code).ok()?,
        text: v
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    })
}

fn outcome_from(v: &Value) -> Outcome {
    Outcome {
        index: usize::try_from(v["index"].as_u64().expect("index")).expect("index fits"),
        code: v
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok()),
        text: v
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        mail: v.get("mail").and_then(reply_from),
        rcpt: v
            .get("rcpt")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(reply_from).collect())
            .unwrap_or_default(),
        data: v
            .get("data")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(reply_from).collect())
            .unwrap_or_default(),
        error: v.get("error").and_then(Value::as_str).map(str::to_owned),
    }
}

fn smtp_job(addr: SocketAddr, lmtp: bool, mails: &[Mail]) -> Vec<u8> {
    let messages: Vec<Value> = mails
        .iter()
        .map(|m| {
            serde_json::json!({
                "from": m.from,
                "to": m.to,
                "raw_hex": hex::encode(&m.raw),
                "mail_options": m.mail_options,
            })
        })
        .collect();
    let job = serde_json::json!({
        "host": addr.ip().to_string(),
        "port": addr.port(),
        "lmtp": lmtp,
        "timeout": 30,
        "messages": messages,
    });
    serde_json::to_vec(&job).expect("serialize job")
}

/// The smtplib client script.
pub fn smtp_send_script() -> PathBuf {
    Path::new(REPO).join("tests/common/smtp_send.py")
}

/// Send `mails` with Python's smtplib (LMTP when `lmtp`), calling `on_result`
/// as each message's outcome arrives (the script prints one JSON line per
/// message as soon as it knows it). Returns every outcome, in order.
pub fn smtp_send_streaming(
    addr: SocketAddr,
    lmtp: bool,
    mails: &[Mail],
    mut on_result: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut child = Command::new("python3")
        .arg(smtp_send_script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3 smtp_send.py (is python3 installed?)");
    let job = smtp_job(addr, lmtp, mails);
    let mut stdin = child.stdin.take().expect("stdin piped");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&job);
        // Dropping stdin closes it: the script reads to EOF.
    });
    let mut err = child.stderr.take().expect("stderr piped");
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let stdout = child.stdout.take().expect("stdout piped");
    let mut outcomes = Vec::with_capacity(mails.len());
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read smtp_send.py output");
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("smtp_send.py printed invalid JSON ({e}): {line}"));
        let outcome = outcome_from(&v);
        on_result(&outcome);
        outcomes.push(outcome);
    }
    let _ = writer.join();
    let status = wait_with_deadline(&mut child, CLI_DEADLINE, "smtp_send.py");
    let stderr = err_t.join().unwrap_or_default();
    assert!(
        status.success() && outcomes.len() == mails.len(),
        "smtp_send.py exited {status} after {} of {} results\n{stderr}",
        outcomes.len(),
        mails.len()
    );
    outcomes
}

/// Send `mails` with Python's smtplib and return one outcome per message.
pub fn smtp_send(addr: SocketAddr, lmtp: bool, mails: &[Mail]) -> Vec<Outcome> {
    smtp_send_streaming(addr, lmtp, mails, |_| {})
}

// ---------------------------------------------------------------------------
// Raw socket peer
// ---------------------------------------------------------------------------

/// A reply read off a raw socket: the code and every line's text.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line after `NNN-`/`NNN `.
    pub lines: Vec<String>,
}

impl RawReply {
    /// The class digit (2, 3, 4, 5).
    pub fn class(&self) -> u16 {
        self.code / 100
    }
}

/// An SMTP session over a plain `TcpStream`, for sending what a polite
/// client never would: garbage, commands out of order, overlong lines, NUL.
pub struct RawSmtp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RawSmtp {
    /// Connect and read the greeting.
    pub fn connect(addr: SocketAddr) -> (RawSmtp, RawReply) {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(20)))
            .expect("set write timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let mut s = RawSmtp { stream, reader };
        let greeting = s.read_reply().expect("read greeting");
        (s, greeting)
    }

    /// Connect, check the 220 greeting and say EHLO.
    pub fn connect_ehlo(addr: SocketAddr) -> RawSmtp {
        let (mut s, greeting) = RawSmtp::connect(addr);
        assert_eq!(greeting.code, 220, "greeting: {greeting:?}");
        let ehlo = s.cmd("EHLO client.test");
        assert_eq!(ehlo.code, 250, "EHLO: {ehlo:?}");
        s
    }

    /// Write bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Read one (possibly multi-line) reply.
    pub fn read_reply(&mut self) -> std::io::Result<RawReply> {
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {lines:?}"),
                ));
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            if text.len() < 3 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("short reply line {text:?}"),
                ));
            }
            let code: u16 = text[..3].parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad reply line {text:?}"),
                )
            })?;
            let more = text.as_bytes().get(3) == Some(&b'-');
            lines.push(text.get(4..).unwrap_or("").to_owned());
            if !more {
                return Ok(RawReply { code, lines });
            }
        }
    }

    /// Send one command line (CRLF appended) and read the reply.
    pub fn cmd(&mut self, line: &str) -> RawReply {
        self.cmd_bytes(line.as_bytes())
    }

    /// Send one command line given as bytes (CRLF appended) and read the reply.
    pub fn cmd_bytes(&mut self, line: &[u8]) -> RawReply {
        let mut buf = line.to_vec();
        buf.extend_from_slice(b"\r\n");
        self.send(&buf).expect("write command");
        self.read_reply()
            .unwrap_or_else(|e| panic!("no reply to {:?}: {e}", String::from_utf8_lossy(line)))
    }

    /// A whole transaction: MAIL, RCPT, DATA, the dot-stuffed message and
    /// the final dot. Returns the first reply that was not a success, or
    /// the end-of-data reply.
    pub fn send_message(&mut self, from: &str, to: &str, raw: &[u8]) -> RawReply {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        if r.code != 250 {
            return r;
        }
        let r = self.cmd(&format!("RCPT TO:<{to}>"));
        if r.class() != 2 {
            let _ = self.cmd("RSET");
            return r;
        }
        let r = self.cmd("DATA");
        if r.code != 354 {
            return r;
        }
        let mut data = dot_stuff(raw);
        data.extend_from_slice(b".\r\n");
        self.send(&data).expect("write message data");
        self.read_reply().expect("reply to end of data")
    }

    /// Whether the server has closed the connection: EOF on read, or a
    /// reset (a close that races the peer's last segment ends in RST).
    pub fn is_closed(&mut self) -> bool {
        // Read until the server closes (EOF, or a reset when our last
        // command was still unread on its side: Linux may then report
        // reset or aborted). Bytes already in flight before the close are
        // skipped; only the read timeout (20 s) means "still open".
        let mut buf = [0u8; 512];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    );
                }
            }
        }
    }
}

/// Dot-stuff `raw` for DATA (RFC 5321 §4.5.2) and make sure it ends in CRLF.
pub fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    let mut at_line_start = true;
    for &b in raw {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift64*), so a failing input can be
/// reproduced from its seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.truncate(len);
    out
}
