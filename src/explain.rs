//! `postdesk explain`: the pipeline's plan for a message, run inside a
//! transaction that is rolled back, as JSON and as lines for a terminal.

use std::sync::Arc;

use crate::domain::{TicketId, Time};
use crate::outbound::Config;
use crate::pipeline;
use crate::route::Route;
use crate::store;

/// The envelope explain assumes: SMTP delivery from `mail_from`, or
/// without it, a message as `ingest` sees it.
fn envelope(rcpt: Vec<String>, mail_from: Option<String>) -> crate::domain::Envelope {
    let source = match mail_from {
        Some(_) => crate::domain::Source::Smtp,
        None => crate::domain::Source::Ingest,
    };
    crate::domain::Envelope {
        mail_from: mail_from.unwrap_or_default(),
        rcpt_to: rcpt,
        source,
        peer: None,
        helo: String::new(),
        web: None,
    }
}

/// Run the pipeline on `raw` inside a rolled-back transaction, as if it
/// had arrived for the envelope recipients `rcpt` (none: the recipients
/// then come from To/Cc) over SMTP from `mail_from`, or, without one, as
/// `ingest` would see it. Returns every decision and the rule behind it;
/// [`text`] renders it for a terminal.
///
/// # Errors
///
/// When the store cannot be opened.
pub fn run(
    cfg: Arc<Config>,
    raw: Vec<u8>,
    rcpt: Vec<String>,
    mail_from: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    let parsed = crate::parse::parse(&raw);
    let mut store = store::Store::open(cfg.store_location())?;
    let envelope = envelope(rcpt, mail_from);
    let now = Time::now();
    let msg = pipeline::Incoming {
        env: &envelope,
        raw: &raw,
        parsed: &parsed,
        class: &pipeline::classify(&envelope, &raw, &parsed),
    };
    let outcome = store.dry_run(|tx| pipeline::process(tx, &cfg, msg, now))?;
    let plan = outcome.plan.as_deref();
    // Mail about mail (bounce, feedback report, automatic reply): the rule
    // that recognised it.
    let automatic = plan.and_then(|p| p.class.as_ref()).map(|c| {
        serde_json::json!({ "kind": c.kind.as_str(), "because": c.because, "detail": c.detail })
    });
    // The ticket joined, as the CLI names it; a ticket that would be opened
    // does not exist outside the rolled-back transaction.
    let existing = match outcome.ticket.filter(|_| !outcome.opened) {
        Some(t) => store.ticket(store::TicketRef::Id(t.0))?,
        None => None,
    };
    let ticket = existing.as_ref().map(|d| {
        serde_json::json!({
            "id": d.ticket.id,
            "number": crate::report::number(&cfg, &d.ticket),
            "subject": d.ticket.subject,
            "status": d.ticket.status,
            "queue": d.ticket.queue,
        })
    });
    let route = outcome.route();
    let (queue, priority, issue_type, inbound) = match route {
        Some(Route::Ticket {
            queue,
            priority,
            issue_type,
            inbound_address,
            ..
        }) => (
            Some(queue.as_str()),
            Some(priority.as_str()),
            Some(issue_type.as_str()),
            Some(inbound_address.as_str()),
        ),
        _ => (None, None, None, None),
    };
    let steps = plan.and_then(|p| p.ticket.as_ref());
    // The detector's verdict whether or not the message is in scope (scope
    // is the plan's), computed in full so that the hits the model set aside
    // are listed; it flags exactly when the plan's verdict does.
    let verdict = crate::compliance::verdict_in_full(
        &cfg,
        parsed.from.as_ref().map(|m| m.address.as_str()),
        &parsed.text,
    );
    let detector = serde_json::json!({
        "in_scope": steps.is_some_and(|t| t.detector.in_scope),
        "because": steps.map_or("not_a_customer_ticket_message", |t| t.detector.because),
        "enabled": cfg.detector.enabled,
        "version": cfg.detector_engine.version(),
        "flagged": verdict.flagged,
        "score": verdict.score,
        "hits": verdict.hits,
        "model": verdict.model,
    });
    let notifications = steps.map(|t| {
        serde_json::json!({
            "because": t.notifications.because,
            "agents": t.notifications.agents.iter()
                .map(|(name, address)| serde_json::json!({ "name": name, "address": address }))
                .collect::<Vec<_>>(),
        })
    });
    Ok(serde_json::json!({
        "message_id": outcome.message_id,
        "duplicate": outcome.duplicate,
        "reused_message_id": outcome.reused_message_id,
        "state": outcome.state,
        "automatic": automatic,
        "loop_guard": plan.and_then(|p| p.automatic.as_ref()),
        "sender": plan.map(|p| &p.sender),
        "thread_match": outcome.thread_match,
        "would_open_ticket": outcome.opened,
        "would_reopen_ticket": outcome.reopened,
        "ticket": ticket,
        "thread": plan.map(|p| &p.thread),
        "route": route,
        "because": route.map(Route::because),
        "queue": queue,
        "priority": priority,
        "issue_type": issue_type,
        "inbound_address": inbound,
        "requester_name": crate::route::requester_name(parsed.from.as_ref()),
        "subject": crate::route::display_subject(parsed.subject.as_deref(), cfg.tickets.subject_max),
        "normalized_subject": plan.map(|p| p.probe.normalized_subject.as_str()),
        "problem": parsed.problem,
        "detector": detector,
        "status_change": steps.and_then(|t| t.status.as_ref()),
        "suspension": steps.and_then(|t| t.suspension.as_ref()),
        "sends_mail": steps.map(|t| t.sends_mail),
        "acknowledgement": steps.map(|t| &t.acknowledgement),
        "notifications": notifications,
        "monitoring": steps.and_then(|t| t.monitoring.as_ref()),
        "sla": steps.and_then(|t| t.sla.as_ref()),
        "automation": outcome.automation,
    }))
}

/// `postdesk rules test`: the automation rules for `raw` as if it joined
/// ticket `ticket` (row id) now, changing nothing. A mail from an agent's
/// address is `agent_replied`; any other is `message_added` and
/// `customer_replied`.
///
/// # Errors
///
/// When the store cannot be read, or the ticket does not exist.
pub fn rules_test(cfg: &Config, raw: &[u8], ticket: TicketId) -> anyhow::Result<serde_json::Value> {
    use crate::automation::Trigger;
    let parsed = crate::parse::parse(raw);
    let from = parsed.from.as_ref().map_or("", |m| m.address.as_str());
    let triggers: &[Trigger] = if cfg.is_agent(from) {
        &[Trigger::AgentReplied]
    } else {
        &[Trigger::MessageAdded, Trigger::CustomerReplied]
    };
    let text = crate::detect::quote::new_text(&parsed.text).into_owned();
    let message = crate::triggers::Message {
        row: crate::domain::MessageRowId(0),
        from,
        subject: parsed.subject.as_deref().unwrap_or(""),
        text: &text,
        automatic: None,
    };
    let mut store = store::Store::open(cfg.store_location())?;
    let now = Time::now();
    let cascade = store
        .dry_run(|tx| crate::triggers::dry_run(tx, cfg, ticket, triggers, Some(message), now))?
        .ok_or_else(|| anyhow::anyhow!("no ticket with row id {}", ticket.0))?;
    Ok(serde_json::json!({
        "ticket_id": ticket.0,
        "on": triggers.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "capped": cascade.capped,
        "automation": cascade.evaluations,
    }))
}

/// [`run`]'s answer as lines for a terminal: each stage, its decision
/// and the rule behind it.
pub fn text(v: &serde_json::Value) -> String {
    use std::fmt::Write;
    // Every value may come from the message: printed through `printable`.
    let text =
        |x: &serde_json::Value| crate::report::printable(x.as_str().unwrap_or("")).into_owned();
    let s = |key: &str| text(v.get(key).unwrap_or(&serde_json::Value::Null));
    let mut out = String::new();
    let _ = writeln!(out, "message    {}", s("message_id"));
    if v["duplicate"].as_bool() == Some(true) {
        let _ = writeln!(
            out,
            "duplicate  already stored (same Message-ID and content): nothing would change"
        );
        return out;
    }
    if v["reused_message_id"].as_bool() == Some(true) {
        let _ = writeln!(
            out,
            "note       another stored message has this Message-ID: kept as a new message"
        );
    }
    if v["problem"].is_string() {
        let _ = writeln!(out, "problem    {}", text(&v["problem"]));
    }
    let _ = writeln!(out, "state      {}", s("state"));
    if let Some(a) = v.get("automatic").filter(|a| !a.is_null()) {
        let _ = writeln!(
            out,
            "automatic  {} (rule {}): {}",
            a["kind"].as_str().unwrap_or(""),
            a["because"].as_str().unwrap_or(""),
            a["detail"].as_str().unwrap_or("")
        );
    }
    if let Some(thread) = v.get("thread").filter(|t| !t.is_null()) {
        let rule = text(&thread["matched"]["rule"]);
        let action = text(&thread["action"]["action"]);
        let _ = writeln!(out, "thread     {rule} -> {action}");
        for step in thread["tried"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  tried    {:<17}{}",
                text(&step["rule"]),
                text(&step["result"])
            );
        }
    }
    if let Some(route) = v.get("route").filter(|r| !r.is_null()) {
        let outcome = text(&route["outcome"]);
        let _ = writeln!(out, "route      {outcome} (rule {})", s("because"));
        if route["reason"].is_string() {
            let _ = writeln!(out, "reason     {}", text(&route["reason"]));
        }
    }
    if !v["queue"].is_null() {
        let _ = writeln!(out, "queue      {}", s("queue"));
        let _ = writeln!(out, "inbound    {}", s("inbound_address"));
        let _ = writeln!(out, "priority   {}", s("priority"));
        let _ = writeln!(out, "issue type {}", s("issue_type"));
    }
    match v.get("ticket").filter(|t| !t.is_null()) {
        Some(t) => {
            let _ = writeln!(
                out,
                "ticket     {} {} ({}, {})",
                text(&t["number"]),
                text(&t["subject"]),
                text(&t["status"]),
                text(&t["queue"])
            );
        }
        None if v["would_open_ticket"].as_bool() == Some(true) => {
            let _ = writeln!(out, "ticket     a new one");
        }
        None => {}
    }
    if v["would_reopen_ticket"].as_bool() == Some(true) {
        let _ = writeln!(out, "reopen     the ticket is closed and would be reopened");
    }
    let _ = writeln!(out, "requester  {}", s("requester_name"));
    let _ = writeln!(out, "subject    {}", s("subject"));
    explain_detector(v, &mut out);
    explain_steps(v, &mut out);
    automation_text(&v["automation"], &mut out);
    out
}

/// Automation evaluations (a JSON list of `automation::Evaluation`) as
/// lines: each rule, its event, and what it did or the condition that did
/// not hold.
pub fn automation_text(list: &serde_json::Value, out: &mut String) {
    use std::fmt::Write;
    let text =
        |x: &serde_json::Value| crate::report::printable(x.as_str().unwrap_or("")).into_owned();
    for e in list.as_array().into_iter().flatten() {
        let head = format!("rule       {} (on {})", text(&e["rule"]), text(&e["on"]));
        if e["matched"].as_bool() == Some(true) {
            let actions: Vec<String> = e["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    let detail = a
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| k.as_str() != "action")
                        .map(|(_, v)| match v.as_str() {
                            Some(s) => crate::report::printable(s).into_owned(),
                            None => crate::report::printable(&v.to_string()).into_owned(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    format!("{} {detail}", text(&a["action"]))
                        .trim_end()
                        .to_owned()
                })
                .collect();
            let did = if actions.is_empty() {
                "nothing to change".to_owned()
            } else {
                actions.join(", ")
            };
            let _ = writeln!(out, "{head}: applied: {did}");
        } else if let Some(skipped) = e["skipped"].as_str() {
            let _ = writeln!(out, "{head}: not applied: {skipped}");
        } else {
            let failed: Vec<String> = e["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["held"].as_bool() == Some(false))
                .map(|c| format!("{} ({})", text(&c["field"]), text(&c["because"])))
                .collect();
            let _ = writeln!(out, "{head}: no match: {}", failed.join(", "));
        }
    }
}

/// The plan's later steps, as lines: sender path, status change,
/// acknowledgement, notifications, monitoring.
fn explain_steps(v: &serde_json::Value, out: &mut String) {
    use std::fmt::Write;
    let text =
        |x: &serde_json::Value| crate::report::printable(x.as_str().unwrap_or("")).into_owned();
    if let Some(s) = v.get("sender").filter(|s| !s.is_null()) {
        let kind = text(&s["kind"]);
        let line = match kind.as_str() {
            "agent" => format!("an agent ({})", text(&s["name"])),
            "mail_about_mail" => format!("mail about mail (rule {})", text(&s["because"])),
            _ if s["not_authenticated"].is_string() => {
                format!("a customer: {}", text(&s["not_authenticated"]))
            }
            _ => "a customer".to_owned(),
        };
        let _ = writeln!(out, "sender     {line}");
    }
    if let Some(g) = v.get("loop_guard").filter(|g| !g.is_null()) {
        let _ = writeln!(
            out,
            "automatic  the loop guard's rule {}: {}",
            text(&g["because"]),
            text(&g["detail"])
        );
    }
    if let Some(st) = v.get("status_change").filter(|s| !s.is_null()) {
        let _ = writeln!(
            out,
            "status     {} -> {} (rule {})",
            text(&st["from"]),
            text(&st["to"]),
            text(&st["because"])
        );
    }
    if let Some(a) = v.get("acknowledgement").filter(|a| !a.is_null()) {
        let what = if a["send"].as_bool() == Some(true) {
            "sent"
        } else {
            "not sent"
        };
        let detail = a["detail"]
            .as_str()
            .map(|d| format!(": {}", crate::report::printable(d)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "ack        {what} (rule {}){detail}",
            text(&a["because"])
        );
    }
    if let Some(n) = v.get("notifications").filter(|n| !n.is_null()) {
        let names: Vec<String> = n["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| text(&a["name"]))
            .collect();
        let who = if names.is_empty() {
            "nobody".to_owned()
        } else {
            names.join(", ")
        };
        let _ = writeln!(out, "notify     {who} (rule {})", text(&n["because"]));
    }
    if let Some(m) = v.get("monitoring").filter(|m| !m.is_null()) {
        let action = match text(&m["action"]).as_str() {
            "alert" => format!(
                "alert to {}",
                m["recipients"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "digest" => "a digest item".to_owned(),
            _ => "nothing".to_owned(),
        };
        let _ = writeln!(
            out,
            "monitor    {} ({}): {action} (rule {})",
            text(&m["mailbox"]),
            text(&m["client"]),
            text(&m["because"])
        );
    }
    if let Some(s) = v.get("sla").filter(|s| !s.is_null()) {
        let st = &s["state"];
        let mut dues = Vec::new();
        for (key, name) in [
            ("first_response_due", "first response"),
            ("next_response_due", "next response"),
            ("resolution_due", "resolution"),
        ] {
            if let Some(d) = st[key].as_str() {
                dues.push(format!("{name} due {}", crate::report::printable(d)));
            }
        }
        let _ = writeln!(
            out,
            "sla        policy {} on {}: {}{}{}",
            text(&s["policy"]),
            text(&s["happened"]),
            text(&st["state"]),
            if dues.is_empty() { "" } else { "; " },
            dues.join(", ")
        );
    }
}

/// The detector's lines: scope, verdict, hits.
fn explain_detector(v: &serde_json::Value, out: &mut String) {
    use std::fmt::Write;
    let text =
        |x: &serde_json::Value| crate::report::printable(x.as_str().unwrap_or("")).into_owned();
    if let Some(d) = v.get("detector").filter(|d| !d.is_null()) {
        let scope = if d["in_scope"].as_bool() == Some(true) {
            "in scope: the message would be scanned"
        } else {
            "not in scope: the message would not be scanned"
        };
        let _ = writeln!(
            out,
            "detector   {scope} (rules {})",
            d["version"].as_str().unwrap_or("")
        );
        let hits = d["hits"].as_array().map_or(&[][..], Vec::as_slice);
        if hits.is_empty() {
            let _ = writeln!(out, "  verdict  no off-platform evidence");
        } else {
            let flagged = if d["flagged"].as_bool() == Some(true) {
                "flagged"
            } else {
                "below the flagging score"
            };
            let _ = writeln!(
                out,
                "  verdict  {} hit(s), score {}: {flagged}",
                hits.len(),
                d["score"]
            );
            for h in hits {
                let set_aside = if h["weight"].as_u64() == Some(0) {
                    ", set aside by the model"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  hit      {:<10}{:?} (rule {}{set_aside})",
                    text(&h["category"]),
                    h["text"].as_str().unwrap_or(""),
                    text(&h["rule"])
                );
            }
        }
        if let Some(m) = d.get("model").filter(|m| !m.is_null()) {
            let p = |k: &str| m[k].as_f64().unwrap_or(0.0);
            let _ = writeln!(
                out,
                "  model    evidence {:.2}; phone {:.2}, email {:.2}, address {:.2}, messaging {:.2}, payment {:.2}",
                p("flag"),
                p("phone"),
                p("email"),
                p("address"),
                p("messaging"),
                p("payment")
            );
        }
    }
}
