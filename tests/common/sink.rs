//! Outbound peers: a real SMTP server receiving postdesk's mail
//! (`smtp_sink.py`, aiosmtpd), and servers started from a whole
//! `rules.toml` (two postdesks facing each other need different domains).
//!
//! The sink is a separate process on loopback port 0, controlled over its
//! stdin: it can refuse connections (`down`), answer 4xx (`tempfail`),
//! refuse a recipient with 5xx (`reject`), hold sessions at `MAIL FROM`
//! (`hold`, for the crash test) and hand every message on to another
//! server (`forward`). Every message it accepted is a file the test reads
//! back with [`Sink::messages`].

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

use super::{DEADLINE, Env, Options, REPO, TestServer, eventually};

/// The sink script.
pub fn sink_script() -> PathBuf {
    Path::new(REPO).join("tests/common/smtp_sink.py")
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM` (empty for `<>`).
    pub mail_from: String,
    /// `RCPT TO`s.
    pub rcpt_tos: Vec<String>,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// postdesk's own parse of them.
    pub parsed: postdesk::parse::ParsedMessage,
}

impl Received {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parsed.header(name)
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        self.parsed.subject.as_deref().unwrap_or("")
    }

    /// Whether it was sent to `address`.
    pub fn is_to(&self, address: &str) -> bool {
        self.rcpt_tos
            .iter()
            .any(|r| r.eq_ignore_ascii_case(address))
    }

    /// The Message-ID without brackets.
    pub fn message_id(&self) -> &str {
        self.parsed.message_id.as_deref().unwrap_or("")
    }
}

/// A running `smtp_sink.py`; killed on drop.
pub struct Sink {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    /// Start a sink on a free loopback port.
    pub fn start() -> Sink {
        let dir = tempfile::Builder::new()
            .prefix("postdesk-sink-")
            .tempdir()
            .expect("sink temp dir");
        let mut child = Command::new("python3")
            .arg(sink_script())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "spawn python3 smtp_sink.py (is aiosmtpd installed? contrib/test.sh installs it)",
            );
        let stdin = child.stdin.take().expect("stdin piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the sink's port");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("smtp_sink.py did not start ({e}): {line:?}"));
        let port = u16::try_from(v["port"].as_u64().expect("port")).expect("port fits");
        Sink {
            child,
            stdin,
            stdout,
            port,
            dir,
        }
    }

    /// Send one command and return its answer.
    pub fn cmd(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").expect("write to the sink");
        self.stdin.flush().expect("flush the sink's stdin");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read the sink's answer");
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("sink answered {line:?} ({e})"));
        assert_eq!(v["ok"], Value::Bool(true), "sink refused {cmd}: {v}");
        v
    }

    /// Accept everything again.
    pub fn accept(&mut self) {
        self.cmd(serde_json::json!({ "cmd": "accept" }));
    }

    /// Answer 451 at the end of data.
    pub fn tempfail(&mut self) {
        self.cmd(serde_json::json!({ "cmd": "tempfail" }));
    }

    /// Refuse `RCPT TO:<address>` with 550 5.1.1.
    pub fn reject(&mut self, address: &str) {
        self.cmd(serde_json::json!({ "cmd": "reject", "address": address }));
    }

    /// Stop listening: connections are refused.
    pub fn down(&mut self) {
        self.cmd(serde_json::json!({ "cmd": "down" }));
    }

    /// Listen again on the same port.
    pub fn up(&mut self) {
        self.cmd(serde_json::json!({ "cmd": "up" }));
    }

    /// Hold every new session at `MAIL FROM` until [`Sink::release`].
    pub fn hold(&mut self) {
        self.cmd(serde_json::json!({ "cmd": "hold" }));
    }

    /// Let held sessions go on.
    pub fn release(&mut self) {
        self.cmd(serde_json::json!({ "cmd": "release" }));
    }

    /// How many sessions wait at `MAIL FROM`.
    pub fn held(&mut self) -> u64 {
        self.cmd(serde_json::json!({ "cmd": "status" }))["held"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Hand every accepted message on to `127.0.0.1:port` (as a careless
    /// auto-responder would, when `naive`).
    pub fn forward(&mut self, port: u16, naive: bool) {
        self.cmd(serde_json::json!({ "cmd": "forward", "port": port, "naive": naive }));
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.dir.path())
            .expect("read the sink dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let v: Value = serde_json::from_slice(&fs::read(p).expect("read a sink file"))
                    .expect("a sink file is JSON");
                let raw = hex::decode(v["data_hex"].as_str().unwrap_or("")).expect("hex data");
                Received {
                    // aiosmtpd writes the null reverse-path as `<>`.
                    mail_from: v["mail_from"]
                        .as_str()
                        .unwrap_or("")
                        .trim_matches(|c| c == '<' || c == '>')
                        .to_owned(),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    parsed: postdesk::parse::parse(&raw),
                    raw,
                }
            })
            .collect()
    }

    /// The messages sent to `address`.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.is_to(address))
            .collect()
    }

    /// Wait until at least `n` messages to `address` pass `keep`; return
    /// those that do.
    pub fn wait_to_where(
        &self,
        address: &str,
        n: usize,
        keep: impl Fn(&Received) -> bool,
    ) -> Vec<Received> {
        eventually(DEADLINE, || {
            let got: Vec<Received> = self.to(address).into_iter().filter(&keep).collect();
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{} of {n} such messages to {address}", got.len()))
            }
        })
    }

    /// Wait until at least `n` messages went to `address`; return them all.
    pub fn wait_to(&self, address: &str, n: usize) -> Vec<Received> {
        eventually(DEADLINE, || {
            let got = self.to(address);
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!(
                    "{} of {n} messages to {address}; all: {:?}",
                    got.len(),
                    self.messages()
                        .iter()
                        .map(|m| (m.rcpt_tos.clone(), m.subject().to_owned()))
                        .collect::<Vec<_>>()
                ))
            }
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token secret the outbound tests sign reply addresses with.
pub const SECRET: &str = "outbound-test-secret-0123456789abcdef";

/// A whole `rules.toml` for a server of `domain` (support@, sales@, info@
/// there) sending through the sink on `sink_port`, with fast retries, plus
/// `extra` tables appended; the web door on loopback port 0 unless `extra`
/// has an `[http]` table of its own.
pub fn outbound_rules(domain: &str, sink_port: u16, extra: &str) -> String {
    let http = if extra.contains("[http]") {
        ""
    } else {
        "[http]\nlisten = \"127.0.0.1:0\"\n"
    };
    format!(
        "[server]\nsmtp = \"127.0.0.1:0\"\nhostname = \"desk.{domain}\"\n\
         \n[domains]\nserved = [\"{domain}\"]\ninternal = [\"staff.{domain}\"]\n\
         \n[addresses]\nsupport = [\"support@{domain}\"]\nsales = [\"sales@{domain}\"]\n\
         info = [\"info@{domain}\"]\n\
         \n[limits]\nidle_timeout_secs = 60\n\
         \n[threading]\ntoken_secret_file = \"token_secret\"\n\
         \n[outbound]\nhost = \"127.0.0.1\"\nport = {sink_port}\ntls = \"none\"\n\
         timeout_secs = 10\nretry_initial_secs = 0.05\nretry_max_secs = 0.2\n\
         poll_secs = 0.2\n\
         \n{http}\n{extra}\n"
    )
}

impl TestServer {
    /// Start a server whose config directory holds exactly `rules` as
    /// `rules.toml` (and the [`SECRET`] as `token_secret`).
    pub fn start_with_rules(rules: &str) -> TestServer {
        let env = Env::new(&Options::default());
        env.write_config("rules.toml", rules);
        env.write_secret("token_secret", SECRET);
        TestServer::start_in(env, Vec::new())
    }

    /// `postdesk outbox --json`.
    pub fn outbox_json(&self) -> Vec<Value> {
        match self.env.run_json(&["outbox", "--json"]) {
            Value::Array(rows) => rows,
            other => panic!("outbox --json did not print an array: {other}"),
        }
    }
}

/// A DSN for `original` saying `rcpt` failed for good.
pub fn dsn(to: &str, rcpt: &str, original: &str, id: &str) -> Vec<u8> {
    super::crlf(
        format!(
            "From: MAILER-DAEMON@mx.test (Mail Delivery System)\n\
             To: {to}\n\
             Subject: Undelivered Mail Returned to Sender\n\
             Auto-Submitted: auto-replied\n\
             Message-ID: <{id}>\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\n\
             \n\
             --B1\n\
             Content-Type: text/plain\n\
             \n\
             Your message could not be delivered.\n\
             \n\
             --B1\n\
             Content-Type: message/delivery-status\n\
             \n\
             Reporting-MTA: dns; mx.test\n\
             \n\
             Final-Recipient: rfc822; {rcpt}\n\
             Action: failed\n\
             Status: 5.1.1\n\
             Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: User unknown\n\
             \n\
             --B1\n\
             Content-Type: text/rfc822-headers\n\
             \n\
             From: Support <support@example.com>\n\
             To: {rcpt}\n\
             Message-ID: <{original}>\n\
             \n\
             --B1--\n"
        )
        .as_bytes(),
    )
}
