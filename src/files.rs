//! Secret files: the reply-token secret, IMAP and smarthost passwords, the
//! DKIM key. Each is read through [`read_private_file`], which refuses a
//! file that other users could read, so a secret left at the default
//! `0644` is caught by `postdesk check` and at start, not after it leaked.
//!
//! The mode is taken from the open file (`fstat`), not from the path before
//! opening it, so a file swapped between the check and the read is still
//! the file checked. A symlink is followed: what matters is who can read
//! the file it points to.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Open `path` for writing, readable by its owner only (mode 0600): a
/// new file when `replace` is false (an existing one is an error), else
/// created or truncated. Everything postdesk writes into its data
/// directory, and the files it saves for an admin, go through this.
///
/// # Errors
///
/// The I/O error of the open.
pub fn create_private(path: &Path, replace: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options.open(path)
}

/// Permission bits that let the group or other users at a file.
const SHARED_BITS: u32 = 0o077;

/// Read a secret file whole, refusing it when its group or other users have
/// any permission on it (any of the mode bits `0o077`).
///
/// # Errors
///
/// A message naming the file: it cannot be opened or read, it is not a
/// regular file, or its mode lets other users at it, with the `chmod 600`
/// command that fixes it.
pub fn read_private_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    // O_NONBLOCK: a FIFO in the secret's place must not hang `check` or the
    // start; it is refused below as not a regular file.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{shown}` is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & SHARED_BITS != 0 {
        return Err(format!(
            "`{shown}` holds a secret but other users can read it (mode {mode:04o}); \
             run `chmod 600 {shown}`"
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).min(1 << 20));
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, b"s3cret").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn an_owner_only_file_is_read() {
        let dir = tempfile::tempdir().expect("dir");
        for mode in [0o600, 0o400] {
            let path = write(dir.path(), &format!("ok{mode:o}"), mode);
            assert_eq!(read_private_file(&path).expect("read"), b"s3cret");
        }
    }

    #[test]
    fn a_file_the_group_or_others_can_open_is_refused_with_the_chmod_that_fixes_it() {
        let dir = tempfile::tempdir().expect("dir");
        for mode in [0o644, 0o640, 0o604, 0o620, 0o601] {
            let path = write(dir.path(), &format!("bad{mode:o}"), mode);
            let e = read_private_file(&path).expect_err("refused");
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains(&format!("chmod 600 {}", path.display())), "{e}");
            assert!(e.contains(&format!("{mode:04o}")), "{e}");
        }
    }

    #[test]
    fn a_missing_file_or_a_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing");
        assert!(
            read_private_file(&missing)
                .expect_err("missing")
                .contains("missing")
        );
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(
            read_private_file(&sub)
                .expect_err("dir")
                .contains("not a regular file")
        );
    }
}
