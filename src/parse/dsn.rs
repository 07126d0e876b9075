//! DSN: parse a delivery status notification (RFC 3464) into the
//! original Message-ID and one status per recipient.
//!
//! Receives the raw bytes of an inbound message; returns a [`Dsn`] when it
//! is a `multipart/report; report-type=delivery-status` (or its RFC 6533
//! `global-delivery-status` sibling) and `None` otherwise. Pure: the
//! pipeline matches the DSN to its ticket (by the original Message-ID, its
//! own In-Reply-To/References, or the signed token the bounce was addressed
//! to) and records it there, never as a new ticket.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::Serialize;

/// One recipient's status in a DSN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DsnRecipient {
    /// `Final-Recipient` (or `Original-Recipient`), lower-case, without the
    /// `rfc822;` type.
    pub address: String,
    /// `Action`: `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: String,
    /// `Status`, e.g. `5.1.1`.
    pub status: String,
    /// `Diagnostic-Code`, without its type (the remote MTA's reply).
    pub diagnostic: String,
}

impl DsnRecipient {
    /// Whether delivery to this recipient failed for good (`Action:
    /// failed` with a 5.x.x status, or no status at all).
    pub fn is_permanent_failure(&self) -> bool {
        self.action == "failed" && (self.status.starts_with('5') || self.status.is_empty())
    }
}

/// A parsed delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dsn {
    /// The Message-ID of the mail that bounced, from the returned message
    /// or its headers.
    pub original_message_id: Option<String>,
    /// Per-recipient fields.
    pub recipients: Vec<DsnRecipient>,
}

/// Parse `raw` as a DSN; `None` if it is not one.
pub fn parse(raw: &[u8]) -> Option<Dsn> {
    // The header section decides; only a report is parsed whole (every
    // message passes here, and a large one would be decoded twice).
    let head = MessageParser::default().parse_headers(raw)?;
    let is_report = head.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    if !is_report {
        return None;
    }
    let msg = MessageParser::default().parse(raw)?;
    let root = msg.parts.first()?;
    let ct = root.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"));
    let report_type = ct.attribute("report-type").unwrap_or("");
    if !is_report
        || !(report_type.eq_ignore_ascii_case("delivery-status")
            || report_type.eq_ignore_ascii_case("global-delivery-status"))
    {
        return None;
    }
    let mut dsn = Dsn {
        original_message_id: None,
        recipients: Vec::new(),
    };
    let mut saw_status = false;
    for (full, body) in report_parts(&msg, raw) {
        match full.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                saw_status = true;
                dsn.recipients.extend(recipients(body));
            }
            "message/rfc822"
            | "message/global"
            | "text/rfc822-headers"
            | "message/global-headers"
                if dsn.original_message_id.is_none() =>
            {
                // A nested message's bytes start with its headers too.
                dsn.original_message_id = original_id(body);
            }
            _ => {}
        }
    }
    saw_status.then_some(dsn)
}

/// The Message-ID in a block of header lines.
fn original_id(headers: &[u8]) -> Option<String> {
    let mut bytes = headers.to_vec();
    bytes.extend_from_slice(b"\r\n\r\n");
    MessageParser::default()
        .parse_headers(&bytes)
        .and_then(|m| m.message_id().map(clean_id))
        .filter(|s| !s.is_empty())
}

fn clean_id(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

/// The per-recipient groups of a `message/delivery-status` body: field
/// groups separated by blank lines, the first of which is per-message.
fn recipients(body: &[u8]) -> Vec<DsnRecipient> {
    let text = String::from_utf8_lossy(body);
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            if groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
            continue;
        }
        let Some(group) = groups.last_mut() else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            // RFC 5322 folding: a continuation of the previous field.
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let field = |g: &[(String, String)], name: &str| {
        g.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    };
    // `rfc822; alice@x` → `alice@x`.
    let typed = |v: String| match v.split_once(';') {
        Some((_, rest)) => rest.trim().to_owned(),
        None => v.trim().to_owned(),
    };
    groups
        .iter()
        .filter(|g| field(g, "action").is_some())
        .filter_map(|g| {
            let address = field(g, "final-recipient")
                .or_else(|| field(g, "original-recipient"))
                .map(typed)?
                .trim_matches(|c| c == '<' || c == '>')
                .to_ascii_lowercase();
            Some(DsnRecipient {
                address,
                action: field(g, "action").unwrap_or_default().to_ascii_lowercase(),
                status: field(g, "status")
                    .unwrap_or_default()
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
                diagnostic: field(g, "diagnostic-code").map(typed).unwrap_or_default(),
            })
        })
        .collect()
}

/// The parts of a report after its first: each one's `type/subtype`
/// (lower-case) and body bytes (a part mail-parser read as a nested
/// message gives its raw bytes).
pub(crate) fn report_parts<'a>(
    msg: &'a mail_parser::Message<'a>,
    raw: &'a [u8],
) -> impl Iterator<Item = (String, &'a [u8])> + 'a {
    msg.parts.iter().skip(1).filter_map(move |part| {
        let ct = part.content_type()?;
        let full = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase()
        );
        let body: &[u8] = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            PartType::Message(_) | PartType::Multipart(_) => raw
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or(&[]),
        };
        Some((full, body))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    /// A Postfix bounce, as it sends them.
    pub(crate) const POSTFIX: &str = "Return-Path: <>\r\n\
From: MAILER-DAEMON@mx.customer.test (Mail Delivery System)\r\n\
To: support+12-0011223344556677@example.com\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Auto-Submitted: auto-replied\r\n\
Message-ID: <20260302100001.ABC@mx.customer.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\
\tboundary=\"B1\"\r\n\
\r\n\
--B1\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
I'm sorry to have to inform you that your message could not\r\n\
be delivered to one or more recipients.\r\n\
\r\n\
--B1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.customer.test\r\n\
Arrival-Date: Mon,  2 Mar 2026 10:00:00 +0000 (UTC)\r\n\
\r\n\
Final-Recipient: rfc822; Gone@Customer.test\r\n\
Original-Recipient: rfc822;gone@customer.test\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <gone@customer.test>: Recipient address\r\n\
\t rejected: User unknown\r\n\
\r\n\
--B1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: Support <support@example.com>\r\n\
To: gone@customer.test\r\n\
Subject: Re: Help [#1001]\r\n\
Message-ID: <1772445600000.1.abc@desk.example.com>\r\n\
\r\n\
--B1--\r\n";

    #[test]
    fn a_postfix_bounce_yields_the_original_id_and_the_failed_recipient() {
        let dsn = parse(POSTFIX.as_bytes()).unwrap();
        assert_eq!(
            dsn.original_message_id.as_deref(),
            Some("1772445600000.1.abc@desk.example.com")
        );
        assert_eq!(
            dsn.recipients,
            [DsnRecipient {
                address: "gone@customer.test".into(),
                action: "failed".into(),
                status: "5.1.1".into(),
                diagnostic:
                    "550 5.1.1 <gone@customer.test>: Recipient address rejected: User unknown"
                        .into(),
            }]
        );
        assert!(dsn.recipients[0].is_permanent_failure());
    }

    #[test]
    fn a_returned_full_message_and_a_delay_are_read_too() {
        let raw = POSTFIX
            .replace("text/rfc822-headers", "message/rfc822")
            .replace("Action: failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.4.1")
            .replace("Message-ID: <1772445600000", "Message-ID: <X1772445600000")
            .replace(
                "Message-ID: <X1772445600000.1.abc@desk.example.com>\r\n\r\n--B1--",
                "Message-ID: <X1772445600000.1.abc@desk.example.com>\r\n\r\nbody\r\n--B1--",
            );
        let dsn = parse(raw.as_bytes()).unwrap();
        assert_eq!(
            dsn.original_message_id.as_deref(),
            Some("X1772445600000.1.abc@desk.example.com")
        );
        assert_eq!(dsn.recipients[0].action, "delayed");
        assert!(!dsn.recipients[0].is_permanent_failure());
    }

    #[test]
    fn ordinary_mail_and_other_reports_are_not_dsns() {
        assert!(parse(b"From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n").is_none());
        let mdn = POSTFIX.replace(
            "report-type=delivery-status",
            "report-type=disposition-notification",
        );
        assert!(parse(mdn.as_bytes()).is_none());
        assert!(parse(b"\x00\x01 not mail").is_none());
    }
}
