//! `postdesk ingest` takes one .eml, an mbox, a Maildir or stdin into the
//! same accept path as SMTP: exit 0 once stored, 65 for input that is not
//! mail, and a second ingest of the same file stores nothing new.

mod common;

use std::fs;
use std::path::Path;

use common::{
    Env, Options, TestServer, bare_id, find_message, fixture, fixture_path, str_field, text_mail,
};
use serde_json::Value;

/// Run `ingest PATH` and return the output, asserting the exit code.
fn ingest(env: &Env, path: &Path, expect_code: i32) -> String {
    let arg = path.to_str().expect("UTF-8 path");
    let out = env.run(&["ingest", arg]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(expect_code),
        "ingest {arg}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn assert_one_line_summary(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "ingest prints a one-line summary, got:\n{stdout}"
    );
}

fn message_ids(messages: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .iter()
        .map(|m| bare_id(str_field(m, "message_id")).to_owned())
        .collect();
    ids.sort();
    ids
}

/// A message with LF line ends, as files on disk usually have.
fn lf_mail(n: u32) -> Vec<u8> {
    let crlf = text_mail(
        &format!("maildir{n}@customer.example.org"),
        "support@example.com",
        &format!("Maildir message {n}"),
        &format!("maildir-{n}@customer.example.org"),
        &[],
        &format!("Body of Maildir message {n}.\n"),
    );
    String::from_utf8(crlf)
        .expect("ASCII")
        .replace("\r\n", "\n")
        .into_bytes()
}

/// A Maildir with two messages in new/, one in cur/ and one still in tmp/
/// (a delivery in progress, which readers must ignore).
fn make_maildir(root: &Path) -> std::path::PathBuf {
    let md = root.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(md.join(sub)).expect("mkdir");
    }
    fs::write(md.join("new/1772445600.M1P100.mx.example.org"), lf_mail(1)).expect("write");
    fs::write(md.join("new/1772445601.M2P100.mx.example.org"), lf_mail(2)).expect("write");
    fs::write(
        md.join("cur/1772445602.M3P100.mx.example.org:2,S"),
        lf_mail(3),
    )
    .expect("write");
    fs::write(md.join("tmp/1772445603.M4P100.mx.example.org"), lf_mail(4)).expect("write");
    md
}

#[test]
fn one_eml_exits_0_and_opens_a_ticket() {
    let env = Env::new(&Options::default());
    let stdout = ingest(&env, &fixture_path("ingest/one.eml"), 0);
    assert_one_line_summary(&stdout);
    let tickets = env.tickets_json();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(
        str_field(&tickets[0], "subject"),
        "Password reset link expired"
    );
    assert!(
        tickets[0]["requester"]
            .to_string()
            .contains("ingrid@customer.example.org")
    );
    let messages = env.messages_json();
    assert_eq!(
        message_ids(&messages),
        vec!["ingest-one-1@customer.example.org"]
    );
}

#[test]
fn mbox_with_three_messages_stores_three() {
    let env = Env::new(&Options::default());
    let stdout = ingest(&env, &fixture_path("ingest/three.mbox"), 0);
    assert_one_line_summary(&stdout);
    let messages = env.messages_json();
    assert_eq!(
        message_ids(&messages),
        vec![
            "mbox-1@customer.example.org",
            "mbox-2@customer.example.org",
            "mbox-3@customer.example.org"
        ]
    );
    let tickets = env.tickets_json();
    let mut subjects: Vec<&str> = tickets.iter().map(|t| str_field(t, "subject")).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        vec![
            "First message in the mbox",
            "Second message in the mbox",
            "Third message in the mbox"
        ]
    );
}

#[test]
fn mbox_from_line_escaping_is_undone() {
    let env = Env::new(&Options::default());
    ingest(&env, &fixture_path("ingest/three.mbox"), 0);
    let messages = env.messages_json();
    let m = find_message(&messages, "mbox-1@customer.example.org").expect("stored");
    let shown = env.show_json(&m["ticket_id"].as_i64().expect("ticketed").to_string());
    let text = str_field(&shown["messages"][0], "text");
    assert!(
        text.lines()
            .any(|l| l.starts_with("From here on the line was escaped")),
        "\">From \" in an mbox body is \"From \" in the message: {text:?}"
    );
    assert!(
        !text.contains("12:10:00 2026"),
        "the separator line leaked into the body: {text:?}"
    );
}

#[test]
fn maildir_stores_every_delivered_message() {
    let env = Env::new(&Options::default());
    let md = make_maildir(env.dir.path());
    let stdout = ingest(&env, &md, 0);
    assert_one_line_summary(&stdout);
    let ids = message_ids(&env.messages_json());
    for n in 1..=3 {
        let id = format!("maildir-{n}@customer.example.org");
        assert!(
            ids.contains(&id),
            "{id} (in new/ or cur/) not stored: {ids:?}"
        );
    }
    assert_eq!(env.tickets_json().len(), 3);
}

#[test]
fn maildir_tmp_is_not_ingested() {
    let env = Env::new(&Options::default());
    let md = make_maildir(env.dir.path());
    ingest(&env, &md, 0);
    let ids = message_ids(&env.messages_json());
    assert!(
        !ids.contains(&"maildir-4@customer.example.org".to_owned()),
        "tmp/ holds deliveries in progress and must be ignored: {ids:?}"
    );
    assert_eq!(ids.len(), 3, "{ids:?}");
}

#[test]
fn stdin_via_dash_is_ingested() {
    let env = Env::new(&Options::default());
    let out = env.run_with_stdin(&["ingest", "-"], &fixture("ingest/one.eml"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_one_line_summary(&String::from_utf8_lossy(&out.stdout));
    let tickets = env.tickets_json();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(
        str_field(&tickets[0], "subject"),
        "Password reset link expired"
    );
}

#[test]
fn empty_file_exits_65_and_stores_nothing() {
    let env = Env::new(&Options::default());
    let empty = env.dir.path().join("empty.eml");
    fs::write(&empty, b"").expect("write");
    ingest(&env, &empty, 65);
    assert!(env.messages_json().is_empty());
    assert!(env.tickets_json().is_empty());
}

#[test]
fn empty_stdin_exits_65() {
    let env = Env::new(&Options::default());
    let out = env.run_with_stdin(&["ingest", "-"], b"");
    assert_eq!(
        out.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.messages_json().is_empty());
}

#[test]
fn directory_that_is_not_a_maildir_exits_65() {
    let env = Env::new(&Options::default());
    let dir = env.dir.path().join("just-a-folder");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("notes.txt"), b"not mail\n").expect("write");
    ingest(&env, &dir, 65);
    assert!(env.messages_json().is_empty());
}

#[test]
fn ingesting_the_same_file_again_stores_nothing_new() {
    let env = Env::new(&Options::default());
    ingest(&env, &fixture_path("ingest/one.eml"), 0);
    ingest(&env, &fixture_path("ingest/three.mbox"), 0);
    let before = env.messages_json().len();
    assert_eq!(before, 4);
    ingest(&env, &fixture_path("ingest/one.eml"), 0);
    ingest(&env, &fixture_path("ingest/three.mbox"), 0);
    assert_eq!(
        env.messages_json().len(),
        before,
        "re-ingest stored duplicates"
    );
    let tickets = env.tickets_json();
    assert_eq!(tickets.len(), 4, "re-ingest opened tickets: {tickets:?}");
    assert!(
        tickets
            .iter()
            .all(|t| t["message_count"].as_i64() == Some(1)),
        "{tickets:?}"
    );
}

#[test]
fn ingest_while_the_server_runs_shares_its_store() {
    let server = TestServer::start();
    server.deliver(&[common::Mail::text(
        "smtp@customer.example.org",
        "Arrived over SMTP",
        "smtp-1@customer.example.org",
        "Hello.\n",
    )]);
    // An MTA piping into `postdesk ingest -` next to the running server.
    let out = server
        .env
        .run_with_stdin(&["ingest", "-"], &fixture("ingest/one.eml"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.deliver(&[common::Mail::text(
        "smtp@customer.example.org",
        "Arrived over SMTP again",
        "smtp-2@customer.example.org",
        "Hello again.\n",
    )]);
    let ids = message_ids(&server.wait_messages(3));
    assert_eq!(
        ids,
        vec![
            "ingest-one-1@customer.example.org",
            "smtp-1@customer.example.org",
            "smtp-2@customer.example.org"
        ]
    );
    server.wait_tickets(3);
}
