//! Word-level helpers over the normalised skeleton: the words around a
//! match, the sentence it sits in, word lists. The scanner uses them to read
//! context ("order 5551234567" is a reference; "don't text me" is not an
//! invitation) without a second tokenisation of the whole text.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::hash::{BuildHasherDefault, Hasher};

use super::normalize::Normalized;

/// A byte that belongs to a word: ASCII letter or digit, or part of a
/// non-ASCII character (letters of other scripts).
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Bytes that end a clause: context never reaches across them.
pub(crate) const CLAUSE_STOPS: &[u8] = b".!?;:,\n()\"-";
/// Bytes that end a sentence.
pub(crate) const SENTENCE_STOPS: &[u8] = b".!?\n";
/// Only a line break stops the context of a number ("Order no.: 1234").
pub(crate) const LINE_STOPS: &[u8] = b"\n";

/// Normalise a configured word or phrase the way text is normalised.
pub(crate) fn normalise_entry(entry: &str) -> Vec<u8> {
    let mut n = Normalized::default();
    n.build(entry.trim());
    // Collapse runs of spaces so "pay  you" matches "pay you".
    let mut out = Vec::with_capacity(n.bytes.len());
    for &b in &n.bytes {
        if b == b' ' && out.last() == Some(&b' ') {
            continue;
        }
        out.push(b);
    }
    out
}

/// FNV-1a: word lookups hash a few bytes each, where SipHash's setup cost
/// dominates; the keys are configuration, not attacker-chosen.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A set of normalised words (or short phrases).
#[derive(Debug, Default)]
pub(crate) struct WordSet(HashSet<Box<[u8]>, BuildHasherDefault<Fnv>>);

impl WordSet {
    /// Build from configured entries.
    pub fn new(entries: &[String]) -> WordSet {
        WordSet(
            entries
                .iter()
                .map(|e| normalise_entry(e).into_boxed_slice())
                .filter(|e| !e.is_empty())
                .collect(),
        )
    }

    /// True when `word` (normalised) is in the set.
    pub fn contains(&self, word: &[u8]) -> bool {
        self.0.contains(word)
    }
}

/// A list of normalised phrases searched for inside a window of text, all
/// at once (one automaton pass over the window).
#[derive(Debug, Default)]
pub(crate) struct PhraseList(Option<AhoCorasick>);

impl PhraseList {
    /// Build from configured entries.
    pub fn new(entries: &[String]) -> Result<PhraseList, aho_corasick::BuildError> {
        let phrases: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| normalise_entry(e))
            .filter(|e| !e.is_empty())
            .collect();
        if phrases.is_empty() {
            return Ok(PhraseList(None));
        }
        Ok(PhraseList(Some(
            // A DFA even past 100 phrases, where the crate would pick an
            // NFA: the same matches, one table load per byte.
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&phrases)?,
        )))
    }

    /// True when one of the phrases occurs in `hay` on word boundaries.
    pub fn any_in(&self, hay: &[u8]) -> bool {
        self.positions_in(hay).next().is_some()
    }

    /// The start of every phrase occurrence in `hay` on word boundaries.
    pub fn positions_in<'a>(&'a self, hay: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        self.matches_in(hay).map(|(s, _)| s)
    }

    /// Start and end of every phrase occurrence in `hay` on word boundaries.
    pub fn matches_in<'a>(&'a self, hay: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
        self.0
            .iter()
            .flat_map(move |ac| ac.find_overlapping_iter(hay))
            .filter(move |m| {
                (m.start() == 0 || !is_word_byte(hay[m.start() - 1]))
                    && (m.end() == hay.len() || !is_word_byte(hay[m.end()]))
            })
            .map(|m| (m.start(), m.end()))
    }
}

fn is_inner_word_byte(b: u8) -> bool {
    is_word_byte(b) || b == b'\''
}

fn trim_apostrophes(w: &[u8]) -> &[u8] {
    let s = w.iter().position(|&b| b != b'\'').unwrap_or(w.len());
    let e = w.iter().rposition(|&b| b != b'\'').map_or(s, |p| p + 1);
    &w[s..e]
}

/// The words before `pos`, nearest first, stopping at a byte in `stops`
/// (or after `max` words). Words keep inner apostrophes (`don't`).
pub(crate) fn words_before<'a>(
    norm: &'a [u8],
    pos: usize,
    stops: &'a [u8],
    max: usize,
) -> WordsBefore<'a> {
    WordsBefore {
        norm,
        pos: pos.min(norm.len()),
        stops,
        left: max,
    }
}

/// Iterator returned by [`words_before`].
#[derive(Clone)]
pub(crate) struct WordsBefore<'a> {
    norm: &'a [u8],
    pos: usize,
    stops: &'a [u8],
    left: usize,
}

impl<'a> Iterator for WordsBefore<'a> {
    type Item = &'a [u8];

    // `contains` on bytes calls `memchr`, slower than a loop over a few stops.
    #[allow(clippy::manual_contains)]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let mut p = self.pos;
        while p > 0 && !is_inner_word_byte(self.norm[p - 1]) {
            let b = self.norm[p - 1];
            if self.stops.iter().any(|&s| s == b) {
                self.left = 0;
                return None;
            }
            p -= 1;
        }
        if p == 0 {
            self.left = 0;
            return None;
        }
        let end = p;
        while p > 0 && is_inner_word_byte(self.norm[p - 1]) {
            p -= 1;
        }
        self.pos = p;
        self.left -= 1;
        let w = trim_apostrophes(&self.norm[p..end]);
        if w.is_empty() { self.next() } else { Some(w) }
    }
}

/// The words after `pos`, nearest first, stopping at a byte in `stops`.
pub(crate) fn words_after<'a>(
    norm: &'a [u8],
    pos: usize,
    stops: &'a [u8],
    max: usize,
) -> WordsAfter<'a> {
    WordsAfter {
        norm,
        pos: pos.min(norm.len()),
        stops,
        left: max,
    }
}

/// Iterator returned by [`words_after`].
pub(crate) struct WordsAfter<'a> {
    norm: &'a [u8],
    pos: usize,
    stops: &'a [u8],
    left: usize,
}

impl<'a> Iterator for WordsAfter<'a> {
    type Item = &'a [u8];

    // `contains` on bytes calls `memchr`, slower than a loop over a few stops.
    #[allow(clippy::manual_contains)]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let n = self.norm.len();
        let mut p = self.pos;
        while p < n && !is_inner_word_byte(self.norm[p]) {
            let b = self.norm[p];
            if self.stops.iter().any(|&s| s == b) {
                self.left = 0;
                return None;
            }
            p += 1;
        }
        if p == n {
            self.left = 0;
            return None;
        }
        let start = p;
        while p < n && is_inner_word_byte(self.norm[p]) {
            p += 1;
        }
        self.pos = p;
        self.left -= 1;
        let w = trim_apostrophes(&self.norm[start..p]);
        if w.is_empty() { self.next() } else { Some(w) }
    }
}

/// The sentence around `start..end`: back to the previous sentence stop and
/// forward to the next, at most `max` bytes each way.
pub(crate) fn sentence(norm: &[u8], start: usize, end: usize, max: usize) -> (usize, usize) {
    let lo = start.saturating_sub(max);
    let s = last_sentence_end(norm, lo, start).map_or(lo, |i| i + 1);
    let hi = (end + max).min(norm.len());
    let e = if end < hi {
        first_sentence_end(norm, end, hi).unwrap_or(hi)
    } else {
        end
    };
    (s, e)
}

// The stops are found with memchr rather than byte by byte: the nearest
// `!`, `?` or line break bounds the search for a `.` that ends a sentence,
// so the stop found is the nearest one either way, and so are the bounds.

/// The last `i` in `lo..hi` where a sentence ends.
fn last_sentence_end(norm: &[u8], lo: usize, hi: usize) -> Option<usize> {
    let hard = memchr::memrchr3(b'!', b'?', b'\n', &norm[lo..hi]).map(|i| lo + i);
    let from = hard.map_or(lo, |h| h + 1);
    memchr::memrchr_iter(b'.', &norm[from..hi])
        .map(|i| from + i)
        .find(|&i| is_sentence_end(norm, i))
        .or(hard)
}

/// The first `i` in `lo..hi` where a sentence ends.
fn first_sentence_end(norm: &[u8], lo: usize, hi: usize) -> Option<usize> {
    let hard = memchr::memchr3(b'!', b'?', b'\n', &norm[lo..hi]).map(|i| lo + i);
    let to = hard.unwrap_or(hi);
    memchr::memchr_iter(b'.', &norm[lo..to])
        .map(|i| lo + i)
        .find(|&i| is_sentence_end(norm, i))
        .or(hard)
}

/// A sentence ends at `!`, `?`, a line break, or a `.` that is followed by
/// a space or the end (so "paypal.me" and "1.5" stay inside).
fn is_sentence_end(norm: &[u8], i: usize) -> bool {
    match norm[i] {
        b'!' | b'?' | b'\n' => true,
        b'.' => norm
            .get(i + 1)
            .is_none_or(|&b| b == b' ' || b == b'\n' || b == b'\r'),
        _ => false,
    }
}

/// The words of a window, in order.
pub(crate) fn words_in(window: &[u8]) -> impl Iterator<Item = &[u8]> {
    window
        .split(|&b| !is_inner_word_byte(b))
        .map(trim_apostrophes)
        .filter(|w| !w.is_empty())
}

/// Whether the two words of one of `pairs` stand side by side, in that
/// order, in `window` ("come over", "add you").
pub(crate) fn has_word_pair(window: &[u8], pairs: &[(&[u8], &[u8])]) -> bool {
    let mut prev: &[u8] = b"";
    words_in(window).any(|w| {
        let hit = pairs.iter().any(|&(a, b)| a == prev && b == w);
        prev = w;
        hit
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_before_stop_at_clause_ends_and_keep_apostrophes() {
        let t = b"well, i don't have whatsapp";
        let ws: Vec<&[u8]> = words_before(t, 19, CLAUSE_STOPS, 5).collect();
        assert_eq!(ws, vec![&b"have"[..], b"don't", b"i"]);
    }

    #[test]
    fn words_after_and_sentence_bounds() {
        let t = b"hi. venmo me at @jo! thanks";
        let ws: Vec<&[u8]> = words_after(t, 9, SENTENCE_STOPS, 3).collect();
        assert_eq!(ws, vec![&b"me"[..], b"at", b"jo"]);
        assert_eq!(sentence(t, 4, 9, 100), (3, 19));
        let t = b"see paypal.me/jo now";
        assert_eq!(sentence(t, 4, 13, 100), (0, t.len()));
    }

    #[test]
    fn sentence_bounds_match_a_byte_by_byte_walk() {
        fn walked(norm: &[u8], start: usize, end: usize, max: usize) -> (usize, usize) {
            let lo = start.saturating_sub(max);
            let mut s = start;
            while s > lo && !is_sentence_end(norm, s - 1) {
                s -= 1;
            }
            let hi = (end + max).min(norm.len());
            let mut e = end;
            while e < hi && !is_sentence_end(norm, e) {
                e += 1;
            }
            (s, e)
        }
        let alphabet = b"ab .!?\n\r.. x.y";
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let len = (next() % 90) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            for _ in 0..8 {
                let start = (next() % (len as u64 + 1)) as usize;
                let end = start + (next() % ((len - start) as u64 + 1)) as usize;
                let max = (next() % 40) as usize;
                assert_eq!(
                    sentence(&text, start, end, max),
                    walked(&text, start, end, max)
                );
            }
        }
    }

    #[test]
    fn phrases_match_on_word_boundaries_only() {
        let list =
            PhraseList::new(&["through the portal".to_owned(), "come".to_owned()]).expect("builds");
        assert!(list.any_in(b"through the portal please"));
        assert_eq!(
            list.positions_in(b"pay through the portal")
                .collect::<Vec<_>>(),
            [4]
        );
        assert!(!list.any_in(b"through the portals"));
        assert!(!list.any_in(b"income"));
    }

    #[test]
    fn entries_are_normalised_like_text() {
        assert_eq!(normalise_entry("  Pay  You "), b"pay you");
        let set = WordSet::new(&["Don’t".to_owned()]);
        assert!(set.contains(b"don't"));
    }
}
