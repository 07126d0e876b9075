//! Routing against the running server over SMTP: a checklist of what
//! routing must get right (support vs sales, mailbox priority, blocked
//! and system senders), one test per line, plus the client mailboxes'
//! priority, issue type and monitoring tickets, and `explain`.
//!
//! Every test starts its own `postdesk serve` on port 0 (tests/common),
//! sends real mail with Python's smtplib and reads the result with the CLI.

mod common;

use common::{Mail, TestServer, find_message, int_field, mail, str_field, text_mail};
use serde_json::Value;

const ANN: &str = "ann@customer.example.org";
const SUPPORT: &str = "support@example.com";
const SALES: &str = "sales@example.com";
const INFO: &str = "info@example.com";

/// Every ticket, oldest number first.
fn tickets(server: &TestServer) -> Vec<Value> {
    let mut t = server.tickets_json();
    t.sort_by_key(|t| int_field(t, "id"));
    t
}

/// `(number, queue)` of every ticket, oldest first.
fn queues(server: &TestServer) -> Vec<(String, String)> {
    tickets(server)
        .iter()
        .map(|t| {
            (
                str_field(t, "number").to_owned(),
                str_field(t, "queue").to_owned(),
            )
        })
        .collect()
}

/// The stored message with Message-ID `id`, from `messages --json`.
fn message(server: &TestServer, id: &str) -> Value {
    let all = server.messages_json();
    find_message(&all, id)
        .unwrap_or_else(|| panic!("{id} not stored: {all:#?}"))
        .clone()
}

/// The route rule recorded when the ticket was opened.
fn opened_because(server: &TestServer, number: &str) -> String {
    let shown = server.show_json(number);
    shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| str_field(e, "kind") == "ticket_opened")
        .map(|e| str_field(e, "cause").to_owned())
        .unwrap_or_else(|| panic!("no ticket_opened event: {shown:#}"))
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn new_mail_to_support_opens_a_support_ticket() {
    let server = TestServer::start();
    server.deliver(&[Mail::new(
        ANN,
        &[SUPPORT],
        text_mail(
            "Ann Lee <ann@customer.example.org>",
            SUPPORT,
            "Door will not close",
            "n1@c.example.org",
            &[],
            "Help.\n",
        ),
    )]);
    let t = &tickets(&server)[0];
    assert_eq!(str_field(t, "queue"), "support");
    assert_eq!(str_field(t, "status"), "Open");
    assert_eq!(str_field(t, "requester_name"), "Ann Lee");
    assert_eq!(str_field(t, "priority"), "Medium");
    assert_eq!(str_field(t, "issue_type"), "General");
    assert_eq!(opened_because(&server, "1001"), "support_address");
}

#[test]
fn support_mail_never_makes_a_lead_even_from_a_sales_customer() {
    let server = TestServer::start();
    server.deliver(&[mail(
        ANN,
        SALES,
        "Price for 10 chairs",
        "l1@c.example.org",
        &[],
    )]);
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "Chair arrived broken",
        "l2@c.example.org",
        &[],
    )]);
    assert_eq!(
        queues(&server),
        pairs(&[("#1001", "sales"), ("#1002", "support")])
    );
}

#[test]
fn sales_and_info_addresses_open_leads() {
    let server = TestServer::start();
    server.deliver(&[
        mail(ANN, SALES, "Quote please", "q1@c.example.org", &[]),
        mail(
            "bea@other.example.org",
            INFO,
            "Do you ship to Oslo",
            "q2@o.example.org",
            &[],
        ),
    ]);
    assert_eq!(
        queues(&server),
        pairs(&[("#1001", "sales"), ("#1002", "sales")])
    );
    assert_eq!(opened_because(&server, "1001"), "sales_address");
    assert_eq!(opened_because(&server, "1002"), "sales_address");
}

#[test]
fn reply_to_a_lead_and_a_new_mail_from_its_sender_stay_on_the_lead() {
    let server = TestServer::start();
    server.deliver(&[mail(ANN, SALES, "Quote please", "ql1@c.example.org", &[])]);
    server.deliver(&[mail(
        ANN,
        SALES,
        "Re: Quote please",
        "ql2@c.example.org",
        &[("In-Reply-To", "<ql1@c.example.org>")],
    )]);
    // A new subject from the same sender to info@: the sender's open lead.
    server.deliver(&[mail(ANN, INFO, "Also: colours?", "ql3@c.example.org", &[])]);
    let all = tickets(&server);
    assert_eq!(all.len(), 1, "{all:#?}");
    let shown = server.show_json("1001");
    assert_eq!(int_field(&shown, "message_count"), 3);
    let ms = shown["messages"].as_array().expect("messages");
    let how = |id| str_field(find_message(ms, id).expect("stored"), "thread_match");
    assert_eq!(how("ql2@c.example.org"), "in_reply_to");
    assert_eq!(how("ql3@c.example.org"), "open_lead");
}

#[test]
fn support_customer_mailing_info_gets_a_support_ticket() {
    let server = TestServer::start();
    server.deliver(&[mail(ANN, SUPPORT, "Login broken", "sc1@c.example.org", &[])]);
    server.deliver(&[mail(ANN, INFO, "Opening hours?", "sc2@c.example.org", &[])]);
    assert_eq!(
        queues(&server),
        pairs(&[("#1001", "support"), ("#1002", "support")])
    );
    assert_eq!(opened_because(&server, "1002"), "support_customer");
}

#[test]
fn new_sender_to_an_unknown_address_gets_a_lead_and_a_support_customer_a_ticket() {
    let server = TestServer::start();
    server.deliver(&[mail(
        ANN,
        "hello@example.com",
        "Hi there",
        "u1@c.example.org",
        &[],
    )]);
    server.deliver(&[mail(
        "bea@other.example.org",
        SUPPORT,
        "Broken",
        "u2@o.example.org",
        &[],
    )]);
    server.deliver(&[mail(
        "bea@other.example.org",
        "hello@example.com",
        "Another thing",
        "u3@o.example.org",
        &[],
    )]);
    assert_eq!(
        queues(&server),
        pairs(&[
            ("#1001", "sales"),
            ("#1002", "support"),
            ("#1003", "support")
        ])
    );
    assert_eq!(opened_because(&server, "1001"), "new_sender");
    assert_eq!(opened_because(&server, "1003"), "support_history");
}

#[test]
fn blocked_and_system_senders_are_quarantined_without_a_ticket() {
    let server = TestServer::start();
    server.deliver(&[
        mail(
            "admin@example.com",
            SUPPORT,
            "Admin says hi",
            "b1@example.com",
            &[],
        ),
        mail(
            "noreply@shop.example.net",
            SUPPORT,
            "Your order",
            "b2@shop.example.net",
            &[],
        ),
        mail(
            "MAILER-DAEMON@mx.example.net",
            SUPPORT,
            "Undelivered Mail Returned to Sender",
            "b3@mx.example.net",
            &[],
        ),
    ]);
    assert!(tickets(&server).is_empty());
    for (id, reason) in [
        ("b1@example.com", "blocked sender admin@example.com"),
        (
            "b2@shop.example.net",
            "system sender noreply@shop.example.net (noreply)",
        ),
        // A daemon's bounce is recognised as one before routing
        // (`parse::classify`), and stored the same way: no ticket.
        (
            "b3@mx.example.net",
            "bounce for a mail postdesk does not know",
        ),
    ] {
        let m = message(&server, id);
        assert_eq!(str_field(&m, "state"), "quarantined", "{m}");
        assert_eq!(str_field(&m, "flag"), reason, "{m}");
        assert!(m["ticket_id"].is_null(), "{m}");
    }
}

#[test]
fn internal_sender_is_stored_but_not_ticketed() {
    let server = TestServer::start();
    server.deliver(&[
        mail(
            "bob@staff.example.net",
            SUPPORT,
            "Internal memo",
            "i1@staff.example.net",
            &[],
        ),
        mail(
            SALES,
            SUPPORT,
            "Loop from our own address",
            "i2@example.com",
            &[],
        ),
    ]);
    assert!(tickets(&server).is_empty());
    for id in ["i1@staff.example.net", "i2@example.com"] {
        let m = message(&server, id);
        assert_eq!(str_field(&m, "state"), "internal", "{m}");
        assert!(m["ticket_id"].is_null(), "{m}");
    }
}

#[test]
fn mail_with_no_subject_works() {
    let server = TestServer::start();
    let raw = common::crlf(
        b"From: jane.doe@customer.example.org\nTo: support@example.com\n\
          Message-ID: <ns1@c.example.org>\n\nNo subject here.\n",
    );
    server.deliver(&[Mail::new("jane.doe@customer.example.org", &[SUPPORT], raw)]);
    let t = &tickets(&server)[0];
    assert_eq!(str_field(t, "subject"), "(no subject)");
    // No display name: the name comes from the local part.
    assert_eq!(str_field(t, "requester_name"), "Jane Doe");
}

#[test]
fn a_200_character_subject_is_truncated() {
    let server = TestServer::start();
    let subject = "x".repeat(200);
    server.deliver(&[mail(ANN, SUPPORT, &subject, "long@c.example.org", &[])]);
    let t = &tickets(&server)[0];
    let shown = str_field(t, "subject");
    assert_eq!(shown.chars().count(), 140);
    assert_eq!(shown, format!("{}...", "x".repeat(137)));
    // A reply with the full subject still finds it (rule 4 compares the
    // whole subject, not the truncated one).
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        &format!("Re: {subject}"),
        "long2@c.example.org",
        &[],
    )]);
    assert_eq!(tickets(&server).len(), 1);
}

#[test]
fn system_names_become_customer() {
    let server = TestServer::start();
    server.deliver(&[Mail::new(
        "info@shop.example.org",
        &[SUPPORT],
        text_mail(
            "Info <info@shop.example.org>",
            SUPPORT,
            "Hello",
            "sn@shop.example.org",
            &[],
            "x\n",
        ),
    )]);
    assert_eq!(
        str_field(&tickets(&server)[0], "requester_name"),
        "Customer"
    );
}

#[test]
fn mailbox_entry_sets_priority_and_issue_type() {
    let mut server = TestServer::start();
    server.env.write_config(
        "mailboxes/acme.toml",
        "[client]\ncustomer = \"Acme\"\ndomain = \"acme.example\"\n\
         [[mailbox]]\naddress = \"regulatory\"\npriority = \"High\"\nissue_type = \"Regulatory\"\n",
    );
    server.restart();
    server.deliver(&[mail(
        ANN,
        "regulatory@acme.example",
        "Notice of inquiry",
        "mb1@c.example.org",
        &[],
    )]);
    let t = &tickets(&server)[0];
    assert_eq!(str_field(t, "priority"), "High");
    assert_eq!(str_field(t, "issue_type"), "Regulatory");
    assert_eq!(str_field(t, "inbound_address"), "regulatory@acme.example");
}

#[test]
fn client_mailbox_mail_gets_its_own_monitoring_ticket_never_a_lead() {
    let mut server = TestServer::start();
    server.env.write_config(
        "mailboxes/acme.toml",
        "[client]\ncustomer = \"Acme\"\ndomain = \"acme.example\"\n\
         [[mailbox]]\naddress = \"regulatory\"\npriority = \"High\"\nissue_type = \"Regulatory\"\n",
    );
    server.restart();
    // Ann first becomes a sales lead, then writes twice, on two matters, to
    // the client's monitored mailbox.
    server.deliver(&[mail(
        ANN,
        "sales@example.com",
        "Pricing",
        "cm1@c.example.org",
        &[],
    )]);
    server.deliver(&[mail(
        ANN,
        "regulatory@acme.example",
        "Notice of inquiry",
        "cm2@c.example.org",
        &[],
    )]);
    server.deliver(&[mail(
        ANN,
        "regulatory@acme.example",
        "Filing deadline",
        "cm3@c.example.org",
        &[],
    )]);
    let q = queues(&server);
    assert_eq!(
        q.iter()
            .map(|(_, queue)| queue.as_str())
            .collect::<Vec<_>>(),
        vec!["sales", "monitoring", "monitoring"],
        "{q:?}"
    );
    assert_eq!(opened_because(&server, &q[1].0), "client_mailbox");
    assert_eq!(opened_because(&server, &q[2].0), "client_mailbox");
}

#[test]
fn explain_names_each_decision_and_changes_nothing() {
    let server = TestServer::start();
    server.deliver(&[mail(ANN, SUPPORT, "Login broken", "e1@c.example.org", &[])]);
    let file = server.env.dir.path().join("reply.eml");
    std::fs::write(
        &file,
        text_mail(
            ANN,
            INFO,
            "Re: Login broken",
            "e2@c.example.org",
            &[("In-Reply-To", "<e1@c.example.org>")],
            "Still broken.\n",
        ),
    )
    .expect("write eml");
    let path = file.to_str().expect("utf-8 path");
    let v = server
        .env
        .run_json(&["explain", path, "--rcpt", INFO, "--json"]);
    assert_eq!(str_field(&v, "thread_match"), "in_reply_to", "{v:#}");
    assert_eq!(str_field(&v["thread"]["action"], "action"), "join", "{v:#}");
    assert_eq!(str_field(&v, "because"), "reply", "{v:#}");
    assert_eq!(str_field(&v, "queue"), "support", "{v:#}");
    assert_eq!(str_field(&v["ticket"], "number"), "#1001", "{v:#}");
    let tried: Vec<&str> = v["thread"]["tried"]
        .as_array()
        .expect("tried")
        .iter()
        .map(|s| str_field(s, "rule"))
        .collect();
    assert_eq!(tried, ["token", "in_reply_to"]);

    let text = server.env.run_ok(&["explain", path, "--rcpt", INFO]);
    assert!(text.contains("thread     in_reply_to -> join"), "{text}");
    assert!(text.contains("route      ticket (rule reply)"), "{text}");

    // Nothing changed: still one ticket with one message.
    let t = tickets(&server);
    assert_eq!(t.len(), 1);
    assert_eq!(int_field(&t[0], "message_count"), 1);
    assert_eq!(server.messages_json().len(), 1);
}

#[test]
fn explain_shows_the_mail_an_smtp_delivery_would_send_and_ingest_would_not() {
    let server = TestServer::start();
    let file = server.env.dir.path().join("new.eml");
    std::fs::write(
        &file,
        text_mail(
            ANN,
            SUPPORT,
            "Printer on fire",
            "x1@c.example.org",
            &[],
            "Help.\n",
        ),
    )
    .expect("write eml");
    let path = file.to_str().expect("utf-8 path");

    // As `ingest` sees it: no envelope, and ingested mail sends nothing.
    let v = server.env.run_json(&["explain", path, "--json"]);
    assert_eq!(v["sends_mail"], Value::Bool(false), "{v:#}");
    assert_eq!(v["acknowledgement"]["send"], Value::Bool(false), "{v:#}");
    assert_eq!(
        str_field(&v["acknowledgement"], "because"),
        "no_mail_from_ingest",
        "{v:#}"
    );

    // Over SMTP from the customer: the acknowledgement goes out.
    let v = server.env.run_json(&[
        "explain",
        path,
        "--rcpt",
        SUPPORT,
        "--mail-from",
        ANN,
        "--json",
    ]);
    assert_eq!(v["sends_mail"], Value::Bool(true), "{v:#}");
    assert_eq!(v["acknowledgement"]["send"], Value::Bool(true), "{v:#}");
    assert_eq!(str_field(&v["sender"], "kind"), "customer", "{v:#}");
    assert_eq!(v["would_open_ticket"], Value::Bool(true), "{v:#}");

    // The null sender of a bounce: automatic mail, never answered.
    let v = server.env.run_json(&[
        "explain",
        path,
        "--rcpt",
        SUPPORT,
        "--mail-from",
        "",
        "--json",
    ]);
    assert_eq!(v["acknowledgement"]["send"], Value::Bool(false), "{v:#}");
    assert!(!v["loop_guard"].is_null(), "{v:#}");

    // Explaining stored and sent nothing.
    assert!(tickets(&server).is_empty());
    assert!(server.messages_json().is_empty());
}
