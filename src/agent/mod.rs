//! Agent actions and bounces: the messages that are not a customer's.
//!
//! Runs in the pipeline, after threading and before routing, inside the
//! writer's transaction. [`intercept`] takes a message away from the
//! customer path when it is
//!
//! - mail that machines send about mail ([`crate::parse::classify`]: a
//!   bounce, a feedback report, an automatic reply, a list notice):
//!   recorded on the ticket of the mail it is about (found by the original
//!   Message-ID, or by the thread rule that matched: the signed token the
//!   bounce was sent back to, In-Reply-To, References), never a new
//!   ticket, unticketed and flagged when none matches; a DSN's permanent
//!   failure, or a feedback report about mail postdesk sent to the
//!   complainer, suppresses the address and tells the ticket's agents (see
//!   [`crate::outbound::permanent_failure`]); a client's monitored mailbox
//!   keeps all but DSNs as its own correspondence;
//! - an agent action: the sender is an `[agents]` address *and* the mail
//!   came to the ticket's signed reply address (thread rule `token`, whose
//!   HMAC verified). Anything else from an agent's address (no token, a
//!   forged one, a spoofed `From:`) stays a customer message, and the
//!   pipeline records why (`agent_not_authenticated`): spoofing an agent
//!   gains nothing.
//!
//! An agent action: the quoted text is stripped (after decoding, by
//! [`crate::detect::quote`]; never to nothing), the `#commands` at the top
//! are parsed ([`crate::command`]); with any problem nothing runs, nothing
//! is relayed and the agent gets an answer saying what was wrong. Otherwise
//! the reply (canned responses expanded, attachments kept) is relayed to
//! the requester and Cc participants from `Agent via Queue <support@…>`,
//! threaded under the customer's latest message; then each command runs,
//! each one an event. `#note` makes the whole mail an internal note that is
//! stored and never relayed. An automatic mail from an agent (a vacation
//! reply to a notification) is stored as a note and never relayed.

use minijinja::Value;

use crate::command::{self, Command, Known, Script};
use serde::Serialize;

use crate::config::Agent;
use crate::domain::Envelope;
use crate::domain::{MessageRowId, TicketId};
use crate::guard::{self, AutoReply};
use crate::outbound::Config;
use crate::outbound::compose::{self, Address, AutoSubmitted, Draft};
use crate::outbound::{self, Failure, Mail, display_name};
use crate::parse::ParsedMessage;
use crate::parse::classify::{Class, Feedback, Kind};
use crate::parse::dsn::Dsn;
use crate::store::{self, Conversation, NewMessage, TicketField, Tx};
use crate::thread::{self, Action, Probe, ThreadMatch};

/// What [`intercept`] needs from the pipeline.
pub struct Context<'a, 'b> {
    /// The configuration snapshot.
    pub cfg: &'a Config,
    /// The envelope.
    pub env: &'a Envelope,
    /// The parsed message.
    pub parsed: &'a ParsedMessage,
    /// What threading was given.
    pub probe: &'a Probe,
    /// The thread decision.
    pub decision: &'a thread::Decision,
    /// The message row the pipeline would store, to adjust.
    pub base: &'a NewMessage<'b>,
    /// Whether another stored message has this Message-ID.
    pub reused: bool,
    /// What [`crate::parse::classify::classify`] made of it: mail about mail, or `None`.
    pub class: Option<&'a Class>,
    /// Now, Unix seconds.
    pub now: i64,
}

/// What the agent or mail-about-mail path stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The stored row.
    pub message: MessageRowId,
    /// The ticket it was stored on, if any.
    pub ticket: Option<TicketId>,
    /// How it joined the ticket (the thread rule, or the report's).
    pub thread_match: &'static str,
    /// Stored state (`agent_reply`, `note`, `bounce`, ...).
    pub state: &'static str,
}

impl Context<'_, '_> {
    fn outcome(
        &self,
        message: MessageRowId,
        ticket: Option<TicketId>,
        thread_match: &'static str,
        state: &'static str,
    ) -> Outcome {
        Outcome {
            message,
            ticket,
            thread_match,
            state,
        }
    }
}

/// Who a message is from, as far as the pipeline's paths go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sender {
    /// Mail that machines sent about mail (a bounce, a feedback report, an
    /// automatic reply): recorded on the ticket it is about, nothing more.
    MailAboutMail {
        /// What it is (`dsn`, `arf`, `auto_reply`, ...).
        class: &'static str,
        /// The rule that recognised it.
        because: &'static str,
    },
    /// An agent, authenticated by the agent address made for them on the
    /// ticket: their reply or commands.
    Agent {
        /// The agent's name.
        name: String,
        /// The ticket the address names (after merges).
        ticket: TicketId,
    },
    /// A customer (anyone else).
    Customer {
        /// When the mail came from an agent's address or went to an agent
        /// address but did not authenticate: why not.
        #[serde(skip_serializing_if = "Option::is_none")]
        not_authenticated: Option<String>,
    },
}

/// Decide which path a message takes (pure): mail about mail, an
/// authenticated agent, or a customer.
pub fn sender(
    cfg: &Config,
    probe: &Probe,
    decision: &thread::Decision,
    parsed: &ParsedMessage,
    class: Option<&Class>,
) -> Sender {
    let from = parsed.from.as_ref().map_or("", |m| m.address.as_str());
    if let Some(class) = class {
        // An agent's own vacation reply to a notification is the agent
        // branch's to store as a note.
        let from_agent = !from.is_empty() && cfg.is_agent(from);
        let is_reply = matches!(class.kind, Kind::AutoReply | Kind::ListNotice);
        // A client's monitored mailbox (abuse@, postmaster@) receives
        // feedback reports, bounces and auto-replies as its own
        // correspondence: only a DSN about postdesk's mail is taken away.
        let monitored =
            cfg.mailbox(&probe.inbound_address).is_some() && !matches!(class.kind, Kind::Dsn(_));
        let stays = monitored || (is_reply && from_agent);
        if !stays {
            return Sender::MailAboutMail {
                class: class.kind.as_str(),
                because: class.because,
            };
        }
    }
    if let Some(agent) = authenticated_agent(cfg, decision, from) {
        // The ticket the token names, after merges (threading already
        // followed them into the action).
        let ticket = match &decision.action {
            Action::Join { ticket, .. } | Action::Reopen { ticket, .. } => *ticket,
            Action::OpenLinked { previous, .. } => *previous,
            Action::Open => match &decision.matched {
                ThreadMatch::Token { ticket, .. } => *ticket,
                _ => return customer(cfg, decision, from),
            },
        };
        return Sender::Agent {
            name: agent.name.clone(),
            ticket,
        };
    }
    customer(cfg, decision, from)
}

/// The agent the message authenticates: the agent address made for that
/// agent, an envelope recipient, and the mail from that agent. Anyone else
/// writing to it (a forwarded copy, a forged From) is a customer.
fn authenticated_agent<'c>(
    cfg: &'c Config,
    decision: &thread::Decision,
    from: &str,
) -> Option<&'c Agent> {
    let ThreadMatch::Token {
        purpose: crate::token::Kind::Agent,
        agent: Some(issued_to),
        in_envelope: true,
        ..
    } = &decision.matched
    else {
        return None;
    };
    if from.is_empty() {
        return None;
    }
    let (base, _) = crate::token::split_detail(from);
    if !base.eq_ignore_ascii_case(issued_to) {
        return None;
    }
    cfg.agents
        .iter()
        .find(|a| a.address.eq_ignore_ascii_case(issued_to))
}

/// A customer; when the mail looks like an agent's (an agent's From, or an
/// agent address as recipient), why it did not authenticate.
fn customer(cfg: &Config, decision: &thread::Decision, from: &str) -> Sender {
    let to_agent_address = matches!(
        &decision.matched,
        ThreadMatch::Token {
            purpose: crate::token::Kind::Agent,
            ..
        }
    );
    if from.is_empty() || !(cfg.is_agent(from) || to_agent_address) {
        return Sender::Customer {
            not_authenticated: None,
        };
    }
    let why = match &decision.matched {
        ThreadMatch::Token {
            purpose: crate::token::Kind::Agent,
            agent,
            in_envelope,
            ..
        } => {
            if !in_envelope {
                "the agent address was not an envelope recipient".to_owned()
            } else {
                format!(
                    "the agent address was issued to {}, the mail is from {from}",
                    agent.as_deref().unwrap_or("another agent")
                )
            }
        }
        ThreadMatch::Token { purpose, .. } => {
            format!("a {} address grants no agent rights", purpose.as_str())
        }
        _ => decision
            .tried
            .iter()
            .find(|s| s.rule == "token")
            .map(|s| s.result.clone())
            .unwrap_or_else(|| "no agent address".to_owned()),
    };
    Sender::Customer {
        not_authenticated: Some(format!(
            "handled as a customer message: an agent action needs the agent address \
             made for that agent on this ticket ({why})"
        )),
    }
}

/// Carry out the agent or mail-about-mail path `sender` decided; `None`
/// leaves the message to the customer path (an agent's ticket that no
/// longer exists).
///
/// # Errors
///
/// [`store::Error`]; the pipeline rolls back to its savepoint.
pub fn commit(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    sender: &Sender,
) -> Result<Option<Outcome>, store::Error> {
    match sender {
        Sender::MailAboutMail { .. } => match cx.class {
            Some(class) => record_bounce(tx, cx, class).map(Some),
            None => Ok(None),
        },
        Sender::Agent { name, ticket } => {
            let Some(agent) = cx.cfg.agents.iter().find(|a| &a.name == name) else {
                return Ok(None);
            };
            let Some(conv) = tx.conversation(*ticket)? else {
                return Ok(None);
            };
            act(tx, cx, agent, conv).map(Some)
        }
        Sender::Customer { .. } => Ok(None),
    }
}

/// Record mail that machines sent about mail ([`classify`]): on the
/// ticket of the mail it is about (the Message-ID a report quotes, else the
/// thread match), else unticketed and flagged; never a new ticket, never an
/// acknowledgement, notification or status change. A DSN's permanent
/// failures and a feedback report's complainers are suppressed.
fn record_bounce(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    class: &Class,
) -> Result<Outcome, store::Error> {
    let original_id = match &class.kind {
        Kind::Dsn(d) => d.original_message_id.as_deref(),
        Kind::Bounce {
            original_message_id,
        } => original_message_id.as_deref(),
        Kind::Feedback(f) => f.original_message_id.as_deref(),
        Kind::AutoReply | Kind::ListNotice => None,
    };
    let mut ticket = None;
    let mut how: &'static str = "new";
    if let Some(id) = original_id
        && let Some(t) = tx.ticket_of_message_id(id)?
    {
        ticket = Some(t);
        how = "in_reply_to";
    }
    if ticket.is_none()
        && let Some(t) = cx.decision.matched.ticket()
    {
        ticket = Some(t);
        how = cx.decision.matched.rule();
    }
    if let Some(t) = ticket
        && let Some(target) = tx.merge_target(t)?
    {
        ticket = Some(target);
    }
    let (flag, event_kind) = match &class.kind {
        Kind::Dsn(_) | Kind::Bounce { .. } => (
            "bounce for a mail postdesk does not know",
            "bounce_received",
        ),
        Kind::Feedback(_) => (
            "feedback report for a mail postdesk does not know",
            "feedback_received",
        ),
        Kind::AutoReply => ("automatic reply to no known ticket", "auto_reply_received"),
        Kind::ListNotice => (
            "mailing-list notice about no known ticket",
            "list_notice_received",
        ),
    };
    let (state, flag) = if ticket.is_some() {
        ("ticketed", "")
    } else {
        ("quarantined", flag)
    };
    let row = tx.insert_message(&NewMessage {
        ticket,
        kind: class.kind.as_str(),
        state,
        flag,
        thread_match: how,
        ..cx.base.clone()
    })?;
    tracing::info!(
        ticket = ticket.map(|t| t.0),
        kind = class.kind.as_str(),
        because = class.because,
        "automatic mail recorded"
    );
    let mut detail = serde_json::json!({
        "rule": class.because,
        "detail": class.detail,
        "original_message_id": original_id,
    });
    match &class.kind {
        Kind::Dsn(dsn) => detail["recipients"] = serde_json::json!(dsn.recipients),
        Kind::Feedback(f) => {
            detail["feedback_type"] = serde_json::json!(f.feedback_type);
            detail["addresses"] = serde_json::json!(f.addresses);
        }
        _ => {}
    }
    tx.event(ticket, Some(row), event_kind, how, &detail, cx.now)?;
    match &class.kind {
        Kind::Dsn(dsn) => dsn_failures(tx, cx, ticket, row, dsn)?,
        Kind::Feedback(f) => complaints(tx, cx, ticket, row, f)?,
        Kind::Bounce { .. } | Kind::AutoReply | Kind::ListNotice => {}
    }
    Ok(cx.outcome(row, ticket, how, state))
}

/// A DSN's permanent failures suppress their address; delays are events.
fn dsn_failures(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    ticket: Option<TicketId>,
    row: MessageRowId,
    dsn: &Dsn,
) -> Result<(), store::Error> {
    for r in &dsn.recipients {
        if r.is_permanent_failure() {
            let kind = match report_about(tx, cx, dsn.original_message_id.as_deref(), &r.address)? {
                Ok((_, kind)) => kind,
                Err(why) => {
                    tx.event(
                        ticket,
                        Some(row),
                        "bounce_not_acted_on",
                        "bounce",
                        &serde_json::json!({ "to": r.address, "status": r.status, "why": why }),
                        cx.now,
                    )?;
                    continue;
                }
            };
            let detail = format!("bounced: {} {}", r.status, r.diagnostic);
            if let Some(id) = &dsn.original_message_id {
                tx.mark_bounced(id, &r.address, detail.trim())?;
            }
            let kind = kind.as_str();
            outbound::permanent_failure(
                tx,
                cx.cfg,
                &Failure {
                    ticket,
                    kind,
                    address: &r.address,
                    status: &r.status,
                    diagnostic: &r.diagnostic,
                    is_recipient_failure: true,
                    alert_admins: false,
                    source: "bounce",
                },
                cx.now,
            )?;
        } else if r.action == "delayed" {
            tx.event(ticket,
                Some(row),
                "delivery_delayed",
                "bounce",
                &serde_json::json!({ "to": r.address, "status": r.status, "diagnostic": r.diagnostic }),
                cx.now,
            )?;
        }
    }
    Ok(())
}

/// Whether a report about mail (a DSN, a feedback report) may act on
/// `address`: the ticket and kind of the mail it is about when it may, else
/// why not. Anyone can write a report, so it counts only when its writer
/// must have seen what postdesk sent to `address` and nothing else:
///
/// 1. it came to the bounce address of the outbox row that sent mail to
///    `address` (VERP: that envelope sender went to that recipient only);
/// 2. or it names a Message-ID postdesk sent to `address` alone. A mail to
///    several recipients (a relay to the requester and a Cc) does not
///    count this way: any of them could name another.
fn report_about(
    tx: &Tx<'_>,
    cx: &Context<'_, '_>,
    original_message_id: Option<&str>,
    address: &str,
) -> Result<Result<(Option<TicketId>, String), &'static str>, store::Error> {
    if let ThreadMatch::Token {
        purpose: crate::token::Kind::Bounce,
        outbox: Some(row),
        ..
    } = &cx.decision.matched
    {
        return Ok(match tx.outbox_recipient(store::OutboxId(*row))? {
            Some((rcpt, ticket, kind)) if rcpt.eq_ignore_ascii_case(address) => Ok((ticket, kind)),
            _ => Err("it came to the bounce address of mail to another recipient"),
        });
    }
    let Some(id) = original_message_id else {
        return Ok(Err(
            "it names no mail postdesk sent and did not come to a bounce address",
        ));
    };
    Ok(match tx.sent_to(id, address)? {
        None => Err("the reported mail is not one postdesk sent to this address"),
        Some(_) if tx.recipient_count(id)? > 1 => Err(
            "the reported mail went to several recipients, any of whom could write this; \
             only a report to its bounce address counts",
        ),
        Some(found) => Ok(found),
    })
}

/// A feedback report suppresses each complaining address like a hard
/// bounce, but only when the reported mail is one postdesk sent to that
/// address: a forged report naming someone else's address, or a mail
/// postdesk never sent, suppresses nothing. `not-spam` reports never do.
fn complaints(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    ticket: Option<TicketId>,
    row: MessageRowId,
    f: &Feedback,
) -> Result<(), store::Error> {
    if f.feedback_type == "not-spam" {
        return Ok(());
    }
    let diagnostic = format!("feedback report: {}", f.feedback_type);
    for address in &f.addresses {
        let (sent_ticket, kind) =
            match report_about(tx, cx, f.original_message_id.as_deref(), address)? {
                Ok(found) => found,
                Err(why) => {
                    tx.event(
                        ticket,
                        Some(row),
                        "feedback_not_suppressed",
                        "feedback",
                        &serde_json::json!({ "to": address, "why": why }),
                        cx.now,
                    )?;
                    continue;
                }
            };
        outbound::permanent_failure(
            tx,
            cx.cfg,
            &Failure {
                ticket: ticket.or(sent_ticket),
                kind: &kind,
                address,
                status: "",
                diagnostic: &diagnostic,
                is_recipient_failure: true,
                alert_admins: false,
                source: "feedback",
            },
            cx.now,
        )?;
    }
    Ok(())
}

/// Carry out an authenticated agent's mail on `conv`.
fn act(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    agent: &Agent,
    mut conv: Conversation,
) -> Result<Outcome, store::Error> {
    let cfg = cx.cfg;
    let now = cx.now;
    let ticket = conv.id;
    let cause = format!("agent:{}", agent.name);

    if let Some(auto) = guard::is_automatic(cfg, cx.env, cx.parsed) {
        let row = tx.insert_message(&NewMessage {
            ticket: Some(ticket),
            kind: "note",
            flag: "automatic mail from an agent: not relayed",
            thread_match: "token",
            ..cx.base.clone()
        })?;
        tx.event(
            Some(ticket),
            Some(row),
            "agent_auto_reply_ignored",
            auto.because,
            &serde_json::json!({ "agent": agent.name, "detail": auto.detail }),
            now,
        )?;
        return Ok(cx.outcome(row, Some(ticket), "token", "ticketed"));
    }

    // Quotes go after decoding: parse already decoded QP and base64.
    let text = crate::detect::quote::new_text(&cx.parsed.text).into_owned();
    let agents: Vec<String> = cfg.agents.iter().map(|a| a.name.clone()).collect();
    let script = command::parse(
        &text,
        &Known {
            agents: &agents,
            canned: cfg.outbound.templates.canned_names(),
            number_format: &cfg.tickets.number_format,
        },
    );
    let mut errors = script.errors.clone();
    let mut targets = Vec::new();
    for (line, c) in &script.commands {
        if let Command::Merge(n) = c {
            let tag = cfg.tickets.format_tag(*n);
            match tx.ticket_by_number(*n)? {
                None => errors.push(format!("line {line}: #merge: there is no ticket {tag}")),
                Some(t) => {
                    let t = tx.merge_target(t)?.unwrap_or(t);
                    if t == ticket {
                        errors.push(format!(
                            "line {line}: #merge: {tag} is this ticket; a ticket cannot be merged into itself"
                        ));
                    }
                    targets.push(t);
                }
            }
        }
    }

    // `#unsuspend`: admins only; without an address, the clients suspended
    // on this ticket (as the flagged ticket or its Compliance Alert), else
    // its requester.
    let mut lift: Vec<String> = Vec::new();
    for (line, c) in &script.commands {
        let Command::Unsuspend(address) = c else {
            continue;
        };
        let is_admin = cfg
            .monitoring
            .admins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&agent.address));
        if !is_admin {
            errors.push(format!(
                "line {line}: #unsuspend: only [monitoring] admins may lift a suspension"
            ));
            continue;
        }
        let clients = match address {
            Some(a) => vec![a.clone()],
            None => {
                let mut c = tx.suspended_clients_of_ticket(ticket)?;
                if c.is_empty() && !conv.requester.is_empty() {
                    c.push(conv.requester.clone());
                }
                c
            }
        };
        if clients.is_empty() {
            errors.push(format!(
                "line {line}: #unsuspend: no client is suspended on this ticket; write #unsuspend ADDRESS"
            ));
        }
        lift.extend(clients);
    }

    // A closed ticket's agent address still threads a late reply, but it
    // acts only after `#reopen`: without it, only `#note`, `#close` and
    // `#resolve` are taken, and anything else (a reply to relay, another
    // command) is answered instead of relayed or carried out.
    let reopens = script
        .commands
        .iter()
        .any(|(_, c)| matches!(c, Command::Reopen));
    if thread::is_closed(&conv.status) && !reopens {
        let tag = cfg.tickets.format_tag(conv.number);
        for (line, c) in &script.commands {
            if !matches!(c, Command::Note | Command::Close | Command::Resolve) {
                errors.push(format!(
                    "line {line}: #{}: {tag} is {}; start the mail with #reopen to act on it",
                    c.name(),
                    conv.status
                ));
            }
        }
        if !script.is_note() && !script.body.trim().is_empty() {
            errors.push(format!(
                "{tag} is {}: your reply was not sent to the customer. Start the mail with \
                 #reopen to reopen the ticket and send it, or with #note to keep it as an \
                 internal note",
                conv.status
            ));
        }
    }

    let stored_text = if script.is_note() {
        [script.note_text.as_str(), script.body.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        text.clone()
    };
    let row = tx.insert_message(&NewMessage {
        ticket: Some(ticket),
        kind: if script.is_note() { "note" } else { "agent" },
        flag: if errors.is_empty() {
            ""
        } else {
            "command error: not relayed"
        },
        thread_match: "token",
        text: &stored_text,
        ..cx.base.clone()
    })?;

    if !errors.is_empty() {
        tracing::info!(ticket = ticket.0, agent = %agent.name, errors = errors.len(), "agent command rejected");
        tx.event(
            Some(ticket),
            Some(row),
            "command_rejected",
            &cause,
            &serde_json::json!({ "errors": errors }),
            now,
        )?;
        answer_agent(tx, cx, agent, &conv, &errors, row)?;
        return Ok(cx.outcome(row, Some(ticket), "token", "ticketed"));
    }

    // `#cc` first, so the reply that carries it already goes to them.
    for (_, c) in &script.commands {
        if let Command::Cc(address) = c {
            let before = tx.copy_participant(ticket, address, now)?;
            tx.event(
                Some(ticket),
                Some(row),
                "participant_copied",
                &cause,
                &serde_json::json!({
                    "command": "cc",
                    "address": address,
                    "was": before.unwrap_or_default(),
                }),
                now,
            )?;
        }
    }

    if script.is_note() {
        tx.event(
            Some(ticket),
            Some(row),
            "note_added",
            &cause,
            &serde_json::json!({ "agent": agent.name }),
            now,
        )?;
    } else if !script.body.trim().is_empty() {
        if reopens && thread::is_closed(&conv.status) {
            // Reopen first, so the reply goes out on an open ticket.
            outbound::set_status(tx, &mut conv, "Open", false, &cause, row, now)?;
        }
        relay(tx, cx, agent, &conv, &script, row)?;
        outbound::set_status(tx, &mut conv, "Replied", true, &cause, row, now)?;
    }

    run_commands(tx, cx, &cause, &mut conv, &script, &targets, row)?;
    for client in &lift {
        let lifted = crate::compliance::unsuspend(tx, client, None, &cause, now)?;
        tx.event(
            Some(conv.id),
            Some(row),
            "unsuspend_command",
            &cause,
            &serde_json::json!({ "client": client, "lifted": lifted.len() }),
            now,
        )?;
    }
    Ok(cx.outcome(row, Some(conv.id), "token", "ticketed"))
}

/// Relay the agent's reply to the requester and the Cc participants.
fn relay(
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

    // Recipients: the requester, then the Cc participants who are neither
    // staff nor postdesk, each once, none that is suppressed.
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
    let from = outbound::our_address(cfg, conv);
    let mut refs = conv.last_customer_refs.clone();
    refs.extend(conv.sent_to_customer.iter().cloned());
    refs.extend(conv.last_customer_message.iter().cloned());
    let rcpts: Vec<String> = to.iter().chain(&cc).map(|a| a.address.clone()).collect();
    let mail = Mail {
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
    };
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

/// Tell the agent what was wrong with their commands.
fn answer_agent(
    tx: &Tx<'_>,
    cx: &Context<'_, '_>,
    agent: &Agent,
    conv: &Conversation,
    errors: &[String],
    row: MessageRowId,
) -> Result<(), store::Error> {
    let cfg = cx.cfg;
    let now = cx.now;
    let decision = guard::limit(
        cfg,
        tx.automatic_mails_since(&agent.address, now - 3600)?,
        tx.suppression(&agent.address, now)?.as_deref(),
    );
    if let AutoReply::Suppressed { because, detail } = decision {
        return tx.event(
            Some(conv.id),
            Some(row),
            "auto_reply_suppressed",
            because,
            &serde_json::json!({ "to": agent.address, "detail": detail, "mail": "command answer" }),
            now,
        );
    }
    let mut vars = outbound::ticket_vars(cfg, conv);
    vars.insert("agent_name", Value::from(display_name(&agent.name)));
    vars.insert("agent_email", Value::from(agent.address.clone()));
    vars.insert("errors", Value::from(errors.to_vec()));
    vars.insert(
        "commands",
        Value::from(
            command::SYNTAX
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        ),
    );
    let Some(r) = outbound::render(tx, cfg, Some(conv.id), "unknown_command", &vars, now)? else {
        return Ok(());
    };
    let from = outbound::our_address(cfg, conv);
    let mut refs = cx.parsed.references.clone();
    refs.extend(cx.parsed.message_id.iter().cloned());
    let mail = Mail {
        kind: "command_error",
        message_kind: "system",
        ticket: Some(conv.id),
        draft: Draft {
            // Replying to the answer acts on the ticket again: the agent
            // address made for this agent, in mail to this agent only.
            reply_to: outbound::agent_address(cfg, conv, &agent.address).map(|a| Address::bare(&a)),
            in_reply_to: cx.parsed.message_id.clone(),
            references: compose::trim_references(refs),
            ..outbound::draft(
                cfg,
                Address::named("postdesk", &from),
                vec![Address::named(&display_name(&agent.name), &agent.address)],
                r.subject,
                r.body,
                AutoSubmitted::AutoReplied,
                now,
            )
        },
        rcpts: vec![agent.address.clone()],
        mail_from: outbound::Sender::Null,
        is_automatic: true,
    };
    outbound::queue(tx, &mail, now)?;
    Ok(())
}

/// Run the commands in order, each an event. After `#merge` the commands
/// that follow act on the target.
fn run_commands(
    tx: &Tx<'_>,
    cx: &Context<'_, '_>,
    cause: &str,
    conv: &mut Conversation,
    script: &Script,
    targets: &[TicketId],
    row: MessageRowId,
) -> Result<(), store::Error> {
    let now = cx.now;
    let mut targets = targets.iter();
    for (_, c) in &script.commands {
        let ticket = conv.id;
        let changed = |kind: &str, from: &str, to: &str| {
            tx.event(
                Some(ticket),
                Some(row),
                kind,
                cause,
                &serde_json::json!({ "command": c.name(), "from": from, "to": to }),
                now,
            )
        };
        match c {
            Command::Note => {}
            Command::Close | Command::Resolve | Command::Reopen => {
                let status = match c {
                    Command::Close => "Closed",
                    Command::Resolve => "Resolved",
                    _ => "Open",
                };
                // Nothing to record when the status is already there, and
                // `#reopen` reopens only what is closed (a reply already
                // made a closed ticket Open, then Replied).
                if conv.status == status
                    || (matches!(c, Command::Reopen) && !thread::is_closed(&conv.status))
                {
                    continue;
                }
                tx.set_ticket_status(ticket, status, false, now)?;
                changed("status_changed", &conv.status, status)?;
                conv.status = status.to_owned();
            }
            Command::Priority(p) => {
                tx.set_ticket_field(ticket, TicketField::Priority, p.as_str(), now)?;
                changed("priority_changed", &conv.priority, p.as_str())?;
                conv.priority = p.as_str().to_owned();
            }
            Command::Assign(name) => {
                tx.set_ticket_field(ticket, TicketField::Assignee, name, now)?;
                changed("assigned", &conv.assignee, name)?;
                conv.assignee = name.clone();
            }
            Command::Type(t) => {
                tx.set_ticket_field(ticket, TicketField::IssueType, t, now)?;
                changed("type_changed", &conv.issue_type, t)?;
                conv.issue_type = t.clone();
            }
            Command::Tag(t) => {
                let added = tx.add_tag(ticket, t, now)?;
                tx.event(
                    Some(ticket),
                    Some(row),
                    "tag_added",
                    cause,
                    &serde_json::json!({ "command": "tag", "tag": t, "new": added }),
                    now,
                )?;
            }
            // Carried out after the others, by `act`.
            Command::Unsuspend(_) => {}
            // Carried out before the relay, by `act`.
            Command::Cc(_) => {}
            Command::Merge(n) => {
                let Some(target) = targets.next().copied() else {
                    continue;
                };
                let moved = tx.merge_ticket(ticket, target, now)?;
                let detail = serde_json::json!({
                    "command": "merge",
                    "source": cx.cfg.tickets.format_number(conv.number),
                    "target": cx.cfg.tickets.format_number(*n),
                    "messages_moved": moved,
                });
                tx.event(Some(ticket), Some(row), "merged", cause, &detail, now)?;
                tx.event(Some(target), Some(row), "merged", cause, &detail, now)?;
                if let Some(next) = tx.conversation(target)? {
                    *conv = next;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use crate::detect::quote::new_text;

    /// The agent's text as the pipeline sees it: parsed (decoded), then
    /// stripped of quotes.
    fn agent_text(raw: &str) -> String {
        let parsed = crate::parse::parse(raw.as_bytes());
        new_text(&parsed.text).into_owned()
    }

    #[test]
    fn a_quoted_printable_separator_is_found_after_decoding() {
        // The separator is split by a soft line break and its dashes are
        // encoded: only decoding makes it a line again.
        let raw = "From: bob@agents.test\r\nTo: support+1-0011223344556677@example.com\r\n\
            Subject: Re: [#1001] Printer\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n\
            Try the red button =E2=80=94 it resets the fuser.\r\n\r\n\
            =2D=2D reply above th=\r\nis line =2D=2D\r\n\r\n\
            Alice Example <alice@customer.test> wrote:\r\n\r\nmy printer is on fire\r\n";
        let text = agent_text(raw);
        assert_eq!(
            text.trim(),
            "Try the red button \u{2014} it resets the fuser."
        );
    }

    #[test]
    fn quoted_lines_and_attributions_are_stripped() {
        let rows = [
            (
                "Thanks!\n\nOn Mon, 2 Mar 2026 at 10:00, Alice <a@c.test> wrote:\n> old text\n> more\n",
                "Thanks!",
            ),
            (
                "Merci !\n\nLe lun. 2 mars 2026 à 10:00, Alice <a@c.test> a écrit :\n> ancien\n",
                "Merci !",
            ),
            (
                "Danke.\n\nAm 02.03.2026 um 10:00 schrieb Alice <a@c.test>:\n> alt\n",
                "Danke.",
            ),
            (
                "See below.\n\n-----Original Message-----\nFrom: Alice\nSent: Monday\nSubject: x\n\nold\n",
                "See below.",
            ),
            (
                "Done.\n\nFrom: Alice Example <a@c.test>\nSent: Monday, March 2, 2026 10:00 AM\nTo: Support\nSubject: Printer\n\nold\n",
                "Done.",
            ),
        ];
        for (body, expected) in rows {
            let raw = format!(
                "From: bob@agents.test\r\nSubject: Re: x\r\n\r\n{}",
                body.replace('\n', "\r\n")
            );
            assert_eq!(agent_text(&raw).trim(), expected, "{body:?}");
        }
    }

    #[test]
    fn stripping_never_leaves_an_empty_reply() {
        let raw =
            "From: bob@agents.test\r\nSubject: Re: x\r\n\r\n> everything is quoted\r\n> here\r\n";
        let text = agent_text(raw);
        assert!(text.contains("everything is quoted"), "{text:?}");
    }

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
