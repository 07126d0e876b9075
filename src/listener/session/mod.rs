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
//!
//! This module holds the loop (read, answer, flush, STARTTLS, shutdown);
//! `command.rs` assembles and runs command lines, `data.rs` reads the
//! message text and answers after `deliver`.

use std::net::SocketAddr;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::reply::{self, Reply};
use super::{Protocol, Settings};
use crate::spool::Deliver;

mod command;
mod data;
#[cfg(test)]
pub(crate) mod harness;

use data::ingest_discarding;

/// Bytes read from the peer at a time. Replies to one read are batched, so
/// this also bounds the reply buffer (an EHLO answer is ~25 times its
/// command).
const READ_CHUNK: usize = 16 * 1024;

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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, BufReader};

    use super::harness::{Harness, MESSAGE, Peer};
    use super::*;

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
}
