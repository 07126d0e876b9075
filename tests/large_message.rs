//! One large message, over real SMTP into the real server: its
//! attachment's bytes are stored once (in the raw message) and read back
//! by `postdesk attachment`; the agents' notification quotes a bounded
//! part of its text and says how large the whole is; and the server gives
//! the memory back once the message is stored.

mod common;

use std::time::Duration;

use common::sink::{Sink, outbound_rules};
use common::{DEADLINE, Mail, Options, TestServer, eventually, noise, str_field, text_mail};
use mail_send::mail_builder::MessageBuilder;
use sha2::{Digest, Sha256};

const ALICE: &str = "alice@customer.test";
const BOB: &str = "bob@agents.test";

/// A customer mail with a short text and one binary attachment.
fn mail_with_attachment(id: &str, name: &str, content: &[u8]) -> Vec<u8> {
    MessageBuilder::new()
        .from(("Alice Example", ALICE))
        .to("support@example.com")
        .subject("Logs attached")
        .message_id(id)
        .text_body("The logs you asked for are attached.\n")
        .attachment("application/octet-stream", name, content.to_vec())
        .write_to_vec()
        .expect("build mail")
}

/// A text mail whose body is `lines` lines of prose.
fn long_text_mail(id: &str, lines: usize) -> Vec<u8> {
    let mut body = String::with_capacity(lines * 72);
    for i in 0..lines {
        body.push_str(&format!(
            "Line {i:07}: the printer shows error E-17 again after the update.\n"
        ));
    }
    text_mail(
        &format!("Alice Example <{ALICE}>"),
        "support@example.com",
        "A very long error log",
        id,
        &[],
        &body,
    )
}

/// `VmRSS` or `VmHWM` of `pid`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn attachment_is_stored_once_and_read_back_from_the_raw_message() {
    let server = TestServer::start();
    let content = noise(42, 3 * 1024 * 1024);
    server.deliver(&[Mail::new(
        ALICE,
        &["support@example.com"],
        mail_with_attachment("logs-1@customer.test", "logs.bin", &content),
    )]);
    let tickets = server.wait_tickets(1);
    let shown = server.show_json(&tickets[0]["id"].to_string());
    let message = &shown["messages"][0];
    let attachments = message["attachments"]
        .as_array()
        .expect("attachments listed");
    assert_eq!(attachments.len(), 1, "{message}");
    assert_eq!(str_field(&attachments[0], "name"), "logs.bin");
    assert_eq!(attachments[0]["size"].as_u64(), Some(content.len() as u64));
    assert_eq!(
        str_field(&attachments[0], "sha256"),
        hex::encode(Sha256::digest(&content))
    );

    // The bytes come back whole, decoded from the stored raw message.
    let id = message["id"].as_i64().expect("message row id").to_string();
    let out_file = server.env.dir.path().join("logs.out");
    server.env.run_ok(&[
        "attachment",
        &id,
        "1",
        "--output",
        out_file.to_str().expect("UTF-8 path"),
    ]);
    assert!(
        std::fs::read(&out_file).expect("written") == content,
        "the attachment read back differs from the one sent"
    );
    let missing = server.env.run(&["attachment", &id, "2"]);
    assert_eq!(missing.status.code(), Some(1));

    // One copy: the raw message holds the attachment, its row holds none.
    let db = rusqlite::Connection::open_with_flags(
        server.env.data_dir.join("postdesk.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the store read-only");
    let (rows, stored): (i64, i64) = db
        .query_row(
            "SELECT count(*), coalesce(sum(length(content)), 0) FROM attachments",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("query attachments");
    assert_eq!(rows, 1);
    assert_eq!(stored, 0, "attachment bytes stored beside the raw message");
}

#[test]
fn notification_of_a_long_message_quotes_a_bounded_part_and_its_size() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        "[agents]\nbob = \"bob@agents.test\"\n[teams]\nsupport = [\"bob\"]\n",
    ));
    // About 1.5 MB of text.
    server.deliver(&[Mail::new(
        ALICE,
        &["support@example.com"],
        long_text_mail("long-1@customer.test", 22_000),
    )]);
    let notification = eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.subject().contains("A very long error log"))
            .ok_or_else(|| "no notification to Bob yet".to_string())
    });
    assert!(
        notification.raw.len() < 128 * 1024,
        "the notification carries {} octets",
        notification.raw.len()
    );
    let text = &notification.parsed.text;
    assert!(
        text.contains("Line 0000000: the printer"),
        "{}",
        &text[..200]
    );
    assert!(!text.contains("Line 0021999"), "the whole text was quoted");

    // The note gives the full size of the text that is stored whole.
    let tickets = server.wait_tickets(1);
    let shown = server.show_json(&tickets[0]["id"].to_string());
    let stored = str_field(&shown["messages"][0], "text");
    assert!(stored.contains("Line 0021999"), "the stored text is whole");
    let note = text
        .find("[Message text truncated:")
        .map(|i| &text[i..text.len().min(i + 200)])
        .unwrap_or_else(|| panic!("no truncation note in the notification"));
    // The size of the customer's new text: the stored text less the
    // trailing line ends the quote stripper trims.
    let full: usize = note
        .split(" of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no full size in the note: {note}"));
    assert!(
        (stored.trim_end().len()..=stored.len()).contains(&full),
        "the note gives {full} bytes, the stored text has {}: {note}",
        stored.len()
    );
}

#[test]
fn server_returns_memory_after_a_large_message() {
    // With an agent to notify, as in production: the notification is
    // rendered, composed and queued in the same batch.
    let server = TestServer::start_with(Options {
        max_message_size: Some(32 * 1024 * 1024),
        extra_toml: "[agents]\nbob = \"bob@agents.test\"\n".into(),
        ..Options::default()
    });
    let pid = server.pid();
    let idle = status_kib(pid, "VmRSS");
    // About 20 MB of text in one message.
    server.deliver(&[Mail::new(
        ALICE,
        &["support@example.com"],
        long_text_mail("huge-1@customer.test", 290_000),
    )]);
    server.wait_messages(1);
    let peak = status_kib(pid, "VmHWM");
    // Held for good would be the peak; given back, the RSS falls to the
    // idle size plus SQLite's page cache (at most 64 MiB) and change.
    let after = eventually(Duration::from_secs(20), || {
        let rss = status_kib(pid, "VmRSS");
        if rss < idle + 120 * 1024 {
            Ok(rss)
        } else {
            Err(format!(
                "RSS {rss} KiB after the message (idle {idle} KiB, peak {peak} KiB)"
            ))
        }
    });
    assert!(
        peak < idle + 300 * 1024,
        "peak RSS {peak} KiB for one 20 MB message (idle {idle} KiB, after {after} KiB)"
    );
}
