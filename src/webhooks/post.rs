//! One webhook delivery on the wire: the body (`json` or `slack`), its
//! signature, and the POST (hyper's HTTP/1.1 connection over TCP or
//! tokio-rustls with the platform verifier), with a connect and a total
//! timeout.
//!
//! Receives a claimed [`Delivery`] and the configuration; returns the
//! HTTP status or a [`PostError`] that says whether trying again may help.
//! One request per connection: deliveries are few and spread out, so a
//! pool would only hold sockets open.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use crate::config::webhooks::{Format, Secret};
use crate::domain::Time;
use crate::outbound::Config;
use crate::store::Delivery;

/// How long opening the connection (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a whole delivery may take, connection included.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a POST did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The URL cannot be used.
    #[error("bad url: {0}")]
    Url(String),
    /// No connection (refused, unreachable, DNS).
    #[error("connecting to {host}")]
    Connect {
        /// Host and port.
        host: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS with {host}")]
    Tls {
        /// Host.
        host: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The connection or the whole request took too long.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The HTTP exchange broke off.
    #[error("HTTP")]
    Http(#[from] hyper::Error),
    /// The receiver answered with a status that is not 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
}

impl PostError {
    /// Whether a later attempt may succeed: network errors, timeouts, 5xx,
    /// 408 and 429. Any other answer (4xx, a redirect) is the receiver's
    /// final word, as is a URL that cannot be used.
    pub fn is_transient(&self) -> bool {
        match self {
            PostError::Url(_) => false,
            PostError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            PostError::Connect { .. }
            | PostError::Tls { .. }
            | PostError::Timeout(_)
            | PostError::Http(_) => true,
        }
    }

    /// A short label for metrics: `status_4xx`, `timeout`, ...
    pub fn class(&self) -> &'static str {
        match self {
            PostError::Url(_) => "url",
            PostError::Connect { .. } => "connect",
            PostError::Tls { .. } => "tls",
            PostError::Timeout(_) => "timeout",
            PostError::Http(_) => "http",
            PostError::Status(s) if *s >= 500 => "status_5xx",
            PostError::Status(s) if *s >= 400 => "status_4xx",
            PostError::Status(_) => "status_other",
        }
    }
}

/// The ticket link a delivery carries: the read API's URL of the ticket.
fn ticket_url(cfg: &Config, number: i64) -> String {
    format!("{}/api/v1/tickets/{number}", cfg.http.public_url)
}

/// The body of `d` in `format`.
pub fn body(cfg: &Config, d: &Delivery, format: Format) -> Vec<u8> {
    let t = &d.data;
    let opened = Time::from_secs(t.created_at);
    let number = cfg.tickets.format_number(t.number, &t.queue, opened);
    let url = ticket_url(cfg, t.number);
    let value = match format {
        Format::Json => serde_json::json!({
            "id": d.event_id,
            "event": d.event,
            "timestamp": jiff::Timestamp::from_second(d.created_at)
                .map(|ts| ts.to_string())
                .unwrap_or_default(),
            "data": {
                "ticket_number": number,
                "subject": t.subject,
                "priority": t.priority,
                "status": t.status,
                "queue": t.queue,
                "assignee": t.assignee,
                "requester": t.requester,
                "url": url,
                "kind": t.kind,
                "cause": t.cause,
                "detail": t.detail,
            },
        }),
        Format::Slack => {
            // Slack's mrkdwn: &, < and > are the three characters to escape.
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            };
            let tag = cfg.tickets.format_tag(t.number, &t.queue, opened);
            let what = match d.event.as_str() {
                "ticket.created" => "New ticket",
                "ticket.sla.breached" => "SLA breached",
                "ticket.resolved" => "Resolved",
                "ticket.closed" => "Closed",
                "ticket.assigned" => "Assigned",
                "ticket.comment.added" => "New comment",
                _ => "Updated",
            };
            serde_json::json!({
                "text": format!(
                    "{what}: <{}|{} {}> (priority {}, status {}, queue {})",
                    url,
                    esc(&tag),
                    esc(&t.subject),
                    esc(&t.priority),
                    esc(&t.status),
                    esc(&t.queue)
                ),
            })
        }
    };
    value.to_string().into_bytes()
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &Secret, t: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&secret.0)
        .expect("HMAC accepts keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The TLS client configuration for https URLs: the platform's roots.
///
/// # Errors
///
/// When the platform verifier cannot be built.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cfg = rustls::ClientConfig::with_platform_verifier()?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// POST `body` to `url` with `headers`; the 2xx status, or why not.
///
/// # Errors
///
/// [`PostError`], each with [`PostError::is_transient`].
pub async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<u16, PostError> {
    tokio::time::timeout(TOTAL_TIMEOUT, exchange(url, headers, body, tls))
        .await
        .unwrap_or(Err(PostError::Timeout(TOTAL_TIMEOUT)))
}

async fn exchange(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<u16, PostError> {
    let uri: hyper::Uri = url.parse().map_err(|e| PostError::Url(format!("{e}")))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(PostError::Url("the scheme is not http or https".into())),
    };
    let host = uri
        .host()
        .ok_or_else(|| PostError::Url("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map_or_else(|| host.clone(), |a| a.as_str().to_owned());
    let path = uri
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str)
        .to_owned();

    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| PostError::Timeout(CONNECT_TIMEOUT))?
        .map_err(|source| PostError::Connect {
            host: format!("{host}:{port}"),
            source,
        })?;
    let mut request = Request::post(path).header(hyper::header::HOST, authority);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| PostError::Url(format!("{e}")))?;
    if https {
        let Some(cfg) = tls else {
            return Err(PostError::Tls {
                host,
                source: std::io::Error::other("no TLS configuration"),
            });
        };
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| PostError::Url(format!("{e}")))?;
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| PostError::Timeout(CONNECT_TIMEOUT))?
        .map_err(|source| PostError::Tls { host, source })?;
        send(TokioIo::new(stream), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Result<u16, PostError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    // The connection task ends with the exchange (or the total timeout,
    // which drops it with the caller's future).
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await;
    driver.abort();
    let status = response?.status().as_u16();
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(PostError::Status(status))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' |
        // openssl dgst -sha256 -hmac s3cret
        let sig = signature(&Secret(b"s3cret".to_vec()), 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[test]
    fn client_errors_are_final_but_timeouts_and_throttling_are_not() {
        assert!(!PostError::Status(404).is_transient());
        assert!(!PostError::Status(301).is_transient());
        assert!(PostError::Status(408).is_transient());
        assert!(PostError::Status(429).is_transient());
        assert!(PostError::Status(503).is_transient());
        assert!(PostError::Timeout(TOTAL_TIMEOUT).is_transient());
    }
}
