//! Outbound: every mail postdesk sends, from the change that causes it to
//! the smarthost.
//!
//! ```text
//!  pipeline (writer thread, batch transaction)
//!    ├─ customer message stored ─> after_customer_message: status, ack, notifications
//!    ├─ agent mail (token)       ─> crate::agent: commands, relay, command answer
//!    └─ bounce (RFC 3464)        ─> crate::agent::intercept: event, suppression, notice
//!         │  queue(): compose (template + mail-builder, Message-ID, X-Loop)
//!         └─> outbox rows + outbound `messages` row, same transaction
//!  outbox worker (tokio task): claim ─> sign (DKIM) ─> smarthost or Maildir ─> mark
//! ```
//!
//! - [`settings`]: `[outbound]`, `[teams]`, templates, as typed config.
//! - [`templates`]: minijinja templates with `file:line` checks.
//! - [`compose`]: a [`compose::Draft`] into RFC 5322 bytes.
//! - [`dkim`]: signing with mail-auth 0.13.
//! - [`smarthost`]: mail-send to the relay, or the Maildir fallback.
//! - [`outbox`]: the delivery worker (claim, send, mark, retry, backoff).
//! - [`bounce`]: DSN parsing.
//! - [`report`]: `postdesk outbox` and the template lines of `check`.
//!
//! Promise: a mail is queued in the transaction of the change that causes
//! it (nothing here runs outside the caller's transaction), and a failure
//! to compose one mail is logged and recorded on the ticket, never a reason
//! to refuse the customer's message.

pub mod bounce;
pub mod compose;
pub mod dkim;
pub mod outbox;
pub mod report;
pub mod settings;
pub mod smarthost;
pub mod templates;

pub use settings::Settings;

use minijinja::Value;

use crate::config::Config;
use crate::guard::{self, AutoReply};
use crate::ids::{MessageRowId, TicketId};
use crate::parse::ParsedMessage;
use crate::spool::{Envelope, Source};
use crate::store::{self, Conversation, Enqueue, NewEvent, NewOutbound, Tx};
use crate::thread::{self, ThreadMatch};
use compose::{Address, AutoSubmitted, Draft};
use templates::Vars;

/// The line above which agents type: the quote stripper cuts a reply here,
/// so the notification an agent answers is never relayed.
pub const REPLY_SEPARATOR: &str = "-- reply above this line --";

/// One mail to queue.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Outbox kind (`ack`, `notification`, `relay`, ...).
    pub kind: &'static str,
    /// `messages.kind` of its stored copy: `system`, `agent` or `note`.
    pub message_kind: &'static str,
    /// The ticket it is about.
    pub ticket: Option<TicketId>,
    /// The composed-to-be mail.
    pub draft: Draft,
    /// Envelope recipients, one outbox row each.
    pub rcpts: Vec<String>,
    /// Envelope sender; empty for `<>`.
    pub mail_from: String,
    /// Rate-limited and loop-protected.
    pub is_automatic: bool,
}

/// Compose `mail` and queue it: an outbound `messages` row (when it is
/// about a ticket) and one outbox row per recipient. Returns the stored
/// row. A mail that cannot be composed is logged and skipped.
///
/// # Errors
///
/// [`store::Error`] from the inserts.
pub fn queue(tx: &Tx<'_>, mail: &Mail, now: i64) -> Result<Option<MessageRowId>, store::Error> {
    if mail.rcpts.is_empty() {
        return Ok(None);
    }
    let raw = match compose::build(&mail.draft) {
        Ok(raw) => raw,
        Err(e) => {
            crate::logging::log_error("composing a mail failed", &e);
            return Ok(None);
        }
    };
    let row = match mail.ticket {
        Some(ticket) => {
            let to: Vec<String> = mail.draft.to.iter().map(|a| a.address.clone()).collect();
            let cc: Vec<String> = mail.draft.cc.iter().map(|a| a.address.clone()).collect();
            Some(tx.insert_outbound_message(&NewOutbound {
                ticket: Some(ticket),
                message_id: &mail.draft.message_id,
                kind: mail.message_kind,
                from_addr: &mail.draft.from.address,
                from_name: mail.draft.from.name.as_deref().unwrap_or(""),
                to: &to,
                cc: &cc,
                subject: &templates::header_value(&mail.draft.subject),
                text: &mail.draft.body,
                in_reply_to: mail.draft.in_reply_to.as_deref(),
                references: &mail.draft.references,
                raw: &raw,
                attachments: &mail.draft.attachments,
                now,
            })?)
        }
        None => None,
    };
    let subject = templates::header_value(&mail.draft.subject);
    for rcpt in &mail.rcpts {
        tx.enqueue(&Enqueue {
            ticket: mail.ticket,
            message_row: row,
            kind: mail.kind,
            is_automatic: mail.is_automatic,
            message_id: &mail.draft.message_id,
            mail_from: &mail.mail_from,
            rcpt_to: rcpt,
            subject: &subject,
            raw: &raw,
            now_ms: now.saturating_mul(1000),
        })?;
    }
    tracing::debug!(kind = mail.kind, rcpts = mail.rcpts.len(), message_id = %mail.draft.message_id, "mail queued");
    Ok(row)
}

/// Record an event on `ticket`.
///
/// # Errors
///
/// [`store::Error`].
pub fn event(
    tx: &Tx<'_>,
    ticket: Option<TicketId>,
    message: Option<MessageRowId>,
    kind: &str,
    cause: &str,
    detail: &serde_json::Value,
    now: i64,
) -> Result<(), store::Error> {
    tx.record_event(&NewEvent {
        ticket,
        message,
        kind,
        cause,
        detail: &detail.to_string(),
        now,
    })
}

/// `support` → `Support`, `mary_ann` → `Mary Ann`.
pub fn display_name(name: &str) -> String {
    name.split(['_', '.', '-', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The address postdesk writes from for `conv`: the address the ticket came
/// in through when it is one of ours, else the first support address, else
/// the alert sender.
pub fn our_address(cfg: &Config, conv: &Conversation) -> String {
    if !conv.inbound_address.is_empty() && cfg.is_own_address(&conv.inbound_address) {
        return conv.inbound_address.clone();
    }
    cfg.addresses
        .support
        .first()
        .cloned()
        .unwrap_or_else(|| cfg.monitoring.from.clone())
}

/// The signed reply address of `conv`'s ticket, if a token secret is set.
pub fn token_address(cfg: &Config, conv: &Conversation) -> Option<String> {
    let secret = cfg.threading.token_secret.as_ref()?;
    Some(crate::token::reply_address(
        secret,
        conv.id,
        &our_address(cfg, conv),
    ))
}

/// Every template variable, empty, so a template that uses one that does
/// not apply renders it as nothing instead of failing.
pub fn empty_vars() -> Vars {
    let mut v = templates::sample();
    for value in v.values_mut() {
        *value = if value.len().is_some() && value.as_str().is_none() {
            Value::from(Vec::<Value>::new())
        } else {
            Value::from("")
        };
    }
    v.insert("reply_separator", Value::from(REPLY_SEPARATOR));
    v
}

/// The template variables of a ticket.
pub fn ticket_vars(cfg: &Config, conv: &Conversation) -> Vars {
    let mut v = empty_vars();
    let s = |x: &str| Value::from(x.to_owned());
    v.insert("customer_name", s(&conv.requester_name));
    v.insert("customer_email", s(&conv.requester));
    v.insert("ticket_number", s(&cfg.tickets.format_number(conv.number)));
    v.insert("ticket_tag", s(&cfg.tickets.format_tag(conv.number)));
    v.insert("subject", s(&conv.subject));
    v.insert("queue", s(&conv.queue));
    v.insert("queue_name", s(&display_name(&conv.queue)));
    v.insert("priority", s(&conv.priority));
    v.insert("status", s(&conv.status));
    v.insert("issue_type", s(&conv.issue_type));
    v.insert("support_address", s(&our_address(cfg, conv)));
    v
}

/// The agents to notify about `conv`: its assignee, else its queue's team
/// (`[teams]`), else every agent. `(name, address)`.
pub fn agents_for(cfg: &Config, conv: &Conversation) -> Vec<(String, String)> {
    let find = |name: &str| {
        cfg.agents
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| (a.name.clone(), a.address.clone()))
    };
    if !conv.assignee.is_empty()
        && let Some(a) = find(&conv.assignee)
    {
        return vec![a];
    }
    if let Some(team) = cfg.outbound.teams.get(&conv.queue.to_ascii_lowercase()) {
        return team.iter().filter_map(|n| find(n)).collect();
    }
    cfg.agents
        .iter()
        .map(|a| (a.name.clone(), a.address.clone()))
        .collect()
}

/// Render template `name`, or log and record why not (`None`).
fn render(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: Option<TicketId>,
    name: &str,
    vars: &Vars,
    now: i64,
) -> Result<Option<templates::Rendered>, store::Error> {
    match cfg.outbound.templates.render(name, vars) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            crate::logging::log_error("template failed, mail not sent", &e);
            event(
                tx,
                ticket,
                None,
                "mail_not_composed",
                name,
                &serde_json::json!({ "error": e.to_string() }),
                now,
            )?;
            Ok(None)
        }
    }
}

/// What follows a customer message stored on `ticket` (row `row`): the
/// status goes back to `Open`, a spoofed agent is noted, the new ticket is
/// acknowledged (unless the loop guard says no) and the agents are told.
///
/// # Errors
///
/// [`store::Error`].
#[allow(clippy::too_many_arguments)] // one call site, in the pipeline
pub fn after_customer_message(
    tx: &Tx<'_>,
    cfg: &Config,
    env: &Envelope,
    parsed: &ParsedMessage,
    decision: &thread::Decision,
    ticket: TicketId,
    row: MessageRowId,
    opened: bool,
    now: i64,
) -> Result<(), store::Error> {
    let Some(mut conv) = tx.conversation(ticket)? else {
        return Ok(());
    };
    let sender = parsed
        .from
        .as_ref()
        .map(|m| m.address.as_str())
        .unwrap_or("");

    // A customer's reply puts a ticket waiting on them back in the queue.
    if !opened && !thread::is_closed(&conv.status) && !conv.status.eq_ignore_ascii_case("Open") {
        tx.set_ticket_status(ticket, "Open", false, now)?;
        event(
            tx,
            Some(ticket),
            Some(row),
            "status_changed",
            "customer_reply",
            &serde_json::json!({ "from": conv.status, "to": "Open" }),
            now,
        )?;
        conv.status = "Open".into();
    }

    // An agent's address without a verified token is a customer here.
    if !sender.is_empty() && cfg.is_agent(sender) {
        let why = match &decision.matched {
            ThreadMatch::Token { .. } => "the token is for another ticket".to_owned(),
            _ => decision
                .tried
                .iter()
                .find(|s| s.rule == "token")
                .map(|s| s.result.clone())
                .unwrap_or_else(|| "no signed reply token".to_owned()),
        };
        event(
            tx,
            Some(ticket),
            Some(row),
            "agent_not_authenticated",
            "no_valid_token",
            &serde_json::json!({
                "from": sender,
                "why": format!(
                    "handled as a customer message: an agent action needs the ticket's signed \
                     reply address ({why})"
                ),
            }),
            now,
        )?;
    }

    let sends_mail = env.source != Source::Ingest || cfg.outbound.ingest_sends_mail;
    // A client suspended from this queue (bypass detector): stored and
    // threaded as always; the notice instead of an acknowledgement, and
    // the agents' notification says so.
    let suspension = if sender.is_empty() {
        None
    } else {
        tx.active_suspension(sender, &conv.queue)?
    };
    let suspended_line = match &suspension {
        Some(s) => Some(crate::compliance::suspended_mail(
            tx,
            cfg,
            s,
            &conv,
            row,
            sender,
            parsed.message_id.as_deref(),
            guard::is_automatic(cfg, env, parsed),
            sends_mail,
            now,
        )?),
        None => None,
    };

    if !sends_mail {
        return Ok(());
    }

    if suspension.is_none()
        && opened
        && !sender.is_empty()
        && cfg
            .outbound
            .acknowledges(&conv.queue, &conv.inbound_address)
    {
        let auto = guard::is_automatic(cfg, env, parsed);
        if may_auto_reply(
            tx,
            cfg,
            ticket,
            Some(row),
            sender,
            auto,
            "acknowledgement",
            now,
        )? {
            let vars = ticket_vars(cfg, &conv);
            let mut refs = parsed.references.clone();
            refs.extend(parsed.message_id.iter().cloned());
            let reply = AutoReplyMail {
                kind: "ack",
                template: "acknowledgement",
                to: sender,
                in_reply_to: parsed.message_id.clone(),
                references: refs,
            };
            auto_reply(tx, cfg, &conv, &reply, &vars, now)?;
        }
    }

    notify_agents(tx, cfg, &conv, parsed, sender, suspended_line, now)
}

/// Whether an automatic mail (`mail`, for the record) may go to `to`: the
/// message that causes it is not itself automatic (`auto`, from
/// [`guard::is_automatic`]), the address is not suppressed and the hourly cap
/// is not reached. When not, an `auto_reply_suppressed` event says why.
///
/// # Errors
///
/// [`store::Error`].
#[allow(clippy::too_many_arguments)] // the event's fields, all distinct
pub fn may_auto_reply(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: TicketId,
    row: Option<MessageRowId>,
    to: &str,
    auto: Option<guard::Automatic>,
    mail: &str,
    now: i64,
) -> Result<bool, store::Error> {
    // The pure check first: the store is asked only for a person.
    let decision = match auto {
        Some(a) => AutoReply::Suppressed {
            because: a.because,
            detail: a.detail,
        },
        None => guard::limit(
            cfg,
            tx.automatic_mails_since(to, now - 3600)?,
            tx.suppression(to, now)?.as_deref(),
        ),
    };
    match decision {
        AutoReply::Send => Ok(true),
        AutoReply::Suppressed { because, detail } => {
            tracing::info!(
                ticket = ticket.0,
                because,
                mail,
                "automatic reply suppressed"
            );
            event(
                tx,
                Some(ticket),
                row,
                "auto_reply_suppressed",
                because,
                &serde_json::json!({ "to": to, "detail": detail, "mail": mail }),
                now,
            )?;
            Ok(false)
        }
    }
}

/// An automatic reply to a customer, in their ticket's thread.
#[derive(Debug, Clone)]
pub struct AutoReplyMail<'a> {
    /// Outbox kind (`ack`, `warning`, `suspension`).
    pub kind: &'static str,
    /// The template.
    pub template: &'a str,
    /// The customer.
    pub to: &'a str,
    /// The Message-ID it answers.
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first (the answered one last).
    pub references: Vec<String>,
}

/// Queue `reply` on `conv` from the ticket's address, with `Auto-Submitted:
/// auto-replied` and the null envelope sender; returns its stored row.
///
/// # Errors
///
/// [`store::Error`].
pub fn auto_reply(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    reply: &AutoReplyMail<'_>,
    vars: &Vars,
    now: i64,
) -> Result<Option<MessageRowId>, store::Error> {
    let Some(r) = render(tx, cfg, Some(conv.id), reply.template, vars, now)? else {
        return Ok(None);
    };
    let from = our_address(cfg, conv);
    let mail = Mail {
        kind: reply.kind,
        message_kind: "system",
        ticket: Some(conv.id),
        draft: Draft {
            from: Address::named(&display_name(&conv.queue), &from),
            to: vec![Address::named(&conv.requester_name, reply.to)],
            cc: Vec::new(),
            reply_to: None,
            subject: r.subject,
            body: r.body,
            in_reply_to: reply.in_reply_to.clone(),
            references: compose::trim_references(reply.references.clone()),
            auto_submitted: AutoSubmitted::AutoReplied,
            attachments: Vec::new(),
            x_loop: cfg.outbound.x_loop.clone(),
            date: now,
            message_id: compose::message_id(&cfg.server.hostname),
        },
        rcpts: vec![reply.to.to_owned()],
        // RFC 3834 §3.3: an automatic response goes out with the null
        // reverse-path, so a failure of it cannot start a loop.
        mail_from: String::new(),
        is_automatic: true,
    };
    queue(tx, &mail, now)
}

/// Queue the notification of a customer message to the ticket's agents.
fn notify_agents(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    parsed: &ParsedMessage,
    sender: &str,
    suspended: Option<String>,
    now: i64,
) -> Result<(), store::Error> {
    let agents: Vec<(String, String)> = agents_for(cfg, conv)
        .into_iter()
        .filter(|(_, a)| !a.eq_ignore_ascii_case(sender))
        .collect();
    if agents.is_empty() {
        return Ok(());
    }
    let mut vars = ticket_vars(cfg, conv);
    let customer = parsed
        .from
        .as_ref()
        .map(|m| crate::route::requester_name(Some(m)))
        .unwrap_or_else(|| conv.requester_name.clone());
    vars.insert("customer_name", Value::from(customer.clone()));
    vars.insert("customer_email", Value::from(sender.to_owned()));
    let text = crate::detect::quote::new_text(&parsed.text).into_owned();
    vars.insert(
        "message_text",
        Value::from(compose::notification_text(
            &text,
            compose::NOTIFICATION_TEXT_MAX,
        )),
    );
    if let Some(line) = suspended {
        vars.insert("client_suspended", Value::from(line));
    }
    if let [(name, address)] = agents.as_slice() {
        vars.insert("agent_name", Value::from(display_name(name)));
        vars.insert("agent_email", Value::from(address.clone()));
    }
    let Some(r) = render(tx, cfg, Some(conv.id), "notification", &vars, now)? else {
        return Ok(());
    };
    let from = our_address(cfg, conv);
    let reply_to = token_address(cfg, conv);
    let mut refs = parsed.references.clone();
    refs.extend(parsed.message_id.iter().cloned());
    let mail = Mail {
        kind: "notification",
        message_kind: "system",
        ticket: Some(conv.id),
        draft: Draft {
            from: Address::named(
                &format!("{customer} via {}", display_name(&conv.queue)),
                &from,
            ),
            to: agents
                .iter()
                .map(|(n, a)| Address::named(&display_name(n), a))
                .collect(),
            cc: Vec::new(),
            reply_to: Some(Address::bare(reply_to.as_deref().unwrap_or(&from))),
            subject: r.subject,
            body: r.body,
            in_reply_to: parsed.message_id.clone(),
            references: compose::trim_references(refs),
            auto_submitted: AutoSubmitted::AutoGenerated,
            attachments: Vec::new(),
            x_loop: cfg.outbound.x_loop.clone(),
            date: now,
            message_id: compose::message_id(&cfg.server.hostname),
        },
        rcpts: agents.iter().map(|(_, a)| a.clone()).collect(),
        // Bounces come back to the token address and so to this ticket.
        mail_from: reply_to.unwrap_or(from),
        is_automatic: false,
    };
    queue(tx, &mail, now)?;
    Ok(())
}

/// What failed for good: a delivery the relay refused (5xx), a delivery
/// given up after its attempts, or a bounce that came back later.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// The ticket of the failed mail.
    pub ticket: Option<TicketId>,
    /// The outbox kind of the failed mail (empty if unknown).
    pub kind: &'a str,
    /// The recipient.
    pub address: &'a str,
    /// Enhanced status (`5.1.1`), empty if none.
    pub status: &'a str,
    /// The remote reply or the error.
    pub diagnostic: &'a str,
    /// Whether it is about the address (suppress further mail to it).
    pub is_recipient_failure: bool,
    /// Whether to alert the admins.
    pub alert_admins: bool,
    /// Where it was learned: `smarthost`, `retries` or `bounce`.
    pub source: &'a str,
}

/// Record a permanent failure: an event on the ticket, the address
/// suppressed (when the failure is about it), the ticket's agents told
/// (when the mail was for a customer) and the admins alerted. Mail about a
/// failure is never sent about the failure of such mail, so a broken
/// address cannot start a loop.
///
/// # Errors
///
/// [`store::Error`].
pub fn permanent_failure(
    tx: &Tx<'_>,
    cfg: &Config,
    f: &Failure<'_>,
    now: i64,
) -> Result<(), store::Error> {
    let suppressed_until = now
        .saturating_add(i64::try_from(cfg.outbound.suppress_for.as_secs()).unwrap_or(i64::MAX / 2));
    let is_agent_or_admin = cfg.is_agent(f.address)
        || cfg
            .monitoring
            .admins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(f.address));
    let suppress = f.is_recipient_failure && !is_agent_or_admin;
    if suppress {
        tx.suppress(
            f.address,
            suppressed_until,
            format!("{} {}", f.status, f.diagnostic).trim(),
            f.ticket,
            now,
        )?;
    }
    tracing::warn!(
        to = f.address,
        status = f.status,
        source = f.source,
        kind = f.kind,
        "delivery failed permanently"
    );
    event(
        tx,
        f.ticket,
        None,
        "delivery_failed",
        f.source,
        &serde_json::json!({
            "to": f.address,
            "mail": f.kind,
            "status": f.status,
            "diagnostic": f.diagnostic,
            "suppressed_until": suppress.then_some(suppressed_until),
        }),
        now,
    )?;
    let about_failure_mail = matches!(
        f.kind,
        "alert" | "bounce_notice" | "notification" | "digest"
    );
    if about_failure_mail {
        return Ok(());
    }
    let conv = match f.ticket {
        Some(t) => tx.conversation(t)?,
        None => None,
    };
    let mut vars = match &conv {
        Some(c) => ticket_vars(cfg, c),
        None => empty_vars(),
    };
    vars.insert("failed_address", Value::from(f.address.to_owned()));
    vars.insert("status_code", Value::from(f.status.to_owned()));
    vars.insert("diagnostic", Value::from(f.diagnostic.to_owned()));

    if let Some(conv) = &conv
        && !is_agent_or_admin
    {
        let agents: Vec<(String, String)> = agents_for(cfg, conv)
            .into_iter()
            .filter(|(_, a)| !a.eq_ignore_ascii_case(f.address))
            .collect();
        if !agents.is_empty() {
            let mut v = vars.clone();
            if let [(name, address)] = agents.as_slice() {
                v.insert("agent_name", Value::from(display_name(name)));
                v.insert("agent_email", Value::from(address.clone()));
            }
            if let Some(r) = render(tx, cfg, Some(conv.id), "bounce_notice", &v, now)? {
                let from = our_address(cfg, conv);
                let mail = Mail {
                    kind: "bounce_notice",
                    message_kind: "system",
                    ticket: Some(conv.id),
                    draft: Draft {
                        from: Address::named("postdesk", &from),
                        to: agents
                            .iter()
                            .map(|(n, a)| Address::named(&display_name(n), a))
                            .collect(),
                        cc: Vec::new(),
                        reply_to: token_address(cfg, conv).map(|a| Address::bare(&a)),
                        subject: r.subject,
                        body: r.body,
                        in_reply_to: None,
                        references: Vec::new(),
                        auto_submitted: AutoSubmitted::AutoGenerated,
                        attachments: Vec::new(),
                        x_loop: cfg.outbound.x_loop.clone(),
                        date: now,
                        message_id: compose::message_id(&cfg.server.hostname),
                    },
                    rcpts: agents.iter().map(|(_, a)| a.clone()).collect(),
                    mail_from: String::new(),
                    is_automatic: false,
                };
                queue(tx, &mail, now)?;
            }
        }
    }

    if f.alert_admins {
        vars.insert("alert_title", Value::from("Delivery failed"));
        vars.insert(
            "alert_text",
            Value::from(format!(
                "A {} mail to {} could not be delivered ({}).",
                if f.kind.is_empty() {
                    "postdesk"
                } else {
                    f.kind
                },
                f.address,
                f.source
            )),
        );
        alert(tx, cfg, f.ticket, &vars, now)?;
    }
    Ok(())
}

/// Queue an alert (template `alert`) to `[monitoring] admins`.
///
/// # Errors
///
/// [`store::Error`].
pub fn alert(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: Option<TicketId>,
    vars: &Vars,
    now: i64,
) -> Result<(), store::Error> {
    let admins = &cfg.monitoring.admins;
    if admins.is_empty() {
        tracing::warn!("no [monitoring] admins to alert");
        return Ok(());
    }
    alert_to(tx, cfg, ticket, vars, admins, None, now).map(|_| ())
}

/// Queue an alert (template `alert`) to `rcpts`, with `reply_to` (a
/// ticket's signed address, so an agent among them can act by replying).
/// Returns whether one was queued.
///
/// # Errors
///
/// [`store::Error`].
pub fn alert_to(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: Option<TicketId>,
    vars: &Vars,
    rcpts: &[String],
    reply_to: Option<String>,
    now: i64,
) -> Result<bool, store::Error> {
    if rcpts.is_empty() {
        return Ok(false);
    }
    let Some(r) = render(tx, cfg, ticket, "alert", vars, now)? else {
        return Ok(false);
    };
    let mail = Mail {
        kind: "alert",
        message_kind: "system",
        // Alerts are about a ticket but not part of its conversation: no
        // `messages` row, only the outbox row and the ticket's event.
        ticket: None,
        draft: Draft {
            from: Address::named("postdesk", &cfg.monitoring.from),
            to: rcpts.iter().map(|a| Address::bare(a)).collect(),
            cc: Vec::new(),
            reply_to: reply_to.map(|a| Address::bare(&a)),
            subject: r.subject,
            body: r.body,
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: AutoSubmitted::AutoGenerated,
            attachments: Vec::new(),
            x_loop: cfg.outbound.x_loop.clone(),
            date: now,
            message_id: compose::message_id(&cfg.server.hostname),
        },
        rcpts: rcpts.to_vec(),
        mail_from: String::new(),
        is_automatic: false,
    };
    queue(tx, &mail, now)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_capitalised_words() {
        assert_eq!(display_name("support"), "Support");
        assert_eq!(display_name("mary_ann"), "Mary Ann");
        assert_eq!(display_name("j.doe-smith"), "J Doe Smith");
    }

    #[test]
    fn empty_vars_define_every_variable_as_nothing() {
        let v = empty_vars();
        assert_eq!(v.len(), templates::sample().len());
        assert_eq!(v["customer_name"].as_str(), Some(""));
        assert_eq!(v["errors"].len(), Some(0));
        assert_eq!(v["reply_separator"].as_str(), Some(REPLY_SEPARATOR));
        for name in templates::NAMES {
            templates::Templates::builtin()
                .render(name, &v)
                .expect(name);
        }
    }
}
