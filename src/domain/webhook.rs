//! The names webhooks speak: which internal event kind becomes which public
//! event. One table, [`KINDS`], so a new internal kind is mapped (or left
//! private) in one place; the README lists the same mapping.

use super::Status;

/// Every public event name, as `[[webhook]] events` takes them.
pub const EVENTS: [&str; 7] = [
    "ticket.created",
    "ticket.updated",
    "ticket.resolved",
    "ticket.closed",
    "ticket.comment.added",
    "ticket.assigned",
    "ticket.sla.breached",
];

/// How an internal event kind maps to a public event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mapping {
    /// Always this event.
    To(&'static str),
    /// A status change: `ticket.resolved` for Resolved, `ticket.closed`
    /// for another closed status, `ticket.updated` otherwise (the new
    /// status is the detail's `"to"`).
    Status,
}

/// Internal event kind (the `events` table's `kind`) to public event.
/// Kinds not listed here (mail sent or suppressed, detector hits, survey
/// bookkeeping, ...) are not published.
const KINDS: &[(&str, Mapping)] = &[
    ("ticket_opened", Mapping::To("ticket.created")),
    ("message_added", Mapping::To("ticket.comment.added")),
    ("agent_replied", Mapping::To("ticket.comment.added")),
    ("note_added", Mapping::To("ticket.comment.added")),
    ("ticket_reopened", Mapping::To("ticket.updated")),
    ("status_changed", Mapping::Status),
    ("auto_closed", Mapping::To("ticket.closed")),
    ("assigned", Mapping::To("ticket.assigned")),
    ("priority_changed", Mapping::To("ticket.updated")),
    ("moved", Mapping::To("ticket.updated")),
    ("type_changed", Mapping::To("ticket.updated")),
    ("tag_added", Mapping::To("ticket.updated")),
    ("merged", Mapping::To("ticket.updated")),
    ("sla_breached", Mapping::To("ticket.sla.breached")),
];

/// The public event an internal event of `kind` with `detail` (its JSON
/// text) is published as, if any.
pub fn public_event(kind: &str, detail: &str) -> Option<&'static str> {
    let (_, mapping) = KINDS.iter().find(|(k, _)| *k == kind)?;
    match mapping {
        Mapping::To(name) => Some(name),
        Mapping::Status => {
            let to = serde_json::from_str::<serde_json::Value>(detail)
                .ok()
                .and_then(|v| v.get("to").and_then(|t| t.as_str()).map(str::to_owned))
                .unwrap_or_default();
            Some(match Status::parse(&to) {
                Some(Status::Resolved) => "ticket.resolved",
                Some(s) if s.is_closed() => "ticket.closed",
                _ => "ticket.updated",
            })
        }
    }
}

/// Every internal kind that is published, with the event it becomes
/// (`status_changed` is listed once per outcome), for the documentation.
pub fn mapping() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for (kind, m) in KINDS {
        match m {
            Mapping::To(name) => out.push((*kind, *name)),
            Mapping::Status => {
                for name in ["ticket.resolved", "ticket.closed", "ticket.updated"] {
                    out.push((*kind, name));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_kind_names_a_public_event() {
        for (_, name) in mapping() {
            assert!(EVENTS.contains(&name), "{name}");
        }
    }

    #[test]
    fn a_status_change_is_published_by_its_new_status() {
        let to = |s: &str| {
            public_event(
                "status_changed",
                &format!(r#"{{"from":"Open","to":"{s}"}}"#),
            )
        };
        assert_eq!(to("Resolved"), Some("ticket.resolved"));
        assert_eq!(to("Closed"), Some("ticket.closed"));
        assert_eq!(to("Pending"), Some("ticket.updated"));
        assert_eq!(public_event("auto_closed", "{}"), Some("ticket.closed"));
        assert_eq!(public_event("mail_suppressed", "{}"), None);
    }
}
