//! Trust boundaries, tried the way an attacker would, over real SMTP with a
//! real SMTP server (aiosmtpd) receiving what postdesk sends.
//!
//! - A customer who holds every byte of every mail postdesk sent them
//!   (headers, envelope sender) and forges `From:` can run no command,
//!   relay nothing and change no field, on their ticket or any other.
//! - An agent address reaches only its agent and authenticates only that
//!   agent, only as an envelope recipient.
//! - A stranger who threads in by a Message-ID is held, not copied on the
//!   agents' replies, until an agent writes `#cc`.
//! - A closed ticket's agent address threads a late reply but acts only
//!   after `#reopen`.
//! - Rotating the secret: the previous one verifies while it is set.
//! - With no secret configured, `serve` generates one (0600).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use common::sink::{Received, SECRET, Sink, dsn, outbound_rules};
use common::{DEADLINE, Mail, TestServer, eventually, str_field, text_mail};
use serde_json::Value;

const ALICE: &str = "alice@customer.test";
const DAVE: &str = "dave@other.test";
const MALLORY: &str = "mallory@evil.test";
const BOB: &str = "bob@agents.test";
const CAROL: &str = "carol@agents.test";
const SUPPORT: &str = "support@example.com";

const AGENTS: &str = "[agents]\nbob = \"bob@agents.test\"\ncarol = \"carol@agents.test\"\n\
                      [teams]\nsupport = [\"bob\", \"carol\"]\n";

fn helpdesk(sink: &Sink, extra: &str) -> TestServer {
    TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        &format!("{AGENTS}{extra}"),
    ))
}

/// A customer's mail to support.
fn customer(from: &str, subject: &str, id: &str, extra: &[(&str, &str)], body: &str) -> Mail {
    Mail::new(
        from,
        &[SUPPORT],
        text_mail(from, SUPPORT, subject, id, extra, body),
    )
}

/// A mail with envelope `mail_from` → `rcpt`, `From: from_header`.
fn forged(
    mail_from: &str,
    rcpt: &str,
    from_header: &str,
    subject: &str,
    id: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Mail {
    Mail::new(
        mail_from,
        &[rcpt],
        text_mail(from_header, rcpt, subject, id, extra, body),
    )
}

fn is_notification(m: &Received) -> bool {
    m.header("Reply-To").is_some() && m.header("Auto-Submitted") == Some("auto-generated")
}

fn is_relay(m: &Received) -> bool {
    m.header("Auto-Submitted").is_none()
}

/// Notifications that reached `agent` (they carry a Reply-To).
fn notifications(sink: &Sink, agent: &str) -> Vec<Received> {
    sink.to(agent).into_iter().filter(is_notification).collect()
}

fn wait_notifications(sink: &Sink, agent: &str, n: usize) -> Vec<Received> {
    sink.wait_to_where(agent, n, is_notification)
}

/// Relayed agent replies (not automatic) that reached `to`.
fn relays(sink: &Sink, to: &str) -> Vec<Received> {
    sink.to(to).into_iter().filter(is_relay).collect()
}

fn wait_relays(sink: &Sink, to: &str, n: usize) -> Vec<Received> {
    sink.wait_to_where(to, n, is_relay)
}

/// The agent's reply to `notification`, sent to its Reply-To (envelope and
/// header), quoting it.
fn reply_to_notification(agent: &str, notification: &Received, id: &str, text: &str) -> Mail {
    let address = notification.parsed.reply_to[0].address.clone();
    forged(
        agent,
        &address,
        agent,
        &format!("Re: {}", notification.subject()),
        id,
        &[("In-Reply-To", &format!("<{}>", notification.message_id()))],
        &format!("{text}\n\n> {}\n", notification.subject()),
    )
}

fn events<'a>(ticket: &'a Value, kind: &str) -> Vec<&'a Value> {
    ticket["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// Every `support+<detail>@example.com` in `bytes`.
fn signed_addresses(bytes: &[u8]) -> BTreeSet<String> {
    let re = regex::bytes::Regex::new(r"(?i)support\+([a-z0-9.-]+)@example\.com").expect("regex");
    re.find_iter(bytes)
        .map(|m| String::from_utf8_lossy(m.as_bytes()).to_ascii_lowercase())
        .collect()
}

/// The ticket fields an attacker would want to change.
fn fields(server: &TestServer, number: &str) -> Value {
    let t = server.show_json(number);
    // The status is not among them: any customer message (and a forged
    // agent mail is one) puts a ticket waiting on the customer back to
    // Open; closing it is what an attacker must not do.
    let status = str_field(&t, "status");
    assert!(status == "Open" || status == "Replied", "status {status}");
    serde_json::json!({
        "priority": t["priority"], "assignee": t["assignee"],
        "issue_type": t["issue_type"], "tags": t["tags"], "queue": t["queue"],
    })
}

#[test]
fn a_customer_holding_every_byte_of_their_mail_can_act_on_no_ticket() {
    let sink = Sink::start();
    let server = helpdesk(&sink, "");
    server.deliver(&[customer(
        ALICE,
        "Printer on fire",
        "a1@customer.test",
        &[],
        "Help, my printer is on fire.\n",
    )]);
    server.deliver(&[customer(
        DAVE,
        "Invoice question",
        "d1@other.test",
        &[],
        "Where is my invoice?\n",
    )]);
    // Bob answers Alice, so she gets a relayed reply too (and its envelope).
    let to_bob = wait_notifications(&sink, BOB, 2);
    let alices = to_bob
        .iter()
        .find(|n| n.subject().contains("[#1001]"))
        .expect("notification of #1001");
    server.deliver(&[reply_to_notification(
        BOB,
        alices,
        "b1@agents.test",
        "Unplug it and step away.",
    )]);
    wait_relays(&sink, ALICE, 1);
    eventually(DEADLINE, || {
        // The acknowledgement and the relay.
        let n = sink.to(ALICE).len();
        if n >= 2 {
            Ok(())
        } else {
            Err(format!("{n} mails to Alice"))
        }
    });

    // Everything Alice holds: every byte of every mail, and every envelope
    // sender it came with.
    let mut held: Vec<u8> = Vec::new();
    for m in sink.to(ALICE) {
        held.extend_from_slice(&m.raw);
        held.extend_from_slice(format!("\nReturn-Path: <{}>\n", m.mail_from).as_bytes());
    }
    let addresses = signed_addresses(&held);
    assert!(
        !addresses.is_empty(),
        "the relay's envelope sender is a bounce address"
    );
    for a in &addresses {
        assert!(
            a.starts_with("support+b"),
            "only bounce addresses reach a customer, found {a}"
        );
    }
    let relay = relays(&sink, ALICE).remove(0);
    assert!(
        relay.mail_from.starts_with("support+b"),
        "{}",
        relay.mail_from
    );

    let before_1001 = fields(&server, "1001");
    let before_1002 = fields(&server, "1002");
    let mails_before = sink.messages().len();
    let attack = "#priority urgent\n#tag pwned\n#assign carol\n#type Refund\n#cc mallory@evil.test\n\
                  #merge 1002\n#close\nDave, the agent here: please wire the money to me.\n";
    let mut attempts = Vec::new();
    let mut targets: Vec<String> = addresses.iter().cloned().collect();
    targets.push(SUPPORT.to_owned());
    for (i, to) in targets.iter().enumerate() {
        for (j, auto) in [false, true].into_iter().enumerate() {
            let mut extra = vec![("In-Reply-To", format!("<{}>", relay.message_id()))];
            if auto {
                // Automatic mail is what a bounce address threads.
                extra.push(("Auto-Submitted", "auto-replied".to_owned()));
            }
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            attempts.push(forged(
                BOB,
                to,
                &format!("Bob <{BOB}>"),
                "Re: [#1001] Printer on fire",
                &format!("attack-{i}-{j}@customer.test"),
                &extra,
                attack,
            ));
        }
    }
    server.deliver(&attempts);

    // Nothing changed on either ticket.
    assert_eq!(fields(&server, "1001"), before_1001);
    assert_eq!(fields(&server, "1002"), before_1002);
    let shown = server.show_json("1001");
    assert!(
        !events(&shown, "agent_not_authenticated").is_empty(),
        "the forged agent mail is recorded as such: {shown:#}"
    );
    for kind in [
        "priority_changed",
        "assigned",
        "type_changed",
        "tag_added",
        "participant_copied",
    ] {
        assert!(events(&shown, kind).is_empty(), "{kind} on #1001");
    }
    // Nothing relayed to anyone: the only mails since are notifications
    // to the agents (which carry the text as a customer's message).
    let sent = server.outbox_json();
    for row in &sent {
        let to = row["to"].as_str().unwrap_or("");
        assert!(
            to != MALLORY && (to != DAVE || row["kind"] == "ack"),
            "nothing may go to {to}: {row}"
        );
    }
    let after: Vec<Received> = sink.messages().into_iter().skip(mails_before).collect();
    for m in &after {
        assert!(
            m.rcpt_tos.iter().all(|r| r == BOB || r == CAROL),
            "after the attack only agents got mail, got {:?} {:?}",
            m.rcpt_tos,
            m.subject()
        );
    }
    assert_eq!(
        relays(&sink, ALICE).len(),
        1,
        "no second relay to the customer"
    );
}

#[test]
fn an_agent_address_reaches_only_its_agent_and_authenticates_only_them() {
    let sink = Sink::start();
    let server = helpdesk(&sink, "");
    server.deliver(&[customer(
        ALICE,
        "Broken hinge",
        "h1@customer.test",
        &[],
        "The hinge broke.\n",
    )]);
    let bobs = wait_notifications(&sink, BOB, 1).remove(0);
    let carols = wait_notifications(&sink, CAROL, 1).remove(0);
    // One recipient per notification, each with an address of its own.
    for (n, agent) in [(&bobs, BOB), (&carols, CAROL)] {
        assert_eq!(n.rcpt_tos, [agent]);
        assert_eq!(n.parsed.to.len(), 1);
        assert_eq!(n.parsed.to[0].address, agent);
        assert!(n.parsed.cc.is_empty());
        let r = &n.parsed.reply_to[0].address;
        assert!(r.starts_with("support+a"), "{r}");
        assert!(n.mail_from.starts_with("support+b"), "{}", n.mail_from);
    }
    let bob_address = bobs.parsed.reply_to[0].address.clone();
    assert_ne!(bob_address, carols.parsed.reply_to[0].address);
    // No other mail carries an agent address.
    for m in sink.to(ALICE) {
        assert!(
            signed_addresses(&m.raw)
                .iter()
                .all(|a| !a.starts_with("support+a")),
            "{}",
            String::from_utf8_lossy(&m.raw)
        );
    }

    // Carol (a real agent) writing to Bob's address is not Bob, nor Carol.
    server.deliver(&[forged(
        CAROL,
        &bob_address,
        CAROL,
        "Re: [#1001] Broken hinge",
        "c1@agents.test",
        &[],
        "#priority urgent\nHi Alice, Carol here.\n",
    )]);
    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "priority"), "Medium");
    let why = events(&shown, "agent_not_authenticated");
    assert!(
        why.iter().any(|e| str_field(&e["detail"], "why")
            .contains("issued to bob@agents.test, the mail is from carol@agents.test")),
        "{why:#?}"
    );
    // Bob's address only in a header, the envelope to plain support: no.
    server.deliver(&[Mail::new(
        BOB,
        &[SUPPORT],
        text_mail(
            BOB,
            &bob_address,
            "Re: [#1001] Broken hinge",
            "b0@agents.test",
            &[],
            "#priority urgent\nHeader only.\n",
        ),
    )]);
    assert_eq!(str_field(&server.show_json("1001"), "priority"), "Medium");
    assert!(relays(&sink, ALICE).is_empty());

    // Bob with his own address, as the envelope recipient: acts.
    server.deliver(&[reply_to_notification(
        BOB,
        &bobs,
        "b1@agents.test",
        "#priority high\nWe will send a new hinge.",
    )]);
    let relay = wait_relays(&sink, ALICE, 1).remove(0);
    assert!(relay.parsed.text.contains("We will send a new hinge"));
    assert_eq!(str_field(&server.show_json("1001"), "priority"), "High");
}

#[test]
fn a_stranger_who_threads_in_by_message_id_is_held_until_an_agent_copies_them() {
    let sink = Sink::start();
    let server = helpdesk(&sink, "");
    server.deliver(&[customer(
        ALICE,
        "Contract renewal",
        "r1@customer.test",
        &[],
        "Please renew.\n",
    )]);
    wait_notifications(&sink, BOB, 1);
    // Mallory learned Alice's Message-ID and replies to it.
    server.deliver(&[customer(
        MALLORY,
        "Re: Contract renewal",
        "m1@evil.test",
        &[("In-Reply-To", "<r1@customer.test>")],
        "I am Alice's colleague, copy me please.\n",
    )]);
    let shown = server.show_json("1001");
    assert_eq!(shown["message_count"], 2, "threading by id still works");
    let new = events(&shown, "new_participant");
    assert_eq!(new.len(), 1, "{shown:#}");
    assert_eq!(new[0]["detail"]["address"], MALLORY);
    assert_eq!(new[0]["detail"]["role"], "held");
    assert!(
        shown["participants"]
            .as_array()
            .expect("participants")
            .iter()
            .any(|p| p["address"] == MALLORY && p["role"] == "held"),
        "{shown:#}"
    );
    let note = wait_notifications(&sink, BOB, 2)
        .into_iter()
        .find(|n| n.parsed.text.contains("copy me please"))
        .expect("notification of Mallory's mail");
    assert!(
        note.parsed
            .text
            .contains("mallory@evil.test is new to this ticket"),
        "{}",
        note.parsed.text
    );

    // Bob answers: only Alice gets it.
    server.deliver(&[reply_to_notification(
        BOB,
        &note,
        "b1@agents.test",
        "Renewed for a year.",
    )]);
    let relay = wait_relays(&sink, ALICE, 1).remove(0);
    assert_eq!(relay.rcpt_tos, [ALICE]);
    assert!(relay.parsed.cc.is_empty());
    assert!(relays(&sink, MALLORY).is_empty());

    // `#cc` copies them, on this reply already.
    server.deliver(&[reply_to_notification(
        BOB,
        &note,
        "b2@agents.test",
        "#cc mallory@evil.test\nCopying your colleague.",
    )]);
    let to_mallory = wait_relays(&sink, MALLORY, 1).remove(0);
    assert!(to_mallory.parsed.text.contains("Copying your colleague"));
    assert!(
        to_mallory.parsed.to.iter().any(|a| a.address == ALICE),
        "the same reply, to Alice and Mallory"
    );
    // One bounce address per recipient (VERP): a DSN names whose mail
    // bounced, and Mallory's Return-Path says nothing about Alice's.
    let to_alice = wait_relays(&sink, ALICE, 2)
        .into_iter()
        .find(|m| m.parsed.text.contains("Copying your colleague"))
        .expect("the same reply to Alice");
    assert!(
        to_mallory.mail_from.starts_with("support+b1."),
        "{}",
        to_mallory.mail_from
    );
    assert!(
        to_alice.mail_from.starts_with("support+b1."),
        "{}",
        to_alice.mail_from
    );
    assert_ne!(to_mallory.mail_from, to_alice.mail_from);
    let shown = server.show_json("1001");
    assert_eq!(events(&shown, "participant_copied").len(), 1);

    // With new_participants = "cc" a stranger is copied at once.
    let sink2 = Sink::start();
    let rules = outbound_rules("example.com", sink2.port, AGENTS)
        .replace("[threading]\n", "[threading]\nnew_participants = \"cc\"\n");
    let server2 = TestServer::start_with_rules(&rules);
    server2.deliver(&[customer(
        ALICE,
        "Quote",
        "q1@customer.test",
        &[],
        "A quote?\n",
    )]);
    server2.deliver(&[customer(
        MALLORY,
        "Re: Quote",
        "q2@evil.test",
        &[("In-Reply-To", "<q1@customer.test>")],
        "Me too.\n",
    )]);
    let shown = server2.show_json("1001");
    assert_eq!(events(&shown, "new_participant")[0]["detail"]["role"], "cc");
}

#[test]
fn a_closed_tickets_agent_address_takes_a_late_reply_only_after_reopen() {
    let sink = Sink::start();
    let server = helpdesk(&sink, "");
    server.deliver(&[customer(
        ALICE,
        "Lost parcel",
        "p1@customer.test",
        &[],
        "My parcel is lost.\n",
    )]);
    let note = wait_notifications(&sink, BOB, 1).remove(0);
    server.deliver(&[reply_to_notification(
        BOB,
        &note,
        "b1@agents.test",
        "#close",
    )]);
    assert_eq!(str_field(&server.show_json("1001"), "status"), "Closed");

    // A late reply without #reopen: answered, not relayed, nothing changes.
    server.deliver(&[reply_to_notification(
        BOB,
        &note,
        "b2@agents.test",
        "#priority urgent\nFound it after all!",
    )]);
    let shown = server.show_json("1001");
    assert_eq!(str_field(&shown, "status"), "Closed");
    assert_eq!(str_field(&shown, "priority"), "Medium");
    assert!(relays(&sink, ALICE).is_empty());
    let answer = eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.parsed.text.contains("start the mail with #reopen"))
            .ok_or_else(|| "no answer to Bob yet".to_owned())
    });
    assert!(
        answer.parsed.reply_to[0].address.starts_with("support+a"),
        "the answer carries Bob's agent address"
    );

    // With #reopen it goes out, and the ticket waits on the customer.
    server.deliver(&[reply_to_notification(
        BOB,
        &note,
        "b3@agents.test",
        "#reopen\nFound it after all!",
    )]);
    let relay = wait_relays(&sink, ALICE, 1).remove(0);
    assert!(relay.parsed.text.contains("Found it after all"));
    assert_eq!(str_field(&server.show_json("1001"), "status"), "Replied");
}

#[test]
fn the_previous_secret_verifies_agent_addresses_while_it_is_set() {
    let sink = Sink::start();
    let mut server = helpdesk(&sink, "");
    server.deliver(&[customer(
        ALICE,
        "Rotation",
        "s1@customer.test",
        &[],
        "Hello.\n",
    )]);
    let old_note = wait_notifications(&sink, BOB, 1).remove(0);

    // Rotate: a new secret, the old one kept for verification.
    let dir = &server.env.config_dir;
    std::fs::write(dir.join("old_secret"), SECRET).expect("write");
    std::fs::write(
        dir.join("token_secret"),
        "a brand new secret of enough bytes",
    )
    .expect("write");
    for f in ["old_secret", "token_secret"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let rules = outbound_rules("example.com", sink.port, AGENTS);
    let rotating = rules.replace(
        "[threading]\n",
        "[threading]\ntoken_secret_previous_file = \"old_secret\"\n",
    );
    server.env.write_config("rules.toml", &rotating);
    server.restart();
    server.deliver(&[reply_to_notification(
        BOB,
        &old_note,
        "b1@agents.test",
        "#tag rotated\nStill works.",
    )]);
    wait_relays(&sink, ALICE, 1);
    assert_eq!(
        server.show_json("1001")["tags"],
        serde_json::json!(["rotated"])
    );

    // The previous secret dropped: the old address authenticates no more.
    server.env.write_config("rules.toml", &rules);
    server.restart();
    server.deliver(&[reply_to_notification(
        BOB,
        &old_note,
        "b2@agents.test",
        "#tag stale\nToo late.",
    )]);
    let shown = server.show_json("1001");
    assert_eq!(shown["tags"], serde_json::json!(["rotated"]));
    assert!(!events(&shown, "agent_not_authenticated").is_empty());
    assert_eq!(relays(&sink, ALICE).len(), 1);
    // Mail signed with the new secret works.
    server.deliver(&[customer(
        ALICE,
        "Re: Rotation",
        "s2@customer.test",
        &[("In-Reply-To", "<s1@customer.test>")],
        "Any news?\n",
    )]);
    let new_note = eventually(DEADLINE, || {
        notifications(&sink, BOB)
            .into_iter()
            .find(|n| n.parsed.text.contains("Any news?"))
            .ok_or_else(|| "no notification of Alice's second mail".to_owned())
    });
    assert_ne!(
        new_note.parsed.reply_to[0].address,
        old_note.parsed.reply_to[0].address
    );
    server.deliver(&[reply_to_notification(
        BOB,
        &new_note,
        "b3@agents.test",
        "#tag fresh\nNew address.",
    )]);
    wait_relays(&sink, ALICE, 2);
}

#[test]
fn serve_generates_a_private_token_secret_when_none_is_configured() {
    let sink = Sink::start();
    let rules = outbound_rules("example.com", sink.port, AGENTS)
        .replace("token_secret_file = \"token_secret\"\n", "");
    let env = common::Env::new(&common::Options::default());
    std::fs::write(env.config_dir.join("rules.toml"), &rules).expect("write rules");
    let server = TestServer::start_in(env, Vec::new());
    let file = server.env.data_dir.join("token_secret");
    let meta = std::fs::metadata(&file).expect("generated secret file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&file).expect("read").trim().len() >= 32);
    assert!(
        server.stderr().contains("generated a token secret"),
        "{}",
        server.stderr()
    );
    server.deliver(&[customer(ALICE, "Hello", "g1@customer.test", &[], "Hi.\n")]);
    let note = wait_notifications(&sink, BOB, 1).remove(0);
    assert!(note.parsed.reply_to[0].address.starts_with("support+a"));
    server.deliver(&[reply_to_notification(
        BOB,
        &note,
        "b1@agents.test",
        "Agents can reply out of the box.",
    )]);
    wait_relays(&sink, ALICE, 1);
}

#[test]
fn a_cc_participant_cannot_forge_a_bounce_that_silences_the_requester() {
    let sink = Sink::start();
    let server = helpdesk(&sink, "");
    server.deliver(&[customer(
        ALICE,
        "Shared case",
        "x1@customer.test",
        &[],
        "Please copy my colleague.\n",
    )]);
    let note = wait_notifications(&sink, BOB, 1).remove(0);
    server.deliver(&[reply_to_notification(
        BOB,
        &note,
        "b1@agents.test",
        "#cc mallory@evil.test\nHello both.",
    )]);
    let to_mallory = wait_relays(&sink, MALLORY, 1).remove(0);
    let to_alice = wait_relays(&sink, ALICE, 1).remove(0);
    assert_eq!(to_mallory.message_id(), to_alice.message_id());

    // Mallory holds the relay's Message-ID, Alice's address and her own
    // bounce address: three forged DSNs saying Alice's mailbox is gone.
    let relay_id = to_mallory.message_id().to_owned();
    server.deliver(&[
        Mail::new(
            "",
            &[&to_mallory.mail_from],
            dsn(&to_mallory.mail_from, ALICE, &relay_id, "f1@mx.test"),
        ),
        Mail::new("", &[SUPPORT], dsn(SUPPORT, ALICE, &relay_id, "f2@mx.test")),
    ]);
    let shown = server.show_json("1001");
    let refused = events(&shown, "bounce_not_acted_on");
    assert_eq!(refused.len(), 2, "{shown:#}");
    assert!(events(&shown, "delivery_failed").is_empty(), "{shown:#}");
    // Alice still gets mail.
    let before = relays(&sink, ALICE).len();
    server.deliver(&[reply_to_notification(
        BOB,
        &note,
        "b2@agents.test",
        "Still reaching you?",
    )]);
    wait_relays(&sink, ALICE, before + 1);

    // The real bounce comes to the envelope sender of Alice's own copy.
    server.deliver(&[Mail::new(
        "",
        &[&to_alice.mail_from],
        dsn(&to_alice.mail_from, ALICE, &relay_id, "r1@mx.test"),
    )]);
    let shown = server.show_json("1001");
    let failed = events(&shown, "delivery_failed");
    assert_eq!(failed.len(), 1, "{shown:#}");
    assert_eq!(failed[0]["detail"]["to"], ALICE);
}
