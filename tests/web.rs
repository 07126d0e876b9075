//! The web door over real sockets: the contact form API (JSON, urlencoded,
//! multipart) through the spool, its answers (201 after the commit, 400,
//! 413, 415, 429, bot traps), the acknowledgement's customer page link, the
//! customer page and its reply form, the read API behind API keys, monitor
//! alerts (dedupe, resolved, and the `alert` command), the widget and
//! contact page, and a SIGKILL while eight clients post.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use common::http::{self, Answer};
use common::sink::{SECRET, Sink, outbound_rules};
use common::{DEADLINE, Options, TestServer, eventually};
use serde_json::{Value, json};

const TICKETS: &str = "/api/v1/tickets";

fn web(server: &TestServer) -> SocketAddr {
    server.http.expect("ports.json names an http listener")
}

fn form(subject: &str, category: &str) -> Value {
    json!({
        "name": "Ann Customer",
        "email": "ann@customer.example.org",
        "subject": subject,
        "message": "Hello,\nthe printer is on fire.\n",
        "category": category,
    })
}

/// A server sending its mail to `sink`, with `http` lines in `[http]`.
fn with_sink(sink: &Sink, http: &str) -> TestServer {
    TestServer::start_with_rules(&outbound_rules(
        "example.com",
        sink.port,
        &format!("[http]\nlisten = \"127.0.0.1:0\"\n{http}\n"),
    ))
}

fn ticket_by_subject<'a>(tickets: &'a [Value], subject: &str) -> Option<&'a Value> {
    tickets.iter().find(|t| t["subject"] == subject)
}

/// The customer page link in an acknowledgement's text.
fn link_in(text: &str) -> String {
    let start = text.find("http://").expect("a link in the acknowledgement");
    text[start..]
        .split_whitespace()
        .next()
        .expect("the link")
        .to_owned()
}

/// The path of `url` (`http://host:port/t/...` → `/t/...`).
fn path_of(url: &str) -> &str {
    let rest = url.strip_prefix("http://").expect("an http link");
    &rest[rest.find('/').expect("a path")..]
}

#[test]
fn a_json_form_opens_a_ticket_whose_acknowledgement_links_a_page_that_takes_replies() {
    let sink = Sink::start();
    let server = with_sink(&sink, "");
    let addr = web(&server);

    let subject = "<script>alert('x')</script> printer";
    let a = http::post_json(addr, TICKETS, &[], &form(subject, "issue"));
    assert_eq!(a.status, 201, "{}", a.text());
    let answer = a.json();
    let number = answer["number"].as_str().expect("a number").to_owned();
    let tickets = server.tickets_json();
    let t = ticket_by_subject(&tickets, subject).expect("the ticket is stored");
    assert_eq!(t["number"], number.as_str());
    assert_eq!(t["id"], answer["id"]);
    assert_eq!(t["issue_type"], "Bug");
    assert_eq!(t["queue"], "support");
    assert_eq!(t["requester"], "ann@customer.example.org");

    // The acknowledgement carries the customer page link, on this server.
    let acks = sink.wait_to("ann@customer.example.org", 1);
    let link = link_in(&acks[0].parsed.text);
    assert!(
        link.starts_with(&format!("http://{addr}/t/p")),
        "{link} on {addr}"
    );

    // The page shows the conversation, escaped, and no address at all.
    let page = http::get(addr, path_of(&link), &[]);
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("the printer is on fire"), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(
        !html.contains("@example.com"),
        "no agent or support address: {html}"
    );
    assert!(!html.contains("+a"), "no agent token: {html}");
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );

    // A reply from the page joins the ticket like a mail reply.
    let r = http::post_form(
        addr,
        path_of(&link),
        &[("message", "It is out now, thanks.")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let show = server.show_json(number.trim_start_matches('#'));
    let texts: Vec<&str> = show["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("It is out now")),
        "{texts:?}"
    );
    assert_eq!(server.tickets_json().len(), 1, "the reply opened no ticket");
    let again = http::get(addr, path_of(&link), &[]).text();
    assert!(again.contains("It is out now"), "{again}");

    // An empty reply is refused on the page itself.
    let empty = http::post_form(addr, path_of(&link), &[("message", "  ")]);
    assert_eq!(empty.status, 400);

    // A forged, altered, expired or other ticket's token: 404, nothing shown.
    let token = path_of(&link).trim_start_matches("/t/").to_owned();
    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).expect("ascii");
    let secret = postdesk::token::Secret::new(SECRET.as_bytes()).expect("the test secret");
    let keys = postdesk::token::Keys {
        current: &secret,
        previous: None,
    };
    let id = postdesk::domain::TicketId(answer["id"].as_i64().expect("id"));
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 86_400;
    let expired = postdesk::token::sign(
        keys,
        &postdesk::token::Purpose::Page {
            expires_day: today - 1,
        },
        id,
    );
    let other = postdesk::token::sign(
        keys,
        &postdesk::token::Purpose::Page {
            expires_day: today + 5,
        },
        postdesk::domain::TicketId(id.0 + 1000),
    );
    let customer_token = postdesk::token::sign(keys, &postdesk::token::Purpose::Customer, id);
    for bad in [altered, expired.clone(), other, customer_token, "x".into()] {
        let a = http::get(addr, &format!("/t/{bad}"), &[]);
        assert_eq!(a.status, 404, "{bad}: {}", a.text());
        assert!(!a.text().contains("printer"), "{bad}");
        let p = http::post_form(addr, &format!("/t/{bad}"), &[("message", "hi")]);
        assert_eq!(p.status, 404, "{bad}");
    }
    // The same token signed with a later day verifies (the day is signed).
    let fresh = postdesk::token::sign(
        keys,
        &postdesk::token::Purpose::Page {
            expires_day: today + 1,
        },
        id,
    );
    assert_eq!(http::get(addr, &format!("/t/{fresh}"), &[]).status, 200);
}

#[test]
fn form_and_multipart_posts_open_tickets_in_the_queue_their_category_names() {
    let server = TestServer::start_with(Options::default());
    let addr = web(&server);
    let a = http::post_form(
        addr,
        TICKETS,
        &[
            ("name", "Bo Buyer"),
            ("email", "bo@buyer.example.org"),
            ("subject", "How much for ten?"),
            ("message", "A quote please."),
            ("category", "quote"),
            ("page", "/pricing"),
        ],
    );
    assert_eq!(a.status, 201, "{}", a.text());
    let m = http::post_multipart(
        addr,
        TICKETS,
        &[
            ("name", "Cy Client"),
            ("email", "cy@client.example.org"),
            ("subject", "Screenshot of the error"),
            ("message", "See the file."),
            ("category", "support"),
        ],
        &[(
            "attachments",
            "error.png",
            "image/png",
            b"\x89PNG fake bytes",
        )],
    );
    assert_eq!(m.status, 201, "{}", m.text());
    let tickets = server.tickets_json();
    let quote = ticket_by_subject(&tickets, "How much for ten?").expect("quote ticket");
    assert_eq!(quote["queue"], "sales");
    assert_eq!(quote["issue_type"], "Sales Inquiry");
    let shot = ticket_by_subject(&tickets, "Screenshot of the error").expect("support ticket");
    assert_eq!(shot["queue"], "support");
    assert_eq!(shot["issue_type"], "Support");
    let show = server.show_json(
        shot["number"]
            .as_str()
            .expect("number")
            .trim_start_matches('#'),
    );
    let names: Vec<&str> = show["messages"][0]["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["error.png"]);
    // The message came in through the web door.
    let messages = server.messages_json();
    assert!(
        messages.iter().all(|m| m["source"] == "web"),
        "{messages:?}"
    );
}

#[test]
fn bad_fields_oversize_bodies_floods_and_bots_get_their_answers() {
    let server = TestServer::start_with(Options {
        max_message_size: Some(64 * 1024),
        http_toml: "posts_per_minute_per_ip = 7\n".into(),
        ..Options::default()
    });
    let addr = web(&server);

    let mut missing = form("No address", "support");
    missing.as_object_mut().expect("object").remove("email");
    let a = http::post_json(addr, TICKETS, &[], &missing);
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["field"], "email");
    let a = http::post_json(addr, TICKETS, &[], &form("Bad category", "complaint"));
    assert_eq!(
        (a.status, a.json()["field"].clone()),
        (400, json!("category"))
    );

    let big = "x".repeat(100 * 1024);
    let a = http::post_json(addr, TICKETS, &[], &json!({ "message": big }));
    assert_eq!(a.status, 413, "{}", a.text());
    assert!(!a.text().contains('/'), "no path in errors: {}", a.text());

    let a = http::request(
        addr,
        "POST",
        TICKETS,
        &[("Content-Type", "text/plain")],
        b"hi",
    );
    assert_eq!(a.status, 415);

    // Bot traps: answered like a success, nothing stored.
    let mut honey = form("Honeypot", "support");
    honey["website"] = json!("http://spam.example");
    assert_eq!(http::post_json(addr, TICKETS, &[], &honey).status, 201);
    let mut fast = form("Too fast", "support");
    fast["t"] = json!(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    );
    assert_eq!(http::post_json(addr, TICKETS, &[], &fast).status, 201);
    let mut slow = form("Typed by a person", "support");
    slow["t"] = json!(1_000_000_000);
    slow["website"] = json!("");
    assert_eq!(http::post_json(addr, TICKETS, &[], &slow).status, 201);
    let subjects: Vec<String> = server
        .tickets_json()
        .iter()
        .map(|t| t["subject"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(subjects, ["Typed by a person"]);

    // A foreign origin may not post at all.
    let a = http::post_json(
        addr,
        TICKETS,
        &[("Origin", "https://evil.example")],
        &form("From elsewhere", "support"),
    );
    assert_eq!(a.status, 403);

    // Seven posts were counted so far (the 403 came before the count):
    // the eighth is over the limit, with no body read.
    let a = http::post_json(addr, TICKETS, &[], &form("One too many", "support"));
    assert_eq!(a.status, 429, "{}", a.text());
    assert_eq!(a.header("retry-after"), Some("60"));
    assert!(ticket_by_subject(&server.tickets_json(), "One too many").is_none());
}

#[test]
fn allowed_origins_get_cors_and_others_get_none() {
    let server = TestServer::start_with(Options {
        http_toml: "allowed_origins = [\"https://shop.example\"]\n".into(),
        ..Options::default()
    });
    let addr = web(&server);
    let pre = http::request(
        addr,
        "OPTIONS",
        TICKETS,
        &[
            ("Origin", "https://shop.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let a = http::post_json(
        addr,
        TICKETS,
        &[("Origin", "https://shop.example")],
        &form("From the shop", "support"),
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let evil = http::request(
        addr,
        "OPTIONS",
        TICKETS,
        &[("Origin", "https://evil.example")],
        b"",
    );
    assert_eq!(evil.status, 403);
    assert_eq!(evil.header("access-control-allow-origin"), None);
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[test]
fn api_keys_are_made_listed_and_revoked_and_guard_the_read_api() {
    let server = TestServer::start_with(Options::default());
    let addr = web(&server);
    for i in 0..3 {
        let a = http::post_json(addr, TICKETS, &[], &form(&format!("Ticket {i}"), "support"));
        assert_eq!(a.status, 201);
    }
    let read = server
        .env
        .run_ok(&["apikey", "new", "dashboard", "--scope", "read"]);
    let read = read.trim().to_owned();
    let alerts = server
        .env
        .run_ok(&["apikey", "new", "nagios", "--scope", "alerts"])
        .trim()
        .to_owned();
    assert!(read.starts_with("pdk_") && read.len() == 68, "{read}");
    let list = server.env.run_json(&["apikey", "list", "--json"]);
    let text = list.to_string();
    assert!(
        text.contains("dashboard") && text.contains("nagios"),
        "{text}"
    );
    assert!(!text.contains(&read), "the key itself is never listed");
    // Only its hash is stored.
    let stored: Vec<String> = {
        let db = server.env.db();
        let mut st = db.prepare("SELECT key_hash FROM api_keys").expect("query");
        st.query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("hashes")
    };
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 64 && !h.contains(&read[4..]))
    );

    assert_eq!(http::get(addr, TICKETS, &[]).status, 401);
    let wrong = bearer("pdk_0000");
    assert_eq!(
        http::get(addr, TICKETS, &[("Authorization", &wrong)]).status,
        401
    );
    let a = bearer(&alerts);
    assert_eq!(
        http::get(addr, TICKETS, &[("Authorization", &a)]).status,
        403
    );

    let r = bearer(&read);
    let page1 = http::get(addr, "/api/v1/tickets?per_page=2", &[("Authorization", &r)]);
    assert_eq!(page1.status, 200, "{}", page1.text());
    let page1 = page1.json();
    assert_eq!(page1["items"].as_array().expect("items").len(), 2);
    assert_eq!(page1["next_page"], 2);
    let page2 = http::get(
        addr,
        "/api/v1/tickets?per_page=2&page=2",
        &[("Authorization", &r)],
    )
    .json();
    assert_eq!(page2["items"].as_array().expect("items").len(), 1);
    assert_eq!(page2["next_page"], Value::Null);
    // The items are what `tickets --json` prints.
    let cli = server.tickets_json();
    assert_eq!(page1["items"][0], cli[0]);
    let queue = http::get(
        addr,
        "/api/v1/tickets?queue=sales",
        &[("Authorization", &r)],
    )
    .json();
    assert_eq!(queue["items"], json!([]));

    let number = cli[0]["number"]
        .as_str()
        .expect("number")
        .trim_start_matches('#');
    let one = http::get(
        addr,
        &format!("/api/v1/tickets/{number}"),
        &[("Authorization", &r)],
    );
    assert_eq!(one.status, 200);
    assert_eq!(one.json(), server.show_json(number));
    let none = http::get(addr, "/api/v1/tickets/999999", &[("Authorization", &r)]);
    assert_eq!(none.status, 404);

    server.env.run_ok(&["apikey", "revoke", "dashboard"]);
    assert_eq!(
        http::get(addr, TICKETS, &[("Authorization", &r)]).status,
        401
    );
    let list = server.env.run_ok(&["apikey", "list"]);
    assert!(list.contains("revoked"), "{list}");
}

#[test]
fn alerts_with_one_dedupe_key_share_a_ticket_until_resolved() {
    let server = TestServer::start_with(Options::default());
    let addr = web(&server);
    let key = server
        .env
        .run_ok(&["apikey", "new", "monitor", "--scope", "alerts"])
        .trim()
        .to_owned();
    let auth = bearer(&key);
    let h = [("Authorization", auth.as_str())];
    let alert = |body: Value| http::post_json(addr, "/api/v1/alerts", &h, &body);

    assert_eq!(
        http::post_json(
            addr,
            "/api/v1/alerts",
            &[],
            &json!({"title": "x", "source": "y"})
        )
        .status,
        401
    );
    let bad = alert(json!({"title": "Disk full", "source": "nagios", "severity": "dire"}));
    assert_eq!(
        (bad.status, bad.json()["field"].clone()),
        (400, json!("severity"))
    );

    let first = alert(json!({
        "title": "Disk full on db1", "source": "nagios", "severity": "urgent",
        "body": "/var at 99%", "dedupe_key": "db1-disk"
    }));
    assert_eq!(first.status, 201, "{}", first.text());
    let first = first.json();
    let again = alert(json!({
        "title": "Disk full on db1", "source": "nagios", "dedupe_key": "db1-disk",
        "body": "/var at 100%"
    }))
    .json();
    assert_eq!(
        again["id"], first["id"],
        "the same key joins the open ticket"
    );
    let other = alert(json!({"title": "Disk full on db1", "source": "nagios"})).json();
    assert_ne!(other["id"], first["id"], "no key, no dedupe");

    let number = first["number"]
        .as_str()
        .expect("number")
        .trim_start_matches('#')
        .to_owned();
    let t = server.show_json(&number);
    assert_eq!(t["issue_type"], "Bug");
    assert_eq!(t["priority"], "Urgent");
    assert_eq!(t["queue"], "monitoring");
    assert_eq!(t["messages"].as_array().expect("messages").len(), 2);

    // Resolved from the host, with the command.
    let out = server.env.run_ok(&[
        "alert",
        "--title",
        "Disk full on db1",
        "--source",
        "nagios",
        "--dedupe-key",
        "db1-disk",
        "--resolved",
        "--body",
        "cleaned up",
    ]);
    let resolved: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(resolved["id"], first["id"]);
    let t = server.show_json(&number);
    assert_eq!(t["status"], "Resolved");
    let last = t["messages"]
        .as_array()
        .expect("messages")
        .last()
        .cloned()
        .expect("a message");
    assert_eq!(last["kind"], "note");

    // After it is resolved, the key opens a new ticket.
    let later =
        alert(json!({"title": "Disk full on db1", "source": "nagios", "dedupe_key": "db1-disk"}))
            .json();
    assert_ne!(later["id"], first["id"]);
}

#[test]
fn health_readiness_widget_and_contact_page_are_served() {
    let server = TestServer::start_with(Options::default());
    let addr = web(&server);
    assert_eq!(http::get(addr, "/healthz", &[]).status, 200);
    let ready = http::get(addr, "/readyz", &[]);
    assert_eq!(
        (ready.status, ready.json()["status"].clone()),
        (200, json!("ready"))
    );
    let js = http::get(addr, "/widget.js", &[]);
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .unwrap_or("")
            .starts_with("text/javascript")
    );
    assert!(js.text().contains("/api/v1/tickets"));
    let contact = http::get(addr, "/contact", &[]);
    assert_eq!(contact.status, 200);
    let html = contact.text();
    assert!(
        html.contains("name=\"website\"") && html.contains("name=\"t\""),
        "{html}"
    );
    assert_eq!(http::get(addr, "/nothing-here", &[]).status, 404);

    // A browser posting the contact form without JavaScript gets a page.
    let a = http::request(
        addr,
        "POST",
        TICKETS,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "text/html,application/xhtml+xml"),
        ],
        b"name=Di&email=di%40d.example.org&subject=Page+post&message=Hi&category=support",
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert!(a.text().contains("Thank you"), "{}", a.text());
}

#[test]
fn check_names_the_place_of_each_wrong_http_key() {
    let env = common::Env::new(&Options::default());
    env.write_config(
        "rules.toml",
        "[server]\nsmtp = \"127.0.0.1:0\"\n\n[http]\nlisten = \"nowhere\"\n\
         public_url = \"ftp://help.example\"\n\
         allowed_origins = [\"https://shop.example/\"]\n\
         posts_per_minute_per_ip = 0\ncustomer_link_dayz = 3\n",
    );
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("rules.toml:9:1: unknown field `customer_link_dayz`"),
        "{err}"
    );
    // The shape error hides the meaning errors until it is fixed.
    env.write_config(
        "rules.toml",
        "[server]\nsmtp = \"127.0.0.1:0\"\n\n[http]\nlisten = \"nowhere\"\n\
         public_url = \"ftp://help.example\"\n\
         allowed_origins = [\"https://shop.example/\"]\n\
         posts_per_minute_per_ip = 0\n",
    );
    let out = env.run(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for (line, what) in [
        (5, "invalid listen address `nowhere`"),
        (6, "public_url `ftp://help.example`"),
        (7, "allowed_origins entry `https://shop.example/`"),
        (8, "posts_per_minute_per_ip must be greater than 0"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("rules.toml:{line}:")) && l.contains(what)),
            "{what} on line {line}: {err}"
        );
    }
    // `--http` takes an address or `none`.
    let out = env.run(&["serve", "--http", "nonsense"]);
    assert!(!out.status.success());
}

/// Each client posts its share; returns (subject → number) for every 201.
fn post_concurrently(
    addr: SocketAddr,
    n: usize,
    clients: usize,
    acks: &mpsc::Sender<()>,
) -> BTreeMap<String, String> {
    let mut handles = Vec::new();
    for c in 0..clients {
        let acks = acks.clone();
        handles.push(std::thread::spawn(move || {
            let mut got = BTreeMap::new();
            for i in (c..n).step_by(clients) {
                let subject = format!("Crash web {i}");
                let mut f = form(&subject, "support");
                f["email"] = json!(format!("web{i}@clients.example.org"));
                let Ok(a) = std::panic::catch_unwind(|| try_post(addr, &f)) else {
                    break;
                };
                match a {
                    Some(a) if a.status == 201 => {
                        let number = a.json()["number"].as_str().unwrap_or("").to_owned();
                        got.insert(subject, number);
                        let _ = acks.send(());
                    }
                    _ => break,
                }
            }
            got
        }));
    }
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect()
}

/// A post that may meet a dead server: `None` then.
fn try_post(addr: SocketAddr, f: &Value) -> Option<Answer> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let body = f.to_string();
    let req = format!(
        "POST {TICKETS} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    if raw.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.as_bytes().to_vec();
    Some(Answer {
        status,
        headers: Vec::new(),
        body,
    })
}

#[test]
fn every_post_answered_201_before_a_sigkill_is_stored_exactly_once() {
    const N: usize = 240;
    let mut server = TestServer::start_with(Options {
        http_toml: "posts_per_minute_per_ip = 100000\n".into(),
        ..Options::default()
    });
    let addr = web(&server);
    let (tx, rx) = mpsc::channel();
    let clients = std::thread::spawn(move || post_concurrently(addr, N, 8, &tx));
    // Kill once about a third were answered.
    for _ in 0..N / 3 {
        rx.recv_timeout(DEADLINE).expect("posts are answered");
    }
    server.kill9();
    let answered = clients.join().expect("clients");
    assert!(answered.len() >= N / 3, "{} answered", answered.len());
    server.restart();
    let tickets = server.tickets_json();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &tickets {
        *count
            .entry(t["subject"].as_str().unwrap_or(""))
            .or_default() += 1;
    }
    for (subject, number) in &answered {
        assert_eq!(
            count.get(subject.as_str()),
            Some(&1),
            "{subject} answered 201"
        );
        let t = ticket_by_subject(&tickets, subject).expect("stored");
        assert_eq!(&t["number"], number, "{subject}");
    }
    assert!(count.values().all(|&c| c == 1), "no post stored twice");
    eventually(DEADLINE, || {
        let a = http::get(web(&server), "/readyz", &[]);
        if a.status == 200 {
            Ok(())
        } else {
            Err(a.text())
        }
    });
}

/// Headless Chromium (Debian's `chromium`, installed by `contrib/test.sh`)
/// on `url`: the DOM it built, and a screenshot into `shot` when given.
fn chromium(url: &str, shot: Option<&std::path::Path>) -> String {
    let profile = tempfile::tempdir().expect("a profile dir");
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    match shot {
        Some(path) => {
            args.push("--window-size=1000,900".to_owned());
            args.push("--hide-scrollbars".to_owned());
            args.push(format!("--screenshot={}", path.display()));
        }
        None => args.push("--dump-dom".to_owned()),
    }
    args.push(url.to_owned());
    let mut cmd = std::process::Command::new("chromium");
    cmd.args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = common::run_command(cmd, None, "chromium (install it with contrib/test.sh)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// With `POSTDESK_SCREENSHOTS=DIR` it also writes the screenshots README
/// shows (`contact-page.png`, `customer-page.png`, `widget.png`) into DIR.
#[test]
fn a_real_browser_renders_the_contact_page_and_the_customer_page() {
    let sink = Sink::start();
    let server = with_sink(&sink, "");
    let addr = web(&server);
    let contact = chromium(&format!("http://{addr}/contact"), None);
    assert!(contact.contains("id=\"contact\""), "{contact}");
    for option in ["support", "issue", "service_request", "question", "quote"] {
        assert!(contact.contains(&format!("value=\"{option}\"")), "{option}");
    }

    // The widget, as a site embeds it: the script builds its button and form.
    let site = tempfile::tempdir().expect("a site dir");
    let demo = site.path().join("shop.html");
    std::fs::write(
        &demo,
        format!(
            "<!doctype html><html><head><title>Shop</title></head><body>\
             <h1>Example shop</h1><p>Our products.</p>\
             <script src=\"http://{addr}/widget.js\" data-label=\"Need help?\" data-open></script>\
             </body></html>"
        ),
    )
    .expect("write the demo page");
    let shop = format!("file://{}", demo.display());
    let widget = chromium(&shop, None);
    assert!(widget.contains("class=\"pdw-btn\""), "{widget}");
    assert!(widget.contains("Need help?"), "{widget}");
    for field in [
        "name", "email", "category", "subject", "message", "website", "t",
    ] {
        assert!(
            widget.contains(&format!("name=\"{field}\"")),
            "{field}: {widget}"
        );
    }

    let mut f = form("<script>document.title='owned'</script>Printer", "issue");
    f["message"] = json!("Hello,\nthe printer <b>smokes</b>.\n");
    assert_eq!(http::post_json(addr, TICKETS, &[], &f).status, 201);
    let ack = sink.wait_to("ann@customer.example.org", 1);
    let link = link_in(&ack[0].parsed.text);
    let reply = http::post_form(addr, path_of(&link), &[("message", "Still smoking.")]);
    assert_eq!(reply.status, 303);
    let dom = chromium(&link, None);
    assert!(dom.contains("Still smoking."), "{dom}");
    assert!(
        dom.contains("the printer &lt;b&gt;smokes&lt;/b&gt;."),
        "{dom}"
    );
    assert!(
        !dom.contains("<title>owned</title>"),
        "the subject ran as script: {dom}"
    );
    assert!(dom.contains("&lt;script&gt;"), "{dom}");

    if let Some(dir) = std::env::var_os("POSTDESK_SCREENSHOTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        chromium(
            &format!("http://{addr}/contact"),
            Some(&dir.join("contact-page.png")),
        );
        chromium(&link, Some(&dir.join("customer-page.png")));
        chromium(&shop, Some(&dir.join("widget.png")));
    }
}

/// Selenium fills and sends the contact page and the customer page's reply
/// form in headless Chromium (`tests/common/browser_form.py`; Debian's
/// python3-selenium runs under the system Python).
#[test]
fn a_person_in_a_browser_sends_the_contact_form_and_replies_on_the_page() {
    let sink = Sink::start();
    let server = with_sink(&sink, "");
    let addr = web(&server);
    assert_eq!(
        http::post_json(addr, TICKETS, &[], &form("Earlier request", "support")).status,
        201
    );
    let ack = sink.wait_to("ann@customer.example.org", 1);
    let link = link_in(&ack[0].parsed.text);
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/browser_form.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&script)
        .arg(format!("http://{addr}"))
        .arg(&link)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = common::run_command(cmd, None, "selenium (install it with contrib/test.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("contact: Thank you! Your request #"),
        "{stdout}"
    );
    assert!(stdout.contains("page: Your reply was added"), "{stdout}");
    let tickets = server.tickets_json();
    let sent = ticket_by_subject(&tickets, "Sent from a real browser").expect("stored");
    assert_eq!(sent["issue_type"], "Bug");
    assert_eq!(sent["requester"], "selma@browser.example.org");
    let earlier = ticket_by_subject(&tickets, "Earlier request").expect("stored");
    let show = server.show_json(
        earlier["number"]
            .as_str()
            .expect("number")
            .trim_start_matches('#'),
    );
    assert!(
        show["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["text"]
                .as_str()
                .unwrap_or("")
                .contains("Replied from the page in a browser")),
        "{show}"
    );
}

#[test]
fn a_resolved_ticket_is_rated_once_from_its_page_and_a_second_rating_replaces_it() {
    let sink = Sink::start();
    let server = with_sink(&sink, "");
    let addr = web(&server);
    let a = http::post_json(addr, TICKETS, &[], &form("Rate me", "support"));
    assert_eq!(a.status, 201, "{}", a.text());
    let number = a.json()["number"].as_str().expect("number").to_owned();
    let link = link_in(&sink.wait_to("ann@customer.example.org", 1)[0].parsed.text);
    let page = path_of(&link).to_owned();
    let rate = format!("{page}/rate");

    // Open: no rating form, and a rating is refused.
    assert!(
        !http::get(addr, &page, &[])
            .text()
            .contains("How did we do?")
    );
    let early = http::post_form(addr, &rate, &[("score", "5")]);
    assert_eq!(early.status, 400, "{}", early.text());
    assert!(early.text().contains("once it is resolved"));

    server.env.run_ok(&["close", &number]);
    assert!(
        http::get(addr, &page, &[])
            .text()
            .contains("How did we do?")
    );
    let bad = http::post_form(addr, &rate, &[("score", "9")]);
    assert_eq!(bad.status, 400);
    let r = http::post_form(addr, &rate, &[("score", "4"), ("comment", "Quick & kind.")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let shown = server.show_json(number.trim_start_matches('#'));
    assert_eq!(
        shown["satisfaction"]["score"], 4,
        "{:#}",
        shown["satisfaction"]
    );
    assert_eq!(shown["satisfaction"]["comment"], "Quick & kind.");
    assert_eq!(shown["status"], "Closed", "a rating does not reopen");
    let html = http::get(addr, &format!("{page}?rated=1"), &[]).text();
    assert!(html.contains("You rated this request 4 of 5"), "{html}");
    assert!(html.contains("Thank you for your rating."), "{html}");

    let again = http::post_form(addr, &rate, &[("score", "2")]);
    assert_eq!(again.status, 303);
    assert_eq!(
        server.show_json(number.trim_start_matches('#'))["satisfaction"]["score"],
        2
    );
    assert_eq!(server.tickets_json().len(), 1, "ratings open no ticket");
    // A forged token rates nothing.
    let forged = http::post_form(addr, "/t/p1.99999-0123456789abcdef/rate", &[("score", "1")]);
    assert_eq!(forged.status, 404);
    assert_eq!(
        server.show_json(number.trim_start_matches('#'))["satisfaction"]["score"],
        2
    );
}
