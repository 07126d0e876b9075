//! The pages and the script the web door serves: `/widget.js` (a floating
//! button and form an admin's site includes with one `<script>` tag),
//! `/contact` (the same form as a page of its own), and the HTML of the
//! customer page and of form answers.
//!
//! The files live in `templates/widget/` and are built into the binary:
//! plain HTML, CSS and JavaScript, no build step. Pages are rendered by
//! minijinja with auto-escaping on (the names end in `.html`), so nothing
//! a customer wrote becomes markup.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;

const WIDGET_JS: &str = include_str!("../../templates/widget/widget.js");

static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, text) in [
        (
            "base.html",
            include_str!("../../templates/widget/base.html"),
        ),
        (
            "contact.html",
            include_str!("../../templates/widget/contact.html"),
        ),
        (
            "ticket.html",
            include_str!("../../templates/widget/ticket.html"),
        ),
        (
            "message.html",
            include_str!("../../templates/widget/message.html"),
        ),
    ] {
        // The templates are part of the binary; a broken one is caught by
        // the test that renders each.
        if let Err(e) = env.add_template(name, text) {
            crate::logging::log_error("a built-in web page does not compile", &e);
        }
    }
    env
});

/// `name` rendered with `ctx`; a short apology when rendering fails (only
/// a bug can make it fail, and it is logged).
pub(super) fn render(name: &str, ctx: minijinja::Value) -> String {
    match PAGES.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(s) => s,
        Err(e) => {
            crate::logging::log_error("rendering a web page failed", &e);
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
        }
    }
}

/// What a page may load: its own inline styles, forms posting back here,
/// and (only for the contact page's optional sending without a reload)
/// its own inline script. Pages that show what customers wrote run no
/// script at all, so even a missed escape could not run one.
const CSP_NO_SCRIPT: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const CSP_CONTACT: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'";

/// An HTML answer with its security headers; `script` allows the page's
/// own inline script. The referrer policy is `same-origin`, not
/// `no-referrer`: under `no-referrer` a browser posts the page's own forms
/// with `Origin: null`, which the guard refuses as a foreign origin.
pub(super) fn html(status: StatusCode, body: String, script: bool) -> Response {
    let mut r = (status, Html(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if script { CSP_CONTACT } else { CSP_NO_SCRIPT }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// A page with a title and one paragraph.
pub(super) fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = render(
        "message.html",
        minijinja::context! { title, text, number => "" },
    );
    self::html(status, html, false)
}

/// The thank-you page after a browser posted the contact form.
pub(super) fn thanks(number: &str) -> Response {
    let html = render(
        "message.html",
        minijinja::context! {
            title => "Thank you",
            text => "Your request was received. We have sent you a confirmation by mail, \
                     with a link to follow it.",
            number,
        },
    );
    self::html(StatusCode::CREATED, html, false)
}

/// A JSON error answer shown as a page (a browser posted the form without
/// JavaScript); the status is kept.
pub(super) fn form_error(json: Response) -> Response {
    let status = json.status();
    let text = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "The message and its files are larger than we accept.",
        StatusCode::TOO_MANY_REQUESTS => {
            "Too many requests from your address; try again in a minute."
        }
        _ => "Some fields are missing or wrong. Please go back and check the form.",
    };
    page(status, "Your request was not sent", text)
}

/// `GET /widget.js`.
pub(super) async fn widget() -> Response {
    let mut r = WIDGET_JS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// `GET /contact`.
pub(super) async fn contact() -> Response {
    let html = render(
        "contact.html",
        minijinja::context! { t => crate::domain::Time::now().secs() },
    );
    self::html(StatusCode::OK, html, true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_and_escapes_what_customers_wrote() {
        for name in ["contact.html", "message.html"] {
            PAGES.get_template(name).unwrap();
        }
        let html = render(
            "ticket.html",
            minijinja::context! {
                number => "#1001",
                subject => "<script>alert(1)</script>",
                status => "Open",
                closed => false,
                messages => vec![minijinja::context! {
                    from_customer => true, who => "Ann <b>", at => "", subject => "",
                    text => "a & b", attachments => vec!["x<y.txt"],
                }],
                token => "p1.2-00",
                sent => true,
                problem => (),
            },
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(html.contains("Ann &lt;b&gt;"));
        assert!(html.contains("a &amp; b"));
        assert!(html.contains("action=\"/t/p1.2-00\""));
    }
}
