//! Smarthost: hands one mail to the configured SMTP relay with mail-send,
//! or, with no relay configured, writes it into a Maildir under the data
//! directory (`<data>/outbound/{tmp,new,cur}`), where a newcomer sees every
//! mail postdesk would send.
//!
//! Errors carry [`SendError::is_transient`]: a 4xx reply (smtp-proto's
//! `Severity::TransientNegativeCompletion`) and network trouble are retried,
//! a 5xx reply is permanent. Nothing here matches on error text.
//!
//! Connections are reused (at most one idle connection per in-flight slot,
//! dropped after [`IDLE_FOR`]), since a new TCP+TLS+AUTH handshake per mail
//! would cap the delivery rate. A reused connection the relay closed in the
//! meantime fails at `MAIL FROM`, before any of the mail was sent, so that
//! one case is retried at once on a fresh connection.
//!
//! The Maildir write is idempotent: the file name is made from the outbox
//! row id, so a second attempt for the same row (after a crash between
//! the write and the mark) replaces the file instead of adding one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mail_send::smtp::message::Parameters;
use mail_send::{Credentials, SmtpClient, SmtpClientBuilder};
use smtp_proto::Severity;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::settings::{Smarthost, Tls};
use crate::config::PasswordSource;

/// How long an idle connection is kept for the next mail.
pub const IDLE_FOR: Duration = Duration::from_secs(20);

/// The SMTP stage a reply answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Connecting, greeting, EHLO, STARTTLS, AUTH.
    Connect,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// `DATA` and the end of data.
    Data,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
        })
    }
}

/// Why one mail was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The relay refused with this reply.
    #[error("{stage}: {code} {}.{}.{} {message}", esc[0], esc[1], esc[2])]
    Rejected {
        /// Where in the transaction.
        stage: Stage,
        /// The reply code.
        code: u16,
        /// The enhanced status code (RFC 3463), zeros when absent.
        esc: [u8; 3],
        /// The reply text.
        message: String,
    },
    /// Network trouble.
    #[error("{stage}: connection to the smarthost failed")]
    Io {
        /// Where in the transaction.
        stage: Stage,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A command or the connection took longer than `timeout_secs`.
    #[error("{stage}: smarthost timed out")]
    Timeout {
        /// Where in the transaction.
        stage: Stage,
    },
    /// TLS could not be set up.
    #[error("TLS with the smarthost failed: {0}")]
    Tls(String),
    /// The relay spoke something that is not SMTP, or lacks what we need
    /// (STARTTLS, an AUTH mechanism).
    #[error("{stage}: smarthost protocol error: {detail}")]
    Protocol {
        /// Where in the transaction.
        stage: Stage,
        /// What was wrong.
        detail: String,
    },
    /// The relay refused our credentials: a configuration problem, retried
    /// so that mail waits while an admin fixes it.
    #[error("smarthost authentication failed: {code} {message}")]
    Auth {
        /// The reply code.
        code: u16,
        /// The reply text.
        message: String,
    },
    /// The SMTP password could not be read.
    #[error("smarthost password: {0}")]
    Password(String),
    /// The Maildir could not be written.
    #[error("writing {path}")]
    Maildir {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// DKIM signing failed.
    #[error("DKIM signing failed")]
    Dkim(#[source] super::dkim::Error),
}

impl SendError {
    /// Whether a later attempt may succeed: 4xx replies (by smtp-proto's
    /// severity), I/O errors of kinds that network trouble produces,
    /// timeouts, TLS and configuration problems (an admin may fix them while
    /// the mail waits). Only a 5xx reply proves the mail undeliverable.
    pub fn is_transient(&self) -> bool {
        match self {
            SendError::Rejected { code, .. } => !matches!(
                response(*code).severity(),
                Severity::PermanentNegativeCompletion
            ),
            SendError::Io { source, .. } => io_is_transient(source.kind()),
            SendError::Timeout { .. }
            | SendError::Tls(_)
            | SendError::Protocol { .. }
            | SendError::Auth { .. }
            | SendError::Password(_)
            | SendError::Maildir { .. } => true,
            // The key was checked at load; a message it cannot sign will
            // not sign later either.
            SendError::Dkim(_) => false,
        }
    }

    /// Whether the failure is about the recipient's address (a permanent
    /// `RCPT TO` refusal, or an enhanced status 5.1.x / 5.2.x anywhere), so
    /// further mail to it is suppressed.
    pub fn is_recipient_failure(&self) -> bool {
        match self {
            SendError::Rejected { stage, esc, .. } if !self.is_transient() => {
                *stage == Stage::Rcpt || (esc[0] == 5 && matches!(esc[1], 1 | 2))
            }
            _ => false,
        }
    }

    /// The enhanced status code as text (`5.1.1`), or the reply class
    /// (`5.0.0`) when the relay gave none; empty for non-SMTP failures.
    pub fn status_code(&self) -> String {
        match self {
            SendError::Rejected { code, esc, .. } => {
                if esc[0] == 0 {
                    format!("{}.0.0", code / 100)
                } else {
                    format!("{}.{}.{}", esc[0], esc[1], esc[2])
                }
            }
            _ => String::new(),
        }
    }
}

/// A response with only the code, for its severity.
fn response(code: u16) -> smtp_proto::Response<String> {
    smtp_proto::Response {
        code,
        esc: [0, 0, 0],
        message: String::new(),
    }
}

/// I/O kinds that say nothing about the mail itself: every one is retried.
/// Only kinds that mean "this local request is malformed" (which retrying
/// cannot change) are not.
fn io_is_transient(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    !matches!(kind, K::InvalidInput | K::Unsupported)
}

/// Convert mail-send's error at `stage`.
fn classify(stage: Stage, e: mail_send::Error) -> SendError {
    use mail_send::Error as E;
    match e {
        E::Io(source) => SendError::Io { stage, source },
        E::Tls(t) => SendError::Tls(t.to_string()),
        E::UnexpectedReply(r) => SendError::Rejected {
            stage,
            code: r.code,
            esc: r.esc,
            message: r.message,
        },
        E::AuthenticationFailed(r) => SendError::Auth {
            code: r.code,
            message: r.message,
        },
        E::Timeout => SendError::Timeout { stage },
        other => SendError::Protocol {
            stage,
            detail: other.to_string(),
        },
    }
}

/// One mail for one recipient.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The outbox row, for the Maildir file name.
    pub outbox_id: i64,
    /// Envelope sender; empty is the null reverse-path.
    pub mail_from: &'a str,
    /// The recipient.
    pub rcpt_to: &'a str,
    /// The bytes (CRLF line ends), signed if DKIM is on.
    pub raw: &'a [u8],
}

enum Conn {
    Plain(SmtpClient<TcpStream>),
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

impl Conn {
    async fn transaction(&mut self, env: &Envelope<'_>) -> Result<(), SendError> {
        match self {
            Conn::Plain(c) => transaction(c, env).await,
            Conn::Tls(c) => transaction(c.as_mut(), env).await,
        }
    }
}

async fn transaction<T>(client: &mut SmtpClient<T>, env: &Envelope<'_>) -> Result<(), SendError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let none = Parameters::default();
    client
        .mail_from(env.mail_from, &none)
        .await
        .map_err(|e| classify(Stage::Mail, e))?;
    client
        .rcpt_to(env.rcpt_to, &none)
        .await
        .map_err(|e| classify(Stage::Rcpt, e))?;
    // mail-send ends the data with CRLF "." CRLF itself; a final CRLF of
    // the message would become an extra empty line.
    let body = env.raw.strip_suffix(b"\r\n").unwrap_or(env.raw);
    let reply = client
        .data(body)
        .await
        .map_err(|e| classify(Stage::Data, e))?;
    match reply.severity() {
        Severity::PositiveCompletion => Ok(()),
        _ => Err(SendError::Rejected {
            stage: Stage::Data,
            code: reply.code,
            esc: reply.esc,
            message: reply.message,
        }),
    }
}

/// The SMTP relay with its idle connections.
pub struct Smtp {
    host: Smarthost,
    timeout: Duration,
    helo: String,
    max_idle: usize,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

impl Smtp {
    /// A relay client; `max_idle` connections are kept between mails.
    pub fn new(host: Smarthost, timeout: Duration, helo: String, max_idle: usize) -> Smtp {
        Smtp {
            host,
            timeout,
            helo,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_FOR {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: Conn) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let mut builder = SmtpClientBuilder::new(self.host.host.clone(), self.host.port)
            .map_err(SendError::Tls)?
            .timeout(self.timeout)
            .helo_host(self.helo.clone())
            .implicit_tls(self.host.tls == Tls::Implicit);
        if let (Some(user), Some(source)) = (&self.host.user, &self.host.password) {
            let secret = read_password(source)?;
            builder = builder.credentials(Credentials::Plain {
                username: user.clone(),
                secret,
            });
        }
        // TCP_NODELAY: mail-send writes the message and its final "." in
        // two writes; with Nagle's algorithm the second waits for the
        // relay's delayed ACK (40 ms on Linux), which capped delivery at
        // about 25 mails/s per connection.
        match self.host.tls {
            Tls::None => {
                let client = builder
                    .connect_plain()
                    .await
                    .map_err(|e| classify(Stage::Connect, e))?;
                let _ = client.stream.set_nodelay(true);
                Ok(Conn::Plain(client))
            }
            Tls::Implicit | Tls::StartTls => {
                let client = builder
                    .connect()
                    .await
                    .map_err(|e| classify(Stage::Connect, e))?;
                let _ = client.stream.get_ref().0.set_nodelay(true);
                Ok(Conn::Tls(Box::new(client)))
            }
        }
    }

    /// Send one mail.
    ///
    /// # Errors
    ///
    /// [`SendError`], classified for retry.
    pub async fn send(&self, env: &Envelope<'_>) -> Result<(), SendError> {
        if let Some(mut conn) = self.take_idle() {
            match conn.transaction(env).await {
                Ok(()) => {
                    self.put_idle(conn);
                    return Ok(());
                }
                // The relay closed the idle connection: nothing of this mail
                // was sent yet, so a fresh connection may try at once.
                Err(
                    SendError::Io {
                        stage: Stage::Mail, ..
                    }
                    | SendError::Timeout { stage: Stage::Mail }
                    | SendError::Protocol {
                        stage: Stage::Mail, ..
                    }
                    | SendError::Rejected {
                        stage: Stage::Mail,
                        code: 421,
                        ..
                    },
                ) => {}
                Err(e) => return Err(e),
            }
        }
        let mut conn = self.connect().await?;
        conn.transaction(env).await?;
        self.put_idle(conn);
        Ok(())
    }
}

fn read_password(source: &PasswordSource) -> Result<String, SendError> {
    match source {
        PasswordSource::Env(name) => std::env::var(name)
            .map_err(|_| SendError::Password(format!("environment variable {name} is not set"))),
        PasswordSource::File(path) => crate::config::read_private_file(path)
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| format!("`{}` is not UTF-8", path.display()))
            })
            .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(SendError::Password),
    }
}

/// The folder fallback: one `.eml` file per outbox row in a Maildir.
pub struct Maildir {
    root: PathBuf,
}

impl Maildir {
    /// The Maildir at `root` (`<data>/outbound`); created on first write.
    pub fn new(root: PathBuf) -> Maildir {
        Maildir { root }
    }

    /// The Maildir's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Write one mail: `tmp/NAME`, fsync, rename to `new/NAME`, fsync the
    /// directory. `Return-Path` and `Delivered-To` are prepended, as a
    /// delivering MTA would, so the envelope is not lost. Blocking: call it
    /// off the async runtime.
    ///
    /// # Errors
    ///
    /// [`SendError::Maildir`].
    pub fn write(&self, env: &Envelope<'_>) -> Result<PathBuf, SendError> {
        use std::io::Write;
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SendError::Maildir { path, source }
        };
        let tmp_dir = self.root.join("tmp");
        let new_dir = self.root.join("new");
        // Outbound mail is customers' mail: owner-only, like the store.
        use std::os::unix::fs::DirBuilderExt;
        for d in [&tmp_dir, &new_dir, &self.root.join("cur")] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(err(d))?;
        }
        let name = format!("{:012}.postdesk.eml", env.outbox_id);
        let tmp = tmp_dir.join(&name);
        let dst = new_dir.join(&name);
        let mut f = crate::config::create_private(&tmp, true).map_err(err(&tmp))?;
        let head = format!(
            "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
            env.mail_from, env.rcpt_to
        );
        f.write_all(head.as_bytes()).map_err(err(&tmp))?;
        f.write_all(env.raw).map_err(err(&tmp))?;
        f.sync_all().map_err(err(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &dst).map_err(err(&dst))?;
        if let Ok(dir) = std::fs::File::open(&new_dir) {
            dir.sync_all().map_err(err(&new_dir))?;
        }
        Ok(dst)
    }
}

/// Where mail goes: the relay or the Maildir.
pub enum Transport {
    /// An SMTP relay.
    Smtp(Smtp),
    /// The folder fallback.
    Maildir(Maildir),
}

impl Transport {
    /// The transport `settings` ask for; `data_dir` holds the Maildir.
    pub fn from_settings(settings: &super::Settings, hostname: &str, data_dir: &Path) -> Transport {
        match &settings.smarthost {
            Some(host) => Transport::Smtp(Smtp::new(
                host.clone(),
                settings.timeout,
                hostname.to_owned(),
                settings.max_in_flight,
            )),
            None => Transport::Maildir(Maildir::new(data_dir.join("outbound"))),
        }
    }

    /// Deliver one mail.
    ///
    /// # Errors
    ///
    /// [`SendError`], classified for retry.
    pub async fn send(&self, env: &Envelope<'_>) -> Result<(), SendError> {
        match self {
            Transport::Smtp(s) => s.send(env).await,
            Transport::Maildir(m) => {
                let root = m.root.clone();
                let (id, from, to, raw) = (
                    env.outbox_id,
                    env.mail_from.to_owned(),
                    env.rcpt_to.to_owned(),
                    env.raw.to_vec(),
                );
                tokio::task::spawn_blocking(move || {
                    Maildir::new(root)
                        .write(&Envelope {
                            outbox_id: id,
                            mail_from: &from,
                            rcpt_to: &to,
                            raw: &raw,
                        })
                        .map(|_| ())
                })
                .await
                .map_err(|e| SendError::Maildir {
                    path: m.root.clone(),
                    source: std::io::Error::other(e),
                })?
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    fn rejected(stage: Stage, code: u16, esc: [u8; 3]) -> SendError {
        SendError::Rejected {
            stage,
            code,
            esc,
            message: "no".into(),
        }
    }

    #[test]
    fn replies_are_classified_by_severity_not_text() {
        // (error, transient, recipient failure, status code)
        let rows = [
            (rejected(Stage::Rcpt, 450, [4, 2, 1]), true, false, "4.2.1"),
            (rejected(Stage::Data, 451, [0, 0, 0]), true, false, "4.0.0"),
            (rejected(Stage::Rcpt, 550, [5, 1, 1]), false, true, "5.1.1"),
            (rejected(Stage::Rcpt, 554, [0, 0, 0]), false, true, "5.0.0"),
            (rejected(Stage::Data, 552, [5, 2, 2]), false, true, "5.2.2"),
            (rejected(Stage::Data, 554, [5, 7, 1]), false, false, "5.7.1"),
            (rejected(Stage::Mail, 553, [5, 7, 1]), false, false, "5.7.1"),
        ];
        for (e, transient, recipient, code) in rows {
            assert_eq!(e.is_transient(), transient, "{e}");
            assert_eq!(e.is_recipient_failure(), recipient, "{e}");
            assert_eq!(e.status_code(), code, "{e}");
        }
    }

    #[test]
    fn network_trouble_is_transient() {
        use std::io::ErrorKind as K;
        for kind in [
            K::ConnectionRefused,
            K::ConnectionReset,
            K::TimedOut,
            K::BrokenPipe,
        ] {
            let e = SendError::Io {
                stage: Stage::Connect,
                source: std::io::Error::from(kind),
            };
            assert!(e.is_transient(), "{kind:?}");
            assert!(!e.is_recipient_failure());
        }
        assert!(SendError::Timeout { stage: Stage::Data }.is_transient());
        assert!(
            SendError::Auth {
                code: 535,
                message: "bad credentials".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn maildir_write_is_atomic_and_idempotent_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let m = Maildir::new(dir.path().join("outbound"));
        let env = Envelope {
            outbox_id: 7,
            mail_from: "support@example.com",
            rcpt_to: "alice@customer.test",
            raw: b"Subject: hi\r\n\r\nbody\r\n",
        };
        let path = m.write(&env).unwrap();
        m.write(&env).unwrap();
        let new: Vec<_> = std::fs::read_dir(dir.path().join("outbound/new"))
            .unwrap()
            .collect();
        assert_eq!(new.len(), 1);
        assert!(
            std::fs::read_dir(dir.path().join("outbound/tmp"))
                .unwrap()
                .next()
                .is_none()
        );
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with(
            "Return-Path: <support@example.com>\r\nDelivered-To: alice@customer.test\r\n"
        ));
        assert!(text.ends_with("body\r\n"));
    }
}
