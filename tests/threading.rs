//! Threading against the running server over SMTP: one
//! conversation, one ticket, whichever rule finds it, and never a second
//! ticket for a duplicate or a stranger inside someone else's ticket.
//!
//! Every test starts its own `postdesk serve` on port 0 (tests/common), sends
//! real mail with Python's smtplib and reads the result back with the CLI
//! (`tickets --json`, `show --json`, `messages --json`). The server answers
//! 250 only after the commit, so what the CLI reads right after a delivery
//! is what the pipeline decided.

mod common;

use common::{Mail, Options, TestServer, bare_id, find_message, int_field, mail, str_field};
use serde_json::Value;

const ANN: &str = "ann@customer.example.org";
const SUPPORT: &str = "support@example.com";

/// The one ticket the server has, shown.
fn only_ticket(server: &TestServer) -> Value {
    let tickets = server.tickets_json();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    server.show_json(&int_field(&tickets[0], "id").to_string())
}

/// `thread_match` of the message with `id` in a shown ticket.
fn matched<'a>(shown: &'a Value, id: &str) -> &'a str {
    let messages = shown["messages"].as_array().expect("messages array");
    let m = find_message(messages, id).unwrap_or_else(|| panic!("{id} not in {shown:#}"));
    str_field(m, "thread_match")
}

/// The ticket numbers (`#1001`) of every ticket, oldest first.
fn numbers(server: &TestServer) -> Vec<String> {
    let mut n: Vec<String> = server
        .tickets_json()
        .iter()
        .map(|t| str_field(t, "number").to_owned())
        .collect();
    n.sort();
    n
}

/// A server whose `[threading]` table is `threading` (plus the token secret
/// file `secret`, kept alive by the returned temp dir).
fn server_with_secret(threading: &str) -> (TestServer, tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = b"integration-test-secret-0123456789".to_vec();
    let path = dir.path().join("token_secret");
    common::write_private(&path, &secret);
    let extra_toml = format!(
        "[threading]\ntoken_secret_file = \"{}\"\n{threading}\n",
        path.display()
    );
    let server = TestServer::start_with(Options {
        extra_toml,
        ..Options::default()
    });
    (server, dir, secret)
}

#[test]
fn reply_with_in_reply_to_joins_the_ticket() {
    let server = TestServer::start();
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "Printer on fire",
        "p1@c.example.org",
        &[],
    )]);
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "Something else entirely",
        "p2@c.example.org",
        &[("In-Reply-To", "<p1@c.example.org>")],
    )]);
    let shown = only_ticket(&server);
    assert_eq!(int_field(&shown, "message_count"), 2);
    assert_eq!(matched(&shown, "p1@c.example.org"), "new");
    assert_eq!(matched(&shown, "p2@c.example.org"), "in_reply_to");
}

#[test]
fn reply_with_only_references_joins_the_newest_known_ticket() {
    let server = TestServer::start();
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "Printer on fire",
        "r1@c.example.org",
        &[],
    )]);
    server.deliver(&[mail(
        "bea@other.example.org",
        SUPPORT,
        "Totally different words",
        "r2@c.example.org",
        &[(
            "References",
            "<r1@c.example.org> <never-seen@elsewhere.example.net>",
        )],
    )]);
    let shown = only_ticket(&server);
    assert_eq!(matched(&shown, "r2@c.example.org"), "references");
}

#[test]
fn several_mails_from_one_customer_with_the_same_subject_make_one_ticket() {
    // Outlook-style RE:/AW: prefixes, case and spacing do not change the
    // subject the recent-ticket rule compares.
    let server = TestServer::start();
    server.deliver(&[
        mail(ANN, SUPPORT, "Invoice 42 is wrong", "s1@c.example.org", &[]),
        mail(ANN, SUPPORT, "Invoice 42 is wrong", "s2@c.example.org", &[]),
        mail(
            ANN,
            SUPPORT,
            "RE: Invoice 42 is wrong",
            "s3@c.example.org",
            &[],
        ),
        mail(
            ANN,
            SUPPORT,
            "AW: RE: invoice 42   is WRONG",
            "s4@c.example.org",
            &[],
        ),
        mail(
            ANN,
            SUPPORT,
            "SV: Antw: Fwd: Invoice 42 is wrong",
            "s5@c.example.org",
            &[],
        ),
        // With the tag, rule 3 (the tag, from a participant) comes first.
        mail(
            ANN,
            SUPPORT,
            "Re: [#1001] Invoice 42 is wrong",
            "s6@c.example.org",
            &[],
        ),
    ]);
    let shown = only_ticket(&server);
    assert_eq!(int_field(&shown, "message_count"), 6);
    for id in ["s2", "s3", "s4", "s5"] {
        assert_eq!(
            matched(&shown, &format!("{id}@c.example.org")),
            "recent",
            "{id}"
        );
    }
    assert_eq!(matched(&shown, "s6@c.example.org"), "subject_tag");
    assert_eq!(str_field(&shown, "subject"), "Invoice 42 is wrong");
}

#[test]
fn same_subject_from_another_sender_or_to_another_address_is_another_ticket() {
    let server = TestServer::start();
    server.deliver(&[
        mail(ANN, SUPPORT, "Login broken", "d1@c.example.org", &[]),
        mail(
            "bea@other.example.org",
            SUPPORT,
            "Login broken",
            "d2@c.example.org",
            &[],
        ),
        mail(
            ANN,
            "sales@example.com",
            "Login broken",
            "d3@c.example.org",
            &[],
        ),
    ]);
    assert_eq!(server.tickets_json().len(), 3);
}

#[test]
fn recent_rule_can_be_turned_off() {
    let server = TestServer::start_with(Options {
        extra_toml: "[threading]\nrecent_rule = false\n".into(),
        ..Options::default()
    });
    server.deliver(&[
        mail(ANN, SUPPORT, "Invoice 42 is wrong", "o1@c.example.org", &[]),
        mail(
            ANN,
            SUPPORT,
            "Re: Invoice 42 is wrong",
            "o2@c.example.org",
            &[],
        ),
    ]);
    assert_eq!(server.tickets_json().len(), 2);
}

#[test]
fn participant_using_the_tag_joins_but_a_stranger_gets_a_new_ticket() {
    let server = TestServer::start();
    server.deliver(&[mail(ANN, SUPPORT, "Broken hinge", "t1@c.example.org", &[])]);
    assert_eq!(numbers(&server), ["#1001"]);
    // The requester quotes the tag on a new subject: joins.
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "[#1001] photos attached",
        "t2@c.example.org",
        &[],
    )]);
    // A stranger quoting the same tag gets a ticket of their own.
    server.deliver(&[mail(
        "mallory@evil.example.net",
        SUPPORT,
        "Re: [#1001] Broken hinge",
        "t3@evil.example.net",
        &[],
    )]);
    assert_eq!(numbers(&server), ["#1001", "#1002"]);
    let first = server.show_json("1001");
    assert_eq!(int_field(&first, "message_count"), 2);
    assert_eq!(matched(&first, "t2@c.example.org"), "subject_tag");
    let second = server.show_json("1002");
    assert_eq!(str_field(&second, "requester"), "mallory@evil.example.net");
    assert_eq!(matched(&second, "t3@evil.example.net"), "new");
}

#[test]
fn signed_reply_token_joins_and_a_forged_one_does_not() {
    let (server, _dir, secret) = server_with_secret("");
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "Where is my parcel",
        "k1@c.example.org",
        &[],
    )]);
    let ticket_id = int_field(&server.tickets_json()[0], "id");
    let secret = postdesk::token::Secret::new(&secret).expect("secret long enough");
    let keys = postdesk::token::Keys {
        current: &secret,
        previous: None,
    };
    let reply_to = postdesk::token::address(
        keys,
        &postdesk::token::Purpose::Customer,
        postdesk::domain::TicketId(ticket_id),
        SUPPORT,
    );
    assert!(
        reply_to.starts_with(&format!("support+c{ticket_id}-")),
        "{reply_to}"
    );

    // Another person, a new subject, no References: only the token links it.
    server.deliver(&[mail(
        "carl@warehouse.example.org",
        &reply_to,
        "Parcel status",
        "k2@w.example.org",
        &[],
    )]);
    let shown = only_ticket(&server);
    assert_eq!(matched(&shown, "k2@w.example.org"), "token");

    // The same token with one hex digit changed does not verify.
    let mut forged = reply_to.clone().into_bytes();
    let at = forged.iter().position(|b| *b == b'@').expect("has @") - 1;
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).expect("ascii");
    server.deliver(&[mail(
        "carl@warehouse.example.org",
        &forged,
        "Parcel status again",
        "k3@w.example.org",
        &[],
    )]);
    assert_eq!(
        server.tickets_json().len(),
        2,
        "the forged token must not join #1001"
    );
    let second = server.show_json("1002");
    assert_eq!(matched(&second, "k3@w.example.org"), "new");
    // The forged address still routes by its base address: support.
    assert_eq!(str_field(&second, "queue"), "support");
}

#[test]
fn reply_to_a_closed_ticket_inside_the_reopen_window_reopens_it() {
    let server = TestServer::start();
    server.deliver(&[mail(ANN, SUPPORT, "Refund please", "c1@c.example.org", &[])]);
    server.env.run_ok(&["close", "1001"]);
    assert_eq!(str_field(&server.show_json("1001"), "status"), "Closed");
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "Re: Refund please",
        "c2@c.example.org",
        &[("In-Reply-To", "<c1@c.example.org>")],
    )]);
    let shown = only_ticket(&server);
    assert_eq!(str_field(&shown, "status"), "Open");
    assert_eq!(matched(&shown, "c2@c.example.org"), "in_reply_to");
    let kinds: Vec<&str> = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| str_field(e, "kind"))
        .collect();
    assert!(kinds.contains(&"status_changed"), "{kinds:?}");
    assert!(kinds.contains(&"ticket_reopened"), "{kinds:?}");
}

#[test]
fn reply_to_a_closed_ticket_outside_the_reopen_window_opens_a_linked_ticket() {
    // A window of 0 days: every reply to a closed ticket is outside it
    // (the window arithmetic itself is unit-tested with explicit times).
    let server = TestServer::start_with(Options {
        extra_toml: "[threading]\nreopen_window_days = 0\n".into(),
        ..Options::default()
    });
    server.deliver(&[mail(ANN, SUPPORT, "Refund please", "w1@c.example.org", &[])]);
    server.env.run_ok(&["close", "#1001"]);
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "Re: Refund please",
        "w2@c.example.org",
        &[("In-Reply-To", "<w1@c.example.org>")],
    )]);
    assert_eq!(numbers(&server), ["#1001", "#1002"]);
    let old = server.show_json("1001");
    assert_eq!(str_field(&old, "status"), "Closed");
    assert_eq!(int_field(&old, "message_count"), 1);
    let new = server.show_json("1002");
    assert_eq!(str_field(&new, "linked_ticket"), "#1001");
    assert_eq!(str_field(&new, "status"), "Open");
    assert_eq!(matched(&new, "w2@c.example.org"), "in_reply_to");
}

#[test]
fn duplicate_delivery_makes_no_second_ticket() {
    let server = TestServer::start();
    let first = mail(ANN, SUPPORT, "Same mail twice", "dup@c.example.org", &[]);
    // The same bytes again, and once more to two of our addresses.
    let mut twice = first.clone();
    twice.to = vec![SUPPORT.into(), "info@example.com".into()];
    server.deliver(&[first.clone(), first, twice]);
    assert_eq!(server.messages_json().len(), 1);
    let shown = only_ticket(&server);
    assert_eq!(int_field(&shown, "message_count"), 1);
}

#[test]
fn reused_message_id_with_new_content_is_kept_as_a_new_message() {
    const REUSED: &str = "reused@c.example.org";
    let server = TestServer::start();
    // The first holder of the id, and a reply to it from someone else: the
    // first ticket now holds a message that references the id.
    server.deliver(&[
        mail(ANN, SUPPORT, "First topic", REUSED, &[]),
        mail(
            "bea@other.example.org",
            SUPPORT,
            "Re: First topic",
            "bea-1@o.example.org",
            &[("In-Reply-To", "<reused@c.example.org>")],
        ),
    ]);
    let first = only_ticket(&server);
    assert_eq!(int_field(&first, "message_count"), 2, "{first:#}");
    // The same id on a new topic: kept, flagged, and on a ticket of its
    // own, not pulled into the first one by the reply that references the
    // borrowed id.
    server.deliver(&[mail(ANN, SUPPORT, "Second topic", REUSED, &[])]);
    let mut messages: Vec<Value> = server
        .messages_json()
        .into_iter()
        .filter(|m| bare_id(str_field(m, "message_id")) == REUSED)
        .collect();
    messages.sort_by_key(|m| int_field(m, "id"));
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0]["flag"].is_null(), "{:?}", messages[0]);
    assert_eq!(
        str_field(&messages[1], "flag"),
        postdesk::pipeline::REUSED_ID_FLAG,
        "{:?}",
        messages[1]
    );
    let first_id = int_field(&first, "id");
    assert_eq!(int_field(&messages[0], "ticket_id"), first_id);
    let second_id = int_field(&messages[1], "ticket_id");
    assert_ne!(
        second_id, first_id,
        "joined the first ticket: {messages:#?}"
    );
    assert_eq!(server.tickets_json().len(), 2);
    let second = server.show_json(&second_id.to_string());
    assert_eq!(str_field(&second, "subject"), "Second topic", "{second:#}");
    assert_eq!(int_field(&second, "message_count"), 1, "{second:#}");
    assert_eq!(matched(&second, REUSED), "new", "{second:#}");
    let first = server.show_json(&first_id.to_string());
    assert_eq!(int_field(&first, "message_count"), 2, "{first:#}");
}

#[test]
fn reply_arriving_before_its_parent_ends_in_one_ticket() {
    let server = TestServer::start();
    // The reply first (different sender and subject, so no other rule helps).
    server.deliver(&[mail(
        "bea@other.example.org",
        SUPPORT,
        "Re: Broken pipe",
        "ooo-2@o.example.org",
        &[
            ("In-Reply-To", "<ooo-1@c.example.org>"),
            ("References", "<ooo-1@c.example.org>"),
        ],
    )]);
    // A second reply to the same (still missing) parent.
    server.deliver(&[mail(
        "carl@third.example.org",
        SUPPORT,
        "Re: Broken pipe (me too)",
        "ooo-3@t.example.org",
        &[
            ("In-Reply-To", "<ooo-1@c.example.org>"),
            ("References", "<ooo-1@c.example.org>"),
        ],
    )]);
    // Then the parent.
    server.deliver(&[mail(
        ANN,
        SUPPORT,
        "Broken pipe",
        "ooo-1@c.example.org",
        &[],
    )]);
    let shown = only_ticket(&server);
    assert_eq!(int_field(&shown, "message_count"), 3);
    assert_eq!(matched(&shown, "ooo-2@o.example.org"), "new");
    assert_eq!(matched(&shown, "ooo-3@t.example.org"), "shared_reference");
    assert_eq!(matched(&shown, "ooo-1@c.example.org"), "referenced_by");
}

#[test]
fn message_without_message_id_gets_a_synthetic_one_and_dedupes() {
    let server = TestServer::start();
    let raw = common::crlf(
        b"From: ann@customer.example.org\nTo: support@example.com\nSubject: No id\n\nHello\n",
    );
    let m = Mail::new(ANN, &[SUPPORT], raw);
    server.deliver(&[m.clone(), m]);
    let messages = server.messages_json();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(str_field(&messages[0], "message_id").ends_with("@synthetic.postdesk.invalid"));
    assert_eq!(server.tickets_json().len(), 1);
}
