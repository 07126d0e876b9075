//! Typed configuration: `rules.toml` and `mailboxes/*.toml`.
//!
//! Loading happens in two stages (see `raw.rs` and `validate/`): serde
//! mirrors of the files with `deny_unknown_fields`, then validation into the
//! typed [`Config`] below. Every problem is reported as
//! `file:line:column: message`, all of them at once, and a config with any
//! error is never used. [`diag`] holds what a check reports and the plain
//! values other modules share; it imports nothing of the crate.
//!
//! This is the core of the configuration: every table of `rules.toml`
//! except `[outbound]`, `[teams]` and `[detector]`, whose owners
//! (`outbound::settings`, `detect::table`) read them into their own types.
//! `config` imports neither: `load_with` hands those tables, with their
//! spans, to a check the caller supplies, and
//! `outbound::whole::load` puts the parts together into the configuration
//! the server runs on (`outbound::Config`, which derefs to this [`Config`]).
//! Stages that read only core tables (threading, routing, the loop guard,
//! the listener) take this type and never see the rest.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod diag;
mod monitoring;
pub mod number;
mod raw;
pub mod reload;
mod sla;
pub mod store;
mod validate;
pub mod webhooks;

pub use diag::{ConfigError, Diagnostic, PasswordSource, resolve};
pub use monitoring::{
    AfterIngest, CRTC_ISSUE_TYPE, CRTC_PRESET, DigestSettings, FirstSync, ImapAccount, Monitoring,
    Schedule, TlsMode,
};
pub use validate::load;
pub(crate) use validate::{Context, load_with, read_toml_files};

pub use crate::domain::Priority;
use crate::domain::Time;
pub use crate::files::{create_private, read_private_file};
pub use number::{FormatError, NumberFormat, TagSeen};

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory the files were read from.
    pub dir: PathBuf,
    /// Listeners, data directory, host name, TLS.
    pub server: Server,
    /// Domains served and internal domains.
    pub domains: Domains,
    /// Support, sales and info addresses.
    pub addresses: Addresses,
    /// Blocked and system senders.
    pub senders: Senders,
    /// Ticket numbering, subjects and defaults.
    pub tickets: Tickets,
    /// Size, connection and time limits.
    pub limits: Limits,
    /// Threading rules: windows, the reply-token secret.
    pub threading: Threading,
    /// Agents, by name (`[agents]`), in name order.
    pub agents: Vec<Agent>,
    /// One entry per `mailboxes/*.toml` file.
    pub clients: Vec<Client>,
    /// `[monitoring]`: admin team, alert sender, admin digest.
    pub monitoring: Monitoring,
    /// The two `[outbound]` values the loop guard reads.
    pub loop_guard: LoopGuard,
    /// `[sla]`: calendars and policies.
    pub sla: crate::sla::Settings,
    /// `[satisfaction]`: the survey on Resolved.
    pub satisfaction: Satisfaction,
    /// `[http]`: the web door.
    pub http: Http,
    /// `[[webhook]]` and `[webhooks]`.
    pub webhooks: webhooks::Webhooks,
    /// `[store]`: SQLite or PostgreSQL, and this node's name.
    pub store: store::Store,
}

/// `[satisfaction]`: asking customers to rate a resolved ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Satisfaction {
    /// Whether a ticket set to Resolved sends its requester the survey
    /// mail (`templates/satisfaction.txt`), once per resolution.
    pub enabled: bool,
}

/// `[http]`: the web door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// Listen address (`None`: no HTTP listener).
    pub listen: Option<SocketAddr>,
    /// Base of the links in mail, without a trailing `/`.
    pub public_url: String,
    /// `public_url` was not configured: it follows the bound listener.
    pub public_url_is_default: bool,
    /// Origins allowed to call the API from a browser, as written
    /// (`scheme://host[:port]`, no trailing `/`).
    pub allowed_origins: Vec<String>,
    /// Posts one IP address may make per minute.
    pub posts_per_minute_per_ip: u32,
    /// Days a customer page link works.
    pub customer_link_days: u32,
    /// The bearer token `GET /metrics` requires; `None`: it answers
    /// loopback peers only.
    pub metrics_token: Option<webhooks::Secret>,
}

/// `[outbound] x_loop` and `auto_replies_per_hour`: what the loop guard
/// (`guard`, which sits below `outbound`) needs of `[outbound]`.
///
/// `outbound::settings` checks the table; `outbound::whole::load` copies
/// these two values here, so they always equal `outbound::Settings`'s.
/// [`load`] alone does not read `[outbound]` and leaves the defaults
/// ([`LoopGuard::defaults`]), which are the table's own defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopGuard {
    /// The `X-Loop` value on every mail postdesk sends; an inbound mail
    /// carrying it is postdesk's own come back.
    pub x_loop: String,
    /// Most automatic mails to one recipient per hour.
    pub auto_replies_per_hour: u32,
}

impl LoopGuard {
    /// The automatic mails one recipient gets per hour when
    /// `[outbound] auto_replies_per_hour` is not set.
    pub const DEFAULT_AUTO_REPLIES_PER_HOUR: u32 = 5;

    /// The `X-Loop` value when `[outbound] x_loop` is not set.
    pub fn default_x_loop(hostname: &str) -> String {
        format!("postdesk@{hostname}")
    }

    /// The values when `[outbound]` sets neither, for `hostname`.
    pub fn defaults(hostname: &str) -> LoopGuard {
        LoopGuard {
            x_loop: LoopGuard::default_x_loop(hostname),
            auto_replies_per_hour: LoopGuard::DEFAULT_AUTO_REPLIES_PER_HOUR,
        }
    }
}

/// `[server]` in rules.toml.
#[derive(Debug, Clone)]
pub struct Server {
    /// SMTP listen address (`None`: no SMTP listener).
    pub smtp: Option<SocketAddr>,
    /// LMTP listen address (`None`: no LMTP listener).
    pub lmtp: Option<SocketAddr>,
    /// Where the database and outbound folder live (relative paths are
    /// relative to the config directory).
    pub data_dir: PathBuf,
    /// The name postdesk announces in its greeting and EHLO.
    pub hostname: String,
    /// Certificate and key for STARTTLS; `None` disables STARTTLS.
    pub tls: Option<TlsFiles>,
}

/// PEM files for STARTTLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// `[domains]`.
#[derive(Debug, Clone)]
pub struct Domains {
    /// Domains postdesk accepts mail for (lower-case). RCPT outside them is 550.
    pub served: Vec<String>,
    /// Domains whose senders are staff, not customers (lower-case).
    pub internal: Vec<String>,
}

/// `[addresses]`: lower-case full addresses.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// Support addresses (support queue).
    pub support: Vec<String>,
    /// Sales addresses (sales queue).
    pub sales: Vec<String>,
    /// Info addresses (sales queue).
    pub info: Vec<String>,
}

/// `[senders]`.
#[derive(Debug, Clone)]
pub struct Senders {
    /// Exact blocked addresses (lower-case).
    pub blocked: Vec<String>,
    /// Blocked address patterns (regexes over the lower-case address).
    pub blocked_patterns: Vec<regex::Regex>,
    /// Keywords that mark a local part as a system sender (lower-case).
    pub system_keywords: Vec<String>,
    /// `system_keywords` compiled once per configuration (ASCII
    /// case-insensitive, leftmost-first), so routing a message scans its
    /// local part once whatever the number of keywords. Pattern `i` is
    /// `system_keywords[i]`.
    pub system_matcher: aho_corasick::AhoCorasick,
}

impl Senders {
    /// The automaton for `keywords` (see [`Senders::system_matcher`]).
    ///
    /// # Errors
    ///
    /// When the automaton would be too large to build.
    pub fn matcher(
        keywords: &[String],
    ) -> Result<aho_corasick::AhoCorasick, aho_corasick::BuildError> {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(keywords)
    }

    /// The first system keyword found in `local_part`, if any.
    pub fn system_keyword(&self, local_part: &str) -> Option<&str> {
        let m = self.system_matcher.find(local_part)?;
        self.system_keywords
            .get(m.pattern().as_usize())
            .map(String::as_str)
    }
}

/// `[tickets]`.
#[derive(Debug, Clone)]
pub struct Tickets {
    /// Display format of a ticket number (`#{n}` gives `#1001`); see
    /// [`NumberFormat`].
    pub number_format: NumberFormat,
    /// `[tickets.number_format_by_queue]`: the format of a queue's tickets
    /// (queue name lower-case), overriding `number_format`. One number
    /// sequence serves every queue.
    pub number_format_by_queue: Vec<(String, NumberFormat)>,
    /// The first ticket number.
    pub number_start: i64,
    /// Subjects longer than this many characters are cut with `...`.
    pub subject_max: usize,
    /// Priority when no mailbox entry says otherwise.
    pub default_priority: Priority,
    /// Issue type when no mailbox entry says otherwise.
    pub default_issue_type: String,
    /// Days a Replied or Resolved ticket waits for the customer before it
    /// is closed; 0: never.
    pub auto_close_days: u32,
    /// The ticket tag in a subject, `[` + any configured format + `]`,
    /// compiled once per configuration (see [`number::tag_pattern`]).
    pub tag_pattern: regex::Regex,
    /// Every distinct format, default first: the order of the groups of
    /// `tag_pattern` and `number_pattern`.
    formats: Vec<NumberFormat>,
    /// A number written alone in any format, or bare digits.
    number_pattern: regex::Regex,
}

impl Tickets {
    /// The tickets table with these formats and values.
    ///
    /// # Errors
    ///
    /// When the tag pattern of the formats cannot be built (too large).
    pub fn new(
        number_format: NumberFormat,
        number_format_by_queue: Vec<(String, NumberFormat)>,
        number_start: i64,
        subject_max: usize,
        default_priority: Priority,
        default_issue_type: String,
    ) -> Result<Tickets, regex::Error> {
        // `auto_close_days` starts at its default, 7; `check` sets it.
        let mut formats = vec![number_format.clone()];
        for (_, f) in &number_format_by_queue {
            if !formats.contains(f) {
                formats.push(f.clone());
            }
        }
        Ok(Tickets {
            tag_pattern: number::tag_pattern(&formats)?,
            number_pattern: number::number_pattern(&formats)?,
            formats,
            number_format,
            number_format_by_queue,
            number_start,
            subject_max,
            default_priority,
            default_issue_type,
            auto_close_days: 7,
        })
    }

    /// The format of tickets in `queue` (any case).
    pub fn format_for(&self, queue: &str) -> &NumberFormat {
        self.number_format_by_queue
            .iter()
            .find(|(q, _)| q.eq_ignore_ascii_case(queue))
            .map_or(&self.number_format, |(_, f)| f)
    }

    /// The displayed form of ticket number `n`, a ticket in `queue` opened
    /// at `opened`: the queue's format, `{year}` the opening year in UTC.
    pub fn format_number(&self, n: i64, queue: &str, opened: Time) -> String {
        self.format_for(queue).render(n, opened.utc_year())
    }

    /// The tag put in subjects, e.g. `[#1042]` or `[S-2026-0042]`: the
    /// [`Tickets::format_number`] of the same ticket in brackets.
    pub fn format_tag(&self, n: i64, queue: &str, opened: Time) -> String {
        format!("[{}]", self.format_number(n, queue, opened))
    }

    /// The first tag in `subject`, in any configured format, if there is
    /// one: the number, the format that wrote it and its year.
    pub fn tag_number(&self, subject: &str) -> Option<TagSeen> {
        number::read_tag(&self.tag_pattern, &self.formats, subject)
    }

    /// The number in `text` written alone as a person types it: in any
    /// configured format (`#1042`, `S-2026-0042`) or as bare digits.
    pub fn parse_number(&self, text: &str) -> Option<i64> {
        number::read_tag(&self.number_pattern, &self.formats, text).map(|t| t.number)
    }
}

/// `[threading]`: how a message finds its ticket.
#[derive(Debug, Clone)]
pub struct Threading {
    /// Off means every message opens a ticket of its own: only for
    /// measuring what threading costs.
    pub enabled: bool,
    /// Whether the recent-ticket rule (rule 4) runs.
    pub recent_rule: bool,
    /// How recently a ticket must have been active for rule 4.
    pub recent_window: Duration,
    /// How long after closing a reply reopens a ticket; later replies open
    /// a new ticket linked to the closed one. Zero: never reopen.
    pub reopen_window: Duration,
    /// The key of the signed reply tokens (rule 1); `None` turns rule 1
    /// off: no token can verify without it.
    pub token_secret: Option<crate::token::Secret>,
    /// Where the secret came from (`token_secret_file` path or the
    /// `POSTDESK_TOKEN_SECRET` environment variable), for `check` and
    /// `explain`; never the secret itself.
    pub token_secret_source: Option<String>,
    /// The secret in force before a rotation (`token_secret_previous_file`):
    /// verifies addresses already sent, never signs.
    pub token_secret_previous: Option<crate::token::Secret>,
    /// Whether mail to customers carries a signed customer reply address
    /// (`Reply-To: support+c…@`), which threads their reply and grants
    /// nothing else.
    pub customer_reply_address: bool,
    /// What a sender who is not yet a participant becomes when their mail
    /// threads into a ticket.
    pub new_participants: NewParticipants,
}

/// `[threading] new_participants`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NewParticipants {
    /// Recorded (`new_participant` event, named in the agents'
    /// notification) but not copied on replies until an agent writes
    /// `#cc ADDRESS`.
    #[default]
    Hold,
    /// Copied on the agents' replies at once.
    Cc,
}

impl NewParticipants {
    /// The participant role such a sender gets.
    pub fn role(self) -> &'static str {
        match self {
            NewParticipants::Hold => "held",
            NewParticipants::Cc => "cc",
        }
    }
}

impl Threading {
    /// The keys that sign and verify reply addresses; `None` without a
    /// secret.
    pub fn keys(&self) -> Option<crate::token::Keys<'_>> {
        Some(crate::token::Keys {
            current: self.token_secret.as_ref()?,
            previous: self.token_secret_previous.as_ref(),
        })
    }
}

/// The built-in defaults (those the shipped `rules.toml` states), with no
/// token secret.
impl Default for Threading {
    fn default() -> Self {
        Threading {
            enabled: true,
            recent_rule: true,
            recent_window: Duration::from_secs(7 * 86_400),
            reopen_window: Duration::from_secs(14 * 86_400),
            token_secret: None,
            token_secret_source: None,
            token_secret_previous: None,
            customer_reply_address: false,
            new_participants: NewParticipants::Hold,
        }
    }
}

/// One `[agents]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The agent's name (the key).
    pub name: String,
    /// The agent's address, lower-case.
    pub address: String,
    /// Away (`away = true`): no automatic assignment.
    pub away: bool,
    /// Away through this date, inclusive (UTC).
    pub away_until: Option<jiff::civil::Date>,
}

impl Agent {
    /// Whether automatic assignment may pick the agent at `now`.
    pub fn available(&self, now: Time) -> bool {
        if self.away {
            return false;
        }
        match self.away_until {
            Some(until) => now.utc_date() > until,
            None => true,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message accepted, in bytes (SIZE; 552 above it).
    pub max_message_size: usize,
    /// Most recipients per transaction.
    pub max_recipients: usize,
    /// Most concurrent connections over all listeners.
    pub max_connections: usize,
    /// Most concurrent connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Errors in one session before it is closed.
    pub max_errors: u32,
    /// A session idle this long is closed (421).
    pub idle_timeout: Duration,
}

/// One `mailboxes/*.toml` file: a client and its addresses.
#[derive(Debug, Clone)]
pub struct Client {
    /// The file it came from.
    pub file: PathBuf,
    /// Short name (the file stem).
    pub name: String,
    /// Customer name.
    pub customer: String,
    /// The client's mail domain (lower-case).
    pub domain: String,
    /// Addresses with their priority and issue type.
    pub mailboxes: Vec<Mailbox>,
    /// Who gets the client's alerts and digests.
    pub contacts: Vec<String>,
    /// The client's time zone.
    pub time_zone: jiff::tz::TimeZone,
    /// The client's digest.
    pub digest: DigestSettings,
}

/// One address of a client.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// Full lower-case address.
    pub address: String,
    /// Priority given to tickets opened through it.
    pub priority: Priority,
    /// Issue type given to tickets opened through it.
    pub issue_type: String,
    /// Its IMAP account, when the client's mailboxes are polled.
    pub imap: Option<ImapAccount>,
}

impl Config {
    /// Whether `domain` (any case) is served.
    pub fn serves_domain(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        self.domains.served.contains(&d) || self.clients.iter().any(|c| c.domain == d)
    }

    /// The mailbox entry for an address (any case), if a client file names it.
    pub fn mailbox(&self, address: &str) -> Option<(&Client, &Mailbox)> {
        let a = address.to_ascii_lowercase();
        self.clients
            .iter()
            .flat_map(|c| c.mailboxes.iter().map(move |m| (c, m)))
            .find(|(_, m)| m.address == a)
    }

    /// Whether `address` (any case, sub-address ignored) is an agent's.
    pub fn is_agent(&self, address: &str) -> bool {
        let (base, _) = crate::token::split_detail(&address.to_ascii_lowercase());
        self.agents.iter().any(|a| a.address == base)
    }

    /// Whether `address` (any case, sub-address ignored) is one of
    /// postdesk's own: a support, sales or info address or a mailbox entry.
    pub fn is_own_address(&self, address: &str) -> bool {
        let (base, _) = crate::token::split_detail(&address.to_ascii_lowercase());
        let a = &self.addresses;
        a.support.contains(&base)
            || a.sales.contains(&base)
            || a.info.contains(&base)
            || self.mailbox(&base).is_some()
    }

    /// The data directory, resolved against the config directory.
    pub fn data_dir(&self) -> PathBuf {
        resolve(&self.dir, &self.server.data_dir)
    }

    /// Where the store is: the data directory's SQLite file, or the
    /// PostgreSQL database of `[store]`.
    pub fn store_location(&self) -> crate::store::Location {
        match self.store.backend {
            store::Backend::Sqlite => crate::store::Location::Sqlite(self.data_dir()),
            store::Backend::Postgres => {
                crate::store::Location::Postgres(std::sync::Arc::new(crate::store::pg::Target {
                    url: self.store.url.clone(),
                    password: self
                        .store
                        .password
                        .as_ref()
                        .map(|s| String::from_utf8_lossy(&s.0).into_owned()),
                    node: self.store.node.clone(),
                }))
            }
        }
    }

    /// Without a configured token secret, use the one postdesk generated in
    /// the data directory ([`GENERATED_SECRET_FILE`]); with `create`, make
    /// it first when there is none (32 random bytes, hex, mode 0600).
    /// Returns the file's path when it was created now.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or written, or holds too short a secret.
    pub fn use_generated_secret(&mut self, create: bool) -> std::io::Result<Option<PathBuf>> {
        if self.threading.token_secret.is_some() {
            return Ok(None);
        }
        let path = self.data_dir().join(GENERATED_SECRET_FILE);
        let mut created = None;
        // An existing file is read like every secret: refused when other
        // users can read it (someone copied or restored it carelessly).
        let bytes = match std::fs::symlink_metadata(&path) {
            Ok(_) => read_private_file(&path).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let hex = crate::token::Secret::generate_hex()?;
                write_private_new(&path, hex.as_bytes())?;
                created = Some(path.clone());
                hex.into_bytes()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let secret = crate::token::Secret::new(&bytes).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} holds a secret shorter than {} bytes; delete it to have a new one generated",
                    path.display(),
                    crate::token::MIN_SECRET_BYTES
                ),
            )
        })?;
        self.threading.token_secret = Some(secret);
        self.threading.token_secret_source = Some(path.display().to_string());
        Ok(created)
    }
}

/// The token secret postdesk generates in the data directory on the first
/// `serve` when none is configured.
pub const GENERATED_SECRET_FILE: &str = "token_secret";

/// Create `path` (and its directory, 0700) with `bytes`, readable by the
/// owner only (0600); fails if it exists, so two starts never overwrite
/// each other's secret.
fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = create_private(&tmp, false)?;
    f.write_all(bytes)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    // A hard link fails if `path` exists: the first writer wins.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
