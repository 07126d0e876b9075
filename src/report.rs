//! Renders store rows for the CLI: JSON objects for `--json`, plain text
//! otherwise. Ticket numbers are shown in the configured format and times
//! as RFC 3339.

use serde_json::{Value, json};

use crate::config::Config;
use crate::store::{MessageSummary, TicketDetail, TicketSummary};

fn time(secs: i64) -> Value {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => Value::String(t.to_string()),
        Err(_) => Value::Null,
    }
}

/// A ticket as a JSON object (the `tickets --json` contract).
pub fn ticket_json(cfg: &Config, t: &TicketSummary) -> Value {
    json!({
        "id": t.id,
        "number": cfg.tickets.format_number(t.number),
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "queue": t.queue,
        "issue_type": t.issue_type,
        "requester": t.requester,
        "requester_name": t.requester_name,
        "inbound_address": t.inbound_address,
        "assignee": t.assignee,
        "linked_ticket": t.linked_ticket.map(|n| cfg.tickets.format_number(n)),
        "message_count": t.message_count,
        "created_at": time(t.created_at),
        "updated_at": time(t.updated_at),
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
    }
    v
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

/// One line per ticket for the terminal.
pub fn ticket_line(cfg: &Config, t: &TicketSummary) -> String {
    format!(
        "{:<8} {:<9} {:<7} {:<8} {:<28} {}",
        cfg.tickets.format_number(t.number),
        t.status,
        t.queue,
        t.priority,
        truncate(&t.requester, 28),
        t.subject
    )
}

/// A ticket and its conversation for the terminal.
pub fn detail_text(cfg: &Config, d: &TicketDetail) -> String {
    let t = &d.ticket;
    let mut s = format!(
        "Ticket {}  {}\nStatus: {}  Priority: {}  Queue: {}  Type: {}\nRequester: {} <{}>\nMessages: {}  Created: {}\n",
        cfg.tickets.format_number(t.number),
        t.subject,
        t.status,
        t.priority,
        t.queue,
        t.issue_type,
        t.requester_name,
        t.requester,
        t.message_count,
        time(t.created_at).as_str().unwrap_or(""),
    );
    let others: Vec<String> = d
        .participants
        .iter()
        .filter(|(_, role)| role != "requester")
        .map(|(address, role)| match role.as_str() {
            "held" => format!("{address} (held: wrote in, not copied; #cc to add)"),
            _ => address.clone(),
        })
        .collect();
    if !others.is_empty() {
        s.push_str(&format!("Cc: {}\n", others.join(", ")));
    }
    if !d.tags.is_empty() {
        s.push_str(&format!("Tags: {}\n", d.tags.join(", ")));
    }
    for m in &d.messages {
        s.push_str(&format!(
            "\n--- {} {} from {} ({}; thread: {})\nSubject: {}\n\n{}\n",
            time(m.received_at).as_str().unwrap_or(""),
            m.direction,
            m.from,
            m.kind,
            m.thread_match,
            m.subject,
            m.text.trim_end()
        ));
        for a in &m.attachments {
            s.push_str(&format!(
                "[attachment: {} {} {} bytes]\n",
                a.name, a.content_type, a.size
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
