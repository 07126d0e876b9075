//! `POST /api/v1/tickets`: a contact form (JSON, urlencoded, or multipart
//! with attachments) into the spool.
//!
//! Receives the request after the guard (`web::guard`) counted it; reads the body
//! up to `max_message_size`, checks each field (a `400` names the first
//! field that is wrong), springs the bot traps, builds the message and
//! answers `201 {"number", "id"}` only after the spool's commit returned.
//!
//! Bot traps, checked only when the form sends them, so a JSON client
//! without them is never dropped: a non-empty honeypot field `website`,
//! or a form timestamp `t` (unix seconds, set when the form was shown)
//! younger than [`MIN_FORM_AGE_SECS`]. Either gets a `201`-looking answer
//! and nothing is stored.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::message::{self, Category, Form, Upload};
use super::{Shared, conn, error, json, read, read_body, wants_html};
use crate::domain::Accepted;

/// A form sent sooner than this after it was shown was not typed by a
/// person.
pub const MIN_FORM_AGE_SECS: i64 = 3;

/// Most files one form may carry.
pub const MAX_UPLOADS: usize = 10;

/// Longest name, subject, or page, in characters.
const MAX_LINE: usize = 300;

/// What a request's fields turned out to be.
#[derive(Debug)]
pub enum Checked {
    /// A person's form.
    Form(Form),
    /// A bot fell into a trap: answer as if stored, store nothing.
    Trapped(&'static str),
}

/// A field that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Check the fields of a form sent at `now` (unix seconds).
///
/// # Errors
///
/// The first field that is missing or wrong.
pub fn check(
    fields: &HashMap<String, String>,
    uploads: Vec<Upload>,
    now: i64,
) -> Result<Checked, FieldError> {
    let get = |k: &str| fields.get(k).map(|v| v.trim()).unwrap_or("");
    if !get("website").is_empty() {
        return Ok(Checked::Trapped("honeypot"));
    }
    if let Ok(t) = get("t").parse::<i64>()
        && now - t < MIN_FORM_AGE_SECS
    {
        return Ok(Checked::Trapped("too_fast"));
    }
    let bad = |field: &'static str, message: &str| FieldError {
        field,
        message: message.to_owned(),
    };
    let line = |field: &'static str, required: bool| -> Result<String, FieldError> {
        let v = get(field);
        if v.is_empty() && required {
            return Err(bad(field, &format!("{field} is required")));
        }
        if v.chars().count() > MAX_LINE {
            return Err(bad(
                field,
                &format!("{field} is longer than {MAX_LINE} characters"),
            ));
        }
        Ok(message::one_line(v))
    };
    let name = line("name", true)?;
    let email = get("email").to_owned();
    if email.is_empty() {
        return Err(bad("email", "email is required"));
    }
    if email.len() > 254 || !crate::outbound::compose::is_valid_address(&email) {
        return Err(bad("email", "email is not a valid address"));
    }
    let subject = line("subject", true)?;
    let text = fields.get("message").map(|m| m.trim()).unwrap_or("");
    if text.is_empty() {
        return Err(bad("message", "message is required"));
    }
    let category = match get("category") {
        "" => return Err(bad("category", "category is required")),
        c => Category::parse(c).ok_or_else(|| {
            bad(
                "category",
                "category must be one of question, support, issue, service_request, quote",
            )
        })?,
    };
    let page = Some(line("page", false)?).filter(|p| !p.is_empty());
    if uploads.len() > MAX_UPLOADS {
        return Err(bad(
            "attachments",
            &format!("at most {MAX_UPLOADS} files may be attached"),
        ));
    }
    Ok(Checked::Form(Form {
        name,
        email,
        subject,
        message: text.to_owned(),
        category,
        page,
        uploads,
    }))
}

/// The handler.
pub(super) async fn post_ticket(
    State(web): State<Shared>,
    ConnectInfo(conn::Peer(peer)): ConnectInfo<conn::Peer>,
    req: Request,
) -> Response {
    let cfg = web.config();
    let html = wants_html(req.headers());
    let (parts, body) = req.into_parts();
    let ctype = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = match read_body(&parts.headers, body, cfg.limits.max_message_size).await {
        Ok(b) => b,
        Err(e) => return answer_error(html, e.response()),
    };
    let parsed = if ctype.starts_with("application/json") {
        json_fields(&bytes).map(|f| (f, Vec::new()))
    } else if ctype.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .map(|pairs| (first_values(pairs), Vec::new()))
            .map_err(|_| "the form could not be read".to_owned())
    } else if ctype.starts_with("multipart/form-data") {
        let req = Request::from_parts(parts, Body::from(bytes));
        multipart_fields(req).await
    } else {
        return answer_error(
            html,
            error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "send application/json, application/x-www-form-urlencoded or multipart/form-data",
            ),
        );
    };
    let (fields, uploads) = match parsed {
        Ok(v) => v,
        Err(why) => return answer_error(html, error(StatusCode::BAD_REQUEST, None, &why)),
    };
    let form = match check(&fields, uploads, crate::domain::Time::now().secs()) {
        Ok(Checked::Form(f)) => f,
        Ok(Checked::Trapped(why)) => {
            tracing::info!(peer = %peer.ip(), trap = why, "web form dropped");
            return created(html, "#0", 0);
        }
        Err(e) => {
            return answer_error(
                html,
                error(StatusCode::BAD_REQUEST, Some(e.field), &e.message),
            );
        }
    };
    let (env, raw) = match message::form(&cfg, &form, Some(peer)) {
        Ok(v) => v,
        Err(e) => return super::internal(&e),
    };
    match accept(&web, env, raw).await {
        Ok((number, id)) => {
            tracing::info!(peer = %peer.ip(), ticket = %number, category = form.category.as_str(), "web ticket accepted");
            created(html, &number, id)
        }
        Err(r) => r,
    }
}

/// Hand a web message to the spool and wait for its commit; the ticket's
/// number as displayed and its row id (`""`, 0 when it was stored but not
/// ticketed: a blocked sender, a staff address).
pub(super) async fn accept(
    web: &Shared,
    env: crate::domain::Envelope,
    raw: Vec<u8>,
) -> Result<(String, i64), Response> {
    let accepted: Accepted = match web.spool.accept(env, raw).await {
        Ok(a) => a,
        Err(e) => return Err(super::internal(&e)),
    };
    let Some(ticket) = accepted.ticket else {
        return Ok((String::new(), 0));
    };
    let cfg = web.config();
    let number = read(web, move |s| s.ticket_number(ticket)).await?;
    Ok((
        number.map_or_else(String::new, |(n, queue, opened)| {
            cfg.tickets
                .format_number(n, &queue, crate::domain::Time::from_secs(opened))
        }),
        ticket.0,
    ))
}

/// `201 {"number", "id"}`, or the thank-you page for a browser's form.
fn created(html: bool, number: &str, id: i64) -> Response {
    if html {
        return super::assets::thanks(number);
    }
    let number = if number.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::from(number)
    };
    json(
        StatusCode::CREATED,
        serde_json::json!({ "number": number, "id": if id == 0 { serde_json::Value::Null } else { id.into() } }),
    )
}

/// A JSON error as it is, or as a page for a browser's form.
fn answer_error(html: bool, r: Response) -> Response {
    if html {
        super::assets::form_error(r)
    } else {
        r
    }
}

/// A JSON object's members as strings (numbers and booleans written out,
/// so `"t": 1700000000` works as well as `"t": "1700000000"`).
fn json_fields(bytes: &[u8]) -> Result<HashMap<String, String>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| "the body is not valid JSON".to_owned())?;
    let serde_json::Value::Object(map) = v else {
        return Err("the body must be a JSON object".to_owned());
    };
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Number(n) => Some((k, n.to_string())),
            serde_json::Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect())
}

/// The first value of each field.
fn first_values(pairs: Vec<(String, String)>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in pairs {
        out.entry(k).or_insert(v);
    }
    out
}

/// The text fields and the files of a multipart form (already read, so
/// within the size limit).
async fn multipart_fields(req: Request) -> Result<(HashMap<String, String>, Vec<Upload>), String> {
    let unreadable = || "the multipart form could not be read".to_owned();
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| unreadable())?;
    let mut fields = HashMap::new();
    let mut uploads = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|_| unreadable())? {
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = field.bytes().await.map_err(|_| unreadable())?;
        match file_name {
            // A file input left empty sends a part with no name and no
            // bytes: not an attachment.
            Some(f) if !(f.is_empty() && bytes.is_empty()) => {
                if uploads.len() > MAX_UPLOADS {
                    break;
                }
                uploads.push(Upload {
                    name: if f.is_empty() { "attachment".into() } else { f },
                    content_type,
                    bytes: bytes.to_vec(),
                });
            }
            Some(_) => {}
            None => {
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("{name} is not UTF-8 text"))?;
                fields.entry(name).or_insert(text);
            }
        }
    }
    Ok((fields, uploads))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const GOOD: [(&str, &str); 5] = [
        ("name", "Ann"),
        ("email", "ann@customer.test"),
        ("subject", "Help"),
        ("message", "It broke."),
        ("category", "issue"),
    ];

    #[test]
    fn a_good_form_passes_and_each_bad_field_is_named() {
        assert!(matches!(
            check(&fields(&GOOD), Vec::new(), 100).unwrap(),
            Checked::Form(Form {
                category: Category::Issue,
                ..
            })
        ));
        for (field, value) in [
            ("name", ""),
            ("email", ""),
            ("email", "not an address"),
            ("email", "\"a>,evil@evil.test\"@cust.test"),
            ("subject", ""),
            ("message", "  "),
            ("category", ""),
            ("category", "complaint"),
        ] {
            let mut f = fields(&GOOD);
            f.insert(field.to_owned(), value.to_owned());
            assert_eq!(
                check(&f, Vec::new(), 100).unwrap_err().field,
                field,
                "{field}={value:?}"
            );
        }
    }

    #[test]
    fn traps_spring_only_when_present() {
        let mut f = fields(&GOOD);
        f.insert("website".into(), "http://spam.test".into());
        assert!(matches!(
            check(&f, Vec::new(), 100).unwrap(),
            Checked::Trapped("honeypot")
        ));
        let mut f = fields(&GOOD);
        f.insert("t".into(), "99".into());
        assert!(matches!(
            check(&f, Vec::new(), 100).unwrap(),
            Checked::Trapped("too_fast")
        ));
        f.insert("t".into(), "90".into());
        assert!(matches!(
            check(&f, Vec::new(), 100).unwrap(),
            Checked::Form(_)
        ));
        f.insert("website".into(), "".into());
        assert!(matches!(
            check(&f, Vec::new(), 100).unwrap(),
            Checked::Form(_)
        ));
    }
}
