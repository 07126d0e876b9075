//! `[http]`: the web door's listen address, public URL, CORS origins and
//! limits.

use std::net::SocketAddr;

use crate::config::Http;
use crate::config::diag::{Diagnostic, Source};
use crate::config::raw::RawHttp;

use super::server::positive;

pub(super) fn check_http(
    raw: RawHttp,
    src: &Source,
    dir: &std::path::Path,
    out: &mut Vec<Diagnostic>,
) -> Http {
    let listen = if raw.listen.get_ref().is_empty() {
        None
    } else {
        match raw.listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(e) => {
                src.error(
                    out,
                    &raw.listen,
                    format!(
                        "invalid listen address `{}`: {e}; expected IP:PORT such as \
                         \"127.0.0.1:8025\", or \"\" for none",
                        raw.listen.get_ref()
                    ),
                );
                None
            }
        }
    };
    let public_url = match &raw.public_url {
        Some(url) => {
            let u = url.get_ref().trim_end_matches('/');
            if !is_http_url(u) {
                src.error(
                    out,
                    url,
                    format!(
                        "public_url `{}` must start with http:// or https:// and name a host, \
                         such as \"https://help.example.com\"",
                        url.get_ref()
                    ),
                );
            }
            u.to_owned()
        }
        None => format!("http://{}", raw.listen.get_ref()),
    };
    let mut allowed_origins = Vec::new();
    for origin in &raw.allowed_origins {
        let o = origin.get_ref();
        // A browser sends `Origin: scheme://host[:port]`, never a path or a
        // trailing slash: anything else would never match, silently.
        if !is_http_url(o) || o.ends_with('/') || o.splitn(4, '/').nth(3).is_some() || o == "*" {
            src.error(
                out,
                origin,
                format!(
                    "allowed_origins entry `{o}` must be an origin like \"https://shop.example\" \
                     (scheme and host, optional port, no path, no `*`)"
                ),
            );
        } else {
            allowed_origins.push(o.to_ascii_lowercase());
        }
    }
    Http {
        listen,
        public_url_is_default: raw.public_url.is_none(),
        public_url,
        allowed_origins,
        posts_per_minute_per_ip: positive(
            "posts_per_minute_per_ip",
            raw.posts_per_minute_per_ip,
            src,
            out,
        ),
        customer_link_days: positive("customer_link_days", raw.customer_link_days, src, out),
        metrics_token: crate::config::webhooks::read_secret(
            &raw.metrics_token_env,
            &raw.metrics_token_file,
            "the /metrics token",
            src,
            dir,
            out,
        ),
    }
}

/// `http://host...` or `https://host...` with a non-empty host (also the
/// check of a `[[webhook]] url`).
pub(in crate::config) fn is_http_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty()
            && !host
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '<')
    })
}
