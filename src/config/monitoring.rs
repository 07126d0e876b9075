//! Mailbox monitoring settings: the `[imap]` and `[digest]` tables of a
//! client file, the `crtc` preset, and `[monitoring]` in `rules.toml`.
//!
//! Receives the raw tables (serde mirrors with `deny_unknown_fields`, like
//! `raw.rs`) and returns typed settings, reporting every problem at its
//! `file:line:column` through `diag.rs`'s [`Source`]. Nothing here
//! reads a password: a [`PasswordSource`] names where the poller finds it
//! when it connects, so a rotated secret needs no reload and `check` never
//! prints one.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::diag::{Diagnostic, PasswordSource, Source};
use super::raw::RawMailbox;
use super::validate::check_address;
use super::{Priority, resolve};

/// Issue type of the mailboxes a preset defines.
pub const CRTC_ISSUE_TYPE: &str = "CRTC Correspondence";

/// The fourteen standard mailboxes of a CRTC-regulated client domain and
/// their priorities (High ones alert at once; the others go to the digest).
pub const CRTC_PRESET: [(&str, Priority); 14] = [
    ("regulatory", Priority::High),
    ("crtc", Priority::High),
    ("ccts", Priority::High),
    ("corpadmin", Priority::Medium),
    ("registeredoffice", Priority::Medium),
    ("accounting", Priority::Medium),
    ("billing", Priority::Medium),
    ("abuse", Priority::High),
    ("noc", Priority::High),
    ("postmaster", Priority::Medium),
    ("info", Priority::Low),
    ("admin", Priority::Medium),
    ("sales", Priority::Low),
    ("support", Priority::Low),
];

// ---------------------------------------------------------------------------
// Raw tables
// ---------------------------------------------------------------------------

/// `[imap]` of a client file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImap {
    /// Off: the client's mailboxes are not polled (their priorities still
    /// apply to mail arriving over SMTP).
    #[serde(default)]
    pub enabled: Option<Spanned<bool>>,
    /// Server host name.
    pub host: Spanned<String>,
    /// Port; default 993 for `implicit`, 143 otherwise.
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    /// `implicit` (default), `starttls` or `none`.
    #[serde(default)]
    pub tls: Option<Spanned<String>>,
    /// PEM file of the CA that signed the server's certificate; absent:
    /// the system's trust store.
    #[serde(default)]
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Login pattern: `{address}`, `{local}`, `{domain}` are replaced.
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    /// Environment variable holding the password (same placeholders, plus
    /// `{LOCAL}` for the upper-case local part).
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    /// File holding the password (same placeholders), relative to the
    /// config directory.
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    /// Folder polled; default `INBOX`.
    #[serde(default)]
    pub folder: Option<Spanned<String>>,
    /// `seen` (default), `move` or `delete`.
    #[serde(default)]
    pub after_ingest: Option<Spanned<String>>,
    /// Folder for `after_ingest = "move"`.
    #[serde(default)]
    pub move_to: Option<Spanned<String>>,
    /// Use IDLE when the server offers it; default true.
    #[serde(default)]
    pub idle: Option<Spanned<bool>>,
    /// Seconds between polls without IDLE; default 300.
    #[serde(default)]
    pub poll_interval_secs: Option<Spanned<u64>>,
    /// Consecutive failures before the mailbox is reported broken; default 5.
    #[serde(default)]
    pub failures_before_broken: Option<Spanned<u32>>,
    /// `unseen` (default), `all` or `new`: where the first sync starts.
    #[serde(default)]
    pub first_sync: Option<Spanned<String>>,
    /// Seconds any one IMAP command may take; default 60.
    #[serde(default)]
    pub timeout_secs: Option<Spanned<u64>>,
}

/// `[digest]` of a client file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDigest {
    /// Off: Medium/Low items are recorded but no digest goes out.
    pub enabled: Option<Spanned<bool>>,
    /// `"08:00"`, `"daily 08:00"` or a cron expression; default `08:00`.
    pub schedule: Option<Spanned<String>>,
    /// Send a digest even when nothing happened; default false.
    pub send_empty: Option<Spanned<bool>>,
    /// Recipients; default the client's contacts.
    pub recipients: Option<Vec<Spanned<String>>>,
}

/// `[monitoring]` in rules.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMonitoring {
    /// The admin team: alerts and the admin digest.
    pub admins: Vec<Spanned<String>>,
    /// Sender of alerts and digests; default the first support address.
    pub from: Option<Spanned<String>>,
    /// Time zone of schedules that name none; default `UTC`.
    pub time_zone: Option<Spanned<String>>,
    /// When the admin digest goes out; default `08:00`.
    pub admin_digest: Option<Spanned<String>>,
    /// Send the admin digest with nothing to report; default false.
    pub admin_digest_send_empty: Option<Spanned<bool>>,
}

// ---------------------------------------------------------------------------
// Typed settings
// ---------------------------------------------------------------------------

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain, then `STARTTLS` before logging in (port 143).
    Starttls,
    /// No TLS: only for a server on the same host or a test.
    None,
}

/// What the poller does to a message once it is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterIngest {
    /// Set `\Seen`.
    Seen,
    /// Move it to this folder (`UID MOVE`).
    Move(String),
    /// Delete it (`\Deleted` and expunge): only when configured.
    Delete,
}

/// Where the first sync of a mailbox starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstSync {
    /// Every message in the folder.
    All,
    /// From the oldest unseen message on.
    Unseen,
    /// Only mail that arrives from now on.
    New,
}

/// One mailbox's resolved IMAP account: everything its poller needs. Two
/// equal accounts mean the poller need not restart on a config reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapAccount {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// TLS mode.
    pub tls: TlsMode,
    /// CA file to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// Login name.
    pub user: String,
    /// Where the password is.
    pub password: PasswordSource,
    /// Folder polled.
    pub folder: String,
    /// What happens to a message after its commit.
    pub after_ingest: AfterIngest,
    /// Whether IDLE is used when offered.
    pub idle: bool,
    /// Time between polls without IDLE (and the longest IDLE before it is
    /// renewed).
    pub poll_interval: Duration,
    /// Consecutive failures before the mailbox is broken.
    pub failures_before_broken: u32,
    /// Where the first sync starts.
    pub first_sync: FirstSync,
    /// Longest wait for any one IMAP command.
    pub timeout: Duration,
}

impl ImapAccount {
    /// Identifies the folder polled: a change of server, user or folder
    /// means the stored UIDs mean nothing any more.
    pub fn source(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.folder)
    }
}

/// A digest schedule: a cron pattern evaluated in a time zone.
#[derive(Clone)]
pub struct Schedule {
    /// The cron pattern (a `HH:MM` form is turned into one).
    pub expr: String,
    cron: croner::Cron,
    /// The zone the pattern is read in.
    pub time_zone: jiff::tz::TimeZone,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Schedule({:?} in {})",
            self.expr,
            self.time_zone.iana_name().unwrap_or("a fixed zone")
        )
    }
}

impl Schedule {
    /// Parse `text` (`HH:MM`, `daily HH:MM` or cron) in `time_zone`.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with the pattern.
    pub fn parse(text: &str, time_zone: jiff::tz::TimeZone) -> Result<Schedule, String> {
        let t = text.trim();
        let hm = t.strip_prefix("daily").map(str::trim).unwrap_or(t);
        let expr = match hm.split_once(':') {
            Some((h, m))
                if !h.is_empty()
                    && h.len() <= 2
                    && m.len() == 2
                    && h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) =>
            {
                let (h, m): (u32, u32) = (h.parse().unwrap_or(99), m.parse().unwrap_or(99));
                if h > 23 || m > 59 {
                    return Err(format!("`{text}` is not a time of day (HH:MM)"));
                }
                format!("{m} {h} * * *")
            }
            _ => t.to_owned(),
        };
        let cron = croner::parser::CronParser::new()
            .parse(&expr)
            .map_err(|e| format!("invalid schedule `{text}`: {e}"))?;
        Ok(Schedule {
            expr,
            cron,
            time_zone,
        })
    }

    /// The latest firing at or before `t`, if any.
    pub fn latest_at_or_before(&self, t: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let z = t.to_zoned(self.time_zone.clone());
        self.cron
            .find_previous_occurrence(&z, true)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The first firing strictly after `t`, if any.
    pub fn next_after(&self, t: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let z = t.to_zoned(self.time_zone.clone());
        self.cron
            .find_next_occurrence(&z, false)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// When and to whom a digest goes.
#[derive(Debug, Clone)]
pub struct DigestSettings {
    /// Whether it goes out at all.
    pub enabled: bool,
    /// When.
    pub schedule: Schedule,
    /// Whether an empty digest is sent.
    pub send_empty: bool,
    /// Recipients (lower-case addresses).
    pub recipients: Vec<String>,
}

/// `[monitoring]`: the admin team and its digest.
#[derive(Debug, Clone)]
pub struct Monitoring {
    /// Admin addresses: immediate alerts and the admin digest.
    pub admins: Vec<String>,
    /// Sender of alerts and digests.
    pub from: String,
    /// Zone of schedules that name none.
    pub time_zone: jiff::tz::TimeZone,
    /// The admin digest.
    pub admin_digest: DigestSettings,
}

/// No admins, UTC, the admin digest off: what an empty `[monitoring]`
/// gives when there is no support address.
impl Default for Monitoring {
    fn default() -> Self {
        let utc = jiff::tz::TimeZone::UTC;
        Monitoring {
            admins: Vec::new(),
            from: "postdesk@localhost".to_owned(),
            admin_digest: DigestSettings {
                enabled: false,
                schedule: Schedule::parse("08:00", utc.clone()).expect("08:00 is a valid schedule"),
                send_empty: false,
                recipients: Vec::new(),
            },
            time_zone: utc,
        }
    }
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// A time zone by IANA name, or a diagnostic and UTC.
fn check_zone(
    value: Option<&Spanned<String>>,
    default: &jiff::tz::TimeZone,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> jiff::tz::TimeZone {
    let Some(v) = value else {
        return default.clone();
    };
    jiff::tz::TimeZone::get(v.get_ref()).unwrap_or_else(|e| {
        src.error(out, v, format!("unknown time zone `{}`: {e}", v.get_ref()));
        jiff::tz::TimeZone::UTC
    })
}

/// A schedule, or a diagnostic and the default daily 08:00.
fn check_schedule(
    value: Option<&Spanned<String>>,
    zone: jiff::tz::TimeZone,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Schedule {
    let text = value.map_or("08:00", |v| v.get_ref().as_str());
    Schedule::parse(text, zone.clone()).unwrap_or_else(|e| {
        if let Some(v) = value {
            src.error(out, v, e);
        }
        Schedule::parse("08:00", zone).expect("08:00 is a valid schedule")
    })
}

fn check_addresses(
    values: &[Spanned<String>],
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| match check_address(v.get_ref()) {
            Ok(a) => Some(a),
            Err(e) => {
                src.error(out, v, e);
                None
            }
        })
        .collect()
}

/// `[monitoring]` into [`Monitoring`]; `support` is the first support
/// address, the default sender.
pub(super) fn check_monitoring(
    raw: RawMonitoring,
    support: Option<&str>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Monitoring {
    let time_zone = check_zone(raw.time_zone.as_ref(), &jiff::tz::TimeZone::UTC, src, out);
    let admins = check_addresses(&raw.admins, src, out);
    let from = match &raw.from {
        Some(v) => check_address(v.get_ref()).unwrap_or_else(|e| {
            src.error(out, v, e);
            String::new()
        }),
        None => support.unwrap_or("postdesk@localhost").to_owned(),
    };
    let schedule = check_schedule(raw.admin_digest.as_ref(), time_zone.clone(), src, out);
    Monitoring {
        admin_digest: DigestSettings {
            enabled: !admins.is_empty(),
            schedule,
            send_empty: raw
                .admin_digest_send_empty
                .map(Spanned::into_inner)
                .unwrap_or(false),
            recipients: admins.clone(),
        },
        admins,
        from,
        time_zone,
    }
}

/// The client-level parts of a client file that are about monitoring.
pub(super) struct ClientMonitoring {
    /// `[client] contacts`.
    pub contacts: Vec<String>,
    /// The client's zone.
    pub time_zone: jiff::tz::TimeZone,
    /// `[digest]`.
    pub digest: DigestSettings,
}

/// `[client] contacts`, `time_zone` and `[digest]`.
pub(super) fn check_client_monitoring(
    contacts: &[Spanned<String>],
    time_zone: Option<&Spanned<String>>,
    digest: &RawDigest,
    default_zone: &jiff::tz::TimeZone,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> ClientMonitoring {
    let contacts = check_addresses(contacts, src, out);
    let time_zone = check_zone(time_zone, default_zone, src, out);
    let recipients = match &digest.recipients {
        Some(r) => check_addresses(r, src, out),
        None => contacts.clone(),
    };
    let schedule = check_schedule(digest.schedule.as_ref(), time_zone.clone(), src, out);
    ClientMonitoring {
        contacts,
        time_zone,
        digest: DigestSettings {
            enabled: digest.enabled.as_ref().is_none_or(|e| *e.get_ref()),
            schedule,
            send_empty: digest.send_empty.as_ref().is_some_and(|e| *e.get_ref()),
            recipients,
        },
    }
}

/// The `[[mailbox]]` list with a preset expanded: the preset's mailboxes
/// first, in the preset's order, each overridden field by field by a
/// `[[mailbox]]` entry naming the same address; then the other entries.
pub(super) fn expand_preset(
    preset: Option<&Spanned<String>>,
    domain: &str,
    entries: Vec<RawMailbox>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Vec<RawMailbox> {
    let Some(preset) = preset else {
        return entries;
    };
    if !preset.get_ref().eq_ignore_ascii_case("crtc") {
        src.error(
            out,
            preset,
            format!("unknown preset `{}`, expected `crtc`", preset.get_ref()),
        );
        return entries;
    }
    let span = preset.span();
    let mut merged: Vec<RawMailbox> = CRTC_PRESET
        .iter()
        .map(|(local, priority)| RawMailbox {
            address: Spanned::new(span.clone(), (*local).to_owned()),
            priority: Some(Spanned::new(span.clone(), priority.as_str().to_owned())),
            issue_type: None,
            poll: None,
            user: None,
            password_env: None,
            password_file: None,
            folder: None,
        })
        .collect();
    let local_of = |a: &str| -> Option<String> {
        let a = a.to_ascii_lowercase();
        match a.split_once('@') {
            Some((l, d)) if d == domain => Some(l.to_owned()),
            Some(_) => None,
            None => Some(a),
        }
    };
    let mut extra = Vec::new();
    for entry in entries {
        let hit = local_of(entry.address.get_ref()).and_then(|l| {
            CRTC_PRESET
                .iter()
                .position(|(p, _)| *p == l)
                .filter(|&i| merged[i].address.span() == span)
        });
        match hit {
            Some(i) => {
                let base = &mut merged[i];
                // The entry's own address span, so errors and "already
                // defined at" point at the override the admin wrote.
                base.address = entry.address;
                base.priority = entry.priority.or(base.priority.take());
                base.issue_type = entry.issue_type;
                base.poll = entry.poll;
                base.user = entry.user;
                base.password_env = entry.password_env;
                base.password_file = entry.password_file;
                base.folder = entry.folder;
            }
            None => extra.push(entry),
        }
    }
    merged.extend(extra);
    merged
}

/// The issue type of mailboxes that name none: `[client] issue_type`,
/// else `CRTC Correspondence` for a preset client, else `fallback`.
pub(super) fn default_issue_type(
    client: Option<&Spanned<String>>,
    preset: Option<&Spanned<String>>,
    fallback: &str,
) -> String {
    match (client, preset) {
        (Some(t), _) => t.get_ref().clone(),
        (None, Some(_)) => CRTC_ISSUE_TYPE.to_owned(),
        (None, None) => fallback.to_owned(),
    }
}

/// `[imap]` checked once per client; resolved per mailbox by
/// [`ClientImap::account`].
pub(super) struct ClientImap {
    raw: RawImap,
    tls: TlsMode,
    port: u16,
    after_ingest: AfterIngest,
    first_sync: FirstSync,
    ca_file: Option<PathBuf>,
    dir: PathBuf,
    client: String,
}

const PLACEHOLDERS: [&str; 5] = ["{address}", "{local}", "{LOCAL}", "{domain}", "{client}"];

/// Whether `pattern` uses only known placeholders.
fn check_placeholders(pattern: &Spanned<String>, src: &Source, out: &mut Vec<Diagnostic>) {
    let mut rest = pattern.get_ref().as_str();
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        let end = tail.find('}').map_or(tail.len(), |e| e + 1);
        let ph = &tail[..end];
        if !PLACEHOLDERS.contains(&ph) {
            src.error(
                out,
                pattern,
                format!(
                    "unknown placeholder `{ph}` in `{}`, expected one of {}",
                    pattern.get_ref(),
                    PLACEHOLDERS.join(", ")
                ),
            );
            return;
        }
        rest = &tail[end..];
    }
}

fn fill(pattern: &str, address: &str, client: &str) -> String {
    let (local, domain) = address.split_once('@').unwrap_or((address, ""));
    pattern
        .replace("{address}", address)
        .replace("{local}", local)
        .replace("{LOCAL}", &local.to_ascii_uppercase())
        .replace("{domain}", domain)
        .replace("{client}", client)
}

/// `[imap]` of client `client`: `None` when absent or disabled.
pub(super) fn check_imap(
    raw: Option<RawImap>,
    client: &str,
    dir: &std::path::Path,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Option<ClientImap> {
    let raw = raw?;
    if raw.enabled.as_ref().is_some_and(|e| !*e.get_ref()) {
        return None;
    }
    let host = raw.host.get_ref();
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        src.error(
            out,
            &raw.host,
            format!("imap host `{host}` must be one word"),
        );
    }
    let tls = match raw.tls.as_ref().map(|t| t.get_ref().to_ascii_lowercase()) {
        None => TlsMode::Implicit,
        Some(t) => match t.as_str() {
            "implicit" => TlsMode::Implicit,
            "starttls" => TlsMode::Starttls,
            "none" => TlsMode::None,
            _ => {
                if let Some(v) = &raw.tls {
                    src.error(
                        out,
                        v,
                        format!("unknown tls mode `{t}`, expected implicit, starttls or none"),
                    );
                }
                TlsMode::Implicit
            }
        },
    };
    let port = raw
        .port
        .as_ref()
        .map_or(if tls == TlsMode::Implicit { 993 } else { 143 }, |p| {
            *p.get_ref()
        });
    let after_ingest = imap_after_ingest(&raw, src, out);
    let first_sync = imap_first_sync(&raw, src, out);
    for (key, v) in [
        ("poll_interval_secs", raw.poll_interval_secs.as_ref()),
        ("timeout_secs", raw.timeout_secs.as_ref()),
    ] {
        if let Some(v) = v
            && *v.get_ref() == 0
        {
            src.error(out, v, format!("{key} must be greater than 0"));
        }
    }
    if let Some(v) = &raw.failures_before_broken
        && *v.get_ref() == 0
    {
        src.error(out, v, "failures_before_broken must be greater than 0");
    }
    if raw.password_env.is_some()
        && raw.password_file.is_some()
        && let Some(v) = &raw.password_file
    {
        src.error(out, v, "set password_env or password_file, not both");
    }
    for p in [&raw.user, &raw.password_env].into_iter().flatten() {
        check_placeholders(p, src, out);
    }
    if let Some(f) = &raw.password_file {
        let as_text = Spanned::new(f.span(), f.get_ref().display().to_string());
        check_placeholders(&as_text, src, out);
    }
    let ca_file = raw.ca_file.as_ref().map(|f| {
        let path = resolve(dir, f.get_ref());
        if !path.is_file() {
            src.error(
                out,
                f,
                format!("ca_file `{}` does not exist", path.display()),
            );
        }
        path
    });
    Some(ClientImap {
        tls,
        port,
        after_ingest,
        first_sync,
        ca_file,
        dir: dir.to_path_buf(),
        client: client.to_owned(),
        raw,
    })
}

/// `after_ingest` (with `move_to` for `move`); `seen` when unset.
fn imap_after_ingest(raw: &RawImap, src: &Source, out: &mut Vec<Diagnostic>) -> AfterIngest {
    let after_ingest = match raw.after_ingest.as_ref() {
        None => AfterIngest::Seen,
        Some(v) => match v.get_ref().to_ascii_lowercase().as_str() {
            "seen" => AfterIngest::Seen,
            "delete" => AfterIngest::Delete,
            "move" => match &raw.move_to {
                Some(f) if !f.get_ref().trim().is_empty() => AfterIngest::Move(f.get_ref().clone()),
                _ => {
                    src.error(out, v, "after_ingest = \"move\" needs move_to = \"FOLDER\"");
                    AfterIngest::Seen
                }
            },
            other => {
                src.error(
                    out,
                    v,
                    format!("unknown after_ingest `{other}`, expected seen, move or delete"),
                );
                AfterIngest::Seen
            }
        },
    };
    if let (Some(m), false) = (&raw.move_to, matches!(after_ingest, AfterIngest::Move(_))) {
        src.error(out, m, "move_to is only used with after_ingest = \"move\"");
    }
    after_ingest
}

/// `first_sync`; `unseen` when unset.
fn imap_first_sync(raw: &RawImap, src: &Source, out: &mut Vec<Diagnostic>) -> FirstSync {
    match raw.first_sync.as_ref() {
        None => FirstSync::Unseen,
        Some(v) => match v.get_ref().to_ascii_lowercase().as_str() {
            "unseen" => FirstSync::Unseen,
            "all" => FirstSync::All,
            "new" => FirstSync::New,
            other => {
                src.error(
                    out,
                    v,
                    format!("unknown first_sync `{other}`, expected unseen, all or new"),
                );
                FirstSync::Unseen
            }
        },
    }
}

impl ClientImap {
    /// The account of mailbox `address` with the entry's overrides; `None`
    /// when the entry says `poll = false`.
    pub(super) fn account(
        &self,
        address: &str,
        entry: &RawMailbox,
        src: &Source,
        at: &Spanned<String>,
        out: &mut Vec<Diagnostic>,
    ) -> Option<ImapAccount> {
        if entry.poll.as_ref().is_some_and(|p| !*p.get_ref()) {
            return None;
        }
        let raw = &self.raw;
        for p in [&entry.user, &entry.password_env].into_iter().flatten() {
            check_placeholders(p, src, out);
        }
        let user = entry.user.as_ref().or(raw.user.as_ref()).map_or_else(
            || address.to_owned(),
            |u| fill(u.get_ref(), address, &self.client),
        );
        let password = match (
            &entry.password_env,
            &entry.password_file,
            &raw.password_env,
            &raw.password_file,
        ) {
            (Some(e), _, _, _) => PasswordSource::Env(fill(e.get_ref(), address, &self.client)),
            (None, Some(f), _, _) => PasswordSource::File(resolve(
                &self.dir,
                &PathBuf::from(fill(
                    &f.get_ref().display().to_string(),
                    address,
                    &self.client,
                )),
            )),
            (None, None, Some(e), _) => {
                PasswordSource::Env(fill(e.get_ref(), address, &self.client))
            }
            (None, None, None, Some(f)) => PasswordSource::File(resolve(
                &self.dir,
                &PathBuf::from(fill(
                    &f.get_ref().display().to_string(),
                    address,
                    &self.client,
                )),
            )),
            (None, None, None, None) => {
                src.error(
                    out,
                    at,
                    format!(
                        "mailbox `{address}` is polled but has no password: set password_env \
                         or password_file in [imap] or on the mailbox"
                    ),
                );
                PasswordSource::Env(String::new())
            }
        };
        // A password file that is already there must be private now; one
        // still missing is not an error here (the poller reports it as a
        // broken mailbox until it appears).
        if let PasswordSource::File(path) = &password
            && path.exists()
            && let Err(e) = crate::config::read_private_file(path)
        {
            let message = format!("password_file: {e}");
            match entry.password_file.as_ref().or(raw.password_file.as_ref()) {
                Some(f) => src.error(out, f, message),
                None => src.error(out, at, message),
            }
        }
        let folder = entry
            .folder
            .as_ref()
            .or(raw.folder.as_ref())
            .map_or_else(|| "INBOX".to_owned(), |f| f.get_ref().clone());
        Some(ImapAccount {
            host: raw.host.get_ref().clone(),
            port: self.port,
            tls: self.tls,
            ca_file: self.ca_file.clone(),
            user,
            password,
            folder,
            after_ingest: self.after_ingest.clone(),
            idle: raw.idle.as_ref().is_none_or(|i| *i.get_ref()),
            poll_interval: Duration::from_secs(
                raw.poll_interval_secs
                    .as_ref()
                    .map_or(300, |v| *v.get_ref()),
            ),
            failures_before_broken: raw
                .failures_before_broken
                .as_ref()
                .map_or(5, |v| *v.get_ref()),
            first_sync: self.first_sync,
            timeout: Duration::from_secs(raw.timeout_secs.as_ref().map_or(60, |v| *v.get_ref())),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn hh_mm_and_daily_forms_become_cron() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(
            Schedule::parse("08:00", utc.clone()).unwrap().expr,
            "0 8 * * *"
        );
        assert_eq!(
            Schedule::parse("daily 7:30", utc.clone()).unwrap().expr,
            "30 7 * * *"
        );
        assert_eq!(
            Schedule::parse("0 9 * * 1-5", utc.clone()).unwrap().expr,
            "0 9 * * 1-5"
        );
        assert!(Schedule::parse("25:00", utc.clone()).is_err());
        assert!(Schedule::parse("every morning", utc).is_err());
    }

    #[test]
    fn schedule_fires_in_the_clients_zone() {
        let tz = jiff::tz::TimeZone::get("America/Toronto").unwrap();
        let s = Schedule::parse("08:00", tz).unwrap();
        // 2026-03-02 is EST (UTC-5): 08:00 there is 13:00 UTC.
        let t: jiff::Timestamp = "2026-03-02T12:00:00Z".parse().unwrap();
        assert_eq!(s.next_after(t).unwrap().to_string(), "2026-03-02T13:00:00Z");
        let prev = s
            .latest_at_or_before("2026-03-02T13:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(prev.to_string(), "2026-03-02T13:00:00Z");
    }

    fn load_client(text: &str) -> Result<crate::config::Config, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("mailboxes")).unwrap();
        std::fs::write(dir.path().join("mailboxes/acme.toml"), text).unwrap();
        crate::config::load(dir.path()).map_err(|e| e.render())
    }

    #[test]
    fn the_crtc_preset_gives_fourteen_mailboxes_and_single_entries_override_it() {
        let cfg = load_client(
            "[client]\ncustomer = \"Acme\"\ndomain = \"acme.test\"\npreset = \"crtc\"\n\
             [imap]\nhost = \"imap.acme.test\"\nuser = \"{local}@{domain}\"\n\
             password_env = \"IMAP_{LOCAL}\"\n\
             [[mailbox]]\naddress = \"noc\"\npriority = \"Urgent\"\n\
             [[mailbox]]\naddress = \"info@acme.test\"\npoll = false\n\
             [[mailbox]]\naddress = \"legal\"\npriority = \"High\"\n",
        )
        .unwrap();
        let c = &cfg.clients[0];
        assert_eq!(c.mailboxes.len(), 15);
        let get = |a: &str| cfg.mailbox(a).unwrap().1;
        assert_eq!(get("regulatory@acme.test").priority, Priority::High);
        assert_eq!(get("billing@acme.test").priority, Priority::Medium);
        assert_eq!(get("support@acme.test").priority, Priority::Low);
        assert_eq!(get("noc@acme.test").priority, Priority::Urgent);
        assert_eq!(get("noc@acme.test").issue_type, CRTC_ISSUE_TYPE);
        assert!(get("info@acme.test").imap.is_none(), "poll = false");
        let acct = get("abuse@acme.test").imap.as_ref().unwrap();
        assert_eq!(acct.user, "abuse@acme.test");
        assert_eq!(acct.password, PasswordSource::Env("IMAP_ABUSE".into()));
        assert_eq!((acct.port, acct.tls), (993, TlsMode::Implicit));
        assert_eq!(acct.after_ingest, AfterIngest::Seen);
        assert_eq!(get("legal@acme.test").issue_type, CRTC_ISSUE_TYPE);
    }

    #[test]
    fn imap_mistakes_name_their_line() {
        let err = load_client(
            "[client]\ncustomer = \"Acme\"\ndomain = \"acme.test\"\npreset = \"crtx\"\n\
             [imap]\nhost = \"h\"\ntls = \"ssl\"\nafter_ingest = \"move\"\n\
             user = \"{locl}\"\n\
             [[mailbox]]\naddress = \"a\"\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = err
            .lines()
            .map(|l| l.rsplit_once("acme.toml:").unwrap().1)
            .collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("4:10: unknown preset `crtx`")),
            "{err}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("7:7: unknown tls mode")),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("8:16: after_ingest = \"move\" needs move_to")),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("9:8: unknown placeholder `{locl}`")),
            "{err}"
        );
        assert!(lines.iter().any(|l| l.contains("has no password")), "{err}");
    }

    #[test]
    fn placeholders_fill_from_the_address() {
        assert_eq!(
            fill("{local}@{domain}", "noc@acme.test", "acme"),
            "noc@acme.test"
        );
        assert_eq!(
            fill("IMAP_{LOCAL}_{client}", "noc@acme.test", "acme"),
            "IMAP_NOC_acme"
        );
    }
}
