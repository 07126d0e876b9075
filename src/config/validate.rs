//! Raw TOML into typed [`Config`](super::Config), with `file:line:column` errors.
//!
//! Receives a configuration directory; returns a [`Config`] only if every file
//! parsed and every check passed, otherwise a [`ConfigError`] holding every
//! problem found in every file. The promise: a config with an error is never
//! used, and each error names the place to fix.
//!
//! Stages, per file:
//! 1. syntax: `DeTable::parse_recoverable`, so several syntax errors in one
//!    file are reported together;
//! 2. shape: serde into the `raw` structs (`deny_unknown_fields`). Serde stops
//!    at the first error, so when the whole document fails, each key of each
//!    table (and of each `[[table]]` element) is deserialized again on its
//!    own to find the errors after the first one;
//! 3. meaning: the checks below, each pointing at the value's span. They run
//!    only on a file whose shape is right, so a file with a shape error shows
//!    its semantic errors on the next run.
//!
//! Cross-file checks (an address must be in a served or client domain, a
//! mailbox must not be defined twice) only judge what could be read: if a
//! file failed to parse, its own errors are reported and the checks that
//! depend on it wait for the next run, rather than report errors that may be
//! false.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_spanned::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::raw::{
    RawAddresses, RawClientFile, RawDomains, RawLimits, RawRules, RawSenders, RawServer,
    RawThreading, RawTickets,
};
use super::{
    Addresses, Agent, Client, Config, Domains, Limits, Mailbox, NewParticipants, Priority, Senders,
    Server, Threading, Tickets, TlsFiles, resolve,
};
use crate::token::{MIN_SECRET_BYTES, Secret};

/// The environment variable holding the reply-token secret when
/// `[threading] token_secret_file` is not set.
pub const TOKEN_SECRET_ENV: &str = "POSTDESK_TOKEN_SECRET";

/// One problem in one file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// `FILE:LINE:COLUMN: message`, on one line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem found while loading a configuration directory.
///
/// Its `Display` is [`ConfigError::render`]: one `FILE:LINE:COLUMN: message`
/// line per diagnostic.
#[derive(Debug)]
pub struct ConfigError {
    /// All diagnostics, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// One `FILE:LINE:COLUMN: message` line per diagnostic, joined by `\n`
    /// (no trailing newline).
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for ConfigError {}

/// Load and validate `dir/rules.toml` and `dir/mailboxes/*.toml`.
///
/// Mailbox files are read in file-name order; a missing `mailboxes`
/// directory means no clients. Files whose name starts with `.` (editor
/// locks and backups) are skipped.
///
/// # Errors
///
/// Every problem found, each with file, line and column: a missing or
/// unreadable file, TOML syntax, unknown keys and wrong types, and failed
/// semantic checks. Diagnostics are sorted by file (`rules.toml` first), then
/// position.
pub fn load(dir: &Path) -> Result<Config, ConfigError> {
    let mut out = Vec::new();

    let rules_path = dir.join("rules.toml");
    let rules_src = Source::read(rules_path.clone(), &mut out);
    let rules: Option<RawRules> = rules_src.as_ref().and_then(|s| parse(s, &mut out));

    let mut all_clients_read = true;
    let mut client_files = Vec::new();
    for path in mailbox_files(dir, &mut out) {
        match Source::read(path, &mut out) {
            Some(src) => {
                let raw: Option<RawClientFile> = parse(&src, &mut out);
                all_clients_read &= raw.is_some();
                client_files.push((src, raw));
            }
            None => all_clients_read = false,
        }
    }

    // What each cross-file check may rely on. A list is `None` when its file
    // could not be read, so a check never fails for want of it.
    let known = Known {
        served: rules
            .as_ref()
            .map(|r| r.domains.served.iter().map(lower).collect()),
        clients: all_clients_read.then(|| {
            client_files
                .iter()
                .filter_map(|(_, raw)| raw.as_ref())
                .map(|raw| lower(&raw.client.domain))
                .collect()
        }),
    };

    let rules = match (rules_src, rules) {
        (Some(src), Some(raw)) => Some(check_rules(raw, &src, dir, &known, &mut out)),
        _ => None,
    };

    let (default_priority, default_issue_type, default_zone) = match &rules {
        Some(r) => (
            r.tickets.default_priority,
            r.tickets.default_issue_type.clone(),
            r.monitoring.time_zone.clone(),
        ),
        // Only used to finish checking the client files: with rules.toml
        // broken no Config is built.
        None => (Priority::Medium, String::new(), jiff::tz::TimeZone::UTC),
    };
    let mut seen = HashMap::new();
    let mut clients = Vec::new();
    for (src, raw) in client_files {
        if let Some(raw) = raw {
            clients.push(check_client(
                raw,
                &src,
                dir,
                default_priority,
                &default_issue_type,
                &default_zone,
                &known,
                &mut seen,
                &mut out,
            ));
        }
    }

    let engine = rules.as_ref().and_then(|r| r.detector_engine.clone());
    match (rules, engine) {
        (Some(rules), Some(detector_engine)) if out.is_empty() => Ok(Config {
            dir: dir.to_path_buf(),
            server: rules.server,
            domains: rules.domains,
            addresses: rules.addresses,
            senders: rules.senders,
            tickets: rules.tickets,
            limits: rules.limits,
            threading: rules.threading,
            agents: rules.agents,
            monitoring: rules.monitoring,
            outbound: rules.outbound,
            detector: rules.detector,
            detector_engine,
            clients,
        }),
        _ => {
            // rules.toml first, then the mailboxes directory, then the
            // mailbox files by name; within a file, by position. The sort is
            // stable, so errors at one position keep the order found.
            let mailboxes = dir.join("mailboxes");
            out.sort_by(|a, b| {
                let rank = |d: &Diagnostic| {
                    (
                        d.file != rules_path,
                        d.file != mailboxes,
                        d.file.clone(),
                        d.line,
                        d.column,
                    )
                };
                rank(a).cmp(&rank(b))
            });
            Err(ConfigError { diagnostics: out })
        }
    }
}

/// The text of one file, kept so a byte span can become line and column.
pub(super) struct Source {
    path: PathBuf,
    text: String,
}

impl Source {
    /// Read `path` as UTF-8, or report why not.
    fn read(path: PathBuf, out: &mut Vec<Diagnostic>) -> Option<Source> {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                out.push(Diagnostic {
                    file: path,
                    line: 1,
                    column: 1,
                    message: format!("cannot read file: {e}"),
                });
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some(Source { path, text }),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                // Locate the bad byte using the valid prefix only.
                let prefix = String::from_utf8_lossy(e.as_bytes().get(..valid).unwrap_or(&[]));
                let src = Source {
                    path,
                    text: prefix.into_owned(),
                };
                out.push(src.at(valid..valid, "file is not valid UTF-8"));
                None
            }
        }
    }

    /// A diagnostic at the start of `span`. An empty span at 0 (a default
    /// value, in no file) lands on 1:1.
    fn at(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, column) = line_col(&self.text, span.start);
        let message: String = message.into();
        Diagnostic {
            file: self.path.clone(),
            line,
            column,
            // One diagnostic, one line: `render` promises that.
            message: message.replace(['\r', '\n'], " "),
        }
    }

    /// Push a diagnostic for `value`.
    pub(super) fn error<T>(
        &self,
        out: &mut Vec<Diagnostic>,
        value: &Spanned<T>,
        message: impl Into<String>,
    ) {
        out.push(self.at(value.span(), message));
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The `*.toml` files in `dir/mailboxes`, sorted by name.
fn mailbox_files(dir: &Path, out: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mailboxes = dir.join("mailboxes");
    let report = |out: &mut Vec<Diagnostic>, e: std::io::Error| {
        out.push(Diagnostic {
            file: mailboxes.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read directory: {e}"),
        });
    };
    let entries = match std::fs::read_dir(&mailboxes) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            report(out, e);
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                let is_toml = path.extension().is_some_and(|e| e == "toml");
                if is_toml && !hidden && path.is_file() {
                    files.push(path);
                }
            }
            Err(e) => report(out, e),
        }
    }
    files.sort();
    files
}

/// Syntax and shape: `src` into `T`, or every error found on the way.
fn parse<T: DeserializeOwned>(src: &Source, out: &mut Vec<Diagnostic>) -> Option<T> {
    let (root, syntax) = DeTable::parse_recoverable(&src.text);
    if !syntax.is_empty() {
        // The recovered tree is partial: checking its shape would only add
        // noise to the syntax errors.
        out.extend(syntax.iter().map(|e| toml_error(src, e)));
        return None;
    }

    let first = match T::deserialize(toml::de::Deserializer::from(root.clone())) {
        Ok(value) => return Some(value),
        Err(e) => e,
    };

    // Serde stopped at `first`. To find the errors behind it, deserialize
    // each key of each table again, alone in an otherwise empty document:
    // `[t] a = 1` becomes `{ t = { a = 1 } }`, and each element of an array
    // of tables (`[[mailbox]]`) is split the same way. The tables made up
    // here have a span no real value has, so errors about *them* (a required
    // key missing because it was left out on purpose) are recognised and
    // dropped. (A key that is really missing is reported by the
    // whole-document pass when it is the first error, else on the next run.)
    let nowhere = usize::MAX..usize::MAX;
    let mut found = vec![toml_error(src, &first)];
    for (key, value) in root.get_ref().iter() {
        for part in probes(value, &nowhere) {
            let mut alone = DeTable::new();
            alone.insert(key.clone(), part);
            let doc = toml::de::Deserializer::from(Spanned::new(nowhere.clone(), alone));
            if let Err(e) = T::deserialize(doc)
                && e.span() != Some(nowhere.clone())
            {
                found.push(toml_error(src, &e));
            }
        }
    }
    found.sort_by_key(|d| (d.line, d.column));
    found.dedup_by(|a, b| (a.line, a.column, &a.message) == (b.line, b.column, &b.message));
    out.extend(found);
    None
}

/// The one-key pieces of a top-level value (see [`parse`]): one table per
/// key of a table, one single-element array of one-key tables per key of
/// each element of an array of tables, or the value itself.
fn probes<'i>(value: &Spanned<DeValue<'i>>, nowhere: &Range<usize>) -> Vec<Spanned<DeValue<'i>>> {
    let one_key_tables = |table: &DeTable<'i>| -> Vec<Spanned<DeValue<'i>>> {
        table
            .iter()
            .map(|(k, v)| {
                let mut one = DeTable::new();
                one.insert(k.clone(), v.clone());
                Spanned::new(nowhere.clone(), DeValue::Table(one))
            })
            .collect()
    };
    match value.get_ref() {
        DeValue::Table(table) if !table.is_empty() => one_key_tables(table),
        DeValue::Array(items)
            if !items.is_empty() && items.iter().all(|v| v.get_ref().is_table()) =>
        {
            items
                .iter()
                .filter_map(|item| item.get_ref().as_table())
                .flat_map(one_key_tables)
                .map(|piece| {
                    let mut one = DeArray::new();
                    one.push(piece);
                    Spanned::new(value.span(), DeValue::Array(one))
                })
                .collect()
        }
        _ => vec![value.clone()],
    }
}

/// A toml error as a diagnostic, keeping toml's message text.
fn toml_error(src: &Source, e: &toml::de::Error) -> Diagnostic {
    src.at(e.span().unwrap_or(0..0), e.message())
}

/// What the cross-file checks know about which domains are served.
struct Known {
    /// `[domains] served`, lower-case; `None` if rules.toml could not be read.
    served: Option<Vec<String>>,
    /// Every client domain, lower-case; `None` if a mailbox file could not be
    /// read.
    clients: Option<Vec<String>>,
}

impl Known {
    /// Whether `domain` is served: `None` when that depends on a file that
    /// could not be read.
    fn serves(&self, domain: &str) -> Option<bool> {
        let lists = [&self.served, &self.clients];
        if lists
            .iter()
            .any(|l| l.as_ref().is_some_and(|l| l.iter().any(|d| d == domain)))
        {
            Some(true)
        } else if lists.iter().all(|l| l.is_some()) {
            Some(false)
        } else {
            None
        }
    }
}

/// The lower-case form of a spanned string (addresses and domains are
/// compared case-insensitively, as `Config` looks them up).
fn lower(value: &Spanned<String>) -> String {
    value.get_ref().to_ascii_lowercase()
}

/// The checked parts of rules.toml.
struct Rules {
    server: Server,
    domains: Domains,
    addresses: Addresses,
    senders: Senders,
    tickets: Tickets,
    limits: Limits,
    threading: Threading,
    agents: Vec<Agent>,
    monitoring: super::Monitoring,
    outbound: crate::outbound::Settings,
    detector: crate::detect::DetectorConfig,
    detector_engine: Option<std::sync::Arc<crate::detect::Detector>>,
}

/// Build the detector of `[detector]`; an error points at the table header
/// (1:1 when the file has none) and leaves no detector (no `Config` is built
/// with a diagnostic anyway).
fn check_detector(
    cfg: &crate::detect::DetectorConfig,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Option<std::sync::Arc<crate::detect::Detector>> {
    match crate::detect::Detector::new(cfg) {
        Ok(d) => Some(std::sync::Arc::new(d)),
        Err(e) => {
            out.push(src.at(detector_table_span(&src.text), e.to_string()));
            None
        }
    }
}

/// The byte span of the first `[detector` table header in `text`, or 0..0.
fn detector_table_span(text: &str) -> Range<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("[detector]") || trimmed.starts_with("[detector.") {
            let at = offset + (line.len() - trimmed.len());
            return at..at;
        }
        offset += line.len();
    }
    0..0
}

/// Semantic checks of rules.toml.
fn check_rules(
    raw: RawRules,
    src: &Source,
    dir: &Path,
    known: &Known,
    out: &mut Vec<Diagnostic>,
) -> Rules {
    let served_span = raw.domains.served.first().map(Spanned::span);
    // Unset, the hostname is the first served domain, so Message-IDs and
    // X-Loop name a domain of ours rather than `localhost`.
    let hostname = match &raw.server.hostname {
        Some(h) => h.get_ref().clone(),
        None => raw
            .domains
            .served
            .first()
            .map(|d| d.get_ref().to_ascii_lowercase())
            .unwrap_or_else(|| "localhost".to_owned()),
    };
    let addresses = check_addresses(raw.addresses, served_span, src, known, out);
    let monitoring = super::monitoring::check_monitoring(
        raw.monitoring,
        addresses.support.first().map(String::as_str),
        src,
        out,
    );
    let outbound = crate::outbound::settings::check(
        raw.outbound,
        raw.teams,
        &raw.agents,
        &hostname,
        dir,
        &|span, message| src.at(span, message),
        out,
    );
    Rules {
        outbound,
        server: check_server(raw.server, hostname, src, dir, out),
        domains: check_domains(raw.domains, src, out),
        addresses,
        monitoring,
        senders: check_senders(raw.senders, src, out),
        tickets: check_tickets(raw.tickets, src, out),
        limits: check_limits(raw.limits, src, out),
        threading: check_threading(raw.threading, src, dir, out),
        agents: check_agents(raw.agents, src, out),
        detector_engine: check_detector(&raw.detector, src, out),
        detector: raw.detector,
    }
}

fn check_threading(
    raw: RawThreading,
    src: &Source,
    dir: &Path,
    out: &mut Vec<Diagnostic>,
) -> Threading {
    const DAY: u64 = 86_400;
    // Past a century a window is a typo, and days * 86400 must stay far
    // from overflowing the i64 seconds it is compared with.
    const MAX_DAYS: u64 = 36_500;
    let days = |key: &str, value: &Spanned<u64>, zero_ok: bool, out: &mut Vec<Diagnostic>| {
        let d = *value.get_ref();
        if d > MAX_DAYS {
            src.error(
                out,
                value,
                format!("{key} must be at most {MAX_DAYS}, not {d}"),
            );
        } else if d == 0 && !zero_ok {
            src.error(
                out,
                value,
                format!(
                    "{key} must be greater than 0; set recent_rule = false to turn the rule off"
                ),
            );
        }
        Duration::from_secs(d.min(MAX_DAYS) * DAY)
    };
    let recent_window = days("recent_window_days", &raw.recent_window_days, false, out);
    let reopen_window = days("reopen_window_days", &raw.reopen_window_days, true, out);

    let short = format!("shorter than {MIN_SECRET_BYTES} bytes, too short to sign reply tokens");
    // Every secret file goes through read_private_file: one other users
    // can read is refused, naming the file and the chmod that fixes it.
    let read_secret = |key: &str, file: &Spanned<PathBuf>, out: &mut Vec<Diagnostic>| {
        let path = resolve(dir, file.get_ref());
        match crate::config::read_private_file(&path) {
            Ok(bytes) => match Secret::new(&bytes) {
                Some(secret) => Some((secret, path.display().to_string())),
                None => {
                    src.error(out, file, format!("{key} `{}` is {short}", path.display()));
                    None
                }
            },
            Err(e) => {
                src.error(out, file, format!("{key}: {e}"));
                None
            }
        }
    };
    let (token_secret, token_secret_source) = match &raw.token_secret_file {
        Some(file) => read_secret("token_secret_file", file, out).unzip(),
        None => match std::env::var_os(TOKEN_SECRET_ENV) {
            Some(value) if !value.is_empty() => {
                match Secret::new(value.as_encoded_bytes()) {
                    Some(secret) => (Some(secret), Some(TOKEN_SECRET_ENV.to_owned())),
                    None => {
                        // Not in any file: point at the top of rules.toml,
                        // where [threading] token_secret_file would go.
                        out.push(src.at(
                            0..0,
                            format!("environment variable {TOKEN_SECRET_ENV} is {short}"),
                        ));
                        (None, None)
                    }
                }
            }
            _ => (None, None),
        },
    };
    let token_secret_previous = raw.token_secret_previous_file.as_ref().and_then(|file| {
        let previous = read_secret("token_secret_previous_file", file, out)?.0;
        if token_secret.as_ref() == Some(&previous) {
            src.error(
                out,
                file,
                "token_secret_previous_file holds the current secret; \
                 it must hold the one in force before the rotation"
                    .to_owned(),
            );
        }
        Some(previous)
    });
    let new_participants = match raw.new_participants.get_ref().as_str() {
        "hold" => NewParticipants::Hold,
        "cc" => NewParticipants::Cc,
        other => {
            src.error(
                out,
                &raw.new_participants,
                format!("new_participants must be \"hold\" or \"cc\", not {other:?}"),
            );
            NewParticipants::Hold
        }
    };
    Threading {
        enabled: raw.enabled.into_inner(),
        recent_rule: raw.recent_rule.into_inner(),
        recent_window,
        reopen_window,
        token_secret,
        token_secret_source,
        token_secret_previous,
        customer_reply_address: raw.customer_reply_address.into_inner(),
        new_participants,
    }
}

fn check_agents(
    raw: std::collections::BTreeMap<String, Spanned<String>>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Vec<Agent> {
    let mut agents = Vec::new();
    for (name, address) in raw {
        match check_address(address.get_ref()) {
            Ok(a) if a.contains('+') => src.error(
                out,
                &address,
                format!("agent address `{a}` must not have a +sub-address"),
            ),
            Ok(a) => agents.push(Agent { name, address: a }),
            Err(e) => src.error(out, &address, e),
        }
    }
    agents
}

fn check_server(
    raw: RawServer,
    hostname: String,
    src: &Source,
    dir: &Path,
    out: &mut Vec<Diagnostic>,
) -> Server {
    let listen = |value: Option<Spanned<String>>, out: &mut Vec<Diagnostic>| {
        let value = value?;
        if value.get_ref().is_empty() {
            return None;
        }
        match value.get_ref().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(e) => {
                src.error(
                    out,
                    &value,
                    format!(
                        "invalid listen address `{}`: {e}; expected IP:PORT such as \
                         \"127.0.0.1:2525\", or \"\" for none",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    };
    let smtp = listen(raw.smtp, out);
    let lmtp = listen(raw.lmtp, out);

    if raw.data_dir.get_ref().as_os_str().is_empty() {
        src.error(out, &raw.data_dir, "data_dir must not be empty");
    }
    if let Some(h) = &raw.hostname {
        let hostname = h.get_ref();
        if hostname.is_empty() || hostname.chars().any(char::is_whitespace) {
            src.error(
                out,
                h,
                format!("hostname `{hostname}` must be one non-empty word without spaces"),
            );
        }
    }

    let tls = match (raw.tls_cert, raw.tls_key) {
        (None, None) => None,
        (Some(cert), None) => {
            src.error(
                out,
                &cert,
                "tls_cert is set but tls_key is not: set both or neither",
            );
            None
        }
        (None, Some(key)) => {
            src.error(
                out,
                &key,
                "tls_key is set but tls_cert is not: set both or neither",
            );
            None
        }
        (Some(cert), Some(key)) => {
            // Resolved here, like every relative path in rules.toml, against
            // the config directory, so the listener reads the same file
            // whatever the working directory. Checked here so `postdesk
            // check` names the line, rather than the listener failing at
            // start-up.
            let mut found = |name: &str, file: &Spanned<PathBuf>| {
                let path = resolve(dir, file.get_ref());
                if !path.is_file() {
                    src.error(
                        out,
                        file,
                        format!("{name} file `{}` does not exist", path.display()),
                    );
                }
                path
            };
            Some(TlsFiles {
                cert: found("tls_cert", &cert),
                key: found("tls_key", &key),
            })
        }
    };

    Server {
        smtp,
        lmtp,
        data_dir: raw.data_dir.into_inner(),
        hostname,
        tls,
    }
}

/// A lower-case domain, or why it is not one.
fn check_domain(value: &str) -> Result<String, String> {
    let domain = value.to_ascii_lowercase();
    if domain.is_empty() {
        Err("domain must not be empty".to_owned())
    } else if domain.contains('@') {
        Err(format!("`{value}` is a domain and must not contain `@`"))
    } else if domain.chars().any(char::is_whitespace) {
        Err(format!("domain `{value}` must not contain spaces"))
    } else if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        Err(format!("domain `{value}` has an empty label"))
    } else {
        Ok(domain)
    }
}

/// A lower-case `local@domain` address, or why it is not one.
pub(super) fn check_address(value: &str) -> Result<String, String> {
    let address = value.to_ascii_lowercase();
    if address
        .chars()
        .any(|c| c.is_whitespace() || c == '<' || c == '>')
    {
        return Err(format!(
            "address `{value}` must be a bare local@domain, without spaces or `<>`"
        ));
    }
    match address.split_once('@') {
        None => Err(format!("`{value}` is not an address: it has no `@`")),
        Some((local, domain)) if local.is_empty() || domain.is_empty() || domain.contains('@') => {
            Err(format!(
                "`{value}` is not an address: expected local@domain"
            ))
        }
        Some((_, domain)) => check_domain(domain)
            .map(|_| address.clone())
            .map_err(|e| format!("address `{value}`: {e}")),
    }
}

/// Check every value of a list with `check`, reporting failures at the value.
fn check_list(
    values: &[Spanned<String>],
    check: fn(&str) -> Result<String, String>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| match check(v.get_ref()) {
            Ok(ok) => Some(ok),
            Err(e) => {
                src.error(out, v, e);
                None
            }
        })
        .collect()
}

fn check_domains(raw: RawDomains, src: &Source, out: &mut Vec<Diagnostic>) -> Domains {
    Domains {
        served: check_list(&raw.served, check_domain, src, out),
        internal: check_list(&raw.internal, check_domain, src, out),
    }
}

fn check_addresses(
    raw: RawAddresses,
    served_span: Option<Range<usize>>,
    src: &Source,
    known: &Known,
    out: &mut Vec<Diagnostic>,
) -> Addresses {
    let list = |key: &str, values: &[Spanned<String>], out: &mut Vec<Diagnostic>| {
        let mut checked = Vec::new();
        for value in values {
            let address = match check_address(value.get_ref()) {
                Ok(address) => address,
                Err(e) => {
                    src.error(out, value, e);
                    continue;
                }
            };
            let domain = address.rsplit('@').next().unwrap_or_default();
            if known.serves(domain) == Some(false) {
                if value.span().is_empty() {
                    // A default address left behind by a change to `served`:
                    // point at that change.
                    let span = served_span.clone().unwrap_or(0..0);
                    out.push(src.at(
                        span,
                        format!(
                            "default {key} address `{address}` is not in a served domain or \
                             a client domain; set [addresses] {key}"
                        ),
                    ));
                } else {
                    src.error(
                        out,
                        value,
                        format!(
                            "{key} address `{address}` is not in a served domain or a client \
                             domain"
                        ),
                    );
                }
            }
            checked.push(address);
        }
        checked
    };
    Addresses {
        support: list("support", &raw.support, out),
        sales: list("sales", &raw.sales, out),
        info: list("info", &raw.info, out),
    }
}

fn check_senders(raw: RawSenders, src: &Source, out: &mut Vec<Diagnostic>) -> Senders {
    let blocked = check_list(&raw.blocked, check_address, src, out);
    let blocked_patterns = raw
        .blocked_patterns
        .iter()
        .filter_map(|p| match regex::Regex::new(p.get_ref()) {
            Ok(re) => Some(re),
            Err(e) => {
                src.error(out, p, format!("invalid regex: {}", regex_message(&e)));
                None
            }
        })
        .collect();
    let system_keywords = check_list(
        &raw.system_keywords,
        |k| {
            if k.trim().is_empty() {
                // An empty keyword would mark every sender as a system one.
                Err("system keyword must not be empty".to_owned())
            } else {
                Ok(k.to_ascii_lowercase())
            }
        },
        src,
        out,
    );
    let system_matcher = Senders::matcher(&system_keywords).unwrap_or_else(|e| {
        let at = raw.system_keywords.first().map_or(0..0, Spanned::span);
        out.push(src.at(at, format!("system_keywords cannot be compiled: {e}")));
        aho_corasick::AhoCorasick::new(Vec::<&str>::new())
            .expect("an automaton without patterns always builds")
    });
    Senders {
        blocked,
        blocked_patterns,
        system_keywords,
        system_matcher,
    }
}

/// The one-line reason inside regex's multi-line syntax error.
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.trim().to_owned(), str::to_owned)
}

/// A priority name, or a diagnostic and `Medium` (never used: any
/// diagnostic means no Config).
fn check_priority(value: &Spanned<String>, src: &Source, out: &mut Vec<Diagnostic>) -> Priority {
    Priority::parse(value.get_ref()).unwrap_or_else(|| {
        src.error(
            out,
            value,
            format!(
                "unknown priority `{}`, expected one of Low, Medium, High, Urgent",
                value.get_ref()
            ),
        );
        Priority::Medium
    })
}

/// `value`, reporting it if it is not greater than zero.
fn positive<T>(key: &str, value: Spanned<T>, src: &Source, out: &mut Vec<Diagnostic>) -> T
where
    T: Copy + PartialOrd + Default + fmt::Display,
{
    if *value.get_ref() <= T::default() {
        src.error(
            out,
            &value,
            format!("{key} must be greater than 0, not {}", value.get_ref()),
        );
    }
    value.into_inner()
}

/// A non-empty issue type.
fn check_issue_type(value: Spanned<String>, src: &Source, out: &mut Vec<Diagnostic>) -> String {
    if value.get_ref().trim().is_empty() {
        src.error(out, &value, "issue type must not be empty");
    }
    value.into_inner()
}

fn check_tickets(raw: RawTickets, src: &Source, out: &mut Vec<Diagnostic>) -> Tickets {
    if !raw.number_format.get_ref().contains("{n}") {
        src.error(
            out,
            &raw.number_format,
            format!(
                "number_format `{}` must contain `{{n}}`, where the number goes",
                raw.number_format.get_ref()
            ),
        );
    }
    let tag_pattern = super::tag_pattern(raw.number_format.get_ref()).unwrap_or_else(|e| {
        src.error(
            out,
            &raw.number_format,
            format!("number_format cannot be made a tag pattern: {e}"),
        );
        regex::Regex::new(r"[^\s\S]").expect("a regex that never matches is valid")
    });
    Tickets {
        tag_pattern,
        default_priority: check_priority(&raw.default_priority, src, out),
        number_format: raw.number_format.into_inner(),
        number_start: positive("number_start", raw.number_start, src, out),
        subject_max: positive("subject_max", raw.subject_max, src, out),
        default_issue_type: check_issue_type(raw.default_issue_type, src, out),
    }
}

fn check_limits(raw: RawLimits, src: &Source, out: &mut Vec<Diagnostic>) -> Limits {
    Limits {
        max_message_size: positive("max_message_size", raw.max_message_size, src, out),
        max_recipients: positive("max_recipients", raw.max_recipients, src, out),
        max_connections: positive("max_connections", raw.max_connections, src, out),
        max_connections_per_ip: positive(
            "max_connections_per_ip",
            raw.max_connections_per_ip,
            src,
            out,
        ),
        max_errors: positive("max_errors", raw.max_errors, src, out),
        idle_timeout: Duration::from_secs(positive(
            "idle_timeout_secs",
            raw.idle_timeout_secs,
            src,
            out,
        )),
    }
}

/// Semantic checks of one mailbox file. `seen` maps each mailbox address
/// already defined to where, so a second definition names the first.
#[allow(clippy::too_many_arguments)] // one call site; the defaults come from rules.toml
fn check_client(
    raw: RawClientFile,
    src: &Source,
    dir: &Path,
    default_priority: Priority,
    default_issue_type: &str,
    default_zone: &jiff::tz::TimeZone,
    known: &Known,
    seen: &mut HashMap<String, String>,
    out: &mut Vec<Diagnostic>,
) -> Client {
    let domain = match check_domain(raw.client.domain.get_ref()) {
        Ok(domain) => domain,
        Err(e) => {
            src.error(out, &raw.client.domain, e);
            String::new()
        }
    };
    if raw.client.customer.get_ref().trim().is_empty() {
        src.error(out, &raw.client.customer, "customer must not be empty");
    }

    let name = src
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let monitoring = super::monitoring::check_client_monitoring(
        &raw.client.contacts,
        raw.client.time_zone.as_ref(),
        &raw.digest,
        default_zone,
        src,
        out,
    );
    let imap = super::monitoring::check_imap(raw.imap, &name, dir, src, out);
    let default_issue_type = super::monitoring::default_issue_type(
        raw.client.issue_type.as_ref(),
        raw.client.preset.as_ref(),
        default_issue_type,
    );
    let entries = super::monitoring::expand_preset(
        raw.client.preset.as_ref(),
        &domain,
        raw.mailbox,
        src,
        out,
    );

    let mut mailboxes = Vec::new();
    for entry in entries {
        let given = entry.address.get_ref();
        let address = if given.contains('@') {
            check_address(given)
        } else if given.is_empty() || given.chars().any(char::is_whitespace) {
            Err(format!(
                "mailbox address `{given}` must be a full address or a local part without spaces"
            ))
        } else {
            // A bare local part belongs to the client's domain.
            check_address(&format!("{given}@{domain}"))
        };
        let address = match address {
            Ok(address) => address,
            Err(e) => {
                src.error(out, &entry.address, e);
                continue;
            }
        };
        let address_domain = address.rsplit('@').next().unwrap_or_default();
        if known.serves(address_domain) == Some(false) {
            src.error(
                out,
                &entry.address,
                format!(
                    "mailbox `{address}` is not in a served domain or a client domain, so mail \
                     to it would be refused"
                ),
            );
        }
        let here = src.at(entry.address.span(), "");
        let here = format!("{}:{}:{}", here.file.display(), here.line, here.column);
        if let Some(first) = seen.get(&address) {
            src.error(
                out,
                &entry.address,
                format!("mailbox `{address}` is already defined at {first}"),
            );
        } else {
            seen.insert(address.clone(), here);
        }

        let imap = imap
            .as_ref()
            .and_then(|i| i.account(&address, &entry, src, &entry.address, out));
        let priority = entry
            .priority
            .map_or(default_priority, |p| check_priority(&p, src, out));
        let issue_type = entry.issue_type.map_or_else(
            || default_issue_type.clone(),
            |t| check_issue_type(t, src, out),
        );
        mailboxes.push(Mailbox {
            address,
            priority,
            issue_type,
            imap,
        });
    }

    Client {
        file: src.path.clone(),
        name,
        customer: raw.client.customer.into_inner(),
        domain,
        mailboxes,
        contacts: monitoring.contacts,
        time_zone: monitoring.time_zone,
        digest: monitoring.digest,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    /// A config directory with `files` (relative path, text) in it, each
    /// readable by its owner only (secrets must be).
    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        dir
    }

    /// The rendered diagnostics of loading `dir`, with the directory prefix
    /// removed so tests can compare whole lines.
    fn errors(dir: &tempfile::TempDir) -> Vec<String> {
        let err = load(dir.path()).expect_err("config should have errors");
        let prefix = format!("{}/", dir.path().display());
        err.render()
            .lines()
            .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_owned())
            .collect()
    }

    const CLIENT: &str = "\
[client]
customer = \"Acme\"
domain = \"acme.test\"
";

    #[test]
    fn shipped_config_loads() {
        let cfg = load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert_eq!(cfg.server.smtp, Some("127.0.0.1:2525".parse().unwrap()));
        assert_eq!(cfg.server.lmtp, None);
        assert!(cfg.server.tls.is_none());
        assert_eq!(cfg.domains.served, ["example.com"]);
        assert!(cfg.serves_domain("EXAMPLE.NET"));
        let (client, mailbox) = cfg.mailbox("Regulatory@example.net").unwrap();
        assert_eq!(client.name, "example");
        assert_eq!(client.customer, "Example Telecom");
        assert_eq!(mailbox.priority, Priority::High);
        assert_eq!(mailbox.issue_type, "CRTC Correspondence");
        let summary: Vec<_> = client
            .mailboxes
            .iter()
            .map(|m| (m.address.as_str(), m.priority, m.issue_type.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "regulatory@example.net",
                    Priority::High,
                    "CRTC Correspondence"
                ),
                (
                    "billing@example.net",
                    Priority::Medium,
                    "Accounting Support"
                ),
                ("support@example.net", Priority::Low, "General"),
            ]
        );
    }

    #[test]
    fn shipped_rules_toml_states_exactly_the_builtin_defaults() {
        let shipped = load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let dir = dir_with(&[("rules.toml", "")]);
        let builtin = load(dir.path()).unwrap();
        let parts = |c: &Config| {
            format!(
                "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                c.server,
                c.domains,
                c.addresses,
                c.senders,
                c.tickets,
                c.limits,
                c.threading,
                c.agents
            )
        };
        assert_eq!(parts(&shipped), parts(&builtin));
        assert_eq!(shipped.detector, builtin.detector);
        assert_eq!(builtin.detector, crate::detect::DetectorConfig::default());
        assert_eq!(
            shipped.detector_engine.version(),
            builtin.detector_engine.version()
        );
        assert_eq!(builtin.limits.idle_timeout, Duration::from_secs(300));
        // The Default used where no file is read is the same as the
        // built-in one (no secret either way unless the environment sets it).
        let mut threading = builtin.threading.clone();
        threading.token_secret = None;
        threading.token_secret_source = None;
        assert_eq!(
            format!("{threading:?}"),
            format!("{:?}", Threading::default())
        );
        assert_eq!(builtin.tickets.format_number(1001), "#1001");
        assert!(builtin.clients.is_empty(), "no mailboxes dir is fine");
    }

    #[test]
    fn unknown_key_reports_file_line_and_column() {
        let dir = dir_with(&[(
            "rules.toml",
            "[server]\nhostname = \"desk\"\n\n[limits]\n  windw = 3\n",
        )]);
        let errs = errors(&dir);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("rules.toml:5:3: unknown field `windw`, expected one of "),
            "{errs:?}"
        );
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let dir = dir_with(&[("rules.toml", "[limits]\nmax_recipients = \"many\"\n")]);
        let errs = errors(&dir);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("rules.toml:2:18: invalid type: string"),
            "{errs:?}"
        );
    }

    #[test]
    fn bad_regex_points_at_its_own_line_and_column() {
        let dir = dir_with(&[(
            "rules.toml",
            "[senders]\nblocked_patterns = [\n  '^ok@x$',\n    'a(b',\n]\n",
        )]);
        assert_eq!(
            errors(&dir),
            ["rules.toml:4:5: invalid regex: unclosed group"]
        );
    }

    #[test]
    fn address_outside_served_domains_is_an_error() {
        let dir = dir_with(&[
            (
                "rules.toml",
                "[addresses]\nsupport = [\"help@acme.test\", \"help@elsewhere.test\"]\n",
            ),
            ("mailboxes/acme.toml", CLIENT),
        ]);
        // help@acme.test is fine: acme.test is a client domain.
        assert_eq!(
            errors(&dir),
            [
                "rules.toml:2:30: support address `help@elsewhere.test` is not in a served \
                 domain or a client domain"
            ]
        );
    }

    #[test]
    fn default_address_left_outside_served_points_at_served() {
        let dir = dir_with(&[(
            "rules.toml",
            "[domains]\nserved = [\"acme.test\"]\n[addresses]\nsupport = [\"s@acme.test\"]\n\
             sales = [\"s@acme.test\"]\n",
        )]);
        assert_eq!(
            errors(&dir),
            [
                "rules.toml:2:11: default info address `info@example.com` is not in a served \
                 domain or a client domain; set [addresses] info"
            ]
        );
    }

    #[test]
    fn errors_in_several_files_and_sections_are_all_reported() {
        let dir = dir_with(&[
            (
                "rules.toml",
                "[server]\nsmtp = \"localhost:25\"\n[tickets]\nnumber_format = \"T-\"\n\
                 [limits]\nmax_errors = 0\n",
            ),
            (
                "mailboxes/a.toml",
                "[client]\ncustomer = \"A\"\ndomain = \"a.test\"\n\
                 [[mailbox]]\naddress = \"x\"\npriority = 3\nissue_type = 4\n\
                 [[mailbox]]\naddress = \"y\"\nqueue = \"z\"\n",
            ),
            (
                "mailboxes/b.toml",
                "[client]\ncustomer = \"B\"\ndomian = \"b.test\"\n",
            ),
            (
                "mailboxes/c.toml",
                "[client]\ncustomer = \"C\"\ndomain = \"c.test\"\n\
                 [[mailbox]]\naddress = \"Help\"\npriority = \"Hgh\"\n",
            ),
        ]);
        let errs = errors(&dir);
        let heads: Vec<_> = errs
            .iter()
            .map(|e| e.split(" expected").next().unwrap())
            .collect();
        assert_eq!(
            heads,
            [
                "rules.toml:2:8: invalid listen address `localhost:25`: invalid socket address \
                 syntax;",
                "rules.toml:4:17: number_format `T-` must contain `{n}`, where the number goes",
                "rules.toml:6:14: max_errors must be greater than 0, not 0",
                "mailboxes/a.toml:6:12: invalid type: integer `3`,",
                "mailboxes/a.toml:7:14: invalid type: integer `4`,",
                "mailboxes/a.toml:10:1: unknown field `queue`,",
                "mailboxes/b.toml:3:1: unknown field `domian`,",
                "mailboxes/c.toml:6:12: unknown priority `Hgh`,",
            ],
            "{errs:#?}"
        );
    }

    #[test]
    fn every_shape_error_in_one_file_is_reported_not_just_the_first() {
        let dir = dir_with(&[(
            "rules.toml",
            "[limits]\nmax_errors = \"ten\"\nmax_recipients = -1\n[limit]\n[server]\nsmtp = 25\n",
        )]);
        let heads: Vec<_> = errors(&dir)
            .iter()
            .map(|e| e.split(',').next().unwrap().to_owned())
            .collect();
        assert_eq!(
            heads,
            [
                "rules.toml:2:14: invalid type: string \"ten\"",
                "rules.toml:3:18: invalid value: integer `-1`",
                "rules.toml:4:2: unknown field `limit`",
                "rules.toml:6:8: invalid type: integer `25`",
            ]
        );
    }

    #[test]
    fn syntax_errors_are_all_reported_with_their_position() {
        let dir = dir_with(&[(
            "rules.toml",
            "[server]\nsmtp = \"127.0.0.1:2525\n[limits\nmax_errors = 3\n",
        )]);
        assert_eq!(
            errors(&dir),
            [
                "rules.toml:2:23: invalid basic string, expected `\"`",
                "rules.toml:3:8: unclosed table, expected `]`",
            ]
        );
    }

    #[test]
    fn missing_rules_toml_is_reported_at_1_1() {
        let dir = dir_with(&[("mailboxes/acme.toml", CLIENT)]);
        let errs = errors(&dir);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("rules.toml:1:1: cannot read file: "),
            "{errs:?}"
        );
    }

    #[test]
    fn same_mailbox_in_two_client_files_names_the_first() {
        let second = "[client]\ncustomer = \"Other\"\ndomain = \"other.test\"\n\
                      [[mailbox]]\naddress = \"Help@ACME.test\"\n";
        let dir = dir_with(&[
            ("rules.toml", ""),
            (
                "mailboxes/acme.toml",
                &format!("{CLIENT}[[mailbox]]\naddress = \"help\"\n"),
            ),
            ("mailboxes/other.toml", second),
        ]);
        assert_eq!(
            errors(&dir),
            [format!(
                "mailboxes/other.toml:5:11: mailbox `help@acme.test` is already defined at \
                 {}/mailboxes/acme.toml:5:11",
                dir.path().display()
            )]
        );
    }

    #[test]
    fn mailbox_defaults_come_from_tickets() {
        let dir = dir_with(&[
            (
                "rules.toml",
                "[tickets]\ndefault_priority = \"urgent\"\ndefault_issue_type = \"Triage\"\n",
            ),
            (
                "mailboxes/acme.toml",
                &format!("{CLIENT}[[mailbox]]\naddress = \"Help\"\n"),
            ),
        ]);
        let cfg = load(dir.path()).unwrap();
        let (_, mailbox) = cfg.mailbox("help@acme.test").unwrap();
        assert_eq!(mailbox.priority, Priority::Urgent);
        assert_eq!(mailbox.issue_type, "Triage");
    }

    #[test]
    fn threading_keys_are_checked_and_the_secret_comes_from_a_file() {
        let dir = dir_with(&[
            (
                "rules.toml",
                "[threading]\nrecent_window_days = 0\nreopen_window_days = 99999\n\
                 token_secret_file = \"short\"\n[agents]\nbob = \"not-an-address\"\n",
            ),
            ("short", "tiny"),
        ]);
        let errs = errors(&dir);
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(
            errs[0].starts_with("rules.toml:2:22: recent_window_days must be greater than 0"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("rules.toml:3:22: reopen_window_days must be at most 36500"),
            "{errs:?}"
        );
        assert!(
            errs[2].starts_with("rules.toml:4:21: token_secret_file `"),
            "{errs:?}"
        );
        assert!(
            errs[2].ends_with("too short to sign reply tokens"),
            "{errs:?}"
        );
        assert!(
            errs[3].starts_with("rules.toml:6:7: `not-an-address` is not an address"),
            "{errs:?}"
        );

        let dir = dir_with(&[
            (
                "rules.toml",
                "[threading]\nrecent_rule = false\nreopen_window_days = 0\n\
                 token_secret_file = \"secret\"\n[agents]\nBob = \"Bob@Example.com\"\n",
            ),
            ("secret", "a secret that is long enough\n"),
        ]);
        let cfg = load(dir.path()).unwrap();
        assert!(!cfg.threading.recent_rule);
        assert_eq!(cfg.threading.reopen_window, Duration::ZERO);
        assert!(cfg.threading.token_secret.is_some());
        assert!(
            cfg.threading
                .token_secret_source
                .as_deref()
                .unwrap()
                .ends_with("secret")
        );
        assert!(cfg.is_agent("bob@example.com"));
        assert!(!format!("{:?}", cfg.threading).contains("long enough"));
    }

    #[test]
    fn a_token_secret_other_users_can_read_is_refused_with_the_chmod_that_fixes_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = dir_with(&[
            (
                "rules.toml",
                "[threading]\ntoken_secret_file = \"secret\"\n",
            ),
            ("secret", "a secret that is long enough\n"),
        ]);
        let secret = dir.path().join("secret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let errs = errors(&dir);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].starts_with("rules.toml:2:21: token_secret_file: `"),
            "{errs:?}"
        );
        assert!(
            errs[0].ends_with(&format!("run `chmod 600 {}`", secret.display())),
            "{errs:?}"
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let dir = dir_with(&[("rules.toml", "[server]\ntls_key = \"key.pem\"\n")]);
        assert_eq!(
            errors(&dir),
            ["rules.toml:2:11: tls_key is set but tls_cert is not: set both or neither"]
        );
    }

    #[test]
    fn tls_files_are_resolved_against_the_config_dir_and_must_exist() {
        let dir = dir_with(&[
            (
                "rules.toml",
                "[server]\ntls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n",
            ),
            ("tls/cert.pem", "not checked here"),
        ]);
        assert_eq!(
            errors(&dir),
            [format!(
                "rules.toml:3:11: tls_key file `{}/tls/key.pem` does not exist",
                dir.path().display()
            )]
        );
        std::fs::write(dir.path().join("tls/key.pem"), "not checked here").unwrap();
        let tls = load(dir.path()).unwrap().server.tls.unwrap();
        assert_eq!(tls.cert, dir.path().join("tls/cert.pem"));
        assert_eq!(tls.key, dir.path().join("tls/key.pem"));
    }

    #[test]
    fn a_bad_detector_pattern_points_at_the_detector_table() {
        let dir = dir_with(&[(
            "rules.toml",
            "[limits]\nmax_errors = 3\n\n[detector]\nmin_score = 1\n\n[[detector.patterns]]\n\
             name = \"broken\"\ncategory = \"payment\"\nregex = \"(unclosed\"\n",
        )]);
        let errs = errors(&dir);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("rules.toml:4:1: "), "{errs:?}");
        assert!(errs[0].contains("broken"), "{errs:?}");
        let dir = dir_with(&[(
            "rules.toml",
            "[[detector.patterns]]\nname = \"odd\"\ncategory = \"fax\"\nregex = \"x\"\n",
        )]);
        let errs = errors(&dir);
        assert!(errs[0].starts_with("rules.toml:1:1: "), "{errs:?}");
    }

    #[test]
    fn render_is_one_line_per_diagnostic() {
        let err = ConfigError {
            diagnostics: vec![
                Diagnostic {
                    file: PathBuf::from("conf/rules.toml"),
                    line: 14,
                    column: 3,
                    message: "unknown field `windw`".to_owned(),
                },
                Diagnostic {
                    file: PathBuf::from("conf/mailboxes/a.toml"),
                    line: 1,
                    column: 1,
                    message: "x".to_owned(),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "conf/rules.toml:14:3: unknown field `windw`\nconf/mailboxes/a.toml:1:1: x"
        );
    }
}
