//! Outbound mail over real sockets: the outbox worker delivering to a real
//! SMTP server (aiosmtpd, `tests/common/smtp_sink.py`), retries and
//! backoff, permanent failures and alerts, the crash between claim and
//! send, the Maildir fallback, loop protection between two postdesks, and
//! bounces.
//!
//! Nothing here sleeps to wait: every check polls with `eventually`, and
//! the backoff is configured in milliseconds.

mod common;

use common::sink::{Sink, outbound_rules};
use common::{
    DEADLINE, Mail, Options, TestServer, bare_id, eventually, int_field, str_field, text_mail,
};
use serde_json::Value;

const ALICE: &str = "alice@customer.test";

fn customer_mail(from: &str, subject: &str, id: &str, extra: &[(&str, &str)]) -> Mail {
    Mail::new(
        from,
        &["support@example.com"],
        text_mail(
            from,
            "support@example.com",
            subject,
            id,
            extra,
            "Hello,\nmy printer is on fire.\n",
        ),
    )
}

/// The events of ticket `number`, as `(kind, cause)`.
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

fn outbox_row<'a>(rows: &'a [Value], kind: &str, to: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["kind"] == kind && r["to"].as_str() == Some(to))
}

#[test]
fn a_new_ticket_is_acknowledged_with_its_tag_loop_headers_and_threading() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&outbound_rules("example.com", sink.port, ""));
    server.deliver(&[customer_mail(
        ALICE,
        "Printer on fire",
        "c1@customer.test",
        &[],
    )]);
    let acks = sink.wait_to(ALICE, 1);
    let ack = &acks[0];
    assert!(ack.subject().contains("[#1001]"), "{}", ack.subject());
    assert!(
        ack.subject().contains("Printer on fire"),
        "{}",
        ack.subject()
    );
    assert_eq!(ack.header("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(ack.header("X-Loop"), Some("postdesk@desk.example.com"));
    assert_eq!(ack.parsed.in_reply_to, ["c1@customer.test"]);
    assert_eq!(
        ack.parsed.references.last().map(String::as_str),
        Some("c1@customer.test")
    );
    // RFC 3834 §3.3: an automatic answer goes out with the null path.
    assert_eq!(ack.mail_from, "");
    assert_eq!(
        ack.parsed.from.as_ref().map(|f| f.address.as_str()),
        Some("support@example.com")
    );

    // Its Message-ID is stored: the ticket shows it, and the outbox marks
    // it sent under the same id.
    let shown = server.show_json("1001");
    let out: Vec<&Value> = shown["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(out.len(), 1, "{shown:#}");
    assert_eq!(out[0]["kind"], "system");
    assert_eq!(bare_id(str_field(out[0], "message_id")), ack.message_id());
    let rows = eventually(DEADLINE, || {
        let rows = server.outbox_json();
        match outbox_row(&rows, "ack", ALICE) {
            Some(r) if r["status"] == "sent" => Ok(rows.clone()),
            _ => Err(format!("{rows:#?}")),
        }
    });
    let row = outbox_row(&rows, "ack", ALICE).expect("ack row");
    assert_eq!(str_field(row, "message_id"), ack.message_id());
    assert_eq!(int_field(row, "attempts"), 1);

    // The customer's reply to the acknowledgement threads by its id.
    server.deliver(&[customer_mail(
        ALICE,
        "Re: Printer on fire [#1001]",
        "c2@customer.test",
        &[("In-Reply-To", &format!("<{}>", ack.message_id()))],
    )]);
    assert_eq!(server.tickets_json().len(), 1);
}

#[test]
fn an_auto_responder_gets_no_acknowledgement() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&outbound_rules("example.com", sink.port, ""));
    server.deliver(&[customer_mail(
        "vacation@customer.test",
        "Out of office",
        "v1@customer.test",
        &[("Auto-Submitted", "auto-replied")],
    )]);
    // The 250 came after the commit that would have queued the ack.
    assert!(
        server.outbox_json().is_empty(),
        "{:#?}",
        server.outbox_json()
    );
    // An automatic reply to no known ticket opens none: it is stored,
    // flagged, for a person to look at if they wish.
    assert!(server.tickets_json().is_empty());
    let stored = server.messages_json();
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0]["state"], "quarantined");
    assert!(
        str_field(&stored[0], "flag").contains("automatic reply"),
        "{stored:#?}"
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn acknowledgements_to_one_address_are_limited_per_hour() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&outbound_rules("example.com", sink.port, ""));
    // The default limit is 5 an hour; six new tickets from one address.
    let mails: Vec<Mail> = (1..=6)
        .map(|i| {
            customer_mail(
                ALICE,
                &format!("Question {i}"),
                &format!("q{i}@customer.test"),
                &[],
            )
        })
        .collect();
    server.deliver(&mails);
    let rows = server.outbox_json();
    assert_eq!(
        rows.iter().filter(|r| r["kind"] == "ack").count(),
        5,
        "{rows:#?}"
    );
    let ev = events(&server, "1006");
    assert!(
        ev.iter()
            .any(|(k, c, _)| k == "auto_reply_suppressed" && c == "rate_limit"),
        "{ev:#?}"
    );
    sink.wait_to(ALICE, 5);
}

#[test]
fn a_smarthost_down_for_a_while_gets_the_mail_exactly_once_when_back() {
    let mut sink = Sink::start();
    sink.tempfail();
    let server = TestServer::start_with_rules(&outbound_rules("example.com", sink.port, ""));
    server.deliver(&[customer_mail(
        ALICE,
        "Printer on fire",
        "c1@customer.test",
        &[],
    )]);
    // 4xx: retried with backoff, the reply kept as the last error.
    eventually(DEADLINE, || {
        let rows = server.outbox_json();
        match outbox_row(&rows, "ack", ALICE) {
            Some(r) if int_field(r, "attempts") >= 2 && r["status"] == "queued" => {
                let e = r["last_error"].as_str().unwrap_or("");
                if e.contains("451") {
                    Ok(())
                } else {
                    Err(format!("last_error {e:?}"))
                }
            }
            _ => Err(format!("{rows:#?}")),
        }
    });
    // Connection refused: retried as well.
    sink.down();
    let before = int_field(
        outbox_row(&server.outbox_json(), "ack", ALICE).expect("row"),
        "attempts",
    );
    eventually(DEADLINE, || {
        let rows = server.outbox_json();
        let r = outbox_row(&rows, "ack", ALICE).ok_or("no row")?;
        if int_field(r, "attempts") >= before + 2 && r["status"] == "queued" {
            Ok(())
        } else {
            Err(format!("{r}"))
        }
    });
    assert!(sink.messages().is_empty());
    sink.up();
    sink.accept();
    let row = eventually(DEADLINE, || {
        let rows = server.outbox_json();
        match outbox_row(&rows, "ack", ALICE) {
            Some(r) if r["status"] == "sent" => Ok(r.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    // Sent is final: the sink has it once, under the id queued first.
    let got = sink.to(ALICE);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].message_id(), str_field(&row, "message_id"));
}

#[test]
fn a_5xx_fails_the_mail_alerts_the_admins_and_suppresses_the_address() {
    let mut sink = Sink::start();
    sink.reject("gone@customer.test");
    let server = TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        "[monitoring]\nadmins = [\"ops@example.com\"]\n\
         [agents]\nbob = \"bob@agents.test\"\n",
    ));
    server.deliver(&[customer_mail(
        "gone@customer.test",
        "Help",
        "g1@customer.test",
        &[],
    )]);
    let failed = eventually(DEADLINE, || {
        let rows = server.outbox_json();
        match outbox_row(&rows, "ack", "gone@customer.test") {
            Some(r) if r["status"] == "failed" => Ok(r.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(int_field(&failed, "attempts"), 1, "a 5xx is not retried");
    assert!(str_field(&failed, "last_error").contains("550"), "{failed}");

    let alerts = sink.wait_to("ops@example.com", 1);
    assert!(
        alerts[0].subject().contains("Delivery failed"),
        "{}",
        alerts[0].subject()
    );
    assert!(String::from_utf8_lossy(&alerts[0].raw).contains("gone@customer.test"));
    // The agent hears about it too.
    let notices = eventually(DEADLINE, || {
        let n: Vec<_> = sink
            .to("bob@agents.test")
            .into_iter()
            .filter(|m| m.subject().starts_with("Undeliverable"))
            .collect();
        if n.is_empty() {
            Err("no bounce notice".to_owned())
        } else {
            Ok(n)
        }
    });
    assert!(notices[0].subject().contains("[#1001]"));
    let ev = events(&server, "1001");
    let (_, cause, detail) = ev
        .iter()
        .find(|(k, _, _)| k == "delivery_failed")
        .unwrap_or_else(|| panic!("{ev:#?}"));
    assert_eq!(cause, "smarthost");
    assert_eq!(detail["status"], "5.1.1");

    // The address is suppressed: a new ticket from it gets no ack.
    server.deliver(&[customer_mail(
        "gone@customer.test",
        "Other",
        "g2@customer.test",
        &[],
    )]);
    let ev = events(&server, "1002");
    assert!(
        ev.iter()
            .any(|(k, c, _)| k == "auto_reply_suppressed" && c == "suppressed"),
        "{ev:#?}"
    );

    // `outbox retry` queues the failed mail again (and lifts the
    // suppression); with the sink accepting, it goes out.
    sink.accept();
    let id = int_field(&failed, "id").to_string();
    let out = server.env.run_ok(&["outbox", "retry", &id]);
    assert!(out.contains("queued again"), "{out}");
    sink.wait_to("gone@customer.test", 1);
}

#[test]
fn a_crash_between_claim_and_send_loses_nothing_and_keeps_the_message_id() {
    let mut sink = Sink::start();
    sink.hold();
    let mut server = TestServer::start_with_rules(&outbound_rules("example.com", sink.port, ""));
    server.deliver(&[customer_mail(
        ALICE,
        "Printer on fire",
        "c1@customer.test",
        &[],
    )]);
    // The worker claimed the row and its session waits at MAIL FROM:
    // claimed, not sent.
    let claimed = eventually(DEADLINE, || {
        let rows = server.outbox_json();
        match outbox_row(&rows, "ack", ALICE) {
            Some(r) if r["status"] == "sending" && sink.held() >= 1 => Ok(r.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    server.kill9();
    sink.release();
    assert!(sink.messages().is_empty());

    server.restart();
    let got = sink.wait_to(ALICE, 1);
    assert_eq!(got[0].message_id(), str_field(&claimed, "message_id"));
    let row = eventually(DEADLINE, || {
        let rows = server.outbox_json();
        match outbox_row(&rows, "ack", ALICE) {
            Some(r) if r["status"] == "sent" => Ok(r.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(int_field(&row, "attempts"), 2);
    assert_eq!(sink.to(ALICE).len(), 1, "sent once");
    assert_eq!(server.outbox_json().len(), 1, "no second row was queued");
}

#[test]
fn without_a_smarthost_each_mail_is_a_file_in_the_outbound_maildir() {
    let server = TestServer::start_with(Options::default());
    server.deliver(&[customer_mail(
        ALICE,
        "Printer on fire",
        "c1@customer.test",
        &[],
    )]);
    let new = server.env.data_dir.join("outbound/new");
    let files = eventually(DEADLINE, || {
        let files: Vec<_> = std::fs::read_dir(&new)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        if files.len() == 1 {
            Ok(files)
        } else {
            Err(format!("{files:?}"))
        }
    });
    assert!(files[0].to_string_lossy().ends_with(".eml"));
    let raw = std::fs::read(&files[0]).expect("read the eml");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("Return-Path: <>\r\nDelivered-To: alice@customer.test\r\n"),
        "{text}"
    );
    let p = postdesk::parse::parse(&raw);
    assert!(p.subject.as_deref().unwrap_or("").contains("[#1001]"));
    eventually(DEADLINE, || {
        let rows = server.outbox_json();
        if rows.iter().all(|r| r["status"] == "sent") {
            Ok(())
        } else {
            Err(format!("{rows:#?}"))
        }
    });
    // `messages` lists mail received; the ack is in `outbox` and `show`.
    assert_eq!(server.messages_json().len(), 1);
}

#[test]
fn two_postdesks_answering_each_other_stop() {
    // A and B, each with its own sink that hands every mail to the other.
    let mut sink_a = Sink::start();
    let mut sink_b = Sink::start();
    let a = TestServer::start_with_rules(&outbound_rules("a.test", sink_a.port, ""));
    let b = TestServer::start_with_rules(&outbound_rules("b.test", sink_b.port, ""));
    sink_a.forward(b.smtp.port(), false);
    sink_b.forward(a.smtp.port(), false);
    // B's support desk writes to A (as a customer of A would).
    a.deliver(&[Mail::new(
        "support@b.test",
        &["support@a.test"],
        text_mail(
            "support@b.test",
            "support@a.test",
            "Hello from B",
            "start@b.test",
            &[],
            "Hi A\n",
        ),
    )]);
    // A acknowledges; the ack reaches B, which sees an automatic reply to
    // no ticket of its own: stored, no ticket, no answer. That is the end.
    eventually(DEADLINE, || match b.messages_json().as_slice() {
        [m] if m["state"] == "quarantined" => Ok(()),
        other => Err(format!("{other:#?}")),
    });
    assert!(b.tickets_json().is_empty(), "{:#?}", b.tickets_json());
    assert!(b.outbox_json().is_empty(), "{:#?}", b.outbox_json());
    assert_eq!(sink_a.messages().len(), 1);
    assert_eq!(a.tickets_json().len(), 1);
}

#[test]
fn two_careless_auto_responders_are_stopped_by_the_hourly_limit() {
    // The sinks strip every loop header and threading id and invent a new
    // subject, as a careless responder would: only the rate limit is left.
    let rules = |domain: &str, port: u16| {
        outbound_rules(domain, port, "").replacen(
            "[outbound]\n",
            "[outbound]\nauto_replies_per_hour = 3\n",
            1,
        )
    };
    let mut sink_a = Sink::start();
    let mut sink_b = Sink::start();
    let a = TestServer::start_with_rules(&rules("a.test", sink_a.port));
    let b = TestServer::start_with_rules(&rules("b.test", sink_b.port));
    sink_a.forward(b.smtp.port(), true);
    sink_b.forward(a.smtp.port(), true);
    a.deliver(&[Mail::new(
        "support@b.test",
        &["support@a.test"],
        text_mail(
            "support@b.test",
            "support@a.test",
            "Hello from B",
            "start@b.test",
            &[],
            "Hi A\n",
        ),
    )]);
    // The ping-pong runs until one side has answered 3 times in the hour;
    // its next acknowledgement is suppressed, and nothing is left in flight.
    let limited = |s: &TestServer| {
        s.tickets_json().iter().any(|t| {
            events(s, str_field(t, "number"))
                .iter()
                .any(|(k, c, _)| k == "auto_reply_suppressed" && c == "rate_limit")
        })
    };
    eventually(std::time::Duration::from_secs(60), || {
        if limited(&a) || limited(&b) {
            Ok(())
        } else {
            Err("still answering".to_owned())
        }
    });
    let settled = |s: &TestServer| s.outbox_json().iter().all(|r| r["status"] == "sent");
    eventually(DEADLINE, || {
        if settled(&a) && settled(&b) {
            Ok(())
        } else {
            Err("mail in flight".to_owned())
        }
    });
    let acks = |s: &TestServer| {
        s.outbox_json()
            .iter()
            .filter(|r| r["kind"] == "ack")
            .count()
    };
    assert!(
        acks(&a) <= 3 && acks(&b) <= 3,
        "a {} b {}",
        acks(&a),
        acks(&b)
    );
    assert_eq!(
        sink_a.messages().len() + sink_b.messages().len(),
        acks(&a) + acks(&b)
    );
}

/// A DSN for `original` (sent to `rcpt`), addressed to `to`.
fn dsn(to: &str, rcpt: &str, original: &str) -> Vec<u8> {
    common::sink::dsn(to, rcpt, original, "dsn-1@mx.customer.test")
}

#[test]
fn a_bounce_is_recorded_on_its_ticket_never_as_a_new_one() {
    let sink = Sink::start();
    let server = TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        "[agents]\nbob = \"bob@agents.test\"\n",
    ));
    server.deliver(&[customer_mail(
        ALICE,
        "Printer on fire",
        "c1@customer.test",
        &[],
    )]);
    let ack = sink.wait_to(ALICE, 1).remove(0);
    // The bounce comes back with the null sender, to the support address.
    server.deliver(&[Mail::new(
        "",
        &["support@example.com"],
        dsn("support@example.com", ALICE, ack.message_id()),
    )]);
    assert_eq!(server.tickets_json().len(), 1, "a bounce opens no ticket");
    let shown = server.show_json("1001");
    let bounce = shown["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["kind"] == "bounce")
        .unwrap_or_else(|| panic!("{shown:#}"));
    assert_eq!(bounce["thread_match"], "in_reply_to");
    let ev = events(&server, "1001");
    assert!(ev.iter().any(|(k, _, _)| k == "bounce_received"), "{ev:#?}");
    let (_, cause, detail) = ev
        .iter()
        .find(|(k, _, _)| k == "delivery_failed")
        .unwrap_or_else(|| panic!("{ev:#?}"));
    assert_eq!(cause, "bounce");
    assert_eq!(detail["status"], "5.1.1");
    // The agent is told, and the address gets nothing more for a while.
    eventually(DEADLINE, || {
        if sink
            .to("bob@agents.test")
            .iter()
            .any(|m| m.subject().starts_with("Undeliverable"))
        {
            Ok(())
        } else {
            Err("no notice".to_owned())
        }
    });
    let rows = server.outbox_json();
    let row = outbox_row(&rows, "ack", ALICE).expect("ack row");
    assert_eq!(row["status"], "failed", "{row}");
    assert!(
        str_field(row, "last_error").starts_with("bounced: 5.1.1"),
        "{row}"
    );
    server.deliver(&[customer_mail(
        ALICE,
        "Another question",
        "c3@customer.test",
        &[],
    )]);
    assert!(
        events(&server, "1002")
            .iter()
            .any(|(k, c, _)| k == "auto_reply_suppressed" && c == "suppressed")
    );
}

#[test]
fn check_names_the_template_file_and_line_of_an_error() {
    let env = common::Env::new(&Options::default());
    env.write_config(
        "templates/acknowledgement.txt",
        "{% block subject %}Re: {{ subject }}{% endblock %}\n{% block body %}\nHello {{ custmer_name }}\n{% endblock %}\n",
    );
    let out = env.run(&["check"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let path = env.config_dir.join("templates/acknowledgement.txt");
    assert!(
        stderr.contains(&format!("{}:3:1: undefined value", path.display())),
        "{stderr}"
    );
    std::fs::remove_file(&path).expect("remove the broken template");
    let ok = env.run_ok(&["check"]);
    assert!(
        ok.contains("templates: 13 rendered with sample data"),
        "{ok}"
    );
}

#[test]
fn outbound_mail_is_dkim_signed_when_a_key_is_configured() {
    use mail_auth::common::crypto::Ed25519Key;
    let sink = Sink::start();
    let der = Ed25519Key::generate_pkcs8().expect("generate a key");
    let b64 = base64(&der);
    let rules = outbound_rules("example.com", sink.port, "").replacen(
        "[outbound]\n",
        "[outbound]\ndkim_key_file = \"dkim.pem\"\ndkim_selector = \"pd1\"\ndkim_domain = \"example.com\"\n",
        1,
    );
    let env = common::Env::new(&Options::default());
    env.write_config("rules.toml", &rules);
    env.write_secret("token_secret", common::sink::SECRET);
    env.write_secret(
        "dkim.pem",
        &format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
    );
    let server = TestServer::start_in(env, Vec::new());
    server.deliver(&[customer_mail(
        ALICE,
        "Printer on fire",
        "c1@customer.test",
        &[],
    )]);
    let ack = sink.wait_to(ALICE, 1).remove(0);
    let text = String::from_utf8_lossy(&ack.raw);
    assert!(text.starts_with("DKIM-Signature: "), "{text}");
    let flat: String = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert!(
        flat.contains("d=example.com;") && flat.contains("s=pd1;"),
        "{text}"
    );
    // The stored copy is unsigned: signing happens at send time.
    let shown = server.show_json("1001");
    assert!(
        shown["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["direction"] == "outbound")
    );
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
