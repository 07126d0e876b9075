//! Mail that machines send about mail, as real servers send it: a public
//! corpus of bounces, feedback reports and automatic replies
//! (`tests/fixtures/bounces/`, sources and licences in its README) opens
//! (almost) no ticket, ordinary mail still does, a feedback report
//! suppresses the complainer, and an automatic reply joins its ticket as an
//! event without waking anyone.
//!
//! The corpus goes through the real binary (`postdesk ingest` of a
//! Maildir); the rest over SMTP to a running server, with an aiosmtpd sink
//! as the smarthost.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::sink::{Sink, outbound_rules};
use common::{Env, Mail, Options, TestServer, str_field, text_mail};
use serde_json::Value;

const ALICE: &str = "alice@customer.test";

/// The `.eml` files of `tests/fixtures/bounces/<dir>`, sorted.
fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = common::fixture_path("bounces").join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

/// A Maildir under `env` holding `files` in `new/`.
fn maildir(env: &Env, files: &[PathBuf]) -> PathBuf {
    let md = env.dir.path().join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(md.join(sub)).expect("maildir");
    }
    for (i, f) in files.iter().enumerate() {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("m");
        fs::copy(f, md.join("new").join(format!("{i}.{name}"))).expect("copy fixture");
    }
    md
}

/// `ingest` the Maildir; returns `(read, stored, ticketed)` from its
/// summary line.
fn ingest(env: &Env, md: &Path) -> (usize, usize, usize) {
    let out = env.run_ok(&["ingest", md.to_str().expect("utf-8 path")]);
    // "<path>: N read, N stored, N duplicates, N ticketed"
    let numbers: Vec<usize> = out
        .rsplit(": ")
        .next()
        .unwrap_or("")
        .split(", ")
        .filter_map(|part| part.split_whitespace().next()?.parse().ok())
        .collect();
    match numbers.as_slice() {
        [read, stored, _, ticketed] => (*read, *stored, *ticketed),
        _ => panic!("unexpected ingest summary: {out}"),
    }
}

#[test]
fn the_bounce_corpus_opens_at_most_one_percent_of_tickets() {
    let env = Env::new(&Options::default());
    let files: Vec<PathBuf> = ["flufl-bounce", "bounced", "bounceparser", "baunsu"]
        .iter()
        .flat_map(|d| corpus(d))
        .collect();
    assert!(files.len() > 250, "corpus incomplete: {}", files.len());
    let md = maildir(&env, &files);
    let (read, stored, ticketed) = ingest(&env, &md);
    let tickets = env.tickets_json();
    println!("bounce corpus: {read} read, {stored} stored, {ticketed} ticketed");
    for t in &tickets {
        println!(
            "  ticketed: {} {}",
            str_field(t, "number"),
            str_field(t, "subject")
        );
    }
    assert_eq!(read, files.len());
    assert_eq!(stored, read, "nothing is lost");
    assert!(
        ticketed * 100 <= read,
        "{ticketed} of {read} opened or joined a ticket: {tickets:#?}"
    );
    // Nothing lost: every message is stored, each under its kind.
    assert_eq!(env.messages_json().len(), read);
}

#[test]
fn explain_names_the_rule_that_recognised_a_bounce() {
    let env = Env::new(&Options::default());
    let qmail = common::fixture_path("bounces/flufl-bounce/qmail_01.eml");
    let out = env.run_ok(&["explain", qmail.to_str().expect("utf-8 path")]);
    assert!(
        out.contains("automatic  bounce (rule mta_signature)"),
        "{out}"
    );
    assert!(out.contains("state      quarantined"), "{out}");
}

#[test]
fn ordinary_mail_next_to_the_corpus_still_opens_tickets() {
    let env = Env::new(&Options::default());
    let mut files: Vec<PathBuf> = fs::read_dir(common::fixture_path("mail"))
        .expect("fixtures/mail")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    // Spam, a newsletter, a notification and a person's reply that bounce
    // parsers keep as their negative cases.
    files.extend(corpus("ordinary"));
    let md = maildir(&env, &files);
    let (read, stored, ticketed) = ingest(&env, &md);
    println!("ordinary: {read} read, {stored} stored, {ticketed} ticketed");
    assert_eq!((read, stored), (files.len(), files.len()));
    assert_eq!(ticketed, read, "every ordinary message opens a ticket");
}

/// A customer's mail to support.
fn customer_mail(subject: &str, id: &str, body: &str) -> Mail {
    Mail::new(
        ALICE,
        &["support@example.com"],
        text_mail(ALICE, "support@example.com", subject, id, &[], body),
    )
}

/// An RFC 5965 feedback report about `original`, sent to `rcpt`.
fn arf(rcpt: &str, original: &str, id: &str) -> Vec<u8> {
    common::crlf(
        format!(
            "From: Feedback Loop <fbl@isp.test>\n\
             To: abuse@example.com\n\
             Subject: Abuse report\n\
             Message-ID: <{id}@isp.test>\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=feedback-report; boundary=\"F1\"\n\
             \n\
             --F1\n\
             Content-Type: text/plain\n\
             \n\
             This is an email abuse report for an email message received from IP 192.0.2.1.\n\
             \n\
             --F1\n\
             Content-Type: message/feedback-report\n\
             \n\
             Feedback-Type: abuse\n\
             User-Agent: SomeGenerator/1.0\n\
             Version: 1\n\
             Original-Rcpt-To: <{rcpt}>\n\
             \n\
             --F1\n\
             Content-Type: text/rfc822-headers\n\
             \n\
             From: Support <support@example.com>\n\
             To: {rcpt}\n\
             Subject: Re: Printer on fire [#1001]\n\
             Message-ID: <{original}>\n\
             \n\
             --F1--\n"
        )
        .as_bytes(),
    )
}

/// The events of ticket `number` as `(kind, cause, detail)`.
fn events(server: &TestServer, number: &str) -> Vec<(String, String, Value)> {
    server.show_json(number)["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                str_field(e, "kind").to_owned(),
                str_field(e, "cause").to_owned(),
                e["detail"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_feedback_report_suppresses_the_complainer_and_a_forged_one_nobody() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&outbound_rules("example.com", sink.port, ""));
    server.deliver(&[customer_mail(
        "Printer on fire",
        "c1@customer.test",
        "Help.\n",
    )]);
    let ack = sink.wait_to(ALICE, 1).remove(0);

    // A forged report: names Alice but a mail postdesk never sent her.
    server.deliver(&[Mail::new(
        "",
        &["support@example.com"],
        arf(ALICE, "made-up@example.com", "fbl-0"),
    )]);
    assert_eq!(server.tickets_json().len(), 1, "a report opens no ticket");
    server.deliver(&[customer_mail(
        "Second question",
        "c2@customer.test",
        "Hi.\n",
    )]);
    sink.wait_to(ALICE, 2);

    // The real report, about the acknowledgement Alice received.
    server.deliver(&[Mail::new(
        "",
        &["support@example.com"],
        arf(ALICE, common::bare_id(ack.message_id()), "fbl-1"),
    )]);
    assert_eq!(server.tickets_json().len(), 2, "a report opens no ticket");
    let shown = server.show_json("1001");
    let report = shown["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["kind"] == "feedback")
        .unwrap_or_else(|| panic!("{shown:#}"));
    assert_eq!(report["thread_match"], "in_reply_to");
    let ev = events(&server, "1001");
    let (_, cause, detail) = ev
        .iter()
        .find(|(k, _, _)| k == "delivery_failed")
        .unwrap_or_else(|| panic!("{ev:#?}"));
    assert_eq!(cause, "feedback");
    assert_eq!(detail["to"], ALICE);

    // Alice's next mail opens a ticket that is not acknowledged.
    server.deliver(&[customer_mail("Third question", "c3@customer.test", "Hi.\n")]);
    assert!(
        events(&server, "1003")
            .iter()
            .any(|(k, c, _)| k == "auto_reply_suppressed" && c == "suppressed"),
        "{:#?}",
        events(&server, "1003")
    );
    assert_eq!(
        sink.to(ALICE).len(),
        2,
        "no acknowledgement after the report"
    );
}

/// A vacation reply from Alice that sets no automatic header at all, as
/// many clients send them.
fn vacation(id: &str, in_reply_to: Option<&str>) -> Mail {
    let mut extra = Vec::new();
    if let Some(parent) = in_reply_to {
        extra.push(("In-Reply-To", parent));
    }
    Mail::new(
        ALICE,
        &["support@example.com"],
        text_mail(
            ALICE,
            "support@example.com",
            "Automatic reply: Printer on fire",
            id,
            &extra,
            "I am out of the office until Monday with limited access to email.\n",
        ),
    )
}

#[test]
fn an_automatic_reply_joins_its_ticket_as_an_event_and_wakes_nobody() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        "[agents]\nbob = \"bob@agents.test\"\n",
    ));
    server.deliver(&[customer_mail(
        "Printer on fire",
        "c1@customer.test",
        "Help.\n",
    )]);
    let ack = sink.wait_to(ALICE, 1).remove(0);
    let status = str_field(&server.show_json("1001"), "status").to_owned();
    let outbox_before = server.outbox_json().len();

    let parent = format!("<{}>", common::bare_id(ack.message_id()));
    server.deliver(&[vacation("v1@customer.test", Some(&parent))]);
    assert_eq!(server.tickets_json().len(), 1, "no ticket opened");
    let shown = server.show_json("1001");
    let reply = shown["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["kind"] == "auto_reply")
        .unwrap_or_else(|| panic!("{shown:#}"));
    assert_eq!(reply["thread_match"], "in_reply_to");
    assert_eq!(str_field(&shown, "status"), status, "no status change");
    let ev = events(&server, "1001");
    let (_, _, detail) = ev
        .iter()
        .find(|(k, _, _)| k == "auto_reply_received")
        .unwrap_or_else(|| panic!("{ev:#?}"));
    assert_eq!(detail["rule"], "autoreply_subject");
    // No acknowledgement, no agent notification: nothing was queued.
    assert_eq!(server.outbox_json().len(), outbox_before);

    // One that threads to nothing is stored, flagged, without a ticket.
    server.deliver(&[vacation("v2@customer.test", None)]);
    assert_eq!(server.tickets_json().len(), 1, "no ticket opened");
    let stored = server
        .messages_json()
        .into_iter()
        .find(|m| m["message_id"] == "v2@customer.test")
        .expect("stored");
    assert_eq!(stored["state"], "quarantined");
    assert!(stored["ticket_id"].is_null(), "{stored}");
    assert!(
        str_field(&stored, "flag").contains("automatic reply"),
        "{stored}"
    );
    assert_eq!(server.outbox_json().len(), outbox_before);
}

#[test]
fn a_person_who_forwards_or_quotes_a_bounce_opens_a_ticket() {
    let server = TestServer::start();
    let pasted = "Hello, I cannot reach your sales team. I got this back:\n\n\
        This message was created automatically by mail delivery software.\n\n\
        A message that you sent could not be delivered to one or more of its\n\
        recipients. This is a permanent error.\n\n  sales@example.com\n    \
        550 5.1.1 user unknown\n\nCan you help?\nAlice\n";
    server.deliver(&[
        customer_mail("Mail delivery failed", "p1@customer.test", pasted),
        customer_mail(
            "Fwd: Undelivered Mail Returned to Sender",
            "p2@customer.test",
            "See below.\n\n---------- Forwarded message ---------\n\
             From: MAILER-DAEMON@mx.customer.test\n\
             This is the mail system at host mx.customer.test.\n\
             I'm sorry to have to inform you that your message could not\n\
             be delivered to one or more recipients.\n",
        ),
        customer_mail(
            "Out of office replies do not work",
            "p3@customer.test",
            "Since Monday our Outlook sends no out of office replies.\n",
        ),
    ]);
    let tickets = server.tickets_json();
    assert_eq!(tickets.len(), 3, "{tickets:#?}");
}

#[test]
fn a_clients_monitored_mailbox_keeps_its_reports_and_auto_replies_as_tickets() {
    let mut server = TestServer::start();
    server.env.write_config(
        "mailboxes/acme.toml",
        "[client]\ncustomer = \"Acme\"\ndomain = \"acme.example\"\n\
         [[mailbox]]\naddress = \"abuse\"\npriority = \"High\"\nissue_type = \"Abuse\"\n",
    );
    server.restart();
    // A feedback report and a vacation reply to the client's abuse@: the
    // client's own correspondence, monitored like any other.
    server.deliver(&[
        Mail::new(
            "",
            &["abuse@acme.example"],
            arf("someone@isp.test", "m1@acme.example", "fbl-2"),
        ),
        Mail::new(
            ALICE,
            &["abuse@acme.example"],
            text_mail(
                ALICE,
                "abuse@acme.example",
                "Automatic reply: Spam from your network",
                "v3@customer.test",
                &[],
                "I am out of the office until Monday.\n",
            ),
        ),
    ]);
    let tickets = server.tickets_json();
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    assert!(
        tickets.iter().all(|t| t["queue"] == "monitoring"),
        "{tickets:#?}"
    );
}
