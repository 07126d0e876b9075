//! `[[webhook]]` and `[webhooks]`: where ticket events are POSTed, which
//! ones, signed with which secret, and how failed deliveries are retried.
//!
//! Receives the raw tables; returns [`Webhooks`], every problem reported
//! at its `file:line:column`: a URL that is not http(s), an unknown event
//! name, filter or client, a secret variable that is not set or a secret
//! file that cannot be read. A secret is read here, once per load, so a
//! server never starts (or reloads) with a webhook it could not sign for.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::diag::{Diagnostic, Source, resolve};
use crate::domain::webhook::EVENTS;

/// One `[[webhook]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Where to POST (`http://` or `https://`).
    pub url: Spanned<String>,
    /// Public event names.
    pub events: Spanned<Vec<Spanned<String>>>,
    /// Only tickets in these queues.
    #[serde(default)]
    pub queues: Vec<Spanned<String>>,
    /// Only tickets with these priorities.
    #[serde(default)]
    pub priorities: Vec<Spanned<String>>,
    /// Only tickets of these clients (`mailboxes/<name>.toml`).
    #[serde(default)]
    pub clients: Vec<Spanned<String>>,
    /// The environment variable holding the signing secret.
    pub secret_env: Option<Spanned<String>>,
    /// The file holding the signing secret (owner-only).
    pub secret_file: Option<Spanned<PathBuf>>,
    /// `json` (default) or `slack`.
    pub format: Option<Spanned<String>>,
}

/// `[webhooks]`: retries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhooks {
    /// The first wait after a failed attempt, seconds.
    pub retry_initial_secs: Spanned<f64>,
    /// The longest wait between attempts, seconds.
    pub retry_max_secs: Spanned<f64>,
    /// Attempts before a delivery fails for good.
    pub max_attempts: Spanned<u32>,
}

impl Default for RawWebhooks {
    fn default() -> Self {
        RawWebhooks {
            retry_initial_secs: Spanned::new(0..0, 10.0),
            retry_max_secs: Spanned::new(0..0, 3600.0),
            max_attempts: Spanned::new(0..0, 20),
        }
    }
}

/// A signing secret; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a webhook's body looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"id", "event", "timestamp", "data"}`.
    Json,
    /// A Slack incoming webhook's `{"text"}`.
    Slack,
}

impl Format {
    /// The name written in rules.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
        }
    }

    /// The format named `name`, if any.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "slack" => Some(Format::Slack),
            _ => None,
        }
    }
}

/// One checked `[[webhook]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where to POST.
    pub url: String,
    /// Public event names it takes.
    pub events: Vec<String>,
    /// Queue filter (lower-case); empty: all.
    pub queues: Vec<String>,
    /// Priority filter (lower-case); empty: all.
    pub priorities: Vec<String>,
    /// Client domains of the `clients` filter (lower-case); empty: all.
    pub client_domains: Vec<String>,
    /// The signing secret; `None` only for a `slack` webhook without one.
    pub secret: Option<Secret>,
    /// Body format.
    pub format: Format,
}

/// `[[webhook]]` and `[webhooks]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhooks {
    /// Every webhook, in file order.
    pub hooks: Vec<Webhook>,
    /// The first wait after a failed attempt.
    pub retry_initial: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// Attempts before a delivery fails for good.
    pub max_attempts: u32,
}

impl Default for Webhooks {
    /// No webhooks; the retry defaults of the shipped rules.toml.
    fn default() -> Self {
        Webhooks {
            hooks: Vec::new(),
            retry_initial: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
            max_attempts: 20,
        }
    }
}

impl Webhooks {
    /// `retry_initial * 2^(attempts-1)`, at most `retry_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
        self.retry_initial
            .saturating_mul(factor)
            .min(self.retry_max)
    }

    /// The webhook POSTing to `url` with `format`, if one still does (a
    /// reload may have removed it).
    pub fn find(&self, url: &str, format: &str) -> Option<&Webhook> {
        self.hooks
            .iter()
            .find(|h| h.url == url && h.format.as_str() == format)
    }
}

/// Check `[[webhook]]` and `[webhooks]`. `clients` are the client names
/// (file stems) with their domains, `None` when a mailbox file could not
/// be read (the `clients` filter is then not judged).
pub(super) fn check_webhooks(
    raw: Vec<RawWebhook>,
    retries: RawWebhooks,
    clients: Option<&[(String, String)]>,
    src: &Source,
    dir: &std::path::Path,
    out: &mut Vec<Diagnostic>,
) -> Webhooks {
    let hooks = raw
        .into_iter()
        .map(|w| check_webhook(w, clients, src, dir, out))
        .collect();
    let secs = |v: &Spanned<f64>, key: &str, out: &mut Vec<Diagnostic>| {
        let s = *v.get_ref();
        if !s.is_finite() || s <= 0.0 || s > 3_153_600_000.0 {
            src.error(
                out,
                v,
                format!("{key} must be a number of seconds greater than 0, not {s}"),
            );
            Duration::from_secs(1)
        } else {
            Duration::from_secs_f64(s)
        }
    };
    let retry_initial = secs(&retries.retry_initial_secs, "retry_initial_secs", out);
    let retry_max = secs(&retries.retry_max_secs, "retry_max_secs", out);
    Webhooks {
        hooks,
        retry_initial,
        retry_max,
        max_attempts: if *retries.max_attempts.get_ref() == 0 {
            src.error(
                out,
                &retries.max_attempts,
                "max_attempts must be greater than 0",
            );
            1
        } else {
            *retries.max_attempts.get_ref()
        },
    }
}

fn check_webhook(
    w: RawWebhook,
    clients: Option<&[(String, String)]>,
    src: &Source,
    dir: &std::path::Path,
    out: &mut Vec<Diagnostic>,
) -> Webhook {
    let url = w.url.get_ref().trim().to_owned();
    if !super::validate::is_http_url(&url)
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        src.error(
            out,
            &w.url,
            format!(
                "webhook url `{}` must start with http:// or https:// and name a host",
                w.url.get_ref()
            ),
        );
    }
    if w.events.get_ref().is_empty() {
        src.error(
            out,
            &w.events,
            format!("events must name at least one of: {}", EVENTS.join(", ")),
        );
    }
    let mut events = Vec::new();
    for e in w.events.get_ref() {
        if EVENTS.contains(&e.get_ref().as_str()) {
            events.push(e.get_ref().clone());
        } else {
            src.error(
                out,
                e,
                format!(
                    "unknown webhook event `{}`; known events: {}",
                    e.get_ref(),
                    EVENTS.join(", ")
                ),
            );
        }
    }
    let format = match &w.format {
        None => Format::Json,
        Some(f) => Format::parse(f.get_ref()).unwrap_or_else(|| {
            src.error(
                out,
                f,
                format!(
                    "format must be \"json\" or \"slack\", not `{}`",
                    f.get_ref()
                ),
            );
            Format::Json
        }),
    };
    let secret = read_secret(&w.secret_env, &w.secret_file, "webhook", src, dir, out);
    if format == Format::Json && w.secret_env.is_none() && w.secret_file.is_none() {
        src.error(
            out,
            &w.url,
            "a json webhook needs secret_env or secret_file: receivers verify \
             X-Postdesk-Signature with it",
        );
    }
    let queues = w
        .queues
        .iter()
        .map(|q| q.get_ref().to_ascii_lowercase())
        .collect();
    let mut priorities = Vec::new();
    for p in &w.priorities {
        match crate::domain::Priority::parse(p.get_ref()) {
            Some(parsed) => priorities.push(parsed.as_str().to_ascii_lowercase()),
            None => src.error(out, p, format!("unknown priority `{}`", p.get_ref())),
        }
    }
    let mut client_domains = Vec::new();
    for c in &w.clients {
        let Some(known) = clients else { continue };
        match known.iter().find(|(name, _)| name == c.get_ref()) {
            Some((_, domain)) => client_domains.push(domain.clone()),
            None => src.error(
                out,
                c,
                format!(
                    "unknown client `{}`: clients are named by their mailboxes/<name>.toml file",
                    c.get_ref()
                ),
            ),
        }
    }
    Webhook {
        url,
        events,
        queues,
        priorities,
        client_domains,
        secret,
        format,
    }
}

/// The secret named by `env` (an environment variable) or `file` (an
/// owner-only file, trailing newline removed), read now; `None` when
/// neither is set or it cannot be read (reported). `what` names the owner
/// in messages.
pub(super) fn read_secret(
    env: &Option<Spanned<String>>,
    file: &Option<Spanned<PathBuf>>,
    what: &str,
    src: &Source,
    dir: &std::path::Path,
    out: &mut Vec<Diagnostic>,
) -> Option<Secret> {
    match (env, file) {
        (Some(env), Some(_)) => {
            src.error(
                out,
                env,
                format!("{what}: set the _env key or the _file key, not both"),
            );
            None
        }
        (Some(env), None) => match std::env::var(env.get_ref()) {
            Ok(v) if !v.is_empty() => Some(Secret(v.into_bytes())),
            _ => {
                src.error(
                    out,
                    env,
                    format!(
                        "environment variable `{}` ({what} secret) is not set or empty",
                        env.get_ref()
                    ),
                );
                None
            }
        },
        (None, Some(file)) => {
            let path = resolve(dir, file.get_ref());
            match crate::files::read_private_file(&path) {
                Ok(mut bytes) => {
                    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        bytes.pop();
                    }
                    if bytes.is_empty() {
                        src.error(
                            out,
                            file,
                            format!("{what} secret file `{}` is empty", path.display()),
                        );
                        return None;
                    }
                    Some(Secret(bytes))
                }
                Err(e) => {
                    src.error(out, file, format!("{what} secret: {e}"));
                    None
                }
            }
        }
        (None, None) => None,
    }
}
