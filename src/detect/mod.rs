//! Detect: the off-platform bypass detector.
//!
//! Receives the new (unquoted) text of one inbound customer message and
//! returns a [`Verdict`]: every piece of evidence that the customer is trying
//! to move the conversation or the payment off the platform, each a [`Hit`]
//! that names its [`Category`], the rule that fired and the span as the
//! customer wrote it. The module is pure: no I/O, no store, no clock, so
//! `postdesk explain` shows exactly what the pipeline would decide, and every
//! rule is tested without a socket.
//!
//! What it looks for (categories):
//!
//! - `phone`: NANP (`(555) 123-4567`, `555.123.4567`, `+1 555 123 4567`),
//!   international E.164 with spaces, dots or dashes, national numbers with a
//!   trunk `0`, and digits spelled out as words;
//! - `email`: addresses outside the platform's, the ticket's and the sender's
//!   own domains, also written `jane (at) gmail (dot) com`; freemail counts
//!   double;
//! - `address`: street addresses (number, name, suffix), US routes
//!   (`4400 Route 9`), PO boxes, German, French, Spanish and Mexican
//!   (`245, Col. Juárez`) forms, places given as directions ("past the
//!   Shell station on Route 9", "where Elm meets 3rd"), counted only when
//!   offered (to mail, meet,
//!   drop off; in English, Spanish, German or French) and the writer's own,
//!   their shop under its business name included;
//! - `messaging`: WhatsApp, Telegram, Signal, … named with a cue of intent
//!   (an invitation, a handle or number, an acceptance, a future or
//!   conditional; not in a past, vendor or expense sense, unless the
//!   invitation names the app: "add me on Telegram", or "… on Discord. Ping
//!   me there"), a handle with no app ("I'm maria_f on there"), and "text
//!   me", "DM me";
//! - `payment`: Venmo, Zelle, Cash App, PayPal.me and friends-and-family,
//!   wires and bank details, IBANs (mod-97), routing numbers (ABA checksum),
//!   card numbers (Luhn), Bitcoin/Litecoin/Dogecoin/Tron addresses
//!   (Base58Check or Bech32/Bech32m checksums), Ethereum addresses, and
//!   "pay you directly" / "outside the system" / "straight to your
//!   account" / "no need to run it through the billing" / "make the check
//!   out to you" / "something on the side"; payment apps
//!   (Venmo, Zelle, PayPal, Apple Pay, …) only with a cue (offered,
//!   accepted: "works too", "is fine", asked about), as for messaging apps.
//!   An app named as a vendor or a record ("Google Pay shows a charge",
//!   "the Zelle receipt"), and a plain phrase told as history ("some
//!   invoices were paid outside the system last year"), are not evidence,
//!   nor is a payment to a tax authority ("the IRS notice has wire
//!   instructions … wire the balance that way").
//!
//! How (see `scan.rs` for the pipeline): the text is normalised
//! once (`normalize.rs`: case, zero-width characters, Unicode look-alikes,
//! fullwidth digits); keyword lists run as one Aho-Corasick automaton that
//! reads through separators, so spacing and punctuation tricks still match
//! (`automaton.rs`); structured things (numbers, addresses, wallets, e-mail
//! addresses) are parsed only where that same pass saw a digit, an `@` or
//! an `at`; configured regexes run only around their anchor words; a
//! contact detail counts only when it is the writer's own, not a courier's,
//! a bank's or a government office's (`owner.rs`). Offsets always point
//! into the text that was scanned.
//!
//! What it does not do, by design: decide scope (the caller asks
//! [`in_scope`]), skip agent messages (the caller never passes them: agent
//! text is not customer evidence), or act. The actions (warning, Compliance
//! Alert, suspension, rescan) belong to the pipeline and the outbox; the
//! [`Actions`] settings live here only so that all of `[detector]` is one
//! table.
//!
//! `table.rs` checks `[detector]` of `rules.toml` and builds the
//! [`Detector`], each error at its `file:line:column`.

mod address;
mod automaton;
pub mod checksums;
mod defaults;
mod email;
mod keywords;
pub mod model;
mod money;
mod normalize;
mod owner;
mod patterns;
mod phone;
pub mod quote;
mod scan;
pub mod table;
mod words;

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::domain::Priority;

pub use quote::{new_text, new_text_ranges};

/// Bumped when the scanning code changes what it finds for the same
/// configuration; part of [`Detector::version`].
pub const ENGINE_VERSION: u32 = 16;

/// What kind of off-platform evidence a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// A phone number.
    Phone,
    /// A personal e-mail address.
    Email,
    /// A street address or PO box.
    Address,
    /// A messaging platform or an invitation to text/DM.
    Messaging,
    /// Paying outside the platform.
    Payment,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 5] = [
        Category::Phone,
        Category::Email,
        Category::Address,
        Category::Messaging,
        Category::Payment,
    ];

    /// The lower-case name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Phone => "phone",
            Category::Email => "email",
            Category::Address => "address",
            Category::Messaging => "messaging",
            Category::Payment => "payment",
        }
    }

    /// The category of a lower-case name.
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// One piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// What kind of evidence.
    pub category: Category,
    /// The rule that fired, e.g. `phone.nanp`, `keyword.messaging:whatsapp`,
    /// `pattern.signal_app`, `payment.iban`.
    pub rule: String,
    /// The matched span exactly as it appears in the scanned text.
    pub text: String,
    /// Byte offset of the span's start in the scanned text.
    pub start: usize,
    /// Byte offset just past the span's end in the scanned text.
    pub end: usize,
    /// How much evidence this is (1; 2 for a freemail address; 0 when the
    /// model judged the message or the category no evidence: listed, not
    /// counted).
    pub weight: u32,
}

/// The detector's answer for one text.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// Every hit, ordered by position.
    pub hits: Vec<Hit>,
    /// The sum of the hits' weights.
    pub score: u32,
    /// True when `score` reaches [`DetectorConfig::min_score`].
    pub flagged: bool,
    /// The model's probabilities, when `[detector.model]` is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<model::Scores>,
}

impl Verdict {
    /// The distinct categories of the hits that count (weight above 0),
    /// in [`Category::ALL`] order.
    pub fn categories(&self) -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|c| self.hits.iter().any(|h| h.category == *c && h.weight > 0))
            .collect()
    }
}

/// What is not evidence for one message: who sent it and which domains
/// belong to the ticket and the platform. The pipeline fills it from the
/// ticket and from the configuration (served and internal domains).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanContext<'a> {
    /// The sender's address: repeating your own address is not evidence.
    /// The sender's domain is not evidence either, unless it is freemail.
    pub sender: Option<&'a str>,
    /// The ticket's own domains (the client company's), e.g. colleagues' addresses.
    pub ticket_domains: &'a [String],
    /// The platform's domains besides [`Allow::platform_domains`].
    pub platform_domains: &'a [String],
}

/// Errors building a [`Detector`] from a configuration. Each names the key
/// and the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configured regex does not compile.
    #[error("detector.patterns[{index}] (name {name:?}): invalid regex: {source}")]
    Regex {
        /// Position in `detector.patterns`.
        index: usize,
        /// The pattern's name.
        name: String,
        /// The regex error.
        #[source]
        source: Box<regex::Error>,
    },
    /// A configured pattern is unusable for another reason.
    #[error("detector.patterns[{index}] (name {name:?}): {reason}")]
    Pattern {
        /// Position in `detector.patterns`.
        index: usize,
        /// The pattern's name.
        name: String,
        /// The pattern's key at fault: `name`, `category` or `regex`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A list entry is unusable (empty, or nothing a detector can match).
    #[error("detector.{key}[{index}] ({value:?}): {reason}")]
    Entry {
        /// The key, e.g. `keywords.messaging`.
        key: String,
        /// Position in the list.
        index: usize,
        /// The entry.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `[detector.model]` threshold is not a probability.
    #[error("detector.model.{key} ({value}): must be a number from 0 to 1")]
    Threshold {
        /// `min_flag`, `min_keep` or `min_alone`.
        key: &'static str,
        /// The value given.
        value: f64,
    },
    /// The keyword lists are too large for the automaton.
    #[error(
        "detector: the keyword lists and pattern anchors have more than 65535 letters and digits in all"
    )]
    TooManyKeywords,
    /// A phrase list (vetoes, on-platform phrases) could not be built.
    #[error("detector: a phrase list does not build: {0}")]
    Keywords(#[source] aho_corasick::BuildError),
}

/// One step of the path from `[detector]` to a value: a key, or a position
/// in a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart<'a> {
    /// A table key.
    Key(&'a str),
    /// A list position, from 0.
    Index(usize),
}

impl Error {
    /// The path below `[detector]` of the value at fault, so a caller
    /// holding the file can point at it (`patterns`, `0`, `regex`); empty
    /// when the fault is in no one value (the lists together are too large).
    pub fn key_path(&self) -> Vec<KeyPart<'_>> {
        match self {
            Error::Regex { index, .. } => {
                vec![
                    KeyPart::Key("patterns"),
                    KeyPart::Index(*index),
                    KeyPart::Key("regex"),
                ]
            }
            Error::Pattern { index, key, .. } => {
                vec![
                    KeyPart::Key("patterns"),
                    KeyPart::Index(*index),
                    KeyPart::Key(key),
                ]
            }
            Error::Entry { key, index, .. } => key
                .split('.')
                .map(KeyPart::Key)
                .chain([KeyPart::Index(*index)])
                .collect(),
            Error::Threshold { key, .. } => vec![KeyPart::Key("model"), KeyPart::Key(key)],
            Error::TooManyKeywords | Error::Keywords(_) => Vec::new(),
        }
    }
}

/// The detector, built once from a configuration and shared by reference:
/// scanning takes `&self` and keeps its scratch buffers per thread.
#[derive(Debug)]
pub struct Detector {
    compiled: patterns::Compiled,
    version: String,
    min_score: u32,
    /// The model and how it combines with the rules; `None` when disabled.
    model: Option<(&'static model::Model, model::ModelSettings)>,
    /// The rules (`pattern.<name>`) of trusted patterns: the model does not
    /// judge their hits.
    trusted: Vec<String>,
}

impl Detector {
    /// Compile keyword automata, regexes and word lists.
    ///
    /// # Errors
    ///
    /// [`Error`] naming the key and entry of a regex that does not compile,
    /// a pattern with an unknown category or upper-case letters (the text
    /// the patterns see is lower-cased), or an empty keyword.
    pub fn new(cfg: &DetectorConfig) -> Result<Detector, Error> {
        let m = &cfg.model;
        for (key, value) in [
            ("min_flag", m.min_flag),
            ("min_keep", m.min_keep),
            ("min_alone", m.min_alone),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::Threshold { key, value });
            }
        }
        Ok(Detector {
            compiled: patterns::Compiled::new(cfg)?,
            version: version_of(cfg),
            min_score: cfg.min_score,
            model: cfg
                .model
                .enabled
                .then(|| (model::Model::builtin(), cfg.model.clone())),
            trusted: cfg
                .patterns
                .iter()
                .filter(|p| p.trusted)
                .map(|p| format!("pattern.{}", p.name))
                .collect(),
        })
    }

    /// Scan `text` (the new text of one customer message) for evidence.
    /// Offsets in the hits are byte offsets into `text`. When the model
    /// rules the message out (below `min_flag`) the rules are not run: the
    /// verdict has no hits (see [`Detector::scan_message_in_full`]).
    pub fn scan(&self, text: &str, ctx: &ScanContext<'_>) -> Verdict {
        self.scan_parts(text, std::slice::from_ref(&(0..text.len())), ctx, false)
    }

    /// Scan a whole message body, skipping quoted text (see [`quote`]).
    /// Offsets in the hits are byte offsets into `body`. As [`Detector::scan`]
    /// when the model rules the message out.
    pub fn scan_message(&self, body: &str, ctx: &ScanContext<'_>) -> Verdict {
        self.scan_parts(body, &quote::new_text_ranges(body), ctx, false)
    }

    /// [`Detector::scan_message`], the rules run whatever the model says,
    /// so that every hit is listed (those it set aside with weight 0):
    /// what `explain` shows. Flags exactly when `scan_message` does.
    pub fn scan_message_in_full(&self, body: &str, ctx: &ScanContext<'_>) -> Verdict {
        self.scan_parts(body, &quote::new_text_ranges(body), ctx, true)
    }

    fn scan_parts(
        &self,
        text: &str,
        parts: &[Range<usize>],
        ctx: &ScanContext<'_>,
        in_full: bool,
    ) -> Verdict {
        let reading = self
            .model
            .as_ref()
            .map(|(m, set)| (m.read(text, parts), set));
        let whole = reading.as_ref().map(|(r, _)| r.whole());
        // The windows are read only when the whole text does not decide:
        // below `min_flag` here, or for a hit the whole text would set aside.
        let mut windows = None;
        if let (Some((r, set)), Some(s)) = (&reading, whole)
            && s.flag < set.min_flag
        {
            let ws = r.windows(s);
            if !in_full && self.trusted.is_empty() && ws.iter().all(|w| w.2.flag < set.min_flag) {
                // No stretch of the text could make a rule's hit count.
                return Verdict {
                    model: Some(s),
                    ..Verdict::default()
                };
            }
            windows = Some(ws);
        }
        let mut hits = Vec::new();
        for r in parts {
            let mut part = scan::scan(&self.compiled, &text[r.clone()], ctx);
            for h in &mut part {
                h.start += r.start;
                h.end += r.start;
            }
            hits.append(&mut part);
        }
        if let (Some((r, set)), Some(s)) = (&reading, whole) {
            self.judge(text, parts, &mut hits, r, windows, set, s);
        }
        let score = hits.iter().map(|h| h.weight).sum();
        Verdict {
            flagged: score > 0 && score >= self.min_score,
            hits,
            score,
            model: whole,
        }
    }

    /// Whether `parts` of `text` hold the kind of detail a contact
    /// category needs before the model alone may name it: for `phone`,
    /// seven digits in a run (separators allowed) that is not one of the
    /// platform's numbers, or seven number words ("five five five …"); for
    /// `email`, an `@` with a name after it, or "at" with a mail provider
    /// or "dot"; for
    /// `address`, a digit. "Please call me back" or "send it to my address
    /// on file" offers no contact detail. Messaging and payment need none:
    /// the intent is the evidence (see `judge` for payment on the
    /// platform).
    fn has_detail(&self, c: Category, text: &str, parts: &[Range<usize>]) -> bool {
        let new = || parts.iter().map(|r| &text[r.clone()]);
        match c {
            Category::Phone => new().any(|t| {
                phone_runs(t).any(|digits| {
                    !self.compiled.platform_phones.iter().any(|p| {
                        let k = digits.len().min(p.len());
                        digits[digits.len() - k..] == p[p.len() - k..]
                    })
                }) || number_words(t) >= 7
            }),
            Category::Email => new().any(|t| {
                let (mut at, mut provider) = (false, false);
                model::tokens(t, |w| match w {
                    "@" | "at" => at = true,
                    "dot" | "gmail" | "yahoo" | "hotmail" | "outlook" | "icloud" | "proton"
                    | "protonmail" | "aol" | "gmx" => provider = true,
                    _ => {}
                });
                named_at_sign(t) || (at && provider)
            }),
            Category::Address => new().any(|t| t.bytes().any(|b| b.is_ascii_digit())),
            Category::Messaging | Category::Payment => true,
        }
    }

    /// The model's judgement of the rules' `hits` in `parts` of `text`: a
    /// hit counts when the whole message or a window that holds it (see
    /// [`model::Reading::windows`]) reaches `min_flag` and the hit's
    /// category `min_keep` (so that text added around evidence cannot water
    /// it down); a category the whole message
    /// reaches `min_alone` for, with no counting hit, gets one from the
    /// model, spanning the sentence that weighed most for it among those
    /// that give the category's detail (see [`Detector::has_detail`])
    /// themselves or in the next sentence. A trusted
    /// pattern's hit always counts. `windows`
    /// are the reading's windows if already read; they are read here only
    /// for a hit the whole message would set aside.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        text: &str,
        parts: &[Range<usize>],
        hits: &mut Vec<Hit>,
        reading: &model::Reading<'_>,
        mut windows: Option<Vec<(usize, usize, model::Scores)>>,
        set: &model::ModelSettings,
        whole: model::Scores,
    ) {
        for h in hits.iter_mut() {
            let keep =
                |s: &model::Scores| s.flag >= set.min_flag && s.of(h.category) >= set.min_keep;
            if keep(&whole) || self.trusted.contains(&h.rule) {
                continue;
            }
            let local = windows
                .get_or_insert_with(|| reading.windows(whole))
                .iter()
                .filter(|w| h.start < w.1 && h.end > w.0)
                .any(|w| keep(&w.2));
            if !local {
                h.weight = 0;
            }
        }
        let Some((m, _)) = &self.model else {
            return;
        };
        if whole.flag < set.min_flag {
            return;
        }
        for c in Category::ALL {
            let counted = hits.iter().any(|h| h.category == c && h.weight > 0);
            if counted || whole.of(c) < set.min_alone {
                continue;
            }
            // The hit shows a sentence that gives the detail itself, or
            // whose next sentence does ("My cell:" above the number): not
            // a footer weighed for the number in a signature.
            let Some(span) = m.strongest_sentence(text, parts, c, |near| {
                self.has_detail(c, text, std::slice::from_ref(&near))
            }) else {
                continue;
            };
            // Paying through the portal or the invoice link is what the
            // platform asks for, whatever words around it sound like.
            if c == Category::Payment
                && keywords::pays_on_platform(
                    &self.compiled,
                    text[span.clone()].to_ascii_lowercase().as_bytes(),
                )
            {
                continue;
            }
            hits.push(Hit {
                category: c,
                rule: format!("model.{}", c.as_str()),
                text: text[span.clone()].to_owned(),
                start: span.start,
                end: span.end,
                weight: 1,
            });
        }
        hits.sort_by_key(|h| (h.start, h.end));
    }

    /// A short hash of the engine version and every setting that changes
    /// what a scan finds (not scope, not actions). A stored message scanned
    /// under another version is due for a rescan.
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// The default configuration with the model off: what the rules' own
/// tests scan with.
#[cfg(test)]
pub(crate) fn rules_only() -> DetectorConfig {
    let mut cfg = DetectorConfig::default();
    cfg.model.enabled = false;
    cfg
}

/// The digits of every run of at least seven digits in `text`, digits
/// joined by spaces, dots, dashes, slashes, parentheses or a plus.
fn phone_runs(text: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    text.split(|c: char| {
        !(c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '/' | '(' | ')' | '+'))
    })
    .map(|run| run.bytes().filter(u8::is_ascii_digit).collect::<Vec<u8>>())
    .filter(|d| d.len() >= 7)
}

/// Whether `text` has an `@` with a name after it (spaces allowed
/// between): "jo@mail.com", "jo @ mail"; not "this email, accounts@."
fn named_at_sign(text: &str) -> bool {
    text.match_indices('@').any(|(i, _)| {
        text[i + 1..]
            .trim_start()
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric)
    })
}

/// How many number words ("zero" … "nine", "oh") `text` has.
fn number_words(text: &str) -> usize {
    let mut n = 0;
    model::tokens(text, |w| {
        if matches!(
            w,
            "zero"
                | "oh"
                | "one"
                | "two"
                | "three"
                | "four"
                | "five"
                | "six"
                | "seven"
                | "eight"
                | "nine"
        ) {
            n += 1;
        }
    });
    n
}

fn version_of(cfg: &DetectorConfig) -> String {
    use sha2::{Digest, Sha256};
    // Serialising plain data to JSON cannot fail; an empty string would only
    // make every version equal, never crash.
    let relevant = serde_json::to_string(&(
        ENGINE_VERSION,
        cfg.min_score,
        &cfg.allow,
        &cfg.rules,
        &cfg.keywords,
        &cfg.payment_mentions,
        &cfg.app_mentions,
        &cfg.context,
        &cfg.patterns,
        &cfg.model,
        cfg.model.enabled.then(model::builtin_digest),
    ))
    .unwrap_or_default();
    let digest = Sha256::digest(relevant.as_bytes());
    hex::encode(&digest[..8])
}

/// True when a message of a ticket in `queue` with `issue_type` and `status`
/// is scanned (names compared case-insensitively; an empty list means any).
pub fn in_scope(cfg: &DetectorConfig, queue: &str, issue_type: &str, status: &str) -> bool {
    let matches = |list: &[String], v: &str| {
        list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(v))
    };
    cfg.enabled
        && matches(&cfg.scope.queues, queue)
        && matches(&cfg.scope.issue_types, issue_type)
        && matches(&cfg.scope.statuses, status)
}

/// The `[detector]` table of `rules.toml`. Every key has a default (the
/// values shipped in `contrib/detector.toml`), so a table that sets one key
/// keeps the rest; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Master switch: false scans nothing.
    pub enabled: bool,
    /// A message is flagged when its hits' weights add up to this.
    pub min_score: u32,
    /// Which tickets are scanned.
    pub scope: Scope,
    /// What is never evidence: the platform's own contact details, freemail.
    pub allow: Allow,
    /// Rule switches.
    pub rules: Rules,
    /// Keyword lists: any match is evidence (unless negated).
    pub keywords: Keywords,
    /// Payment apps and crypto that are evidence only with a cue.
    pub payment_mentions: PaymentMentions,
    /// Messaging apps that are evidence only with a cue of intent, and the
    /// cues (shared with the payment apps).
    pub app_mentions: AppMentions,
    /// Word lists that give numbers and keywords their context.
    pub context: Context,
    /// Extra regexes over the normalised (lower-case) text.
    pub patterns: Vec<PatternRule>,
    /// How the learned model combines with the rules (`[detector.model]`).
    pub model: model::ModelSettings,
    /// What happens on a hit (carried out by the pipeline).
    pub actions: Actions,
}

/// `[detector.scope]`: which tickets' customer messages are scanned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scope {
    /// Queues (`support`, `sales`); empty means every queue.
    pub queues: Vec<String>,
    /// Issue types; empty means every type.
    pub issue_types: Vec<String>,
    /// Ticket statuses; empty means every status.
    pub statuses: Vec<String>,
}

/// `[detector.allow]`: contact details that are never evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Allow {
    /// The platform's domains (and their subdomains): addresses there are ours.
    pub platform_domains: Vec<String>,
    /// The platform's phone numbers, in any format.
    pub platform_phones: Vec<String>,
    /// The platform's street addresses ("1200 Market Street").
    pub platform_addresses: Vec<String>,
    /// Freemail domains: an address there is personal, and counts double.
    pub freemail_domains: Vec<String>,
}

/// `[detector.rules]`: switches per category and per structured rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Phone numbers.
    pub phone: bool,
    /// E-mail addresses.
    pub email: bool,
    /// Street addresses and PO boxes.
    pub address: bool,
    /// Messaging platforms.
    pub messaging: bool,
    /// Payment outside the platform.
    pub payment: bool,
    /// Phone numbers spelled out ("five five five …").
    pub spelled_digits: bool,
    /// Ten unformatted digits ("5551234567") count as a phone number.
    pub bare_phone_numbers: bool,
    /// IBANs (mod-97 checked).
    pub iban: bool,
    /// Crypto wallet addresses (checksums verified where they exist).
    pub crypto: bool,
    /// ABA routing numbers next to banking words (checksum verified).
    pub routing_numbers: bool,
    /// Card numbers (Luhn checked, known issuer prefix).
    pub card_numbers: bool,
    /// "don't", "never", "no" just before a keyword cancel it.
    pub negation: bool,
}

/// `[detector.keywords]`: phrases that are evidence wherever they appear
/// (unless negated). Matching ignores case, accents, look-alikes and
/// punctuation inside a word (`whats-app`, `w.h.a.t.s.a.p.p`, `w h a t s a p
/// p`); a space is only accepted where the entry has one, so list the spaced
/// spellings people use (`whats app`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keywords {
    /// Phrases that share a phone number.
    pub phone: Vec<String>,
    /// Phrases that share a personal e-mail address.
    pub email: Vec<String>,
    /// Phrases that share a street address.
    pub address: Vec<String>,
    /// Invitations to message elsewhere ("text me", "DM me"); the apps'
    /// names are in [`AppMentions::messaging`] and need a cue.
    pub messaging: Vec<String>,
    /// Paying outside the platform.
    pub payment: Vec<String>,
}

/// `[detector.payment_mentions]`: names that are ordinary in accounting
/// (a client's own Venmo income, bitcoin gains, the routing number for a tax
/// refund) and only evidence when the sentence is about paying us. A veto
/// phrase in the sentence ("1099", "income", "tenants") makes it
/// bookkeeping, never evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentMentions {
    /// Payment apps and crypto (same matching as keywords). Evidence with a
    /// second-person word in the sentence ("do you take Zelle"), a payment
    /// verb shortly before ("pay by Zelle", not "my tenants pay by Zelle"),
    /// a handle right after ("Venmo me", "Zelle: 555…"), or "my `<name>` is".
    pub terms: Vec<String>,
    /// Bank details (same matching). Evidence when asked for ("your routing
    /// number"), or with a second-person word and a payment verb in the
    /// sentence ("send the wire details … I'll pay you").
    pub details: Vec<String>,
    /// Second-person words.
    pub second_person: Vec<String>,
    /// Payment verbs, looked for within four words before a term.
    pub verbs: Vec<String>,
    /// Payers that are not the customer paying us: a verb right after one
    /// of these ("my students pay with Venmo") is no cue.
    pub third_parties: Vec<String>,
    /// Words right after a term that introduce a handle.
    pub handles: Vec<String>,
    /// Phrases that make the sentence bookkeeping.
    pub vetoes: Vec<String>,
}

/// `[detector.app_mentions]`: app names that clients also write in
/// ordinary senses (the WhatsApp Business bill, Telegram ads, the app an old
/// bookkeeper used) and that are evidence only with a cue of intent to move
/// the conversation or the payment. A messaging app counts when its
/// sentence has no veto, is not about the past (unless it speaks to the
/// reader: "did you get my WhatsApp?"), and has a cue: a second-person
/// word, an invitation, an acceptance, a handle or a number; an invitation,
/// handle or number in the next sentence counts too. A payment app
/// (`payment_mentions.terms`) also counts when an acceptance follows it
/// ("Venmo works too", "Zelle is fine") or an invitation shares its
/// sentence, and never in a past-tense sentence that does not speak to the
/// reader ("last year I paid the nanny through Zelle").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppMentions {
    /// Messaging apps (same matching as keywords).
    pub messaging: Vec<String>,
    /// Messaging apps whose names are also ordinary words ("signal",
    /// "slack", "line", "teams"): counted here only when spelled out to evade (`s.i.g.n.a.l`,
    /// `sig nal`), with the same cues as [`messaging`](Self::messaging);
    /// their plain spelling is left to the `[[detector.patterns]]` rules,
    /// which read its context.
    pub ambiguous: Vec<String>,
    /// Invitations, handles and proposals ("message me", "let's", "can we",
    /// "my handle"): a cue in the sentence or the next.
    pub invitations: Vec<String>,
    /// Acceptance and preference ("works", "is fine", "easier",
    /// "instead"): a cue anywhere in a messaging app's sentence, and right
    /// after a payment app (within three words).
    pub acceptances: Vec<String>,
    /// Phrases of the past or of history ("used to", "last year", "my
    /// previous accountant"): no cue counts in their sentence unless it
    /// speaks to the reader.
    pub past: Vec<String>,
    /// Vendor, expense and third-party senses ("subscription", "ads",
    /// "export", "scam"), on top of `payment_mentions.vetoes`: a messaging
    /// app in a sentence with one is never evidence.
    pub vetoes: Vec<String>,
}

/// `[detector.context]`: word lists that decide what a number or keyword
/// means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Context {
    /// A number right after one of these (within three words) is a
    /// reference, not a phone number or an address: order, invoice, …
    pub reference_words: Vec<String>,
    /// Words that cancel a keyword within the two words before it.
    pub negations: Vec<String>,
    /// Phrases after a payment keyword, in the same sentence, that put the
    /// payment back on the platform ("pay directly through the portal").
    pub on_platform: Vec<String>,
    /// Street suffixes that end a street address.
    pub street_suffixes: Vec<String>,
    /// Street suffixes that are also ordinary words, counted only when
    /// capitalised ("Way", "Place").
    pub street_suffixes_capitalised: Vec<String>,
    /// Words that never belong to a street name ("the", "of", "days").
    pub street_stopwords: Vec<String>,
    /// Phrases that put a street address in a bookkeeping sense (a rental
    /// property, a sale, a lease, a vendor's or the IRS's office): a street
    /// address in a sentence with one is not evidence.
    pub address_vetoes: Vec<String>,
    /// Phrases that make a phone number someone else's (the IRS, a
    /// department, the number on a notice): a phone number in a sentence
    /// with one, and with no word of the customer's own ("me", "my", "our"),
    /// is not evidence. The clause ends at "but", "so", "and" ("the IRS
    /// says to call 800-…, but I'd rather you do"), so a word of the
    /// customer's own there does not make the number theirs.
    pub phone_vetoes: Vec<String>,
    /// Words before a number that make it a phone number even without
    /// formatting (used with `bare_phone_numbers`).
    pub phone_words: Vec<String>,
    /// Single words that make a phone number, e-mail address or street
    /// address someone else's when they are the nearest owner before it
    /// in its sentence ("call the airline at …", "UPS at …", "the vendor
    /// … address is …"); see the `owner` rules in the module docs.
    pub contact_owners: Vec<String>,
    /// The customer's own people ("husband", "assistant"): "my husband's
    /// cell", or "her" with "my assistant" nearby, is the customer's side.
    pub contact_proxies: Vec<String>,
    /// Phrases that offer a street address to the reader ("send", "mail
    /// it to", "drop off", "come by", "my address is"): a street address
    /// or PO box counts only with one in its sentence or the sentences
    /// just before and after.
    pub address_offers: Vec<String>,
}

/// One configured regex (`[[detector.patterns]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternRule {
    /// Unique name, reported as `pattern.<name>`.
    pub name: String,
    /// `phone`, `email`, `address`, `messaging` or `payment`.
    pub category: String,
    /// The regex, over the normalised text: lower case, look-alikes folded,
    /// zero-width characters removed. Write it in lower case; classes are
    /// ASCII (`\b`, `\s`, `\d`). A regex whose every match contains a
    /// literal of three or more letters (found automatically) runs only
    /// within 160 bytes of where that literal occurs; one without runs over
    /// the whole text of every message.
    pub regex: String,
    /// Whether a negation just before the match cancels it.
    #[serde(default = "yes")]
    pub negatable: bool,
    /// Whether its hits count whatever `[detector.model]` says: for an
    /// admin's own pattern that must flag every time it matches. Costs
    /// speed: with a trusted pattern the rules run on every message, even
    /// one the model rules out.
    #[serde(default, skip_serializing_if = "is_false")]
    pub trusted: bool,
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `[detector.actions]`: what the pipeline does with a flagged message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Actions {
    /// Reply in the thread with the warning template.
    pub warn: bool,
    /// Open a Compliance Alert ticket and mail the admins.
    pub alert: bool,
    /// On the `repeat_threshold`-th flag, suspend the client's access to
    /// the queue (mail still stored and threaded).
    pub suspend_on_repeat: bool,
    /// Issue type of the alert ticket.
    pub alert_issue_type: String,
    /// Priority of the alert ticket.
    pub alert_priority: Priority,
    /// Priority of the alert ticket from the repeat on.
    pub repeat_priority: Priority,
    /// Which flag of the same client counts as a repeat (2 = the second).
    pub repeat_threshold: u32,
    /// Minutes between rescans of in-scope tickets under changed rules.
    pub rescan_interval_minutes: u64,
}

/// The lower-case skeleton of `text` the detector's keywords are matched
/// against (accents, look-alikes and invisible characters folded; see
/// `normalize`), for other keyword checks that must read text the same way.
pub fn fold(text: &str) -> String {
    let mut n = normalize::Normalized::default();
    n.build(text);
    String::from_utf8_lossy(&n.bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_scope_is_accounting_support_open_or_replied() {
        let cfg = DetectorConfig::default();
        assert!(in_scope(&cfg, "support", "Accounting Support", "Open"));
        assert!(in_scope(&cfg, "Support", "accounting support", "replied"));
        assert!(!in_scope(&cfg, "support", "Accounting Support", "Closed"));
        assert!(!in_scope(&cfg, "support", "Bug", "Open"));
        assert!(!in_scope(&cfg, "sales", "Accounting Support", "Open"));
        let off = DetectorConfig {
            enabled: false,
            ..DetectorConfig::default()
        };
        assert!(!in_scope(&off, "support", "Accounting Support", "Open"));
    }

    #[test]
    fn empty_scope_lists_mean_any() {
        let cfg = DetectorConfig {
            scope: Scope {
                queues: vec![],
                issue_types: vec![],
                statuses: vec![],
            },
            ..DetectorConfig::default()
        };
        assert!(in_scope(&cfg, "sales", "Bug", "Closed"));
    }

    /// A detector with the default rules and `weights` as its model.
    fn with_weights(weights: &str) -> Detector {
        configured_with_weights(&DetectorConfig::default(), weights)
    }

    fn configured_with_weights(cfg: &DetectorConfig, weights: &str) -> Detector {
        let mut d = Detector::new(cfg).expect("configuration compiles");
        let m: &'static model::Model =
            Box::leak(Box::new(model::Model::parse(weights).expect("parses")));
        d.model = Some((m, model::ModelSettings::default()));
        d
    }

    // Bias of every output, then a feature that makes a message evidence
    // of payment, and one that speaks against phone evidence.
    const WEIGHTS: &str = "bias\t0\t0\t0\t0\t0\t0\n\
        frobnicate\t9\t-9\t-9\t-9\t-9\t9\n\
        sheriff\t0\t-20\t0\t0\t0\t0\n\
        gossip\t-20\t0\t0\t0\t0\t0\n";

    #[test]
    fn the_model_alone_makes_a_hit_on_the_sentence_that_weighs_most() {
        let d = with_weights(WEIGHTS);
        let text = "Thanks for the reminder.\nI will frobnicate the fee to you.";
        let v = d.scan_message(text, &ScanContext::default());
        assert!(v.flagged, "{v:?}");
        assert_eq!(v.categories(), [Category::Payment]);
        let h = &v.hits[0];
        assert_eq!((h.rule.as_str(), h.weight), ("model.payment", 1));
        assert_eq!(h.text, "I will frobnicate the fee to you.");
        assert_eq!(&text[h.start..h.end], h.text);
        let s = v.model.expect("scores");
        assert!(s.flag > 0.8 && s.of(Category::Payment) > 0.8 && s.of(Category::Phone) < 0.5);
    }

    #[test]
    fn a_rule_hit_of_a_category_the_model_rules_out_is_listed_not_counted() {
        let d = with_weights(WEIGHTS);
        // The rules find the number; the model's phone probability is
        // about 0 with "sheriff", 0.5 without.
        let ctx = ScanContext::default();
        let kept = d.scan_message("Call me at (415) 555-0134 tonight.", &ctx);
        assert!(
            kept.flagged && kept.categories() == [Category::Phone],
            "{kept:?}"
        );
        let v = d.scan_message("Call the sheriff at (415) 555-0134 tonight.", &ctx);
        assert!(!v.flagged, "{v:?}");
        assert!(
            v.hits
                .iter()
                .any(|h| h.category == Category::Phone && h.weight == 0)
        );
        assert_eq!((v.score, v.categories()), (0, vec![]));
    }

    #[test]
    fn a_trusted_patterns_hits_count_whatever_the_model_says() {
        let text = "Just gossip: let us go on by carrier pigeon.";
        let ctx = ScanContext::default();
        for trusted in [false, true] {
            let mut cfg = DetectorConfig::default();
            cfg.patterns.push(PatternRule {
                name: "pigeon".into(),
                category: "messaging".into(),
                regex: r"carrier\s+pigeon".into(),
                negatable: true,
                trusted,
            });
            let d = configured_with_weights(&cfg, WEIGHTS);
            for v in [
                d.scan_message(text, &ctx),
                d.scan_message_in_full(text, &ctx),
            ] {
                // The model rules the message out ...
                assert!(v.model.is_some_and(|s| s.flag < 0.5), "{v:?}");
                // ... and only a trusted pattern's hit counts anyway.
                assert_eq!(v.flagged, trusted, "trusted {trusted}: {v:?}");
                assert_eq!(
                    v.hits
                        .iter()
                        .any(|h| h.rule == "pattern.pigeon" && h.weight > 0),
                    trusted
                );
            }
        }
    }

    #[test]
    fn the_model_alone_names_no_payment_made_on_the_platform_nor_a_bare_at_sign() {
        // A word that reads as payment and e-mail evidence to the model.
        const FROB: &str = "bias\t0\t0\t0\t0\t0\t0\nfrobnicate\t9\t-9\t9\t-9\t-9\t9\n";
        let d = with_weights(FROB);
        let ctx = ScanContext::default();
        let rules_of = |text: &str| -> Vec<String> {
            let v = d.scan_message(text, &ctx);
            v.hits.iter().map(|h| h.rule.clone()).collect()
        };
        assert_eq!(
            rules_of("I will frobnicate the fee to jo @ home."),
            ["model.email", "model.payment"]
        );
        // Through the portal or the invoice link: no payment evidence.
        assert_eq!(
            rules_of("I will frobnicate the fee through the portal, jo @ home."),
            ["model.email"]
        );
        assert_eq!(
            rules_of("Can I frobnicate it by ACH through the invoice link?"),
            Vec::<String>::new()
        );
        // ... unless the sentence turns it around (a rule sees it too).
        let v = d.scan_message(
            "I will frobnicate the fee instead of going through the portal.",
            &ctx,
        );
        assert_eq!(v.categories(), [Category::Payment], "{v:?}");
        let mut cfg = DetectorConfig::default();
        cfg.patterns.clear();
        let bare = configured_with_weights(&cfg, FROB);
        let v = bare.scan_message("I frobnicate the fee, not through the portal.", &ctx);
        let rules: Vec<&str> = v.hits.iter().map(|h| h.rule.as_str()).collect();
        assert_eq!(rules, ["model.payment"]);
        // ... or weighs the platform as one way of two.
        let v = bare.scan_message(
            "Can I frobnicate it, or must it be through the portal?",
            &ctx,
        );
        let rules: Vec<&str> = v.hits.iter().map(|h| h.rule.as_str()).collect();
        assert_eq!(rules, ["model.payment"]);
        // An `@` with no name after it is no address.
        assert_eq!(
            rules_of("Keep sending things to this email, accounts@. I frobnicate."),
            ["model.payment"]
        );
    }

    #[test]
    fn the_model_alones_hit_shows_the_sentence_that_gives_the_detail() {
        let d = with_weights(
            "bias\t0\t0\t0\t0\t0\t0\n\
             frobnicate\t9\t-9\t9\t-9\t-9\t-9\n\
             wibble\t0\t0\t9\t0\t0\t0\n",
        );
        // The second sentence weighs more for e-mail but gives no address.
        let text = "Frobnicate jo @ home.\nFrobnicate wibble.";
        let v = d.scan_message(text, &ScanContext::default());
        let shown: Vec<(&str, &str)> = v
            .hits
            .iter()
            .map(|h| (h.rule.as_str(), h.text.as_str()))
            .collect();
        assert_eq!(shown, [("model.email", "Frobnicate jo @ home.")]);
    }

    #[test]
    fn below_min_flag_nothing_counts() {
        let d = with_weights(WEIGHTS);
        let text = "Just gossip: text me at (415) 555-0134.";
        let ctx = ScanContext::default();
        // In full: the rules' hits are listed, none counts.
        let v = d.scan_message_in_full(text, &ctx);
        assert!(!v.flagged && v.score == 0 && !v.hits.is_empty(), "{v:?}");
        assert!(v.hits.iter().all(|h| h.weight == 0));
        // The pipeline's scan does not run the rules at all.
        let fast = d.scan_message(text, &ctx);
        assert!(!fast.flagged && fast.hits.is_empty(), "{fast:?}");
        assert_eq!(fast.model, v.model);
        assert!(fast.model.is_some_and(|s| s.flag < 0.5));
    }

    #[test]
    fn the_model_alone_names_no_contact_detail_the_text_does_not_give() {
        let mut cfg = DetectorConfig::default();
        cfg.allow.platform_phones = vec!["+1 (888) 555-0142".into()];
        let d = Detector::new(&cfg).expect("compiles");
        let ctx = ScanContext::default();
        for text in [
            "Please call me back when you can.",
            "Can you call me tomorrow morning?",
            "Hi, is (888) 555-0142 still the right number to reach your team?",
            "Could you send the forms to my home address on file?",
            "Please email me the draft when it is ready.",
        ] {
            let v = d.scan_message(text, &ctx);
            assert!(!v.flagged, "{text}: {v:?}");
        }
        // A detail given in words is one.
        let v = d.scan_message(
            "Call me on my cell, it's five five five, two one two, three four four seven.",
            &ctx,
        );
        assert!(v.categories().contains(&Category::Phone), "{v:?}");
        let whole = |t: &str| vec![0..t.len(), t.len()..t.len()];
        let detail = |c, t: &str| d.has_detail(c, t, &whole(t));
        assert!(detail(Category::Email, "jo dot k at gmail"));
        assert!(!detail(Category::Email, "meet at noon"));
        assert!(detail(Category::Address, "Unit 4, Mill Lane"));
        assert!(!detail(Category::Phone, "call (888) 555-0142 or 12 34"));
        assert!(detail(Category::Phone, "call 415 555 0134"));
    }

    #[test]
    fn a_model_threshold_outside_0_to_1_is_a_clear_error() {
        for (toml, key) in [
            ("[model]\nmin_flag = 1.5\n", "min_flag"),
            ("[model]\nmin_keep = -0.1\n", "min_keep"),
            ("[model]\nmin_alone = nan\n", "min_alone"),
        ] {
            let cfg: DetectorConfig = toml::from_str(toml).expect("parses");
            let e = Detector::new(&cfg).expect_err("must fail");
            assert!(
                e.to_string()
                    .starts_with(&format!("detector.model.{key} (")),
                "{e}"
            );
            assert!(
                e.to_string().ends_with("must be a number from 0 to 1"),
                "{e}"
            );
            assert_eq!(e.key_path(), [KeyPart::Key("model"), KeyPart::Key(key)]);
        }
    }

    #[test]
    fn with_the_model_off_the_rules_decide_alone() {
        let d = Detector::new(&rules_only()).expect("compiles");
        let v = d.scan_message(
            "Just gossip: text me at (415) 555-0134.",
            &ScanContext::default(),
        );
        assert!(v.flagged && v.model.is_none(), "{v:?}");
        let v = d.scan_message("I will frobnicate the fee to you.", &ScanContext::default());
        assert!(!v.flagged && v.hits.is_empty());
        assert_ne!(
            Detector::new(&rules_only()).expect("compiles").version(),
            Detector::new(&DetectorConfig::default())
                .expect("compiles")
                .version(),
            "turning the model off changes what a scan finds"
        );
    }

    #[test]
    fn defaults_build() {
        let d = Detector::new(&DetectorConfig::default()).expect("defaults compile");
        assert_eq!(d.version().len(), 16);
    }

    #[test]
    fn version_changes_with_rules_but_not_with_actions() {
        let base = DetectorConfig::default();
        let v = Detector::new(&base).expect("compiles").version().to_owned();
        let mut more = base.clone();
        more.keywords.messaging.push("line app".into());
        let v2 = Detector::new(&more).expect("compiles").version().to_owned();
        assert_ne!(v, v2);
        let mut acts = base.clone();
        acts.actions.warn = false;
        acts.scope.statuses.push("Resolved".into());
        let v3 = Detector::new(&acts).expect("compiles").version().to_owned();
        assert_eq!(v, v3);
    }

    #[test]
    fn a_bad_regex_names_its_pattern() {
        let mut cfg = DetectorConfig::default();
        cfg.patterns.push(PatternRule {
            name: "broken".into(),
            category: "payment".into(),
            regex: "(unclosed".into(),
            negatable: true,
            trusted: false,
        });
        let err = Detector::new(&cfg).expect_err("must fail").to_string();
        assert!(err.contains("broken"), "{err}");
        assert!(err.contains("detector.patterns["), "{err}");
    }

    #[test]
    fn an_upper_case_pattern_or_unknown_category_is_refused() {
        let mut cfg = DetectorConfig::default();
        cfg.patterns.push(PatternRule {
            name: "shouty".into(),
            category: "payment".into(),
            regex: r"\bVenmo\b".into(),
            negatable: true,
            trusted: false,
        });
        let err = Detector::new(&cfg).expect_err("must fail").to_string();
        assert!(
            err.contains("shouty") && err.contains("lower case"),
            "{err}"
        );
        let mut cfg = DetectorConfig::default();
        cfg.patterns.push(PatternRule {
            name: "odd".into(),
            category: "fax".into(),
            regex: "x".into(),
            negatable: true,
            trusted: false,
        });
        let err = Detector::new(&cfg).expect_err("must fail").to_string();
        assert!(err.contains("odd") && err.contains("category"), "{err}");
    }

    #[test]
    fn an_empty_keyword_names_its_list() {
        let mut cfg = DetectorConfig::default();
        cfg.keywords.payment.push(" - ".into());
        let err = Detector::new(&cfg).expect_err("must fail").to_string();
        assert!(err.contains("keywords.payment["), "{err}");
    }

    #[test]
    fn partial_table_keeps_the_other_defaults_and_typos_are_errors() {
        let cfg: DetectorConfig =
            toml::from_str("min_score = 2\n[rules]\niban = false\n").expect("parses");
        assert_eq!(cfg.min_score, 2);
        assert!(!cfg.rules.iban);
        assert!(cfg.rules.crypto);
        assert_eq!(cfg.keywords, Keywords::default());
        let err = toml::from_str::<DetectorConfig>("[rules]\nibn = false\n").expect_err("typo");
        assert!(err.to_string().contains("ibn"), "{err}");
    }

    #[test]
    fn verdict_serialises_categories_in_lower_case() {
        let d = Detector::new(&DetectorConfig::default()).expect("compiles");
        let v = d.scan("add me on WhatsApp", &ScanContext::default());
        let json = serde_json::to_value(&v).expect("serialises");
        assert_eq!(json["hits"][0]["category"], "messaging");
        assert_eq!(json["hits"][0]["text"], "WhatsApp");
        assert!(
            json["hits"][0]["rule"]
                .as_str()
                .is_some_and(|r| !r.is_empty())
        );
    }
}
