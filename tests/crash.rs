//! Nothing accepted is lost, and a retry after a crash makes no duplicate.
//!
//! Eight smtplib clients send 400 messages with unique Message-IDs; the
//! server is killed with SIGKILL once about a third of them got their 250,
//! restarted on the same data dir, and the clients resend every message that
//! was not acknowledged plus some that were (as a sender that lost the 250
//! would). Afterwards every acknowledged Message-ID is stored exactly once,
//! everything resent is stored, and there is one ticket per message.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{DEADLINE, Mail, TestServer, bare_id, eventually, smtp_send_streaming, text_mail};
use serde_json::Value;

const MESSAGES: usize = 400;
const CLIENTS: usize = 8;

fn crash_id(i: usize) -> String {
    format!("crash-{i}@clients.example.org")
}

fn crash_mail(i: usize) -> Mail {
    let from = format!("customer{i}@clients.example.org");
    // Unique sender and subject per message: no threading rule may join two.
    let body = format!(
        "Message number {i} of the crash test.\n{}",
        "Some ordinary text so the message has a realistic size.\n".repeat(16)
    );
    Mail::new(
        &from,
        &["support@example.com"],
        text_mail(
            &from,
            "support@example.com",
            &format!("Crash test message {i}"),
            &crash_id(i),
            &[],
            &body,
        ),
    )
}

/// Send `indices` from `CLIENTS` concurrent smtplib processes; return the set
/// of indices that got a 250 end-of-data reply. Each 250 is also sent on
/// `acks` the moment the client reads it, so the test can react at once.
fn send_concurrently(
    addr: SocketAddr,
    indices: &[usize],
    acks: &mpsc::Sender<usize>,
) -> BTreeSet<usize> {
    let mut handles = Vec::new();
    for c in 0..CLIENTS {
        let mine: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|i| i % CLIENTS == c)
            .collect();
        let acks = acks.clone();
        handles.push(std::thread::spawn(move || {
            let mails: Vec<Mail> = mine.iter().map(|&i| crash_mail(i)).collect();
            let outcomes = smtp_send_streaming(addr, false, &mails, |o| {
                if o.accepted() {
                    // The receiver may be gone once it has seen enough.
                    let _ = acks.send(mine[o.index]);
                }
            });
            outcomes
                .iter()
                .filter(|o| o.accepted())
                .map(|o| mine[o.index])
                .collect::<Vec<_>>()
        }));
    }
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect()
}

/// Message-ID -> how many stored messages carry it.
fn stored_counts(messages: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for m in messages {
        let id = bare_id(m["message_id"].as_str().unwrap_or_default()).to_owned();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

#[test]
fn kill9_mid_stream_loses_no_acknowledged_mail_and_retries_make_no_duplicates() {
    let mut server = TestServer::start();
    let all: Vec<usize> = (0..MESSAGES).collect();

    // Phase 1: send everything; SIGKILL the server once a third is acked.
    // The acks arrive on a channel, so the kill follows the threshold within
    // microseconds instead of a polling interval.
    let (acks_tx, acks_rx) = mpsc::channel();
    let sender = {
        let all = all.clone();
        // The clients get only the address: this thread keeps the server
        // handle, to kill it while they send.
        let addr = server.smtp;
        std::thread::spawn(move || send_concurrently(addr, &all, &acks_tx))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0usize;
    while seen < MESSAGES / 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match acks_rx.recv_timeout(left) {
            Ok(_) => seen += 1,
            Err(e) => panic!(
                "only {seen} of {MESSAGES} acked ({e:?})\n{}",
                server.stderr()
            ),
        }
    }
    server.kill9();
    let acked_first = sender.join().expect("sender thread");
    assert!(
        acked_first.len() >= MESSAGES / 3,
        "{} acked before the kill",
        acked_first.len()
    );
    assert!(
        acked_first.len() < MESSAGES,
        "all {MESSAGES} messages were acked before the kill landed; the test \
         exercised no crash (make MESSAGES larger)"
    );

    eprintln!(
        "{} of {MESSAGES} acknowledged before the SIGKILL",
        acked_first.len()
    );

    // Phase 2: restart on the same data dir and check the promise first:
    // every 250 given before the crash is on disk.
    server.restart();
    let counts = stored_counts(&server.messages_json());
    for i in &acked_first {
        assert_eq!(
            counts.get(&crash_id(*i)).copied(),
            Some(1),
            "message {i} got 250 before the kill but is stored {:?} times\n{}",
            counts.get(&crash_id(*i)),
            server.stderr()
        );
    }

    let unacked_stored = (0..MESSAGES)
        .filter(|i| !acked_first.contains(i) && counts.contains_key(&crash_id(*i)))
        .count();
    eprintln!(
        "{unacked_stored} stored without their 250 reaching the client (retries must dedupe)"
    );

    // Phase 3: resend what was not acknowledged, plus every fifth message
    // that was (its sender may have lost the 250): all must now get 250.
    let resend: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !acked_first.contains(i) || i % 5 == 0)
        .collect();
    eprintln!(
        "resending {} ({} already acknowledged)",
        resend.len(),
        resend.iter().filter(|i| acked_first.contains(i)).count()
    );
    let (acks_tx, _acks_rx) = mpsc::channel();
    let acked_second = send_concurrently(server.smtp, &resend, &acks_tx);
    let missing: Vec<usize> = resend
        .iter()
        .copied()
        .filter(|i| !acked_second.contains(i))
        .collect();
    assert!(
        missing.is_empty(),
        "resent but not acked: {missing:?}\n{}",
        server.stderr()
    );

    // Every message is stored exactly once, and each has its own ticket.
    let messages = eventually(DEADLINE, || {
        let m = server.messages_json();
        if m.len() >= MESSAGES {
            Ok(m)
        } else {
            Err(format!("{} of {MESSAGES} messages stored", m.len()))
        }
    });
    let counts = stored_counts(&messages);
    let wrong: Vec<(String, usize)> = (0..MESSAGES)
        .map(|i| (crash_id(i), counts.get(&crash_id(i)).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 1)
        .collect();
    assert!(wrong.is_empty(), "stored not exactly once: {wrong:?}");
    assert_eq!(messages.len(), MESSAGES, "extra messages stored");
    let ticket_ids: BTreeSet<i64> = messages
        .iter()
        .map(|m| {
            m["ticket_id"]
                .as_i64()
                .unwrap_or_else(|| panic!("not ticketed: {m}"))
        })
        .collect();
    assert_eq!(ticket_ids.len(), MESSAGES, "two messages share a ticket");
    let tickets = server.tickets_json();
    assert_eq!(tickets.len(), MESSAGES, "duplicate or missing tickets");
}

#[test]
fn sigterm_drains_exits_cleanly_and_keeps_what_was_accepted() {
    let mut server = TestServer::start();
    server.deliver(&[crash_mail(1), crash_mail(2)]);
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        server.stderr()
    );
    server.restart();
    let counts = stored_counts(&server.messages_json());
    assert_eq!(counts.get(&crash_id(1)), Some(&1));
    assert_eq!(counts.get(&crash_id(2)), Some(&1));
    server.deliver(&[crash_mail(3)]);
    server.wait_tickets(3);
}
