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
//!
//! The checks live with the tables they judge: `server.rs` (`[server]`,
//! `[limits]`), `addresses.rs` (`[domains]`, `[addresses]`, `[senders]`,
//! `[agents]`), `tickets.rs`, `threading.rs`, and `clients.rs` (one
//! `mailboxes/*.toml` file). `[monitoring]` and the IMAP keys are in
//! `config/monitoring.rs`. `[outbound]` and `[teams]` are checked in
//! `outbound/settings.rs` and `[detector]` in `detect/table.rs`, through
//! [`load_with`]: `config` names those tables (an unknown table is still an
//! error) but never reads them.

mod addresses;
mod clients;
mod http;
mod server;
mod threading;
mod tickets;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde_spanned::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::diag::{ConfigError, Diagnostic, Source};
use super::raw::{FOREIGN_TABLES, RawAgent, RawClientFile, RawRules};
use super::{
    Addresses, Agent, Client, Config, Domains, Limits, LoopGuard, Priority, Senders, Server,
    Threading, Tickets,
};

pub(super) use addresses::check_address;
use addresses::{check_addresses, check_agents, check_domains, check_senders};
use clients::check_client;
use http::check_http;
pub(super) use http::is_http_url;
use server::{check_limits, check_server};
use threading::check_threading;
use tickets::check_tickets;

/// Load and validate the core of the configuration: `dir/rules.toml`
/// (leaving out `[outbound]`, `[teams]` and `[detector]`, which are not
/// read at all) and `dir/mailboxes/*.toml`. The server loads the whole
/// configuration with `outbound::whole::load`, which calls `load_with`.
///
/// # Errors
///
/// As `load_with`.
pub fn load(dir: &Path) -> Result<Config, ConfigError> {
    load_with(dir, |_: IgnoredAny, _, _| Some(())).map(|(config, ())| config)
}

/// What the check of the tables `config` leaves to others (see
/// [`load_with`]) may use of the rest of `rules.toml`.
pub(crate) struct Context<'a> {
    /// `rules.toml`: [`Source::at`] turns a span into a diagnostic.
    pub src: &'a Source,
    /// The configuration directory.
    pub dir: &'a Path,
    /// `[server] hostname`, or its default.
    pub hostname: &'a str,
    /// `[agents]` as written: name to address.
    pub agents: &'a BTreeMap<String, Spanned<String>>,
    /// `[sla]` calendars, by name.
    pub calendars: &'a BTreeMap<String, std::sync::Arc<crate::sla::Calendar>>,
}

/// Load and validate `dir/rules.toml` and `dir/mailboxes/*.toml`, with the
/// tables of rules.toml that `config` does not own (`[teams]`,
/// `[outbound]`, `[detector]`) deserialized into `R` and checked by
/// `check`.
///
/// `R` is deserialized from a document holding only those tables, with
/// their spans, so its shape errors point into rules.toml like the rest;
/// `check` runs only when the shape of all of rules.toml is right, as the
/// core checks do, and returns `None` only after reporting why.
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
pub(crate) fn load_with<R, T>(
    dir: &Path,
    check: impl FnOnce(R, &Context<'_>, &mut Vec<Diagnostic>) -> Option<T>,
) -> Result<(Config, T), ConfigError>
where
    R: DeserializeOwned,
{
    let mut out = Vec::new();

    let rules_path = dir.join("rules.toml");
    let rules_src = Source::read(rules_path.clone(), &mut out);
    let rules: Option<(RawRules, R)> = rules_src.as_ref().and_then(|src| {
        let root = syntax(src, &mut out)?;
        let foreign = foreign_tables(&root);
        let core = shape::<RawRules>(src, root, &mut out);
        let others = shape::<R>(src, foreign, &mut out);
        core.zip(others)
    });

    let (client_files, all_clients_read) = read_clients(dir, &mut out);

    // What each cross-file check may rely on. A list is `None` when its file
    // could not be read, so a check never fails for want of it.
    let known = Known {
        served: rules
            .as_ref()
            .map(|(r, _)| r.domains.served.iter().map(lower).collect()),
        clients: all_clients_read.then(|| {
            client_files
                .iter()
                .filter_map(|(_, raw)| raw.as_ref())
                .map(|raw| lower(&raw.client.domain))
                .collect()
        }),
        client_names: all_clients_read.then(|| {
            client_files
                .iter()
                .filter_map(|(src, raw)| {
                    let name = src.path().file_stem()?.to_string_lossy().into_owned();
                    Some((name, lower(&raw.as_ref()?.client.domain)))
                })
                .collect()
        }),
    };

    let rules = match (rules_src, rules) {
        (Some(src), Some((raw, others))) => {
            Some(check_rules(raw, others, check, &src, dir, &known, &mut out))
        }
        _ => None,
    };

    let clients = check_clients(client_files, rules.as_ref(), dir, &known, &mut out);

    match rules {
        Some(Rules {
            others: Some(others),
            server,
            domains,
            addresses,
            senders,
            tickets,
            limits,
            threading,
            agents,
            monitoring,
            loop_guard,
            sla,
            satisfaction,
            http,
            webhooks,
            store,
        }) if out.is_empty() => Ok((
            Config {
                dir: dir.to_path_buf(),
                server,
                domains,
                addresses,
                senders,
                tickets,
                limits,
                threading,
                agents,
                monitoring,
                loop_guard,
                satisfaction,
                clients,
                sla,
                http,
                webhooks,
                store,
            },
            others,
        )),
        _ => Err(failed(out, dir, &rules_path)),
    }
}

/// Read and shape every mailbox file, each with its source; with them,
/// whether every one could be read and shaped.
fn read_clients(
    dir: &Path,
    out: &mut Vec<Diagnostic>,
) -> (Vec<(Source, Option<RawClientFile>)>, bool) {
    let mut all_clients_read = true;
    let mut client_files = Vec::new();
    for path in mailbox_files(dir, out) {
        match Source::read(path, out) {
            Some(src) => {
                let raw: Option<RawClientFile> = parse(&src, out);
                all_clients_read &= raw.is_some();
                client_files.push((src, raw));
            }
            None => all_clients_read = false,
        }
    }
    (client_files, all_clients_read)
}

/// Check each mailbox file that could be shaped, with the defaults
/// rules.toml sets.
fn check_clients<T>(
    client_files: Vec<(Source, Option<RawClientFile>)>,
    rules: Option<&Rules<T>>,
    dir: &Path,
    known: &Known,
    out: &mut Vec<Diagnostic>,
) -> Vec<Client> {
    let (default_priority, default_issue_type, default_zone) = match rules {
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
                known,
                &mut seen,
                out,
            ));
        }
    }
    clients
}

/// The error of a configuration that was not built: every problem found,
/// in order.
fn failed(mut out: Vec<Diagnostic>, dir: &Path, rules_path: &Path) -> ConfigError {
    if out.is_empty() {
        // `check` broke its promise to say why: never use the
        // configuration, and never fail without a word.
        out.push(Diagnostic {
            file: rules_path.to_path_buf(),
            line: 1,
            column: 1,
            message: "the configuration could not be built".to_owned(),
        });
    }
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
    ConfigError { diagnostics: out }
}

/// The tables of `root` that `config` leaves to others
/// ([`FOREIGN_TABLES`]), alone in a document with `root`'s span; each
/// keeps its own span.
fn foreign_tables<'i>(root: &Spanned<DeTable<'i>>) -> Spanned<DeTable<'i>> {
    let mut table = DeTable::new();
    for (key, value) in root.get_ref().iter() {
        if FOREIGN_TABLES.contains(&key.get_ref().as_ref()) {
            table.insert(key.clone(), value.clone());
        }
    }
    Spanned::new(root.span(), table)
}

/// The `*.toml` files in `dir/mailboxes`, sorted by name.
fn mailbox_files(dir: &Path, out: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    toml_files(dir, "mailboxes", out)
}

/// Read and shape each `*.toml` file of `dir/sub` (absent: none), in name
/// order; a file that cannot be read or shaped is reported and left out.
pub(crate) fn read_toml_files<T: DeserializeOwned>(
    dir: &Path,
    sub: &str,
    out: &mut Vec<Diagnostic>,
) -> Vec<(Source, T)> {
    toml_files(dir, sub, out)
        .into_iter()
        .filter_map(|path| {
            let src = Source::read(path, out)?;
            let value = parse(&src, out)?;
            Some((src, value))
        })
        .collect()
}

/// The `*.toml` files in `dir/sub`, sorted by name; files whose name
/// starts with `.` (editor locks and backups) are skipped.
fn toml_files(dir: &Path, sub: &str, out: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mailboxes = dir.join(sub);
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
    let root = syntax(src, out)?;
    shape(src, root, out)
}

/// Syntax: the document tree of `src`, or every syntax error in it.
fn syntax<'i>(src: &'i Source, out: &mut Vec<Diagnostic>) -> Option<Spanned<DeTable<'i>>> {
    let (root, syntax) = DeTable::parse_recoverable(src.text());
    if !syntax.is_empty() {
        // The recovered tree is partial: checking its shape would only add
        // noise to the syntax errors.
        out.extend(syntax.iter().map(|e| toml_error(src, e)));
        return None;
    }
    Some(root)
}

/// Shape: `root` (a document of `src`, or some of its tables) into `T`, or
/// every shape error found.
fn shape<T: DeserializeOwned>(
    src: &Source,
    root: Spanned<DeTable<'_>>,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
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
    /// Every client's name (its file stem) with its domain; `None` if a
    /// mailbox file could not be read.
    client_names: Option<Vec<(String, String)>>,
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
/// The checked parts of rules.toml; `others` is what the caller's check
/// of the tables `config` does not own returned.
struct Rules<T> {
    server: Server,
    domains: Domains,
    addresses: Addresses,
    senders: Senders,
    tickets: Tickets,
    limits: Limits,
    threading: Threading,
    agents: Vec<Agent>,
    monitoring: crate::config::Monitoring,
    loop_guard: LoopGuard,
    sla: crate::sla::Settings,
    satisfaction: crate::config::Satisfaction,
    http: crate::config::Http,
    webhooks: crate::config::webhooks::Webhooks,
    store: crate::config::store::Store,
    others: Option<T>,
}

/// Semantic checks of rules.toml: the core tables here, the others by
/// `check`.
fn check_rules<R, T>(
    raw: RawRules,
    others: R,
    check: impl FnOnce(R, &Context<'_>, &mut Vec<Diagnostic>) -> Option<T>,
    src: &Source,
    dir: &Path,
    known: &Known,
    out: &mut Vec<Diagnostic>,
) -> Rules<T> {
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
    let sla = crate::config::sla::check_sla(raw.sla, src, out);
    let monitoring = crate::config::monitoring::check_monitoring(
        raw.monitoring,
        addresses.support.first().map(String::as_str),
        src,
        out,
    );
    // The other tables name agents by name; their address spans point at
    // the address as written (or at the whole entry).
    let agent_addresses: BTreeMap<String, Spanned<String>> = raw
        .agents
        .iter()
        .map(|(name, entry)| {
            let address = match entry.get_ref() {
                RawAgent::Address(a) => Spanned::new(entry.span(), a.clone()),
                RawAgent::Table(t) => t.address.clone(),
            };
            (name.clone(), address)
        })
        .collect();
    let context = Context {
        src,
        dir,
        hostname: &hostname,
        agents: &agent_addresses,
        calendars: &sla.calendars,
    };
    let others = check(others, &context, out);
    Rules {
        others,
        loop_guard: LoopGuard::defaults(&hostname),
        server: check_server(raw.server, hostname, src, dir, out),
        domains: check_domains(raw.domains, src, out),
        addresses,
        monitoring,
        senders: check_senders(raw.senders, src, out),
        tickets: check_tickets(raw.tickets, src, out),
        limits: check_limits(raw.limits, src, out),
        threading: check_threading(raw.threading, src, dir, out),
        agents: check_agents(raw.agents, src, out),
        sla,
        satisfaction: crate::config::Satisfaction {
            enabled: raw.satisfaction.enabled,
        },
        http: check_http(raw.http, src, dir, out),
        store: crate::config::store::check_store(raw.store, src, dir, out),
        webhooks: crate::config::webhooks::check_webhooks(
            raw.webhook,
            raw.webhooks,
            known.client_names.as_deref(),
            src,
            dir,
            out,
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use std::time::Duration;

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
        let opened = crate::domain::Time::from_secs(1_780_000_000);
        assert_eq!(
            builtin.tickets.format_number(1001, "support", opened),
            "#1001"
        );
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
    fn number_formats_per_queue_are_checked_with_their_position() {
        let dir = dir_with(&[(
            "rules.toml",
            "[tickets]\nnumber_format = \"#{num}\"\n\
             [tickets.number_format_by_queue]\nsales = \"S-{year}\"\n\
             support = \"{n:6}\"\nbilling = \"B-{n}\"\n",
        )]);
        assert_eq!(
            errors(&dir),
            [
                "rules.toml:2:17: number_format `#{num}` unknown placeholder `{num}`; known are \
                 {n}, {n:0W} (e.g. {n:06}) and {year}",
                "rules.toml:4:9: number_format_by_queue.sales `S-{year}` must contain `{n}`, \
                 where the number goes",
                "rules.toml:5:11: number_format_by_queue.support `{n:6}` bad width in `{n:6}`: \
                 write {n:0W} with W from 1 to 18, e.g. {n:06}",
                "rules.toml:6:11: number_format_by_queue: unknown queue `billing`, expected one \
                 of support, sales, monitoring, compliance, unrouted",
            ]
        );
        let dir = dir_with(&[(
            "rules.toml",
            "[tickets]\nnumber_format = \"{n:06}\"\n\
             [tickets.number_format_by_queue]\nSales = \"S-{year}-{n:04}\"\n",
        )]);
        let cfg = load(dir.path()).unwrap();
        let opened = crate::domain::Time::from_secs(1_780_000_000);
        assert_eq!(
            cfg.tickets.format_number(42, "sales", opened),
            "S-2026-0042"
        );
        assert_eq!(cfg.tickets.format_number(42, "support", opened), "000042");
        assert_eq!(cfg.tickets.format_tag(42, "SALES", opened), "[S-2026-0042]");
        assert_eq!(cfg.tickets.parse_number("S-2026-0042"), Some(42));
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
