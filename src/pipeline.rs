//! Pipeline: one accepted message through thread, route and store.
//!
//! Runs on the store's writer thread, inside the batch transaction, so the
//! ticket exists when the sender gets its `250`. [`process`] is also what
//! `explain` runs, inside a transaction that is rolled back.
//!
//! Decisions stay pure: this module asks the store what [`thread::decide`]
//! and [`route::decide`] need (a [`ThreadIndex`], a [`SenderHistory`]),
//! calls them, then carries out the route with the store's verbs.
//!
//! Promise: nothing is dropped. A duplicate (same Message-ID and content
//! hash) returns the earlier row; the same Message-ID with other content is
//! a new message, stored and flagged; unparseable mail is stored raw and
//! flagged; an error while threading or routing rolls back to a savepoint
//! and [`run`] stores the message in a ticket of the `unrouted` queue, where
//! `postdesk tickets --queue unrouted` shows it to a person (and if even
//! that fails, as a bare `unrouted` message that `postdesk messages` lists).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use crate::config::Config;
use crate::ids::{MessageRowId, TicketId};
use crate::parse::ParsedMessage;
use crate::route::{self, Queue, Route, SenderHistory, Target};
use crate::spool::{Accepted, Envelope};
use crate::store::{self, NewEvent, NewMessage, NewTicket, Tx};
use crate::thread::{self, Action, Probe, ThreadIndex};

/// The flag on a message whose Message-ID an earlier, different message
/// already used.
pub const REUSED_ID_FLAG: &str = "message-id reused by a different message";

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
    /// Whether an earlier, different message was stored under the same
    /// Message-ID.
    pub reused_message_id: bool,
    /// What threading was given to work with (absent for duplicates and
    /// unparseable mail).
    pub probe: Option<Probe>,
    /// The thread decision (absent for duplicates and unparseable mail).
    pub thread: Option<thread::Decision>,
    /// The route decision (absent for duplicates and unparseable mail).
    pub route: Option<Route>,
    /// How the message joined its ticket, as stored (`thread_match`): the
    /// thread rule, or `open_lead` when routing chose the sender's lead.
    pub thread_match: &'static str,
    /// Stored state: `ticketed`, `quarantined`, `internal`, `unparsed`,
    /// `unrouted` or `duplicate`.
    pub state: &'static str,
    /// The ticket opened, if a new one was.
    pub opened: bool,
    /// Whether a closed ticket was reopened.
    pub reopened: bool,
}

impl Outcome {
    /// The spool's view of the outcome.
    pub fn accepted(&self) -> Accepted {
        Accepted {
            message: self.message,
            ticket: self.ticket,
            duplicate: self.duplicate,
        }
    }

    fn bare(message: MessageRowId, message_id: String, state: &'static str) -> Outcome {
        Outcome {
            message,
            ticket: None,
            duplicate: false,
            message_id,
            reused_message_id: false,
            probe: None,
            thread: None,
            route: None,
            thread_match: "",
            state,
            opened: false,
            reopened: false,
        }
    }
}

/// The writer's handler: reads one config snapshot per message and runs
/// [`run`].
pub fn handler(config: watch::Receiver<Arc<Config>>) -> store::writer::Handler {
    Box::new(move |tx, job| {
        let cfg = config.borrow().clone();
        let now = jiff::Timestamp::now().as_second();
        let outcome = run(tx, &cfg, &job.envelope, &job.raw, &job.parsed, now)?;
        // Mailbox monitoring: the ticket's client and its alert or
        // digest item, in this transaction.
        if let Err(e) =
            tx.attempt(|tx| crate::poller::alert::record(tx, &cfg, &job.parsed, &outcome, now))
        {
            if tx.is_poisoned() {
                return Err(e);
            }
            crate::logging::log_error("recording the mailbox alert or digest item failed", &e);
        }
        tracing::debug!(
            message_row = outcome.message.0,
            ticket = outcome.ticket.map(|t| t.0),
            state = outcome.state,
            matched = outcome.thread_match,
            because = outcome.route.as_ref().map(Route::because),
            duplicate = outcome.duplicate,
            source = job.envelope.source.as_str(),
            "message stored"
        );
        Ok(outcome.accepted())
    })
}

/// The detector's verdict on the new (unquoted) text of `parsed`; see
/// [`crate::compliance::verdict`]. `explain` and the pipeline call this.
pub fn detector_verdict(cfg: &Config, parsed: &ParsedMessage) -> crate::detect::Verdict {
    crate::compliance::verdict(
        cfg,
        parsed.from.as_ref().map(|m| m.address.as_str()),
        &parsed.text,
    )
}

/// Scan a customer message stored in `ticket` when the ticket is in the
/// detector's scope, and carry out what a flag sets in motion (see
/// [`crate::compliance`]). Runs in the message's transaction, before it
/// commits.
#[allow(clippy::too_many_arguments)] // one call site, all values distinct
fn scan_inbound(
    tx: &mut Tx<'_>,
    cfg: &Config,
    env: &Envelope,
    parsed: &ParsedMessage,
    message_id: &str,
    ticket: TicketId,
    row: MessageRowId,
    now: i64,
) -> Result<(), store::Error> {
    let Some(sender) = parsed.from.as_ref().map(|m| m.address.as_str()) else {
        return Ok(());
    };
    if !cfg.detector.enabled || cfg.is_agent(sender) {
        return Ok(());
    }
    let Some((queue, issue_type, status)) = tx.ticket_scope(ticket)? else {
        return Ok(());
    };
    if !crate::detect::in_scope(&cfg.detector, &queue, &issue_type, &status) {
        return Ok(());
    }
    let verdict = detector_verdict(cfg, parsed);
    let scanned = crate::compliance::Scanned {
        ticket,
        message: row,
        message_id,
        sender,
        queue: &queue,
        sends_mail: env.source != crate::spool::Source::Ingest || cfg.outbound.ingest_sends_mail,
        automatic: crate::guard::is_automatic(cfg, env, parsed),
        rescan: false,
    };
    crate::compliance::act(tx, cfg, &scanned, &verdict, now)?;
    Ok(())
}

/// [`process`] inside a savepoint; if it fails, the message is stored all
/// the same, in a ticket of the `unrouted` queue (or, if that fails too, as
/// a bare `unrouted` message), and the error is logged here, once.
///
/// # Errors
///
/// Only when not even the bare message can be stored (the disk, the
/// database): the writer then answers the sender with a temporary failure.
pub fn run(
    tx: &mut Tx<'_>,
    cfg: &Config,
    env: &Envelope,
    raw: &[u8],
    parsed: &ParsedMessage,
    now: i64,
) -> Result<Outcome, store::Error> {
    let error = match tx.attempt(|tx| process(tx, cfg, env, raw, parsed, now)) {
        Ok(o) => return Ok(o),
        // Without a savepoint the failed attempt's writes cannot be undone
        // alone: the writer rolls the batch back and reruns it with
        // savepoints, where this job comes back here and is handled.
        Err(e) if tx.is_poisoned() => return Err(e),
        Err(e) => e,
    };
    let (message_id, _) = stored_message_id(parsed);
    let from = parsed.from.as_ref().map_or("", |m| m.address.as_str());
    tracing::error!(
        message_id = %message_id,
        from,
        error = %crate::logging::chain(&error),
        "routing failed, storing the message in the unrouted queue"
    );
    match tx.attempt(|tx| store_unrouted(tx, cfg, env, raw, parsed, &error, true, now)) {
        Ok(o) => Ok(o),
        Err(second) => {
            crate::logging::log_error(
                "cannot open an unrouted ticket; storing the message alone",
                &second,
            );
            tx.attempt(|tx| store_unrouted(tx, cfg, env, raw, parsed, &error, false, now))
        }
    }
}

/// The Message-ID a message is stored under: its own, or a synthetic one
/// derived from its content hash (so an id-less mail delivered twice is still
/// recognised as one).
pub fn stored_message_id(parsed: &ParsedMessage) -> (String, bool) {
    match &parsed.message_id {
        Some(id) => (id.clone(), false),
        None => (
            format!("{}@synthetic.postdesk.invalid", &parsed.content_hash[..32]),
            true,
        ),
    }
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
    if let Some(n) = probe.tag_number
        && let Some(t) = tx.ticket_by_number(n)?
    {
        index.by_number.insert(n, t);
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
    // A merged ticket threads as the ticket it was merged into.
    tx.follow_merges(&mut index)?;
    Ok(index)
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
            ticket,
            duplicate: true,
            ..Outcome::bare(row, message_id, "duplicate")
        });
    }
    // Not a duplicate, so a stored message with this id has other content:
    // a sender reusing Message-IDs. Keep it as a new message, flagged.
    let reused = !is_synthetic && tx.message_id_stored(&message_id)?;
    if reused {
        tracing::warn!(message_id = %message_id, "message-id reused with different content, storing a new message");
    }

    let rendered = Rendered::new(env, parsed);
    let base = base_message(env, raw, parsed, &rendered, &message_id, is_synthetic, now);

    if parsed.from.is_none() && parsed.problem.is_some() {
        let flag = parsed.problem.as_deref().unwrap_or("unparseable");
        let row = tx.insert_message(&NewMessage {
            state: "unparsed",
            flag,
            ..base.clone()
        })?;
        return Ok(Outcome {
            reused_message_id: reused,
            ..Outcome::bare(row, message_id, "unparsed")
        });
    }

    let mut probe = thread::probe(cfg, env, parsed);
    // Mail about mail (a bounce in any MTA's words, an auto-reply without
    // headers) is automatic too, so a bounce address threads it.
    let class = crate::outbound::classify::classify(
        raw,
        parsed,
        crate::guard::has_null_return_path(env, parsed),
    );
    probe.is_automatic |= class.is_some();
    let index = load_index(tx, cfg, &probe, reused)?;
    let decision = thread::decide(cfg, &probe, &index, now);
    // Bounces and authenticated agent mail do not take the customer path.
    let cx = crate::agent::Context {
        cfg,
        env,
        parsed,
        probe: &probe,
        decision: &decision,
        base: &base,
        reused,
        class: class.as_ref(),
        now,
    };
    if let Some(outcome) = crate::agent::intercept(tx, &cx)? {
        return Ok(outcome);
    }
    // Only rules 5 and 6 of routing read the history: a new conversation
    // that did not come in through a support address.
    let needs_history = matches!(decision.action, Action::Open)
        && !probe.sender.is_empty()
        && !cfg.addresses.support.contains(&probe.inbound_address);
    let history = if needs_history {
        tx.sender_history(&probe.sender)?
    } else {
        SenderHistory::default()
    };
    let route = route::decide(cfg, env, parsed, &decision, &history);
    let route_json = serde_json::to_string(&route).unwrap_or_default();
    let problem = parsed
        .problem
        .as_deref()
        .unwrap_or(if reused { REUSED_ID_FLAG } else { "" });

    let (state, kind) = match &route {
        Route::Ticket { .. } => ("ticketed", "customer"),
        Route::Quarantine { .. } => ("quarantined", "customer"),
        Route::Internal { .. } => ("internal", "system"),
    };
    let flag = match &route {
        Route::Quarantine { reason, .. } => reason.as_str(),
        _ => problem,
    };

    let Route::Ticket {
        target,
        queue,
        priority,
        issue_type,
        inbound_address,
        because,
    } = &route
    else {
        let thread_match = decision.matched.rule();
        let row = tx.insert_message(&NewMessage {
            state,
            kind,
            flag,
            thread_match,
            route: &route_json,
            ..base.clone()
        })?;
        return Ok(Outcome {
            reused_message_id: reused,
            probe: Some(probe),
            thread: Some(decision),
            route: Some(route),
            thread_match,
            ..Outcome::bare(row, message_id, state)
        });
    };

    // A contact exists before the ticket that names it.
    let contact = match &parsed.from {
        Some(from) => {
            Some(tx.upsert_contact(&from.address, from.name.as_deref().unwrap_or(""), now)?)
        }
        None => None,
    };

    let (ticket, opened, reopened) = match *target {
        Target::Existing { ticket } => (ticket, false, false),
        Target::Reopen { ticket } => {
            tx.reopen_ticket(ticket, now)?;
            (ticket, false, true)
        }
        Target::New | Target::NewLinked { .. } => {
            let linked_ticket = match *target {
                Target::NewLinked { previous } => Some(previous),
                _ => None,
            };
            let subject =
                route::display_subject(parsed.subject.as_deref(), cfg.tickets.subject_max);
            let number = tx.next_ticket_number(cfg.tickets.number_start)?;
            let t = tx.insert_ticket(&NewTicket {
                number,
                subject: &subject,
                normalized_subject: &probe.normalized_subject,
                status: "Open",
                priority: priority.as_str(),
                queue: queue.as_str(),
                issue_type,
                requester: contact,
                requester_name: &route::requester_name(parsed.from.as_ref()),
                inbound_address,
                linked_ticket,
                now,
            })?;
            (t, true, false)
        }
    };
    // The thread rule, unless routing rather than threading chose the ticket.
    let thread_match = match (target, &decision.matched) {
        (Target::Existing { .. }, thread::ThreadMatch::New) => "open_lead",
        _ => decision.matched.rule(),
    };

    let row = tx.insert_message(&NewMessage {
        ticket: Some(ticket),
        state,
        kind,
        flag,
        thread_match,
        route: &route_json,
        ..base
    })?;
    let refs: Vec<String> = probe
        .candidates()
        .into_iter()
        .filter(|id| *id != message_id)
        .collect();
    tx.insert_refs(row, ticket, &refs)?;
    // A sender new to an existing ticket (a reply by Message-ID from
    // someone the conversation never included) is recorded, and by
    // default held: threading alone never makes them a recipient of the
    // agents' replies (`#cc ADDRESS` does).
    let mut new_participant = false;
    if let Some(c) = contact {
        let role = if opened {
            "requester"
        } else {
            cfg.threading.new_participants.role()
        };
        new_participant = tx.add_participant(ticket, c, role, now)? && !opened;
        if new_participant {
            let detail = serde_json::json!({
                "address": probe.sender,
                "role": role,
                "matched": thread_match,
            })
            .to_string();
            tx.record_event(&NewEvent {
                ticket: Some(ticket),
                message: Some(row),
                kind: "new_participant",
                cause: thread_match,
                detail: &detail,
                now,
            })?;
        }
    }
    let thread_json = serde_json::to_string(&decision.matched).unwrap_or_default();
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
    if let Target::NewLinked { previous } = target {
        let detail =
            serde_json::json!({ "ticket": ticket, "matched": decision.matched }).to_string();
        tx.record_event(&NewEvent {
            ticket: Some(*previous),
            message: Some(row),
            kind: "continued_in_new_ticket",
            cause: decision.matched.rule(),
            detail: &detail,
            now,
        })?;
    }
    if reopened {
        tx.record_event(&NewEvent {
            ticket: Some(ticket),
            message: Some(row),
            kind: "ticket_reopened",
            cause: decision.matched.rule(),
            detail: &thread_json,
            now,
        })?;
    }
    tx.record_event(&NewEvent {
        ticket: Some(ticket),
        message: Some(row),
        kind: "message_added",
        cause: thread_match,
        detail: &thread_json,
        now,
    })?;
    // The bypass detector, on the ticket's status before this message
    // moves it (a reopened ticket is Open again).
    if kind == "customer" {
        scan_inbound(tx, cfg, env, parsed, &message_id, ticket, row, now)?;
    }
    // Status back to Open, acknowledgement, agent notifications: queued in
    // this transaction (see `outbound`).
    crate::outbound::after_customer_message(
        tx,
        cfg,
        env,
        raw,
        parsed,
        &decision,
        ticket,
        row,
        opened,
        new_participant,
        now,
    )?;

    Ok(Outcome {
        ticket: Some(ticket),
        reused_message_id: reused,
        probe: Some(probe),
        thread: Some(decision),
        route: Some(route),
        thread_match,
        opened,
        reopened,
        ..Outcome::bare(row, message_id, state)
    })
}

/// Store a message whose routing failed: in a new ticket of the `unrouted`
/// queue when `with_ticket`, else alone. Either way its state is
/// `unrouted` and its flag names the error.
#[allow(clippy::too_many_arguments)] // one call site each, all values distinct
fn store_unrouted(
    tx: &mut Tx<'_>,
    cfg: &Config,
    env: &Envelope,
    raw: &[u8],
    parsed: &ParsedMessage,
    error: &store::Error,
    with_ticket: bool,
    now: i64,
) -> Result<Outcome, store::Error> {
    let (message_id, is_synthetic) = stored_message_id(parsed);
    let flag = format!("pipeline error: {}", crate::logging::chain(error));
    let ticket = if with_ticket {
        let subject = route::display_subject(parsed.subject.as_deref(), cfg.tickets.subject_max);
        let number = tx.next_ticket_number(cfg.tickets.number_start)?;
        Some(tx.insert_ticket(&NewTicket {
            number,
            subject: &subject,
            normalized_subject: "",
            status: "Open",
            priority: cfg.tickets.default_priority.as_str(),
            queue: Queue::Unrouted.as_str(),
            issue_type: &cfg.tickets.default_issue_type,
            requester: None,
            requester_name: &route::requester_name(parsed.from.as_ref()),
            inbound_address: "",
            linked_ticket: None,
            now,
        })?)
    } else {
        None
    };
    let rendered = Rendered::new(env, parsed);
    let row = tx.insert_message(&NewMessage {
        ticket,
        state: "unrouted",
        flag: &flag,
        ..base_message(env, raw, parsed, &rendered, &message_id, is_synthetic, now)
    })?;
    if ticket.is_some() {
        let detail = serde_json::json!({ "error": flag }).to_string();
        tx.record_event(&NewEvent {
            ticket,
            message: Some(row),
            kind: "ticket_opened",
            cause: "routing_error",
            detail: &detail,
            now,
        })?;
    }
    Ok(Outcome {
        ticket,
        opened: ticket.is_some(),
        ..Outcome::bare(row, message_id, "unrouted")
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
        from_addr: parsed
            .from
            .as_ref()
            .map(|m| m.address.as_str())
            .unwrap_or(""),
        from_name: parsed
            .from
            .as_ref()
            .and_then(|m| m.name.as_deref())
            .unwrap_or(""),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("rules.toml"), "").expect("write rules");
        let cfg = crate::config::load(dir.path()).expect("config");
        (dir, cfg)
    }

    fn envelope() -> Envelope {
        Envelope {
            mail_from: "ann@customer.test".into(),
            rcpt_to: vec!["support@example.com".into()],
            source: crate::spool::Source::Smtp,
            peer: None,
            helo: String::new(),
        }
    }

    const RAW: &[u8] = b"From: Ann <ann@customer.test>\r\nTo: support@example.com\r\n\
        Subject: Help\r\nMessage-ID: <u1@customer.test>\r\n\r\nHello\r\n";

    /// Run the pipeline on RAW in a database where `sql` was executed first
    /// (triggers that make some writes fail); returns the outcome and
    /// `(queue of the message's ticket, state, flag)`.
    fn run_with(sql: &str) -> (Outcome, Option<String>, String, String) {
        let (dir, cfg) = config();
        let mut conn = crate::store::connect(&dir.path().join("db.sqlite3")).expect("open");
        conn.execute_batch(sql).expect("setup sql");
        let txn = conn.transaction().expect("begin");
        let parsed = crate::parse::parse(RAW);
        let outcome = {
            let mut tx = Tx::new(&txn);
            run(&mut tx, &cfg, &envelope(), RAW, &parsed, 1_000).expect("stored")
        };
        let (queue, state, flag) = txn
            .query_row(
                "SELECT t.queue, m.state, m.flag FROM messages m LEFT JOIN tickets t ON t.id = m.ticket_id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("one message");
        (outcome, queue, state, flag)
    }

    #[test]
    fn a_routing_error_leaves_the_message_in_an_unrouted_ticket() {
        let (outcome, queue, state, flag) = run_with(
            "CREATE TRIGGER boom BEFORE INSERT ON participants BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        );
        assert_eq!(outcome.state, "unrouted");
        assert!(outcome.ticket.is_some() && outcome.opened);
        assert_eq!(queue.as_deref(), Some("unrouted"));
        assert_eq!(state, "unrouted");
        assert!(
            flag.starts_with("pipeline error: ") && flag.contains("boom"),
            "{flag}"
        );
    }

    #[test]
    fn when_no_ticket_can_be_opened_the_message_is_stored_alone() {
        let (outcome, queue, state, flag) = run_with(
            "CREATE TRIGGER boom BEFORE INSERT ON tickets BEGIN SELECT RAISE(ABORT, 'no tickets'); END;",
        );
        assert_eq!(outcome.state, "unrouted");
        assert_eq!(outcome.ticket, None);
        assert_eq!(queue, None);
        assert_eq!(state, "unrouted");
        assert!(flag.contains("no tickets"), "{flag}");
    }

    #[test]
    fn without_savepoints_a_failure_is_handed_back_for_a_rerun() {
        let (dir, cfg) = config();
        let mut conn = crate::store::connect(&dir.path().join("db.sqlite3")).expect("open");
        conn.execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON participants BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .expect("trigger");
        let txn = conn.transaction().expect("begin");
        let parsed = crate::parse::parse(RAW);
        let mut tx = Tx::optimistic(&txn);
        assert!(run(&mut tx, &cfg, &envelope(), RAW, &parsed, 1_000).is_err());
        assert!(tx.is_poisoned());
    }

    #[test]
    fn a_healthy_run_threads_routes_and_records_refs() {
        let (outcome, queue, state, flag) = run_with("");
        assert_eq!(outcome.state, "ticketed");
        assert_eq!(outcome.thread_match, "new");
        assert_eq!(
            outcome.route.as_ref().map(Route::because),
            Some("support_address")
        );
        assert_eq!(
            (queue.as_deref(), state.as_str(), flag.as_str()),
            (Some("support"), "ticketed", "")
        );
    }
}
