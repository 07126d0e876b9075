//! postdesk behind a real Postfix: the MTA accepts the mail on port 25
//! (here a loopback port of a throwaway instance, see
//! `tests/common/postfix_mta.rs`) and hands the helpdesk domain to
//! postdesk's LMTP listener through `transport_maps`, as
//! `contrib/postfix/` sets it up. While postdesk is down, Postfix keeps
//! the mail in its deferred queue; once postdesk is back, a queue flush
//! delivers it: nothing lost, nothing doubled. The pipe alternative
//! (`contrib/postfix/master.cf.pipe`) is run the same way: `ingest -`
//! exiting 75 keeps the mail queued, 65 bounces it.

mod common;

use std::time::Duration;

use common::postfix_mta::{Postfix, free_port};
use common::{DEADLINE, Env, Mail, Options, TestServer, bare_id, rules_toml, smtp_send, str_field};

/// A server whose LMTP listener keeps one port across restarts: Postfix's
/// transport names it.
fn server_on_fixed_lmtp_port(port: u16) -> TestServer {
    let opts = Options::default();
    let env = Env::new(&opts);
    let rules = rules_toml(&opts);
    let fixed = rules.replace(
        "lmtp = \"127.0.0.1:0\"",
        &format!("lmtp = \"127.0.0.1:{port}\""),
    );
    assert_ne!(rules, fixed, "the harness's rules.toml has no lmtp line");
    env.write_config("rules.toml", &fixed);
    let server = TestServer::start_in(env, Vec::new());
    assert_eq!(server.lmtp().port(), port);
    server
}

fn customer_mail(n: u32) -> Mail {
    Mail::text(
        "carol@customer.example.org",
        &format!("Through the front door {n}"),
        &format!("front-{n}@customer.example.org"),
        "Hello,\nthis came through Postfix.\n",
    )
}

/// The Message-IDs of `messages --json`, sorted.
fn stored_ids(server: &TestServer) -> Vec<String> {
    let mut ids: Vec<String> = server
        .messages_json()
        .iter()
        .map(|m| bare_id(str_field(m, "message_id")).to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn mail_to_postfix_reaches_postdesk_over_lmtp_and_waits_in_the_queue_while_postdesk_is_down() {
    let lmtp_port = free_port();
    let mut server = server_on_fixed_lmtp_port(lmtp_port);
    let postfix = Postfix::start(
        "example.com",
        &[format!("example.com=lmtp:inet:127.0.0.1:{lmtp_port}")],
    );

    // Up: Postfix accepts the mail and hands it over at once.
    let sent = smtp_send(postfix.addr, false, &[customer_mail(1)]);
    assert!(sent[0].accepted(), "postfix refused: {sent:?}");
    let tickets = server.wait_tickets(1);
    assert_eq!(
        str_field(&tickets[0], "subject"),
        "Through the front door 1"
    );
    postfix.wait_empty(DEADLINE);

    // Down (a clean stop, as systemd's SIGTERM): Postfix still accepts,
    // and keeps the message deferred.
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(45));
    assert!(status.success(), "postdesk did not stop cleanly: {status}");
    let sent = smtp_send(postfix.addr, false, &[customer_mail(2)]);
    assert!(sent[0].accepted(), "postfix refused: {sent:?}");
    let deferred = common::eventually(DEADLINE, || {
        let q = postfix.queue();
        match q.as_slice() {
            [m] if str_field(m, "queue_name") == "deferred" => Ok(m.clone()),
            _ => Err(format!("want one deferred message, queue: {q:?}")),
        }
    });
    let reason = deferred["recipients"][0]["delay_reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains(&lmtp_port.to_string()),
        "deferred for another reason than postdesk being down: {deferred}"
    );

    // Back: the flush delivers it, once.
    server.restart();
    postfix.flush();
    postfix.wait_empty(DEADLINE);
    let tickets = server.wait_tickets(2);
    let mut subjects: Vec<&str> = tickets.iter().map(|t| str_field(t, "subject")).collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        ["Through the front door 1", "Through the front door 2"]
    );
    assert_eq!(
        stored_ids(&server),
        [
            "front-1@customer.example.org",
            "front-2@customer.example.org"
        ]
    );
    // Each message was handed over once: one `status=sent` per message.
    let sent_lines = postfix.log_lines("status=sent");
    assert_eq!(sent_lines.len(), 2, "{sent_lines:?}");

    // A second flush finds nothing to deliver again.
    postfix.flush();
    postfix.wait_empty(DEADLINE);
    assert_eq!(stored_ids(&server).len(), 2);
    assert_eq!(server.tickets_json().len(), 2);
}

/// Let `user` traverse to and read a test's config (the temp dir is the
/// owner's alone).
fn open_config_to_others(env: &Env) {
    use std::os::unix::fs::PermissionsExt;
    for dir in [env.dir.path(), env.config_dir.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(
        env.config_dir.join("rules.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod rules.toml");
}

#[test]
fn postfix_pipe_to_ingest_defers_on_75_delivers_once_the_store_is_back_and_bounces_on_65() {
    let env = Env::new(&Options {
        max_message_size: Some(8 * 1024),
        ..Options::default()
    });
    open_config_to_others(&env);
    // The pipe runs `ingest -` as `nobody` (Postfix never runs it as
    // root), as contrib/postfix/master.cf.pipe runs it as `postdesk`; the
    // data directory is root's for now, so nothing can be stored.
    let service = format!(
        "postdesk  unix  -       n       n       -       4       pipe\n  \
         flags=DRX user=nobody argv={} ingest --config {} --data {} -\n",
        common::BIN,
        env.config_dir.display(),
        env.data_dir.display()
    );
    let postfix = Postfix::start_with("example.com", &["example.com=postdesk:".into()], &service);

    let sent = smtp_send(postfix.addr, false, &[customer_mail(1)]);
    assert!(sent[0].accepted(), "postfix refused: {sent:?}");
    common::eventually(DEADLINE, || {
        let q = postfix.queue();
        match q.as_slice() {
            [m] if str_field(m, "queue_name") == "deferred" => Ok(()),
            _ => Err(format!("want one deferred message, queue: {q:?}")),
        }
    });
    assert_eq!(postfix.log_lines("status=bounced").len(), 0);
    assert!(env.messages_json().is_empty());

    // The store is back (the data directory is the pipe user's): the
    // flush delivers it, once.
    let status = std::process::Command::new("chown")
        .arg("-R")
        .arg("nobody")
        .arg(&env.data_dir)
        .status()
        .expect("run chown");
    assert!(status.success());
    postfix.flush();
    postfix.wait_empty(DEADLINE);
    let ids: Vec<String> = env
        .messages_json()
        .iter()
        .map(|m| bare_id(str_field(m, "message_id")).to_owned())
        .collect();
    assert_eq!(ids, ["front-1@customer.example.org"]);
    assert_eq!(env.tickets_json().len(), 1);
    assert_eq!(postfix.log_lines("status=sent").len(), 1);

    // Larger than max_message_size: exit 65, and Postfix bounces it (from
    // the null sender, so the bounce itself goes nowhere).
    let big = Mail::new(
        "",
        &["support@example.com"],
        common::text_mail(
            "carol@customer.example.org",
            "support@example.com",
            "Far too large",
            "front-big@customer.example.org",
            &[],
            &"a line of text that makes the message large\n".repeat(400),
        ),
    );
    let sent = smtp_send(postfix.addr, false, &[big]);
    assert!(sent[0].accepted(), "postfix refused: {sent:?}");
    postfix.wait_empty(DEADLINE);
    let bounced = postfix.log_lines("status=bounced");
    assert_eq!(bounced.len(), 1, "{}", postfix.log());
    assert!(bounced[0].contains("max_message_size"), "{bounced:?}");
    assert_eq!(env.messages_json().len(), 1);
}
