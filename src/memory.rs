//! Memory: hand freed memory back to the system after a large message.
//!
//! glibc's malloc keeps memory a thread freed in that thread's arena for
//! reuse, and raises its mmap threshold after a large block is freed, so
//! after one 24 MB message the process would keep its peak size for good.
//! [`release_after`] asks malloc to return what is free (`malloc_trim`)
//! once a large message has been dealt with; small messages never pay for
//! the call. On other C libraries it does nothing.

/// Messages (or batches) of at least this many octets trigger a trim.
pub const TRIM_AFTER: usize = 1024 * 1024;

/// Return free heap memory to the system if `octets` just handled were at
/// least [`TRIM_AFTER`]; true when a trim ran.
pub fn release_after(octets: usize) -> bool {
    if octets < TRIM_AFTER {
        return false;
    }
    trim();
    true
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks malloc's own free lists, under its
    // own locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_work_triggers_a_trim() {
        assert!(!release_after(0));
        assert!(!release_after(TRIM_AFTER - 1));
        assert!(release_after(TRIM_AFTER));
    }
}
