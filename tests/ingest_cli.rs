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

// ---------------------------------------------------------------------------
// Size limits and streams
// ---------------------------------------------------------------------------

/// The limit the size tests configure: small, so an oversize input is quick
/// to write and a runaway reader is caught long before it hurts the machine.
const SMALL_LIMIT: usize = 256 * 1024;

/// Peak resident memory a correct `ingest` stays under with [`SMALL_LIMIT`]
/// (the binary alone runs at about 20 MiB).
const PEAK_RSS_KIB: i64 = 96 * 1024;

fn small_limit_env() -> Env {
    Env::new(&Options {
        max_message_size: Some(SMALL_LIMIT),
        ..Options::default()
    })
}

/// The result of a bounded run: exit code, stderr, peak RSS in KiB.
struct Bounded {
    code: Option<i32>,
    stderr: String,
    peak_kib: i64,
}

/// Run `cmd`, killing it (and failing) if its resident memory passes
/// [`PEAK_RSS_KIB`] or it runs past `deadline`; the peak comes from the
/// kernel's accounting of the exited child (`wait4`'s `ru_maxrss`).
#[allow(clippy::zombie_processes)] // reaped by wait4, which std cannot see
fn run_bounded(mut cmd: std::process::Command, deadline: std::time::Duration) -> Bounded {
    use std::io::Read as _;
    use std::os::unix::process::ExitStatusExt as _;
    cmd.stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn postdesk");
    let mut err = child.stderr.take().expect("stderr piped");
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let start = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own child, the pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            let status = std::process::ExitStatus::from_raw(status);
            return Bounded {
                code: status.code(),
                stderr: err_t.join().expect("stderr reader"),
                peak_kib: usage.ru_maxrss,
            };
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        let rss = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
            .unwrap_or(0);
        if rss > PEAK_RSS_KIB || start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ingest still running after {:?} with a peak RSS of {rss} KiB (limit {PEAK_RSS_KIB} KiB)",
                start.elapsed()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn dev_zero_exits_65_with_bounded_memory() {
    let env = small_limit_env();
    let out = run_bounded(
        env.command(&["ingest", "/dev/zero"]),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(65), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains("max_message_size"),
        "the error names the limit: {}",
        out.stderr
    );
    assert!(
        out.peak_kib < PEAK_RSS_KIB,
        "peak RSS {} KiB reading an endless input",
        out.peak_kib
    );
    assert!(env.messages_json().is_empty());
}

#[test]
fn endless_pipe_on_stdin_exits_65_with_bounded_memory() {
    let env = small_limit_env();
    let mut cmd = env.command(&["ingest", "-"]);
    cmd.stdin(std::process::Stdio::piped());
    // The writer is a thread of ours that never stops on its own: only the
    // reader going away (EPIPE) ends it.
    let mut child = cmd.spawn().expect("spawn postdesk");
    let mut stdin = child.stdin.take().expect("stdin piped");
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let mut chunk = b"Subject: endless\r\n\r\n".to_vec();
        chunk.extend(std::iter::repeat_n(b'y', 64 * 1024));
        let mut written = 0usize;
        while stdin.write_all(&chunk).is_ok() {
            written += chunk.len();
            if written > 1 << 30 {
                break;
            }
        }
        written
    });
    let status = common_wait(&mut child, std::time::Duration::from_secs(30));
    let written = writer.join().expect("writer");
    let mut stderr = String::new();
    use std::io::Read as _;
    let _ = child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(65), "stderr:\n{stderr}");
    assert!(
        written < 64 * SMALL_LIMIT,
        "ingest read {written} octets of an endless pipe with a {SMALL_LIMIT} limit"
    );
    assert!(env.messages_json().is_empty());
}

fn common_wait(
    child: &mut std::process::Child,
    deadline: std::time::Duration,
) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ingest did not finish within {deadline:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A message of about `size` octets with Message-ID `id`.
fn sized_mail(id: &str, size: usize) -> Vec<u8> {
    let line = "All work and no play makes a long message for the size limit.\n";
    let body = line.repeat(size / line.len() + 1);
    String::from_utf8(text_mail(
        "sizes@customer.example.org",
        "support@example.com",
        &format!("Sized message {id}"),
        id,
        &[],
        &body,
    ))
    .expect("ASCII")
    .replace("\r\n", "\n")
    .into_bytes()
}

#[test]
fn oversize_eml_exits_65_and_stores_nothing() {
    let env = small_limit_env();
    let path = env.dir.path().join("big.eml");
    fs::write(
        &path,
        sized_mail("big-1@customer.example.org", SMALL_LIMIT + 1000),
    )
    .expect("write");
    let out = env.run(&["ingest", path.to_str().expect("UTF-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "stderr:\n{stderr}");
    assert!(
        stderr.contains("larger than max_message_size")
            && stderr.contains("big-1@customer.example.org"),
        "a clear error naming the limit and the message: {stderr}"
    );
    assert!(env.messages_json().is_empty());
    assert!(env.tickets_json().is_empty());
}

#[test]
fn eml_at_the_limit_is_stored() {
    let env = small_limit_env();
    let mut mail = sized_mail("exact-1@customer.example.org", SMALL_LIMIT);
    mail.truncate(SMALL_LIMIT);
    let path = env.dir.path().join("exact.eml");
    fs::write(&path, &mail).expect("write");
    ingest(&env, &path, 0);
    assert_eq!(
        message_ids(&env.messages_json()),
        vec!["exact-1@customer.example.org"]
    );
}

#[test]
fn mbox_with_an_oversize_message_stores_the_others_and_names_it() {
    let env = small_limit_env();
    let mut mbox = Vec::new();
    for (id, size) in [
        ("small-1@customer.example.org", 2_000),
        ("huge-2@customer.example.org", SMALL_LIMIT * 3),
        ("small-3@customer.example.org", 2_000),
    ] {
        mbox.extend_from_slice(b"From sizes@customer.example.org Mon Mar  2 10:00:00 2026\n");
        mbox.extend_from_slice(&sized_mail(id, size));
        mbox.extend_from_slice(b"\n");
    }
    let path = env.dir.path().join("mixed.mbox");
    fs::write(&path, &mbox).expect("write");
    let out = env.run(&["ingest", path.to_str().expect("UTF-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "stderr:\n{stderr}");
    assert!(
        stderr.contains("message 2") && stderr.contains("huge-2@customer.example.org"),
        "the refused message is named: {stderr}"
    );
    assert!(
        !stderr.contains("small-1") && !stderr.contains("small-3"),
        "only the refused one is named: {stderr}"
    );
    assert_eq!(
        message_ids(&env.messages_json()),
        vec![
            "small-1@customer.example.org",
            "small-3@customer.example.org"
        ]
    );
}

#[test]
fn maildir_with_an_oversize_file_stores_the_others_and_names_it() {
    let env = small_limit_env();
    let md = make_maildir(env.dir.path());
    let big = md.join("new/1772445609.M9P100.mx.example.org");
    fs::write(
        &big,
        sized_mail("huge-9@customer.example.org", SMALL_LIMIT * 2),
    )
    .expect("write");
    let out = env.run(&["ingest", md.to_str().expect("UTF-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "stderr:\n{stderr}");
    assert!(
        stderr.contains("1772445609.M9P100") && stderr.contains("huge-9@customer.example.org"),
        "{stderr}"
    );
    assert_eq!(message_ids(&env.messages_json()).len(), 3);
}

#[test]
fn fifo_written_by_another_process_is_ingested() {
    let env = Env::new(&Options::default());
    let fifo = env.dir.path().join("incoming.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
    // Another process writes the whole message into the FIFO and closes
    // it: a reader that opened it twice would wait forever for a second
    // writer, or see the message without its first octets.
    let writer = std::process::Command::new("sh")
        .arg("-c")
        .arg("cat \"$1\" > \"$2\"")
        .arg("sh")
        .arg(fixture_path("ingest/one.eml"))
        .arg(&fifo)
        .spawn()
        .expect("spawn writer");
    let mut cmd = env.command(&["ingest", fifo.to_str().expect("UTF-8")]);
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn postdesk");
    let status = common_wait(&mut child, std::time::Duration::from_secs(20));
    let mut writer = writer;
    let _ = writer.wait();
    let mut stderr = String::new();
    use std::io::Read as _;
    let _ = child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    let messages = env.messages_json();
    assert_eq!(
        message_ids(&messages),
        vec!["ingest-one-1@customer.example.org"]
    );
    assert_eq!(
        messages[0]["size"].as_u64(),
        Some(fixture("ingest/one.eml").len() as u64),
        "the message arrived whole: {:?}",
        messages[0]
    );
}

#[test]
fn mbox_on_stdin_is_ingested() {
    // An MTA pipe that prepends the envelope `From ` line (Postfix's `F`
    // flag) hands over a one-message mbox; a whole mbox works the same.
    let env = Env::new(&Options::default());
    let out = env.run_with_stdin(&["ingest", "-"], &fixture("ingest/three.mbox"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(message_ids(&env.messages_json()).len(), 3);
}
