//! Full-text search over real SMTP: what customers wrote is found by a
//! word of its subject, its text or an attachment's name, with accents and
//! umlauts folded, ranked, and a query is never syntax.

mod common;

use common::{Mail, TestServer, crlf, text_mail};
use serde_json::Value;

fn with_attachment(from: &str, subject: &str, id: &str, name: &str) -> Mail {
    let raw = format!(
        "From: {from}\nTo: support@example.com\nSubject: {subject}\nMessage-ID: <{id}>\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n\
         --b1\nContent-Type: text/plain; charset=utf-8\n\nSee the attached file.\n\
         --b1\nContent-Type: application/pdf; name=\"{name}\"\n\
         Content-Disposition: attachment; filename*=utf-8''{}\n\
         Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b1--\n",
        name.replace('ä', "%C3%A4")
    );
    Mail::new(from, &["support@example.com"], crlf(raw.as_bytes()))
}

fn search(server: &TestServer, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["search"];
    all.extend_from_slice(args);
    all.push("--json");
    match server.env.run_json(&all) {
        Value::Array(a) => a,
        other => panic!("search --json: {other}"),
    }
}

fn tickets(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["ticket"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn words_of_subjects_texts_and_attachment_names_are_found_accents_folded() {
    let server = TestServer::start();
    let body = |text: &str| text.to_owned();
    server.deliver(&[
        Mail::new(
            "anna@kunde.test",
            &["support@example.com"],
            text_mail(
                "Anna Müller <anna@kunde.test>",
                "support@example.com",
                "Drucker brennt",
                "s1@kunde.test",
                &[],
                &body("Herr Müller sagt, der Drucker im Büro brennt.\n"),
            ),
        ),
        Mail::new(
            "bob@customer.test",
            &["support@example.com"],
            text_mail(
                "bob@customer.test",
                "support@example.com",
                "Refund request",
                "s2@customer.test",
                &[],
                "I would like a refund for order 1234, or I open a chargeback.\n",
            ),
        ),
        with_attachment(
            "carol@customer.test",
            "Invoice",
            "s3@customer.test",
            "Rechnung_März.pdf",
        ),
    ]);
    server.wait_tickets(3);

    // An umlaut word typed without its umlaut, and with it.
    for q in ["muller", "Müller", "BURO"] {
        let hits = search(&server, &[q]);
        assert_eq!(tickets(&hits), ["#1001"], "{q}: {hits:#?}");
        assert!(
            hits[0]["snippet"].as_str().unwrap_or("").contains('['),
            "{hits:#?}"
        );
        assert_eq!(hits[0]["ticket_id"], 1);
        assert_eq!(hits[0]["message_id"], "s1@kunde.test");
    }
    // A word of an attachment's name.
    assert_eq!(tickets(&search(&server, &["marz"])), ["#1003"]);
    // Every word must occur; a prefix with `*`.
    assert_eq!(tickets(&search(&server, &["refund chargeback"])), ["#1002"]);
    assert!(search(&server, &["refund drucker"]).is_empty());
    assert_eq!(tickets(&search(&server, &["charge*"])), ["#1002"]);
    // Operators and quotes are words, never syntax errors.
    assert!(search(&server, &["\"refund OR NEAR( -"]).is_empty());
    // Filters.
    assert!(search(&server, &["refund", "--status", "Closed"]).is_empty());
    assert_eq!(
        tickets(&search(&server, &["refund", "--from", "BOB@customer.test"])),
        ["#1002"]
    );
    assert!(search(&server, &["refund", "--since", "2999-01-01"]).is_empty());
    assert_eq!(
        tickets(&search(&server, &["refund", "--since", "30d"])),
        ["#1002"]
    );
    let bad = server.env.run(&["search", "refund", "--since", "lately"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since `lately`"));

    // Every message but postdesk's own system mail is indexed, once.
    let count = |q: &str| -> i64 {
        server
            .env
            .db()
            .query_row(q, [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM message_search"),
        count("SELECT COUNT(*) FROM messages WHERE kind != 'system'")
    );
    assert_eq!(count("SELECT COUNT(*) FROM message_search"), 3);

    // The acknowledgements postdesk wrote are not search results, and a
    // rebuild finds the same.
    let out = server.env.run_ok(&["search", "--rebuild"]);
    assert!(out.contains("rebuilt"), "{out}");
    assert_eq!(tickets(&search(&server, &["muller"])), ["#1001"]);
}
