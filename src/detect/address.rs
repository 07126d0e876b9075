//! Street addresses: house number, street name, suffix.
//!
//! Receives the position of a short number in the skeleton and reads
//! forward: one to four name words (`Main`, `N. Oak`, `45th`), then a street
//! suffix from the configured list (`Street`, `St`, `Ave`, `Blvd`…),
//! optionally a unit (`Apt 4B`, `Suite 200`, `#12`). Suffixes that are also
//! ordinary words (`Way`, `Place`) count only when capitalised in the
//! original. Name words may not be function words or units ("5 more days
//! on the road" is no address), and the number may not be a reference
//! ("invoice 123 …"). PO boxes and other countries' forms are configured
//! patterns.

use super::patterns::{AddressKey, Compiled};
use super::words::{LINE_STOPS, is_word_byte, words_before};

fn token_end(norm: &[u8], mut i: usize) -> usize {
    while i < norm.len() && norm[i].is_ascii_alphanumeric() {
        i += 1;
    }
    i
}

/// A house number: 1–6 digits, optionally one letter (`221b`).
fn is_house_number(tok: &[u8]) -> bool {
    let digits = tok.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=6).contains(&digits)
        && (digits == tok.len() || (digits + 1 == tok.len() && tok[digits].is_ascii_alphabetic()))
        && tok[0] != b'0'
}

/// `45th`, `1st`, `2nd`, `3rd`.
fn is_ordinal(tok: &[u8]) -> bool {
    let digits = tok.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && digits <= 3 && matches!(&tok[digits..], b"st" | b"nd" | b"rd" | b"th")
}

/// The separator after a token inside an address: spaces, optionally after
/// a `.` (abbreviations). Returns the next token's start.
fn next_word(norm: &[u8], end: usize) -> Option<usize> {
    let mut j = end;
    if j < norm.len() && norm[j] == b'.' {
        j += 1;
    }
    let s = j;
    while j < norm.len() && norm[j] == b' ' && j - s < 3 {
        j += 1;
    }
    (j > s && j < norm.len() && norm[j].is_ascii_alphanumeric()).then_some(j)
}

/// The street address starting at the number token `start..end`, as a
/// skeleton span, unless it is the platform's own.
pub(crate) fn street_at(
    c: &Compiled,
    text: &str,
    orig_at: impl Fn(usize) -> usize,
    norm: &[u8],
    start: usize,
    end: usize,
) -> Option<(usize, usize)> {
    let number = &norm[start..end];
    if !is_house_number(number) {
        return None;
    }
    // Australian "unit/number" ("3/22 Beach Rd"): the address starts at
    // the unit.
    let unit = unit_before_slash(norm, start);
    if unit.is_none()
        && start > 0
        && matches!(
            norm[start - 1],
            b'#' | b'$' | b'.' | b'-' | b'/' | b':' | b'+'
        )
    {
        return None;
    }
    let start = unit.unwrap_or(start);
    // "Invoice 123 …"; but "Suite 200, 123 Main St" is fine: only the word
    // right before, and not across a comma.
    let before = &norm[..start];
    let trimmed = before.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
    // "Unit 4/19 Marine Pde": the word names the unit before the slash.
    if unit.is_none()
        && (trimmed == 0 || before[trimmed - 1] != b',')
        && words_before(norm, start, LINE_STOPS, 1).any(|w| c.reference_words.contains(w))
    {
        return None;
    }
    street_from(c, text, orig_at, norm, start, end, number)
}

/// A British postcode's outward part (`ls12`, `sy21`, `sn2`, `ec1a`): one
/// or two letters, a digit, then a letter or digit at most.
fn is_outward_code(tok: &[u8]) -> bool {
    let letters = tok.iter().take_while(|b| b.is_ascii_lowercase()).count();
    let rest = &tok[letters..];
    (1..=2).contains(&letters)
        && (1..=2).contains(&rest.len())
        && rest[0].is_ascii_digit()
        && rest[1..].iter().all(u8::is_ascii_alphanumeric)
}

/// How far back from a postcode the place's name and lines are read.
const POSTCODE_REACH: usize = 100;

/// A British address that ends in a postcode at the token `start..end`
/// ("Pen-y-Bryn Farm, Llanfair Caereinion, Powys SY21 0BN", "Unit 4,
/// Brookfield Business Park, Leeds LS12 6EN"): farms, units and named
/// houses often have no house number. The span starts after the sentence
/// break, colon or dash before it, or after "at", "is" or "to" (so the
/// owner rules read the words before), at most [`POSTCODE_REACH`] bytes
/// back.
pub(crate) fn uk_postcode_at(norm: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    if !is_outward_code(&norm[start..end]) || norm.get(end) != Some(&b' ') {
        return None;
    }
    let inward = end + 1;
    let stop = token_end(norm, inward);
    let code = &norm[inward..stop];
    if !(code.len() == 3
        && code[0].is_ascii_digit()
        && code[1..].iter().all(u8::is_ascii_lowercase))
    {
        return None;
    }
    if stop < norm.len() && is_word_byte(norm[stop]) {
        return None;
    }
    // A line of the place's name before the code: "Leeds LS12 6EN", not a
    // bare code ("postcode SN2 8BA").
    let reach = start.saturating_sub(POSTCODE_REACH);
    let mut from = reach;
    let mut i = start;
    while i > reach {
        let b = norm[i - 1];
        if matches!(b, b'.' | b'!' | b'?' | b'\n' | b':' | b';' | b'(' | b'"') {
            from = i;
            break;
        }
        if i >= reach + 4 && matches!(&norm[i - 4..i], b" at " | b" is " | b" to " | b" - ") {
            from = i;
            break;
        }
        i -= 1;
    }
    while from < start && norm[from] == b' ' {
        from += 1;
    }
    (from + 3 < start).then_some((from, stop))
}

/// The start of a unit number right before `/` at `start` ("3/22"): one
/// to four digits after a space or the start, not part of a date or a
/// fraction ("3/22/2024" has its own slash after).
fn unit_before_slash(norm: &[u8], start: usize) -> Option<usize> {
    if start < 2 || norm[start - 1] != b'/' {
        return None;
    }
    let digits = norm[..start - 1]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let unit = start - 1 - digits;
    let after = token_end(norm, start);
    ((1..=4).contains(&digits)
        && (unit == 0 || norm[unit - 1] == b' ')
        && norm.get(after) == Some(&b' '))
    .then_some(unit)
}

/// Words for ten to ninety and the number each stands for: the words of a
/// house number written in words (twenty to ninety start one).
pub(crate) const TENS_WORDS: &[(&[u8], u32)] = &[
    (b"ten", 10),
    (b"eleven", 11),
    (b"twelve", 12),
    (b"thirteen", 13),
    (b"fourteen", 14),
    (b"fifteen", 15),
    (b"sixteen", 16),
    (b"seventeen", 17),
    (b"eighteen", 18),
    (b"nineteen", 19),
    (b"twenty", 20),
    (b"thirty", 30),
    (b"forty", 40),
    (b"fifty", 50),
    (b"sixty", 60),
    (b"seventy", 70),
    (b"eighty", 80),
    (b"ninety", 90),
];

/// The street address whose house number is written in words, starting at
/// the tens word at `start` ("twenty-two Maple Street", "twenty-two
/// seventeen Maple Court"): at most two numbers, each a tens word and
/// optionally a unit word joined by a space or a dash.
pub(crate) fn spelled_street_at(
    c: &Compiled,
    text: &str,
    orig_at: impl Fn(usize) -> usize,
    norm: &[u8],
    start: usize,
) -> Option<(usize, usize)> {
    if start > 0 && is_word_byte(norm[start - 1]) {
        return None;
    }
    let mut pos = start;
    let mut numbers = 0;
    let mut end = start;
    while numbers < 2 {
        let we = token_end(norm, pos);
        if !TENS_WORDS.iter().any(|&(w, _)| w == &norm[pos..we]) {
            break;
        }
        end = we;
        numbers += 1;
        // "twenty-two", "twenty two": the unit joined to its tens.
        let mut j = we;
        if j < norm.len() && matches!(norm[j], b'-' | b' ') {
            j += 1;
            let ue = token_end(norm, j);
            // One to nine: a digit word other than zero.
            if super::phone::digit_word(&norm[j..ue]).is_some_and(|d| d != b'0') {
                end = ue;
            }
        }
        match next_word(norm, end) {
            Some(n) => pos = n,
            None => break,
        }
    }
    if numbers == 0 {
        return None;
    }
    street_from(c, text, orig_at, norm, start, end, b"")
}

/// The street name and suffix after the house number at `start..end`.
fn street_from(
    c: &Compiled,
    text: &str,
    orig_at: impl Fn(usize) -> usize,
    norm: &[u8],
    start: usize,
    end: usize,
    number: &[u8],
) -> Option<(usize, usize)> {
    let mut names = 0;
    let mut first_name: Option<&[u8]> = None;
    let mut pos = end;
    for _ in 0..5 {
        let ws = next_word(norm, pos)?;
        let we = token_end(norm, ws);
        let w = &norm[ws..we];
        let plain_suffix = c.street_suffixes.contains(w);
        let cap_suffix = c.street_suffixes_capitalised.contains(w)
            && text[orig_at(ws)..]
                .chars()
                .next()
                .is_some_and(char::is_uppercase);
        // "1585 Broadway", "901 N Broadway": a street named without a
        // suffix, after a compass letter at most.
        let whole = (names == 0 || (names == 1 && first_name.is_some_and(is_compass)))
            && SUFFIXLESS_STREETS.contains(&w)
            && text[orig_at(ws)..]
                .chars()
                .next()
                .is_some_and(char::is_uppercase);
        if whole || (names > 0 && (plain_suffix || cap_suffix)) {
            let mut e = we;
            // The dot of an abbreviation ("St."), not a full stop.
            if e < norm.len() && norm[e] == b'.' && w.len() <= 4 {
                e += 1;
            }
            let key = AddressKey {
                number: number.to_vec(),
                first_word: first_name.unwrap_or_default().to_vec(),
            };
            if c.platform_addresses.contains(&key) {
                return None;
            }
            return Some((start, unit_after(norm, e)));
        }
        let is_name = (w.iter().all(u8::is_ascii_alphabetic) && !c.street_stopwords.contains(w))
            || is_ordinal(w);
        if !is_name {
            return None;
        }
        if first_name.is_none() {
            first_name = Some(w);
        }
        names += 1;
        if names > 4 {
            return None;
        }
        pos = we;
    }
    None
}

/// A compass word before a street's name ("N Broadway", "West Broadway").
fn is_compass(w: &[u8]) -> bool {
    matches!(
        w,
        b"n" | b"s" | b"e" | b"w" | b"north" | b"south" | b"east" | b"west"
    )
}

/// Streets named without a suffix, counted when capitalised right after a
/// house number.
const SUFFIXLESS_STREETS: &[&[u8]] = &[b"broadway", b"kingsway", b"boardwalk"];

/// Extend past a unit: `, Apt 4B`, ` Suite 200`, ` #12`, ` Unit 5`.
fn unit_after(norm: &[u8], end: usize) -> usize {
    let mut j = end;
    if j < norm.len() && norm[j] == b',' {
        j += 1;
    }
    while j < norm.len() && norm[j] == b' ' && j - end < 3 {
        j += 1;
    }
    let rest = &norm[j..];
    for unit in [
        &b"apt"[..],
        b"apartment",
        b"suite",
        b"ste",
        b"unit",
        b"#",
        b"fl",
        b"floor",
    ] {
        if rest.starts_with(unit) {
            let mut k = j + unit.len();
            if unit != b"#" && k < norm.len() && norm[k].is_ascii_alphanumeric() {
                continue;
            }
            if k < norm.len() && norm[k] == b'.' {
                k += 1;
            }
            while k < norm.len() && norm[k] == b' ' && k - j < unit.len() + 3 {
                k += 1;
            }
            let e = token_end(norm, k);
            if e > k {
                return e;
            }
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use crate::detect::{Category, Detector, ScanContext};

    /// The addresses found in `text`, offered to the reader ("mail it to"),
    /// so the owner rules (see `owner.rs`) let every parsed address count.
    fn addresses(text: &str) -> Vec<String> {
        let d = Detector::new(&crate::detect::rules_only()).expect("defaults compile");
        let offered = format!("Please mail it to me here. {text}");
        d.scan(&offered, &ScanContext::default())
            .hits
            .into_iter()
            .filter(|h| h.category == Category::Address)
            .map(|h| h.text)
            .collect()
    }

    #[test]
    fn us_street_addresses() {
        assert_eq!(
            addresses("I live at 742 Evergreen Terrace, Springfield"),
            ["742 Evergreen Terrace"]
        );
        assert_eq!(
            addresses("mail it to 1600 Pennsylvania Ave NW"),
            ["1600 Pennsylvania Ave"]
        );
        assert_eq!(addresses("221B Baker St."), ["221B Baker St."]);
        assert_eq!(
            addresses("123 N. Main Street, Apt 4B"),
            ["123 N. Main Street, Apt 4B"]
        );
        assert_eq!(addresses("350 W 45th St"), ["350 W 45th St"]);
        assert_eq!(addresses("12 Oak Tree Way"), ["12 Oak Tree Way"]);
        assert_eq!(addresses("come by 88 main st"), ["88 main st"]);
    }

    #[test]
    fn po_boxes_and_other_countries() {
        assert_eq!(addresses("P.O. Box 4521"), ["P.O. Box 4521"]);
        assert_eq!(addresses("PO box 12"), ["PO box 12"]);
        assert_eq!(addresses("Hauptstraße 12, Berlin"), ["Hauptstraße 12"]);
        assert_eq!(addresses("au 14 rue de la Paix"), ["14 rue de la Paix"]);
        assert_eq!(
            addresses("Berliner Straße 88, 60311 Frankfurt"),
            ["Berliner Straße 88"]
        );
        assert_eq!(
            addresses("Kurfürstendamm 120, Berlin"),
            ["Kurfürstendamm 120"]
        );
        assert_eq!(addresses("4400 Route 9, Freehold NJ"), ["4400 Route 9"]);
        assert_eq!(addresses("77 State Route 9"), ["77 State Route 9"]);
        assert!(
            addresses("Paseo de la Reforma 245, Col. Juárez")
                .contains(&"245, Col. Juárez".to_owned())
        );
    }

    #[test]
    fn numbers_followed_by_words_are_usually_not_addresses() {
        for t in [
            "5 more days on the road",
            "we have 3 court dates",
            "it's 100 percent of the way",
            "invoice 123 Main Street",
            "2 ways to pay",
            "I paid 500 on the way home",
            "3 appointments with Dr Smith",
            "give me 2 days to drive over",
        ] {
            assert!(addresses(t).is_empty(), "{t}: {:?}", addresses(t));
        }
    }

    #[test]
    fn the_platform_address_is_not_evidence() {
        let mut cfg = crate::detect::rules_only();
        cfg.allow.platform_addresses = vec!["1200 Market Street, Suite 400".into()];
        let d = Detector::new(&cfg).expect("compiles");
        assert!(
            d.scan("Our office: 1200 Market St", &ScanContext::default())
                .hits
                .is_empty()
        );
    }
}
