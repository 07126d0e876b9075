//! Renders the outbox and the templates for the CLI: `postdesk outbox
//! [--json]` and the template lines of `postdesk check`. Text lines pass
//! what a stranger could have written (addresses, subjects, a relay's
//! error text) through [`super::printable`].

use serde_json::{Value, json};

use super::printable;
use crate::domain::Time;
use crate::outbound::Config;
use crate::store::OutboxRow;

fn time_s(secs: i64) -> Value {
    jiff::Timestamp::from_second(secs).map_or(Value::Null, |t| Value::String(t.to_string()))
}

fn time_ms(ms: i64) -> Value {
    jiff::Timestamp::from_millisecond(ms).map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// The row's ticket number `n` as its ticket shows it.
fn number(cfg: &Config, r: &OutboxRow, n: i64) -> String {
    cfg.tickets
        .format_number(n, &r.ticket_queue, Time::from_secs(r.ticket_opened_at))
}

/// One outbox row as JSON (the `outbox --json` contract).
pub fn row_json(cfg: &Config, r: &OutboxRow) -> Value {
    json!({
        "id": r.id,
        "ticket": r.ticket.map(|n| number(cfg, r, n)),
        "kind": r.kind,
        "to": r.to,
        "subject": r.subject,
        "status": r.status,
        "attempts": r.attempts,
        "last_error": if r.last_error.is_empty() { Value::Null } else { Value::String(r.last_error.clone()) },
        "message_id": r.message_id,
        "next_attempt_at": if r.status == "queued" { time_ms(r.next_attempt_at_ms) } else { Value::Null },
        "created_at": time_s(r.created_at),
        "sent_at": r.sent_at.map_or(Value::Null, time_s),
    })
}

/// One outbox row as a terminal line.
pub fn row_line(cfg: &Config, r: &OutboxRow) -> String {
    let ticket = r
        .ticket
        .map(|n| number(cfg, r, n))
        .unwrap_or_else(|| "-".into());
    let mut line = format!(
        "{:>6} {:<7} {:<8} {:<13} {:>2} {:<30} {}",
        r.id,
        printable(&r.status),
        ticket,
        printable(&r.kind),
        r.attempts,
        printable(&r.to),
        printable(&r.subject)
    );
    if !r.last_error.is_empty() {
        line.push_str(&format!("  [{}]", printable(&r.last_error)));
    }
    line
}

/// What `check` says about outbound mail and the templates.
pub fn check_summary(cfg: &Config) -> Vec<String> {
    let o = &cfg.outbound;
    let mut lines = Vec::new();
    lines.push(match &o.smarthost {
        Some(h) => format!(
            "outbound: smarthost {}:{} ({:?} TLS{})",
            h.host,
            h.port,
            h.tls,
            if h.user.is_some() { ", AUTH" } else { "" }
        ),
        None => format!(
            "outbound: no smarthost; mail is written to {}",
            cfg.data_dir().join("outbound/new").display()
        ),
    });
    if let Some(d) = &o.dkim {
        lines.push(format!(
            "outbound: DKIM d={} s={} ({})",
            d.domain,
            d.selector,
            d.key_file.display()
        ));
    }
    let templates: Vec<String> = o
        .templates
        .sources()
        .map(|(name, file)| match file {
            Some(f) => format!("{name} ({})", f.display()),
            None => format!("{name} (built in)"),
        })
        .collect();
    lines.push(format!(
        "templates: {} rendered with sample data: {}",
        templates.len(),
        templates.join(", ")
    ));
    lines.push(format!(
        "canned responses: {}",
        o.templates
            .canned_names()
            .iter()
            .map(|c| format!("/{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if o.smarthost.is_some() && cfg.server.hostname.eq_ignore_ascii_case("localhost") {
        lines.push(
            "warning: [server] hostname is \"localhost\" and a smarthost is set: the \
             Message-IDs and X-Loop of every mail sent will name localhost; set hostname to \
             this server's name (or leave it unset for the first served domain)"
                .into(),
        );
    }
    if !cfg.agents.is_empty() && cfg.threading.token_secret.is_none() {
        lines.push(
            "note: no token secret is configured yet: `postdesk serve` generates one in the \
             data directory (token_secret, mode 0600) on its first start; to manage it \
             yourself, set [threading] token_secret_file"
                .into(),
        );
    }
    lines
}
