//! `postdesk stats`: tickets opened, resolved and closed in a window,
//! first-response and resolution times (median, p90), SLA compliance and
//! satisfaction, over all tickets and by one dimension. Pure: it is fed
//! [`StatsTicket`] rows one at a time and keeps only counters and the
//! durations the percentiles need (one `i64` per ticket and figure).
//!
//! Definitions (the README repeats them for users):
//! - **opened**: created in the window.
//! - **resolved**: Resolved or Closed now, and its final run of those
//!   statuses began in the window (a ticket resolved and later reopened
//!   counts when it is resolved again).
//! - **closed**: Closed now, closed in the window.
//! - **first response**: opening to the first agent reply relayed to the
//!   customer (acknowledgements, notifications and notes are not replies),
//!   over the tickets opened in the window.
//! - **resolution**: opening to resolved, over the tickets resolved in the
//!   window.
//! - Both in business seconds of the calendar of the SLA policy the ticket
//!   runs under, wall-clock seconds when it runs under none (or a policy
//!   without a calendar).
//! - **SLA compliance**: of the tickets opened in the window whose target
//!   is decided, met on time over met plus breached (a clock still running
//!   before its due time counts in neither).
//! - **satisfaction**: ratings given in the window.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use super::csv::{Record, header};
use super::printable;
use super::stats::Figures;
use crate::domain::sla::Clock;
use crate::domain::{Status, Time};
use crate::sla::Settings;
use crate::store::StatsTicket;

/// What `--by` groups on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The ticket's queue.
    Queue,
    /// Its priority.
    Priority,
    /// Its assignee (empty: unassigned).
    Agent,
    /// Its client: the client whose mailbox opened it, else the
    /// requester's domain.
    Client,
    /// Its issue type.
    Type,
}

impl Dimension {
    /// Every dimension, in the order `--by` lists them.
    pub const ALL: [Dimension; 5] = [
        Dimension::Queue,
        Dimension::Priority,
        Dimension::Agent,
        Dimension::Client,
        Dimension::Type,
    ];

    /// The `--by` value and the JSON key of a group's name.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Queue => "queue",
            Dimension::Priority => "priority",
            Dimension::Agent => "agent",
            Dimension::Client => "client",
            Dimension::Type => "type",
        }
    }

    /// The dimension called `name`.
    pub fn parse(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The group `t` belongs to.
    pub fn of(self, t: &StatsTicket) -> String {
        match self {
            Dimension::Queue => t.queue.clone(),
            Dimension::Priority => t.priority.clone(),
            Dimension::Agent => t.assignee.clone(),
            Dimension::Client => client(t),
            Dimension::Type => t.issue_type.clone(),
        }
    }
}

/// The ticket's client: the client whose mailbox opened it, else the
/// requester's domain (lower-case), else empty.
pub fn client(t: &StatsTicket) -> String {
    if !t.client.is_empty() {
        return t.client.clone();
    }
    t.requester
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// When `t` was resolved: the start of its final run of closed statuses
/// (Resolved, Closed) in the audit log; its `closed_at` when the log has
/// no such change (a merged ticket); `None` while it is not closed.
pub fn resolved_at(t: &StatsTicket) -> Option<i64> {
    if !Status::name_is_closed(&t.status) {
        return None;
    }
    let mut run: Option<i64> = None;
    for tr in &t.transitions {
        if Status::name_is_closed(&tr.to) {
            run.get_or_insert(tr.at);
        } else {
            run = None;
        }
    }
    run.or(t.closed_at)
}

/// `[since, until)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First second in; `None`: from the first ticket.
    pub since: Option<i64>,
    /// First second out.
    pub until: i64,
}

impl Window {
    fn contains(self, at: i64) -> bool {
        self.since.is_none_or(|s| s <= at) && at < self.until
    }
}

/// Durations of one figure, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durations(Vec<i64>);

impl Durations {
    /// How many.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    fn sorted(&self) -> Vec<i64> {
        let mut v = self.0.clone();
        v.sort_unstable();
        v
    }

    /// The median: the middle value, or the mean of the two middle ones
    /// (rounded down); `None` without values.
    pub fn median(&self) -> Option<i64> {
        let v = self.sorted();
        let n = v.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => v.get(n / 2).copied(),
            _ => Some((v[n / 2 - 1] + v[n / 2]).div_euclid(2)),
        }
    }

    /// The 90th percentile by nearest rank: the smallest value with at
    /// least 90 % of the values at or below it; `None` without values.
    pub fn p90(&self) -> Option<i64> {
        let v = self.sorted();
        let rank = (v.len() * 9).div_ceil(10);
        rank.checked_sub(1).and_then(|i| v.get(i).copied())
    }

    fn json(&self) -> Value {
        json!({
            "count": self.count(),
            "median_seconds": self.median(),
            "p90_seconds": self.p90(),
        })
    }
}

/// Met and breached targets of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compliance {
    /// Met by the due time.
    pub met: i64,
    /// Met late, or overdue now.
    pub breached: i64,
}

impl Compliance {
    fn add(&mut self, clock: Option<&Clock>, now: Time) {
        let Some(c) = clock else {
            return;
        };
        if c.breached(now.secs()) {
            self.breached += 1;
        } else if let (Some(met), Some(due)) = (c.met, c.due)
            && met <= due
        {
            self.met += 1;
        }
    }

    /// Met over decided (met plus breached); `None` when none is decided.
    pub fn ratio(&self) -> Option<f64> {
        let decided = self.met + self.breached;
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        (decided > 0).then(|| self.met as f64 / decided as f64)
    }

    fn json(&self) -> Value {
        json!({
            "met": self.met,
            "breached": self.breached,
            "compliance": self.ratio().map(|r| (r * 10_000.0).round() / 10_000.0),
        })
    }
}

/// The figures of one group (or of all tickets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Opened in the window.
    pub opened: i64,
    /// Resolved in the window.
    pub resolved: i64,
    /// Closed in the window.
    pub closed: i64,
    /// First-response times of the tickets opened in the window.
    pub first_response: Durations,
    /// Resolution times of the tickets resolved in the window.
    pub resolution: Durations,
    /// First-response SLA of the tickets opened in the window.
    pub sla_first_response: Compliance,
    /// Resolution SLA of the tickets opened in the window.
    pub sla_resolution: Compliance,
    /// Ratings given in the window.
    pub satisfaction: Figures,
}

/// What one ticket adds to its groups.
struct Counted {
    opened: bool,
    resolved: Option<i64>,
    closed: bool,
    first_response: Option<i64>,
    rating: Option<u8>,
}

impl Group {
    fn add(&mut self, t: &StatsTicket, c: &Counted, now: Time) {
        self.opened += i64::from(c.opened);
        self.closed += i64::from(c.closed);
        if let Some(secs) = c.resolved {
            self.resolved += 1;
            self.resolution.0.push(secs);
        }
        if let Some(secs) = c.first_response {
            self.first_response.0.push(secs);
        }
        if c.opened {
            self.sla_first_response.add(t.sla_first.as_ref(), now);
            self.sla_resolution.add(t.sla_resolution.as_ref(), now);
        }
        if let Some(score) = c.rating {
            self.satisfaction.add(score, 1);
        }
    }

    /// The group's figures as JSON (the `stats --json` contract).
    pub fn json(&self) -> Value {
        json!({
            "opened": self.opened,
            "resolved": self.resolved,
            "closed": self.closed,
            "first_response": self.first_response.json(),
            "resolution": self.resolution.json(),
            "sla": {
                "first_response": self.sla_first_response.json(),
                "resolution": self.sla_resolution.json(),
            },
            "satisfaction": self.satisfaction.json(),
        })
    }
}

/// The figures of a window, over all tickets and by one dimension.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The window.
    pub window: Window,
    /// What the groups are, if any.
    pub by: Option<Dimension>,
    /// Every ticket.
    pub total: Group,
    /// By the dimension's value.
    pub groups: BTreeMap<String, Group>,
    now: Time,
}

/// Seconds from `a` to `b` in the business hours of the ticket's SLA
/// policy, wall-clock when it has none (or its policy is no longer
/// configured).
pub fn elapsed(sla: &Settings, t: &StatsTicket, a: i64, b: i64) -> i64 {
    match t.sla_policy.as_deref().and_then(|p| sla.policy(p)) {
        Some(p) => p.hours.between(
            Time::from_secs(a).timestamp(),
            Time::from_secs(b).timestamp(),
        ),
        None => (b - a).max(0),
    }
}

impl Overview {
    /// No tickets yet; SLA states are judged at `now`.
    pub fn new(window: Window, by: Option<Dimension>, now: Time) -> Overview {
        Overview {
            window,
            by,
            total: Group::default(),
            groups: BTreeMap::new(),
            now,
        }
    }

    /// Count `t`, with business hours from `sla`.
    pub fn add(&mut self, t: &StatsTicket, sla: &Settings) {
        let w = self.window;
        let opened = w.contains(t.created_at);
        let resolved = resolved_at(t)
            .filter(|at| w.contains(*at))
            .map(|at| elapsed(sla, t, t.created_at, at));
        let c = Counted {
            opened,
            resolved,
            closed: t.status.eq_ignore_ascii_case(Status::Closed.as_str())
                && t.closed_at.is_some_and(|at| w.contains(at)),
            first_response: t
                .first_response_at
                .filter(|_| opened)
                .map(|at| elapsed(sla, t, t.created_at, at)),
            rating: t
                .rating
                .filter(|(_, at)| w.contains(*at))
                .map(|(score, _)| score),
        };
        if !(c.opened || c.closed || c.resolved.is_some() || c.rating.is_some()) {
            return;
        }
        self.total.add(t, &c, self.now);
        if let Some(by) = self.by {
            self.groups
                .entry(by.of(t))
                .or_default()
                .add(t, &c, self.now);
        }
    }

    /// The `stats --json` contract.
    pub fn json(&self) -> Value {
        let by = self.by;
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|(name, g)| {
                let mut v = g.json();
                if let (Value::Object(o), Some(by)) = (&mut v, by) {
                    o.insert(by.name().to_owned(), json!(name));
                }
                v
            })
            .collect();
        json!({
            "since": self.window.since.map(super::time),
            "until": super::time(self.window.until),
            "by": by.map(Dimension::name),
            "total": self.total.json(),
            "groups": groups,
        })
    }

    /// The `stats --csv` columns.
    pub const CSV_COLUMNS: [&str; 19] = [
        "by",
        "group",
        "opened",
        "resolved",
        "closed",
        "first_response_count",
        "first_response_median_seconds",
        "first_response_p90_seconds",
        "resolution_count",
        "resolution_median_seconds",
        "resolution_p90_seconds",
        "sla_first_response_met",
        "sla_first_response_breached",
        "sla_first_response_compliance",
        "sla_resolution_met",
        "sla_resolution_breached",
        "sla_resolution_compliance",
        "satisfaction_count",
        "satisfaction_average",
    ];

    /// `stats --csv`: a header, the total (`by` = `all`), then one row
    /// per group.
    ///
    /// # Errors
    ///
    /// The writer's error.
    pub fn write_csv(&self, out: &mut impl Write) -> std::io::Result<()> {
        header(out, &Overview::CSV_COLUMNS)?;
        let mut r = Record::new();
        let mut row = |by: &str, name: &str, g: &Group| {
            let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
            r.text(by)
                .text(name)
                .number(g.opened)
                .number(g.resolved)
                .number(g.closed)
                .number(g.first_response.count())
                .maybe(g.first_response.median())
                .maybe(g.first_response.p90())
                .number(g.resolution.count())
                .maybe(g.resolution.median())
                .maybe(g.resolution.p90())
                .number(g.sla_first_response.met)
                .number(g.sla_first_response.breached)
                .maybe(g.sla_first_response.ratio().map(round))
                .number(g.sla_resolution.met)
                .number(g.sla_resolution.breached)
                .maybe(g.sla_resolution.ratio().map(round))
                .number(g.satisfaction.count())
                .maybe(
                    g.satisfaction
                        .average()
                        .map(|a| (a * 100.0).round() / 100.0),
                );
            r.write(out)
        };
        row("all", "", &self.total)?;
        if let Some(by) = self.by {
            for (name, g) in &self.groups {
                row(by.name(), name, g)?;
            }
        }
        Ok(())
    }

    /// `stats` for the terminal.
    pub fn text(&self) -> String {
        let time = |secs: i64| {
            super::time(secs)
                .as_str()
                .map_or_else(String::new, str::to_owned)
        };
        let mut s = format!(
            "Tickets from {} to {}\n\n",
            self.window
                .since
                .map_or_else(|| "the start".to_owned(), time),
            time(self.window.until)
        );
        s.push_str(&group_text("all", &self.total));
        for (name, g) in &self.groups {
            let label = match (self.by, name.is_empty()) {
                (Some(Dimension::Agent), true) => "(unassigned)".to_owned(),
                (_, true) => "(none)".to_owned(),
                _ => printable(name).into_owned(),
            };
            let by = self.by.map_or("", Dimension::name);
            s.push('\n');
            s.push_str(&group_text(&format!("{by} {label}"), g));
        }
        s
    }
}

fn group_text(label: &str, g: &Group) -> String {
    let times = |d: &Durations| match (d.median(), d.p90()) {
        (Some(m), Some(p)) => format!(
            "{} tickets, median {}, p90 {}",
            d.count(),
            crate::sla::human(m),
            crate::sla::human(p)
        ),
        _ => "none".to_owned(),
    };
    let sla = |c: &Compliance| match c.ratio() {
        Some(r) => format!(
            "{} met, {} breached ({:.1} %)",
            c.met,
            c.breached,
            r * 100.0
        ),
        None => "none decided".to_owned(),
    };
    format!(
        "{label}\n  opened {}, resolved {}, closed {}\n  first response: {}\n  resolution: {}\n  SLA first response: {}\n  SLA resolution: {}\n  satisfaction: {} ratings, average {}\n",
        g.opened,
        g.resolved,
        g.closed,
        times(&g.first_response),
        times(&g.resolution),
        sla(&g.sla_first_response),
        sla(&g.sla_resolution),
        g.satisfaction.count(),
        g.satisfaction
            .average()
            .map_or("-".to_owned(), |a| format!("{a:.2}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Transition;

    fn ticket(id: i64, created_at: i64) -> StatsTicket {
        StatsTicket {
            id,
            number: 1000 + id,
            status: "Open".into(),
            priority: "Medium".into(),
            queue: "support".into(),
            issue_type: "General".into(),
            requester: "alice@Customer.TEST".into(),
            created_at,
            ..StatsTicket::default()
        }
    }

    fn to(at: i64, status: &str) -> Transition {
        Transition {
            at,
            to: status.into(),
        }
    }

    #[test]
    fn median_and_p90_by_nearest_rank() {
        let d = |v: &[i64]| Durations(v.to_vec());
        assert_eq!(d(&[]).median(), None);
        assert_eq!(d(&[]).p90(), None);
        assert_eq!(d(&[7]).median(), Some(7));
        assert_eq!(d(&[7]).p90(), Some(7));
        assert_eq!(d(&[30, 10, 20]).median(), Some(20));
        assert_eq!(d(&[40, 10, 30, 20]).median(), Some(25));
        assert_eq!(d(&[1, 2]).median(), Some(1));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(d(&ten).p90(), Some(9));
        let eleven: Vec<i64> = (1..=11).rev().collect();
        assert_eq!(d(&eleven).p90(), Some(10));
        let hundred: Vec<i64> = (1..=100).collect();
        assert_eq!(d(&hundred).p90(), Some(90));
        assert_eq!(d(&hundred).median(), Some(50));
    }

    #[test]
    fn resolved_at_is_the_start_of_the_final_closed_run() {
        let mut t = ticket(1, 0);
        t.status = "Closed".into();
        t.closed_at = Some(900);
        // Resolved, reopened, resolved again, then closed: the second
        // resolution counts.
        t.transitions = vec![
            to(100, "Replied"),
            to(200, "Resolved"),
            to(300, "Open"),
            to(500, "Resolved"),
            to(900, "Closed"),
        ];
        assert_eq!(resolved_at(&t), Some(500));
        // No change in the log (a merged ticket): when it was closed.
        t.transitions.clear();
        assert_eq!(resolved_at(&t), Some(900));
        // Open now: not resolved, whatever the log says.
        t.status = "Open".into();
        t.transitions = vec![to(200, "Resolved"), to(300, "Open")];
        assert_eq!(resolved_at(&t), None);
    }

    #[test]
    fn a_ticket_counts_in_the_window_by_what_happened_in_it() {
        let w = Window {
            since: Some(1000),
            until: 2000,
        };
        let sla = Settings::default();
        let mut o = Overview::new(w, Some(Dimension::Client), Time::from_secs(5000));
        // Opened before the window, resolved in it.
        let mut a = ticket(1, 500);
        a.status = "Resolved".into();
        a.closed_at = Some(1500);
        a.first_response_at = Some(600);
        a.transitions = vec![to(1500, "Resolved")];
        // Opened in it, answered after 300 s, closed in it, rated in it.
        let mut b = ticket(2, 1100);
        b.client = "crtc".into();
        b.status = "Closed".into();
        b.first_response_at = Some(1400);
        b.closed_at = Some(1900);
        b.transitions = vec![to(1400, "Replied"), to(1900, "Closed")];
        b.rating = Some((5, 1950));
        // Opened after the window: not counted at all.
        let c = ticket(3, 2500);
        // Opened in it, never answered, rated before it: opened only.
        let mut d = ticket(4, 1200);
        d.rating = Some((1, 900));
        for t in [&a, &b, &c, &d] {
            o.add(t, &sla);
        }
        let t = &o.total;
        assert_eq!((t.opened, t.resolved, t.closed), (2, 2, 1));
        assert_eq!(t.first_response.0, vec![300]);
        assert_eq!(t.resolution.0, vec![1000, 800]);
        assert_eq!(t.satisfaction.count(), 1);
        assert_eq!(o.groups["crtc"].opened, 1);
        assert_eq!(o.groups["customer.test"].opened, 1);
        assert_eq!(o.groups["customer.test"].resolved, 1);
        let v = o.json();
        assert_eq!(v["since"], "1970-01-01T00:16:40Z");
        assert_eq!(v["by"], "client");
        assert_eq!(v["groups"][0]["client"], "crtc");
        assert_eq!(v["total"]["resolution"]["median_seconds"], 900);
        assert_eq!(v["total"]["first_response"]["p90_seconds"], 300);
    }

    #[test]
    fn sla_compliance_counts_met_and_breached_but_not_running() {
        let now = Time::from_secs(10_000);
        let mut c = Compliance::default();
        let clock = |met, due| Clock {
            start: Some(0),
            base: 0,
            cycle: 1,
            met,
            due,
        };
        c.add(Some(&clock(Some(50), Some(100))), now);
        c.add(Some(&clock(Some(150), Some(100))), now);
        c.add(Some(&clock(None, Some(9_000))), now);
        c.add(Some(&clock(None, Some(20_000))), now);
        c.add(Some(&clock(Some(50), None)), now);
        c.add(None, now);
        assert_eq!(
            c,
            Compliance {
                met: 1,
                breached: 2
            }
        );
        assert_eq!(Compliance::default().ratio(), None);
        assert!((c.ratio().unwrap_or(0.0) - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn csv_has_a_total_row_and_one_row_per_group() {
        let mut o = Overview::new(
            Window {
                since: None,
                until: 10,
            },
            Some(Dimension::Agent),
            Time::from_secs(10),
        );
        let mut t = ticket(1, 1);
        t.assignee = "=bob".into();
        o.add(&t, &Settings::default());
        o.add(&ticket(2, 2), &Settings::default());
        let mut out = Vec::new();
        o.write_csv(&mut out).expect("write");
        let text = String::from_utf8(out).expect("UTF-8");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("by,group,opened,"));
        assert!(lines[1].starts_with("all,,2,0,0,0,,,0,"));
        assert!(lines[2].starts_with("agent,,1,"));
        assert!(lines[3].starts_with("agent,'=bob,1,"));
        assert_eq!(lines[4], "");
        assert!(o.text().contains("agent (unassigned)"));
    }
}
