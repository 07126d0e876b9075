//! Satisfaction by mail: the survey sent when a ticket is resolved, and the
//! rating a customer sends back with one click.
//!
//! Receives, for [`survey`], a ticket that has just become Resolved (any
//! path that sets the status: today the agent command `#resolve`); it
//! queues one mail to the requester (`templates/satisfaction.txt`) whose
//! five ratings are `mailto:` links to signed rating addresses
//! (`support+s<ticket>.<score>-<mac>@…`, [`crate::token::Purpose::Rating`]),
//! so a click in any mail client sends the rating and no web page is
//! needed. The survey is automatic mail, guarded like the acknowledgement:
//! `Auto-Submitted: auto-generated`, the null envelope sender, the loop
//! guard's suppression list and hourly cap ([`outbound::may_auto_reply`]).
//! It goes out once per resolution, in the transaction that resolved the
//! ticket: a ticket reopened and resolved again asks again.
//!
//! Receives, for [`record`], mail to a rating address whose MAC verified
//! (thread rule 1; the path is decided by [`crate::agent::sender`], so
//! `explain` shows it as `sender: rating`): the mail is stored on the
//! ticket (kind `rating`), the score and the customer's text (quotes
//! removed) become the ticket's rating, replacing an earlier one, and an
//! event `rated` is recorded. Nothing else happens: the ticket is not
//! reopened, nobody is acknowledged or notified.
//!
//! A rating address whose MAC does not verify (forged, or edited to
//! another score or ticket) records nothing. The mail is then an ordinary
//! customer message (threaded by the other rules, the failed address noted
//! in the thread decision), because a person wrote it and nothing accepted
//! is dropped: an agent sees it.

use minijinja::Value;

use crate::domain::{MessageRowId, TicketId, Time};
use crate::outbound::compose::{Address, AutoSubmitted, Draft};
use crate::outbound::{self, Config};
use crate::parse::ParsedMessage;
use crate::store::{self, Conversation, NewMessage, NewRating, Tx};

/// The most characters of a comment kept with a rating.
pub const COMMENT_MAX_CHARS: usize = 4000;

/// What each score says, best first, as the survey lists them.
pub use crate::outbound::templates::RATING_LABELS as LABELS;

/// Queue the survey for `conv`, just resolved by the mail stored as `row`;
/// whether it was queued. Not when `[satisfaction]` is off, the ticket
/// has no requester or no token secret signs the addresses (an event
/// `survey_not_sent` says so), or the loop guard holds it back (an event
/// `auto_reply_suppressed`).
///
/// # Errors
///
/// [`store::Error`].
pub fn survey(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &Conversation,
    row: Option<MessageRowId>,
    now: Time,
) -> Result<bool, store::Error> {
    if !cfg.satisfaction.enabled {
        return Ok(false);
    }
    let to = conv.requester.as_str();
    let not_sent = |because: &str| {
        tx.event(
            Some(conv.id),
            row,
            "survey_not_sent",
            because,
            &serde_json::json!({ "to": to }),
            now,
        )
        .map(|()| false)
    };
    if to.is_empty() {
        return not_sent("no_requester");
    }
    let Some(keys) = cfg.threading.keys() else {
        return not_sent("no_token_secret");
    };
    if !outbound::may_auto_reply(tx, cfg, conv.id, row, to, None, "satisfaction", now)? {
        return Ok(false);
    }
    let base = outbound::our_address(cfg, conv);
    let tag = cfg
        .tickets
        .format_tag(conv.number, &conv.queue, conv.opened());
    let mut vars = outbound::ticket_vars(cfg, conv);
    let ratings: Vec<Value> = LABELS
        .iter()
        .map(|&(score, label)| {
            let address = crate::token::address(
                keys,
                &crate::token::Purpose::Rating { score },
                conv.id,
                &base,
            );
            let mut item = std::collections::BTreeMap::new();
            item.insert("score", Value::from(score));
            item.insert("label", Value::from(label));
            item.insert("link", Value::from(mailto(&address, score, &tag)));
            Value::from(item)
        })
        .collect();
    vars.insert("ratings", Value::from(ratings));
    let Some(r) = outbound::render(tx, cfg, Some(conv.id), "satisfaction", &vars, now)? else {
        return Ok(false);
    };
    let mut thread = conv.clone();
    tx.load_thread(&mut thread)?;
    let mut references = thread.last_customer_refs.clone();
    references.extend(thread.last_customer_message.iter().cloned());
    let mail = outbound::Mail {
        kind: "satisfaction",
        message_kind: "system",
        ticket: Some(conv.id),
        draft: Draft {
            in_reply_to: thread.last_customer_message.clone(),
            references: outbound::compose::trim_references(references),
            ..outbound::draft(
                cfg,
                Address::named(&outbound::display_name(&conv.queue), &base),
                vec![Address::named(&conv.requester_name, to)],
                r.subject,
                r.body,
                // RFC 3834 §5: not a reply to a message, made by a program.
                AutoSubmitted::AutoGenerated,
                now,
            )
        },
        rcpts: vec![to.to_owned()],
        // RFC 3834 §3.3: automatic mail goes out with the null reverse-path.
        mail_from: outbound::Sender::Null,
        is_automatic: true,
    };
    outbound::queue(tx, &mail, now)?;
    tracing::info!(ticket = conv.id.0, "satisfaction survey queued");
    tx.event(
        Some(conv.id),
        row,
        "survey_sent",
        "resolved",
        &serde_json::json!({ "to": to }),
        now,
    )?;
    Ok(true)
}

/// The `mailto:` URI (RFC 6068) of a rating address, with a subject that
/// says what the mail is, percent-encoded.
pub fn mailto(address: &str, score: u8, tag: &str) -> String {
    let subject = format!("Rating: {score} of 5 {tag}");
    format!("mailto:{address}?subject={}", percent_encode(&subject))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The comment of a rating mail: the customer's own text, quotes removed,
/// trimmed, at most [`COMMENT_MAX_CHARS`] characters.
pub fn comment(text: &str) -> String {
    let new = crate::detect::quote::new_text(text);
    new.trim().chars().take(COMMENT_MAX_CHARS).collect()
}

/// Store the rating mail `base` on `ticket` and make `score` (with the
/// mail's text as comment) the ticket's rating; the stored row and its
/// state.
///
/// # Errors
///
/// [`store::Error`]; the pipeline rolls back to its savepoint.
pub fn record(
    tx: &Tx<'_>,
    parsed: &ParsedMessage,
    base: &NewMessage<'_>,
    ticket: TicketId,
    score: u8,
    now: Time,
) -> Result<(MessageRowId, &'static str), store::Error> {
    let row = tx.insert_message(&NewMessage {
        ticket: Some(ticket),
        kind: "rating",
        state: "ticketed",
        thread_match: "token",
        ..base.clone()
    })?;
    let comment = comment(&parsed.text);
    let rater = parsed.from.as_ref().map_or("", |m| m.address.as_str());
    let replaced = tx.record_rating(&NewRating {
        ticket,
        score,
        comment: &comment,
        rater,
        message: row,
        now,
    })?;
    tracing::info!(ticket = ticket.0, score, replaced, "rating recorded");
    tx.event(
        Some(ticket),
        Some(row),
        "rated",
        "rating_address",
        &serde_json::json!({
            "score": score,
            "from": rater,
            "comment": comment,
            "replaced": replaced,
        }),
        now,
    )?;
    Ok((row, "ticketed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailto_link_keeps_the_address_and_encodes_the_subject() {
        assert_eq!(
            mailto("support+s7.4-00aa@example.com", 4, "[S-2026-0042]"),
            "mailto:support+s7.4-00aa@example.com?subject=Rating%3A%204%20of%205%20%5BS-2026-0042%5D"
        );
    }

    #[test]
    fn the_comment_is_the_new_text_without_the_quote() {
        let body = "Quick and kind, thank you!\n\nOn Mon, Support wrote:\n> How did we do?\n";
        assert_eq!(comment(body), "Quick and kind, thank you!");
        assert_eq!(comment("  \n"), "");
        assert_eq!(comment(&"x".repeat(5000)).len(), COMMENT_MAX_CHARS);
    }
}
