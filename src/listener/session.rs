//! One SMTP or LMTP session: the state machine over smtp-proto.
//!
//! Receives a byte stream (a TCP connection, or `tokio::io::duplex` in the
//! tests below) and a [`Context`]; returns how the session ended
//! ([`Closed`]) or the I/O [`Error`] that ended it. The caller logs that
//! one line.
//!
//! The promise: `250` after DATA (in LMTP, each per-recipient `250`) is
//! written only after [`Deliver::deliver`] returned `Ok`, which the spool
//! does only after the commit. When `deliver` fails the answer is
//! `451 4.3.0`, never `250`, and the sender keeps the message.
//!
//! smtp-proto parses each command line and undoes DATA dot-stuffing; the
//! loop around it is ours:
//! - PIPELINING (RFC 2920): every complete command in a read is answered
//!   in order; replies are written in one batch when the read is used up.
//! - Bounds: a command line is at most 512 octets (RFC 5321 §4.5.3.1.4; a
//!   little more for MAIL parameters), the DATA buffer at most
//!   `max_message_size + 2`. A message over the limit is read to its final
//!   dot and discarded, then answered `552 5.3.4`.
//! - Every read and write waits at most `idle_timeout` (`421 4.4.2`).
//! - After `max_errors` refused commands the session ends (`421 4.7.0`).
//! - STARTTLS (RFC 3207): plain text pipelined after the command is
//!   discarded, and the session starts over, EHLO included.
//! - Shutdown: between transactions the session answers `421 4.3.2`;
//!   inside one (after MAIL, or during DATA) it carries on until the
//!   transaction ends.
//!
//! The bytes handed to `deliver` are exactly the DATA text after
//! dot-unstuffing: no Received header is added, line endings, NULs and
//! 8-bit bytes are kept.

use std::net::SocketAddr;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use smtp_proto::{MAIL_BODY_BINARYMIME, MailFrom, RcptTo, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::reply::{self, Offer, Reply};
use super::{Protocol, Settings};
use crate::spool::{self, Deliver, Envelope};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF
/// included.
const MAX_COMMAND_LINE: usize = 512;

/// MAIL may carry the parameters we advertise on top of the 512 octets:
/// `SIZE=` (RFC 1870 §3 allows 26 more), `BODY=8BITMIME` and `SMTPUTF8`.
const MAX_MAIL_LINE: usize = MAX_COMMAND_LINE + 64;

/// Bytes read from the peer at a time. Replies to one read are batched, so
/// this also bounds the reply buffer (an EHLO answer is ~25 times its
/// command).
const READ_CHUNK: usize = 16 * 1024;

/// First allocation for a message; it grows on demand up to the cap.
const INITIAL_MESSAGE_CAPACITY: usize = 64 * 1024;

/// A reply buffer that grew past this is released after the flush.
const KEEP_REPLY_CAPACITY: usize = 64 * 1024;

/// Everything one session needs besides its stream.
pub struct Context<'a, D> {
    /// Host name, limits, served domains, STARTTLS acceptor.
    pub settings: &'a Settings,
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// Where accepted messages go (the spool in production).
    pub deliver: &'a D,
    /// The peer's address, recorded in the envelope.
    pub peer: Option<SocketAddr>,
    /// Cancelled when the server shuts down.
    pub shutdown: &'a CancellationToken,
}

/// How a session ended without an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The peer said QUIT.
    Quit,
    /// The peer closed the connection between transactions.
    PeerClosed,
    /// The peer closed the connection inside a transaction; nothing of it
    /// was acknowledged.
    Abandoned,
    /// Nothing arrived within `idle_timeout`.
    IdleTimeout,
    /// The peer reached `max_errors`.
    TooManyErrors,
    /// The server is shutting down.
    ShuttingDown,
}

impl Closed {
    /// The reason as logged (`quit`, `peer closed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Quit => "quit",
            Closed::PeerClosed => "peer closed",
            Closed::Abandoned => "peer closed inside a transaction",
            Closed::IdleTimeout => "idle timeout",
            Closed::TooManyErrors => "too many errors",
            Closed::ShuttingDown => "shutting down",
        }
    }
}

/// Why a session ended early: the connection itself failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading from the peer failed.
    #[error("reading from the peer")]
    Read(#[source] std::io::Error),
    /// Writing to the peer failed.
    #[error("writing to the peer")]
    Write(#[source] std::io::Error),
    /// The peer did not take our replies within `idle_timeout`.
    #[error("peer stopped reading replies")]
    WriteTimeout,
    /// The STARTTLS handshake failed.
    #[error("tls handshake")]
    Handshake(#[source] std::io::Error),
    /// The STARTTLS handshake did not finish within `idle_timeout`.
    #[error("tls handshake timed out")]
    HandshakeTimeout,
}

/// The stream a session runs over: plain, or TLS after STARTTLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Run one session over `stream` until QUIT, close, timeout, too many
/// errors or shutdown.
///
/// Sends the greeting first. After STARTTLS the same loop continues over
/// the TLS stream with the session state reset. `stream` is `'static`
/// because it is boxed to be swapped for its TLS wrapper (a `TcpStream` or
/// a `tokio::io::duplex` end both qualify).
///
/// # Errors
///
/// An [`Error`] when reading, writing or the TLS handshake fails. The
/// transaction in flight, if any, was not acknowledged; every `250` sent
/// before followed a successful `deliver`.
pub async fn run<S, D>(stream: S, ctx: Context<'_, D>) -> Result<Closed, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    D: Deliver,
{
    let mut session = Session::new(ctx);
    let mut chunk = vec![0u8; READ_CHUNK];
    session.reply(reply::greeting(
        session.ctx.settings.hostname(),
        session.ctx.protocol == Protocol::Lmtp,
    ));
    // Boxed so the loop runs over plain and TLS streams alike; STARTTLS
    // replaces the box at most once (the session refuses a second one).
    let mut stream: Box<dyn Io> = Box::new(stream);
    loop {
        match session.drive(&mut stream, &mut chunk).await? {
            Step::Closed(closed) => return Ok(closed),
            Step::StartTls(acceptor) => {
                // Bounded like a read: a peer that stalls mid-handshake must
                // not keep its connection slot.
                let idle = session.ctx.settings.limits().idle_timeout;
                let tls = match timeout(idle, acceptor.accept(stream)).await {
                    Err(_elapsed) => return Err(Error::HandshakeTimeout),
                    Ok(Err(error)) => return Err(Error::Handshake(error)),
                    Ok(Ok(tls)) => tls,
                };
                debug!(version = ?tls.get_ref().1.protocol_version(), "tls established");
                stream = Box::new(tls);
                session.restart_after_tls();
            }
        }
    }
}

/// What `drive` returns to `run`.
enum Step {
    Closed(Closed),
    StartTls(TlsAcceptor),
}

/// What one command (or one piece of DATA) leaves the session to do.
enum Flow {
    Continue,
    Close(Closed),
    StartTls(TlsAcceptor),
}

/// Which kind of hello a command was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hello {
    Ehlo,
    Helo,
    Lhlo,
}

/// A mail transaction between MAIL and the end of DATA.
struct Transaction {
    mail_from: String,
    /// Accepted recipients in RCPT order, duplicates included: LMTP owes
    /// one reply per accepted RCPT.
    rcpt_to: Vec<String>,
}

/// What the bytes arriving next are.
enum Phase {
    /// Command lines.
    Command,
    /// Message text up to `CRLF.CRLF`.
    Data {
        receiver: DataReceiver,
        message: Vec<u8>,
        transaction: Transaction,
    },
    /// Message text past the size limit: read to the final dot, dropped.
    DataTooLarge(DummyDataReceiver),
    /// A BDAT chunk we refused: its octets are dropped, not run as
    /// commands.
    DiscardChunk(DummyDataReceiver),
}

/// Progress of a DATA read over one piece of input.
#[derive(Debug, PartialEq, Eq)]
enum DataProgress {
    /// The input is used up; the final dot has not arrived.
    NeedMore,
    /// The final dot arrived; the message may still be one octet over.
    Complete,
    /// The message is over the limit and not finished.
    Overflow,
}

/// Where a command line stands after taking input.
enum Line {
    Incomplete,
    Complete,
    TooLong,
}

struct Session<'a, D> {
    ctx: Context<'a, D>,
    /// The name from the last EHLO/HELO/LHLO; MAIL requires one.
    helo: Option<String>,
    transaction: Option<Transaction>,
    phase: Phase,
    /// The command line being assembled (at most `MAX_MAIL_LINE` octets).
    line: Vec<u8>,
    /// The current line already went past the limit; drop input up to LF.
    line_overflow: bool,
    errors: u32,
    is_tls: bool,
    /// Replies not yet written.
    out: Vec<u8>,
}

impl<'a, D: Deliver> Session<'a, D> {
    fn new(ctx: Context<'a, D>) -> Self {
        Session {
            ctx,
            helo: None,
            transaction: None,
            phase: Phase::Command,
            line: Vec::with_capacity(128),
            line_overflow: false,
            errors: 0,
            is_tls: false,
            out: Vec::with_capacity(512),
        }
    }

    /// Read, answer, repeat, until the session ends or asks for TLS.
    async fn drive(&mut self, stream: &mut Box<dyn Io>, chunk: &mut [u8]) -> Result<Step, Error> {
        let shutdown = self.ctx.shutdown;
        let idle = self.ctx.settings.limits().idle_timeout;
        loop {
            // PIPELINING: the previous read is fully processed, so every
            // reply it earned goes out in one write before we wait again.
            self.flush(stream).await?;
            // Shutdown is only watched between transactions: a sender in
            // the middle of one gets to finish it (its 250 or 5xx is
            // flushed above before the next pass here). `read` is
            // cancel-safe, so losing the race to shutdown loses no input.
            let read = tokio::select! {
                biased;
                () = shutdown.cancelled(), if !self.is_in_transaction() => None,
                // Every read is bounded: a silent peer is told 421 and
                // dropped instead of holding a connection slot forever.
                read = timeout(idle, stream.read(chunk)) => Some(read),
            };
            let n = match read {
                None => {
                    self.reply(reply::shutting_down());
                    self.flush(stream).await?;
                    return Ok(Step::Closed(Closed::ShuttingDown));
                }
                Some(Err(_elapsed)) => {
                    self.reply(reply::idle_timeout());
                    self.flush(stream).await?;
                    return Ok(Step::Closed(Closed::IdleTimeout));
                }
                Some(Ok(Err(error))) => return Err(Error::Read(error)),
                Some(Ok(Ok(0))) => {
                    let closed = if self.is_in_transaction() {
                        Closed::Abandoned
                    } else {
                        Closed::PeerClosed
                    };
                    return Ok(Step::Closed(closed));
                }
                Some(Ok(Ok(n))) => n,
            };
            match self.ingest(&chunk[..n]).await {
                Flow::Continue => {}
                Flow::Close(closed) => {
                    self.flush(stream).await?;
                    return Ok(Step::Closed(closed));
                }
                Flow::StartTls(acceptor) => {
                    self.flush(stream).await?;
                    return Ok(Step::StartTls(acceptor));
                }
            }
        }
    }

    /// Write the queued replies, bounded by `idle_timeout`.
    async fn flush(&mut self, stream: &mut Box<dyn Io>) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let idle = self.ctx.settings.limits().idle_timeout;
        let out = &self.out;
        // A peer that stops reading would block write_all forever once the
        // socket buffer fills; the timeout frees the session instead.
        let written = timeout(idle, async {
            stream.write_all(out).await?;
            stream.flush().await
        })
        .await;
        match written {
            Err(_elapsed) => return Err(Error::WriteTimeout),
            Ok(Err(error)) => return Err(Error::Write(error)),
            Ok(Ok(())) => {}
        }
        if self.out.capacity() > KEEP_REPLY_CAPACITY {
            self.out = Vec::with_capacity(512);
        } else {
            self.out.clear();
        }
        Ok(())
    }

    /// Whether a transaction is open (MAIL given, or DATA under way).
    fn is_in_transaction(&self) -> bool {
        self.transaction.is_some() || !matches!(self.phase, Phase::Command)
    }

    /// RFC 3207 §4.2: forget everything learned before the handshake.
    fn restart_after_tls(&mut self) {
        self.is_tls = true;
        self.helo = None;
        self.transaction = None;
        self.phase = Phase::Command;
        self.line.clear();
        self.line_overflow = false;
    }

    /// Queue a reply.
    fn reply(&mut self, reply: Reply) -> Flow {
        debug!(code = reply.code(), "reply");
        reply.write_to(&mut self.out);
        Flow::Continue
    }

    /// Queue a reply to a refused command and count the error; at
    /// `max_errors` the session ends with `421 4.7.0`.
    fn reject(&mut self, reply: Reply) -> Flow {
        self.reply(reply);
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.ctx.settings.limits().max_errors {
            warn!(errors = self.errors, "too many errors");
            self.reply(reply::too_many_errors());
            return Flow::Close(Closed::TooManyErrors);
        }
        Flow::Continue
    }

    /// Process one read's worth of input.
    async fn ingest(&mut self, mut bytes: &[u8]) -> Flow {
        while !bytes.is_empty() {
            let flow = match &mut self.phase {
                Phase::Command => match self.take_line(&mut bytes) {
                    Line::Incomplete => Flow::Continue,
                    Line::TooLong => self.reject(reply::line_too_long()),
                    Line::Complete => {
                        let line = std::mem::take(&mut self.line);
                        let flow = self.command(&line);
                        self.line = line;
                        self.line.clear();
                        flow
                    }
                },
                Phase::Data { .. } => self.read_data(&mut bytes).await,
                Phase::DataTooLarge(receiver) => {
                    if ingest_discarding(receiver, &mut bytes) {
                        self.phase = Phase::Command;
                        info!(
                            limit = self.ctx.settings.limits().max_message_size,
                            "message too large, discarded"
                        );
                        self.reply(reply::too_large())
                    } else {
                        Flow::Continue
                    }
                }
                Phase::DiscardChunk(receiver) => {
                    if ingest_discarding(receiver, &mut bytes) {
                        self.phase = Phase::Command;
                    }
                    Flow::Continue
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::StartTls(acceptor) => {
                    // RFC 3207 §4 (and CVE-2011-0411): anything pipelined
                    // after STARTTLS arrived in plain text and must not be
                    // run as if it came over TLS.
                    if !bytes.is_empty() {
                        warn!(octets = bytes.len(), "plain text after starttls discarded");
                    }
                    return Flow::StartTls(acceptor);
                }
                Flow::Close(closed) => return Flow::Close(closed),
            }
        }
        Flow::Continue
    }

    /// Move input into the command line buffer up to and including LF.
    fn take_line(&mut self, bytes: &mut &[u8]) -> Line {
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
    fn command(&mut self, line: &[u8]) -> Flow {
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

    fn data(&mut self) -> Flow {
        let Some(transaction) = &self.transaction else {
            return self.reject(reply::mail_first());
        };
        if transaction.rcpt_to.is_empty() {
            return self.reject(reply::no_valid_recipients());
        }
        let Some(transaction) = self.transaction.take() else {
            return Flow::Continue;
        };
        let mut receiver = DataReceiver::new();
        // smtp-proto only sees a dot as special right after CRLF, and its
        // receiver starts with no previous line. The CRLF that ended the
        // DATA command is that line, so a first line of "." (empty
        // message) or ".." (stuffed) is read correctly. The scratch buffer
        // takes the two octets and is dropped.
        let mut scratch = Vec::with_capacity(2);
        receiver.ingest(&mut b"\r\n".iter(), &mut scratch);
        let max = self.ctx.settings.limits().max_message_size;
        self.phase = Phase::Data {
            receiver,
            message: Vec::with_capacity(max.saturating_add(2).min(INITIAL_MESSAGE_CAPACITY)),
            transaction,
        };
        self.reply(reply::start_data())
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

    /// Feed DATA input; at the final dot, deliver (or refuse) the message.
    async fn read_data(&mut self, bytes: &mut &[u8]) -> Flow {
        let max = self.ctx.settings.limits().max_message_size;
        let Phase::Data {
            mut receiver,
            mut message,
            transaction,
        } = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return Flow::Continue;
        };
        match feed_data(&mut receiver, &mut message, bytes, max) {
            DataProgress::NeedMore => {
                self.phase = Phase::Data {
                    receiver,
                    message,
                    transaction,
                };
                Flow::Continue
            }
            DataProgress::Overflow => {
                // Keep reading to the final dot so the rest of the message
                // is not taken for commands; the transaction is over.
                self.phase = Phase::DataTooLarge(DummyDataReceiver::new_data(&receiver));
                Flow::Continue
            }
            DataProgress::Complete if message.len() > max => {
                info!(limit = max, "message too large, discarded");
                self.reply(reply::too_large())
            }
            DataProgress::Complete => self.deliver(transaction, message).await,
        }
    }

    /// Hand a complete message to `deliver` and answer from its result.
    async fn deliver(&mut self, transaction: Transaction, message: Vec<u8>) -> Flow {
        let replies = transaction.rcpt_to.len();
        let mut rcpt_to: Vec<String> = Vec::with_capacity(replies);
        for address in transaction.rcpt_to {
            if !rcpt_to
                .iter()
                .any(|seen| seen.eq_ignore_ascii_case(&address))
            {
                rcpt_to.push(address);
            }
        }
        let envelope = Envelope {
            mail_from: transaction.mail_from,
            rcpt_to,
            source: self.ctx.protocol.source(),
            peer: self.ctx.peer,
            helo: self.helo.clone().unwrap_or_default(),
        };
        let size = message.len();
        let recipients = envelope.rcpt_to.len();
        // Not raced against shutdown or a timer: once the message is
        // handed over, the answer must reflect whether it was committed.
        let result = self.ctx.deliver.deliver(envelope, message).await;
        let per_recipient = self.ctx.protocol == Protocol::Lmtp;
        let count = if per_recipient { replies } else { 1 };
        match result {
            Ok(accepted) => {
                info!(
                    message_row = %accepted.message,
                    ticket = accepted.ticket.map(|t| t.0),
                    duplicate = accepted.duplicate,
                    size,
                    recipients,
                    "message accepted"
                );
                let reply = if per_recipient {
                    reply::delivered(&accepted)
                } else {
                    reply::queued(&accepted)
                };
                for _ in 0..count {
                    self.reply(reply.clone());
                }
            }
            Err(failure) => {
                log_delivery_failure(&failure);
                for _ in 0..count {
                    self.reply(reply::not_stored());
                }
            }
        }
        Flow::Continue
    }
}

/// The one place a failed delivery is logged (the session answers 451).
fn log_delivery_failure(failure: &spool::Error) {
    let source = failure as &dyn std::error::Error;
    match failure {
        spool::Error::ShuttingDown => {
            warn!(error = source, "message not stored, spool shutting down")
        }
        spool::Error::Store(_) => error!(error = source, "message not stored"),
    }
}

/// Feed `bytes` to the DATA receiver, keeping `message` at most `max + 2`
/// octets long, and advance `bytes` past what was used.
///
/// The receiver pushes the CR of a final `.CRLF` before it sees the LF
/// and pops it again, so a message can stand one octet over `max` for a
/// moment; only a second octet over means it is really too large.
fn feed_data(
    receiver: &mut DataReceiver,
    message: &mut Vec<u8>,
    bytes: &mut &[u8],
    max: usize,
) -> DataProgress {
    let cap = max.saturating_add(2);
    loop {
        if bytes.is_empty() {
            return DataProgress::NeedMore;
        }
        // At most `max + 1` octets are held here, so `room` is at least 1,
        // and dot-unstuffing only ever shrinks input, so feeding `room`
        // octets cannot push the message past `cap`.
        let room = cap.saturating_sub(message.len()).max(1);
        let take = room.min(bytes.len());
        reserve_capped(message, take, cap);
        let mut input = bytes[..take].iter();
        let is_done = receiver.ingest(&mut input, message);
        let used = take - input.as_slice().len();
        *bytes = &bytes[used..];
        if is_done {
            return DataProgress::Complete;
        }
        if message.len() > max.saturating_add(1) {
            return DataProgress::Overflow;
        }
    }
}

/// Grow `buf` for `additional` more octets, doubling as Vec does but never
/// past `cap`, so an over-sized message cannot allocate twice the limit.
fn reserve_capped(buf: &mut Vec<u8>, additional: usize, cap: usize) {
    let needed = buf.len().saturating_add(additional);
    if needed <= buf.capacity() {
        return;
    }
    let target = buf.capacity().saturating_mul(2).min(cap).max(needed);
    buf.reserve_exact(target - buf.len());
}

/// Drop input until `receiver` finds its end; true once it has.
fn ingest_discarding(receiver: &mut DummyDataReceiver, bytes: &mut &[u8]) -> bool {
    let mut input = bytes.iter();
    let is_done = receiver.ingest(&mut input);
    *bytes = input.as_slice();
    is_done
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
pub(crate) mod tests {
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream, ReadHalf, WriteHalf};
    use tokio::sync::Semaphore;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::config::{Addresses, Config, Domains, Limits, Priority, Senders, Server, Tickets};
    use crate::domain::{Accepted, Source};
    use crate::domain::{MessageRowId, TicketId};

    /// A Deliver that records what it was given. With `fail`, it answers
    /// `ShuttingDown`; with `gate`, it waits for a permit before answering.
    #[derive(Default)]
    pub(crate) struct FakeDeliver {
        pub(crate) delivered: Mutex<Vec<(Envelope, Vec<u8>)>>,
        pub(crate) fail: bool,
        pub(crate) gate: Option<Arc<Semaphore>>,
    }

    impl FakeDeliver {
        fn messages(&self) -> Vec<(Envelope, Vec<u8>)> {
            self.delivered.lock().expect("not poisoned").clone()
        }
    }

    impl Deliver for FakeDeliver {
        async fn deliver(
            &self,
            envelope: Envelope,
            raw: Vec<u8>,
        ) -> Result<Accepted, spool::Error> {
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            if self.fail {
                return Err(spool::Error::ShuttingDown);
            }
            let mut delivered = self.delivered.lock().expect("not poisoned");
            delivered.push((envelope, raw));
            Ok(Accepted {
                message: MessageRowId(100 + delivered.len() as i64),
                ticket: Some(TicketId(1)),
                duplicate: false,
            })
        }
    }

    /// A config serving `example.org`, max 1000-octet messages, 3
    /// recipients, 5 errors, 60 s idle.
    pub(crate) fn test_config() -> Config {
        Config {
            dir: PathBuf::from("."),
            server: Server {
                smtp: None,
                lmtp: None,
                data_dir: PathBuf::from("."),
                hostname: "mx.test".to_owned(),
                tls: None,
            },
            domains: Domains {
                served: vec!["example.org".to_owned()],
                internal: Vec::new(),
            },
            addresses: Addresses {
                support: Vec::new(),
                sales: Vec::new(),
                info: Vec::new(),
            },
            senders: Senders {
                blocked: Vec::new(),
                blocked_patterns: Vec::new(),
                system_keywords: Vec::new(),
                system_matcher: Senders::matcher(&[]).expect("an empty automaton builds"),
            },
            tickets: Tickets {
                tag_pattern: crate::config::tag_pattern("#{n}").expect("a valid tag pattern"),
                number_format: "#{n}".to_owned(),
                number_start: 1000,
                subject_max: 80,
                default_priority: Priority::Medium,
                default_issue_type: "Question".to_owned(),
            },
            limits: Limits {
                max_message_size: 1000,
                max_recipients: 3,
                max_connections: 10,
                max_connections_per_ip: 5,
                max_errors: 5,
                idle_timeout: Duration::from_secs(60),
            },
            threading: crate::config::Threading::default(),
            agents: Vec::new(),
            clients: Vec::new(),
            outbound: crate::outbound::Settings::default(),
            monitoring: crate::config::Monitoring::default(),
            detector: crate::detect::DetectorConfig::default(),
            detector_engine: std::sync::Arc::new(
                crate::detect::Detector::new(&crate::detect::DetectorConfig::default())
                    .expect("the default detector builds"),
            ),
        }
    }

    struct Harness {
        protocol: Protocol,
        config: Config,
        tls: Option<TlsAcceptor>,
        deliver: FakeDeliver,
        shutdown: CancellationToken,
    }

    impl Harness {
        fn smtp() -> Harness {
            Harness {
                protocol: Protocol::Smtp,
                config: test_config(),
                tls: None,
                deliver: FakeDeliver::default(),
                shutdown: CancellationToken::new(),
            }
        }

        fn lmtp() -> Harness {
            Harness {
                protocol: Protocol::Lmtp,
                ..Harness::smtp()
            }
        }

        fn start(self) -> Peer {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let settings = Arc::new(Settings::new(Arc::new(self.config), self.tls));
            let deliver = Arc::new(self.deliver);
            let shutdown = self.shutdown;
            let protocol = self.protocol;
            let task = {
                let deliver = Arc::clone(&deliver);
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let ctx = Context {
                        settings: &settings,
                        protocol,
                        deliver: &*deliver,
                        peer: Some(SocketAddr::from(([192, 0, 2, 1], 40000))),
                        shutdown: &shutdown,
                    };
                    run(server, ctx).await
                })
            };
            let (read, write) = tokio::io::split(client);
            Peer {
                read: BufReader::new(read),
                write,
                deliver,
                shutdown,
                task,
            }
        }
    }

    struct Peer {
        read: BufReader<ReadHalf<DuplexStream>>,
        write: WriteHalf<DuplexStream>,
        deliver: Arc<FakeDeliver>,
        shutdown: CancellationToken,
        task: JoinHandle<Result<Closed, Error>>,
    }

    impl Peer {
        async fn send(&mut self, bytes: impl AsRef<[u8]>) {
            self.write
                .write_all(bytes.as_ref())
                .await
                .expect("session reads");
        }

        /// One whole reply (all lines of a multi-line one), CRLFs kept.
        async fn reply(&mut self) -> String {
            let mut reply = String::new();
            loop {
                let mut line = String::new();
                let n = timeout(Duration::from_secs(5), self.read.read_line(&mut line))
                    .await
                    .expect("reply within 5s")
                    .expect("read");
                assert!(n > 0, "connection closed; got so far: {reply:?}");
                reply.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return reply;
                }
            }
        }

        async fn expect(&mut self, prefix: &str) -> String {
            let reply = self.reply().await;
            assert!(
                reply.starts_with(prefix),
                "expected {prefix:?}, got {reply:?}"
            );
            reply
        }

        async fn is_closed(&mut self) -> bool {
            let mut line = String::new();
            let n = timeout(Duration::from_secs(5), self.read.read_line(&mut line))
                .await
                .expect("close within 5s")
                .expect("read");
            n == 0
        }

        async fn greeted(mut self) -> Peer {
            self.expect("220 mx.test ").await;
            self
        }

        async fn ehlo(&mut self) -> String {
            self.send("EHLO client.test\r\n").await;
            self.expect("250-mx.test").await
        }

        async fn finished(self) -> Result<Closed, Error> {
            self.task.await.expect("session task did not panic")
        }
    }

    const MESSAGE: &str = "Subject: hi\r\n\r\nhello\r\n";

    async fn transaction(peer: &mut Peer, body: &str) {
        peer.send("MAIL FROM:<alice@customer.test>\r\n").await;
        peer.expect("250 2.1.0 ").await;
        peer.send("RCPT TO:<support@example.org>\r\n").await;
        peer.expect("250 2.1.5 ").await;
        peer.send("DATA\r\n").await;
        peer.expect("354 ").await;
        peer.send(format!("{body}.\r\n")).await;
    }

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
    async fn full_transaction_is_answered_250_only_after_deliver_returns() {
        let gate = Arc::new(Semaphore::new(0));
        let mut harness = Harness::smtp();
        harness.deliver.gate = Some(Arc::clone(&gate));
        let mut peer = harness.start().greeted().await;
        peer.ehlo().await;
        transaction(&mut peer, MESSAGE).await;

        // deliver has not returned: no reply may arrive.
        let mut line = String::new();
        let early = timeout(Duration::from_millis(200), peer.read.read_line(&mut line)).await;
        assert!(early.is_err(), "reply before deliver returned: {line:?}");

        gate.add_permits(1);
        let reply = peer.expect("250 2.0.0 ").await;
        assert_eq!(reply, "250 2.0.0 Ok: queued as 101\r\n");
        let delivered = peer.deliver.messages();
        assert_eq!(delivered.len(), 1);
        let (envelope, raw) = &delivered[0];
        assert_eq!(
            raw,
            MESSAGE.as_bytes(),
            "stored exactly as sent, no Received added"
        );
        assert_eq!(envelope.mail_from, "alice@customer.test");
        assert_eq!(envelope.rcpt_to, vec!["support@example.org".to_owned()]);
        assert_eq!(envelope.source, Source::Smtp);
        assert_eq!(envelope.helo, "client.test");
        assert_eq!(
            envelope.peer,
            Some(SocketAddr::from(([192, 0, 2, 1], 40000)))
        );

        peer.send("QUIT\r\n").await;
        peer.expect("221 2.0.0 ").await;
        assert!(peer.is_closed().await);
        assert_eq!(peer.finished().await.expect("clean end"), Closed::Quit);
    }

    #[tokio::test]
    async fn deliver_error_is_answered_451_and_never_250() {
        let mut harness = Harness::smtp();
        harness.deliver.fail = true;
        let mut peer = harness.start().greeted().await;
        peer.ehlo().await;
        transaction(&mut peer, MESSAGE).await;
        assert_eq!(peer.reply().await, reply::not_stored().to_string() + "\r\n");
        // The session goes on; the sender may retry later.
        peer.send("NOOP\r\n").await;
        peer.expect("250 2.0.0 ").await;
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
    async fn pipelined_commands_are_answered_in_order() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.send(
            "MAIL FROM:<alice@customer.test>\r\n\
             RCPT TO:<support@example.org>\r\n\
             RCPT TO:<nobody@elsewhere.test>\r\n\
             RCPT TO:<sales@example.org>\r\n\
             DATA\r\n",
        )
        .await;
        peer.expect("250 2.1.0 ").await;
        peer.expect("250 2.1.5 ").await;
        peer.expect("550 5.7.1 ").await;
        peer.expect("250 2.1.5 ").await;
        peer.expect("354 ").await;
        // The message, QUIT and all in one write.
        peer.send(format!("{MESSAGE}.\r\nQUIT\r\n")).await;
        peer.expect("250 2.0.0 ").await;
        peer.expect("221 ").await;
        let delivered = peer.deliver.messages();
        assert_eq!(
            delivered[0].0.rcpt_to,
            vec!["support@example.org", "sales@example.org"]
        );
    }

    #[tokio::test]
    async fn oversize_data_is_552_and_the_session_stays_usable() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        let big = "x".repeat(78) + "\r\n";
        transaction(&mut peer, &big.repeat(100)).await;
        peer.expect("552 5.3.4 ").await;
        assert!(peer.deliver.messages().is_empty());

        peer.send("RSET\r\n").await;
        peer.expect("250 ").await;
        transaction(&mut peer, MESSAGE).await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages().len(), 1);
    }

    #[tokio::test]
    async fn message_of_exactly_the_limit_is_accepted_and_one_more_octet_is_not() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        let exact = "y".repeat(998) + "\r\n";
        transaction(&mut peer, &exact).await;
        peer.expect("250 2.0.0 ").await;
        let over = "y".repeat(999) + "\r\n";
        transaction(&mut peer, &over).await;
        peer.expect("552 5.3.4 ").await;
        assert_eq!(peer.deliver.messages()[0].1.len(), 1000);
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
    async fn too_many_errors_is_421_and_closes() {
        let mut peer = Harness::smtp().start().greeted().await;
        for _ in 0..5 {
            peer.send("FROB\r\n").await;
            peer.expect("500 5.5.1 ").await;
        }
        peer.expect("421 4.7.0 ").await;
        assert!(peer.is_closed().await);
        assert_eq!(
            peer.finished().await.expect("clean end"),
            Closed::TooManyErrors
        );
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
    async fn lmtp_answers_once_per_recipient_and_stores_once() {
        let mut peer = Harness::lmtp().start();
        peer.expect("220 mx.test LMTP").await;
        peer.send("LHLO client.test\r\n").await;
        let lhlo = peer.expect("250-mx.test").await;
        assert!(lhlo.contains("PIPELINING") && lhlo.contains("ENHANCEDSTATUSCODES"));
        peer.send("MAIL FROM:<alice@customer.test>\r\n").await;
        peer.expect("250 ").await;
        peer.send("RCPT TO:<support@example.org>\r\nRCPT TO:<sales@example.org>\r\n")
            .await;
        peer.expect("250 2.1.5 ").await;
        peer.expect("250 2.1.5 ").await;
        peer.send("DATA\r\n").await;
        peer.expect("354 ").await;
        peer.send(format!("{MESSAGE}.\r\n")).await;
        peer.expect("250 2.1.5 ").await;
        peer.expect("250 2.1.5 ").await;
        peer.send("NOOP\r\n").await;
        peer.expect("250 2.0.0 ").await;
        let delivered = peer.deliver.messages();
        assert_eq!(delivered.len(), 1, "one store per transaction");
        assert_eq!(delivered[0].0.source, Source::Lmtp);
        assert_eq!(delivered[0].0.rcpt_to.len(), 2);
    }

    #[tokio::test]
    async fn lmtp_failure_is_451_for_each_recipient() {
        let mut harness = Harness::lmtp();
        harness.deliver.fail = true;
        let mut peer = harness.start();
        peer.expect("220 ").await;
        peer.send("LHLO client.test\r\nMAIL FROM:<a@customer.test>\r\n")
            .await;
        peer.expect("250-").await;
        peer.expect("250 ").await;
        peer.send("RCPT TO:<support@example.org>\r\nRCPT TO:<sales@example.org>\r\nDATA\r\n")
            .await;
        peer.expect("250 ").await;
        peer.expect("250 ").await;
        peer.expect("354 ").await;
        peer.send(format!("{MESSAGE}.\r\n")).await;
        peer.expect("451 4.3.0 ").await;
        peer.expect("451 4.3.0 ").await;
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
    async fn dot_stuffing_is_undone() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        transaction(&mut peer, "..first line\r\nmiddle\r\n..\r\n...last\r\n").await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(
            peer.deliver.messages()[0].1,
            b".first line\r\nmiddle\r\n.\r\n..last\r\n"
        );
    }

    #[tokio::test]
    async fn nul_bytes_binary_noise_and_long_lines_are_delivered_as_is() {
        let mut harness = Harness::smtp();
        harness.config.limits.max_message_size = 10_000;
        let mut peer = harness.start().greeted().await;
        peer.ehlo().await;
        let mut body: Vec<u8> = b"Subject: bin\r\n\r\n".to_vec();
        body.extend_from_slice(&[0, 1, 2, 0xff, 0xfe, b'\r', 0, b'\n', 0x80, b'.']);
        body.extend_from_slice(b"\r\n");
        body.extend(std::iter::repeat_n(b'z', 3000));
        body.extend_from_slice(b"\r\nbare\nlf\r\n");
        peer.send("MAIL FROM:<a@customer.test>\r\nRCPT TO:<support@example.org>\r\nDATA\r\n")
            .await;
        peer.expect("250 ").await;
        peer.expect("250 ").await;
        peer.expect("354 ").await;
        peer.send(&body).await;
        peer.send(".\r\n").await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages()[0].1, body);
    }

    #[tokio::test]
    async fn data_arriving_one_octet_at_a_time_is_assembled() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.send("EHLO client.test\r\nMAIL FROM:<a@customer.test>\r\nRCPT TO:<support@example.org>\r\nDATA\r\n").await;
        peer.expect("250-").await;
        peer.expect("250 ").await;
        peer.expect("250 ").await;
        peer.expect("354 ").await;
        for byte in format!("{MESSAGE}.\r\n").bytes() {
            peer.send([byte]).await;
            tokio::task::yield_now().await;
        }
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages()[0].1, MESSAGE.as_bytes());
    }

    #[tokio::test]
    async fn empty_message_ends_at_the_first_dot() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        transaction(&mut peer, "").await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages()[0].1, b"");
    }

    #[tokio::test]
    async fn refused_bdat_chunk_is_not_run_as_commands() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.send("BDAT 12 LAST\r\nQUIT\r\nQUIT\r\nNOOP\r\n").await;
        peer.expect("502 5.5.1 ").await;
        peer.expect("250 ").await;
    }

    #[tokio::test]
    async fn idle_session_times_out_with_421() {
        let mut harness = Harness::smtp();
        // Real time, kept short: `tokio::time::pause` needs tokio's
        // `test-util` feature, which the crate does not enable. The test
        // waits for the server's own timer, it never sleeps.
        harness.config.limits.idle_timeout = Duration::from_millis(100);
        let mut peer = harness.start().greeted().await;
        peer.send("EHLO client.test\r\n").await;
        peer.expect("250-").await;
        peer.expect("421 4.4.2 ").await;
        assert!(peer.is_closed().await);
        assert_eq!(
            peer.finished().await.expect("clean end"),
            Closed::IdleTimeout
        );
    }

    #[tokio::test]
    async fn shutdown_between_transactions_is_421_4_3_2() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.shutdown.cancel();
        peer.expect("421 4.3.2 ").await;
        assert!(peer.is_closed().await);
        assert_eq!(
            peer.finished().await.expect("clean end"),
            Closed::ShuttingDown
        );
    }

    #[tokio::test]
    async fn shutdown_inside_a_transaction_lets_it_finish() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.send("MAIL FROM:<alice@customer.test>\r\nRCPT TO:<support@example.org>\r\n")
            .await;
        peer.expect("250 ").await;
        peer.expect("250 ").await;
        peer.shutdown.cancel();
        peer.send("DATA\r\n").await;
        peer.expect("354 ").await;
        peer.send(format!("{MESSAGE}.\r\n")).await;
        peer.expect("250 2.0.0 ").await;
        peer.expect("421 4.3.2 ").await;
        assert!(peer.is_closed().await);
        assert_eq!(peer.deliver.messages().len(), 1);
    }

    #[tokio::test]
    async fn shutdown_refuses_a_pipelined_new_transaction() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        peer.shutdown.cancel();
        peer.send("MAIL FROM:<alice@customer.test>\r\n").await;
        peer.expect("421 4.3.2 ").await;
    }

    fn tls_harness() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, super::super::tls::fixture::CERT).expect("write");
        std::fs::write(&key, super::super::tls::fixture::KEY).expect("write");
        let acceptor = super::super::tls::load_acceptor(&crate::config::TlsFiles { cert, key })
            .expect("fixture loads");
        Harness {
            tls: Some(acceptor),
            ..Harness::smtp()
        }
    }

    #[tokio::test]
    async fn starttls_upgrades_and_requires_a_new_ehlo() {
        use tokio_rustls::TlsConnector;
        use tokio_rustls::rustls::pki_types::ServerName;
        use tokio_rustls::rustls::{ClientConfig, RootCertStore};

        let mut peer = tls_harness().start().greeted().await;
        let ehlo = peer.ehlo().await;
        assert!(ehlo.contains("STARTTLS"), "{ehlo}");
        // NOOP pipelined after STARTTLS is plain text and must be dropped.
        peer.send("STARTTLS\r\nNOOP\r\n").await;
        peer.expect("220 2.0.0 ").await;

        let Peer { read, write, .. } = peer;
        let plain = read.into_inner().unsplit(write);
        let mut roots = RootCertStore::empty();
        let cert = rustls_pemfile::certs(&mut super::super::tls::fixture::CERT.as_bytes())
            .next()
            .expect("one cert")
            .expect("pem");
        roots.add(cert).expect("root");
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("name");
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, plain)
            .await
            .expect("handshake");
        let (read, mut write) = tokio::io::split(tls);
        let mut read = BufReader::new(read);
        async fn line<R: AsyncBufReadExt + Unpin>(read: &mut R) -> String {
            let mut line = String::new();
            timeout(Duration::from_secs(5), read.read_line(&mut line))
                .await
                .expect("reply within 5s")
                .expect("read");
            line
        }

        // State was reset: MAIL needs a new EHLO, and the dropped NOOP
        // earned no reply (the first line here answers MAIL).
        write
            .write_all(b"MAIL FROM:<a@customer.test>\r\n")
            .await
            .expect("write");
        assert!(line(&mut read).await.starts_with("503 5.5.1 "));
        write
            .write_all(b"EHLO client.test\r\n")
            .await
            .expect("write");
        let mut ehlo = String::new();
        loop {
            let l = line(&mut read).await;
            ehlo.push_str(&l);
            if l.as_bytes().get(3) == Some(&b' ') {
                break;
            }
        }
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        write.write_all(b"STARTTLS\r\n").await.expect("write");
        assert!(line(&mut read).await.starts_with("503 5.5.1 "));
    }

    #[test]
    fn feed_data_never_holds_more_than_the_limit_plus_two() {
        let max = 100;
        let mut receiver = DataReceiver::new();
        receiver.ingest(&mut b"\r\n".iter(), &mut Vec::new());
        let mut message = Vec::new();
        let input = vec![b'a'; 10_000];
        let mut bytes = input.as_slice();
        assert_eq!(
            feed_data(&mut receiver, &mut message, &mut bytes, max),
            DataProgress::Overflow
        );
        assert!(
            message.len() <= max + 2 && message.capacity() <= max + 2,
            "{}",
            message.capacity()
        );
        assert!(
            !bytes.is_empty(),
            "the rest is left for the discarding receiver"
        );
    }

    #[test]
    fn final_dot_split_at_the_limit_is_not_an_overflow() {
        // 98 octets + CRLF = 100 = max; the CR of ".\r\n" briefly makes 101.
        let max = 100;
        let mut receiver = DataReceiver::new();
        receiver.ingest(&mut b"\r\n".iter(), &mut Vec::new());
        let mut message = Vec::new();
        let mut text = vec![b'b'; 98];
        text.extend_from_slice(b"\r\n.\r");
        let mut bytes = text.as_slice();
        assert_eq!(
            feed_data(&mut receiver, &mut message, &mut bytes, max),
            DataProgress::NeedMore
        );
        let mut bytes: &[u8] = b"\n";
        assert_eq!(
            feed_data(&mut receiver, &mut message, &mut bytes, max),
            DataProgress::Complete
        );
        assert_eq!(message.len(), max);
    }
}
