//! What the bypass detector sets in motion, end to end over SMTP (issue
//! #5): the warning in the thread, the Compliance Alert ticket and the
//! admins' alert; the repeat that raises the alert to Urgent, suspends the
//! client and sends the notice; lifting the suspension (CLI and
//! `#unsuspend` by mail); a quoted warning that does not flag again; and a
//! rule change that makes the running server rescan stored mail.
//!
//! Real peers only: the real binary on port 0, Python's smtplib as the
//! customer, aiosmtpd (tests/common/smtp_sink.py) receiving every mail
//! postdesk sends. Arrivals are polled with `eventually`, never slept for.

mod common;

use common::sink::{Received, Sink, outbound_rules};
use common::{DEADLINE, Mail, TestServer, eventually, str_field, text_mail};
use std::time::Duration;

use serde_json::Value;

const ANN: &str = "ann@customer.test";
const BOB: &str = "bob@agents.test";
const CHIEF: &str = "chief@admins.test";
const SUPPORT: &str = "support@example.com";

/// The harness's support tickets are "General": put them in scope. Bob is
/// an agent and, with Chief, an admin.
fn rules(sink: &Sink, extra: &str) -> String {
    outbound_rules(
        "example.com",
        sink.port,
        &format!(
            "[agents]\nbob = \"{BOB}\"\n\
             [monitoring]\nadmins = [\"{BOB}\", \"{CHIEF}\"]\n\
             [detector.scope]\nqueues = [\"support\"]\nissue_types = [\"General\"]\n\
             statuses = [\"Open\", \"Replied\"]\n{extra}"
        ),
    )
}

fn ann(subject: &str, id: &str, extra: &[(&str, &str)], body: &str) -> Mail {
    Mail::new(
        ANN,
        &[SUPPORT],
        text_mail(
            &format!("Ann Customer <{ANN}>"),
            SUPPORT,
            subject,
            id,
            extra,
            body,
        ),
    )
}

/// An event's detail as JSON (the CLI prints it parsed or as text).
fn detail(e: &Value) -> Value {
    match &e["detail"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    }
}

fn events_of(server: &TestServer, ticket: i64) -> Vec<Value> {
    server.show_json(&ticket.to_string())["events"]
        .as_array()
        .expect("events")
        .clone()
}

fn count_kind(events: &[Value], kind: &str) -> usize {
    events
        .iter()
        .filter(|e| str_field(e, "kind") == kind)
        .count()
}

/// The ticket (id) holding Message-ID `id`.
fn ticket_of(server: &TestServer, id: &str) -> i64 {
    eventually(DEADLINE, || {
        server
            .messages_json()
            .iter()
            .find(|m| str_field(m, "message_id") == id)
            .and_then(|m| m["ticket_id"].as_i64())
            .ok_or_else(|| format!("no ticket yet for {id}"))
    })
}

fn alert_tickets(server: &TestServer) -> Vec<Value> {
    server
        .tickets_json()
        .into_iter()
        .filter(|t| str_field(t, "issue_type") == "Compliance Alert")
        .collect()
}

/// Mails to Ann of one outbound kind, told apart by their text.
fn mails_to_ann(sink: &Sink, needle: &str) -> Vec<Received> {
    sink.to(ANN)
        .into_iter()
        .filter(|m| m.parsed.text.contains(needle))
        .collect()
}

fn wait_mails_to_ann(sink: &Sink, needle: &str, n: usize) -> Vec<Received> {
    eventually(DEADLINE, || {
        let got = mails_to_ann(sink, needle);
        if got.len() >= n {
            Ok(got)
        } else {
            Err(format!(
                "{} of {n} mails to Ann containing {needle:?}",
                got.len()
            ))
        }
    })
}

const WARNING_TEXT: &str = "keep all conversations and payments here";
const NOTICE_TEXT: &str = "is suspended until our team";
const WHATSAPP: &str =
    "Hi,\n\nit is easier to sort this out on WhatsApp: +1 415 555 0198.\n\nAnn\n";
const TEXT_ME: &str =
    "Hello again,\n\njust text me at 415.555.0198 and I'll pay you directly.\n\nAnn\n";
const CLEAN: &str = "Hi,\n\nany news about invoice 4471 from March 3?\n\nAnn\n";

#[test]
fn whatsapp_number_warns_in_the_thread_opens_an_alert_and_the_repeat_suspends() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&rules(&sink, ""));

    // 1. Ann offers WhatsApp: flagged, warned in her thread, alert opened.
    server.deliver(&[ann("Invoice question", "wa1@customer.test", &[], WHATSAPP)]);
    let first = ticket_of(&server, "wa1@customer.test");
    let warning = wait_mails_to_ann(&sink, WARNING_TEXT, 1).remove(0);
    assert_eq!(
        warning.parsed.in_reply_to,
        vec!["wa1@customer.test".to_owned()],
        "the warning answers the flagged message"
    );
    assert!(
        warning
            .parsed
            .references
            .contains(&"wa1@customer.test".to_owned())
    );
    assert!(
        warning.subject().contains("Invoice question"),
        "{}",
        warning.subject()
    );
    assert_eq!(warning.header("Auto-Submitted"), Some("auto-replied"));
    assert!(
        warning.parsed.text.contains("a phone number")
            && warning.parsed.text.contains("messaging service"),
        "{}",
        warning.parsed.text
    );
    // The warning is part of the ticket's conversation.
    let shown = server.show_json(&first.to_string());
    assert!(
        shown["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| {
                str_field(m, "direction") == "outbound"
                    && str_field(m, "message_id") == warning.message_id()
            }),
        "{shown:#}"
    );
    let events = events_of(&server, first);
    assert_eq!(count_kind(&events, "detector_flagged"), 1, "{events:#?}");
    assert_eq!(
        count_kind(&events, "detector_warning_sent"),
        1,
        "{events:#?}"
    );
    assert_eq!(count_kind(&events, "compliance_alert"), 1, "{events:#?}");

    let alerts = alert_tickets(&server);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(str_field(alert, "priority"), "High");
    assert_eq!(str_field(alert, "queue"), "compliance");
    let first_number = server
        .tickets_json()
        .into_iter()
        .find(|t| t["id"].as_i64() == Some(first))
        .map(|t| t["number"].clone())
        .expect("the flagged ticket is listed");
    assert_eq!(
        alert["linked_ticket"], first_number,
        "the alert links the flagged ticket: {alert:#}"
    );
    let alert_id = alert["id"].as_i64().expect("id");
    let alert_shown = server.show_json(&alert_id.to_string());
    let note = alert_shown["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| str_field(m, "text").to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        note.contains("wa1@customer.test")
            && note.contains("\"WhatsApp\"")
            && note.contains("messaging"),
        "the alert lists the flagged message and its hits: {note}"
    );
    // Both admins alerted, with the alert ticket's tag.
    for admin in [CHIEF, BOB] {
        let got = eventually(DEADLINE, || {
            sink.to(admin)
                .into_iter()
                .find(|m| m.subject().contains("Compliance alert: ann@customer.test"))
                .ok_or_else(|| format!("no compliance alert to {admin}"))
        });
        assert!(
            got.parsed.text.contains("\"WhatsApp\""),
            "{}",
            got.parsed.text
        );
    }

    // 2. The same client again, in a new conversation: the repeat.
    server.deliver(&[ann("Refund", "tm1@customer.test", &[], TEXT_ME)]);
    let second = ticket_of(&server, "tm1@customer.test");
    assert_ne!(first, second);
    let notice = wait_mails_to_ann(&sink, NOTICE_TEXT, 1).remove(0);
    assert_eq!(
        notice.parsed.in_reply_to,
        vec!["tm1@customer.test".to_owned()]
    );
    let alerts = alert_tickets(&server);
    assert_eq!(alerts.len(), 1, "one alert ticket per client: {alerts:#?}");
    assert_eq!(str_field(&alerts[0], "priority"), "Urgent");
    let events = events_of(&server, second);
    assert_eq!(count_kind(&events, "client_suspended"), 1, "{events:#?}");
    assert_eq!(
        count_kind(&events, "suspension_notice_sent"),
        1,
        "{events:#?}"
    );
    assert_eq!(
        count_kind(&events, "detector_warning_sent"),
        0,
        "the notice replaces the warning"
    );
    let flagged = events
        .iter()
        .find(|e| str_field(e, "kind") == "detector_flagged")
        .expect("flagged");
    assert_eq!(detail(flagged)["repeat"], true, "{flagged:#}");
    // The agents are told.
    eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.subject().contains("Client suspended: ann@customer.test"))
            .ok_or("agents not told".to_owned())
    });
    let listed = server.env.run_json(&["client", "list", "--json"]);
    let suspensions = listed["suspensions"].as_array().expect("suspensions");
    assert_eq!(suspensions.len(), 1, "{listed:#}");
    assert_eq!(str_field(&suspensions[0], "client"), ANN);
    assert_eq!(str_field(&suspensions[0], "queue"), "support");
    assert_eq!(listed["flagged_messages"][ANN], 2, "{listed:#}");

    // 3. While suspended: mail is stored and threaded, the notice answers
    //    it (no acknowledgement), and the agents' notification says so.
    let acks_before = mails_to_ann(&sink, "Thank you for writing").len();
    server.deliver(&[ann("Still waiting", "c1@customer.test", &[], CLEAN)]);
    let third = ticket_of(&server, "c1@customer.test");
    wait_mails_to_ann(&sink, "Your access to Support is suspended", 1);
    let events = events_of(&server, third);
    assert_eq!(
        count_kind(&events, "suspended_client_mail"),
        1,
        "{events:#?}"
    );
    let note = eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.subject().contains("Still waiting"))
            .ok_or("no notification for the suspended client's mail".to_owned())
    });
    assert!(
        note.parsed
            .text
            .contains("NOTE: ann@customer.test's access to the Support queue is suspended"),
        "{}",
        note.parsed.text
    );
    assert_eq!(
        mails_to_ann(&sink, "Thank you for writing").len(),
        acks_before,
        "a suspended client is not acknowledged"
    );

    // 4. An admin lifts it: answered as usual again.
    let out = server.env.run_ok(&["client", "unsuspend", ANN]);
    assert!(out.contains("restored"), "{out}");
    let again = server.env.run(&["client", "unsuspend", ANN]);
    assert_eq!(again.status.code(), Some(1), "nothing left to lift");
    let listed = server.env.run_json(&["client", "list", "--json"]);
    assert!(
        listed["suspensions"].as_array().expect("list").is_empty(),
        "{listed:#}"
    );
    let alert_events = events_of(&server, alert_id);
    assert_eq!(
        count_kind(&alert_events, "client_unsuspended"),
        1,
        "{alert_events:#?}"
    );
    server.deliver(&[ann("New question", "c2@customer.test", &[], CLEAN)]);
    wait_mails_to_ann(&sink, "Thank you for writing", acks_before + 1);
}

#[test]
fn an_admin_lifts_a_suspension_by_replying_unsuspend_to_the_alert() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&rules(&sink, ""));
    server.deliver(&[ann("Invoice question", "wa1@customer.test", &[], WHATSAPP)]);
    wait_mails_to_ann(&sink, WARNING_TEXT, 1);
    server.deliver(&[ann("Refund", "tm1@customer.test", &[], TEXT_ME)]);
    wait_mails_to_ann(&sink, NOTICE_TEXT, 1);
    let alert = eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.subject().contains("Compliance alert (repeat)"))
            .ok_or("no repeat alert to Bob".to_owned())
    });
    let token = alert.parsed.reply_to[0].address.clone();
    assert!(
        token.starts_with("support+"),
        "replies go to the alert ticket: {token}"
    );
    server.deliver(&[Mail::new(
        BOB,
        &[&token],
        text_mail(
            &format!("Bob <{BOB}>"),
            &token,
            &format!("Re: {}", alert.subject()),
            "bob-unsuspend@agents.test",
            &[("In-Reply-To", &format!("<{}>", alert.message_id()))],
            &format!("#unsuspend\n\nOn Mon, Bob wrote:\n> {}\n", alert.subject()),
        ),
    )]);
    eventually(DEADLINE, || {
        let listed = server.env.run_json(&["client", "list", "--json"]);
        if listed["suspensions"].as_array().is_some_and(Vec::is_empty) {
            Ok(())
        } else {
            Err(format!("still suspended: {listed:#}"))
        }
    });
    let alert_id = alert_tickets(&server)[0]["id"].as_i64().expect("id");
    let events = events_of(&server, alert_id);
    let lifted = events
        .iter()
        .find(|e| str_field(e, "kind") == "client_unsuspended")
        .expect("client_unsuspended");
    assert_eq!(str_field(lifted, "cause"), "agent:bob", "{lifted:#}");
}

#[test]
fn a_quoted_warning_in_a_reply_does_not_flag_again() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&rules(&sink, ""));
    server.deliver(&[ann("Invoice question", "wa1@customer.test", &[], WHATSAPP)]);
    let ticket = ticket_of(&server, "wa1@customer.test");
    let warning = wait_mails_to_ann(&sink, WARNING_TEXT, 1).remove(0);

    // Ann answers the warning, quoting it, with her first message quoted
    // inside (as mail clients do with a whole thread).
    let quoted: String = warning
        .parsed
        .text
        .lines()
        .map(|l| format!("> {l}\n"))
        .collect();
    let nested: String = WHATSAPP.lines().map(|l| format!(">> {l}\n")).collect();
    let body = format!(
        "Understood, we'll keep it here.\n\nOn Tue, 3 Mar 2026 at 09:00, Support <{SUPPORT}> wrote:\n\
         {quoted}>\n> On Mon, Ann wrote:\n{nested}"
    );
    server.deliver(&[ann(
        &format!("Re: {}", warning.subject()),
        "reply1@customer.test",
        &[
            ("In-Reply-To", &format!("<{}>", warning.message_id())),
            (
                "References",
                &format!("<wa1@customer.test> <{}>", warning.message_id()),
            ),
        ],
        &body,
    )]);
    assert_eq!(
        ticket_of(&server, "reply1@customer.test"),
        ticket,
        "threaded"
    );
    let events = events_of(&server, ticket);
    assert_eq!(count_kind(&events, "detector_flagged"), 1, "{events:#?}");
    assert_eq!(alert_tickets(&server).len(), 1);
    // The reply was scanned, and its scan found nothing once the quotes
    // were set aside (the first message's scan is the one that flagged).
    assert_eq!(
        server
            .env
            .detector_scan("reply1@customer.test")
            .map(|s| s.1),
        Some(false),
        "the reply unscanned or flagged"
    );
    assert_eq!(
        server.env.detector_scan("wa1@customer.test").map(|s| s.1),
        Some(true)
    );
    // The server has finished with the reply (it is stored and its
    // notification queued); still one warning, no notice.
    eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.parsed.text.contains("we'll keep it here"))
            .ok_or("the reply's notification".to_owned())
    });
    assert_eq!(mails_to_ann(&sink, WARNING_TEXT).len(), 1);
    assert!(mails_to_ann(&sink, NOTICE_TEXT).is_empty());
}

#[test]
fn a_rule_change_makes_the_running_server_rescan_stored_mail_once() {
    let sink = Sink::start();
    // The model on, as shipped: the admin's pattern is trusted, so its
    // hits count whatever the model says of the message.
    let rules_before = rules(&sink, "");
    let server = TestServer::start_with_rules(&rules_before);
    let pigeon =
        "Hi,\n\nplease send the signed forms by carrier pigeon to my loft instead.\n\nAnn\n";
    server.deliver(&[ann("Forms", "pg1@customer.test", &[], pigeon)]);
    let ticket = ticket_of(&server, "pg1@customer.test");
    let before = server.env.run_json(&["rescan", "--json"]);
    assert_eq!(before["scanned"], 0, "scanned inline already: {before:#}");
    assert_eq!(
        count_kind(&events_of(&server, ticket), "detector_flagged"),
        0
    );

    // The admin adds a rule; the server reloads it and rescans.
    let pattern = "[[detector.patterns]]\nname = \"pigeon_post\"\ncategory = \"messaging\"\n\
         regex = 'carrier\\s+pigeon'\ntrusted = true\n";
    server
        .env
        .write_config("rules.toml", &rules(&sink, pattern));
    let flagged = eventually(DEADLINE, || {
        events_of(&server, ticket)
            .into_iter()
            .find(|e| str_field(e, "kind") == "detector_flagged")
            .ok_or("not rescanned yet".to_owned())
    });
    let d = detail(&flagged);
    assert_eq!(d["rescan"], true, "{d:#}");
    assert!(
        d["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .any(|h| str_field(h, "rule") == "pattern.pigeon_post"),
        "{d:#}"
    );
    assert_ne!(str_field(&flagged, "cause"), str_field(&before, "version"));
    wait_mails_to_ann(&sink, WARNING_TEXT, 1);
    assert_eq!(alert_tickets(&server).len(), 1);

    // Once per rules version: nothing is left to scan, and another change
    // that finds the same hit rescans the message without flagging it.
    let after = server.env.run_json(&["rescan", "--json"]);
    assert_eq!(after["scanned"], 0, "{after:#}");
    let unrelated = format!(
        "{pattern}\n[[detector.patterns]]\nname = \"homing\"\ncategory = \"messaging\"\n\
         regex = 'homing\\s+bird'\n"
    );
    server
        .env
        .write_config("rules.toml", &rules(&sink, &unrelated));
    let again = server.env.run_json(&["rescan", "--json"]);
    // The server may have rescanned first; between them, once.
    assert_eq!(again["flagged"], 0, "{again:#}");
    let events = events_of(&server, ticket);
    assert_eq!(count_kind(&events, "detector_flagged"), 1, "{events:#?}");
    assert_eq!(mails_to_ann(&sink, WARNING_TEXT).len(), 1);
}

#[test]
fn an_out_of_scope_client_gets_no_warning_and_opens_no_alert() {
    let sink = Sink::start();
    // Default scope: Accounting Support only; these tickets are General.
    let server = TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        &format!("[monitoring]\nadmins = [\"{CHIEF}\"]\n"),
    ));
    server.deliver(&[ann("Invoice question", "wa1@customer.test", &[], WHATSAPP)]);
    let ticket = ticket_of(&server, "wa1@customer.test");
    // The acknowledgement is the one mail Ann gets.
    wait_mails_to_ann(&sink, "Thank you for writing", 1);
    let events = events_of(&server, ticket);
    assert_eq!(count_kind(&events, "detector_flagged"), 0, "{events:#?}");
    assert!(alert_tickets(&server).is_empty());
    assert!(mails_to_ann(&sink, WARNING_TEXT).is_empty());
    // Out of scope means not scanned: the detector keeps no record of it.
    assert_eq!(server.env.detector_scan("wa1@customer.test"), None);
    let rescan = server.env.run_json(&["rescan", "--json"]);
    assert_eq!(
        rescan["scanned"], 0,
        "out of scope is never scanned: {rescan:#}"
    );
}

/// Flagged messages per client, from `postdesk client list --json`.
fn flagged_counts(server: &TestServer) -> serde_json::Map<String, Value> {
    server.env.run_json(&["client", "list", "--json"])["flagged_messages"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_rescan_killed_part_way_flags_and_warns_each_message_exactly_once() {
    use common::{Options, rules_toml};
    const N: usize = 1000;
    let scope = "[monitoring]\nadmins = [\"chief@admins.test\"]\n\
                 [detector.scope]\nqueues = [\"support\"]\nissue_types = [\"General\"]\n";
    let opts = Options {
        extra_toml: scope.to_owned(),
        ..Options::default()
    };
    // The model on, as shipped; the admin's pattern is trusted, as in the
    // test above.
    let mut server = TestServer::start_with(opts.clone());
    // N clients, one message each, that the shipped rules do not flag.
    let mails: Vec<Mail> = (0..N)
        .map(|i| {
            let from = format!("client{i}@customer.test");
            Mail::new(
                &from,
                &[SUPPORT],
                text_mail(
                    &from,
                    SUPPORT,
                    &format!("Forms {i}"),
                    &format!("pg{i}@customer.test"),
                    &[],
                    "Hi,\n\nI will send the forms by carrier pigeon to your loft.\n",
                ),
            )
        })
        .collect();
    server.deliver(&mails);
    assert!(flagged_counts(&server).is_empty());

    // A rule that flags all of them; kill the server while it rescans.
    let with_rule = Options {
        extra_toml: format!(
            "{scope}\n[[detector.patterns]]\nname = \"pigeon_post\"\ncategory = \"messaging\"\n\
             regex = 'carrier\\s+pigeon'\ntrusted = true\n"
        ),
        ..Options::default()
    };
    server
        .env
        .write_config("rules.toml", &rules_toml(&with_rule));
    let at_kill = eventually(DEADLINE, || {
        let n = flagged_counts(&server).len();
        if n > 0 {
            Ok(n)
        } else {
            Err("rescan not started".to_owned())
        }
    });
    server.kill9();
    eprintln!("killed with {at_kill} of {N} messages flagged");
    server.restart();

    let counts = eventually(Duration::from_secs(60), || {
        let c = flagged_counts(&server);
        if c.len() == N {
            Ok(c)
        } else {
            Err(format!("{} of {N} flagged", c.len()))
        }
    });
    assert!(
        counts.values().all(|v| v == 1),
        "a message flagged twice: {counts:?}"
    );
    let rescan = server.env.run_json(&["rescan", "--json"]);
    assert_eq!(rescan["scanned"], 0, "{rescan:#}");
    let warnings: Vec<Value> = server
        .env
        .run_json(&["outbox", "--json"])
        .as_array()
        .expect("outbox rows")
        .iter()
        .filter(|r| str_field(r, "kind") == "warning")
        .cloned()
        .collect();
    assert_eq!(warnings.len(), N, "one warning per flagged message");
    let mut to: Vec<&str> = warnings.iter().map(|r| str_field(r, "to")).collect();
    to.sort_unstable();
    to.dedup();
    assert_eq!(to.len(), N, "each client warned once");
    assert_eq!(
        alert_tickets(&server).len(),
        N,
        "one alert ticket per client"
    );
}
