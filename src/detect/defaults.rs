//! The shipped defaults of `[detector]`: the word lists, keyword lists and
//! settings an admin starts from. The lists live in `default_lists.txt`
//! beside this file (one entry a line under a `[table.key]` heading), built
//! into the binary with `include_str!` and parsed once; the switches and
//! numbers are here. `contrib/detector.toml` spells out the same values with
//! comments; a test keeps the two identical.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{
    Actions, Allow, AppMentions, Context, DetectorConfig, Keywords, PaymentMentions, Rules, Scope,
    patterns,
};
use crate::domain::Priority;

/// The lists' text, built in.
const LISTS: &str = include_str!("default_lists.txt");

/// Every heading of `default_lists.txt`, in file order: each is read by one
/// `Default` impl below (a test checks the file has exactly these).
#[cfg(test)]
const SECTIONS: [&str; 34] = [
    "scope.queues",
    "scope.issue_types",
    "scope.statuses",
    "allow.freemail_domains",
    "keywords.phone",
    "keywords.email",
    "keywords.address",
    "keywords.messaging",
    "keywords.payment",
    "payment_mentions.terms",
    "payment_mentions.details",
    "payment_mentions.second_person",
    "payment_mentions.verbs",
    "payment_mentions.third_parties",
    "payment_mentions.handles",
    "payment_mentions.vetoes",
    "app_mentions.messaging",
    "app_mentions.ambiguous",
    "app_mentions.invitations",
    "app_mentions.acceptances",
    "app_mentions.past",
    "app_mentions.vetoes",
    "context.reference_words",
    "context.negations",
    "context.on_platform",
    "context.street_suffixes",
    "context.street_suffixes_capitalised",
    "context.street_stopwords",
    "context.address_vetoes",
    "context.phone_vetoes",
    "context.phone_words",
    "context.contact_owners",
    "context.contact_proxies",
    "context.address_offers",
];

/// Split list text into its sections: a `[name]` line opens one, `#` lines
/// and empty lines are skipped, every other line is an entry (trimmed).
fn parse_lists(text: &'static str) -> HashMap<&'static str, Vec<&'static str>> {
    let mut lists: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
    let mut current: Option<&'static str> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name);
            lists.entry(name).or_default();
        } else if let Some(name) = current {
            lists.entry(name).or_default().push(line);
        }
    }
    lists
}

/// The built-in list `name` (empty for a name the file lacks, which the
/// tests rule out).
fn list(name: &str) -> Vec<String> {
    static PARSED: OnceLock<HashMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    PARSED
        .get_or_init(|| parse_lists(LISTS))
        .get(name)
        .map(|l| l.iter().map(|s| (*s).to_owned()).collect())
        .unwrap_or_default()
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            enabled: true,
            min_score: 1,
            scope: Scope::default(),
            allow: Allow::default(),
            rules: Rules::default(),
            keywords: Keywords::default(),
            payment_mentions: PaymentMentions::default(),
            app_mentions: AppMentions::default(),
            context: Context::default(),
            patterns: patterns::default_patterns(),
            model: super::model::ModelSettings::default(),
            actions: Actions::default(),
        }
    }
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            queues: list("scope.queues"),
            issue_types: list("scope.issue_types"),
            statuses: list("scope.statuses"),
        }
    }
}

impl Default for Allow {
    fn default() -> Self {
        Allow {
            platform_domains: Vec::new(),
            platform_phones: Vec::new(),
            platform_addresses: Vec::new(),
            freemail_domains: list("allow.freemail_domains"),
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            phone: true,
            email: true,
            address: true,
            messaging: true,
            payment: true,
            spelled_digits: true,
            bare_phone_numbers: true,
            iban: true,
            crypto: true,
            routing_numbers: true,
            card_numbers: true,
            negation: true,
        }
    }
}

impl Default for Keywords {
    fn default() -> Self {
        Keywords {
            phone: list("keywords.phone"),
            email: list("keywords.email"),
            address: list("keywords.address"),
            messaging: list("keywords.messaging"),
            payment: list("keywords.payment"),
        }
    }
}

impl Default for PaymentMentions {
    fn default() -> Self {
        PaymentMentions {
            terms: list("payment_mentions.terms"),
            details: list("payment_mentions.details"),
            second_person: list("payment_mentions.second_person"),
            verbs: list("payment_mentions.verbs"),
            third_parties: list("payment_mentions.third_parties"),
            handles: list("payment_mentions.handles"),
            vetoes: list("payment_mentions.vetoes"),
        }
    }
}

impl Default for AppMentions {
    fn default() -> Self {
        AppMentions {
            messaging: list("app_mentions.messaging"),
            ambiguous: list("app_mentions.ambiguous"),
            invitations: list("app_mentions.invitations"),
            acceptances: list("app_mentions.acceptances"),
            past: list("app_mentions.past"),
            vetoes: list("app_mentions.vetoes"),
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Context {
            reference_words: list("context.reference_words"),
            negations: list("context.negations"),
            on_platform: list("context.on_platform"),
            street_suffixes: list("context.street_suffixes"),
            street_suffixes_capitalised: list("context.street_suffixes_capitalised"),
            street_stopwords: list("context.street_stopwords"),
            address_vetoes: list("context.address_vetoes"),
            phone_vetoes: list("context.phone_vetoes"),
            phone_words: list("context.phone_words"),
            contact_owners: list("context.contact_owners"),
            contact_proxies: list("context.contact_proxies"),
            address_offers: list("context.address_offers"),
        }
    }
}

impl Default for Actions {
    fn default() -> Self {
        Actions {
            warn: true,
            alert: true,
            suspend_on_repeat: true,
            alert_issue_type: "Compliance Alert".to_owned(),
            alert_priority: Priority::High,
            repeat_priority: Priority::Urgent,
            repeat_threshold: 2,
            rescan_interval_minutes: 15,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_file_has_exactly_the_sections_read_each_filled() {
        let lists = parse_lists(LISTS);
        let mut in_file: Vec<&str> = lists.keys().copied().collect();
        in_file.sort_unstable();
        let mut read = SECTIONS.to_vec();
        read.sort_unstable();
        assert_eq!(in_file, read);
        for name in SECTIONS {
            assert!(!list(name).is_empty(), "{name} is empty");
        }
        assert!(list("no.such_list").is_empty());
    }

    #[test]
    fn the_invitations_stay_small_enough_for_a_dfa() {
        // Past 100 phrases the phrase automaton is built as an NFA, which
        // every app mention's sentence is then searched with.
        let n = list("app_mentions.invitations").len();
        assert!(n <= 100, "{n} invitations, at most 100");
    }

    #[test]
    fn list_text_skips_comments_and_blank_lines_and_trims() {
        let lists = parse_lists("# c\n[a.b]\n  one \n\n# two\nthree\n[c.d]\nfour\n");
        assert_eq!(lists["a.b"], vec!["one", "three"]);
        assert_eq!(lists["c.d"], vec!["four"]);
    }
}
