//! The reads: [`load`] gathers from the store everything [`super::decide`]
//! needs about one message, in one struct, so the decision itself reads
//! nothing.

use std::collections::HashMap;

use crate::domain::sla::Clocks;
use crate::domain::{MessageRowId, TicketId, Time};
use crate::guard::Automatic;
use crate::outbound::Config;
use crate::parse::classify::Class;
use crate::store::{self, SenderHistory, Suspension, TicketFacts, Tx};
use crate::thread::{self, Probe, ThreadIndex};

use super::plan::Incoming;

/// What the store says about one message.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The same Message-ID and content stored already: `(row, ticket)`.
    pub duplicate: Option<(MessageRowId, Option<TicketId>)>,
    /// A different message was stored under the same Message-ID.
    pub reused: bool,
    /// What the message offers to thread on.
    pub probe: Probe,
    /// Mail about mail, as classified.
    pub class: Option<Class>,
    /// The loop guard's verdict on the message.
    pub automatic: Option<Automatic>,
    /// What threading needs from the store.
    pub index: ThreadIndex,
    /// The sender's tickets, for routing rules 5 and 6.
    pub history: SenderHistory,
    /// The sender's open lead, when the history names one.
    pub lead: Option<TicketFacts>,
    /// The sender's suspensions in force, one per queue.
    pub suspensions: Vec<Suspension>,
    /// Automatic mails sent to the sender in the last hour.
    pub sent_last_hour: u32,
    /// Why the sender's address is suppressed, if it is.
    pub suppression: Option<String>,
    /// The SLA clocks of the tickets above (index and lead) that have
    /// them; read only when SLA policies are configured.
    pub clocks: HashMap<TicketId, Clocks>,
}

impl Loaded {
    /// The facts of `ticket`, from the thread index or the open lead.
    pub fn facts(&self, ticket: TicketId) -> Option<&TicketFacts> {
        self.index
            .tickets
            .get(&ticket)
            .or(self.lead.as_ref().filter(|l| l.id == ticket))
    }
}

/// Read what deciding `msg` needs, at `now`.
///
/// # Errors
///
/// [`store::Error`] when a lookup fails.
pub fn load(
    tx: &Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    now: Time,
) -> Result<Loaded, store::Error> {
    let (message_id, synthetic) = super::stored_message_id(msg.parsed);
    let mut probe = thread::probe(cfg, msg.env, msg.parsed);
    // Several nodes: one conversation's messages are decided one at a
    // time, keyed by every id it threads on and its recent-ticket key.
    let recent = format!(
        "recent\n{}\n{}\n{}",
        probe.sender.to_ascii_lowercase(),
        probe.normalized_subject,
        probe.inbound_address
    );
    tx.lock_thread_keys(
        std::iter::once(message_id.as_str())
            .chain(probe.in_reply_to.iter().map(String::as_str))
            .chain(probe.references.iter().map(String::as_str))
            .chain(std::iter::once(recent.as_str())),
    )?;
    let stored = tx.stored_under(&message_id, &msg.parsed.content_hash)?;
    let duplicate = stored.duplicate;
    if duplicate.is_some() {
        return Ok(Loaded {
            duplicate,
            ..Loaded::default()
        });
    }
    // Not a duplicate, so a stored message with this id has other content:
    // a sender reusing Message-IDs.
    let reused = !synthetic && stored.other;
    if msg.parsed.from.is_none() && msg.parsed.problem.is_some() {
        return Ok(Loaded {
            reused,
            ..Loaded::default()
        });
    }
    // A monitor alert whose dedupe key has an open ticket threads to it as
    // a reply to its first alert would (routing rule `web_alert_dedupe`).
    // Looked up here, inside the writer's transaction, so two alerts with
    // a new key never both open a ticket.
    if let Some(crate::domain::WebIntake {
        kind:
            crate::domain::WebKind::Alert {
                dedupe_key: Some(key),
                ..
            },
        ..
    }) = msg.env.web_intake()
        && let Some(first) = tx.open_alert_message(key)?
    {
        probe.in_reply_to = vec![first];
    }
    // Mail about mail (a bounce in any MTA's words, an auto-reply without
    // headers) is automatic too, so a bounce address threads it.
    let class = msg.class.clone();
    probe.is_automatic |= class.is_some();
    let automatic = crate::guard::is_automatic(cfg, msg.env, msg.parsed);
    let index = load_index(tx, cfg, &probe, reused)?;
    let sender = probe.sender.as_str();
    // Only rules 5 and 6 of routing read the history: a new conversation
    // that did not come in through a support address.
    let (history, lead) =
        if !sender.is_empty() && !cfg.addresses.support.contains(&probe.inbound_address) {
            let history = tx.sender_history(sender)?;
            let lead = match history.open_lead {
                Some(t) => tx.ticket_facts(&[t])?.remove(&t),
                None => None,
            };
            (history, lead)
        } else {
            (SenderHistory::default(), None)
        };
    let suspensions = if sender.is_empty() {
        Vec::new()
    } else {
        tx.active_suspensions(sender)?
    };
    // The loop guard's store facts, for an acknowledgement: asked only for
    // a person's mail.
    let (sent_last_hour, suppression) = if automatic.is_none() && !sender.is_empty() {
        (
            tx.automatic_mails_since(sender, now.secs() - 3600)?,
            tx.suppression(sender, now)?,
        )
    } else {
        (0, None)
    };
    let clocks = if cfg.sla.policies.is_empty() {
        HashMap::new()
    } else {
        tx.sla_clocks_of(
            index
                .tickets
                .keys()
                .copied()
                .chain(lead.as_ref().map(|l| l.id)),
        )?
    };
    Ok(Loaded {
        duplicate: None,
        reused,
        probe,
        class,
        automatic,
        index,
        history,
        lead,
        suspensions,
        sent_last_hour,
        suppression,
        clocks,
    })
}

/// Load what [`thread::decide`] needs for `probe` from the store. Only the
/// values the message offers are looked up, so a message without headers
/// to thread on costs a handful of index probes.
///
/// # Errors
///
/// [`store::Error`] when a lookup fails.
pub fn load_index(
    tx: &Tx<'_>,
    cfg: &Config,
    probe: &Probe,
    own_id_stored: bool,
) -> Result<ThreadIndex, store::Error> {
    let mut index = ThreadIndex {
        own_id_stored,
        ..ThreadIndex::default()
    };
    if !cfg.threading.enabled {
        return Ok(index);
    }
    let candidates = probe.candidates();
    index.by_message_id = tx.tickets_by_message_ids(&candidates)?;
    let mut referenced = candidates;
    if let Some(own) = &probe.own_id
        && !own_id_stored
    {
        referenced.push(own.clone());
    }
    index.by_reference = tx.tickets_by_references(&referenced)?;
    if let Some(n) = probe.tag.as_ref().map(|t| t.number)
        && let Some(t) = tx.ticket_by_number(n)?
    {
        index.by_number.insert(n, t);
        index.tagged = tx.ticket_facts(&[t])?.remove(&t);
        index.participants.insert(t, tx.participant_addresses(t)?);
    }
    if cfg.threading.recent_rule && !probe.normalized_subject.is_empty() && !probe.sender.is_empty()
    {
        index.recent = tx.recent_tickets(
            &probe.sender,
            &probe.inbound_address,
            &probe.normalized_subject,
        )?;
    }
    let mut ids: Vec<TicketId> = probe.token_tickets.clone();
    ids.extend(index.by_message_id.values());
    ids.extend(index.by_reference.values());
    ids.extend(index.by_number.values());
    ids.extend(&index.recent);
    index.tickets = tx.ticket_facts(&ids)?;
    follow_merges(tx, &mut index)?;
    Ok(index)
}

/// A merged ticket threads as the ticket it was merged into: the facts (and
/// participants) of every merged ticket in `index` become its target's, so a
/// reply to either ticket's messages joins the target.
fn follow_merges(tx: &Tx<'_>, index: &mut ThreadIndex) -> Result<(), store::Error> {
    let mut merged: Vec<(TicketId, TicketId)> = Vec::new();
    for t in index.tickets.keys() {
        if let Some(target) = tx.merge_target(*t)? {
            merged.push((*t, target));
        }
    }
    for (source, target) in merged {
        if let Some(facts) = tx.ticket_facts(&[target])?.remove(&target) {
            index.tickets.insert(source, facts);
        }
        if let Some(people) = index.participants.get_mut(&source) {
            *people = tx.participant_addresses(target)?;
        }
    }
    Ok(())
}
