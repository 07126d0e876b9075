//! The SLA clocks of a ticket as data: what the store keeps and the SLA
//! rules (`sla`) read and return.

use serde::Serialize;

/// One clock of a ticket (times in Unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Clock {
    /// When it started; `None`: not started.
    pub start: Option<i64>,
    /// The ticket's paused seconds when it started.
    pub base: i64,
    /// Which cycle this is (next response: one per unanswered customer
    /// message; resolution: one per opening or reopen).
    pub cycle: i64,
    /// When it was met.
    pub met: Option<i64>,
    /// When it is (or was, when met) due; `None` while paused or without
    /// a target.
    pub due: Option<i64>,
}

impl Clock {
    /// A clock started at `now`.
    pub fn started(now: i64, base: i64, cycle: i64) -> Clock {
        Clock {
            start: Some(now),
            base,
            cycle,
            met: None,
            due: None,
        }
    }

    /// Started and not met.
    pub fn running(&self) -> bool {
        self.start.is_some() && self.met.is_none()
    }

    /// Whether it was met late, or runs past its due time at `now`.
    pub fn breached(&self, now: i64) -> bool {
        match (self.due, self.met) {
            (Some(due), Some(met)) => met > due,
            (Some(due), None) => self.start.is_some() && now > due,
            _ => false,
        }
    }
}

/// The SLA clocks of one ticket, as the store keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Clocks {
    /// The policy they run under.
    pub policy: String,
    /// The status last seen (to notice changes).
    pub status_seen: String,
    /// When the current pause began, if paused.
    pub paused_since: Option<i64>,
    /// Business seconds paused so far (pauses that ended).
    pub paused_secs: i64,
    /// First response.
    pub first: Clock,
    /// Next response.
    pub next: Clock,
    /// Resolution.
    pub resolution: Clock,
}

/// The three targets, as named in events, mails and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// First response.
    FirstResponse,
    /// Next response.
    NextResponse,
    /// Resolution.
    Resolution,
}

impl Target {
    /// `first_response`, `next_response`, `resolution`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::NextResponse => "next_response",
            Target::Resolution => "resolution",
        }
    }

    /// The inverse of [`Target::as_str`].
    pub fn parse(s: &str) -> Option<Target> {
        [
            Target::FirstResponse,
            Target::NextResponse,
            Target::Resolution,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

impl Clocks {
    /// The clocks of a ticket opened at `at` in status `status`.
    pub fn fresh(at: i64) -> Clocks {
        Clocks {
            first: Clock::started(at, 0, 1),
            resolution: Clock::started(at, 0, 1),
            ..Clocks::default()
        }
    }

    /// The three clocks with their targets.
    pub fn clocks(&self) -> [(Target, &Clock); 3] {
        [
            (Target::FirstResponse, &self.first),
            (Target::NextResponse, &self.next),
            (Target::Resolution, &self.resolution),
        ]
    }
}

/// A warning or breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `warn_at` of the target has passed.
    Warning,
    /// The target has passed.
    Breached,
}

impl Kind {
    /// `warning` or `breached`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Warning => "warning",
            Kind::Breached => "breached",
        }
    }
}
