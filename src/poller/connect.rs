//! Connect and log in: TCP, TLS (implicit or STARTTLS, rustls), the
//! greeting, LOGIN, and the server's capabilities.
//!
//! Receives an [`ImapAccount`]; returns a logged-in [`Session`] and whether
//! the server offers IDLE. Every step has the account's timeout, so a
//! server that accepts the connection and then says nothing costs one
//! timeout, not a stuck poller. The password is read from its source here,
//! at each connection, and never logged.

use std::fmt;
use std::io::BufReader;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::{Error, timed};
use crate::config::{ImapAccount, PasswordSource, TlsMode};

/// The connection under the IMAP session: plain or TLS.
pub enum Stream {
    /// No TLS (`tls = "none"`).
    Plain(TcpStream),
    /// TLS, implicit or after STARTTLS.
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A logged-in IMAP session.
pub type Session = async_imap::Session<Stream>;

/// The rustls client configuration for `ca_file`, or the platform's trust
/// store when there is none.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, Error> {
    // Idempotent: a provider installed earlier (the listener's) is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match ca_file {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| Error::CaFile {
                path: path.to_path_buf(),
                source,
            })?;
            let mut roots = RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
                let cert = cert.map_err(|source| Error::CaFile {
                    path: path.to_path_buf(),
                    source,
                })?;
                roots.add(cert).map_err(Error::Tls)?;
            }
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::ConfigVerifierExt;
            ClientConfig::with_platform_verifier().map_err(Error::Tls)?
        }
    };
    Ok(Arc::new(config))
}

async fn handshake(account: &ImapAccount, tcp: TcpStream) -> Result<Stream, Error> {
    let config = tls_config(account.ca_file.as_deref())?;
    let name = rustls::pki_types::ServerName::try_from(account.host.clone()).map_err(|_| {
        Error::Protocol(format!("`{}` is not a valid TLS server name", account.host))
    })?;
    let tls = timed(account.timeout, "tls handshake", async {
        TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(Error::Connect)
    })
    .await?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// Read the greeting: `* OK` goes on, `* BYE` (or `* NO`) is refused.
async fn greeting(
    client: &mut async_imap::Client<Stream>,
    account: &ImapAccount,
) -> Result<(), Error> {
    let greeting = timed(account.timeout, "greeting", async {
        client.read_response().await.map_err(Error::Connect)
    })
    .await?;
    match greeting {
        None => Err(Error::Protocol(
            "connection closed before the greeting".into(),
        )),
        Some(r) => {
            use async_imap::imap_proto::{Response, Status};
            match r.parsed() {
                Response::Data {
                    status: Status::Ok | Status::PreAuth,
                    ..
                } => Ok(()),
                other => Err(Error::Protocol(format!("refused at greeting: {other:?}"))),
            }
        }
    }
}

/// The password of `account`, from its environment variable or file.
pub fn password(account: &ImapAccount) -> Result<String, Error> {
    match &account.password {
        PasswordSource::Env(name) => std::env::var(name).map_err(|_| Error::Password {
            what: format!("environment variable {name} is not set"),
        }),
        PasswordSource::File(path) => crate::config::read_private_file(path)
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| format!("`{}` is not UTF-8", path.display()))
            })
            .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|what| Error::Password { what }),
    }
}

/// Connect, secure, greet and log in. Returns the session and whether the
/// server announced IDLE.
///
/// # Errors
///
/// [`Error::Connect`], [`Error::Tls`], [`Error::Timeout`] on the way in;
/// [`Error::Login`] when the server refuses the credentials.
pub async fn login(account: &ImapAccount) -> Result<(Session, bool), Error> {
    let password = password(account)?;
    let addr = (account.host.as_str(), account.port);
    let tcp = timed(account.timeout, "connect", async {
        TcpStream::connect(addr).await.map_err(Error::Connect)
    })
    .await?;
    let _ = tcp.set_nodelay(true);
    let mut client = match account.tls {
        TlsMode::Implicit => async_imap::Client::new(handshake(account, tcp).await?),
        TlsMode::None | TlsMode::Starttls => async_imap::Client::new(Stream::Plain(tcp)),
    };
    greeting(&mut client, account).await?;
    if account.tls == TlsMode::Starttls {
        timed(account.timeout, "starttls", async {
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(Error::Imap)
        })
        .await?;
        let Stream::Plain(tcp) = client.into_inner() else {
            return Err(Error::Protocol("STARTTLS on a TLS stream".into()));
        };
        client = async_imap::Client::new(handshake(account, tcp).await?);
    }
    let mut session = timed(account.timeout, "login", async {
        client
            .login(&account.user, &password)
            .await
            .map_err(|(e, _)| Error::Login(e))
    })
    .await?;
    let caps = timed(account.timeout, "capability", async {
        session.capabilities().await.map_err(Error::Imap)
    })
    .await?;
    Ok((session, caps.has_str("IDLE")))
}
