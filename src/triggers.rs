//! Where a ticket's events set the automation rules off, and their
//! actions are written: [`fire`] reads the ticket's facts in the caller's
//! transaction, runs the rules (`automation::run`, pure) and carries out
//! every applied rule's actions, each change an event like an agent's
//! command (`status_changed`, `assigned`, ...) with the cause
//! `automation`, then one `automation_applied` per rule. An action that
//! cannot be carried out (no available agent, a template that fails) is
//! an `automation_failed` event; the message that set the rules off is
//! stored all the same. [`idle`] is the scheduler's sweep for `idle`
//! rules.

use serde_json::json;

use crate::automation::{self, Action, Assign, Cascade, Facts, MessageFacts, Notify, Trigger};
use crate::domain::{MessageRowId, TicketId, Time};
use crate::outbound::compose::{Address, AutoSubmitted};
use crate::outbound::{self, AutoReplyMail, Config};
use crate::store::{self, Conversation, TicketField, Tx};

/// The cause recorded on the events of the changes a rule makes.
pub const CAUSE: &str = "automation";

/// The message that set the rules off.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Its row.
    pub row: MessageRowId,
    /// Its sender.
    pub from: &'a str,
    /// Its subject.
    pub subject: &'a str,
    /// Its text.
    pub text: &'a str,
    /// Whether the loop guard took it for automatic mail: no automatic
    /// reply answers it.
    pub automatic: Option<&'a crate::guard::Automatic>,
}

/// Whether any rule listens to any of `triggers`.
pub fn listens(cfg: &Config, triggers: &[Trigger]) -> bool {
    cfg.automation
        .iter()
        .any(|r| r.on.iter().any(|t| triggers.contains(t)))
}

/// Run the rules for `triggers` on `ticket` and write what they do.
///
/// # Errors
///
/// [`store::Error`] when a statement fails.
pub fn fire(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: TicketId,
    triggers: &[Trigger],
    message: Option<Message<'_>>,
    now: Time,
) -> Result<Cascade, store::Error> {
    fire_rules(tx, cfg, ticket, triggers, None, message, now)
}

/// [`fire`], the initial events limited to rule `only` (by index).
fn fire_rules(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: TicketId,
    triggers: &[Trigger],
    only: Option<usize>,
    message: Option<Message<'_>>,
    now: Time,
) -> Result<Cascade, store::Error> {
    if !listens(cfg, triggers) {
        return Ok(Cascade::default());
    }
    let Some(mut conv) = tx.conversation(ticket)? else {
        return Ok(Cascade::default());
    };
    let trace = tx.is_dry_run();
    let cascade = evaluate(
        tx,
        cfg,
        &conv,
        triggers,
        (only, trace),
        message.as_ref(),
        now,
    )?;
    carry_out(tx, cfg, &mut conv, &cascade, message.as_ref(), now)?;
    Ok(cascade)
}

/// The rules on `conv`'s facts, agents picked from the store.
fn evaluate(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    triggers: &[Trigger],
    only_trace: (Option<usize>, bool),
    message: Option<&Message<'_>>,
    now: Time,
) -> Result<Cascade, store::Error> {
    let mut facts = facts(tx, cfg, conv, message)?;
    let mut assigner = StoreAssigner { tx, cfg, now };
    Ok(automation::run(
        &cfg.automation,
        &mut facts,
        triggers,
        only_trace,
        &mut assigner,
        now,
    ))
}

/// The rules for `triggers` on `ticket` as [`fire`] would run them now,
/// writing nothing of their actions (the round-robin cursor moves: run it
/// in a transaction that is rolled back).
///
/// # Errors
///
/// [`store::Error`] when a statement fails.
pub fn dry_run(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: TicketId,
    triggers: &[Trigger],
    message: Option<Message<'_>>,
    now: Time,
) -> Result<Option<Cascade>, store::Error> {
    match tx.conversation(ticket)? {
        Some(conv) => evaluate(
            tx,
            cfg,
            &conv,
            triggers,
            (None, true),
            message.as_ref(),
            now,
        )
        .map(Some),
        None => Ok(None),
    }
}

/// What the rules read of `conv` (and of the message).
pub fn facts(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    message: Option<&Message<'_>>,
) -> Result<Facts, store::Error> {
    let since = tx.status_since(conv.id)?.unwrap_or(conv.created_at);
    Ok(Facts {
        queue: conv.queue.clone(),
        priority: conv.priority.clone(),
        status: conv.status.clone(),
        issue_type: conv.issue_type.clone(),
        assignee: conv.assignee.clone(),
        tags: tx.tags(conv.id)?.into_iter().collect(),
        client: cfg
            .mailbox(&conv.inbound_address)
            .map(|(c, _)| c.name.clone()),
        mailbox: conv.inbound_address.to_ascii_lowercase(),
        subject: conv.subject.clone(),
        requester: conv.requester.clone(),
        status_since: Time::from_secs(since),
        message: message.map(|m| MessageFacts::new(m.from, m.subject, m.text)),
    })
}

/// Picks agents from the store: the team's available agents, their
/// unfinished tickets counted in this transaction (so a batch of many
/// tickets is spread right), ties and turns by the team's cursor.
struct StoreAssigner<'a, 'c> {
    tx: &'a Tx<'c>,
    cfg: &'a Config,
    now: Time,
}

impl automation::Assigner for StoreAssigner<'_, '_> {
    fn pick(&mut self, how: &Assign) -> Option<String> {
        let result = match how {
            Assign::Agent(name) => Ok(self
                .cfg
                .agents
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name) && a.available(self.now))
                .map(|a| a.name.clone())),
            Assign::LeastBusy(team) => self.pick_in_team(team, true),
            Assign::RoundRobin(team) => self.pick_in_team(team, false),
        };
        result.unwrap_or_else(|e| {
            crate::logging::log_error("automatic assignment failed", &e);
            None
        })
    }
}

impl StoreAssigner<'_, '_> {
    /// The next of `team`'s available agents after the cursor, among the
    /// least busy ones when `least_busy`.
    fn pick_in_team(&self, team: &str, least_busy: bool) -> Result<Option<String>, store::Error> {
        let members: Vec<&str> = self
            .cfg
            .outbound
            .teams
            .get(team)
            .into_iter()
            .flatten()
            .filter_map(|name| {
                self.cfg
                    .agents
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(name) && a.available(self.now))
                    .map(|a| a.name.as_str())
            })
            .collect();
        if members.is_empty() {
            return Ok(None);
        }
        let eligible: Vec<&str> = if least_busy {
            let counts = self.tx.unfinished_counts(&members)?;
            let min = counts.iter().copied().min().unwrap_or(0);
            members
                .iter()
                .zip(&counts)
                .filter(|(_, c)| **c == min)
                .map(|(m, _)| *m)
                .collect()
        } else {
            members.clone()
        };
        let last = self.tx.assignment_cursor(team)?;
        let after = last
            .as_deref()
            .and_then(|l| members.iter().position(|m| *m == l));
        // The first eligible agent after the last one given a ticket, in
        // the team's order, wrapping around.
        let n = members.len();
        let start = after.map_or(0, |i| i + 1);
        let pick = (0..n)
            .map(|k| members[(start + k) % n])
            .find(|m| eligible.contains(m));
        if let Some(p) = pick {
            self.tx.set_assignment_cursor(team, p, self.now)?;
        }
        Ok(pick.map(str::to_owned))
    }
}

/// Write every applied rule's actions, then the cap's event.
fn carry_out(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &mut Conversation,
    cascade: &Cascade,
    message: Option<&Message<'_>>,
    now: Time,
) -> Result<(), store::Error> {
    let row = message.map(|m| m.row);
    let mut sla_moved = false;
    for eval in cascade.applied() {
        for action in &eval.actions {
            sla_moved |= matches!(
                action,
                Action::SetStatus { .. } | Action::SetPriority { .. }
            );
            act(tx, cfg, conv, &eval.rule, action, message, now)?;
        }
        tx.event(
            Some(conv.id),
            row,
            "automation_applied",
            eval.on,
            &json!({ "rule": eval.rule, "on": eval.on, "actions": eval.actions }),
            now,
        )?;
    }
    if cascade.capped {
        tracing::warn!(
            ticket = conv.id.0,
            cap = automation::CASCADE_CAP,
            "automation cascade capped"
        );
        let rules: Vec<&str> = cascade.applied().map(|e| e.rule.as_str()).collect();
        tx.event(
            Some(conv.id),
            row,
            "automation_capped",
            "cascade_cap",
            &json!({ "cap": automation::CASCADE_CAP, "rules": rules }),
            now,
        )?;
    }
    if sla_moved {
        crate::timers::record(tx, &cfg.sla, conv.id, crate::sla::Happened::Changed, now)?;
    }
    Ok(())
}

/// An action of rule `rule` that could not be carried out: logged, and an
/// `automation_failed` event on the ticket.
fn failed(
    tx: &Tx<'_>,
    ticket: TicketId,
    row: Option<MessageRowId>,
    (rule, action): (&str, &str),
    error: &str,
    now: Time,
) -> Result<(), store::Error> {
    tracing::warn!(
        ticket = ticket.0,
        rule,
        action,
        error,
        "automation action failed"
    );
    tx.event(
        Some(ticket),
        row,
        "automation_failed",
        CAUSE,
        &json!({ "rule": rule, "action": action, "error": error }),
        now,
    )
}

/// One action of rule `rule`.
fn act(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &mut Conversation,
    rule: &str,
    action: &Action,
    message: Option<&Message<'_>>,
    now: Time,
) -> Result<(), store::Error> {
    let row = message.map(|m| m.row);
    let ticket = conv.id;
    let changed = |kind: &str, from: &str, to: &str| {
        tx.event(
            Some(ticket),
            row,
            kind,
            CAUSE,
            &json!({ "rule": rule, "from": from, "to": to }),
            now,
        )
    };
    match action {
        Action::Assign { agent: Some(a), .. } => {
            tx.set_ticket_field(ticket, TicketField::Assignee, a, now)?;
            changed("assigned", &conv.assignee, a)?;
            conv.assignee.clone_from(a);
        }
        Action::Assign { how, agent: None } => {
            let why = match how {
                Assign::Agent(a) => format!("agent {a} is away"),
                Assign::LeastBusy(t) | Assign::RoundRobin(t) => {
                    format!("no available agent in team {t}")
                }
            };
            failed(tx, ticket, row, (rule, "assign"), &why, now)?;
        }
        Action::SetPriority { to } => {
            tx.set_ticket_field(ticket, TicketField::Priority, to, now)?;
            changed("priority_changed", &conv.priority, to)?;
            conv.priority.clone_from(to);
        }
        Action::SetType { to } => {
            tx.set_ticket_field(ticket, TicketField::IssueType, to, now)?;
            changed("type_changed", &conv.issue_type, to)?;
            conv.issue_type.clone_from(to);
        }
        Action::SetQueue { to } => {
            tx.set_ticket_field(ticket, TicketField::Queue, to, now)?;
            changed("moved", &conv.queue, to)?;
            conv.queue.clone_from(to);
        }
        Action::SetStatus { to } => {
            tx.set_ticket_status(ticket, to, false, now)?;
            changed("status_changed", &conv.status, to)?;
            conv.status.clone_from(to);
            if to == "Resolved" {
                crate::satisfaction::survey(tx, cfg, conv, row, now)?;
            }
        }
        Action::AddTag { tag } => {
            tx.add_tag(ticket, tag, now)?;
            changed("tag_added", "", tag)?;
        }
        Action::RemoveTag { tag } => {
            tx.remove_tag(ticket, tag)?;
            changed("tag_removed", tag, "")?;
        }
        Action::Note { text } => {
            tx.event(
                Some(ticket),
                row,
                "note_added",
                CAUSE,
                &json!({ "rule": rule, "text": text }),
                now,
            )?;
        }
        Action::Reply { template } => reply(tx, cfg, conv, rule, template, message, now)?,
        Action::Notify { to } => notify(tx, cfg, conv, rule, to, now)?,
    }
    Ok(())
}

/// `reply_template`: the template to the requester, loop-guarded like
/// every automatic reply.
fn reply(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &mut Conversation,
    rule: &str,
    template: &str,
    message: Option<&Message<'_>>,
    now: Time,
) -> Result<(), store::Error> {
    let row = message.map(|m| m.row);
    if conv.requester.is_empty() {
        let why = "the ticket has no requester";
        return failed(tx, conv.id, row, (rule, "reply_template"), why, now);
    }
    let to = conv.requester.clone();
    let automatic = message.and_then(|m| m.automatic.cloned());
    if !outbound::may_auto_reply(tx, cfg, conv.id, row, &to, automatic, "automation", now)? {
        return Ok(());
    }
    tx.load_thread(conv)?;
    let vars = outbound::ticket_vars(cfg, conv);
    let mut refs = conv.last_customer_refs.clone();
    refs.extend(conv.last_customer_message.iter().cloned());
    let mail = AutoReplyMail {
        kind: "automation",
        template,
        to: &to,
        in_reply_to: conv.last_customer_message.clone(),
        references: refs,
    };
    if outbound::auto_reply(tx, cfg, conv, &mail, &vars, now)?.is_none() {
        let why = format!("template {template} did not render");
        failed(tx, conv.id, row, (rule, "reply_template"), &why, now)?;
    }
    Ok(())
}

/// `notify`: one mail to each address named (teams and agents by their
/// addresses, `admins` by `[monitoring] admins`), none twice. The mail
/// tells; it carries no reply address that acts on the ticket.
fn notify(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    rule: &str,
    to: &[Notify],
    now: Time,
) -> Result<(), store::Error> {
    let agent = |name: &str| {
        cfg.agents
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.address.clone())
    };
    let mut addresses: Vec<String> = Vec::new();
    for n in to {
        let found: Vec<String> = match n {
            Notify::Team(t) => cfg
                .outbound
                .teams
                .get(t)
                .into_iter()
                .flatten()
                .filter_map(|m| agent(m))
                .collect(),
            Notify::Admins => cfg.monitoring.admins.clone(),
            Notify::Agent(a) => agent(a).into_iter().collect(),
            Notify::Address(a) => vec![a.clone()],
        };
        for a in found {
            if !addresses.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                addresses.push(a);
            }
        }
    }
    let mut vars = outbound::ticket_vars(cfg, conv);
    vars.insert("rule_name", rule.into());
    let note = cfg
        .automation
        .iter()
        .find(|r| r.name == rule)
        .and_then(|r| r.actions.note.clone())
        .unwrap_or_default();
    vars.insert("rule_note", note.into());
    let Some(r) = outbound::render(tx, cfg, Some(conv.id), "automation", &vars, now)? else {
        return Ok(());
    };
    let from = outbound::our_address(cfg, conv);
    for a in addresses {
        let mail = outbound::Mail {
            kind: "automation_notice",
            message_kind: "system",
            ticket: Some(conv.id),
            draft: outbound::draft(
                cfg,
                Address::named("postdesk", &from),
                vec![Address::bare(&a)],
                r.subject.clone(),
                r.body.clone(),
                AutoSubmitted::AutoGenerated,
                now,
            ),
            rcpts: vec![a.clone()],
            mail_from: outbound::Sender::Null,
            is_automatic: true,
        };
        outbound::queue(tx, &mail, now)?;
    }
    Ok(())
}

/// The scheduler's sweep for `idle` rules: each runs once on each ticket
/// per stay in a status, when the stay reaches its `idle` time. At most
/// `limit` tickets per rule per pass; whether more may be due.
///
/// # Errors
///
/// [`store::Error`] when a statement fails.
pub fn idle(tx: &Tx<'_>, cfg: &Config, now: Time, limit: usize) -> Result<bool, store::Error> {
    let mut more = false;
    for (i, rule) in cfg.automation.iter().enumerate() {
        let Some(idle) = rule.conditions.idle else {
            continue;
        };
        if !rule.on.contains(&Trigger::Idle) {
            continue;
        }
        // Business time never runs faster than the wall clock: the stays
        // long enough by the wall clock are the only candidates.
        let cutoff = now.secs() - idle;
        let due = tx.idle_candidates(&rule.name, cutoff, limit)?;
        let full = due.len() == limit;
        let mut ran = false;
        for (ticket, since) in due {
            // Not yet idle long enough in business time: looked at again
            // on a later pass.
            let spent = automation::idle_secs(&rule.conditions, Time::from_secs(since), now);
            if spent < idle {
                continue;
            }
            fire_rules(tx, cfg, ticket, &[Trigger::Idle], Some(i), None, now)?;
            tx.mark_idle(&rule.name, ticket, since, now)?;
            ran = true;
        }
        // Another pass only when this one made progress.
        more |= full && ran;
    }
    Ok(more)
}
