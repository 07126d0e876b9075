//! Pipeline: one accepted message through load, decide and commit.
//!
//! Runs on the store's writer thread, inside the batch transaction, so the
//! ticket exists when the sender gets its `250`. Three steps, read top-down:
//!
//! - [`load`] reads everything the decision needs from the store (the
//!   thread index, the sender's history and suspensions, the loop guard's
//!   counts) into one [`Loaded`];
//! - [`decide`] is pure: it returns a [`Plan`] (thread decision, the
//!   sender's path, route, detector scope and verdict, status change,
//!   acknowledgement, notifications, monitoring), each step with the rule
//!   that decided it;
//! - [`commit`] writes the plan in the batch transaction.
//!
//! [`process`] runs the three; `explain` runs it inside a transaction that
//! is rolled back and prints the plan.
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

use crate::domain::{Accepted, MessageRowId, Queue, Status, TicketId, Time};
use crate::outbound::Config;
use crate::parse::ParsedMessage;
use crate::store::{self, NewMessage, NewTicket, Tx};

mod commit;
mod load;
mod plan;

pub use commit::commit;
pub use load::{Loaded, load, load_index};
pub use plan::{
    DetectorStep, Incoming, MailPlan, Notifications, Path, Plan, StatusStep, Step, TicketPlan,
    classify, decide,
};

/// The flag on a message whose Message-ID an earlier, different message
/// already used.
pub const REUSED_ID_FLAG: &str = "message-id reused by a different message";

/// What the pipeline did with one message.
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
    /// How the message joined its ticket, as stored (`thread_match`): the
    /// thread rule, or `open_lead` when routing chose the sender's lead.
    pub thread_match: &'static str,
    /// Stored state: `ticketed`, `quarantined`, `internal`, `unparsed`,
    /// `unrouted`, `duplicate`, or the agent path's (`agent_reply`, ...).
    pub state: &'static str,
    /// The ticket opened, if a new one was.
    pub opened: bool,
    /// Whether a closed ticket was reopened.
    pub reopened: bool,
    /// The plan that was carried out (absent for duplicates, unparseable
    /// mail and routing errors).
    pub plan: Option<Box<MailPlan>>,
    /// Every automation rule evaluated for the message's events, with its
    /// conditions and the actions of those applied.
    pub automation: Vec<crate::automation::Evaluation>,
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

    /// An outcome with nothing but the row, its id and state.
    pub fn bare(message: MessageRowId, message_id: String, state: &'static str) -> Outcome {
        Outcome {
            message,
            ticket: None,
            duplicate: false,
            message_id,
            reused_message_id: false,
            thread_match: "",
            state,
            opened: false,
            reopened: false,
            plan: None,
            automation: Vec::new(),
        }
    }

    /// The route taken, if one was decided.
    pub fn route(&self) -> Option<&crate::route::Route> {
        self.plan.as_ref().and_then(|p| p.route.as_ref())
    }
}

/// The writer's handler: reads one config snapshot per message and runs
/// [`run`].
pub fn handler(config: watch::Receiver<Arc<Config>>) -> store::writer::Handler {
    Box::new(move |tx, job| {
        let cfg = config.borrow().clone();
        let now = Time::now();
        let msg = Incoming {
            env: &job.envelope,
            raw: &job.raw,
            parsed: &job.parsed,
            class: &job.class,
        };
        let outcome = run(tx, &cfg, msg, now)?;
        tracing::debug!(
            message_row = outcome.message.0,
            ticket = outcome.ticket.map(|t| t.0),
            state = outcome.state,
            matched = outcome.thread_match,
            because = outcome.route().map(crate::route::Route::because),
            duplicate = outcome.duplicate,
            source = job.envelope.source.as_str(),
            "message stored"
        );
        Ok(outcome.accepted())
    })
}

/// [`process`] inside a savepoint; if it fails, the message is stored all
/// the same, in a ticket of the `unrouted` queue (or, if that fails too, as
/// a bare `unrouted` message), and the error is logged here, once. Then
/// the monitoring step of the plan, in a savepoint of its own: a failure
/// there is logged and leaves the message stored.
///
/// # Errors
///
/// Only when not even the bare message can be stored (the disk, the
/// database): the writer then answers the sender with a temporary failure.
pub fn run(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    now: Time,
) -> Result<Outcome, store::Error> {
    let parsed = msg.parsed;
    let error = match tx.attempt(|tx| process(tx, cfg, msg, now)) {
        Ok(o) => {
            monitor(tx, cfg, msg, &o, now)?;
            return Ok(o);
        }
        // Without a savepoint the failed attempt's writes cannot be undone
        // alone: the writer rolls the batch back and reruns it with
        // savepoints, where this job comes back here and is handled.
        Err(e) if tx.is_poisoned() => return Err(e),
        // A deadlock or a lost race with another node on a shared store:
        // nothing of it stays, and the writer runs the batch again.
        Err(e) if tx.is_shared() && e.is_transient() => return Err(e),
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
    match tx.attempt(|tx| store_unrouted(tx, cfg, msg, &error, true, now)) {
        Ok(o) => Ok(o),
        Err(second) => {
            crate::logging::log_error(
                "cannot open an unrouted ticket; storing the message alone",
                &second,
            );
            tx.attempt(|tx| store_unrouted(tx, cfg, msg, &error, false, now))
        }
    }
}

/// The plan's monitoring step (alert or digest item), in its own savepoint.
fn monitor(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    o: &Outcome,
    now: Time,
) -> Result<(), store::Error> {
    let (Some(ticket), Some(m)) = (
        o.ticket,
        o.plan
            .as_ref()
            .and_then(|p| p.ticket.as_ref())
            .and_then(|t| t.monitoring.as_ref()),
    ) else {
        return Ok(());
    };
    let result = tx.attempt(|tx| {
        let number = tx
            .conversation(ticket)?
            .map(|c| cfg.tickets.format_number(c.number, &c.queue, c.opened()))
            .unwrap_or_default();
        crate::monitor::commit(tx, cfg, m, msg.parsed, ticket, &number, o.message, now)
    });
    match result {
        Ok(()) => Ok(()),
        Err(e) if tx.is_poisoned() => Err(e),
        Err(e) => {
            crate::logging::log_error("recording the mailbox alert or digest item failed", &e);
            Ok(())
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

/// Load, decide, commit one message.
///
/// # Errors
///
/// [`store::Error`] when a statement fails; the caller rolls back to its
/// savepoint.
pub fn process(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    now: Time,
) -> Result<Outcome, store::Error> {
    let loaded = load(tx, cfg, msg, now)?;
    let plan = decide(cfg, msg, &loaded, now);
    commit(tx, cfg, msg, plan, now)
}

/// Store a message whose routing failed: in a new ticket of the `unrouted`
/// queue when `with_ticket`, else alone. Either way its state is
/// `unrouted` and its flag names the error.
fn store_unrouted(
    tx: &mut Tx<'_>,
    cfg: &Config,
    msg: Incoming<'_>,
    error: &store::Error,
    with_ticket: bool,
    now: Time,
) -> Result<Outcome, store::Error> {
    let parsed = msg.parsed;
    let (message_id, is_synthetic) = stored_message_id(parsed);
    let flag = format!("pipeline error: {}", crate::logging::chain(error));
    let ticket = if with_ticket {
        let subject =
            crate::route::display_subject(parsed.subject.as_deref(), cfg.tickets.subject_max);
        Some(tx.open_ticket(
            &NewTicket {
                subject: &subject,
                normalized_subject: "",
                status: Status::Open.as_str(),
                priority: cfg.tickets.default_priority.as_str(),
                queue: Queue::Unrouted.as_str(),
                issue_type: &cfg.tickets.default_issue_type,
                requester: None,
                requester_name: &crate::route::requester_name(parsed.from.as_ref()),
                inbound_address: "",
                linked_ticket: None,
                now,
            },
            cfg.tickets.number_start,
            &store::Opened {
                cause: "routing_error",
                detail: &serde_json::json!({ "error": flag }).to_string(),
            },
        )?)
    } else {
        None
    };
    let rendered = commit::Rendered::new(msg);
    let row = tx.insert_message(&NewMessage {
        ticket,
        state: "unrouted",
        flag: &flag,
        ..commit::base_message(msg, &rendered, &message_id, is_synthetic, now)
    })?;
    Ok(Outcome {
        ticket,
        opened: ticket.is_some(),
        ..Outcome::bare(row, message_id, "unrouted")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Envelope;

    fn config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("rules.toml"), "").expect("write rules");
        let cfg = crate::outbound::whole::load(dir.path()).expect("config");
        (dir, cfg)
    }

    fn envelope() -> Envelope {
        Envelope {
            mail_from: "ann@customer.test".into(),
            rcpt_to: vec!["support@example.com".into()],
            source: crate::domain::Source::Smtp,
            peer: None,
            helo: String::new(),
            web: None,
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
            let env = envelope();
            let class = classify(&env, RAW, &parsed);
            let msg = Incoming {
                env: &env,
                raw: RAW,
                parsed: &parsed,
                class: &class,
            };
            run(&mut tx, &cfg, msg, Time::from_secs(1_000)).expect("stored")
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
        let env = envelope();
        let msg = Incoming {
            env: &env,
            raw: RAW,
            parsed: &parsed,
            class: &None,
        };
        assert!(run(&mut tx, &cfg, msg, Time::from_secs(1_000)).is_err());
        assert!(tx.is_poisoned());
    }

    #[test]
    fn a_healthy_run_threads_routes_and_records_refs() {
        let (outcome, queue, state, flag) = run_with("");
        assert_eq!(outcome.state, "ticketed");
        assert_eq!(outcome.thread_match, "new");
        assert_eq!(
            outcome.route().map(crate::route::Route::because),
            Some("support_address")
        );
        assert_eq!(
            (queue.as_deref(), state.as_str(), flag.as_str()),
            (Some("support"), "ticketed", "")
        );
    }
}
