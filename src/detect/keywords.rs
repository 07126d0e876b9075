//! Keywords: the configured phrase lists, compiled into one automaton over
//! their letters and digits, and the checks on what it finds.
//!
//! Receives the keys the [`automaton`](super::automaton) found in the
//! skeleton (it reads through separators) and reports each match that
//! survives four checks:
//!
//! 1. **Word boundaries** in the skeleton: `gazelle` is not `zelle`.
//! 2. **Separators** the automaton skipped: punctuation inside a word is
//!    evasion (`whats-app`, `v.e.n.m.o`), single letters spaced out are
//!    evasion (`w h a t s a p p`), but a space is only accepted where the
//!    configured entry has one: `cash app` matches "cash app", while
//!    `imessage` does not match "I message you" and `wechat` does not match
//!    "we chat".
//! 3. **Negation**: "don't", "never", "no" within four words before, in
//!    the same clause.
//! 4. For payment: the payment is not put back on the platform later in
//!    the sentence ("pay you directly through the portal"); for payment
//!    *mentions* (`venmo`, `bitcoin`), a cue that the sentence is about
//!    paying us and no bookkeeping veto (see
//!    [`PaymentMentions`](super::PaymentMentions)); for messaging apps
//!    (`whatsapp`, `telegram`), a cue of intent to move the conversation and
//!    no vendor, expense or past sense (see
//!    [`AppMentions`](super::AppMentions)); for app names that are also
//!    words (`signal`), a spelling that evades ("s.i.g.n.a.l") and a cue;
//!    for invitations ("text me"), no habit just before ("used to text me");
//!    for app names, no vendor's act or record right after ("Google Pay
//!    shows a charge", "the Zelle receipt"); for plain payment phrases, not
//!    told as history (a past word, nothing said to the reader, no intent).

use std::collections::HashMap;

use super::automaton::{Automaton, class, positions_back};
use super::owner;
use super::patterns::{Anchors, Compiled};
use super::scan::{RawHit, Source};
use super::words::{
    self, CLAUSE_STOPS, PhraseList, SENTENCE_STOPS, is_word_byte, normalise_entry, words_after,
    words_before,
};
use super::{Category, DetectorConfig, Error};

/// Longest gap of separators accepted inside a match (`" - "`).
const MAX_GAP: usize = 3;

/// One configured entry that squeezes to a key.
#[derive(Debug)]
struct Variant {
    category: Category,
    /// `keyword.<list>:<entry>`.
    rule: String,
    /// A payment mention that needs a cue.
    mention: Mention,
    /// Bit `i` set: a space is accepted before squeezed character `i`.
    spaces: u128,
}

/// Whether a keyword needs a cue to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mention {
    /// Evidence on its own.
    No,
    /// A payment app or crypto name (`payment_mentions.terms`).
    Term,
    /// A bank detail (`payment_mentions.details`).
    Detail,
    /// A messaging app (`app_mentions.messaging`).
    App,
    /// A messaging app whose name is also an ordinary word
    /// (`app_mentions.ambiguous`): only spelled out to evade, and with a cue.
    Evasive,
}

/// The compiled keyword lists.
#[derive(Debug)]
pub(crate) struct KeywordSet {
    automaton: Automaton,
    /// Per automaton pattern: the entries that squeeze to it.
    keys: Vec<Key>,
}

/// One automaton pattern.
#[derive(Debug, Default)]
struct Key {
    /// Keyword entries that squeeze to this key.
    variants: Vec<Variant>,
    /// Configured regexes (by index) anchored on this key, and whether the
    /// anchor must start a word.
    triggers: Vec<(usize, bool)>,
    /// A word the structured rules look at (see [`Marker`]).
    marker: Marker,
}

/// Words the structured rules start from, found by the same automaton pass
/// (cheaper than looking at every token).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// Not one.
    #[default]
    None,
    /// "at", or the Spanish and French "arroba", "arobase": an obfuscated
    /// e-mail address may surround it.
    At,
    /// A digit word ("five"): a spelled-out phone number may start here.
    NumberWord,
    /// A word for twenty to ninety ("twenty"): a house number written in
    /// words may start here ("twenty-two Maple Street").
    TensWord,
}

impl KeywordSet {
    /// Compile every keyword list of the configuration, and the anchors of
    /// the configured regexes (`anchors[i]` for pattern `i`).
    pub fn new(cfg: &DetectorConfig, anchors: &[Option<Anchors>]) -> Result<KeywordSet, Error> {
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut keys: Vec<Key> = Vec::new();
        for (key, category, mention, entries) in lists(cfg) {
            for (i, entry) in entries.iter().enumerate() {
                let (squeezed, spaces) = squeeze(entry);
                let fail = |reason| Error::Entry {
                    key: key.to_owned(),
                    index: i,
                    value: entry.clone(),
                    reason,
                };
                if squeezed.is_empty() {
                    return Err(fail("has no letters or digits to match"));
                }
                if squeezed.len() > 120 {
                    return Err(fail("is longer than 120 letters and digits"));
                }
                if squeezed.len() < 3 {
                    return Err(fail("is shorter than 3 letters and digits"));
                }
                let slot = *index.entry(squeezed.clone()).or_insert_with(|| {
                    patterns.push(squeezed);
                    keys.push(Key::default());
                    keys.len() - 1
                });
                let list = key.strip_prefix("keywords.").unwrap_or(key);
                keys[slot].variants.push(Variant {
                    category,
                    rule: format!("keyword.{list}:{}", entry.trim()),
                    mention,
                    spaces,
                });
            }
        }
        for (i, anchor) in anchors.iter().enumerate() {
            let Some(anchor) = anchor else {
                continue;
            };
            for a in &anchor.words {
                let slot = *index.entry(a.clone()).or_insert_with(|| {
                    patterns.push(a.clone());
                    keys.push(Key::default());
                    keys.len() - 1
                });
                keys[slot].triggers.push((i, anchor.word_start));
            }
        }
        let markers = [
            (&b"at"[..], Marker::At),
            (b"arroba", Marker::At),
            (b"arobase", Marker::At),
            (b"zero", Marker::NumberWord),
            (b"one", Marker::NumberWord),
            (b"two", Marker::NumberWord),
            (b"three", Marker::NumberWord),
            (b"four", Marker::NumberWord),
            (b"five", Marker::NumberWord),
            (b"six", Marker::NumberWord),
            (b"seven", Marker::NumberWord),
            (b"eight", Marker::NumberWord),
            (b"nine", Marker::NumberWord),
        ];
        // Eleven to ninety start a house number in words ("Twelve Oak
        // Ridge Drive"): "ten" hides inside too many ordinary words
        // ("often", "content") to be worth a marker on every message.
        let markers = markers.into_iter().chain(
            super::address::TENS_WORDS
                .iter()
                .filter(|&&(_, n)| n >= 11)
                .map(|&(w, _)| (w, Marker::TensWord)),
        );
        for (word, marker) in markers {
            let slot = *index.entry(word.to_vec()).or_insert_with(|| {
                patterns.push(word.to_vec());
                keys.push(Key::default());
                keys.len() - 1
            });
            keys[slot].marker = marker;
        }
        let automaton = Automaton::new(&patterns).map_err(|_| Error::TooManyKeywords)?;
        Ok(KeywordSet { automaton, keys })
    }

    /// The automaton over all keys; its key numbers index this set.
    pub fn automaton(&self) -> &Automaton {
        &self.automaton
    }

    /// Whether key `k` is a structured-rule marker, and whether it is more
    /// (a keyword or an anchor) that [`judge`] must see.
    pub fn marker(&self, k: u32) -> (Marker, bool) {
        let key = &self.keys[k as usize];
        (
            key.marker,
            !key.variants.is_empty() || !key.triggers.is_empty(),
        )
    }
}

/// The keyword lists of a configuration: key, category, whether a cue is
/// needed, entries.
fn lists(cfg: &DetectorConfig) -> [(&'static str, Category, Mention, &[String]); 9] {
    let k = &cfg.keywords;
    let pm = &cfg.payment_mentions;
    let am = &cfg.app_mentions;
    [
        ("keywords.phone", Category::Phone, Mention::No, &k.phone),
        ("keywords.email", Category::Email, Mention::No, &k.email),
        (
            "keywords.address",
            Category::Address,
            Mention::No,
            &k.address,
        ),
        (
            "keywords.messaging",
            Category::Messaging,
            Mention::No,
            &k.messaging,
        ),
        (
            "keywords.payment",
            Category::Payment,
            Mention::No,
            &k.payment,
        ),
        (
            "payment_mentions.terms",
            Category::Payment,
            Mention::Term,
            &pm.terms,
        ),
        (
            "payment_mentions.details",
            Category::Payment,
            Mention::Detail,
            &pm.details,
        ),
        (
            "app_mentions.messaging",
            Category::Messaging,
            Mention::App,
            &am.messaging,
        ),
        (
            "app_mentions.ambiguous",
            Category::Messaging,
            Mention::Evasive,
            &am.ambiguous,
        ),
    ]
}

/// An entry's letters and digits, and bit `i` set where a space came
/// before squeezed character `i`.
fn squeeze(entry: &str) -> (Vec<u8>, u128) {
    let norm = normalise_entry(entry);
    let mut squeezed = Vec::with_capacity(norm.len());
    let mut spaces = 0u128;
    let mut pending_space = false;
    for &b in &norm {
        if b.is_ascii_alphanumeric() {
            if pending_space && !squeezed.is_empty() && squeezed.len() < 128 {
                spaces |= 1 << squeezed.len();
            }
            pending_space = false;
            squeezed.push(b);
        } else if b == b' ' {
            pending_space = true;
        }
    }
    (squeezed, spaces)
}

/// Judge the keys the automaton found in the skeleton `norm` (key number,
/// end offset): keyword hits go to `out`, and each anchor of a configured
/// regex to `triggered` as (pattern index, skeleton position).
pub(crate) fn judge<'c>(
    c: &'c Compiled,
    norm: &[u8],
    found: &[(u32, u32)],
    triggered: &mut Vec<(u32, u32)>,
    pos: &mut Vec<u32>,
    out: &mut Vec<RawHit<'c>>,
) {
    for &(k, end) in found {
        let key = &c.keywords.keys[k as usize];
        if key.variants.is_empty() && key.triggers.is_empty() {
            continue;
        }
        let len = c.keywords.automaton.key_len(k);
        // Most keys are written whole, letters side by side: their letters
        // are then the `len` bytes before `end`, which is exactly what
        // `positions_back` would list, so the list is built only for the
        // others.
        let whole = (end as usize)
            .checked_sub(len)
            .is_some_and(|s| norm[s..end as usize].iter().all(|&b| class(b) != 0));
        let ns = if whole {
            end as usize - len
        } else {
            if !positions_back(norm, end as usize, len, pos) {
                continue;
            }
            pos[0] as usize
        };
        let starts_word = ns == 0 || !is_word_byte(norm[ns - 1]);
        for &(t, word_start) in &key.triggers {
            if starts_word || !word_start {
                triggered.push((t as u32, ns as u32));
            }
        }
        if key.variants.is_empty() || !starts_word {
            continue;
        }
        let ne = end as usize;
        if ne < norm.len() && is_word_byte(norm[ne]) {
            continue;
        }
        let shape = if whole {
            // What `Shape::of` gives for letters side by side.
            Shape {
                space_bits: 0,
                spaced_letters: false,
                gaps: 0,
            }
        } else {
            let Some(shape) = Shape::of(norm, pos) else {
                continue;
            };
            shape
        };
        for v in &key.variants {
            if !c.category_enabled(v.category) {
                continue;
            }
            if v.mention == Mention::Evasive {
                // "signal" is a word; "s.i.g.n.a.l" and "sig nal" are not;
                // nor is a possessive ("your team's phone number").
                let possessive = shape.gaps == 1 && norm[..ne].ends_with(b"'s");
                if shape.gaps == 0 || possessive {
                    continue;
                }
            } else if !(shape.spaced_letters || shape.space_bits & !v.spaces == 0) {
                continue;
            }
            if c.rules.negation && is_negated(c, norm, ns) {
                continue;
            }
            // A phrase named between quotation marks is asked about, not
            // said: "can you explain the \"outside the system\" note?".
            if v.mention == Mention::No && is_in_quotes(norm, ns, ne) {
                continue;
            }
            if v.category == Category::Payment
                && (is_put_on_platform(c, norm, ne) || third_party_pays_writer(c, norm, ns, ne))
            {
                continue;
            }
            if v.category == Category::Messaging
                && v.mention == Mention::No
                && (habit_before(norm, ns, 3)
                    || owner::platform_is_subject(norm, ns)
                    || someone_else_texts_writer(c, norm, ns))
            {
                continue;
            }
            if matches!(v.category, Category::Payment | Category::Messaging)
                && v.mention == Mention::No
                && is_told(c, norm, ns, ne)
            {
                continue;
            }
            if matches!(v.mention, Mention::App | Mention::Evasive | Mention::Term)
                && is_vendor_subject(norm, ne)
            {
                continue;
            }
            let cued = match v.mention {
                Mention::No => true,
                Mention::App | Mention::Evasive => has_app_cue(c, norm, ns, ne),
                // The payee is read only once a cue is found: most
                // mentions have none.
                Mention::Term | Mention::Detail => {
                    has_payment_cue(c, norm, ns, ne, v.mention)
                        && !payee_is_not_reader(norm, ns)
                        && !(v.mention == Mention::Term && others_habit(norm, ns))
                }
            };
            if !cued
                || (v.category == Category::Payment && owner::pays_tax_authority(c, norm, ns, ne))
            {
                continue;
            }
            out.push(RawHit {
                category: v.category,
                rule: &v.rule,
                start: ns,
                end: ne,
                weight: 1,
                source: Source::Phrase,
            });
        }
    }
}

/// `start..end` stands between double quotation marks of its own.
pub(crate) fn is_in_quotes(norm: &[u8], start: usize, end: usize) -> bool {
    start > 0 && norm[start - 1] == b'"' && norm.get(end) == Some(&b'"')
}

/// How a squeezed match was spread over the skeleton.
struct Shape {
    /// Bit `i`: whitespace before squeezed character `i` of the match.
    space_bits: u128,
    /// Every character stood alone (`w h a t s a p p`).
    spaced_letters: bool,
    /// How many gaps of separators the match spans.
    gaps: usize,
}

impl Shape {
    /// `None` when a gap is too long, or a space sits next to sentence
    /// punctuation ("text. Me" is two sentences, not "text me").
    fn of(norm: &[u8], pos: &[u32]) -> Option<Shape> {
        let mut space_bits = 0u128;
        let mut gaps = 0usize;
        for (i, w) in pos.windows(2).enumerate() {
            let (a, b) = (w[0] as usize, w[1] as usize);
            if b == a + 1 {
                continue;
            }
            let gap = &norm[a + 1..b];
            if gap.len() > MAX_GAP {
                return None;
            }
            gaps += 1;
            let spaced = gap.iter().any(u8::is_ascii_whitespace);
            if spaced {
                if gap.iter().any(|b| b".!?;:,()\"".contains(b)) {
                    return None;
                }
                if i + 1 < 128 {
                    space_bits |= 1 << (i + 1);
                }
            }
        }
        Some(Shape {
            space_bits,
            spaced_letters: pos.len() >= 4 && gaps + 1 == pos.len(),
            gaps,
        })
    }
}

/// Words that start a new thought: negation before them does not reach
/// past ("not sure, but WhatsApp me").
const CLAUSE_WORDS: &[&[u8]] = &[b"but", b"so", b"then", b"instead", b"however", b"though"];

/// Words of habit or history just before an invitation: "my previous
/// accountant used to text me", "the bank usually texts me", "riders
/// sometimes message me on WhatsApp".
const HABIT: &[&[u8]] = &[
    b"used",
    b"usually",
    b"often",
    b"sometimes",
    b"normally",
    b"typically",
    b"regularly",
];

/// A word of habit ("used", "usually", "sometimes") within `within` words
/// before `start`, in the same clause: what someone did, not an
/// invitation (three words before an invitation, six before an app's name).
fn habit_before(norm: &[u8], start: usize, within: usize) -> bool {
    words_before(norm, start, CLAUSE_STOPS, within).any(|w| HABIT.contains(&w))
}

/// Subjects of a habit that are the writer or the reader.
const HABIT_SUBJECTS: &[&[u8]] = &[
    b"i", b"we", b"you", b"u", b"i'd", b"we'd", b"i'll", b"we'll", b"can", b"could", b"would",
];

/// A payment app at `start` after a habit whose subject is someone else,
/// in the same clause ("backpackers often pay with Revolut", "the guests
/// usually pay by PayPal"): what others do, not an offer to the reader.
fn others_habit(norm: &[u8], start: usize) -> bool {
    let mut back = words_before(norm, start, CLAUSE_STOPS, 5).peekable();
    while let Some(w) = back.next() {
        if HABIT.contains(&w) && w != b"used" {
            return back
                .peek()
                .is_some_and(|s| s[0].is_ascii_alphabetic() && !HABIT_SUBJECTS.contains(s));
        }
    }
    false
}

/// Spanish determiners after "a" that name an object before its pronoun.
const SPANISH_DETERMINERS: &[&[u8]] = &[
    b"los",
    b"las",
    b"la",
    b"el",
    b"mi",
    b"mis",
    b"nuestros",
    b"nuestras",
    b"nuestro",
    b"sus",
];

/// A Spanish payment at `start` that opens on an object pronoun ("les pago
/// en efectivo") whose object is named before it ("a los trabajadores les
/// pago …"): the one paid is someone else, not the reader.
pub(crate) fn object_named_before(norm: &[u8], start: usize) -> bool {
    if !matches!(
        words_after(norm, start, CLAUSE_STOPS, 1).next(),
        Some(b"le" | b"les")
    ) {
        return false;
    }
    let mut after: &[u8] = b"";
    for w in words_before(norm, start, CLAUSE_STOPS, 6) {
        if w == b"a" && SPANISH_DETERMINERS.contains(&after) {
            return true;
        }
        after = w;
    }
    false
}

/// Subjects that are not the reader's correspondent: someone else's
/// messages to the writer are told, not offered.
const NOT_SOMEONE_ELSE: &[&[u8]] = &[
    b"you", b"u", b"i", b"we", b"please", b"pls", b"can", b"could", b"just",
];

/// An invitation like "text me" at `start` whose subject, within three
/// words before in the same clause, is someone else ("drivers text me
/// their receipts", "the tenants message me"): what others do, not an
/// offer to the reader.
fn someone_else_texts_writer(c: &Compiled, norm: &[u8], start: usize) -> bool {
    let mut nearer: &[u8] = b"";
    for w in words_before(norm, start, CLAUSE_STOPS, 3) {
        if NOT_SOMEONE_ELSE.contains(&w) {
            return false;
        }
        if w != b"it" && c.mention.third_parties.contains(w) {
            return true;
        }
        // "my cleaners text me", "the drivers message me": people the
        // writer names, in the plural, as the subject.
        if SUBJECT_OPENERS.contains(&w)
            && nearer.len() > 3
            && nearer.ends_with(b"s")
            && !nearer.ends_with(b"'s")
            && !TIMES.contains(&nearer)
        {
            return true;
        }
        nearer = w;
    }
    false
}

/// Words that open a named subject ("my cleaners", "the drivers").
const SUBJECT_OPENERS: &[&[u8]] = &[b"my", b"our", b"the", b"his", b"her", b"their"];

/// Plurals of time that open a clause without being its subject ("in the
/// evenings text me").
const TIMES: &[&[u8]] = &[
    b"mornings",
    b"afternoons",
    b"evenings",
    b"nights",
    b"weekends",
    b"weekdays",
    b"days",
    b"hours",
    b"holidays",
];

/// A negation word within four words before `start`, in the same clause.
pub(crate) fn is_negated(c: &Compiled, norm: &[u8], start: usize) -> bool {
    let mut nearer: &[u8] = b"";
    for w in words_before(norm, start, CLAUSE_STOPS, 4) {
        if CLAUSE_WORDS.contains(&w) {
            return false;
        }
        if c.negations.contains(w) {
            // "Can't we just sort it between us?", "why don't you …": a
            // question that proposes, not a negation.
            return !PROPOSED_TO.contains(&nearer);
        }
        nearer = w;
    }
    false
}

/// Subjects right after a negated auxiliary that make it a proposal
/// ("can't we", "don't you", "why won't I").
const PROPOSED_TO: &[&[u8]] = &[b"we", b"you", b"u", b"i"];

/// Words that turn an on-platform phrase around ("instead of through the
/// portal", "rather than the invoice link", "not through the platform",
/// "save on the platform fee").
const CONTRARY: &[&[u8]] = &[
    b"instead", b"rather", b"than", b"not", b"outside", b"without", b"bypass", b"avoid", b"skip",
    b"save", b"saves", b"saving", b"split", b"dodge", b"wait", b"waiting",
];

/// Words right after an on-platform phrase that make it the platform's
/// charge, not the way to pay ("on the platform fee").
const PLATFORM_CHARGES: &[&[u8]] = &[
    b"fee",
    b"fees",
    b"charge",
    b"charges",
    b"cut",
    b"commission",
    b"markup",
    b"surcharge",
];

/// Words right after an on-platform phrase that say it fails: the reason
/// to go around it, not the way to pay ("the invoice link keeps timing
/// out").
const PLATFORM_FAILS: &[&[u8]] = &[
    b"keeps",
    b"kept",
    b"won't",
    b"wont",
    b"doesn't",
    b"doesnt",
    b"isn't",
    b"isnt",
    b"broken",
    b"failed",
    b"fails",
    b"crashed",
    b"crashes",
    b"rejects",
    b"rejected",
    b"declined",
    b"declines",
];

/// An on-platform phrase after `end` in the same sentence (≤ 80 bytes) that
/// puts the payment back on the platform: not turned around by "instead
/// of" or "not" (within three words before), not the platform's fee ("save
/// on the platform fee"), and not an alternative the customer weighs ("can
/// I Zelle you, or does it have to go through the portal?").
pub(crate) fn is_put_on_platform(c: &Compiled, norm: &[u8], end: usize) -> bool {
    let (_, e) = words::sentence(norm, end, end, 80);
    pays_on_platform(c, &norm[end..e])
}

/// Whether `after` (lower case) pays on the platform: an on-platform phrase
/// ("through the portal", "invoice link") that is not turned around, not
/// the platform's fee or failure, and not one alternative of two (see
/// [`is_put_on_platform`]).
pub(crate) fn pays_on_platform(c: &Compiled, after: &[u8]) -> bool {
    c.on_platform.matches_in(after).any(|(p, q)| {
        !words_before(after, p, SENTENCE_STOPS, 3).any(|w| CONTRARY.contains(&w))
            && !words_after(after, q, CLAUSE_STOPS, 1).any(|w| PLATFORM_CHARGES.contains(&w))
            && !words_after(after, q, CLAUSE_STOPS, 2).any(|w| PLATFORM_FAILS.contains(&w))
            && !words::words_in(&after[..p]).any(|w| w == b"or")
    })
}

/// Words before a second-person word that do not address the reader:
/// politeness ("thank you") and comparison or time ("the accountant before
/// you", "faster than you").
const NOT_ADDRESSING: &[&[u8]] = &[b"thank", b"thanks", b"before", b"after", b"than", b"like"];

/// A second-person word in `sentence` that addresses the reader.
fn speaks_to_reader(c: &Compiled, sentence: &[u8]) -> bool {
    let mut prev: &[u8] = b"";
    for w in words::words_in(sentence) {
        if c.mention.second_person.contains(w) && !NOT_ADDRESSING.contains(&prev) {
            return true;
        }
        prev = w;
    }
    false
}

/// A handle or a number in `window`: an `@` before a word, or a run of
/// seven or more digits (spaces, dots, dashes, brackets and `+` between
/// them allowed).
fn has_handle(window: &[u8]) -> bool {
    let mut digits = 0;
    for (i, &b) in window.iter().enumerate() {
        if b.is_ascii_digit() {
            digits += 1;
            if digits >= 7 {
                return true;
            }
        } else if !matches!(b, b' ' | b'.' | b'-' | b'(' | b')' | b'+') {
            digits = 0;
        }
        if b == b'@' && window.get(i + 1).is_some_and(|&n| is_word_byte(n)) {
            return true;
        }
    }
    false
}

/// The sentence after the one ending at `e` (at most `max` bytes), or an
/// empty range.
fn next_sentence(norm: &[u8], e: usize, max: usize) -> (usize, usize) {
    let mut s = e;
    while s < norm.len() && !is_word_byte(norm[s]) && norm[s] != b'@' {
        s += 1;
    }
    if s >= norm.len() {
        return (norm.len(), norm.len());
    }
    words::sentence(norm, s, s, max)
}

/// A messaging app named with a cue of intent to move the conversation
/// (see [`AppMentions`](super::AppMentions)).
fn has_app_cue(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let sentence = &norm[s..e];
    let app = &c.app;
    let (ns, ne) = next_sentence(norm, e, 160);
    let next = &norm[ns..ne];
    // Asked to use the app by name ("add me on Telegram") or pointed back
    // at from the next sentence ("my contractors are all on Discord. Ping
    // me there"): intent, whatever else the sentence is about.
    // The same holds after the name in its own sentence ("KakaoTalk ID:
    // parkjh77, please message there").
    let after = &norm[end..e];
    if invited_to(c, norm, s, start)
        || (invites(c, next) && points_back(next))
        || (invites(c, after) && points_back(after))
        || asks_reader_to_join(after)
        || asks_reader_to_join(next)
    {
        return true;
    }
    if is_vetoed(&app.vetoes, sentence) || is_declined(norm, end) {
        return false;
    }
    // A handle right after the name ("Skype: maria.lopez.bookkeeping",
    // "Telegram: @dee - I'll send the statements there") is intent even in
    // a sentence about the books; only the app's own vendor senses above
    // outrank it.
    if handle_follows(c, norm, end, e) {
        return true;
    }
    if is_vetoed(&c.mention.vetoes, sentence) {
        return false;
    }
    // An invitation, or a handle right after ("whatsapp me", "telegram:
    // @jo"), whatever the tense; not a habit ("used to text me on
    // WhatsApp").
    if invites(c, sentence) || handle_follows(c, norm, end, e) {
        return true;
    }
    // The app in a clause of habit or history ("my old accountant used to
    // text me everything on WhatsApp, I like that you use the portal"):
    // what someone did; a word to the reader later in the sentence is
    // about something else.
    if habit_before(norm, start, 6) {
        return false;
    }
    let to_reader = speaks_to_reader(c, sentence);
    // History is told in the app's own clause: "send the queries on
    // WhatsApp, it's the number on the invoice I sent" asks.
    let clause_end = norm[end..e]
        .iter()
        .position(|&b| b == b',')
        .map_or(e, |p| end + p);
    if !to_reader && app.past.any_in(&norm[s..clause_end]) {
        return false;
    }
    if to_reader || app.acceptances.any_in(sentence) || has_handle(sentence) {
        return true;
    }
    invites(c, next) || has_handle(next)
}

/// The app declined right after its name: "WhatsApp is not needed, a
/// normal call is fine", "Telegram isn't necessary".
fn is_declined(norm: &[u8], end: usize) -> bool {
    let mut not = false;
    for w in words_after(norm, end, CLAUSE_STOPS, 4) {
        match w {
            b"not" | b"isn't" | b"isnt" | b"no" => not = true,
            b"needed" | b"necessary" | b"required" => return not,
            _ => {}
        }
    }
    false
}

/// Words that may stand between an invitation and the app it names
/// ("add me on", "message me over", "reach us via").
const TO_APP: &[&[u8]] = &[
    b"on", b"via", b"over", b"through", b"in", b"at", b"using", b"up",
];

/// An invitation that ends right before the app's name at `start`, only
/// [`TO_APP`] words between ("add me on Telegram"), not a habit.
fn invited_to(c: &Compiled, norm: &[u8], sentence_start: usize, start: usize) -> bool {
    let before = &norm[sentence_start..start];
    c.app.invitations.matches_in(before).any(|(p, q)| {
        let between = || words::words_in(&before[q..]);
        between().count() <= 2
            && between().all(|w| TO_APP.contains(&w))
            && !habit_before(before, p, 3)
    })
}

/// A past form at `p` of `sentence` right after "if I" or "if we": a
/// supposition ("would it be OK if I paid half via Cash App?"), not
/// history.
fn is_supposed(sentence: &[u8], p: usize) -> bool {
    let mut back = words_before(sentence, p, CLAUSE_STOPS, 2);
    matches!(back.next(), Some(b"i" | b"we")) && back.next() == Some(b"if")
}

/// Word pairs that ask the reader into a group, server or channel on the
/// app named before ("I'd like to add you", "I'll send you an invite
/// link"): intent, whoever else is in it.
const JOINS: &[(&[u8], &[u8])] = &[
    (b"add", b"you"),
    (b"add", b"u"),
    (b"invite", b"you"),
    (b"invite", b"link"),
    (b"an", b"invite"),
    (b"the", b"invite"),
    (b"you", b"join"),
    (b"u", b"join"),
    (b"join", b"us"),
];

/// A [`JOINS`] pair in `window`.
fn asks_reader_to_join(window: &[u8]) -> bool {
    words::has_word_pair(window, JOINS)
}

/// Words that point back at a place named just before ("ping me there").
const BACK_POINTERS: &[&[u8]] = &[b"there", b"ahi", b"alli", b"dort"];

/// A word in `window` that points back at the app named before.
fn points_back(window: &[u8]) -> bool {
    words::words_in(window).any(|w| BACK_POINTERS.contains(&w))
}

/// A messaging pattern's match at `start..end` whose sentence puts the
/// app in a vendor, expense or third-party sense ("our employees use
/// Signal for shift swaps") with no invitation (in the match: "snap me?",
/// or in the sentence) and nothing said to the reader.
pub(crate) fn is_app_vendor_sense(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let sentence = &norm[s..e];
    (is_vetoed(&c.mention.vetoes, sentence) || is_vetoed(&c.app.vetoes, sentence))
        && !words::words_in(&norm[start..end]).any(|w| matches!(w, b"me" | b"us" | b"my"))
        && !invites(c, sentence)
        && !speaks_to_reader(c, sentence)
}

/// An invitation in `window` that is not a habit ("used to text me",
/// "usually messages me").
fn invites(c: &Compiled, window: &[u8]) -> bool {
    c.app
        .invitations
        .positions_in(window)
        .any(|p| !habit_before(window, p, 3) && !someone_else_texts_writer(c, window, p))
}

/// Words right after a charge-sense veto that make it the reader's own
/// charge ("the bookkeeping fee", "the tax prep invoice"), not bookkeeping.
const OWN_CHARGES: &[&[u8]] = &[
    b"fee",
    b"fees",
    b"invoice",
    b"invoices",
    b"bill",
    b"retainer",
    b"charge",
];

/// A veto phrase in `sentence`, unless it only names the reader's charge
/// ("would Google Pay work for the bookkeeping fee?").
fn is_vetoed(list: &PhraseList, sentence: &[u8]) -> bool {
    list.matches_in(sentence)
        .any(|(_, q)| !words_after(sentence, q, CLAUSE_STOPS, 1).any(|w| OWN_CHARGES.contains(&w)))
}

/// Words right after an app's name that make the app the subject of a
/// vendor's act or the name of a record ("Cash App sent me a 1099-K",
/// "Google Pay shows a charge", "the Venmo statement"): the app as a
/// business the customer deals with, not a way to reach or pay the reader.
const VENDOR_SENSES: &[&[u8]] = &[
    b"shows",
    b"showed",
    b"charged",
    b"charges",
    b"charge",
    b"says",
    b"said",
    b"reported",
    b"reports",
    b"issued",
    b"issues",
    b"froze",
    b"frozen",
    b"closed",
    b"flagged",
    b"deducted",
    b"emailed",
    b"notified",
    b"withheld",
    b"held",
    b"limited",
    b"blocked",
    b"statement",
    b"statements",
    b"receipt",
    b"receipts",
    b"transactions",
    b"history",
    b"export",
    b"premium",
    b"fees",
    b"taxes",
    b"card",
    b"csv",
    b"report",
    b"reports",
    b"download",
    b"summary",
    b"form",
    b"forms",
    b"notifications",
    b"payouts",
];

/// The word right after an app's name (`end`) makes it a vendor or a record.
fn is_vendor_subject(norm: &[u8], end: usize) -> bool {
    let mut after = words_after(norm, end, CLAUSE_STOPS, 2);
    match after.next() {
        Some(w) if VENDOR_SENSES.contains(&w) => true,
        // "the PayPal annual summary", "the Cash App tax form".
        Some(w) if RECORD_QUALIFIERS.contains(&w) => {
            after.next().is_some_and(|w| VENDOR_SENSES.contains(&w))
        }
        _ => false,
    }
}

/// Words between an app's name and its record ("the PayPal annual
/// summary", "the Venmo tax form").
const RECORD_QUALIFIERS: &[&[u8]] = &[
    b"tax",
    b"annual",
    b"yearly",
    b"monthly",
    b"quarterly",
    b"payout",
    b"payouts",
    b"year",
    b"transaction",
    b"account",
];

/// A plain payment phrase or proposal told as what happened: a word of the
/// past in its sentence, no word to the reader, and no word of intent (an
/// acceptance: a future, a conditional, a preference). "Last year some
/// invoices were paid outside the system" reports; "I paid you outside the
/// portal last time, can we do that again?" proposes.
pub(crate) fn is_told(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let sentence = &norm[s..e];
    c.app.past.any_in(sentence)
        && !speaks_to_reader(c, sentence)
        && !c.app.acceptances.any_in(sentence)
        && !invites(c, sentence)
}

/// A handle right after a name: "venmo me", "zelle: 555…", "cash app $jo".
fn handle_follows(c: &Compiled, norm: &[u8], end: usize, sentence_end: usize) -> bool {
    let rest = &norm[end..sentence_end];
    let first_mark = rest.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first_mark, Some(b'@' | b'$' | b':')) {
        return true;
    }
    let next = words_after(norm, end, SENTENCE_STOPS, 1)
        .next()
        .unwrap_or_default();
    c.mention.handles.contains(next)
}

/// An acceptance within three words after a payment app: "Venmo works
/// too", "Zelle is fine", "Cash App is OK with us".
fn acceptance_follows(c: &Compiled, norm: &[u8], end: usize, sentence_end: usize) -> bool {
    acceptance_at(c, norm, end, sentence_end).is_some()
}

/// Where the acceptance of [`acceptance_follows`] starts, as an offset
/// from `end`.
fn acceptance_at(c: &Compiled, norm: &[u8], end: usize, sentence_end: usize) -> Option<usize> {
    let rest = &norm[end..sentence_end];
    // "Venmo, but I prefer paying the invoice here": the preference is
    // for something else.
    c.app.acceptances.positions_in(rest).next().filter(|&p| {
        let between = || words::words_in(&rest[..p]);
        between().count() <= 2 && !between().any(|w| CLAUSE_WORDS.contains(&w))
    })
}

/// What ends the clause a payment verb is looked for in.
const VERB_STOPS: &[u8] = b".!?;:\n";

/// Owners that make the one paid someone else ("pay our cleaners by Zelle").
const PAYEE_OWNERS: &[&[u8]] = &[b"my", b"our", b"his", b"her", b"their"];

/// Spanish object pronouns of the first person: before a payment verb
/// they make the customer the one paid.
const SPANISH_OBJECTS: &[&[u8]] = &[b"me", b"nos"];

/// Payment "verbs" that are prepositions: they say how, not who pays.
const PREPOSITIONS: &[&[u8]] = &[b"via", b"through", b"using"];

/// Words that make "pay" after them a product's name ("Apple Pay").
const PAY_BRANDS: &[&[u8]] = &[
    b"apple", b"google", b"samsung", b"amazon", b"shop", b"app", b"wechat", b"weixin",
];

/// The customer speaking of themself.
const FIRST_PERSON: &[&[u8]] = &[
    b"i", b"i'll", b"i'd", b"i'm", b"i've", b"we", b"we'll", b"we'd", b"we're", b"me", b"us",
];

/// Verbs whose object "us" or "me" is not the subject of the clause
/// ("the school wants us to pay", "the client owes us").
const OBJECT_VERBS: &[&[u8]] = &[
    b"want",
    b"wants",
    b"wanted",
    b"ask",
    b"asks",
    b"asked",
    b"tell",
    b"tells",
    b"told",
    b"owe",
    b"owes",
    b"owed",
    b"expect",
    b"expects",
    b"expected",
    b"remind",
    b"reminded",
    // "the agency pays me through Payoneer": the writer is the one paid.
    b"pay",
    b"pays",
    b"paid",
    b"paying",
];

/// Whether the clause before `start` has someone else as its subject: a
/// third-party word or a possessive before any first-person word, reading
/// back to the clause start ("my clients now ask to pay by Zelle", "parents
/// sometimes pay with Zelle", "my daughter's school wants us to pay by
/// Venmo"; not "we'd like our clients to see it, so can I pay by Zelle").
pub(crate) fn third_party_subject(c: &Compiled, norm: &[u8], start: usize) -> bool {
    let mut back = words_before(norm, start, VERB_STOPS, 12).peekable();
    while let Some(w) = back.next() {
        let further = back.peek().copied().unwrap_or_default();
        if CLAUSE_WORDS.contains(&w) {
            return false;
        }
        if FIRST_PERSON.contains(&w) {
            if (w == b"us" || w == b"me") && OBJECT_VERBS.contains(&further) {
                continue;
            }
            return false;
        }
        // "it" is mostly a dummy subject: "it would be easier to pay by Zelle".
        if w != b"it" && (c.mention.third_parties.contains(w) || owner::is_possessive(w)) {
            return true;
        }
    }
    false
}

/// Second-person objects of an app used as a verb ("Zelle you").
const READER_OBJECTS: &[&[u8]] = &[b"you", b"u", b"ya"];

/// The app at `start..end` used as a verb with the reader as its object
/// and the writer as its subject, within three words before ("I'll just
/// Zelle you", "we can Venmo you"; not "did the client Zelle you").
fn writer_pays_reader_by_app(norm: &[u8], start: usize, end: usize) -> bool {
    words_after(norm, end, CLAUSE_STOPS, 1).any(|w| READER_OBJECTS.contains(&w))
        && words_before(norm, start, VERB_STOPS, 3)
            .any(|w| FIRST_PERSON.contains(&w) && w != b"me" && w != b"us")
}

/// Words that make the writer the one paid by an app used as a verb
/// ("my clients Venmo me", "our regulars Zelle us").
const WRITER_OBJECTS: &[&[u8]] = &[b"me", b"us"];

/// A payment app used as a verb at `start..end` ("Venmo me", "Zelle us")
/// whose subject is someone else: the writer's customers paying the
/// writer, not the writer paying the reader.
pub(crate) fn third_party_pays_writer(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let last = norm[start..end]
        .rsplit(|&b| !is_word_byte(b))
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    let object = WRITER_OBJECTS.contains(&last)
        || words_after(norm, end, CLAUSE_STOPS, 1).any(|w| WRITER_OBJECTS.contains(&w));
    object && third_party_subject(c, norm, start)
}

/// Payment verbs whose object, right after them, is the one paid.
const PAY_VERBS: &[&[u8]] = &[b"pay", b"pays", b"paid", b"paying", b"payed"];

/// Objects of a payment verb that make the one paid the writer or someone
/// else, never the reader ("my clients pay me on Cash App", "the booking
/// sites pay us directly", "we pay him by Western Union", "both pay me out
/// through PayPal"); "out" is a payout to the writer.
const PAYEE_OBJECTS: &[&[u8]] = &[b"me", b"us", b"him", b"her", b"them", b"out"];

/// Words that open a payee named after a payment verb ("pay the plant",
/// "paying two of the girls").
const PAYEE_OPENERS: &[&[u8]] = &[b"the", b"two", b"three", b"four", b"both", b"all", b"each"];

/// What is paid rather than who: a payment verb followed by one of these
/// before the means pays a fee ("pay the invoice by Zelle").
const FEE_WORDS: &[&[u8]] = &[
    b"invoice",
    b"invoices",
    b"fee",
    b"fees",
    b"bill",
    b"bills",
    b"balance",
    b"amount",
    b"retainer",
    b"deposit",
    b"rest",
    b"remainder",
    b"total",
    b"difference",
    b"half",
    b"outstanding",
    b"work",
    b"bookkeeping",
    b"accounting",
    b"return",
    b"returns",
    b"month",
    b"months",
    b"quarter",
    b"year",
    b"catch",
    b"cleanup",
    b"setup",
    b"onboarding",
    b"first",
    b"last",
    b"next",
    b"same",
    b"way",
    b"usual",
];

/// Words for the reader in a payee position ("pay the accountant").
const READER_WORDS: &[&[u8]] = &[
    b"you",
    b"u",
    b"your",
    b"firm",
    b"accountant",
    b"bookkeeper",
    b"office",
    b"team",
];

/// Spanish indirect objects of the third person before a payment verb:
/// "le pago a mis trabajadoras por Zelle" pays someone else.
const SPANISH_THIRD_OBJECTS: &[&[u8]] = &[b"le", b"les"];

/// Words for wages: a payment in the same clause goes to staff ("some of
/// them want their paycheck by Zelle").
const WAGE_WORDS: &[&[u8]] = &[
    b"paycheck",
    b"paychecks",
    b"paycheque",
    b"paycheques",
    b"wages",
    b"salary",
    b"salaries",
];

/// A payment at `start` whose payee, earlier in its clause (a comma or a
/// "but" or "so" ends it), is not the reader: a payment verb with the writer or a third person as its object,
/// a Spanish third-person object before the verb, or wages.
pub(crate) fn payee_is_not_reader(norm: &[u8], start: usize) -> bool {
    // Read back, nearest first: `after` is the word that followed `w`.
    let mut after: &[u8] = b"";
    // Whether the words read so far (those after the current one) name
    // what is paid, an amount or the reader: "pay the invoice by Zelle",
    // "pay the $450 by Zelle".
    let mut names_fee = false;
    for w in words_before(norm, start, CLAUSE_STOPS, 8) {
        if CLAUSE_WORDS.contains(&w) {
            return false;
        }
        if WAGE_WORDS.contains(&w) {
            return true;
        }
        if PAY_VERBS.contains(&w) && PAYEE_OBJECTS.contains(&after) {
            return true;
        }
        // "we pay the packaging plant by wire", "paying two of the girls
        // through Zelle": a payee named after the verb, not a fee.
        if PAY_VERBS.contains(&w) && PAYEE_OPENERS.contains(&after) && !names_fee {
            return true;
        }
        if FEE_WORDS.contains(&w) || READER_WORDS.contains(&w) || w[0].is_ascii_digit() {
            names_fee = true;
        }
        if SPANISH_THIRD_OBJECTS.contains(&w) && after.starts_with(b"pag") {
            return true;
        }
        after = w;
    }
    false
}

/// Prepositions that open a means of payment ("by wire", "via PayPal").
const MEANS: &[&[u8]] = &[b"by", b"via", b"through", b"using", b"with"];

/// Whether a configured regex's match opens on a means of payment: its
/// payee is then the object of the verb before it ("we pay them by wire"),
/// while a manner ("pay him under the table") is a proposal whoever is paid.
pub(crate) fn names_a_means(matched: &[u8]) -> bool {
    words::words_in(matched)
        .next()
        .is_some_and(|w| MEANS.contains(&w))
}

/// Documents that carry someone else's payment instructions.
const DOCUMENTS: &[&[u8]] = &[
    b"invoice",
    b"bill",
    b"notice",
    b"letter",
    b"statement",
    b"receipt",
    b"form",
    b"website",
];

/// Verbs by which a document instructs.
const SAYS: &[&[u8]] = &[b"says", b"said", b"states", b"reads", b"instructs"];

/// A document named as saying something in `sentence` ("the vet invoice
/// says", "the county's notice states").
fn document_says(sentence: &[u8]) -> bool {
    let mut prev: &[u8] = b"";
    words::words_in(sentence).any(|w| {
        let hit = SAYS.contains(&w) && DOCUMENTS.contains(&prev);
        prev = w;
        hit
    })
}

/// The sentence around a payment mention is about paying us (and is not
/// bookkeeping).
fn has_payment_cue(c: &Compiled, norm: &[u8], start: usize, end: usize, kind: Mention) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let sentence = &norm[s..e];
    let cues = &c.mention;
    // The app as the verb, the writer paying the reader ("I'll just Zelle
    // you the $600 for the bookkeeping catch-up"): a bookkeeping word in
    // the sentence is only what the money is for.
    if kind == Mention::Term && writer_pays_reader_by_app(norm, start, end) {
        return true;
    }
    if is_vetoed(&cues.vetoes, sentence) {
        return false;
    }
    let second_person = speaks_to_reader(c, sentence);
    if kind == Mention::Detail {
        // Asked for: "your routing number", "send me ur IBAN"; or offered
        // with a payment in the same sentence.
        let asked = words_before(norm, start, SENTENCE_STOPS, 3)
            .any(|w| w == b"your" || w == b"ur" || w == b"yours");
        return asked
            || (second_person && words::words_in(sentence).any(|w| cues.verbs.contains(w)));
    }
    if second_person {
        return true;
    }
    // A question with no subject that opens on the payment verb proposes
    // the way to pay: "pay for the podcast taxes via v.e.n.m.o?".
    if norm.get(e) == Some(&b'?')
        && words::words_in(sentence)
            .next()
            .is_some_and(|w| cues.verbs.contains(w))
    {
        return true;
    }
    // Accepted right after the name, before any word of the past: "Zelle
    // works for me, same as with my old accountant" (the past is only the
    // comparison).
    if acceptance_at(c, norm, end, e).is_some_and(|p| !c.app.past.any_in(&norm[s..end + p])) {
        return true;
    }
    // What someone paid or was paid, not a proposal: "last year I paid the
    // nanny through Zelle"; but "would it be OK if I paid half via Cash
    // App?" supposes.
    if c.app
        .past
        .matches_in(sentence)
        .any(|(p, _)| !is_supposed(sentence, p))
    {
        return false;
    }
    // A document's own instruction, reported: "the vet invoice says \"pay by
    // Zelle to clinic@…\"" (someone else's bill, paid to them).
    if document_says(sentence) {
        return false;
    }
    // Offered or accepted as the way to pay: "Venmo works too", "Zelle is
    // fine", "can we do Zelle?".
    if acceptance_follows(c, norm, end, e) || invites(c, sentence) {
        return true;
    }
    // A payment verb shortly before in the same clause, unless someone else
    // is paying ("my tenants pay by Zelle") or someone else is paid ("we
    // pay our instructors by Zelle"); "via", "through" and "using" only
    // when the customer speaks of themself ("my ex pays it through Zelle"
    // is not).
    let before: Vec<&[u8]> = words_before(norm, start, VERB_STOPS, 5).collect();
    let mut third_party_payee = false;
    for (i, &w) in before.iter().enumerate() {
        if PAYEE_OWNERS.contains(&w) {
            third_party_payee = true;
        }
        if cues.verbs.contains(w) {
            let payer = before.get(i + 1).copied().unwrap_or_default();
            // Spanish "me pagó", "nos pagaban": the customer is the one
            // paid, by someone else.
            if SPANISH_OBJECTS.contains(&payer) && w.starts_with(b"pag") {
                continue;
            }
            if w == b"pay" && PAY_BRANDS.contains(&payer) {
                // "Apple Pay, Google Pay and Cash App": names, not a verb.
                continue;
            }
            let preposition = PREPOSITIONS.contains(&w);
            // "I pay my nanny through Zelle": the one paid, further back
            // than the preposition, is someone else.
            if preposition && before[i + 1..].iter().any(|w| PAYEE_OWNERS.contains(w)) {
                continue;
            }
            if !third_party_payee
                && !cues.third_parties.contains(payer)
                && !third_party_subject(c, norm, start)
                && (!preposition || words::words_in(sentence).any(|w| FIRST_PERSON.contains(&w)))
            {
                return true;
            }
        }
    }
    // A handle right after: "venmo me", "zelle: 555…", "cash app $jo".
    if handle_follows(c, norm, end, e) {
        return true;
    }
    let next = words_after(norm, end, SENTENCE_STOPS, 1)
        .next()
        .unwrap_or_default();
    // "my venmo is jo-smith".
    let owner = words_before(norm, start, SENTENCE_STOPS, 1)
        .next()
        .unwrap_or_default();
    (owner == b"my" || owner == b"our") && next == b"is"
}

/// The words of a plain texting invitation ("text me", "call or text",
/// "shoot me a text"): no app named, so the channel is the phone number.
const TEXTING_WORDS: &[&[u8]] = &[
    b"text", b"txt", b"sms", b"texts", b"me", b"us", b"or", b"call", b"a", b"an", b"shoot",
    b"send", b"drop", b"at", b"on",
];

/// How near a number must be to a texting invitation to be the number
/// it asks to text.
const TEXTING_REACH: usize = 120;

/// "Text me at 646-555-0172", "can you text me when it's ready? 503 555
/// 0192": a texting invitation with the writer's number next to it (no
/// blank line between) gives the number; the number's phone hit is the
/// evidence and the invitation adds no messaging app. Drops such
/// messaging hits from `raw`.
pub(crate) fn fold_texting_into_number(norm: &[u8], raw: &mut Vec<RawHit<'_>>) {
    let phones = || raw.iter().filter(|h| h.category == Category::Phone);
    if phones().next().is_none() {
        return;
    }
    let is_texting = |h: &RawHit<'_>| {
        h.category == Category::Messaging
            && h.source == Source::Phrase
            && words::words_in(&norm[h.start..h.end])
                .any(|w| matches!(w, b"text" | b"txt" | b"sms"))
            && words::words_in(&norm[h.start..h.end]).all(|w| TEXTING_WORDS.contains(&w))
    };
    let near = |t: &RawHit<'_>| {
        phones().any(|p| {
            let (lo, hi) = if p.start >= t.end {
                (t.end, p.start)
            } else {
                (p.end.min(t.start), t.start)
            };
            hi - lo <= TEXTING_REACH && !norm[lo..hi].windows(2).any(|w| w == b"\n\n")
        })
    };
    let drop: Vec<bool> = raw.iter().map(|h| is_texting(h) && near(h)).collect();
    if drop.iter().any(|d| *d) {
        let mut i = 0;
        raw.retain(|_| {
            i += 1;
            !drop[i - 1]
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::{Category, Detector, ScanContext};

    fn rules_for(text: &str) -> Vec<(Category, String, String)> {
        let d = Detector::new(&crate::detect::rules_only()).expect("defaults compile");
        d.scan(text, &ScanContext::default())
            .hits
            .into_iter()
            .map(|h| (h.category, h.rule, h.text))
            .collect()
    }

    fn finds(text: &str, category: Category) -> bool {
        rules_for(text).iter().any(|(c, _, _)| *c == category)
    }

    #[test]
    fn an_invitation_naming_the_app_outweighs_a_bookkeeping_word() {
        for t in [
            "Add me on Telegram and I'll send the 1099 figures there.",
            "All my contractors are on Discord anyway. Ping me there, I'm kaito_dev.",
            "s n a p me lol @jo_x",
            "can u snap me? username jay_22",
        ] {
            assert!(finds(t, Category::Messaging), "{t}: {:?}", rules_for(t));
        }
        for t in [
            "All my contractors are on Discord; the Nitro subscription is an expense.",
            "Our employees use Signal for shift swaps, the subscription is free.",
            "The snap peas sold well at the farm stand.",
        ] {
            assert!(!finds(t, Category::Messaging), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn messaging_apps_match_in_any_case() {
        for t in [
            "add me on WhatsApp",
            "I'm on TELEGRAM",
            "my wechat id is jo88",
            "Viber works too",
            "skype: jo.smith",
            "Discord is easier",
        ] {
            assert!(finds(t, Category::Messaging), "{t}");
        }
    }

    #[test]
    fn spacing_and_punctuation_evasion_still_matches() {
        for t in [
            "w h a t s a p p me",
            "whats-app +44 7911 123456",
            "add me on W.h.a.t.s.A.p.p",
            "Whats App is easier",
            "can we use what's app?",
            "I'm on t e l e g r a m",
            "tele-gram me",
        ] {
            let hits = rules_for(t);
            assert!(
                hits.iter().any(|(c, _, _)| *c == Category::Messaging),
                "{t}: {hits:?}"
            );
        }
    }

    #[test]
    fn the_span_is_the_original_text_even_when_spread_out() {
        let hits = rules_for("ok, w h a t s a p p then");
        assert!(
            hits.iter().any(|(_, _, text)| text == "w h a t s a p p"),
            "{hits:?}"
        );
    }

    #[test]
    fn a_natural_space_is_not_an_evasion() {
        for t in [
            "I message you tomorrow",
            "we chat every week with the team",
            "let's face time constraints",
            "cash application was rejected",
            "the gazelle logo",
            "context menu",
        ] {
            assert!(rules_for(t).is_empty(), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn look_alikes_and_zero_width_characters_match() {
        assert!(finds("add me on Tеlеgrаm", Category::Messaging));
        assert!(finds("Whats\u{200B}App me", Category::Messaging));
        assert!(finds("ＷｈａｔｓＡｐｐ me", Category::Messaging));
    }

    #[test]
    fn negation_cancels_a_keyword() {
        assert!(!finds("I don't have WhatsApp, sorry", Category::Messaging));
        assert!(!finds("please do not text me", Category::Messaging));
        assert!(finds("no problem - text me later", Category::Messaging));
    }

    #[test]
    fn payment_phrases_and_on_platform_exception() {
        assert!(finds(
            "Can I pay you directly and skip the fees?",
            Category::Payment
        ));
        assert!(finds(
            "let's keep this outside the platform",
            Category::Payment
        ));
        assert!(!finds(
            "I will pay you directly through the portal",
            Category::Payment
        ));
    }

    #[test]
    fn payment_mentions_need_a_cue() {
        assert!(finds("Can I Zelle you the balance?", Category::Payment));
        assert!(finds("Do you take Venmo?", Category::Payment));
        assert!(finds("my venmo is @jo-smith", Category::Payment));
        assert!(finds("I'd rather pay by Cash App", Category::Payment));
        assert!(!finds(
            "I got a 1099-K from Venmo, is it taxable?",
            Category::Payment
        ));
        assert!(!finds(
            "My tenants pay rent through Zelle.",
            Category::Payment
        ));
        assert!(!finds("I sold some bitcoin last year.", Category::Payment));
        assert!(!finds(
            "Thank you, the Zelle deposit from my customer cleared.",
            Category::Payment
        ));
    }

    #[test]
    fn messaging_apps_named_without_intent_are_not_evidence() {
        for t in [
            // The app as a vendor or an expense.
            "Our WhatsApp Business subscription is $45/month. Deductible?",
            "We spent $1,900 on Telegram ads for the launch.",
            "The Skype number for the store was cancelled; the last bill was $14.99.",
            // The app in the past, or as history.
            "Our old bookkeeper used to send the reports over WhatsApp.",
            "When we lived in Shanghai everything went through WeChat.",
            // Someone else's use of it, or a scam.
            "My son runs a Discord server for his gaming group.",
            "I got a WhatsApp message claiming to be from the IRS, a scam I think.",
            // The ordinary-sense word.
            "There was some discord between the partners about the draws.",
            "The telegram from the estate lawyer confirms the inheritance.",
            // Named, nothing more.
            "We use Telegram with our suppliers.",
        ] {
            assert!(!finds(t, Category::Messaging), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn messaging_apps_named_with_intent_are_evidence() {
        for t in [
            // Invitations and proposals.
            "Let's continue this on Viber.",
            "Can we switch to WhatsApp? Much quicker.",
            "Do you have Telegram?",
            "My assistant will reach out on WhatsApp to set a time.",
            // A handle or number, in the sentence or the next.
            "I'm on Telegram. Search for @hal_deli and message me there.",
            "Discord? My handle is zoe_games.",
            "WeChat id: weiliu_88",
            // Acceptance, preference, future, conditional.
            "WhatsApp would be easier for me.",
            "Telegram is fine too if you'd rather chat there.",
            "I'll send the photos on WhatsApp tonight.",
            // The past, spoken to the reader.
            "Did you get my WhatsApp yesterday?",
        ] {
            assert!(finds(t, Category::Messaging), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn a_payment_app_offered_or_accepted_is_a_cue_even_spaced_out() {
        for t in [
            "Venmo works too if that's easier.",
            "Zelle is fine for me.",
            "Cash App is OK with us as well.",
            "z e l l e is fine for me",
            "C.a.s.h A.p.p works too",
            "V-e-n-m-o would work",
            "Can we do Zelle this time?",
        ] {
            assert!(finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
        for t in [
            "Last year I paid my nanny through Zelle every Friday.",
            "We pay our instructors by Zelle every two weeks.",
            "My ex-husband pays child support through Zelle.",
            "My landlord only accepts rent through Zelle.",
            "Is Venmo or Zelle safer for paying my landscaper?",
        ] {
            assert!(!finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn plain_words_payment_outside_the_billing_system_is_evidence() {
        for t in [
            "Could we do a bank transfer straight to your account instead?",
            "I'd rather transfer the money directly and skip the invoice.",
            "We can settle this outside the system, no one takes a cut.",
            "I'll wire it to your own bank account, no need for the invoice.",
            "Let's keep the next invoice off the books.",
            "Is a check made out to you personally ok?",
            "Happy to pay via bank transfer, bypassing the invoice.",
        ] {
            assert!(finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
        assert!(!finds(
            "I'll pay straight to your account through the invoice link.",
            Category::Payment
        ));
        assert!(finds(
            "I'll pay straight to your account instead of the invoice link.",
            Category::Payment
        ));
    }
    #[test]
    fn a_habit_of_texting_is_not_an_invitation() {
        assert!(!finds(
            "My previous accountant used to text me reminders about estimates.",
            Category::Messaging
        ));
        assert!(!finds(
            "The bank usually texts me, and my old bookkeeper often text me too.",
            Category::Messaging
        ));
        assert!(finds(
            "It used to be email, but text me from now on.",
            Category::Messaging
        ));
    }

    #[test]
    fn a_payment_app_named_in_passing_is_not_evidence() {
        for t in [
            // "before you" places the reader in time; it does not address them.
            "Our accountant before you told us to keep the Zelle receipts in a folder.",
            // Someone else is the subject of the clause, not the customer.
            "Lots of my clients now ask to pay by Zelle at the inspection.",
            "Parents sometimes pay tutoring fees with Zelle, sometimes cash.",
            // "Pay" in a product's name is not a payment verb.
            "Our point of sale takes Apple Pay, Google Pay and Cash App Pay.",
        ] {
            assert!(!finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
        for t in [
            "It would be easier to pay by Zelle this time.",
            "My clients pay by card, but can I pay by Zelle?",
        ] {
            assert!(finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn the_platform_fee_or_an_alternative_does_not_put_payment_back_on_the_platform() {
        for t in [
            "We could pay you directly and split what we save on the platform fee.",
            "Could I Zelle you instead, or does it have to go through the portal?",
            "I'd like to pay the person who does our books directly, not the company.",
        ] {
            assert!(finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
        assert!(!finds(
            "I will pay you directly through the portal, fee included.",
            Category::Payment
        ));
    }

    #[test]
    fn an_app_named_like_a_word_counts_spelled_out_or_in_context() {
        for t in [
            "please add me on s.i.g.n.a.l, username is anita.k.22",
            "I'm on sig nal, same handle as my email name",
            "We should talk on Signal about the estate stuff.",
            "can we jump on Signal for this?",
            "Signal would be better for the tax documents. Message me there.",
            "DM me on s-l-a-c-k please",
        ] {
            assert!(finds(t, Category::Messaging), "{t}: {:?}", rules_for(t));
        }
        for t in [
            "The signal at the cabin is good, so I'll upload from there.",
            "Cut me some slack, can we push the deadline to Friday?",
            "Signal strength would be better upstairs.",
        ] {
            assert!(!finds(t, Category::Messaging), "{t}: {:?}", rules_for(t));
        }
    }
    #[test]
    fn line_teams_and_the_wallet_apps_count_with_intent_only() {
        for (t, c) in [
            (
                "I'm on LINE (the app), my ID is kenji_tax.",
                Category::Messaging,
            ),
            (
                "Let's take it to Teams, I'll send you an invite.",
                Category::Messaging,
            ),
            ("add me on Microsoft Teams please", Category::Messaging),
            (
                "I'd pay with Apple Pay if you send me your number.",
                Category::Payment,
            ),
            (
                "Google Pay works for me, I'll send it tonight.",
                Category::Payment,
            ),
            (
                "Send a voice note to my Signal, number below.",
                Category::Messaging,
            ),
        ] {
            assert!(finds(t, c), "{t}: {:?}", rules_for(t));
        }
        for t in [
            "Our Teams license renewal went up, software or office expense?",
            "We hired two sales teams this year.",
            "The line of credit interest was $6,200.",
            "Our point of sale takes Apple Pay and Google Pay.",
            "Is the Apple Pay cashback taxable income?",
        ] {
            assert!(rules_for(t).is_empty(), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn app_names_split_by_one_space_still_match() {
        assert!(finds(
            "Pls hit me up on tele gram @ruthbakes",
            Category::Messaging
        ));
        assert!(finds(
            "zel le works, i'll send it tonite",
            Category::Payment
        ));
        assert!(finds("ven mo is fine for me", Category::Payment));
        assert!(finds(
            "My cashtag is $JennyLBakes, send it there",
            Category::Payment
        ));
    }

    #[test]
    fn spanish_proposals_to_pay_or_talk_elsewhere_count() {
        for (t, c) in [
            ("¿Puedo pagarle por Zelle directamente?", Category::Payment),
            (
                "Prefiero pagar fuera de la plataforma, sin factura.",
                Category::Payment,
            ),
            ("Escríbame por WhatsApp, es más fácil.", Category::Messaging),
        ] {
            assert!(finds(t, c), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn someone_else_paid_or_preferred_is_not_a_cue() {
        for t in [
            "I pay my nanny through Zelle every Friday; do I need a Schedule H?",
            "My ex-accountant let me pay her through Venmo, but I prefer paying the invoice here.",
        ] {
            assert!(!finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn the_portal_sending_a_text_is_a_notification() {
        assert!(!finds(
            "Can the portal send me a text when the return is ready?",
            Category::Messaging
        ));
        assert!(!finds(
            "Could the system text me when it's filed?",
            Category::Messaging
        ));
        assert!(finds(
            "Can you send me a text when it's ready?",
            Category::Messaging
        ));
    }
    #[test]
    fn someone_else_asking_the_customer_to_pay_by_an_app_is_not_a_cue() {
        assert!(!finds(
            "My daughter's school wants us to pay the field trip by Venmo. Is it deductible?",
            Category::Payment
        ));
        assert!(finds(
            "My accountant's fee is due, so can I pay by Venmo?",
            Category::Payment
        ));
    }

    #[test]
    fn an_app_named_as_a_vendor_or_a_record_is_not_evidence() {
        for (t, c) in [
            (
                "Google Pay shows a $19.99 charge every month; can you help me place it?",
                Category::Payment,
            ),
            (
                "Cash App froze my account, can you tell me what to do?",
                Category::Payment,
            ),
            (
                "The Zelle receipt for the equipment is attached.",
                Category::Payment,
            ),
            (
                "Your WhatsApp export is attached for the audit.",
                Category::Messaging,
            ),
        ] {
            assert!(!finds(t, c), "{t}: {:?}", rules_for(t));
        }
        assert!(finds(
            "Can I Zelle you the balance tonight?",
            Category::Payment
        ));
    }

    #[test]
    fn an_invitation_told_as_a_habit_does_not_make_an_app_evidence() {
        assert!(!finds(
            "The old bookkeeper used to text me reminders on WhatsApp, which I liked.",
            Category::Messaging
        ));
        assert!(finds(
            "From now on, text me on WhatsApp instead.",
            Category::Messaging
        ));
    }

    #[test]
    fn the_reader_s_own_charge_is_not_a_bookkeeping_veto() {
        assert!(finds(
            "Would Google Pay work for the bookkeeping fee?",
            Category::Payment
        ));
        assert!(!finds(
            "Can you recategorize the Zelle transfers in my bookkeeping?",
            Category::Payment
        ));
    }

    #[test]
    fn a_payment_app_accepted_in_other_words_is_a_cue() {
        for t in [
            "PayPal also works if the portal is down again.",
            "Would Apple Cash work for the retainer?",
            "Revolut works for us, just say the word.",
        ] {
            assert!(finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
        for t in [
            "My employer reimbursed me through Zelle for the hotel.",
            "We accept PayPal on our online store; are the processing fees deductible?",
        ] {
            assert!(!finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn a_proposal_told_as_history_is_not_evidence() {
        for (t, c) in [
            (
                "Last year a few invoices were paid outside the system because QuickBooks was down.",
                Category::Payment,
            ),
            (
                "My old bookkeeper had me pay her off the books in 2019.",
                Category::Payment,
            ),
            (
                "We used to run the whole team on Slack, but we switched to email last year.",
                Category::Messaging,
            ),
        ] {
            assert!(!finds(t, c), "{t}: {:?}", rules_for(t));
        }
        for (t, c) in [
            (
                "I paid you outside the system last time; can we do that again?",
                Category::Payment,
            ),
            (
                "We used email before, but could we talk on Slack instead?",
                Category::Messaging,
            ),
        ] {
            assert!(finds(t, c), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn paying_around_the_billing_system_in_plain_words_is_evidence() {
        for t in [
            "Can I pay the bookkeeper herself instead of the firm?",
            "I'd like to send the payment straight to you and leave the billing system out of it.",
            "Could we handle the fee between us, without it showing up in the portal?",
            "I'd rather not pay through the system this time.",
            "I'll leave cash for you when you come by, no need to run it through the billing.",
            "Just tell me the amount and I'll move the money over myself, no invoice needed.",
            "I'd like to pay Sarah directly for her time rather than the agency.",
            "Can I give you the money myself and keep it off the portal?",
            "Could I cut you a check and we keep the billing out of it?",
        ] {
            assert!(finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
        for t in [
            "The client paid us straight to our bank account instead of through the Stripe link.",
            "I don't want to pay outside the system, just tell me where the invoice is.",
            "The payment went through the portal without any trouble this time.",
            "Please keep the payment in the portal, I want the record.",
            "We kept the invoice system out of it last year when we paid the roofer.",
        ] {
            assert!(!finds(t, Category::Payment), "{t}: {:?}", rules_for(t));
        }
    }

    #[test]
    fn a_handle_after_an_invitation_is_evidence_and_a_photo_is_not() {
        assert!(finds(
            "Snap me @jenna.b.fit if you have questions",
            Category::Messaging
        ));
        assert!(finds(
            "I'm on Instagram, can we keep chatting there?",
            Category::Messaging
        ));
        assert!(finds(
            "Teams works for me too, add me as an external contact.",
            Category::Messaging
        ));
        for t in [
            "Snap me a photo of the receipt if you can.",
            "Our Instagram ads cost $800 in May.",
            "Teams works fine for the staff, but the license went up.",
        ] {
            assert!(rules_for(t).is_empty(), "{t}: {:?}", rules_for(t));
        }
    }
}
