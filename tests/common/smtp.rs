//! SMTP and LMTP peers: Python's `smtplib` (`tests/common/smtp_send.py`)
//! for well-formed sessions, with an [`Outcome`] per message, and
//! [`RawSmtp`] over a `std::net::TcpStream` for protocol abuse that a
//! polite client library refuses to send.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::cli::CLI_DEADLINE;
use super::mail::Mail;
use super::server::REPO;
use super::wait::wait_with_deadline;

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
