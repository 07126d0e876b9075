//! A ticket's status, priority and queue.

use serde::Serialize;

/// Ticket priority, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Priority {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    /// The name as stored and displayed (`Low`, `Medium`, `High`, `Urgent`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "Low",
            Priority::Medium => "Medium",
            Priority::High => "High",
            Priority::Urgent => "Urgent",
        }
    }

    /// Parse a name case-insensitively.
    pub fn parse(s: &str) -> Option<Priority> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Priority::Low),
            "medium" => Some(Priority::Medium),
            "high" => Some(Priority::High),
            "urgent" => Some(Priority::Urgent),
            _ => None,
        }
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Status {
    /// Waiting for an agent.
    Open,
    /// An agent answered; waiting for the customer.
    Replied,
    /// Solved; a customer's message reopens it.
    Resolved,
    /// Done; a customer's message reopens it (or, past the threading
    /// window, opens a new ticket linked to it).
    Closed,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 4] = [
        Status::Open,
        Status::Replied,
        Status::Resolved,
        Status::Closed,
    ];

    /// The statuses that count as closed.
    pub const CLOSED: [Status; 2] = [Status::Closed, Status::Resolved];

    /// The name as stored and displayed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Open => "Open",
            Status::Replied => "Replied",
            Status::Resolved => "Resolved",
            Status::Closed => "Closed",
        }
    }

    /// The status of a stored or typed name, any case.
    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this status is closed ([`Status::CLOSED`]).
    pub fn is_closed(self) -> bool {
        Status::CLOSED.contains(&self)
    }

    /// Whether the stored name `name` (any case) is a closed status.
    pub fn name_is_closed(name: &str) -> bool {
        Status::parse(name).is_some_and(Status::is_closed)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The queue a ticket is in. Every queue postdesk opens tickets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    /// Support tickets.
    Support,
    /// Sales leads.
    Sales,
    /// Mail to a client's monitored mailbox (mailboxes/*.toml): the
    /// client's own correspondence, alerted or digested, never acknowledged.
    Monitoring,
    /// Compliance Alert tickets the bypass detector opens.
    Compliance,
    /// Messages whose routing failed: visible, waiting for a person.
    Unrouted,
}

impl Queue {
    /// Every queue.
    pub const ALL: [Queue; 5] = [
        Queue::Support,
        Queue::Sales,
        Queue::Monitoring,
        Queue::Compliance,
        Queue::Unrouted,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Queue::Support => "support",
            Queue::Sales => "sales",
            Queue::Monitoring => "monitoring",
            Queue::Compliance => "compliance",
            Queue::Unrouted => "unrouted",
        }
    }

    /// The queue of a stored name (any case), `None` for a name postdesk
    /// never stores.
    pub fn from_name(name: &str) -> Option<Queue> {
        Queue::ALL
            .into_iter()
            .find(|q| q.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// The queue of a stored name (any case); an unknown name is
    /// [`Queue::Unrouted`], the queue a person looks at.
    pub fn parse(name: &str) -> Queue {
        Queue::from_name(name).unwrap_or(Queue::Unrouted)
    }
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_one_definition_any_case() {
        assert!(Status::name_is_closed("closed"));
        assert!(Status::name_is_closed("RESOLVED"));
        assert!(!Status::name_is_closed("Open"));
        assert!(!Status::name_is_closed("Replied"));
        assert!(!Status::name_is_closed("nonsense"));
    }

    #[test]
    fn every_queue_round_trips_compliance_included() {
        for q in Queue::ALL {
            assert_eq!(Queue::parse(q.as_str()), q);
            assert_eq!(Queue::parse(&q.as_str().to_uppercase()), q);
        }
        assert_eq!(Queue::parse("compliance"), Queue::Compliance);
        assert_eq!(Queue::parse("no such queue"), Queue::Unrouted);
    }

    #[test]
    fn priorities_order_and_parse() {
        assert!(Priority::Low < Priority::Urgent);
        assert_eq!(Priority::parse("HIGH"), Some(Priority::High));
        assert_eq!(Priority::parse("x"), None);
    }
}
