//! `[tickets]`: the number format and its subject tag, and the default
//! priority and issue type (which mailbox entries may override).

use serde_spanned::Spanned;

use super::server::positive;
use crate::config::diag::{Diagnostic, Source};
use crate::config::raw::RawTickets;
use crate::config::{Priority, Tickets};

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

pub(super) fn check_tickets(raw: RawTickets, src: &Source, out: &mut Vec<Diagnostic>) -> Tickets {
    if !raw.number_format.get_ref().contains("{n}") {
        src.error(
            out,
            &raw.number_format,
            format!(
                "number_format `{}` must contain `{{n}}`, where the number goes",
                raw.number_format.get_ref()
            ),
        );
    }
    let tag_pattern = crate::config::tag_pattern(raw.number_format.get_ref()).unwrap_or_else(|e| {
        src.error(
            out,
            &raw.number_format,
            format!("number_format cannot be made a tag pattern: {e}"),
        );
        regex::Regex::new(r"[^\s\S]").expect("a regex that never matches is valid")
    });
    Tickets {
        tag_pattern,
        default_priority: check_priority(&raw.default_priority, src, out),
        number_format: raw.number_format.into_inner(),
        number_start: positive("number_start", raw.number_start, src, out),
        subject_max: positive("subject_max", raw.subject_max, src, out),
        default_issue_type: check_issue_type(raw.default_issue_type, src, out),
        auto_close_days: *raw.auto_close_days.get_ref(),
    }
}
