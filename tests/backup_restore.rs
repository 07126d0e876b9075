//! `postdesk backup FILE` and `postdesk restore FILE` over the real CLI: a
//! running server's store is copied, restored into a fresh data directory
//! and served from there; a restore refuses while a server runs, refuses a
//! file that is not a sound postdesk store (leaving the data directory as
//! it was), and keeps the store it replaces.

mod common;

use std::path::{Path, PathBuf};

use common::{Env, Mail, Options, TestServer, bare_id, str_field};
use serde_json::Value;

fn customer_mail(n: u32) -> Mail {
    Mail::text(
        "dave@customer.example.org",
        &format!("Backed up {n}"),
        &format!("backup-{n}@customer.example.org"),
        "Hello,\nplease keep this.\n",
    )
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// `(number, subject)` of each ticket, sorted.
fn ticket_keys(tickets: &[Value]) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = tickets
        .iter()
        .map(|t| {
            (
                str_field(t, "number").to_owned(),
                str_field(t, "subject").to_owned(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// The Message-IDs of `messages --json`, sorted.
fn message_ids(env: &Env) -> Vec<String> {
    let mut ids: Vec<String> = env
        .messages_json()
        .iter()
        .map(|m| bare_id(str_field(m, "message_id")).to_owned())
        .collect();
    ids.sort();
    ids
}

/// Run a command that must fail; return its stderr.
fn run_fails(env: &Env, args: &[&str]) -> String {
    let out = env.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "postdesk {} should have failed; stdout:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

/// A backup of a server holding `n` tickets, written to `<dir>/NAME`.
fn backup_of_a_server(n: u32, name: &str) -> (TestServer, PathBuf) {
    let server = TestServer::start();
    server.deliver(&(1..=n).map(customer_mail).collect::<Vec<_>>());
    server.wait_tickets(n as usize);
    let file = server.env.dir.path().join(name);
    server.env.run_ok(&["backup", path_arg(&file)]);
    (server, file)
}

#[test]
fn backup_of_a_running_server_restores_into_a_fresh_data_dir_with_its_tickets() {
    let server = TestServer::start();
    server.deliver(&[customer_mail(1), customer_mail(2)]);
    let before = server.wait_tickets(2);
    let file = server.env.dir.path().join("postdesk-backup.sqlite3");

    let out = server.env.run_ok(&["backup", path_arg(&file)]);
    assert!(out.contains("2 tickets"), "{out}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("backup file")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the backup holds every customer's mail"
        );
    }
    // Only the file asked for: no partial copy and no journal beside it.
    let beside: Vec<String> = std::fs::read_dir(server.env.dir.path())
        .expect("read temp dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("postdesk-backup"))
        .collect();
    assert_eq!(beside, ["postdesk-backup.sqlite3"]);
    // Mail after the backup is not in it.
    server.deliver(&[customer_mail(3)]);
    server.wait_tickets(3);

    let fresh = Env::new(&Options::default());
    let out = fresh.run_ok(&["restore", path_arg(&file)]);
    assert!(out.contains("2 tickets"), "{out}");
    assert!(!out.contains("kept as"), "nothing was replaced: {out}");
    assert_eq!(ticket_keys(&fresh.tickets_json()), ticket_keys(&before));
    assert_eq!(
        message_ids(&fresh),
        [
            "backup-1@customer.example.org",
            "backup-2@customer.example.org"
        ]
    );

    // A server on the restored store goes on where the backup left off.
    let restored = TestServer::start_in(fresh, Vec::new());
    restored.deliver(&[customer_mail(4)]);
    let tickets = restored.wait_tickets(3);
    let numbers: Vec<String> = ticket_keys(&tickets).into_iter().map(|(n, _)| n).collect();
    assert_eq!(numbers, ["#1001", "#1002", "#1003"]);
}

#[test]
fn backup_never_overwrites_a_file() {
    let (server, file) = backup_of_a_server(1, "taken.sqlite3");
    let before = std::fs::read(&file).expect("backup");
    let stderr = run_fails(&server.env, &["backup", path_arg(&file)]);
    assert!(stderr.contains("exists"), "{stderr}");
    assert_eq!(std::fs::read(&file).expect("backup"), before);
}

#[test]
fn backup_of_a_data_dir_without_a_store_is_refused() {
    let env = Env::new(&Options::default());
    let file = env.dir.path().join("nothing.sqlite3");
    let stderr = run_fails(&env, &["backup", path_arg(&file)]);
    assert!(stderr.contains("no postdesk store"), "{stderr}");
    assert!(!file.exists());
}

#[test]
fn restore_refuses_while_a_server_holds_the_data_directory() {
    let (server, file) = backup_of_a_server(1, "b.sqlite3");
    server.deliver(&[customer_mail(2)]);
    server.wait_tickets(2);
    let stderr = run_fails(&server.env, &["restore", path_arg(&file)]);
    assert!(stderr.contains("in use"), "{stderr}");
    // The running server's store is untouched.
    assert_eq!(server.tickets_json().len(), 2);
    assert!(!data_dir_has_aside(&server.env.data_dir));
}

#[test]
fn restore_keeps_the_store_it_replaces_aside() {
    let (mut source, file) = backup_of_a_server(2, "b.sqlite3");
    source.kill9();
    // A data directory with a store of its own (one other ticket).
    let mut target = TestServer::start();
    target.deliver(&[Mail::text(
        "erin@customer.example.org",
        "Only in the old store",
        "old-1@customer.example.org",
        "Hello.\n",
    )]);
    target.wait_tickets(1);
    target.signal(libc::SIGTERM);
    assert!(target.wait_exit(common::START_DEADLINE).success());

    let out = target.env.run_ok(&["restore", path_arg(&file)]);
    let aside = aside_files(&target.env.data_dir);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        out.contains(&aside[0].display().to_string()),
        "the output names where the old store went: {out}"
    );
    let subjects: Vec<String> = ticket_keys(&target.env.tickets_json())
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(subjects, ["Backed up 1", "Backed up 2"]);
    // The old store is whole where the output says: put back, it serves.
    let old = Env::new(&Options::default());
    std::fs::copy(&aside[0], old.data_dir.join("postdesk.sqlite3")).expect("copy aside");
    let old_wal = PathBuf::from(format!("{}-wal", aside[0].display()));
    if old_wal.exists() {
        std::fs::copy(&old_wal, old.data_dir.join("postdesk.sqlite3-wal")).expect("copy wal");
    }
    let old_subjects: Vec<String> = ticket_keys(&old.tickets_json())
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(old_subjects, ["Only in the old store"]);
}

#[test]
fn restore_refuses_a_file_that_is_not_a_postdesk_store() {
    let env = Env::new(&Options::default());
    env.run_ok(&["ingest", path_arg(&common::fixture_path("ingest/one.eml"))]);
    let before = env.tickets_json();
    assert_eq!(before.len(), 1);

    // Not SQLite at all.
    let text = env.dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "these are not the tickets you are looking for\n".repeat(200),
    )
    .expect("write");
    let stderr = run_fails(&env, &["restore", path_arg(&text)]);
    assert!(stderr.contains("is not a postdesk store"), "{stderr}");
    assert!(stderr.contains("not an SQLite database"), "{stderr}");

    // SQLite, but somebody else's.
    let other = env.dir.path().join("other.sqlite3");
    let conn = rusqlite::Connection::open(&other).expect("create other db");
    conn.execute_batch("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');")
        .expect("fill other db");
    drop(conn);
    let stderr = run_fails(&env, &["restore", path_arg(&other)]);
    assert!(stderr.contains("is not a postdesk store"), "{stderr}");

    // A file that does not exist.
    let missing = env.dir.path().join("missing.sqlite3");
    let stderr = run_fails(&env, &["restore", path_arg(&missing)]);
    assert!(stderr.contains("missing.sqlite3"), "{stderr}");

    // Each time, the data directory was left as it was.
    assert_eq!(ticket_keys(&env.tickets_json()), ticket_keys(&before));
    assert!(!data_dir_has_aside(&env.data_dir));
}

#[test]
fn restore_refuses_a_damaged_backup() {
    let (mut server, file) = backup_of_a_server(3, "b.sqlite3");
    // Stopped, not dropped: the backup lives in its temp dir.
    server.kill9();
    // Overwrite the second half of the file (tables' and indexes' pages)
    // with noise, leaving the header intact.
    let mut bytes = std::fs::read(&file).expect("backup");
    let half = bytes.len() / 2;
    let noise = common::noise(7, bytes.len() - half);
    bytes[half..].copy_from_slice(&noise);
    std::fs::write(&file, &bytes).expect("damage backup");

    let env = Env::new(&Options::default());
    let stderr = run_fails(&env, &["restore", path_arg(&file)]);
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert!(stderr.contains("b.sqlite3"), "{stderr}");
    assert!(
        !env.data_dir.join("postdesk.sqlite3").exists(),
        "nothing was installed"
    );
    assert!(!env.data_dir.join("postdesk.sqlite3.restoring").exists());
}

/// The stores a restore moved aside in `data_dir`.
fn aside_files(data_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data_dir)
        .expect("read data dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("postdesk.sqlite3.before-restore-") && !name.ends_with("-wal")
        })
        .collect()
}

fn data_dir_has_aside(data_dir: &Path) -> bool {
    !aside_files(data_dir).is_empty()
}

#[test]
fn restore_run_as_root_gives_the_store_to_the_data_directorys_owner() {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: nothing to give away, nothing to check");
        return;
    }
    let (mut server, file) = backup_of_a_server(1, "b.sqlite3");
    server.kill9();
    // The service's data directory belongs to its user (here `nobody`).
    let env = Env::new(&Options::default());
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .expect("id -u nobody");
    let uid: u32 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .expect("uid");
    std::os::unix::fs::chown(&env.data_dir, Some(uid), None).expect("chown data dir");
    env.run_ok(&["restore", path_arg(&file)]);
    for name in ["postdesk.sqlite3", "store.lock"] {
        let meta = std::fs::metadata(env.data_dir.join(name)).expect(name);
        assert_eq!(
            meta.uid(),
            uid,
            "{name} should belong to the data directory's owner"
        );
    }
}

#[test]
fn backups_taken_while_mail_arrives_are_whole_and_every_sender_gets_its_250() {
    const TOTAL: u32 = 160;
    let server = TestServer::start();
    server.deliver(&(1..=10).map(customer_mail).collect::<Vec<_>>());
    server.wait_tickets(10);
    let smtp = server.smtp;
    let sender = std::thread::spawn(move || {
        common::smtp_send(
            smtp,
            false,
            &(11..=TOTAL).map(customer_mail).collect::<Vec<_>>(),
        )
    });
    // Mail is arriving: the backups run beside the writer.
    common::eventually(common::DEADLINE, || {
        let n = server.tickets_json().len();
        if n >= 20 {
            Ok(())
        } else {
            Err(format!("{n} tickets"))
        }
    });
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| {
            let file = server.env.dir.path().join(format!("during-{i}.sqlite3"));
            server.env.run_ok(&["backup", path_arg(&file)]);
            file
        })
        .collect();
    let outcomes = sender.join().expect("sender thread");
    for o in &outcomes {
        assert!(
            o.accepted(),
            "a sender was refused during the backup: {o:?}"
        );
    }
    server.wait_tickets(TOTAL as usize);
    for file in &files {
        let env = Env::new(&Options::default());
        // restore runs PRAGMA integrity_check on the copy.
        env.run_ok(&["restore", path_arg(file)]);
        let tickets = env.tickets_json().len();
        let messages = env.messages_json().len();
        assert!((20..=TOTAL as usize).contains(&tickets), "{tickets}");
        // One commit's view: each message with its ticket, none without.
        assert_eq!(messages, tickets, "{}", file.display());
    }
}
