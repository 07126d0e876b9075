//! Serde mirror of the TOML files: `rules.toml` and `mailboxes/*.toml`.
//!
//! These structs give the files their shape and nothing more; `validate/`
//! turns them into the typed [`Config`](super::Config). Every struct has
//! `deny_unknown_fields`, so a typo is an error and never a silent default.
//! TOML keys are the Rust field names (no `rename`), so grep finds both.
//!
//! Values that get a semantic check are [`Spanned`], so the check can name
//! the line and column. Defaults live in one `Default` impl per struct and
//! are the values documented in the shipped `rules.toml`; a default carries
//! an empty span because it is in no file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_spanned::Spanned;

/// A value that was not written in any file: its span is empty.
fn unset<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

/// A list of strings that was not written in any file.
fn unset_list(values: &[&str]) -> Vec<Spanned<String>> {
    values.iter().map(|v| unset((*v).to_owned())).collect()
}

/// The whole of `rules.toml`; every table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRules {
    /// `[server]`.
    pub server: RawServer,
    /// `[domains]`.
    pub domains: RawDomains,
    /// `[addresses]`.
    pub addresses: RawAddresses,
    /// `[senders]`.
    pub senders: RawSenders,
    /// `[tickets]`.
    pub tickets: RawTickets,
    /// `[limits]`.
    pub limits: RawLimits,
    /// `[threading]`.
    pub threading: RawThreading,
    /// `[agents]`: agent name to address, or to a table (see [`RawAgent`]).
    pub agents: BTreeMap<String, Spanned<RawAgent>>,
    /// `[teams]`: left to `outbound/settings.rs` (see [`FOREIGN_TABLES`]).
    pub teams: IgnoredAny,
    /// `[outbound]`: left to `outbound/settings.rs`.
    pub outbound: IgnoredAny,
    /// `[monitoring]`: admin team, admin digest (see `monitoring.rs`).
    pub monitoring: super::monitoring::RawMonitoring,
    /// `[detector]`: left to `detect/table.rs`.
    pub detector: IgnoredAny,
    /// `[[automation]]`: left to `automation::rules`.
    pub automation: IgnoredAny,
    /// `[sla]`: calendars and policies (see `sla.rs`).
    pub sla: super::sla::RawSla,
    /// `[satisfaction]`: the survey mail on Resolved.
    pub satisfaction: RawSatisfaction,
    /// `[http]`: the web door.
    pub http: RawHttp,
    /// `[[webhook]]`: where ticket events are POSTed (see `webhooks.rs`).
    pub webhook: Vec<super::webhooks::RawWebhook>,
    /// `[webhooks]`: how failed deliveries are retried.
    pub webhooks: super::webhooks::RawWebhooks,
    /// `[store]`: SQLite or PostgreSQL (see `store.rs`).
    pub store: super::store::RawStore,
}

/// One `[agents]` entry: `bob = "bob@example.com"`, or the table form
/// `[agents.carol]` with `address`, `away` and `away_until`.
#[derive(Debug)]
pub enum RawAgent {
    /// `name = "address"`.
    Address(String),
    /// `[agents.name]`.
    Table(RawAgentTable),
}

/// `[agents.name]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentTable {
    /// The agent's address.
    pub address: Spanned<String>,
    /// Away: no automatic assignment.
    #[serde(default)]
    pub away: bool,
    /// Away through this date (`YYYY-MM-DD`, inclusive).
    #[serde(default)]
    pub away_until: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawAgent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = RawAgent;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address, or a table with `address`, `away`, `away_until`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawAgent, E> {
                Ok(RawAgent::Address(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawAgent, A::Error> {
                RawAgentTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawAgent::Table)
            }
        }
        d.deserialize_any(Form)
    }
}

/// `[satisfaction]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSatisfaction {
    /// Whether resolving a ticket sends the customer the survey mail.
    pub enabled: bool,
}

impl Default for RawSatisfaction {
    fn default() -> Self {
        RawSatisfaction { enabled: true }
    }
}

/// The tables of `rules.toml` that `config` names but does not read: their
/// owners deserialize them (see `validate::load_with`). They stay fields of
/// [`RawRules`] so an unknown table is still an error and its message still
/// lists every table a file may hold.
pub const FOREIGN_TABLES: [&str; 4] = ["teams", "outbound", "detector", "automation"];

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// SMTP listen address; `""` turns the listener off.
    pub smtp: Option<Spanned<String>>,
    /// LMTP listen address; absent or `""` means no LMTP listener.
    pub lmtp: Option<Spanned<String>>,
    /// Data directory, relative to the config directory unless absolute.
    pub data_dir: Spanned<PathBuf>,
    /// Name announced in the greeting and EHLO, and the right-hand side of
    /// the Message-IDs postdesk makes; absent: the first served domain.
    pub hostname: Option<Spanned<String>>,
    /// STARTTLS certificate chain (PEM); needs `tls_key`.
    pub tls_cert: Option<Spanned<PathBuf>>,
    /// STARTTLS private key (PEM); needs `tls_cert`.
    pub tls_key: Option<Spanned<PathBuf>>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            smtp: Some(unset("127.0.0.1:2525".to_owned())),
            lmtp: None,
            data_dir: unset(PathBuf::from("data")),
            hostname: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[http]`: the web door (API, widget, contact and customer pages).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    /// HTTP listen address; `""` turns the listener off.
    pub listen: Spanned<String>,
    /// Base of the links in mail (`<public_url>/t/<token>`); absent:
    /// `http://` + `listen`.
    pub public_url: Option<Spanned<String>>,
    /// Origins (`https://shop.example`) whose pages may post to the API
    /// from a browser (CORS); none by default.
    pub allowed_origins: Vec<Spanned<String>>,
    /// Posts (tickets, page replies) one IP address may make per minute.
    pub posts_per_minute_per_ip: Spanned<u32>,
    /// Days a customer page link works after the mail that carries it.
    pub customer_link_days: Spanned<u32>,
    /// The environment variable holding the bearer token `/metrics`
    /// requires; without a token, `/metrics` answers loopback peers only.
    pub metrics_token_env: Option<Spanned<String>>,
    /// The owner-only file holding that token.
    pub metrics_token_file: Option<Spanned<PathBuf>>,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: unset("127.0.0.1:8025".to_owned()),
            public_url: None,
            allowed_origins: Vec::new(),
            posts_per_minute_per_ip: unset(10),
            customer_link_days: unset(90),
            metrics_token_env: None,
            metrics_token_file: None,
        }
    }
}

/// `[domains]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDomains {
    /// Domains postdesk accepts mail for.
    pub served: Vec<Spanned<String>>,
    /// Domains whose senders are staff.
    pub internal: Vec<Spanned<String>>,
}

impl Default for RawDomains {
    fn default() -> Self {
        RawDomains {
            served: unset_list(&["example.com"]),
            internal: Vec::new(),
        }
    }
}

/// `[addresses]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAddresses {
    /// Support queue addresses.
    pub support: Vec<Spanned<String>>,
    /// Sales queue addresses.
    pub sales: Vec<Spanned<String>>,
    /// Info addresses (sales queue).
    pub info: Vec<Spanned<String>>,
}

impl Default for RawAddresses {
    fn default() -> Self {
        RawAddresses {
            support: unset_list(&["support@example.com"]),
            sales: unset_list(&["sales@example.com"]),
            info: unset_list(&["info@example.com"]),
        }
    }
}

/// `[senders]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSenders {
    /// Exact blocked addresses.
    pub blocked: Vec<Spanned<String>>,
    /// Blocked address regexes.
    pub blocked_patterns: Vec<Spanned<String>>,
    /// Local-part keywords that mark a system sender.
    pub system_keywords: Vec<Spanned<String>>,
}

impl Default for RawSenders {
    fn default() -> Self {
        RawSenders {
            blocked: unset_list(&["admin@example.com", "administrator@example.com"]),
            blocked_patterns: Vec::new(),
            system_keywords: unset_list(&[
                "mailer-daemon",
                "noreply",
                "no-reply",
                "postmaster",
                "bounce",
                "donotreply",
                "do-not-reply",
                "automated",
            ]),
        }
    }
}

/// `[tickets]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTickets {
    /// Display format; must contain `{n}` (or `{n:0W}`), may contain
    /// `{year}`.
    pub number_format: Spanned<String>,
    /// `[tickets.number_format_by_queue]`: queue name to its own format.
    pub number_format_by_queue: BTreeMap<String, Spanned<String>>,
    /// First ticket number.
    pub number_start: Spanned<i64>,
    /// Longest subject kept, in characters.
    pub subject_max: Spanned<usize>,
    /// Priority name when no mailbox entry gives one.
    pub default_priority: Spanned<String>,
    /// Issue type when no mailbox entry gives one.
    pub default_issue_type: Spanned<String>,
    /// Days a Replied or Resolved ticket waits for the customer before it
    /// is closed; 0 turns auto-close off.
    pub auto_close_days: Spanned<u32>,
}

impl Default for RawTickets {
    fn default() -> Self {
        RawTickets {
            number_format: unset("#{n}".to_owned()),
            number_format_by_queue: BTreeMap::new(),
            number_start: unset(1001),
            subject_max: unset(140),
            default_priority: unset("Medium".to_owned()),
            default_issue_type: unset("General".to_owned()),
            auto_close_days: unset(7),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Largest message, in bytes.
    pub max_message_size: Spanned<usize>,
    /// Most recipients per transaction.
    pub max_recipients: Spanned<usize>,
    /// Most concurrent connections.
    pub max_connections: Spanned<usize>,
    /// Most concurrent connections from one IP.
    pub max_connections_per_ip: Spanned<usize>,
    /// Errors before a session is closed.
    pub max_errors: Spanned<u32>,
    /// Idle seconds before a session is closed.
    pub idle_timeout_secs: Spanned<u64>,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_message_size: unset(26_214_400),
            max_recipients: unset(100),
            max_connections: unset(500),
            max_connections_per_ip: unset(100),
            max_errors: unset(10),
            idle_timeout_secs: unset(300),
        }
    }
}

/// `[threading]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawThreading {
    /// Whether threading runs at all (off only to measure its cost).
    pub enabled: Spanned<bool>,
    /// Whether the recent-ticket rule runs.
    pub recent_rule: Spanned<bool>,
    /// Days a ticket stays a candidate for the recent-ticket rule.
    pub recent_window_days: Spanned<u64>,
    /// Days after closing in which a reply reopens the ticket.
    pub reopen_window_days: Spanned<u64>,
    /// File holding the reply-token secret (relative to the config
    /// directory); absent: the `POSTDESK_TOKEN_SECRET` environment variable.
    pub token_secret_file: Option<Spanned<PathBuf>>,
    /// The secret in force before a rotation: verifies addresses already
    /// sent, never signs new ones.
    pub token_secret_previous_file: Option<Spanned<PathBuf>>,
    /// Whether mail to customers carries a signed customer reply address as
    /// `Reply-To`.
    pub customer_reply_address: Spanned<bool>,
    /// What a sender who is not a participant and threads into a ticket
    /// becomes: `hold` (recorded, not copied on replies) or `cc`.
    pub new_participants: Spanned<String>,
}

impl Default for RawThreading {
    fn default() -> Self {
        RawThreading {
            enabled: unset(true),
            recent_rule: unset(true),
            recent_window_days: unset(7),
            reopen_window_days: unset(14),
            token_secret_file: None,
            token_secret_previous_file: None,
            customer_reply_address: unset(false),
            new_participants: unset("hold".to_owned()),
        }
    }
}

/// One `mailboxes/<name>.toml` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientFile {
    /// `[client]`: required.
    pub client: RawClient,
    /// `[imap]`: where the client's mailboxes are polled; absent: not polled.
    #[serde(default)]
    pub imap: Option<super::monitoring::RawImap>,
    /// `[digest]`: when the client's digest goes out.
    #[serde(default)]
    pub digest: super::monitoring::RawDigest,
    /// `[[mailbox]]` entries; a client may have none yet.
    #[serde(default)]
    pub mailbox: Vec<RawMailbox>,
}

/// `[client]`. Both keys are required: there is no sensible default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// Customer name.
    pub customer: Spanned<String>,
    /// The client's mail domain.
    pub domain: Spanned<String>,
    /// A built-in set of mailboxes (`"crtc"`); `[[mailbox]]` entries with
    /// the same address override single fields.
    #[serde(default)]
    pub preset: Option<Spanned<String>>,
    /// Who gets the client's alerts and digests.
    #[serde(default)]
    pub contacts: Vec<Spanned<String>>,
    /// IANA time zone of the digest schedule; absent: `[monitoring] time_zone`.
    #[serde(default)]
    pub time_zone: Option<Spanned<String>>,
    /// Issue type of this client's mailboxes that name none.
    #[serde(default)]
    pub issue_type: Option<Spanned<String>>,
}

/// One `[[mailbox]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMailbox {
    /// Full address, or a bare local part joined with the client domain.
    pub address: Spanned<String>,
    /// Priority name; absent means `[tickets] default_priority`.
    #[serde(default)]
    pub priority: Option<Spanned<String>>,
    /// Issue type; absent means `[tickets] default_issue_type` ("General").
    #[serde(default)]
    pub issue_type: Option<Spanned<String>>,
    /// Whether the IMAP poller reads this mailbox (when `[imap]` is on).
    #[serde(default)]
    pub poll: Option<Spanned<bool>>,
    /// IMAP user for this mailbox; overrides `[imap] user`.
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    /// Environment variable with this mailbox's password.
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    /// File with this mailbox's password.
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    /// Folder to poll; overrides `[imap] folder`.
    #[serde(default)]
    pub folder: Option<Spanned<String>>,
}
