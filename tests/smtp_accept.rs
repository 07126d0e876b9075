//! Mail accepted over SMTP and LMTP becomes tickets and stored messages.
//!
//! Each test starts its own `postdesk serve` on loopback port 0 with its own
//! data dir, sends with Python's smtplib (a real client library), and reads
//! the result back through the CLI (`tickets`, `show`, `messages --json`),
//! exactly as an admin would.

mod common;

use common::{
    DEADLINE, Mail, RawSmtp, TestServer, bare_id, eventually, find_message, fixture_crlf,
    int_field, str_field, text_mail,
};
use serde_json::Value;

const ALICE: &str = "alice@customer.example.org";

fn alice_first_mail() -> Mail {
    Mail::new(
        ALICE,
        &["support@example.com"],
        text_mail(
            "Alice Customer <alice@customer.example.org>",
            "support@example.com",
            "Printer on fire",
            "first-1@customer.example.org",
            &[],
            "Hello,\nmy printer is on fire. What should I do?\n\nAlice\n",
        ),
    )
}

/// The one message of a ticket's `show --json`, by Message-ID.
fn shown_message<'a>(ticket: &'a Value, message_id: &str) -> &'a Value {
    let messages = ticket["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("show --json has no messages array: {ticket}"));
    find_message(messages, message_id)
        .unwrap_or_else(|| panic!("message {message_id} not in show --json: {ticket}"))
}

#[test]
fn accepted_message_is_stored_by_the_time_250_arrives() {
    let server = TestServer::start();
    let outcome = server.send_one(&alice_first_mail());
    assert!(outcome.accepted(), "{outcome:?}");
    // No polling here on purpose: a 250 promises the commit already happened.
    let messages = server.messages_json();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        bare_id(str_field(&messages[0], "message_id")),
        "first-1@customer.example.org"
    );
}

#[test]
fn new_mail_opens_one_ticket_with_subject_requester_status_and_queue() {
    let server = TestServer::start();
    server.deliver(&[alice_first_mail()]);
    let tickets = server.wait_tickets(1);
    let t = &tickets[0];
    assert_eq!(str_field(t, "number"), "#1001", "{t}");
    assert_eq!(str_field(t, "subject"), "Printer on fire", "{t}");
    assert!(
        t["requester"].to_string().to_lowercase().contains(ALICE),
        "requester should name {ALICE}: {t}"
    );
    assert!(
        str_field(t, "status").eq_ignore_ascii_case("open"),
        "a new ticket is open: {t}"
    );
    assert!(str_field(t, "queue").eq_ignore_ascii_case("support"), "{t}");
    assert!(!str_field(t, "priority").is_empty(), "{t}");
    assert!(!str_field(t, "issue_type").is_empty(), "{t}");
    assert_eq!(int_field(t, "message_count"), 1, "{t}");
    int_field(t, "id");
    assert!(
        t.get("created_at").is_some() && t.get("updated_at").is_some(),
        "{t}"
    );
}

#[test]
fn mail_to_the_sales_address_opens_a_sales_ticket() {
    let server = TestServer::start();
    server.deliver(&[Mail::new(
        "bert@prospect.example.org",
        &["sales@example.com"],
        text_mail(
            "bert@prospect.example.org",
            "sales@example.com",
            "Quote for 40 seats",
            "sales-1@prospect.example.org",
            &[],
            "Could you send us a quote?\n",
        ),
    )]);
    let tickets = server.wait_tickets(1);
    assert!(
        str_field(&tickets[0], "queue").eq_ignore_ascii_case("sales"),
        "{:?}",
        tickets[0]
    );
}

#[test]
fn reply_with_in_reply_to_joins_the_same_ticket() {
    let server = TestServer::start();
    server.deliver(&[alice_first_mail()]);
    server.wait_tickets(1);
    server.deliver(&[Mail::new(
        ALICE,
        &["support@example.com"],
        text_mail(
            ALICE,
            "support@example.com",
            "Re: Printer on fire",
            "reply-1@customer.example.org",
            &[("In-Reply-To", "<first-1@customer.example.org>")],
            "It is still burning.\n",
        ),
    )]);
    let tickets = eventually(DEADLINE, || {
        let t = server.tickets_json();
        match t.first().map(|t| int_field(t, "message_count")) {
            Some(2) if t.len() == 1 => Ok(t),
            _ => Err(format!("want one ticket with 2 messages: {t:?}")),
        }
    });
    let shown = server.show_json(&int_field(&tickets[0], "id").to_string());
    let reply = shown_message(&shown, "reply-1@customer.example.org");
    assert_eq!(str_field(reply, "thread_match"), "in_reply_to", "{reply}");
    let first = shown_message(&shown, "first-1@customer.example.org");
    assert_eq!(str_field(first, "thread_match"), "new", "{first}");
}

#[test]
fn reply_with_only_references_joins_the_same_ticket() {
    let server = TestServer::start();
    server.deliver(&[alice_first_mail()]);
    server.wait_tickets(1);
    // Newest last, as RFC 5322 §3.6.4 orders them; the first is unknown.
    server.deliver(&[Mail::new(
        ALICE,
        &["support@example.com"],
        text_mail(
            ALICE,
            "support@example.com",
            "Re: Printer on fire",
            "reply-2@customer.example.org",
            &[(
                "References",
                "<unknown-elsewhere@other.example.net> <first-1@customer.example.org>",
            )],
            "Replying from a client that only sets References.\n",
        ),
    )]);
    let tickets = eventually(DEADLINE, || {
        let t = server.tickets_json();
        match t.first().map(|t| int_field(t, "message_count")) {
            Some(2) if t.len() == 1 => Ok(t),
            _ => Err(format!("want one ticket with 2 messages: {t:?}")),
        }
    });
    let shown = server.show_json(&int_field(&tickets[0], "id").to_string());
    let reply = shown_message(&shown, "reply-2@customer.example.org");
    assert_eq!(str_field(reply, "thread_match"), "references", "{reply}");
}

#[test]
fn reply_to_an_unknown_message_id_opens_a_new_ticket() {
    let server = TestServer::start();
    server.deliver(&[alice_first_mail()]);
    server.wait_tickets(1);
    server.deliver(&[Mail::new(
        "zoe@customer.example.org",
        &["support@example.com"],
        text_mail(
            "zoe@customer.example.org",
            "support@example.com",
            "Re: something we never saw",
            "reply-3@customer.example.org",
            &[("In-Reply-To", "<never-stored@elsewhere.example.net>")],
            "Hello?\n",
        ),
    )]);
    let tickets = server.wait_tickets(2);
    assert!(
        tickets.iter().all(|t| int_field(t, "message_count") == 1),
        "{tickets:?}"
    );
}

#[test]
fn lmtp_two_recipients_get_two_replies_and_one_stored_message() {
    let server = TestServer::start();
    let mail = Mail::new(
        ALICE,
        &["support@example.com", "info@example.com"],
        text_mail(
            ALICE,
            "support@example.com, info@example.com",
            "Two recipients over LMTP",
            "lmtp-1@customer.example.org",
            &[],
            "One message, two recipients.\n",
        ),
    );
    let outcomes = server.send_lmtp(&[mail]);
    let o = &outcomes[0];
    assert_eq!(o.error, None, "{o:?}");
    assert_eq!(
        o.rcpt.iter().map(|r| r.code).collect::<Vec<_>>(),
        vec![250, 250],
        "{o:?}"
    );
    // RFC 2033 §4.2: one reply per accepted recipient after the final dot.
    assert_eq!(
        o.data.iter().map(|r| r.code).collect::<Vec<_>>(),
        vec![250, 250],
        "{o:?}"
    );
    let messages = server.wait_messages(1);
    assert_eq!(
        bare_id(str_field(&messages[0], "message_id")),
        "lmtp-1@customer.example.org"
    );
    server.wait_tickets(1);
}

#[test]
fn lmtp_refuses_a_foreign_recipient_and_replies_once_for_the_accepted_one() {
    let server = TestServer::start();
    let mail = Mail::new(
        ALICE,
        &["someone@elsewhere.example.net", "support@example.com"],
        text_mail(
            ALICE,
            "support@example.com",
            "One foreign recipient over LMTP",
            "lmtp-2@customer.example.org",
            &[],
            "Only one of the recipients is ours.\n",
        ),
    );
    let o = server.send_lmtp(&[mail]).remove(0);
    assert_eq!(
        o.rcpt.iter().map(|r| r.code).collect::<Vec<_>>(),
        vec![550, 250],
        "{o:?}"
    );
    assert_eq!(
        o.data.iter().map(|r| r.code).collect::<Vec<_>>(),
        vec![250],
        "{o:?}"
    );
    server.wait_messages(1);
}

#[test]
fn show_json_gives_the_text_sender_direction_and_kind() {
    let server = TestServer::start();
    server.deliver(&[alice_first_mail()]);
    let tickets = server.wait_tickets(1);
    let shown = server.show_json(&int_field(&tickets[0], "id").to_string());
    assert_eq!(str_field(&shown, "number"), "#1001", "{shown}");
    assert_eq!(str_field(&shown, "subject"), "Printer on fire", "{shown}");
    let m = shown_message(&shown, "first-1@customer.example.org");
    assert!(
        str_field(m, "text").contains("my printer is on fire. What should I do?"),
        "{m}"
    );
    assert!(m["from"].to_string().to_lowercase().contains(ALICE), "{m}");
    assert!(
        m["to"]
            .to_string()
            .to_lowercase()
            .contains("support@example.com"),
        "{m}"
    );
    assert_eq!(str_field(m, "subject"), "Printer on fire", "{m}");
    assert_eq!(str_field(m, "direction"), "inbound", "{m}");
    assert_eq!(str_field(m, "kind"), "customer", "{m}");
    assert!(m.get("received_at").is_some_and(|v| !v.is_null()), "{m}");
}

#[test]
fn show_accepts_the_displayed_ticket_number() {
    let server = TestServer::start();
    server.deliver(&[alice_first_mail()]);
    let tickets = server.wait_tickets(1);
    let by_id = server.show_json(&int_field(&tickets[0], "id").to_string());
    for form in ["#1001", "1001"] {
        let by_number = server.show_json(form);
        assert_eq!(
            by_number["id"], by_id["id"],
            "show {form} should be the ticket numbered #1001"
        );
    }
}

#[test]
fn html_only_mail_gets_a_text_rendering() {
    let server = TestServer::start();
    server.deliver(&[Mail::new(
        "hannah@customer.example.org",
        &["support@example.com"],
        fixture_crlf("mail/html_only.eml"),
    )]);
    let tickets = server.wait_tickets(1);
    let shown = server.show_json(&int_field(&tickets[0], "id").to_string());
    let m = shown_message(&shown, "html-only-1@customer.example.org");
    let text = str_field(m, "text");
    assert!(
        text.contains("Hello from HTML"),
        "text rendering missing: {text:?}"
    );
    assert!(text.contains("invoice"), "{text:?}");
    assert!(text.contains("4711"), "{text:?}");
    assert!(
        !text.contains("<p>") && !text.contains("<b>"),
        "tags left in text: {text:?}"
    );
    assert!(
        !text.contains("color: red"),
        "style sheet rendered as text: {text:?}"
    );
}

#[test]
fn attachment_is_stored_with_its_name_and_size() {
    let server = TestServer::start();
    let raw = fixture_crlf("mail/attachment.eml");
    server.deliver(&[Mail::new(
        "adam@customer.example.org",
        &["support@example.com"],
        raw.clone(),
    )]);
    let tickets = server.wait_tickets(1);
    let shown = server.show_json(&int_field(&tickets[0], "id").to_string());
    let m = shown_message(&shown, "attachment-1@customer.example.org");
    assert!(
        str_field(m, "text").contains("Please find the error report attached."),
        "{m}"
    );
    match (m.get("attachments"), m.get("attachment_count")) {
        (Some(Value::Array(list)), _) => {
            let a = list
                .iter()
                .find(|a| {
                    ["name", "filename"]
                        .iter()
                        .any(|k| a.get(*k).and_then(Value::as_str) == Some("error-report.bin"))
                })
                .unwrap_or_else(|| panic!("no attachment named error-report.bin: {list:?}"));
            if let Some(size) = a.get("size") {
                assert_eq!(size.as_u64(), Some(256), "decoded size: {a}");
            }
        }
        (_, Some(count)) => assert_eq!(count.as_u64(), Some(1), "{m}"),
        _ => panic!("show --json gives neither `attachments` nor `attachment_count`: {m}"),
    }
    // The raw message, attachment included, is kept whole.
    let messages = server.messages_json();
    let stored = find_message(&messages, "attachment-1@customer.example.org").expect("stored");
    assert!(
        stored["size"]
            .as_u64()
            .is_some_and(|s| s >= raw.len() as u64),
        "stored size {} < sent {}",
        stored["size"],
        raw.len()
    );
}

#[test]
fn duplicate_delivery_of_the_same_bytes_stores_no_second_message_or_ticket() {
    let server = TestServer::start();
    let mail = alice_first_mail();
    // Two separate sessions, as a sender retrying after a lost 250 would.
    let first = server.send_one(&mail);
    let second = server.send_one(&mail);
    assert!(first.accepted(), "{first:?}");
    assert!(
        second.accepted(),
        "a duplicate still gets its 250: {second:?}"
    );
    let messages = server.messages_json();
    assert_eq!(messages.len(), 1, "duplicate stored twice: {messages:?}");
    let tickets = server.tickets_json();
    assert_eq!(tickets.len(), 1, "duplicate opened a ticket: {tickets:?}");
    assert_eq!(int_field(&tickets[0], "message_count"), 1, "{tickets:?}");
}

#[test]
fn same_message_id_with_different_content_is_stored_again() {
    let server = TestServer::start();
    let first = alice_first_mail();
    let mut second = first.clone();
    second.raw = text_mail(
        "Alice Customer <alice@customer.example.org>",
        "support@example.com",
        "Printer on fire",
        "first-1@customer.example.org",
        &[],
        "A different body under the same Message-ID.\n",
    );
    server.deliver(&[first]);
    server.deliver(&[second]);
    server.wait_messages(2);
}

#[test]
fn ehlo_advertises_size_limit_pipelining_and_8bitmime() {
    let server = TestServer::start();
    let (mut s, greeting) = RawSmtp::connect(server.smtp);
    assert_eq!(greeting.code, 220, "{greeting:?}");
    let ehlo = s.cmd("EHLO client.test");
    assert_eq!(ehlo.code, 250, "{ehlo:?}");
    let has = |kw: &str| ehlo.lines.iter().any(|l| l.to_ascii_uppercase() == kw);
    assert!(has("SIZE 26214400"), "default SIZE is 25 MiB: {ehlo:?}");
    assert!(has("PIPELINING"), "{ehlo:?}");
    assert!(has("8BITMIME"), "{ehlo:?}");
}

#[test]
fn pipelined_commands_get_their_replies_in_order() {
    let server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    // RFC 2920: MAIL, RCPT, RCPT and DATA in one write; DATA is the last
    // command of the group, so the client waits for 354 before the body.
    s.send(
        b"MAIL FROM:<alice@customer.example.org>\r\n\
          RCPT TO:<nobody@elsewhere.example.net>\r\n\
          RCPT TO:<support@example.com>\r\n\
          DATA\r\n",
    )
    .expect("write pipelined group");
    let codes: Vec<u16> = (0..4)
        .map(|_| s.read_reply().expect("reply").code)
        .collect();
    assert_eq!(codes, vec![250, 550, 250, 354]);
    let mut body = common::dot_stuff(&alice_first_mail().raw);
    body.extend_from_slice(b".\r\n");
    s.send(&body).expect("write body");
    let done = s.read_reply().expect("end of data reply");
    assert_eq!(done.code, 250, "{done:?}");
    server.wait_messages(1);
}

// RFC 5321 §4.5.1: `RCPT TO:<Postmaster>` (no domain, any case) MUST be
// accepted; it reaches postmaster at the first served domain. `<>` is no
// recipient at all.
#[test]
fn rcpt_to_bare_postmaster_is_accepted_for_the_first_served_domain() {
    let server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let r = s.cmd(&format!("MAIL FROM:<{ALICE}>"));
    assert_eq!(r.code, 250, "{r:?}");
    let r = s.cmd("RCPT TO:<>");
    assert_eq!(
        r.code, 501,
        "an empty forward-path is a syntax error: {r:?}"
    );
    for bare in ["RCPT TO:<postmaster>", "RCPT TO:<PostMaster>"] {
        let r = s.cmd(bare);
        assert_eq!(r.code, 250, "{bare}: {r:?}");
    }
    let r = s.cmd("DATA");
    assert_eq!(r.code, 354, "{r:?}");
    let raw = text_mail(
        "Alice Customer <alice@customer.example.org>",
        "postmaster",
        "Your server bounces my mail",
        "pm-1@customer.example.org",
        &[],
        "Hello postmaster,\nyour server bounces my mail.\n",
    );
    let mut data = common::dot_stuff(&raw);
    data.extend_from_slice(b".\r\n");
    s.send(&data).expect("write message");
    let done = s.read_reply().expect("end of data reply");
    assert_eq!(done.code, 250, "{done:?}");
    let tickets = server.wait_tickets(1);
    assert_eq!(
        str_field(&tickets[0], "inbound_address"),
        "postmaster@example.com",
        "{tickets:?}"
    );
}
