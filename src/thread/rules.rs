//! The rules of [`super::decide`], one function each, in the order the
//! module docs list them. Each records what it tried in `tried` (a
//! [`Step`] with the rule's name and why it matched or not) and returns
//! the match, or `None` to hand over to the next rule.

use super::{Probe, Step, ThreadIndex, ThreadMatch, TokenSeen, is_closed, notes_then, secs, step};
use crate::config::Config;
use crate::domain::{TicketId, Time};

/// Whether the index knows the ticket (a match on anything else is no
/// match: the ticket was deleted, or the id is forged).
type Known<'a> = &'a dyn Fn(&TicketId) -> bool;

/// Every rule in order; `new` when none matches or threading is off.
pub(super) fn find(
    cfg: &Config,
    p: &Probe,
    index: &ThreadIndex,
    now: Time,
    tried: &mut Vec<Step>,
) -> ThreadMatch {
    if !cfg.threading.enabled {
        step(
            tried,
            "new",
            "threading is off ([threading] enabled = false)",
        );
        return ThreadMatch::New;
    }
    let known = |t: &TicketId| index.tickets.contains_key(t);
    let matched = token(cfg, p, &known, tried)
        .or_else(|| message_ids(p, index, &known, tried))
        .or_else(|| out_of_order(p, index, &known, tried))
        .or_else(|| subject_tag(cfg, p, index, &known, tried))
        .or_else(|| recent(cfg, p, index, now, tried));
    matched.unwrap_or_else(|| {
        step(tried, "new", "no rule matched");
        ThreadMatch::New
    })
}

/// Rule 1: a verified reply address.
fn token(cfg: &Config, p: &Probe, known: Known<'_>, tried: &mut Vec<Step>) -> Option<ThreadMatch> {
    match cfg.threading.keys() {
        _ if p.tokens.is_empty() => step(tried, "token", "no recipient address carries a token"),
        None => step(
            tried,
            "token",
            "a recipient carries a token but no token secret is configured",
        ),
        Some(keys) => {
            let mut notes = Vec::new();
            for seen in &p.tokens {
                if let Some(m) = verify_token(cfg, keys, p, seen, known, &mut notes) {
                    step(tried, "token", notes_then(&notes, m.1));
                    return Some(m.0);
                }
            }
            step(tried, "token", notes.join("; "));
        }
    }
    None
}

/// Rule 2: In-Reply-To, then References newest first, against the
/// Message-IDs postdesk stored or sent.
fn message_ids(
    p: &Probe,
    index: &ThreadIndex,
    known: Known<'_>,
    tried: &mut Vec<Step>,
) -> Option<ThreadMatch> {
    for id in &p.in_reply_to {
        if let Some(t) = index.by_message_id.get(id).filter(|t| known(t)) {
            step(
                tried,
                "in_reply_to",
                format!("matched: {id} is a message of ticket {t}"),
            );
            return Some(ThreadMatch::InReplyTo {
                ticket: *t,
                message_id: id.clone(),
            });
        }
    }
    step(tried, "in_reply_to", none_known(&p.in_reply_to));
    for id in &p.references {
        if let Some(t) = index.by_message_id.get(id).filter(|t| known(t)) {
            step(
                tried,
                "references",
                format!("matched: {id} is a message of ticket {t}"),
            );
            return Some(ThreadMatch::References {
                ticket: *t,
                message_id: id.clone(),
            });
        }
    }
    step(tried, "references", none_known(&p.references));
    None
}

/// Rule 2, out of order: what stored mail says about this message
/// (`referenced_by`, then `shared_reference`).
fn out_of_order(
    p: &Probe,
    index: &ThreadIndex,
    known: Known<'_>,
    tried: &mut Vec<Step>,
) -> Option<ThreadMatch> {
    match &p.own_id {
        Some(id) if index.own_id_stored => step(
            tried,
            "referenced_by",
            format!(
                "skipped: {id} is already the id of another stored message (a reused Message-ID)"
            ),
        ),
        Some(id) => match index.by_reference.get(id).filter(|t| known(t)) {
            Some(t) => {
                step(
                    tried,
                    "referenced_by",
                    format!("matched: a message of ticket {t} replies to {id}"),
                );
                return Some(ThreadMatch::ReferencedBy {
                    ticket: *t,
                    message_id: id.clone(),
                });
            }
            None => step(
                tried,
                "referenced_by",
                "no stored message refers to this one",
            ),
        },
        None => step(tried, "referenced_by", "the message has no Message-ID"),
    }
    for id in p.candidates() {
        if let Some(t) = index.by_reference.get(&id).filter(|t| known(t)) {
            step(
                tried,
                "shared_reference",
                format!("matched: a message of ticket {t} also refers to {id}"),
            );
            return Some(ThreadMatch::SharedReference {
                ticket: *t,
                message_id: id,
            });
        }
    }
    step(
        tried,
        "shared_reference",
        "no stored message refers to the same ids",
    );
    None
}

/// Rule 3: the subject tag, from someone entitled to use it.
fn subject_tag(
    cfg: &Config,
    p: &Probe,
    index: &ThreadIndex,
    known: Known<'_>,
    tried: &mut Vec<Step>,
) -> Option<ThreadMatch> {
    let Some(seen) = &p.tag else {
        step(tried, "subject_tag", "no ticket tag in the subject");
        return None;
    };
    let n = seen.number;
    let Some(t) = index.by_number.get(&n).filter(|t| known(t)) else {
        step(
            tried,
            "subject_tag",
            format!("tag with number {n}: no such ticket"),
        );
        return None;
    };
    // The tagged ticket itself (before merges), whose queue and opening
    // year the tag must show.
    let Some(own) = index.tagged.as_ref().or_else(|| index.tickets.get(t)) else {
        step(tried, "subject_tag", format!("number {n}: no such ticket"));
        return None;
    };
    let opened = Time::from_secs(own.created_at);
    let tag = cfg.tickets.format_tag(n, &own.queue, opened);
    let format = cfg.tickets.format_for(&own.queue);
    if seen.format != format.as_str() {
        step(
            tried,
            "subject_tag",
            format!(
                "the tag is written `{}`, but ticket {tag} is in queue {} whose format is `{}`",
                seen.format,
                own.queue,
                format.as_str()
            ),
        );
        return None;
    }
    if let Some(year) = seen.year
        && year != opened.utc_year()
    {
        step(
            tried,
            "subject_tag",
            format!(
                "the tag shows the year {year}, but ticket {tag} was opened in {}",
                opened.utc_year()
            ),
        );
        return None;
    }
    let is_participant = index
        .participants
        .get(t)
        .is_some_and(|ps| ps.contains(&p.sender));
    let is_agent = cfg.is_agent(&p.sender);
    if is_participant || is_agent {
        let who = if is_participant {
            "a participant"
        } else {
            "an agent"
        };
        step(
            tried,
            "subject_tag",
            format!("matched: {tag}, sender is {who}"),
        );
        return Some(ThreadMatch::SubjectTag {
            ticket: *t,
            number: n,
        });
    }
    step(
        tried,
        "subject_tag",
        format!(
            "{tag}: sender {} is neither a participant of it nor an agent",
            p.sender
        ),
    );
    None
}

/// Rule 4: the sender's recent ticket with the same subject.
fn recent(
    cfg: &Config,
    p: &Probe,
    index: &ThreadIndex,
    now: Time,
    tried: &mut Vec<Step>,
) -> Option<ThreadMatch> {
    if !cfg.threading.recent_rule {
        step(tried, "recent", "off ([threading] recent_rule = false)");
    } else if p.normalized_subject.is_empty() {
        step(tried, "recent", "no subject to compare");
    } else if p.sender.is_empty() {
        step(tried, "recent", "no sender to compare");
    } else {
        let window = secs(cfg.threading.recent_window);
        let best = index
            .recent
            .iter()
            .filter_map(|t| index.tickets.get(t))
            .filter(|t| {
                t.requester == p.sender
                    && t.inbound_address == p.inbound_address
                    && t.normalized_subject == p.normalized_subject
                    && !is_closed(&t.status)
                    && now.secs().saturating_sub(t.updated_at) <= window
            })
            .max_by_key(|t| (t.updated_at, t.id));
        match best {
            Some(t) => {
                step(
                    tried,
                    "recent",
                    format!(
                        "matched: ticket {} from the same sender to the same address, same subject",
                        t.id
                    ),
                );
                return Some(ThreadMatch::Recent { ticket: t.id });
            }
            None => step(
                tried,
                "recent",
                "no open ticket from this sender to this address with this subject active in the window",
            ),
        }
    }
    None
}

/// Rule 1 for one address: the match and what to record, or `None` with a
/// note on why it does not count.
fn verify_token(
    cfg: &Config,
    keys: crate::token::Keys<'_>,
    p: &Probe,
    seen: &TokenSeen,
    known: Known<'_>,
    notes: &mut Vec<String>,
) -> Option<(ThreadMatch, String)> {
    use crate::token::{Kind, Purpose};
    let address = &seen.address;
    if p.has_envelope && !seen.in_envelope {
        notes.push(format!(
            "{address}: in a header only; only envelope recipients count"
        ));
        return None;
    }
    let Some(claim) = crate::token::claim(&seen.token) else {
        notes.push(format!(
            "{address}: a reply address of a retired format, no longer accepted"
        ));
        return None;
    };
    let ticket = claim.ticket;
    let agent = match claim.kind {
        Kind::Agent => {
            let Some(agent) = crate::token::verify_agent(
                keys,
                &claim,
                cfg.agents.iter().map(|a| a.address.as_str()),
            ) else {
                notes.push(format!(
                    "{address}: agent address does not verify (forged, altered or its agent was removed)"
                ));
                return None;
            };
            Some(agent.to_owned())
        }
        kind => {
            let verified = match kind {
                Kind::Bounce => crate::token::verify_bounce(keys, &claim).is_some(),
                Kind::Rating => crate::token::verify_rating(keys, &claim).is_some(),
                _ => crate::token::verify(keys, &claim, &Purpose::Customer),
            };
            if !verified {
                notes.push(format!(
                    "{address}: {} address does not verify (forged or altered)",
                    kind.as_str()
                ));
                return None;
            }
            if kind == Kind::Bounce && !p.is_automatic {
                notes.push(format!(
                    "{address}: a bounce address threads only bounces and automatic mail"
                ));
                return None;
            }
            // A rating is a person's click: an automatic mail (a vacation
            // reply, a forwarder's notice) to the address rates nothing.
            if kind == Kind::Rating && p.is_automatic {
                notes.push(format!(
                    "{address}: a rating address counts only mail a person sent"
                ));
                return None;
            }
            None
        }
    };
    if !known(&ticket) {
        notes.push(format!(
            "{address}: valid {} address for ticket {ticket}, which does not exist",
            claim.kind.as_str()
        ));
        return None;
    }
    let said = format!(
        "matched: {address} is a valid {} address for ticket {ticket}{}",
        claim.kind.as_str(),
        agent
            .as_deref()
            .map(|a| format!(", issued to {a}"))
            .unwrap_or_default()
    );
    Some((
        ThreadMatch::Token {
            ticket,
            address: address.clone(),
            purpose: claim.kind,
            agent,
            outbox: claim.outbox,
            score: claim.score,
            in_envelope: seen.in_envelope,
        },
        said,
    ))
}

fn none_known(ids: &[String]) -> String {
    match ids.len() {
        0 => "header absent".to_string(),
        1 => format!("{} is not a known message", ids[0]),
        n => format!("none of {n} ids is a known message"),
    }
}
