//! Relaying an agent's reply to the customer.
//!
//! The reply (canned responses expanded, attachments kept) goes to the
//! requester and the Cc participants, each once, none that is staff,
//! postdesk or suppressed, from `Agent via Queue <support@…>`, threaded
//! under the customer's latest message. Bounces come back to the ticket's
//! bounce address.

use minijinja::Value;

use crate::command::{self, Script};
use crate::config::Agent;
use crate::domain::{MessageRowId, Time};
use crate::outbound::compose::{self, Address, AutoSubmitted, Draft};
use crate::outbound::templates::{Rendered, Vars};
use crate::outbound::{self, Config, Mail, display_name};
use crate::store::{self, Conversation, Tx};

use super::Context;

/// Relay the agent's reply to the requester and the Cc participants.
pub(super) fn relay(
    tx: &Tx<'_>,
    cx: &Context<'_, '_>,
    agent: &Agent,
    conv: &Conversation,
    script: &Script,
    row: MessageRowId,
) -> Result<(), store::Error> {
    let cfg = cx.cfg;
    let now = cx.now;
    let mut conv = conv.clone();
    tx.load_thread(&mut conv)?;
    let conv = &conv;
    let vars = reply_vars(cfg, agent, conv, script);
    let (to, cc) = recipients(tx, cfg, conv, row, now)?;
    if to.is_empty() && cc.is_empty() {
        tx.event(
            Some(conv.id),
            Some(row),
            "relay_skipped",
            "no_recipient",
            &serde_json::json!({ "why": "the ticket has no customer address to send to" }),
            now,
        )?;
        return Ok(());
    }
    let Some(r) = outbound::render(tx, cfg, Some(conv.id), "agent_reply", &vars, now)? else {
        return Ok(());
    };
    let mail = reply_mail(cx, agent, conv, r, to, cc);
    let sent = outbound::queue(tx, &mail, now)?;
    tx.event(
        Some(conv.id),
        Some(row),
        "agent_replied",
        &format!("agent:{}", agent.name),
        &serde_json::json!({
            "to": mail.rcpts,
            "message_id": mail.draft.message_id,
            "stored_as": sent,
            "attachments": mail.draft.attachments.len(),
        }),
        now,
    )?;
    Ok(())
}

/// The template variables of the reply: the ticket's, the agent's, and the
/// agent's text with its canned responses expanded.
fn reply_vars(cfg: &Config, agent: &Agent, conv: &Conversation, script: &Script) -> Vars {
    let mut vars = outbound::ticket_vars(cfg, conv);
    vars.insert("agent_name", Value::from(display_name(&agent.name)));
    vars.insert("agent_email", Value::from(agent.address.clone()));
    let body = command::expand_canned(&script.body, |name| {
        cfg.outbound
            .templates
            .render_canned(name, &vars)
            .map_err(|e| crate::logging::log_error("canned response failed", &e))
            .ok()
    });
    vars.insert("agent_signed", Value::from(ends_with_signature(&body)));
    vars.insert("message_text", Value::from(body));
    vars
}

/// The reply's `To` and `Cc`: the requester, then the Cc participants who
/// are neither staff nor postdesk, each once, none that is suppressed (an
/// event each that is).
fn recipients(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    row: MessageRowId,
    now: Time,
) -> Result<(Vec<Address>, Vec<Address>), store::Error> {
    let mut to: Vec<Address> = Vec::new();
    let mut cc: Vec<Address> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut candidates = Vec::new();
    if !conv.requester.is_empty() {
        candidates.push((conv.requester.clone(), conv.requester_name.clone(), true));
    }
    for (address, name) in tx.cc_participants(conv.id)? {
        candidates.push((address, name, false));
    }
    for (address, name, is_requester) in candidates {
        let a = address.to_ascii_lowercase();
        if seen.contains(&a) || cfg.is_agent(&a) || cfg.is_own_address(&a) {
            continue;
        }
        seen.push(a.clone());
        if let Some(reason) = tx.suppression(&a, now)? {
            tx.event(
                Some(conv.id),
                Some(row),
                "mail_suppressed",
                "suppressed",
                &serde_json::json!({ "to": a, "reason": reason, "mail": "relay" }),
                now,
            )?;
            continue;
        }
        let addr = Address::named(&name, &a);
        if is_requester {
            to.push(addr);
        } else {
            cc.push(addr);
        }
    }
    Ok((to, cc))
}

/// The reply as mail: from the agent via the queue, threaded under the
/// customer's latest message, with the agent's attachments.
fn reply_mail(
    cx: &Context<'_, '_>,
    agent: &Agent,
    conv: &Conversation,
    r: Rendered,
    to: Vec<Address>,
    cc: Vec<Address>,
) -> Mail {
    let cfg = cx.cfg;
    let now = cx.now;
    let from = outbound::our_address(cfg, conv);
    let mut refs = conv.last_customer_refs.clone();
    refs.extend(conv.sent_to_customer.iter().cloned());
    refs.extend(conv.last_customer_message.iter().cloned());
    let rcpts: Vec<String> = to.iter().chain(&cc).map(|a| a.address.clone()).collect();
    Mail {
        kind: "relay",
        message_kind: "agent",
        ticket: Some(conv.id),
        draft: Draft {
            cc,
            // Off by default: the customer's Reply goes to `from` and
            // threads by In-Reply-To.
            reply_to: outbound::customer_reply_address(cfg, conv).map(|a| Address::bare(&a)),
            in_reply_to: conv.last_customer_message.clone(),
            references: compose::trim_references(refs),
            // Decoded again from the agent's mail, the one copy of them.
            attachments: crate::parse::attachments(cx.base.raw),
            ..outbound::draft(
                cfg,
                Address::named(
                    &format!(
                        "{} via {}",
                        display_name(&agent.name),
                        display_name(&conv.queue)
                    ),
                    &from,
                ),
                to,
                r.subject,
                r.body,
                AutoSubmitted::No,
                now,
            )
        },
        rcpts,
        // Bounces come back to the bounce address and so to this ticket;
        // it is all the customers see of postdesk's signed addresses, and
        // it grants nothing.
        mail_from: outbound::bounce_sender(cfg, conv),
        is_automatic: false,
    }
}

/// Whether `text` ends with a signature block: a line `-- ` (or `--`)
/// followed by at most eight lines, the usenet convention mail clients
/// follow. Then the template's own signature is left out.
pub fn ends_with_signature(text: &str) -> bool {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines
        .iter()
        .rposition(|l| l.trim_end() == "--")
        .is_some_and(|at| at + 1 < lines.len() && lines.len() - at - 1 <= 8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_trailing_dash_dash_block_is_a_signature() {
        assert!(super::ends_with_signature(
            "Hello.\n\n-- \nBob\nAcme support\n"
        ));
        assert!(super::ends_with_signature("Hello.\n--\nBob"));
        assert!(!super::ends_with_signature("Hello.\n\nBob\n"));
        assert!(!super::ends_with_signature("Hello.\n-- \n"));
        assert!(!super::ends_with_signature("a -- b\nc"));
        let long = format!("Hi\n-- \n{}", "line\n".repeat(9));
        assert!(!super::ends_with_signature(&long));
    }
}
