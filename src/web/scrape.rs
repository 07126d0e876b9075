//! `GET /metrics` on the web door: who may read it, and the exposition.
//!
//! The web door is public (contact form, customer pages), so `/metrics` is
//! not: what it shows (volumes, queue names, backlogs, reply codes) helps an
//! attacker time and aim, and each scrape runs counting queries on the
//! store. With `[http] metrics_token_env` or `metrics_token_file` set, a
//! request must carry `Authorization: Bearer <token>` (compared in constant
//! time, over SHA-256 digests so the length does not leak either); without
//! one, only loopback peers are answered, which suits a Prometheus on the
//! same host and nothing else. Behind a reverse proxy every peer is
//! loopback: set a token there (the README says so).

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{Shared, conn, error, read};

/// `GET /metrics`.
pub(super) async fn metrics(
    State(web): State<Shared>,
    ConnectInfo(conn::Peer(peer)): ConnectInfo<conn::Peer>,
    headers: HeaderMap,
) -> Response {
    let cfg = web.config();
    match &cfg.http.metrics_token {
        Some(token) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .unwrap_or("");
            let ok = super::api::same(
                &Sha256::digest(presented.as_bytes()),
                &Sha256::digest(&token.0),
            );
            if !ok {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    None,
                    "a valid metrics token is required",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        }
        None if !peer.ip().is_loopback() => {
            return error(
                StatusCode::FORBIDDEN,
                None,
                "/metrics answers loopback only; set [http] metrics_token_env to scrape from elsewhere",
            );
        }
        None => {}
    }
    let handle = crate::metrics::install();
    let gauges = match read(&web, |s| s.gauges()).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let body = crate::metrics::render(handle, &gauges);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
