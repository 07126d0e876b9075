//! The decision: [`decide`] turns what [`super::load`] read into a
//! [`Plan`], without touching the store. Every step names the rule that
//! decided it, so `postdesk explain` prints the plan as it is.

use serde::Serialize;

use crate::agent::{self, Sender};
use crate::domain::{Envelope, MessageRowId, Source, Status, TicketId, Time};
use crate::guard::{self, AutoReply, Automatic};
use crate::monitor::Monitoring;
use crate::outbound::Config;
use crate::parse::ParsedMessage;
use crate::parse::classify::Class;
use crate::route::{self, Route, Target};
use crate::store::Suspension;
use crate::thread::{self, Probe, ThreadMatch};

use super::load::Loaded;

/// One message as it came in.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Its envelope.
    pub env: &'a Envelope,
    /// The bytes as accepted.
    pub raw: &'a [u8],
    /// The parsed message.
    pub parsed: &'a ParsedMessage,
    /// Mail about mail, as [`classify`] found it where the message was
    /// parsed (off the writer thread: it reads only the message).
    pub class: &'a Option<Class>,
}

/// Whether the message is mail about mail (a bounce in any MTA's words, a
/// feedback report, an automatic reply without headers): pure, so it runs
/// beside the parse, on the task that accepted the message.
pub fn classify(env: &Envelope, raw: &[u8], parsed: &ParsedMessage) -> Option<Class> {
    crate::parse::classify::classify(raw, parsed, crate::guard::has_null_return_path(env, parsed))
}

impl Incoming<'_> {
    /// The From address, or empty.
    pub fn sender(&self) -> &str {
        self.parsed.from.as_ref().map_or("", |m| m.address.as_str())
    }
}

/// Everything decided about one message, before anything is written.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The Message-ID it is stored under (its own, or a synthetic one).
    pub message_id: String,
    /// Whether `message_id` was made from the content hash.
    pub synthetic_id: bool,
    /// Whether another, different message was stored under the same id.
    pub reused_message_id: bool,
    /// The path the message takes.
    pub path: Path,
}

/// The path a message takes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "path", rename_all = "snake_case")]
pub enum Path {
    /// Stored already (same Message-ID and content): nothing is written.
    Duplicate {
        /// The earlier row.
        message: MessageRowId,
        /// Its ticket.
        ticket: Option<TicketId>,
    },
    /// Not mail: stored raw and flagged.
    Unparsed {
        /// Why.
        flag: String,
    },
    /// Threaded, then the sender's path.
    Mail(Box<MailPlan>),
}

/// The plan for a parsed message.
#[derive(Debug, Clone, Serialize)]
pub struct MailPlan {
    /// What threading was given.
    pub probe: Probe,
    /// Mail about mail (bounce, feedback report, automatic reply), as
    /// classified.
    pub class: Option<Class>,
    /// The loop guard's verdict: automatic mail, and by which rule.
    pub automatic: Option<Automatic>,
    /// The thread decision.
    pub thread: thread::Decision,
    /// Which path the sender takes.
    pub sender: Sender,
    /// The route (customer mail only).
    pub route: Option<Route>,
    /// What a customer message sets off on its ticket (routed to a ticket
    /// only).
    pub ticket: Option<TicketPlan>,
}

/// What a customer message does on its ticket.
#[derive(Debug, Clone, Serialize)]
pub struct TicketPlan {
    /// The ticket it joins, reopens or opens.
    pub target: Target,
    /// How it joined, as stored: the thread rule, or `open_lead` when
    /// routing chose the sender's lead.
    pub thread_match: &'static str,
    /// A status change this message makes on an existing ticket.
    pub status: Option<StatusStep>,
    /// The bypass detector.
    pub detector: DetectorStep,
    /// The sender's suspension from this queue, if one is in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspension: Option<SuspensionStep>,
    /// Whether mail goes out at all (`ingest` may be told not to send).
    pub sends_mail: bool,
    /// The acknowledgement to the customer.
    pub acknowledgement: Step,
    /// The agents told about the message.
    pub notifications: Notifications,
    /// Mailbox monitoring (mail to a client's monitored mailbox).
    pub monitoring: Option<Monitoring>,
    /// The SLA: the policy, the clocks after this message and their state;
    /// absent when no policy applies to the ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaStep>,
    /// The events the message sets the automation rules off with.
    pub automation: Vec<crate::automation::Trigger>,
}

/// The SLA step: what this message does to the ticket's clocks.
#[derive(Debug, Clone, Serialize)]
pub struct SlaStep {
    /// The policy (the first whose filters match).
    pub policy: String,
    /// What happened, for the clocks (`opened`, `customer_message`).
    pub happened: crate::sla::Happened,
    /// The state after this message.
    pub state: crate::sla::View,
    /// The clocks to store.
    #[serde(skip)]
    pub clocks: crate::sla::Clocks,
    /// The ticket had clocks before.
    #[serde(skip)]
    pub had: bool,
}

/// A status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusStep {
    /// From.
    pub from: String,
    /// To.
    pub to: Status,
    /// The rule.
    pub because: &'static str,
}

/// The detector's step.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorStep {
    /// Whether the message is scanned and acted on.
    pub in_scope: bool,
    /// Why (the rule that decided scope).
    pub because: &'static str,
    /// The verdict, when in scope.
    #[serde(skip)]
    pub verdict: Option<crate::detect::Verdict>,
}

/// A suspension in force.
#[derive(Debug, Clone, Serialize)]
pub struct SuspensionStep {
    /// The suspension row.
    pub id: i64,
    /// The queue.
    pub queue: String,
    /// The row itself, for the commit.
    #[serde(skip)]
    pub row: Suspension,
}

/// A yes/no step and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Whether it happens.
    pub send: bool,
    /// The rule that decided it.
    pub because: &'static str,
    /// What made the rule fire, if anything.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The loop guard held it back (recorded as `auto_reply_suppressed`).
    #[serde(skip)]
    pub suppressed: bool,
}

impl Step {
    fn no(because: &'static str) -> Step {
        Step {
            send: false,
            because,
            detail: String::new(),
            suppressed: false,
        }
    }
}

/// The agents notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notifications {
    /// `(name, address)` of each agent, one mail each.
    pub agents: Vec<(String, String)>,
    /// Who they are: `assignee`, `team` or `all_agents`; `no_mail` when no
    /// mail goes out.
    pub because: &'static str,
}

/// Decide what happens to `msg` given what the store said (`loaded`), at
/// `now`. Pure: reads nothing, writes nothing.
pub fn decide(cfg: &Config, msg: Incoming<'_>, loaded: &Loaded, now: Time) -> Plan {
    let (message_id, synthetic_id) = super::stored_message_id(msg.parsed);
    let path = if let Some((message, ticket)) = loaded.duplicate {
        Path::Duplicate { message, ticket }
    } else if msg.parsed.from.is_none() && msg.parsed.problem.is_some() {
        Path::Unparsed {
            flag: msg
                .parsed
                .problem
                .clone()
                .unwrap_or_else(|| "unparseable".into()),
        }
    } else {
        Path::Mail(Box::new(decide_mail(cfg, msg, loaded, now)))
    };
    Plan {
        message_id,
        synthetic_id,
        reused_message_id: loaded.reused,
        path,
    }
}

fn decide_mail(cfg: &Config, msg: Incoming<'_>, loaded: &Loaded, now: Time) -> MailPlan {
    let probe = loaded.probe.clone();
    let decision = thread::decide(cfg, &probe, &loaded.index, now);
    let mut sender = agent::sender(cfg, &probe, &decision, msg.parsed, loaded.class.as_ref());
    // An agent address of a ticket that is not stored (cannot be, short of
    // a deleted row) leaves the mail to the customer path.
    if let Sender::Agent { ticket, .. } = &sender
        && !loaded.index.tickets.values().any(|f| f.id == *ticket)
    {
        sender = Sender::Customer {
            not_authenticated: None,
        };
    }
    let route = matches!(sender, Sender::Customer { .. })
        .then(|| route::decide(cfg, msg.env, msg.parsed, &decision, &loaded.history));
    let ticket = match &route {
        Some(Route::Ticket {
            target,
            queue,
            issue_type,
            inbound_address,
            priority,
            ..
        }) => Some(decide_ticket(
            cfg,
            msg,
            loaded,
            &decision,
            *target,
            (
                queue.as_str(),
                issue_type.as_str(),
                inbound_address.as_str(),
            ),
            (*priority, now),
        )),
        _ => None,
    };
    MailPlan {
        probe,
        class: loaded.class.clone(),
        automatic: loaded.automatic.clone(),
        thread: decision,
        sender,
        route,
        ticket,
    }
}

/// A customer message routed to a ticket: status, detector, suspension,
/// acknowledgement, notifications, monitoring.
fn decide_ticket(
    cfg: &Config,
    msg: Incoming<'_>,
    loaded: &Loaded,
    decision: &thread::Decision,
    target: Target,
    (route_queue, route_type, inbound): (&str, &str, &str),
    (route_priority, now): (crate::domain::Priority, Time),
) -> TicketPlan {
    let existing = match target {
        Target::Existing { ticket } | Target::Reopen { ticket } => loaded.facts(ticket),
        Target::New | Target::NewLinked { .. } => None,
    };
    let opened = existing.is_none();
    let thread_match = match (target, &decision.matched) {
        (Target::Existing { .. }, ThreadMatch::New) => "open_lead",
        _ => decision.matched.rule(),
    };
    // The ticket's queue, type and status once this message is stored
    // (a reopened ticket is Open again), before a customer reply moves it.
    let (queue, issue_type, status) = match (existing, target) {
        (Some(f), Target::Reopen { .. }) => (f.queue.as_str(), f.issue_type.as_str(), "Open"),
        (Some(f), _) => (f.queue.as_str(), f.issue_type.as_str(), f.status.as_str()),
        (None, _) => (route_queue, route_type, "Open"),
    };
    let status_step = (!opened
        && !Status::name_is_closed(status)
        && !status.eq_ignore_ascii_case("Open"))
    .then(|| StatusStep {
        from: status.to_owned(),
        to: Status::Open,
        because: "customer_reply",
    });
    let sender = msg.sender();
    let detector = detector_step(cfg, msg, sender, (queue, issue_type, status));
    let suspension = loaded
        .suspensions
        .iter()
        .find(|s| s.queue == queue)
        .map(|s| SuspensionStep {
            id: s.id,
            queue: s.queue.clone(),
            row: s.clone(),
        });
    let sends_mail = msg.env.source != Source::Ingest || cfg.outbound.ingest_sends_mail;
    let inbound = existing.map_or(inbound, |f| f.inbound_address.as_str());
    let acknowledgement = if !sends_mail {
        Step::no("no_mail_from_ingest")
    } else if suspension.is_some() {
        Step::no("client_suspended")
    } else if !opened {
        Step::no("not_a_new_ticket")
    } else if sender.is_empty() {
        Step::no("no_sender")
    } else if matches!(
        msg.env.web_intake().map(|w| &w.kind),
        Some(crate::domain::WebKind::Alert { .. })
    ) {
        Step::no("web_alert")
    } else if msg
        .env
        .web_intake()
        .is_some_and(|w| w.kind == crate::domain::WebKind::Form)
    {
        // Every web ticket is acknowledged like a support ticket, a lead
        // too: the acknowledgement carries the customer-page link, the
        // only way back to the ticket for someone who wrote no mail.
        acknowledgement(cfg, loaded)
    } else if !cfg.outbound.acknowledges(queue, inbound) {
        Step::no("not_acknowledged_here")
    } else {
        acknowledgement(cfg, loaded)
    };
    let notifications = if sends_mail {
        let assignee = existing.map_or("", |f| f.assignee.as_str());
        let (agents, because) = crate::outbound::notify_targets(cfg, queue, assignee);
        Notifications {
            agents: agents
                .into_iter()
                .filter(|(_, a)| !a.eq_ignore_ascii_case(sender))
                .collect(),
            because,
        }
    } else {
        Notifications {
            agents: Vec::new(),
            because: "no_mail",
        }
    };
    let news = opened || thread_match == "open_lead";
    let monitoring = crate::monitor::decide(cfg, inbound, opened, news, loaded.automatic.is_some());
    let status_after = if status_step.is_some() {
        "Open"
    } else {
        status
    };
    let sla = sla_step(
        cfg,
        loaded,
        existing,
        (queue, issue_type, inbound, status_after),
        route_priority,
        now,
    );
    let automation = triggers(opened, status_step.is_some(), target);
    TicketPlan {
        automation,
        target,
        thread_match,
        status: status_step,
        detector,
        suspension,
        sends_mail,
        acknowledgement,
        notifications,
        monitoring,
        sla,
    }
}

/// The automation events of a customer message: a new ticket is
/// `ticket_created` and `message_added`; a message on an existing one is
/// `message_added` and `customer_replied`, and `status_changed` when it
/// reopens the ticket or sets it back to Open.
fn triggers(opened: bool, status_step: bool, target: Target) -> Vec<crate::automation::Trigger> {
    use crate::automation::Trigger;
    if opened {
        return vec![Trigger::TicketCreated, Trigger::MessageAdded];
    }
    let mut t = vec![Trigger::MessageAdded, Trigger::CustomerReplied];
    if status_step || matches!(target, Target::Reopen { .. }) {
        t.push(Trigger::StatusChanged);
    }
    t
}

/// The SLA clocks after a customer message on `existing` (or on the new
/// ticket), when a policy applies.
fn sla_step(
    cfg: &Config,
    loaded: &Loaded,
    existing: Option<&crate::store::TicketFacts>,
    (queue, issue_type, inbound, status): (&str, &str, &str, &str),
    route_priority: crate::domain::Priority,
    now: Time,
) -> Option<SlaStep> {
    if cfg.sla.policies.is_empty() {
        return None;
    }
    let priority = existing
        .and_then(|f| crate::domain::Priority::parse(&f.priority))
        .unwrap_or(route_priority);
    let clients: Vec<String> = cfg
        .mailbox(inbound)
        .map(|(c, _)| vec![c.name.clone()])
        .unwrap_or_default();
    let prev = existing.and_then(|f| loaded.clocks.get(&f.id));
    let happened = if existing.is_some() {
        crate::sla::Happened::CustomerMessage
    } else {
        crate::sla::Happened::Opened
    };
    let ticket = crate::sla::Ticket {
        queue,
        issue_type,
        mailbox: inbound,
        clients: &clients,
        status,
        priority,
        // A ticket from before the policy applied starts its clocks now.
        created_at: now,
    };
    let clocks = crate::sla::advance(&cfg.sla, prev, &ticket, happened, now)?;
    let policy = cfg.sla.policy(&clocks.policy)?;
    Some(SlaStep {
        policy: clocks.policy.clone(),
        happened,
        state: crate::sla::view(policy, &clocks, priority, now),
        clocks,
        had: prev.is_some(),
    })
}

/// The acknowledgement once it applies: the loop guard's verdict.
fn acknowledgement(cfg: &Config, loaded: &Loaded) -> Step {
    let guard = match &loaded.automatic {
        Some(a) => AutoReply::Suppressed {
            because: a.because,
            detail: a.detail.clone(),
        },
        None => guard::limit(cfg, loaded.sent_last_hour, loaded.suppression.as_deref()),
    };
    match guard {
        AutoReply::Send => Step {
            send: true,
            because: "new_ticket",
            detail: String::new(),
            suppressed: false,
        },
        AutoReply::Suppressed { because, detail } => Step {
            send: false,
            because,
            detail,
            suppressed: true,
        },
    }
}

/// Whether the detector scans the message, and its verdict when it does.
fn detector_step(
    cfg: &Config,
    msg: Incoming<'_>,
    sender: &str,
    (queue, issue_type, status): (&str, &str, &str),
) -> DetectorStep {
    let out = |in_scope, because| DetectorStep {
        in_scope,
        because,
        verdict: None,
    };
    if !cfg.detector.enabled {
        return out(false, "disabled");
    }
    if sender.is_empty() {
        return out(false, "no_sender");
    }
    if cfg.is_agent(sender) {
        return out(false, "agent_mail");
    }
    if !crate::detect::in_scope(&cfg.detector, queue, issue_type, status) {
        return out(false, "out_of_scope");
    }
    DetectorStep {
        in_scope: true,
        because: "in_scope",
        verdict: Some(crate::compliance::verdict(
            cfg,
            Some(sender),
            &msg.parsed.text,
        )),
    }
}
