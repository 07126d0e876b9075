//! A keyword automaton that reads through separators.
//!
//! Aho-Corasick over the letters and digits of the skeleton only: every
//! other byte (space, punctuation, a character of another script) leaves
//! the state unchanged, so `w h a t s a p p`, `whats-app` and `W.h.a.t.s.A.p.p`
//! all walk the same path as `whatsapp`. The same loop notes where the
//! structured rules should look (tokens with digits, number words, `@`, the
//! word `at`), so the text is read once for both.
//!
//! Why not the aho-corasick crate: it would need a copy of the text with the
//! separators removed plus a position map back, which costs more than the
//! search itself. A dense table over 37 byte classes (a separator class,
//! `a`-`z`, `0`-`9`) is small for a few hundred keys and needs one load per
//! byte. Matches are reported overlapping (every key ending at every
//! position), like a standard Aho-Corasick automaton.

/// Number of byte classes: 0 for separators, 1..=26 letters, 27..=36 digits.
const CLASSES: usize = 37;

/// Byte class of each byte of the skeleton.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() {
            c - b'a' + 1
        } else if c.is_ascii_uppercase() {
            c - b'A' + 1
        } else if c.is_ascii_digit() {
            c - b'0' + 27
        } else {
            0
        };
        b += 1;
    }
    t
};

/// The class of `b` (0: a separator).
pub(crate) fn class(b: u8) -> u8 {
    CLASS[usize::from(b)]
}

/// Too many keys: the state numbers would not fit in 16 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the keyword lists have more than {max} letters and digits in all", max = u16::MAX)]
pub struct TooLarge;

/// What the walk saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Key `.0` ends at skeleton offset `.1` (exclusive).
    Key(u32, usize),
    /// A run of letters and digits `.0..​.1` with at least one digit (`.2`
    /// is always true; runs of letters only are not reported).
    Token(usize, usize, bool),
    /// An `@` at this offset.
    At(usize),
}

/// The compiled automaton.
#[derive(Debug, Clone)]
pub(crate) struct Automaton {
    /// `delta[row + class]`: the row of the next state, where a state's row
    /// is `state * CLASSES` (class 0 unused). Rows rather than state
    /// numbers spare the walk a multiplication per byte.
    delta: Vec<u32>,
    /// Rows from this one on are of states with outputs (states are
    /// numbered so, to make the per-byte test one comparison).
    first_output: usize,
    /// Per state: `outputs[out_start[s]..out_start[s + 1]]` are the keys
    /// (indexes into the key list) that end in state `s`.
    out_start: Vec<u32>,
    outputs: Vec<u32>,
    /// Length of each key, in letters and digits.
    key_len: Vec<u16>,
}

impl Automaton {
    /// Build from keys made of ASCII letters and digits only (others are
    /// skipped, as they would be in the text).
    pub fn new(keys: &[Vec<u8>]) -> Result<Automaton, TooLarge> {
        // The trie: children by class, outputs per node.
        let mut children: Vec<[u16; CLASSES]> = vec![[0; CLASSES]];
        let mut own: Vec<Vec<u32>> = vec![Vec::new()];
        let mut key_len = Vec::with_capacity(keys.len());
        for (k, key) in keys.iter().enumerate() {
            let mut s = 0usize;
            let mut len = 0u16;
            for &b in key {
                let c = usize::from(class(b));
                if c == 0 {
                    continue;
                }
                len = len.saturating_add(1);
                let next = children[s][c];
                s = if next != 0 {
                    usize::from(next)
                } else {
                    let id = u16::try_from(children.len()).map_err(|_| TooLarge)?;
                    children.push([0; CLASSES]);
                    own.push(Vec::new());
                    children[s][c] = id;
                    usize::from(id)
                };
            }
            own[s].push(u32::try_from(k).map_err(|_| TooLarge)?);
            key_len.push(len);
        }
        // Breadth-first: failure links, full transitions, inherited outputs.
        let n = children.len();
        let mut fail = vec![0u16; n];
        let mut delta = vec![0u16; n * CLASSES];
        let mut outs: Vec<Vec<u32>> = own.clone();
        let mut queue = std::collections::VecDeque::new();
        // States in breadth-first order, the root first.
        let mut by_depth = Vec::with_capacity(n);
        by_depth.push(0usize);
        for c in 1..CLASSES {
            let child = children[0][c];
            delta[c] = child;
            if child != 0 {
                queue.push_back(child);
            }
        }
        while let Some(s) = queue.pop_front() {
            let s = usize::from(s);
            by_depth.push(s);
            let f = usize::from(fail[s]);
            if f != s {
                let inherited = outs[f].clone();
                outs[s].extend(inherited);
            }
            for c in 1..CLASSES {
                let child = children[s][c];
                if child != 0 {
                    fail[usize::from(child)] = delta[f * CLASSES + c];
                    delta[s * CLASSES + c] = child;
                    queue.push_back(child);
                } else {
                    delta[s * CLASSES + c] = delta[f * CLASSES + c];
                }
            }
        }
        // Renumber: states without outputs first (the root stays 0: keys
        // are never empty), then those with outputs; each group shallowest
        // first, so the rows the walk visits most share a few cache lines.
        let mut order: Vec<usize> = by_depth
            .iter()
            .copied()
            .filter(|&s| outs[s].is_empty())
            .collect();
        let first_output = order.len();
        order.extend(by_depth.iter().copied().filter(|&s| !outs[s].is_empty()));
        let mut new_id = vec![0u16; n];
        for (new, &old) in order.iter().enumerate() {
            new_id[old] = u16::try_from(new).map_err(|_| TooLarge)?;
        }
        let mut renumbered = vec![0u32; n * CLASSES];
        let mut out_start = Vec::with_capacity(n + 1);
        let mut outputs = Vec::new();
        for (new, &old) in order.iter().enumerate() {
            for c in 1..CLASSES {
                let next = usize::from(new_id[usize::from(delta[old * CLASSES + c])]);
                renumbered[new * CLASSES + c] =
                    u32::try_from(next * CLASSES).map_err(|_| TooLarge)?;
            }
            out_start.push(u32::try_from(outputs.len()).map_err(|_| TooLarge)?);
            outputs.extend_from_slice(&outs[old]);
        }
        out_start.push(u32::try_from(outputs.len()).map_err(|_| TooLarge)?);
        Ok(Automaton {
            delta: renumbered,
            first_output: first_output * CLASSES,
            out_start,
            outputs,
            key_len,
        })
    }

    /// The length of key `k` in letters and digits.
    pub fn key_len(&self, k: u32) -> usize {
        usize::from(self.key_len[k as usize])
    }

    /// Report the keys that end in the state of `row` (one with outputs)
    /// at `end`. Out of line: most bytes end no key, and the walk's loop
    /// keeps its registers.
    #[cold]
    #[inline(never)]
    fn emit_keys(&self, row: usize, end: usize, on: &mut impl FnMut(Step)) {
        let state = row / CLASSES;
        let (a, z) = (self.out_start[state], self.out_start[state + 1]);
        for &k in &self.outputs[a as usize..z as usize] {
            on(Step::Key(k, end));
        }
    }

    /// Walk `norm`, telling `on` every [`Step`]. An `@` between two letters
    /// reads as an `a` for the keys ("wh@tsapp").
    pub fn walk(&self, norm: &[u8], mut on: impl FnMut(Step)) {
        let delta = &self.delta[..];
        let first_output = self.first_output;
        let n = norm.len();
        let mut row = 0usize;
        let mut i = 0;
        while i < n {
            let b = norm[i];
            let mut c = usize::from(CLASS[usize::from(b)]);
            if c == 0 {
                if b == b'@' {
                    on(Step::At(i));
                    let between_letters = i > 0
                        && norm[i - 1].is_ascii_alphabetic()
                        && norm.get(i + 1).is_some_and(u8::is_ascii_alphabetic);
                    if between_letters {
                        row = delta[row + 1] as usize;
                        if row >= first_output {
                            self.emit_keys(row, i + 1, &mut on);
                        }
                    }
                }
                i += 1;
                continue;
            }
            // A run of letters and digits, read in one tight loop; it is a
            // token worth reporting only if it holds a digit. The same steps
            // in the same order as reading byte by byte: a run ends only at
            // a separator or the end of the text.
            let start = i;
            let mut digit = c >= 27;
            // The inner loop runs over letters (classes 1 to 26) only, with
            // no flag to keep; a digit goes round the outer one.
            'run: loop {
                loop {
                    row = delta[row + c] as usize;
                    if row >= first_output {
                        self.emit_keys(row, i + 1, &mut on);
                    }
                    i += 1;
                    let Some(&b) = norm.get(i) else {
                        break 'run;
                    };
                    c = usize::from(CLASS[usize::from(b)]);
                    if c.wrapping_sub(1) >= 26 {
                        break;
                    }
                }
                if c == 0 {
                    break;
                }
                digit = true;
            }
            if digit {
                on(Step::Token(start, i, true));
            }
        }
    }
}

/// The skeleton offsets of the `len` letters and digits (and letter-flanked
/// `@`) that end at `end`, into `out`; false if the text runs out first.
pub(crate) fn positions_back(norm: &[u8], end: usize, len: usize, out: &mut Vec<u32>) -> bool {
    out.clear();
    let mut i = end;
    while out.len() < len {
        if i == 0 {
            return false;
        }
        i -= 1;
        let b = norm[i];
        let counts = class(b) != 0
            || (b == b'@'
                && i > 0
                && norm[i - 1].is_ascii_alphabetic()
                && norm.get(i + 1).is_some_and(u8::is_ascii_alphabetic));
        if counts {
            out.push(i as u32);
        }
    }
    out.reverse();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(keys: &[&str], text: &str) -> Vec<(String, usize)> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        let a = Automaton::new(&keys).expect("builds");
        let mut out = Vec::new();
        a.walk(text.as_bytes(), |step| {
            if let Step::Key(k, end) = step {
                out.push((String::from_utf8_lossy(&keys[k as usize]).into_owned(), end));
            }
        });
        out
    }

    #[test]
    fn keys_match_through_separators_and_overlapping() {
        assert_eq!(
            matches(&["whatsapp", "app", "sapp"], "a w h-a.t s a p p!"),
            [
                ("whatsapp".into(), 17),
                ("sapp".into(), 17),
                ("app".into(), 17)
            ]
        );
        assert_eq!(
            matches(&["he", "she", "his", "hers"], "ushers"),
            [("she".into(), 4), ("he".into(), 4), ("hers".into(), 6)]
        );
        assert_eq!(matches(&["whatsapp"], "wh@tsapp"), [("whatsapp".into(), 8)]);
        assert!(matches(&["venmo"], "ven mx").is_empty());
    }

    #[test]
    fn digit_tokens_and_at_signs_are_reported() {
        let a = Automaton::new(&[b"x".to_vec()]).expect("builds");
        let mut tokens = Vec::new();
        let mut ats = Vec::new();
        a.walk(b"call 555-1234 jo@x.com", |step| match step {
            Step::Key(..) => {}
            Step::Token(s, e, d) => tokens.push((s, e, d)),
            Step::At(p) => ats.push(p),
        });
        assert_eq!(tokens, [(5, 8, true), (9, 13, true)]);
        assert_eq!(ats, [16]);
    }

    #[test]
    fn positions_back_skip_separators() {
        let mut out = Vec::new();
        assert!(positions_back(b"w h-ats", 7, 5, &mut out));
        assert_eq!(out, [0, 2, 4, 5, 6]);
        assert!(!positions_back(b"ab", 2, 3, &mut out));
    }
}
