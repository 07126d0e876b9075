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
//!    [`PaymentMentions`](super::PaymentMentions)).

use std::collections::HashMap;

use super::automaton::{Automaton, positions_back};
use super::patterns::{Anchors, Compiled};
use super::scan::{RawHit, Source};
use super::words::{
    self, CLAUSE_STOPS, SENTENCE_STOPS, is_word_byte, normalise_entry, words_after, words_before,
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
    /// "at": an obfuscated e-mail address may surround it.
    At,
    /// A digit word ("five"): a spelled-out phone number may start here.
    NumberWord,
}

impl KeywordSet {
    /// Compile every keyword list of the configuration.
    /// Compile every keyword list of the configuration, and the anchors of
    /// the configured regexes (`anchors[i]` for pattern `i`).
    pub fn new(cfg: &DetectorConfig, anchors: &[Option<Anchors>]) -> Result<KeywordSet, Error> {
        let k = &cfg.keywords;
        let pm = &cfg.payment_mentions;
        let lists: [(&str, Category, Mention, &[String]); 7] = [
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
        ];
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut keys: Vec<Key> = Vec::new();
        for (key, category, mention, entries) in lists {
            for (i, entry) in entries.iter().enumerate() {
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

/// Judge the keys the automaton found in the skeleton `norm` (key number,
/// end offset): keyword hits go to `out`, and each anchor of a configured
/// regex to `triggered` as (pattern index, skeleton position).
pub(crate) fn judge<'c>(
    c: &'c Compiled,
    norm: &[u8],
    found: &[(u32, u32)],
    triggered: &mut Vec<(u32, u32)>,
    out: &mut Vec<RawHit<'c>>,
) {
    let mut pos: Vec<u32> = Vec::new();
    for &(k, end) in found {
        let key = &c.keywords.keys[k as usize];
        if key.variants.is_empty() && key.triggers.is_empty() {
            continue;
        }
        let len = c.keywords.automaton.key_len(k);
        if !positions_back(norm, end as usize, len, &mut pos) {
            continue;
        }
        let ns = pos[0] as usize;
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
        let Some(shape) = Shape::of(norm, &pos) else {
            continue;
        };
        for v in &key.variants {
            if !c.category_enabled(v.category) {
                continue;
            }
            if !(shape.spaced_letters || shape.space_bits & !v.spaces == 0) {
                continue;
            }
            if c.rules.negation && is_negated(c, norm, ns) {
                continue;
            }
            if v.category == Category::Payment && is_put_on_platform(c, norm, ne) {
                continue;
            }
            if v.mention != Mention::No && !has_payment_cue(c, norm, ns, ne, v.mention) {
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

/// How a squeezed match was spread over the skeleton.
struct Shape {
    /// Bit `i`: whitespace before squeezed character `i` of the match.
    space_bits: u128,
    /// Every character stood alone (`w h a t s a p p`).
    spaced_letters: bool,
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
        })
    }
}

/// Words that start a new thought: negation before them does not reach
/// past ("not sure, but WhatsApp me").
const CLAUSE_WORDS: &[&[u8]] = &[b"but", b"so", b"then", b"instead", b"however", b"though"];

/// A negation word within four words before `start`, in the same clause.
pub(crate) fn is_negated(c: &Compiled, norm: &[u8], start: usize) -> bool {
    for w in words_before(norm, start, CLAUSE_STOPS, 4) {
        if CLAUSE_WORDS.contains(&w) {
            return false;
        }
        if c.negations.contains(w) {
            return true;
        }
    }
    false
}

/// Words that turn an on-platform phrase around ("instead of through the
/// portal", "not through the platform").
const CONTRARY: &[&[u8]] = &[
    b"instead", b"rather", b"than", b"not", b"outside", b"without", b"bypass", b"avoid", b"skip",
];

/// An on-platform phrase after `end` in the same sentence (≤ 80 bytes),
/// not turned around by "instead of" or "not".
pub(crate) fn is_put_on_platform(c: &Compiled, norm: &[u8], end: usize) -> bool {
    let (_, e) = words::sentence(norm, end, end, 80);
    let after = &norm[end..e];
    c.on_platform
        .positions_in(after)
        .any(|p| !words_before(after, p, SENTENCE_STOPS, 2).any(|w| CONTRARY.contains(&w)))
}

/// The sentence around a payment mention is about paying us (and is not
/// bookkeeping).
fn has_payment_cue(c: &Compiled, norm: &[u8], start: usize, end: usize, kind: Mention) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let sentence = &norm[s..e];
    let cues = &c.mention;
    if cues.vetoes.any_in(sentence) {
        return false;
    }
    let mut prev: &[u8] = b"";
    let mut second_person = false;
    for w in words::words_in(sentence) {
        // "thank you" is politeness, not the payee.
        if cues.second_person.contains(w) && prev != b"thank" && prev != b"thanks" {
            second_person = true;
            break;
        }
        prev = w;
    }
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
    // A payment verb shortly before, unless someone else is paying ("my
    // tenants pay by Zelle").
    let mut before = words_before(norm, start, SENTENCE_STOPS, 5).peekable();
    while let Some(w) = before.next() {
        if cues.verbs.contains(w) {
            let payer = before.peek().copied().unwrap_or_default();
            if !cues.third_parties.contains(payer) {
                return true;
            }
        }
    }
    // A handle right after: "venmo me", "zelle: 555…", "cash app $jo".
    let rest = &norm[end..e];
    let first_mark = rest.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first_mark, Some(b'@' | b'$' | b':')) {
        return true;
    }
    let next = words_after(norm, end, SENTENCE_STOPS, 1)
        .next()
        .unwrap_or_default();
    if cues.handles.contains(next) {
        return true;
    }
    // "my venmo is jo-smith".
    let owner = words_before(norm, start, SENTENCE_STOPS, 1)
        .next()
        .unwrap_or_default();
    (owner == b"my" || owner == b"our") && next == b"is"
}

#[cfg(test)]
mod tests {
    use crate::detect::{Category, Detector, DetectorConfig, ScanContext};

    fn rules_for(text: &str) -> Vec<(Category, String, String)> {
        let d = Detector::new(&DetectorConfig::default()).expect("defaults compile");
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
            "whats-app +44",
            "W.h.a.t.s.A.p.p",
            "Whats App",
            "what's app?",
            "t e l e g r a m",
            "tele-gram",
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
        assert!(finds("ＷｈａｔｓＡｐｐ", Category::Messaging));
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
}
