//! SLA clocks, warnings, breaches and auto-close over real SMTP, with the
//! process clock driven from a file (`POSTDESK_CLOCK_FILE`): tickets are
//! opened on a Friday evening and time jumps to Monday. Mail goes to a
//! real SMTP server (aiosmtpd, `tests/common/smtp_sink.py`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::sink::{Received, SECRET, Sink, outbound_rules};
use common::{DEADLINE, Env, Mail, Options, SCHEDULER_PASS, TestServer, eventually, text_mail};
use serde_json::Value;

const ALICE: &str = "alice@customer.test";
const BOB: &str = "bob@agents.test";
const ADMIN: &str = "admin@example.com";

const OFFICE: &str = "[sla.calendar.office]\n\
     time_zone = \"America/New_York\"\n\
     monday    = [\"09:00-12:00\", \"13:00-18:00\"]\n\
     tuesday   = [\"09:00-12:00\", \"13:00-18:00\"]\n\
     wednesday = [\"09:00-12:00\", \"13:00-18:00\"]\n\
     thursday  = [\"09:00-12:00\", \"13:00-18:00\"]\n\
     friday    = [\"09:00-17:00\"]\n\
     holidays  = [\"2026-12-25\", \"*-01-01\"]\n";

const TARGETS: &str = "[sla.policy.targets]\n\
     urgent = { first_response = \"1h\", next_response = \"1h\", resolution = \"4h\" }\n\
     high   = { first_response = \"4h\", next_response = \"4h\", resolution = \"24h\" }\n";

fn set_clock(path: &Path, t: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, t).expect("write clock");
    std::fs::rename(&tmp, path).expect("rename clock");
}

/// A New York civil time as an RFC 3339 instant.
fn ny(civil: &str) -> String {
    format!("{civil}[America/New_York]")
        .parse::<jiff::Zoned>()
        .expect("zoned")
        .timestamp()
        .to_string()
}

/// A helpdesk with agent Bob on the support team, admin mail to
/// [`ADMIN`], `policy` as its SLA and the clock file at `start`.
fn helpdesk(sink: &Sink, priority: &str, policy: &str, start: &str) -> (TestServer, PathBuf) {
    let extra = format!(
        "[agents]\nbob = \"{BOB}\"\n[teams]\nsupport = [\"bob\"]\n\
         [monitoring]\nadmins = [\"{ADMIN}\"]\n\
         [tickets]\ndefault_priority = \"{priority}\"\n{policy}"
    );
    let env = Env::new(&Options::default());
    env.write_config(
        "rules.toml",
        &outbound_rules("example.com", sink.port, &extra),
    );
    env.write_secret("token_secret", SECRET);
    let clock = env.dir.path().join("clock");
    set_clock(&clock, start);
    let vars = vec![(
        "POSTDESK_CLOCK_FILE".to_owned(),
        clock.display().to_string(),
    )];
    (TestServer::start_in(env, vars), clock)
}

fn alice(subject: &str, id: &str, extra: &[(&str, &str)]) -> Mail {
    common::alice_mail(subject, id, extra, "Hello,\nmy printer is on fire.\n")
}

/// Bob's mail to the agent address of `notification`.
fn bob(notification: &Received, id: &str, text: &str) -> Mail {
    let token = notification.parsed.reply_to[0].address.clone();
    Mail::new(
        BOB,
        &[&token],
        text_mail(
            &format!("Bob <{BOB}>"),
            &token,
            &format!("Re: {}", notification.subject()),
            id,
            &[("In-Reply-To", &format!("<{}>", notification.message_id()))],
            text,
        ),
    )
}

fn sla(server: &TestServer, number: &str) -> Value {
    server.show_json(number)["sla"].clone()
}

fn events(server: &TestServer, number: &str, kind: &str) -> Vec<Value> {
    server.show_json(number)["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// SLA mails (warnings and breaches) to `to` so far.
fn sla_mails(sink: &Sink, to: &str, kind: &str) -> Vec<Received> {
    sink.to(to)
        .into_iter()
        .filter(|m| m.subject().starts_with(&format!("[postdesk] SLA {kind}")))
        .collect()
}

fn due(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v:#}"))
        .to_owned()
}

#[test]
fn business_hours_holidays_and_lunch_set_the_due_time() {
    let sink = Sink::start();
    let policy = format!(
        "{OFFICE}[[sla.policy]]\nname = \"office\"\ncalendar = \"office\"\n\
         queues = [\"support\"]\n{TARGETS}"
    );
    // Friday 2026-12-11, 17:55 in New York: after Friday's close.
    let (server, clock) = helpdesk(&sink, "Urgent", &policy, &ny("2026-12-11T17:55"));
    server.deliver(&[alice("Printer on fire", "f1@customer.test", &[])]);
    let v = sla(&server, "1001");
    assert_eq!(v["policy"], "office", "{v:#}");
    assert_eq!(v["state"], "on_track", "{v:#}");
    // One business hour: Monday 10:00, not Friday 18:55.
    assert_eq!(due(&v, "first_response_due"), ny("2026-12-14T10:00"));
    // Four business hours: 09:00–12:00 and 13:00–14:00.
    assert_eq!(due(&v, "resolution_due"), ny("2026-12-14T14:00"));
    assert_eq!(v["next_response_due"], Value::Null);
    assert_eq!(v["paused_seconds"], 0);

    // Thursday 24th, 17:30: half an hour that day, Friday 25th is a
    // holiday, so Monday 28th 09:30.
    set_clock(&clock, &ny("2026-12-24T17:30"));
    server.deliver(&[alice("Scanner jammed", "f2@customer.test", &[])]);
    assert_eq!(
        due(&sla(&server, "1002"), "first_response_due"),
        ny("2026-12-28T09:30")
    );

    // Monday 11:30 plus one hour skips the lunch break: 13:30.
    set_clock(&clock, &ny("2026-12-14T11:30"));
    server.deliver(&[alice("Fax is silent", "f3@customer.test", &[])]);
    assert_eq!(
        due(&sla(&server, "1003"), "first_response_due"),
        ny("2026-12-14T13:30")
    );

    // `show` prints it with the business time left.
    let text = server.env.run_ok(&["show", "1003"]);
    assert!(
        text.contains("SLA: office (on_track), 1h of business time left"),
        "{text}"
    );
}

#[test]
fn paused_while_replied_resumed_by_the_customer_and_a_priority_change_keeps_the_pause() {
    let sink = Sink::start();
    let policy = format!("[[sla.policy]]\nname = \"standard\"\nqueues = [\"support\"]\n{TARGETS}");
    let t0 = "2026-12-14T09:00:00Z";
    let (server, clock) = helpdesk(&sink, "High", &policy, t0);
    server.deliver(&[alice("Printer on fire", "p1@customer.test", &[])]);
    let v = sla(&server, "1001");
    assert_eq!(due(&v, "resolution_due"), "2026-12-15T09:00:00Z");
    let notification = eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.header("Reply-To").is_some())
            .ok_or_else(|| "no notification yet".to_owned())
    });

    // Bob answers at 10:00: first response met, the ticket is Replied and
    // its clocks pause.
    set_clock(&clock, "2026-12-14T10:00:00Z");
    server.deliver(&[bob(&notification, "b1@agents.test", "We are on it.\n")]);
    let v = eventually(DEADLINE, || {
        let v = sla(&server, "1001");
        if v["state"] == "paused" {
            Ok(v)
        } else {
            Err(format!("{v:#}"))
        }
    });
    assert_eq!(v["resolution_due"], Value::Null, "{v:#}");

    // Two hours later the customer writes back: resumed, two hours paused,
    // and a next-response clock runs from her message.
    set_clock(&clock, "2026-12-14T12:00:00Z");
    server.deliver(&[alice(
        "Re: Printer on fire [#1001]",
        "p2@customer.test",
        &[("In-Reply-To", "<p1@customer.test>")],
    )]);
    let v = sla(&server, "1001");
    assert_eq!(v["state"], "on_track", "{v:#}");
    assert_eq!(v["paused_seconds"], 7200, "{v:#}");
    assert_eq!(due(&v, "resolution_due"), "2026-12-15T11:00:00Z");
    assert_eq!(due(&v, "next_response_due"), "2026-12-14T16:00:00Z");

    // Bob raises the priority with a note: the targets shrink, the pause
    // stays counted.
    server.deliver(&[bob(
        &notification,
        "b2@agents.test",
        "#note\n#priority urgent\n",
    )]);
    let v = eventually(DEADLINE, || {
        let v = sla(&server, "1001");
        if v["resolution_due"] == "2026-12-14T15:00:00Z" {
            Ok(v)
        } else {
            Err(format!("{v:#}"))
        }
    });
    assert_eq!(v["paused_seconds"], 7200, "{v:#}");
    assert_eq!(due(&v, "next_response_due"), "2026-12-14T13:00:00Z");
}

#[test]
fn a_warning_arrives_once_inside_business_hours_and_a_breach_once_across_kill_9() {
    let sink = Sink::start();
    let policy = format!(
        "{OFFICE}[[sla.policy]]\nname = \"office\"\ncalendar = \"office\"\n\
         queues = [\"support\"]\nescalate = [\"notify_admins\"]\n{TARGETS}"
    );
    let (mut server, clock) = helpdesk(&sink, "Urgent", &policy, &ny("2026-12-11T17:55"));
    server.deliver(&[alice("Printer on fire", "w1@customer.test", &[])]);

    // The weekend and Monday before nine: the clock stands, nothing is due.
    set_clock(&clock, &ny("2026-12-14T08:59"));
    let passes = server.log_lines(SCHEDULER_PASS);
    server.wait_log_lines(SCHEDULER_PASS, passes + 2, Duration::from_secs(20));
    assert!(sla_mails(&sink, BOB, "warning").is_empty());

    // 80 % of the hour is 09:48: at 09:50 one warning, to the team.
    set_clock(&clock, &ny("2026-12-14T09:50"));
    let warnings = eventually(DEADLINE, || {
        let w = sla_mails(&sink, BOB, "warning");
        if w.is_empty() {
            Err("no warning yet".to_owned())
        } else {
            Ok(w)
        }
    });
    assert!(
        warnings[0].subject().contains("[#1001]"),
        "{}",
        warnings[0].subject()
    );
    assert_eq!(sla(&server, "1001")["state"], "at_risk");
    let passes = server.log_lines(SCHEDULER_PASS);
    server.wait_log_lines(SCHEDULER_PASS, passes + 3, Duration::from_secs(20));
    assert_eq!(sla_mails(&sink, BOB, "warning").len(), 1);
    assert_eq!(events(&server, "1001", "sla_warning").len(), 1);

    // The breach at 10:00, with postdesk killed as it comes due and
    // started again: one event, one mail to the team, one to the admin.
    set_clock(&clock, &ny("2026-12-14T10:01"));
    server.kill9();
    server.restart();
    let breach = eventually(DEADLINE, || {
        let b = sla_mails(&sink, BOB, "breached");
        if b.is_empty() {
            Err("no breach yet".to_owned())
        } else {
            Ok(b)
        }
    });
    assert!(
        breach[0].subject().contains("first response"),
        "{}",
        breach[0].subject()
    );
    server.kill9();
    server.restart();
    let passes = server.log_lines(SCHEDULER_PASS);
    server.wait_log_lines(SCHEDULER_PASS, passes + 3, Duration::from_secs(20));
    // One breach mail per recipient. A kill between the smarthost's 250
    // and the outbox marking the row sent makes the outbox send that row
    // again after the restart, under the same Message-ID (receivers
    // dedupe by it): count distinct mails, and outbox rows.
    for who in [BOB, ADMIN] {
        let mut ids: Vec<String> = sla_mails(&sink, who, "breached")
            .iter()
            .map(|m| m.message_id().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1, "{who}: {ids:?}");
        let rows = server
            .outbox_json()
            .into_iter()
            .filter(|r| r["kind"] == "sla_breached" && r["to"] == who)
            .count();
        assert_eq!(rows, 1, "{who}");
    }
    assert_eq!(events(&server, "1001", "sla_breached").len(), 1);
    assert_eq!(sla(&server, "1001")["state"], "breached");
    let overdue = server.env.run_json(&["tickets", "--overdue", "--json"]);
    assert_eq!(overdue.as_array().map(Vec::len), Some(1), "{overdue:#}");
    let at_risk = server.env.run_json(&["tickets", "--at-risk", "--json"]);
    assert_eq!(at_risk.as_array().map(Vec::len), Some(0), "{at_risk:#}");
}

#[test]
fn alerts_that_came_due_in_the_lunch_break_wait_for_the_afternoon() {
    let sink = Sink::start();
    let policy = format!(
        "{OFFICE}[[sla.policy]]\nname = \"office\"\ncalendar = \"office\"\n\
         queues = [\"support\"]\n{TARGETS}"
    );
    // Opened Monday 11:00: warning at 11:48, breach at 12:00.
    let (server, clock) = helpdesk(&sink, "Urgent", &policy, &ny("2026-12-14T11:00"));
    server.deliver(&[alice("Printer on fire", "l1@customer.test", &[])]);
    assert_eq!(
        due(&sla(&server, "1001"), "first_response_due"),
        ny("2026-12-14T12:00")
    );
    // Time jumps to 12:30, as after downtime: both are due, but it is the
    // lunch break, so nothing goes out.
    set_clock(&clock, &ny("2026-12-14T12:30"));
    let passes = server.log_lines(SCHEDULER_PASS);
    server.wait_log_lines(SCHEDULER_PASS, passes + 3, Duration::from_secs(20));
    assert!(
        sink.to(BOB)
            .iter()
            .all(|m| !m.subject().starts_with("[postdesk] SLA"))
    );
    // At 13:00 the breach goes out; the warning it overtook is recorded
    // without a mail of its own.
    set_clock(&clock, &ny("2026-12-14T13:00"));
    eventually(DEADLINE, || {
        if sla_mails(&sink, BOB, "breached").len() == 1 {
            Ok(())
        } else {
            Err("no breach mail".to_owned())
        }
    });
    let passes = server.log_lines(SCHEDULER_PASS);
    server.wait_log_lines(SCHEDULER_PASS, passes + 2, Duration::from_secs(20));
    assert!(sla_mails(&sink, BOB, "warning").is_empty());
    assert_eq!(sla_mails(&sink, BOB, "breached").len(), 1);
    assert!(events(&server, "1001", "sla_warning").is_empty());
}

#[test]
fn a_replied_ticket_closes_after_seven_days_without_the_customer() {
    let sink = Sink::start();
    let policy = format!("[[sla.policy]]\nname = \"standard\"\nqueues = [\"support\"]\n{TARGETS}");
    let (server, clock) = helpdesk(&sink, "High", &policy, "2026-12-01T09:00:00Z");
    server.deliver(&[alice("Printer on fire", "a1@customer.test", &[])]);
    let notification = eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| m.header("Reply-To").is_some())
            .ok_or_else(|| "no notification yet".to_owned())
    });
    set_clock(&clock, "2026-12-01T10:00:00Z");
    server.deliver(&[bob(
        &notification,
        "b1@agents.test",
        "Try turning it off.\n",
    )]);
    eventually(DEADLINE, || {
        let t = server.show_json("1001");
        if t["status"] == "Replied" {
            Ok(())
        } else {
            Err(format!("{}", t["status"]))
        }
    });

    // Six days and 23 hours later it closes soon, and is not closed yet.
    set_clock(&clock, "2026-12-08T09:00:00Z");
    let passes = server.log_lines(SCHEDULER_PASS);
    server.wait_log_lines(SCHEDULER_PASS, passes + 2, Duration::from_secs(20));
    let soon = server
        .env
        .run_json(&["tickets", "--closing-soon", "--json"]);
    assert_eq!(soon.as_array().map(Vec::len), Some(1), "{soon:#}");
    assert_eq!(server.show_json("1001")["status"], "Replied");

    // Seven days: Closed, once, and Alice is told.
    set_clock(&clock, "2026-12-08T10:01:00Z");
    let closed = eventually(DEADLINE, || {
        let m: Vec<Received> = sink
            .to(ALICE)
            .into_iter()
            .filter(|m| m.parsed.text.contains("we have closed"))
            .collect();
        if m.is_empty() {
            Err("no auto-close mail".to_owned())
        } else {
            Ok(m)
        }
    });
    assert_eq!(closed[0].header("Auto-Submitted"), Some("auto-replied"));
    assert!(closed[0].subject().contains("[#1001]"));
    assert_eq!(server.show_json("1001")["status"], "Closed");
    let passes = server.log_lines(SCHEDULER_PASS);
    server.wait_log_lines(SCHEDULER_PASS, passes + 2, Duration::from_secs(20));
    assert_eq!(events(&server, "1001", "auto_closed").len(), 1);
    assert_eq!(sla(&server, "1001")["state"], "met");
}
