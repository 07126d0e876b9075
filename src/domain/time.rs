//! Time as one type: an instant in milliseconds since the Unix epoch.
//!
//! One clock for the whole process: [`Time::now`] reads the system clock,
//! or, when the environment variable [`CLOCK_FILE_ENV`]
//! (`POSTDESK_CLOCK_FILE`) names a file, the RFC 3339 timestamp in that
//! file (read at every call). That is a test hook: an integration test
//! opens a ticket on a Friday evening and moves the file to Monday, and
//! ticket times, SLA clocks, the scheduler and the outbox's due times all
//! follow. Not for production use.

use serde::Serialize;

/// An instant, in milliseconds since the Unix epoch. The store keeps most
/// times in seconds ([`Time::secs`]) and the outbox's retry times in
/// milliseconds ([`Time::millis`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Time(i64);

impl Time {
    /// The current instant: the system clock, or the clock file when
    /// [`CLOCK_FILE_ENV`] is set (see the module documentation).
    pub fn now() -> Time {
        Time(now_timestamp().as_millisecond())
    }

    /// This instant as a [`jiff::Timestamp`] (the epoch when out of range).
    pub fn timestamp(self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// The instant of a [`jiff::Timestamp`].
    pub fn from_timestamp(t: jiff::Timestamp) -> Time {
        Time(t.as_millisecond())
    }

    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: i64) -> Time {
        Time(secs.saturating_mul(1000))
    }

    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: i64) -> Time {
        Time(ms)
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The UTC calendar date of this instant.
    pub fn utc_date(self) -> jiff::civil::Date {
        self.timestamp().to_zoned(jiff::tz::TimeZone::UTC).date()
    }

    /// The calendar year of this instant in UTC (the epoch's year for an
    /// instant jiff cannot represent).
    pub fn utc_year(self) -> i32 {
        jiff::Timestamp::from_millisecond(self.0).map_or(1970, |t| {
            i32::from(t.to_zoned(jiff::tz::TimeZone::UTC).year())
        })
    }

    /// This instant plus `ms` milliseconds.
    pub const fn plus_millis(self, ms: i64) -> Time {
        Time(self.0.saturating_add(ms))
    }
}

/// The environment variable naming a clock file (test hook).
pub const CLOCK_FILE_ENV: &str = "POSTDESK_CLOCK_FILE";

/// The clock file, when [`CLOCK_FILE_ENV`] names one (read once).
pub fn clock_file() -> Option<&'static std::path::Path> {
    static FILE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        std::env::var_os(CLOCK_FILE_ENV)
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
    })
    .as_deref()
}

/// Now as a [`jiff::Timestamp`]: the clock file's time when there is one
/// and it reads, else the system clock.
pub fn now_timestamp() -> jiff::Timestamp {
    clock_file()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.trim().parse::<jiff::Timestamp>().ok())
        .unwrap_or_else(jiff::Timestamp::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_and_round_trip() {
        assert_eq!(Time::from_secs(5).millis(), 5000);
        assert_eq!(Time::from_millis(5999).secs(), 5);
        assert_eq!(Time::from_millis(-1).secs(), -1);
        assert_eq!(Time::from_secs(7).plus_millis(500).millis(), 7500);
    }

    #[test]
    fn the_year_is_the_utc_year() {
        // 2026-12-31T23:30:00Z is still 2026 in UTC, 2027 east of it.
        assert_eq!(Time::from_secs(1_798_759_800).utc_year(), 2026);
        assert_eq!(Time::from_secs(1_798_761_600).utc_year(), 2027);
        assert_eq!(Time::from_secs(0).utc_year(), 1970);
    }
}
