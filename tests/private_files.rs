//! What postdesk keeps on disk is its owner's alone, and the secrets it
//! reads must be.
//!
//! A fresh data directory is created `0700`, and the database, its `-wal`
//! and `-shm`, `ports.json` and the outbound `.eml` files `0600`. `check`
//! and `serve` refuse a token secret, an IMAP password file or a DKIM key
//! that the group or other users can read, naming the file and the `chmod`
//! that fixes it; so does the token secret `serve` generated in the data
//! directory, should someone loosen its mode.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Env, Mail, Options, TestServer, eventually, text_mail};

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Every file and directory under `dir`, `dir` included.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let entries = fs::read_dir(&out[i]).expect("read dir");
            for e in entries {
                out.push(e.expect("dir entry").path());
            }
        }
        i += 1;
    }
    out
}

#[test]
fn serve_creates_the_data_directory_and_every_file_in_it_for_the_owner_only() {
    let mut env = Env::new(&Options::default());
    // A data directory that does not exist yet: postdesk creates it.
    env.data_dir = env.dir.path().join("fresh").join("data");
    let server = TestServer::start_in(env, Vec::new());
    // A customer mail: stored, and its acknowledgement written as an .eml
    // into the outbound Maildir (no smarthost configured).
    server.deliver(&[Mail::new(
        "alice@customer.example.org",
        &["support@example.com"],
        text_mail(
            "Alice <alice@customer.example.org>",
            "support@example.com",
            "Printer on fire",
            "modes-1@customer.example.org",
            &[],
            "Hello.\n",
        ),
    )]);
    let data = server.env.data_dir.clone();
    let eml = eventually(Duration::from_secs(20), || {
        let new = data.join("outbound/new");
        let found = fs::read_dir(&new)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "eml"))
            })
            .ok()
            .flatten();
        found.ok_or_else(|| format!("no .eml in {}\n{}", new.display(), server.stderr()))
    });
    assert_eq!(mode(&data), 0o700, "the data directory");
    for name in [
        "postdesk.sqlite3",
        "postdesk.sqlite3-wal",
        "postdesk.sqlite3-shm",
    ] {
        let path = data.join(name);
        assert!(path.exists(), "{} missing", path.display());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&eml), 0o600, "{}", eml.display());
    for path in walk(&data) {
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{} is open to other users (mode {:04o})",
            path.display(),
            mode(&path)
        );
    }
}

#[test]
fn check_and_serve_refuse_secret_files_other_users_can_read_and_name_the_chmod() {
    let env = Env::new(&Options {
        extra_toml: "[threading]\ntoken_secret_file = \"token_secret\"\n\
                     token_secret_previous_file = \"old_secret\"\n\
                     [outbound]\ndkim_key_file = \"dkim.pem\"\ndkim_selector = \"pd1\"\n\
                     dkim_domain = \"example.com\"\n"
            .into(),
        ..Options::default()
    });
    env.write_config(
        "mailboxes/acme.toml",
        "[client]\ncustomer = \"Acme\"\ndomain = \"acme.test\"\n\
         [imap]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\n\
         password_file = \"secrets/{local}.pass\"\n\
         [[mailbox]]\naddress = \"support\"\npriority = \"Low\"\n",
    );
    let secret = env.config_dir.join("token_secret");
    let previous = env.config_dir.join("old_secret");
    let password = env.config_dir.join("secrets/support.pass");
    let key = env.config_dir.join("dkim.pem");
    env.write_secret("token_secret", "a token secret that is long enough");
    env.write_secret("old_secret", "the secret in force before the rotation");
    env.write_secret("secrets/support.pass", "imap-pass\n");
    env.write_secret("dkim.pem", "not a key\n");
    // Left as an editor or a careless `cp` would leave them.
    chmod(&secret, 0o644);
    chmod(&previous, 0o660);
    chmod(&password, 0o604);
    chmod(&key, 0o640);

    let out = env.run(&["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for (path, mode) in [
        (&secret, "0644"),
        (&previous, "0660"),
        (&password, "0604"),
        (&key, "0640"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("`{}`", path.display())))
            .unwrap_or_else(|| panic!("no error names {}:\n{stderr}", path.display()));
        assert!(line.contains(mode), "{line}");
        assert!(
            line.ends_with(&format!("run `chmod 600 {}`", path.display())),
            "{line}"
        );
    }

    // `serve` refuses to start on the same files, with the same words.
    let out = env.run(&["serve"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("run `chmod 600 {}`", secret.display())),
        "{stderr}"
    );
    assert!(
        !env.data_dir.join("ports.json").exists(),
        "serve must not have started"
    );

    // The chmod the message names is the fix: only the key's content (not
    // a PEM key) is left to complain about.
    for path in [&secret, &previous, &password, &key] {
        chmod(path, 0o600);
    }
    let out = env.run(&["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("chmod"), "{stderr}");
    let prefix = env.config_dir.display().to_string();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("no PEM private key"), "{stderr}");
}

#[test]
fn a_generated_token_secret_other_users_can_read_is_refused_at_start() {
    let env = Env::new(&Options::default());
    let file = env.data_dir.join("token_secret");
    common::write_private(&file, b"a generated secret that is long enough\n");
    chmod(&file, 0o644);
    let out = env.run(&["serve"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("run `chmod 600 {}`", file.display())),
        "{stderr}"
    );
    assert!(
        !env.data_dir.join("ports.json").exists(),
        "serve must not have started"
    );
}
