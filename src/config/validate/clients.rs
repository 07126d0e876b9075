//! One `mailboxes/*.toml` file: the client, its mailboxes (each address in
//! a served or client domain, and defined once across all files), its
//! contacts, digest and IMAP accounts.

use std::collections::HashMap;
use std::path::Path;

use serde_spanned::Spanned;

use super::Known;
use super::addresses::{check_address, check_domain};
use super::tickets::{check_issue_type, check_priority};
use crate::config::diag::{Diagnostic, Source};
use crate::config::raw::RawClientFile;
use crate::config::{Client, Mailbox, Priority};

/// Semantic checks of one mailbox file. `seen` maps each mailbox address
/// already defined to where, so a second definition names the first.
#[allow(clippy::too_many_arguments)] // one call site; the defaults come from rules.toml
pub(super) fn check_client(
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
        .path()
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let monitoring = crate::config::monitoring::check_client_monitoring(
        &raw.client.contacts,
        raw.client.time_zone.as_ref(),
        &raw.digest,
        default_zone,
        src,
        out,
    );
    let imap = crate::config::monitoring::check_imap(raw.imap, &name, dir, src, out);
    let default_issue_type = crate::config::monitoring::default_issue_type(
        raw.client.issue_type.as_ref(),
        raw.client.preset.as_ref(),
        default_issue_type,
    );
    let entries = crate::config::monitoring::expand_preset(
        raw.client.preset.as_ref(),
        &domain,
        raw.mailbox,
        src,
        out,
    );

    let mut mailboxes = Vec::new();
    for entry in entries {
        let Some(address) = mailbox_address(&entry.address, &domain, known, seen, src, out) else {
            continue;
        };

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
        file: src.path().to_path_buf(),
        name,
        customer: raw.client.customer.into_inner(),
        domain,
        mailboxes,
        contacts: monitoring.contacts,
        time_zone: monitoring.time_zone,
        digest: monitoring.digest,
    }
}

/// The lower-case address of a mailbox entry (a bare local part belongs
/// to the client's `domain`), or `None` when it is not an address. An
/// address outside every served and client domain, or one `seen` already,
/// is reported (and still returned: any diagnostic means no `Config`).
fn mailbox_address(
    given: &Spanned<String>,
    domain: &str,
    known: &Known,
    seen: &mut HashMap<String, String>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Option<String> {
    let text = given.get_ref();
    let address = if text.contains('@') {
        check_address(text)
    } else if text.is_empty() || text.chars().any(char::is_whitespace) {
        Err(format!(
            "mailbox address `{text}` must be a full address or a local part without spaces"
        ))
    } else {
        check_address(&format!("{text}@{domain}"))
    };
    let address = match address {
        Ok(address) => address,
        Err(e) => {
            src.error(out, given, e);
            return None;
        }
    };
    let address_domain = address.rsplit('@').next().unwrap_or_default();
    if known.serves(address_domain) == Some(false) {
        src.error(
            out,
            given,
            format!(
                "mailbox `{address}` is not in a served domain or a client domain, so mail \
                 to it would be refused"
            ),
        );
    }
    let here = src.at(given.span(), "");
    let here = format!("{}:{}:{}", here.file.display(), here.line, here.column);
    if let Some(first) = seen.get(&address) {
        src.error(
            out,
            given,
            format!("mailbox `{address}` is already defined at {first}"),
        );
    } else {
        seen.insert(address.clone(), here);
    }
    Some(address)
}
