//! The conversation by mail, end to end over real sockets: a customer
//! writes, gets an acknowledgement; the agent gets a notification, hits
//! Reply, and the customer receives the answer in the same thread; the
//! customer answers back into the same ticket. Commands, notes, canned
//! responses, attachments, merges, and a spoofed agent.
//!
//! Outbound mail goes to a real SMTP server (aiosmtpd, see
//! `tests/common/smtp_sink.py`). Nothing sleeps to wait: a `250` means the
//! message and the mail it caused are committed, and arrivals at the sink
//! are polled with `eventually`.

mod common;

use common::sink::{Received, Sink, outbound_rules};
use common::{DEADLINE, Mail, TestServer, bare_id, eventually, find_message, str_field, text_mail};
use serde_json::Value;

const ALICE: &str = "alice@customer.test";
const BOB: &str = "bob@agents.test";

/// A helpdesk with agent Bob on the support team, sending through `sink`.
fn helpdesk(sink: &Sink) -> TestServer {
    TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        "[agents]\nbob = \"bob@agents.test\"\ncarol = \"carol@agents.test\"\n\
         [teams]\nsupport = [\"bob\"]\n",
    ))
}

fn alice(subject: &str, id: &str, extra: &[(&str, &str)], body: &str) -> Mail {
    common::alice_mail(subject, id, extra, body)
}

/// Bob's reply to `notification`, sent to its Reply-To (the token
/// address), quoting it the way mail clients do.
fn bob_replies(notification: &Received, id: &str, text: &str) -> Mail {
    let token = notification.parsed.reply_to[0].address.clone();
    let quoted: String = String::from_utf8_lossy(notification.parsed.text.as_bytes())
        .lines()
        .map(|l| format!("> {l}\n"))
        .collect();
    let body = format!(
        "{text}\n\nOn Mon, 2 Mar 2026 at 10:00, Alice Example via Support <support@example.com> wrote:\n{quoted}"
    );
    let subject = format!("Re: {}", notification.subject());
    Mail::new(
        BOB,
        &[&token],
        text_mail(
            &format!("Bob <{BOB}>"),
            &token,
            &subject,
            id,
            &[("In-Reply-To", &format!("<{}>", notification.message_id()))],
            &body,
        ),
    )
}

fn notifications(sink: &Sink) -> Vec<Received> {
    sink.to(BOB)
        .into_iter()
        .filter(|m| m.header("Reply-To").is_some() && m.subject().starts_with("[#"))
        .collect()
}

fn wait_notifications(sink: &Sink, n: usize) -> Vec<Received> {
    eventually(DEADLINE, || {
        let got = notifications(sink);
        if got.len() >= n {
            Ok(got)
        } else {
            Err(format!("{} of {n} notifications", got.len()))
        }
    })
}

/// Mail to Alice that is not an acknowledgement: relayed replies.
fn relays(sink: &Sink) -> Vec<Received> {
    sink.to(ALICE)
        .into_iter()
        .filter(|m| m.header("Auto-Submitted").is_none())
        .collect()
}

fn wait_relays(sink: &Sink, n: usize) -> Vec<Received> {
    eventually(DEADLINE, || {
        let got = relays(sink);
        if got.len() >= n {
            Ok(got)
        } else {
            Err(format!("{} of {n} relays", got.len()))
        }
    })
}

/// Outbox rows to `to`.
fn outbox_to(server: &TestServer, to: &str) -> Vec<Value> {
    server
        .outbox_json()
        .into_iter()
        .filter(|r| r["to"].as_str() == Some(to))
        .collect()
}

fn event_kinds(ticket: &Value) -> Vec<String> {
    ticket["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| str_field(e, "kind").to_owned())
        .collect()
}

#[test]
fn the_whole_conversation_works_from_ordinary_mail_clients() {
    let sink = Sink::start();
    let server = helpdesk(&sink);

    // 1. The customer writes: an acknowledgement and a notification arrive.
    server.deliver(&[alice(
        "Printer on fire",
        "c1@customer.test",
        &[],
        "Hello,\nmy printer is on fire. What should I do?\n\nAlice\n",
    )]);
    let ack = sink.wait_to(ALICE, 1).remove(0);
    assert!(ack.subject().contains("[#1001]"));
    assert_eq!(ack.header("Auto-Submitted"), Some("auto-replied"));
    let note = wait_notifications(&sink, 1).remove(0);
    assert!(note.subject().contains("[#1001]"), "{}", note.subject());
    let reply_to = &note.parsed.reply_to[0].address;
    assert!(
        reply_to.starts_with("support+") && reply_to.ends_with("@example.com"),
        "{reply_to}"
    );
    assert!(
        note.parsed.text.contains("my printer is on fire"),
        "{}",
        note.parsed.text
    );
    assert!(
        note.parsed.text.contains("#1001"),
        "ticket facts: {}",
        note.parsed.text
    );
    assert!(
        note.parsed.text.contains("Medium"),
        "ticket facts: {}",
        note.parsed.text
    );
    assert_eq!(note.header("Auto-Submitted"), Some("auto-generated"));

    // 2. Bob hits Reply: the customer gets only his new text, threaded.
    server.deliver(&[bob_replies(
        &note,
        "b1@agents.test",
        "Have you tried turning it off and on again?",
    )]);
    let relay = wait_relays(&sink, 1).remove(0);
    assert!(relay.subject().contains("[#1001]"), "{}", relay.subject());
    let from = relay.parsed.from.as_ref().expect("from");
    assert_eq!(from.address, "support@example.com");
    assert_eq!(from.name.as_deref(), Some("Bob via Support"));
    assert_eq!(relay.parsed.in_reply_to, ["c1@customer.test"]);
    assert_eq!(
        relay.parsed.references.last().map(String::as_str),
        Some("c1@customer.test")
    );
    assert!(
        relay.parsed.text.contains("Have you tried turning it off"),
        "{}",
        relay.parsed.text
    );
    assert!(
        !relay.parsed.text.contains("reply above this line"),
        "{}",
        relay.parsed.text
    );
    assert!(
        !relay.parsed.text.contains("my printer is on fire"),
        "{}",
        relay.parsed.text
    );
    assert!(
        !relay.parsed.text.contains("wrote:"),
        "{}",
        relay.parsed.text
    );
    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "status"), "Replied");
    let ms = shown["messages"].as_array().expect("messages");
    let sent = find_message(ms, relay.message_id()).expect("the relay is stored");
    assert_eq!(sent["direction"], "outbound");
    assert_eq!(sent["kind"], "agent");
    let agent_mail = find_message(ms, "b1@agents.test").expect("bob's mail is stored");
    assert_eq!(agent_mail["kind"], "agent");
    assert_eq!(agent_mail["thread_match"], "token");

    // 3. Alice answers the relay: same ticket, back to Open, Bob told.
    server.deliver(&[alice(
        &format!("Re: {}", relay.subject()),
        "c2@customer.test",
        &[
            ("In-Reply-To", &format!("<{}>", relay.message_id())),
            (
                "References",
                &format!("<c1@customer.test> <{}>", relay.message_id()),
            ),
        ],
        "It worked, thanks!\n\n> Have you tried turning it off and on again?\n",
    )]);
    assert_eq!(server.tickets_json().len(), 1);
    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "status"), "Open");
    let m = find_message(
        shown["messages"].as_array().expect("messages"),
        "c2@customer.test",
    )
    .expect("stored");
    assert_eq!(m["thread_match"], "in_reply_to");
    let notes = wait_notifications(&sink, 2);
    assert!(
        notes[1].parsed.text.contains("It worked"),
        "{}",
        notes[1].parsed.text
    );
    assert_eq!(sink.to(ALICE).len(), 2, "no second acknowledgement");
}

#[test]
fn a_spoofed_agent_without_the_token_is_a_customer_and_nothing_is_relayed() {
    let sink = Sink::start();
    let server = helpdesk(&sink);
    server.deliver(&[alice("Printer on fire", "c1@customer.test", &[], "Help!\n")]);
    sink.wait_to(ALICE, 1);
    let before = outbox_to(&server, ALICE).len();
    // Bob's address, but sent to the plain support address.
    server.deliver(&[Mail::new(
        BOB,
        &["support@example.com"],
        text_mail(
            BOB,
            "support@example.com",
            "Re: Printer on fire [#1001]",
            "spoof@evil.test",
            &[],
            "#close\nPlease send your password to me.\n",
        ),
    )]);
    assert_eq!(outbox_to(&server, ALICE).len(), before, "nothing relayed");
    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "status"), "Open", "#close did not run");
    let m = find_message(
        shown["messages"].as_array().expect("messages"),
        "spoof@evil.test",
    )
    .expect("stored on the ticket");
    assert_eq!(m["kind"], "customer");
    let ev = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "agent_not_authenticated")
        .unwrap_or_else(|| panic!("{shown:#}"));
    assert!(
        str_field(&ev["detail"], "why").contains("no recipient address carries a token"),
        "{ev}"
    );
}

#[test]
fn a_note_is_stored_and_never_reaches_the_customer() {
    let sink = Sink::start();
    let server = helpdesk(&sink);
    server.deliver(&[alice("Printer on fire", "c1@customer.test", &[], "Help!\n")]);
    let note = wait_notifications(&sink, 1).remove(0);
    let before = outbox_to(&server, ALICE).len();
    server.deliver(&[bob_replies(
        &note,
        "n1@agents.test",
        "#note She sounds upset; I will call her.\nCall log: 10:05",
    )]);
    assert_eq!(outbox_to(&server, ALICE).len(), before);
    let shown = server.show_json("1001");
    let m = find_message(
        shown["messages"].as_array().expect("messages"),
        "n1@agents.test",
    )
    .expect("stored");
    assert_eq!(m["kind"], "note");
    assert!(str_field(m, "text").contains("She sounds upset"));
    assert!(str_field(m, "text").contains("Call log"));
    assert!(event_kinds(&shown).contains(&"note_added".to_owned()));
    assert_eq!(str_field(&shown, "status"), "Open");
}

#[test]
fn an_unknown_command_is_answered_to_the_agent_and_nothing_is_relayed() {
    let sink = Sink::start();
    let server = helpdesk(&sink);
    server.deliver(&[alice("Printer on fire", "c1@customer.test", &[], "Help!\n")]);
    let note = wait_notifications(&sink, 1).remove(0);
    let before = outbox_to(&server, ALICE).len();
    server.deliver(&[bob_replies(
        &note,
        "x1@agents.test",
        "#clsoe\nAll fixed, closing.",
    )]);
    assert_eq!(outbox_to(&server, ALICE).len(), before, "nothing relayed");
    let answer = eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.subject().starts_with("Not sent"))
            .ok_or_else(|| "no answer yet".to_owned())
    });
    assert!(answer.subject().contains("[#1001]"));
    assert!(
        answer
            .parsed
            .text
            .contains("unknown command #clsoe; did you mean #close?"),
        "{}",
        answer.parsed.text
    );
    assert_eq!(answer.parsed.in_reply_to, ["x1@agents.test"]);
    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "status"), "Open", "no command ran");
    assert!(event_kinds(&shown).contains(&"command_rejected".to_owned()));
}

/// Bob's reply with an attachment, as a multipart mail.
fn bob_replies_with_attachment(notification: &Received, id: &str, text: &str) -> Mail {
    let token = notification.parsed.reply_to[0].address.clone();
    let raw = format!(
        "From: Bob <{BOB}>\r\nTo: {token}\r\nSubject: Re: {}\r\nMessage-ID: <{id}>\r\n\
         In-Reply-To: <{}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n\
         --XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --XX\r\nContent-Type: application/pdf; name=\"manual.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"manual.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQgbWFudWFs\r\n--XX--\r\n",
        notification.subject(),
        notification.message_id()
    );
    Mail::new(BOB, &[&token], raw.into_bytes())
}

#[test]
fn commands_canned_responses_and_attachments_act_on_the_ticket() {
    let sink = Sink::start();
    let server = helpdesk(&sink);
    server.deliver(&[alice("Printer on fire", "c1@customer.test", &[], "Help!\n")]);
    let note = wait_notifications(&sink, 1).remove(0);

    server.deliver(&[bob_replies_with_attachment(
        &note,
        "k1@agents.test",
        "#priority high\n#assign carol\n#type Hardware\n#tag printer\nThe manual is attached.\n/thanks",
    )]);
    let relay = wait_relays(&sink, 1).remove(0);
    assert!(
        relay.parsed.text.contains("The manual is attached."),
        "{}",
        relay.parsed.text
    );
    assert!(
        relay
            .parsed
            .text
            .contains("Thank you for getting in touch about \"Printer on fire\" (#1001)"),
        "canned /thanks expanded: {}",
        relay.parsed.text
    );
    assert!(
        !relay.parsed.text.contains("#priority"),
        "{}",
        relay.parsed.text
    );
    assert_eq!(relay.parsed.attachments.len(), 1);
    assert_eq!(
        relay.parsed.attachments[0].name.as_deref(),
        Some("manual.pdf")
    );
    assert_eq!(
        postdesk::parse::attachments(&relay.raw)[0].content,
        b"%PDF-1.4 manual"
    );

    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "priority"), "High");
    assert_eq!(str_field(&shown, "assignee"), "carol");
    assert_eq!(shown["tags"], serde_json::json!(["printer"]));
    // Tags are in the list too, and select it.
    let tagged = server
        .env
        .run_json(&["tickets", "--tag", "PRINTER", "--json"]);
    assert_eq!(tagged.as_array().map(Vec::len), Some(1), "{tagged:#}");
    assert_eq!(tagged[0]["tags"], serde_json::json!(["printer"]));
    let none = server.env.run_json(&["tickets", "--tag", "fax", "--json"]);
    assert_eq!(none.as_array().map(Vec::len), Some(0), "{none:#}");
    assert_eq!(str_field(&shown, "issue_type"), "Hardware");
    assert_eq!(str_field(&shown, "status"), "Replied");
    let kinds = event_kinds(&shown);
    for k in [
        "priority_changed",
        "assigned",
        "type_changed",
        "tag_added",
        "agent_replied",
    ] {
        assert!(kinds.contains(&k.to_owned()), "{k} in {kinds:?}");
    }

    // Assigned to Carol: Alice's next message notifies Carol, not Bob.
    server.deliver(&[alice(
        "Re: Printer on fire [#1001]",
        "c2@customer.test",
        &[("In-Reply-To", &format!("<{}>", relay.message_id()))],
        "Thanks, reading it.\n",
    )]);
    let carol = sink.wait_to("carol@agents.test", 1);
    assert!(carol[0].subject().contains("[#1001]"));
    assert_eq!(notifications(&sink).len(), 1, "Bob is no longer notified");

    // #resolve then #close: each an event, status follows.
    server.deliver(&[bob_replies(&note, "k2@agents.test", "#resolve")]);
    assert_eq!(str_field(&server.show_json("1001"), "status"), "Resolved");
    server.deliver(&[bob_replies(&note, "k3@agents.test", "#close")]);
    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "status"), "Closed");
    let changes: Vec<&Value> = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "status_changed" && e["cause"] == "agent:bob")
        .collect();
    assert!(changes.len() >= 2, "{changes:#?}");
    server.deliver(&[bob_replies(&note, "k4@agents.test", "#reopen")]);
    assert_eq!(str_field(&server.show_json("1001"), "status"), "Open");
}

#[test]
fn a_merged_ticket_threads_both_numbers_to_the_target() {
    let sink = Sink::start();
    let server = helpdesk(&sink);
    server.deliver(&[alice("Printer on fire", "c1@customer.test", &[], "Help!\n")]);
    server.deliver(&[alice(
        "Printer still smoking",
        "c2@customer.test",
        &[],
        "Again!\n",
    )]);
    let notes = wait_notifications(&sink, 2);
    let second = notes
        .iter()
        .find(|n| n.subject().contains("[#1002]"))
        .expect("notification of #1002");
    server.deliver(&[bob_replies(second, "m1@agents.test", "#merge 1001")]);
    let source = server.show_json("1002");
    assert_eq!(str_field(&source, "status"), "Closed");
    assert!(event_kinds(&source).contains(&"merged".to_owned()));
    let target = server.show_json("1001");
    let ms = target["messages"].as_array().expect("messages");
    assert!(
        find_message(ms, "c2@customer.test").is_some(),
        "messages moved: {target:#}"
    );
    assert!(event_kinds(&target).contains(&"merged".to_owned()));

    // Both the old number's tag and the old messages' ids thread to #1001.
    server.deliver(&[alice(
        "Re: Printer still smoking [#1002]",
        "c3@customer.test",
        &[],
        "Any news?\n",
    )]);
    server.deliver(&[alice(
        "Re: Printer still smoking",
        "c4@customer.test",
        &[("In-Reply-To", "<c2@customer.test>")],
        "Hello?\n",
    )]);
    let target = server.show_json("1001");
    let ms = target["messages"].as_array().expect("messages");
    for id in ["c3@customer.test", "c4@customer.test"] {
        let m = find_message(ms, id).unwrap_or_else(|| panic!("{id} not on #1001: {target:#}"));
        assert_eq!(bare_id(str_field(m, "message_id")), id);
    }
    assert_eq!(server.tickets_json().len(), 2, "no new ticket");
    assert_eq!(str_field(&server.show_json("1002"), "status"), "Closed");
}

#[test]
fn an_agent_s_vacation_reply_to_a_notification_is_never_relayed() {
    let sink = Sink::start();
    let server = helpdesk(&sink);
    server.deliver(&[alice("Printer on fire", "c1@customer.test", &[], "Help!\n")]);
    let note = wait_notifications(&sink, 1).remove(0);
    let before = outbox_to(&server, ALICE).len();
    let mut mail = bob_replies(&note, "away@agents.test", "I am on holiday until Monday.");
    let raw = String::from_utf8(mail.raw).expect("utf-8");
    mail.raw = raw
        .replacen(
            "MIME-Version",
            "Auto-Submitted: auto-replied\r\nMIME-Version",
            1,
        )
        .into_bytes();
    server.deliver(&[mail]);
    assert_eq!(outbox_to(&server, ALICE).len(), before);
    let shown = server.show_json("1001");
    assert!(event_kinds(&shown).contains(&"agent_auto_reply_ignored".to_owned()));
}

#[test]
fn a_sales_lead_moves_to_support_by_mail_and_back_by_cli_keeping_its_messages() {
    let sink = Sink::start();
    let server = helpdesk(&sink);
    server.deliver(&[Mail::new(
        ALICE,
        &["sales@example.com"],
        text_mail(
            &format!("Alice Example <{ALICE}>"),
            "sales@example.com",
            "Quote, and my printer is broken",
            "m1@customer.test",
            &[],
            "Hello,\nI want a quote, but first my printer is broken.\n",
        ),
    )]);
    assert_eq!(str_field(&server.show_json("1001"), "queue"), "sales");
    let notification = wait_notifications(&sink, 1).remove(0);
    server.deliver(&[bob_replies(
        &notification,
        "mv1@agents.test",
        "#note\n#move support\n",
    )]);
    let shown = eventually(DEADLINE, || {
        let s = server.show_json("1001");
        if s["queue"] == "support" {
            Ok(s)
        } else {
            Err(format!("{}", s["queue"]))
        }
    });
    let moved: Vec<&Value> = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "moved")
        .collect();
    assert_eq!(moved.len(), 1, "{shown:#}");
    assert_eq!(moved[0]["detail"]["from"], "sales");
    assert_eq!(moved[0]["detail"]["to"], "support");
    let messages = shown["messages"].as_array().expect("messages").len();

    // And back, from the command line; an unknown queue is refused.
    let out = server.env.run_ok(&["ticket", "move", "#1001", "sales"]);
    assert!(out.contains("support -> sales"), "{out}");
    let bad = server.env.run(&["ticket", "move", "1001", "billing"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a queue"));
    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "queue"), "sales");
    assert_eq!(
        shown["messages"].as_array().expect("messages").len(),
        messages
    );
    assert_eq!(server.tickets_json().len(), 1);
}
