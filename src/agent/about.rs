//! Mail about mail: bounces, feedback reports, automatic replies and
//! mailing-list notices.
//!
//! Each is recorded on the ticket of the mail it is about, never a new
//! ticket. A DSN's permanent failure, or a feedback report's complaint,
//! suppresses the address and tells the ticket's agents, but only when the
//! report's writer must have seen what postdesk sent to that address
//! ([`report_about`]): anyone can write a report.

use crate::domain::{MessageRowId, TicketId};
use crate::outbound::{self, Failure};
use crate::parse::classify::{Class, Feedback, Kind};
use crate::parse::dsn::Dsn;
use crate::store::{self, NewMessage, Tx};
use crate::thread::ThreadMatch;

use super::{Context, Outcome};

/// Record mail that machines sent about mail ([`crate::parse::classify`]): on the
/// ticket of the mail it is about (the Message-ID a report quotes, else the
/// thread match), else unticketed and flagged; never a new ticket, never an
/// acknowledgement, notification or status change. A DSN's permanent
/// failures and a feedback report's complainers are suppressed.
pub(super) fn record_bounce(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    class: &Class,
) -> Result<Outcome, store::Error> {
    let original_id = match &class.kind {
        Kind::Dsn(d) => d.original_message_id.as_deref(),
        Kind::Bounce {
            original_message_id,
        } => original_message_id.as_deref(),
        Kind::Feedback(f) => f.original_message_id.as_deref(),
        Kind::AutoReply | Kind::ListNotice => None,
    };
    let mut ticket = None;
    let mut how: &'static str = "new";
    if let Some(id) = original_id
        && let Some(t) = tx.ticket_of_message_id(id)?
    {
        ticket = Some(t);
        how = "in_reply_to";
    }
    if ticket.is_none()
        && let Some(t) = cx.decision.matched.ticket()
    {
        ticket = Some(t);
        how = cx.decision.matched.rule();
    }
    if let Some(t) = ticket
        && let Some(target) = tx.merge_target(t)?
    {
        ticket = Some(target);
    }
    let (flag, event_kind) = match &class.kind {
        Kind::Dsn(_) | Kind::Bounce { .. } => (
            "bounce for a mail postdesk does not know",
            "bounce_received",
        ),
        Kind::Feedback(_) => (
            "feedback report for a mail postdesk does not know",
            "feedback_received",
        ),
        Kind::AutoReply => ("automatic reply to no known ticket", "auto_reply_received"),
        Kind::ListNotice => (
            "mailing-list notice about no known ticket",
            "list_notice_received",
        ),
    };
    let (state, flag) = if ticket.is_some() {
        ("ticketed", "")
    } else {
        ("quarantined", flag)
    };
    let row = tx.insert_message(&NewMessage {
        ticket,
        kind: class.kind.as_str(),
        state,
        flag,
        thread_match: how,
        ..cx.base.clone()
    })?;
    tracing::info!(
        ticket = ticket.map(|t| t.0),
        kind = class.kind.as_str(),
        because = class.because,
        "automatic mail recorded"
    );
    let mut detail = serde_json::json!({
        "rule": class.because,
        "detail": class.detail,
        "original_message_id": original_id,
    });
    match &class.kind {
        Kind::Dsn(dsn) => detail["recipients"] = serde_json::json!(dsn.recipients),
        Kind::Feedback(f) => {
            detail["feedback_type"] = serde_json::json!(f.feedback_type);
            detail["addresses"] = serde_json::json!(f.addresses);
        }
        _ => {}
    }
    tx.event(ticket, Some(row), event_kind, how, &detail, cx.now)?;
    match &class.kind {
        Kind::Dsn(dsn) => dsn_failures(tx, cx, ticket, row, dsn)?,
        Kind::Feedback(f) => complaints(tx, cx, ticket, row, f)?,
        Kind::Bounce { .. } | Kind::AutoReply | Kind::ListNotice => {}
    }
    Ok(cx.outcome(row, ticket, how, state))
}

/// A DSN's permanent failures suppress their address; delays are events.
fn dsn_failures(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    ticket: Option<TicketId>,
    row: MessageRowId,
    dsn: &Dsn,
) -> Result<(), store::Error> {
    for r in &dsn.recipients {
        if r.is_permanent_failure() {
            let kind = match report_about(tx, cx, dsn.original_message_id.as_deref(), &r.address)? {
                Ok((_, kind)) => kind,
                Err(why) => {
                    tx.event(
                        ticket,
                        Some(row),
                        "bounce_not_acted_on",
                        "bounce",
                        &serde_json::json!({ "to": r.address, "status": r.status, "why": why }),
                        cx.now,
                    )?;
                    continue;
                }
            };
            let detail = format!("bounced: {} {}", r.status, r.diagnostic);
            if let Some(id) = &dsn.original_message_id {
                tx.mark_bounced(id, &r.address, detail.trim())?;
            }
            let kind = kind.as_str();
            outbound::permanent_failure(
                tx,
                cx.cfg,
                &Failure {
                    ticket,
                    kind,
                    address: &r.address,
                    status: &r.status,
                    diagnostic: &r.diagnostic,
                    is_recipient_failure: true,
                    alert_admins: false,
                    source: "bounce",
                },
                cx.now,
            )?;
        } else if r.action == "delayed" {
            tx.event(ticket,
                Some(row),
                "delivery_delayed",
                "bounce",
                &serde_json::json!({ "to": r.address, "status": r.status, "diagnostic": r.diagnostic }),
                cx.now,
            )?;
        }
    }
    Ok(())
}

/// Whether a report about mail (a DSN, a feedback report) may act on
/// `address`: the ticket and kind of the mail it is about when it may, else
/// why not. Anyone can write a report, so it counts only when its writer
/// must have seen what postdesk sent to `address` and nothing else:
///
/// 1. it came to the bounce address of the outbox row that sent mail to
///    `address` (VERP: that envelope sender went to that recipient only);
/// 2. or it names a Message-ID postdesk sent to `address` alone. A mail to
///    several recipients (a relay to the requester and a Cc) does not
///    count this way: any of them could name another.
fn report_about(
    tx: &Tx<'_>,
    cx: &Context<'_, '_>,
    original_message_id: Option<&str>,
    address: &str,
) -> Result<Result<(Option<TicketId>, String), &'static str>, store::Error> {
    if let ThreadMatch::Token {
        purpose: crate::token::Kind::Bounce,
        outbox: Some(row),
        ..
    } = &cx.decision.matched
    {
        return Ok(match tx.outbox_recipient(store::OutboxId(*row))? {
            Some((rcpt, ticket, kind)) if rcpt.eq_ignore_ascii_case(address) => Ok((ticket, kind)),
            _ => Err("it came to the bounce address of mail to another recipient"),
        });
    }
    let Some(id) = original_message_id else {
        return Ok(Err(
            "it names no mail postdesk sent and did not come to a bounce address",
        ));
    };
    Ok(match tx.sent_to(id, address)? {
        None => Err("the reported mail is not one postdesk sent to this address"),
        Some(_) if tx.recipient_count(id)? > 1 => Err(
            "the reported mail went to several recipients, any of whom could write this; \
             only a report to its bounce address counts",
        ),
        Some(found) => Ok(found),
    })
}

/// A feedback report suppresses each complaining address like a hard
/// bounce, but only when the reported mail is one postdesk sent to that
/// address: a forged report naming someone else's address, or a mail
/// postdesk never sent, suppresses nothing. `not-spam` reports never do.
fn complaints(
    tx: &mut Tx<'_>,
    cx: &Context<'_, '_>,
    ticket: Option<TicketId>,
    row: MessageRowId,
    f: &Feedback,
) -> Result<(), store::Error> {
    if f.feedback_type == "not-spam" {
        return Ok(());
    }
    let diagnostic = format!("feedback report: {}", f.feedback_type);
    for address in &f.addresses {
        let (sent_ticket, kind) =
            match report_about(tx, cx, f.original_message_id.as_deref(), address)? {
                Ok(found) => found,
                Err(why) => {
                    tx.event(
                        ticket,
                        Some(row),
                        "feedback_not_suppressed",
                        "feedback",
                        &serde_json::json!({ "to": address, "why": why }),
                        cx.now,
                    )?;
                    continue;
                }
            };
        outbound::permanent_failure(
            tx,
            cx.cfg,
            &Failure {
                ticket: ticket.or(sent_ticket),
                kind: &kind,
                address,
                status: "",
                diagnostic: &diagnostic,
                is_recipient_failure: true,
                alert_admins: false,
                source: "feedback",
            },
            cx.now,
        )?;
    }
    Ok(())
}
