//! Agent actions and bounces: the messages that are not a customer's.
//!
//! Runs in the pipeline, after threading and before routing: [`sender`]
//! decides (pure, while planning) which path a message takes, and
//! [`commit`], inside the writer's transaction, takes a message away from
//! the customer path when it is
//!
//! - mail that machines send about mail ([`crate::parse::classify`]: a
//!   bounce, a feedback report, an automatic reply, a list notice):
//!   recorded on the ticket of the mail it is about (found by the original
//!   Message-ID, or by the thread rule that matched: the signed token the
//!   bounce was sent back to, In-Reply-To, References), never a new
//!   ticket, unticketed and flagged when none matches; a DSN's permanent
//!   failure, or a feedback report about mail postdesk sent to the
//!   complainer, suppresses the address and tells the ticket's agents (see
//!   [`crate::outbound::permanent_failure`]); a client's monitored mailbox
//!   keeps all but DSNs as its own correspondence;
//! - an agent action: the sender is an `[agents]` address *and* the mail
//!   came to the ticket's signed reply address (thread rule `token`, whose
//!   HMAC verified). Anything else from an agent's address (no token, a
//!   forged one, a spoofed `From:`) stays a customer message, and the
//!   pipeline records why (`agent_not_authenticated`): spoofing an agent
//!   gains nothing.
//!
//! An agent action: the quoted text is stripped (after decoding, by
//! [`crate::detect::quote`]; never to nothing), the `#commands` at the top
//! are parsed ([`crate::command`]); with any problem nothing runs, nothing
//! is relayed and the agent gets an answer saying what was wrong. Otherwise
//! the reply (canned responses expanded, attachments kept) is relayed to
//! the requester and Cc participants from `Agent via Queue <support@…>`,
//! threaded under the customer's latest message; then each command runs,
//! each one an event. `#note` makes the whole mail an internal note that is
//! stored and never relayed. An automatic mail from an agent (a vacation
//! reply to a notification) is stored as a note and never relayed.
//!
//! This module owns the decision; carrying it out is split by what the
//! mail is: `about` records mail about mail, `act` carries out an
//! agent's commands and reply, `relay` sends that reply on to the
//! customer.

use serde::Serialize;

use crate::config::Agent;
use crate::domain::{Envelope, Time};
use crate::domain::{MessageRowId, TicketId};
use crate::outbound::Config;
use crate::parse::ParsedMessage;
use crate::parse::classify::{Class, Kind};
use crate::store::{self, NewMessage, Tx};
use crate::thread::{self, Action, Probe, ThreadMatch};

mod about;
mod act;
mod relay;
pub mod split;

pub use relay::ends_with_signature;

/// What [`commit`] needs from the pipeline.
pub struct Context<'a, 'b> {
    /// The configuration snapshot.
    pub cfg: &'a Config,
    /// The envelope.
    pub env: &'a Envelope,
    /// The parsed message.
    pub parsed: &'a ParsedMessage,
    /// What threading was given.
    pub probe: &'a Probe,
    /// The thread decision.
    pub decision: &'a thread::Decision,
    /// The message row the pipeline would store, to adjust.
    pub base: &'a NewMessage<'b>,
    /// Whether another stored message has this Message-ID.
    pub reused: bool,
    /// What [`crate::parse::classify::classify`] made of it: mail about mail, or `None`.
    pub class: Option<&'a Class>,
    /// Now.
    pub now: Time,
}

/// What the agent or mail-about-mail path stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The stored row.
    pub message: MessageRowId,
    /// The ticket it was stored on, if any.
    pub ticket: Option<TicketId>,
    /// How it joined the ticket (the thread rule, or the report's).
    pub thread_match: &'static str,
    /// Stored state (`agent_reply`, `note`, `bounce`, ...).
    pub state: &'static str,
}

impl Context<'_, '_> {
    fn outcome(
        &self,
        message: MessageRowId,
        ticket: Option<TicketId>,
        thread_match: &'static str,
        state: &'static str,
    ) -> Outcome {
        Outcome {
            message,
            ticket,
            thread_match,
            state,
        }
    }
}

/// Who a message is from, as far as the pipeline's paths go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sender {
    /// Mail that machines sent about mail (a bounce, a feedback report, an
    /// automatic reply): recorded on the ticket it is about, nothing more.
    MailAboutMail {
        /// What it is (`dsn`, `arf`, `auto_reply`, ...).
        class: &'static str,
        /// The rule that recognised it.
        because: &'static str,
    },
    /// An agent, authenticated by the agent address made for them on the
    /// ticket: their reply or commands.
    Agent {
        /// The agent's name.
        name: String,
        /// The ticket the address names (after merges).
        ticket: TicketId,
    },
    /// A satisfaction rating: mail to the ticket's rating address, whose
    /// MAC (over the ticket and the score) verified. Recorded on the ticket
    /// (`crate::satisfaction::record`); it reopens nothing and is
    /// acknowledged to no one.
    Rating {
        /// The ticket rated (after merges).
        ticket: TicketId,
        /// 1 to 5.
        score: u8,
    },
    /// A customer (anyone else).
    Customer {
        /// When the mail came from an agent's address or went to an agent
        /// address but did not authenticate: why not.
        #[serde(skip_serializing_if = "Option::is_none")]
        not_authenticated: Option<String>,
    },
}

/// Decide which path a message takes (pure): mail about mail, a rating,
/// an authenticated agent, or a customer.
pub fn sender(
    cfg: &Config,
    probe: &Probe,
    decision: &thread::Decision,
    parsed: &ParsedMessage,
    class: Option<&Class>,
) -> Sender {
    let from = parsed.from.as_ref().map_or("", |m| m.address.as_str());
    if let Some(class) = class {
        // An agent's own vacation reply to a notification is the agent
        // branch's to store as a note.
        let from_agent = !from.is_empty() && cfg.is_agent(from);
        let is_reply = matches!(class.kind, Kind::AutoReply | Kind::ListNotice);
        // A client's monitored mailbox (abuse@, postmaster@) receives
        // feedback reports, bounces and auto-replies as its own
        // correspondence: only a DSN about postdesk's mail is taken away.
        let monitored =
            cfg.mailbox(&probe.inbound_address).is_some() && !matches!(class.kind, Kind::Dsn(_));
        let stays = monitored || (is_reply && from_agent);
        if !stays {
            return Sender::MailAboutMail {
                class: class.kind.as_str(),
                because: class.because,
            };
        }
    }
    // Thread rule 1 verified the rating address (and refused it for
    // automatic mail); mail about mail was taken away above.
    if let ThreadMatch::Token {
        purpose: crate::token::Kind::Rating,
        score: Some(score),
        ticket,
        ..
    } = &decision.matched
    {
        let ticket = match &decision.action {
            Action::Join { ticket, .. } | Action::Reopen { ticket, .. } => *ticket,
            Action::OpenLinked { previous, .. } => *previous,
            Action::Open => *ticket,
        };
        return Sender::Rating {
            ticket,
            score: *score,
        };
    }
    if let Some(agent) = authenticated_agent(cfg, decision, from) {
        // The ticket the token names, after merges (threading already
        // followed them into the action).
        let ticket = match &decision.action {
            Action::Join { ticket, .. } | Action::Reopen { ticket, .. } => *ticket,
            Action::OpenLinked { previous, .. } => *previous,
            Action::Open => match &decision.matched {
                ThreadMatch::Token { ticket, .. } => *ticket,
                _ => return customer(cfg, decision, from),
            },
        };
        return Sender::Agent {
            name: agent.name.clone(),
            ticket,
        };
    }
    customer(cfg, decision, from)
}

/// The agent the message authenticates: the agent address made for that
/// agent, an envelope recipient, and the mail from that agent. Anyone else
/// writing to it (a forwarded copy, a forged From) is a customer.
fn authenticated_agent<'c>(
    cfg: &'c Config,
    decision: &thread::Decision,
    from: &str,
) -> Option<&'c Agent> {
    let ThreadMatch::Token {
        purpose: crate::token::Kind::Agent,
        agent: Some(issued_to),
        in_envelope: true,
        ..
    } = &decision.matched
    else {
        return None;
    };
    if from.is_empty() {
        return None;
    }
    let (base, _) = crate::token::split_detail(from);
    if !base.eq_ignore_ascii_case(issued_to) {
        return None;
    }
    cfg.agents
        .iter()
        .find(|a| a.address.eq_ignore_ascii_case(issued_to))
}

/// A customer; when the mail looks like an agent's (an agent's From, or an
/// agent address as recipient), why it did not authenticate.
fn customer(cfg: &Config, decision: &thread::Decision, from: &str) -> Sender {
    let to_agent_address = matches!(
        &decision.matched,
        ThreadMatch::Token {
            purpose: crate::token::Kind::Agent,
            ..
        }
    );
    if from.is_empty() || !(cfg.is_agent(from) || to_agent_address) {
        return Sender::Customer {
            not_authenticated: None,
        };
    }
    let why = match &decision.matched {
        ThreadMatch::Token {
            purpose: crate::token::Kind::Agent,
            agent,
            in_envelope,
            ..
        } => {
            if !in_envelope {
                "the agent address was not an envelope recipient".to_owned()
            } else {
                format!(
                    "the agent address was issued to {}, the mail is from {from}",
                    agent.as_deref().unwrap_or("another agent")
                )
            }
        }
        ThreadMatch::Token { purpose, .. } => {
            format!("a {} address grants no agent rights", purpose.as_str())
        }
        _ => decision
            .tried
            .iter()
            .find(|s| s.rule == "token")
            .map(|s| s.result.clone())
            .unwrap_or_else(|| "no agent address".to_owned()),
    };
    Sender::Customer {
        not_authenticated: Some(format!(
            "handled as a customer message: an agent action needs the agent address \
             made for that agent on this ticket ({why})"
        )),
    }
}

/// Carry out the agent or mail-about-mail path `sender` decided; `None`
/// leaves the message to the customer path (an agent's ticket that no
/// longer exists).
///
/// # Errors
///
/// [`store::Error`]; the pipeline rolls back to its savepoint.
pub fn commit(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    sender: &Sender,
) -> Result<Option<Outcome>, store::Error> {
    match sender {
        Sender::MailAboutMail { .. } => match cx.class {
            Some(class) => about::record_bounce(tx, cx, class).map(Some),
            None => Ok(None),
        },
        Sender::Agent { name, ticket } => {
            let Some(agent) = cx.cfg.agents.iter().find(|a| &a.name == name) else {
                return Ok(None);
            };
            let Some(conv) = tx.conversation(*ticket)? else {
                return Ok(None);
            };
            act::act(tx, cx, agent, conv).map(Some)
        }
        Sender::Rating { .. } | Sender::Customer { .. } => Ok(None),
    }
}
