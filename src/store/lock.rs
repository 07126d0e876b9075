//! Who is using a data directory: `<data>/store.lock`, an advisory lock
//! (`flock`) held for as long as a process writes to the store.
//!
//! `postdesk serve` and `postdesk ingest` hold it shared, so they run side
//! by side (an MTA pipes into `ingest -` while the server runs).
//! `postdesk restore` takes it exclusively, and without waiting: it refuses
//! while a server or an ingest is at work, and while it replaces the
//! database file, a server or an ingest that starts refuses in turn instead
//! of writing into the file being moved aside, where the mail would be
//! lost from view.
//!
//! The kernel drops the lock when its holder exits, however it exits
//! (SIGKILL included), so a crash never leaves a stale lock behind.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file inside a data directory.
pub const LOCK_FILE: &str = "store.lock";

/// A held lock on a data directory; released when dropped.
#[derive(Debug)]
pub struct Held {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `restore` is replacing the store (for a shared lock), or a server or
    /// an ingest is using it (for the exclusive one).
    #[error("{}", busy_text(.dir, *.exclusive))]
    Busy {
        /// The data directory.
        dir: PathBuf,
        /// Whether the exclusive lock was asked for.
        exclusive: bool,
    },
    /// The lock file could not be created or locked.
    #[error("locking {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn busy_text(dir: &Path, exclusive: bool) -> String {
    if exclusive {
        format!(
            "the store in {} is in use by a running `postdesk serve` or `postdesk ingest`; \
             stop the server (and the MTA's deliveries to it) first",
            dir.display()
        )
    } else {
        format!(
            "the store in {} is being replaced by `postdesk restore`; try again when it is done",
            dir.display()
        )
    }
}

/// Hold the data directory's lock shared (serve, ingest), creating the
/// directory (0700) and the lock file (0600) when missing.
///
/// # Errors
///
/// [`Error::Busy`] while `restore` holds it; [`Error::Io`].
pub fn share(data_dir: &Path) -> Result<Held, Error> {
    take(data_dir, false)
}

/// Hold the data directory's lock alone (restore).
///
/// # Errors
///
/// [`Error::Busy`] while a server or an ingest holds it; [`Error::Io`].
pub fn exclusive(data_dir: &Path) -> Result<Held, Error> {
    take(data_dir, true)
}

fn take(data_dir: &Path, exclusive: bool) -> Result<Held, Error> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = data_dir.join(LOCK_FILE);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(io)?;
    let existed = path.exists();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    if !existed {
        // Made by root (an admin's `sudo postdesk ...`): the server's
        // user, who owns the directory, must be able to open it too.
        give_to_owner(data_dir, &path).map_err(io)?;
    }
    let locked = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match locked {
        Ok(()) => Ok(Held { _file: file }),
        Err(TryLockError::WouldBlock) => Err(Error::Busy {
            dir: data_dir.to_path_buf(),
            exclusive,
        }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

/// When run as root, give `path` (in `data_dir`) to the directory's owner,
/// so the server, running as that user, can open it.
///
/// # Errors
///
/// The I/O error of the `stat` or the `chown`.
pub(crate) fn give_to_owner(data_dir: &Path, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let meta = std::fs::metadata(data_dir)?;
    match std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid())) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_coexist_and_keep_the_exclusive_one_out() {
        let dir = tempfile::tempdir().unwrap();
        let a = share(dir.path()).unwrap();
        let b = share(dir.path()).unwrap();
        assert!(matches!(
            exclusive(dir.path()),
            Err(Error::Busy {
                exclusive: true,
                ..
            })
        ));
        drop((a, b));
        let x = exclusive(dir.path()).unwrap();
        assert!(matches!(
            share(dir.path()),
            Err(Error::Busy {
                exclusive: false,
                ..
            })
        ));
        drop(x);
        share(dir.path()).unwrap();
    }
}
