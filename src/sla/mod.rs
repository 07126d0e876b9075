//! Service-level targets: first response, next response and resolution,
//! per priority, counted on business hours, paused while the ticket waits
//! on the customer.
//!
//! Receives the policies of `[sla]` (parsed by `config`), what the store
//! knows of a ticket's clocks ([`Clocks`]) and what just happened to the
//! ticket ([`Happened`]); returns the clocks after it ([`advance`]), the
//! warnings and breaches due ([`pending`]) and the state a person reads
//! ([`view`]). Pure: no database, no clock of its own; `now` is an input.
//!
//! The model, each clock alike: a clock has a start, the business seconds
//! of pause already counted when it started (`base`), a met time, and a
//! due time = `start` + target + (pause counted since the start), in
//! business time. Paused time is kept as a running sum on the ticket, so a
//! priority change recomputes every due time from the starts without losing
//! a second of pause. While paused, running clocks have no due time; the
//! customer's next message ends the pause.
//!
//! - first response: from opening to the first agent reply;
//! - next response: from a customer message that has no agent answer yet
//!   (after the first response) to the agent's reply; a customer message
//!   while one is running does not restart it;
//! - resolution: from opening (or a reopen, which starts a new cycle) to
//!   Resolved or Closed.

pub mod calendar;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

pub use crate::domain::sla::{Clock, Clocks, Kind, Target};
use crate::domain::{Priority, Status, Time};
pub use calendar::{Calendar, Holiday, Hours, Interval};

/// Business seconds of each target; `None`: no target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    /// Opening to the first agent reply.
    pub first_response: Option<i64>,
    /// An unanswered customer message to the agent's reply.
    pub next_response: Option<i64>,
    /// Opening (or reopening) to Resolved or Closed.
    pub resolution: Option<i64>,
}

/// What a policy does on a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Escalation {
    /// Mail the admin team too.
    NotifyAdmins,
    /// Raise the ticket's priority one step (Urgent stays Urgent).
    RaisePriority,
}

impl Escalation {
    /// `notify_admins` or `raise_priority`.
    pub fn parse(s: &str) -> Option<Escalation> {
        match s {
            "notify_admins" => Some(Escalation::NotifyAdmins),
            "raise_priority" => Some(Escalation::RaisePriority),
            _ => None,
        }
    }
}

/// One `[[sla.policy]]`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// When its clocks run.
    pub hours: Hours,
    /// Queues it applies to (empty: any).
    pub queues: Vec<String>,
    /// Client short names it applies to (empty: any).
    pub clients: Vec<String>,
    /// Mailbox addresses (lower-case) it applies to (empty: any).
    pub mailboxes: Vec<String>,
    /// Issue types it applies to (empty: any).
    pub issue_types: Vec<String>,
    /// Statuses that pause its clocks (default `Replied`).
    pub pause_on: Vec<String>,
    /// Share of a target after which it warns, 0 < warn_at < 1 (default 0.8).
    pub warn_at: f64,
    /// What a breach does besides mailing.
    pub escalate: Vec<Escalation>,
    /// Targets per priority.
    pub targets: BTreeMap<Priority, Targets>,
}

impl Policy {
    /// Whether this policy's filters match `t`.
    pub fn matches(&self, t: &Ticket<'_>) -> bool {
        fn any_or(list: &[String], f: impl Fn(&str) -> bool) -> bool {
            list.is_empty() || list.iter().any(|x| f(x))
        }
        any_or(&self.queues, |q| q.eq_ignore_ascii_case(t.queue))
            && any_or(&self.issue_types, |i| i.eq_ignore_ascii_case(t.issue_type))
            && any_or(&self.mailboxes, |m| m.eq_ignore_ascii_case(t.mailbox))
            && any_or(&self.clients, |c| t.clients.iter().any(|x| x == c))
    }

    /// The targets for `priority` (all `None` when the policy has none).
    pub fn targets(&self, priority: Priority) -> Targets {
        self.targets.get(&priority).copied().unwrap_or_default()
    }

    fn pauses(&self, status: &str) -> bool {
        self.pause_on.iter().any(|s| s.eq_ignore_ascii_case(status))
    }
}

/// `[sla]`: calendars and policies, in file order.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Named calendars.
    pub calendars: BTreeMap<String, Arc<Calendar>>,
    /// Policies; the first whose filters match wins.
    pub policies: Vec<Policy>,
}

impl Settings {
    /// The policy for `t`, if one matches.
    pub fn policy_for(&self, t: &Ticket<'_>) -> Option<&Policy> {
        self.policies.iter().find(|p| p.matches(t))
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}

/// What the SLA needs of a ticket, as it is after the change at hand.
#[derive(Debug, Clone)]
pub struct Ticket<'a> {
    /// Queue.
    pub queue: &'a str,
    /// Issue type.
    pub issue_type: &'a str,
    /// The address it came in through.
    pub mailbox: &'a str,
    /// Clients it belongs to.
    pub clients: &'a [String],
    /// Status.
    pub status: &'a str,
    /// Priority.
    pub priority: Priority,
    /// When it was opened.
    pub created_at: Time,
}

/// What just happened to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Happened {
    /// It was opened.
    Opened,
    /// The customer wrote.
    CustomerMessage,
    /// An agent replied to the customer.
    AgentReply,
    /// Something else (status, priority, queue changed).
    Changed,
}

/// The priority of a stored name (Medium when unknown).
pub fn priority(stored: &str) -> Priority {
    Priority::parse(stored).unwrap_or(Priority::Medium)
}

/// Whether a stored status name counts as closed.
fn is_closed(status: &str) -> bool {
    Status::parse(status).is_some_and(Status::is_closed)
}

/// The target's seconds in `t`.
fn target_of(target: Target, t: &Targets) -> Option<i64> {
    match target {
        Target::FirstResponse => t.first_response,
        Target::NextResponse => t.next_response,
        Target::Resolution => t.resolution,
    }
}

/// The clocks after `happened`, for `t` as it is now; `None` when no
/// policy applies to the ticket (it then has no SLA).
pub fn advance(
    settings: &Settings,
    prev: Option<&Clocks>,
    t: &Ticket<'_>,
    happened: Happened,
    now: Time,
) -> Option<Clocks> {
    let policy = settings.policy_for(t)?;
    let now_s = now.secs();
    let mut c = match prev {
        Some(p) => p.clone(),
        None => {
            let mut c = Clocks::fresh(t.created_at.secs());
            c.status_seen = t.status.to_owned();
            c
        }
    };
    c.policy = policy.name.clone();

    // A status change: pause or resume, resolve or reopen.
    let closed = is_closed(t.status);
    let was_closed = is_closed(&c.status_seen);
    let pausing = policy.pauses(t.status) && !closed;
    match (c.paused_since, pausing) {
        (None, true) => c.paused_since = Some(now_s),
        (Some(since), false) => {
            c.paused_secs += policy
                .hours
                .between(Time::from_secs(since).timestamp(), now.timestamp());
            c.paused_since = None;
        }
        _ => {}
    }
    if closed && !was_closed && c.resolution.met.is_none() {
        c.resolution.met = Some(now_s);
    }
    if !closed && was_closed {
        c.resolution = Clock::started(now_s, c.paused_secs, c.resolution.cycle + 1);
    }
    c.status_seen = t.status.to_owned();

    match happened {
        Happened::CustomerMessage if c.first.met.is_some() && !c.next.running() => {
            c.next = Clock::started(now_s, c.paused_secs, c.next.cycle + 1);
        }
        Happened::AgentReply => {
            if c.first.running() {
                c.first.met = Some(now_s);
            }
            if c.next.running() {
                c.next.met = Some(now_s);
            }
        }
        _ => {}
    }

    // Due times of the running clocks, from their starts.
    let targets = policy.targets(t.priority);
    for (target, clock) in [
        (Target::FirstResponse, &mut c.first),
        (Target::NextResponse, &mut c.next),
        (Target::Resolution, &mut c.resolution),
    ] {
        if !clock.running() {
            continue;
        }
        clock.due = match (target_of(target, &targets), clock.start, c.paused_since) {
            (Some(secs), Some(start), None) => policy
                .hours
                .add(
                    Time::from_secs(start).timestamp(),
                    secs + c.paused_secs - clock.base,
                )
                .map(|d| d.as_second()),
            _ => None,
        };
    }
    Some(c)
}

/// A warning or breach of one clock cycle, and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Which target.
    pub target: Target,
    /// The clock's cycle.
    pub cycle: i64,
    /// Warning or breach.
    pub kind: Kind,
    /// When it is due, Unix seconds.
    pub at: i64,
}

/// The warnings and breaches of the running clocks that have not fired
/// (`fired` lists those that have: target, cycle, kind), each with its
/// time, soonest first. A closed or paused ticket has none.
pub fn pending(
    policy: &Policy,
    c: &Clocks,
    priority: Priority,
    fired: &[(Target, i64, Kind)],
) -> Vec<Alert> {
    if is_closed(&c.status_seen) || c.paused_since.is_some() {
        return Vec::new();
    }
    let targets = policy.targets(priority);
    let mut out = Vec::new();
    for (target, clock) in c.clocks() {
        let (Some(start), Some(due), true) = (clock.start, clock.due, clock.running()) else {
            continue;
        };
        let Some(secs) = target_of(target, &targets) else {
            continue;
        };
        let warn = ((secs as f64) * policy.warn_at).round() as i64;
        let warn_at = policy
            .hours
            .add(
                Time::from_secs(start).timestamp(),
                warn + c.paused_secs - clock.base,
            )
            .map_or(due, |t| t.as_second());
        for (kind, at) in [(Kind::Warning, warn_at), (Kind::Breached, due)] {
            if !fired.contains(&(target, clock.cycle, kind)) {
                out.push(Alert {
                    target,
                    cycle: clock.cycle,
                    kind,
                    at,
                });
            }
        }
    }
    out.sort_by_key(|a| (a.at, a.kind, a.target));
    out
}

/// When the scheduler should next look at this ticket: its soonest
/// pending alert.
pub fn next_check(alerts: &[Alert]) -> Option<i64> {
    alerts.iter().map(|a| a.at).min()
}

/// The SLA state of a ticket, as `show` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Every running target is before its warning.
    OnTrack,
    /// A running target is past its warning.
    AtRisk,
    /// A target was missed.
    Breached,
    /// Waiting on the customer.
    Paused,
    /// Nothing is running and nothing was missed.
    Met,
}

/// The SLA of a ticket as `show --json` gives it (`sla`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    /// Policy name.
    pub policy: String,
    /// State now.
    pub state: State,
    /// Due time of the first response (RFC 3339), while it runs or when met.
    pub first_response_due: Option<String>,
    /// Due time of the running next response.
    pub next_response_due: Option<String>,
    /// Due time of the resolution.
    pub resolution_due: Option<String>,
    /// Business seconds paused so far (the current pause included).
    pub paused_seconds: i64,
    /// Business seconds left to the soonest running due time (negative when
    /// past); not part of the JSON contract, printed by `show`.
    #[serde(skip)]
    pub remaining: Option<i64>,
    /// A running clock is past its due time (`tickets --overdue`).
    #[serde(skip)]
    pub overdue: bool,
}

fn rfc3339(secs: i64) -> String {
    Time::from_secs(secs).timestamp().to_string()
}

/// The state of `c` at `now` under `policy`.
pub fn view(policy: &Policy, c: &Clocks, priority: Priority, now: Time) -> View {
    let now_s = now.secs();
    let closed = is_closed(&c.status_seen);
    let paused_now = c.paused_since.map_or(0, |since| {
        policy
            .hours
            .between(Time::from_secs(since).timestamp(), now.timestamp())
    });
    let counted = |clock: &Clock| clock.start.is_some() && !(closed && clock.met.is_none());
    let breached = c
        .clocks()
        .iter()
        .any(|(_, k)| counted(k) && k.breached(now_s));
    let running: Vec<&Clock> = if closed {
        Vec::new()
    } else {
        c.clocks()
            .into_iter()
            .map(|(_, k)| k)
            .filter(|k| k.running())
            .collect()
    };
    let at_risk = pending(policy, c, priority, &[])
        .iter()
        .any(|a| a.kind == Kind::Warning && a.at <= now_s);
    let state = if breached {
        State::Breached
    } else if c.paused_since.is_some() && !closed {
        State::Paused
    } else if running.is_empty() {
        State::Met
    } else if at_risk {
        State::AtRisk
    } else {
        State::OnTrack
    };
    let soonest = running.iter().filter_map(|k| k.due).min();
    let remaining = soonest.map(|due| {
        if due >= now_s {
            policy
                .hours
                .between(now.timestamp(), Time::from_secs(due).timestamp())
        } else {
            -policy
                .hours
                .between(Time::from_secs(due).timestamp(), now.timestamp())
        }
    });
    let shown = |k: &Clock| k.due.filter(|_| k.start.is_some()).map(rfc3339);
    View {
        policy: c.policy.clone(),
        state,
        first_response_due: shown(&c.first),
        next_response_due: if c.next.running() && !closed {
            shown(&c.next)
        } else {
            None
        },
        resolution_due: shown(&c.resolution),
        paused_seconds: c.paused_secs + paused_now,
        remaining,
        overdue: soonest.is_some_and(|due| due < now_s),
    }
}

/// `1h 30m`, `2d 4h`, `-15m` for business seconds.
pub fn human(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    let text = match (d, h, m) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    };
    format!("{sign}{text}")
}

/// A duration of the configuration: `"30m"`, `"4h"`, `"2d"`, `"90s"`, or
/// a sum like `"1h30m"`; in seconds.
///
/// # Errors
///
/// A message naming what is wrong.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not a duration like \"30m\", \"4h\" or \"2d\"");
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut any = false;
    for ch in s.trim().chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: i64 = num.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
