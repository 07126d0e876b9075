//! Thread: which ticket a message joins.
//!
//! A pure decision. The pipeline first asks [`probe`] what the message
//! offers (recipient tokens, referenced ids, a subject tag, a normalised
//! subject), loads what the store knows about those into a [`ThreadIndex`],
//! then calls [`decide`] with an explicit `now`. No I/O happens here, so
//! `explain` and the unit tests run exactly what the server runs.
//!
//! Rules, in order; the first match wins and is recorded with the message
//! (`thread_match`); every rule tried is listed with why it did not match:
//!
//! 1. `token`: a recipient address carries a reply token whose HMAC verifies
//!    (see [`crate::token`]). A forged or altered token is noted, not used.
//! 2. `in_reply_to`, then `references` newest first, against every
//!    Message-ID postdesk stored or sent. Then, for mail that arrives out of
//!    order: `referenced_by` (a stored message already names this one as
//!    its parent or ancestor) and `shared_reference` (a stored message names
//!    an ancestor this one names too, e.g. two replies whose parent has not
//!    arrived). Together these put a message in the conversation that the
//!    union of the References graph gives, whatever the arrival order, as
//!    long as the first messages to arrive are connected.
//! 3. `subject_tag`: the ticket tag (`[#1042]`, `[S-2026-0042]`), only
//!    when the sender is a participant of that ticket or an agent. A
//!    stranger quoting a tag gets a new ticket, not access to someone
//!    else's conversation. The tag must be the ticket's own: written in the
//!    format of the ticket's queue and, when that shows `{year}`, with the
//!    year the ticket was opened (UTC).
//! 4. `recent`: same sender, same inbound address, same normalised subject,
//!    a ticket not closed and active within the window. Configurable.
//! 5. `new`.
//!
//! A match on a closed ticket becomes [`Action::Reopen`] inside the reopen
//! window and [`Action::OpenLinked`] after it.
//!
//! [`probe`] lives in `probe.rs`, each rule in `rules.rs`; this module
//! holds the types, [`decide`] and [`continuation`].

use std::collections::HashMap;

use serde::Serialize;

use crate::config::Config;
use crate::domain::{TicketId, Time};

pub use crate::domain::Status;

/// Whether `status` (any case) is closed; see [`Status::is_closed`].
pub fn is_closed(status: &str) -> bool {
    Status::name_is_closed(status)
}

pub use crate::store::TicketFacts;

mod probe;
mod rules;

pub use probe::{inbound_address, normalize_subject, probe};

/// What the message offers to thread on, taken from the envelope, the
/// headers and the configuration. The pipeline loads a [`ThreadIndex`] for
/// exactly these values.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Probe {
    /// The sender (From), lower-case; empty if none.
    pub sender: String,
    /// Recipient addresses of ours carrying something shaped like a reply
    /// token, envelope recipients first, then To and Cc.
    pub tokens: Vec<TokenSeen>,
    /// Whether the message came with an SMTP/LMTP envelope. Without one
    /// (IMAP-polled mail, files), header addresses stand in for threading,
    /// never for authenticating an agent.
    pub has_envelope: bool,
    /// Whether the message is a bounce or automatic mail (see
    /// [`crate::guard::is_automatic`]): only such mail threads by a bounce
    /// address.
    pub is_automatic: bool,
    /// Tickets the tokens claim (unverified; only to know what to load).
    pub token_tickets: Vec<TicketId>,
    /// `In-Reply-To` ids.
    pub in_reply_to: Vec<String>,
    /// `References` ids, newest first.
    pub references: Vec<String>,
    /// The message's own Message-ID, if it has one.
    pub own_id: Option<String>,
    /// The ticket tag in the subject: its number, format and year.
    pub tag: Option<crate::config::TagSeen>,
    /// The inbound address (see [`inbound_address`]).
    pub inbound_address: String,
    /// The normalised subject.
    pub normalized_subject: String,
}

/// A recipient address that carries a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenSeen {
    /// The whole address, lower-case.
    pub address: String,
    /// Its sub-address.
    pub token: String,
    /// Whether it is an envelope recipient (else a To/Cc header).
    pub in_envelope: bool,
}

impl Probe {
    /// Every id rules 2 look up: In-Reply-To then References newest first,
    /// each once.
    pub fn candidates(&self) -> Vec<String> {
        let mut out: Vec<String> =
            Vec::with_capacity(self.in_reply_to.len() + self.references.len());
        for id in self.in_reply_to.iter().chain(&self.references) {
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
        out
    }
}

/// What the store knows about the probe's values.
#[derive(Debug, Clone, Default)]
pub struct ThreadIndex {
    /// Facts about every ticket named below.
    pub tickets: HashMap<TicketId, TicketFacts>,
    /// A stored or sent Message-ID to the ticket of its newest message.
    pub by_message_id: HashMap<String, TicketId>,
    /// An id that a stored message lists in In-Reply-To/References, to that
    /// message's ticket.
    pub by_reference: HashMap<String, TicketId>,
    /// Whether a message with the probe's own Message-ID is already stored
    /// (a reused id: then `referenced_by` must not fire, since what others
    /// referred to was the earlier message).
    pub own_id_stored: bool,
    /// The ticket with the tagged number.
    pub by_number: HashMap<i64, TicketId>,
    /// The tagged ticket's own facts, before merges are followed: its
    /// queue and opening time decide whether the tag's format and year
    /// are its own.
    pub tagged: Option<TicketFacts>,
    /// Participant addresses of the tagged ticket.
    pub participants: HashMap<TicketId, Vec<String>>,
    /// Candidates for rule 4 (the pipeline's pre-filter; [`decide`] checks
    /// every condition again).
    pub recent: Vec<TicketId>,
}

/// Which rule joined the message to a ticket, or that none did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ThreadMatch {
    /// Rule 1: a recipient address carries a verified token for this ticket.
    Token {
        /// The ticket.
        ticket: TicketId,
        /// The address that carried the token.
        address: String,
        /// What the address is for.
        purpose: crate::token::Kind,
        /// For an agent address: the address of the agent it was issued to.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// For a bounce address: the outbox row (one mail to one recipient)
        /// whose envelope sender it was.
        #[serde(skip_serializing_if = "Option::is_none")]
        outbox: Option<i64>,
        /// For a rating address: the score it gives (signed).
        #[serde(skip_serializing_if = "Option::is_none")]
        score: Option<u8>,
        /// Whether the address was an envelope recipient (only then can it
        /// authenticate an agent).
        in_envelope: bool,
    },
    /// Rule 2: `In-Reply-To` names a message of this ticket.
    InReplyTo {
        /// The ticket.
        ticket: TicketId,
        /// The Message-ID that matched.
        message_id: String,
    },
    /// Rule 2: `References` (newest first) names a message of this ticket.
    References {
        /// The ticket.
        ticket: TicketId,
        /// The Message-ID that matched.
        message_id: String,
    },
    /// Rule 2, out of order: a stored message of this ticket names this
    /// message in its In-Reply-To or References.
    ReferencedBy {
        /// The ticket.
        ticket: TicketId,
        /// This message's own Message-ID.
        message_id: String,
    },
    /// Rule 2, out of order: a stored message of this ticket names an
    /// ancestor that this message names too.
    SharedReference {
        /// The ticket.
        ticket: TicketId,
        /// The ancestor's Message-ID.
        message_id: String,
    },
    /// Rule 3: the subject carries this ticket's tag and the sender may use it.
    SubjectTag {
        /// The ticket.
        ticket: TicketId,
        /// The tagged number.
        number: i64,
    },
    /// Rule 4: the sender's recent ticket with the same subject.
    Recent {
        /// The ticket.
        ticket: TicketId,
    },
    /// Rule 5: nothing matched.
    New,
}

impl ThreadMatch {
    /// The rule's name, as stored with the message (`thread_match`).
    pub fn rule(&self) -> &'static str {
        match self {
            ThreadMatch::Token { .. } => "token",
            ThreadMatch::InReplyTo { .. } => "in_reply_to",
            ThreadMatch::References { .. } => "references",
            ThreadMatch::ReferencedBy { .. } => "referenced_by",
            ThreadMatch::SharedReference { .. } => "shared_reference",
            ThreadMatch::SubjectTag { .. } => "subject_tag",
            ThreadMatch::Recent { .. } => "recent",
            ThreadMatch::New => "new",
        }
    }

    /// The ticket matched, if any.
    pub fn ticket(&self) -> Option<TicketId> {
        match self {
            ThreadMatch::Token { ticket, .. }
            | ThreadMatch::InReplyTo { ticket, .. }
            | ThreadMatch::References { ticket, .. }
            | ThreadMatch::ReferencedBy { ticket, .. }
            | ThreadMatch::SharedReference { ticket, .. }
            | ThreadMatch::SubjectTag { ticket, .. }
            | ThreadMatch::Recent { ticket } => Some(*ticket),
            ThreadMatch::New => None,
        }
    }
}

/// What to do with the matched ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// No ticket matched: routing decides (a new ticket or an open lead).
    Open,
    /// Join this ticket, which is not closed.
    Join {
        /// The ticket.
        ticket: TicketId,
        /// Its queue.
        queue: String,
    },
    /// Reopen this closed ticket (closed within the reopen window) and join it.
    Reopen {
        /// The ticket.
        ticket: TicketId,
        /// Its queue.
        queue: String,
    },
    /// The matched ticket was closed longer ago than the reopen window: open
    /// a new ticket linked to it.
    OpenLinked {
        /// The closed ticket.
        previous: TicketId,
        /// Its queue.
        queue: String,
    },
}

/// One rule tried and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The rule's name (as in [`ThreadMatch::rule`]).
    pub rule: &'static str,
    /// What it found, e.g. `matched ...` or why it did not match.
    pub result: String,
}

/// The decision, the action on the ticket, and every rule tried.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The rule that matched.
    pub matched: ThreadMatch,
    /// What to do with the matched ticket.
    pub action: Action,
    /// Rules tried, in order, ending with the one that matched.
    pub tried: Vec<Step>,
}

/// Decide which ticket the probed message joins, at time `now`.
pub fn decide(cfg: &Config, probe: &Probe, index: &ThreadIndex, now: Time) -> Decision {
    let mut tried = Vec::new();
    let matched = rules::find(cfg, probe, index, now, &mut tried);
    let action = match matched.ticket().and_then(|t| index.tickets.get(&t)) {
        Some(facts) => continuation(cfg, facts, now),
        None => Action::Open,
    };
    Decision {
        matched,
        action,
        tried,
    }
}

/// Whether a match on `ticket` joins it, reopens it or opens a linked
/// ticket, at `now`.
pub fn continuation(cfg: &Config, ticket: &TicketFacts, now: Time) -> Action {
    let queue = ticket.queue.clone();
    if !is_closed(&ticket.status) {
        return Action::Join {
            ticket: ticket.id,
            queue,
        };
    }
    let closed_at = ticket.closed_at.unwrap_or(ticket.updated_at);
    let window = secs(cfg.threading.reopen_window);
    if now.secs().saturating_sub(closed_at) <= window && window > 0 {
        Action::Reopen {
            ticket: ticket.id,
            queue,
        }
    } else {
        Action::OpenLinked {
            previous: ticket.id,
            queue,
        }
    }
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn step(tried: &mut Vec<Step>, rule: &'static str, result: impl Into<String>) {
    tried.push(Step {
        rule,
        result: result.into(),
    });
}

fn notes_then(notes: &[String], matched: String) -> String {
    notes
        .iter()
        .cloned()
        .chain(std::iter::once(matched))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;
    use crate::domain::Envelope;
    use crate::parse::{Mailbox, ParsedMessage};
    use std::time::Duration;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn config(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "a test secret of enough bytes").unwrap();
        // Secret files must be private (config::read_private_file).
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
        std::fs::set_permissions(&secret, private).unwrap();
        let rules = format!(
            "[threading]\ntoken_secret_file = \"secret\"\n{extra}\n[agents]\nbob = \"bob@example.com\"\n"
        );
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        crate::config::load(dir.path()).unwrap()
    }

    fn facts(id: i64, status: &str, updated_at: i64) -> TicketFacts {
        TicketFacts {
            id: TicketId(id),
            number: 1000 + id,
            status: status.into(),
            queue: "support".into(),
            requester: "ann@customer.test".into(),
            inbound_address: "support@example.com".into(),
            normalized_subject: "printer on fire".into(),
            created_at: updated_at,
            updated_at,
            closed_at: is_closed(status).then_some(updated_at),
            issue_type: "General".into(),
            priority: "Medium".into(),
            assignee: String::new(),
        }
    }

    fn msg(subject: &str, to: &str, irt: &[&str], refs: &[&str]) -> ParsedMessage {
        ParsedMessage {
            message_id: Some("new@customer.test".into()),
            from: Some(Mailbox {
                name: None,
                address: "ann@customer.test".into(),
            }),
            to: vec![Mailbox {
                name: None,
                address: to.into(),
            }],
            subject: Some(subject.into()),
            in_reply_to: irt.iter().map(|s| s.to_string()).collect(),
            references: refs.iter().map(|s| s.to_string()).collect(),
            ..ParsedMessage::default()
        }
    }

    fn env() -> Envelope {
        Envelope {
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            source: crate::domain::Source::Ingest,
            peer: None,
            helo: String::new(),
            web: None,
        }
    }

    /// An index holding tickets 1 (open, `[#1001]`, ann a participant),
    /// 2 (closed a day ago) and 3 (closed 100 days ago).
    fn index() -> ThreadIndex {
        let mut ix = ThreadIndex::default();
        for f in [
            facts(1, "Open", NOW - DAY),
            facts(2, "Closed", NOW - DAY),
            facts(3, "Closed", NOW - 100 * DAY),
        ] {
            ix.by_number.insert(f.number, f.id);
            ix.tickets.insert(f.id, f);
        }
        ix.by_message_id.insert("m1@x".into(), TicketId(1));
        ix.by_message_id.insert("m2@x".into(), TicketId(2));
        ix.by_message_id.insert("m3@x".into(), TicketId(3));
        ix.by_reference.insert("root@x".into(), TicketId(1));
        ix.participants
            .insert(TicketId(1), vec!["ann@customer.test".into()]);
        ix.recent = vec![TicketId(1)];
        ix
    }

    fn run(cfg: &Config, m: &ParsedMessage, ix: &ThreadIndex) -> Decision {
        decide(cfg, &probe(cfg, &env(), m), ix, Time::from_secs(NOW))
    }

    fn token_to(cfg: &Config, ticket: i64) -> String {
        address_to(cfg, ticket, &crate::token::Purpose::Customer)
    }

    fn address_to(cfg: &Config, ticket: i64, purpose: &crate::token::Purpose<'_>) -> String {
        crate::token::address(
            cfg.threading.keys().unwrap(),
            purpose,
            TicketId(ticket),
            "support@example.com",
        )
    }

    fn smtp_env(rcpt: &str) -> Envelope {
        Envelope {
            mail_from: "ann@customer.test".into(),
            rcpt_to: vec![rcpt.into()],
            source: crate::domain::Source::Smtp,
            peer: None,
            helo: String::new(),
            web: None,
        }
    }

    #[test]
    fn an_agent_address_threads_and_names_its_agent_only_as_an_envelope_recipient() {
        let cfg = config("");
        let agent = address_to(&cfg, 1, &crate::token::Purpose::Agent("bob@example.com"));
        // As the envelope recipient: matched, issued to bob.
        let m = msg("x", "support@example.com", &[], &[]);
        let d = decide(
            &cfg,
            &probe(&cfg, &smtp_env(&agent), &m),
            &index(),
            Time::from_secs(NOW),
        );
        assert_eq!(
            d.matched,
            ThreadMatch::Token {
                ticket: TicketId(1),
                address: agent.clone(),
                purpose: crate::token::Kind::Agent,
                agent: Some("bob@example.com".into()),
                outbox: None,
                score: None,
                in_envelope: true,
            }
        );
        assert!(
            d.tried[0].result.contains("issued to bob@example.com"),
            "{:?}",
            d.tried
        );
        // Only in a header of mail that has an envelope: not counted.
        let m = msg("x", &agent, &[], &[]);
        let d = decide(
            &cfg,
            &probe(&cfg, &smtp_env("support@example.com"), &m),
            &index(),
            Time::from_secs(NOW),
        );
        assert_ne!(d.matched.rule(), "token");
        assert!(
            d.tried[0].result.contains("in a header only"),
            "{:?}",
            d.tried
        );
        // Without an envelope (IMAP, files) a header threads, never as an
        // envelope recipient.
        let d = run(&cfg, &m, &index());
        assert!(
            matches!(
                d.matched,
                ThreadMatch::Token {
                    in_envelope: false,
                    ..
                }
            ),
            "{:?}",
            d.matched
        );
    }

    #[test]
    fn a_bounce_address_threads_only_automatic_mail() {
        let cfg = config("");
        let bounce = address_to(&cfg, 1, &crate::token::Purpose::Bounce { outbox: 5 });
        let m = msg("x", "support@example.com", &[], &[]);
        let d = decide(
            &cfg,
            &probe(&cfg, &smtp_env(&bounce), &m),
            &index(),
            Time::from_secs(NOW),
        );
        assert_ne!(d.matched.rule(), "token");
        assert!(
            d.tried[0]
                .result
                .contains("threads only bounces and automatic mail"),
            "{:?}",
            d.tried
        );
        let mut auto = m.clone();
        auto.headers
            .push(("Auto-Submitted".into(), "auto-replied".into()));
        let d = decide(
            &cfg,
            &probe(&cfg, &smtp_env(&bounce), &auto),
            &index(),
            Time::from_secs(NOW),
        );
        assert!(
            matches!(
                d.matched,
                ThreadMatch::Token {
                    purpose: crate::token::Kind::Bounce,
                    ..
                }
            ),
            "{:?}",
            d.matched
        );
        // Its MAC under the agent letter is no agent address.
        let forged = bounce.replacen("+b1.5-", "+a1-", 1);
        let d = decide(
            &cfg,
            &probe(&cfg, &smtp_env(&forged), &auto),
            &index(),
            Time::from_secs(NOW),
        );
        assert_ne!(d.matched.rule(), "token");
    }

    #[test]
    fn each_rule_decides_and_says_why() {
        let cfg = config("");
        let forged = "support+c1-0011223344556677@example.com";
        // (name, message, index, expected match, expected last step prefix)
        let mut no_recent = index();
        no_recent.recent.clear();
        let mut own_stored = index();
        own_stored
            .by_reference
            .insert("new@customer.test".into(), TicketId(1));
        own_stored.own_id_stored = true;
        own_stored.recent.clear();
        let mut referenced = index();
        referenced
            .by_reference
            .insert("new@customer.test".into(), TicketId(1));
        let table: Vec<(&str, ParsedMessage, ThreadIndex, ThreadMatch, &str)> = vec![
            (
                "token",
                msg("x", &token_to(&cfg, 1), &["m2@x"], &[]),
                index(),
                ThreadMatch::Token {
                    ticket: TicketId(1),
                    address: token_to(&cfg, 1),
                    purpose: crate::token::Kind::Customer,
                    agent: None,
                    outbox: None,
                    score: None,
                    in_envelope: false,
                },
                "matched: ",
            ),
            (
                "forged token falls through to in_reply_to",
                msg("x", forged, &["m2@x"], &[]),
                index(),
                ThreadMatch::InReplyTo {
                    ticket: TicketId(2),
                    message_id: "m2@x".into(),
                },
                "matched: m2@x",
            ),
            (
                "in_reply_to beats references",
                msg("x", "support@example.com", &["m2@x"], &["m1@x"]),
                index(),
                ThreadMatch::InReplyTo {
                    ticket: TicketId(2),
                    message_id: "m2@x".into(),
                },
                "matched: ",
            ),
            (
                "references newest first",
                msg(
                    "x",
                    "support@example.com",
                    &["unknown@x"],
                    &["m1@x", "m2@x", "nope@x"],
                ),
                index(),
                ThreadMatch::References {
                    ticket: TicketId(2),
                    message_id: "m2@x".into(),
                },
                "matched: ",
            ),
            (
                "referenced_by: the reply came first",
                msg("x", "support@example.com", &[], &[]),
                referenced,
                ThreadMatch::ReferencedBy {
                    ticket: TicketId(1),
                    message_id: "new@customer.test".into(),
                },
                "matched: ",
            ),
            (
                "referenced_by skipped for a reused id",
                msg("unrelated", "support@example.com", &[], &[]),
                own_stored,
                ThreadMatch::New,
                "no rule matched",
            ),
            (
                "shared_reference: sibling of an unseen parent",
                msg(
                    "x",
                    "support@example.com",
                    &["parent@x"],
                    &["root@x", "parent@x"],
                ),
                index(),
                ThreadMatch::SharedReference {
                    ticket: TicketId(1),
                    message_id: "root@x".into(),
                },
                "matched: ",
            ),
            (
                "subject tag from a participant",
                msg("Re: [#1001] anything", "support@example.com", &[], &[]),
                no_recent.clone(),
                ThreadMatch::SubjectTag {
                    ticket: TicketId(1),
                    number: 1001,
                },
                "matched: [#1001], sender is a participant",
            ),
            (
                "recent: same sender, address and subject",
                msg("AW: RE: Printer  on FIRE", "support@example.com", &[], &[]),
                index(),
                ThreadMatch::Recent {
                    ticket: TicketId(1),
                },
                "matched: ",
            ),
            (
                "recent needs the same inbound address",
                msg("Re: Printer on fire", "sales@example.com", &[], &[]),
                index(),
                ThreadMatch::New,
                "no rule matched",
            ),
            (
                "recent needs the same subject",
                msg("Printer on ice", "support@example.com", &[], &[]),
                index(),
                ThreadMatch::New,
                "no rule matched",
            ),
        ];
        for (name, m, ix, want, last) in table {
            let d = run(&cfg, &m, &ix);
            assert_eq!(d.matched, want, "{name}: {:#?}", d.tried);
            let step = d.tried.last().unwrap();
            assert_eq!(step.rule, want.rule(), "{name}");
            assert!(step.result.starts_with(last), "{name}: {:?}", step.result);
        }
    }

    #[test]
    fn rules_are_tried_in_order_and_listed() {
        let cfg = config("");
        let mut ix = index();
        ix.recent.clear();
        let d = run(&cfg, &msg("nothing", "support@example.com", &[], &[]), &ix);
        let rules: Vec<_> = d.tried.iter().map(|s| s.rule).collect();
        assert_eq!(
            rules,
            [
                "token",
                "in_reply_to",
                "references",
                "referenced_by",
                "shared_reference",
                "subject_tag",
                "recent",
                "new"
            ]
        );
        assert_eq!(d.action, Action::Open);
    }

    #[test]
    fn forged_token_is_noted_and_never_matches() {
        let cfg = config("");
        let d = run(
            &cfg,
            &msg("x", "support+c1-0011223344556677@example.com", &[], &[]),
            &index(),
        );
        assert_eq!(d.tried[0].rule, "token");
        assert!(
            d.tried[0].result.contains("does not verify"),
            "{:?}",
            d.tried[0]
        );
        assert_ne!(d.matched.rule(), "token");
    }

    #[test]
    fn token_without_a_secret_is_off_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), "").unwrap();
        let mut cfg = crate::config::load(dir.path()).unwrap();
        cfg.threading.token_secret = None;
        let to = token_to(&config(""), 1);
        let d = run(&cfg, &msg("x", &to, &[], &[]), &index());
        assert!(
            d.tried[0].result.contains("no token secret"),
            "{:?}",
            d.tried[0]
        );
    }

    #[test]
    fn stranger_quoting_a_tag_gets_no_match_but_an_agent_does() {
        let cfg = config("");
        let mut ix = index();
        ix.recent.clear();
        let mut m = msg("[#1001] let me in", "support@example.com", &[], &[]);
        m.from = Some(Mailbox {
            name: None,
            address: "mallory@evil.test".into(),
        });
        let d = run(&cfg, &m, &ix);
        assert_eq!(d.matched, ThreadMatch::New);
        let tag = d.tried.iter().find(|s| s.rule == "subject_tag").unwrap();
        assert!(tag.result.contains("neither a participant"), "{tag:?}");

        m.from = Some(Mailbox {
            name: None,
            address: "Bob@example.com".to_ascii_lowercase(),
        });
        let d = run(&cfg, &m, &ix);
        assert_eq!(
            d.matched,
            ThreadMatch::SubjectTag {
                ticket: TicketId(1),
                number: 1001
            }
        );
        assert!(d.tried.last().unwrap().result.ends_with("an agent"));
    }

    #[test]
    fn recent_rule_respects_window_closed_tickets_and_the_switch() {
        let cfg = config("");
        let m = msg("Re: Printer on fire", "support@example.com", &[], &[]);
        let mut ix = index();
        // Inside the 7-day window: joins.
        assert_eq!(
            run(&cfg, &m, &ix).matched,
            ThreadMatch::Recent {
                ticket: TicketId(1)
            }
        );
        // Active 8 days ago: outside.
        ix.tickets.get_mut(&TicketId(1)).unwrap().updated_at = NOW - 8 * DAY;
        assert_eq!(run(&cfg, &m, &ix).matched, ThreadMatch::New);
        // Closed tickets never match rule 4.
        let mut ix = index();
        ix.tickets.get_mut(&TicketId(1)).unwrap().status = "Resolved".into();
        assert_eq!(run(&cfg, &m, &ix).matched, ThreadMatch::New);
        // Switched off.
        let off = config("recent_rule = false");
        let d = run(&off, &m, &index());
        assert_eq!(d.matched, ThreadMatch::New);
        assert!(
            d.tried
                .iter()
                .any(|s| s.rule == "recent" && s.result.starts_with("off"))
        );
        // The window is configurable.
        let wide = config("recent_window_days = 30");
        let mut ix = index();
        ix.tickets.get_mut(&TicketId(1)).unwrap().updated_at = NOW - 20 * DAY;
        assert_eq!(
            run(&wide, &m, &ix).matched,
            ThreadMatch::Recent {
                ticket: TicketId(1)
            }
        );
        // An empty subject never matches by subject.
        let mut ix = index();
        ix.tickets.get_mut(&TicketId(1)).unwrap().normalized_subject = String::new();
        assert_eq!(
            run(&cfg, &msg("", "support@example.com", &[], &[]), &ix).matched,
            ThreadMatch::New
        );
    }

    #[test]
    fn closed_tickets_reopen_inside_the_window_and_link_outside() {
        let cfg = config("");
        assert_eq!(
            cfg.threading.reopen_window,
            Duration::from_secs(14 * DAY as u64)
        );
        let d = run(
            &cfg,
            &msg("x", "support@example.com", &["m2@x"], &[]),
            &index(),
        );
        assert_eq!(
            d.action,
            Action::Reopen {
                ticket: TicketId(2),
                queue: "support".into()
            }
        );
        let d = run(
            &cfg,
            &msg("x", "support@example.com", &["m3@x"], &[]),
            &index(),
        );
        assert_eq!(
            d.action,
            Action::OpenLinked {
                previous: TicketId(3),
                queue: "support".into()
            }
        );
        let d = run(
            &cfg,
            &msg("x", "support@example.com", &["m1@x"], &[]),
            &index(),
        );
        assert_eq!(
            d.action,
            Action::Join {
                ticket: TicketId(1),
                queue: "support".into()
            }
        );
        // Window 0: never reopen.
        let never = config("reopen_window_days = 0");
        let d = run(
            &never,
            &msg("x", "support@example.com", &["m2@x"], &[]),
            &index(),
        );
        assert_eq!(
            d.action,
            Action::OpenLinked {
                previous: TicketId(2),
                queue: "support".into()
            }
        );
    }

    #[test]
    fn continuation_is_a_function_of_now() {
        let cfg = config("reopen_window_days = 2");
        let t = facts(9, "Closed", NOW);
        assert!(matches!(
            continuation(&cfg, &t, Time::from_secs(NOW + 2 * DAY)),
            Action::Reopen { .. }
        ));
        assert!(matches!(
            continuation(&cfg, &t, Time::from_secs(NOW + 2 * DAY + 1)),
            Action::OpenLinked { .. }
        ));
        assert!(matches!(
            continuation(&cfg, &facts(9, "Open", 0), Time::from_secs(NOW)),
            Action::Join { .. }
        ));
    }

    #[test]
    fn threading_off_opens_a_ticket_for_everything() {
        let cfg = config("enabled = false");
        let d = run(
            &cfg,
            &msg("x", "support@example.com", &["m1@x"], &[]),
            &index(),
        );
        assert_eq!(d.matched, ThreadMatch::New);
        assert_eq!(d.tried.len(), 1);
    }

    #[test]
    fn tag_follows_the_number_format() {
        let cfg = config("");
        let number = |s: &str| cfg.tickets.tag_number(s).map(|t| t.number);
        assert_eq!(number("Re: [#1042] help"), Some(1042));
        assert_eq!(number("Re: [ #7 ] help"), Some(7));
        assert_eq!(number("Re: #1042 help"), None);
        let formats = [crate::config::NumberFormat::parse("T-{n}/x").unwrap()];
        let pattern = crate::config::number::tag_pattern(&formats).unwrap();
        let read = |s: &str| crate::config::number::read_tag(&pattern, &formats, s);
        assert_eq!(read("[T-12/x]").map(|t| t.number), Some(12));
        assert_eq!(read("[T-12]"), None);
    }

    /// Ticket 1 (support, `[#1001]`) and ticket 4, a sales ticket opened
    /// in 2027 (`[S-2027-1004]`), ann a participant of both.
    fn sales_index() -> ThreadIndex {
        let mut ix = index();
        ix.recent.clear();
        let mut sales = facts(4, "Open", NOW - DAY);
        sales.queue = "sales".into();
        ix.by_number.insert(sales.number, sales.id);
        ix.tickets.insert(sales.id, sales);
        ix.participants
            .insert(TicketId(4), vec!["ann@customer.test".into()]);
        ix
    }

    #[test]
    fn a_tag_threads_only_in_its_queues_format_and_opening_year() {
        let cfg = config("[tickets.number_format_by_queue]\nsales = \"S-{year}-{n:04}\"");
        assert_eq!(Time::from_secs(NOW - DAY).utc_year(), 2027);
        let tagged = |subject: &str, number: i64| {
            let m = msg(subject, "sales@example.com", &[], &[]);
            let p = probe(&cfg, &env(), &m);
            let mut ix = sales_index();
            // As the pipeline loads it: the tagged ticket's own facts.
            ix.tagged = ix
                .by_number
                .get(&number)
                .and_then(|t| ix.tickets.get(t))
                .cloned();
            decide(&cfg, &p, &ix, Time::from_secs(NOW))
        };
        let d = tagged("Re: [S-2027-1004] quote", 1004);
        assert_eq!(
            d.matched,
            ThreadMatch::SubjectTag {
                ticket: TicketId(4),
                number: 1004
            }
        );
        for (subject, number, why) in [
            ("Re: [S-2026-1004] quote", 1004, "year 2026"),
            (
                "Re: [#1004] quote",
                1004,
                "whose format is `S-{year}-{n:04}`",
            ),
            ("Re: [S-2027-1001] help", 1001, "whose format is `#{n}`"),
        ] {
            let d = tagged(subject, number);
            assert_eq!(d.matched, ThreadMatch::New, "{subject}");
            let step = d.tried.iter().find(|s| s.rule == "subject_tag").unwrap();
            assert!(step.result.contains(why), "{subject}: {step:?}");
        }
        assert_eq!(
            tagged("Re: [#1001] help", 1001).matched.rule(),
            "subject_tag"
        );
    }
}
