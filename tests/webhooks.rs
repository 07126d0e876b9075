//! Webhooks end to end: a real `postdesk serve` POSTs ticket events to a
//! real HTTP receiver (Python's `http.server` on loopback,
//! `tests/common/webhook_receiver.py`). Each event arrives once, signed;
//! a receiver that is down gets it when it is back, under the same id; a
//! server killed while a POST is in flight sends it again after restart,
//! under the same id.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, Request};
use common::{DEADLINE, Env, Options, TestServer, alice_mail, eventually};
use hmac::{Hmac, Mac};
use serde_json::Value;

const SECRET: &str = "hook-secret-for-tests";

/// A server whose `[[webhook]]` POSTs `events` to `url`, signed with
/// [`SECRET`] from the environment; retries every 0.2 s.
fn server_with(hooks: &str) -> TestServer {
    let opts = Options {
        extra_toml: format!(
            "[webhooks]\nretry_initial_secs = 0.2\nretry_max_secs = 0.5\nmax_attempts = 50\n{hooks}"
        ),
        ..Options::default()
    };
    let env = Env::new(&opts);
    TestServer::start_in(env, vec![("HOOK_SECRET".to_owned(), SECRET.to_owned())])
}

fn hook(url: &str, events: &str) -> String {
    format!("[[webhook]]\nurl = \"{url}\"\nevents = {events}\nsecret_env = \"HOOK_SECRET\"\n")
}

/// Check `X-Postdesk-Signature` as a receiver would: `t=<secs>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<body>")>`.
fn assert_signed(r: &Request) {
    let sig = r
        .header("x-postdesk-signature")
        .expect("a signature header");
    let (t, v1) = sig
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("signature shape: {sig}"));
    let t: i64 = t.parse().expect("t is Unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!((now - t).abs() < 300, "t={t} is now");
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(r.body.as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, expected, "the HMAC of the body");
}

/// Wait until the receiver has `n` requests; return them.
fn wait_requests(rx: &Receiver, n: usize) -> Vec<Request> {
    eventually(DEADLINE, || {
        let got = rx.requests();
        if got.len() >= n {
            Ok(got)
        } else {
            Err(format!("{} of {n} requests", got.len()))
        }
    })
}

/// `postdesk webhooks --json`.
fn deliveries(server: &TestServer) -> Vec<Value> {
    server
        .env
        .run_json(&["webhooks", "--json"])
        .as_array()
        .expect("an array")
        .clone()
}

#[test]
fn each_event_is_posted_once_signed_and_slack_gets_a_short_text() {
    let rx = Receiver::start();
    let slack = Receiver::start();
    let hooks = format!(
        "{}\n[[webhook]]\nurl = \"{}\"\nevents = [\"ticket.created\"]\nformat = \"slack\"\n",
        hook(&rx.url("/hook"), r#"["ticket.created", "ticket.closed"]"#),
        slack.url("/slack")
    );
    let server = server_with(&hooks);
    server.send_one(&alice_mail(
        "Printer on fire",
        "<w1@customer.test>",
        &[],
        "Help.\n",
    ));
    let created = wait_requests(&rx, 1);
    // Closed by the CLI: another process, publishing all the same.
    server.env.run_ok(&["close", "1001"]);
    let got = wait_requests(&rx, 2);
    assert_eq!(got[0].body, created[0].body);
    for r in &got {
        assert_eq!(r.path, "/hook");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_signed(r);
    }
    let (a, b) = (got[0].json(), got[1].json());
    assert_eq!(a["event"], "ticket.created");
    assert_eq!(b["event"], "ticket.closed");
    assert_ne!(a["id"], b["id"]);
    for v in [&a, &b] {
        assert_eq!(v["data"]["ticket_number"], "#1001");
        assert_eq!(v["data"]["subject"], "Printer on fire");
        assert_eq!(v["data"]["queue"], "support");
        assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(v["data"]["priority"].is_string());
    }
    assert_eq!(b["data"]["status"], "Closed");

    let s = wait_requests(&slack, 1);
    let text = s[0].json()["text"].as_str().expect("text").to_owned();
    assert!(
        text.contains("1001") && text.contains("Printer on fire"),
        "{text}"
    );
    assert!(text.contains("/api/v1/tickets/1001|"), "a link: {text}");
    assert!(
        s[0].header("x-postdesk-signature").is_none(),
        "no secret, no signature"
    );

    // Once: nothing more arrives, and every row is marked sent.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rx.requests().len(), 2);
    assert_eq!(slack.requests().len(), 1);
    let rows = deliveries(&server);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "sent"), "{rows:?}");
}

#[test]
fn a_receiver_down_then_up_gets_the_event_once_under_the_same_id() {
    let mut rx = Receiver::start();
    rx.stop();
    let server = server_with(&hook(&rx.url("/hook"), r#"["ticket.created"]"#));
    server.send_one(&alice_mail("Down", "<w2@customer.test>", &[], "Hello.\n"));
    // Refused a few times, retried each time.
    let row = eventually(DEADLINE, || {
        let rows = deliveries(&server);
        match rows.first() {
            Some(r) if r["attempts"].as_i64().unwrap_or(0) >= 3 => Ok(r.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(row["status"].as_str().map(|s| s != "sent"), Some(true));
    assert!(
        row["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("connecting"),
        "{row}"
    );
    rx.start_again();
    let got = wait_requests(&rx, 1);
    assert_eq!(got[0].json()["id"], row["event_id"]);
    assert_signed(&got[0]);
    eventually(DEADLINE, || match deliveries(&server).first() {
        Some(r) if r["status"] == "sent" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(rx.requests().len(), 1, "delivered once");
}

#[test]
fn a_server_killed_during_a_post_sends_it_again_after_restart_under_the_same_id() {
    let rx = Receiver::start();
    rx.set_mode("stall");
    let mut server = server_with(&hook(&rx.url("/hook"), r#"["ticket.created"]"#));
    server.send_one(&alice_mail(
        "Stalled",
        "<w3@customer.test>",
        &[],
        "Hello.\n",
    ));
    // The POST is in flight: claimed, sent, never answered.
    let stalled = wait_requests(&rx, 1);
    assert_eq!(deliveries(&server)[0]["status"], "sending");
    server.kill9();
    rx.set_mode("200");
    server.restart();
    let got = wait_requests(&rx, 2);
    assert_eq!(got[1].status, "200");
    assert_eq!(
        got[1].json()["id"],
        stalled[0].json()["id"],
        "the same event id"
    );
    assert_signed(&got[1]);
    eventually(DEADLINE, || match deliveries(&server).first() {
        Some(r) if r["status"] == "sent" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    std::thread::sleep(Duration::from_millis(1000));
    let answered = rx.requests().iter().filter(|r| r.status == "200").count();
    assert_eq!(answered, 1, "delivered once");
}

#[test]
fn a_client_error_fails_at_once_is_recorded_and_can_be_retried() {
    let rx = Receiver::start();
    rx.set_mode("410");
    let server = server_with(&hook(&rx.url("/hook"), r#"["ticket.created"]"#));
    server.send_one(&alice_mail("Gone", "<w4@customer.test>", &[], "Hello.\n"));
    let row = eventually(DEADLINE, || match deliveries(&server).first() {
        Some(r) if r["status"] == "failed" => Ok(r.clone()),
        other => Err(format!("{other:?}")),
    });
    assert_eq!(row["attempts"], 1, "a 4xx is not retried");
    assert!(row["last_error"].as_str().unwrap_or("").contains("410"));
    let shown = server.show_json("1001");
    let kinds: Vec<&str> = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"webhook_failed"), "{kinds:?}");

    rx.set_mode("200");
    let id = row["id"].as_i64().expect("id").to_string();
    server.env.run_ok(&["webhooks", "retry", &id]);
    let got = wait_requests(&rx, 2);
    assert_eq!(got[1].status, "200");
    assert_eq!(got[1].json()["id"], got[0].json()["id"]);
}
