//! Compliance: what the bypass detector's verdict sets in motion.
//!
//! ```text
//!  pipeline (message's transaction) ─┐
//!  rescan (batch transaction)       ─┴─> act(): scan recorded
//!        flagged, new hits? ─> flag ─> warning in the thread (template `warning`)
//!                                  ─> Compliance Alert ticket (one open per client)
//!                                     + alert mail to [monitoring] admins
//!        the client's repeat ─> alert Urgent, client's access to the queue
//!                               suspended, notice (template `suspension`), agents told
//! ```
//!
//! The detector itself ([`crate::detect`]) is pure; this module writes. It
//! runs inside the caller's transaction, so a flag, its mails, its alert
//! ticket and a suspension commit together with the scan that found them,
//! or not at all.
//!
//! Idempotence: every scan records the rules version it ran under
//! (`detector_scans`); the rescan only looks at messages scanned under
//! another version; a flag is recorded once per message and version; a hit
//! (message, category, span) acted on once is never acted on again. So a
//! message is warned about once, and a rule change flags a stored message
//! only for what the new rules find that the old ones did not.
//!
//! A client is the sender's address. The repeat is the client's flag on a
//! second distinct message (`repeat_threshold`). Suspension is per queue:
//! the client's mail to it is still stored and threaded; instead of an
//! acknowledgement they get the suspension notice (loop-guarded), and every
//! notification to agents says the client is suspended. An admin lifts it
//! with `postdesk client unsuspend ADDRESS` or `#unsuspend` by mail.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use minijinja::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::detect::{Category, Hit, Verdict};
use crate::domain::{MessageRowId, TicketId, Time};
use crate::guard::Automatic;
use crate::outbound::Config;
use crate::outbound::{self, AutoReplyMail};
use crate::poller::SharedStore;
use crate::store::{self, Conversation, HitKey, NewFlag, NewTicket, ScopeFilter, Suspension, Tx};

/// The event recorded on a ticket when the detector flags one of its
/// customer messages.
pub const FLAGGED: &str = "detector_flagged";

/// The queue Compliance Alert tickets are opened in.
pub const ALERT_QUEUE: &str = crate::domain::Queue::Compliance.as_str();

/// Messages scanned per rescan transaction.
const RESCAN_BATCH: usize = 200;

/// The detector's verdict on `text` (a message's text; quotes are stripped
/// by the scan) sent by `sender`, with what is not evidence: the sender's
/// own address, the served, internal and client domains. `explain`, the
/// pipeline and the rescan call this one.
pub fn verdict(cfg: &Config, sender: Option<&str>, text: &str) -> Verdict {
    verdict_as(cfg, sender, text, false)
}

/// [`verdict`] with every hit listed, those the model set aside included
/// (the rules run even when the model rules the message out): what
/// `explain` shows. It flags exactly when [`verdict`] does.
pub fn verdict_in_full(cfg: &Config, sender: Option<&str>, text: &str) -> Verdict {
    verdict_as(cfg, sender, text, true)
}

fn verdict_as(cfg: &Config, sender: Option<&str>, text: &str, in_full: bool) -> Verdict {
    let mut platform: Vec<String> = cfg
        .domains
        .served
        .iter()
        .chain(&cfg.domains.internal)
        .cloned()
        .collect();
    platform.extend(cfg.clients.iter().map(|c| c.domain.clone()));
    let ctx = crate::detect::ScanContext {
        sender,
        ticket_domains: &[],
        platform_domains: &platform,
    };
    if in_full {
        cfg.detector_engine.scan_message_in_full(text, &ctx)
    } else {
        cfg.detector_engine.scan_message(text, &ctx)
    }
}

/// The scope filter of `[detector.scope]`, for the rescan.
fn scope(cfg: &Config) -> ScopeFilter<'_> {
    ScopeFilter {
        queues: &cfg.detector.scope.queues,
        issue_types: &cfg.detector.scope.issue_types,
        statuses: &cfg.detector.scope.statuses,
    }
}

/// A scanned customer message.
#[derive(Debug, Clone)]
pub struct Scanned<'a> {
    /// Its ticket.
    pub ticket: TicketId,
    /// Its row.
    pub message: MessageRowId,
    /// Its Message-ID.
    pub message_id: &'a str,
    /// The sender: the client.
    pub sender: &'a str,
    /// The ticket's queue.
    pub queue: &'a str,
    /// Whether mail to the client may go out for it (`false` for `ingest`
    /// without `ingest_sends_mail`).
    pub sends_mail: bool,
    /// Why the message itself is automatic (an auto-responder), if it is:
    /// no automatic mail answers it.
    pub automatic: Option<Automatic>,
    /// Found by the rescan rather than inline.
    pub rescan: bool,
}

/// What a flag did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    /// The flag's row.
    pub flag: i64,
    /// The Compliance Alert ticket it was reported on.
    pub alert_ticket: Option<TicketId>,
    /// Whether it was the client's repeat.
    pub repeat: bool,
    /// Whether it suspended the client.
    pub suspended: bool,
    /// Whether a warning was queued.
    pub warned: bool,
}

/// `a phone number`, `a phone number and a messaging app`, ...: what the
/// hits are, in words, for the customer's mails.
pub fn matched_words(hits: &[Hit]) -> String {
    let cats: BTreeSet<Category> = hits.iter().map(|h| h.category).collect();
    let words: Vec<&str> = Category::ALL
        .iter()
        .filter(|c| cats.contains(c))
        .map(|c| match c {
            Category::Phone => "a phone number",
            Category::Email => "a personal e-mail address",
            Category::Address => "a street address",
            Category::Messaging => "an invitation to talk on another messaging service",
            Category::Payment => "a payment arrangement by other means",
        })
        .collect();
    match words.as_slice() {
        [] => "contact details outside the platform".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn key(h: &Hit) -> HitKey {
    HitKey {
        category: h.category.as_str().to_owned(),
        start: i64::try_from(h.start).unwrap_or(i64::MAX),
        end: i64::try_from(h.end).unwrap_or(i64::MAX),
    }
}

/// Record the scan of `s` and, when `verdict` is flagged with hits not
/// acted on before, carry out the configured actions. Returns what the
/// flag did (`None`: nothing flagged).
///
/// # Errors
///
/// [`store::Error`]; the caller's transaction (or savepoint) is undone.
pub fn act(
    tx: &Tx<'_>,
    cfg: &Config,
    s: &Scanned<'_>,
    verdict: &Verdict,
    now: Time,
) -> Result<Option<Flagged>, store::Error> {
    let version = cfg.detector_engine.version();
    tx.record_scan(s.message, version, verdict.flagged, now)?;
    if !verdict.flagged {
        return Ok(None);
    }
    let known = tx.known_hits(s.message)?;
    let new: Vec<&Hit> = verdict
        .hits
        .iter()
        .filter(|h| !known.contains(&key(h)))
        .collect();
    if new.is_empty() {
        return Ok(None);
    }
    let first_for_message = !tx.message_flagged(s.message)?;
    let client = s.sender.to_lowercase();
    let hits_json = serde_json::to_string(&new).unwrap_or_else(|_| "[]".into());
    let Some(flag) = tx.insert_flag(&NewFlag {
        message: s.message,
        ticket: s.ticket,
        client: &client,
        queue: s.queue,
        version,
        score: verdict.score,
        hits: &hits_json,
        now,
    })?
    else {
        return Ok(None);
    };
    for h in &new {
        tx.insert_hit(s.message, &key(h), &h.rule, &h.text, version)?;
    }
    let a = &cfg.detector.actions;
    let flagged_messages = tx.client_flagged_messages(&client)?;
    let repeat = a.repeat_threshold > 0 && flagged_messages >= a.repeat_threshold;
    let new_hits: Vec<Hit> = new.into_iter().cloned().collect();
    tx.event(
        Some(s.ticket),
        Some(s.message),
        FLAGGED,
        version,
        &serde_json::json!({
            "version": version,
            "score": verdict.score,
            "hits": new_hits,
            "client": client,
            "client_flagged_messages": flagged_messages,
            "repeat": repeat,
            "first_for_message": first_for_message,
            "rescan": s.rescan,
        }),
        now,
    )?;
    tracing::info!(
        ticket = s.ticket.0,
        message_row = s.message.0,
        hits = new_hits.len(),
        version,
        repeat,
        rescan = s.rescan,
        "detector flagged a customer message"
    );
    let Some(conv) = tx.conversation(s.ticket)? else {
        return Ok(None);
    };
    let f = Flag {
        cfg,
        s,
        conv: &conv,
        flag,
        matched: matched_words(&new_hits),
        hits: new_hits,
        repeat,
        now,
    };

    let alert_ticket = if a.alert { Some(report(tx, &f)?) } else { None };

    // A repeat suspends (once per queue); the notice replaces the warning.
    let mut suspended = false;
    if repeat && a.suspend_on_repeat && first_for_message {
        suspended = suspend(tx, &f, alert_ticket)?;
    }
    let mut warned = false;
    if a.warn && first_for_message && !suspended && s.sends_mail {
        warned = warn(tx, &f)?;
    }
    Ok(Some(Flagged {
        flag,
        alert_ticket,
        repeat,
        suspended,
        warned,
    }))
}

/// A flag being carried out: what [`warn`], [`report`] and [`suspend`]
/// act on.
struct Flag<'a> {
    cfg: &'a Config,
    s: &'a Scanned<'a>,
    /// The flagged ticket.
    conv: &'a Conversation,
    /// The flag's row.
    flag: i64,
    /// The hits not acted on before.
    hits: Vec<Hit>,
    /// The hits in words.
    matched: String,
    /// Whether it is the client's repeat.
    repeat: bool,
    now: Time,
}

/// The warning, in the thread of the flagged message.
fn warn(tx: &Tx<'_>, f: &Flag<'_>) -> Result<bool, store::Error> {
    let s = f.s;
    mail_client(
        tx,
        f.cfg,
        ClientMail::Warning,
        s.ticket,
        Some(s.message),
        f.conv,
        s.sender,
        &f.matched,
        s.automatic.clone(),
        Some(s.message_id),
        f.now,
    )
}

/// The hits as lines for an admin: category, matched text, rule.
fn hit_lines(hits: &[Hit]) -> String {
    hits.iter()
        .map(|h| {
            format!(
                "  {:<10} {:?} (rule {})",
                h.category.as_str(),
                h.text,
                h.rule
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Report a flag on the client's open Compliance Alert ticket (opened if
/// there is none; raised to the repeat priority on a repeat) and mail the
/// admins. Returns the alert ticket.
fn report(tx: &Tx<'_>, f: &Flag<'_>) -> Result<TicketId, store::Error> {
    let (cfg, s, conv, flag, hits, repeat, now) = (
        f.cfg,
        f.s,
        f.conv,
        f.flag,
        f.hits.as_slice(),
        f.repeat,
        f.now,
    );
    let a = &cfg.detector.actions;
    let client = s.sender.to_lowercase();
    let flagged_number = cfg
        .tickets
        .format_number(conv.number, &conv.queue, conv.opened());
    let want = if repeat {
        a.repeat_priority.max(a.alert_priority)
    } else {
        a.alert_priority
    };
    let detail = serde_json::json!({
        "client": client,
        "flagged_ticket": flagged_number,
        "flagged_ticket_id": s.ticket,
        "message_row": s.message,
        "message_id": s.message_id,
        "hits": hits,
        "repeat": repeat,
        "rescan": s.rescan,
    });
    let (alert, opened) = match tx.open_alert_ticket(&client)? {
        Some(t) => (t, false),
        None => (open_alert(tx, f, &client, want, &detail)?, true),
    };
    tx.set_flag_alert(flag, alert)?;
    let mut alert_conv = tx.conversation(alert)?;
    if let Some(c) = alert_conv.as_mut()
        && !opened
        && crate::config::Priority::parse(&c.priority).is_none_or(|p| p < want)
    {
        raise_alert(tx, c, want, repeat, now)?;
    }
    let text = alert_note(f, &client, &flagged_number);
    tx.add_note(alert, &text, "detector", now)?;
    tx.event(
        Some(alert),
        None,
        "detector_flag_reported",
        "detector",
        &detail,
        now,
    )?;
    if let Some(c) = &alert_conv {
        mail_admins(tx, f, c, opened, &client, text)?;
    }
    Ok(alert)
}

/// Open the client's Compliance Alert ticket, linked to the flagged
/// ticket, at priority `want`.
fn open_alert(
    tx: &Tx<'_>,
    f: &Flag<'_>,
    client: &str,
    want: crate::config::Priority,
    detail: &serde_json::Value,
) -> Result<TicketId, store::Error> {
    let cfg = f.cfg;
    let subject = crate::route::display_subject(
        Some(&format!(
            "Compliance alert: {client} offered off-platform contact or payment"
        )),
        cfg.tickets.subject_max,
    );
    tx.open_ticket(
        &NewTicket {
            subject: &subject,
            normalized_subject: "",
            status: "Open",
            priority: want.as_str(),
            queue: ALERT_QUEUE,
            issue_type: &cfg.detector.actions.alert_issue_type,
            requester: None,
            requester_name: client,
            inbound_address: "",
            linked_ticket: Some(f.s.ticket),
            now: f.now,
        },
        cfg.tickets.number_start,
        &store::Opened {
            cause: "detector",
            detail: &detail.to_string(),
        },
    )
}

/// Raise an open alert ticket `c` to priority `want`, an event.
fn raise_alert(
    tx: &Tx<'_>,
    c: &mut Conversation,
    want: crate::config::Priority,
    repeat: bool,
    now: Time,
) -> Result<(), store::Error> {
    let alert = c.id;
    tx.set_ticket_field(alert, store::TicketField::Priority, want.as_str(), now)?;
    tx.event(
        Some(alert),
        None,
        "priority_changed",
        if repeat {
            "detector_repeat"
        } else {
            "detector"
        },
        &serde_json::json!({ "from": c.priority, "to": want.as_str() }),
        now,
    )?;
    c.priority = want.as_str().to_owned();
    Ok(())
}

/// The note on the alert ticket: who was flagged where, and the hits.
fn alert_note(f: &Flag<'_>, client: &str, flagged_number: &str) -> String {
    let s = f.s;
    let heading = if f.repeat {
        format!("Repeat: {client} flagged again")
    } else {
        format!("{client} flagged")
    };
    format!(
        "{heading} in ticket {flagged_number} ({subject}), message {id}{how}.\n\nHits:\n{hits}\n",
        subject = f.conv.subject,
        id = s.message_id,
        how = if s.rescan {
            ", found by the rescan under changed rules"
        } else {
            ""
        },
        hits = hit_lines(&f.hits),
    )
}

/// Point the flagged ticket at its alert ticket `c` (an event), and mail
/// the alert `text` to the `[monitoring]` admins.
fn mail_admins(
    tx: &Tx<'_>,
    f: &Flag<'_>,
    c: &Conversation,
    opened: bool,
    client: &str,
    text: String,
) -> Result<(), store::Error> {
    let (cfg, s, repeat, now) = (f.cfg, f.s, f.repeat, f.now);
    let alert = c.id;
    tx.event(
        Some(s.ticket),
        Some(s.message),
        "compliance_alert",
        if opened { "opened" } else { "reported" },
        &serde_json::json!({
            "alert_ticket": cfg.tickets.format_number(c.number, &c.queue, c.opened()),
            "alert_ticket_id": alert,
        }),
        now,
    )?;
    let mut vars = outbound::ticket_vars(cfg, c);
    vars.insert(
        "alert_title",
        Value::from(if repeat {
            format!("Compliance alert (repeat): {client}")
        } else {
            format!("Compliance alert: {client}")
        }),
    );
    vars.insert("alert_text", Value::from(text));
    let admins = &cfg.monitoring.admins;
    if outbound::alert_to(tx, cfg, Some(alert), &vars, admins, Some(c), now)? {
        tx.event(
            Some(alert),
            None,
            "admins_alerted",
            "detector",
            &serde_json::json!({ "to": admins }),
            now,
        )?;
    } else if admins.is_empty() {
        tracing::warn!(
            alert = alert.0,
            "compliance alert: no [monitoring] admins to mail"
        );
    }
    Ok(())
}

/// Suspend the client's access to the flagged ticket's queue: the
/// suspension, its events, the notice to the client, the agents told.
/// `false` when the client was already suspended there.
fn suspend(tx: &Tx<'_>, f: &Flag<'_>, alert: Option<TicketId>) -> Result<bool, store::Error> {
    let (cfg, s, conv, flag, matched, now) =
        (f.cfg, f.s, f.conv, f.flag, f.matched.as_str(), f.now);
    let client = s.sender.to_lowercase();
    if tx.suspend(&client, s.queue, alert, flag, now)?.is_none() {
        return Ok(false);
    }
    let detail = serde_json::json!({
        "client": client,
        "queue": s.queue,
        "flagged_ticket": cfg.tickets.format_number(conv.number, &conv.queue, conv.opened()),
        "message_row": s.message,
    });
    for t in std::iter::once(s.ticket).chain(alert) {
        tx.event(
            Some(t),
            Some(s.message),
            "client_suspended",
            "detector_repeat",
            &detail,
            now,
        )?;
    }
    tracing::warn!(client = %client, queue = s.queue, ticket = s.ticket.0, "client suspended after a repeat flag");
    if s.sends_mail {
        mail_client(
            tx,
            cfg,
            ClientMail::Suspension,
            s.ticket,
            Some(s.message),
            conv,
            s.sender,
            matched,
            s.automatic.clone(),
            Some(s.message_id),
            now,
        )?;
    }
    // The ticket's agents are told by mail; the ticket's notifications say
    // it from now on.
    let agents: Vec<String> = outbound::agents_for(cfg, conv)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let mut vars = outbound::ticket_vars(cfg, conv);
    vars.insert(
        "alert_title",
        Value::from(format!("Client suspended: {client}")),
    );
    vars.insert(
        "alert_text",
        Value::from(format!(
            "{client} offered to continue or pay off the platform again ({matched}). Their \
             access to the {queue} queue is suspended: their mail is still stored in its \
             tickets, they get a suspension notice instead of answers. An admin lifts it with \
             #unsuspend or `postdesk client unsuspend {client}`.",
            queue = outbound::display_name(s.queue),
        )),
    );
    if outbound::alert_to(tx, cfg, Some(s.ticket), &vars, &agents, Some(conv), now)? {
        tx.event(
            Some(s.ticket),
            Some(s.message),
            "agents_told",
            "client_suspended",
            &serde_json::json!({ "to": agents }),
            now,
        )?;
    }
    Ok(true)
}

/// A mail to the client about the detector, in the ticket's thread.
#[derive(Debug, Clone, Copy)]
enum ClientMail {
    /// `templates/warning.txt`, after a flag.
    Warning,
    /// `templates/suspension.txt`, on suspension and mail while suspended.
    Suspension,
}

impl ClientMail {
    /// Template and outbox kind.
    fn name(self) -> &'static str {
        match self {
            ClientMail::Warning => "warning",
            ClientMail::Suspension => "suspension",
        }
    }

    /// The event recorded when it is queued, and its cause.
    fn event(self) -> (&'static str, &'static str) {
        match self {
            ClientMail::Warning => ("detector_warning_sent", "detector"),
            ClientMail::Suspension => ("suspension_notice_sent", "suspended"),
        }
    }
}

/// Queue `mail` to the client `to` on `conv` (loop-guarded), answering
/// `in_reply_to`. `matched` is empty for mail written while suspended.
#[allow(clippy::too_many_arguments)] // the mail's parts, all distinct
fn mail_client(
    tx: &Tx<'_>,
    cfg: &Config,
    mail: ClientMail,
    ticket: TicketId,
    row: Option<MessageRowId>,
    conv: &Conversation,
    to: &str,
    matched: &str,
    automatic: Option<Automatic>,
    in_reply_to: Option<&str>,
    now: Time,
) -> Result<bool, store::Error> {
    if !outbound::may_auto_reply(tx, cfg, ticket, row, to, automatic, mail.name(), now)? {
        return Ok(false);
    }
    let mut vars = outbound::ticket_vars(cfg, conv);
    vars.insert("customer_email", Value::from(to.to_owned()));
    vars.insert("matched", Value::from(matched.to_owned()));
    let reply = AutoReplyMail {
        kind: mail.name(),
        template: mail.name(),
        to,
        in_reply_to: in_reply_to.map(str::to_owned),
        references: in_reply_to.map(str::to_owned).into_iter().collect(),
    };
    let sent = outbound::auto_reply(tx, cfg, conv, &reply, &vars, now)?;
    let (kind, cause) = mail.event();
    tx.event(
        Some(ticket),
        row,
        kind,
        cause,
        &serde_json::json!({ "to": to, "matched": matched, "message_row": sent }),
        now,
    )?;
    Ok(sent.is_some())
}

/// What a customer message from a suspended client does, besides being
/// stored and threaded: an event, and (unless this very message caused the
/// suspension, whose notice is queued already) the notice again in place
/// of an acknowledgement. Returns the line the agents' notification
/// carries.
///
/// # Errors
///
/// [`store::Error`].
#[allow(clippy::too_many_arguments)] // the message's parts, all distinct
pub fn suspended_mail(
    tx: &Tx<'_>,
    cfg: &Config,
    suspension: &Suspension,
    conv: &Conversation,
    row: MessageRowId,
    sender: &str,
    message_id: Option<&str>,
    automatic: Option<Automatic>,
    sends_mail: bool,
    now: Time,
) -> Result<String, store::Error> {
    let alert = match suspension.alert_ticket {
        Some(t) => tx.conversation(t)?,
        None => None,
    };
    let alert_number = alert.map(|c| cfg.tickets.format_number(c.number, &c.queue, c.opened()));
    let caused_here = suspension.message == Some(row);
    if !caused_here {
        tx.event(
            Some(conv.id),
            Some(row),
            "suspended_client_mail",
            "suspended",
            &serde_json::json!({
                "client": suspension.client,
                "queue": suspension.queue,
                "since": suspension.since,
                "alert_ticket": alert_number,
            }),
            now,
        )?;
        if sends_mail {
            mail_client(
                tx,
                cfg,
                ClientMail::Suspension,
                conv.id,
                Some(row),
                conv,
                sender,
                "",
                automatic,
                message_id,
                now,
            )?;
        }
    }
    let since = jiff::Timestamp::from_second(suspension.since)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    Ok(format!(
        "{client}'s access to the {queue} queue is suspended since {since} (bypass detector{alert}). \
         Their mail is stored here; they get a suspension notice. An admin lifts it with \
         #unsuspend or `postdesk client unsuspend {client}`.",
        client = suspension.client,
        queue = outbound::display_name(&suspension.queue),
        alert = alert_number
            .map(|n| format!(", Compliance Alert {n}"))
            .unwrap_or_default(),
    ))
}

/// Lift `client`'s suspensions (of `queue` only, if given): the rows, an
/// event and a note on each alert ticket and on the flagged ticket. `by`
/// names who lifted it (`cli`, an agent). Returns the suspensions lifted.
///
/// # Errors
///
/// [`store::Error`].
pub fn unsuspend(
    tx: &Tx<'_>,
    client: &str,
    queue: Option<&str>,
    by: &str,
    now: Time,
) -> Result<Vec<Suspension>, store::Error> {
    let lifted = tx.lift_suspensions(client, queue, by, now)?;
    for s in &lifted {
        let detail = serde_json::json!({ "client": s.client, "queue": s.queue, "by": by });
        let flagged_ticket = match s.message {
            Some(m) => tx.ticket_of_message_row(m)?,
            None => None,
        };
        let tickets: BTreeSet<TicketId> =
            s.alert_ticket.into_iter().chain(flagged_ticket).collect();
        for t in tickets {
            tx.event(Some(t), None, "client_unsuspended", by, &detail, now)?;
        }
        if let Some(alert) = s.alert_ticket {
            tx.add_note(
                alert,
                &format!(
                    "{}'s access to the {} queue was restored by {by}.",
                    s.client,
                    outbound::display_name(&s.queue)
                ),
                "detector",
                now,
            )?;
        }
        tracing::info!(client = %s.client, queue = %s.queue, by, "client unsuspended");
    }
    Ok(lifted)
}

/// Rescan up to `limit` stored customer messages of in-scope tickets that
/// were scanned under another rules version (or never), oldest first,
/// after row `after`. Returns `(messages scanned, flags, last row)`.
///
/// # Errors
///
/// [`store::Error`]; the batch is rolled back and tried again next time.
pub fn rescan(
    tx: &Tx<'_>,
    cfg: &Config,
    after: i64,
    limit: usize,
    now: Time,
) -> Result<(usize, usize, i64), store::Error> {
    if !cfg.detector.enabled {
        return Ok((0, 0, after));
    }
    let version = cfg.detector_engine.version();
    let batch = tx.rescan_candidates(&scope(cfg), version, after, limit)?;
    let mut flags = 0;
    let mut last = after;
    for c in &batch {
        last = c.message.0;
        // Agents' addresses are not clients: recorded as scanned, not scanned.
        if cfg.is_agent(&c.from) {
            tx.record_scan(c.message, version, false, now)?;
            continue;
        }
        let v = verdict(
            cfg,
            (!c.from.is_empty()).then_some(c.from.as_str()),
            &c.text,
        );
        let s = Scanned {
            ticket: c.ticket,
            message: c.message,
            message_id: &c.message_id,
            sender: &c.from,
            queue: &c.queue,
            sends_mail: true,
            automatic: None,
            rescan: true,
        };
        if act(tx, cfg, &s, &v, now)?.is_some() {
            flags += 1;
        }
    }
    Ok((batch.len(), flags, last))
}

/// Rescan everything due under `cfg`, one batch per transaction.
/// Returns `(scanned, flags)`.
///
/// # Errors
///
/// [`store::Error`] from the batch that failed (the earlier ones stand).
pub fn rescan_all(
    store: &mut impl store::Writes,
    cfg: &std::sync::Arc<Config>,
    now: Time,
) -> Result<(usize, usize), store::Error> {
    let (mut scanned, mut flags, mut after) = (0, 0, 0);
    loop {
        let c = cfg.clone();
        let (n, f, last) = store.write(move |tx| rescan(tx, &c, after, RESCAN_BATCH, now))?;
        scanned += n;
        flags += f;
        after = last;
        if n < RESCAN_BATCH {
            return Ok((scanned, flags));
        }
    }
}

/// The rescan task: at start, after every configuration change, and every
/// `rescan_interval_minutes`.
pub async fn run(
    mut config: watch::Receiver<Arc<Config>>,
    store: SharedStore,
    mut duties: crate::nodes::Duties,
    token: CancellationToken,
) {
    loop {
        let cfg = config.borrow_and_update().clone();
        let every = Duration::from_secs(
            cfg.detector
                .actions
                .rescan_interval_minutes
                .max(1)
                .saturating_mul(60),
        );
        if cfg.detector.enabled && duties.holds(crate::nodes::RESCAN) {
            let version = cfg.detector_engine.version().to_owned();
            let now = Time::now();
            let c = cfg.clone();
            match store.writing(move |w| rescan_all(w, &c, now)).await {
                Ok((scanned, flags)) => {
                    if scanned > 0 {
                        tracing::info!(scanned, flags, version, "detector rescan done");
                    }
                }
                Err(e) => crate::logging::log_error("detector rescan failed", &e),
            }
        }
        tokio::select! {
            () = token.cancelled() => return,
            changed = config.changed() => if changed.is_err() { return },
            () = duties.changed() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(category: Category) -> Hit {
        Hit {
            category,
            rule: "r".into(),
            text: "t".into(),
            start: 0,
            end: 1,
            weight: 1,
        }
    }

    /// A store with an in-scope config (General tickets of support) and
    /// one admin; `f` gets the transaction and the config.
    fn with_store(f: impl FnOnce(&crate::store::db::Transaction<'_>, &Config)) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("rules.toml"),
            "[monitoring]\nadmins = [\"boss@example.com\"]\n\
             [detector.scope]\nissue_types = [\"General\"]\n",
        )
        .expect("rules");
        let cfg = crate::outbound::whole::load(dir.path()).expect("config");
        let mut conn = crate::store::connect(&dir.path().join("db.sqlite3")).expect("open");
        let txn = conn.transaction().expect("begin");
        f(&txn, &cfg);
    }

    /// Store a message from Ann through the pipeline (which scans it).
    fn deliver(
        txn: &crate::store::db::Transaction<'_>,
        cfg: &Config,
        id: &str,
        subject: &str,
        body: &str,
    ) {
        let raw = format!(
            "From: Ann <ann@customer.test>\r\nTo: support@example.com\r\n\
             Subject: {subject}\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n"
        );
        let env = crate::domain::Envelope {
            mail_from: "ann@customer.test".into(),
            rcpt_to: vec!["support@example.com".into()],
            source: crate::domain::Source::Smtp,
            peer: None,
            helo: String::new(),
            web: None,
        };
        let parsed = crate::parse::parse(raw.as_bytes());
        let mut tx = Tx::new(txn);
        let msg = crate::pipeline::Incoming {
            env: &env,
            raw: raw.as_bytes(),
            parsed: &parsed,
            class: &crate::pipeline::classify(&env, raw.as_bytes(), &parsed),
        };
        crate::pipeline::run(&mut tx, cfg, msg, Time::from_secs(1_000)).expect("stored");
    }

    fn count(txn: &crate::store::db::Transaction<'_>, sql: &str) -> i64 {
        txn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    #[test]
    fn a_flag_warns_alerts_once_and_a_rescan_under_new_rules_finds_nothing_new() {
        with_store(|txn, cfg| {
            deliver(
                txn,
                cfg,
                "m1@c.test",
                "Invoice",
                "Easier on WhatsApp: +1 415 555 0198.",
            );
            assert_eq!(
                count(
                    txn,
                    "SELECT count(*) FROM events WHERE kind = 'detector_flagged'"
                ),
                1
            );
            assert_eq!(
                count(txn, "SELECT count(*) FROM outbox WHERE kind = 'warning'"),
                1
            );
            assert_eq!(
                count(txn, "SELECT count(*) FROM outbox WHERE kind = 'alert'"),
                1
            );
            assert_eq!(
                count(
                    txn,
                    "SELECT count(*) FROM tickets WHERE issue_type = 'Compliance Alert' \
                     AND priority = 'High' AND queue = 'compliance'"
                ),
                1
            );
            let tx = Tx::new(txn);
            // Same rules: nothing to rescan.
            assert_eq!(
                rescan(&tx, cfg, 0, 100, Time::from_secs(2_000))
                    .expect("rescan")
                    .0,
                0
            );
            // Other rules that find the same hits: scanned, not flagged again.
            txn.execute_batch("UPDATE detector_scans SET version = 'older'")
                .expect("age the scan");
            assert_eq!(
                rescan(&tx, cfg, 0, 100, Time::from_secs(2_000)).expect("rescan"),
                (1, 0, 1)
            );
            assert_eq!(
                rescan(&tx, cfg, 0, 100, Time::from_secs(2_000))
                    .expect("rescan")
                    .0,
                0
            );
            assert_eq!(count(txn, "SELECT count(*) FROM detector_flags"), 1);
            assert_eq!(
                count(txn, "SELECT count(*) FROM outbox WHERE kind = 'warning'"),
                1
            );
        });
    }

    #[test]
    fn the_second_flagged_message_of_a_client_suspends_and_raises_the_alert() {
        with_store(|txn, cfg| {
            deliver(
                txn,
                cfg,
                "m1@c.test",
                "Invoice",
                "Easier on WhatsApp: +1 415 555 0198.",
            );
            deliver(
                txn,
                cfg,
                "m2@c.test",
                "Refund",
                "Text me at 415.555.0198 instead.",
            );
            assert_eq!(count(txn, "SELECT count(*) FROM detector_flags"), 2);
            assert_eq!(
                count(
                    txn,
                    "SELECT count(*) FROM tickets WHERE issue_type = 'Compliance Alert' AND priority = 'Urgent'"
                ),
                1,
                "one alert ticket per client, raised on the repeat"
            );
            let tx = Tx::new(txn);
            let s = tx
                .active_suspension("Ann@Customer.test", "support")
                .expect("query")
                .expect("suspended");
            assert_eq!(s.client, "ann@customer.test");
            // The notice replaced the second warning.
            assert_eq!(
                count(txn, "SELECT count(*) FROM outbox WHERE kind = 'warning'"),
                1
            );
            assert_eq!(
                count(txn, "SELECT count(*) FROM outbox WHERE kind = 'suspension'"),
                1
            );
            // Later mail: stored, threaded, answered with the notice only.
            deliver(txn, cfg, "m3@c.test", "Hello", "Any news about my refund?");
            assert_eq!(
                count(txn, "SELECT count(*) FROM outbox WHERE kind = 'suspension'"),
                2
            );
            assert_eq!(
                count(
                    txn,
                    "SELECT count(*) FROM events WHERE kind = 'suspended_client_mail'"
                ),
                1
            );
            let lifted = unsuspend(
                &tx,
                "ann@customer.test",
                None,
                "cli",
                Time::from_secs(3_000),
            )
            .expect("lift");
            assert_eq!(lifted.len(), 1);
            assert!(
                tx.active_suspension("ann@customer.test", "support")
                    .expect("q")
                    .is_none()
            );
            assert!(
                unsuspend(
                    &tx,
                    "ann@customer.test",
                    None,
                    "cli",
                    Time::from_secs(3_000)
                )
                .expect("lift")
                .is_empty()
            );
        });
    }

    #[test]
    fn matched_words_name_each_category_once_in_a_sentence() {
        assert_eq!(matched_words(&[hit(Category::Phone)]), "a phone number");
        assert_eq!(
            matched_words(&[
                hit(Category::Messaging),
                hit(Category::Phone),
                hit(Category::Phone)
            ]),
            "a phone number and an invitation to talk on another messaging service"
        );
        assert_eq!(
            matched_words(&[
                hit(Category::Payment),
                hit(Category::Email),
                hit(Category::Address)
            ]),
            "a personal e-mail address, a street address and a payment arrangement by other means"
        );
    }

    #[test]
    fn the_shipped_warning_and_notice_are_not_evidence_themselves() {
        // A customer who replies above our warning quotes it; and a client
        // whose mailer does not mark quotes sends it back as new text. Either
        // way the warning must not flag the reply.
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("rules.toml"), "").expect("rules");
        let cfg = crate::outbound::whole::load(dir.path()).expect("config");
        for name in ["warning", "suspension"] {
            let mut vars = crate::outbound::templates::sample();
            vars.insert(
                "matched",
                Value::from(matched_words(&[
                    hit(Category::Phone),
                    hit(Category::Messaging),
                    hit(Category::Payment),
                    hit(Category::Email),
                    hit(Category::Address),
                ])),
            );
            let r = cfg.outbound.templates.render(name, &vars).expect(name);
            let v = verdict(&cfg, Some("alice@customer.example"), &r.body);
            assert!(!v.flagged, "{name} flags itself: {:#?}\n{}", v.hits, r.body);
        }
    }
}
