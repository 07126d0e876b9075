//! Route: queue, priority, issue type and requester of a message.
//!
//! A pure decision over the configuration, the envelope, the parsed message
//! and the thread decision. Every outcome — a ticket in a queue, a
//! quarantined sender, an internal sender — is a variant with the rule that
//! decided it, never an error.

use serde::Serialize;

use crate::config::{Config, Priority};
use crate::parse::{Mailbox, ParsedMessage};
use crate::spool::Envelope;
use crate::thread::ThreadMatch;

/// The queue a ticket lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Support tickets.
    Support,
    /// Sales leads.
    Sales,
}

impl Queue {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Support => "support",
            Queue::Sales => "sales",
        }
    }
}

/// The routing decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Route {
    /// Ticket it (new or existing, per the thread decision).
    Ticket {
        /// Queue for a new ticket.
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
            Route::Ticket { because, .. } | Route::Quarantine { because, .. } | Route::Internal { because } => {
                because
            }
        }
    }
}

/// The address the message came in through: the first envelope recipient we
/// serve, else the first To/Cc address we serve.
pub fn inbound_address(cfg: &Config, env: &Envelope, msg: &ParsedMessage) -> String {
    let ours = |a: &str| a.rsplit_once('@').is_some_and(|(_, d)| cfg.serves_domain(d));
    env.rcpt_to
        .iter()
        .map(|r| r.to_ascii_lowercase())
        .find(|r| ours(r))
        .or_else(|| msg.to.iter().chain(&msg.cc).map(|m| m.address.clone()).find(|a| ours(a)))
        .unwrap_or_default()
}

/// Decide the route of `msg`.
pub fn decide(cfg: &Config, env: &Envelope, msg: &ParsedMessage, thread: &ThreadMatch) -> Route {
    let sender = msg.from.as_ref().map(|m| m.address.as_str()).unwrap_or("");
    let (local, domain) = sender.rsplit_once('@').unwrap_or((sender, ""));

    if cfg.senders.blocked.iter().any(|b| b == sender)
        || cfg.senders.blocked_patterns.iter().any(|p| p.is_match(sender))
    {
        return Route::Quarantine { reason: format!("blocked sender {sender}"), because: "blocked_sender" };
    }
    if !local.is_empty() {
        let l = local.to_ascii_lowercase();
        if let Some(k) = cfg.senders.system_keywords.iter().find(|k| l.contains(k.as_str())) {
            return Route::Quarantine { reason: format!("system sender ({k})"), because: "system_sender" };
        }
    }
    let own = cfg.addresses.support.iter().chain(&cfg.addresses.sales).chain(&cfg.addresses.info);
    if own.clone().any(|a| a == sender) {
        return Route::Internal { because: "own_address" };
    }
    if cfg.domains.internal.iter().any(|d| d == domain) {
        return Route::Internal { because: "internal_domain" };
    }

    let inbound = inbound_address(cfg, env, msg);
    let (priority, issue_type) = match cfg.mailbox(&inbound) {
        Some((_, m)) => (m.priority, m.issue_type.clone()),
        None => (cfg.tickets.default_priority, cfg.tickets.default_issue_type.clone()),
    };
    let ticket = |queue, because| Route::Ticket {
        queue,
        priority,
        issue_type: issue_type.clone(),
        inbound_address: inbound.clone(),
        because,
    };
    if cfg.addresses.support.contains(&inbound) {
        return ticket(Queue::Support, "support_address");
    }
    if thread.ticket().is_some() {
        return ticket(Queue::Support, "reply");
    }
    if cfg.addresses.sales.contains(&inbound) || cfg.addresses.info.contains(&inbound) {
        return ticket(Queue::Sales, "sales_address");
    }
    ticket(Queue::Support, "default")
}

/// The requester's name: the display name; else made from the local part
/// (`jane.doe` → `Jane Doe`); system names become `Customer`.
pub fn requester_name(from: Option<&Mailbox>) -> String {
    const SYSTEM: [&str; 6] = ["admin", "administrator", "noreply", "support", "sales", "info"];
    let Some(from) = from else { return "Customer".into() };
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
                Some(f) => f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect::<String>(),
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
mod tests {
    use super::*;

    fn mb(name: Option<&str>, addr: &str) -> Mailbox {
        Mailbox { name: name.map(str::to_string), address: addr.into() }
    }

    #[test]
    fn requester_name_rules() {
        assert_eq!(requester_name(Some(&mb(Some("Ann Lee"), "a@x.org"))), "Ann Lee");
        assert_eq!(requester_name(Some(&mb(None, "jane.doe@x.org"))), "Jane Doe");
        assert_eq!(requester_name(Some(&mb(None, "admin@x.org"))), "Customer");
        assert_eq!(requester_name(Some(&mb(Some("Support"), "s@x.org"))), "Customer");
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
}
