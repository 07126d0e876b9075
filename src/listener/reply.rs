//! Every SMTP and LMTP reply the listener sends, in one place.
//!
//! Receives an outcome (queued, too large, relaying denied, ...) and returns
//! the [`Reply`] for it: code, enhanced status code (RFC 3463) and text.
//! Handlers in `session.rs` never write reply literals; they call a function
//! here, so every answer postdesk can give is listed and tested below.
//!
//! Enhanced status codes are sent on every reply except the greeting, the
//! `354` go-ahead and the EHLO/LHLO capability list, which RFC 2034 §3 does
//! not cover. Postfix does the same for HELO clients, and no client is known
//! to mind.

use std::borrow::Cow;
use std::fmt;

use smtp_proto::{
    EXT_8BIT_MIME, EXT_ENHANCED_STATUS_CODES, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8,
    EXT_START_TLS, EhloResponse,
};

use crate::domain::Accepted;

/// One reply line: code, optional enhanced status code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    status: Option<[u8; 3]>,
    text: Cow<'static, str>,
}

impl Reply {
    const fn fixed(code: u16, status: [u8; 3], text: &'static str) -> Reply {
        Reply {
            code,
            status: Some(status),
            text: Cow::Borrowed(text),
        }
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code (RFC 3463), if the reply carries one.
    pub fn status(&self) -> Option<[u8; 3]> {
        self.status
    }

    /// The human-readable text after the codes.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the reply reports success (2xx) or asks for more (3xx).
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Append the reply, CRLF-terminated, to `out`.
    /// Every reply goes through here, so this is where replies are counted
    /// by code.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        count(self.code);
        self.write_line(out);
        out.extend_from_slice(b"\r\n");
    }

    /// The reply line without its CRLF, written into `out` as it is
    /// (replies are written for every command: no formatting machinery).
    fn write_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(code_str(self.code).as_bytes());
        if let Some(status) = self.status {
            for (i, n) in status.into_iter().enumerate() {
                out.push(if i == 0 { b' ' } else { b'.' });
                if n >= 100 {
                    out.push(b'0' + n / 100);
                }
                if n >= 10 {
                    out.push(b'0' + n / 10 % 10);
                }
                out.push(b'0' + n % 10);
            }
        }
        out.push(b' ');
        // A CR or LF inside the text (a host name from the configuration,
        // say) becomes a space, so the text can never start a second line.
        out.extend(
            self.text
                .bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
}

/// Count one reply with `code` (`postdesk_smtp_replies_total`; a code is
/// one of a few dozen, so the label set stays small).
fn count(code: u16) {
    metrics::counter!("postdesk_smtp_replies_total", "code" => code_str(code)).increment(1);
}

/// A reply code as text, without allocating for the codes postdesk sends.
fn code_str(code: u16) -> Cow<'static, str> {
    const KNOWN: [(u16, &str); 26] = [
        (211, "211"),
        (214, "214"),
        (220, "220"),
        (221, "221"),
        (235, "235"),
        (250, "250"),
        (251, "251"),
        (252, "252"),
        (334, "334"),
        (354, "354"),
        (421, "421"),
        (450, "450"),
        (451, "451"),
        (452, "452"),
        (454, "454"),
        (500, "500"),
        (501, "501"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
        (530, "530"),
        (535, "535"),
        (550, "550"),
        (552, "552"),
        (554, "554"),
        (555, "555"),
    ];
    KNOWN
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| Cow::Owned(code.to_string()), |(_, s)| Cow::Borrowed(*s))
}

impl fmt::Display for Reply {
    /// The reply line without its CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = Vec::with_capacity(self.text.len() + 16);
        self.write_line(&mut line);
        f.write_str(&String::from_utf8_lossy(&line))
    }
}

/// What an EHLO or LHLO reply offers beyond the fixed extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// Largest message accepted, announced as `SIZE <n>` (RFC 1870).
    pub max_message_size: usize,
    /// Whether `STARTTLS` is offered (a certificate is loaded and the
    /// session is still in plain text).
    pub starttls: bool,
}

/// `220`: the greeting sent when a connection opens.
pub fn greeting(hostname: &str, is_lmtp: bool) -> Reply {
    let service = if is_lmtp { "LMTP" } else { "ESMTP" };
    Reply {
        code: 220,
        status: None,
        text: Cow::Owned(format!("{hostname} {service} postdesk ready")),
    }
}

/// The multi-line `250` answer to EHLO or LHLO: PIPELINING, 8BITMIME,
/// SIZE, ENHANCEDSTATUSCODES, SMTPUTF8 and, when offered, STARTTLS.
pub fn ehlo(hostname: &str, offer: Offer) -> Vec<u8> {
    let mut response = EhloResponse::new(hostname);
    response.capabilities =
        EXT_PIPELINING | EXT_8BIT_MIME | EXT_SIZE | EXT_ENHANCED_STATUS_CODES | EXT_SMTP_UTF8;
    if offer.starttls {
        response.capabilities |= EXT_START_TLS;
    }
    response.size = offer.max_message_size;
    count(250);
    let mut out = Vec::with_capacity(256);
    // Writing into a Vec cannot fail.
    let _ = response.write(&mut out);
    out
}

/// `250`: the answer to HELO (RFC 5321 §4.1.1.1).
pub fn helo(hostname: &str) -> Reply {
    Reply {
        code: 250,
        status: None,
        text: Cow::Owned(hostname.to_owned()),
    }
}

/// `250 2.0.0`: a command with nothing else to say (RSET, NOOP).
pub fn ok() -> Reply {
    Reply::fixed(250, [2, 0, 0], "Ok")
}

/// `250 2.1.0`: MAIL FROM accepted.
pub fn sender_ok() -> Reply {
    Reply::fixed(250, [2, 1, 0], "Sender ok")
}

/// `250 2.1.5`: RCPT TO accepted.
pub fn recipient_ok() -> Reply {
    Reply::fixed(250, [2, 1, 5], "Recipient ok")
}

/// `354`: go ahead with the message text.
pub fn start_data() -> Reply {
    Reply {
        code: 354,
        status: None,
        text: Cow::Borrowed("End data with <CR><LF>.<CR><LF>"),
    }
}

/// `250 2.0.0`: the message is durably stored. Sent only after
/// `Deliver::deliver` returned `Ok`.
pub fn queued(accepted: &Accepted) -> Reply {
    Reply {
        code: 250,
        status: Some([2, 0, 0]),
        text: Cow::Owned(format!("Ok: queued as {}", accepted.message)),
    }
}

/// `250 2.1.5`: LMTP's per-recipient success after DATA (RFC 2033 §4.2).
/// Sent only after `Deliver::deliver` returned `Ok`.
pub fn delivered(accepted: &Accepted) -> Reply {
    Reply {
        code: 250,
        status: Some([2, 1, 5]),
        text: Cow::Owned(format!("Ok: delivered as {}", accepted.message)),
    }
}

/// `451 4.3.0`: the message could not be stored; the sender keeps it and
/// retries. Sent once in SMTP and once per recipient in LMTP.
pub fn not_stored() -> Reply {
    Reply::fixed(
        451,
        [4, 3, 0],
        "Temporary failure storing the message, try again later",
    )
}

/// `221 2.0.0`: the answer to QUIT.
pub fn closing() -> Reply {
    Reply::fixed(221, [2, 0, 0], "Bye")
}

/// `252 2.1.5`: VRFY is politely refused without saying whether the
/// address exists (RFC 5321 §3.5.3).
pub fn cannot_verify() -> Reply {
    Reply::fixed(
        252,
        [2, 1, 5],
        "Cannot VRFY user, but will accept message and attempt delivery",
    )
}

/// `502 5.5.1`: EXPN is not offered (mailing lists stay private).
pub fn expn_disabled() -> Reply {
    Reply::fixed(502, [5, 5, 1], "EXPN not available")
}

/// `214 2.0.0`: the answer to HELP.
pub fn help() -> Reply {
    Reply::fixed(
        214,
        [2, 0, 0],
        "postdesk accepts mail for its served domains, see RFC 5321",
    )
}

/// `220 2.0.0`: go ahead with the TLS handshake.
pub fn tls_ready() -> Reply {
    Reply::fixed(220, [2, 0, 0], "Ready to start TLS")
}

/// `500 5.5.1`: a command postdesk does not know.
pub fn unknown_command() -> Reply {
    Reply::fixed(500, [5, 5, 1], "Unrecognized command")
}

/// `500 5.5.1`: HELO or EHLO on the LMTP listener (RFC 2033 §4.1).
pub fn use_lhlo() -> Reply {
    Reply::fixed(500, [5, 5, 1], "This is LMTP, use LHLO")
}

/// `502 5.5.1`: a known command postdesk does not implement (AUTH, BDAT,
/// ETRN, ATRN, BURL, or STARTTLS without a certificate).
pub fn not_implemented() -> Reply {
    Reply::fixed(502, [5, 5, 1], "Command not implemented")
}

/// `500 5.5.6`: a command line longer than RFC 5321 §4.5.3.1.4 allows.
pub fn line_too_long() -> Reply {
    Reply::fixed(500, [5, 5, 6], "Line too long")
}

/// `501 5.5.4`: a command whose arguments do not parse; `syntax` is the
/// expected form, taken from smtp-proto's fixed strings.
pub fn syntax_error(syntax: &'static str) -> Reply {
    Reply {
        code: 501,
        status: Some([5, 5, 4]),
        text: Cow::Owned(format!("Syntax: {syntax}")),
    }
}

/// `501 5.5.4`: a MAIL or RCPT parameter with an invalid value.
pub fn invalid_parameter(param: &'static str) -> Reply {
    Reply {
        code: 501,
        status: Some([5, 5, 4]),
        text: Cow::Owned(format!("Invalid {param} parameter")),
    }
}

/// `555 5.5.4`: a MAIL or RCPT parameter postdesk does not recognize or
/// implement (RFC 5321 §4.1.1.11).
pub fn unsupported_parameter() -> Reply {
    Reply::fixed(555, [5, 5, 4], "Unsupported parameter")
}

/// `500 5.5.2`: a command line smtp-proto could not make sense of at all.
pub fn malformed_command() -> Reply {
    Reply::fixed(500, [5, 5, 2], "Malformed command")
}

/// The answer to a command line smtp-proto refused to parse. Nothing the
/// peer sent is echoed back.
pub fn parse_error(error: &smtp_proto::Error) -> Reply {
    use smtp_proto::Error;
    match error {
        Error::UnknownCommand | Error::InvalidResponse { .. } => unknown_command(),
        Error::InvalidSenderAddress => bad_sender_address(),
        Error::InvalidRecipientAddress => bad_recipient_address(),
        Error::SyntaxError { syntax } => syntax_error(syntax),
        Error::InvalidParameter { param } => invalid_parameter(param),
        Error::UnsupportedParameter { .. } => unsupported_parameter(),
        Error::ResponseTooLong => line_too_long(),
        // The session parses only whole lines, so "needs more" means the
        // line ended where the parser did not expect it.
        Error::NeedsMoreData { .. } => malformed_command(),
    }
}

/// `501 5.1.7`: MAIL FROM with an address that does not parse.
pub fn bad_sender_address() -> Reply {
    Reply::fixed(501, [5, 1, 7], "Bad sender address syntax")
}

/// `501 5.1.3`: RCPT TO with an address that does not parse.
pub fn bad_recipient_address() -> Reply {
    Reply::fixed(501, [5, 1, 3], "Bad recipient address syntax")
}

/// `503 5.5.1`: MAIL before EHLO/HELO/LHLO (again required after STARTTLS).
pub fn hello_first() -> Reply {
    Reply::fixed(503, [5, 5, 1], "Send EHLO/LHLO first")
}

/// `503 5.5.1`: a second MAIL inside a transaction.
pub fn sender_already_given() -> Reply {
    Reply::fixed(503, [5, 5, 1], "Sender already specified")
}

/// `503 5.5.1`: RCPT or DATA before MAIL.
pub fn mail_first() -> Reply {
    Reply::fixed(503, [5, 5, 1], "Need MAIL command first")
}

/// `554 5.5.1`: DATA when no recipient was accepted (RFC 5321 §3.3).
pub fn no_valid_recipients() -> Reply {
    Reply::fixed(554, [5, 5, 1], "No valid recipients")
}

/// `503 5.5.1`: STARTTLS on a session that is already encrypted.
pub fn tls_already_active() -> Reply {
    Reply::fixed(503, [5, 5, 1], "TLS already active")
}

/// `550 5.7.1`: RCPT for a domain postdesk does not serve. postdesk is
/// never an open relay.
pub fn relay_denied() -> Reply {
    Reply::fixed(550, [5, 7, 1], "Relaying denied")
}

/// `452 4.5.3`: more recipients than `limits.max_recipients`; the client
/// sends the rest in another transaction (RFC 5321 §4.5.3.1.10).
pub fn too_many_recipients() -> Reply {
    Reply::fixed(452, [4, 5, 3], "Too many recipients")
}

/// `552 5.3.4`: the message (or its MAIL SIZE= declaration) is larger than
/// `limits.max_message_size`.
pub fn too_large() -> Reply {
    Reply::fixed(
        552,
        [5, 3, 4],
        "Message size exceeds fixed maximum message size",
    )
}

/// `421 4.7.0`: too many errors in one session; the connection closes.
pub fn too_many_errors() -> Reply {
    Reply::fixed(421, [4, 7, 0], "Too many errors, closing connection")
}

/// `421 4.7.0`: the peer's address already holds
/// `limits.max_connections_per_ip` connections; this one closes.
pub fn too_many_connections() -> Reply {
    Reply::fixed(
        421,
        [4, 7, 0],
        "Too many connections from your address, try again later",
    )
}

/// `421 4.4.2`: nothing arrived within `limits.idle_timeout`; the
/// connection closes.
pub fn idle_timeout() -> Reply {
    Reply::fixed(421, [4, 4, 2], "Idle timeout, closing connection")
}

/// `421 4.3.2`: the server is shutting down; sent between transactions,
/// never in the middle of one.
pub fn shutting_down() -> Reply {
    Reply::fixed(421, [4, 3, 2], "Service shutting down, try again later")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageRowId, TicketId};

    #[test]
    fn a_code_reads_as_its_digits_whether_listed_or_not() {
        for code in 100..1000u16 {
            assert_eq!(code_str(code), code.to_string());
        }
        assert!(matches!(code_str(250), Cow::Borrowed(_)));
        assert!(matches!(code_str(554), Cow::Borrowed(_)));
    }

    #[test]
    fn a_line_is_code_status_and_text_with_line_breaks_as_spaces() {
        let r = Reply {
            code: 451,
            status: Some([4, 3, 0]),
            text: Cow::Borrowed("try\r\nagain ünter"),
        };
        let mut out = Vec::new();
        r.write_to(&mut out);
        assert_eq!(out, "451 4.3.0 try  again ünter\r\n".as_bytes());
        assert_eq!(r.to_string(), "451 4.3.0 try  again ünter");
        let plain = Reply {
            code: 354,
            status: None,
            text: Cow::Borrowed("go ahead"),
        };
        assert_eq!(plain.to_string(), "354 go ahead");
        let wide = Reply {
            code: 550,
            status: Some([5, 7, 123]),
            text: Cow::Borrowed("x"),
        };
        assert_eq!(wide.to_string(), "550 5.7.123 x");
    }

    fn line(reply: &Reply) -> String {
        let mut out = Vec::new();
        reply.write_to(&mut out);
        String::from_utf8(out).expect("replies are ASCII")
    }

    fn accepted() -> Accepted {
        Accepted {
            message: MessageRowId(42),
            ticket: Some(TicketId(7)),
            duplicate: false,
        }
    }

    #[test]
    fn every_reply_has_its_code_and_enhanced_status() {
        let table: Vec<(Reply, &str)> = vec![
            (ok(), "250 2.0.0 "),
            (sender_ok(), "250 2.1.0 "),
            (recipient_ok(), "250 2.1.5 "),
            (queued(&accepted()), "250 2.0.0 "),
            (delivered(&accepted()), "250 2.1.5 "),
            (not_stored(), "451 4.3.0 "),
            (closing(), "221 2.0.0 "),
            (cannot_verify(), "252 2.1.5 "),
            (expn_disabled(), "502 5.5.1 "),
            (help(), "214 2.0.0 "),
            (tls_ready(), "220 2.0.0 "),
            (unknown_command(), "500 5.5.1 "),
            (use_lhlo(), "500 5.5.1 "),
            (not_implemented(), "502 5.5.1 "),
            (line_too_long(), "500 5.5.6 "),
            (syntax_error("EHLO domain"), "501 5.5.4 "),
            (invalid_parameter("SIZE"), "501 5.5.4 "),
            (unsupported_parameter(), "555 5.5.4 "),
            (malformed_command(), "500 5.5.2 "),
            (bad_sender_address(), "501 5.1.7 "),
            (bad_recipient_address(), "501 5.1.3 "),
            (hello_first(), "503 5.5.1 "),
            (sender_already_given(), "503 5.5.1 "),
            (mail_first(), "503 5.5.1 "),
            (no_valid_recipients(), "554 5.5.1 "),
            (tls_already_active(), "503 5.5.1 "),
            (relay_denied(), "550 5.7.1 "),
            (too_many_recipients(), "452 4.5.3 "),
            (too_large(), "552 5.3.4 "),
            (too_many_errors(), "421 4.7.0 "),
            (too_many_connections(), "421 4.7.0 "),
            (idle_timeout(), "421 4.4.2 "),
            (shutting_down(), "421 4.3.2 "),
        ];
        for (reply, prefix) in table {
            let text = line(&reply);
            assert!(
                text.starts_with(prefix),
                "{text:?} should start with {prefix:?}"
            );
            assert!(text.ends_with("\r\n"), "{text:?}");
            assert_eq!(text.matches("\r\n").count(), 1, "{text:?}");
            assert_eq!(reply.is_positive(), reply.code() < 400);
        }
    }

    #[test]
    fn parse_errors_map_to_their_replies_without_echoing_input() {
        use smtp_proto::Error;
        let table = [
            (Error::UnknownCommand, "500 5.5.1 "),
            (Error::InvalidSenderAddress, "501 5.1.7 "),
            (Error::InvalidRecipientAddress, "501 5.1.3 "),
            (
                Error::SyntaxError {
                    syntax: "EHLO domain",
                },
                "501 5.5.4 Syntax: EHLO domain",
            ),
            (
                Error::InvalidParameter { param: "SIZE" },
                "501 5.5.4 Invalid SIZE parameter",
            ),
            (
                Error::UnsupportedParameter {
                    param: "X-EVIL\r\n250 ok".to_owned(),
                },
                "555 5.5.4 ",
            ),
            (Error::ResponseTooLong, "500 5.5.6 "),
            (Error::NeedsMoreData { bytes_left: 3 }, "500 5.5.2 "),
        ];
        for (error, prefix) in table {
            let text = line(&parse_error(&error));
            assert!(text.starts_with(prefix), "{error:?}: {text:?}");
            assert!(!text.contains("EVIL"), "{text:?}");
        }
    }

    #[test]
    fn queued_names_the_stored_message_row() {
        assert_eq!(line(&queued(&accepted())), "250 2.0.0 Ok: queued as 42\r\n");
        assert_eq!(
            line(&delivered(&accepted())),
            "250 2.1.5 Ok: delivered as 42\r\n"
        );
    }

    #[test]
    fn greeting_and_go_ahead_carry_no_enhanced_status() {
        assert_eq!(
            line(&greeting("mx.example.org", false)),
            "220 mx.example.org ESMTP postdesk ready\r\n"
        );
        assert_eq!(
            line(&greeting("mx.example.org", true)),
            "220 mx.example.org LMTP postdesk ready\r\n"
        );
        assert_eq!(
            line(&start_data()),
            "354 End data with <CR><LF>.<CR><LF>\r\n"
        );
        assert_eq!(line(&helo("mx.example.org")), "250 mx.example.org\r\n");
    }

    #[test]
    fn line_breaks_in_text_cannot_start_a_second_reply() {
        let text = line(&greeting("evil\r\n250 injected", false));
        assert_eq!(text.matches("\r\n").count(), 1, "{text:?}");
    }

    #[test]
    fn ehlo_lists_the_fixed_extensions_and_size() {
        let offer = Offer {
            max_message_size: 1000,
            starttls: false,
        };
        let text = String::from_utf8(ehlo("mx.example.org", offer)).expect("ASCII");
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert!(lines[0].starts_with("250-mx.example.org"), "{text}");
        for ext in [
            "PIPELINING",
            "8BITMIME",
            "SIZE 1000",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
        ] {
            assert!(
                lines.iter().any(|l| l[4..] == *ext),
                "{ext} missing in {text}"
            );
        }
        assert!(!text.contains("STARTTLS"), "{text}");
        let last = lines.last().expect("at least one line");
        assert!(last.starts_with("250 "), "{text}");
        assert!(
            lines[..lines.len() - 1]
                .iter()
                .all(|l| l.starts_with("250-")),
            "{text}"
        );
    }

    #[test]
    fn ehlo_offers_starttls_only_when_asked() {
        let offer = Offer {
            max_message_size: 1000,
            starttls: true,
        };
        let text = String::from_utf8(ehlo("mx.example.org", offer)).expect("ASCII");
        assert!(text.contains("\r\n250-STARTTLS\r\n") || text.contains("\r\n250 STARTTLS\r\n"));
    }
}
