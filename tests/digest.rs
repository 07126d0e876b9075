//! Client digests on their schedule, with a controlled clock.
//!
//! Medium and Low mail polled from Dovecot waits for the client's digest;
//! the digest goes out when the clock file passes 08:00 in the client's
//! zone, once, survives a restart without repeating, and a firing missed
//! while postdesk was down is sent at start, listing only what is new. The
//! mail reaches a real SMTP server (Postfix's smtp-sink).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::dovecot::Dovecot;
use common::postfix_sink::PostfixSink;
use common::{Env, Options, SCHEDULER_PASS, TestServer, eventually, text_mail};
use serde_json::Value;

const PASSWORD: &str = "digest-pass";

fn set_clock(path: &PathBuf, t: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, t).expect("write clock");
    std::fs::rename(&tmp, path).expect("rename clock");
}

fn digests(env: &Env) -> Vec<Value> {
    match env.run_json(&["notices", "--json"]) {
        Value::Array(a) => a.into_iter().filter(|n| n["kind"] == "digest").collect(),
        other => panic!("notices --json: {other}"),
    }
}

/// Each of `numbers` starts exactly one line of `body`, and no line holds
/// two items.
fn assert_items_on_lines_of_their_own(body: &str, numbers: &[&str]) {
    for n in numbers {
        let starting = body.lines().filter(|l| l.starts_with(n)).count();
        assert_eq!(starting, 1, "{n} does not start a line of its own:\n{body}");
    }
    for line in body.lines() {
        let items = numbers.iter().filter(|n| line.contains(**n)).count();
        assert!(items <= 1, "two items on one line: {line:?}\n{body}");
    }
}

fn append(dovecot: &Dovecot, local: &str, subject: &str, id: &str) {
    let to = format!("{local}@acme.test");
    let from = format!("{id}@outside.test");
    dovecot.append(
        &to,
        PASSWORD,
        "INBOX",
        &[text_mail(
            &from,
            &to,
            subject,
            &format!("{id}@outside.test"),
            &[],
            "Hello.\n",
        )],
    );
}

#[test]
fn medium_and_low_mail_is_digested_at_the_scheduled_time_once_and_a_missed_digest_is_sent_at_start()
{
    let dovecot = Dovecot::start(&[
        ("billing@acme.test", PASSWORD),
        ("support@acme.test", PASSWORD),
        ("regulatory@acme.test", PASSWORD),
    ]);
    let sink = PostfixSink::start();
    let env = Env::new(&Options {
        extra_toml: sink.outbound_toml(),
        ..Options::default()
    });
    for l in ["billing", "support", "regulatory"] {
        env.write_secret(&format!("secrets/{l}.pass"), PASSWORD);
    }
    env.write_config(
        "mailboxes/acme.toml",
        &format!(
            "[client]\ncustomer = \"Acme Telecom\"\ndomain = \"acme.test\"\n\
             contacts = [\"boss@acme-owner.test\"]\ntime_zone = \"America/Toronto\"\n\
             [imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             password_file = \"secrets/{{local}}.pass\"\npoll_interval_secs = 2\n\
             [digest]\nschedule = \"08:00\"\n\
             [[mailbox]]\naddress = \"billing\"\npriority = \"Medium\"\n\
             [[mailbox]]\naddress = \"support\"\npriority = \"Low\"\n\
             [[mailbox]]\naddress = \"regulatory\"\npriority = \"High\"\n",
            dovecot.port
        ),
    );
    let clock = env.dir.path().join("clock");
    // 07:00 in Toronto (EST, UTC-5).
    set_clock(&clock, "2026-03-02T12:00:00Z");
    let vars = vec![(
        "POSTDESK_CLOCK_FILE".to_owned(),
        clock.display().to_string(),
    )];
    let mut server = TestServer::start_in(env, vars);

    append(&dovecot, "billing", "Invoice question", "d1");
    append(&dovecot, "support", "Password reset", "d2");
    append(&dovecot, "regulatory", "Hearing notice", "d3");
    let tickets = eventually(Duration::from_secs(30), || {
        let t = server.tickets_json();
        if t.len() == 3 {
            Ok(t)
        } else {
            Err(format!("{} tickets\n{}", t.len(), server.stderr()))
        }
    });
    let number = |subject: &str| {
        tickets
            .iter()
            .find(|t| t["subject"] == subject)
            .and_then(|t| t["number"].as_str())
            .unwrap_or_else(|| panic!("no ticket {subject}"))
            .to_owned()
    };
    let (billing, support, regulatory) = (
        number("Invoice question"),
        number("Password reset"),
        number("Hearing notice"),
    );
    // Before 08:00 nothing is sent: two more scheduler passes, with the
    // tickets stored, compose no digest.
    server.wait_log_lines(SCHEDULER_PASS, 2, Duration::from_secs(20));
    assert!(digests(&server.env).is_empty());

    // 08:00:30 in Toronto: one digest with the Medium and Low tickets.
    set_clock(&clock, "2026-03-02T13:00:30Z");
    let d = eventually(Duration::from_secs(20), || {
        let d = digests(&server.env);
        if d.len() == 1 {
            Ok(d)
        } else {
            Err(format!("{} digests\n{}", d.len(), server.stderr()))
        }
    });
    let body = d[0]["body"].as_str().expect("body");
    assert!(body.contains(&billing) && body.contains(&support), "{body}");
    assert!(
        !body.contains(&regulatory),
        "High tickets are alerted, not digested: {body}"
    );
    assert!(
        body.contains("from d1@outside.test to billing@acme.test"),
        "each item names its sender and mailbox: {body}"
    );
    assert_eq!(d[0]["recipients"][0], "boss@acme-owner.test");
    // Each item starts on a line of its own (a block tag ending a template
    // line must not eat the break between items).
    assert_items_on_lines_of_their_own(body, &[&billing, &support]);
    // It reached the SMTP server, laid out the same.
    let mails = eventually(Duration::from_secs(20), || {
        let m: Vec<String> = sink
            .messages()
            .into_iter()
            .filter(|m| m.contains("Digest") && m.contains("Invoice question"))
            .collect();
        if m.len() == 1 {
            Ok(m)
        } else {
            Err(format!("{} digest mails", m.len()))
        }
    });
    let delivered = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .expect("a text body in the delivered digest");
    assert_items_on_lines_of_their_own(&delivered, &[&billing, &support]);

    // Later passes and a restart at the same time send nothing more: two
    // more passes, then a restart and two passes of the new process (the
    // first is where a missed firing would be handled).
    server.wait_log_lines(SCHEDULER_PASS, 2, Duration::from_secs(20));
    assert_eq!(digests(&server.env).len(), 1);
    server.restart();
    server.wait_log_lines(SCHEDULER_PASS, 2, Duration::from_secs(20));
    assert_eq!(digests(&server.env).len(), 1);

    // A new Medium item, then postdesk is down across the next 08:00: the
    // missed digest goes out at start, with only the new item.
    append(&dovecot, "billing", "Second invoice", "d4");
    eventually(Duration::from_secs(30), || {
        let n = server.tickets_json().len();
        if n == 4 {
            Ok(())
        } else {
            Err(format!("{n} tickets\n{}", server.stderr()))
        }
    });
    let second = server
        .tickets_json()
        .iter()
        .find(|t| t["subject"] == "Second invoice")
        .and_then(|t| t["number"].as_str().map(str::to_owned))
        .expect("second ticket");
    server.kill9();
    set_clock(&clock, "2026-03-03T15:45:00Z");
    server.restart();
    let d = eventually(Duration::from_secs(20), || {
        let d = digests(&server.env);
        if d.len() == 2 {
            Ok(d)
        } else {
            Err(format!("{} digests\n{}", d.len(), server.stderr()))
        }
    });
    let body = d[1]["body"].as_str().expect("body");
    assert!(body.contains(&second), "{body}");
    assert!(
        !body.contains(&billing) && !body.contains(&support),
        "never twice: {body}"
    );
    // Nothing is left pending.
    let dry = server
        .env
        .run_json(&["digest", "run", "--client", "acme", "--dry-run", "--json"]);
    assert_eq!(dry[0]["items"], 0, "{dry}");
}
