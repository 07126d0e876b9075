//! `[threading]`: the windows of the recent and reopen rules, the
//! reply-token secrets (from owner-only files or the environment) and what
//! happens to new participants.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_spanned::Spanned;

use crate::config::diag::{Diagnostic, Source};
use crate::config::raw::RawThreading;
use crate::config::{NewParticipants, Threading, resolve};
use crate::token::{MIN_SECRET_BYTES, Secret};

/// The environment variable holding the reply-token secret when
/// `[threading] token_secret_file` is not set.
pub const TOKEN_SECRET_ENV: &str = "POSTDESK_TOKEN_SECRET";

pub(super) fn check_threading(
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
