//! Splitting a conversation: a message and the ones after it move to a
//! new ticket of the same queue, customer and priority, linked to the old
//! one (its `linked_ticket`), with a `split` event on both. `#split` in
//! an agent's reply to a message's notification and `postdesk ticket
//! split` both come here.

use serde_json::json;

use crate::domain::{MessageRowId, Status, TicketId, Time};
use crate::outbound::Config;
use crate::store::{self, Conversation, NewTicket, SplitPoint, Tx};

/// A split carried out.
#[derive(Debug, Clone)]
pub struct Split {
    /// The new ticket.
    pub ticket: TicketId,
    /// Its number as shown.
    pub number: String,
    /// Messages moved.
    pub moved: i64,
}

/// The customer message an agent's reply to its notification names: the
/// notification is the message the reply answers (`In-Reply-To`), and
/// names the newest customer message of the ticket stored before it.
///
/// # Errors
///
/// [`store::Error`].
pub fn notified_message(
    tx: &Tx<'_>,
    ticket: TicketId,
    in_reply_to: &[String],
) -> Result<Option<SplitPoint>, store::Error> {
    for id in in_reply_to.iter().rev() {
        if let Some(n) = tx.split_point(id, None)?
            && n.ticket == ticket
        {
            if n.direction == "inbound" {
                return Ok(Some(n));
            }
            return tx.inbound_before(ticket, n.row);
        }
    }
    Ok(None)
}

/// Split `conv` at `from`, leaving `keep` (the mail that asked) on it.
/// `Ok(Err(why))` when it cannot be split there.
///
/// # Errors
///
/// [`store::Error`].
pub fn split(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    from: &SplitPoint,
    keep: Option<MessageRowId>,
    cause: &str,
    now: Time,
) -> Result<Result<Split, String>, store::Error> {
    let tickets = &cfg.tickets;
    let old_number = tickets.format_number(conv.number, &conv.queue, conv.opened());
    if from.ticket != conv.id {
        return Ok(Err(format!("that message is not on ticket {old_number}")));
    }
    if !tx.has_messages_before(conv.id, from.row)? {
        return Ok(Err(format!(
            "that is the first message of {old_number}; nothing would stay"
        )));
    }
    let requester = if conv.requester.is_empty() {
        None
    } else {
        Some(tx.upsert_contact(&conv.requester, &conv.requester_name, now)?)
    };
    let subject = crate::route::display_subject(Some(&from.subject), tickets.subject_max);
    let normalized = crate::thread::normalize_subject(&subject, &tickets.tag_pattern);
    let new = tx.open_ticket(
        &NewTicket {
            subject: &subject,
            normalized_subject: &normalized,
            status: Status::Open.as_str(),
            priority: &conv.priority,
            queue: &conv.queue,
            issue_type: &conv.issue_type,
            requester,
            requester_name: &conv.requester_name,
            inbound_address: &conv.inbound_address,
            linked_ticket: Some(conv.id),
            now,
        },
        tickets.number_start,
        &store::Opened {
            cause: "split",
            detail: &json!({ "from": old_number }).to_string(),
        },
    )?;
    let moved = tx.move_messages_from(conv.id, new, from.row, keep, now)?;
    let number = match tx.conversation(new)? {
        Some(c) => tickets.format_number(c.number, &c.queue, c.opened()),
        None => String::new(),
    };
    let detail = json!({ "from": old_number, "to": number, "message": from.row.0, "moved": moved });
    for t in [conv.id, new] {
        tx.event(Some(t), Some(from.row), "split", cause, &detail, now)?;
    }
    crate::timers::record(tx, &cfg.sla, new, crate::sla::Happened::Opened, now)?;
    Ok(Ok(Split {
        ticket: new,
        number,
        moved,
    }))
}
