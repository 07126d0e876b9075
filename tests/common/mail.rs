//! Mail to send and fields to read back: [`Mail`] (envelope and raw
//! bytes), [`mail`] and [`text_mail`] to build plain messages, line-end
//! conversion, fixtures under `tests/fixtures/`, [`noise`] for reproducible
//! garbage, and helpers that read JSON fields with a clear panic.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::server::REPO;

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

/// A plain-text mail from `from` to `to`, envelope and header alike, with
/// a short body; `extra` headers as in [`text_mail`].
pub fn mail(from: &str, to: &str, subject: &str, id: &str, extra: &[(&str, &str)]) -> Mail {
    Mail::new(
        from,
        &[to],
        text_mail(from, to, subject, id, extra, "Hello,\nsome text.\n"),
    )
}

/// Alice Example's mail (`alice@customer.test`) to support@example.com:
/// the customer of the conversation tests.
pub fn alice_mail(subject: &str, id: &str, extra: &[(&str, &str)], body: &str) -> Mail {
    const ALICE: &str = "alice@customer.test";
    Mail::new(
        ALICE,
        &["support@example.com"],
        text_mail(
            &format!("Alice Example <{ALICE}>"),
            "support@example.com",
            subject,
            id,
            extra,
            body,
        ),
    )
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
