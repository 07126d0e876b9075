//! `[sla]`: business-hours calendars and SLA policies, into
//! [`sla::Settings`](crate::sla::Settings).
//!
//! ```toml
//! [sla.calendar.office]
//! time_zone = "America/New_York"
//! monday    = ["09:00-12:00", "13:00-18:00"]
//! holidays  = ["2026-12-25", "*-01-01"]
//!
//! [[sla.policy]]
//! name = "standard"
//! calendar = "office"
//! queues = ["support"]
//! [sla.policy.targets]
//! urgent = { first_response = "1h", next_response = "1h", resolution = "4h" }
//! ```
//!
//! Checked: intervals (`"25:00"`, an end before its start, overlapping
//! intervals of one day), holidays, time zones, a calendar without any
//! open hour, an unknown calendar, durations, priorities, `warn_at`
//! between 0 and 1, escalation names, two policies of one name.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::diag::{Diagnostic, Source};
use crate::domain::Priority;
use crate::sla::{self, Calendar, Escalation, Holiday, Hours, Interval, Policy, Targets};

/// `[sla]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSla {
    /// `[sla.calendar.<name>]`.
    pub calendar: BTreeMap<String, RawCalendar>,
    /// `[[sla.policy]]`.
    pub policy: Vec<RawPolicy>,
}

/// `[sla.calendar.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCalendar {
    /// IANA time zone; absent: UTC.
    pub time_zone: Option<Spanned<String>>,
    /// Open intervals, `"09:00-12:00"`.
    pub monday: Vec<Spanned<String>>,
    /// As `monday`.
    pub tuesday: Vec<Spanned<String>>,
    /// As `monday`.
    pub wednesday: Vec<Spanned<String>>,
    /// As `monday`.
    pub thursday: Vec<Spanned<String>>,
    /// As `monday`.
    pub friday: Vec<Spanned<String>>,
    /// As `monday`.
    pub saturday: Vec<Spanned<String>>,
    /// As `monday`.
    pub sunday: Vec<Spanned<String>>,
    /// `"2026-12-25"` or `"*-01-01"`.
    pub holidays: Vec<Spanned<String>>,
}

/// `[[sla.policy]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Name, shown in `show` and events.
    pub name: Spanned<String>,
    /// A calendar name; absent: 24/7.
    #[serde(default)]
    pub calendar: Option<Spanned<String>>,
    /// Queue filter.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Client filter (mailbox file short names).
    #[serde(default)]
    pub clients: Vec<String>,
    /// Mailbox address filter.
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// Issue type filter.
    #[serde(default)]
    pub issue_types: Vec<String>,
    /// Statuses that pause the clocks; absent: `["Replied"]`.
    #[serde(default)]
    pub pause_on: Option<Vec<Spanned<String>>>,
    /// Share of a target that warns; absent: 0.8.
    #[serde(default)]
    pub warn_at: Option<Spanned<f64>>,
    /// Actions on a breach.
    #[serde(default)]
    pub escalate: Vec<Spanned<String>>,
    /// Targets per priority name.
    #[serde(default)]
    pub targets: BTreeMap<String, Spanned<RawTargets>>,
}

/// One priority's targets.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTargets {
    /// Duration, e.g. `"1h"`.
    pub first_response: Option<Spanned<String>>,
    /// Duration.
    pub next_response: Option<Spanned<String>>,
    /// Duration.
    pub resolution: Option<Spanned<String>>,
}

fn check_calendar(
    name: &str,
    raw: RawCalendar,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Calendar {
    let time_zone = match &raw.time_zone {
        None => jiff::tz::TimeZone::UTC,
        Some(z) => jiff::tz::TimeZone::get(z.get_ref()).unwrap_or_else(|_| {
            src.error(
                out,
                z,
                format!(
                    "unknown time zone `{}` (an IANA name like \"Europe/Berlin\")",
                    z.get_ref()
                ),
            );
            jiff::tz::TimeZone::UTC
        }),
    };
    let days = [
        raw.monday,
        raw.tuesday,
        raw.wednesday,
        raw.thursday,
        raw.friday,
        raw.saturday,
        raw.sunday,
    ];
    let mut week: [Vec<Interval>; 7] = Default::default();
    for (i, day) in days.into_iter().enumerate() {
        let mut parsed: Vec<(Interval, Spanned<String>)> = Vec::new();
        for v in day {
            match Interval::parse(v.get_ref()) {
                Ok(iv) => parsed.push((iv, v)),
                Err(e) => src.error(out, &v, format!("{}: {e}", sla::calendar::WEEKDAYS[i])),
            }
        }
        parsed.sort_by_key(|(iv, _)| iv.start);
        for pair in parsed.windows(2) {
            if let [(a, av), (b, bv)] = pair
                && b.start < a.end
            {
                src.error(
                    out,
                    bv,
                    format!(
                        "{}: `{}` overlaps `{}`",
                        sla::calendar::WEEKDAYS[i],
                        bv.get_ref(),
                        av.get_ref()
                    ),
                );
            }
        }
        week[i] = parsed.into_iter().map(|(iv, _)| iv).collect();
    }
    let mut holidays = Vec::new();
    for h in raw.holidays {
        match Holiday::parse(h.get_ref()) {
            Ok(d) => holidays.push(d),
            Err(e) => src.error(out, &h, e),
        }
    }
    Calendar {
        name: name.to_owned(),
        time_zone,
        week,
        holidays,
    }
}

fn duration(v: &Option<Spanned<String>>, src: &Source, out: &mut Vec<Diagnostic>) -> Option<i64> {
    let v = v.as_ref()?;
    match sla::parse_duration(v.get_ref()) {
        Ok(secs) => Some(secs),
        Err(e) => {
            src.error(out, v, e);
            None
        }
    }
}

fn check_policy(
    raw: RawPolicy,
    calendars: &BTreeMap<String, Arc<Calendar>>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Policy {
    let hours = match &raw.calendar {
        None => Hours::Always,
        Some(c) => match calendars.get(c.get_ref()) {
            Some(cal) => Hours::Calendar(cal.clone()),
            None => {
                let known: Vec<&str> = calendars.keys().map(String::as_str).collect();
                src.error(
                    out,
                    c,
                    format!(
                        "unknown calendar `{}`{}",
                        c.get_ref(),
                        if known.is_empty() {
                            " (no [sla.calendar.<name>] table is defined)".to_owned()
                        } else {
                            format!("; defined: {}", known.join(", "))
                        }
                    ),
                );
                Hours::Always
            }
        },
    };
    let warn_at = match &raw.warn_at {
        None => 0.8,
        Some(w) => {
            let v = *w.get_ref();
            if !(v > 0.0 && v < 1.0) {
                src.error(
                    out,
                    w,
                    format!(
                        "warn_at {v} must be between 0 and 1 (a share of the target, e.g. 0.8)"
                    ),
                );
            }
            v
        }
    };
    let escalate = raw
        .escalate
        .iter()
        .filter_map(|e| {
            Escalation::parse(e.get_ref()).or_else(|| {
                src.error(
                    out,
                    e,
                    format!(
                        "unknown escalation `{}`, expected notify_admins or raise_priority",
                        e.get_ref()
                    ),
                );
                None
            })
        })
        .collect();
    let targets = check_targets(&raw.targets, src, out);
    let pause_on = check_pause_on(raw.pause_on, src, out);
    let lower = |v: Vec<String>| v.into_iter().map(|s| s.to_ascii_lowercase()).collect();
    Policy {
        name: raw.name.into_inner(),
        hours,
        queues: raw.queues,
        clients: raw.clients,
        mailboxes: lower(raw.mailboxes),
        issue_types: raw.issue_types,
        pause_on,
        warn_at,
        escalate,
        targets,
    }
}

/// The targets per priority.
fn check_targets(
    raw: &BTreeMap<String, Spanned<RawTargets>>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> BTreeMap<Priority, Targets> {
    let mut targets = BTreeMap::new();
    for (name, t) in raw {
        let Some(p) = Priority::parse(name) else {
            src.error(
                out,
                t,
                format!("unknown priority `{name}`, expected urgent, high, medium or low"),
            );
            continue;
        };
        let r = t.get_ref();
        targets.insert(
            p,
            Targets {
                first_response: duration(&r.first_response, src, out),
                next_response: duration(&r.next_response, src, out),
                resolution: duration(&r.resolution, src, out),
            },
        );
    }
    targets
}

/// `pause_on`: open statuses only; absent, `["Replied"]`.
fn check_pause_on(
    raw: Option<Vec<Spanned<String>>>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Vec<String> {
    match raw {
        None => vec!["Replied".to_owned()],
        Some(list) => list
            .into_iter()
            .map(|s| {
                match crate::domain::Status::parse(s.get_ref()) {
                    Some(st) if st.is_closed() => src.error(
                        out,
                        &s,
                        format!(
                            "`{}` is a closed status; its clocks stop, not pause",
                            s.get_ref()
                        ),
                    ),
                    Some(_) => {}
                    None => src.error(
                        out,
                        &s,
                        format!("unknown status `{}`, expected Open or Replied", s.get_ref()),
                    ),
                }
                s.into_inner()
            })
            .collect(),
    }
}

/// Check `[sla]`.
pub(crate) fn check_sla(raw: RawSla, src: &Source, out: &mut Vec<Diagnostic>) -> sla::Settings {
    let mut calendars = BTreeMap::new();
    for (name, c) in raw.calendar {
        let span_probe = c.monday.first().or(c.time_zone.as_ref()).map(Spanned::span);
        let cal = check_calendar(&name, c, src, out);
        if !cal.has_hours() {
            out.push(src.at(
                span_probe.unwrap_or(0..0),
                format!("calendar `{name}` has no open hours on any day"),
            ));
        }
        calendars.insert(name, Arc::new(cal));
    }
    let mut policies: Vec<Policy> = Vec::new();
    for p in raw.policy {
        if policies.iter().any(|q| q.name == *p.name.get_ref()) {
            src.error(
                out,
                &p.name,
                format!("a second policy named `{}`", p.name.get_ref()),
            );
        }
        policies.push(check_policy(p, &calendars, src, out));
    }
    sla::Settings {
        calendars,
        policies,
    }
}
