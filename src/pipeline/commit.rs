//! The writes: [`commit`] carries out a [`Plan`] in the batch transaction,
//! in the order a reader of the store expects (contact, ticket, message,
//! references, participants, events, detector, status, mail).

use serde::Serialize;

use crate::agent::{self, Sender};
use crate::domain::{ContactId, MessageRowId, Status, TicketId, Time};
use crate::outbound::Config;
use crate::outbound::{self, AutoReplyMail};
use crate::route::{self, Route, Target};
use crate::store::{self, NewEvent, NewMessage, NewTicket, Tx};

use super::plan::{Incoming, MailPlan, Path, Plan, TicketPlan};
use super::{Outcome, REUSED_ID_FLAG};

/// Carry out `plan` for `msg`.
///
/// # Errors
///
/// [`store::Error`] when a statement fails; the caller rolls back to its
/// savepoint.
pub fn commit(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    plan: Plan,
    now: Time,
) -> Result<Outcome, store::Error> {
    let Plan {
        message_id,
        synthetic_id,
        reused_message_id: reused,
        path,
    } = plan;
    let rendered = Rendered::new(msg);
    let base = base_message(msg, &rendered, &message_id, synthetic_id, now);
    match path {
        Path::Duplicate { message, ticket } => Ok(Outcome {
            ticket,
            duplicate: true,
            ..Outcome::bare(message, message_id, "duplicate")
        }),
        Path::Unparsed { flag } => {
            if reused {
                tracing::warn!(message_id = %message_id, "message-id reused with different content, storing a new message");
            }
            let row = tx.insert_message(&NewMessage {
                state: "unparsed",
                flag: &flag,
                ..base.clone()
            })?;
            Ok(Outcome {
                reused_message_id: reused,
                ..Outcome::bare(row, message_id.clone(), "unparsed")
            })
        }
        Path::Mail(mail) => {
            if reused {
                tracing::warn!(message_id = %message_id, "message-id reused with different content, storing a new message");
            }
            commit_mail(tx, cfg, msg, &base, reused, *mail, now)
        }
    }
}

fn commit_mail(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    base: &NewMessage<'_>,
    reused: bool,
    mail: MailPlan,
    now: Time,
) -> Result<Outcome, store::Error> {
    // A rating is recorded on its ticket and nothing more: no reopening,
    // no acknowledgement, no notification.
    if let Sender::Rating { ticket, score } = mail.sender {
        let (row, state) = crate::satisfaction::record(tx, msg.parsed, base, ticket, score, now)?;
        return Ok(Outcome {
            ticket: Some(ticket),
            reused_message_id: reused,
            thread_match: mail.thread.matched.rule(),
            plan: Some(Box::new(mail)),
            ..Outcome::bare(row, base.message_id.to_owned(), state)
        });
    }
    // Bounces and authenticated agent mail do not take the customer path.
    if !matches!(mail.sender, Sender::Customer { .. }) {
        return commit_agent_path(tx, cfg, msg, base, reused, mail, now);
    }
    let Some(route) = mail.route.as_ref() else {
        return Err(store::Error::Invariant(
            "a customer message without a route".into(),
        ));
    };
    let route_json = serde_json::to_string(route).unwrap_or_default();
    let problem = msg
        .parsed
        .problem
        .as_deref()
        .unwrap_or(if reused { REUSED_ID_FLAG } else { "" });
    let (state, kind, flag) = match route {
        // The alert that says its trouble is over is the note that
        // resolves the ticket (see `after_customer_message`).
        Route::Ticket { .. } if resolved_alert(msg) => ("ticketed", "note", problem),
        Route::Ticket { .. } => ("ticketed", "customer", problem),
        Route::Quarantine { reason, .. } => ("quarantined", "customer", reason.as_str()),
        Route::Internal { .. } => ("internal", "system", problem),
    };
    let Some(plan) = mail.ticket.as_ref() else {
        let thread_match = mail.thread.matched.rule();
        let row = tx.insert_message(&NewMessage {
            state,
            kind,
            flag,
            thread_match,
            route: &route_json,
            ..base.clone()
        })?;
        return Ok(Outcome {
            reused_message_id: reused,
            thread_match,
            plan: Some(Box::new(mail)),
            ..Outcome::bare(row, base.message_id.to_owned(), state)
        });
    };
    let (ticket, opened, reopened, contact) = open_or_join(tx, cfg, msg, &mail, route, plan, now)?;
    let row = tx.insert_message(&NewMessage {
        ticket: Some(ticket),
        state,
        kind,
        flag,
        thread_match: plan.thread_match,
        route: &route_json,
        ..base.clone()
    })?;
    let refs: Vec<String> = mail
        .probe
        .candidates()
        .into_iter()
        .filter(|id| id != base.message_id)
        .collect();
    tx.insert_refs(row, ticket, &refs)?;
    let new_participant = match contact {
        Some(c) => participant(tx, cfg, &mail, plan, c, ticket, row, opened, now)?,
        None => false,
    };
    thread_events(tx, &mail, plan, ticket, row, reopened, now)?;
    // A flag that suspends the client takes effect on this very message:
    // the suspension notice instead of an acknowledgement.
    let mut suspended_now = false;
    if let Some(verdict) = &plan.detector.verdict {
        let scanned = crate::compliance::Scanned {
            ticket,
            message: row,
            message_id: base.message_id,
            sender: msg.sender(),
            queue: &ticket_queue(tx, ticket)?,
            sends_mail: plan.sends_mail,
            automatic: mail.automatic.clone(),
            rescan: false,
        };
        suspended_now =
            crate::compliance::act(tx, cfg, &scanned, verdict, now)?.is_some_and(|f| f.suspended);
    }
    let after = After {
        ticket,
        row,
        new_participant,
        suspended_now,
    };
    let mut conv = tx.conversation(ticket)?;
    let go_on = match conv.as_mut() {
        Some(c) => ticket_steps(tx, cfg, msg, &mail, plan, &after, c, now)?,
        None => false,
    };
    let automation = match conv {
        Some(conv) if go_on => {
            let notify_before = (conv.assignee.clone(), conv.queue.clone());
            let cascade = automate(tx, cfg, msg, &mail, plan, ticket, row, now)?;
            // What the rules changed is read back only when one applied.
            let conv = if cascade.applied().next().is_some() {
                tx.conversation(ticket)?.unwrap_or(conv)
            } else {
                conv
            };
            // A rule that assigned or moved the ticket changes who is told.
            let agents = if (conv.assignee.as_str(), conv.queue.as_str())
                == (notify_before.0.as_str(), notify_before.1.as_str())
            {
                plan.notifications.agents.clone()
            } else {
                let sender = msg.sender();
                outbound::notify_targets(cfg, &conv.queue, &conv.assignee)
                    .0
                    .into_iter()
                    .filter(|(_, a)| !a.eq_ignore_ascii_case(sender))
                    .collect()
            };
            mail_steps(tx, cfg, msg, &mail, plan, &after, &conv, &agents, now)?;
            cascade.evaluations
        }
        _ => Vec::new(),
    };
    Ok(Outcome {
        ticket: Some(ticket),
        reused_message_id: reused,
        thread_match: plan.thread_match,
        opened,
        reopened,
        automation,
        plan: Some(Box::new(mail)),
        ..Outcome::bare(row, base.message_id.to_owned(), state)
    })
}

/// An agent's mail or mail about mail, carried out by `agent`.
fn commit_agent_path(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    base: &NewMessage<'_>,
    reused: bool,
    mail: MailPlan,
    now: Time,
) -> Result<Outcome, store::Error> {
    let cx = agent::Context {
        cfg,
        env: msg.env,
        parsed: msg.parsed,
        probe: &mail.probe,
        decision: &mail.thread,
        base,
        reused,
        class: mail.class.as_ref(),
        now,
    };
    let Some(done) = agent::commit(tx, &cx, &mail.sender)? else {
        return Err(store::Error::Invariant(
            "the agent path found no ticket the plan named".into(),
        ));
    };
    Ok(Outcome {
        ticket: done.ticket,
        reused_message_id: reused,
        thread_match: done.thread_match,
        plan: Some(Box::new(mail)),
        ..Outcome::bare(done.message, base.message_id.to_owned(), done.state)
    })
}

/// The queue `ticket` is in now.
fn ticket_queue(tx: &Tx<'_>, ticket: TicketId) -> Result<String, store::Error> {
    Ok(tx
        .ticket_scope(ticket)?
        .map(|(queue, _, _)| queue)
        .unwrap_or_default())
}

/// The contact, then the ticket: joined, reopened or opened.
/// `(ticket, opened, reopened)`.
fn open_or_join(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    mail: &MailPlan,
    route: &Route,
    plan: &TicketPlan,
    now: Time,
) -> Result<(TicketId, bool, bool, Option<ContactId>), store::Error> {
    let Route::Ticket {
        queue,
        priority,
        issue_type,
        inbound_address,
        because,
        ..
    } = route
    else {
        return Err(store::Error::Invariant(
            "a ticket plan without a ticket route".into(),
        ));
    };
    // A contact exists before the ticket that names it.
    let contact = contact(tx, msg, now)?;
    let (ticket, opened, reopened) = match plan.target {
        Target::Existing { ticket } => (ticket, false, false),
        Target::Reopen { ticket } => {
            tx.reopen_ticket(ticket, now)?;
            (ticket, false, true)
        }
        Target::New | Target::NewLinked { .. } => {
            let linked_ticket = match plan.target {
                Target::NewLinked { previous } => Some(previous),
                _ => None,
            };
            let subject =
                route::display_subject(msg.parsed.subject.as_deref(), cfg.tickets.subject_max);
            let t = tx.open_ticket(
                &NewTicket {
                    subject: &subject,
                    normalized_subject: &mail.probe.normalized_subject,
                    status: Status::Open.as_str(),
                    priority: priority.as_str(),
                    queue: queue.as_str(),
                    issue_type,
                    requester: contact,
                    requester_name: &route::requester_name(msg.parsed.from.as_ref()),
                    inbound_address,
                    linked_ticket,
                    now,
                },
                cfg.tickets.number_start,
                &store::Opened {
                    cause: because,
                    detail: &serde_json::to_string(route).unwrap_or_default(),
                },
            )?;
            (t, true, false)
        }
    };
    Ok((ticket, opened, reopened, contact))
}

fn contact(tx: &Tx<'_>, msg: Incoming<'_>, now: Time) -> Result<Option<ContactId>, store::Error> {
    match &msg.parsed.from {
        Some(from) => Ok(Some(tx.upsert_contact(
            &from.address,
            from.name.as_deref().unwrap_or(""),
            now,
        )?)),
        None => Ok(None),
    }
}

/// A sender new to an existing ticket (a reply by Message-ID from someone
/// the conversation never included) is recorded, and by default held:
/// threading alone never makes them a recipient of the agents' replies
/// (`#cc ADDRESS` does). Whether they were new.
#[allow(clippy::too_many_arguments)] // one call site, all values distinct
fn participant(
    tx: &Tx<'_>,
    cfg: &Config,
    mail: &MailPlan,
    plan: &TicketPlan,
    c: ContactId,
    ticket: TicketId,
    row: MessageRowId,
    opened: bool,
    now: Time,
) -> Result<bool, store::Error> {
    let role = if opened {
        "requester"
    } else {
        cfg.threading.new_participants.role()
    };
    let new = tx.add_participant(ticket, c, role, now)? && !opened;
    if new {
        tx.event(
            Some(ticket),
            Some(row),
            "new_participant",
            plan.thread_match,
            &serde_json::json!({
                "address": mail.probe.sender,
                "role": role,
                "matched": plan.thread_match,
            }),
            now,
        )?;
    }
    Ok(new)
}

/// The ticket's history: opened (recorded by `open_ticket`), continued
/// from a closed one, reopened, and the message added.
#[allow(clippy::too_many_arguments)] // one call site, all values distinct
fn thread_events(
    tx: &Tx<'_>,
    mail: &MailPlan,
    plan: &TicketPlan,
    ticket: TicketId,
    row: MessageRowId,
    reopened: bool,
    now: Time,
) -> Result<(), store::Error> {
    let thread_json = serde_json::to_string(&mail.thread.matched).unwrap_or_default();
    if let Target::NewLinked { previous } = plan.target {
        tx.event(
            Some(previous),
            Some(row),
            "continued_in_new_ticket",
            mail.thread.matched.rule(),
            &serde_json::json!({ "ticket": ticket, "matched": mail.thread.matched }),
            now,
        )?;
    }
    if reopened {
        tx.record_event(&NewEvent {
            ticket: Some(ticket),
            message: Some(row),
            kind: "ticket_reopened",
            cause: mail.thread.matched.rule(),
            detail: &thread_json,
            now,
        })?;
    }
    tx.record_event(&NewEvent {
        ticket: Some(ticket),
        message: Some(row),
        kind: "message_added",
        cause: plan.thread_match,
        detail: &thread_json,
        now,
    })
}

/// What follows a customer message on its ticket before the rules run:
/// a monitor alert's dedupe key (a `resolved` alert resolves the ticket
/// and ends here: `false`), the status back to `Open`, the SLA clocks, a
/// spoofed agent noted.
#[allow(clippy::too_many_arguments)] // one call site, all values distinct
fn ticket_steps(
    tx: &Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    mail: &MailPlan,
    plan: &TicketPlan,
    after: &After,
    conv: &mut crate::store::Conversation,
    now: Time,
) -> Result<bool, store::Error> {
    let (ticket, row) = (after.ticket, after.row);
    if monitor_alert(tx, msg, plan, conv, row, now)? {
        return Ok(false);
    }
    if let Some(step) = &plan.status {
        outbound::set_status(tx, conv, step.to.as_str(), false, step.because, row, now)?;
    }
    if let Some(sla) = &plan.sla {
        store_sla(tx, cfg, sla, ticket, conv)?;
    }
    if let Sender::Customer {
        not_authenticated: Some(why),
    } = &mail.sender
    {
        tx.event(
            Some(ticket),
            Some(row),
            "agent_not_authenticated",
            "no_valid_agent_address",
            &serde_json::json!({ "from": msg.sender(), "why": why }),
            now,
        )?;
    }
    Ok(true)
}

/// The automation rules for the events the plan names, in a savepoint of
/// their own: should writing their actions fail, the message stays
/// stored and an `automation_failed` event says why.
#[allow(clippy::too_many_arguments)] // one call site, all values distinct
fn automate(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    mail: &MailPlan,
    plan: &TicketPlan,
    ticket: TicketId,
    row: MessageRowId,
    now: Time,
) -> Result<crate::automation::Cascade, store::Error> {
    if !crate::triggers::listens(cfg, &plan.automation) {
        return Ok(crate::automation::Cascade::default());
    }
    let message = crate::triggers::Message {
        row,
        from: msg.sender(),
        subject: msg.parsed.subject.as_deref().unwrap_or(""),
        text: &msg.parsed.text,
        automatic: mail.automatic.as_ref(),
    };
    match tx
        .attempt(|tx| crate::triggers::fire(tx, cfg, ticket, &plan.automation, Some(message), now))
    {
        Ok(c) => Ok(c),
        Err(e) if tx.is_poisoned() => Err(e),
        Err(e) => {
            crate::logging::log_error("automation rules failed", &e);
            tx.event(
                Some(ticket),
                Some(row),
                "automation_failed",
                crate::triggers::CAUSE,
                &serde_json::json!({ "error": crate::logging::chain(&e) }),
                now,
            )?;
            Ok(crate::automation::Cascade::default())
        }
    }
}

/// The mail a customer message sets off: the suspension notice, the
/// acknowledgement and the notifications of `agents`, as planned.
#[allow(clippy::too_many_arguments)] // one call site, all values distinct
fn mail_steps(
    tx: &Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    mail: &MailPlan,
    plan: &TicketPlan,
    after: &After,
    conv: &crate::store::Conversation,
    agents: &[(String, String)],
    now: Time,
) -> Result<(), store::Error> {
    let After {
        row,
        new_participant,
        suspended_now,
        ..
    } = *after;
    let sender = msg.sender();
    // A client suspended from this queue (bypass detector): stored and
    // threaded as always; the notice instead of an acknowledgement, and
    // the agents' notification says so.
    let suspension = match &plan.suspension {
        Some(s) => Some(s.row.clone()),
        None if suspended_now => tx.active_suspension(sender, &conv.queue)?,
        None => None,
    };
    let suspended_line = match &suspension {
        Some(s) => Some(crate::compliance::suspended_mail(
            tx,
            cfg,
            s,
            conv,
            row,
            sender,
            msg.parsed.message_id.as_deref(),
            mail.automatic.clone(),
            plan.sends_mail,
            now,
        )?),
        None => None,
    };
    if !plan.sends_mail {
        return Ok(());
    }
    if suspension.is_none() || plan.acknowledgement.suppressed {
        acknowledge(tx, cfg, msg, conv, &plan.acknowledgement, row, now)?;
    }
    let held = (new_participant
        && cfg.threading.new_participants == crate::config::NewParticipants::Hold)
        .then_some(sender);
    outbound::notify_agents(
        tx,
        cfg,
        conv,
        msg.raw,
        msg.parsed,
        sender,
        agents,
        suspended_line,
        held,
        now,
    )
}

/// A monitor alert from the web door: its dedupe key names the ticket it
/// opened; a `resolved` alert resolves its ticket and ends the step
/// (`true`).
fn monitor_alert(
    tx: &Tx<'_>,
    msg: Incoming<'_>,
    plan: &TicketPlan,
    conv: &mut crate::store::Conversation,
    row: MessageRowId,
    now: Time,
) -> Result<bool, store::Error> {
    let Some(crate::domain::WebKind::Alert { dedupe_key, .. }) =
        msg.env.web_intake().map(|w| &w.kind)
    else {
        return Ok(false);
    };
    if let Some(key) = dedupe_key
        && matches!(plan.target, Target::New | Target::NewLinked { .. })
    {
        tx.record_alert_ticket(key, conv.id, now)?;
    }
    if resolved_alert(msg) {
        outbound::set_status(tx, conv, "Resolved", false, "alert_resolved", row, now)?;
        return Ok(true);
    }
    Ok(false)
}

/// The acknowledgement as planned: sent (with the customer page link when
/// the web door is on), or the reason it was suppressed recorded.
fn acknowledge(
    tx: &Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    conv: &crate::store::Conversation,
    ack: &super::plan::Step,
    row: MessageRowId,
    now: Time,
) -> Result<(), store::Error> {
    let sender = msg.sender();
    if ack.suppressed {
        tracing::info!(
            ticket = conv.id.0,
            because = ack.because,
            "acknowledgement suppressed"
        );
        tx.event(
            Some(conv.id),
            Some(row),
            "auto_reply_suppressed",
            ack.because,
            &serde_json::json!({ "to": sender, "detail": ack.detail, "mail": "acknowledgement" }),
            now,
        )?;
    } else if ack.send {
        let mut vars = outbound::ticket_vars(cfg, conv);
        if let Some(url) = outbound::customer_url(cfg, conv.id, now) {
            vars.insert("customer_url", url.into());
        }
        let mut refs = msg.parsed.references.clone();
        refs.extend(msg.parsed.message_id.iter().cloned());
        let reply = AutoReplyMail {
            kind: "ack",
            template: "acknowledgement",
            to: sender,
            in_reply_to: msg.parsed.message_id.clone(),
            references: refs,
        };
        outbound::auto_reply(tx, cfg, conv, &reply, &vars, now)?;
    }
    Ok(())
}

/// Store the SLA clocks the plan computed. Alerts that fired before are
/// not read here, on every message: the scheduler's sweep skips them and
/// then sets the next check right.
fn store_sla(
    tx: &Tx<'_>,
    cfg: &Config,
    sla: &super::plan::SlaStep,
    ticket: TicketId,
    conv: &crate::store::Conversation,
) -> Result<(), store::Error> {
    crate::timers::store_clocks(
        tx,
        &cfg.sla,
        ticket,
        sla.had,
        Some(&sla.clocks),
        crate::sla::priority(&conv.priority),
        &[],
    )
}

/// Whether `msg` is a monitor alert saying its trouble is over.
fn resolved_alert(msg: Incoming<'_>) -> bool {
    matches!(
        msg.env.web_intake().map(|w| &w.kind),
        Some(crate::domain::WebKind::Alert { resolved: true, .. })
    )
}

/// What the commit learnt before the mail step.
#[derive(Debug, Clone, Copy)]
struct After {
    ticket: TicketId,
    row: MessageRowId,
    new_participant: bool,
    /// The detector suspended the sender on this message.
    suspended_now: bool,
}

/// Owned JSON renderings that [`NewMessage`] borrows.
pub(super) struct Rendered {
    envelope_to: String,
    peer: String,
    to: String,
    cc: String,
    in_reply_to: String,
    refs: String,
    headers: String,
}

impl Rendered {
    pub(super) fn new(msg: Incoming<'_>) -> Self {
        let (env, parsed) = (msg.env, msg.parsed);
        Rendered {
            envelope_to: json(&env.rcpt_to),
            peer: env.peer.map(|p| p.to_string()).unwrap_or_default(),
            to: json(&parsed.to.iter().map(|m| &m.address).collect::<Vec<_>>()),
            cc: json(&parsed.cc.iter().map(|m| &m.address).collect::<Vec<_>>()),
            in_reply_to: json(&parsed.in_reply_to),
            refs: json(&parsed.references),
            headers: json(&parsed.headers),
        }
    }
}

/// The message row as stored when nothing more is known.
pub(super) fn base_message<'a>(
    msg: Incoming<'a>,
    r: &'a Rendered,
    message_id: &'a str,
    is_synthetic_id: bool,
    now: Time,
) -> NewMessage<'a> {
    let (env, parsed) = (msg.env, msg.parsed);
    NewMessage {
        ticket: None,
        message_id,
        is_synthetic_id,
        content_hash: &parsed.content_hash,
        direction: "inbound",
        kind: "customer",
        state: "ticketed",
        flag: "",
        thread_match: "",
        route: "",
        source: env.source.as_str(),
        envelope_from: &env.mail_from,
        envelope_to: &r.envelope_to,
        peer: &r.peer,
        from_addr: parsed
            .from
            .as_ref()
            .map(|m| m.address.as_str())
            .unwrap_or(""),
        from_name: parsed
            .from
            .as_ref()
            .and_then(|m| m.name.as_deref())
            .unwrap_or(""),
        to_addrs: &r.to,
        cc_addrs: &r.cc,
        subject: parsed.subject.as_deref().unwrap_or(""),
        in_reply_to: &r.in_reply_to,
        refs: &r.refs,
        date_header: parsed.date,
        headers: &r.headers,
        text: &parsed.text,
        html: parsed.html.as_deref(),
        raw: msg.raw,
        attachments: &parsed.attachments,
        now,
    }
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}
