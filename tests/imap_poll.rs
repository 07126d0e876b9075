//! IMAP pollers against a real Dovecot.
//!
//! Each test starts its own Dovecot (tests/common/dovecot.rs) with the
//! client's mailboxes as users, its own postdesk with a client file that
//! polls them, APPENDs mail over IMAP and checks what postdesk made of it:
//! tickets with the mailbox's priority, type and customer; an immediate
//! alert for High; `\Seen` on the server after the commit; no loss, no
//! duplicate and nothing left unread across kill -9; one broken-mailbox ticket for a wrong password
//! and its recovery; a UIDVALIDITY change; a mailbox added while running.

mod common;

use std::time::Duration;

use std::collections::BTreeSet;

use common::dovecot::Dovecot;
use common::postfix_sink::PostfixSink;
use common::{Env, Options, POLL_FAILED, POLL_PASS, TestServer, eventually, mail, text_mail};
use serde_json::Value;

const DOMAIN: &str = "acme.test";
const PASSWORD: &str = "s3cret-pass";

fn address(local: &str) -> String {
    format!("{local}@{DOMAIN}")
}

/// Dovecot users for `locals`, all with [`PASSWORD`].
fn dovecot_for(locals: &[&str]) -> Dovecot {
    let users: Vec<(String, &str)> = locals.iter().map(|l| (address(l), PASSWORD)).collect();
    let refs: Vec<(&str, &str)> = users.iter().map(|(u, p)| (u.as_str(), *p)).collect();
    Dovecot::start(&refs)
}

/// The `[imap]` table pointing at `dovecot`, passwords in files.
fn imap_table(dovecot: &Dovecot, extra: &str) -> String {
    format!(
        "[imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         password_file = \"secrets/{{local}}.pass\"\npoll_interval_secs = 2\n\
         timeout_secs = 20\n{extra}\n",
        dovecot.port
    )
}

/// Write the password files for `locals`.
fn write_passwords(env: &Env, locals: &[&str], password: &str) {
    for l in locals {
        env.write_secret(&format!("secrets/{l}.pass"), &format!("{password}\n"));
    }
}

/// An env whose rules.toml names the admin team, plus `extra` tables.
fn env_with(extra: &str) -> Env {
    Env::new(&Options {
        extra_toml: format!("[monitoring]\nadmins = [\"ops@example.com\"]\n{extra}"),
        ..Options::default()
    })
}

fn count(env: &Env, sql: &str) -> i64 {
    if !env.data_dir.join("postdesk.sqlite3").exists() {
        return 0;
    }
    env.db().query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

fn notices(env: &Env) -> Vec<Value> {
    match env.run_json(&["notices", "--json"]) {
        Value::Array(a) => a,
        other => panic!("notices --json: {other}"),
    }
}

fn ticket_by_subject<'a>(tickets: &'a [Value], subject: &str) -> Option<&'a Value> {
    tickets
        .iter()
        .find(|t| t["subject"].as_str() == Some(subject))
}

#[test]
fn tickets_from_client_mailboxes_carry_priority_type_and_customer_and_high_alerts_at_once() {
    let locals: Vec<&str> = postdesk::config::CRTC_PRESET
        .iter()
        .map(|(l, _)| *l)
        .collect();
    let dovecot = dovecot_for(&locals);
    let sink = PostfixSink::start();
    let env = env_with(&sink.outbound_toml());
    write_passwords(&env, &locals, PASSWORD);
    env.write_config(
        "mailboxes/acme.toml",
        &format!(
            "[client]\ncustomer = \"Acme Telecom\"\ndomain = \"{DOMAIN}\"\npreset = \"crtc\"\n\
             contacts = [\"boss@acme-owner.test\"]\n{}",
            imap_table(&dovecot, "")
        ),
    );
    let server = TestServer::start_in(env, Vec::new());

    let cases = [
        ("regulatory", "Notice of hearing", "High"),
        ("billing", "Invoice 42 overdue", "Medium"),
        ("support", "Cannot log in", "Low"),
    ];
    for (i, (local, subject, _)) in cases.iter().enumerate() {
        let from = format!("sender{i}@outside.test");
        dovecot.append(
            &address(local),
            PASSWORD,
            "INBOX",
            &[mail(
                &from,
                &address(local),
                subject,
                &format!("m{i}@outside.test"),
                &[],
            )
            .raw],
        );
    }
    let tickets = eventually(Duration::from_secs(30), || {
        let t = server.tickets_json();
        if t.len() >= 3 {
            Ok(t)
        } else {
            Err(format!("{} tickets\n{}", t.len(), server.stderr()))
        }
    });
    assert_eq!(tickets.len(), 3, "{tickets:#?}");
    for (local, subject, priority) in cases {
        let t =
            ticket_by_subject(&tickets, subject).unwrap_or_else(|| panic!("no ticket {subject}"));
        assert_eq!(t["priority"], priority, "{t}");
        assert_eq!(t["issue_type"], "CRTC Correspondence", "{t}");
        assert_eq!(t["inbound_address"], address(local), "{t}");
    }
    // The customer each ticket belongs to.
    let customers: Vec<(String, String)> = {
        let conn = server.env.db();
        let mut st = conn
            .prepare("SELECT customer, mailbox FROM ticket_clients ORDER BY mailbox")
            .expect("prepare");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(customers.len(), 3, "{customers:?}");
    assert!(
        customers.iter().all(|(c, _)| c == "Acme Telecom"),
        "{customers:?}"
    );

    // The High one alerted at once, to the client's contact and the admins;
    // the others are digest items, not alerts.
    let n = eventually(Duration::from_secs(10), || {
        let n = notices(&server.env);
        if n.is_empty() {
            Err("no notice yet".into())
        } else {
            Ok(n)
        }
    });
    let alerts: Vec<&Value> = n.iter().filter(|x| x["kind"] == "alert").collect();
    assert_eq!(alerts.len(), 1, "{n:#?}");
    assert!(
        alerts[0]["subject"]
            .as_str()
            .unwrap_or("")
            .contains("Notice of hearing")
    );
    let to: Vec<&str> = alerts[0]["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(to, ["boss@acme-owner.test", "ops@example.com"]);
    assert_eq!(count(&server.env, "SELECT COUNT(*) FROM digest_items"), 2);
    // And the alert reached a real SMTP server, once per recipient.
    let delivered = eventually(Duration::from_secs(20), || {
        let m: Vec<String> = sink
            .messages()
            .into_iter()
            .filter(|m| m.contains("Notice of hearing"))
            .collect();
        if m.len() == 2 {
            Ok(m)
        } else {
            Err(format!("{} alert mails\n{}", m.len(), server.stderr()))
        }
    });
    let rcpts: BTreeSet<&str> = delivered
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("X-Rcpt-Args:")))
        .collect();
    assert_eq!(
        rcpts,
        BTreeSet::from([
            "X-Rcpt-Args: <boss@acme-owner.test>",
            "X-Rcpt-Args: <ops@example.com>"
        ]),
        "one copy per recipient: {delivered:#?}"
    );
    assert!(
        delivered
            .iter()
            .all(|m| m.contains("Auto-Submitted: auto-generated")),
        "{delivered:#?}"
    );

    // Marked \Seen on the server once committed.
    eventually(Duration::from_secs(10), || {
        let flags = dovecot.flags(&address("billing"), PASSWORD, "INBOX");
        if flags.len() == 1 && flags[0].1.iter().any(|f| f == "\\Seen") {
            Ok(())
        } else {
            Err(format!("{flags:?}"))
        }
    });

    // SMTP mail to the same address gets the mailbox's priority too.
    let out = server.send_one(&common::Mail::new(
        "walkin@outside.test",
        &[&address("noc")],
        mail(
            "walkin@outside.test",
            &address("noc"),
            "Outage report",
            "smtp1@outside.test",
            &[],
        )
        .raw,
    ));
    assert!(out.accepted(), "{out:?}");
    let t = server.tickets_json();
    let smtp = ticket_by_subject(&t, "Outage report").expect("smtp ticket");
    assert_eq!(smtp["priority"], "High");
    assert_eq!(
        notices(&server.env)
            .iter()
            .filter(|x| x["kind"] == "alert")
            .count(),
        2
    );
}

#[test]
fn kill9_during_a_poll_of_many_messages_loses_none_duplicates_none_and_leaves_none_unseen() {
    const N: usize = 1500;
    let dovecot = dovecot_for(&["support"]);
    let env = Env::new(&Options::default());
    write_passwords(&env, &["support"], PASSWORD);
    env.write_config(
        "mailboxes/acme.toml",
        &format!(
            "[client]\ncustomer = \"Acme\"\ndomain = \"{DOMAIN}\"\n{}\
             [[mailbox]]\naddress = \"support\"\npriority = \"Low\"\n",
            imap_table(&dovecot, "first_sync = \"all\"")
        ),
    );
    let messages: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let from = format!("c{i}@outside.test");
            mail(
                &from,
                &address("support"),
                &format!("Crash poll {i}"),
                &format!("cp{i}@outside.test"),
                &[],
            )
            .raw
        })
        .collect();
    let uids = dovecot.append(&address("support"), PASSWORD, "INBOX", &messages);
    assert_eq!(uids.len(), N);

    let mut server = TestServer::start_in(env, Vec::new());
    // Kill once part of the catch-up is committed.
    eventually(Duration::from_secs(60), || {
        let n = count(&server.env, "SELECT COUNT(*) FROM messages");
        if n >= (N / 5) as i64 {
            Ok(())
        } else {
            Err(format!("{n} stored\n{}", server.stderr()))
        }
    });
    server.kill9();
    let at_kill = count(&server.env, "SELECT COUNT(*) FROM messages");
    assert!(
        at_kill < N as i64,
        "the kill came too late to test anything ({at_kill})"
    );
    server.restart();
    eventually(Duration::from_secs(120), || {
        let n = count(
            &server.env,
            "SELECT COUNT(DISTINCT message_id) FROM messages",
        );
        if n == N as i64 {
            Ok(())
        } else {
            Err(format!("{n} of {N}\n{}", server.stderr()))
        }
    });
    // Exactly once each, one ticket each, and the UID state at the end.
    assert_eq!(
        count(&server.env, "SELECT COUNT(*) FROM messages"),
        N as i64
    );
    assert_eq!(count(&server.env, "SELECT COUNT(*) FROM tickets"), N as i64);
    assert_eq!(
        count(&server.env, "SELECT COUNT(*) FROM digest_items"),
        N as i64
    );
    let max_uid = i64::from(*uids.iter().max().expect("uids"));
    eventually(Duration::from_secs(10), || {
        let last = count(&server.env, "SELECT last_uid FROM mailbox_sync");
        if last == max_uid {
            Ok(())
        } else {
            Err(format!("last_uid {last} != {max_uid}"))
        }
    });
    // `\Seen` follows every commit, those committed just before the kill
    // included (marked when the poller starts again).
    eventually(Duration::from_secs(30), || {
        let flags = dovecot.flags(&address("support"), PASSWORD, "INBOX");
        let unseen: Vec<u32> = flags
            .iter()
            .filter(|(_, f)| !f.iter().any(|x| x == "\\Seen"))
            .map(|(uid, _)| *uid)
            .collect();
        if flags.len() == N && unseen.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} of {} messages not \\Seen (first {:?}; {at_kill} stored at the kill)",
                unseen.len(),
                flags.len(),
                unseen.iter().take(10).collect::<Vec<_>>()
            ))
        }
    });
}

#[test]
fn a_wrong_password_opens_exactly_one_broken_ticket_and_the_recovery_is_noted() {
    let dovecot = dovecot_for(&["regulatory"]);
    let sink = PostfixSink::start();
    let env = env_with(&sink.outbound_toml());
    write_passwords(&env, &["regulatory"], "wrong-password");
    env.write_config(
        "mailboxes/acme.toml",
        &format!(
            "[client]\ncustomer = \"Acme\"\ndomain = \"{DOMAIN}\"\n{}\
             [[mailbox]]\naddress = \"regulatory\"\npriority = \"High\"\n",
            imap_table(&dovecot, "failures_before_broken = 2")
        ),
    );
    let mut server = TestServer::start_in(env, Vec::new());
    let subject = format!("Mailbox {} unreachable", address("regulatory"));
    let broken = eventually(Duration::from_secs(30), || {
        let t = server.tickets_json();
        match t
            .iter()
            .find(|t| t["subject"].as_str().unwrap_or("").starts_with(&subject))
        {
            Some(t) => Ok(t.clone()),
            None => Err(format!("{t:?}\n{}", server.stderr())),
        }
    });
    assert_eq!(broken["priority"], "High");
    assert_eq!(broken["issue_type"], "Bug");
    // The admins' queue for client mailboxes, not customers' support.
    assert_eq!(broken["queue"], "monitoring", "{broken}");
    // `mailboxes --json` names the ticket as every other output does.
    let states = server.env.run_json(&["mailboxes", "--json"]);
    let state = states
        .as_array()
        .and_then(|a| a.iter().find(|s| s["mailbox"] == address("regulatory")))
        .unwrap_or_else(|| panic!("no state for the mailbox: {states}"));
    assert_eq!(state["health"]["broken"], true, "{state}");
    assert_eq!(state["health"]["ticket"], broken["number"], "{state}");
    // Keep failing for a while (several more attempts), and across a restart.
    eventually(Duration::from_secs(30), || {
        let fails = dovecot.log().matches("auth failed").count()
            + dovecot.log().matches("Authentication failure").count()
            + dovecot.log().matches("Disconnected (auth failed").count();
        if fails >= 5 {
            Ok(())
        } else {
            Err(format!("{fails} failures so far"))
        }
    });
    server.restart();
    // Three failed attempts after the restart: past the threshold again,
    // with the mailbox already marked broken in the store.
    server.wait_log_lines(POLL_FAILED, 3, Duration::from_secs(30));
    let tickets = server.tickets_json();
    let brokens = tickets
        .iter()
        .filter(|t| t["subject"].as_str().unwrap_or("").starts_with(&subject))
        .count();
    assert_eq!(brokens, 1, "{tickets:#?}");
    let n = notices(&server.env);
    assert_eq!(
        n.iter().filter(|x| x["kind"] == "mailbox_broken").count(),
        1,
        "{n:#?}"
    );
    assert_eq!(
        n.iter()
            .find(|x| x["kind"] == "mailbox_broken")
            .expect("alert")["recipients"][0],
        "ops@example.com"
    );
    // One alert mail reached the admins, not one per attempt.
    let alerts = eventually(Duration::from_secs(20), || {
        let m: Vec<String> = sink
            .messages()
            .into_iter()
            .filter(|m| m.contains("unreachable"))
            .collect();
        if m.is_empty() {
            Err("no alert mail yet".into())
        } else {
            Ok(m)
        }
    });
    assert_eq!(alerts.len(), 1, "{alerts:#?}");

    // Fix the password: the next attempt works and the ticket says so.
    write_passwords(&server.env, &["regulatory"], PASSWORD);
    let number = broken["number"].as_str().expect("number").to_owned();
    eventually(Duration::from_secs(30), || {
        let show = server.show_json(&number);
        let events: Vec<&str> = show["events"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["kind"].as_str()).collect())
            .unwrap_or_default();
        if events.contains(&"mailbox_recovered") {
            Ok(())
        } else {
            Err(format!("{events:?}\n{}", server.stderr()))
        }
    });
    let show = server.show_json(&number);
    let notes: Vec<&str> = show["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["kind"] == "note")
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(notes.iter().any(|t| t.contains("works again")), "{notes:?}");
    assert_eq!(
        server.tickets_json().len(),
        1,
        "recovery opens no ticket of its own"
    );
}

#[test]
fn a_uidvalidity_change_resyncs_and_stored_mail_is_not_duplicated() {
    let dovecot = dovecot_for(&["billing"]);
    let env = Env::new(&Options::default());
    write_passwords(&env, &["billing"], PASSWORD);
    dovecot.create(&address("billing"), PASSWORD, "Monitored");
    env.write_config(
        "mailboxes/acme.toml",
        &format!(
            "[client]\ncustomer = \"Acme\"\ndomain = \"{DOMAIN}\"\n{}\
             [[mailbox]]\naddress = \"billing\"\npriority = \"Medium\"\nfolder = \"Monitored\"\n",
            imap_table(&dovecot, "first_sync = \"all\"")
        ),
    );
    let first: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            mail(
                &format!("u{i}@outside.test"),
                &address("billing"),
                &format!("Uv {i}"),
                &format!("uv{i}@outside.test"),
                &[],
            )
            .raw
        })
        .collect();
    dovecot.append(&address("billing"), PASSWORD, "Monitored", &first);
    let server = TestServer::start_in(env, Vec::new());
    eventually(Duration::from_secs(30), || {
        let n = server.tickets_json().len();
        if n == 3 {
            Ok(())
        } else {
            Err(format!("{n}\n{}", server.stderr()))
        }
    });
    // The folder is replaced: same name, new UIDVALIDITY, the old mail again
    // plus one new message.
    dovecot.rename(&address("billing"), PASSWORD, "Monitored", "Old");
    dovecot.create(&address("billing"), PASSWORD, "Monitored");
    let mut again = first.clone();
    again.push(
        mail(
            "u9@outside.test",
            &address("billing"),
            "Uv new",
            "uv9@outside.test",
            &[],
        )
        .raw,
    );
    dovecot.append(&address("billing"), PASSWORD, "Monitored", &again);
    eventually(Duration::from_secs(30), || {
        let n = server.tickets_json().len();
        if n == 4 {
            Ok(())
        } else {
            Err(format!("{n}\n{}", server.stderr()))
        }
    });
    // Two more passes over the folder (each caught up, everything fetched
    // committed): nothing more appears.
    server.wait_log_lines(POLL_PASS, 2, Duration::from_secs(30));
    assert_eq!(server.tickets_json().len(), 4);
    assert_eq!(count(&server.env, "SELECT COUNT(*) FROM messages"), 4);
    assert!(
        server.stderr().contains("uidvalidity changed"),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_mailbox_added_to_the_config_while_running_starts_polling() {
    let dovecot = dovecot_for(&["regulatory", "billing"]);
    let env = Env::new(&Options::default());
    write_passwords(&env, &["regulatory", "billing"], PASSWORD);
    let client = |mailboxes: &str| {
        format!(
            "[client]\ncustomer = \"Acme\"\ndomain = \"{DOMAIN}\"\n{}{mailboxes}",
            imap_table(&dovecot, "")
        )
    };
    env.write_config(
        "mailboxes/acme.toml",
        &client("[[mailbox]]\naddress = \"regulatory\"\npriority = \"High\"\n"),
    );
    let server = TestServer::start_in(env, Vec::new());
    eventually(Duration::from_secs(20), || {
        if server.stderr().contains("mailbox selected") {
            Ok(())
        } else {
            Err(server.stderr())
        }
    });
    server.env.write_config(
        "mailboxes/acme.toml",
        &client(
            "[[mailbox]]\naddress = \"regulatory\"\npriority = \"High\"\n\
             [[mailbox]]\naddress = \"billing\"\npriority = \"Medium\"\n",
        ),
    );
    dovecot.append(
        &address("billing"),
        PASSWORD,
        "INBOX",
        &[mail(
            "x@outside.test",
            &address("billing"),
            "Added later",
            "late1@outside.test",
            &[],
        )
        .raw],
    );
    let t = eventually(Duration::from_secs(30), || {
        let t = server.tickets_json();
        if t.len() == 1 {
            Ok(t)
        } else {
            Err(format!("{t:?}\n{}", server.stderr()))
        }
    });
    assert_eq!(t[0]["priority"], "Medium");
    // The other mailbox's poller was left alone.
    let log = server.stderr();
    let starts = log
        .lines()
        .filter(|l| l.contains("poller starting") && l.contains("regulatory@"))
        .count();
    assert_eq!(starts, 1, "{log}");
}

/// The IMAP poller benchmark (run it with
/// `cargo test --release --test imap_poll -- --ignored --nocapture bench`,
/// or `contrib/bench-imap.sh`): catch-up ingest of 10,000 messages waiting
/// in four Dovecot mailboxes, then the time from APPEND to ticket with
/// IDLE over 50 messages.
#[test]
#[ignore = "benchmark: minutes of work, run on purpose"]
fn bench_imap_catch_up_and_idle_latency() {
    let total: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let locals = ["billing", "support", "accounting", "info"];
    let dovecot = dovecot_for(&locals);
    let env = Env::new(&Options::default());
    write_passwords(&env, &locals, PASSWORD);
    let mut mailboxes = String::new();
    for l in locals {
        mailboxes.push_str(&format!(
            "[[mailbox]]\naddress = \"{l}\"\npriority = \"Low\"\n"
        ));
    }
    env.write_config(
        "mailboxes/acme.toml",
        &format!(
            "[client]\ncustomer = \"Acme\"\ndomain = \"{DOMAIN}\"\n{}{mailboxes}",
            imap_table(&dovecot, "first_sync = \"all\"")
        ),
    );
    let body =
        "Hello,\nthis is an ordinary message of a few lines, as customers write them.\n".repeat(12);
    let per = total / locals.len();
    for (k, l) in locals.iter().enumerate() {
        let msgs: Vec<Vec<u8>> = (0..per)
            .map(|i| {
                let from = format!("b{k}-{i}@outside.test");
                text_mail(
                    &from,
                    &address(l),
                    &format!("Bench {k}-{i}"),
                    &format!("bench-{k}-{i}@outside.test"),
                    &[],
                    &body,
                )
            })
            .collect();
        dovecot.write_maildir(&address(l), &msgs);
    }
    let n = per * locals.len();
    let start = std::time::Instant::now();
    let server = TestServer::start_in(env, Vec::new());
    eventually(Duration::from_secs(900), || {
        let c = count(&server.env, "SELECT COUNT(*) FROM messages");
        if c == n as i64 {
            Ok(())
        } else {
            Err(format!("{c} of {n}"))
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "catch-up: {n} messages in {secs:.2} s = {:.0} messages/s (from process start, 4 mailboxes)",
        n as f64 / secs
    );

    // APPEND -> ticket with IDLE: one message at a time.
    let conn = server.env.db();
    let mut samples = Vec::new();
    for i in 0..50 {
        let id = format!("lat-{i}@outside.test");
        let m = mail(
            "lat@outside.test",
            &address("billing"),
            &format!("Latency {i}"),
            &id,
            &[],
        )
        .raw;
        dovecot.append(&address("billing"), PASSWORD, "INBOX", &[m]);
        let t0 = std::time::Instant::now();
        loop {
            let found: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM messages WHERE message_id = ?1 AND ticket_id IS NOT NULL",
                    [&id],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            if found == 1 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "message {i} never arrived"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        samples.push(t0.elapsed());
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "APPEND -> ticket (IDLE), {} samples: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.len(),
        p(0.50).as_secs_f64() * 1000.0,
        p(0.99).as_secs_f64() * 1000.0,
        samples[samples.len() - 1].as_secs_f64() * 1000.0
    );
}

#[test]
fn mailboxes_are_polled_over_implicit_tls_and_starttls_trusting_the_configured_ca() {
    let users = [
        ("billing@acme.test", PASSWORD),
        ("billing@beta.test", PASSWORD),
        ("billing@gamma.test", PASSWORD),
    ];
    let dovecot = Dovecot::start_tls(&users);
    let ca = dovecot.ca_file.clone().expect("a CA");
    let env = env_with("");
    write_passwords(&env, &["billing"], PASSWORD);
    // Acme over implicit TLS (IMAPS), Beta over STARTTLS on the IMAP port;
    // both trust only the throwaway CA that signed Dovecot's certificate.
    for (client, domain, tls, port) in [
        ("acme", "acme.test", "implicit", dovecot.tls_port),
        ("beta", "beta.test", "starttls", dovecot.port),
    ] {
        env.write_config(
            &format!("mailboxes/{client}.toml"),
            &format!(
                "[client]\ncustomer = \"{client}\"\ndomain = \"{domain}\"\n\
                 [[mailbox]]\naddress = \"billing\"\npriority = \"Medium\"\n\
                 [imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\n\
                 ca_file = \"{}\"\npassword_file = \"secrets/{{local}}.pass\"\n\
                 poll_interval_secs = 2\ntimeout_secs = 20\n",
                ca.display()
            ),
        );
    }
    // Gamma trusts the platform's roots only: the certificate is refused,
    // and the mailbox is reported broken at the first failure.
    env.write_config(
        "mailboxes/gamma.toml",
        &format!(
            "[client]\ncustomer = \"gamma\"\ndomain = \"gamma.test\"\n\
             [[mailbox]]\naddress = \"billing\"\n\
             [imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\n\
             password_file = \"secrets/{{local}}.pass\"\nfailures_before_broken = 1\n\
             poll_interval_secs = 2\ntimeout_secs = 20\n",
            dovecot.tls_port
        ),
    );
    let server = TestServer::start_in(env, Vec::new());
    for (user, subject) in [
        ("billing@acme.test", "Over implicit TLS"),
        ("billing@beta.test", "Over STARTTLS"),
    ] {
        dovecot.append(
            user,
            PASSWORD,
            "INBOX",
            &[mail(
                "someone@outside.test",
                user,
                subject,
                &format!("{}@outside.test", subject.len()),
                &[],
            )
            .raw],
        );
    }
    let tickets = eventually(Duration::from_secs(30), || {
        let t = server.tickets_json();
        let broken = t.iter().any(|x| {
            x["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Mailbox billing@gamma.test unreachable"))
        });
        if ticket_by_subject(&t, "Over implicit TLS").is_some()
            && ticket_by_subject(&t, "Over STARTTLS").is_some()
            && broken
        {
            Ok(t)
        } else {
            Err(format!("tickets so far: {t:?}"))
        }
    });
    assert_eq!(tickets.len(), 3, "{tickets:#?}");
    let broken = tickets
        .iter()
        .find_map(|t| t["subject"].as_str().filter(|s| s.contains("gamma")))
        .expect("gamma's ticket");
    assert!(broken.to_lowercase().contains("certificate"), "{broken}");
    // Dovecot logged postdesk's logins as TLS sessions (the test's own
    // APPENDs log in over plain loopback, "secured").
    let log = dovecot.log();
    for user in ["billing@acme.test", "billing@beta.test"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("Login: user=<{user}>")) && l.contains(", TLS,")),
            "no TLS login for {user}:\n{log}"
        );
    }
}

/// Mail already in the folder when a `first_sync = "new"` sync began was
/// never stored: the after-ingest step (here `after_ingest`) must never
/// reach it, not even when a restart finishes what a crash left undone.
fn mail_from_before_the_first_sync_is_left_alone(after_ingest: &str) {
    let dovecot = dovecot_for(&["info"]);
    let env = Env::new(&Options::default());
    write_passwords(&env, &["info"], PASSWORD);
    env.write_config(
        "mailboxes/acme.toml",
        &format!(
            "[client]\ncustomer = \"Acme\"\ndomain = \"{DOMAIN}\"\n{}\
             [[mailbox]]\naddress = \"info\"\npriority = \"Low\"\n",
            imap_table(
                &dovecot,
                &format!("first_sync = \"new\"\nafter_ingest = \"{after_ingest}\"")
            )
        ),
    );
    let append = |subject: &str, id: &str| {
        dovecot.append(
            &address("info"),
            PASSWORD,
            "INBOX",
            &[mail(
                "someone@outside.test",
                &address("info"),
                subject,
                &format!("{id}@outside.test"),
                &[],
            )
            .raw],
        )[0]
    };
    let old = append("Old mail", "old1");
    let mut server = TestServer::start_in(env, Vec::new());
    // The first sync has begun (after the old message) once its state is
    // stored; mail appended from now on is new.
    eventually(Duration::from_secs(30), || {
        match count(&server.env, "SELECT COUNT(*) FROM mailbox_sync") {
            1 => Ok(()),
            n => Err(format!("{n} sync rows\n{}", server.stderr())),
        }
    });
    let wait_tickets = |server: &TestServer, n: usize| {
        eventually(Duration::from_secs(30), || {
            let t = server.tickets_json();
            if t.len() == n {
                Ok(t)
            } else {
                Err(format!("{} of {n} tickets\n{}", t.len(), server.stderr()))
            }
        })
    };
    append("New mail 1", "new1");
    wait_tickets(&server, 1);
    // A new session finishes the after-ingest leftovers before it fetches,
    // so once the mail appended after the restart is a ticket, that ran.
    server.restart();
    append("New mail 2", "new2");
    let tickets = wait_tickets(&server, 2);
    assert!(
        ticket_by_subject(&tickets, "Old mail").is_none(),
        "{tickets:#?}"
    );
    let flags = dovecot.flags(&address("info"), PASSWORD, "INBOX");
    let old_flags = flags
        .iter()
        .find(|(uid, _)| *uid == old)
        .unwrap_or_else(|| panic!("the old message is gone ({after_ingest}): {flags:?}"));
    assert!(
        !old_flags
            .1
            .iter()
            .any(|f| f == "\\Seen" || f == "\\Deleted"),
        "the old message was touched ({after_ingest}): {flags:?}"
    );
}

#[test]
fn seen_mode_never_marks_mail_from_before_the_first_sync() {
    mail_from_before_the_first_sync_is_left_alone("seen");
}

#[test]
fn delete_mode_never_deletes_mail_from_before_the_first_sync() {
    mail_from_before_the_first_sync_is_left_alone("delete");
}
