//! Renders store rows for the CLI: JSON objects for `--json`, plain text
//! otherwise. Ticket numbers are shown in the configured format and times
//! as RFC 3339.
//!
//! Text output passes every value a stranger could have written (subjects,
//! names, addresses, bodies, error texts) through [`printable`]: a subject
//! carrying `\r\n` or an `ESC ]0;...` sequence must not forge a row or
//! retitle the admin's terminal. JSON output needs no such care: serde
//! escapes control characters itself.

use std::borrow::Cow;

use serde_json::{Value, json};

/// `s` made safe to print on a terminal: C0 controls (line breaks
/// included), DEL, C1 controls and the Unicode bidirectional overrides are
/// shown escaped (`\r`, `\n`, `\u{1b}`, ...), so a value prints as exactly
/// one visible span of its own line. Tabs stay. Borrowed when there is
/// nothing to escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    fn is_unsafe(c: char) -> bool {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
    }
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Multi-line text (a message body, a digest) made safe to print: each
/// line through [`printable`], the line breaks kept.
pub fn printable_lines(s: &str) -> String {
    s.split('\n')
        .map(|line| printable(line.strip_suffix('\r').unwrap_or(line)).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

pub mod csv;
pub mod outbox;
pub mod overview;
pub mod stats;

use crate::config::Config;
use crate::domain::Time;
use crate::store::{MailboxState, MessageSummary, TicketDetail, TicketSummary};

fn time(secs: i64) -> Value {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => Value::String(t.to_string()),
        Err(_) => Value::Null,
    }
}

/// The ticket's number as it shows it: its queue's format, its opening
/// year.
pub fn number(cfg: &Config, t: &TicketSummary) -> String {
    cfg.tickets
        .format_number(t.number, &t.queue, Time::from_secs(t.created_at))
}

/// A ticket as a JSON object (the `tickets --json` contract).
pub fn ticket_json(cfg: &Config, t: &TicketSummary) -> Value {
    json!({
        "id": t.id,
        "number": number(cfg, t),
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "queue": t.queue,
        "issue_type": t.issue_type,
        "requester": t.requester,
        "requester_name": t.requester_name,
        "inbound_address": t.inbound_address,
        "assignee": t.assignee,
        "linked_ticket": t.linked_ticket.map(|n| {
            cfg.tickets
                .format_number(n, &t.linked_queue, Time::from_secs(t.linked_opened_at))
        }),
        "message_count": t.message_count,
        "created_at": time(t.created_at),
        "updated_at": time(t.updated_at),
        "tags": t.tags,
    })
}

/// A ticket with messages and events (the `show --json` contract).
pub fn detail_json(cfg: &Config, d: &TicketDetail) -> Value {
    let mut v = ticket_json(cfg, &d.ticket);
    let messages: Vec<Value> = d
        .messages
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "message_id": m.message_id,
                "direction": m.direction,
                "kind": m.kind,
                "from": m.from,
                "from_name": m.from_name,
                "to": m.to,
                "cc": m.cc,
                "subject": m.subject,
                "text": m.text,
                "thread_match": m.thread_match,
                "state": m.state,
                "flag": if m.flag.is_empty() { Value::Null } else { Value::String(m.flag.clone()) },
                "received_at": time(m.received_at),
                "attachments": m.attachments,
            })
        })
        .collect();
    let events: Vec<Value> = d
        .events
        .iter()
        .map(|e| {
            json!({
                "at": time(e.at),
                "kind": e.kind,
                "cause": e.cause,
                "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::String(e.detail.clone())),
            })
        })
        .collect();
    if let Value::Object(map) = &mut v {
        map.insert("messages".into(), Value::Array(messages));
        map.insert("events".into(), Value::Array(events));
        map.insert(
            "participants".into(),
            d.participants
                .iter()
                .map(|(address, role)| json!({ "address": address, "role": role }))
                .collect(),
        );
        map.insert("tags".into(), json!(d.tags));
        map.insert(
            "sla".into(),
            sla_view(cfg, d)
                .map(|view| json!(view))
                .unwrap_or(Value::Null),
        );
        map.insert(
            "satisfaction".into(),
            d.satisfaction.as_ref().map_or(
                Value::Null,
                |r| json!({ "score": r.score, "comment": r.comment, "rated_at": time(r.rated_at) }),
            ),
        );
    }
    v
}

/// The SLA of `d` now, when it runs under a configured policy.
pub fn sla_view(cfg: &Config, d: &TicketDetail) -> Option<crate::sla::View> {
    let clocks = d.sla.as_ref()?;
    let policy = cfg.sla.policy(&clocks.policy)?;
    let priority = crate::sla::priority(&d.ticket.priority);
    Some(crate::sla::view(
        policy,
        clocks,
        priority,
        crate::domain::Time::now(),
    ))
}

/// The SLA lines of `show`.
fn sla_text(cfg: &Config, d: &TicketDetail) -> String {
    let Some(v) = sla_view(cfg, d) else {
        return String::new();
    };
    let state = serde_json::to_value(v.state)
        .ok()
        .and_then(|s| s.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut s = format!("SLA: {} ({})", printable(&v.policy), state);
    if let Some(left) = v.remaining {
        if left >= 0 {
            s.push_str(&format!(
                ", {} of business time left",
                crate::sla::human(left)
            ));
        } else {
            s.push_str(&format!(
                ", overdue by {} of business time",
                crate::sla::human(-left)
            ));
        }
    }
    s.push('\n');
    for (name, due) in [
        ("first response", &v.first_response_due),
        ("next response", &v.next_response_due),
        ("resolution", &v.resolution_due),
    ] {
        if let Some(due) = due {
            s.push_str(&format!("  {name} due {due}\n"));
        }
    }
    if v.paused_seconds > 0 {
        s.push_str(&format!(
            "  paused {}\n",
            crate::sla::human(v.paused_seconds)
        ));
    }
    s
}

/// A stored message as a JSON object (the `messages --json` contract).
pub fn message_json(m: &MessageSummary) -> Value {
    json!({
        "id": m.id,
        "message_id": m.message_id,
        "ticket_id": m.ticket_id,
        "state": m.state,
        "flag": m.flag,
        "size": m.size,
        "content_hash": m.content_hash,
        "from": m.from,
        "subject": m.subject,
        "source": m.source,
        "received_at": time(m.received_at),
    })
}

/// A polled mailbox as a JSON object (the `mailboxes --json` contract):
/// its UID state and its health, the health's ticket by number (`#1301`)
/// like every other output.
pub fn mailbox_json(cfg: &Config, st: &MailboxState) -> Value {
    json!({
        "mailbox": st.mailbox,
        "sync": st.sync,
        "health": st.health.as_ref().map(|h| json!({
            "broken": h.broken,
            "ticket": st.health_ticket_number.map(|n| cfg.tickets.format_number(
                n,
                &st.health_ticket_queue,
                Time::from_secs(st.health_ticket_opened_at),
            )),
            "reason": h.reason,
            "since": h.since,
        })),
    })
}

/// One line per ticket for the terminal.
pub fn ticket_line(cfg: &Config, t: &TicketSummary) -> String {
    format!(
        "{:<8} {:<9} {:<7} {:<8} {:<28} {}",
        number(cfg, t),
        printable(&t.status),
        printable(&t.queue),
        printable(&t.priority),
        truncate(&printable(&t.requester), 28),
        printable(&t.subject)
    )
}

/// A ticket and its conversation for the terminal.
pub fn detail_text(cfg: &Config, d: &TicketDetail) -> String {
    let t = &d.ticket;
    let mut s = format!(
        "Ticket {}  {}\nStatus: {}  Priority: {}  Queue: {}  Type: {}\nRequester: {} <{}>\nMessages: {}  Created: {}\n",
        number(cfg, t),
        printable(&t.subject),
        printable(&t.status),
        printable(&t.priority),
        printable(&t.queue),
        printable(&t.issue_type),
        printable(&t.requester_name),
        printable(&t.requester),
        t.message_count,
        time(t.created_at).as_str().unwrap_or(""),
    );
    let others: Vec<String> = d
        .participants
        .iter()
        .filter(|(_, role)| role != "requester")
        .map(|(address, role)| match role.as_str() {
            "held" => format!(
                "{} (held: wrote in, not copied; #cc to add)",
                printable(address)
            ),
            _ => printable(address).into_owned(),
        })
        .collect();
    if !others.is_empty() {
        s.push_str(&format!("Cc: {}\n", others.join(", ")));
    }
    if !d.tags.is_empty() {
        s.push_str(&format!("Tags: {}\n", printable(&d.tags.join(", "))));
    }
    s.push_str(&sla_text(cfg, d));
    if let Some(r) = &d.satisfaction {
        s.push_str(&format!(
            "Satisfaction: {} of 5 ({})",
            r.score,
            time(r.rated_at).as_str().unwrap_or("")
        ));
        if !r.comment.is_empty() {
            s.push_str(&format!(": {}", printable(&r.comment)));
        }
        s.push('\n');
    }
    for m in &d.messages {
        s.push_str(&format!(
            "\n--- {} {} from {} ({}; thread: {})\nSubject: {}\n\n{}\n",
            time(m.received_at).as_str().unwrap_or(""),
            printable(&m.direction),
            printable(&m.from),
            printable(&m.kind),
            printable(&m.thread_match),
            printable(&m.subject),
            printable_lines(m.text.trim_end())
        ));
        for a in &m.attachments {
            s.push_str(&format!(
                "[attachment: {} {} {} bytes]\n",
                printable(&a.name),
                printable(&a.content_type),
                a.size
            ));
        }
    }
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_line_breaks_escapes_and_c1_but_keeps_text_and_tabs() {
        assert!(matches!(
            printable("Printer on fire\tnow"),
            Cow::Borrowed(_)
        ));
        assert_eq!(printable("Café ☕"), "Café ☕");
        assert_eq!(
            printable("a\r\n#9999 Open\u{1b}]0;pwned\u{7}"),
            "a\\r\\n#9999 Open\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(
            printable("x\u{9b}31m\u{7f}\u{0}"),
            "x\\u{9b}31m\\u{7f}\\u{0}"
        );
        assert_eq!(printable("evil\u{202e}fdp.exe"), "evil\\u{202e}fdp.exe");
    }

    #[test]
    fn printable_lines_keeps_line_breaks_and_escapes_inside_lines() {
        assert_eq!(
            printable_lines("one\r\ntwo \u{1b}[2J\nthree\r"),
            "one\ntwo \\u{1b}[2J\nthree"
        );
    }
}
