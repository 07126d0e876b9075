//! The web door: an HTTP listener (axum) in the same process and on the
//! same tokio runtime as the SMTP listener.
//!
//! Receives HTTP requests; what they send in (a contact form, a reply from
//! the customer page, a monitor alert) is made a message
//! ([`message`]) and handed to the same [`Spool`] as SMTP mail, so it is
//! threaded, routed, scanned and acknowledged by the same pipeline. The
//! promise is SMTP's: `201` is answered only after
//! [`Spool::accept`] returned, that is after the batch holding the message
//! committed; a crash before that loses nothing that was answered, and a
//! client that saw no answer may send again.
//!
//! Before any body is read, `guard` refuses a POST from an origin that
//! is not allowed (CORS is for `[http] allowed_origins` and the server's
//! own pages only) or from an address over `posts_per_minute_per_ip`.
//! Bodies are read in chunks up to `[limits] max_message_size`, each chunk
//! under a timeout, and refused with `413` the moment they pass the
//! limit, never buffered whole first.
//!
//! Routes: `POST /api/v1/tickets` ([`intake`]); `GET|POST /t/<token>`, the
//! customer page ([`page`]); `GET /api/v1/tickets[/<number>]` and `POST
//! /api/v1/alerts` with an API key ([`api`]); `/widget.js` and `/contact`
//! ([`assets`]); `/healthz` and `/readyz`.

pub mod api;
pub mod assets;
pub mod conn;
pub mod intake;
pub mod limit;
pub mod message;
pub mod page;
mod scrape;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::outbound::Config;
use crate::spool::Spool;
use crate::store::{self, Store};

/// How long a client may take to send each chunk of a body.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler shares.
pub struct Web {
    /// The accept path.
    pub spool: Arc<Spool>,
    /// The configuration in force (swapped on reload).
    pub config: watch::Receiver<Arc<Config>>,
    /// A reading connection to the store (API keys, the customer page, the
    /// read API); used on the blocking pool, one request at a time.
    pub store: Mutex<Store>,
    /// Posts per IP address.
    pub limit: limit::RateLimit,
    /// Set once every listener is bound (`/readyz`).
    pub ready: Arc<AtomicBool>,
}

impl Web {
    /// The configuration snapshot a request works with.
    fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }
}

type Shared = Arc<Web>;

/// The routes, guarded.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape::metrics))
        .route(
            "/api/v1/tickets",
            post(intake::post_ticket).get(api::list_tickets),
        )
        .route("/api/v1/tickets/{number}", get(api::show_ticket))
        .route("/api/v1/alerts", post(api::post_alert))
        .route("/t/{token}", get(page::show).post(page::reply))
        .route("/t/{token}/rate", post(page::rate))
        .route("/widget.js", get(assets::widget))
        .route("/contact", get(assets::contact))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(web.clone(), guard))
        // Bodies are read by `read_body`, against `max_message_size`.
        .layer(DefaultBodyLimit::disable())
        .with_state(web)
}

/// Serve `tcp` until `token` is cancelled, then finish the requests in
/// flight (their messages are committed before the writer is joined: the
/// server's drain waits for this task). Connections count against
/// `limits`, shared with the SMTP and LMTP listeners, and close after
/// `idle` without a byte.
pub async fn serve(
    tcp: TcpListener,
    web: Arc<Web>,
    limits: Arc<crate::listener::ConnLimits>,
    idle: Duration,
    token: CancellationToken,
) {
    let app = router(web).into_make_service_with_connect_info::<conn::Peer>();
    let listener = conn::Bounded::new(tcp, limits, idle);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(token.cancelled_owned())
        .await
    {
        crate::logging::log_error("http listener failed", &e);
    }
}

/// Process up.
async fn healthz() -> Response {
    json(StatusCode::OK, serde_json::json!({ "status": "ok" }))
}

/// Listeners bound and the store takes a write lock.
async fn readyz(State(web): State<Shared>) -> Response {
    if !web.ready.load(Ordering::Acquire) {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "starting" }),
        );
    }
    match read(&web, |s| s.check_writable()).await {
        Ok(()) => json(StatusCode::OK, serde_json::json!({ "status": "ready" })),
        Err(_) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "store not writable" }),
        ),
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, None, "not found")
}

/// Before any handler: CORS and the per-address post limit.
async fn guard(
    State(web): State<Shared>,
    ConnectInfo(conn::Peer(peer)): ConnectInfo<conn::Peer>,
    req: Request,
    next: Next,
) -> Response {
    let cfg = web.config();
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let allowed = origin
        .as_deref()
        .filter(|o| origin_allowed(&cfg, req.headers(), o))
        .map(str::to_owned);
    if req.method() == Method::OPTIONS {
        return match allowed {
            Some(o) => {
                let mut r = StatusCode::NO_CONTENT.into_response();
                cors(r.headers_mut(), &o);
                let h = r.headers_mut();
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("content-type, authorization"),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("600"),
                );
                r
            }
            None => error(StatusCode::FORBIDDEN, None, "origin not allowed"),
        };
    }
    if req.method() == Method::POST {
        // A browser on a page of another site sends its Origin: such a post
        // is refused outright, not only hidden from that page's script, so
        // no site the admin did not list can make visitors' browsers open
        // tickets (and send acknowledgements) in their names.
        if origin.is_some() && allowed.is_none() {
            return error(StatusCode::FORBIDDEN, None, "origin not allowed");
        }
        // Monitor alerts carry an API key, checked before their body is
        // read; everything else a stranger can post counts against the
        // address's limit.
        if req.uri().path() != "/api/v1/alerts"
            && !web
                .limit
                .allow(peer.ip(), cfg.http.posts_per_minute_per_ip, Instant::now())
        {
            tracing::info!(peer = %peer.ip(), "http post rate limited");
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "too many posts from your address; try again in a minute",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return r;
        }
    }
    let mut r = next.run(req).await;
    if let Some(o) = allowed {
        cors(r.headers_mut(), &o);
    }
    r
}

fn cors(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// Whether `origin` may call the API: a configured origin, the public
/// URL's, or the server's own (the page was served by this host).
fn origin_allowed(cfg: &Config, headers: &HeaderMap, origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    if cfg.http.allowed_origins.contains(&origin) {
        return true;
    }
    let public = cfg.http.public_url.to_ascii_lowercase();
    let public_origin = public.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    if origin == public_origin {
        return true;
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            let host = host.to_ascii_lowercase();
            origin == format!("http://{host}") || origin == format!("https://{host}")
        })
}

/// A JSON answer.
fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// A JSON error: `{"error": message, "field": field}`. Messages name what
/// the client sent wrong, never a path or an internal error.
fn error(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    let mut v = serde_json::json!({ "error": message });
    if let Some(f) = field {
        v["field"] = serde_json::Value::from(f);
    }
    json(status, v)
}

/// The answer when the store failed: logged here, once; the client learns
/// nothing more than that it may retry.
fn internal(e: &dyn std::error::Error) -> Response {
    crate::logging::log_error("http request failed", e);
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "temporarily unavailable; try again later",
    )
}

/// Run `f` on the reading store connection, on the blocking pool.
async fn read<T: Send + 'static>(
    web: &Shared,
    f: impl FnOnce(&mut Store) -> Result<T, store::Error> + Send + 'static,
) -> Result<T, Response> {
    let web = web.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut s = web
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut s)
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal(&e)),
        Err(e) => Err(internal(&e)),
    }
}

/// Why a body was not read.
#[derive(Debug)]
enum BodyError {
    /// Over the limit.
    TooLarge,
    /// The client stalled or the connection broke.
    Broken,
}

impl BodyError {
    fn response(&self) -> Response {
        match self {
            BodyError::TooLarge => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                "the request is larger than the server accepts",
            ),
            BodyError::Broken => error(
                StatusCode::BAD_REQUEST,
                None,
                "the request body could not be read",
            ),
        }
    }
}

/// Read `body`, at most `limit` bytes: refused as soon as a declared
/// length or the bytes read pass the limit.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    // A declared length is a claim, not bytes: reserve little up front, so
    // a client cannot make the server allocate its whole limit by saying so.
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(limit).min(64 * 1024));
    let mut stream = body.into_data_stream();
    loop {
        match tokio::time::timeout(READ_TIMEOUT, stream.next()).await {
            Err(_) | Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(None) => return Ok(out),
            Ok(Some(Ok(chunk))) => {
                if out.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                out.extend_from_slice(&chunk);
            }
        }
    }
}

/// Whether the client is a browser posting a form (it wants a page back,
/// not JSON).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html") && !a.contains("application/json"))
}

/// Today in days since 1970 (UTC), for page links.
fn today() -> i64 {
    crate::domain::Time::now().secs().div_euclid(86_400)
}
