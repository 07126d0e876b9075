//! `[domains]`, `[addresses]`, `[senders]` and `[agents]`: domains and
//! addresses lower-cased and checked, sender patterns compiled, and every
//! address of ours in a served or client domain.

use std::ops::Range;

use serde_spanned::Spanned;

use super::Known;
use crate::config::diag::{Diagnostic, Source};
use crate::config::raw::{RawAddresses, RawDomains, RawSenders};
use crate::config::{Addresses, Agent, Domains, Senders};

pub(super) fn check_agents(
    raw: std::collections::BTreeMap<String, Spanned<crate::config::raw::RawAgent>>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Vec<Agent> {
    use crate::config::raw::RawAgent;
    let mut agents = Vec::new();
    for (name, entry) in raw {
        let span = entry.span();
        let (address, away, until) = match entry.into_inner() {
            RawAgent::Address(a) => (Spanned::new(span, a), false, None),
            RawAgent::Table(t) => (t.address, t.away, t.away_until),
        };
        let away_until = until.and_then(|u| match u.get_ref().parse::<jiff::civil::Date>() {
            Ok(d) => Some(d),
            Err(_) => {
                src.error(
                    out,
                    &u,
                    format!("away_until `{}` is not a date (YYYY-MM-DD)", u.get_ref()),
                );
                None
            }
        });
        match check_address(address.get_ref()) {
            Ok(a) if a.contains('+') => src.error(
                out,
                &address,
                format!("agent address `{a}` must not have a +sub-address"),
            ),
            Ok(a) => agents.push(Agent {
                name,
                address: a,
                away,
                away_until,
            }),
            Err(e) => src.error(out, &address, e),
        }
    }
    agents
}

/// A lower-case domain, or why it is not one.
pub(super) fn check_domain(value: &str) -> Result<String, String> {
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
pub(in crate::config) fn check_address(value: &str) -> Result<String, String> {
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

pub(super) fn check_domains(raw: RawDomains, src: &Source, out: &mut Vec<Diagnostic>) -> Domains {
    Domains {
        served: check_list(&raw.served, check_domain, src, out),
        internal: check_list(&raw.internal, check_domain, src, out),
    }
}

pub(super) fn check_addresses(
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

pub(super) fn check_senders(raw: RawSenders, src: &Source, out: &mut Vec<Diagnostic>) -> Senders {
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
