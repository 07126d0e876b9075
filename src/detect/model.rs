//! The detector's learned judgement: a linear model over the words and
//! word pairs of a message's new text.
//!
//! The rules (`scan.rs`) find evidence and say where it is; they are exact
//! about numbers, addresses and checksums, but every writer brings new ways
//! to say "pay me" or "here is where I am", and a rule list only knows the
//! ones it was shown. The model reads the whole new text at once and gives
//! six probabilities: that the message is evidence at all (`flag`), and
//! that it is evidence of each [`Category`]. [`super::Detector`] combines
//! them with the rules' hits (see [`ModelSettings`]).
//!
//! Features: the text is cut into tokens (runs of letters and digits,
//! lower-cased, every ASCII digit written `0`, digit runs cut at 12; `@`
//! and `$` are tokens of their own); a message's features are its distinct
//! tokens and distinct pairs of neighbouring tokens (`"call me"`), each
//! worth `1/sqrt(n)` where `n` is how many of them the model knows. A
//! text longer than [`WINDOW`] bytes is also read in overlapping windows
//! ([`Reading::windows`]): a rule's hit is judged by the windows that hold
//! it as well as by the whole text, so text added around evidence cannot
//! water it down. The
//! weights live in `model.tsv` beside this file, made by
//! `contrib/train-detector-model.py` from the labelled set's tuned part
//! (the features come from `cargo run --release --example
//! detector_features`, so training and scanning cut text the same way).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::Category;

/// The model's outputs: the flag, then [`Category::ALL`] in order.
pub const OUTPUTS: usize = 6;

/// Digit runs longer than this are cut: a long number's length says
/// nothing more.
const MAX_DIGITS: usize = 12;

/// The bytes of a window: a longer text is also read in windows (see
/// [`Reading::windows`]).
pub const WINDOW: usize = 250;

/// A known token of a text (see `Model::walk`).
struct Known {
    /// Where it starts in the text.
    at: usize,
    /// Its row.
    row: u32,
    /// The row of the pair it ends, or [`NONE`].
    pair: u32,
}

/// No row.
const NONE: u32 = u32::MAX;

/// The weights shipped with postdesk.
const BUILTIN: &str = include_str!("model.tsv");

/// A short hash of the built-in weights: part of the detector's version,
/// so new weights mean a rescan.
pub fn builtin_digest() -> &'static str {
    use sha2::{Digest, Sha256};
    static DIGEST: OnceLock<String> = OnceLock::new();
    DIGEST.get_or_init(|| hex::encode(&Sha256::digest(BUILTIN.as_bytes())[..8]))
}

/// `[detector.model]`: how the model's probabilities combine with the
/// rules' hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// False: the rules alone decide, as if there were no model.
    pub enabled: bool,
    /// Nothing flags unless the model gives the message at least this
    /// probability of being evidence.
    pub min_flag: f64,
    /// A rule's hit counts only when the model gives its category at least
    /// this; below, the hit is listed with weight 0.
    pub min_keep: f64,
    /// The model alone makes a hit (rule `model.<category>`, the sentence
    /// that weighed most) for a category it gives at least this.
    pub min_alone: f64,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            enabled: true,
            min_flag: 0.5,
            min_keep: 0.05,
            min_alone: 0.8,
        }
    }
}

/// The model's probabilities for one message (serialised as
/// `{"flag": …, "phone": …, "email": …, …}`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// That the message is evidence at all.
    pub flag: f64,
    /// Per category, in [`Category::ALL`] order.
    pub categories: [f64; 5],
}

impl Scores {
    /// The probability for one category.
    pub fn of(&self, c: Category) -> f64 {
        let i = Category::ALL.iter().position(|x| *x == c).unwrap_or(0);
        self.categories[i]
    }
}

impl Serialize for Scores {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(OUTPUTS))?;
        m.serialize_entry("flag", &self.flag)?;
        for (c, p) in Category::ALL.iter().zip(&self.categories) {
            m.serialize_entry(c.as_str(), p)?;
        }
        m.end()
    }
}

/// A text as the model read it (see [`Model::read`]): its known tokens,
/// per part.
pub struct Reading<'m> {
    model: &'m Model,
    parts: Vec<Vec<Known>>,
}

impl Reading<'_> {
    /// The probabilities of the whole text: what the model was trained on.
    pub fn whole(&self) -> Scores {
        let m = self.model;
        let known: usize = self.parts.iter().map(Vec::len).sum();
        let mut ids = Vec::with_capacity((2 * known).min(m.rows.len()));
        SEEN.with_borrow_mut(|seen| {
            let mark = seen.next(m.rows.len());
            for toks in &self.parts {
                collect(toks, true, seen, mark, &mut ids);
            }
        });
        m.probabilities(&ids)
    }

    /// The stretches of at most [`WINDOW`] bytes the text is read in,
    /// each starting half a window after the one before (the whole text
    /// when it is no longer), with their probabilities: `(from, to,
    /// scores)`, `from..to` the bytes their tokens start in.
    /// `whole` is [`Reading::whole`], already computed by the caller.
    pub fn windows(&self, whole: Scores) -> Vec<(usize, usize, Scores)> {
        let total: usize = self
            .parts
            .iter()
            .map(|t| match (t.first(), t.last()) {
                (Some(a), Some(b)) => b.at - a.at + 1,
                _ => 0,
            })
            .sum();
        if total <= WINDOW {
            return vec![(0, usize::MAX, whole)];
        }
        let mut out = Vec::with_capacity(2 * total / WINDOW + 2);
        let mut ids = Vec::with_capacity(WINDOW);
        SEEN.with_borrow_mut(|seen| {
            for toks in &self.parts {
                let mut first = 0;
                while first < toks.len() {
                    let from = toks[first].at;
                    let end = first + toks[first..].partition_point(|t| t.at < from + WINDOW);
                    let mark = seen.next(self.model.rows.len());
                    ids.clear();
                    collect(&toks[first..end], false, seen, mark, &mut ids);
                    out.push((from, from + WINDOW, self.model.probabilities(&ids)));
                    if end >= toks.len() {
                        break;
                    }
                    let next = first + toks[first..].partition_point(|t| t.at < from + WINDOW / 2);
                    first = next.max(first + 1);
                }
            }
        });
        out
    }
}

/// Add the rows of `toks` not yet marked to `ids`; the pair of the first
/// token only with `first_pair` (a stretch that starts there holds one of
/// its tokens).
fn collect(toks: &[Known], first_pair: bool, seen: &mut Seen, mark: u32, ids: &mut Vec<u32>) {
    for (i, t) in toks.iter().enumerate() {
        for id in [t.row, t.pair] {
            if id == NONE || (i == 0 && id == t.pair && !first_pair) {
                continue;
            }
            let slot = &mut seen.marks[id as usize];
            if *slot != mark {
                *slot = mark;
                ids.push(id);
            }
        }
    }
}

/// Which rows one scan has counted already, per thread: a row is counted
/// when its mark is this scan's; a new scan takes the next mark, so
/// nothing is cleared between scans.
#[derive(Default)]
struct Seen {
    marks: Vec<u32>,
    mark: u32,
}

impl Seen {
    /// The mark of a new scan over `rows` rows.
    fn next(&mut self, rows: usize) -> u32 {
        if self.marks.len() < rows {
            self.marks.resize(rows, 0);
        }
        self.mark = self.mark.wrapping_add(1);
        if self.mark == 0 {
            self.marks.fill(0);
            self.mark = 1;
        }
        self.mark
    }
}

thread_local! {
    static SEEN: std::cell::RefCell<Seen> = std::cell::RefCell::default();
}

/// A parsed weights file.
#[derive(Debug)]
pub struct Model {
    /// Token key ([`token_key`]) to row.
    tokens: Table,
    /// Pair key ([`pair_key`]) to row.
    pair_rows: Table,
    /// One bit per [`PAIR_BITS`] slice of pair keys, set when the model
    /// knows a pair there: most neighbour pairs of a text are unknown, and
    /// this small set (it stays in the cache) says so without a look-up
    /// in the index. Exact: a known pair's bit is always set.
    pairs: Box<[u64]>,
    rows: Vec<[f32; OUTPUTS]>,
    bias: [f32; OUTPUTS],
}

/// The bits of [`Model::pairs`] (32 KiB).
const PAIR_BITS: u32 = 18;

/// The bit of a pair key in [`Model::pairs`]: word and mask.
fn pair_bit(key: u64) -> (usize, u64) {
    let b = key >> (64 - PAIR_BITS);
    ((b >> 6) as usize, 1 << (b & 63))
}

/// The feature index as the scan reads it: open addressing over the keys
/// themselves (hashes already: [`finish`], [`pair_key`]), eight bytes a
/// slot so that the table stays small in the cache: a key's low 48 bits
/// above its row (two keys that differ only in their high bits would be
/// taken for one: about one chance in 2^48 a look-up).
#[derive(Debug)]
struct Table {
    /// `key << 16 | row`; 0 is an empty slot (row 0 is stored as
    /// [`Table::ROW0`]). At most two thirds full, so every probe sequence
    /// meets an empty slot.
    slots: Box<[u64]>,
    /// Right shift from a key to its first slot (its top bits).
    shift: u32,
}

impl Table {
    /// Rows a table can hold.
    const MAX_ROWS: usize = 0xffff;
    /// How row 0 is stored: a slot whose low 16 bits are all set.
    const ROW0: u64 = 0xffff;

    fn new(keys: &HashMap<u64, u32, foldhash::fast::FixedState>) -> Table {
        let len = (keys.len() * 3 / 2 + 1).next_power_of_two().max(2);
        let shift = 64 - len.trailing_zeros();
        let mut slots = vec![0; len].into_boxed_slice();
        for (&key, &row) in keys {
            let mut i = (key >> shift) as usize;
            while slots[i] != 0 {
                i = (i + 1) & (len - 1);
            }
            slots[i] = Self::slot(key, row);
        }
        Table { slots, shift }
    }

    fn slot(key: u64, row: u32) -> u64 {
        let row = if row == 0 { Self::ROW0 } else { u64::from(row) };
        key << 16 | row
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = (key >> self.shift) as usize;
        let want = key << 16;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if s & !0xffff == want {
                let row = s & 0xffff;
                // At most `MAX_ROWS`: the cast keeps every bit.
                #[allow(clippy::cast_possible_truncation)]
                return Some(if row == Self::ROW0 { 0 } else { row as u32 });
            }
            i = (i + 1) & mask;
        }
    }
}

/// Why a weights file did not parse.
#[derive(Debug, thiserror::Error)]
#[error("model weights, line {line}: {what}")]
pub struct ParseError {
    line: usize,
    what: String,
}

/// Call `each` with every token of `text`, in order (see the module
/// documentation for what a token is).
pub fn tokens(text: &str, mut each: impl FnMut(&str)) {
    let mut buf = Vec::new();
    tokenize(text, &mut buf, |t: &Vec<u8>, _| {
        // Only whole characters are ever pushed.
        if let Ok(t) = std::str::from_utf8(t) {
            each(t);
        }
    });
}

/// What [`tokenize`] builds a token into: its bytes ([`tokens`]) or only
/// its key ([`Model::walk`], no bytes copied). One tokenizer for both,
/// so that a feature's key at load and at scan cannot differ.
trait Token {
    fn push(&mut self, b: u8);
    fn is_empty(&self) -> bool;
    fn clear(&mut self);
}

impl Token for Vec<u8> {
    fn push(&mut self, b: u8) {
        Vec::push(self, b);
    }
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
}

/// A token's key as it is built: [`token_key`] one byte at a time.
#[derive(Clone, Copy)]
struct KeyOf {
    state: u64,
    len: u32,
}

impl KeyOf {
    const fn new() -> Self {
        KeyOf {
            state: KEY_SEED,
            len: 0,
        }
    }
    fn key(&self) -> u64 {
        finish(self.state)
    }
}

impl Token for KeyOf {
    fn push(&mut self, b: u8) {
        self.state = step(self.state, b);
        self.len += 1;
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn clear(&mut self) {
        *self = KeyOf::new();
    }
}

/// The tokens of `text`, built in `tok`: one pass over the bytes, ASCII
/// without decoding. `each` gets the token and where it starts.
fn tokenize<T: Token>(text: &str, tok: &mut T, mut each: impl FnMut(&T, usize)) {
    let bytes = text.as_bytes();
    tok.clear();
    let mut digits = 0usize;
    // Where the token in `tok` starts.
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let m = ASCII[usize::from(b)];
        if m != 0 {
            // A letter (lower-cased) or a digit (written 0).
            if m == b'0' {
                digits += 1;
                if digits > MAX_DIGITS {
                    i += 1;
                    continue;
                }
            } else {
                digits = 0;
            }
            if tok.is_empty() {
                start = i;
            }
            tok.push(m);
            i += 1;
            continue;
        }
        digits = 0;
        if b < 0x80 {
            if !tok.is_empty() {
                each(tok, start);
                tok.clear();
            }
            if b == b'@' || b == b'$' {
                tok.push(b);
                each(tok, i);
                tok.clear();
            }
            i += 1;
            continue;
        }
        // A character outside ASCII: `i` is on its first byte.
        let c = text[i..].chars().next().unwrap_or(' ');
        if c.is_alphanumeric() {
            if tok.is_empty() {
                start = i;
            }
            let mut tmp = [0u8; 4];
            for l in c.to_lowercase() {
                for &b in l.encode_utf8(&mut tmp).as_bytes() {
                    tok.push(b);
                }
            }
        } else if !tok.is_empty() {
            each(tok, start);
            tok.clear();
        }
        i += c.len_utf8();
    }
    if !tok.is_empty() {
        each(tok, start);
    }
}

/// What an ASCII byte adds to a token: a letter lower-cased, a digit as
/// `0`; 0 for every other byte.
const ASCII: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_digit() {
            t[b] = b'0';
        } else if c.is_ascii_alphabetic() {
            t[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    t
};

/// Where every token key starts ("postdesk").
const KEY_SEED: u64 = 0x706f_7374_6465_736b;

/// One byte into a key: rotate, mix in, multiply (a bijection of the
/// state for each byte, so keys of different tokens rarely meet).
#[inline]
fn step(state: u64, b: u8) -> u64 {
    (state.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// The last mix of a key, so that all its bits vary: the index uses the
/// key itself as its hash.
#[inline]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The index key of a token.
fn token_key(token: &[u8]) -> u64 {
    let mut k = KeyOf::new();
    for &b in token {
        k.push(b);
    }
    k.key()
}

/// The index key of a pair of neighbouring tokens, from theirs.
fn pair_key(first: u64, second: u64) -> u64 {
    (first.rotate_left(29) ^ second).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5A17
}

/// The index key of a feature as [`features`] writes it (`"a b"` for a
/// pair: tokens never hold a space).
fn feature_key(feature: &str) -> u64 {
    match feature.split_once(' ') {
        Some((a, b)) => pair_key(token_key(a.as_bytes()), token_key(b.as_bytes())),
        None => token_key(feature.as_bytes()),
    }
}

/// Call `each` with every feature of `text`: each token and each pair of
/// neighbouring tokens (`"a b"`), repeats included.
pub fn features(text: &str, mut each: impl FnMut(&str)) {
    let mut prev = String::new();
    let mut pair = String::new();
    tokens(text, |t| {
        each(t);
        if !prev.is_empty() {
            pair.clear();
            pair.push_str(&prev);
            pair.push(' ');
            pair.push_str(t);
            each(&pair);
        }
        prev.clear();
        prev.push_str(t);
    });
}

fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(x)).exp())
}

impl Model {
    /// The weights shipped with postdesk, parsed once.
    ///
    /// # Panics
    ///
    /// Never in a released build: the built-in file is checked by a test.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| Model::parse(BUILTIN).expect("the built-in model parses"))
    }

    /// Parse a weights file: `#` comments, one `bias` line, then one line
    /// per feature, `feature<TAB>w1<TAB>…<TAB>w6`.
    ///
    /// # Errors
    ///
    /// [`ParseError`] with the line of a row without six numbers, a
    /// feature given twice, or a file without a `bias` line.
    pub fn parse(src: &str) -> Result<Model, ParseError> {
        let mut index = HashMap::with_hasher(foldhash::fast::FixedState::default());
        let mut rows = Vec::new();
        let mut bias = None;
        for (n, line) in src.lines().enumerate() {
            let err = |what: String| ParseError { line: n + 1, what };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split('\t');
            let name = cols.next().unwrap_or_default();
            let mut w = [0f32; OUTPUTS];
            let mut count = 0;
            for (i, col) in cols.enumerate() {
                if i >= OUTPUTS {
                    return Err(err(format!("more than {OUTPUTS} weights")));
                }
                w[i] = col
                    .parse()
                    .map_err(|_| err(format!("weight {col:?} is not a number")))?;
                count += 1;
            }
            if count != OUTPUTS {
                return Err(err(format!("{count} weights, want {OUTPUTS}")));
            }
            if name == "bias" {
                bias = Some(w);
                continue;
            }
            let id = u32::try_from(rows.len()).map_err(|_| err("too many rows".into()))?;
            if index.insert(feature_key(name), id).is_some() {
                return Err(err(format!(
                    "feature {name:?} given twice (or its key is another's)"
                )));
            }
            rows.push(w);
        }
        let bias = bias.ok_or(ParseError {
            line: 0,
            what: "no bias line".into(),
        })?;
        // Every token of a pair gets a row (of zeros if the file has none),
        // so that the scan may skip the pairs of an unknown token.
        for line in src.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('\t').next().unwrap_or_default();
            let Some((a, b)) = name.split_once(' ') else {
                continue;
            };
            for t in [a, b] {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    index.entry(token_key(t.as_bytes()))
                {
                    let id = u32::try_from(rows.len()).map_err(|_| ParseError {
                        line: 0,
                        what: "too many rows".into(),
                    })?;
                    slot.insert(id);
                    rows.push([0.0; OUTPUTS]);
                }
            }
        }
        if rows.len() > Table::MAX_ROWS {
            return Err(ParseError {
                line: 0,
                what: format!(
                    "{} features and pair tokens, at most {} are read",
                    rows.len(),
                    Table::MAX_ROWS
                ),
            });
        }
        // Pairs and tokens in two indexes: the tokens' (every token is looked
        // up) stays small enough for the nearest caches.
        let mut pair_rows = HashMap::with_hasher(foldhash::fast::FixedState::default());
        let mut pairs = vec![0u64; (1 << PAIR_BITS) / 64].into_boxed_slice();
        for line in src.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('\t').next().unwrap_or_default();
            if name.contains(' ') {
                let key = feature_key(name);
                if let Some(row) = index.remove(&key) {
                    pair_rows.insert(key, row);
                }
                let (word, bit) = pair_bit(key);
                pairs[word] |= bit;
            }
        }
        Ok(Model {
            tokens: Table::new(&index),
            pair_rows: Table::new(&pair_rows),
            pairs,
            rows,
            bias,
        })
    }

    /// How many features the model knows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the model knows no feature.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The known tokens of `text[part]`, in order: where each starts, its
    /// row, and the row of the pair it ends (`NONE` when unknown). A pair
    /// is known only if both its tokens are (see `parse`): an unknown
    /// token ends the chain.
    fn walk(&self, text: &str, part: &Range<usize>, out: &mut Vec<Known>) {
        let mut prev: Option<u64> = None;
        tokenize(&text[part.clone()], &mut KeyOf::new(), |t, at| {
            let key = t.key();
            let Some(row) = self.tokens.get(key) else {
                prev = None;
                return;
            };
            let pair = prev
                .map(|p| pair_key(p, key))
                .filter(|&k| {
                    let (word, bit) = pair_bit(k);
                    self.pairs[word] & bit != 0
                })
                .and_then(|k| self.pair_rows.get(k))
                .unwrap_or(NONE);
            out.push(Known {
                at: part.start + at,
                row,
                pair,
            });
            prev = Some(key);
        });
    }

    /// The rows of the known features of `parts` of `text`, each once.
    fn known(&self, text: &str, parts: &[Range<usize>]) -> Vec<u32> {
        let mut toks = Vec::new();
        for r in parts {
            self.walk(text, r, &mut toks);
        }
        self.rows_of(&toks, true)
    }

    /// The distinct rows of `toks`; the pair of the first token only with
    /// `first_pair`.
    fn rows_of(&self, toks: &[Known], first_pair: bool) -> Vec<u32> {
        let mut ids = Vec::new();
        SEEN.with_borrow_mut(|seen| {
            let mark = seen.next(self.rows.len());
            collect(toks, first_pair, seen, mark, &mut ids);
        });
        ids
    }

    /// The probabilities for the new text of a message, read whole:
    /// `parts` are the ranges of `text` to read (its unquoted parts); no
    /// pair is made across two parts.
    pub fn score(&self, text: &str, parts: &[Range<usize>]) -> Scores {
        self.read(text, parts).whole()
    }

    /// Walk `parts` of `text` once, for [`Reading`]'s questions.
    pub fn read<'m>(&'m self, text: &str, parts: &[Range<usize>]) -> Reading<'m> {
        let parts = parts
            .iter()
            .map(|r| {
                // About one known token in six bytes: rarely regrown.
                let mut toks = Vec::with_capacity(r.len() / 6 + 8);
                self.walk(text, r, &mut toks);
                toks
            })
            .collect();
        Reading { model: self, parts }
    }

    /// The probabilities of a set of rows.
    fn probabilities(&self, ids: &[u32]) -> Scores {
        let mut sum = [0f32; OUTPUTS];
        for &id in ids {
            let row = &self.rows[id as usize];
            for (s, w) in sum.iter_mut().zip(row) {
                *s += w;
            }
        }
        // Counts of features stay far below f32's exact integers.
        #[allow(clippy::cast_precision_loss)]
        let norm = if ids.is_empty() {
            0.0
        } else {
            1.0 / (ids.len() as f32).sqrt()
        };
        let p = |i: usize| sigmoid(self.bias[i] + sum[i] * norm);
        Scores {
            flag: p(0),
            categories: [p(1), p(2), p(3), p(4), p(5)],
        }
    }

    /// The sentence of `parts` of `text` whose known features weigh most
    /// for `category`, among those for which `holds` is true of the
    /// stretch from the sentence to the end of the next one: the span a
    /// model hit shows. `None` when no such sentence has a feature that
    /// speaks for it.
    pub fn strongest_sentence(
        &self,
        text: &str,
        parts: &[Range<usize>],
        category: Category,
        holds: impl Fn(Range<usize>) -> bool,
    ) -> Option<Range<usize>> {
        let col = 1 + Category::ALL.iter().position(|c| *c == category)?;
        let mut best: Option<(f32, Range<usize>)> = None;
        for r in parts {
            let all = sentences(&text[r.clone()]);
            for (i, s) in all.iter().enumerate() {
                let span = r.start + s.start..r.start + s.end;
                let ids = self.known(text, std::slice::from_ref(&span));
                let w: f32 = ids.iter().map(|&id| self.rows[id as usize][col]).sum();
                if w > 0.0 && best.as_ref().is_none_or(|(b, _)| w > *b) {
                    let reach = all.get(i + 1).map_or(span.end, |n| r.start + n.end);
                    if holds(span.start..reach) {
                        best = Some((w, span));
                    }
                }
            }
        }
        best.map(|(_, span)| span)
    }
}

/// The sentences of `text`: cut after `.`, `!`, `?` followed by white
/// space, and at line ends; each trimmed, empty ones left out.
fn sentences(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let push = |s: usize, e: usize, out: &mut Vec<Range<usize>>| {
        let piece = &text[s..e];
        let lead = piece.len() - piece.trim_start().len();
        let trail = piece.len() - piece.trim_end().len();
        if lead + trail < piece.len() {
            out.push(s + lead..e - trail);
        }
    };
    for (i, &b) in bytes.iter().enumerate() {
        let end_here = b == b'\n'
            || (matches!(b, b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace));
        if end_here {
            push(start, i + 1, &mut out);
            start = i + 1;
        }
    }
    push(start, bytes.len(), &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<String> {
        let mut v = Vec::new();
        tokens(text, |t| v.push(t.to_owned()));
        v
    }

    #[test]
    fn tokens_lower_case_digit_shapes_and_symbols() {
        assert_eq!(
            toks("Call ME at (555) 123-4567, or mail jo@Gmail.com; $40 ok"),
            [
                "call", "me", "at", "000", "000", "0000", "or", "mail", "jo", "@", "gmail", "com",
                "$", "00", "ok"
            ]
        );
        assert_eq!(toks("Straße 12b"), ["straße", "00b"]);
        assert_eq!(toks("12345678901234567"), ["000000000000"]);
        assert_eq!(toks("snake_case"), ["snake", "case"]);
    }

    #[test]
    fn features_are_tokens_and_neighbour_pairs() {
        let mut v = Vec::new();
        features("Text me. Now", |f| v.push(f.to_owned()));
        assert_eq!(v, ["text", "me", "text me", "now", "me now"]);
    }

    #[test]
    fn scan_keys_are_the_keys_of_the_written_features() {
        let mut rows = String::from("bias\t0\t0\t0\t0\t0\t0\n");
        let text = "Ça va? Zahlen Sie 1.234,56 € an IBAN DE89 3704; \
                    WhatsApp +1 (555) 010-9999 or ana_b@Gmail.com — ΑΘΗΝΑ straße $5";
        let mut written = Vec::new();
        features(text, |f| written.push(f.to_owned()));
        written.sort();
        written.dedup();
        for f in &written {
            rows.push_str(f);
            rows.push_str("\t1\t0\t0\t0\t0\t0\n");
        }
        let m = Model::parse(&rows).expect("parses");
        // Every feature the scan finds is a known row, each once.
        assert_eq!(m.known(text, &[0..text.len()]).len(), written.len());
        assert!(written.contains(&"ça va".to_owned()), "{written:?}");
        assert!(written.contains(&"αθηνα straße".to_owned()), "{written:?}");
    }

    const TINY: &str = "# test\nbias\t-1\t-1\t-1\t-1\t-1\t-1\nvenmo\t3\t0\t0\t0\t0\t4\nme\t0.5\t0\t0\t0\t0\t0.5\nvenmo me\t1\t0\t0\t0\t0\t1\n";

    #[test]
    fn scores_sum_known_features_once_normalised() {
        let m = Model::parse(TINY).expect("parses");
        assert_eq!(m.len(), 3);
        let text = "venmo me, venmo me";
        let s = m.score(text, &[0..text.len()]);
        // venmo, me, "venmo me", "me venmo" (unknown): 3 known, each once.
        let n = 1.0 / 3f32.sqrt();
        assert!((s.flag - sigmoid(-1.0 + 4.5 * n)).abs() < 1e-9);
        assert!((s.of(Category::Payment) - sigmoid(-1.0 + 5.5 * n)).abs() < 1e-9);
        assert!((s.of(Category::Phone) - sigmoid(-1.0)).abs() < 1e-9);
        // No known feature: the bias alone.
        let s = m.score("hello", &[0..5]);
        assert!((s.flag - sigmoid(-1.0)).abs() < 1e-9);
    }

    #[test]
    fn pairs_are_not_made_across_parts() {
        let m = Model::parse(TINY).expect("parses");
        let joined = "venmo me";
        let with_pair = m.score(joined, &[0..8]);
        let without = m.score(joined, &[0..5, 6..8]);
        assert!(with_pair.flag > without.flag);
    }

    #[test]
    fn a_pair_counts_even_when_its_tokens_have_no_row_of_their_own() {
        let m =
            Model::parse("bias\t0\t0\t0\t0\t0\t0\ngreen app\t2\t0\t0\t0\t0\t0\n").expect("parses");
        let s = m.score("the green app", &[0..13]);
        // Known: "green", "app" (rows of zeros) and "green app": 3.
        assert!((s.flag - sigmoid(2.0 / 3f32.sqrt())).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn long_text_is_read_in_windows_that_keep_evidence_undiluted() {
        // Known neutral words, all different ("na", "nb", …, "zz").
        let words: Vec<String> = (b'n'..=b'z')
            .flat_map(|a| {
                (b'a'..=b'z').map(move |b| String::from_utf8(vec![a, b]).unwrap_or_default())
            })
            .collect();
        let mut src = TINY.to_owned();
        for w in &words {
            src.push_str(&format!("{w}\t0\t0\t0\t0\t0\t0\n"));
        }
        let m = Model::parse(&src).expect("parses");
        let short = "venmo me";
        let alone = m.score(short, &[0..short.len()]);
        let filler = words.join(" ");
        assert!(filler.len() > 4 * WINDOW);
        for padded in [format!("{short}. {filler}"), format!("{filler}. {short}")] {
            let reading = m.read(&padded, &[0..padded.len()]);
            let whole = reading.whole();
            let windows = reading.windows(whole);
            assert!(windows.len() >= 8, "{}", windows.len());
            // Every window is at most WINDOW bytes and half a window after
            // the one before.
            for pair in windows.windows(2) {
                assert!(pair[1].0 > pair[0].0 && pair[1].0 <= pair[0].0 + WINDOW / 2 + 3);
            }
            // The window that holds "venmo me" keeps far more of it than
            // the whole text does.
            let at = padded.find(short).expect("there");
            let best = windows
                .iter()
                .filter(|w| w.0 <= at && at < w.1)
                .map(|w| w.2.flag)
                .fold(0f64, f64::max);
            assert!(
                best > whole.flag + 0.04 && best < alone.flag,
                "{best} {whole:?} {alone:?}"
            );
        }
        // Up to WINDOW bytes the whole text is the one window.
        let fits = format!("{short} {}", &filler[..WINDOW - 20]);
        let reading = m.read(&fits, &[0..fits.len()]);
        let windows = reading.windows(reading.whole());
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].2, reading.whole());
    }

    #[test]
    fn marks_wrap_around_without_stale_rows() {
        let mut seen = Seen {
            marks: vec![u32::MAX; 3],
            mark: u32::MAX - 1,
        };
        assert_eq!(seen.next(3), u32::MAX);
        // The next mark wraps: every row is cleared, none looks counted.
        assert_eq!(seen.next(4), 1);
        assert_eq!(seen.marks, [0, 0, 0, 0]);
    }

    #[test]
    fn strongest_sentence_is_the_one_that_weighs_most() {
        let m = Model::parse(TINY).expect("parses");
        let text = "Thanks for the statement.\nJust venmo me the fee. See you";
        let span = m
            .strongest_sentence(text, &[0..text.len()], Category::Payment, |_| true)
            .expect("a sentence");
        assert_eq!(&text[span], "Just venmo me the fee.");
        assert_eq!(
            m.strongest_sentence(text, &[0..text.len()], Category::Phone, |_| true),
            None
        );
    }

    #[test]
    fn the_index_finds_every_row_and_nothing_else() {
        let mut keys = HashMap::with_hasher(foldhash::fast::FixedState::default());
        for row in 0..1000u32 {
            keys.insert(token_key(format!("w{row}").as_bytes()), row);
        }
        let t = Table::new(&keys);
        for (&key, &row) in &keys {
            assert_eq!(t.get(key), Some(row));
        }
        for n in 0..1000 {
            assert_eq!(t.get(token_key(format!("x{n}").as_bytes())), None);
        }
    }

    #[test]
    fn bad_weight_files_name_the_line() {
        let e = Model::parse("bias\t1\t1\t1\t1\t1\t1\nx\t1\t2\n").expect_err("short row");
        assert_eq!(e.to_string(), "model weights, line 2: 2 weights, want 6");
        let e = Model::parse("x\t1\t1\t1\t1\t1\t1\n").expect_err("no bias");
        assert!(e.to_string().contains("no bias line"));
        let e = Model::parse("bias\t1\t1\t1\t1\t1\t1\nx\t1\t1\t1\t1\t1\t1\nx\t1\t1\t1\t1\t1\t1\n")
            .expect_err("twice");
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = Model::parse("bias\t1\t1\t1\t1\t1\tz\n").expect_err("not a number");
        assert!(e.to_string().contains("\"z\""), "{e}");
    }

    #[test]
    fn the_builtin_model_parses_and_knows_features() {
        assert!(Model::builtin().len() > 1000);
    }
}
