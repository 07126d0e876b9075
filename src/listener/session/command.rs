//! The command half of a session: assembling a command line and running
//! EHLO/HELO/LHLO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, EXPN, HELP,
//! STARTTLS and the refusals (BDAT, AUTH, ...).
//!
//! Each handler checks the command against the session state and queues
//! its reply (from [`super::reply`]); a refused command counts towards
//! `max_errors`. DATA and what follows it live in [`super::data`].

use smtp_proto::request::receiver::DummyDataReceiver;
use smtp_proto::{MAIL_BODY_BINARYMIME, MailFrom, RcptTo, Request};
use tracing::{debug, info};

use super::reply::{self, Offer};
use super::{Closed, Flow, Hello, Line, Phase, Protocol, Session, Transaction};
use crate::spool::Deliver;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF
/// included.
const MAX_COMMAND_LINE: usize = 512;

/// MAIL may carry the parameters we advertise on top of the 512 octets:
/// `SIZE=` (RFC 1870 §3 allows 26 more), `BODY=8BITMIME` and `SMTPUTF8`.
const MAX_MAIL_LINE: usize = MAX_COMMAND_LINE + 64;

impl<D: Deliver> Session<'_, D> {
    /// Move input into the command line buffer up to and including LF.
    pub(super) fn take_line(&mut self, bytes: &mut &[u8]) -> Line {
        let Some(pos) = bytes.iter().position(|&b| b == b'\n') else {
            if !self.line_overflow {
                if self.line.len() + bytes.len() > MAX_MAIL_LINE {
                    self.line_overflow = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(bytes);
                }
            }
            *bytes = &[];
            return Line::Incomplete;
        };
        let (head, rest) = bytes.split_at(pos + 1);
        *bytes = rest;
        if std::mem::take(&mut self.line_overflow) || self.line.len() + head.len() > MAX_MAIL_LINE {
            self.line.clear();
            return Line::TooLong;
        }
        self.line.extend_from_slice(head);
        let is_mail = self.line.len() >= 5 && self.line[..5].eq_ignore_ascii_case(b"MAIL ");
        if self.line.len() > MAX_COMMAND_LINE && !is_mail {
            self.line.clear();
            return Line::TooLong;
        }
        Line::Complete
    }

    /// Parse and run one complete command line.
    pub(super) fn command(&mut self, line: &[u8]) -> Flow {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request.into_owned(),
            Err(error) => {
                debug!(error = %error, "command refused");
                return self.reject(reply::parse_error(&error));
            }
        };
        debug!(command = request.name(), "command");
        match request {
            Request::Ehlo { host } => self.hello(host, Hello::Ehlo),
            Request::Helo { host } => self.hello(host, Hello::Helo),
            Request::Lhlo { host } => self.hello(host, Hello::Lhlo),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to, line),
            Request::Data => self.data(),
            Request::Rset => {
                self.transaction = None;
                self.reply(reply::ok())
            }
            Request::Noop { .. } => self.reply(reply::ok()),
            Request::Quit => {
                self.reply(reply::closing());
                Flow::Close(Closed::Quit)
            }
            Request::Vrfy { .. } => self.reply(reply::cannot_verify()),
            Request::Expn { .. } => self.reply(reply::expn_disabled()),
            Request::Help { .. } => self.reply(reply::help()),
            Request::StartTls => self.starttls(),
            Request::Bdat { chunk_size, .. } => {
                // CHUNKING is not offered. The chunk's octets follow the
                // command regardless; drop them so they are not read as
                // commands.
                self.phase = Phase::DiscardChunk(DummyDataReceiver::new_bdat(chunk_size));
                self.reject(reply::not_implemented())
            }
            Request::Auth { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.reject(reply::not_implemented()),
        }
    }

    fn hello(&mut self, host: String, kind: Hello) -> Flow {
        let is_lmtp = self.ctx.protocol == Protocol::Lmtp;
        match kind {
            // RFC 2033 §4.1: LMTP has only LHLO.
            Hello::Ehlo | Hello::Helo if is_lmtp => return self.reject(reply::use_lhlo()),
            Hello::Lhlo if !is_lmtp => return self.reject(reply::unknown_command()),
            _ => {}
        }
        // RFC 5321 §4.1.4: a hello also resets any transaction.
        self.transaction = None;
        self.helo = Some(host);
        let hostname = self.ctx.settings.hostname();
        if kind == Hello::Helo {
            return self.reply(reply::helo(hostname));
        }
        let offer = Offer {
            max_message_size: self.ctx.settings.limits().max_message_size,
            starttls: self.ctx.settings.tls().is_some() && !self.is_tls,
        };
        self.out.extend_from_slice(&reply::ehlo(hostname, offer));
        Flow::Continue
    }

    fn mail(&mut self, from: MailFrom<String>) -> Flow {
        if self.helo.is_none() {
            return self.reject(reply::hello_first());
        }
        if self.transaction.is_some() {
            return self.reject(reply::sender_already_given());
        }
        // A new transaction is the point where shutdown stops a session
        // whose earlier commands were already pipelined.
        if self.ctx.shutdown.is_cancelled() {
            self.reply(reply::shutting_down());
            return Flow::Close(Closed::ShuttingDown);
        }
        // RFC 1870: refuse early when the declared size is over the limit.
        if from.size > self.ctx.settings.limits().max_message_size {
            return self.reply(reply::too_large());
        }
        // BINARYMIME needs BDAT (RFC 3030), which is not offered.
        if from.flags & MAIL_BODY_BINARYMIME != 0 {
            return self.reject(reply::unsupported_parameter());
        }
        self.transaction = Some(Transaction {
            mail_from: from.address,
            rcpt_to: Vec::new(),
        });
        self.reply(reply::sender_ok())
    }

    /// `line` is the raw command: smtp-proto gives both `<>` and
    /// `<postmaster>` as an empty address, and only the line tells them
    /// apart.
    fn rcpt(&mut self, to: RcptTo<String>, line: &[u8]) -> Flow {
        let limits = self.ctx.settings.limits();
        let Some(transaction) = &self.transaction else {
            return self.reject(reply::mail_first());
        };
        if transaction.rcpt_to.len() >= limits.max_recipients {
            return self.reply(reply::too_many_recipients());
        }
        // RFC 5321 §4.5.1: `RCPT TO:<postmaster>` (any case, no domain)
        // MUST be accepted; it is postmaster at the first served domain.
        // `<>` is no forward-path at all (§4.1.1.3): a syntax error.
        let address = if to.address.is_empty() {
            match self.ctx.settings.first_served_domain() {
                Some(domain) if names_bare_postmaster(line) => format!("postmaster@{domain}"),
                _ => return self.reject(reply::bad_recipient_address()),
            }
        } else {
            to.address
        };
        let domain = address.rsplit_once('@').map_or("", |(_, domain)| domain);
        // Never an open relay: only domains postdesk serves.
        if !self.ctx.settings.serves_domain(domain) {
            info!(recipient = %address, "relaying denied");
            return self.reject(reply::relay_denied());
        }
        if let Some(transaction) = &mut self.transaction {
            transaction.rcpt_to.push(address);
        }
        self.reply(reply::recipient_ok())
    }

    fn starttls(&mut self) -> Flow {
        let Some(acceptor) = self.ctx.settings.tls() else {
            return self.reject(reply::not_implemented());
        };
        let acceptor = acceptor.clone();
        if self.is_tls {
            return self.reject(reply::tls_already_active());
        }
        self.reply(reply::tls_ready());
        Flow::StartTls(acceptor)
    }
}

/// Whether an RCPT line's path is the bare `<postmaster>` (any case,
/// spaces around it allowed), as opposed to `<>` or `< >`, which smtp-proto
/// also hands over as an empty address.
fn names_bare_postmaster(line: &[u8]) -> bool {
    let Some(open) = line.iter().position(|&b| b == b'<') else {
        return false;
    };
    let rest = &line[open + 1..];
    let Some(close) = rest.iter().position(|&b| b == b'>') else {
        return false;
    };
    rest[..close]
        .trim_ascii()
        .eq_ignore_ascii_case(b"postmaster")
}

#[cfg(test)]
mod tests {
    use super::super::harness::{Harness, MESSAGE};

    #[tokio::test]
    async fn ehlo_advertises_extensions_and_no_starttls_without_certificate() {
        let mut peer = Harness::smtp().start().greeted().await;
        let ehlo = peer.ehlo().await;
        for ext in [
            "PIPELINING",
            "8BITMIME",
            "SIZE 1000",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
        ] {
            assert!(ehlo.contains(ext), "{ext} missing: {ehlo}");
        }
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(!ehlo.contains("CHUNKING"), "{ehlo}");
    }

    #[tokio::test]
    async fn null_sender_is_accepted() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.send("MAIL FROM:<>\r\nRCPT TO:<support@example.org>\r\nDATA\r\n")
            .await;
        peer.expect("250 2.1.0 ").await;
        peer.expect("250 2.1.5 ").await;
        peer.expect("354 ").await;
        peer.send(format!("{MESSAGE}.\r\n")).await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages()[0].0.mail_from, "");
    }

    #[tokio::test]
    async fn rcpt_for_a_domain_not_served_is_relay_denied() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.send("MAIL FROM:<alice@customer.test>\r\n").await;
        peer.expect("250 ").await;
        for foreign in [
            "bob@elsewhere.test",
            "support@example.org.evil.test",
            "support@sub.example.org",
        ] {
            peer.send(format!("RCPT TO:<{foreign}>\r\n")).await;
            peer.expect("550 5.7.1 ").await;
        }
        // smtp-proto already refuses address literals as bad syntax.
        peer.send("RCPT TO:<x@[192.0.2.9]>\r\n").await;
        peer.expect("501 5.1.3 ").await;
        // Domain comparison ignores case.
        peer.send("RCPT TO:<Support@EXAMPLE.org>\r\n").await;
        peer.expect("250 2.1.5 ").await;
    }

    #[tokio::test]
    async fn rcpt_before_mail_is_503() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.send("RCPT TO:<support@example.org>\r\n").await;
        peer.expect("503 5.5.1 ").await;
    }

    #[tokio::test]
    async fn mail_before_hello_is_503() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.send("MAIL FROM:<alice@customer.test>\r\n").await;
        peer.expect("503 5.5.1 ").await;
    }

    #[tokio::test]
    async fn data_without_mail_is_503_and_without_recipients_554() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.send("DATA\r\n").await;
        peer.expect("503 5.5.1 ").await;
        peer.send("MAIL FROM:<alice@customer.test>\r\nDATA\r\n")
            .await;
        peer.expect("250 ").await;
        peer.expect("554 5.5.1 ").await;
    }

    #[tokio::test]
    async fn unknown_command_is_500_and_bad_syntax_501() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.send("FROB\r\n").await;
        peer.expect("500 5.5.1 ").await;
        peer.send("EHLO\r\n").await;
        peer.expect("501 5.5.4 ").await;
        peer.send("MAIL FROM:<not an address>\r\n").await;
        // Some refusal from the 5xx family, and the session is still up.
        let reply = peer.reply().await;
        assert!(reply.starts_with("50"), "{reply}");
        peer.send("NOOP\r\n").await;
        peer.expect("250 ").await;
    }

    #[tokio::test]
    async fn mail_size_over_the_limit_is_552() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.send("MAIL FROM:<alice@customer.test> SIZE=1001\r\n")
            .await;
        peer.expect("552 5.3.4 ").await;
        peer.send("MAIL FROM:<alice@customer.test> SIZE=1000 BODY=8BITMIME SMTPUTF8\r\n")
            .await;
        peer.expect("250 2.1.0 ").await;
    }

    #[tokio::test]
    async fn too_many_recipients_is_452() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.send("MAIL FROM:<alice@customer.test>\r\n").await;
        peer.expect("250 ").await;
        for n in 0..3 {
            peer.send(format!("RCPT TO:<r{n}@example.org>\r\n")).await;
            peer.expect("250 2.1.5 ").await;
        }
        peer.send("RCPT TO:<r4@example.org>\r\n").await;
        peer.expect("452 4.5.3 ").await;
    }

    #[tokio::test]
    async fn vrfy_is_politely_refused_with_252_and_expn_502() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.send("VRFY support\r\n").await;
        peer.expect("252 2.1.5 ").await;
        peer.send("EXPN staff\r\n").await;
        peer.expect("502 5.5.1 ").await;
        peer.send("HELP\r\n").await;
        peer.expect("214 ").await;
    }

    #[tokio::test]
    async fn command_line_over_512_octets_is_500_5_5_6_and_the_session_goes_on() {
        let mut peer = Harness::smtp().start().greeted().await;
        let long = format!("NOOP {}\r\n", "a".repeat(600));
        // Sent in two pieces so the limit is also enforced before the LF.
        let (first, second) = long.split_at(300);
        peer.send(first).await;
        peer.send(second).await;
        peer.expect("500 5.5.6 ").await;
        let huge = format!("NOOP {}\r\n", "a".repeat(40_000));
        peer.send(huge).await;
        peer.expect("500 5.5.6 ").await;
        peer.send("NOOP\r\n").await;
        peer.expect("250 ").await;
    }

    #[tokio::test]
    async fn lmtp_refuses_ehlo_and_helo_and_smtp_refuses_lhlo() {
        let mut peer = Harness::lmtp().start();
        peer.expect("220 ").await;
        peer.send("EHLO client.test\r\nHELO client.test\r\n").await;
        peer.expect("500 5.5.1 ").await;
        peer.expect("500 5.5.1 ").await;

        let mut peer = Harness::smtp().start().greeted().await;
        peer.send("LHLO client.test\r\n").await;
        peer.expect("500 5.5.1 ").await;
        peer.send("HELO client.test\r\n").await;
        assert_eq!(peer.reply().await, "250 mx.test\r\n");
    }

    #[tokio::test]
    async fn refused_bdat_chunk_is_not_run_as_commands() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.send("BDAT 12 LAST\r\nQUIT\r\nQUIT\r\nNOOP\r\n").await;
        peer.expect("502 5.5.1 ").await;
        peer.expect("250 ").await;
    }
}
