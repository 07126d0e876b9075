//! Pipeline: one accepted message through thread, route and store.
//!
//! Runs on the store's writer thread, inside the batch transaction, so the
//! ticket exists when the sender gets its `250`. [`process`] is also what
//! `explain` runs, inside a transaction that is rolled back.
//!
//! Promise: nothing is dropped. A duplicate (same Message-ID and content
//! hash) returns the earlier row; unparseable mail is stored raw and flagged;
//! an error while threading or routing rolls back to a savepoint and stores
//! the message as `unrouted`, visible and flagged with the error.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use crate::config::Config;
use crate::ids::{MessageRowId, TicketId};
use crate::parse::ParsedMessage;
use crate::route::{self, Route};
use crate::spool::{Accepted, Envelope};
use crate::store::{self, NewEvent, NewMessage, NewTicket, Tx};
use crate::thread::{self, ThreadIndex};

/// Everything the pipeline decided about one message.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The stored row (or the earlier row, for a duplicate).
    pub message: MessageRowId,
    /// The ticket it joined or opened.
    pub ticket: Option<TicketId>,
    /// Whether it was a duplicate delivery.
    pub duplicate: bool,
    /// The Message-ID it is stored under.
    pub message_id: String,
    /// The thread decision (absent for duplicates and unparseable mail).
    pub thread: Option<thread::Decision>,
    /// The route decision (absent for duplicates and unparseable mail).
    pub route: Option<Route>,
    /// Stored state: `ticketed`, `quarantined`, `internal`, `unparsed`,
    /// `unrouted` or `duplicate`.
    pub state: &'static str,
    /// The ticket opened, if a new one was.
    pub opened: bool,
}

impl Outcome {
    /// The spool's view of the outcome.
    pub fn accepted(&self) -> Accepted {
        Accepted { message: self.message, ticket: self.ticket, duplicate: self.duplicate }
    }
}

/// The writer's handler: reads one config snapshot per message and runs
/// [`process`], falling back to an `unrouted` row if it fails.
pub fn handler(config: watch::Receiver<Arc<Config>>) -> store::writer::Handler {
    Box::new(move |tx, job| {
        let cfg = config.borrow().clone();
        let now = jiff::Timestamp::now().as_second();
        let result = tx.attempt(|tx| process(tx, &cfg, &job.envelope, &job.raw, &job.parsed, now));
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                crate::logging::log_error("pipeline failed, storing message as unrouted", &e);
                tx.attempt(|tx| store_unrouted(tx, &job.envelope, &job.raw, &job.parsed, &e, now))?
            }
        };
        tracing::debug!(
            message_row = outcome.message.0,
            ticket = outcome.ticket.map(|t| t.0),
            state = outcome.state,
            duplicate = outcome.duplicate,
            source = job.envelope.source.as_str(),
            "message stored"
        );
        Ok(outcome.accepted())
    })
}

/// The Message-ID a message is stored under: its own, or a synthetic one
/// derived from its content hash (so an id-less mail delivered twice is still
/// recognised as one).
pub fn stored_message_id(parsed: &ParsedMessage) -> (String, bool) {
    match &parsed.message_id {
        Some(id) => (id.clone(), false),
        None => (format!("{}@synthetic.postdesk.invalid", &parsed.content_hash[..32]), true),
    }
}

/// Thread, route and store one message.
///
/// # Errors
///
/// [`store::Error`] when a statement fails; the caller rolls back to its
/// savepoint.
pub fn process(
    tx: &mut Tx<'_>,
    cfg: &Config,
    env: &Envelope,
    raw: &[u8],
    parsed: &ParsedMessage,
    now: i64,
) -> Result<Outcome, store::Error> {
    let (message_id, is_synthetic) = stored_message_id(parsed);

    if let Some((row, ticket)) = tx.duplicate_of(&message_id, &parsed.content_hash)? {
        return Ok(Outcome {
            message: row,
            ticket,
            duplicate: true,
            message_id,
            thread: None,
            route: None,
            state: "duplicate",
            opened: false,
        });
    }

    let rendered = Rendered::new(env, parsed);
    let base = base_message(env, raw, parsed, &rendered, &message_id, is_synthetic, now);

    if parsed.from.is_none() && parsed.problem.is_some() {
        let flag = parsed.problem.as_deref().unwrap_or("unparseable");
        let row = tx.insert_message(&NewMessage { state: "unparsed", flag, ..base.clone() })?;
        return Ok(Outcome {
            message: row,
            ticket: None,
            duplicate: false,
            message_id,
            thread: None,
            route: None,
            state: "unparsed",
            opened: false,
        });
    }

    let index = ThreadIndex { by_message_id: tx.tickets_by_message_ids(&thread::candidates(parsed))? };
    let decision = thread::decide(parsed, &index);
    let route = route::decide(cfg, env, parsed, &decision.matched);
    let route_json = serde_json::to_string(&route).unwrap_or_default();
    let problem = parsed.problem.as_deref().unwrap_or("");

    let (state, kind) = match &route {
        Route::Ticket { .. } => ("ticketed", "customer"),
        Route::Quarantine { .. } => ("quarantined", "customer"),
        Route::Internal { .. } => ("internal", "system"),
    };
    let flag = match &route {
        Route::Quarantine { reason, .. } => reason.as_str(),
        _ => problem,
    };

    let Route::Ticket { queue, priority, issue_type, inbound_address, because } = &route else {
        let row = tx.insert_message(&NewMessage {
            state,
            kind,
            flag,
            thread_match: decision.matched.rule(),
            route: &route_json,
            ..base.clone()
        })?;
        return Ok(Outcome {
            message: row,
            ticket: None,
            duplicate: false,
            message_id,
            thread: Some(decision),
            route: Some(route),
            state,
            opened: false,
        });
    };

    // A contact exists before the ticket that names it.
    let contact = match &parsed.from {
        Some(from) => Some(tx.upsert_contact(&from.address, from.name.as_deref().unwrap_or(""), now)?),
        None => None,
    };

    let (ticket, opened) = match decision.matched.ticket() {
        Some(t) => (t, false),
        None => {
            let subject = route::display_subject(parsed.subject.as_deref(), cfg.tickets.subject_max);
            let number = tx.next_ticket_number(cfg.tickets.number_start)?;
            let t = tx.insert_ticket(&NewTicket {
                number,
                subject: &subject,
                normalized_subject: &subject.to_lowercase(),
                status: "Open",
                priority: priority.as_str(),
                queue: queue.as_str(),
                issue_type,
                requester: contact,
                requester_name: &route::requester_name(parsed.from.as_ref()),
                inbound_address,
                linked_ticket: None,
                now,
            })?;
            (t, true)
        }
    };

    let row = tx.insert_message(&NewMessage {
        ticket: Some(ticket),
        state,
        kind,
        flag,
        thread_match: decision.matched.rule(),
        route: &route_json,
        ..base
    })?;
    if let Some(c) = contact {
        tx.add_participant(ticket, c, if opened { "requester" } else { "cc" }, now)?;
    }
    if opened {
        tx.record_event(&NewEvent {
            ticket: Some(ticket),
            message: Some(row),
            kind: "ticket_opened",
            cause: because,
            detail: &route_json,
            now,
        })?;
    }
    let detail = serde_json::to_string(&decision.matched).unwrap_or_default();
    tx.record_event(&NewEvent {
        ticket: Some(ticket),
        message: Some(row),
        kind: "message_added",
        cause: decision.matched.rule(),
        detail: &detail,
        now,
    })?;

    Ok(Outcome {
        message: row,
        ticket: Some(ticket),
        duplicate: false,
        message_id,
        thread: Some(decision),
        route: Some(route),
        state,
        opened,
    })
}

fn store_unrouted(
    tx: &mut Tx<'_>,
    env: &Envelope,
    raw: &[u8],
    parsed: &ParsedMessage,
    error: &store::Error,
    now: i64,
) -> Result<Outcome, store::Error> {
    let (message_id, is_synthetic) = stored_message_id(parsed);
    let flag = format!("pipeline error: {error}");
    let rendered = Rendered::new(env, parsed);
    let row = tx.insert_message(&NewMessage {
        state: "unrouted",
        flag: &flag,
        ..base_message(env, raw, parsed, &rendered, &message_id, is_synthetic, now)
    })?;
    Ok(Outcome {
        message: row,
        ticket: None,
        duplicate: false,
        message_id,
        thread: None,
        route: None,
        state: "unrouted",
        opened: false,
    })
}

/// Owned JSON renderings that [`NewMessage`] borrows.
struct Rendered {
    envelope_to: String,
    peer: String,
    to: String,
    cc: String,
    in_reply_to: String,
    refs: String,
    headers: String,
}

impl Rendered {
    fn new(env: &Envelope, parsed: &ParsedMessage) -> Self {
        Rendered {
            envelope_to: json(&env.rcpt_to),
            peer: env.peer.map(|p| p.to_string()).unwrap_or_default(),
            to: json(&parsed.to.iter().map(|m| &m.address).collect::<Vec<_>>()),
            cc: json(&parsed.cc.iter().map(|m| &m.address).collect::<Vec<_>>()),
            in_reply_to: json(&parsed.in_reply_to),
            refs: json(&parsed.references),
            headers: json(&parsed.headers),
        }
    }
}

fn base_message<'a>(
    env: &'a Envelope,
    raw: &'a [u8],
    parsed: &'a ParsedMessage,
    r: &'a Rendered,
    message_id: &'a str,
    is_synthetic_id: bool,
    now: i64,
) -> NewMessage<'a> {
    NewMessage {
        ticket: None,
        message_id,
        is_synthetic_id,
        content_hash: &parsed.content_hash,
        direction: "inbound",
        kind: "customer",
        state: "ticketed",
        flag: "",
        thread_match: "",
        route: "",
        source: env.source.as_str(),
        envelope_from: &env.mail_from,
        envelope_to: &r.envelope_to,
        peer: &r.peer,
        from_addr: parsed.from.as_ref().map(|m| m.address.as_str()).unwrap_or(""),
        from_name: parsed.from.as_ref().and_then(|m| m.name.as_deref()).unwrap_or(""),
        to_addrs: &r.to,
        cc_addrs: &r.cc,
        subject: parsed.subject.as_deref().unwrap_or(""),
        in_reply_to: &r.in_reply_to,
        refs: &r.refs,
        date_header: parsed.date,
        headers: &r.headers,
        text: &parsed.text,
        html: parsed.html.as_deref(),
        raw,
        attachments: &parsed.attachments,
        now,
    }
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}
