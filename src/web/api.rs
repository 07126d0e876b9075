//! The API behind a key: the read API (`GET /api/v1/tickets`, `GET
//! /api/v1/tickets/<number>`, scope `read`) and monitor alerts (`POST
//! /api/v1/alerts`, scope `alerts`).
//!
//! A key is `pdk_` and 64 hex digits (256 random bits), shown once by
//! `postdesk apikey new`; the store keeps its SHA-256 only. A request's key
//! is hashed, looked up by its hash, and the stored hash compared with the
//! presented one in constant time. No key or an unknown or revoked one:
//! `401`; a key of the other scope: `403`. The listings are the very JSON
//! `postdesk tickets --json` and `show --json` print ([`crate::report`]).

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::message::{self, Alert};
use super::{Shared, conn, error, json, read, read_body};
use crate::domain::{Priority, Time};
use crate::store::{TicketFilter, TicketRef};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The read API.
    Read,
    /// Posting monitor alerts.
    Alerts,
}

impl Scope {
    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "read" => Some(Scope::Read),
            "alerts" => Some(Scope::Alerts),
            _ => None,
        }
    }

    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Alerts => "alerts",
        }
    }
}

/// A new key: `pdk_` and 64 hex digits from the system's random source.
///
/// # Errors
///
/// When the random source cannot be read.
pub fn new_key() -> std::io::Result<String> {
    Ok(format!("pdk_{}", crate::token::Secret::generate_hex()?))
}

/// The hash of `key` the store keeps (SHA-256, hex).
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether `a` and `b` are equal, in time that depends on their length
/// only.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key's check: `Ok` when the request carries a key in force of
/// `scope`, else the `401` or `403` to answer.
async fn authorise(web: &Shared, headers: &HeaderMap, scope: Scope) -> Result<(), Response> {
    let unauthorised = || {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            None,
            "a valid API key is required",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    let Some(key) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
    else {
        return Err(unauthorised());
    };
    let hash = key_hash(key);
    let lookup = hash.clone();
    let found = read(web, move |s| s.api_key_by_hash(&lookup, Time::now())).await?;
    let Some(found) = found.filter(|f| same(f.key_hash.as_bytes(), hash.as_bytes())) else {
        return Err(unauthorised());
    };
    if found.scope != scope.as_str() {
        return Err(error(
            StatusCode::FORBIDDEN,
            None,
            &format!("this API key's scope is not {}", scope.as_str()),
        ));
    }
    Ok(())
}

/// The query of `GET /api/v1/tickets`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    queue: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

/// Most tickets on one page.
pub const MAX_PER_PAGE: i64 = 200;

/// `GET /api/v1/tickets?status=&queue=&page=&per_page=`.
pub(super) async fn list_tickets(
    State(web): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = authorise(&web, &headers, Scope::Read).await {
        return r;
    }
    let Ok(Query(q)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            "page and per_page must be whole numbers",
        );
    };
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(50);
    if page < 1 {
        return error(StatusCode::BAD_REQUEST, Some("page"), "page starts at 1");
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return error(
            StatusCode::BAD_REQUEST,
            Some("per_page"),
            &format!("per_page must be between 1 and {MAX_PER_PAGE}"),
        );
    }
    let filter = TicketFilter {
        status: q.status.filter(|s| !s.is_empty()),
        queue: q.queue.filter(|s| !s.is_empty()),
        tag: None,
    };
    let offset = (page - 1).saturating_mul(per_page);
    // One more than the page, to know whether there is a next one.
    let rows = match read(&web, move |s| {
        s.list_tickets_page(&filter, offset, per_page + 1)
    })
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let cfg = web.config();
    let more = rows.len() as i64 > per_page;
    let items: Vec<serde_json::Value> = rows
        .iter()
        .take(per_page as usize)
        .map(|t| crate::report::ticket_json(&cfg, t))
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({ "items": items, "next_page": more.then_some(page + 1) }),
    )
}

/// `GET /api/v1/tickets/<number>` (`1042`; `#1042` URL-encoded works too).
pub(super) async fn show_ticket(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> Response {
    if let Err(r) = authorise(&web, &headers, Scope::Read).await {
        return r;
    }
    let digits = number.trim_start_matches('#');
    let Ok(n) = digits.parse::<i64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            Some("number"),
            "a ticket number is digits, such as 1042",
        );
    };
    match read(&web, move |s| s.ticket(TicketRef::Number(n))).await {
        Ok(Some(d)) => json(
            StatusCode::OK,
            crate::report::detail_json(&web.config(), &d),
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, None, "no such ticket"),
        Err(r) => r,
    }
}

/// Check an alert's JSON.
///
/// # Errors
///
/// The field that is missing or wrong, and why.
pub fn alert_from_json(v: &serde_json::Value) -> Result<Alert, (&'static str, String)> {
    let obj = v
        .as_object()
        .ok_or(("body", "the body must be a JSON object".to_owned()))?;
    let text =
        |k: &'static str, required: bool, max: usize| -> Result<String, (&'static str, String)> {
            match obj.get(k) {
                None | Some(serde_json::Value::Null) if !required => Ok(String::new()),
                Some(serde_json::Value::String(s)) if !(required && s.trim().is_empty()) => {
                    if s.chars().count() > max {
                        Err((k, format!("{k} is longer than {max} characters")))
                    } else {
                        Ok(s.clone())
                    }
                }
                None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => {
                    Err((k, format!("{k} is required")))
                }
                Some(_) => Err((k, format!("{k} must be a string"))),
            }
        };
    let title = text("title", true, 300)?;
    let source = text("source", true, 100)?;
    let body = text("body", false, 1_000_000)?;
    let dedupe_key = Some(text("dedupe_key", false, 200)?).filter(|k| !k.is_empty());
    let severity = match text("severity", false, 20)?.as_str() {
        "" => Priority::High,
        s => parse_severity(s).ok_or((
            "severity",
            "severity must be low, medium, high or urgent".to_owned(),
        ))?,
    };
    let resolved = match obj.get("resolved") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return Err(("resolved", "resolved must be true or false".to_owned())),
    };
    Ok(Alert {
        title,
        source,
        severity,
        body,
        dedupe_key,
        resolved,
    })
}

/// `low`, `medium`, `high`, `urgent` (any case).
pub fn parse_severity(s: &str) -> Option<Priority> {
    match s.to_ascii_lowercase().as_str() {
        "low" => Some(Priority::Low),
        "medium" => Some(Priority::Medium),
        "high" => Some(Priority::High),
        "urgent" => Some(Priority::Urgent),
        _ => None,
    }
}

/// `POST /api/v1/alerts`.
pub(super) async fn post_alert(
    State(web): State<Shared>,
    ConnectInfo(conn::Peer(peer)): ConnectInfo<conn::Peer>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(r) = authorise(&web, &parts.headers, Scope::Alerts).await {
        return r;
    }
    let cfg = web.config();
    let bytes = match read_body(&parts.headers, body, cfg.limits.max_message_size).await {
        Ok(b) => b,
        Err(e) => return e.response(),
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return error(StatusCode::BAD_REQUEST, None, "the body is not valid JSON");
    };
    let alert = match alert_from_json(&v) {
        Ok(a) => a,
        Err((field, why)) => return error(StatusCode::BAD_REQUEST, Some(field), &why),
    };
    let (env, raw) = match message::alert(&cfg, &alert, Some(peer)) {
        Ok(v) => v,
        Err(e) => return super::internal(&e),
    };
    match super::intake::accept(&web, env, raw).await {
        Ok((number, id)) => {
            tracing::info!(ticket = %number, resolved = alert.resolved, "alert accepted");
            json(
                StatusCode::CREATED,
                serde_json::json!({ "number": number, "id": id }),
            )
        }
        Err(r) => r,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_stored_as_hashes() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert!(a.starts_with("pdk_") && a.len() == 68, "{a}");
        assert_ne!(a, b);
        assert_eq!(key_hash(&a).len(), 64);
        assert_ne!(key_hash(&a), key_hash(&b));
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }

    #[test]
    fn an_alert_names_its_wrong_field() {
        let ok = alert_from_json(&serde_json::json!({"title": "disk full", "source": "nagios"}))
            .unwrap();
        assert_eq!(
            (ok.severity, ok.resolved, ok.dedupe_key),
            (Priority::High, false, None)
        );
        for (v, field) in [
            (serde_json::json!({"source": "x"}), "title"),
            (serde_json::json!({"title": "t"}), "source"),
            (
                serde_json::json!({"title": "t", "source": "s", "severity": "huge"}),
                "severity",
            ),
            (
                serde_json::json!({"title": "t", "source": "s", "resolved": "yes"}),
                "resolved",
            ),
            (serde_json::json!({"title": 3, "source": "s"}), "title"),
        ] {
            assert_eq!(alert_from_json(&v).unwrap_err().0, field, "{v}");
        }
    }
}
