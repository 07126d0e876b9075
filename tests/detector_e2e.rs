//! The off-platform bypass detector end to end: `postdesk
//! explain` shows its verdict whether or not the message is in scope, and
//! the pipeline records a `detector_flagged` event on in-scope tickets.
//!
//! Every test runs the real binary (tests/common): the CLI on a temp
//! config, or `postdesk serve` on port 0 with mail sent over SMTP.

mod common;

use common::{Env, Mail, Options, TestServer, str_field, text_mail};
use serde_json::Value;

const ANN: &str = "ann@customer.example.org";
const SUPPORT: &str = "support@example.com";

/// Scope that makes the harness's support queue and default issue type
/// ("General") in scope.
const IN_SCOPE: &str = "[detector.scope]\nqueues = [\"support\"]\nissue_types = [\"General\"]\n\
                        statuses = [\"Open\", \"Replied\"]\n";

const WHATSAPP: &str =
    "Hi,\n\nit is easier to sort this out on WhatsApp: +1 415 555 0198.\n\nAnn\n";
const CLEAN: &str =
    "Hi,\n\nmy invoice 4471 from March 3 shows $120.50 twice. Can you check?\n\nAnn\n";

/// `postdesk explain FILE --json` for a message from Ann to support.
fn explain(env: &Env, name: &str, body: &str) -> Value {
    let file = env.dir.path().join(name);
    std::fs::write(
        &file,
        text_mail(
            ANN,
            SUPPORT,
            "Billing question",
            &format!("{name}@customer.example.org"),
            &[],
            body,
        ),
    )
    .expect("write eml");
    let path = file.to_str().expect("utf-8 path");
    env.run_json(&["explain", path, "--rcpt", SUPPORT, "--json"])
}

fn hits(v: &Value) -> &Vec<Value> {
    v["detector"]["hits"].as_array().expect("detector.hits")
}

#[test]
fn explain_shows_hits_for_a_whatsapp_number_and_none_for_a_clean_message() {
    let env = Env::new(&Options::default());
    let v = explain(&env, "whatsapp", WHATSAPP);
    // The harness's tickets are "General", outside the default scope: the
    // verdict is shown all the same.
    assert_eq!(v["detector"]["in_scope"], false, "{v:#}");
    assert!(
        v["detector"]["version"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{v:#}"
    );
    let found = hits(&v);
    assert!(
        found.iter().any(|h| {
            matches!(str_field(h, "category"), "messaging" | "phone")
                && !str_field(h, "rule").is_empty()
                && !str_field(h, "text").is_empty()
        }),
        "{v:#}"
    );
    assert!(
        found
            .iter()
            .any(|h| str_field(h, "text").eq_ignore_ascii_case("whatsapp")),
        "{v:#}"
    );

    let v = explain(&env, "clean", CLEAN);
    assert!(hits(&v).is_empty(), "{v:#}");
    assert_eq!(v["detector"]["in_scope"], false, "{v:#}");

    // The plain output says the same in words.
    let file = env.dir.path().join("whatsapp");
    let text = env.run_ok(&["explain", file.to_str().expect("utf-8"), "--rcpt", SUPPORT]);
    assert!(text.contains("detector   not in scope"), "{text}");
    assert!(text.contains("\"WhatsApp\""), "{text}");
}

/// App names in ordinary senses: the app as an expense, the ordinary-sense
/// word, an app named as history, a customer's payment app, a habit of
/// texting, the customer's own clients paying them.
const MENTIONS: &[&str] = &[
    "Hi,\n\nour WhatsApp Business subscription is $45/month. Deductible as software?\n\nAnn\n",
    "Hi,\n\nthere was some discord between the partners about the draws.\n\nAnn\n",
    "Hi,\n\nour old bookkeeper used to send the reports over Telegram. Much better here.\n\nAnn\n",
    "Hi,\n\nlast year I paid the nanny through Zelle every Friday. Is that the dependent care credit?\n\nAnn\n",
    "Hi,\n\nmy previous accountant used to text me reminders. Does the portal send them?\n\nAnn\n",
    "Hi,\n\nlots of my clients now ask to pay by Zelle. Do I give them a receipt?\n\nAnn\n",
    "Hi,\n\nlast year a few invoices were paid outside the system because QuickBooks was down.\n\nAnn\n",
];

/// Intent without a handle or number: an app accepted as the way to pay,
/// spaced out; a transfer that skips the billing system, in plain words; an
/// app whose name is a word, spelled out to evade; paying the person and
/// sharing the platform's fee.
const INTENT: &[(&str, &str)] = &[
    (
        "Hi,\n\nV e n m o works too if that is easier, I can send it today.\n\nAnn\n",
        "payment",
    ),
    (
        "Hi,\n\ncould we do a bank transfer straight to your account instead of the invoice?\n\nAnn\n",
        "payment",
    ),
    (
        "Hi,\n\nthis portal is slow. Do you have Telegram? I can send the scans there.\n\nAnn\n",
        "messaging",
    ),
    (
        "Hi,\n\nplease add me on s.i.g.n.a.l, I'll send the docs there.\n\nAnn\n",
        "messaging",
    ),
    (
        "Hi,\n\nwe could pay you directly and split what we save on the platform fee.\n\nAnn\n",
        "payment",
    ),
    (
        "Hi,\n\nI'll leave cash for you when you come by, no need to run it through the billing.\n\nAnn\n",
        "payment",
    ),
    (
        "Hi,\n\nPayPal also works if the portal is down again.\n\nAnn\n",
        "payment",
    ),
];

/// Payment apps named as a vendor or a record, not as a way to pay.
const VENDOR_SENSES: &[&str] = &[
    "Hi,\n\nGoogle Pay shows a $19.99 charge every month; can you help me place it?\n\nAnn\n",
    "Hi,\n\nthe Zelle receipt for the new laptop is attached.\n\nAnn\n",
    "Hi,\n\nCash App froze my account last week, can you tell me what that does to my return?\n\nAnn\n",
];

#[test]
fn explain_lists_no_hit_for_a_vendor_sense_mention_and_a_lone_hit_below_a_higher_flag_line() {
    let env = Env::new(&Options::default());
    for (i, body) in VENDOR_SENSES.iter().enumerate() {
        let v = explain(&env, &format!("vendor{i}"), body);
        assert_eq!(v["detector"]["flagged"], false, "{body}: {v:#}");
        // A mention without intent is no evidence at all, so nothing is
        // listed, not even below the flag line.
        assert!(hits(&v).is_empty(), "{body}: {v:#}");
    }

    // With a flag line of 2, one accepted payment app is listed as a hit
    // that does not flag.
    let env = Env::new(&Options {
        extra_toml: "[detector]\nmin_score = 2\n".to_owned(),
        ..Options::default()
    });
    let body = "Hi,\n\nVenmo works too if that is easier.\n\nAnn\n";
    let v = explain(&env, "accepted", body);
    assert_eq!(v["detector"]["flagged"], false, "{v:#}");
    assert_eq!(v["detector"]["score"], 1, "{v:#}");
    let found = hits(&v);
    assert_eq!(found.len(), 1, "{v:#}");
    assert_eq!(str_field(&found[0], "category"), "payment", "{v:#}");
    assert_eq!(str_field(&found[0], "text"), "Venmo", "{v:#}");
    let file = env.dir.path().join("accepted");
    let text = env.run_ok(&["explain", file.to_str().expect("utf-8"), "--rcpt", SUPPORT]);
    assert!(text.contains("below the flagging score"), "{text}");
}

#[test]
fn explain_does_not_flag_an_app_named_without_intent_and_flags_an_offer() {
    let env = Env::new(&Options::default());
    for (i, body) in MENTIONS.iter().enumerate() {
        let v = explain(&env, &format!("mention{i}"), body);
        assert_eq!(v["detector"]["flagged"], false, "{body}: {v:#}");
    }
    for (i, (body, category)) in INTENT.iter().enumerate() {
        let v = explain(&env, &format!("intent{i}"), body);
        assert_eq!(v["detector"]["flagged"], true, "{body}: {v:#}");
        assert!(
            hits(&v)
                .iter()
                .any(|h| str_field(h, "category") == *category),
            "{body}: {v:#}"
        );
    }
}

#[test]
fn explain_shows_the_model_s_probabilities_the_hits_it_set_aside_and_its_own() {
    let env = Env::new(&Options::default());
    // A number the writer was asked to call: the rules find it, the model
    // judges the message no evidence, so the hit is listed with weight 0.
    let body = "Hi,\n\nI got a voicemail from the state tax office asking me to call \
                916-555-0190 back. Should I?\n\nAnn\n";
    let v = explain(&env, "asked", body);
    assert_eq!(v["detector"]["flagged"], false, "{v:#}");
    assert_eq!(v["detector"]["score"], 0, "{v:#}");
    let found = hits(&v);
    assert!(
        found
            .iter()
            .any(|h| str_field(h, "category") == "phone" && h["weight"] == 0),
        "{v:#}"
    );
    let m = &v["detector"]["model"];
    for key in ["flag", "phone", "email", "address", "messaging", "payment"] {
        assert!(
            m[key].as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)),
            "{key}: {v:#}"
        );
    }
    assert!(m["flag"].as_f64().is_some_and(|p| p < 0.5), "{v:#}");
    let file = env.dir.path().join("asked");
    let text = env.run_ok(&["explain", file.to_str().expect("utf-8"), "--rcpt", SUPPORT]);
    assert!(text.contains("set aside by the model"), "{text}");
    assert!(text.contains("model    evidence 0."), "{text}");

    // No rule words "the green app"; the model reads it as an invitation
    // and its hit spans the sentence.
    let body = "Hey could you hit me up on the green app? You know the one. Faster than here.\n";
    let v = explain(&env, "green", body);
    assert_eq!(v["detector"]["flagged"], true, "{v:#}");
    let found = hits(&v);
    assert_eq!(found.len(), 1, "{v:#}");
    assert_eq!(str_field(&found[0], "rule"), "model.messaging", "{v:#}");
    assert_eq!(
        str_field(&found[0], "text"),
        "Hey could you hit me up on the green app?",
        "{v:#}"
    );

    // With the model off, the rules alone decide: the number flags.
    let env = Env::new(&Options {
        extra_toml: "[detector.model]\nenabled = false\n".to_owned(),
        ..Options::default()
    });
    let body = "Hi,\n\nI got a voicemail from the state tax office asking me to call \
                916-555-0190 back. Should I?\n\nAnn\n";
    let v = explain(&env, "asked", body);
    assert!(v["detector"]["model"].is_null(), "{v:#}");
    assert_eq!(v["detector"]["flagged"], true, "{v:#}");
}

#[test]
fn explain_reports_in_scope_for_a_ticket_the_scope_names() {
    let env = Env::new(&Options {
        extra_toml: IN_SCOPE.to_owned(),
        ..Options::default()
    });
    let v = explain(&env, "whatsapp", WHATSAPP);
    assert_eq!(v["detector"]["in_scope"], true, "{v:#}");
    assert!(!hits(&v).is_empty(), "{v:#}");
    let text = env.run_ok(&[
        "explain",
        env.dir.path().join("whatsapp").to_str().expect("utf-8"),
        "--rcpt",
        SUPPORT,
    ]);
    assert!(text.contains("detector   in scope"), "{text}");
}

/// The events of the customer's ticket (a flag also opens a Compliance
/// Alert ticket beside it).
fn event_kinds(server: &TestServer) -> Vec<Value> {
    let message = server.wait_messages(1);
    let id = message[0]["ticket_id"]
        .as_i64()
        .expect("ticket id")
        .to_string();
    let shown = server.show_json(&id);
    shown["events"].as_array().expect("events").clone()
}

#[test]
fn an_in_scope_client_sharing_a_whatsapp_number_is_flagged() {
    let server = TestServer::start_with(Options {
        extra_toml: IN_SCOPE.to_owned(),
        ..Options::default()
    });
    server.deliver(&[Mail::text(
        ANN,
        "Billing question",
        "wa1@customer.example.org",
        WHATSAPP,
    )]);
    let events = event_kinds(&server);
    let flagged: Vec<&Value> = events
        .iter()
        .filter(|e| str_field(e, "kind") == "detector_flagged")
        .collect();
    assert_eq!(flagged.len(), 1, "{events:#?}");
    assert!(!str_field(flagged[0], "cause").is_empty(), "{events:#?}");
    let detail = &flagged[0]["detail"];
    assert_eq!(
        detail["version"].as_str(),
        Some(str_field(flagged[0], "cause"))
    );
    let hits = detail["hits"].as_array().expect("hits");
    assert!(
        hits.iter()
            .any(|h| matches!(str_field(h, "category"), "messaging" | "phone")),
        "{detail:#}"
    );
}

#[test]
fn an_out_of_scope_client_is_not_scanned() {
    // Default scope: Accounting Support only; the harness's tickets are General.
    let server = TestServer::start();
    server.deliver(&[Mail::text(
        ANN,
        "Billing question",
        "wa2@customer.example.org",
        WHATSAPP,
    )]);
    let events = event_kinds(&server);
    assert!(
        events
            .iter()
            .all(|e| str_field(e, "kind") != "detector_flagged"),
        "{events:#?}"
    );
    // Not scanned at all, not merely scanned without effect: the detector
    // keeps no record of the message.
    assert_eq!(
        server.env.detector_scan("wa2@customer.example.org"),
        None,
        "{events:#?}"
    );
}

#[test]
fn a_clean_in_scope_message_is_not_flagged() {
    let server = TestServer::start_with(Options {
        extra_toml: IN_SCOPE.to_owned(),
        ..Options::default()
    });
    server.deliver(&[Mail::text(
        ANN,
        "Billing question",
        "clean1@customer.example.org",
        CLEAN,
    )]);
    let events = event_kinds(&server);
    assert!(
        events
            .iter()
            .all(|e| str_field(e, "kind") != "detector_flagged"),
        "{events:#?}"
    );
    // The message was scanned, under the running rules, and the scan found
    // nothing: "not flagged" is the detector's verdict, not a skipped scan.
    let (version, flagged) = server
        .env
        .detector_scan("clean1@customer.example.org")
        .unwrap_or_else(|| panic!("the clean message was never scanned\n{}", server.stderr()));
    assert!(!flagged, "scan recorded as flagged");
    let running = explain(&server.env, "clean", CLEAN);
    assert_eq!(
        running["detector"]["version"].as_str(),
        Some(version.as_str()),
        "{running:#}"
    );
}

#[test]
fn check_names_the_value_of_a_bad_pattern() {
    let env = Env::new(&Options {
        extra_toml: "[detector]\nmin_score = 1\n\n[[detector.patterns]]\nname = \"broken\"\n\
                     category = \"payment\"\nregex = \"(unclosed\"\n"
            .to_owned(),
        ..Options::default()
    });
    let out = env.run(&["check"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    let rules = std::fs::read_to_string(env.config_dir.join("rules.toml")).expect("rules.toml");
    // At the regex's value (column 9), not the `[detector]` header.
    let line = rules
        .lines()
        .position(|l| l == "regex = \"(unclosed\"")
        .expect("the regex line")
        + 1;
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("rules.toml:{line}:9:")) && l.contains("broken")),
        "{text}"
    );
}
