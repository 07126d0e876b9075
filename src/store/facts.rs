//! Read models: what the store tells the decisions about a ticket and a
//! sender. Plain rows; the rules that read them live in `thread` and
//! `route`.

use serde::Serialize;

use crate::domain::TicketId;

/// What the store knows about one ticket that threading needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketFacts {
    /// Row id.
    pub id: TicketId,
    /// Ticket number (unformatted).
    pub number: i64,
    /// Status, e.g. `Open`.
    pub status: String,
    /// Queue, e.g. `support`.
    pub queue: String,
    /// The requester's address (lower-case), empty if none.
    pub requester: String,
    /// The address the ticket came in through.
    pub inbound_address: String,
    /// The ticket's normalised subject (see `thread::normalize_subject`).
    pub normalized_subject: String,
    /// When it was opened, Unix seconds.
    pub created_at: i64,
    /// Last activity, Unix seconds.
    pub updated_at: i64,
    /// When it was closed, Unix seconds, if it is.
    pub closed_at: Option<i64>,
    /// Issue type, e.g. `General`.
    pub issue_type: String,
    /// Priority as stored, e.g. `Medium`.
    pub priority: String,
    /// The assigned agent's name, empty if none.
    pub assignee: String,
}

/// What the store knows about the sender, for rules 5 and 6.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SenderHistory {
    /// The sender is the requester of a ticket in the support queue (any
    /// status).
    pub has_support_ticket: bool,
    /// The sender's most recently active lead (sales queue) that is not
    /// closed.
    pub open_lead: Option<TicketId>,
}
