//! Patterns, compiled once: the configuration turned into automata, regex
//! sets and word sets that [`scan`](super::scan) runs for every message.
//!
//! Receives a [`DetectorConfig`] and returns [`Compiled`] or an [`Error`]
//! that names the key and entry at fault, so `postdesk check` can point at
//! the line. Nothing here runs per message.
//!
//! Also holds the default `[[detector.patterns]]`: the context rules for
//! words that are ambiguous on their own ("signal", "slack", "wire",
//! "friends and family"), links to messaging apps, PO boxes and street
//! address forms of other countries. They are configuration, not code, so an
//! admin can read, change or extend them.

use aho_corasick::packed;
use memchr::memmem::Finder;
use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::hir::{Hir, HirKind};

use super::keywords::KeywordSet;
use super::words::{PhraseList, WordSet, normalise_entry};
use super::{Category, DetectorConfig, Error, PatternRule, Rules};

/// Regexes are compiled with these limits: generous for admin patterns,
/// small enough that a pathological one fails at load, not at scan.
const REGEX_SIZE_LIMIT: usize = 8 * 1024 * 1024;

/// Room for the states each regex's lazy DFA builds as it reads: with the
/// default (2 MiB) the counted repetitions of the context rules filled it
/// within a few messages, so it was cleared and the same states built
/// again and again. At 4 MiB the realistic-mail bench runs the same
/// instructions as at 8 or 32 (no clear left), and the most a crafted
/// message can make the regexes hold is half what 8 would allow (each
/// cache is per scanning thread and kept). Memory is taken only as states
/// are built; what a regex matches does not depend on it, only how fast.
const DFA_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// One configured regex, compiled.
#[derive(Debug)]
pub(crate) struct CompiledPattern {
    /// `pattern.<name>`.
    pub rule: String,
    pub category: Category,
    pub regex: Regex,
    pub negatable: bool,
    /// Letters and digits of literals one of which every match contains
    /// (`signal` for the Signal rule): the keyword pass looks for them, and
    /// the regex runs only on a message that has one. `None`: no usable
    /// literal, the regex runs on every message.
    pub anchors: Option<Anchors>,
    /// Literals every match contains (see [`Required`]).
    pub required: Required,
}

/// Literal sets every match of a regex contains one of each, from its
/// syntax: a window without one cannot match, so the regex is not run
/// there. A necessary condition only, so skipping never changes a result.
#[derive(Debug, Default)]
pub(crate) struct Required {
    clauses: Vec<Clause>,
}

impl Required {
    /// Most literal sets checked per regex.
    const MAX_CLAUSES: usize = 3;
    /// Most literals in a checked set: each is searched for, so a long
    /// list costs more than the regex it would spare.
    const MAX_LITERALS: usize = 6;
    /// Shortest literal of letters worth searching for: shorter ones are in
    /// almost every window.
    const MIN_LITERAL: usize = 3;

    fn of(regex: &str, anchors: Option<&Anchors>) -> Required {
        let Ok(hir) = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(regex)
        else {
            return Required::default();
        };
        let mut sets = required_sets(&hir);
        for set in &mut sets {
            set.sort();
            set.dedup();
        }
        // A set that is the anchors' own is already known to be there.
        let is_anchor_set = |set: &[Vec<u8>]| {
            anchors.is_some_and(|a| {
                set.iter().all(|l| {
                    let squeezed: Vec<u8> = l
                        .iter()
                        .copied()
                        .filter(u8::is_ascii_alphanumeric)
                        .collect();
                    a.words.contains(&squeezed)
                })
            })
        };
        sets.retain(|set| {
            !set.is_empty()
                && set.len() <= Self::MAX_LITERALS
                && set.iter().all(|l| {
                    l.len() >= Self::MIN_LITERAL || l.iter().any(|b| !b.is_ascii_alphanumeric())
                })
                && !is_anchor_set(set)
        });
        // The most selective first: longest shortest literal, fewest literals.
        sets.sort_by_key(|set| {
            let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
            (usize::MAX - shortest, set.len())
        });
        sets.dedup();
        sets.truncate(Self::MAX_CLAUSES);
        let clauses = sets.iter().map(|set| Clause::new(set)).collect();
        Required { clauses }
    }

    /// False when `window` lacks every literal of one of the sets.
    #[inline]
    pub fn admits(&self, window: &[u8]) -> bool {
        self.clauses.iter().all(|c| c.is_in(window))
    }
}

/// One literal set, searched for in one pass.
#[derive(Debug)]
enum Clause {
    One(Finder<'static>),
    Many(packed::Searcher),
    Each(Vec<Finder<'static>>),
}

impl Clause {
    fn new(set: &[Vec<u8>]) -> Clause {
        let each = || Clause::Each(set.iter().map(|l| Finder::new(l).into_owned()).collect());
        match set {
            [one] => Clause::One(Finder::new(one).into_owned()),
            _ => packed::Searcher::new(set).map_or_else(each, Clause::Many),
        }
    }

    #[inline]
    fn is_in(&self, window: &[u8]) -> bool {
        match self {
            Clause::One(f) => f.find(window).is_some(),
            Clause::Many(s) => s.find(window).is_some(),
            Clause::Each(fs) => fs.iter().any(|f| f.find(window).is_some()),
        }
    }
}

/// Sets of literals such that every match of `hir` contains at least one
/// literal of each set (a conjunction of alternatives; empty: none known).
fn required_sets(hir: &Hir) -> Vec<Vec<Vec<u8>>> {
    /// Bound on the sets kept per node.
    const MAX_SETS: usize = 16;
    match hir.kind() {
        HirKind::Literal(lit) => vec![vec![lit.0.to_vec()]],
        HirKind::Capture(c) => required_sets(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required_sets(&r.sub),
        HirKind::Concat(subs) => {
            let mut all: Vec<Vec<Vec<u8>>> = subs.iter().flat_map(required_sets).collect();
            all.truncate(MAX_SETS);
            all
        }
        HirKind::Alternation(subs) => {
            // Every branch needs a set; one set from each branch, joined,
            // is a set every match of the alternation needs.
            let mut branches = Vec::with_capacity(subs.len());
            for s in subs {
                let mut sets = required_sets(s);
                if sets.is_empty() {
                    return Vec::new();
                }
                sets.sort_by_key(|set| {
                    let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
                    (usize::MAX - shortest, set.len())
                });
                branches.push(sets);
            }
            let n = branches
                .iter()
                .map(Vec::len)
                .max()
                .unwrap_or(0)
                .min(MAX_SETS);
            (0..n)
                .map(|k| {
                    branches
                        .iter()
                        .flat_map(|sets| sets[k.min(sets.len() - 1)].iter().cloned())
                        .collect()
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// All configured regexes.
///
/// Not a `RegexSet`: a set over a dozen context rules has no literal to
/// skip ahead with, so it walks every byte of every message through a big
/// DFA. Anchoring each rule on a required word found by the keyword pass
/// (which runs anyway) costs nothing on mail without those words.
#[derive(Debug)]
pub(crate) struct PatternSet {
    pub patterns: Vec<CompiledPattern>,
}

/// The cue lists of `[detector.payment_mentions]`.
#[derive(Debug)]
pub(crate) struct MentionCues {
    pub second_person: WordSet,
    pub verbs: WordSet,
    pub third_parties: WordSet,
    pub handles: WordSet,
    pub vetoes: PhraseList,
}

/// Who owns a contact detail (see [`owner`](super::owner)).
#[derive(Debug)]
pub(crate) struct OwnerCues {
    /// Words that own a contact detail other than the customer's.
    pub third_parties: WordSet,
    /// The customer's own people ("husband", "assistant").
    pub proxies: WordSet,
    /// Phrases that offer a street address to the reader.
    pub address_offers: PhraseList,
}

/// The cue lists of `[detector.app_mentions]`.
#[derive(Debug)]
pub(crate) struct AppCues {
    pub invitations: PhraseList,
    pub acceptances: PhraseList,
    pub past: PhraseList,
    pub vetoes: PhraseList,
}

/// A platform street address, reduced to what identifies it: the house
/// number and the first word of the street name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressKey {
    pub number: Vec<u8>,
    pub first_word: Vec<u8>,
}

/// Everything a scan needs, built once.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub rules: Rules,
    pub keywords: KeywordSet,
    pub patterns: Option<PatternSet>,
    pub mention: MentionCues,
    pub app: AppCues,
    pub owner: OwnerCues,
    pub reference_words: WordSet,
    pub negations: WordSet,
    pub on_platform: PhraseList,
    pub street_suffixes: WordSet,
    pub street_suffixes_capitalised: WordSet,
    pub street_stopwords: WordSet,
    pub address_vetoes: PhraseList,
    pub phone_vetoes: PhraseList,
    pub phone_words: WordSet,
    /// Lower-case freemail domains.
    pub freemail: Vec<String>,
    /// Lower-case platform domains from the configuration.
    pub platform_domains: Vec<String>,
    /// The platform's phone numbers as digit strings (at most the last ten).
    pub platform_phones: Vec<Vec<u8>>,
    pub platform_addresses: Vec<AddressKey>,
}

impl Compiled {
    /// Compile a configuration.
    pub fn new(cfg: &DetectorConfig) -> Result<Compiled, Error> {
        let patterns = compile_patterns(&cfg.patterns)?;
        let anchors: Vec<Option<Anchors>> = patterns
            .iter()
            .flat_map(|ps| ps.patterns.iter().map(|p| p.anchors.clone()))
            .collect();
        let keywords = KeywordSet::new(cfg, &anchors)?;
        for (index, p) in cfg.allow.platform_phones.iter().enumerate() {
            if p.bytes().filter(u8::is_ascii_digit).count() < 7 {
                return Err(Error::Entry {
                    key: "allow.platform_phones".into(),
                    index,
                    value: p.clone(),
                    reason: "a phone number needs at least 7 digits",
                });
            }
        }
        let mut platform_addresses = Vec::new();
        for (index, a) in cfg.allow.platform_addresses.iter().enumerate() {
            let Some(key) = address_key(a) else {
                return Err(Error::Entry {
                    key: "allow.platform_addresses".into(),
                    index,
                    value: a.clone(),
                    reason: "an address starts with a house number and a street name",
                });
            };
            platform_addresses.push(key);
        }
        Ok(Compiled {
            rules: cfg.rules.clone(),
            keywords,
            patterns,
            mention: MentionCues {
                second_person: WordSet::new(&cfg.payment_mentions.second_person),
                verbs: WordSet::new(&cfg.payment_mentions.verbs),
                third_parties: WordSet::new(&cfg.payment_mentions.third_parties),
                handles: WordSet::new(&cfg.payment_mentions.handles),
                vetoes: PhraseList::new(&cfg.payment_mentions.vetoes).map_err(Error::Keywords)?,
            },
            app: AppCues {
                invitations: PhraseList::new(&cfg.app_mentions.invitations)
                    .map_err(Error::Keywords)?,
                acceptances: PhraseList::new(&cfg.app_mentions.acceptances)
                    .map_err(Error::Keywords)?,
                past: PhraseList::new(&cfg.app_mentions.past).map_err(Error::Keywords)?,
                vetoes: PhraseList::new(&cfg.app_mentions.vetoes).map_err(Error::Keywords)?,
            },
            owner: OwnerCues {
                third_parties: WordSet::new(&cfg.context.contact_owners),
                proxies: WordSet::new(&cfg.context.contact_proxies),
                address_offers: PhraseList::new(&cfg.context.address_offers)
                    .map_err(Error::Keywords)?,
            },
            reference_words: WordSet::new(&cfg.context.reference_words),
            negations: WordSet::new(&cfg.context.negations),
            on_platform: PhraseList::new(&cfg.context.on_platform).map_err(Error::Keywords)?,
            street_suffixes: WordSet::new(&cfg.context.street_suffixes),
            street_suffixes_capitalised: WordSet::new(&cfg.context.street_suffixes_capitalised),
            street_stopwords: WordSet::new(&cfg.context.street_stopwords),
            address_vetoes: PhraseList::new(&cfg.context.address_vetoes)
                .map_err(Error::Keywords)?,
            phone_vetoes: PhraseList::new(&cfg.context.phone_vetoes).map_err(Error::Keywords)?,
            phone_words: WordSet::new(&cfg.context.phone_words),
            freemail: lower_list(&cfg.allow.freemail_domains),
            platform_domains: lower_list(&cfg.allow.platform_domains),
            platform_phones: cfg
                .allow
                .platform_phones
                .iter()
                .map(|p| phone_key(p.bytes().filter(u8::is_ascii_digit)))
                .collect(),
            platform_addresses,
        })
    }

    /// True when the category's rules are switched on.
    pub fn category_enabled(&self, c: Category) -> bool {
        match c {
            Category::Phone => self.rules.phone,
            Category::Email => self.rules.email,
            Category::Address => self.rules.address,
            Category::Messaging => self.rules.messaging,
            Category::Payment => self.rules.payment,
        }
    }
}

fn lower_list(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

/// The comparable form of a phone number: its last ten digits.
pub(crate) fn phone_key(digits: impl Iterator<Item = u8>) -> Vec<u8> {
    let all: Vec<u8> = digits.collect();
    let from = all.len().saturating_sub(10);
    all[from..].to_vec()
}

/// House number and first street-name word of an address.
pub(crate) fn address_key(address: &str) -> Option<AddressKey> {
    let norm = normalise_entry(address);
    let mut words = norm
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    let number = words.next()?;
    if !number.first()?.is_ascii_digit() {
        return None;
    }
    let first_word = words.next()?;
    Some(AddressKey {
        number: number.to_vec(),
        first_word: first_word.to_vec(),
    })
}

/// True when `regex` has an ASCII upper-case letter outside an escape
/// (`\S`, `\D`, `\P{..}` are fine): it could never match lower-cased text.
fn has_upper_case_literal(regex: &str) -> bool {
    let mut chars = regex.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some('p' | 'P') = chars.next() {
                // Skip a `{...}` class name, or the one-letter form.
                if chars.clone().next() == Some('{') {
                    for d in chars.by_ref() {
                        if d == '}' {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            continue;
        }
        if c.is_ascii_uppercase() {
            return true;
        }
    }
    false
}

fn compile_patterns(rules: &[PatternRule]) -> Result<Option<PatternSet>, Error> {
    if rules.is_empty() {
        return Ok(None);
    }
    let mut patterns = Vec::with_capacity(rules.len());
    for (index, r) in rules.iter().enumerate() {
        let fail = |key: &'static str, reason: &str| Error::Pattern {
            index,
            name: r.name.clone(),
            key,
            reason: reason.to_owned(),
        };
        if r.name.trim().is_empty() {
            return Err(fail("name", "name is empty"));
        }
        if rules[..index].iter().any(|o| o.name == r.name) {
            return Err(fail("name", "name is used by an earlier pattern"));
        }
        let Some(category) = Category::parse(&r.category) else {
            return Err(fail(
                "category",
                "unknown category (phone, email, address, messaging or payment)",
            ));
        };
        if r.regex.is_empty() {
            return Err(fail("regex", "regex is empty"));
        }
        if has_upper_case_literal(&r.regex) {
            return Err(fail(
                "regex",
                "write the regex in lower case: it matches the lower-cased text",
            ));
        }
        let regex = RegexBuilder::new(&r.regex)
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(DFA_CACHE_BYTES)
            .build()
            .map_err(|e| Error::Regex {
                index,
                name: r.name.clone(),
                source: Box::new(e),
            })?;
        if regex.is_match(b"") {
            return Err(fail(
                "regex",
                "regex matches the empty text, so it would match everywhere",
            ));
        }
        let anchors = anchors_of(&r.regex);
        patterns.push(CompiledPattern {
            rule: format!("pattern.{}", r.name),
            category,
            regex,
            negatable: r.negatable,
            required: Required::of(&r.regex, anchors.as_ref()),
            anchors,
        });
    }
    Ok(Some(PatternSet { patterns }))
}

/// Shortest anchor worth looking for (shorter literals are everywhere).
const MIN_ANCHOR: usize = 3;
/// Most anchors per pattern.
const MAX_ANCHORS: usize = 48;

/// Literals one of which every match of a regex contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchors {
    /// Squeezed to letters and digits, like the text they are looked for in.
    pub words: Vec<Vec<u8>>,
    /// Every match has them at the start of a word (after `\b` or a space),
    /// so "rue" in "true" does not count.
    pub word_start: bool,
}

/// The anchors of a regex (see [`CompiledPattern::anchors`]).
fn anchors_of(regex: &str) -> Option<Anchors> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(regex)
        .ok()?;
    let (lits, word_start) = required_literals(&hir, false)?;
    let mut words: Vec<Vec<u8>> = lits
        .iter()
        .map(|l| {
            l.iter()
                .copied()
                .filter(u8::is_ascii_alphanumeric)
                .collect()
        })
        .collect();
    words.sort();
    words.dedup();
    let min = MIN_ANCHOR;
    let usable =
        !words.is_empty() && words.len() <= MAX_ANCHORS && words.iter().all(|l| l.len() >= min);
    usable.then_some(Anchors { words, word_start })
}

/// True when `hir` always ends on a word boundary: `\b`, or at least one
/// byte of a class without letters and digits (`\s+`, `[,/]`).
fn ends_a_word(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Look(look) => matches!(
            look,
            regex_syntax::hir::Look::WordAscii
                | regex_syntax::hir::Look::WordStartAscii
                | regex_syntax::hir::Look::WordStartHalfAscii
                | regex_syntax::hir::Look::Start
                | regex_syntax::hir::Look::StartLF
        ),
        HirKind::Class(regex_syntax::hir::Class::Bytes(c)) => c
            .ranges()
            .iter()
            .all(|r| (r.start()..=r.end()).all(|b| !b.is_ascii_alphanumeric())),
        HirKind::Repetition(r) if r.min >= 1 => ends_a_word(&r.sub),
        HirKind::Capture(c) => ends_a_word(&c.sub),
        HirKind::Concat(subs) => subs.last().is_some_and(ends_a_word),
        HirKind::Literal(l) => l.0.last().is_some_and(|b| !b.is_ascii_alphanumeric()),
        _ => false,
    }
}

/// A set of literals one of which every match of `hir` contains, and
/// whether they always start a word (`after_word`: what precedes `hir`
/// ends a word). Concatenations keep their most selective part (word start
/// first, then the longest shortest literal, then the fewest literals);
/// alternations need every branch to have a set and take the union.
fn required_literals(hir: &Hir, after_word: bool) -> Option<(Vec<Vec<u8>>, bool)> {
    match hir.kind() {
        HirKind::Literal(lit) => Some((vec![lit.0.to_vec()], after_word)),
        HirKind::Capture(c) => required_literals(&c.sub, after_word),
        HirKind::Repetition(r) if r.min >= 1 => required_literals(&r.sub, after_word),
        HirKind::Concat(subs) => {
            // Whether each part starts on a word boundary: after one that
            // ends a word, or after an optional part that ends a word when
            // present and follows a boundary when absent.
            let mut ctx = Vec::with_capacity(subs.len());
            let mut at_word = after_word;
            for sub in subs {
                ctx.push(at_word);
                at_word = match sub.kind() {
                    HirKind::Repetition(r) if r.min == 0 => at_word && ends_a_word(&r.sub),
                    HirKind::Look(_) => at_word || ends_a_word(sub),
                    _ => ends_a_word(sub),
                };
            }
            subs.iter()
                .zip(ctx)
                .filter_map(|(sub, ctx)| required_literals(sub, ctx))
                .max_by_key(|(set, word_start)| {
                    let shortest = set.iter().map(Vec::len).min().unwrap_or(0).min(8);
                    (
                        *word_start && shortest >= MIN_ANCHOR,
                        shortest,
                        usize::MAX - set.len(),
                    )
                })
        }
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            let mut word_start = true;
            for s in subs {
                let (lits, ws) = required_literals(s, after_word)?;
                all.extend(lits);
                word_start &= ws;
            }
            Some((all, word_start))
        }
        _ => None,
    }
}

fn pattern(name: &str, category: &str, regex: &str) -> PatternRule {
    PatternRule {
        name: name.to_owned(),
        category: category.to_owned(),
        regex: regex.to_owned(),
        negatable: true,
        trusted: false,
    }
}

/// The shipped `[[detector.patterns]]`.
pub(crate) fn default_patterns() -> Vec<PatternRule> {
    vec![
        pattern(
            "signal_app",
            "messaging",
            r"\b(?:on|via|over|through|use|using|download|install|have|got)\s+\bsignal(?:\s+(?:app|messenger|at|me|or|and|too|instead|please|if|so|since|because|about|for|with|then|later|tonight|tomorrow|today|now)\b|\s*[,.!?:;)]|\s*$)|\bsignal\s+(?:app|messenger|number|handle|username|chat)\b|\b(?:message|msg|text|ping|reach|contact|add|find|call|hit)\s+(?:me|us|you|u)\s+(?:up\s+)?(?:on|via|over|through)\s+\bsignal\b|\b(?:whatsapp|telegram|imessage|sms|viber|wechat)\s*(?:,|/|or|and)\s*\bsignal\b|\bsignal\s*(?:,|/|or|and)\s*(?:whatsapp|telegram|imessage|sms|viber|wechat)\b|\bor\s+\bsignal\s*(?:\(|,|$)|\b(?:talk|chat|speak|continue|switch|move|jump)\s+(?:on|to|over|via)\s+\bsignal\b|\bsignal\s+(?:would|will|might)\s+be\s+(?:better|easier|best|faster|safer|quicker|simpler)\b|\b(?:to|on)\s+my\s+\bsignal\b|\bsignal\s+me\s*(?::|\+|\d|(?:at|on|if|when|instead|please|pls|there)\b)|\b(?:move|take|switch|continue|shift|bring)\s+(?:this|it|things|that|the\s+(?:conversation|chat|thread))\s+(?:on|to|over|onto)\s+\bsignal\b|\bsignal\s*[,:-]?\s*same\s+(?:as\s+my\s+(?:cell|phone|mobile|number)|number)\b|\bsignal\s+works\b[^.!?\n]{0,40}\bsame\s+(?:number|cell|mobile|phone)\b",
        ),
        pattern(
            "slack_dm",
            "messaging",
            r"\bslack\s+(?:dm|dms|me|message|handle|username|connect)\b|\bslack\s+(?:channel|group)\s+with\s+(?:you|your)\b|\b(?:on|via|over|through)\s+\bslack(?:\s+(?:at|instead|or|and|too|please|dm)\b|\s*[,.!?:;)]|\s*$)|\b(?:dm|message|msg|ping)\s+me\s+on\s+\bslack\b|\b(?:add|invite)\s+(?:you|u)\s+(?:to|on|in|into)\s+(?:our|my|the)\s+(?:[a-z]+\s+)?\bslack\b|\b(?:move|take|switch|continue|shift|bring)\s+(?:this|it|things|that|the\s+(?:conversation|chat|thread))\s+(?:on|to|over|onto)\s+\bslack\b|\bslack\b[^.!?\n]{0,80}[.!?]\s+[^.!?\n]{0,40}\b(?:invite|add)\s+(?:you|u)\b",
        ),
        pattern(
            "social_dm",
            "messaging",
            r"\b(?:add|message|msg|dm|pm|ping|find|follow|reach|contact|hit)\s+me\s+(?:up\s+)?(?:on|via|at|through)\s+(?:instagram|insta|facebook|linkedin|twitter|tiktok|line|messenger|teams|zoom|snapchat|snap)\b|\b(?:facebook|instagram|insta|twitter|linkedin)\s+(?:messenger|dm|dms|message|inbox)\b|\b(?:fb|ig)\s+(?:messenger|inbox)\b|\b(?:continue|talk|chat)\s+(?:on|over|via)\s+(?:facebook\s+)?messenger\b|\bdo\s+(?:this|it|that)\s+(?:over|on|via)\s+(?:fb\s+|facebook\s+)?messenger\b|\bline\s+app\b|\b(?:snap|insta)\s+me\s*(?:[?!]|$|\s+(?:up|on|there|instead|pls|please)\b)|\bmy\s+(?:snap|snapchat|insta|instagram)\s+(?:is|handle\s+is|name\s+is|:)\s*@?[a-z0-9_][a-z0-9_.]{2,}\s*(?:[,.!?;)]|$)|\b(?:continue|move|take|switch)\s+(?:this|it|things|the\s+conversation|the\s+chat)\s+(?:on|to|over\s+to|onto)\s+(?:facebook\s+)?(?:messenger|instagram)\b",
        ),
        pattern(
            "line_app",
            "messaging",
            r"\b(?:on|via|over|through|use|using)\s+\bline\s*(?:\(the\s+app\)|[,!?:;)]|\s+(?:app|messenger|id|too|instead|please|pls)\b|\s*$)|\bline\s+(?:id|app|messenger|handle|username)\s*(?:is\b|:)|\bline\b[^.!?\n]{0,80}\bmy\s+(?:line\s+)?(?:id|handle|username)\s+is\s+@?[a-z0-9_][a-z0-9_.]{2,}",
        ),
        pattern(
            "teams_chat",
            "messaging",
            r"\b(?:take|move|switch|continue|talk|chat|jump|hop|ping|message|msg|reach|find|add)\b[^.!?\n]{0,20}\b(?:on|to|over|via|in|into)\s+(?:an?\s+)?(?:ms\s+|microsoft\s+)?\bteams\b|\bteams\s+(?:chat|invite|message|dm)\b|\bjoin\s+(?:our|my|the)\s+(?:ms\s+|microsoft\s+)?\bteams\b|\b(?:to|you|u)\s+use\s+(?:ms\s+|microsoft\s+)?\bteams\s+with\s+(?:us|me)\b|\b(?:on|via|over)\s+\bteams\s*(?:[,!?:;)]|\s+(?:instead|too|please|pls|if)\b|\s*$)|\bteams\s+(?:works|would\s+work|is\s+(?:fine|ok|okay|easier|better))\s+(?:for\s+(?:me|us)|too|as\s+well)\b",
        ),
        pattern(
            "messaging_link",
            "messaging",
            r"\b(?:wa\.me|api\.whatsapp\.com|chat\.whatsapp\.com|t\.me|telegram\.me|telegram\.dog|discord\.gg|discord\.com/users|discordapp\.com/users|signal\.me|signal\.group|m\.me|join\.skype\.com|u\.wechat\.com|line\.me|viber\.click|teams\.microsoft\.com/l|teams\.live\.com/(?:l|meet))/",
        ),
        pattern(
            "handle_invite",
            "messaging",
            r"\b(?:snap|insta)\s+me\b[^.!?\n@]{0,40}@[a-z0-9_][a-z0-9_.]{2,}",
        ),
        pattern(
            "send_me_a_text",
            "messaging",
            r"\b(?:send|shoot|drop)\s+me\s+an?\s+(?:dm|pm|text|txt|sms|direct message)\b|\bslide\s+into\s+(?:my|our|the)\s+dms?\b|\binvite\s+(?:you\s+|u\s+)?(?:to|into)\s+(?:our|my)\s+(?:discord\s+|slack\s+|telegram\s+|whatsapp\s+)?(?:server|workspace|group\s+chat)\b|(?:(?:^|[.!?\n])\s*|\b(?:you|u)\s+(?:(?:to|be\s+up\s+for|mind|like\s+to|want\s+to)\s+)?)join(?:ing)?\s+(?:our|my)\s+(?:discord|slack|telegram|server|workspace|group\s+chat)\b|\bshared\s+(?:slack\s+)?channel\s+with\s+(?:you|u)\b",
        ),
        pattern(
            "call_my_cell",
            "phone",
            r"\b(?:call|ring|text)\s+me\s+(?:at|on)\s+my\s+(?:cell|mobile|personal|home|private)\b",
        ),
        pattern(
            "talk_off_platform",
            "messaging",
            r"\b(?:talk|chat|discuss|speak|communicate|continue|message|connect|correspond)\b[^.!?\n]{0,40}\b(?:outside|off)\s+(?:of\s+)?(?:the\s+|this\s+)?(?:platform|portal|site|system)\b",
        ),
        pattern(
            "wire_to_you",
            "payment",
            r"\bwire\s+(?:you|u|them|him|her|me|us|funds|money|payment|the\s+(?:money|funds|payment|balance|amount|fee|fees|deposit|retainer))\b|\bwire\s+(?:it|them)\s+(?:to\s+(?:you|your|my)|over|directly|today|tomorrow)\b|\bwiring\s+(?:you|u|it\s+to\s+you|the\s+(?:money|funds|payment|balance|amount|fee|fees)|funds|money)\b|\b(?:by|via|through)\s+(?:bank\s+)?wire(?:\s+(?:to\s+(?:you|your|u|ur)|instead|directly|or|today|tomorrow)\b|\s*[,.!?;)]|\s*$)|\bwired\s+(?:you|it\s+to\s+you)\b|\bach\s+(?:you|u|it\s+to\s+you)\b",
        ),
        pattern(
            "pay_cash",
            "payment",
            r"\b(?:pay|paying|hand|give|bring)\s+(?:you|u)(?:\s+guys|\s+all)?\s+(?:the\s+)?(?:in\s+)?cash\b|\bpay\s+(?:the|your|our|my)\s+(?:[a-z]+\s+)?(?:fee|fees|invoice|bill|balance|retainer)\s+in\s+cash\b|\b(?:pay|paying|give|giving|hand|bring)\s+(?:you\s+)?cash\s+in\s+hand\b|\bcash\s+in\s+hand\s+(?:to|for|if)\s+(?:you|u)\b|\bpay\s+(?:in\s+)?cash\s+(?:to\s+you|directly|instead)\b|\b(?:i|we)(?:\s+(?:can|could|will|would)|'ll|'d)?\s+(?:just\s+|rather\s+|(?:prefer|like|want)\s+to\s+)?(?:pay\s+(?:(?:immediately|now|today|upfront|up\s+front)\s+)?(?:in\s+)?cash|bring\s+(?:the\s+)?cash|bring\s+(?:it|the\s+fee|the\s+money)\s+in\s+cash)\b|\b(?:hand|give|bring|slip)\s+(?:it|this|that|them|the\s+(?:fee|fees|money|payment|balance))\s+(?:to\s+)?(?:you|u)\b[^.!?\n]{0,40}?\bin\s+an?\s+envelope\b",
        ),
        pattern(
            "pay_directly",
            "payment",
            r"\bpay(?:ing)?\s+(?:you|u|him|her|them|the\s+accountant|my\s+accountant|your\s+(?:accountant|bookkeeper|staff))\s+(?:directly|direct|privately|personally|separately|on\s+the\s+side)\b|\b(?:send|transfer|give)\s+(?:you|u)\s+(?:the\s+)?(?:money|payment|funds|fee|fees|balance)\s+(?:directly|privately|personally)\b|\bdirectly\s+to\s+your\s+(?:personal|own|bank)\b|\b(?:give|send|hand|transfer|pay)\s+(?:the\s+)?(?:money|payment|funds|fee|fees|balance|cash)\s+(?:to\s+)?(?:you|u)\s+(?:directly|privately|personally|in\s+person)\b|\bpay\s+(?:you\s+)?off\s+the\s+books\b|\b(?:give|offer)\s+(?:you|u)\b[^.!?\n]{0,60}?\bas\s+payment\b|\b(?:take|accept|receive)\s+(?:the\s+)?payments?\s+directly\b|\bpay(?:ing)?\s+[^.!?\n]{0,60}?\bdirectly,?\s+(?:and\s+)?(?:not|rather\s+than|instead\s+of)\s+(?:to\s+|through\s+|via\s+)?(?:the|your)\s+(?:company|firm|platform|portal|site|website|agency|office|business)\b",
        ),
        pattern(
            "billing_bypass",
            "payment",
            r"\b(?:pay|paying|payment|fee|fees|check|cheque|cash|money|transfer|settle|settling|wire|balance|retainer|send\s+(?:it|this|that|the\s+[a-z]+)|hand\s+you|mail\s+you)\b[^.!?\n]{0,60}?\b(?:skip|skipping|bypass|bypassing|avoid|avoiding|around|outside(?:\s+of)?|without|rather\s+than|instead\s+of|not|no\s+need\s+to|leave|leaving|doesn'?t|don'?t|out\s+of|keep\s+(?:it|this|that|them)\s+off)\b[^.!?\n]{0,25}?\b(?:the|your|this|that)\s+(?:[a-z]+\s+)?(?:portal|billing|invoice|invoicing|checkout|website|system|platform|firm|company|agency)\b|\b(?:pay|paying|payment|fee|fees|check|cheque|cash|money|transfer|settle|settling|wire|balance|retainer)\b[^.!?\n]{0,60}?\b(?:leave|leaving|keep|keeping)\s+(?:the|your)\s+(?:[a-z]+\s+)?(?:portal|billing|invoice|invoicing|system|platform)\s+(?:[a-z]+\s+)?out\s+of\s+(?:it|this|that)\b|\b(?:rather\s+not|prefer\s+not\s+to|skip|avoid|instead\s+of|rather\s+than)\s+(?:[a-z]+\s+)?(?:pay|paying)\s+(?:[a-z]+\s+)?(?:through|via|in|on|using)\s+(?:the|your|this|that)\s+(?:[a-z]+\s+)?(?:portal|billing|invoice|invoicing|checkout|website|site|system|platform)\b|\b(?:rather|sooner)\s+(?:[a-z']+\s+){0,2}?(?:pay|send|settle)\b[^.!?\n]{0,40}?\bthan\s+(?:through|via|on|in|using|with)?\s*(?:the|your|this|that)\s+(?:[a-z]+\s+)?(?:portal|billing|invoice|invoicing|checkout|website|site|system|platform)\b",
        ),
        pattern(
            "friends_and_family",
            "payment",
            r"\bpaypal\b[^.!?\n]{0,30}\b(?:friends\s*(?:and|&|n)\s*family|f\s*&\s*f|f\s*and\s*f)\b|\b(?:as|via|using|send|sent|select|choose|choosing|under)\s+(?:a\s+)?friends\s*(?:and|&)\s*family\b|\bf\s*(?:&|and)\s*f\s+(?:payment|option|transfer)\b|\bmark(?:ed)?\s+(?:it\s+)?as\s+(?:friends\s*(?:and|&)\s*family|f\s*&\s*f)\b|\bfriends\s*(?:and|&)\s*family\s+(?:payment|option|transfer|setting)\b",
        ),
        pattern(
            "personal_paypal",
            "payment",
            r"\b(?:to|into)\s+(?:my|your|his|her)\s+(?:personal\s+)?paypal\b|\bmy\s+paypal\s+(?:is|address|email|handle)\b|\bpaypal\s+(?:it|me|you|u)\b|\b(?:via|through|by|on|using)\s+paypal\s+to\s+(?:my|me)\b",
        ),
        pattern(
            "card_by_hand",
            "payment",
            r"\b(?:charge|bill)\s+(?:me|it|my\s+card|the\s+card)\s+(?:directly|yourself|personally|manually)\b|\bgive\s+you\s+my\s+card\s+(?:number|details|info)\b|\bmy\s+card\s+(?:number|details)\s+(?:over\s+the\s+phone|by\s+phone|directly)\b",
        ),
        pattern(
            "bank_account_number",
            "payment",
            r"\b(?:bank|checking|savings|chequing)\s+(?:account|acct)\s*(?:number|no|num|#)\s*:?\s*\d",
        ),
        pattern(
            "po_box",
            "address",
            r"\b(?:p\s*\.?\s*o\s*\.?|post\s+office)\s*box\s*#?\s*\d{1,7}\b",
        ),
        pattern(
            "street_de",
            "address",
            r"\b[a-z]{3,}(?:strasse|straße|weg|gasse|platz|allee|damm|ufer)\s+\d{1,4}[a-z]?\b|\b[a-z]{4,}\s+(?:strasse|weg|gasse|platz|allee)\s+\d{1,4}[a-z]?\b",
        ),
        pattern(
            "street_fr",
            "address",
            r"\b\d{1,4}(?:\s*(?:bis|ter))?,?\s+(?:rue|chemin|allee|impasse|quai)\s+[a-z][a-z'-]*(?:\s+[a-z][a-z'-]*){0,2}",
        ),
        pattern(
            "street_es",
            "address",
            r"\b(?:calle|avenida|avda\.|paseo|carrera|calzada|privada|rua)\s+[a-z][a-z ]{2,30}?,?\s+(?:n[o.]?\s*)?\d{1,4}\b|\b\d{1,5}\s+(?:calle|camino|avenida)\s+[a-z]{3,}",
        ),
        pattern(
            "street_mx",
            "address",
            r"\b\d{1,5}[a-z]?\s*,\s*(?:col\.|colonia)\s+[a-z]{3,}",
        ),
        pattern(
            "street_route",
            "address",
            r"\b\d{1,6}\s+(?:[nsew]\s+)?(?:(?:state|us|county|farm|historic|old)\s+)?(?:route|rte|highway|hwy|road)\.?\s+\d{1,4}[a-z]?\b",
        ),
        pattern(
            "meeting_place",
            "address",
            r"\b(?:[a-z][a-z'&]+\s+(?:coffee|cafe|coffeehouse|diner|bakery|deli|bistro|roasters|teahouse)|starbucks|dunkin)\s+on\s+(?:[a-z]+|\d{1,3}(?:st|nd|rd|th))(?:\s+(?:st|street|ave|avenue|road|rd|blvd|boulevard|lane|drive))?\s+(?:near|by|at|and|&|off)\s+(?:[a-z]+|\d{1,3}(?:st|nd|rd|th))\b|\bmeet\s+(?:(?:me|us|up)\s+)?(?:for\s+(?:coffee|lunch|breakfast|a\s+coffee|a\s+drink|drinks)\s+)?at\s+(?:[a-z&]+\s+){1,3}?on\s+[a-z]+\s+(?:st|street|ave|avenue|road|rd|blvd|boulevard|lane|drive|plaza|square)\b",
        ),
        pattern(
            "cash_instead_of_invoice",
            "payment",
            r"\b(?:don'?t\s+bother|no\s+need\s+to|skip)\s+(?:billing|invoicing|(?:bill|invoice)\s+(?:us|me)|send(?:ing)?\s+(?:an?\s+|the\s+)?(?:invoice|bill))\b[^\n]{0,120}?(?:\bcash\s*,|\bcash\s+in\s+an?\b|\ban?\s+envelope\b|\ben\s+efectivo\b)|\bpagar\s+en\s+efectivo\s+en\s+(?:lugar|vez)\s+de\b|\bno\s+se\s+preocupe\s+por\s+la\s+factura\b[^\n]{0,120}?\befectivo\b|\b(?:le|te|les)\s+(?:pago|pagaria|puedo\s+pagar|doy|entrego)\s+(?:todo\s+)?(?:en\s+)?efectivo\b|\bvous\s+(?:paie|paye|payer|donne|donner|regle|regler)\s+(?:en\s+direct|directement|(?:en\s+)?(?:especes|liquide|cash))\b",
        ),
        pattern(
            "payment_in_kind",
            "payment",
            r"\b(?:in\s+lieu\s+of|instead\s+of)\s+(?:the|this|your|our|my|this\s+[a-z]+'?s?)\s+(?:[a-z']+\s+)?(?:invoice|bill|fees?)\b[^.!?\n]{0,60}?\bwould\s+you\s+(?:accept|take|consider)\b|\bwould\s+you\s+(?:accept|take|consider)\b[^.!?\n]{0,80}?\b(?:in\s+lieu\s+of|instead\s+of\s+(?:the|this|your|our|my|this\s+[a-z]+'?s?)\s+(?:[a-z']+\s+)?(?:invoice|bill|fees?)|in\s+(?:part\s+)?payment|as\s+payment)\b|\bsettle\s+(?:the\s+rest|it|the\s+balance)\s+direct(?:ly)?\s+with\s+(?:you|u)\b",
        ),
        pattern(
            "settle_between_us",
            "payment",
            r"\b(?:settle|settling|pay|paying|handle|sort)\b[^.!?\n]{0,40}?\bbetween\s+(?:us|ourselves|the\s+two\s+of\s+us|you\s+and\s+(?:me|i))\s*(?:[.!?,;)]|$|\s+(?:directly|privately|instead|then|and\s+skip|rather)\b)",
        ),
        pattern(
            "pay_direct_de",
            "payment",
            r"\b(?:zahle|zahlen|bezahle|bezahlen|uberweise|uberweisen|uberweisung|paypal|bar)\b[^.!?\n]{0,60}?\b(?:direkt\s+an\s+(?:sie|dich)|statt|anstatt|ohne|nicht|an\s+der)\s+(?:uber\s+|mit\s+)?(?:die\s+|das\s+|den\s+|der\s+|ihre\s+)?(?:rechnung|portal|plattform|webseite|website|kanzlei)\b|\b(?:direkt|privat|personlich)\s+an\s+(?:sie|dich)\s+(?:zahlen|bezahlen|uberweisen|schicken|senden)\b",
        ),
        pattern(
            "app_is_how_i_pay",
            "payment",
            r"\b(?:cash\s*app|venmo|zelle|paypal|apple\s+pay|google\s+pay|revolut|wise)\s+is\s+how\s+(?:i|we)\s+(?:pay|send)\b[^.!?\n]{0,60}?(?:\b(?:you|your|ur)\b|\b(?:the|my|our)\s+(?:bookkeeping|accounting|tax\s+prep|prep|monthly|filing)\s+fees?\b)",
        ),
        pattern(
            "handle_there",
            "messaging",
            r"\b(?:i'?m|im|i\s+am)\s+@?[a-z][a-z0-9]*[._][a-z0-9._]*[a-z0-9]\s+(?:on\s+)?there\b|\blook\s+me\s+up\b[^.!?\n]{0,20}\bsame\s+(?:name|handle|username)\b",
        ),
        pattern(
            "pay_by_transfer_app",
            "payment",
            r"\b(?:pay|paying|send|sending|transfer|settle)\s+(?:you|u|your\s+[a-z]+)\s+(?:[a-z]+\s+){0,2}?(?:by|via|with|through|using)\s+(?:pix|wise)\b|\bchave\s+pix\b|\bpix\s+key\b",
        ),
        pattern(
            "email_on_provider",
            "email",
            r"\b(?:it'?s|its|is|me\s+at|i'?m)\s+[a-z][a-z0-9]*[._][a-z0-9._]*[a-z0-9]\s+(?:on|at)\s+(?:gmail|yahoo|hotmail|outlook|icloud|protonmail|proton|aol)\b|\b[a-z][a-z0-9]*[._][a-z0-9._]*[a-z0-9]\s*(?:\(\s*|,\s*at\s+)(?:gmail|yahoo|hotmail|outlook|icloud|protonmail|proton|aol)\b",
        ),
        pattern(
            "directions",
            "address",
            r"\b(?:past|behind|across\s+from|next\s+to|right\s+by|off|opposite|beside|after)\s+(?:the\s+)?(?:[a-z'&]+\s+){1,3}?(?:on|off|along)\s+(?:county\s+(?:road|rd)|route|rte|highway|hwy|interstate)\s*\d{1,4}\b|\b(?:meet(?:\s+(?:me|us))?\s+at|it'?s)\s+the\s+(?:[a-z'&]+\s+){1,3}?on\s+(?:(?:state|us|county)\s+)?(?:route|highway)\s*\d{1,4}\b|\boff\s+exit\s+\d{1,3}[a-z]?\s+(?:on|of|off)\s+(?:i-?|interstate\s+|route\s+|highway\s+|hwy\s+|us\s+)\d{1,3}\b|\bwhere\s+[a-z]+(?:\s+(?:st|street|ave|avenue|road|rd))?\s+meets\s+(?:\d{1,3}(?:st|nd|rd|th)|[a-z]+\s+(?:st|street|ave|avenue|road|rd))\b|\bcorner\s+of\s+(?:[a-z]+\s+(?:st|street|ave|avenue|rd|road|blvd)|\d{1,3}(?:st|nd|rd|th))\s+(?:and|&)\s+[a-z0-9]+|\bcorner\s+of\s+[a-z]+\s+(?:and|&)\s+(?:\d{1,3}(?:st|nd|rd|th)|[a-z]+\s+(?:st|street|ave|avenue|rd|road|blvd))\b",
        ),
        pattern(
            "place_on_street",
            "address",
            r"\b(?:behind|across\s+from|opposite|beside)\s+(?:the\s+)?(?:[a-z'&]+\s+){1,3}?on\s+[a-z]+(?:\s+(?:st|street|ave|avenue|road|rd|hwy|highway|blvd|boulevard|drive|dr|lane|ln|pike))?\s*(?:,|\.|$)|\b[a-z]+\s+(?:street|st|road|rd|avenue|ave)\s*,?\s+(?:opposite|across\s+from)\s+(?:the\s+)?[a-z]{3,}|\bthe\s+(?:shop|studio|garage|warehouse|bakery|salon|workshop)\s+on\s+[a-z]+(?:\s+[a-z]+)?\s+(?:st|street|ave|avenue|road|rd|hwy|highway|blvd|boulevard|drive|dr|lane|ln|pike)\b",
        ),
        pattern(
            "phone_in_parts",
            "phone",
            r"\barea\s+code\s+(?:is\s+)?\d{3}\s*,\s*(?:(?:the\s+)?(?:middle|next|prefix|exchange)\s+(?:is\s+)?|then\s+)\d{3}\s*,?\s+(?:and\s+)?(?:it\s+)?(?:ends?|ending)\s+(?:in|with)\s+\d{4}\b|\b\d{3}\s+\d{3}\s*,?\s+and\s+then\s+\d{4}\b",
        ),
        pattern(
            "spelled_fr",
            "phone",
            r"\bzero[\s-]+(?:un|deux|trois|quatre|cinq|six|sept|huit|neuf)(?:[\s,.-]+(?:(?:dix|vingt|trente|quarante|cinquante|soixante|quatre-vingt)[a-z-]*(?:\s+et\s+(?:un|onze))?|onze|douze|treize|quatorze|quinze|seize|zero|un|deux|trois|quatre|cinq|six|sept|huit|neuf)){4}\b",
        ),
        pattern(
            "pay_outside_es",
            "payment",
            r"\b(?:pagar|pagarle|pagarte|pagarles|pago|pagamos)\s+por\s+fuera\s*(?:[?.!,;)]|$|\s+(?:y|asi|sin|para|de\s+la\s+plataforma|del\s+sistema|del\s+portal)\b)",
        ),
        pattern(
            "venue_on_route",
            "address",
            r"\b(?:be|meet(?:\s+(?:me|us|up))?|do|say|lunch|coffee|breakfast|dinner|we're|we\s+are)\s+(?:at\s+)?the\s+(?:[a-z'&-]+\s+){1,3}?on\s+(?:(?:state|us|county)\s+)?(?:route|highway)\s*\d{1,4}\b",
        ),
        pattern(
            "venue_on_street",
            "address",
            r"\b(?:lunch|coffee|breakfast|dinner|drinks)\s+at\s+the\s+(?:[a-z'&-]+\s+){1,3}?on\s+[a-z]+\s+(?:st|street|ave|avenue|road|rd|blvd|boulevard|lane|ln|drive|dr|pike)\b",
        ),
        pattern(
            "street_crossing",
            "address",
            r"\b(?:at|on)\s+(?:1st|2nd|3rd|4th|5th|6th|7th|8th|9th|10th|11th|12th)\s+(?:and|&)\s+[a-z]{3,}\b",
        ),
        pattern(
            "venue_at_exit",
            "address",
            r"\b(?:be|meet(?:\s+(?:me|us|up))?|at)\s+(?:at\s+)?the\s+(?:[a-z'&-]+\s+){1,3}?on\s+(?:i-?|interstate\s+)\d{1,3}\s*,?\s+(?:at\s+)?exit\s+\d{1,3}[a-z]?\b",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_case_literals_are_found_outside_escapes() {
        assert!(has_upper_case_literal("Venmo"));
        assert!(!has_upper_case_literal(r"\Svenmo\D\W\P{L}\pL"));
        assert!(has_upper_case_literal(r"\P{L}X"));
    }

    #[test]
    fn default_patterns_compile_and_each_has_an_anchor() {
        let set = compile_patterns(&default_patterns())
            .expect("compiles")
            .expect("non-empty");
        assert_eq!(set.patterns.len(), default_patterns().len());
        for p in &set.patterns {
            assert!(p.anchors.is_some(), "{} runs on every message", p.rule);
        }
    }

    #[test]
    fn anchors_are_the_most_selective_required_literals() {
        let a = |r: &str| {
            anchors_of(r).map(|a| {
                let words: Vec<String> = a
                    .words
                    .into_iter()
                    .map(|l| String::from_utf8(l).expect("ascii"))
                    .collect();
                (words.join(","), a.word_start)
            })
        };
        let some = |w: &str, ws: bool| Some((w.to_owned(), ws));
        assert_eq!(a(r"\b(?:on|via)\s+signal\b"), some("signal", true));
        assert_eq!(a(r"\bwire\s+you|\bwiring\s+it"), some("wire,wiring", true));
        assert_eq!(a(r"\b(?:wa\.me|t\.me)/"), some("tme,wame", true));
        assert_eq!(
            a(r"\b[a-z]{3,}(?:strasse|gasse)\s+\d"),
            some("gasse,strasse", false)
        );
        assert_eq!(a(r"\b\d+\s+(?:rue|quai)\s"), some("quai,rue", true));
        // Too short, or a branch without a literal: no
        // anchor, the regex runs on every message.
        assert_eq!(a(r"[a-z]box"), some("box", false));
        assert_eq!(a(r"[a-z]bo"), None);
        assert_eq!(a(r"signal|\d{3}"), None);
        assert_eq!(a(r"\b(?:on|at)\b"), None);
    }

    #[test]
    fn address_keys_and_phone_keys() {
        let k = address_key("1200 Market Street, Suite 400").expect("key");
        assert_eq!(k.number, b"1200");
        assert_eq!(k.first_word, b"market");
        assert!(address_key("Market Street").is_none());
        assert_eq!(phone_key(b"18005550199".iter().copied()), b"8005550199");
    }
    #[test]
    fn the_app_patterns_are_anchored_on_the_app_name_at_a_word_start() {
        // Anchored on a common verb ("message", "add") or inside a word
        // ("deadline"), a pattern's regex would run around most mail.
        for p in default_patterns() {
            if !["line_app", "teams_chat", "signal_app", "slack_dm"].contains(&p.name.as_str()) {
                continue;
            }
            let a = anchors_of(&p.regex).expect("anchored");
            assert!(a.word_start, "{}: {:?}", p.name, a.words);
            let name = p
                .name
                .split('_')
                .next()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            assert_eq!(a.words, vec![name], "{}", p.name);
        }
    }
}
