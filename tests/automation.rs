//! Automation rules over real SMTP: each trigger and action, least-busy
//! assignment of one burst, the cascade cap, failures as events, the
//! checks of `postdesk check` and the dry runs of `explain` and
//! `rules test`. Mail goes to a real SMTP server (aiosmtpd).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::sink::{Received, SECRET, Sink, outbound_rules};
use common::{DEADLINE, Env, Mail, Options, SCHEDULER_PASS, TestServer, eventually, text_mail};
use serde_json::Value;

const BOB: &str = "bob@agents.test";
const CAROL: &str = "carol@agents.test";
const DAVE: &str = "dave@agents.test";
const ADMIN: &str = "admin@example.com";
const OPS: &str = "ops@elsewhere.test";

const AGENTS: &str = "[agents]\nbob = \"bob@agents.test\"\n\
    [agents.carol]\naddress = \"carol@agents.test\"\n\
    [agents.dave]\naddress = \"dave@agents.test\"\naway = true\n\
    [teams]\nsupport = [\"bob\", \"carol\", \"dave\"]\n\
    [monitoring]\nadmins = [\"admin@example.com\"]\n";

const CHARGEBACK: &str = "{% block subject %}Re: {{ subject }} {{ ticket_tag }}{% endblock %}\n\
    {% block body %}\nHello {{ customer_name }}, our billing team handles chargebacks today.\n\
    {% endblock %}\n";

fn set_clock(path: &Path, t: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, t).expect("write clock");
    std::fs::rename(&tmp, path).expect("rename clock");
}

/// A helpdesk with [`AGENTS`], `rules` appended to rules.toml, the
/// `chargeback` template, and the clock file at `start`.
fn helpdesk(sink: &Sink, rules: &str, start: &str) -> (TestServer, PathBuf) {
    let env = Env::new(&Options::default());
    env.write_config(
        "rules.toml",
        &outbound_rules("example.com", sink.port, &format!("{AGENTS}{rules}")),
    );
    env.write_config("templates/chargeback.txt", CHARGEBACK);
    env.write_secret("token_secret", SECRET);
    let clock = env.dir.path().join("clock");
    set_clock(&clock, start);
    let vars = vec![(
        "POSTDESK_CLOCK_FILE".to_owned(),
        clock.display().to_string(),
    )];
    (TestServer::start_in(env, vars), clock)
}

fn customer(from: &str, subject: &str, id: &str, extra: &[(&str, &str)], body: &str) -> Mail {
    Mail::new(
        from,
        &["support@example.com"],
        text_mail(from, "support@example.com", subject, id, extra, body),
    )
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

fn tags(server: &TestServer, number: &str) -> Vec<String> {
    server.show_json(number)["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The agent's notification of ticket `tag` (the mail with a Reply-To).
fn notification(sink: &Sink, to: &str, tag: &str) -> Received {
    eventually(DEADLINE, || {
        sink.to(to)
            .into_iter()
            .find(|m| m.header("Reply-To").is_some() && m.subject().contains(tag))
            .ok_or_else(|| format!("no notification of {tag} to {to} yet"))
    })
}

fn agent_reply(agent: &str, n: &Received, id: &str, text: &str) -> Mail {
    let token = n.parsed.reply_to[0].address.clone();
    Mail::new(
        agent,
        &[&token],
        text_mail(
            agent,
            &token,
            &format!("Re: {}", n.subject()),
            id,
            &[("In-Reply-To", &format!("<{}>", n.message_id()))],
            text,
        ),
    )
}

const CHARGEBACK_RULE: &str = "[[automation]]\nname = \"chargebacks\"\non = [\"ticket_created\"]\n\
    [automation.if]\nqueue = [\"support\"]\nfrom_domain = [\"bigcorp.example\"]\n\
    subject_matches = \"(?i)refund\"\nbody_keywords = [\"chargeback\", \"dispute\"]\n\
    [automation.then]\nset_priority = \"Urgent\"\nadd_tags = [\"billing-risk\"]\n\
    note = \"Chargeback keyword: handle today.\"\nreply_template = \"chargeback\"\n\
    notify = [\"team:support\", \"admins\", \"ops@elsewhere.test\"]\n";

#[test]
fn a_matching_new_ticket_gets_every_action_and_a_non_matching_one_none() {
    let sink = Sink::start();
    let (server, _clock) = helpdesk(&sink, CHARGEBACK_RULE, "2026-12-14T09:00:00Z");
    server.deliver(&[
        customer(
            "ann@bigcorp.example",
            "Refund for invoice 77",
            "c1@bigcorp.example",
            &[],
            "Hello, I will file a CHARGEBACK with my bank.\n",
        ),
        customer(
            "zed@smallco.example",
            "Refund for invoice 78",
            "c2@smallco.example",
            &[],
            "Hello, I will file a chargeback.\n",
        ),
    ]);
    let t = server.show_json("1001");
    assert_eq!(t["priority"], "Urgent", "{t:#}");
    assert_eq!(tags(&server, "1001"), ["billing-risk"]);
    let applied = events(&server, "1001", "automation_applied");
    assert_eq!(applied.len(), 1, "{applied:#?}");
    assert!(applied[0].to_string().contains("chargebacks"));
    assert!(
        events(&server, "1001", "note_added")[0]
            .to_string()
            .contains("handle today")
    );
    // The other sender's domain does not match: nothing changed.
    assert_eq!(server.show_json("1002")["priority"], "Medium");
    assert!(tags(&server, "1002").is_empty());
    assert!(events(&server, "1002", "automation_applied").is_empty());

    // The customer gets the template; the team (bob, carol and away dave),
    // the admin and the outside address each get one notice.
    let reply = sink
        .wait_to_where("ann@bigcorp.example", 1, |m| {
            m.parsed.text.contains("billing team handles chargebacks")
        })
        .remove(0);
    assert!(reply.subject().contains("[#1001]"), "{}", reply.subject());
    for to in [BOB, CAROL, DAVE, ADMIN, OPS] {
        let notice = sink
            .wait_to_where(to, 1, |m| {
                m.subject().starts_with("[postdesk] chargebacks:")
            })
            .remove(0);
        // The notice tells and nothing more: no address that acts on the
        // ticket, to anyone (an outside address least of all).
        assert!(notice.header("Reply-To").is_none(), "{to}");
        let raw = String::from_utf8_lossy(&notice.raw).to_string();
        assert!(
            !raw.contains("support+"),
            "{to} got an agent address: {raw}"
        );
        assert!(notice.parsed.text.contains("handle today"), "{to}");
    }
    assert_eq!(
        sink.to(OPS).len(),
        1,
        "one notice to the outside address, nothing else"
    );
}

#[test]
fn least_busy_spreads_one_burst_evenly_and_skips_the_away_agent() {
    let sink = Sink::start();
    let rules = "[[automation]]\nname = \"spread\"\non = [\"ticket_created\"]\n\
        [automation.then]\nassign = \"least_busy:support\"\n";
    let (server, _clock) = helpdesk(&sink, rules, "2026-12-14T09:00:00Z");
    let mails: Vec<Mail> = (0..30)
        .map(|i| {
            customer(
                &format!("c{i}@customer.test"),
                &format!("Question number {i}"),
                &format!("burst{i}@customer.test"),
                &[],
                "Hello\n",
            )
        })
        .collect();
    // One SMTP session: the writer commits them in few batches.
    server.deliver(&mails);
    let tickets = server.wait_tickets(30);
    let count = |name: &str| tickets.iter().filter(|t| t["assignee"] == name).count();
    assert_eq!((count("bob"), count("carol"), count("dave")), (15, 15, 0));
    // The assignee alone is told of an assigned ticket.
    let n = notification(&sink, BOB, "[#1001]");
    assert!(n.is_to(BOB));
}

#[test]
fn two_rules_that_flip_the_status_stop_at_the_cap_and_the_message_is_kept() {
    let sink = Sink::start();
    let rules = "[[automation]]\nname = \"to replied\"\non = [\"ticket_created\", \"status_changed\"]\n\
        [automation.if]\nstatus = [\"Open\"]\n[automation.then]\nset_status = \"Replied\"\n\
        [[automation]]\nname = \"to open\"\non = [\"status_changed\"]\n\
        [automation.if]\nstatus = [\"Replied\"]\n[automation.then]\nset_status = \"Open\"\n";
    let (server, _clock) = helpdesk(&sink, rules, "2026-12-14T09:00:00Z");
    server.deliver(&[customer(
        "ann@customer.test",
        "Ping pong",
        "flip@customer.test",
        &[],
        "Hello\n",
    )]);
    let capped = events(&server, "1001", "automation_capped");
    assert_eq!(capped.len(), 1, "{capped:#?}");
    assert_eq!(events(&server, "1001", "automation_applied").len(), 10);
    assert_eq!(server.messages_json().len(), 1);
}

#[test]
fn agent_reply_assignment_and_status_change_set_their_rules_off() {
    let sink = Sink::start();
    let rules = "[[automation]]\nname = \"answered\"\non = [\"agent_replied\"]\n\
        [automation.then]\nadd_tags = [\"answered\"]\n\
        [[automation]]\nname = \"owned\"\non = [\"assigned\"]\n\
        [automation.then]\nadd_tags = [\"owned\"]\nremove_tags = [\"new\"]\n\
        [[automation]]\nname = \"tag new\"\non = [\"ticket_created\"]\n\
        [automation.then]\nadd_tags = [\"new\"]\n\
        [[automation]]\nname = \"came back\"\non = [\"customer_replied\"]\n\
        [automation.if]\ntags = [\"answered\"]\n[automation.then]\nset_priority = \"High\"\n";
    let (server, _clock) = helpdesk(&sink, rules, "2026-12-14T09:00:00Z");
    server.deliver(&[customer(
        "ann@customer.test",
        "Printer",
        "p1@customer.test",
        &[],
        "Hello\n",
    )]);
    assert_eq!(tags(&server, "1001"), ["new"]);
    let n = notification(&sink, BOB, "[#1001]");
    server.deliver(&[agent_reply(
        BOB,
        &n,
        "b1@agents.test",
        "#assign carol\nOn it.\n",
    )]);
    eventually(DEADLINE, || {
        let t = tags(&server, "1001");
        if t == ["answered", "owned"] {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
    server.deliver(&[customer(
        "ann@customer.test",
        "Re: Printer [#1001]",
        "p2@customer.test",
        &[("In-Reply-To", "<p1@customer.test>")],
        "Still broken\n",
    )]);
    assert_eq!(server.show_json("1001")["priority"], "High");
}

#[test]
fn idle_and_sla_breach_rules_run_from_the_scheduler_once() {
    let sink = Sink::start();
    let rules = "[[sla.policy]]\nname = \"std\"\nqueues = [\"support\"]\n\
        [sla.policy.targets]\nmedium = { first_response = \"1h\", resolution = \"8h\" }\n\
        [[automation]]\nname = \"breach\"\non = [\"sla_breached\"]\n\
        [automation.then]\nadd_tags = [\"breached\"]\n\
        [[automation]]\nname = \"stale\"\non = [\"idle\"]\n\
        [automation.if]\nstatus = [\"Open\"]\nidle = \"48h\"\n\
        [automation.then]\nadd_tags = [\"stale\"]\nnotify = [\"admins\"]\n";
    let (server, clock) = helpdesk(&sink, rules, "2026-12-14T09:00:00Z");
    server.deliver(&[customer(
        "ann@customer.test",
        "Printer",
        "i1@customer.test",
        &[],
        "Hello\n",
    )]);
    // Two hours on: the first response is breached; not idle yet.
    set_clock(&clock, "2026-12-14T11:00:00Z");
    eventually(DEADLINE, || {
        let t = tags(&server, "1001");
        if t == ["breached"] {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
    // Two days and a bit in Open: idle once, however many passes run.
    set_clock(&clock, "2026-12-16T09:30:00Z");
    eventually(DEADLINE, || {
        let t = tags(&server, "1001");
        if t.contains(&"stale".to_owned()) {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
    let passes = server.log_lines(SCHEDULER_PASS);
    server.wait_log_lines(SCHEDULER_PASS, passes + 3, Duration::from_secs(20));
    let stale: Vec<Value> = events(&server, "1001", "automation_applied")
        .into_iter()
        .filter(|e| e.to_string().contains("\"stale\""))
        .collect();
    assert_eq!(stale.len(), 1, "{stale:#?}");
    let notices = sink.wait_to_where(ADMIN, 1, |m| m.subject().starts_with("[postdesk] stale:"));
    assert_eq!(notices.len(), 1);
}

#[test]
fn nobody_available_is_an_event_and_the_message_is_kept() {
    let sink = Sink::start();
    let rules = "[[automation]]\nname = \"to dave\"\non = [\"ticket_created\"]\n\
        [automation.then]\nassign = \"dave\"\n";
    let (server, _clock) = helpdesk(&sink, rules, "2026-12-14T09:00:00Z");
    server.deliver(&[customer(
        "ann@customer.test",
        "Printer",
        "d1@customer.test",
        &[],
        "Hello\n",
    )]);
    let failed = events(&server, "1001", "automation_failed");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0].to_string().contains("away"), "{failed:#?}");
    assert_eq!(server.show_json("1001")["assignee"], "");
}

#[test]
fn check_reports_each_bad_rule_at_its_file_line_and_column() {
    let env = Env::new(&Options::default());
    let rules = format!(
        "{}{AGENTS}\n\
         [[automation]]\nname = \"a\"\non = [\"ticket_made\"]\n\
         [[automation]]\nname = \"b\"\non = [\"ticket_created\"]\n[automation.if]\n\
         subject_matches = \"(unclosed\"\nbusiness_hours = \"nowhere\"\nqueue = [\"helpdesk\"]\n\
         [automation.then]\nassign = \"least_busy:billing\"\nreply_template = \"missing\"\n\
         notify = [\"zoe\"]\ncolour = \"red\"\n",
        common::rules_toml(&Options::default())
    );
    std::fs::write(env.config_dir.join("rules.toml"), rules).expect("write");
    env.write_config(
        "automation/late.toml",
        "[[automation]]\nname = \"idle without time\"\non = [\"idle\"]\n",
    );
    let out = env.run(&["check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `colour`"), "{err}");
    // The shape error stops the semantic checks of that file; fix it and
    // the rest are reported with their positions.
    let fixed = std::fs::read_to_string(env.config_dir.join("rules.toml"))
        .expect("read")
        .replace("colour = \"red\"\n", "");
    std::fs::write(env.config_dir.join("rules.toml"), &fixed).expect("write");
    let out = env.run(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let line_of = |needle: &str| {
        fixed
            .lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle} not in rules"))
    };
    for (key, message) in [
        ("on = [\"ticket_made\"]", "unknown trigger `ticket_made`"),
        ("subject_matches", "bad regex"),
        ("business_hours", "unknown calendar `nowhere`"),
        ("queue = [\"helpdesk\"]", "unknown queue `helpdesk`"),
        ("assign", "no team `billing`"),
        ("reply_template", "no template `missing`"),
        ("notify", "`zoe` is not an agent"),
    ] {
        let line = line_of(key);
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("rules.toml:{line}:")) && l.contains(message)),
            "{message} at line {line}: {err}"
        );
    }
    assert!(
        err.contains("automation/late.toml:3:") && err.contains("sets no `idle"),
        "{err}"
    );
}

#[test]
fn explain_and_rules_test_show_each_rule_without_changing_anything() {
    let sink = Sink::start();
    let (server, _clock) = helpdesk(&sink, CHARGEBACK_RULE, "2026-12-14T09:00:00Z");
    server.deliver(&[customer(
        "ann@bigcorp.example",
        "Printer",
        "e1@bigcorp.example",
        &[],
        "Hello\n",
    )]);
    let dir = tempfile::tempdir().expect("tmp");
    let eml = dir.path().join("new.eml");
    std::fs::write(
        &eml,
        text_mail(
            "ann@bigcorp.example",
            "support@example.com",
            "Refund now",
            "e2@bigcorp.example",
            &[],
            "This is a dispute.\n",
        ),
    )
    .expect("write eml");
    let eml = eml.display().to_string();
    let v = server.env.run_json(&[
        "explain",
        &eml,
        "--rcpt",
        "support@example.com",
        "--mail-from",
        "ann@bigcorp.example",
        "--json",
    ]);
    let a = &v["automation"][0];
    assert_eq!(a["rule"], "chargebacks", "{v:#}");
    assert_eq!(a["on"], "ticket_created");
    assert_eq!(a["matched"], true);
    assert!(a["conditions"].as_array().expect("conditions").len() >= 4);
    assert!(a["actions"].to_string().contains("Urgent"), "{a:#}");
    // The dry run changed nothing.
    assert_eq!(server.tickets_json().len(), 1);

    // As a reply on #1001 the rule (ticket_created only) does not run.
    let v = server
        .env
        .run_json(&["rules", "test", &eml, "--ticket", "1001", "--json"]);
    assert_eq!(
        v["on"],
        serde_json::json!(["message_added", "customer_replied"])
    );
    assert_eq!(v["automation"], serde_json::json!([]));
    // A ticket that does not exist, or a file that is not there: named.
    let out = server
        .env
        .run(&["rules", "test", &eml, "--ticket", "4242", "--json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ticket 4242"));
    let out = server
        .env
        .run(&["rules", "test", "/nonexistent/x.eml", "--ticket", "1001"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.eml"));
    assert_eq!(server.show_json("1001")["priority"], "Medium");
}

#[test]
fn split_by_mail_and_by_cli_moves_messages_to_linked_tickets_and_keeps_every_one() {
    let sink = Sink::start();
    let (server, _clock) = helpdesk(&sink, "", "2026-12-14T09:00:00Z");
    let ann = "ann@customer.test";
    server.deliver(&[customer(
        ann,
        "Printer",
        "s1@customer.test",
        &[],
        "The printer is on fire.\n",
    )]);
    server.deliver(&[customer(
        ann,
        "Re: Printer [#1001]",
        "s2@customer.test",
        &[("In-Reply-To", "<s1@customer.test>")],
        "Also, my invoice is wrong.\n",
    )]);
    server.deliver(&[customer(
        ann,
        "Re: Printer [#1001]",
        "s3@customer.test",
        &[("In-Reply-To", "<s2@customer.test>")],
        "The invoice says 300 instead of 30.\n",
    )]);
    let n2 = sink
        .wait_to_where(BOB, 1, |m| {
            m.header("Reply-To").is_some() && m.parsed.text.contains("invoice is wrong")
        })
        .remove(0);
    server.deliver(&[agent_reply(BOB, &n2, "split@agents.test", "#split\n")]);
    let ids = |number: &str| -> Vec<String> {
        server.show_json(number)["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["kind"] == "customer")
            .map(|m| m["message_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    eventually(DEADLINE, || {
        if server.tickets_json().len() == 2 {
            Ok(())
        } else {
            Err("no second ticket yet".to_owned())
        }
    });
    assert_eq!(ids("1001"), ["s1@customer.test"]);
    assert_eq!(ids("1002"), ["s2@customer.test", "s3@customer.test"]);
    let new = server.show_json("1002");
    assert_eq!(new["linked_ticket"], "#1001", "{new:#}");
    assert_eq!(new["queue"], "support");
    assert_eq!(new["requester"], ann);
    assert_eq!(events(&server, "1001", "split").len(), 1);
    assert_eq!(
        events(&server, "1002", "split")[0]["detail"]["from"],
        "#1001"
    );
    // The agent's #split mail stays on the ticket it was written to.
    assert!(
        server.show_json("1001")["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["message_id"] == "split@agents.test")
    );

    // The customer's next reply to a moved message threads to the new
    // ticket.
    server.deliver(&[customer(
        ann,
        "Re: Printer [#1001]",
        "s4@customer.test",
        &[("In-Reply-To", "<s3@customer.test>")],
        "Any news on the invoice?\n",
    )]);
    assert_eq!(ids("1002").len(), 3);

    // By CLI: the last two move on to a third ticket; the first message of
    // a ticket cannot be split off.
    let out = server
        .env
        .run_ok(&["ticket", "split", "1002", "<s3@customer.test>"]);
    assert!(out.contains("2 message(s) moved to #1003"), "{out}");
    assert_eq!(ids("1003"), ["s3@customer.test", "s4@customer.test"]);
    assert_eq!(server.show_json("1003")["linked_ticket"], "#1002");
    let refused = server
        .env
        .run(&["ticket", "split", "1001", "s1@customer.test"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("first message"),
        "{refused:?}"
    );
    // Bad arguments are named, and change nothing.
    for (args, says) in [
        (
            vec!["ticket", "split", "1002", "nobody@nowhere.test"],
            "no message nobody@nowhere.test",
        ),
        (
            vec!["ticket", "split", "9999", "s2@customer.test"],
            "no ticket 9999",
        ),
        (
            vec!["ticket", "split", "1003", "s2@customer.test"],
            "not on ticket #1003",
        ),
    ] {
        let out = server.env.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(server.tickets_json().len(), 3);
    // Nothing lost, nothing doubled: every customer message once.
    let all: Vec<String> = ["1001", "1002", "1003"]
        .iter()
        .flat_map(|n| ids(n))
        .collect();
    assert_eq!(all.len(), 4, "{all:?}");
}
