//! Time as one type: an instant in milliseconds since the Unix epoch.

use serde::Serialize;

/// An instant, in milliseconds since the Unix epoch. The store keeps most
/// times in seconds ([`Time::secs`]) and the outbox's retry times in
/// milliseconds ([`Time::millis`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Time(i64);

impl Time {
    /// The current instant, from the system clock.
    pub fn now() -> Time {
        Time(jiff::Timestamp::now().as_millisecond())
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

    /// This instant plus `ms` milliseconds.
    pub const fn plus_millis(self, ms: i64) -> Time {
        Time(self.0.saturating_add(ms))
    }
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
}
