//! Outbound: every mail postdesk sends, from the change that causes it to
//! the smarthost.
//!
//! ```text
//!  pipeline (writer thread, batch transaction)
//!    ├─ customer message stored ─> after_customer_message: status, ack, notifications
//!    ├─ agent mail (token)       ─> crate::agent: commands, relay, command answer
//!    └─ bounce, feedback report, ─> crate::agent::commit: event, suppression, notice
//!       automatic reply (parse::classify)
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
//! - [`crate::report::outbox`] renders `postdesk outbox` and the template
//!   lines of `check` (with the other listings).
//!
//! Promise: a mail is queued in the transaction of the change that causes
//! it (nothing here runs outside the caller's transaction), and a failure
//! to compose one mail is logged and recorded on the ticket, never a reason
//! to refuse the customer's message.

pub mod compose;
pub mod dkim;
pub mod outbox;

pub mod settings;
pub mod smarthost;
pub mod templates;
pub mod whole;

pub use settings::Settings;
pub use whole::Config;

use minijinja::Value;

use crate::domain::{MessageRowId, TicketId, Time};
use crate::guard::{self, AutoReply};
use crate::parse::ParsedMessage;
use crate::store::{self, Conversation, Enqueue, NewOutbound, Tx};

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
    /// Envelope sender.
    pub mail_from: Sender,
    /// Rate-limited and loop-protected.
    pub is_automatic: bool,
}

/// The envelope sender (`MAIL FROM`) of a mail postdesk sends.
#[derive(Debug, Clone)]
pub enum Sender {
    /// The null reverse-path `<>`: automatic responses (RFC 3834 §3.3) and
    /// mail about failures, so no failure of theirs can start a loop.
    Null,
    /// A plain address.
    Address(String),
    /// The ticket's bounce address for each recipient's outbox row
    /// (`support+b<ticket>.<row>-<mac>@…`), signed with the current secret:
    /// a DSN to it names the ticket and the one recipient it is about.
    Bounce {
        /// The address it extends.
        base: String,
        /// The ticket.
        ticket: TicketId,
        /// The secret that signs it.
        secret: crate::token::Secret,
    },
}

/// Compose `mail` and queue it: an outbound `messages` row (when it is
/// about a ticket) and one outbox row per recipient. Returns the stored
/// row. A mail that cannot be composed is logged, recorded as an event
/// `mail_not_composed` and skipped.
///
/// # Errors
///
/// [`store::Error`] from the inserts.
pub fn queue(tx: &Tx<'_>, mail: &Mail, now: Time) -> Result<Option<MessageRowId>, store::Error> {
    // An address that is not a plain RFC 5322 `local@domain` (a forged
    // `From: <"a>,evil@evil.test"@cust.test>`) gets no mail, in no header.
    let (rcpts, invalid): (Vec<&String>, Vec<&String>) = mail
        .rcpts
        .iter()
        .partition(|r| compose::is_valid_address(r));
    for bad in &invalid {
        tracing::warn!(kind = mail.kind, to = %bad.escape_debug(), "not a valid address, mail not sent");
        tx.event(
            mail.ticket,
            None,
            "mail_not_sent",
            "invalid_address",
            &serde_json::json!({ "to": bad, "mail": mail.kind }),
            now,
        )?;
    }
    if rcpts.is_empty() {
        return Ok(None);
    }
    let cleaned;
    let mail = if invalid.is_empty() {
        mail
    } else {
        let mut m = mail.clone();
        m.rcpts = rcpts.into_iter().cloned().collect();
        m.draft.to.retain(|a| compose::is_valid_address(&a.address));
        m.draft.cc.retain(|a| compose::is_valid_address(&a.address));
        cleaned = m;
        &cleaned
    };
    let raw = match compose::build(&mail.draft) {
        Ok(raw) => raw,
        Err(e) => {
            crate::logging::log_error("composing a mail failed", &e);
            tx.event(
                mail.ticket,
                None,
                "mail_not_composed",
                mail.kind,
                &serde_json::json!({ "error": e.to_string(), "to": mail.rcpts }),
                now,
            )?;
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
    let plain = match &mail.mail_from {
        Sender::Null => "",
        Sender::Address(a) | Sender::Bounce { base: a, .. } => a.as_str(),
    };
    for rcpt in &mail.rcpts {
        let id = tx.enqueue(&Enqueue {
            ticket: mail.ticket,
            message_row: row,
            kind: mail.kind,
            is_automatic: mail.is_automatic,
            message_id: &mail.draft.message_id,
            mail_from: plain,
            rcpt_to: rcpt,
            subject: &subject,
            raw: &raw,
            // Due at once: at the start of the current second.
            now: Time::from_secs(now.secs()),
        })?;
        // The row's own bounce address names the row, so it can only be
        // made once the row has its id.
        if let Sender::Bounce {
            base,
            ticket,
            secret,
        } = &mail.mail_from
        {
            let keys = crate::token::Keys {
                current: secret,
                previous: None,
            };
            let verp = crate::token::address(
                keys,
                &crate::token::Purpose::Bounce { outbox: id.0 },
                *ticket,
                base,
            );
            tx.set_outbox_sender(id, &verp)?;
        }
    }
    tracing::debug!(kind = mail.kind, rcpts = mail.rcpts.len(), message_id = %mail.draft.message_id, "mail queued");
    Ok(row)
}

/// Set `conv`'s status to `status` and record the change (`status_changed`,
/// with `cause`) when it is one; `first_response` stamps the first
/// response as [`Tx::set_ticket_status`] does.
///
/// # Errors
///
/// [`store::Error`].
pub fn set_status(
    tx: &Tx<'_>,
    conv: &mut Conversation,
    status: &str,
    first_response: bool,
    cause: &str,
    row: MessageRowId,
    now: Time,
) -> Result<(), store::Error> {
    tx.set_ticket_status(conv.id, status, first_response, now)?;
    if conv.status != status {
        tx.event(
            Some(conv.id),
            Some(row),
            "status_changed",
            cause,
            &serde_json::json!({ "from": conv.status, "to": status }),
            now,
        )?;
        conv.status = status.to_owned();
    }
    Ok(())
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

/// The agent address of `conv`'s ticket for the agent at `agent` (an
/// address), if a token secret is set and `agent` is an agent. It
/// authenticates that agent on that ticket, so it goes only into mail to
/// that agent ([`queue_per_recipient`]).
pub fn agent_address(cfg: &Config, conv: &Conversation, agent: &str) -> Option<String> {
    let keys = cfg.threading.keys()?;
    let agent = cfg
        .agents
        .iter()
        .find(|a| a.address.eq_ignore_ascii_case(agent))?;
    Some(crate::token::address(
        keys,
        &crate::token::Purpose::Agent(&agent.address),
        conv.id,
        &our_address(cfg, conv),
    ))
}

/// The envelope sender of non-automatic mail about `conv`: its bounce
/// address, made per recipient when the mail is queued (VERP, see
/// [`Sender::Bounce`]); the plain address without a secret.
pub fn bounce_sender(cfg: &Config, conv: &Conversation) -> Sender {
    let base = our_address(cfg, conv);
    match &cfg.threading.token_secret {
        Some(secret) => Sender::Bounce {
            base,
            ticket: conv.id,
            secret: secret.clone(),
        },
        None => Sender::Address(base),
    }
}

/// The customer reply address of `conv`'s ticket, when `[threading]
/// customer_reply_address` is on and a secret is set: the `Reply-To` of
/// mail to customers. It threads their reply and grants nothing else.
pub fn customer_reply_address(cfg: &Config, conv: &Conversation) -> Option<String> {
    if !cfg.threading.customer_reply_address {
        return None;
    }
    let keys = cfg.threading.keys()?;
    Some(crate::token::address(
        keys,
        &crate::token::Purpose::Customer,
        conv.id,
        &our_address(cfg, conv),
    ))
}

/// Queue `mail` once per recipient, each copy with a Message-ID of its own
/// and, when `about` is a ticket and the recipient is an agent, that
/// agent's address on the ticket as `Reply-To` (else `fallback_reply_to`).
/// An agent address is a credential: it must reach no one but its agent,
/// so it is never in a mail with another recipient. Returns the stored
/// rows.
///
/// # Errors
///
/// [`store::Error`] from the inserts.
pub fn queue_per_recipient(
    tx: &Tx<'_>,
    cfg: &Config,
    mail: &Mail,
    about: Option<&Conversation>,
    fallback_reply_to: Option<&str>,
    now: Time,
) -> Result<Vec<Option<MessageRowId>>, store::Error> {
    let mut rows = Vec::with_capacity(mail.rcpts.len());
    for (i, rcpt) in mail.rcpts.iter().enumerate() {
        let mut one = mail.clone();
        let to = mail
            .draft
            .to
            .iter()
            .find(|a| a.address.eq_ignore_ascii_case(rcpt))
            .cloned()
            .unwrap_or_else(|| Address::bare(rcpt));
        one.draft.to = vec![to];
        one.draft.cc = Vec::new();
        one.rcpts = vec![rcpt.clone()];
        let reply_to = about
            .and_then(|c| agent_address(cfg, c, rcpt))
            .or_else(|| fallback_reply_to.map(str::to_owned));
        one.draft.reply_to = reply_to.map(|a| Address::bare(&a));
        if i > 0 {
            one.draft.message_id = compose::message_id(&cfg.server.hostname);
        }
        rows.push(queue(tx, &one, now)?);
    }
    Ok(rows)
}

/// A draft from `from` to `to` with a rendered `subject` and `body`: the
/// configured `X-Loop`, `Date` (`now`) and a new Message-ID; no Cc,
/// Reply-To, threading headers or attachments. The one way every mail
/// postdesk sends starts; set what applies with struct update syntax.
pub fn draft(
    cfg: &Config,
    from: Address,
    to: Vec<Address>,
    subject: String,
    body: String,
    auto_submitted: AutoSubmitted,
    now: Time,
) -> Draft {
    Draft {
        from,
        to,
        cc: Vec::new(),
        reply_to: None,
        subject,
        body,
        in_reply_to: None,
        references: Vec::new(),
        auto_submitted,
        attachments: Vec::new(),
        x_loop: cfg.outbound.x_loop.clone(),
        date: now.secs(),
        message_id: compose::message_id(&cfg.server.hostname),
    }
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
    let (tickets, opened) = (&cfg.tickets, conv.opened());
    v.insert(
        "ticket_number",
        s(&tickets.format_number(conv.number, &conv.queue, opened)),
    );
    v.insert(
        "ticket_tag",
        s(&tickets.format_tag(conv.number, &conv.queue, opened)),
    );
    v.insert("subject", s(&conv.subject));
    v.insert("queue", s(&conv.queue));
    v.insert("queue_name", s(&display_name(&conv.queue)));
    v.insert("priority", s(&conv.priority));
    v.insert("status", s(&conv.status));
    v.insert("issue_type", s(&conv.issue_type));
    v.insert("support_address", s(&our_address(cfg, conv)));
    v
}

/// The customer page link of `ticket` (`<public_url>/t/<token>`), working
/// for `[http] customer_link_days` from `now`; `None` without an HTTP
/// listener or a token secret, so no mail points at a page nobody serves.
pub fn customer_url(cfg: &Config, ticket: crate::domain::TicketId, now: Time) -> Option<String> {
    let keys = cfg.threading.keys()?;
    cfg.http.listen?;
    let expires_day = now.secs().div_euclid(86_400) + i64::from(cfg.http.customer_link_days);
    let token = crate::token::sign(keys, &crate::token::Purpose::Page { expires_day }, ticket);
    Some(format!("{}/t/{token}", cfg.http.public_url))
}

/// The agents to notify about `conv`: see [`notify_targets`].
pub fn agents_for(cfg: &Config, conv: &Conversation) -> Vec<(String, String)> {
    notify_targets(cfg, &conv.queue, &conv.assignee).0
}

/// The agents to notify about a ticket in `queue` assigned to `assignee`
/// (empty: nobody): the assignee, else the queue's team (`[teams]`), else
/// every agent. `(name, address)` each, and which rule chose them
/// (`assignee`, `team`, `all_agents`).
pub fn notify_targets(
    cfg: &Config,
    queue: &str,
    assignee: &str,
) -> (Vec<(String, String)>, &'static str) {
    let find = |name: &str| {
        cfg.agents
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| (a.name.clone(), a.address.clone()))
    };
    if !assignee.is_empty()
        && let Some(a) = find(assignee)
    {
        return (vec![a], "assignee");
    }
    if let Some(team) = cfg.outbound.teams.get(&queue.to_ascii_lowercase()) {
        return (team.iter().filter_map(|n| find(n)).collect(), "team");
    }
    let all = cfg
        .agents
        .iter()
        .map(|a| (a.name.clone(), a.address.clone()))
        .collect();
    (all, "all_agents")
}

/// Render template `name`, or log and record why not (`None`): an event
/// `mail_not_composed` on `ticket` (or unticketed). The one render path of
/// every mail about a ticket.
///
/// # Errors
///
/// [`store::Error`] recording the event.
pub fn render(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: Option<TicketId>,
    name: &str,
    vars: &Vars,
    now: Time,
) -> Result<Option<templates::Rendered>, store::Error> {
    match cfg.outbound.templates.render(name, vars) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            crate::logging::log_error("template failed, mail not sent", &e);
            tx.event(
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
    now: Time,
) -> Result<bool, store::Error> {
    // The pure check first: the store is asked only for a person.
    let decision = match auto {
        Some(a) => AutoReply::Suppressed {
            because: a.because,
            detail: a.detail,
        },
        None => guard::limit(
            cfg,
            tx.automatic_mails_since(to, now.secs() - 3600)?,
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
            tx.event(
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
    now: Time,
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
            reply_to: customer_reply_address(cfg, conv).map(|a| Address::bare(&a)),
            in_reply_to: reply.in_reply_to.clone(),
            references: compose::trim_references(reply.references.clone()),
            ..draft(
                cfg,
                Address::named(&display_name(&conv.queue), &from),
                vec![Address::named(&conv.requester_name, reply.to)],
                r.subject,
                r.body,
                AutoSubmitted::AutoReplied,
                now,
            )
        },
        rcpts: vec![reply.to.to_owned()],
        // RFC 3834 §3.3: an automatic response goes out with the null
        // reverse-path, so a failure of it cannot start a loop.
        mail_from: Sender::Null,
        is_automatic: true,
    };
    queue(tx, &mail, now)
}

/// Queue the notification of a customer message on `conv` to `agents`
/// (`(name, address)`, one mail each), with the suspension line and the
/// held new participant when there are.
///
/// # Errors
///
/// [`store::Error`].
#[allow(clippy::too_many_arguments)] // one call site, all values distinct
pub fn notify_agents(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    raw: &[u8],
    parsed: &ParsedMessage,
    sender: &str,
    agents: &[(String, String)],
    suspended: Option<String>,
    held: Option<&str>,
    now: Time,
) -> Result<(), store::Error> {
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
    // Borrowed when nothing is quoted: a large body is not copied whole.
    let text = crate::detect::quote::new_text(&parsed.text);
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
    if let Some(address) = held {
        vars.insert("new_participant", Value::from(address.to_owned()));
    }
    // The customer's attachments ride along up to the configured total;
    // past it, the notification lists them with the command that saves one.
    let total: u64 = parsed.attachments.iter().map(|a| a.size).sum();
    let attach = total <= cfg.outbound.notify_attachments_max_bytes;
    // Decoded once from the raw message (attachments are stored only
    // there), for every agent's copy.
    let attachments = if attach && !parsed.attachments.is_empty() {
        crate::parse::attachments(raw)
    } else {
        Vec::new()
    };
    if !attach {
        let listed: Vec<Value> = parsed
            .attachments
            .iter()
            .map(|a| {
                let mut item = std::collections::BTreeMap::new();
                item.insert("name", Value::from(a.name.clone().unwrap_or_default()));
                item.insert(
                    "content_type",
                    Value::from(compose::safe_content_type(&a.content_type)),
                );
                item.insert("size", Value::from(a.size));
                Value::from(item)
            })
            .collect();
        vars.insert("attachments_withheld", Value::from(listed));
    }
    vars.insert("ticket_id_number", Value::from(conv.number.to_string()));
    let from = our_address(cfg, conv);
    // One mail per agent: each carries the agent address made for its
    // agent, and threads under the mail that agent already has of this
    // ticket (earlier notifications, their own replies), never under the
    // customer's message, which the agent never received.
    for (name, address) in agents {
        let mut v = vars.clone();
        v.insert("agent_name", Value::from(display_name(name)));
        v.insert("agent_email", Value::from(address.clone()));
        let Some(r) = render(tx, cfg, Some(conv.id), "notification", &v, now)? else {
            return Ok(());
        };
        let earlier = tx.agent_thread(conv.id, address)?;
        let mail = Mail {
            kind: "notification",
            message_kind: "system",
            ticket: Some(conv.id),
            draft: Draft {
                reply_to: Some(Address::bare(
                    &agent_address(cfg, conv, address).unwrap_or_else(|| from.clone()),
                )),
                in_reply_to: earlier.last().cloned(),
                references: compose::trim_references(earlier),
                attachments: attachments.clone(),
                ..draft(
                    cfg,
                    Address::named(
                        &format!("{customer} via {}", display_name(&conv.queue)),
                        &from,
                    ),
                    vec![Address::named(&display_name(name), address)],
                    r.subject,
                    r.body,
                    AutoSubmitted::AutoGenerated,
                    now,
                )
            },
            rcpts: vec![address.clone()],
            // Bounces come back to the bounce address and so to this ticket.
            mail_from: bounce_sender(cfg, conv),
            is_automatic: false,
        };
        queue(tx, &mail, now)?;
    }
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
    now: Time,
) -> Result<(), store::Error> {
    let suppressed_until = now
        .secs()
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
    tx.event(
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
        bounce_notice(tx, cfg, f, conv, &vars, now)?;
    }

    if f.alert_admins {
        failure_alert(tx, cfg, f, vars, now)?;
    }
    Ok(())
}

/// Tell the ticket's agents (but the one whose address failed) that mail
/// failed for good: a `bounce_notice`, one to each.
fn bounce_notice(
    tx: &Tx<'_>,
    cfg: &Config,
    f: &Failure<'_>,
    conv: &Conversation,
    vars: &Vars,
    now: Time,
) -> Result<(), store::Error> {
    let agents: Vec<(String, String)> = agents_for(cfg, conv)
        .into_iter()
        .filter(|(_, a)| !a.eq_ignore_ascii_case(f.address))
        .collect();
    if agents.is_empty() {
        return Ok(());
    }
    let mut v = vars.clone();
    if let [(name, address)] = agents.as_slice() {
        v.insert("agent_name", Value::from(display_name(name)));
        v.insert("agent_email", Value::from(address.clone()));
    }
    let Some(r) = render(tx, cfg, Some(conv.id), "bounce_notice", &v, now)? else {
        return Ok(());
    };
    let from = our_address(cfg, conv);
    let mail = Mail {
        kind: "bounce_notice",
        message_kind: "system",
        ticket: Some(conv.id),
        // Reply-To is set per agent by queue_per_recipient.
        draft: draft(
            cfg,
            Address::named("postdesk", &from),
            agents
                .iter()
                .map(|(n, a)| Address::named(&display_name(n), a))
                .collect(),
            r.subject,
            r.body,
            AutoSubmitted::AutoGenerated,
            now,
        ),
        rcpts: agents.iter().map(|(_, a)| a.clone()).collect(),
        mail_from: Sender::Null,
        is_automatic: false,
    };
    queue_per_recipient(tx, cfg, &mail, Some(conv), None, now)?;
    Ok(())
}

/// Alert the admins that a mail could not be delivered.
fn failure_alert(
    tx: &Tx<'_>,
    cfg: &Config,
    f: &Failure<'_>,
    mut vars: Vars,
    now: Time,
) -> Result<(), store::Error> {
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
    alert(tx, cfg, f.ticket, &vars, now)
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
    now: Time,
) -> Result<(), store::Error> {
    let admins = &cfg.monitoring.admins;
    if admins.is_empty() {
        tracing::warn!("no [monitoring] admins to alert");
        return Ok(());
    }
    alert_to(tx, cfg, ticket, vars, admins, None, now).map(|_| ())
}

/// Queue an alert (template `alert`) to `rcpts`. With `reply_on`, each
/// recipient who is an agent gets a copy of their own whose `Reply-To` is
/// their agent address on that ticket, so they can act by replying.
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
    reply_on: Option<&Conversation>,
    now: Time,
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
        // Reply-To per recipient: an admin who is an agent gets their
        // agent address on `reply_on`, no one else gets one.
        draft: draft(
            cfg,
            Address::named("postdesk", &cfg.monitoring.from),
            rcpts.iter().map(|a| Address::bare(a)).collect(),
            r.subject,
            r.body,
            AutoSubmitted::AutoGenerated,
            now,
        ),
        rcpts: rcpts.to_vec(),
        mail_from: Sender::Null,
        is_automatic: false,
    };
    match reply_on {
        Some(conv) => {
            queue_per_recipient(tx, cfg, &mail, Some(conv), None, now)?;
        }
        None => {
            queue(tx, &mail, now)?;
        }
    }
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
