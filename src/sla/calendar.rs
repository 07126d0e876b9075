//! Business hours: when the SLA clock runs.
//!
//! A [`Calendar`] is open on intervals of each weekday (several a day, so a
//! lunch break is a gap), in one time zone, except on holidays (a date, or
//! `*-MM-DD` every year). [`Hours`] is a calendar or plain calendar time
//! (24/7). Everything here is pure arithmetic on instants: adding business
//! seconds to an instant, counting the business seconds between two, and
//! finding the next open minute.
//!
//! Intervals are civil times of their day; on a day when the clocks change,
//! a time that does not exist or exists twice resolves as jiff's
//! `compatible` rule does (the later instant of a gap, the earlier of a
//! fold).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};

/// Days looked ahead for the next open interval before giving up (a
/// calendar whose every day is a holiday never opens).
const HORIZON_DAYS: i64 = 3 * 366;

/// One open interval of a day, in minutes after midnight (`end` may be
/// 1440, midnight at the end of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Opening minute.
    pub start: u16,
    /// Closing minute (exclusive).
    pub end: u16,
}

impl Interval {
    /// `"09:00-12:00"`; `24:00` closes at midnight.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong.
    pub fn parse(s: &str) -> Result<Interval, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("`{s}` is not an interval like \"09:00-17:00\""))?;
        let start = minute(a.trim())?;
        let end = minute(b.trim())?;
        if start >= end {
            return Err(format!("`{s}` ends before it starts"));
        }
        if start == 1440 {
            return Err(format!("`{s}` starts at midnight at the end of the day"));
        }
        Ok(Interval { start, end })
    }
}

/// `"HH:MM"` as minutes after midnight; `24:00` is 1440.
fn minute(s: &str) -> Result<u16, String> {
    let bad = || format!("`{s}` is not a time of day like \"09:30\"");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("`{s}` is not a time of day (00:00 to 24:00)"));
    }
    Ok(h * 60 + m)
}

/// A day the calendar is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holiday {
    /// One date.
    Date(Date),
    /// The same month and day every year (`*-12-25`).
    Yearly {
        /// Month, 1–12.
        month: i8,
        /// Day of the month.
        day: i8,
    },
}

impl Holiday {
    /// `"2026-12-25"` or `"*-01-01"`.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong.
    pub fn parse(s: &str) -> Result<Holiday, String> {
        if let Some(md) = s.strip_prefix("*-") {
            let bad = || format!("`{s}` is not a yearly holiday like \"*-12-25\"");
            let (m, d) = md.split_once('-').ok_or_else(bad)?;
            let month: i8 = m.parse().map_err(|_| bad())?;
            let day: i8 = d.parse().map_err(|_| bad())?;
            // 2024 is a leap year, so `*-02-29` is accepted.
            Date::new(2024, month, day).map_err(|_| bad())?;
            return Ok(Holiday::Yearly { month, day });
        }
        s.parse::<Date>()
            .map(Holiday::Date)
            .map_err(|_| format!("`{s}` is not a date like \"2026-12-25\" or \"*-12-25\""))
    }

    fn is(&self, d: Date) -> bool {
        match *self {
            Holiday::Date(x) => x == d,
            Holiday::Yearly { month, day } => d.month() == month && d.day() == day,
        }
    }
}

/// A named business-hours calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Its name in `[sla.calendar.<name>]`.
    pub name: String,
    /// The zone its times are in.
    pub time_zone: TimeZone,
    /// Open intervals per weekday, Monday first, sorted, not overlapping.
    pub week: [Vec<Interval>; 7],
    /// Closed days.
    pub holidays: Vec<Holiday>,
}

impl Calendar {
    fn intervals(&self, d: Date) -> &[Interval] {
        if self.holidays.iter().any(|h| h.is(d)) {
            return &[];
        }
        let i = d.weekday().to_monday_zero_offset() as usize;
        &self.week[i]
    }

    /// The instant of minute `m` of day `d` in this calendar's zone.
    fn at(&self, d: Date, m: u16) -> Option<Timestamp> {
        let day = if m >= 1440 { d.tomorrow().ok()? } else { d };
        let m = m % 1440;
        let dt = day.at((m / 60) as i8, (m % 60) as i8, 0, 0);
        self.time_zone
            .to_ambiguous_zoned(dt)
            .compatible()
            .ok()
            .map(|z| z.timestamp())
    }

    /// Open intervals as instants, from the one containing `t` (clipped to
    /// start at `t`) or the next one, in order.
    fn open_from(&self, t: Timestamp) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let first = t.to_zoned(self.time_zone.clone()).date();
        // Start a day early: an interval of yesterday can reach past
        // midnight only at 24:00, which is today's 00:00, but a time-zone
        // fold can put the end of yesterday after `t`.
        let start = first.yesterday().unwrap_or(first);
        (0..HORIZON_DAYS)
            .map_while(move |i| start.checked_add(i.days()).ok())
            .flat_map(move |d| {
                self.intervals(d)
                    .iter()
                    .filter_map(move |iv| Some((self.at(d, iv.start)?, self.at(d, iv.end)?)))
                    .collect::<Vec<_>>()
            })
            .filter(move |&(_, e)| e > t)
            .map(move |(s, e)| (s.max(t), e))
    }

    /// Whether the calendar is open at any time of a normal week.
    pub fn has_hours(&self) -> bool {
        self.week.iter().any(|d| !d.is_empty())
    }
}

/// When an SLA clock runs: around the clock, or a calendar's hours.
#[derive(Debug, Clone)]
pub enum Hours {
    /// Calendar time, 24/7.
    Always,
    /// A business-hours calendar.
    Calendar(std::sync::Arc<Calendar>),
}

/// Whole seconds from `a` to `b`.
fn secs(a: Timestamp, b: Timestamp) -> i64 {
    b.as_second() - a.as_second()
}

impl Hours {
    /// The instant `business` seconds of open time after `t`. Zero is `t`
    /// itself. A calendar that never opens again gives `None`.
    pub fn add(&self, t: Timestamp, business: i64) -> Option<Timestamp> {
        let business = business.max(0);
        match self {
            Hours::Always => t.checked_add(Span::new().seconds(business)).ok(),
            Hours::Calendar(c) => {
                if business == 0 {
                    return Some(t);
                }
                let mut left = business;
                for (s, e) in c.open_from(t) {
                    let len = secs(s, e);
                    if left <= len {
                        return s.checked_add(Span::new().seconds(left)).ok();
                    }
                    left -= len;
                }
                None
            }
        }
    }

    /// Open seconds in `[a, b)`; zero when `b` is not after `a`.
    pub fn between(&self, a: Timestamp, b: Timestamp) -> i64 {
        if b <= a {
            return 0;
        }
        match self {
            Hours::Always => secs(a, b),
            Hours::Calendar(c) => {
                let mut total = 0;
                for (s, e) in c.open_from(a) {
                    if s >= b {
                        break;
                    }
                    total += secs(s, e.min(b));
                }
                total
            }
        }
    }

    /// Whether `t` is inside business hours.
    pub fn is_open(&self, t: Timestamp) -> bool {
        self.next_open(t) == Some(t)
    }

    /// `t` when it is inside business hours, else the start of the next
    /// open interval (`None`: never opens again).
    pub fn next_open(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Hours::Always => Some(t),
            Hours::Calendar(c) => c.open_from(t).next().map(|(s, _)| s),
        }
    }

    /// The calendar's name, or `None` for 24/7.
    pub fn name(&self) -> Option<&str> {
        match self {
            Hours::Always => None,
            Hours::Calendar(c) => Some(&c.name),
        }
    }
}

/// The weekday keys of a calendar table, Monday first.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn office() -> Hours {
        let mut week: [Vec<Interval>; 7] = Default::default();
        for d in &mut week[0..4] {
            *d = vec![
                Interval::parse("09:00-12:00").unwrap(),
                Interval::parse("13:00-18:00").unwrap(),
            ];
        }
        week[4] = vec![Interval::parse("09:00-17:00").unwrap()];
        Hours::Calendar(Arc::new(Calendar {
            name: "office".into(),
            time_zone: TimeZone::get("America/New_York").unwrap(),
            week,
            holidays: vec![
                Holiday::parse("2026-12-25").unwrap(),
                Holiday::parse("*-01-01").unwrap(),
            ],
        }))
    }

    fn ny(s: &str) -> Timestamp {
        format!("{s}[America/New_York]")
            .parse::<jiff::Zoned>()
            .unwrap()
            .timestamp()
    }

    #[test]
    fn friday_evening_plus_an_hour_is_monday_morning() {
        // 2026-12-11 is a Friday; Friday closes at 17:00.
        let h = office();
        assert_eq!(
            h.add(ny("2026-12-11T16:55"), 3600),
            Some(ny("2026-12-14T09:55"))
        );
        assert_eq!(
            h.add(ny("2026-12-11T17:55"), 3600),
            Some(ny("2026-12-14T10:00"))
        );
    }

    #[test]
    fn a_holiday_moves_it_a_day_and_lunch_is_excluded() {
        let h = office();
        // Thursday 2026-12-24, 17:30 + 1 h: 30 min Thursday, Friday 25th is
        // a holiday, so Monday 09:30.
        assert_eq!(
            h.add(ny("2026-12-24T17:30"), 3600),
            Some(ny("2026-12-28T09:30"))
        );
        // Monday 11:30 + 1 h skips the lunch hour: 13:30.
        assert_eq!(
            h.add(ny("2026-12-14T11:30"), 3600),
            Some(ny("2026-12-14T13:30"))
        );
        assert_eq!(
            h.between(ny("2026-12-14T11:30"), ny("2026-12-14T13:30")),
            3600
        );
        // Yearly holiday: Friday 2027-01-01 is closed.
        assert_eq!(
            h.next_open(ny("2027-01-01T10:00")),
            Some(ny("2027-01-04T09:00"))
        );
    }

    #[test]
    fn open_and_next_open() {
        let h = office();
        assert!(h.is_open(ny("2026-12-14T09:00")));
        assert!(!h.is_open(ny("2026-12-14T12:30")));
        assert!(!h.is_open(ny("2026-12-13T10:00")));
        assert_eq!(
            h.next_open(ny("2026-12-14T12:30")),
            Some(ny("2026-12-14T13:00"))
        );
        assert_eq!(
            h.between(ny("2026-12-11T16:00"), ny("2026-12-14T10:00")),
            7200
        );
    }

    #[test]
    fn always_is_calendar_time() {
        let t = ny("2026-12-11T17:55");
        assert_eq!(Hours::Always.add(t, 3600), Some(ny("2026-12-11T18:55")));
        assert_eq!(Hours::Always.between(t, ny("2026-12-11T18:55")), 3600);
        assert!(Hours::Always.is_open(t));
    }

    #[test]
    fn intervals_and_holidays_parse_or_say_why() {
        assert_eq!(
            Interval::parse("09:00-24:00").unwrap(),
            Interval {
                start: 540,
                end: 1440
            }
        );
        assert!(
            Interval::parse("25:00-26:00")
                .unwrap_err()
                .contains("25:00")
        );
        assert!(
            Interval::parse("12:00-09:00")
                .unwrap_err()
                .contains("ends before")
        );
        assert!(Interval::parse("9-5").is_err());
        assert!(Holiday::parse("*-02-30").is_err());
        assert!(Holiday::parse("2026-13-01").is_err());
        assert_eq!(
            Holiday::parse("*-12-25").unwrap(),
            Holiday::Yearly { month: 12, day: 25 }
        );
    }

    #[test]
    fn a_calendar_that_never_opens_gives_none() {
        let h = Hours::Calendar(Arc::new(Calendar {
            name: "never".into(),
            time_zone: TimeZone::UTC,
            week: Default::default(),
            holidays: vec![],
        }));
        assert_eq!(h.add(ny("2026-12-11T10:00"), 60), None);
        assert_eq!(h.next_open(ny("2026-12-11T10:00")), None);
    }
}
