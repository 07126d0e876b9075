//! Waiting without sleeping: [`eventually`] polls a check until it passes
//! or its deadline runs out, and child processes are reaped under a
//! deadline. The pause between polls only paces the loop; the outcome is
//! decided by the check, never by the length of a sleep.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// The default deadline for [`eventually`] checks in tests.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Poll `check` until it returns `Ok`, and return its value; panic with the
/// last `Err` once `deadline` has passed. The pause between polls is short
/// and only paces the loop: the outcome is decided by `check`, never by the
/// length of a sleep.
pub fn eventually<T>(deadline: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) => {
                if start.elapsed() >= deadline {
                    panic!("still not true after {deadline:?}: {why}");
                }
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Wait for `child` to exit within `deadline`; kill it and panic otherwise.
pub fn wait_with_deadline(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if start.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {deadline:?}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}
