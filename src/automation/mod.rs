//! Automation rules: `[[automation]]` in `rules.toml`, then
//! `automation/*.toml` in name order. Each rule names the events it
//! listens to (`on`), the conditions that must all hold (`if`) and the
//! actions it takes (`then`).
//!
//! This module is pure: [`rules`] reads and checks the tables, [`run`]
//! evaluates the rules against a ticket's [`Facts`] and returns what
//! happened (the [`Cascade`]): every rule evaluated with each condition and
//! why it held or not, and the actions of every rule that matched, in
//! order. The writes live in `triggers`, which loads the facts, calls
//! [`run`] and carries the cascade out in the caller's transaction.
//!
//! Safe by construction: a change a rule makes fires `status_changed` or
//! `assigned` for the later rules, but never re-triggers the rule that
//! made it; a cascade stops after [`CASCADE_CAP`] rule applications
//! ([`Cascade::capped`]).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::domain::Time;
use crate::sla::Calendar;

pub mod rules;

pub use rules::RawRule;
pub(crate) use rules::check;

/// Most rule applications in one cascade.
pub const CASCADE_CAP: usize = 10;

/// What sets rules off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A message opened a ticket.
    TicketCreated,
    /// A message joined a ticket (a new ticket's first message too).
    MessageAdded,
    /// The customer wrote on an existing ticket.
    CustomerReplied,
    /// An agent replied (or wrote a note) by mail.
    AgentReplied,
    /// The ticket's status changed.
    StatusChanged,
    /// The ticket was assigned.
    Assigned,
    /// An SLA target is near.
    SlaWarning,
    /// An SLA target passed.
    SlaBreached,
    /// The ticket stayed in its status for the rule's `idle` time.
    Idle,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 9] = [
        Trigger::TicketCreated,
        Trigger::MessageAdded,
        Trigger::CustomerReplied,
        Trigger::AgentReplied,
        Trigger::StatusChanged,
        Trigger::Assigned,
        Trigger::SlaWarning,
        Trigger::SlaBreached,
        Trigger::Idle,
    ];

    /// The name in `on = [...]`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::TicketCreated => "ticket_created",
            Trigger::MessageAdded => "message_added",
            Trigger::CustomerReplied => "customer_replied",
            Trigger::AgentReplied => "agent_replied",
            Trigger::StatusChanged => "status_changed",
            Trigger::Assigned => "assigned",
            Trigger::SlaWarning => "sla_warning",
            Trigger::SlaBreached => "sla_breached",
            Trigger::Idle => "idle",
        }
    }

    /// The trigger named `name`.
    pub fn parse(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name (unique).
    pub name: String,
    /// The events it listens to.
    pub on: Vec<Trigger>,
    /// All must hold.
    pub conditions: Conditions,
    /// What it does.
    pub actions: Actions,
    /// No later rule runs for the event that matched this one.
    pub stop: bool,
}

/// A rule's conditions; an empty list (or `None`) is no condition.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Queue names, lower-case.
    pub queue: Vec<String>,
    /// Priorities, as stored (`Medium`).
    pub priority: Vec<String>,
    /// Statuses, as stored (`Open`).
    pub status: Vec<String>,
    /// Issue types (any case).
    pub issue_type: Vec<String>,
    /// Client names (`mailboxes/NAME.toml`).
    pub client: Vec<String>,
    /// Inbound addresses, lower-case.
    pub mailbox: Vec<String>,
    /// Sender domains, lower-case.
    pub from_domain: Vec<String>,
    /// Tags, any of which the ticket has.
    pub tags: Vec<String>,
    /// A regex over the subject.
    pub subject_matches: Option<regex::Regex>,
    /// Keywords over the message text, folded (accents, case).
    pub body_keywords: Option<Keywords>,
    /// Inside this calendar's hours (or, with `false`, outside them).
    pub business_hours: Option<(Arc<Calendar>, bool)>,
    /// Time in the current status, seconds.
    pub idle: Option<i64>,
    /// Count `idle` in this calendar's hours.
    pub idle_calendar: Option<Arc<Calendar>>,
}

/// Body keywords and their automaton.
#[derive(Debug, Clone)]
pub struct Keywords {
    /// As written, folded.
    pub words: Vec<String>,
    /// One automaton over `words`.
    pub matcher: aho_corasick::AhoCorasick,
}

/// A rule's actions, carried out in this order.
#[derive(Debug, Clone, Default)]
pub struct Actions {
    /// Assign the ticket.
    pub assign: Option<Assign>,
    /// Set the priority (as stored).
    pub set_priority: Option<String>,
    /// Set the status (as stored).
    pub set_status: Option<String>,
    /// Set the issue type.
    pub set_type: Option<String>,
    /// Move to a queue.
    pub set_queue: Option<String>,
    /// Add tags.
    pub add_tags: Vec<String>,
    /// Remove tags.
    pub remove_tags: Vec<String>,
    /// An internal note on the ticket.
    pub note: Option<String>,
    /// A template mailed to the customer.
    pub reply_template: Option<String>,
    /// Who is told, by mail.
    pub notify: Vec<Notify>,
}

/// Whom `assign` picks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "how", content = "name", rename_all = "snake_case")]
pub enum Assign {
    /// This agent.
    Agent(String),
    /// The team's available agent with the fewest open tickets.
    LeastBusy(String),
    /// The team's available agents in turn.
    RoundRobin(String),
}

/// One `notify` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "to", content = "name", rename_all = "snake_case")]
pub enum Notify {
    /// `team:QUEUE`: the team's agents.
    Team(String),
    /// `admins`: the `[monitoring]` admin team.
    Admins,
    /// An agent by name.
    Agent(String),
    /// An address.
    Address(String),
}

/// What a rule reads of its ticket (and of the message that set it off).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Queue.
    pub queue: String,
    /// Priority as stored.
    pub priority: String,
    /// Status as stored.
    pub status: String,
    /// Issue type.
    pub issue_type: String,
    /// Assigned agent, empty if none.
    pub assignee: String,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// The client whose mailbox the ticket came in through.
    pub client: Option<String>,
    /// The inbound address, lower-case.
    pub mailbox: String,
    /// The ticket's subject.
    pub subject: String,
    /// The requester's address.
    pub requester: String,
    /// Since when the ticket is in its status.
    pub status_since: Time,
    /// The message that set the rules off, if one did.
    pub message: Option<MessageFacts>,
}

/// The message that set the rules off.
#[derive(Debug, Clone, Default)]
pub struct MessageFacts {
    /// Its sender, lower-case.
    pub from: String,
    /// Its subject.
    pub subject: String,
    /// Its text as parsed.
    pub text: String,
    /// Its new text (quotes removed), folded (see `detect::fold`): made
    /// when a rule first reads it.
    folded: std::cell::OnceCell<String>,
}

impl MessageFacts {
    /// The facts of a message from `from` with `subject` and `text`.
    pub fn new(from: &str, subject: &str, text: &str) -> MessageFacts {
        MessageFacts {
            from: from.to_ascii_lowercase(),
            subject: subject.to_owned(),
            text: text.to_owned(),
            folded: std::cell::OnceCell::new(),
        }
    }

    /// The new text, folded, as `body_keywords` reads it.
    pub fn folded_text(&self) -> &str {
        self.folded
            .get_or_init(|| crate::detect::fold(&crate::detect::new_text(&self.text)))
    }
}

/// One change an applied rule makes (or asks for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Assign; `agent` is who was picked (`None`: nobody available).
    Assign {
        /// As configured.
        how: Assign,
        /// Who.
        agent: Option<String>,
    },
    /// Priority.
    SetPriority {
        /// To.
        to: String,
    },
    /// Status.
    SetStatus {
        /// To.
        to: String,
    },
    /// Issue type.
    SetType {
        /// To.
        to: String,
    },
    /// Queue.
    SetQueue {
        /// To.
        to: String,
    },
    /// Tag added.
    AddTag {
        /// The tag.
        tag: String,
    },
    /// Tag removed.
    RemoveTag {
        /// The tag.
        tag: String,
    },
    /// Internal note.
    Note {
        /// Its text.
        text: String,
    },
    /// Template to the customer.
    Reply {
        /// Template name.
        template: String,
    },
    /// Mail to people.
    Notify {
        /// Who.
        to: Vec<Notify>,
    },
}

/// One condition, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    /// The condition's key.
    pub field: &'static str,
    /// Whether it held.
    pub held: bool,
    /// What was seen.
    pub because: String,
}

/// One rule, evaluated for one event.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The rule's name.
    pub rule: String,
    /// The event that set it off.
    pub on: &'static str,
    /// Whether every condition held (and it was applied).
    pub matched: bool,
    /// The conditions in order, up to the first that did not hold.
    pub conditions: Vec<Held>,
    /// The actions, when it was applied.
    pub actions: Vec<Action>,
    /// Why it was not evaluated further, if it was not
    /// (`cascade_capped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
}

/// Everything one cascade did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cascade {
    /// Every evaluation, in order.
    pub evaluations: Vec<Evaluation>,
    /// The cascade stopped at [`CASCADE_CAP`].
    pub capped: bool,
}

impl Cascade {
    /// The applied rules with their event and actions, in order.
    pub fn applied(&self) -> impl Iterator<Item = &Evaluation> {
        self.evaluations.iter().filter(|e| e.matched)
    }
}

/// Picks the agent of an `assign` action; the writes give one that reads
/// the team's workload in the transaction.
pub trait Assigner {
    /// Who `how` picks now, `None` when nobody is available.
    fn pick(&mut self, how: &Assign) -> Option<String>;
}

/// One event waiting in the cascade.
struct Pending {
    /// What happened.
    trigger: Trigger,
    /// The rule whose change it is (never re-triggered by it).
    cause: Option<usize>,
    /// Only this rule (the idle sweep runs one rule's timer).
    only: Option<usize>,
}

/// Evaluate `rules` for the events `initial` on a ticket with `facts`,
/// applying each matched rule's changes to `facts` before the next rule
/// reads them. `only` limits the initial events to one rule (by index).
/// With `trace` every rule evaluated is in the cascade with its
/// conditions (`explain`); without, only the rules applied, and nothing is
/// allocated for the others.
pub fn run(
    rules: &[Rule],
    facts: &mut Facts,
    initial: &[Trigger],
    (only, trace): (Option<usize>, bool),
    assigner: &mut dyn Assigner,
    now: Time,
) -> Cascade {
    let mut out = Cascade::default();
    let mut queue: VecDeque<Pending> = VecDeque::new();
    // The initial events are one event with several names: a rule that
    // listens to two of them runs once, for the first it names.
    let mut applications = 0;
    let mut first = true;
    loop {
        let (names, cause, only_rule): (Vec<Trigger>, Option<usize>, Option<usize>) = if first {
            first = false;
            (initial.to_vec(), None, only)
        } else {
            match queue.pop_front() {
                Some(p) => (vec![p.trigger], p.cause, p.only),
                None => break,
            }
        };
        for (i, rule) in rules.iter().enumerate() {
            if only_rule.is_some_and(|o| o != i) || cause == Some(i) {
                continue;
            }
            let Some(on) = names.iter().copied().find(|t| rule.on.contains(t)) else {
                continue;
            };
            let mut conditions = Vec::new();
            let matched = held(
                &rule.conditions,
                facts,
                now,
                trace.then_some(&mut conditions),
            );
            if !matched && !trace {
                continue;
            }
            let mut eval = Evaluation {
                rule: rule.name.clone(),
                on: on.as_str(),
                matched: false,
                conditions,
                actions: Vec::new(),
                skipped: None,
            };
            if matched && applications >= CASCADE_CAP {
                eval.skipped = Some("cascade_capped");
                out.evaluations.push(eval);
                out.capped = true;
                return out;
            }
            if matched {
                applications += 1;
                eval.matched = true;
                eval.actions = apply(&rule.actions, facts, assigner);
                for a in &eval.actions {
                    let next = match a {
                        Action::SetStatus { .. } => Trigger::StatusChanged,
                        Action::Assign { agent: Some(_), .. } => Trigger::Assigned,
                        _ => continue,
                    };
                    queue.push_back(Pending {
                        trigger: next,
                        cause: Some(i),
                        only: None,
                    });
                }
            }
            out.evaluations.push(eval);
            if matched && rule.stop {
                break;
            }
        }
    }
    out
}

/// Carry `actions` out on `facts`; the changes made, in order. A value
/// already in place is no change and is left out.
fn apply(actions: &Actions, facts: &mut Facts, assigner: &mut dyn Assigner) -> Vec<Action> {
    let mut done = Vec::new();
    if let Some(how) = &actions.assign {
        let agent = assigner.pick(how);
        if agent.as_deref() != Some(facts.assignee.as_str()) {
            if let Some(a) = &agent {
                facts.assignee.clone_from(a);
            }
            done.push(Action::Assign {
                how: how.clone(),
                agent,
            });
        }
    }
    let mut set = |value: &Option<String>, field: &mut String, make: fn(String) -> Action| {
        if let Some(v) = value
            && v != field
        {
            field.clone_from(v);
            done.push(make(v.clone()));
        }
    };
    set(&actions.set_priority, &mut facts.priority, |to| {
        Action::SetPriority { to }
    });
    set(&actions.set_status, &mut facts.status, |to| {
        Action::SetStatus { to }
    });
    set(&actions.set_type, &mut facts.issue_type, |to| {
        Action::SetType { to }
    });
    set(&actions.set_queue, &mut facts.queue, |to| {
        Action::SetQueue { to }
    });
    for t in &actions.add_tags {
        if facts.tags.insert(t.clone()) {
            done.push(Action::AddTag { tag: t.clone() });
        }
    }
    for t in &actions.remove_tags {
        if facts.tags.remove(t) {
            done.push(Action::RemoveTag { tag: t.clone() });
        }
    }
    if let Some(text) = &actions.note {
        done.push(Action::Note { text: text.clone() });
    }
    if let Some(template) = &actions.reply_template {
        done.push(Action::Reply {
            template: template.clone(),
        });
    }
    if !actions.notify.is_empty() {
        done.push(Action::Notify {
            to: actions.notify.clone(),
        });
    }
    done
}

/// Whether every condition of `c` holds on `facts` at `now`. Read in
/// order up to the first that fails (all must hold, so the rest are not
/// read); with `trace`, each one read is pushed there with what was seen.
fn held(c: &Conditions, facts: &Facts, now: Time, mut trace: Option<&mut Vec<Held>>) -> bool {
    conditions(c, facts, now, &mut trace).is_some()
}

/// One condition's verdict, traced when asked: `None` when it fails.
fn verdict(
    trace: &mut Option<&mut Vec<Held>>,
    field: &'static str,
    held: bool,
    because: impl FnOnce() -> String,
) -> Option<()> {
    if let Some(out) = trace {
        out.push(Held {
            field,
            held,
            because: because(),
        });
    }
    held.then_some(())
}

/// Each condition in order; `None` at the first that fails.
fn conditions(
    c: &Conditions,
    facts: &Facts,
    now: Time,
    trace: &mut Option<&mut Vec<Held>>,
) -> Option<()> {
    let any_of = |list: &[String], value: &str| list.iter().any(|x| x.eq_ignore_ascii_case(value));
    let client = facts.client.as_deref().unwrap_or("");
    for (field, list, value) in [
        ("queue", &c.queue, facts.queue.as_str()),
        ("priority", &c.priority, facts.priority.as_str()),
        ("status", &c.status, facts.status.as_str()),
        ("issue_type", &c.issue_type, facts.issue_type.as_str()),
        ("client", &c.client, client),
        ("mailbox", &c.mailbox, facts.mailbox.as_str()),
    ] {
        if !list.is_empty() {
            verdict(trace, field, any_of(list, value), || value.to_owned())?;
        }
    }
    if !c.from_domain.is_empty() {
        let from = facts
            .message
            .as_ref()
            .map_or(facts.requester.as_str(), |m| m.from.as_str());
        let domain = from.rsplit_once('@').map_or("", |(_, d)| d);
        verdict(trace, "from_domain", any_of(&c.from_domain, domain), || {
            domain.to_owned()
        })?;
    }
    if !c.tags.is_empty() {
        let held = c.tags.iter().any(|t| facts.tags.contains(t));
        verdict(trace, "tags", held, || {
            facts
                .tags
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })?;
    }
    if let Some(re) = &c.subject_matches {
        let subject = facts
            .message
            .as_ref()
            .map_or(facts.subject.as_str(), |m| m.subject.as_str());
        verdict(trace, "subject_matches", re.is_match(subject), || {
            subject.chars().take(120).collect()
        })?;
    }
    if let Some(k) = &c.body_keywords {
        let hit = facts
            .message
            .as_ref()
            .map(|m| k.matcher.find(m.folded_text()));
        verdict(
            trace,
            "body_keywords",
            matches!(hit, Some(Some(_))),
            || match hit {
                Some(Some(h)) => k
                    .words
                    .get(h.pattern().as_usize())
                    .cloned()
                    .unwrap_or_default(),
                Some(None) => "no keyword".to_owned(),
                None => "no message".to_owned(),
            },
        )?;
    }
    if let Some((cal, inside)) = &c.business_hours {
        let open = crate::sla::Hours::Calendar(cal.clone()).is_open(now.timestamp());
        verdict(trace, "business_hours", open == *inside, || {
            if open { "open" } else { "closed" }.to_owned()
        })?;
    }
    if let Some(idle) = c.idle {
        let spent = idle_secs(c, facts.status_since, now);
        verdict(trace, "idle", spent >= idle, || crate::sla::human(spent))?;
    }
    Some(())
}

/// Seconds the ticket has been in its status at `now`, counted in the
/// rule's idle calendar when it has one.
pub fn idle_secs(c: &Conditions, since: Time, now: Time) -> i64 {
    let hours = match &c.idle_calendar {
        Some(cal) => crate::sla::Hours::Calendar(cal.clone()),
        None => crate::sla::Hours::Always,
    };
    hours.between(since.timestamp(), now.timestamp())
}

#[cfg(test)]
mod tests;
