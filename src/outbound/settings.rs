//! `[outbound]` and `[teams]` in `rules.toml`, and the templates: raw serde
//! mirrors (`deny_unknown_fields`) and the typed [`Settings`] the rest of
//! postdesk reads.
//!
//! `config/validate/` calls [`check`] with a function that turns a byte
//! span of `rules.toml` into a diagnostic, so every problem here is
//! reported at its `file:line:column` like the rest of the file. Template
//! problems name the template file and line (see [`super::templates`]).
//!
//! No secret is kept here: a smarthost password is named by an environment
//! variable or a file, and read when the worker connects, so a rotated
//! password needs no reload and `check` never prints one. A password file
//! is opened here only to refuse one other users can read
//! ([`crate::config::read_private_file`]); its content is dropped.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::dkim::Signer;
use super::templates::Templates;
use crate::config::diag::{Diagnostic, PasswordSource, resolve};
use crate::files::read_private_file;

/// `[teams]`: queue name to agent names.
pub type RawTeams = BTreeMap<String, Vec<Spanned<String>>>;

/// `[outbound]` as written. Every key is optional; the defaults are the
/// values documented in the shipped `rules.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOutbound {
    /// Smarthost host name; absent: mail is written to a Maildir.
    pub host: Option<Spanned<String>>,
    /// Smarthost port; default 465 for `implicit`, 587 for `starttls`, 25
    /// for `none`.
    pub port: Option<Spanned<u16>>,
    /// `implicit`, `starttls` (default) or `none`.
    pub tls: Option<Spanned<String>>,
    /// SMTP AUTH user; absent: no authentication.
    pub user: Option<Spanned<String>>,
    /// Environment variable holding the SMTP password.
    pub password_env: Option<Spanned<String>>,
    /// File holding the SMTP password, relative to the config directory.
    pub password_file: Option<Spanned<PathBuf>>,
    /// Seconds one SMTP connection or command may take.
    pub timeout_secs: Option<Spanned<f64>>,
    /// Most mails being sent at once.
    pub max_in_flight: Option<Spanned<usize>>,
    /// Seconds before the first retry; doubled for each later one.
    pub retry_initial_secs: Option<Spanned<f64>>,
    /// The longest wait between two retries, in seconds.
    pub retry_max_secs: Option<Spanned<f64>>,
    /// Attempts before a mail that keeps failing temporarily is given up.
    pub max_attempts: Option<Spanned<u32>>,
    /// Seconds between two looks at the outbox when nothing woke it.
    pub poll_secs: Option<Spanned<f64>>,
    /// The `X-Loop` value on every mail postdesk sends.
    pub x_loop: Option<Spanned<String>>,
    /// Most automatic mails (acknowledgements, command errors) to one
    /// recipient in one hour.
    pub auto_replies_per_hour: Option<Spanned<u32>>,
    /// Days an address gets no mail after a permanent failure.
    pub suppress_days: Option<Spanned<f64>>,
    /// Queues (`support`, `sales`) and inbound addresses whose new tickets
    /// get an acknowledgement.
    pub acknowledge: Option<Vec<Spanned<String>>>,
    /// Whether mail brought in by `postdesk ingest` causes mail.
    pub ingest_sends_mail: Option<Spanned<bool>>,
    /// Most bytes of a customer's attachments, in all, attached to an
    /// agent's notification.
    pub notify_attachments_max_bytes: Option<Spanned<u64>>,
    /// PEM private key (RSA or Ed25519) to DKIM-sign outbound mail.
    pub dkim_key_file: Option<Spanned<PathBuf>>,
    /// DKIM selector (`s=`); required with `dkim_key_file`.
    pub dkim_selector: Option<Spanned<String>>,
    /// DKIM signing domain (`d=`); required with `dkim_key_file`.
    pub dkim_domain: Option<Spanned<String>>,
}

/// How the connection to the smarthost is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS, which must be offered.
    StartTls,
    /// No TLS (a smarthost on the same machine or a test sink).
    None,
}

/// The smarthost postdesk hands its mail to.
#[derive(Debug, Clone)]
pub struct Smarthost {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport security.
    pub tls: Tls,
    /// SMTP AUTH user, if authentication is configured.
    pub user: Option<String>,
    /// Where the password is read from when connecting.
    pub password: Option<PasswordSource>,
}

/// DKIM signing: the signer built from the key, once per configuration.
#[derive(Clone)]
pub struct Dkim {
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// The key file it came from, for `check`.
    pub key_file: PathBuf,
    /// The signer.
    pub signer: Arc<Signer>,
}

impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// The typed `[outbound]` and `[teams]` tables and the loaded templates.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where mail goes; `None`: a Maildir under the data directory.
    pub smarthost: Option<Smarthost>,
    /// Time one SMTP connection or command may take.
    pub timeout: Duration,
    /// Most mails being sent at once.
    pub max_in_flight: usize,
    /// Wait before the first retry (doubled for each later one).
    pub retry_initial: Duration,
    /// Longest wait between two retries.
    pub retry_max: Duration,
    /// Attempts before a temporarily failing mail is given up.
    pub max_attempts: u32,
    /// Time between two looks at the outbox when nothing woke it.
    pub poll: Duration,
    /// `X-Loop` value on every outbound mail; an inbound mail carrying it
    /// came from postdesk and gets no automatic answer.
    pub x_loop: String,
    /// Most automatic mails to one recipient per hour.
    pub auto_replies_per_hour: u32,
    /// How long an address gets no mail after a permanent failure.
    pub suppress_for: Duration,
    /// Queue names and inbound addresses (lower-case) whose new tickets get
    /// an acknowledgement.
    pub acknowledge: Vec<String>,
    /// Whether ingested mail causes acknowledgements and notifications.
    pub ingest_sends_mail: bool,
    /// Most bytes of a customer's attachments, in all, that an agent's
    /// notification carries; past it, they are listed with the command
    /// that fetches them.
    pub notify_attachments_max_bytes: u64,
    /// DKIM signing, when a key is configured.
    pub dkim: Option<Dkim>,
    /// Queue name (lower-case) to the names of the agents notified of its
    /// unassigned tickets.
    pub teams: BTreeMap<String, Vec<String>>,
    /// Every mail postdesk writes, compiled.
    pub templates: Arc<Templates>,
}

/// The built-in defaults (no smarthost, built-in templates).
impl Default for Settings {
    fn default() -> Self {
        Settings {
            smarthost: None,
            timeout: Duration::from_secs(60),
            max_in_flight: 8,
            retry_initial: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            max_attempts: 30,
            poll: Duration::from_secs(5),
            x_loop: "postdesk@localhost".into(),
            auto_replies_per_hour: 5,
            suppress_for: Duration::from_secs(7 * 86_400),
            acknowledge: vec!["support".into()],
            ingest_sends_mail: false,
            notify_attachments_max_bytes: 10 * 1024 * 1024,
            dkim: None,
            teams: BTreeMap::new(),
            templates: Arc::new(Templates::builtin()),
        }
    }
}

impl Settings {
    /// Whether a new ticket in `queue`, opened through `inbound_address`,
    /// gets an acknowledgement.
    pub fn acknowledges(&self, queue: &str, inbound_address: &str) -> bool {
        self.acknowledge
            .iter()
            .any(|a| a.eq_ignore_ascii_case(queue) || a.eq_ignore_ascii_case(inbound_address))
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failed:
    /// `retry_initial * 2^(attempts-1)`, at most `retry_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
        self.retry_initial
            .saturating_mul(factor)
            .min(self.retry_max)
    }
}

/// Check `[outbound]` and `[teams]` and load the templates from
/// `dir/templates`. `agents` are the `[agents]` names, for `[teams]`;
/// `hostname` is `[server] hostname`, for the default `X-Loop`. `at` turns a
/// span of rules.toml into a diagnostic; every problem goes to `out`.
pub fn check(
    raw: RawOutbound,
    teams: RawTeams,
    agents: &BTreeMap<String, Spanned<String>>,
    hostname: &str,
    dir: &Path,
    at: &dyn Fn(Range<usize>, String) -> Diagnostic,
    out: &mut Vec<Diagnostic>,
) -> Settings {
    let d = Settings::default();
    let mut error = |span: Range<usize>, message: String| out.push(at(span, message));

    let smarthost = check_smarthost(&raw, dir, &mut error);
    let max_in_flight = match &raw.max_in_flight {
        Some(v) if *v.get_ref() == 0 || *v.get_ref() > 1024 => {
            error(
                v.span(),
                format!(
                    "max_in_flight must be between 1 and 1024, not {}",
                    v.get_ref()
                ),
            );
            d.max_in_flight
        }
        Some(v) => *v.get_ref(),
        None => d.max_in_flight,
    };
    let max_attempts = match &raw.max_attempts {
        Some(v) if *v.get_ref() == 0 => {
            error(v.span(), "max_attempts must be greater than 0".into());
            d.max_attempts
        }
        Some(v) => *v.get_ref(),
        None => d.max_attempts,
    };
    let x_loop = check_x_loop(raw.x_loop.as_ref(), hostname, &mut error);
    let acknowledge = match &raw.acknowledge {
        None => d.acknowledge.clone(),
        Some(list) => check_acknowledge(list, &mut error),
    };
    let dkim = check_dkim(&raw, dir, &mut error);
    let teams = check_teams(teams, agents, &mut error);

    let timeout = secs(&raw.timeout_secs, "timeout_secs", d.timeout, &mut error);
    let retry_initial = secs(
        &raw.retry_initial_secs,
        "retry_initial_secs",
        d.retry_initial,
        &mut error,
    );
    let retry_max = secs(
        &raw.retry_max_secs,
        "retry_max_secs",
        d.retry_max,
        &mut error,
    );
    let poll = secs(&raw.poll_secs, "poll_secs", d.poll, &mut error);
    let suppress_for = match &raw.suppress_days {
        None => d.suppress_for,
        Some(v) => {
            let days = *v.get_ref();
            if !days.is_finite() || days <= 0.0 || days > 36_500.0 {
                error(
                    v.span(),
                    format!("suppress_days must be a number of days greater than 0, not {days}"),
                );
                d.suppress_for
            } else {
                Duration::from_secs_f64(days * 86_400.0)
            }
        }
    };

    let templates = Templates::load(&dir.join("templates"), out);

    Settings {
        smarthost,
        timeout,
        max_in_flight,
        retry_initial,
        retry_max,
        max_attempts,
        poll,
        x_loop,
        auto_replies_per_hour: raw
            .auto_replies_per_hour
            .map_or(d.auto_replies_per_hour, Spanned::into_inner),
        suppress_for,
        acknowledge,
        ingest_sends_mail: raw
            .ingest_sends_mail
            .map_or(d.ingest_sends_mail, Spanned::into_inner),
        notify_attachments_max_bytes: raw
            .notify_attachments_max_bytes
            .map_or(d.notify_attachments_max_bytes, Spanned::into_inner),
        dkim,
        teams,
        templates: Arc::new(templates),
    }
}

/// Where a check reports a problem: a span of rules.toml and the message.
type Report<'a> = &'a mut dyn FnMut(Range<usize>, String);

/// A number of seconds (`value`, or `default` when unset), reported when it
/// is not greater than 0 or is past a century.
fn secs(value: &Option<Spanned<f64>>, key: &str, default: Duration, error: Report) -> Duration {
    match value {
        None => default,
        Some(v) => {
            let s = *v.get_ref();
            // A century is a typo, and keeps Duration arithmetic far
            // from overflowing.
            if !s.is_finite() || s <= 0.0 || s > 3_153_600_000.0 {
                error(
                    v.span(),
                    format!("{key} must be a number of seconds greater than 0, not {s}"),
                );
                default
            } else {
                Duration::from_secs_f64(s)
            }
        }
    }
}

/// The smarthost of `host`, `port`, `tls`, `user` and the password keys;
/// `None` without `host`, when a key that needs it is reported.
fn check_smarthost(raw: &RawOutbound, dir: &Path, error: Report) -> Option<Smarthost> {
    let password_span = || {
        raw.password_env
            .as_ref()
            .map(Spanned::span)
            .or_else(|| raw.password_file.as_ref().map(Spanned::span))
    };
    let Some(host) = &raw.host else {
        for (key, span) in [
            ("port", raw.port.as_ref().map(Spanned::span)),
            ("tls", raw.tls.as_ref().map(Spanned::span)),
            ("user", raw.user.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                error(
                    span,
                    format!("{key} is set but host is not: set host to use a smarthost"),
                );
            }
        }
        if let Some(span) = password_span() {
            error(span, "a password is set but host is not".into());
        }
        return None;
    };
    let name = host.get_ref().trim();
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        error(
            host.span(),
            format!("host `{}` must be a host name or address", host.get_ref()),
        );
    }
    let tls = match raw.tls.as_ref() {
        None => Tls::StartTls,
        Some(t) => match t.get_ref().to_ascii_lowercase().as_str() {
            "implicit" => Tls::Implicit,
            "starttls" => Tls::StartTls,
            "none" => Tls::None,
            other => {
                error(
                    t.span(),
                    format!("unknown tls `{other}`, expected one of implicit, starttls, none"),
                );
                Tls::StartTls
            }
        },
    };
    let port = match &raw.port {
        Some(p) if *p.get_ref() == 0 => {
            error(p.span(), "port must be greater than 0".into());
            25
        }
        Some(p) => *p.get_ref(),
        None => match tls {
            Tls::Implicit => 465,
            Tls::StartTls => 587,
            Tls::None => 25,
        },
    };
    let password = check_password(raw, dir, error);
    let user = raw.user.as_ref().map(|u| u.get_ref().clone());
    match (&raw.user, &password) {
        (Some(u), None) => error(
            u.span(),
            "user is set but neither password_env nor password_file is".into(),
        ),
        (None, Some(_)) => error(
            password_span().unwrap_or(0..0),
            "a password is set but user is not".into(),
        ),
        _ => {}
    }
    Some(Smarthost {
        host: name.to_owned(),
        port,
        tls,
        user,
        password,
    })
}

/// Where the smarthost password is: `password_env` or `password_file`
/// (which must exist and be readable by its owner only), not both.
fn check_password(raw: &RawOutbound, dir: &Path, error: Report) -> Option<PasswordSource> {
    match (&raw.password_env, &raw.password_file) {
        (Some(e), Some(_)) => {
            error(
                e.span(),
                "set password_env or password_file, not both".into(),
            );
            None
        }
        (Some(e), None) => {
            if e.get_ref().is_empty() || e.get_ref().contains('=') {
                error(
                    e.span(),
                    format!(
                        "password_env `{}` is not an environment variable name",
                        e.get_ref()
                    ),
                );
            }
            Some(PasswordSource::Env(e.get_ref().clone()))
        }
        (None, Some(f)) => {
            let path = resolve(dir, f.get_ref());
            if !path.is_file() {
                error(
                    f.span(),
                    format!("password_file `{}` does not exist", path.display()),
                );
            } else if let Err(e) = read_private_file(&path) {
                error(f.span(), format!("password_file: {e}"));
            }
            Some(PasswordSource::File(path))
        }
        (None, None) => None,
    }
}

/// The `X-Loop` value: `x_loop`, or `postdesk@HOSTNAME` when unset.
fn check_x_loop(value: Option<&Spanned<String>>, hostname: &str, error: Report) -> String {
    let Some(v) = value else {
        return format!("postdesk@{hostname}");
    };
    let value = v.get_ref().trim();
    if value.is_empty() || value.chars().any(|c| c.is_control()) {
        error(
            v.span(),
            "x_loop must be a non-empty single-line value".into(),
        );
    }
    value.to_owned()
}

/// The `acknowledge` entries, lower-case; an empty one or one with a space
/// is reported and left out.
fn check_acknowledge(list: &[Spanned<String>], error: Report) -> Vec<String> {
    list.iter()
        .filter_map(|v| {
            let value = v.get_ref().trim().to_ascii_lowercase();
            if value.is_empty() || value.chars().any(char::is_whitespace) {
                error(
                    v.span(),
                    format!(
                        "acknowledge entry `{}` must be a queue name or an address",
                        v.get_ref()
                    ),
                );
                None
            } else {
                Some(value)
            }
        })
        .collect()
}

/// The DKIM signer of `dkim_key_file`, `dkim_selector` and `dkim_domain`
/// (all three, or none).
fn check_dkim(raw: &RawOutbound, dir: &Path, error: Report) -> Option<Dkim> {
    match (&raw.dkim_key_file, &raw.dkim_selector, &raw.dkim_domain) {
        (None, None, None) => None,
        (Some(file), Some(selector), Some(domain)) => {
            let path = resolve(dir, file.get_ref());
            match super::dkim::load(&path, domain.get_ref(), selector.get_ref()) {
                Ok(signer) => Some(Dkim {
                    domain: domain.get_ref().to_ascii_lowercase(),
                    selector: selector.get_ref().clone(),
                    key_file: path,
                    signer: Arc::new(signer),
                }),
                Err(e) => {
                    error(
                        file.span(),
                        format!("dkim_key_file `{}`: {e}", path.display()),
                    );
                    None
                }
            }
        }
        _ => {
            let span = [
                raw.dkim_key_file.as_ref().map(Spanned::span),
                raw.dkim_selector.as_ref().map(Spanned::span),
                raw.dkim_domain.as_ref().map(Spanned::span),
            ]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(0..0);
            error(
                span,
                "DKIM needs all three of dkim_key_file, dkim_selector and dkim_domain".into(),
            );
            None
        }
    }
}

/// `[teams]` with queue names lower-case and each member an `[agents]`
/// name (as written there); a name that is not an agent is reported.
fn check_teams(
    teams: RawTeams,
    agents: &BTreeMap<String, Spanned<String>>,
    error: Report,
) -> BTreeMap<String, Vec<String>> {
    let mut typed = BTreeMap::new();
    for (queue, names) in teams {
        let mut members = Vec::new();
        for name in names {
            let known = agents
                .keys()
                .find(|a| a.eq_ignore_ascii_case(name.get_ref()));
            match known {
                Some(agent) => members.push(agent.clone()),
                None => error(
                    name.span(),
                    format!(
                        "team `{queue}`: `{}` is not an agent; add it to [agents]",
                        name.get_ref()
                    ),
                ),
            }
        }
        typed.insert(queue.to_ascii_lowercase(), members);
    }
    typed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_wait_up_to_the_maximum() {
        let s = Settings {
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            ..Settings::default()
        };
        let waits: Vec<u128> = (1..=6).map(|a| s.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(s.backoff(u32::MAX), Duration::from_secs(1));
    }

    /// The diagnostics of loading `rules` (directory prefix removed).
    fn errors(rules: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        let prefix = format!("{}/", dir.path().display());
        crate::config::load(dir.path())
            .expect_err("errors")
            .render()
            .lines()
            .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_owned())
            .collect()
    }

    #[test]
    fn outbound_mistakes_name_their_line_and_column() {
        let errs = errors(
            "[agents]\nbob = \"bob@example.com\"\n\
             [teams]\nsupport = [\"bob\", \"dave\"]\n\
             [outbound]\nhost = \"smtp.example.com\"\ntls = \"ssl\"\n\
             user = \"pd\"\nretry_initial_secs = -1\nmax_in_flight = 0\n\
             dkim_selector = \"s1\"\n",
        );
        assert_eq!(
            errs,
            [
                "rules.toml:4:19: team `support`: `dave` is not an agent; add it to [agents]",
                "rules.toml:7:7: unknown tls `ssl`, expected one of implicit, starttls, none",
                "rules.toml:8:8: user is set but neither password_env nor password_file is",
                "rules.toml:9:22: retry_initial_secs must be a number of seconds greater than 0, not -1",
                "rules.toml:10:17: max_in_flight must be between 1 and 1024, not 0",
                "rules.toml:11:17: DKIM needs all three of dkim_key_file, dkim_selector and dkim_domain",
            ]
        );
    }

    #[test]
    fn a_password_is_never_written_inline() {
        let errs = errors("[outbound]\nhost = \"smtp.example.com\"\npassword = \"hunter2\"\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("rules.toml:3:1: unknown field `password`"),
            "{errs:?}"
        );
    }

    #[test]
    fn the_shipped_outbound_table_states_the_defaults() {
        let shipped = crate::config::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let d = Settings::default();
        let o = &shipped.outbound;
        assert!(o.smarthost.is_none() && o.dkim.is_none());
        assert_eq!(
            (
                o.timeout,
                o.max_in_flight,
                o.retry_initial,
                o.retry_max,
                o.max_attempts,
                o.poll
            ),
            (
                d.timeout,
                d.max_in_flight,
                d.retry_initial,
                d.retry_max,
                d.max_attempts,
                d.poll
            )
        );
        assert_eq!(
            (
                o.auto_replies_per_hour,
                o.suppress_for,
                &o.acknowledge,
                o.ingest_sends_mail,
                o.notify_attachments_max_bytes
            ),
            (
                d.auto_replies_per_hour,
                d.suppress_for,
                &d.acknowledge,
                d.ingest_sends_mail,
                d.notify_attachments_max_bytes
            )
        );
        assert_eq!(o.x_loop, "postdesk@example.com");
        assert!(o.teams.is_empty());
    }

    #[test]
    fn acknowledge_matches_queues_and_addresses_in_any_case() {
        let s = Settings {
            acknowledge: vec!["support".into(), "billing@acme.test".into()],
            ..Settings::default()
        };
        assert!(s.acknowledges("Support", "x@example.com"));
        assert!(s.acknowledges("sales", "Billing@Acme.test"));
        assert!(!s.acknowledges("sales", "sales@example.com"));
    }
}
