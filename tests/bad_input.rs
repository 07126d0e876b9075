//! Bad input gets a clear answer, and nothing it does loses or breaks mail.
//!
//! Protocol abuse goes over a raw `TcpStream` (no client library would send
//! it); well-formed but nasty messages go through the same raw session or
//! smtplib. Every test ends by checking that the server still accepts a
//! normal message and that everything it answered 250 is stored.

mod common;

use common::{
    Mail, Options, RawSmtp, TestServer, bare_id, dot_stuff, find_message, fixture_crlf, noise,
    str_field, text_mail,
};

const FROM: &str = "mallory@customer.example.org";
const SUPPORT: &str = "support@example.com";

fn normal_mail(tag: &str) -> Mail {
    Mail::text(
        FROM,
        &format!("A normal message after {tag}"),
        &format!("normal-{tag}@customer.example.org"),
        "Nothing unusual here.\n",
    )
}

/// The server still takes a normal message from a fresh smtplib session,
/// has stored exactly `accepted + 1` messages, is still running, and has
/// not panicked.
fn assert_still_healthy(server: &mut TestServer, tag: &str, accepted: usize) {
    let outcome = server.send_one(&normal_mail(tag));
    assert!(outcome.accepted(), "normal mail after {tag}: {outcome:?}");
    let messages = server.messages_json();
    assert_eq!(
        messages.len(),
        accepted + 1,
        "every 250 is stored, nothing else: {messages:?}"
    );
    assert!(server.is_running(), "server died");
    let stderr = server.stderr();
    assert!(!stderr.contains("panicked"), "server panicked:\n{stderr}");
}

/// A message body of binary noise: every byte value but CR and LF (which
/// would change the line structure), in CRLF-terminated lines of 76 octets.
fn binary_noise_message(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + len / 38);
    for (i, b) in noise(seed, len).into_iter().enumerate() {
        out.push(match b {
            b'\r' | b'\n' => b'\0',
            b => b,
        });
        if i % 76 == 75 {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn garbage_command_gets_500_and_the_session_continues() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let r = s.cmd("XYZZY plugh");
    assert_eq!(r.code, 500, "{r:?}");
    let r = s.cmd("NOOP");
    assert_eq!(r.code, 250, "session still usable: {r:?}");
    let r = s.send_message(FROM, SUPPORT, &normal_mail("garbage-same-session").raw);
    assert_eq!(r.code, 250, "{r:?}");
    assert_still_healthy(&mut server, "garbage", 1);
}

#[test]
fn binary_garbage_command_line_gets_a_5xx_reply() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let line: Vec<u8> = noise(7, 200)
        .into_iter()
        .map(|b| if b == b'\r' || b == b'\n' { b'?' } else { b })
        .collect();
    let r = s.cmd_bytes(&line);
    assert_eq!(r.class(), 5, "{r:?}");
    let r = s.cmd("NOOP");
    assert_eq!(r.code, 250, "{r:?}");
    assert_still_healthy(&mut server, "binary-command", 0);
}

#[test]
fn commands_out_of_order_get_503() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let r = s.cmd(&format!("RCPT TO:<{SUPPORT}>"));
    assert_eq!(r.code, 503, "RCPT before MAIL: {r:?}");
    let r = s.cmd("DATA");
    assert_eq!(r.code, 503, "DATA before MAIL: {r:?}");
    let r = s.cmd(&format!("MAIL FROM:<{FROM}>"));
    assert_eq!(r.code, 250, "{r:?}");
    // RFC 5321 §3.3: DATA with no (accepted) RCPT may get 503 or 554.
    let r = s.cmd("DATA");
    assert!(r.code == 503 || r.code == 554, "DATA before RCPT: {r:?}");
    let r = s.cmd(&format!("MAIL FROM:<{FROM}>"));
    assert_eq!(r.code, 503, "nested MAIL: {r:?}");
    // The transaction begun above is still intact.
    let r = s.cmd(&format!("RCPT TO:<{SUPPORT}>"));
    assert_eq!(r.code, 250, "{r:?}");
    let r = s.cmd("RSET");
    assert_eq!(r.code, 250, "{r:?}");
    assert_still_healthy(&mut server, "out-of-order", 0);
}

#[test]
fn command_line_over_1000_octets_gets_500_and_the_session_stays_open() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    // RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, and no
    // text line may exceed 1000; this one is 2005 octets plus CRLF.
    let long = format!("NOOP {}", "x".repeat(2000));
    let r = s.cmd(&long);
    assert_eq!(r.class(), 5, "{r:?}");
    // Exactly one reply for the long line: the next reply is NOOP's.
    let r = s.cmd("NOOP");
    assert_eq!(r.code, 250, "{r:?}");
    let long_mail = format!("MAIL FROM:<{}@customer.example.org>", "y".repeat(1500));
    let r = s.cmd(&long_mail);
    assert_eq!(r.class(), 5, "{r:?}");
    let r = s.send_message(FROM, SUPPORT, &normal_mail("long-line-same-session").raw);
    assert_eq!(r.code, 250, "{r:?}");
    assert_still_healthy(&mut server, "long-line", 1);
}

#[test]
fn oversize_message_gets_552_and_is_not_stored() {
    let mut server = TestServer::start_with(Options {
        max_message_size: Some(10_000),
        ..Options::default()
    });
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let body = "A line of filler text to make the message far too large.\n".repeat(900);
    let big = text_mail(
        FROM,
        SUPPORT,
        "Too big",
        "too-big-1@customer.example.org",
        &[],
        &body,
    );
    assert!(big.len() > 50_000);
    let r = s.send_message(FROM, SUPPORT, &big);
    assert_eq!(r.code, 552, "{r:?}");
    // The session survives the refusal and takes a message that fits.
    let r = s.send_message(FROM, SUPPORT, &normal_mail("oversize-same-session").raw);
    assert_eq!(r.code, 250, "{r:?}");
    let messages = server.messages_json();
    assert!(
        find_message(&messages, "too-big-1@customer.example.org").is_none(),
        "a refused message was stored: {messages:?}"
    );
    assert_still_healthy(&mut server, "oversize", 1);
}

#[test]
fn mail_from_with_size_over_the_limit_gets_552() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    // Default limit 25 MiB = 26214400 octets.
    let r = s.cmd(&format!("MAIL FROM:<{FROM}> SIZE=26214401"));
    assert_eq!(r.code, 552, "{r:?}");
    let r = s.cmd(&format!("MAIL FROM:<{FROM}> SIZE=999999999999"));
    assert_eq!(r.code, 552, "{r:?}");
    let r = s.cmd(&format!("MAIL FROM:<{FROM}> SIZE=1000"));
    assert_eq!(r.code, 250, "a SIZE within the limit: {r:?}");
    let r = s.cmd("RSET");
    assert_eq!(r.code, 250, "{r:?}");
    // smtplib with an explicit SIZE parameter, as a real MTA sends it.
    let mut mail = normal_mail("size-param");
    mail.mail_options = vec!["SIZE=30000000".into()];
    let o = server.send_one(&mail);
    assert_eq!(o.code, Some(552), "{o:?}");
    assert_still_healthy(&mut server, "size-param", 0);
}

#[test]
fn message_of_binary_noise_is_accepted_and_stored() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let raw = binary_noise_message(42, 8192);
    let r = s.send_message(FROM, SUPPORT, &raw);
    assert_eq!(
        r.code, 250,
        "unparseable mail is stored raw, not refused: {r:?}"
    );
    let messages = server.messages_json();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let size = messages[0]["size"].as_u64().expect("size");
    assert!(
        size >= raw.len() as u64,
        "stored {size} of {} octets",
        raw.len()
    );
    assert_still_healthy(&mut server, "binary-noise", 1);
}

#[test]
fn message_without_headers_is_accepted_and_stored() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let raw = b"just some words\r\nwithout any header at all\r\n".to_vec();
    let r = s.send_message(FROM, SUPPORT, &raw);
    assert_eq!(r.code, 250, "{r:?}");
    let messages = server.messages_json();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        !str_field(&messages[0], "message_id").is_empty(),
        "a message without Message-ID gets a synthetic one: {messages:?}"
    );
    assert_still_healthy(&mut server, "no-headers", 1);
}

#[test]
fn broken_mime_boundaries_are_accepted_and_ticketed() {
    let mut server = TestServer::start();
    let o = server.send_one(&Mail::new(
        FROM,
        &[SUPPORT],
        fixture_crlf("mail/broken_mime.eml"),
    ));
    assert!(o.accepted(), "{o:?}");
    let messages = server.messages_json();
    let m = find_message(&messages, "broken-mime-1@customer.example.org")
        .unwrap_or_else(|| panic!("not stored: {messages:?}"));
    assert!(
        !m["ticket_id"].is_null(),
        "its headers are fine, so it opens a ticket: {m}"
    );
    assert_still_healthy(&mut server, "broken-mime", 1);
}

#[test]
fn invalid_charset_is_accepted_and_its_text_readable() {
    let mut server = TestServer::start();
    let o = server.send_one(&Mail::new(
        FROM,
        &[SUPPORT],
        fixture_crlf("mail/bad_charset.eml"),
    ));
    assert!(o.accepted(), "{o:?}");
    let messages = server.messages_json();
    let m = find_message(&messages, "bad-charset-1@customer.example.org")
        .unwrap_or_else(|| panic!("not stored: {messages:?}"));
    let ticket = m["ticket_id"].as_i64().expect("ticketed");
    let shown = server.show_json(&ticket.to_string());
    let text = shown["messages"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("The charset label above names nothing real."),
        "ASCII text survives an unknown charset: {text:?}"
    );
    assert_still_healthy(&mut server, "bad-charset", 1);
}

#[test]
fn nul_byte_in_the_body_is_accepted_and_stored_whole() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let raw = text_mail(
        FROM,
        SUPPORT,
        "NUL in the body",
        "nul-1@customer.example.org",
        &[],
        "before the NUL\0after the NUL\n",
    );
    let r = s.send_message(FROM, SUPPORT, &raw);
    assert_eq!(r.code, 250, "{r:?}");
    let messages = server.messages_json();
    let m = find_message(&messages, "nul-1@customer.example.org")
        .unwrap_or_else(|| panic!("not stored: {messages:?}"));
    let size = m["size"].as_u64().expect("size");
    assert!(
        size >= raw.len() as u64,
        "truncated at the NUL? {size} < {}",
        raw.len()
    );
    assert_still_healthy(&mut server, "nul", 1);
}

#[test]
fn rcpt_to_a_foreign_domain_gets_550() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let r = s.cmd(&format!("MAIL FROM:<{FROM}>"));
    assert_eq!(r.code, 250, "{r:?}");
    for foreign in [
        "someone@elsewhere.example.net",
        "support@example.com.evil.example",
        "support@sub.example.com",
    ] {
        let r = s.cmd(&format!("RCPT TO:<{foreign}>"));
        assert_eq!(
            r.code, 550,
            "{foreign} must be refused (no open relay): {r:?}"
        );
    }
    // RFC 5321 §3.3: "503 (command out of sequence) or 554 (no valid
    // recipients)" are both allowed here.
    let r = s.cmd("DATA");
    assert!(
        r.code == 503 || r.code == 554,
        "DATA with no accepted recipient: {r:?}"
    );
    let r = s.cmd("RSET");
    assert_eq!(r.code, 250, "{r:?}");
    // smtplib: a refused recipient is reported and nothing is sent.
    let o = server.send_one(&Mail::new(
        FROM,
        &["someone@elsewhere.example.net"],
        normal_mail("relay-attempt").raw,
    ));
    assert_eq!(o.code, Some(550), "{o:?}");
    assert_still_healthy(&mut server, "foreign-rcpt", 0);
}

#[test]
fn too_many_errors_get_421_and_the_connection_closes() {
    let mut server = TestServer::start_with(Options {
        max_errors: Some(3),
        ..Options::default()
    });
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let mut codes = Vec::new();
    for _ in 0..10 {
        match s.send(b"XYZZY\r\n").and_then(|()| s.read_reply()) {
            Ok(r) => {
                codes.push(r.code);
                if r.code == 421 {
                    break;
                }
            }
            Err(e) => panic!("connection ended without a 421 after {codes:?}: {e}"),
        }
    }
    assert_eq!(codes.last(), Some(&421), "replies: {codes:?}");
    assert!(
        codes.len() <= 4,
        "max_errors = 3 but it took {} commands: {codes:?}",
        codes.len()
    );
    assert!(s.is_closed(), "the server closes after 421");
    assert_still_healthy(&mut server, "too-many-errors", 0);
}

#[test]
fn server_survives_a_barrage_and_stores_every_message_it_accepted() {
    let mut server = TestServer::start();
    let mut accepted = 0usize;
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    s.cmd("XYZZY");
    s.cmd("DATA");
    s.cmd(&format!("NOOP {}", "z".repeat(4000)));
    s.cmd(&format!("MAIL FROM:<{FROM}> SIZE=99999999999"));
    s.cmd("RCPT TO:<x@elsewhere.example.net>");
    let inputs: Vec<Vec<u8>> = vec![
        binary_noise_message(1, 4096),
        binary_noise_message(2, 100),
        b"no headers\r\n".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"Subject: only a subject\r\n".to_vec(),
        b"From: <>\r\nMessage-ID: <>\r\nIn-Reply-To: <<<>>>\r\nReferences: < > <@> <a@>\r\n\r\nodd ids\r\n".to_vec(),
        fixture_crlf("mail/broken_mime.eml"),
        fixture_crlf("mail/bad_charset.eml"),
        text_mail(FROM, SUPPORT, "NUL", "barrage-nul@customer.example.org", &[], "a\0b\n"),
        b".\r\n..\r\n...\r\n".to_vec(),
    ];
    for (i, raw) in inputs.iter().enumerate() {
        let mut c = RawSmtp::connect_ehlo(server.smtp);
        let r = c.send_message(FROM, SUPPORT, raw);
        assert!(r.code == 250 || r.class() == 5, "input {i}: {r:?}");
        if r.code == 250 {
            accepted += 1;
        }
    }
    // Whatever the barrage did, the first session still answers.
    let r = s.cmd("NOOP");
    assert_eq!(r.code, 250, "{r:?}");
    let messages = server.messages_json();
    assert_eq!(messages.len(), accepted, "{messages:?}");
    for m in &messages {
        assert!(m["size"].as_u64().is_some_and(|n| n > 0), "{m}");
        assert!(!str_field(m, "content_hash").is_empty(), "{m}");
        let id = bare_id(str_field(m, "message_id"));
        assert!(!id.is_empty(), "{m}");
    }
    assert_still_healthy(&mut server, "barrage", accepted);
}

#[test]
fn dot_stuffing_is_undone_on_receipt() {
    let mut server = TestServer::start();
    let mut s = RawSmtp::connect_ehlo(server.smtp);
    let raw = text_mail(
        FROM,
        SUPPORT,
        "Dots",
        "dots-1@customer.example.org",
        &[],
        ".leading dot\n..two dots\nend\n",
    );
    // dot_stuff doubles each leading dot on the wire (RFC 5321 §4.5.2).
    assert!(dot_stuff(&raw).windows(5).any(|w| w == b"\n...t"));
    let r = s.send_message(FROM, SUPPORT, &raw);
    assert_eq!(r.code, 250, "{r:?}");
    let messages = server.messages_json();
    let m = find_message(&messages, "dots-1@customer.example.org").expect("stored");
    let shown = server.show_json(&m["ticket_id"].as_i64().expect("ticketed").to_string());
    let text = shown["messages"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(".leading dot") && !text.contains("..leading"),
        "{text:?}"
    );
    assert!(
        text.contains("..two dots") && !text.contains("...two"),
        "{text:?}"
    );
    assert_still_healthy(&mut server, "dots", 1);
}
