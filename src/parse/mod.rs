//! Parse: raw bytes into our owned [`ParsedMessage`].
//!
//! Receives the bytes exactly as accepted; returns headers, text (HTML
//! rendered to text where there is no text part), what each attachment is
//! (its bytes stay in the raw message: [`attachments`] decodes them again
//! when they are needed) and a content hash. It never fails: a message mail-parser rejects, or one with no
//! headers, comes back with [`ParsedMessage::problem`] set, so the store keeps
//! the raw bytes and flags them instead of dropping anything.
//!
//! Mail about mail is parsing too: [`dsn`] reads a delivery status
//! notification (RFC 3464), and [`classify`] says whether a message is a
//! bounce, a feedback report, an automatic reply or a list notice. This
//! module and its children use nothing else of the crate, so every stage
//! can depend on them.

use std::borrow::Cow;

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

pub mod classify;
pub mod dsn;

/// One address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mailbox {
    /// Display name, if one was given.
    pub name: Option<String>,
    /// The address, lower-cased.
    pub address: String,
}

impl Mailbox {
    /// The domain part of the address (after the last `@`), lower-case.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// The local part (before the last `@`).
    pub fn local(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(l, _)| l)
            .unwrap_or(&self.address)
    }
}

/// What a message's attachment is; its bytes stay in the raw message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// File name, if the part named one.
    pub name: Option<String>,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// Decoded size in octets.
    pub size: u64,
    /// SHA-256 of the decoded content, hex.
    pub sha256: String,
    /// Position among the message's attachments, from 0: what
    /// [`attachments`] of the same raw bytes returns at this index.
    pub part: usize,
}

/// An attachment, decoded (as read back from a raw message, or as sent).
#[derive(Debug, Clone)]
pub struct Attachment {
    /// File name, if the part named one.
    pub name: Option<String>,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// Decoded content.
    pub content: Vec<u8>,
}

/// What postdesk knows about one message after parsing.
#[derive(Debug, Clone, Default)]
pub struct ParsedMessage {
    /// Message-ID without angle brackets, if the message had one.
    pub message_id: Option<String>,
    /// In-Reply-To ids, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// The From address.
    pub from: Option<Mailbox>,
    /// To addresses.
    pub to: Vec<Mailbox>,
    /// Cc addresses.
    pub cc: Vec<Mailbox>,
    /// Reply-To addresses.
    pub reply_to: Vec<Mailbox>,
    /// Subject, decoded.
    pub subject: Option<String>,
    /// Date header as Unix seconds.
    pub date: Option<i64>,
    /// The text body (HTML rendered to text when there is no text part).
    pub text: String,
    /// The HTML body, when there was one.
    pub html: Option<String>,
    /// Attachments (what they are; their bytes stay in the raw message).
    pub attachments: Vec<AttachmentInfo>,
    /// Header names and raw values, in order (for the `headers` column and
    /// the loop checks of later stages).
    pub headers: Vec<(String, String)>,
    /// SHA-256 over the content (see [`content_hash`]).
    pub content_hash: String,
    /// Why the message could not be fully parsed, if it could not.
    pub problem: Option<String>,
}

impl ParsedMessage {
    /// First value of a header, by case-insensitive name, trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// Parse `raw`. Never fails; see [`ParsedMessage::problem`].
pub fn parse(raw: &[u8]) -> ParsedMessage {
    let content_hash = content_hash(raw);
    let Some(mut msg) = MessageParser::default().parse(raw) else {
        return ParsedMessage {
            content_hash,
            problem: Some("not parseable as a mail message".into()),
            text: String::from_utf8_lossy(raw).into_owned(),
            ..ParsedMessage::default()
        };
    };
    let headers: Vec<(String, String)> = msg
        .headers_raw()
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    let mut problem = None;
    if headers.is_empty() || !starts_with_header(raw) {
        problem = Some("message has no header section".to_string());
    }

    // Only a real text/html part: body_html() would render a plain-text
    // body as HTML, wasted work on every message.
    let html = msg
        .html_bodies()
        .find(|p| p.is_text_html())
        .and_then(|p| p.text_contents())
        .map(str::to_string);
    let has_text_part = msg.text_bodies().any(|p| p.is_text() && !p.is_text_html());
    // One text part (the usual case) is moved out of the parse, not copied.
    let single_text = match msg.text_body.as_slice() {
        [id] if !msg.attachments.contains(id) => Some(*id as usize),
        _ => None,
    };
    let text = if let Some(id) = single_text.filter(|_| has_text_part) {
        match msg
            .parts
            .get_mut(id)
            .map(|p| std::mem::replace(&mut p.body, PartType::Text(Cow::Borrowed(""))))
        {
            Some(PartType::Text(t)) => t.into_owned(),
            Some(other) => {
                // Not a text part after all: put it back, take nothing.
                if let Some(p) = msg.parts.get_mut(id) {
                    p.body = other;
                }
                String::new()
            }
            None => String::new(),
        }
    } else if has_text_part {
        let mut out = String::new();
        for (i, part) in msg.text_bodies().enumerate() {
            if part.is_text_html() {
                continue;
            }
            if let Some(t) = part.text_contents() {
                if i > 0 && !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(t);
            }
        }
        out
    } else if let Some(h) = &html {
        html_to_text(h)
    } else if headers.is_empty() {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default()
    };

    let attachments = msg
        .attachments()
        .enumerate()
        .map(|(part, a)| {
            let content = a.contents();
            AttachmentInfo {
                name: a.attachment_name().map(str::to_string),
                content_type: attachment_type(a),
                size: content.len() as u64,
                sha256: hex::encode(Sha256::digest(content)),
                part,
            }
        })
        .collect();

    ParsedMessage {
        message_id: msg.message_id().map(clean_id).filter(|s| !s.is_empty()),
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        from: msg.from().and_then(first_mailbox),
        to: mailboxes(msg.to()),
        cc: mailboxes(msg.cc()),
        reply_to: mailboxes(msg.reply_to()),
        subject: msg.subject().map(|s| s.trim().to_string()),
        date: msg.date().map(|d| d.to_timestamp()),
        text,
        html,
        attachments,
        headers,
        content_hash,
        problem,
    }
}

/// The attachments of `raw`, decoded, in the order of
/// [`ParsedMessage::attachments`]; empty when `raw` does not parse.
pub fn attachments(raw: &[u8]) -> Vec<Attachment> {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    msg.attachments()
        .map(|a| Attachment {
            name: a.attachment_name().map(str::to_string),
            content_type: attachment_type(a),
            content: a.contents().to_vec(),
        })
        .collect()
}

/// One attachment of `raw` (`part` as in [`AttachmentInfo::part`]),
/// decoded; `None` when there is no such part.
pub fn attachment(raw: &[u8], part: usize) -> Option<Attachment> {
    let msg = MessageParser::default().parse(raw)?;
    let a = msg.attachments().nth(part)?;
    Some(Attachment {
        name: a.attachment_name().map(str::to_string),
        content_type: attachment_type(a),
        content: a.contents().to_vec(),
    })
}

/// An attachment's MIME type, lower-case (`application/octet-stream` when
/// it declares none).
fn attachment_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".to_string())
        .to_ascii_lowercase()
}

/// Whether `raw` begins with a header field (`Name: value`, RFC 5322 §2.2),
/// the least a message must have to be mail.
pub fn starts_with_header(raw: &[u8]) -> bool {
    let first = raw.split(|b| *b == b'\n').next().unwrap_or(b"");
    first
        .iter()
        .position(|b| *b == b':')
        .is_some_and(|end| end > 0 && first[..end].iter().all(|b| b.is_ascii_graphic()))
}

/// Render HTML as plain text for agents and the detector.
pub fn html_to_text(html: &str) -> String {
    html2text::from_read(html.as_bytes(), 100).unwrap_or_else(|_| html.to_string())
}

/// Content hash used with the Message-ID to recognise a duplicate delivery.
///
/// SHA-256 over the message with trace headers that relays add on the way
/// (`Received`, `Return-Path`, `Delivered-To`, `X-Original-To`) left out and
/// line endings folded to LF, so the same mail delivered twice, or to two of
/// our addresses through a relay, hashes the same while a different mail
/// reusing a Message-ID does not.
pub fn content_hash(raw: &[u8]) -> String {
    const TRACE: [&[u8]; 4] = [
        b"received",
        b"return-path",
        b"delivered-to",
        b"x-original-to",
    ];
    // The folded text is gathered in a buffer and hashed in large pieces:
    // two hasher calls per line cost more than the hashing itself.
    const CHUNK: usize = 64 * 1024;
    let mut hasher = Sha256::new();
    let mut folded: Vec<u8> = Vec::with_capacity(raw.len().min(CHUNK) + 2);
    let mut in_headers = true;
    let mut skipping = false;
    let mut rest = raw;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if in_headers {
            if line.is_empty() {
                in_headers = false;
            } else if line[0] == b' ' || line[0] == b'\t' {
                if skipping {
                    continue;
                }
            } else {
                let name = line.split(|b| *b == b':').next().unwrap_or(b"");
                skipping = TRACE.iter().any(|t| name.eq_ignore_ascii_case(t));
                if skipping {
                    continue;
                }
            }
        }
        folded.extend_from_slice(line);
        folded.push(b'\n');
        if folded.len() >= CHUNK {
            hasher.update(&folded);
            folded.clear();
        }
    }
    hasher.update(&folded);
    hex::encode(hasher.finalize())
}

/// The header value before any `;` parameter or `(comment)`, trimmed and
/// lower-case: `Auto-Submitted: auto-replied; owner=x` is `auto-replied`.
pub(crate) fn header_token(value: &str) -> String {
    value
        .split([';', '('])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Every value of header `name` (case-insensitive).
pub(crate) fn header_values<'a>(
    msg: &'a ParsedMessage,
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    msg.headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn clean_id(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => t
            .split_whitespace()
            .map(clean_id)
            .filter(|s| !s.is_empty())
            .collect(),
        HeaderValue::TextList(l) => l
            .iter()
            .map(|t| clean_id(t))
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn first_mailbox(a: &Address<'_>) -> Option<Mailbox> {
    a.first().and_then(|addr| {
        let address = addr.address()?.trim().to_ascii_lowercase();
        if address.is_empty() {
            return None;
        }
        Some(Mailbox {
            name: addr
                .name()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
            address,
        })
    })
}

fn mailboxes(a: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(a) = a else { return Vec::new() };
    a.iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim().to_ascii_lowercase();
            (!address.is_empty()).then(|| Mailbox {
                name: addr
                    .name()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty()),
                address,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_mail_yields_headers_text_and_ids() {
        let raw = b"From: Jane Doe <Jane@Example.org>\r\nTo: support@example.com\r\nSubject: Help\r\nMessage-ID: <a1@x>\r\nIn-Reply-To: <p0@x>\r\nReferences: <r1@x> <p0@x>\r\n\r\nHello there\r\n";
        let p = parse(raw);
        assert_eq!(p.message_id.as_deref(), Some("a1@x"));
        assert_eq!(p.in_reply_to, vec!["p0@x"]);
        assert_eq!(p.references, vec!["r1@x", "p0@x"]);
        let from = p.from.expect("from");
        assert_eq!(from.address, "jane@example.org");
        assert_eq!(from.name.as_deref(), Some("Jane Doe"));
        assert_eq!(p.subject.as_deref(), Some("Help"));
        assert!(p.text.contains("Hello there"));
        assert!(p.problem.is_none());
    }

    #[test]
    fn html_only_mail_gets_a_text_rendering() {
        let raw = b"From: a@b.c\r\nSubject: h\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>world</b></p><ul><li>one</li></ul></body></html>\r\n";
        let p = parse(raw);
        assert!(p.text.contains("Hello"), "{}", p.text);
        assert!(p.text.contains("one"));
        assert!(!p.text.contains("<p>"));
        assert!(p.html.is_some());
    }

    #[test]
    fn attachment_is_decoded() {
        let raw = b"From: a@b.c\r\nSubject: att\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--XX\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--XX--\r\n";
        let p = parse(raw);
        assert_eq!(p.attachments.len(), 1);
        assert_eq!(p.attachments[0].name.as_deref(), Some("r.pdf"));
        assert_eq!(p.attachments[0].content_type, "application/pdf");
        assert_eq!(p.attachments[0].size, 8);
        assert_eq!(
            p.attachments[0].sha256,
            hex::encode(Sha256::digest(b"%PDF-1.4"))
        );
        assert_eq!(p.attachments[0].part, 0);
        assert!(p.text.contains("see file"));
        let back = attachment(raw, 0).expect("part 0");
        assert_eq!(back.content, b"%PDF-1.4");
        assert_eq!(back.name.as_deref(), Some("r.pdf"));
        assert_eq!(attachments(raw).len(), 1);
        assert!(attachment(raw, 1).is_none());
    }

    /// The hash as first written (line by line): stored hashes must not
    /// change, or a message delivered again after an upgrade is stored twice.
    fn content_hash_line_by_line(raw: &[u8]) -> String {
        const TRACE: [&[u8]; 4] = [
            b"received",
            b"return-path",
            b"delivered-to",
            b"x-original-to",
        ];
        let mut hasher = Sha256::new();
        let mut in_headers = true;
        let mut skipping = false;
        for line in raw.split_inclusive(|b| *b == b'\n') {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            if in_headers {
                if body.is_empty() {
                    in_headers = false;
                } else if body[0] == b' ' || body[0] == b'\t' {
                    if skipping {
                        continue;
                    }
                } else {
                    let name = body.split(|b| *b == b':').next().unwrap_or(b"");
                    skipping = TRACE.iter().any(|t| name.eq_ignore_ascii_case(t));
                    if skipping {
                        continue;
                    }
                }
            }
            hasher.update(body);
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }

    #[test]
    fn content_hash_is_the_line_by_line_hash_of_every_shape() {
        let big = format!(
            "Received: x\r\n\tfolded\r\nSubject: s\r\n\r\n{}",
            "a line of text\r\n".repeat(10_000)
        );
        let cases: Vec<&[u8]> = vec![
            b"",
            b"\n",
            b"\r\n",
            b"\r",
            b"Subject: x",
            b"Subject: x\r\n",
            b"Subject: x\r\n\r\n",
            b"Subject: x\r\n\r\nbody",
            b"Subject: x\r\n\r\nbody\r",
            b"Subject: x\r\n\r\nbody\r\r\n\n\nend\n",
            b"Received: a\r\n b\r\nReturn-Path: <>\r\nX: y\r\n \tz\r\n\r\nReceived: in body\r\n",
            b"Delivered-To: a\nX-Original-To: b\nFrom: c\n\n\n\nx",
            b"\r\n\r\nonly body\r\n",
            big.as_bytes(),
        ];
        for raw in cases {
            assert_eq!(
                content_hash(raw),
                content_hash_line_by_line(raw),
                "{:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(60)])
            );
        }
    }

    #[test]
    fn content_hash_ignores_trace_headers_and_line_endings() {
        let a = b"Received: from x by y\r\n\tfolded\r\nFrom: a@b.c\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n";
        let b = b"Delivered-To: support@example.com\nFrom: a@b.c\nMessage-ID: <1@x>\n\nbody\n";
        let c = b"From: a@b.c\r\nMessage-ID: <1@x>\r\n\r\nother body\r\n";
        assert_eq!(content_hash(a), content_hash(b));
        assert_ne!(content_hash(a), content_hash(c));
    }

    #[test]
    fn headerless_bytes_are_flagged_not_dropped() {
        let p = parse(b"\x00\x01\x02 binary noise \xff\xfe");
        assert!(p.problem.is_some());
        assert!(p.message_id.is_none());
    }
}
