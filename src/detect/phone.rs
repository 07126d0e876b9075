//! Phone numbers: runs of digit groups (or spelled-out digits) and what
//! they are.
//!
//! Receives a position in the skeleton where a digit group or a number word
//! starts, reads the whole run (`+1 (555) 123-4567`, `five five five one two
//! three…`), and classifies it. A run is a phone number when its shape says
//! so (NANP 3-3-4 grouping with a valid area code, a `+` or `00` with an
//! E.164 length, a national trunk `0`, digits spelled as words); it is not
//! when the words before it make it a reference (order, invoice, tracking,
//! ticket…), when it is part of a longer code (`1Z 999 AA1 01 2345 6784`),
//! a date (`03/15/2024`), a price (`$1,250.00`) or a URL path, or when it is
//! one of the platform's own numbers.
//!
//! The same run also feeds the payment checks for card, routing and
//! account numbers (see [`money`](super::money)).

use super::patterns::Compiled;
use super::words::{LINE_STOPS, is_word_byte, words_before};

/// Most digits kept from a run; longer runs are read to their end but are
/// never phone numbers (E.164 has at most 15).
const MAX_DIGITS: usize = 24;
const MAX_GROUPS: usize = 12;

/// A run of digit groups as read from the skeleton.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// Start in the skeleton, including a leading `+` or `(`.
    pub start: usize,
    /// End in the skeleton (after the last digit or number word).
    pub end: usize,
    digits: [u8; MAX_DIGITS],
    /// Number of digits read (may exceed what is kept).
    pub len: usize,
    groups: [u8; MAX_GROUPS],
    ngroups: usize,
    /// A `+` before the first digit.
    pub plus: bool,
    /// Digits that came from words ("five").
    pub word_digits: usize,
    /// Separators seen between groups.
    dash_or_dot: bool,
    /// The run ran into a letters-and-digits token (`aa1`): a code.
    pub glued_to_code: bool,
    /// Only `/` separated groups (dates, fractions): never a phone.
    slash: bool,
}

impl Run {
    /// The digits read (up to [`MAX_DIGITS`]).
    pub fn digits(&self) -> &[u8] {
        &self.digits[..self.len.min(MAX_DIGITS)]
    }

    /// Group lengths (digit groups only).
    pub fn groups(&self) -> &[u8] {
        &self.groups[..self.ngroups]
    }

    fn push_digit(&mut self, d: u8) {
        if self.len < MAX_DIGITS {
            self.digits[self.len] = d;
        }
        self.len += 1;
    }

    fn push_group(&mut self, len: usize) {
        if self.ngroups < MAX_GROUPS {
            self.groups[self.ngroups] = u8::try_from(len).unwrap_or(u8::MAX);
            self.ngroups += 1;
        }
    }
}

/// The digit a number word stands for.
pub(crate) fn digit_word(w: &[u8]) -> Option<u8> {
    Some(match w {
        b"zero" => b'0',
        b"one" => b'1',
        b"two" => b'2',
        b"three" => b'3',
        b"four" => b'4',
        b"five" => b'5',
        b"six" => b'6',
        b"seven" => b'7',
        b"eight" => b'8',
        b"nine" => b'9',
        _ => return None,
    })
}

/// A group of digits, possibly with one letter standing in for a digit
/// (`8o1`, `o199`, `9i7`: O for zero, I or l for one).
fn digit_group(tok: &[u8]) -> bool {
    let digits = tok.iter().filter(|b| b.is_ascii_digit()).count();
    let lookalikes = tok
        .iter()
        .filter(|b| matches!(b, b'o' | b'i' | b'l'))
        .count();
    digits == tok.len() || (digits >= 2 && lookalikes == 1 && digits + lookalikes == tok.len())
}

fn token_end(norm: &[u8], mut i: usize) -> usize {
    while i < norm.len() && norm[i].is_ascii_alphanumeric() {
        i += 1;
    }
    i
}

/// Read the run that starts with the token at `start`.
pub(crate) fn read_run(norm: &[u8], start: usize) -> Run {
    let mut run = Run {
        start,
        end: start,
        digits: [0; MAX_DIGITS],
        len: 0,
        groups: [0; MAX_GROUPS],
        ngroups: 0,
        plus: false,
        word_digits: 0,
        dash_or_dot: false,
        glued_to_code: false,
        slash: false,
    };
    // A leading "+", "(", or "+(".
    let mut s = start;
    if s > 0 && norm[s - 1] == b'(' {
        s -= 1;
    }
    if s > 0 && norm[s - 1] == b'+' {
        s -= 1;
        run.plus = true;
    }
    run.start = s;
    let mut i = start;
    let mut prev_was_word = false;
    let mut multiplier = 1;
    let mut words_only_next = false;
    loop {
        let end = token_end(norm, i);
        let tok = &norm[i..end];
        if tok.is_empty() {
            break;
        }
        if digit_group(tok) {
            // After a comma only words go on, except in a run that mixes
            // words and figures, where a short group is one more piece of
            // the number read aloud ("9 seven 0, five five five, 01 eight 2").
            if words_only_next && (run.word_digits == 0 || tok.len() > 2) {
                break;
            }
            for &d in tok {
                run.push_digit(match d {
                    b'o' => b'0',
                    b'i' | b'l' => b'1',
                    d => d,
                });
            }
            run.push_group(tok.len());
            prev_was_word = false;
        } else if let Some(d) = digit_word(tok) {
            for _ in 0..multiplier {
                run.push_digit(d);
            }
            multiplier = 1;
            run.word_digits += 1;
            prev_was_word = true;
        } else if (tok == b"oh" || tok == b"o")
            && (prev_was_word
                || multiplier > 1
                || (run.word_digits > 0 && digit_word(next_token(norm, end)).is_some()))
        {
            // After a group in figures only inside a number read aloud
            // ("two five one - 555 - oh eight seven seven").
            // British English reads zero as "oh", also doubled ("double oh").
            for _ in 0..multiplier {
                run.push_digit(b'0');
            }
            multiplier = 1;
            run.word_digits += 1;
            prev_was_word = true;
        } else if tok == b"hundred" && prev_was_word && multiplier == 1 && run.len >= 2 {
            // A British reading of a group: "oh-seven-seven-double-oh, nine
            // hundred, three four seven"; only inside a number already
            // under way, so amounts ("three hundred, four hundred") are not
            // read as one.
            run.push_digit(b'0');
            run.push_digit(b'0');
            run.word_digits += 1;
            prev_was_word = true;
        } else if (tok == b"double" || tok == b"triple")
            && (digit_word(next_token(norm, end)).is_some()
                || matches!(next_token(norm, end), b"oh" | b"o"))
        {
            multiplier = if tok == b"double" { 2 } else { 3 };
        } else {
            // A letters-and-digits token right after a group: part of a code.
            if run.len > 0 && tok.iter().any(u8::is_ascii_digit) {
                run.glued_to_code = true;
            }
            break;
        }
        run.end = end;
        // The separator to the next group.
        let mut j = end;
        let mut comma = false;
        let mut slash = false;
        while j < norm.len()
            && j - end <= 3
            && matches!(
                norm[j],
                b' ' | b'.' | b'-' | b'(' | b')' | b',' | b'/' | b'\t'
            )
        {
            match norm[j] {
                b',' => comma = true,
                b'/' => slash = true,
                b'-' | b'.' => run.dash_or_dot = true,
                _ => {}
            }
            j += 1;
        }
        // A number wrapped at the end of a line ("call me, 415 555\n0193"):
        // one line break goes on after the first groups in figures, before
        // the number is whole.
        if j < norm.len()
            && norm[j] == b'\n'
            && (3..=6).contains(&run.len)
            && run.word_digits == 0
            && norm.get(j + 1).is_some_and(u8::is_ascii_digit)
        {
            j += 1;
        }
        if j == end || j - end > 4 || j >= norm.len() || !norm[j].is_ascii_alphanumeric() {
            break;
        }
        // Commas and slashes separate spelled digits ("five five five, one
        // two…"), but thousands ("1,250") and dates ("3/15") in figures;
        // a comma after a short group of a run that mixes words and
        // figures is still a pause in the reading.
        let mixed_pause = comma && !slash && run.word_digits > 0 && tok.len() <= 2;
        if (comma || slash) && !prev_was_word && !mixed_pause {
            run.slash |= slash;
            break;
        }
        words_only_next = comma || slash;
        i = j;
    }
    run
}

/// The token after `from`, skipping at most three spaces, commas or dashes.
fn next_token(norm: &[u8], from: usize) -> &[u8] {
    let lim = (from + 3).min(norm.len());
    let mut i = from;
    while i < lim && matches!(norm[i], b' ' | b',' | b'-') {
        i += 1;
    }
    &norm[i..token_end(norm, i)]
}

/// What a run is, when it is a phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhoneKind {
    /// NANP with formatting, or with `+1`.
    Nanp,
    /// Ten NANP digits without formatting.
    NanpBare,
    /// Seven digits `555-1234`.
    NanpLocal,
    /// `+` or `00` and an E.164 length.
    International,
    /// A national number with a trunk `0` (`07700 900123`).
    National,
    /// Digits spelled as words.
    Spelled,
    /// Digits typed one by one with spaces between them.
    Spaced,
}

impl PhoneKind {
    /// The rule name.
    pub fn rule(self) -> &'static str {
        match self {
            PhoneKind::Nanp => "phone.nanp",
            PhoneKind::NanpBare => "phone.nanp_bare",
            PhoneKind::NanpLocal => "phone.nanp_local",
            PhoneKind::International => "phone.international",
            PhoneKind::National => "phone.national",
            PhoneKind::Spelled => "phone.spelled",
            PhoneKind::Spaced => "phone.spaced",
        }
    }
}

/// True when the context before the run makes it a reference number (or a
/// price, a URL part, a code) rather than something to call.
pub(crate) fn is_reference(c: &Compiled, norm: &[u8], run: &Run) -> bool {
    let s = run.start;
    // Immediately before: '#', '$', currency, URL or code punctuation.
    let mut p = s;
    while p > 0 && norm[p - 1] == b' ' {
        p -= 1;
    }
    if p > 0 && b"#$/=&_\\@".contains(&norm[p - 1]) {
        return true;
    }
    // Codes are written in figures: a number read aloud may follow a word
    // and a dash ("oh-seven-seven-double-oh").
    if s > 1
        && norm[s].is_ascii_digit()
        && matches!(norm[s - 1], b'-' | b'.')
        && is_word_byte(norm[s - 2])
    {
        // "INV-2024-5551234", "v2.5551234".
        return true;
    }
    // A letters-and-digits token just before, on the same line: the run is
    // the tail of a code ("1Z 999 AA1 01 2345 6784").
    let mut q = s;
    while q > 0 && s - q < 3 && matches!(norm[q - 1], b' ' | b'-') {
        q -= 1;
    }
    if q > 0 && norm[q - 1].is_ascii_alphanumeric() {
        let te = q;
        while q > 0 && norm[q - 1].is_ascii_alphanumeric() {
            q -= 1;
        }
        let tok = &norm[q..te];
        if tok.iter().any(u8::is_ascii_digit) && tok.iter().any(u8::is_ascii_alphabetic) {
            return true;
        }
    }
    if run.glued_to_code {
        return true;
    }
    // The nearest telling word decides: "order 555…" is a reference,
    // "order questions? call 555…" is not; "number" says neither.
    for w in words_before(norm, s, LINE_STOPS, 4) {
        if NEUTRAL.contains(&w) {
            continue;
        }
        if c.phone_words.contains(w) {
            return false;
        }
        // Only the nearest word names what the number is: "the loan
        // application — 707…" is not a loan number; nor is the topic a
        // comma sets apart ("about the closing statement, 352-…").
        return c.reference_words.contains(w) && !comma_before(norm, s);
    }
    false
}

/// A comma right before `s` (spaces between allowed).
fn comma_before(norm: &[u8], s: usize) -> bool {
    norm[..s]
        .iter()
        .rev()
        .find(|&&b| b != b' ')
        .is_some_and(|&b| b == b',')
}

/// Chat links whose path is a phone number in E.164 digits.
const CHAT_LINKS: &[&[u8]] = &[
    b"wa.me/",
    b"whatsapp.com/send?phone=",
    b"viber://chat?number=",
];

/// A run of 8–15 plain digits right after a chat link's path start
/// ("wa.me/447700900231"): the number itself.
pub(crate) fn in_chat_link(norm: &[u8], run: &Run) -> bool {
    (8..=15).contains(&run.len)
        && run.groups().len() == 1
        && !run.plus
        && CHAT_LINKS.iter().any(|l| norm[..run.start].ends_with(l))
}

/// Words between a reference word and its number ("order number is").
const NEUTRAL: &[&[u8]] = &[
    b"number", b"no", b"num", b"nr", b"is", b"was", b"the", b"my", b"your", b"our", b"new", b"at",
];

/// A phone-word ("call", "cell", "whatsapp") within four words before.
pub(crate) fn has_phone_word(c: &Compiled, norm: &[u8], run: &Run) -> bool {
    words_before(norm, run.start, LINE_STOPS, 4).any(|w| c.phone_words.contains(w))
}

fn nanp_area_ok(d: u8) -> bool {
    (b'2'..=b'9').contains(&d)
}

/// Classify a run as a phone number (or not). Context (references, the
/// platform's numbers) is checked by the caller.
pub(crate) fn classify(c: &Compiled, norm: &[u8], run: &Run) -> Option<PhoneKind> {
    if run.slash || run.len < 7 || run.len > 15 {
        return None;
    }
    let d = run.digits();
    let g = run.groups();
    let n = run.len;
    if run.word_digits >= 3 {
        return c.rules.spelled_digits.then_some(PhoneKind::Spelled);
    }
    if run.word_digits > 0 {
        return None;
    }
    // Digits typed one by one with spaces ("4 0 4 - 5 5 5 …"): evasion.
    if g.len() >= 5 && g.iter().all(|&x| x == 1) {
        return Some(PhoneKind::Spaced);
    }
    if run.plus {
        if n == 11 && d[0] == b'1' {
            return nanp_area_ok(d[1]).then_some(PhoneKind::Nanp);
        }
        return (8..=15).contains(&n).then_some(PhoneKind::International);
    }
    if n >= 10 && d[0] == b'0' && d[1] == b'0' && d[2] != b'0' && g.len() >= 2 {
        return Some(PhoneKind::International);
    }
    // The North American exit code: "011 52 55 1234 5678".
    if n >= 12 && g.len() >= 2 && g[0] == 3 && d[..3] == *b"011" && d[3] != b'0' {
        return Some(PhoneKind::International);
    }
    let nanp = match n {
        10 => Some(d),
        11 if d[0] == b'1' => Some(&d[1..]),
        _ => None,
    };
    if nanp.is_some_and(|b| nanp_area_ok(b[0])) {
        let formatted = matches!(
            g,
            [3, 3, 4] | [1, 3, 3, 4] | [3, 7] | [1, 3, 7] | [1, 10] | [3, 3, 2, 2]
        );
        if formatted {
            return Some(PhoneKind::Nanp);
        }
        if matches!(g, [10] | [11]) {
            let bare_ok = c.rules.bare_phone_numbers || has_phone_word(c, norm, run);
            return bare_ok.then_some(PhoneKind::NanpBare);
        }
    }
    if n == 7 && g == [3, 4] && run.dash_or_dot && nanp_area_ok(d[0]) {
        return Some(PhoneKind::NanpLocal);
    }
    // A local number with its area code after it ("555-0102 (718)").
    if n == 10 && g == [3, 4, 3] && run.dash_or_dot && nanp_area_ok(d[0]) && nanp_area_ok(d[7]) {
        return Some(PhoneKind::Nanp);
    }
    // A Mexican number without its country code, grouped the way Mexico
    // City, Guadalajara and Monterrey write it ("55 1234 5678"), with a
    // word of calling before it.
    if n == 10 && g == [2, 4, 4] && d[0] != b'0' && has_phone_word(c, norm, run) {
        return Some(PhoneKind::National);
    }
    // German mobiles run to twelve digits with their trunk `0` ("0151 2345
    // 6789"); written in groups they are numbers, not references.
    if (10..=12).contains(&n) && d[0] == b'0' && d[1] != b'0' {
        if g.len() >= 2 && g.iter().all(|&x| x >= 2) {
            return Some(PhoneKind::National);
        }
        if n <= 11 && g.len() == 1 && has_phone_word(c, norm, run) {
            return Some(PhoneKind::National);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::detect::{Category, Detector, ScanContext};

    fn phones(text: &str) -> Vec<(String, String)> {
        let d = Detector::new(&crate::detect::rules_only()).expect("defaults compile");
        d.scan(text, &ScanContext::default())
            .hits
            .into_iter()
            .filter(|h| h.category == Category::Phone)
            .map(|h| (h.rule, h.text))
            .collect()
    }

    fn one_phone(text: &str) -> String {
        let p = phones(text);
        assert_eq!(p.len(), 1, "{text}: {p:?}");
        p[0].1.clone()
    }

    #[test]
    fn nanp_forms_people_type() {
        assert_eq!(one_phone("call (555) 123-4567 today"), "(555) 123-4567");
        assert_eq!(one_phone("cell 555.123.4567"), "555.123.4567");
        assert_eq!(one_phone("reach me: +1 555 123 4567."), "+1 555 123 4567");
        assert_eq!(one_phone("555-123-4567"), "555-123-4567");
        assert_eq!(one_phone("1-800-555-0199"), "1-800-555-0199");
        assert_eq!(one_phone("my number 5551234567"), "5551234567");
        assert_eq!(one_phone("call 555-1234 after 5"), "555-1234");
    }

    #[test]
    fn international_and_national_forms() {
        assert_eq!(one_phone("+44 20 7946 0958"), "+44 20 7946 0958");
        assert_eq!(one_phone("+33 6 12 34 56 78"), "+33 6 12 34 56 78");
        assert_eq!(one_phone("+49.30.1234567"), "+49.30.1234567");
        assert_eq!(one_phone("0044 20 7946 0958"), "0044 20 7946 0958");
        assert_eq!(one_phone("mobile 07700 900123"), "07700 900123");
        assert_eq!(one_phone("06 12 34 56 78"), "06 12 34 56 78");
    }

    #[test]
    fn digits_written_as_words() {
        assert_eq!(
            one_phone("it's five five five, one two three, four five six seven ok"),
            "five five five, one two three, four five six seven"
        );
        assert_eq!(
            one_phone("nine one seven double five oh one two three four"),
            "nine one seven double five oh one two three four"
        );
        assert!(phones("I have two kids and one dog").is_empty());
    }

    #[test]
    fn zero_width_characters_inside_a_number_do_not_hide_it() {
        assert_eq!(
            one_phone("cell 6\u{200B}1\u{200B}7-555-0148 thx"),
            "6\u{200B}1\u{200B}7-555-0148"
        );
    }

    #[test]
    fn fullwidth_digits_count() {
        assert_eq!(
            one_phone("call ５５５－１２３－４５６７"),
            "５５５－１２３－４５６７"
        );
    }

    #[test]
    fn references_dates_prices_and_codes_are_not_phones() {
        for t in [
            "Order #5551234567 is late",
            "Invoice 5551234567",
            "order number: 555-123-4567",
            "tracking 1Z 999 AA1 01 2345 6784",
            "USPS 9400 1000 0000 0000 0000 00",
            "FedEx 7489 2345 6789",
            "due 03/15/2024",
            "paid $1,250.00 on 2024-03-15",
            "ticket [#1042]",
            "https://portal.example.com/docs/5551234567",
            "INV-2024-5551234",
            "EIN 12-3456789",
            "SSN 123-45-6789",
            "zip 94105-1234",
            "1,234,567 units",
            "card 4111 1111 1111 1111",
            "from 2019-2023",
        ] {
            assert!(phones(t).is_empty(), "{t}: {:?}", phones(t));
        }
    }

    #[test]
    fn the_platform_s_own_number_is_not_evidence() {
        let mut cfg = crate::detect::rules_only();
        cfg.allow.platform_phones = vec!["1-800-555-0199".into()];
        let d = Detector::new(&cfg).expect("compiles");
        let v = d.scan("Support: (800) 555-0199", &ScanContext::default());
        assert!(v.hits.is_empty(), "{:?}", v.hits);
    }
}
