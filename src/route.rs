//! Route: queue, priority, issue type and requester of a message.
//!
//! A pure decision over the configuration, the envelope, the parsed message,
//! the thread decision and the sender's history (which the pipeline loads
//! from the store first). Every outcome (a ticket in a queue, a
//! quarantined sender, an internal sender) is a variant naming the rule that
//! decided it, never an error.
//!
//! The rules, in order, each configurable:
//!
//! 1. `internal_domain` / `own_address`: staff or postdesk itself: stored,
//!    not ticketed.
//! 2. `blocked_sender` / `blocked_pattern` / `system_sender`: quarantined
//!    with the reason, no ticket, no auto-reply.
//! 3. `support_address`: a support ticket, new or the one threading found.
//! 4. `reply` / `reply_to_closed`: threading found a ticket: that ticket
//!    (or a new one linked to it when it was closed too long ago).
//! 5. sales or info address: `support_customer` (a sender with support
//!    history gets a support ticket, as the script's checklist asks:
//!    "support customer emailing info@ gets a ticket"), else `open_lead`
//!    (the sender's lead that is still open), else `sales_address` (a new
//!    lead).
//! 6. anything else: `support_history` (support ticket), `open_lead`, or
//!    `new_sender` (a new lead).

use serde::Serialize;

use crate::config::{Config, Priority};
use crate::domain::Envelope;
use crate::domain::TicketId;
use crate::parse::{Mailbox, ParsedMessage};
pub use crate::thread::inbound_address;
use crate::thread::{self, Action};

pub use crate::domain::Queue;

pub use crate::store::SenderHistory;

/// Which ticket the message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// Open a new ticket.
    New,
    /// Join this ticket.
    Existing {
        /// The ticket.
        ticket: TicketId,
    },
    /// Reopen this closed ticket and join it.
    Reopen {
        /// The ticket.
        ticket: TicketId,
    },
    /// Open a new ticket linked to this closed one.
    NewLinked {
        /// The closed ticket.
        previous: TicketId,
    },
}

/// The routing decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Route {
    /// Ticket it.
    Ticket {
        /// New, existing, reopened or linked.
        target: Target,
        /// The queue (of the new ticket, or of the one joined).
        queue: Queue,
        /// Priority for a new ticket.
        priority: Priority,
        /// Issue type for a new ticket.
        issue_type: String,
        /// The address it came in through.
        inbound_address: String,
        /// The rule that decided.
        because: &'static str,
    },
    /// Stored, not ticketed, no auto-reply: a blocked or system sender.
    Quarantine {
        /// Why.
        reason: String,
        /// The rule that decided.
        because: &'static str,
    },
    /// Stored, not ticketed: a sender who is staff or postdesk itself.
    Internal {
        /// The rule that decided.
        because: &'static str,
    },
}

impl Route {
    /// The rule that decided.
    pub fn because(&self) -> &'static str {
        match self {
            Route::Ticket { because, .. }
            | Route::Quarantine { because, .. }
            | Route::Internal { because } => because,
        }
    }
}

/// Decide the route of `msg`, given the thread decision and what the store
/// knows about the sender.
pub fn decide(
    cfg: &Config,
    env: &Envelope,
    msg: &ParsedMessage,
    thread: &thread::Decision,
    history: &SenderHistory,
) -> Route {
    let sender = msg.from.as_ref().map(|m| m.address.as_str()).unwrap_or("");
    let (local, domain) = sender.rsplit_once('@').unwrap_or((sender, ""));
    if let Some(route) = internal(cfg, sender, domain).or_else(|| quarantine(cfg, sender, local)) {
        return route;
    }
    let inbound = inbound_address(cfg, env, msg);
    if let Some(route) = web(cfg, env, thread, &inbound) {
        return route;
    }
    let (priority, issue_type) = match cfg.mailbox(&inbound) {
        Some((_, m)) => (m.priority, m.issue_type.clone()),
        None => (
            cfg.tickets.default_priority,
            cfg.tickets.default_issue_type.clone(),
        ),
    };
    let from_thread = thread_target(&thread.action);
    let (target, queue, because) = ticket(cfg, &inbound, from_thread, history);
    Route::Ticket {
        target,
        queue,
        priority,
        issue_type,
        inbound_address: inbound,
        because,
    }
}

/// Rule 2½, only for [`Source::Web`](crate::domain::Source::Web): a form
/// opens a ticket in the queue and with the issue type its category gave
/// (`web_form`); an alert joins the open alert ticket of its dedupe key,
/// which the load step offered threading as the message it replies to
/// (`web_alert_dedupe`), or opens one (`web_alert`). A reply from the
/// customer page goes on to the usual rules, which thread it by its
/// customer reply address.
fn web(cfg: &Config, env: &Envelope, thread: &thread::Decision, inbound: &str) -> Option<Route> {
    use crate::domain::WebKind;
    let web = env.web_intake()?;
    // Only the dedupe lookup's In-Reply-To joins an alert to a ticket: two
    // alerts with the same title are not one alert.
    let deduped = matches!(thread.matched, thread::ThreadMatch::InReplyTo { .. });
    let (target, queue, because) = match (&web.kind, thread_target(&thread.action)) {
        (WebKind::PageReply, _) => return None,
        (WebKind::Form, _) => (Target::New, web.queue, "web_form"),
        (
            WebKind::Alert {
                dedupe_key: Some(_),
                ..
            },
            Some((target @ Target::Existing { .. }, queue)),
        ) if deduped => (target, queue, "web_alert_dedupe"),
        (WebKind::Alert { .. }, _) => (Target::New, web.queue, "web_alert"),
    };
    Some(Route::Ticket {
        target,
        queue,
        priority: web.priority.unwrap_or(cfg.tickets.default_priority),
        issue_type: web.issue_type.clone(),
        inbound_address: inbound.to_owned(),
        because,
    })
}

/// Rule 1: not a customer: staff, or postdesk itself.
fn internal(cfg: &Config, sender: &str, domain: &str) -> Option<Route> {
    if !domain.is_empty()
        && cfg
            .domains
            .internal
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    {
        return Some(Route::Internal {
            because: "internal_domain",
        });
    }
    if !sender.is_empty() && cfg.is_own_address(sender) {
        return Some(Route::Internal {
            because: "own_address",
        });
    }
    None
}

/// Rule 2: blocked and system senders.
fn quarantine(cfg: &Config, sender: &str, local: &str) -> Option<Route> {
    if cfg
        .senders
        .blocked
        .iter()
        .any(|b| b.eq_ignore_ascii_case(sender))
    {
        return Some(Route::Quarantine {
            reason: format!("blocked sender {sender}"),
            because: "blocked_sender",
        });
    }
    if let Some(p) = cfg
        .senders
        .blocked_patterns
        .iter()
        .find(|p| p.is_match(sender))
    {
        return Some(Route::Quarantine {
            reason: format!("blocked sender {sender} (pattern {})", p.as_str()),
            because: "blocked_pattern",
        });
    }
    let k = cfg.senders.system_keyword(local)?;
    Some(Route::Quarantine {
        reason: format!("system sender {sender} ({k})"),
        because: "system_sender",
    })
}

/// The ticket and queue threading found, if it found one.
fn thread_target(action: &Action) -> Option<(Target, Queue)> {
    match action {
        Action::Open => None,
        Action::Join { ticket, queue } => {
            Some((Target::Existing { ticket: *ticket }, Queue::parse(queue)))
        }
        Action::Reopen { ticket, queue } => {
            Some((Target::Reopen { ticket: *ticket }, Queue::parse(queue)))
        }
        Action::OpenLinked { previous, queue } => Some((
            Target::NewLinked {
                previous: *previous,
            },
            Queue::parse(queue),
        )),
    }
}

/// Rules 3 onwards, for a customer's message that came in through
/// `inbound`: the ticket, its queue and the rule that chose them.
fn ticket(
    cfg: &Config,
    inbound: &str,
    from_thread: Option<(Target, Queue)>,
    history: &SenderHistory,
) -> (Target, Queue, &'static str) {
    // 3. Support address: always a support ticket, or the one threading found.
    if cfg.addresses.support.iter().any(|a| a == inbound) {
        let (target, queue) = match from_thread {
            Some((t @ (Target::Existing { .. } | Target::Reopen { .. }), q)) => (t, q),
            Some((t, _)) => (t, Queue::Support),
            None => (Target::New, Queue::Support),
        };
        return (target, queue, "support_address");
    }

    // 4. A reply: its ticket, whatever the address.
    if let Some((target, queue)) = from_thread {
        let because = if matches!(target, Target::NewLinked { .. }) {
            "reply_to_closed"
        } else {
            "reply"
        };
        return (target, queue, because);
    }

    let is_sales = cfg
        .addresses
        .sales
        .iter()
        .chain(&cfg.addresses.info)
        .any(|a| a == inbound);

    // 5. A client's monitored mailbox (mailboxes/*.toml): the client's own
    // correspondence, one ticket per conversation in the monitoring queue
    // with the mailbox's priority and type, never folded into the sender's
    // lead nor made a lead, and not acknowledged (acknowledge = ["support"]).
    if !is_sales && cfg.mailbox(inbound).is_some() {
        return (Target::New, Queue::Monitoring, "client_mailbox");
    }

    // 6. and 7.: a customer with support history gets support; otherwise
    // the sender's open lead, or a new one.
    if history.has_support_ticket {
        let because = if is_sales {
            "support_customer"
        } else {
            "support_history"
        };
        return (Target::New, Queue::Support, because);
    }
    if let Some(lead) = history.open_lead {
        return (Target::Existing { ticket: lead }, Queue::Sales, "open_lead");
    }
    let because = if is_sales {
        "sales_address"
    } else {
        "new_sender"
    };
    (Target::New, Queue::Sales, because)
}

/// The requester's name: the display name; else made from the local part
/// (`jane.doe` → `Jane Doe`); system names become `Customer`.
pub fn requester_name(from: Option<&Mailbox>) -> String {
    const SYSTEM: [&str; 6] = [
        "admin",
        "administrator",
        "noreply",
        "support",
        "sales",
        "info",
    ];
    let Some(from) = from else {
        return "Customer".into();
    };
    if let Some(name) = &from.name {
        if !SYSTEM.contains(&name.to_ascii_lowercase().as_str()) {
            return name.clone();
        }
        return "Customer".into();
    }
    let local = from.local();
    if SYSTEM.contains(&local.to_ascii_lowercase().as_str()) || local.is_empty() {
        return "Customer".into();
    }
    local
        .split(['.', '_', '-', '+'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(c.flat_map(char::to_lowercase))
                    .collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The subject as shown on a ticket: `(no subject)` when empty, cut to `max`
/// characters with `...` when longer.
pub fn display_subject(subject: Option<&str>, max: usize) -> String {
    let s = subject.map(str::trim).unwrap_or("");
    if s.is_empty() {
        return "(no subject)".into();
    }
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(3);
    let mut out: String = s.chars().take(keep).collect();
    out.push_str("...");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;
    use crate::thread::{Decision, ThreadMatch};

    fn mb(name: Option<&str>, addr: &str) -> Mailbox {
        Mailbox {
            name: name.map(str::to_string),
            address: addr.into(),
        }
    }

    fn config() -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.toml"),
            "[domains]\nserved = [\"example.com\"]\ninternal = [\"staff.example.net\"]\n\
             [senders]\nblocked = [\"admin@example.com\"]\nblocked_patterns = ['@spam\\.test$']\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("mailboxes")).unwrap();
        std::fs::write(
            dir.path().join("mailboxes/acme.toml"),
            "[client]\ncustomer = \"Acme\"\ndomain = \"acme.test\"\n\
             [[mailbox]]\naddress = \"regulatory\"\npriority = \"High\"\nissue_type = \"Regulatory\"\n",
        )
        .unwrap();
        crate::config::load(dir.path()).unwrap()
    }

    fn env(rcpt: &[&str]) -> Envelope {
        Envelope {
            mail_from: String::new(),
            rcpt_to: rcpt.iter().map(|s| s.to_string()).collect(),
            source: crate::domain::Source::Smtp,
            peer: None,
            helo: String::new(),
            web: None,
        }
    }

    fn msg(from: &str) -> ParsedMessage {
        ParsedMessage {
            from: Some(mb(None, from)),
            ..ParsedMessage::default()
        }
    }

    fn thread(action: Action) -> Decision {
        Decision {
            matched: ThreadMatch::New,
            action,
            tried: Vec::new(),
        }
    }

    const CUSTOMER: &str = "jane@customer.test";

    #[test]
    fn each_rule_decides_and_names_itself() {
        let cfg = config();
        let open = thread(Action::Open);
        let joined = thread(Action::Join {
            ticket: TicketId(4),
            queue: "sales".into(),
        });
        let linked = thread(Action::OpenLinked {
            previous: TicketId(5),
            queue: "sales".into(),
        });
        let reopen = thread(Action::Reopen {
            ticket: TicketId(6),
            queue: "support".into(),
        });
        let none = SenderHistory::default();
        let support = SenderHistory {
            has_support_ticket: true,
            open_lead: Some(TicketId(9)),
        };
        let lead = SenderHistory {
            has_support_ticket: false,
            open_lead: Some(TicketId(9)),
        };
        // (sender, rcpt, thread, history, because, target, queue)
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a Decision,
            &'a SenderHistory,
            &'a str,
            Option<Target>,
            Option<Queue>,
        );
        let table: Vec<Row<'_>> = vec![
            (
                "bob@staff.example.net",
                "support@example.com",
                &open,
                &none,
                "internal_domain",
                None,
                None,
            ),
            (
                "sales@example.com",
                "support@example.com",
                &open,
                &none,
                "own_address",
                None,
                None,
            ),
            (
                "regulatory@acme.test",
                "support@example.com",
                &open,
                &none,
                "own_address",
                None,
                None,
            ),
            (
                "admin@example.com",
                "support@example.com",
                &open,
                &none,
                "blocked_sender",
                None,
                None,
            ),
            (
                "Admin@Example.com",
                "support@example.com",
                &open,
                &none,
                "blocked_sender",
                None,
                None,
            ),
            (
                "x@spam.test",
                "support@example.com",
                &open,
                &none,
                "blocked_pattern",
                None,
                None,
            ),
            (
                "noreply@shop.test",
                "support@example.com",
                &open,
                &none,
                "system_sender",
                None,
                None,
            ),
            (
                "MAILER-DAEMON@mx.test",
                "support@example.com",
                &open,
                &none,
                "system_sender",
                None,
                None,
            ),
            (
                "do-not-reply@bank.test",
                "support@example.com",
                &reopen,
                &none,
                "system_sender",
                None,
                None,
            ),
            (
                CUSTOMER,
                "support@example.com",
                &open,
                &none,
                "support_address",
                Some(Target::New),
                Some(Queue::Support),
            ),
            (
                CUSTOMER,
                "support@example.com",
                &open,
                &lead,
                "support_address",
                Some(Target::New),
                Some(Queue::Support),
            ),
            (
                CUSTOMER,
                "support@example.com",
                &joined,
                &none,
                "support_address",
                Some(Target::Existing {
                    ticket: TicketId(4),
                }),
                Some(Queue::Sales),
            ),
            (
                CUSTOMER,
                "support+1-00@example.com",
                &linked,
                &none,
                "support_address",
                Some(Target::NewLinked {
                    previous: TicketId(5),
                }),
                Some(Queue::Support),
            ),
            (
                CUSTOMER,
                "sales@example.com",
                &joined,
                &none,
                "reply",
                Some(Target::Existing {
                    ticket: TicketId(4),
                }),
                Some(Queue::Sales),
            ),
            (
                CUSTOMER,
                "info@example.com",
                &reopen,
                &none,
                "reply",
                Some(Target::Reopen {
                    ticket: TicketId(6),
                }),
                Some(Queue::Support),
            ),
            (
                CUSTOMER,
                "other@example.com",
                &linked,
                &none,
                "reply_to_closed",
                Some(Target::NewLinked {
                    previous: TicketId(5),
                }),
                Some(Queue::Sales),
            ),
            (
                CUSTOMER,
                "sales@example.com",
                &open,
                &none,
                "sales_address",
                Some(Target::New),
                Some(Queue::Sales),
            ),
            (
                CUSTOMER,
                "info@example.com",
                &open,
                &none,
                "sales_address",
                Some(Target::New),
                Some(Queue::Sales),
            ),
            (
                CUSTOMER,
                "info@example.com",
                &open,
                &lead,
                "open_lead",
                Some(Target::Existing {
                    ticket: TicketId(9),
                }),
                Some(Queue::Sales),
            ),
            (
                CUSTOMER,
                "info@example.com",
                &open,
                &support,
                "support_customer",
                Some(Target::New),
                Some(Queue::Support),
            ),
            (
                CUSTOMER,
                "other@example.com",
                &open,
                &support,
                "support_history",
                Some(Target::New),
                Some(Queue::Support),
            ),
            (
                CUSTOMER,
                "other@example.com",
                &open,
                &lead,
                "open_lead",
                Some(Target::Existing {
                    ticket: TicketId(9),
                }),
                Some(Queue::Sales),
            ),
            (
                CUSTOMER,
                "other@example.com",
                &open,
                &none,
                "new_sender",
                Some(Target::New),
                Some(Queue::Sales),
            ),
        ];
        for (sender, rcpt, th, hist, because, target, queue) in table {
            let r = decide(&cfg, &env(&[rcpt]), &msg(sender), th, hist);
            assert_eq!(r.because(), because, "{sender} -> {rcpt}: {r:?}");
            match (&r, target, queue) {
                (
                    Route::Ticket {
                        target: t,
                        queue: q,
                        ..
                    },
                    Some(want_t),
                    Some(want_q),
                ) => {
                    assert_eq!((*t, *q), (want_t, want_q), "{sender} -> {rcpt}");
                }
                (Route::Ticket { .. }, _, _) => {
                    panic!("{sender} -> {rcpt}: unexpected ticket {r:?}")
                }
                (_, None, None) => {}
                _ => panic!("{sender} -> {rcpt}: expected a ticket, got {r:?}"),
            }
        }
    }

    #[test]
    fn quarantine_names_the_reason() {
        let cfg = config();
        let r = decide(
            &cfg,
            &env(&["support@example.com"]),
            &msg("no-reply@x.test"),
            &thread(Action::Open),
            &SenderHistory::default(),
        );
        assert_eq!(
            r,
            Route::Quarantine {
                reason: "system sender no-reply@x.test (no-reply)".into(),
                because: "system_sender"
            }
        );
    }

    #[test]
    fn mailbox_entry_sets_priority_and_issue_type() {
        let cfg = config();
        let r = decide(
            &cfg,
            &env(&["regulatory@acme.test"]),
            &msg(CUSTOMER),
            &thread(Action::Open),
            &SenderHistory::default(),
        );
        let Route::Ticket {
            priority,
            issue_type,
            inbound_address,
            because,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (priority, issue_type.as_str(), inbound_address.as_str()),
            (Priority::High, "Regulatory", "regulatory@acme.test")
        );
        assert_eq!(because, "client_mailbox");
        // A sender with an open lead writing to a client's mailbox still gets
        // a ticket of its own in the monitoring queue, not the lead.
        let lead = SenderHistory {
            open_lead: Some(TicketId(9)),
            ..SenderHistory::default()
        };
        let r = decide(
            &cfg,
            &env(&["regulatory@acme.test"]),
            &msg(CUSTOMER),
            &thread(Action::Open),
            &lead,
        );
        let Route::Ticket {
            target,
            queue,
            because,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (target, queue, because),
            (Target::New, Queue::Monitoring, "client_mailbox")
        );
        let r = decide(
            &cfg,
            &env(&["support@example.com"]),
            &msg(CUSTOMER),
            &thread(Action::Open),
            &SenderHistory::default(),
        );
        let Route::Ticket {
            priority,
            issue_type,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (priority, issue_type.as_str()),
            (Priority::Medium, "General")
        );
    }

    #[test]
    fn inbound_address_prefers_support_then_sales_and_drops_sub_address() {
        let cfg = config();
        let m = ParsedMessage {
            to: vec![
                mb(None, "info@example.com"),
                mb(None, "someone@elsewhere.test"),
            ],
            cc: vec![mb(None, "support+abc@example.com")],
            ..ParsedMessage::default()
        };
        assert_eq!(inbound_address(&cfg, &env(&[]), &m), "support@example.com");
        assert_eq!(
            inbound_address(
                &cfg,
                &env(&["other@example.com"]),
                &ParsedMessage::default()
            ),
            "other@example.com"
        );
        assert_eq!(
            inbound_address(&cfg, &env(&[]), &ParsedMessage::default()),
            ""
        );
    }

    #[test]
    fn requester_name_rules() {
        assert_eq!(
            requester_name(Some(&mb(Some("Ann Lee"), "a@x.org"))),
            "Ann Lee"
        );
        assert_eq!(
            requester_name(Some(&mb(None, "jane.doe@x.org"))),
            "Jane Doe"
        );
        assert_eq!(
            requester_name(Some(&mb(None, "john_smith@x.org"))),
            "John Smith"
        );
        assert_eq!(requester_name(Some(&mb(None, "admin@x.org"))), "Customer");
        assert_eq!(requester_name(Some(&mb(None, "Info@x.org"))), "Customer");
        assert_eq!(
            requester_name(Some(&mb(Some("Support"), "s@x.org"))),
            "Customer"
        );
        assert_eq!(requester_name(None), "Customer");
    }

    #[test]
    fn subjects_are_defaulted_and_truncated() {
        assert_eq!(display_subject(None, 140), "(no subject)");
        assert_eq!(display_subject(Some("  "), 140), "(no subject)");
        let long = "x".repeat(200);
        let s = display_subject(Some(&long), 140);
        assert_eq!(s.chars().count(), 140);
        assert!(s.ends_with("..."));
        assert_eq!(display_subject(Some("Hello"), 140), "Hello");
    }

    #[test]
    fn the_web_intake_counts_only_for_messages_from_the_web_door() {
        use crate::domain::{Source, WebIntake, WebKind};
        let cfg = config();
        let open = thread(Action::Open);
        let intake = WebIntake {
            kind: WebKind::Form,
            queue: Queue::Sales,
            issue_type: "Sales Inquiry".into(),
            priority: None,
        };
        let mut web = env(&["support@example.com"]);
        web.source = Source::Web;
        web.web = Some(intake.clone());
        let r = decide(&cfg, &web, &msg(CUSTOMER), &open, &SenderHistory::default());
        assert!(
            matches!(&r, Route::Ticket { queue: Queue::Sales, issue_type, because: "web_form", .. } if issue_type == "Sales Inquiry"),
            "{r:?}"
        );
        // The same intake on mail (as if a sender could ask for it) is
        // ignored: the usual rules route it.
        let mut smtp = env(&["support@example.com"]);
        smtp.web = Some(intake);
        let r = decide(
            &cfg,
            &smtp,
            &msg(CUSTOMER),
            &open,
            &SenderHistory::default(),
        );
        assert!(
            matches!(
                &r,
                Route::Ticket {
                    queue: Queue::Support,
                    because: "support_address",
                    ..
                }
            ),
            "{r:?}"
        );
    }
}
