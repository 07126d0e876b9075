//! `[tickets]`: the number format and its subject tag, and the default
//! priority and issue type (which mailbox entries may override).

use serde_spanned::Spanned;

use super::server::positive;
use crate::config::diag::{Diagnostic, Source};
use crate::config::raw::RawTickets;
use crate::config::{NumberFormat, Priority, Tickets};
use crate::domain::Queue;

/// A priority name, or a diagnostic and `Medium` (never used: any
/// diagnostic means no Config).
pub(super) fn check_priority(
    value: &Spanned<String>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Priority {
    Priority::parse(value.get_ref()).unwrap_or_else(|| {
        src.error(
            out,
            value,
            format!(
                "unknown priority `{}`, expected one of Low, Medium, High, Urgent",
                value.get_ref()
            ),
        );
        Priority::Medium
    })
}

/// A non-empty issue type.
pub(super) fn check_issue_type(
    value: Spanned<String>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> String {
    if value.get_ref().trim().is_empty() {
        src.error(out, &value, "issue type must not be empty");
    }
    value.into_inner()
}

/// A number format, or a diagnostic naming `key` and the format (and the
/// built-in `#{n}`, never used: any diagnostic means no Config).
fn check_format(
    key: &str,
    value: &Spanned<String>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> NumberFormat {
    NumberFormat::parse(value.get_ref()).unwrap_or_else(|e| {
        src.error(out, value, format!("{key} `{}` {e}", value.get_ref()));
        NumberFormat::parse("#{n}").expect("the built-in format is valid")
    })
}

pub(super) fn check_tickets(raw: RawTickets, src: &Source, out: &mut Vec<Diagnostic>) -> Tickets {
    let number_format = check_format("number_format", &raw.number_format, src, out);
    let mut by_queue = Vec::new();
    for (queue, format) in &raw.number_format_by_queue {
        let key = format!("number_format_by_queue.{queue}");
        let f = check_format(&key, format, src, out);
        match Queue::from_name(queue) {
            Some(q) => by_queue.push((q.as_str().to_owned(), f)),
            None => src.error(
                out,
                format,
                format!(
                    "number_format_by_queue: unknown queue `{queue}`, expected one of {}",
                    Queue::ALL.map(Queue::as_str).join(", ")
                ),
            ),
        }
    }
    let tickets = Tickets::new(
        number_format.clone(),
        by_queue,
        positive("number_start", raw.number_start, src, out),
        positive("subject_max", raw.subject_max, src, out),
        check_priority(&raw.default_priority, src, out),
        check_issue_type(raw.default_issue_type, src, out),
    );
    let mut tickets = tickets.unwrap_or_else(|e| {
        src.error(
            out,
            &raw.number_format,
            format!("the ticket number formats cannot be made a tag pattern: {e}"),
        );
        Tickets::new(
            number_format,
            Vec::new(),
            1,
            1,
            Priority::Medium,
            String::new(),
        )
        .expect("a single format makes a tag pattern")
    });
    tickets.auto_close_days = *raw.auto_close_days.get_ref();
    tickets
}
