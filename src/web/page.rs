//! The customer page, `/t/<token>`: a ticket's conversation as its
//! customer saw it by mail, and a form to reply.
//!
//! Receives a page token ([`crate::token::Purpose::Page`], signed with the
//! ticket and its last day); a forged, altered, expired or foreign token,
//! or one for a ticket that is gone, gets the same `404` and shows
//! nothing. The page shows only what the customer was sent or wrote
//! ([`visible`]): never an internal note, an agent's own mail (it carries
//! the agent's address and reply token), a notification to agents, or a
//! bounce; no e-mail address at all. Rendered on the server through
//! minijinja with auto-escaping; reading needs no JavaScript.
//!
//! A reply is made a mail from the requester to the ticket's signed
//! customer reply address ([`super::message::page_reply`]) and accepted
//! through the spool, so it joins the ticket exactly as a mail reply does,
//! and the answer (a redirect back to the page) comes after the commit.
//!
//! Once the ticket is Resolved or Closed the page offers a rating, 1 to 5
//! with a comment (`POST /t/<token>/rate`): made a mail to the signed
//! rating address of that score, as a click in the survey mail is, so it
//! is recorded by the same path (a second rating replaces the first).

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Shared, conn, read, read_body, today};
use crate::store::{MessageDetail, TicketDetail, TicketRef};

/// Longest reply from the page, in characters.
const MAX_REPLY: usize = 100_000;

/// Whether `m` is a message the ticket's customer may see: what they (or
/// another customer on the ticket) wrote, and what was sent to them.
pub fn visible(d: &TicketDetail, m: &MessageDetail) -> bool {
    let requester = d.ticket.requester.to_ascii_lowercase();
    match m.direction.as_str() {
        "inbound" => m.kind == "customer" && m.state == "ticketed",
        "outbound" => {
            matches!(m.kind.as_str(), "agent" | "system")
                && !requester.is_empty()
                && m.to.iter().any(|a| a.to_ascii_lowercase() == requester)
        }
        _ => false,
    }
}

/// The ticket a page token opens, or the `404` to answer.
async fn ticket_of(web: &Shared, token: &str) -> Result<TicketDetail, Response> {
    let cfg = web.config();
    let ticket = cfg
        .threading
        .keys()
        .and_then(|k| crate::token::verify_page(k, token, today()))
        .ok_or_else(gone)?;
    read(web, move |s| s.ticket(TicketRef::Id(ticket.0)))
        .await?
        .ok_or_else(gone)
}

/// The one answer for every token that opens nothing.
fn gone() -> Response {
    super::assets::page(
        StatusCode::NOT_FOUND,
        "Not found",
        "This link does not open any request. It may have expired; the \
         latest mail about your request carries a fresh one.",
    )
}

/// `GET /t/<token>`.
pub(super) async fn show(
    State(web): State<Shared>,
    Path(token): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let d = match ticket_of(&web, &token).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let flag = |name: &str| {
        uri.query()
            .is_some_and(|q| q.split('&').any(|p| p == format!("{name}=1")))
    };
    let note = if flag("rated") {
        Some(Note::Rated)
    } else if flag("sent") {
        Some(Note::Sent)
    } else {
        None
    };
    render(&web, &d, &token, note, None, StatusCode::OK)
}

/// What the page confirms after a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Note {
    /// A reply was added.
    Sent,
    /// A rating was recorded.
    Rated,
}

fn render(
    web: &Shared,
    d: &TicketDetail,
    token: &str,
    note: Option<Note>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let cfg = web.config();
    let messages: Vec<minijinja::Value> = d
        .messages
        .iter()
        .filter(|m| visible(d, m))
        .map(|m| {
            let from_customer = m.direction == "inbound";
            let who = if from_customer {
                if m.from_name.is_empty() {
                    d.ticket.requester_name.clone()
                } else {
                    m.from_name.clone()
                }
            } else {
                format!("{} team", crate::outbound::display_name(&d.ticket.queue))
            };
            minijinja::context! {
                from_customer,
                who,
                at => when(m.received_at),
                subject => m.subject.clone(),
                text => m.text.clone(),
                attachments => m.attachments.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
            }
        })
        .collect();
    let closed = crate::domain::Status::name_is_closed(&d.ticket.status);
    let html = super::assets::render(
        "ticket.html",
        minijinja::context! {
            number => cfg.tickets.format_number(
                d.ticket.number,
                &d.ticket.queue,
                crate::domain::Time::from_secs(d.ticket.created_at)
            ),
            subject => d.ticket.subject.clone(),
            status => d.ticket.status.clone(),
            closed,
            messages,
            token,
            sent => note == Some(Note::Sent),
            rated_now => note == Some(Note::Rated),
            rating => d.satisfaction.as_ref().map(|r| r.score),
            problem,
        },
    );
    // No script; `same-origin` keeps the token in the URL out of other
    // sites' logs.
    super::assets::html(status, html, false)
}

/// `2024-05-01 14:03 UTC`.
fn when(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// `POST /t/<token>`: the reply form (`message`, urlencoded).
pub(super) async fn reply(
    State(web): State<Shared>,
    ConnectInfo(conn::Peer(peer)): ConnectInfo<conn::Peer>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let (d, cfg, fields) = match posted(&web, &token, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let text = field(&fields, "message");
    let problem = if text.is_empty() {
        Some("Please write a message.")
    } else if text.chars().count() > MAX_REPLY {
        Some("The message is too long.")
    } else if d.ticket.requester.is_empty() {
        Some("This request cannot take replies here; please answer by mail.")
    } else {
        None
    };
    if let Some(p) = problem {
        return render(&web, &d, &token, None, Some(p), StatusCode::BAD_REQUEST);
    }
    let in_reply_to = d
        .messages
        .iter()
        .rev()
        .find(|m| visible(&d, m))
        .map(|m| m.message_id.clone());
    let subject = tagged_subject(&cfg, &d, "");
    let reply = page_mail(&d, &subject, in_reply_to.as_deref(), &text, None);
    if let Err(r) = submit(&web, &cfg, &reply, peer).await {
        return r;
    }
    tracing::info!(ticket = d.ticket.number, "customer page reply accepted");
    back_to_page(&token, "sent")
}

/// `POST /t/<token>/rate`: `score` 1 to 5 and an optional `comment`
/// (urlencoded), once the ticket is Resolved or Closed.
pub(super) async fn rate(
    State(web): State<Shared>,
    ConnectInfo(conn::Peer(peer)): ConnectInfo<conn::Peer>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let (d, cfg, fields) = match posted(&web, &token, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let score = field(&fields, "score")
        .parse::<u8>()
        .ok()
        .filter(|s| crate::token::SCORES.contains(s));
    let comment = field(&fields, "comment");
    let problem = if !crate::domain::Status::name_is_closed(&d.ticket.status) {
        Some("You can rate your request once it is resolved.")
    } else if score.is_none() {
        Some("Please choose a rating from 1 to 5.")
    } else if comment.chars().count() > MAX_REPLY {
        Some("The comment is too long.")
    } else if d.ticket.requester.is_empty() {
        Some("This request cannot be rated here.")
    } else {
        None
    };
    let (Some(score), None) = (score, problem) else {
        return render(&web, &d, &token, None, problem, StatusCode::BAD_REQUEST);
    };
    let subject = tagged_subject(&cfg, &d, "Rating: ");
    let rating = page_mail(&d, &subject, None, &comment, Some(score));
    if let Err(r) = submit(&web, &cfg, &rating, peer).await {
        return r;
    }
    tracing::info!(
        ticket = d.ticket.number,
        score,
        "customer page rating accepted"
    );
    back_to_page(&token, "rated")
}

/// The ticket of `token` and the fields of the urlencoded form posted to
/// its page (a bad token: the 404 page; a body over the size limit: 413).
async fn posted(
    web: &Shared,
    token: &str,
    req: Request,
) -> Result<
    (
        TicketDetail,
        std::sync::Arc<crate::outbound::Config>,
        Vec<(String, String)>,
    ),
    Response,
> {
    let d = ticket_of(web, token).await?;
    let cfg = web.config();
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, cfg.limits.max_message_size)
        .await
        .map_err(|e| e.response())?;
    let fields = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes).unwrap_or_default();
    Ok((d, cfg, fields))
}

/// `PREFIX<subject> [tag]`: the subject of a mail from the page.
fn tagged_subject(cfg: &crate::outbound::Config, d: &TicketDetail, prefix: &str) -> String {
    let tag = cfg.tickets.format_tag(
        d.ticket.number,
        &d.ticket.queue,
        crate::domain::Time::from_secs(d.ticket.created_at),
    );
    format!("{prefix}{} {tag}", d.ticket.subject)
}

/// The mail the page sends for the ticket's requester: a reply, or a
/// rating (with `text` its comment).
fn page_mail<'a>(
    d: &'a TicketDetail,
    subject: &'a str,
    in_reply_to: Option<&'a str>,
    text: &'a str,
    rating: Option<u8>,
) -> super::message::PageReply<'a> {
    super::message::PageReply {
        ticket: crate::domain::TicketId(d.ticket.id),
        requester: &d.ticket.requester,
        requester_name: &d.ticket.requester_name,
        inbound_address: &d.ticket.inbound_address,
        subject,
        in_reply_to,
        text,
        rating,
    }
}

/// Form field `name`, trimmed (empty when absent).
fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// Hand the page's mail to the spool; `Ok` once it is committed.
async fn submit(
    web: &Shared,
    cfg: &crate::outbound::Config,
    mail: &super::message::PageReply<'_>,
    peer: std::net::SocketAddr,
) -> Result<(), Response> {
    let (env, raw) = match super::message::page_reply(cfg, mail, Some(peer)) {
        Ok(Some(v)) => v,
        Ok(None) => return Err(gone()),
        Err(e) => return Err(super::internal(&e)),
    };
    super::intake::accept(web, env, raw).await.map(|_| ())
}

/// After the commit: back to the page (which now shows what was sent),
/// with `?FLAG=1` for its note.
fn back_to_page(token: &str, flag: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/t/{token}?{flag}=1")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
