//! `[server]` (listen addresses, data directory, host name, TLS files)
//! and `[limits]`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_spanned::Spanned;

use crate::config::diag::{Diagnostic, Source};
use crate::config::raw::{RawLimits, RawServer};
use crate::config::{Limits, Server, TlsFiles, resolve};

pub(super) fn check_server(
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

pub(super) fn check_limits(raw: RawLimits, src: &Source, out: &mut Vec<Diagnostic>) -> Limits {
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

/// `value`, reporting it if it is not greater than zero.
pub(super) fn positive<T>(
    key: &str,
    value: Spanned<T>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> T
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
