//! What agents and customers see, over real SMTP with aiosmtpd receiving
//! postdesk's mail: the customer's attachments reach the agent (or are
//! listed, with the command that saves them), a relayed reply carries one
//! signature, the agent's notifications thread under mail the agent has,
//! Message-IDs name a domain of ours, and a malformed address gets no mail.

mod common;

use common::sink::{Received, Sink, outbound_rules};
use common::{DEADLINE, Mail, TestServer, eventually, text_mail};

const ALICE: &str = "alice@customer.test";
const BOB: &str = "bob@agents.test";
const SUPPORT: &str = "support@example.com";
const AGENTS: &str = "[agents]\nbob = \"bob@agents.test\"\n";

fn rules(sink: &Sink, outbound_extra: &str) -> String {
    outbound_rules("example.com", sink.port, AGENTS)
        .replace("[outbound]\n", &format!("[outbound]\n{outbound_extra}"))
}

fn customer(subject: &str, id: &str, extra: &[(&str, &str)], body: &str) -> Mail {
    Mail::new(
        ALICE,
        &[SUPPORT],
        text_mail(ALICE, SUPPORT, subject, id, extra, body),
    )
}

/// Alice's mail with one attachment of `size` bytes named `name`.
fn with_attachment(id: &str, name: &str, size: usize) -> Mail {
    let content: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let raw = format!(
        "From: {ALICE}\r\nTo: {SUPPORT}\r\nSubject: Scan {name} attached\r\nMessage-ID: <{id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n\
         --XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attachment.\r\n\
         --XX\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n--XX--\r\n",
        String::from_utf8(content).expect("ascii")
    );
    Mail::new(ALICE, &[SUPPORT], raw.into_bytes())
}

fn wait_notifications(sink: &Sink, n: usize) -> Vec<Received> {
    sink.wait_to_where(BOB, n, |m| {
        m.header("Auto-Submitted") == Some("auto-generated")
    })
}

fn bob_replies(note: &Received, id: &str, text: &str) -> Mail {
    let to = note.parsed.reply_to[0].address.clone();
    Mail::new(
        BOB,
        &[&to],
        text_mail(
            BOB,
            &to,
            &format!("Re: {}", note.subject()),
            id,
            &[("In-Reply-To", &format!("<{}>", note.message_id()))],
            &format!("{text}\n\n> quoted notification\n"),
        ),
    )
}

fn relays(sink: &Sink, n: usize) -> Vec<Received> {
    sink.wait_to_where(ALICE, n, |m| m.header("Auto-Submitted").is_none())
}

#[test]
fn notifications_carry_the_customers_attachments_or_list_them_past_the_limit() {
    let sink = Sink::start();
    let server =
        TestServer::start_with_rules(&rules(&sink, "notify_attachments_max_bytes = 1000\n"));
    server.deliver(&[with_attachment("s1@customer.test", "small.txt", 300)]);
    let note = wait_notifications(&sink, 1).remove(0);
    assert_eq!(note.parsed.attachments.len(), 1, "{:?}", note.parsed);
    assert_eq!(
        note.parsed.attachments[0].name.as_deref(),
        Some("small.txt")
    );
    assert_eq!(note.parsed.attachments[0].size, 300);
    assert_eq!(
        postdesk::parse::attachments(&note.raw)[0].content.len(),
        300
    );

    server.deliver(&[with_attachment("s2@customer.test", "big.bin", 5000)]);
    let note = wait_notifications(&sink, 2)
        .into_iter()
        .find(|n| n.subject().contains("#1002"))
        .expect("notification of #1002");
    assert!(note.parsed.attachments.is_empty());
    let text = &note.parsed.text;
    assert!(
        text.contains("big.bin (application/octet-stream, 5000 bytes)"),
        "{text}"
    );
    assert!(
        text.contains("postdesk show 1002 --attachment NAME -o FILE"),
        "{text}"
    );
    // The command the notification names saves the bytes.
    let out = server.env.dir.path().join("big.bin");
    server.env.run_ok(&[
        "show",
        "1002",
        "--attachment",
        "big.bin",
        "-o",
        out.to_str().expect("utf-8 path"),
    ]);
    let saved = std::fs::read(&out).expect("saved attachment");
    assert_eq!(saved.len(), 5000);
    assert!(saved.starts_with(b"abcdef"));
    let missing = server
        .env
        .run(&["show", "1002", "--attachment", "nope.bin"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn a_relayed_reply_carries_one_signature() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&rules(&sink, ""));
    server.deliver(&[customer("Question", "q1@customer.test", &[], "Hi?\n")]);
    let note = wait_notifications(&sink, 1).remove(0);
    server.deliver(&[bob_replies(
        &note,
        "b1@agents.test",
        "Here is the answer.\n\n-- \nBob Smith\nAcme Support, +1 555 0100",
    )]);
    let relay = relays(&sink, 1).remove(0);
    let text = &relay.parsed.text;
    assert!(text.contains("Bob Smith"), "{text}");
    assert!(
        !text.contains("Support team"),
        "template signature left out: {text}"
    );
    assert_eq!(
        text.matches("\n-- ").count() + usize::from(text.starts_with("-- ")),
        1,
        "{text}"
    );

    server.deliver(&[bob_replies(&note, "b2@agents.test", "Unsigned answer.")]);
    let relay = relays(&sink, 2)
        .into_iter()
        .find(|m| m.parsed.text.contains("Unsigned answer"))
        .expect("second relay");
    assert!(
        relay.parsed.text.contains("Bob, Support team"),
        "{}",
        relay.parsed.text
    );
}

#[test]
fn notifications_thread_under_mail_the_agent_has() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&rules(&sink, ""));
    server.deliver(&[customer("Thread me", "t1@customer.test", &[], "First.\n")]);
    let first = wait_notifications(&sink, 1).remove(0);
    // The first notification is the root of the agent's thread: the
    // customer's message, which the agent never got, is not referenced.
    assert!(
        first.parsed.in_reply_to.is_empty(),
        "{:?}",
        first.parsed.in_reply_to
    );
    assert!(
        !first
            .parsed
            .references
            .iter()
            .any(|r| r == "t1@customer.test")
    );
    server.deliver(&[bob_replies(&first, "b1@agents.test", "An answer.")]);
    let relay = relays(&sink, 1).remove(0);
    server.deliver(&[customer(
        "Re: Thread me",
        "t2@customer.test",
        &[("In-Reply-To", &format!("<{}>", relay.message_id()))],
        "Second.\n",
    )]);
    let second = wait_notifications(&sink, 2)
        .into_iter()
        .find(|n| n.parsed.text.contains("Second."))
        .expect("second notification");
    assert_eq!(second.parsed.in_reply_to, ["b1@agents.test"]);
    assert_eq!(
        second.parsed.references,
        [first.message_id().to_owned(), "b1@agents.test".to_owned()]
    );
}

#[test]
fn message_ids_and_x_loop_name_the_first_served_domain_by_default() {
    let sink = Sink::start();
    let rules = rules(&sink, "").replace("hostname = \"desk.example.com\"\n", "");
    assert!(!rules.contains("hostname"), "{rules}");
    let server = TestServer::start_with_rules(&rules);
    server.deliver(&[customer("Ids", "i1@customer.test", &[], "Hello.\n")]);
    let ack = eventually(DEADLINE, || {
        sink.to(ALICE)
            .into_iter()
            .next()
            .ok_or_else(|| "no acknowledgement".to_owned())
    });
    assert!(
        ack.message_id().ends_with("@example.com"),
        "{}",
        ack.message_id()
    );
    assert_eq!(ack.header("X-Loop"), Some("postdesk@example.com"));

    // `check` warns about localhost with a smarthost.
    let localhost = rules.replace("[server]\n", "[server]\nhostname = \"localhost\"\n");
    server.env.write_config("rules.toml", &localhost);
    let out = server.env.run(&["check"]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("hostname is \"localhost\" and a smarthost is set"),
        "{said}"
    );
}

#[test]
fn an_address_that_is_not_rfc_5322_gets_no_mail() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&rules(&sink, ""));
    server.deliver(&[Mail::new(
        "p1@cust.test",
        &[SUPPORT],
        text_mail(
            "P1i <\"a>,evil6@evil.test\"@cust.test>",
            SUPPORT,
            "Hello",
            "p1@cust.test",
            &[],
            "Hi.\n",
        ),
    )]);
    // The ticket opens and the agent is told; no acknowledgement is queued
    // to a fragment of the address.
    wait_notifications(&sink, 1);
    let outbox = server.outbox_json();
    for row in &outbox {
        let to = row["to"].as_str().unwrap_or("");
        assert!(to == BOB, "mail only to the agent, found {row}");
    }
    assert!(sink.messages().iter().all(|m| m.rcpt_tos == [BOB]));
    let shown = server.show_json("1001");
    let requester = shown["requester"].as_str().unwrap_or("");
    let events: Vec<&serde_json::Value> = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "mail_not_sent")
        .collect();
    assert!(
        !requester.contains('@'),
        "the parse keeps a fragment: {requester:?}"
    );
    assert_eq!(events.len(), 1, "the refused ack is recorded: {shown:#}");
    assert_eq!(events[0]["detail"]["to"], requester);
    assert_eq!(events[0]["detail"]["mail"], "ack");
}
