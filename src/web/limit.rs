//! Posts per IP address per minute: checked before a request's body is
//! read, so a flood costs the server a lock and a map lookup each.
//!
//! A fixed window per address (the minute the first post of the window
//! arrived). The map is bounded: when it holds [`MAX_ADDRESSES`] windows,
//! the expired ones are dropped, and if none has expired the post is
//! refused as if its address were over its limit, rather than letting a
//! flood from many addresses grow the map without end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses tracked at once.
pub const MAX_ADDRESSES: usize = 100_000;

const WINDOW: Duration = Duration::from_secs(60);

/// The posts each address made in its current window.
#[derive(Debug, Default)]
pub struct RateLimit {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimit {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count a post from `ip` at `now`; false when it is over `per_minute`.
    pub fn allow(&self, ip: IpAddr, per_minute: u32, now: Instant) -> bool {
        // A poisoned lock only means another request panicked while
        // counting; the counts are still usable.
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&ip) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= MAX_ADDRESSES {
                return false;
            }
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_posts_per_minute_then_waits_for_the_next_window() {
        let limit = RateLimit::new();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let t0 = Instant::now();
        assert!((0..3).all(|_| limit.allow(a, 3, t0)));
        assert!(!limit.allow(a, 3, t0 + Duration::from_secs(59)));
        assert!(limit.allow(b, 3, t0), "another address has its own count");
        assert!(limit.allow(a, 3, t0 + Duration::from_secs(60)));
    }
}
