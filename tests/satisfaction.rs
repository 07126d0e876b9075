//! Satisfaction by mail, over real SMTP: an agent resolves a ticket by
//! mail (`#resolve`), the customer gets one survey mail with five
//! `mailto:` rating links, and mail to one of them records the rating
//! (score, comment) without reopening the ticket or acknowledging; a
//! second rating replaces the first; a forged address records nothing;
//! `stats satisfaction --json` counts it per queue and per agent.

mod common;

use common::sink::{Received, Sink, outbound_rules};
use common::{DEADLINE, Mail, TestServer, eventually, str_field, text_mail};
use serde_json::Value;

const ALICE: &str = "alice@customer.test";
const BOB: &str = "bob@agents.test";

fn mail(from: &str, to: &str, subject: &str, id: &str, extra: &[(&str, &str)], body: &str) -> Mail {
    Mail::new(from, &[to], text_mail(from, to, subject, id, extra, body))
}

/// The survey mails to Alice.
fn surveys(sink: &Sink) -> Vec<Received> {
    sink.to(ALICE)
        .into_iter()
        .filter(|m| m.subject().starts_with("How did we do?"))
        .collect()
}

/// The rating address of `score` in the survey's body.
fn rating_address(survey: &Received, score: u8) -> String {
    let text = &survey.parsed.text;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{score} - ")))
        .unwrap_or_else(|| panic!("no line for {score} in {text}"));
    let link = line
        .split("<mailto:")
        .nth(1)
        .unwrap_or_else(|| panic!("no mailto link in {line:?}"));
    link.split(['?', '>'])
        .next()
        .expect("an address")
        .to_owned()
}

fn events(ticket: &Value, kind: &str) -> usize {
    ticket["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| str_field(e, "kind") == kind)
        .count()
}

#[test]
fn resolving_sends_one_survey_and_a_click_records_the_rating() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        "[agents]\nbob = \"bob@agents.test\"\n[teams]\nsupport = [\"bob\"]\n",
    ));

    server.deliver(&[mail(
        ALICE,
        "support@example.com",
        "Printer on fire",
        "c1@customer.test",
        &[],
        "Hello,\nmy printer is on fire.\n",
    )]);
    sink.wait_to(ALICE, 1);
    let note = sink.wait_to(BOB, 1).remove(0);
    let agent_address = note.parsed.reply_to[0].address.clone();

    // Bob resolves the ticket by mail, with a last word to Alice.
    server.deliver(&[mail(
        BOB,
        &agent_address,
        &format!("Re: {}", note.subject()),
        "b1@agents.test",
        &[],
        "#assign bob\n#resolve\nGlad it works again.\n",
    )]);
    let survey = eventually(DEADLINE, || {
        let s = surveys(&sink);
        if s.is_empty() {
            Err("no survey yet".to_owned())
        } else {
            Ok(s)
        }
    })
    .remove(0);
    assert!(survey.subject().contains("[#1001]"), "{}", survey.subject());
    assert_eq!(survey.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(survey.mail_from, "", "automatic mail goes out from <>");
    let links = survey.parsed.text.matches("<mailto:support+s1").count();
    assert_eq!(links, 5, "{}", survey.parsed.text);
    let ticket = server.show_json("1001");
    assert_eq!(str_field(&ticket, "status"), "Resolved");
    assert!(ticket["satisfaction"].is_null(), "{ticket}");
    // Outbox rows are written in the commit that causes them, so counting
    // them after a 250 needs no waiting.
    let to_alice = |server: &TestServer| {
        server
            .outbox_json()
            .iter()
            .filter(|r| r["to"].as_str() == Some(ALICE))
            .count()
    };
    let mails_to_alice = to_alice(&server);

    // One click: a mail to the 4 address, with a word and the quote.
    let four = rating_address(&survey, 4);
    assert!(four.starts_with("support+s1."), "{four}");
    server.deliver(&[mail(
        ALICE,
        &four,
        "Rating: 4 of 5 [#1001]",
        "r1@customer.test",
        &[],
        "Quick and kind, thanks.\n\nOn Mon, Support wrote:\n> How did we do?\n",
    )]);
    let ticket = server.show_json("1001");
    assert_eq!(ticket["satisfaction"]["score"], 4, "{ticket}");
    assert_eq!(
        str_field(&ticket["satisfaction"], "comment"),
        "Quick and kind, thanks."
    );
    assert!(
        str_field(&ticket["satisfaction"], "rated_at").starts_with("20"),
        "{ticket}"
    );
    assert_eq!(str_field(&ticket, "status"), "Resolved", "not reopened");
    assert_eq!(events(&ticket, "rated"), 1);

    // A second rating replaces the first.
    server.deliver(&[mail(
        ALICE,
        &rating_address(&survey, 2),
        "Rating: 2 of 5 [#1001]",
        "r2@customer.test",
        &[],
        "",
    )]);
    let ticket = server.show_json("1001");
    assert_eq!(ticket["satisfaction"]["score"], 2, "{ticket}");
    assert_eq!(str_field(&ticket["satisfaction"], "comment"), "");
    assert_eq!(str_field(&ticket, "status"), "Resolved");
    assert_eq!(events(&ticket, "rated"), 2);

    // No acknowledgement or other mail to Alice came of the ratings.
    assert_eq!(to_alice(&server), mails_to_alice);

    // A forged MAC records nothing: the mail is an ordinary customer
    // message (here a new ticket, as nothing else threads it).
    let five = rating_address(&survey, 5);
    let mut forged = five.clone().into_bytes();
    let at = forged.iter().position(|b| *b == b'@').expect("an @") - 1;
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).expect("ascii");
    server.deliver(&[mail(
        ALICE,
        &forged,
        "Rating: 5 of 5",
        "r3@customer.test",
        &[],
        "Excellent!\n",
    )]);
    let ticket = server.show_json("1001");
    assert_eq!(ticket["satisfaction"]["score"], 2, "{ticket}");
    assert_eq!(events(&ticket, "rated"), 2);
    let forged_ticket = server.wait_tickets(2);
    assert!(
        forged_ticket
            .iter()
            .any(|t| str_field(t, "subject") == "Rating: 5 of 5"),
        "{forged_ticket:?}"
    );
    assert_eq!(surveys(&sink).len(), 1, "one survey per resolution");

    let stats = server
        .env
        .run_json(&["stats", "satisfaction", "--since", "30d", "--json"]);
    assert_eq!(stats["total"]["count"], 1, "{stats}");
    assert_eq!(stats["total"]["average"], 2.0, "{stats}");
    assert_eq!(stats["total"]["distribution"]["2"], 1, "{stats}");
    assert_eq!(stats["queues"][0]["queue"], "support", "{stats}");
    assert_eq!(stats["queues"][0]["count"], 1, "{stats}");
    assert_eq!(stats["agents"][0]["agent"], "bob", "{stats}");
    assert_eq!(stats["agents"][0]["average"], 2.0, "{stats}");
}
