//! `GET /metrics` over real HTTP: Prometheus's own text-format parser
//! (`prometheus_client`, `tests/common/prom_parse.py`) reads it without
//! error, and after a known run the counters say what happened. Who may
//! scrape: the bearer token when one is configured.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::http::get;
use common::{DEADLINE, Env, Options, REPO, TestServer, alice_mail, eventually};
use serde_json::Value;

const TOKEN: &str = "scrape-token-for-tests";

/// A server whose `/metrics` wants [`TOKEN`].
fn server() -> TestServer {
    let env = Env::new(&Options {
        http_toml: "metrics_token_file = \"metrics_token\"\n".to_owned(),
        ..Options::default()
    });
    env.write_secret("metrics_token", TOKEN);
    TestServer::start_in(env, Vec::new())
}

/// Every sample of `text`, as the Prometheus parser reads it.
fn parse(text: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .arg(format!("{REPO}/tests/common/prom_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (contrib/test.sh installs prometheus-client)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition");
    let out = child.wait_with_output().expect("the parser ran");
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

/// The value of sample `name` with exactly `labels` (a subset match).
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(k, v)| s["labels"][*k].as_str() == Some(*v))
        })
        .and_then(|s| s["value"].as_f64())
}

fn scrape(server: &TestServer) -> Vec<Value> {
    let http = server.http.expect("the web door is on");
    let bearer = format!("Bearer {TOKEN}");
    let a = get(http, "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    parse(&a.text())
}

#[test]
fn metrics_parse_and_count_a_known_run() {
    const N: usize = 5;
    let server = server();
    let mails: Vec<_> = (0..N)
        .map(|i| {
            alice_mail(
                &format!("Question {i}"),
                &format!("<m{i}@customer.test>"),
                &[],
                "Hi.\n",
            )
        })
        .collect();
    for o in server.send(&mails) {
        assert!(o.accepted(), "{o:?}");
    }
    // The same mail again is a duplicate, not a new message.
    assert!(server.send_one(&mails[0]).accepted());

    let samples = scrape(&server);
    let n = N as f64;
    assert_eq!(
        value(
            &samples,
            "postdesk_messages_total",
            &[("source", "smtp"), ("outcome", "stored")]
        ),
        Some(n)
    );
    assert_eq!(
        value(
            &samples,
            "postdesk_messages_total",
            &[("source", "smtp"), ("outcome", "duplicate")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "postdesk_pipeline_duration_seconds_count",
            &[("source", "smtp")]
        ),
        Some(n + 1.0)
    );
    let batches = value(&samples, "postdesk_writer_batch_size_sum", &[]).expect("batch sizes");
    // Batches also carry the writer's other jobs (scheduler passes).
    assert!(
        batches >= n + 1.0,
        "every message was in some batch: {batches}"
    );
    assert_eq!(
        value(
            &samples,
            "postdesk_smtp_sessions_total",
            &[("protocol", "smtp")]
        ),
        Some(2.0)
    );
    // One 250 per message accepted at DATA (and more for EHLO, MAIL, RCPT).
    assert!(
        value(&samples, "postdesk_smtp_replies_total", &[("code", "250")]).unwrap_or(0.0)
            >= n + 1.0
    );
    let open: f64 = samples
        .iter()
        .filter(|s| s["name"] == "postdesk_tickets_open")
        .filter_map(|s| s["value"].as_f64())
        .sum();
    assert_eq!(open, n, "one open ticket per new mail");
    assert_eq!(
        value(
            &samples,
            "postdesk_tickets_open",
            &[("queue", "support"), ("status", "Open")]
        ),
        Some(n)
    );
    assert_eq!(
        value(
            &samples,
            "postdesk_webhook_backlog",
            &[("status", "queued")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&samples, "postdesk_sla_tickets", &[("state", "breached")]),
        Some(0.0)
    );
    // The acknowledgements leave through the outbox and are counted.
    eventually(DEADLINE, || {
        let s = scrape(&server);
        match value(&s, "postdesk_outbox_sends_total", &[("outcome", "sent")]) {
            Some(v) if v >= n => Ok(()),
            other => Err(format!("outbox sends {other:?}")),
        }
    });
    // No address or subject is ever a label value.
    for s in &samples {
        for (_, v) in s["labels"].as_object().expect("labels") {
            let v = v.as_str().unwrap_or("");
            assert!(
                !v.contains('@') && !v.contains("Question"),
                "label {v} in {s}"
            );
        }
    }
}

#[test]
fn metrics_need_the_token_when_one_is_configured() {
    let server = server();
    let http = server.http.expect("the web door is on");
    assert_eq!(get(http, "/metrics", &[]).status, 401);
    assert_eq!(
        get(http, "/metrics", &[("Authorization", "Bearer wrong")]).status,
        401
    );
    let ok = get(
        http,
        "/metrics",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(ok.status, 200);
}
