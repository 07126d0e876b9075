//! E-mail addresses, plain and obfuscated.
//!
//! Receives the position of an `@` or of the word `at` in the skeleton and
//! reads the address around it: `jane.doe@gmail.com`, `jane @ gmail.com`,
//! `jane(at)gmail(dot)com`, `jane [at] gmail [.] com`, `jane at gmail dot
//! com`, `jane dot doe at gmail`. The scanner then decides whether the
//! address is evidence (not the platform's, the ticket's or the sender's own
//! domain) and how much (freemail counts double).
//!
//! The bare word "at" is everywhere in English, so an address around it
//! needs more: a local part that is not a common word ("look at
//! example.com" is a website), and a domain that ends in a known top-level
//! domain or is a freemail provider.

use super::words::is_word_byte;

/// An address found in the skeleton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Email {
    /// Start in the skeleton.
    pub start: usize,
    /// End in the skeleton.
    pub end: usize,
    /// The local part (obfuscated dots become `.`).
    pub local: String,
    /// The domain, lower case, dots restored.
    pub domain: String,
    /// Written with `at`/`dot` words or brackets.
    pub obfuscated: bool,
}

/// Top-level domains accepted after an obfuscated `at`.
const KNOWN_TLDS: &[&[u8]] = &[
    b"com",
    b"net",
    b"org",
    b"edu",
    b"gov",
    b"io",
    b"co",
    b"us",
    b"uk",
    b"ca",
    b"de",
    b"fr",
    b"es",
    b"it",
    b"nl",
    b"au",
    b"in",
    b"me",
    b"info",
    b"biz",
    b"ru",
    b"ch",
    b"se",
    b"no",
    b"dk",
    b"fi",
    b"pl",
    b"br",
    b"mx",
    b"jp",
    b"cn",
    b"ie",
    b"nz",
    b"za",
    b"be",
    b"at",
    b"pt",
    b"gr",
    b"cz",
    b"ro",
    b"hu",
    b"tr",
    b"il",
    b"ae",
    b"sg",
    b"hk",
    b"kr",
    b"tw",
    b"ar",
    b"cl",
    b"eu",
    b"xyz",
    b"app",
    b"dev",
    b"ai",
    b"ly",
    b"tv",
    b"cc",
    b"email",
    b"mail",
    b"online",
    b"live",
    b"studio",
    b"design",
    b"art",
    b"shop",
    b"store",
    b"site",
    b"tech",
    b"blog",
    b"pro",
    b"name",
    b"life",
    b"world",
    b"space",
    b"agency",
    b"consulting",
    b"services",
    b"solutions",
    b"law",
    b"cloud",
    b"page",
    b"photo",
    b"photography",
    b"family",
    b"farm",
    b"cafe",
    b"restaurant",
];

/// Freemail providers recognised by name alone after an obfuscated `at`
/// ("jo at gmail"), with the domain they stand for.
const FREEMAIL_NAMES: &[(&[u8], &str)] = &[
    (b"gmail", "gmail.com"),
    (b"googlemail", "googlemail.com"),
    (b"yahoo", "yahoo.com"),
    (b"hotmail", "hotmail.com"),
    (b"outlook", "outlook.com"),
    (b"icloud", "icloud.com"),
    (b"aol", "aol.com"),
    (b"protonmail", "protonmail.com"),
    (b"proton", "proton.me"),
    (b"gmx", "gmx.com"),
    (b"yandex", "yandex.com"),
];

/// Words that come before an ordinary "at" ("look at", "available at").
const LOCAL_STOPWORDS: &[&[u8]] = &[
    b"look",
    b"looked",
    b"looking",
    b"is",
    b"am",
    b"are",
    b"was",
    b"were",
    b"be",
    b"been",
    b"me",
    b"us",
    b"you",
    b"him",
    b"her",
    b"them",
    b"it",
    b"myself",
    b"yourself",
    b"himself",
    b"herself",
    b"itself",
    b"ourselves",
    b"yourselves",
    b"themselves",
    b"this",
    b"that",
    b"here",
    b"there",
    b"site",
    b"website",
    b"page",
    b"login",
    b"log",
    b"logged",
    b"sign",
    b"signed",
    b"go",
    b"went",
    b"arrive",
    b"arrived",
    b"meet",
    b"stay",
    b"stayed",
    b"available",
    b"portal",
    b"visit",
    b"online",
    b"home",
    b"work",
    b"office",
    b"email",
    b"mail",
    b"emailed",
    b"mailed",
    b"reach",
    b"reached",
    b"contact",
    b"contacted",
    b"found",
    b"find",
    b"listed",
    b"posted",
    b"registered",
    b"account",
    b"accounts",
    b"address",
    b"one",
    b"file",
    b"filed",
    b"sent",
    b"send",
    b"anyone",
    b"someone",
    b"support",
    b"team",
    b"both",
    b"all",
    b"only",
    b"again",
    b"even",
    b"directly",
    b"him",
    b"yes",
    b"no",
    b"not",
    b"or",
    b"and",
    b"the",
    b"a",
    b"an",
    b"up",
    b"out",
    b"in",
    b"on",
    b"off",
    b"back",
    b"people",
    b"staff",
    b"folks",
    b"guys",
    b"pay",
    b"paid",
    b"buy",
    b"bought",
    b"order",
    b"ordered",
    b"shop",
    b"shopped",
    b"sold",
    b"listed",
    b"hosted",
];

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// Skip up to `max` spaces backwards from `i`.
fn skip_spaces_back(norm: &[u8], mut i: usize, max: usize) -> usize {
    let mut k = 0;
    while i > 0 && norm[i - 1] == b' ' && k < max {
        i -= 1;
        k += 1;
    }
    i
}

/// Skip up to `max` spaces forward from `i`.
fn skip_spaces(norm: &[u8], mut i: usize, max: usize) -> usize {
    let mut k = 0;
    while i < norm.len() && norm[i] == b' ' && k < max {
        i += 1;
        k += 1;
    }
    i
}

/// An obfuscated dot at `i`: ` dot `, `(dot)`, `[dot]`, `{dot}`, `<dot>`,
/// `[.]`, `(.)`, ` . `, and the Spanish and French words ` punto `,
/// ` point `. Returns where the next label starts.
fn obfuscated_dot(norm: &[u8], i: usize) -> Option<usize> {
    let j = skip_spaces(norm, i, 2);
    let spaced = j > i;
    let rest = &norm[j..];
    let forms: [(&[u8], bool); 12] = [
        (b"(dot)", false),
        (b"[dot]", false),
        (b"{dot}", false),
        (b"<dot>", false),
        (b"(.)", false),
        (b"[.]", false),
        (b"{.}", false),
        (b"dot", true),
        (b".", true),
        (b"-dot-", false),
        (b"punto", true),
        (b"point", true),
    ];
    for (form, needs_space) in forms {
        if rest.starts_with(form) {
            if needs_space && !spaced {
                continue;
            }
            let after = j + form.len();
            if matches!(form, b"dot" | b"punto" | b"point")
                && after < norm.len()
                && is_word_byte(norm[after])
            {
                continue;
            }
            let k = skip_spaces(norm, after, 2);
            if needs_space && k == after {
                continue;
            }
            if k < norm.len() && norm[k].is_ascii_alphanumeric() {
                return Some(k);
            }
        }
    }
    None
}

/// Up to eight domain labels, without allocating (this runs for every
/// "at" in the text).
struct Labels<'a> {
    items: [&'a [u8]; 8],
    len: usize,
}

impl<'a> Labels<'a> {
    fn push(&mut self, label: &'a [u8]) {
        self.items[self.len] = label;
        self.len += 1;
    }

    fn as_slice(&self) -> &[&'a [u8]] {
        &self.items[..self.len]
    }
}

/// Read domain labels from `start`: `(end, labels, used an obfuscated dot)`.
fn domain_after(
    norm: &[u8],
    start: usize,
    allow_obfuscated: bool,
) -> Option<(usize, Labels<'_>, bool)> {
    let mut i = start;
    let mut labels = Labels {
        items: [b""; 8],
        len: 0,
    };
    let mut obf = false;
    let mut end = start;
    while labels.len < 8 {
        let ls = i;
        while i < norm.len() && (norm[i].is_ascii_alphanumeric() || norm[i] == b'-') {
            i += 1;
        }
        if i == ls {
            break;
        }
        labels.push(&norm[ls..i]);
        end = i;
        if i + 1 < norm.len() && norm[i] == b'.' && norm[i + 1].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        if allow_obfuscated && let Some(k) = obfuscated_dot(norm, i) {
            i = k;
            obf = true;
            continue;
        }
        break;
    }
    if labels.len == 0 {
        return None;
    }
    Some((end, labels, obf))
}

/// The local part ending at `end`; with `obfuscated`, " dot " joins
/// earlier pieces ("john dot smith").
fn local_before(norm: &[u8], end: usize, obfuscated: bool) -> Option<usize> {
    let mut s = end;
    while s > 0 && is_local_byte(norm[s - 1]) {
        s -= 1;
    }
    if s == end {
        return None;
    }
    if obfuscated {
        for _ in 0..3 {
            let before = skip_spaces_back(norm, s, 2);
            let has_dot_word = before >= 3 && &norm[before - 3..before] == b"dot";
            if !has_dot_word || before == s {
                break;
            }
            let b2 = skip_spaces_back(norm, before - 3, 2);
            if b2 == before - 3 || b2 == 0 || !is_local_byte(norm[b2 - 1]) {
                break;
            }
            let mut t = b2;
            while t > 0 && is_local_byte(norm[t - 1]) {
                t -= 1;
            }
            if t > 0 && is_word_byte(norm[t - 1]) {
                break;
            }
            s = t;
        }
    }
    // Punctuation at the start is not part of the address.
    while s < end && matches!(norm[s], b'.' | b'-' | b'+' | b'_') {
        s += 1;
    }
    (s < end).then_some(s)
}

fn tld_ok(labels: &[&[u8]], known_only: bool) -> bool {
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && (2..=24).contains(&tld.len())
        && tld.iter().all(u8::is_ascii_alphabetic)
        && (!known_only || KNOWN_TLDS.contains(tld))
}

fn join_labels(labels: &[&[u8]]) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    parts.join(".")
}

/// Normalise an obfuscated local part: " dot " pieces become ".".
fn local_text(norm: &[u8], s: usize, e: usize) -> String {
    let raw = String::from_utf8_lossy(&norm[s..e]).into_owned();
    raw.split_whitespace()
        .filter(|w| *w != "dot")
        .collect::<Vec<_>>()
        .join(".")
}

/// The address around the `@` at `at`.
pub(crate) fn at_sign(norm: &[u8], at: usize) -> Option<Email> {
    letter_spaced(norm, at).or_else(|| at_sign_words(norm, at))
}

/// One character standing alone between single spaces, the way a spelled
/// out address is typed: `m a r k 8 8 @ y a h o o . c o m`.
fn lone_char(norm: &[u8], i: usize) -> bool {
    let alone_before = i == 0 || norm[i - 1] == b' ';
    let alone_after = i + 1 >= norm.len() || norm[i + 1] == b' ';
    alone_before && alone_after && norm[i] != b' '
}

/// An address spelled out one character at a time around the `@` at `at`
/// (at least three characters each side, a known top-level domain).
fn letter_spaced(norm: &[u8], at: usize) -> Option<Email> {
    let mut ls = at.checked_sub(2)?;
    if norm[at - 1] != b' ' || !lone_char(norm, ls) {
        return None;
    }
    let mut local = vec![norm[ls]];
    while ls >= 2 && norm[ls - 1] == b' ' && lone_char(norm, ls - 2) && is_local_byte(norm[ls - 2])
    {
        ls -= 2;
        local.push(norm[ls]);
    }
    local.reverse();
    let mut de = at + 2;
    let mut domain = Vec::new();
    while de < norm.len() && norm[de - 1] == b' ' && lone_char(norm, de) {
        let b = norm[de];
        if !(b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
            break;
        }
        domain.push(b);
        de += 2;
    }
    let de = de - 1;
    while domain.last() == Some(&b'.') {
        domain.pop();
    }
    let labels: Vec<&[u8]> = domain.split(|&b| b == b'.').collect();
    if local.len() < 3 || domain.len() < 3 || !tld_ok(&labels, true) {
        return None;
    }
    Some(Email {
        start: ls,
        end: de.min(norm.len()),
        local: String::from_utf8_lossy(&local).into_owned(),
        domain: join_labels(&labels),
        obfuscated: true,
    })
}

/// The address around the `@` at `at`, written as words (`jo.smith@gmail.com`,
/// `jo @ gmail.com`).
fn at_sign_words(norm: &[u8], at: usize) -> Option<Email> {
    let ds = skip_spaces(norm, at + 1, 1);
    // An address wrapped at the end of a line right before its `@`
    // ("coach.tanya\n@protonmail.com") is one address, written plainly.
    let wrapped = ds == at + 1 && at >= 2 && norm[at - 1] == b'\n' && is_local_byte(norm[at - 2]);
    let le = if wrapped {
        at - 1
    } else {
        skip_spaces_back(norm, at, 1)
    };
    // "jo @ gmail.com" is spaced on both sides; "insta @jo.smith" is a
    // handle after a word.
    let spaced = !wrapped && (le != at || ds != at + 1);
    if !wrapped && (le != at) != (ds != at + 1) {
        return None;
    }
    let ls = local_before(norm, le, false)?;
    let (de, labels, obf) = domain_after(norm, ds, true)?;
    let labels = labels.as_slice();
    let domain = if tld_ok(labels, obf || spaced) {
        join_labels(labels)
    } else if labels.len() == 1 && obf {
        return None;
    } else {
        freemail_name(labels)?
    };
    Some(Email {
        start: ls,
        end: de,
        local: local_text(norm, ls, le),
        domain,
        obfuscated: obf || spaced,
    })
}

fn freemail_name(labels: &[&[u8]]) -> Option<String> {
    if labels.len() != 1 {
        return None;
    }
    FREEMAIL_NAMES
        .iter()
        .find(|(n, _)| *n == labels[0])
        .map(|(_, d)| (*d).to_owned())
}

/// The address around the word for `@` (`at`, `arroba`, `arobase`: `len`
/// bytes) starting at `at` (`jo (at) gmail dot com`, `jo at gmail.com`,
/// `jo arroba gmail punto com`).
pub(crate) fn at_word(norm: &[u8], at: usize, len: usize) -> Option<Email> {
    let after = at + len;
    if at == 0 || after >= norm.len() {
        return None;
    }
    let bracketed = matches!(norm[at - 1], b'(' | b'[' | b'{' | b'<')
        && matches!(norm[after], b')' | b']' | b'}' | b'>');
    let plain = norm[at - 1] == b' ' && norm[after] == b' ';
    let dashed = (norm[at - 1] == b'-' && norm[after] == b'-')
        || (norm[at - 1] == b'_' && norm[after] == b'_');
    if !(bracketed || plain || dashed) {
        return None;
    }
    let le = skip_spaces_back(norm, at - 1, 2);
    if le == 0 {
        return None;
    }
    let ls = local_before(norm, le, true)?;
    let ds = skip_spaces(norm, after + usize::from(!dashed), 2);
    let (de, labels, _) = domain_after(norm, ds, true)?;
    let labels = labels.as_slice();
    let local = &norm[ls..le];
    if plain {
        let last_piece = local.rsplit(|&b| b == b' ').next().unwrap_or(local);
        if local.len() < 2
            || LOCAL_STOPWORDS.contains(&last_piece)
            || local.iter().all(u8::is_ascii_digit)
            || labels.first() == Some(&&b"www"[..])
        {
            return None;
        }
    }
    let domain = if tld_ok(labels, true) {
        join_labels(labels)
    } else {
        freemail_name(labels)?
    };
    Some(Email {
        start: ls,
        end: de,
        local: local_text(norm, ls, le),
        domain,
        obfuscated: true,
    })
}

/// True when `domain` is `d` or a subdomain of it.
pub(crate) fn domain_matches(domain: &str, d: &str) -> bool {
    let d = d.trim().trim_start_matches('@');
    domain.eq_ignore_ascii_case(d)
        || (domain.len() > d.len()
            && domain.as_bytes()[domain.len() - d.len() - 1] == b'.'
            && domain[domain.len() - d.len()..].eq_ignore_ascii_case(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Category, Detector, ScanContext};

    fn addr(s: &str) -> Option<(String, String)> {
        let norm = s.to_ascii_lowercase();
        let b = norm.as_bytes();
        if let Some(p) = b.iter().position(|&c| c == b'@') {
            return at_sign(b, p).map(|e| (e.local, e.domain));
        }
        let mut from = 0;
        while let Some(p) = norm[from..].find("at") {
            let at = from + p;
            if let Some(e) = at_word(b, at, 2) {
                return Some((e.local, e.domain));
            }
            from = at + 1;
        }
        None
    }

    fn pair(l: &str, d: &str) -> Option<(String, String)> {
        Some((l.to_owned(), d.to_owned()))
    }

    #[test]
    fn plain_and_spaced_addresses() {
        assert_eq!(
            addr("mail jane.doe@gmail.com now"),
            pair("jane.doe", "gmail.com")
        );
        assert_eq!(addr("jane @ gmail.com"), pair("jane", "gmail.com"));
        assert_eq!(
            addr("j_doe+tax@mail.acme.co.uk."),
            pair("j_doe+tax", "mail.acme.co.uk")
        );
    }

    #[test]
    fn obfuscated_at_and_dot() {
        assert_eq!(addr("jane(at)gmail(dot)com"), pair("jane", "gmail.com"));
        assert_eq!(addr("jane [at] gmail [.] com"), pair("jane", "gmail.com"));
        assert_eq!(addr("jane at gmail dot com"), pair("jane", "gmail.com"));
        assert_eq!(addr("jsmith1987 at gmail"), pair("jsmith1987", "gmail.com"));
        assert_eq!(addr("jane.doe at yahoo.com"), pair("jane.doe", "yahoo.com"));
        assert_eq!(
            addr("john dot smith at gmail dot com"),
            pair("john.smith", "gmail.com")
        );
        assert_eq!(addr("jane@gmail dot com"), pair("jane", "gmail.com"));
    }

    #[test]
    fn spanish_and_french_at_and_dot_words() {
        let e = at_word(b"lupita.ramos arroba gmail punto com", 13, 6).expect("arroba");
        assert_eq!(
            (e.local.as_str(), e.domain.as_str()),
            ("lupita.ramos", "gmail.com")
        );
        let e = at_word(b"claire.dubois arobase free point fr", 14, 7).expect("arobase");
        assert_eq!(
            (e.local.as_str(), e.domain.as_str()),
            ("claire.dubois", "free.fr")
        );
        assert!(at_word(b"on arroba: the point is", 3, 6).is_none());
    }

    #[test]
    fn ordinary_at_is_not_an_address() {
        assert_eq!(addr("look at example.com for details"), None);
        assert_eq!(addr("see you at 3pm"), None);
        assert_eq!(addr("we met at the office dot party"), None);
        assert_eq!(addr("available at www.example.com"), None);
        assert_eq!(addr("the rate at 5.5 percent"), None);
    }

    #[test]
    fn domains_match_with_subdomains() {
        assert!(domain_matches("mail.acme.com", "acme.com"));
        assert!(domain_matches("ACME.com", "acme.com"));
        assert!(!domain_matches("notacme.com", "acme.com"));
    }

    #[test]
    fn freemail_counts_double_and_own_addresses_do_not_count() {
        let d = Detector::new(&crate::detect::rules_only()).expect("compiles");
        let v = d.scan("write to jo.smith@gmail.com", &ScanContext::default());
        assert_eq!(v.hits.len(), 1);
        assert_eq!(v.hits[0].category, Category::Email);
        assert_eq!(v.hits[0].weight, 2);
        assert_eq!(v.hits[0].text, "jo.smith@gmail.com");
        let v = d.scan("write to jo@smithconsulting.com", &ScanContext::default());
        assert_eq!(v.hits[0].weight, 1);

        let ticket = vec!["acme.com".to_owned()];
        let platform = vec!["example.com".to_owned()];
        let ctx = ScanContext {
            sender: Some("Jo.Smith@gmail.com"),
            ticket_domains: &ticket,
            platform_domains: &platform,
        };
        for t in [
            "cc bob@acme.com",
            "support@example.com answered",
            "billing@help.example.com",
            "my address jo.smith@gmail.com",
        ] {
            assert!(d.scan(t, &ctx).hits.is_empty(), "{t}");
        }
        // Another gmail address is evidence even though the sender uses gmail.
        assert_eq!(d.scan("or jo.private@gmail.com", &ctx).hits.len(), 1);
    }
    #[test]
    fn an_address_spelled_out_one_character_at_a_time_is_read() {
        let d = Detector::new(&crate::detect::rules_only()).expect("compiles");
        let t = "my email is m a r k l e e 8 8 @ y a h o o . c o m thanks";
        let v = d.scan(t, &ScanContext::default());
        let e: Vec<&str> = v
            .hits
            .iter()
            .filter(|h| h.category == Category::Email)
            .map(|h| h.text.as_str())
            .collect();
        assert_eq!(e, ["m a r k l e e 8 8 @ y a h o o . c o m"], "{:?}", v.hits);
        // A lone "a @ b" in prose is not an address.
        let v = d.scan("meet at a @ b c tomorrow", &ScanContext::default());
        assert!(v.hits.iter().all(|h| h.category != Category::Email));
    }
}
