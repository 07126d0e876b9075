//! Normalisation: the text the detector's patterns actually see.
//!
//! Receives the original message text and produces its lower-case
//! skeleton, with a map back to the original so that every hit reports the
//! span as the customer wrote it:
//!
//! - [`Normalized`]: a lower-case skeleton. Zero-width and other invisible
//!   format characters are dropped; compatibility forms are decomposed
//!   (NFKD: fullwidth `５５５`, mathematical `𝐖𝐡𝐚𝐭𝐬𝐀𝐩𝐩`, ligatures, circled
//!   digits) and combining marks removed; common look-alikes (Cyrillic `а е о
//!   р с`, Greek `ο ν α`) become their Latin twins; Unicode dashes, quotes and
//!   spaces become `-`, `'` and ` `; digits of other scripts become ASCII
//!   digits. Pure-ASCII text (most mail) takes a fast path: a lower-cased copy
//!   with no offset map at all.
//!
//! Spacing and punctuation tricks (`w h a t s a p p`, `whats-app`) are not
//! undone here: the keyword automaton reads through separators (see
//! [`automaton`](super::automaton)), and the keyword checks decide whether
//! the separators it skipped were an evasion or an accident.
//!
//! Offsets are `u32`: the scanner cuts text longer than 4 GiB (far beyond
//! any message size limit) before it gets here.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// The lower-case skeleton of a text, with a map back to the original.
#[derive(Debug, Default)]
pub(crate) struct Normalized {
    /// The skeleton. Valid UTF-8 (characters are replaced whole), mostly
    /// ASCII.
    pub bytes: Vec<u8>,
    /// For each byte of `bytes`, the offset in the original of the character
    /// it came from. Empty when the mapping is the identity (ASCII input).
    map: Vec<u32>,
}

impl Normalized {
    /// Rebuild the skeleton for `text`, reusing the buffers.
    pub fn build(&mut self, text: &str) {
        self.bytes.clear();
        self.map.clear();
        if text.is_ascii() {
            // Copied, then lower-cased in place: both loops vectorise.
            self.bytes.extend_from_slice(text.as_bytes());
            self.bytes.make_ascii_lowercase();
            return;
        }
        self.bytes.reserve(text.len());
        self.map.reserve(text.len());
        let src = text.as_bytes();
        let mut i = 0;
        while i < src.len() {
            if src[i].is_ascii() {
                // A run of ASCII, copied and lower-cased at once.
                let run = src[i..]
                    .iter()
                    .position(|b| !b.is_ascii())
                    .map_or(src.len(), |n| i + n);
                let from = self.bytes.len();
                self.bytes.extend_from_slice(&src[i..run]);
                self.bytes[from..].make_ascii_lowercase();
                self.map.extend(i as u32..run as u32);
                i = run;
                continue;
            }
            // A non-ASCII byte starts a multi-byte character: decode it.
            let Some(c) = text[i..].chars().next() else {
                break;
            };
            push_folded(&mut self.bytes, &mut self.map, c, i as u32);
            i += c.len_utf8();
        }
    }

    /// True when skeleton offsets equal original offsets.
    #[cfg(test)]
    pub fn is_identity(&self) -> bool {
        self.map.is_empty()
    }

    /// The original offset of skeleton byte `i` (`i` may equal the length).
    pub fn original_offset(&self, text: &str, i: usize) -> usize {
        if self.map.is_empty() {
            return i;
        }
        match self.map.get(i) {
            Some(&o) => o as usize,
            None => text.len(),
        }
    }

    /// Map a non-empty skeleton span `start..end` to the original text: from
    /// the start of the character behind `start` to the end of the character
    /// behind `end - 1`.
    pub fn to_original(&self, text: &str, start: usize, end: usize) -> (usize, usize) {
        if self.map.is_empty() {
            return (start, end);
        }
        if start >= end {
            let o = self.original_offset(text, start);
            return (o, o);
        }
        let s = self.original_offset(text, start);
        let last = self.original_offset(text, end - 1);
        let e = last + text[last..].chars().next().map_or(0, char::len_utf8);
        (s, e)
    }
}

/// Append the skeleton of one non-ASCII character.
fn push_folded(bytes: &mut Vec<u8>, map: &mut Vec<u32>, c: char, at: u32) {
    if is_invisible(c) {
        return;
    }
    if c.is_whitespace() {
        bytes.push(b' ');
        map.push(at);
        return;
    }
    if let Some(a) = fold(c) {
        bytes.push(a);
        map.push(at);
        return;
    }
    if c == 'ß' {
        bytes.extend_from_slice(b"ss");
        map.extend_from_slice(&[at, at]);
        return;
    }
    decompose_compatible(c, |d| {
        if is_combining_mark(d) || is_invisible(d) {
            return;
        }
        if d.is_ascii() {
            bytes.push((d as u8).to_ascii_lowercase());
            map.push(at);
        } else if d.is_whitespace() {
            bytes.push(b' ');
            map.push(at);
        } else if let Some(a) = fold(d) {
            bytes.push(a);
            map.push(at);
        } else {
            for l in d.to_lowercase() {
                let mut buf = [0u8; 4];
                for &b in l.encode_utf8(&mut buf).as_bytes() {
                    bytes.push(b);
                    map.push(at);
                }
            }
        }
    });
}

/// Characters that render as nothing: zero-width spaces and joiners, bidi
/// controls, soft hyphen, variation selectors, tags (Unicode
/// Default_Ignorable_Code_Point, the ones seen in evasion).
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// One ASCII byte for a character that looks like it or means the same:
/// Cyrillic and Greek look-alikes (the confusables seen in evasion, after
/// Unicode TR39), typographic dashes and quotes, digits of other scripts.
fn fold(c: char) -> Option<u8> {
    let a = match c {
        // Cyrillic, lower case.
        'а' | 'ӑ' | 'ӓ' => b'a',
        'е' | 'ё' | 'ѐ' | 'є' => b'e',
        'о' | 'ӧ' => b'o',
        'р' => b'p',
        'с' => b'c',
        'у' | 'ў' | 'ү' => b'y',
        'х' => b'x',
        'і' | 'ї' => b'i',
        'ј' => b'j',
        'ѕ' => b's',
        'һ' => b'h',
        'ԁ' => b'd',
        'ԛ' => b'q',
        'ԝ' => b'w',
        'к' => b'k',
        'ь' => b'b',
        'г' => b'r',
        'п' => b'n',
        'т' => b't',
        'м' => b'm',
        'в' => b'b',
        'н' => b'h',
        // Cyrillic, upper case.
        'А' => b'a',
        'В' => b'b',
        'Е' | 'Ё' => b'e',
        'Ѕ' => b's',
        'І' | 'Ї' => b'i',
        'Ј' => b'j',
        'К' => b'k',
        'М' => b'm',
        'Н' => b'h',
        'О' => b'o',
        'Р' => b'p',
        'С' => b'c',
        'Т' => b't',
        'Х' => b'x',
        'У' | 'Ү' => b'y',
        'Ԁ' => b'd',
        'Ԝ' => b'w',
        'Ԛ' => b'q',
        'ѵ' | 'Ѵ' => b'v',
        // Greek.
        'α' | 'Α' => b'a',
        'β' | 'Β' => b'b',
        'ε' | 'Ε' => b'e',
        'ζ' | 'Ζ' => b'z',
        'η' => b'n',
        'Η' => b'h',
        'ι' | 'Ι' => b'i',
        'κ' | 'Κ' => b'k',
        'Μ' => b'm',
        'ν' => b'v',
        'Ν' => b'n',
        'ο' | 'Ο' | 'σ' => b'o',
        'ρ' | 'Ρ' => b'p',
        'τ' | 'Τ' => b't',
        'υ' | 'Υ' => b'u',
        'χ' | 'Χ' => b'x',
        'γ' => b'y',
        'ω' => b'w',
        // Latin look-alikes that NFKD keeps.
        'ı' | 'ɩ' => b'i',
        'ɑ' => b'a',
        'ɡ' => b'g',
        'ȷ' => b'j',
        'ø' | 'Ø' => b'o',
        'ł' | 'Ł' => b'l',
        'đ' | 'Đ' => b'd',
        // Dashes, minus signs.
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{2043}' => b'-',
        // Quotes and apostrophes.
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{02BC}' => b'\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{00AB}' | '\u{00BB}' => b'"',
        // Dots used as separators.
        '\u{00B7}' | '\u{2022}' | '\u{2219}' | '\u{30FB}' | '\u{3002}' | '\u{FF61}' => b'.',
        // Digits of other scripts (NFKD leaves them alone).
        '\u{0660}'..='\u{0669}' => b'0' + (c as u32 - 0x0660) as u8,
        '\u{06F0}'..='\u{06F9}' => b'0' + (c as u32 - 0x06F0) as u8,
        '\u{0966}'..='\u{096F}' => b'0' + (c as u32 - 0x0966) as u8,
        '\u{09E6}'..='\u{09EF}' => b'0' + (c as u32 - 0x09E6) as u8,
        _ => return None,
    };
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skeleton(s: &str) -> String {
        let mut n = Normalized::default();
        n.build(s);
        String::from_utf8(n.bytes).expect("skeleton is UTF-8")
    }

    #[test]
    fn ascii_is_lower_cased_with_an_identity_map() {
        let mut n = Normalized::default();
        n.build("WhatsApp Me");
        assert_eq!(n.bytes, b"whatsapp me");
        assert!(n.is_identity());
        assert_eq!(n.to_original("WhatsApp Me", 0, 8), (0, 8));
    }

    #[test]
    fn zero_width_characters_disappear_and_offsets_still_point_at_the_original() {
        let text = "call: Whats\u{200B}App\u{FEFF}!";
        let mut n = Normalized::default();
        n.build(text);
        assert_eq!(n.bytes, b"call: whatsapp!");
        let (s, e) = n.to_original(text, 6, 14);
        assert_eq!(&text[s..e], "Whats\u{200B}App");
    }

    #[test]
    fn cyrillic_and_greek_look_alikes_become_latin() {
        // а, е, о, р, с are Cyrillic; ο and ν are Greek.
        assert_eq!(skeleton("Tеlеgrаm"), "telegram");
        assert_eq!(skeleton("ѴΕΝΜΟ"), "venmo");
        assert_eq!(skeleton("Hauptstraße"), "hauptstrasse");
        assert_eq!(skeleton("νenmο"), "venmo");
        assert_eq!(skeleton("WhаtsАрр"), "whatsapp");
        assert_eq!(skeleton("ѕkуре"), "skype");
    }

    #[test]
    fn fullwidth_and_mathematical_forms_decompose() {
        assert_eq!(skeleton("５５５－１２３－４５６７"), "555-123-4567");
        assert_eq!(skeleton("𝐖𝐡𝐚𝐭𝐬𝐀𝐩𝐩"), "whatsapp");
        assert_eq!(skeleton("ｊｏｈｎ＠ｇｍａｉｌ．ｃｏｍ"), "john@gmail.com");
        assert_eq!(skeleton("①②③"), "123");
    }

    #[test]
    fn accents_dashes_quotes_and_spaces_fold() {
        assert_eq!(
            skeleton("Café — “ok” it’s\u{00A0}fine"),
            "cafe - \"ok\" it's fine"
        );
        assert_eq!(skeleton("٥٥٥ ۱۲۳"), "555 123");
    }

    #[test]
    fn one_original_character_may_become_several_bytes() {
        let text = "ﬁle ok";
        let mut n = Normalized::default();
        n.build(text);
        assert_eq!(n.bytes, b"file ok");
        // "fi" both map to the ligature; "le" follow it.
        assert_eq!(n.to_original(text, 1, 4), (0, 5));
    }
}
