//! What the CLI prints for people cannot be steered by what a stranger
//! wrote: control characters from a subject, a name or a body (`\r\n` that
//! forges a row, `ESC ]0;...` that retitles the terminal) come out escaped
//! in every text listing, while `--json` keeps the value exact. And the
//! help names every subcommand by what it does.

mod common;

use common::{Mail, TestServer, str_field};

/// A subject that, printed raw, ends its row and forges another, then
/// retitles the terminal (OSC 0) and clears the screen (CSI 2J).
const FORGED_SUBJECT: &str = "Invoice\r\n#1999     Open      support Urgent   boss@example.com Pay now\u{1b}]0;pwned\u{7}\u{1b}[2J";

/// The same subject as an RFC 2047 encoded word (Q encoding).
fn encoded(s: &str) -> String {
    let mut out = String::from("=?UTF-8?Q?");
    for b in s.bytes() {
        match b {
            b' ' => out.push('_'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'@' | b'#' | b'[' | b']' | b';' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out.push_str("?=");
    out
}

fn forged_mail(id: &str) -> Vec<u8> {
    format!(
        "From: {} <eve@customer.example.org>\r\n\
         To: support@example.com\r\n\
         Subject: {}\r\n\
         Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}@customer.example.org>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hello,\r\n\
         a line \u{1b}[31mred\u{1b}[0m and a bell \u{7}.\r\n",
        encoded("Eve\u{1b}]0;owned\u{7}"),
        encoded(FORGED_SUBJECT)
    )
    .into_bytes()
}

/// No control character but the line break (and tab) reaches the terminal.
fn assert_printable(what: &str, text: &str) {
    let bad: Vec<(usize, char)> = text
        .char_indices()
        .filter(|(_, c)| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        bad.is_empty(),
        "{what} prints control characters {bad:?}:\n{text:?}"
    );
}

#[test]
fn text_listings_escape_control_characters_and_json_keeps_them_exact() {
    let server = TestServer::start();
    let raw = forged_mail("forged-1");
    server.deliver(&[Mail::new(
        "eve@customer.example.org",
        &["support@example.com"],
        raw,
    )]);
    let tickets = server.wait_tickets(1);
    // --json: the subject exactly as decoded, controls and all.
    assert_eq!(str_field(&tickets[0], "subject"), FORGED_SUBJECT);
    let number = str_field(&tickets[0], "number").to_owned();

    // `tickets`: one ticket, one row; the forged row is visible as text.
    let listing = server.env.run_ok(&["tickets"]);
    assert_printable("tickets", &listing);
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(
        listing.contains("Invoice\\r\\n#1999"),
        "the line break is shown escaped: {listing}"
    );
    assert!(listing.contains("\\u{1b}]0;pwned"), "{listing}");

    let show = server.env.run_ok(&["show", &number]);
    assert_printable("show", &show);
    assert!(show.contains("a line \\u{1b}[31mred"), "{show}");
    let messages = server.env.run_ok(&["messages"]);
    assert_printable("messages", &messages);
    assert_eq!(messages.lines().count(), 1, "{messages}");
    let outbox = server.env.run_ok(&["outbox"]);
    assert_printable("outbox", &outbox);

    let file = server.env.dir.path().join("forged.eml");
    // Not the stored message (that one explains as a duplicate).
    std::fs::write(&file, forged_mail("forged-2")).expect("write eml");
    let explain = server
        .env
        .run_ok(&["explain", file.to_str().expect("utf-8 path")]);
    assert_printable("explain", &explain);
    assert!(explain.contains("Invoice\\r\\n#1999"), "{explain}");
}

/// `postdesk --help` lists every subcommand and describes each by what it
/// does, never by a tracker reference.
#[test]
fn help_lists_every_subcommand_by_what_it_does() {
    let out = std::process::Command::new(common::BIN)
        .arg("--help")
        .output()
        .expect("run postdesk --help");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).expect("help is UTF-8");
    for sub in [
        "serve",
        "check",
        "ingest",
        "tickets",
        "show",
        "attachment",
        "messages",
        "explain",
        "digest",
        "notices",
        "mailboxes",
        "outbox",
        "client",
        "rescan",
        "close",
        "backup",
        "restore",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "no {sub} in the help:\n{help}"
        );
    }
    assert!(
        !help.to_lowercase().contains("issue "),
        "the help names a tracker item:\n{help}"
    );
}
