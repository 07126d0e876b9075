//! `[store]`: where tickets and messages live — the SQLite file of the
//! data directory (the default), or a PostgreSQL database several nodes
//! share.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::diag::{Diagnostic, Source};
use super::webhooks::{Secret, read_secret};

/// `[store]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// `sqlite` (default) or `postgres`.
    pub backend: Option<Spanned<String>>,
    /// `postgres://user@host:port/database`, without a password.
    pub url: Option<Spanned<String>>,
    /// The environment variable holding the database password.
    pub password_env: Option<Spanned<String>>,
    /// The owner-only file holding it.
    pub password_file: Option<Spanned<PathBuf>>,
    /// This node's name (default: the host name).
    pub node: Option<Spanned<String>>,
}

/// Which database holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postdesk.sqlite3` in the data directory: one node.
    Sqlite,
    /// A PostgreSQL database: one or several nodes.
    Postgres,
}

/// `[store]`, checked.
#[derive(Debug, Clone)]
pub struct Store {
    /// The database.
    pub backend: Backend,
    /// The PostgreSQL URL (empty with SQLite).
    pub url: String,
    /// The PostgreSQL password, if one is configured.
    pub password: Option<Secret>,
    /// This node's name.
    pub node: String,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            backend: Backend::Sqlite,
            url: String::new(),
            password: None,
            node: host_name(),
        }
    }
}

/// The machine's host name, the default node name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "postdesk".to_owned())
}

/// Whether `name` can name a node (shown in `postdesk nodes`, logs and
/// the database): 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(super) fn check_store(
    raw: RawStore,
    src: &Source,
    dir: &std::path::Path,
    out: &mut Vec<Diagnostic>,
) -> Store {
    let mut store = Store::default();
    if let Some(b) = &raw.backend {
        match b.get_ref().as_str() {
            "sqlite" => store.backend = Backend::Sqlite,
            "postgres" => store.backend = Backend::Postgres,
            other => src.error(
                out,
                b,
                format!("unknown store backend `{other}` (sqlite or postgres)"),
            ),
        }
    }
    if let Some(n) = &raw.node {
        if valid_node_name(n.get_ref()) {
            store.node = n.get_ref().clone();
        } else {
            src.error(
                out,
                n,
                "node name: 1 to 64 letters, digits, `-`, `_` or `.`".to_owned(),
            );
        }
    }
    match (store.backend, &raw.url) {
        (Backend::Postgres, None) => {
            let at = raw.backend.as_ref().map_or(0..0, Spanned::span);
            out.push(src.at(
                at,
                "backend = \"postgres\" needs url = \"postgres://user@host:port/database\"",
            ));
        }
        (Backend::Postgres, Some(u)) => {
            match u.get_ref().parse::<postgres::Config>() {
                Err(e) => src.error(out, u, format!("store url: {e}")),
                Ok(c) if c.get_password().is_some() => src.error(
                    out,
                    u,
                    "the store url holds a password: use password_env or password_file".to_owned(),
                ),
                Ok(_) => store.url = u.get_ref().clone(),
            }
            store.password = match (&raw.password_env, &raw.password_file) {
                (None, None) => None,
                (env, file) => read_secret(env, file, "the store password", src, dir, out),
            };
        }
        (Backend::Sqlite, _) => {
            for (key, set) in [
                ("url", raw.url.as_ref().map(Spanned::span)),
                ("password_env", raw.password_env.as_ref().map(Spanned::span)),
                (
                    "password_file",
                    raw.password_file.as_ref().map(Spanned::span),
                ),
            ] {
                if let Some(span) = set {
                    out.push(src.at(
                        span,
                        format!("`{key}` is for backend = \"postgres\"; the store is SQLite"),
                    ));
                }
            }
        }
    }
    store
}
