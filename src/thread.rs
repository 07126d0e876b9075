//! Thread: which ticket a message joins.
//!
//! A pure decision over the parsed message and a [`ThreadIndex`] that the
//! pipeline filled from the store. It does no I/O, so `explain` and unit
//! tests run it as-is. Rules are tried in order and the first match wins;
//! the decision names the rule that fired and lists the ones tried.

use std::collections::HashMap;

use serde::Serialize;

use crate::ids::TicketId;
use crate::parse::ParsedMessage;

/// What the store knows that threading needs: for each Message-ID the
/// message refers to, the ticket of the stored or sent message with that id.
#[derive(Debug, Clone, Default)]
pub struct ThreadIndex {
    /// Message-ID to ticket.
    pub by_message_id: HashMap<String, TicketId>,
}

/// Which rule joined the message to a ticket, or that none did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ThreadMatch {
    /// `In-Reply-To` names a message of this ticket.
    InReplyTo {
        /// The ticket.
        ticket: TicketId,
        /// The Message-ID that matched.
        message_id: String,
    },
    /// `References` (newest first) names a message of this ticket.
    References {
        /// The ticket.
        ticket: TicketId,
        /// The Message-ID that matched.
        message_id: String,
    },
    /// No rule matched: a new ticket.
    New,
}

impl ThreadMatch {
    /// The rule's name, as stored with the message (`thread_match`).
    pub fn rule(&self) -> &'static str {
        match self {
            ThreadMatch::InReplyTo { .. } => "in_reply_to",
            ThreadMatch::References { .. } => "references",
            ThreadMatch::New => "new",
        }
    }

    /// The ticket matched, if any.
    pub fn ticket(&self) -> Option<TicketId> {
        match self {
            ThreadMatch::InReplyTo { ticket, .. } | ThreadMatch::References { ticket, .. } => Some(*ticket),
            ThreadMatch::New => None,
        }
    }
}

/// The decision and the rules tried to reach it.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The match.
    pub matched: ThreadMatch,
    /// Rules tried, in order, ending with the one that matched.
    pub tried: Vec<&'static str>,
}

/// The Message-IDs the index must cover for `msg`: In-Reply-To, then
/// References newest first.
pub fn candidates(msg: &ParsedMessage) -> Vec<String> {
    let mut out: Vec<String> = msg.in_reply_to.clone();
    out.extend(msg.references.iter().rev().cloned());
    out.dedup();
    out
}

/// Decide which ticket `msg` joins.
pub fn decide(msg: &ParsedMessage, index: &ThreadIndex) -> Decision {
    let mut tried = vec!["in_reply_to"];
    for id in &msg.in_reply_to {
        if let Some(t) = index.by_message_id.get(id) {
            return Decision {
                matched: ThreadMatch::InReplyTo { ticket: *t, message_id: id.clone() },
                tried,
            };
        }
    }
    tried.push("references");
    // Newest first: the last reference is the direct parent.
    for id in msg.references.iter().rev() {
        if let Some(t) = index.by_message_id.get(id) {
            return Decision {
                matched: ThreadMatch::References { ticket: *t, message_id: id.clone() },
                tried,
            };
        }
    }
    tried.push("new");
    Decision { matched: ThreadMatch::New, tried }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(irt: &[&str], refs: &[&str]) -> ParsedMessage {
        ParsedMessage {
            in_reply_to: irt.iter().map(|s| s.to_string()).collect(),
            references: refs.iter().map(|s| s.to_string()).collect(),
            ..ParsedMessage::default()
        }
    }

    fn index(pairs: &[(&str, i64)]) -> ThreadIndex {
        ThreadIndex {
            by_message_id: pairs.iter().map(|(k, v)| (k.to_string(), TicketId(*v))).collect(),
        }
    }

    #[test]
    fn in_reply_to_wins_over_references() {
        let d = decide(&msg(&["b"], &["a"]), &index(&[("a", 1), ("b", 2)]));
        assert_eq!(d.matched, ThreadMatch::InReplyTo { ticket: TicketId(2), message_id: "b".into() });
        assert_eq!(d.tried, vec!["in_reply_to"]);
    }

    #[test]
    fn reply_with_only_references_joins_newest_known_ticket() {
        let d = decide(&msg(&[], &["a", "b", "c"]), &index(&[("a", 1), ("b", 2)]));
        assert_eq!(d.matched, ThreadMatch::References { ticket: TicketId(2), message_id: "b".into() });
        assert_eq!(d.matched.rule(), "references");
    }

    #[test]
    fn unknown_ids_open_a_new_ticket() {
        let d = decide(&msg(&["x"], &["y"]), &index(&[("a", 1)]));
        assert_eq!(d.matched, ThreadMatch::New);
        assert_eq!(d.tried, vec!["in_reply_to", "references", "new"]);
    }

    #[test]
    fn candidates_list_parent_first() {
        assert_eq!(candidates(&msg(&["p"], &["a", "b"])), vec!["p", "b", "a"]);
    }
}
