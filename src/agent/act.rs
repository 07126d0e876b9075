//! Carrying out an authenticated agent's mail on its ticket.
//!
//! The quoted text is stripped (after decoding), the `#commands` at the
//! top are parsed and checked against the store (a `#merge` target that
//! exists, an admin's `#unsuspend`, a closed ticket that needs `#reopen`),
//! and the mail is stored. With any problem nothing runs, nothing is
//! relayed and the agent gets an answer saying what was wrong. Otherwise
//! `#cc` participants are added, the reply is relayed (or the mail kept as
//! a note), then each command runs, each one an event.

use minijinja::Value;

use crate::automation::Trigger;
use crate::command::{self, Command, Known, Script};
use crate::config::Agent;
use crate::domain::{MessageRowId, TicketId, Time};
use crate::guard::{self, AutoReply};
use crate::outbound::compose::{self, Address, AutoSubmitted, Draft};
use crate::outbound::{self, Config, Mail, display_name};
use crate::store::{self, Conversation, NewMessage, TicketField, Tx};
use crate::thread;

use super::relay::relay;
use super::{Context, Outcome};

/// Carry out an authenticated agent's mail on `conv`.
pub(super) fn act(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    agent: &Agent,
    mut conv: Conversation,
) -> Result<Outcome, store::Error> {
    let cfg = cx.cfg;
    let now = cx.now;
    let ticket = conv.id;
    let cause = format!("agent:{}", agent.name);
    let before = (conv.status.clone(), conv.assignee.clone());

    if let Some(auto) = guard::is_automatic(cfg, cx.env, cx.parsed) {
        return store_automatic(tx, cx, agent, ticket, &auto);
    }

    // Quotes go after decoding: parse already decoded QP and base64.
    let text = crate::detect::quote::new_text(&cx.parsed.text).into_owned();
    let script = parse_script(cfg, &text);
    let mut errors = script.errors.clone();
    let targets = merge_targets(tx, ticket, &script, &mut errors)?;
    let split_at = split_point(tx, cx, ticket, &script, &mut errors)?;
    let lift = clients_to_lift(tx, cfg, agent, &conv, &script, &mut errors)?;

    // A closed ticket's agent address still threads a late reply, but it
    // acts only after `#reopen`: without it, only `#note`, `#close` and
    // `#resolve` are taken, and anything else (a reply to relay, another
    // command) is answered instead of relayed or carried out.
    let reopens = script
        .commands
        .iter()
        .any(|(_, c)| matches!(c, Command::Reopen));
    if thread::is_closed(&conv.status) && !reopens {
        closed_ticket_errors(cfg, &conv, &script, &mut errors);
    }

    let row = store_mail(tx, cx, ticket, &script, &text, &errors)?;

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
    copy_participants(tx, ticket, &script, &cause, row, now)?;

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

    run_commands(
        tx,
        cx,
        &cause,
        &mut conv,
        &script,
        (&targets, split_at.as_ref()),
        row,
    )?;
    lift_suspensions(tx, &conv, &lift, &cause, row, now)?;
    // The SLA after the reply and the commands: a reply meets the first
    // and next response, a status or priority command moves the clocks.
    let replied = !script.is_note() && !script.body.trim().is_empty();
    let happened = if replied {
        crate::sla::Happened::AgentReply
    } else {
        crate::sla::Happened::Changed
    };
    crate::timers::record(tx, &cfg.sla, conv.id, happened, now)?;
    // The automation rules: the reply, and what the commands changed.
    let mut events = Vec::new();
    if replied {
        events.push(Trigger::AgentReplied);
    }
    if conv.status != before.0 {
        events.push(Trigger::StatusChanged);
    }
    if conv.assignee != before.1 && !conv.assignee.is_empty() {
        events.push(Trigger::Assigned);
    }
    let message = crate::triggers::Message {
        row,
        from: &agent.address,
        subject: cx.parsed.subject.as_deref().unwrap_or(""),
        text: &text,
        automatic: None,
    };
    crate::triggers::fire(tx, cfg, conv.id, &events, Some(message), now)?;
    Ok(cx.outcome(row, Some(conv.id), "token", "ticketed"))
}

/// Store an automatic mail from an agent (a vacation reply to a
/// notification) as a note that is never relayed.
fn store_automatic(
    tx: &Tx<'_>,
    cx: &Context<'_, '_>,
    agent: &Agent,
    ticket: TicketId,
    auto: &guard::Automatic,
) -> Result<Outcome, store::Error> {
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
        cx.now,
    )?;
    Ok(cx.outcome(row, Some(ticket), "token", "ticketed"))
}

/// Parse the `#commands` at the top of the agent's text, against the
/// configured agents, canned responses and ticket number format.
fn parse_script(cfg: &Config, text: &str) -> Script {
    let agents: Vec<String> = cfg.agents.iter().map(|a| a.name.clone()).collect();
    command::parse(
        text,
        &Known {
            agents: &agents,
            canned: cfg.outbound.templates.canned_names(),
            tickets: &cfg.tickets,
        },
    )
}

/// Find each `#merge` target (after its own merges), in command order; a
/// missing ticket or this ticket itself is an error.
fn merge_targets(
    tx: &Tx<'_>,
    ticket: TicketId,
    script: &Script,
    errors: &mut Vec<String>,
) -> Result<Vec<TicketId>, store::Error> {
    let mut targets = Vec::new();
    for (line, c) in &script.commands {
        if let Command::Merge(n) = c {
            match tx.ticket_by_number(*n)? {
                None => errors.push(format!(
                    "line {line}: #merge: there is no ticket with number {n}"
                )),
                Some(t) => {
                    let t = tx.merge_target(t)?.unwrap_or(t);
                    if t == ticket {
                        errors.push(format!(
                            "line {line}: #merge: {n} is this ticket; a ticket cannot be merged into itself"
                        ));
                    }
                    targets.push(t);
                }
            }
        }
    }
    Ok(targets)
}

/// Where `#split` splits: the customer message whose notification the
/// agent answers. Checked before anything is carried out, so a `#split`
/// that cannot be done rejects the mail.
fn split_point(
    tx: &Tx<'_>,
    cx: &Context<'_, '_>,
    ticket: TicketId,
    script: &Script,
    errors: &mut Vec<String>,
) -> Result<Option<crate::store::SplitPoint>, store::Error> {
    let Some(line) = script
        .commands
        .iter()
        .find(|(_, c)| matches!(c, Command::Split))
        .map(|(l, _)| *l)
    else {
        return Ok(None);
    };
    let Some(at) = super::split::notified_message(tx, ticket, &cx.parsed.in_reply_to)? else {
        errors.push(format!(
            "line {line}: #split: reply to the notification of the message to split off"
        ));
        return Ok(None);
    };
    if !tx.has_messages_before(ticket, at.row)? {
        errors.push(format!(
            "line {line}: #split: that is the ticket's first message; nothing would stay"
        ));
        return Ok(None);
    }
    Ok(Some(at))
}

/// The clients each `#unsuspend` lifts: admins only; without an address,
/// the clients suspended on this ticket (as the flagged ticket or its
/// Compliance Alert), else its requester.
fn clients_to_lift(
    tx: &Tx<'_>,
    cfg: &Config,
    agent: &Agent,
    conv: &Conversation,
    script: &Script,
    errors: &mut Vec<String>,
) -> Result<Vec<String>, store::Error> {
    let ticket = conv.id;
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
    Ok(lift)
}

/// On a closed ticket without `#reopen`: every command but `#note`,
/// `#close` and `#resolve` is an error, and so is a reply to relay.
fn closed_ticket_errors(
    cfg: &Config,
    conv: &Conversation,
    script: &Script,
    errors: &mut Vec<String>,
) {
    let tag = cfg
        .tickets
        .format_tag(conv.number, &conv.queue, conv.opened());
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

/// Store the agent's mail on the ticket: a note (its note text and body)
/// or the agent's stripped reply, flagged when a command was refused.
fn store_mail(
    tx: &Tx<'_>,
    cx: &Context<'_, '_>,
    ticket: TicketId,
    script: &Script,
    text: &str,
    errors: &[String],
) -> Result<MessageRowId, store::Error> {
    let stored_text = if script.is_note() {
        [script.note_text.as_str(), script.body.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        text.to_owned()
    };
    tx.insert_message(&NewMessage {
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
    })
}

/// Add each `#cc` address as a participant, each an event.
fn copy_participants(
    tx: &Tx<'_>,
    ticket: TicketId,
    script: &Script,
    cause: &str,
    row: MessageRowId,
    now: Time,
) -> Result<(), store::Error> {
    for (_, c) in &script.commands {
        if let Command::Cc(address) = c {
            let before = tx.copy_participant(ticket, address, now)?;
            tx.event(
                Some(ticket),
                Some(row),
                "participant_copied",
                cause,
                &serde_json::json!({
                    "command": "cc",
                    "address": address,
                    "was": before.unwrap_or_default(),
                }),
                now,
            )?;
        }
    }
    Ok(())
}

/// Lift the suspensions of the clients `#unsuspend` named, each an event
/// on the ticket the commands ended on.
fn lift_suspensions(
    tx: &Tx<'_>,
    conv: &Conversation,
    lift: &[String],
    cause: &str,
    row: MessageRowId,
    now: Time,
) -> Result<(), store::Error> {
    for client in lift {
        let lifted = crate::compliance::unsuspend(tx, client, None, cause, now)?;
        tx.event(
            Some(conv.id),
            Some(row),
            "unsuspend_command",
            cause,
            &serde_json::json!({ "client": client, "lifted": lifted.len() }),
            now,
        )?;
    }
    Ok(())
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
        tx.automatic_mails_since(&agent.address, now.secs() - 3600)?,
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
    (targets, split_at): (&[TicketId], Option<&crate::store::SplitPoint>),
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
                // Once per resolution: only a change to Resolved asks.
                if matches!(c, Command::Resolve) {
                    crate::satisfaction::survey(tx, cx.cfg, conv, Some(row), now)?;
                }
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
            Command::Split => {
                let Some(at) = split_at else {
                    continue;
                };
                // Checked before anything was carried out (`split_point`).
                if let Err(why) = super::split::split(tx, cx.cfg, conv, at, Some(row), cause, now)?
                {
                    tracing::warn!(ticket = ticket.0, why, "split not carried out");
                }
            }
            Command::Move(q) => {
                if conv.queue != q.as_str() {
                    tx.set_ticket_field(ticket, TicketField::Queue, q.as_str(), now)?;
                    changed("moved", &conv.queue, q.as_str())?;
                    conv.queue = q.as_str().to_owned();
                }
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
                let next = tx.conversation(target)?;
                let tickets = &cx.cfg.tickets;
                let detail = serde_json::json!({
                    "command": "merge",
                    "source": tickets.format_number(conv.number, &conv.queue, conv.opened()),
                    "target": next.as_ref().map_or_else(
                        || n.to_string(),
                        |t| tickets.format_number(t.number, &t.queue, t.opened()),
                    ),
                    "messages_moved": moved,
                });
                tx.event(Some(ticket), Some(row), "merged", cause, &detail, now)?;
                tx.event(Some(target), Some(row), "merged", cause, &detail, now)?;
                if let Some(next) = next {
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
}
