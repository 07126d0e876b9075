//! Scan: one message's text through every rule, hits out.
//!
//! Receives the compiled rules, the text and the [`ScanContext`], and
//! returns the hits ordered by position, with spans mapped back to the text
//! as written. The passes, each linear in the text:
//!
//! 1. [`normalize`](super::normalize): the lower-case skeleton (a plain
//!    lower-cased copy for ASCII mail, no offset map).
//! 2. One pass of the keyword automaton over the skeleton (it reads
//!    through separators, see [`automaton`](super::automaton)) finds the
//!    keys and notes the few places worth a closer look: tokens with digits,
//!    number words, `@`, the word `at`. Most mail has a handful.
//! 3. Structured rules at those places only: phone runs, card, routing and
//!    account numbers, IBANs, wallets, street addresses, e-mail addresses.
//! 4. The keys are judged: word boundaries, separators, negation, cues.
//! 5. The configured regexes, each only around its anchor words (the keys
//!    of step 2 include them).
//! 6. Phone numbers, e-mail addresses and street addresses are kept only
//!    when they are the writer's own (see [`owner`](super::owner)).
//! 7. Overlaps are resolved: a checksum-verified hit (IBAN, card, wallet)
//!    absorbs phone or address readings of the same digits, and a phrase
//!    inside a longer phrase is reported once.
//!
//! Buffers live in a thread-local scratch and are reused: a scan allocates
//! only for the hits it returns.

use std::cell::RefCell;

use super::automaton::Step;
use super::email::{self, Email, domain_matches};
use super::keywords::{self, Marker};
use super::money;
use super::normalize::Normalized;
use super::owner;
use super::patterns::Compiled;
use super::phone::{self, Run};
use super::{Category, Hit, ScanContext, address, words};

/// Where a hit came from; decides how overlaps are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A keyword or a configured phrase pattern.
    Phrase,
    /// A parsed structure (phone, address, e-mail).
    Structured,
    /// A structure verified by a checksum (IBAN, card, wallet, routing).
    Checksum,
}

/// A hit in skeleton coordinates.
#[derive(Debug, Clone)]
pub(crate) struct RawHit<'c> {
    pub category: Category,
    pub rule: &'c str,
    pub start: usize,
    pub end: usize,
    pub weight: u32,
    pub source: Source,
}

/// A place worth a closer look (skeleton offsets).
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A token with at least one digit.
    Digits(u32, u32),
    /// A number word ("five").
    NumberWord(u32),
    /// A word for ten to ninety ("twenty").
    TensWord(u32),
    /// The word "at".
    AtWord(u32, u8),
    /// An `@`.
    AtSign(u32),
}

#[derive(Debug, Default)]
struct Scratch {
    norm: Normalized,
    /// Keys the automaton found: (key, end offset in the skeleton).
    found: Vec<(u32, u32)>,
    events: Vec<Event>,
    /// Anchors of configured regexes seen: (pattern, skeleton position).
    triggered: Vec<(u32, u32)>,
    /// Where one configured regex runs: (start, end) in the skeleton.
    windows: Vec<(usize, usize)>,
    /// Positions of one key's letters (see `keywords::judge`).
    positions: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Scan `text`; offsets of the hits are into `text`.
pub(crate) fn scan(c: &Compiled, text: &str, ctx: &ScanContext<'_>) -> Vec<Hit> {
    let text = cap(text);
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => scan_with(c, text, ctx, &mut scratch),
        // Only reachable if a scan re-entered itself on this thread.
        Err(_) => scan_with(c, text, ctx, &mut Scratch::default()),
    })
}

/// Offsets are `u32`: text past 4 GiB (far beyond any message limit) is
/// not scanned.
fn cap(text: &str) -> &str {
    let max = u32::MAX as usize - 1;
    if text.len() <= max {
        return text;
    }
    let mut e = max;
    while !text.is_char_boundary(e) {
        e -= 1;
    }
    &text[..e]
}

fn scan_with(c: &Compiled, text: &str, ctx: &ScanContext<'_>, s: &mut Scratch) -> Vec<Hit> {
    s.norm.build(text);
    let norm = &s.norm.bytes[..];
    let (events, found) = (&mut s.events, &mut s.found);
    events.clear();
    found.clear();
    let keys = &c.keywords;
    keys.automaton().walk(norm, |step| match step {
        Step::Key(k, end) => {
            let (marker, more) = keys.marker(k);
            if marker != Marker::None {
                // Markers count only as whole words, letters contiguous.
                let len = keys.automaton().key_len(k);
                let start = end.saturating_sub(len);
                let whole = norm[start..end].iter().all(u8::is_ascii_alphabetic)
                    && (start == 0 || !words::is_word_byte(norm[start - 1]))
                    && (end == norm.len() || !words::is_word_byte(norm[end]));
                if whole {
                    events.push(match marker {
                        Marker::At => Event::AtWord(start as u32, len as u8),
                        Marker::TensWord => Event::TensWord(start as u32),
                        _ => Event::NumberWord(start as u32),
                    });
                }
            }
            if more {
                found.push((k, end as u32));
            }
        }
        Step::Token(start, end, _) => events.push(Event::Digits(start as u32, end as u32)),
        Step::At(p) => events.push(Event::AtSign(p as u32)),
    });
    let mut raw: Vec<RawHit<'_>> = Vec::with_capacity(16);
    structured(c, text, &s.norm, &s.events, ctx, &mut raw);
    s.triggered.clear();
    keywords::judge(
        c,
        norm,
        &s.found,
        &mut s.triggered,
        &mut s.positions,
        &mut raw,
    );
    find_patterns(c, norm, &mut s.triggered, &mut s.windows, &mut raw);
    // Contact details count only as the writer's own (see `owner`).
    raw.retain(|h| {
        h.source != Source::Structured || owner::is_evidence(c, norm, h.category, h.start, h.end)
    });
    keywords::fold_texting_into_number(norm, &mut raw);
    resolve(text, &s.norm, raw)
}

fn structured<'c>(
    c: &'c Compiled,
    text: &str,
    nmap: &Normalized,
    events: &[Event],
    ctx: &ScanContext<'_>,
    out: &mut Vec<RawHit<'c>>,
) {
    let norm = &nmap.bytes[..];
    let rules = &c.rules;
    let mut phone_until = 0usize;
    for &ev in events {
        match ev {
            Event::Digits(s, e) => {
                let (s, e) = (s as usize, e as usize);
                if rules.payment
                    && rules.iban
                    && let Some(end) = money::iban_at(norm, s, e)
                {
                    if !owner::is_account_for_records(c, norm, s, end) {
                        out.push(hit(
                            Category::Payment,
                            "payment.iban",
                            s,
                            end,
                            Source::Checksum,
                        ));
                    }
                    phone_until = phone_until.max(end);
                }
                if rules.payment && rules.crypto && e - s >= 25 {
                    let (os, oe) = nmap.to_original(text, s, e);
                    if let Some(rule) = money::wallet_kind(&text[os..oe]) {
                        out.push(hit(Category::Payment, rule, s, e, Source::Checksum));
                    }
                }
                if s >= phone_until && norm[s].is_ascii_digit() {
                    let run = phone::read_run(norm, s);
                    phone_until = run.end.max(s + 1);
                    judge_run(c, norm, &run, out);
                }
                if rules.address
                    && let Some(span) =
                        address::street_at(c, text, |i| nmap.original_offset(text, i), norm, s, e)
                {
                    out.push(street_hit(span));
                } else if rules.address
                    && let Some((from, to)) = address::uk_postcode_at(norm, s, e)
                    && !out
                        .last()
                        .is_some_and(|h| h.category == Category::Address && h.end + 80 > s)
                {
                    out.push(hit(
                        Category::Address,
                        "address.postcode",
                        from,
                        to,
                        Source::Structured,
                    ));
                }
            }
            Event::NumberWord(s) => {
                let s = s as usize;
                if s >= phone_until && rules.phone && rules.spelled_digits {
                    let run = phone::read_run(norm, s);
                    phone_until = run.end.max(s + 1);
                    judge_run(c, norm, &run, out);
                }
            }
            Event::TensWord(s) => {
                let s = s as usize;
                if rules.address
                    && let Some(span) = address::spelled_street_at(
                        c,
                        text,
                        |i| nmap.original_offset(text, i),
                        norm,
                        s,
                    )
                {
                    out.push(street_hit(span));
                }
            }
            Event::AtSign(p) => {
                if rules.email
                    && let Some(e) = email::at_sign(norm, p as usize)
                    && let Some(h) = judge_email(c, ctx, &e)
                {
                    out.push(h);
                }
            }
            Event::AtWord(p, len) => {
                if rules.email
                    && let Some(e) = email::at_word(norm, p as usize, usize::from(len))
                    && let Some(h) = judge_email(c, ctx, &e)
                {
                    out.push(h);
                }
            }
        }
    }
}

fn hit(category: Category, rule: &str, start: usize, end: usize, source: Source) -> RawHit<'_> {
    RawHit {
        category,
        rule,
        start,
        end,
        weight: 1,
        source,
    }
}

/// A street address found at a house number, in digits or in words.
fn street_hit((start, end): (usize, usize)) -> RawHit<'static> {
    hit(
        Category::Address,
        "address.street",
        start,
        end,
        Source::Structured,
    )
}

/// A digit run: card, routing or account number first (they would also
/// read as long phone numbers), then phone.
fn judge_run<'c>(c: &'c Compiled, norm: &[u8], run: &Run, out: &mut Vec<RawHit<'c>>) {
    if run.len == 0 {
        return;
    }
    let rules = &c.rules;
    if rules.payment {
        if rules.card_numbers && money::is_card(run) && !phone::is_reference(c, norm, run) {
            out.push(hit(
                Category::Payment,
                "payment.card_number",
                run.start,
                run.end,
                Source::Checksum,
            ));
            return;
        }
        if rules.routing_numbers && money::is_routing_number(norm, run) {
            if owner::is_refund_deposit(c, norm, run.start, run.end)
                || owner::is_account_for_records(c, norm, run.start, run.end)
                || owner::pays_tax_authority(c, norm, run.start, run.end)
            {
                return;
            }
            out.push(hit(
                Category::Payment,
                "payment.routing_number",
                run.start,
                run.end,
                Source::Checksum,
            ));
            return;
        }
        if rules.routing_numbers
            && money::is_bank_account(norm, run)
            && !owner::is_financing_account(c, norm, run.start, run.end)
            && !owner::is_account_for_records(c, norm, run.start, run.end)
            && !owner::pays_tax_authority(c, norm, run.start, run.end)
        {
            out.push(hit(
                Category::Payment,
                "payment.bank_account",
                run.start,
                run.end,
                Source::Structured,
            ));
            return;
        }
    }
    if !rules.phone {
        return;
    }
    // A number inside a chat link ("wa.me/447700900231") is the number
    // itself, written without its "+".
    let kind = if phone::in_chat_link(norm, run) {
        Some(phone::PhoneKind::International)
    } else {
        phone::classify(c, norm, run).filter(|_| !phone::is_reference(c, norm, run))
    };
    if let Some(kind) = kind
        && !money::is_platform_phone(c, run)
    {
        out.push(hit(
            Category::Phone,
            kind.rule(),
            run.start,
            run.end,
            Source::Structured,
        ));
    }
}

/// An address is evidence unless it is the platform's, the ticket's, or
/// the sender's own (the ticket's and the sender's domain only when it is
/// not freemail: a ticket from a gmail address does not make every gmail
/// address the ticket's own).
fn judge_email<'c>(c: &'c Compiled, ctx: &ScanContext<'_>, e: &Email) -> Option<RawHit<'c>> {
    let freemail = |d: &str| c.freemail.iter().any(|f| domain_matches(d, f));
    let ours = c
        .platform_domains
        .iter()
        .chain(ctx.platform_domains)
        .chain(ctx.ticket_domains.iter().filter(|d| !freemail(d)))
        .any(|d| domain_matches(&e.domain, d));
    if ours {
        return None;
    }
    if let Some(sender) = ctx.sender {
        let sender = sender.trim().trim_start_matches('<').trim_end_matches('>');
        let addr = format!("{}@{}", e.local, e.domain);
        if sender.eq_ignore_ascii_case(&addr) {
            return None;
        }
        if let Some((_, sender_domain)) = sender.rsplit_once('@')
            && !freemail(sender_domain)
            && domain_matches(&e.domain, sender_domain)
        {
            return None;
        }
    }
    let rule = if e.obfuscated {
        "email.obfuscated"
    } else {
        "email.address"
    };
    let mut h = hit(Category::Email, rule, e.start, e.end, Source::Structured);
    if freemail(&e.domain) {
        h.weight = 2;
    }
    Some(h)
}

/// Run the configured regexes: those with an anchor only around the places
/// the keyword pass saw it (see [`ANCHOR_REACH`]), the others over the whole
/// text.
fn find_patterns<'c>(
    c: &'c Compiled,
    norm: &[u8],
    triggered: &mut [(u32, u32)],
    windows: &mut Vec<(usize, usize)>,
    out: &mut Vec<RawHit<'c>>,
) {
    let Some(ps) = &c.patterns else {
        return;
    };
    triggered.sort_unstable();
    let mut t = 0;
    for (idx, p) in ps.patterns.iter().enumerate() {
        // This pattern's anchor positions, in order.
        let from = t;
        while t < triggered.len() && triggered[t].0 as usize == idx {
            t += 1;
        }
        let places = &triggered[from..t];
        if !c.category_enabled(p.category) || (p.anchors.is_some() && places.is_empty()) {
            continue;
        }
        windows.clear();
        if p.anchors.is_none() {
            windows.push((0, norm.len()));
        }
        for &(_, pos) in places {
            let pos = pos as usize;
            let ws = pos.saturating_sub(ANCHOR_REACH);
            let mut we = (pos + ANCHOR_REACH).min(norm.len());
            // End the window between words, so `\b` at its end is real.
            while we < norm.len() && words::is_word_byte(norm[we]) {
                we += 1;
            }
            match windows.last_mut() {
                Some(last) if ws <= last.1 => last.1 = last.1.max(we),
                _ => windows.push((ws, we)),
            }
        }
        for &(ws, we) in windows.iter() {
            // Skip a window without a literal every match needs.
            if !p.required.admits(&norm[ws..we]) {
                continue;
            }
            let mut at = ws;
            while at <= we {
                let Some(m) = p.regex.find_at(&norm[..we], at) else {
                    break;
                };
                at = if m.is_empty() { m.end() + 1 } else { m.end() };
                if m.is_empty() {
                    continue;
                }
                if p.negatable && c.rules.negation && keywords::is_negated(c, norm, m.start()) {
                    continue;
                }
                // Named between quotation marks: asked about, not said.
                if matches!(p.category, Category::Messaging | Category::Payment)
                    && keywords::is_in_quotes(norm, m.start(), m.end())
                {
                    continue;
                }
                if p.category == Category::Payment
                    && (keywords::is_put_on_platform(c, norm, m.end())
                        || owner::pays_tax_authority(c, norm, m.start(), m.end())
                        || (keywords::names_a_means(&norm[m.start()..m.end()])
                            && (keywords::payee_is_not_reader(norm, m.start())
                                || keywords::third_party_subject(c, norm, m.start())))
                        || keywords::object_named_before(norm, m.start()))
                {
                    continue;
                }
                if p.category == Category::Messaging
                    && (owner::platform_is_subject(norm, m.start())
                        || keywords::is_app_vendor_sense(c, norm, m.start(), m.end()))
                {
                    continue;
                }
                // What happened, told to no one in particular, is not a
                // proposal ("we used to run the team on Slack").
                if matches!(p.category, Category::Messaging | Category::Payment)
                    && keywords::is_told(c, norm, m.start(), m.end())
                {
                    continue;
                }
                let source = match p.category {
                    Category::Messaging | Category::Payment => Source::Phrase,
                    Category::Phone | Category::Email | Category::Address => Source::Structured,
                };
                // Trailing spaces or punctuation of a context alternative are
                // not part of the evidence.
                let mut end = m.end();
                while end > m.start() + 1
                    && matches!(
                        norm[end - 1],
                        b' ' | b',' | b'.' | b'!' | b'?' | b':' | b';' | b')'
                    )
                {
                    end -= 1;
                }
                out.push(hit(p.category, &p.rule, m.start(), end, source));
            }
        }
    }
}

/// How far from its anchor a configured regex may match: the regex runs
/// over this many bytes on each side of each anchor.
pub(crate) const ANCHOR_REACH: usize = 160;

fn overlaps(a: &RawHit<'_>, b: &RawHit<'_>) -> bool {
    a.start < b.end && b.start < a.end
}

fn contains(outer: &RawHit<'_>, inner: &RawHit<'_>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Resolve overlaps and map to the original text.
fn resolve(text: &str, nmap: &Normalized, mut raw: Vec<RawHit<'_>>) -> Vec<Hit> {
    if raw.is_empty() {
        return Vec::new();
    }
    raw.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut keep = vec![true; raw.len()];
    // Only hits in one cluster of overlapping spans can affect each other;
    // clusters are tiny, so the pairwise pass stays linear overall.
    let mut cluster_start = 0;
    let mut cluster_end = 0;
    for k in 0..=raw.len() {
        if k < raw.len() && (k == cluster_start || raw[k].start < cluster_end) {
            cluster_end = cluster_end.max(raw[k].end);
            continue;
        }
        resolve_cluster(&raw[cluster_start..k], &mut keep[cluster_start..k]);
        if k < raw.len() {
            cluster_start = k;
            cluster_end = raw[k].end;
        }
    }
    let mut hits = Vec::with_capacity(keep.iter().filter(|k| **k).count());
    for (h, _) in raw.into_iter().zip(keep).filter(|(_, k)| *k) {
        let (s, e) = nmap.to_original(text, h.start, h.end);
        hits.push(Hit {
            category: h.category,
            rule: h.rule.to_owned(),
            text: text[s..e].to_owned(),
            start: s,
            end: e,
            weight: h.weight,
        });
    }
    hits
}

/// Decide, within one cluster of overlapping hits, which to keep.
fn resolve_cluster(raw: &[RawHit<'_>], keep: &mut [bool]) {
    for i in 0..raw.len() {
        for j in 0..raw.len() {
            if i == j || !keep[j] || !overlaps(&raw[i], &raw[j]) {
                continue;
            }
            let (a, b) = (&raw[i], &raw[j]);
            let same_span = a.start == b.start && a.end == b.end;
            let strictly_inside = contains(b, a) && !same_span;
            let drop = if a.category == b.category && same_span {
                // The same thing found twice: keep the first.
                j < i
            } else {
                match (a.source, b.source) {
                    // A checksum-verified number absorbs a phone or address
                    // reading of the same digits.
                    (Source::Structured, Source::Checksum) => {
                        matches!(a.category, Category::Phone | Category::Address)
                    }
                    // A phrase inside a longer phrase (any category) is
                    // reported once; overlapping phrases of one category
                    // are one hit, the earlier.
                    (Source::Phrase, Source::Phrase) => {
                        strictly_inside || (a.category == b.category && !contains(a, b) && j < i)
                    }
                    (Source::Structured, Source::Structured)
                    | (Source::Checksum, Source::Checksum) => {
                        a.category == b.category && strictly_inside
                    }
                    _ => false,
                }
            };
            if drop {
                keep[i] = false;
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::{Category, Detector, ScanContext};

    fn scan(text: &str) -> Vec<(Category, String, String)> {
        let d = Detector::new(&crate::detect::rules_only()).expect("defaults compile");
        d.scan(text, &ScanContext::default())
            .hits
            .into_iter()
            .map(|h| (h.category, h.rule, h.text))
            .collect()
    }

    #[test]
    fn plain_mail_has_no_hits() {
        let t = "Hi team,\n\nPlease find attached the Q3 statements for invoice INV-2024-0113 \
                 ($4,250.00, due 10/15/2024). Our order #58213 shipped via UPS \
                 1Z999AA10123456784. Thanks for signalling the issue with the wire harness \
                 supplier; the signal at the office is weak today.\n\nBest,\nDana";
        assert!(scan(t).is_empty(), "{:?}", scan(t));
    }

    #[test]
    fn each_category_in_one_message_with_original_spans() {
        let t = "Text me on WhatsApp at +1 (555) 123-4567 or jo.smith@gmail.com, \
                 I'm at 42 Elm Street. Can I Zelle you the $300?";
        let hits = scan(t);
        let cats: Vec<Category> = hits.iter().map(|h| h.0).collect();
        for c in Category::ALL {
            assert!(cats.contains(&c), "{c:?} missing from {hits:?}");
        }
        assert!(hits.iter().any(|h| h.2 == "+1 (555) 123-4567"));
        assert!(hits.iter().any(|h| h.2 == "42 Elm Street"));
    }

    #[test]
    fn offsets_point_into_the_original_after_unicode_folding() {
        let d = Detector::new(&crate::detect::rules_only()).expect("compiles");
        let text = "Héllo — add me on Ｔｅｌｅｇｒａｍ please";
        let v = d.scan(text, &ScanContext::default());
        assert_eq!(v.hits.len(), 1, "{:?}", v.hits);
        let h = &v.hits[0];
        assert_eq!(&text[h.start..h.end], "Ｔｅｌｅｇｒａｍ");
        assert_eq!(h.text, "Ｔｅｌｅｇｒａｍ");
    }

    #[test]
    fn an_iban_is_not_also_a_phone_number() {
        let hits = scan("IBAN DE89 3704 0044 0532 0130 00");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].1, "payment.iban");
    }

    #[test]
    fn a_phrase_inside_a_longer_phrase_is_reported_once() {
        let hits = scan("can we talk outside the platform?");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].0, Category::Messaging);
    }

    #[test]
    fn quoted_text_is_not_scanned_by_scan_message() {
        let d = Detector::new(&crate::detect::rules_only()).expect("compiles");
        let body = "Thanks, paid on the portal.\n\nOn Mon, Mar 3, 2025 at 10:12 AM Support <support@example.com> wrote:\n> Reminder: never share WhatsApp numbers or pay by Zelle.\n";
        assert!(
            d.scan_message(body, &ScanContext::default())
                .hits
                .is_empty()
        );
        let body = "> Which app?\nWhatsApp is best\n";
        let v = d.scan_message(body, &ScanContext::default());
        assert_eq!(v.hits.len(), 1);
        assert_eq!(&body[v.hits[0].start..v.hits[0].end], "WhatsApp");
    }

    #[test]
    fn switching_a_category_off_silences_it() {
        let mut cfg = crate::detect::rules_only();
        cfg.rules.messaging = false;
        let d = Detector::new(&cfg).expect("compiles");
        assert!(
            d.scan("add me on signal or WhatsApp", &ScanContext::default())
                .hits
                .is_empty()
        );
    }

    #[test]
    fn a_street_address_in_a_bookkeeping_sense_is_not_evidence() {
        for t in [
            "The rental at 312 Pine Street had a new roof put on in June.",
            "I sold the duplex at 2245 Cedar Avenue in May.",
            "The supplier's invoice lists 1800 Distribution Way, Memphis.",
            "The IRS office we visited was at 31 Hopkins Plaza, Baltimore.",
        ] {
            assert!(
                !scan(t).iter().any(|h| h.0 == Category::Address),
                "{t}: {:?}",
                scan(t)
            );
        }
        for t in [
            "Please mail the copies to my home: 52 Birchwood Drive, Albany NY.",
            "We moved! New address is 3302 Industrial Pkwy, Dayton OH.",
        ] {
            assert!(
                scan(t).iter().any(|h| h.0 == Category::Address),
                "{t}: {:?}",
                scan(t)
            );
        }
    }

    #[test]
    fn a_phone_number_given_to_someone_else_is_not_evidence() {
        for t in [
            "The health department's number on the notice is 555-0111.",
            "The IRS hotline is 800-829-1040, they were no help.",
        ] {
            assert!(
                !scan(t).iter().any(|h| h.0 == Category::Phone),
                "{t}: {:?}",
                scan(t)
            );
        }
        for t in [
            "Call me at 415-555-0199 about the IRS notice.",
            "About the notice: my cell is 415 555 0199.",
        ] {
            assert!(
                scan(t).iter().any(|h| h.0 == Category::Phone),
                "{t}: {:?}",
                scan(t)
            );
        }
    }

    #[test]
    fn ambiguous_words_need_context() {
        for t in [
            "Thanks for the signal, we'll look into it",
            "signal the issue to your manager",
            "the signal is weak in the basement",
            "we ordered a new wire harness",
            "wireless keyboard",
            "cut me some slack this week",
            "my friends and family recommended you",
        ] {
            assert!(scan(t).is_empty(), "{t}: {:?}", scan(t));
        }
        for (t, c) in [
            ("message me on Signal", Category::Messaging),
            ("I'm on signal.", Category::Messaging),
            ("ping me on slack", Category::Messaging),
            ("I can wire you the balance", Category::Payment),
            ("send it via PayPal friends and family", Category::Payment),
            ("wa.me/15551234567", Category::Messaging),
        ] {
            assert!(scan(t).iter().any(|h| h.0 == c), "{t}: {:?}", scan(t));
        }
    }
    #[test]
    fn someone_else_s_number_stays_theirs_past_a_clause_of_the_customer_s_own() {
        let has_phone = |t: &str| scan(t).iter().any(|(c, _, _)| *c == Category::Phone);
        assert!(!has_phone(
            "The IRS notice says to call 800-829-1040 if we disagree, but I'd rather you handle it."
        ));
        assert!(has_phone(
            "The IRS notice has my old number; my cell is 312-555-0144."
        ));
        assert!(has_phone(
            "The IRS may call, so please give them my cell, 312-555-0144."
        ));
    }

    #[test]
    fn a_business_moving_between_addresses_is_bookkeeping() {
        let has_address = |t: &str| scan(t).iter().any(|(c, _, _)| *c == Category::Address);
        assert!(!has_address(
            "We moved the bakery from 220 Elm Street to the new space at 14 Water Street in March."
        ));
        assert!(has_address(
            "Drop the originals at my house, 220 Elm Street, after five."
        ));
    }

    /// Every row's text finds evidence of its category exactly when the
    /// row says it should; the failures are listed with what was found.
    fn assert_rows(rows: &[(&str, Category, bool)]) {
        let wrong: Vec<String> = rows
            .iter()
            .filter(|&&(text, category, expected)| finds(text, category) != expected)
            .map(|&(text, _, expected)| format!("{text} (want {expected}): {:?}", scan(text)))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Whether `text` has a hit of `category`.
    fn finds(text: &str, category: Category) -> bool {
        scan(text).iter().any(|(c, _, _)| *c == category)
    }

    #[test]
    fn wordings_the_sixth_batch_taught_count_and_their_innocent_shapes_do_not() {
        use Category::{Address, Email, Messaging, Payment, Phone};
        let rows: &[(&str, Category, bool)] = &[
            // Numbers read aloud, Mexican numbers, a number in a chat link.
            (
                "Mobile's oh seven nine double oh, four double six, two one eight.",
                Phone,
                true,
            ),
            (
                "call me, 9 seven 0, five five five, 01 eight 2. thx",
                Phone,
                true,
            ),
            (
                "mejor márqueme a mi cel, 55 1234 5678, en la tarde",
                Phone,
                true,
            ),
            (
                "from the US dial 011 52 81 2345 6789 for my mobile",
                Phone,
                true,
            ),
            ("Quicker here: wa.me/447700900231", Phone, true),
            ("Invoices 4 one 2, 5 and 6 were paid late.", Phone, false),
            (
                "the CFDI folio 12 3456 7890 is on the invoice",
                Phone,
                false,
            ),
            // House numbers in words, unit/number, offers, a café.
            (
                "Come by, it's twenty-two seventeen Maple Court, just knock.",
                Address,
                true,
            ),
            (
                "I'm at 3/22 Beach Rd, Bondi, drop by after work.",
                Address,
                true,
            ),
            (
                "Pop round to mine, 14 Rosebery Avenue, London.",
                Address,
                true,
            ),
            (
                "Let's meet at Ritual Coffee on Valencia near 21st, Thursday?",
                Address,
                true,
            ),
            (
                "We sold twenty-two units at the Maple Court fair.",
                Address,
                false,
            ),
            (
                "I moved from 14 Rue Oberkampf in Paris to Lyon.",
                Address,
                false,
            ),
            (
                "Our new office address for the state registration is 95 Commerce Dr. \
                 Do I need to update it with the IRS too?",
                Address,
                false,
            ),
            // Someone's personal address handed over; an office's.
            (
                "Best to go straight to him, he keeps those: pastor.jim@gmail.com.",
                Email,
                true,
            ),
            (
                "Forwarded it to phishing@irs.gov like their site says.",
                Email,
                false,
            ),
            (
                "The scammer's address was refunds.help@gmail.com, contact him directly?",
                Email,
                false,
            ),
            // An ID and a pointer back; a possessive is not Teams.
            (
                "KakaoTalk ID: parkjh77, please message there, my son helps.",
                Messaging,
                true,
            ),
            (
                "Your team's phone number went to voicemail twice.",
                Messaging,
                false,
            ),
            // App names as verbs, new apps, cash instead of an invoice.
            (
                "Can I just Wise you the euros instead of the card form?",
                Payment,
                true,
            ),
            (
                "I can Revolut you now, no need to wait for the invoice link.",
                Payment,
                true,
            ),
            ("¿Les puedo pagar por Bizum?", Payment, true),
            (
                "Don't bother billing us, I'll leave an envelope with the hostess, cash.",
                Payment,
                true,
            ),
            (
                "No se preocupe por la factura, le pago en efectivo.",
                Payment,
                true,
            ),
            (
                "my client pay me with Zelle and some with check",
                Payment,
                false,
            ),
            (
                "La aseguradora me pagó las comisiones por Zelle.",
                Payment,
                false,
            ),
            (
                "My cousin wired me $15,000 through Western Union as a gift.",
                Payment,
                false,
            ),
            (
                "The lease is through Marlin Business Bank, account 55-02931.",
                Payment,
                false,
            ),
            (
                "Don't bother billing us in August, there's no cash flow.",
                Payment,
                false,
            ),
        ];
        assert_rows(rows);
    }

    #[test]
    fn wordings_the_seventh_batch_taught_count_and_their_innocent_shapes_do_not() {
        use Category::{Address, Email, Messaging, Payment, Phone};
        let rows: &[(&str, Category, bool)] = &[
            // A German mobile of twelve digits; a number given in parts.
            ("Rufen Sie mich an: 0172 3456 7890, ab 14 Uhr.", Phone, true),
            (
                "My cell: area code 503, then 555, and it ends in 8812.",
                Phone,
                true,
            ),
            (
                "The area code is 503 on the W-2 but the payroll year ends in 2020.",
                Phone,
                false,
            ),
            (
                "Ring me on oh-seven-seven-double-oh, nine hundred, three four seven.",
                Phone,
                true,
            ),
            (
                "The invoices were three hundred, four hundred, five hundred and nine hundred.",
                Phone,
                false,
            ),
            // A house number in teens; a courier carrying to the address.
            (
                "Please mail the copies to me at home: Fourteen Birch Hollow Lane, Ames.",
                Address,
                true,
            ),
            (
                "Fourteen boxes of receipts went to the shredder by mistake.",
                Address,
                false,
            ),
            (
                "Please send by FedEx to Rua da Prata 210, Lisboa. I'm there every day.",
                Address,
                true,
            ),
            (
                "My cousin sent the papers by FedEx to our old office at 12 Elm Street.",
                Address,
                false,
            ),
            // A visit's topic after the address does not make it a rental's.
            (
                "Stop by the garage, 1550 Commerce Dr, and we can go through the depreciation.",
                Address,
                true,
            ),
            (
                "The lease at 1550 Commerce Dr renews in March and the depreciation continues.",
                Address,
                false,
            ),
            // Directions and crossings as the place to meet.
            (
                "Come out Friday: the blue shed past the Shell station on Route 9.",
                Address,
                true,
            ),
            (
                "The truck wash off exit 112 on I-75 charged us twice in March.",
                Address,
                false,
            ),
            // Handles without the app, a short app name, a habit.
            (
                "never check this inbox, I'm jess_reyes.co on there",
                Messaging,
                true,
            ),
            (
                "I'm way behind on the mileage log there, sorry.",
                Messaging,
                false,
            ),
            ("if it's quicker just message me on WA", Messaging, true),
            (
                "We moved the business from WA to Oregon in June.",
                Messaging,
                false,
            ),
            (
                "Riders sometimes message me on WhatsApp, so I pay for the plan.",
                Messaging,
                false,
            ),
            // A personal inbox named by provider; a service's sending address.
            (
                "write to me instead: it's rob.hale77 on gmail.",
                Email,
                true,
            ),
            (
                "Etsy sends the statements from transaction@etsy.com.",
                Email,
                false,
            ),
            // Plain-words payment in Spanish; Pix offered.
            ("¿Le puedo pagar por fuera? Así ahorramos.", Payment, true),
            (
                "El cliente quiere pagar por fuera del plazo, ¿le cobro recargo?",
                Payment,
                false,
            ),
            ("Could I pay your invoice by Pix instead?", Payment, true),
            (
                "Tour groups pay with WeChat Pay at the register.",
                Payment,
                false,
            ),
        ];
        assert_rows(rows);
    }

    #[test]
    fn wordings_the_eighth_batch_taught_count_and_their_innocent_shapes_do_not() {
        use Category::{Address, Email, Payment, Phone};
        let rows: &[(&str, Category, bool)] = &[
            // Wrapped at the end of a line; read aloud after figures.
            (
                "Easier if you call me, 415 555\n0193, mornings.",
                Phone,
                true,
            ),
            (
                "Write to me at coach.tanya\n@protonmail.com instead.",
                Email,
                true,
            ),
            (
                "Just call the boat phone, two five one - 555 - oh eight seven seven.",
                Phone,
                true,
            ),
            // Only the nearest word names a reference; a number given to a bank.
            (
                "Best is the number I gave the bank on the loan application \u{2014} 707.555.0164.",
                Phone,
                true,
            ),
            ("The loan 5551234 closes in May.", Phone, false),
            // A document the address is sent to, or that says to call.
            (
                "Just email me the letter to keymaster502 at aol dot com please.",
                Email,
                true,
            ),
            (
                "The CP2000 says to call 1-800-829-0922 if I disagree.",
                Phone,
                false,
            ),
            // Someone's personal number handed over to use directly.
            (
                "Our director handles payroll. You can reach her directly at 503-555-1277, it's her mobile.",
                Phone,
                true,
            ),
            // The app as a verb: the writer paying the reader, or customers paying the writer.
            (
                "I'll just Zelle you the $600 for the bookkeeping catch-up.",
                Payment,
                true,
            ),
            (
                "Half my grooming clients Venmo me at the end of the appointment.",
                Payment,
                false,
            ),
            // A question that proposes; a tax authority's account.
            ("Can't we just sort it between us?", Payment, true),
            (
                "HMRC says to pay to sort code 08 32 10, account 12001039. Is that legit?",
                Payment,
                false,
            ),
            // Landmarks on a named street; a unit before a slash.
            (
                "My office is behind the laundromat on Elm, second floor. Come up whenever.",
                Address,
                true,
            ),
            (
                "Can you post the paper copy to Unit 4/19 Marine Pde, Coolangatta?",
                Address,
                true,
            ),
            (
                "The shop on Canal Street was sold in March, so the depreciation stops.",
                Address,
                false,
            ),
            // An address updated on a record is a field, not a place offered.
            (
                "Please update it on the return to 3381 Poplar Ave, Memphis.",
                Address,
                false,
            ),
            (
                "Please update it to 3381 Poplar Ave, Memphis, and send the copies there.",
                Address,
                true,
            ),
        ];
        assert_rows(rows);
    }

    #[test]
    fn wordings_the_ninth_batch_taught_count_and_their_innocent_shapes_do_not() {
        use Category::{Address, Email, Messaging, Payment, Phone};
        let rows: &[(&str, Category, bool)] = &[
            // Cash in a contraction or an envelope; a cheque to the reader; pay in kind.
            ("We'll pay cash when you come by on Friday.", Payment, true),
            (
                "I can bring the fee to you in an envelope at the match.",
                Payment,
                true,
            ),
            (
                "I'll post a cheque directly to you tomorrow.",
                Payment,
                true,
            ),
            (
                "Could I offer you a season pass as payment for the filing?",
                Payment,
                true,
            ),
            // A subjectless question on the payment verb; formal second person.
            ("Send the deposit through Venmo?", Payment, true),
            (
                "Darf ich Ihnen das Honorar per PayPal schicken?",
                Payment,
                true,
            ),
            // The writer paid by someone else; a purchase; a document's instruction; a quoted phrase.
            (
                "The booking agency pays me by Venmo after each show.",
                Payment,
                false,
            ),
            ("I bought the raffle tickets through Venmo.", Payment, false),
            (
                "The vet's invoice says \"pay by Zelle to the clinic\" and I did.",
                Payment,
                false,
            ),
            (
                "What does \"pay you directly\" mean in the studio's contract?",
                Payment,
                false,
            ),
            // Bank details given for a record.
            (
                "Attached is a voided check for the payroll setup, routing 021000021.",
                Payment,
                false,
            ),
            // A route with a direction letter; a Spanish street name after the number.
            (
                "Come see the stand at 4100 N Old Route 9 on Saturday.",
                Address,
                true,
            ),
            (
                "Mejor m\u{e1}ndelos a mi casa, 1450 Camino Real, Santa Fe.",
                Address,
                true,
            ),
            // A place named on its street, or a street and the landmark facing it.
            (
                "Meet us at the Lantern Brewery on Canal Street and bring the depreciation schedule.",
                Address,
                true,
            ),
            (
                "Drop the folders at my studio, Harbour Road, opposite the ferry terminal.",
                Address,
                true,
            ),
            (
                "Our supplier is on Industrial Road, opposite the rail yard; their invoice has it.",
                Address,
                false,
            ),
            // An invitation to a server; a handle in the DMs; an app by its icon.
            (
                "I'll send an invite to our Slack workspace for the receipts.",
                Messaging,
                true,
            ),
            (
                "Slide into our DMs @kilnandcoil for the count.",
                Messaging,
                true,
            ),
            (
                "A text said to reply on the paper plane app with my SSN.",
                Messaging,
                false,
            ),
            // An inbox beside its provider; a number in two parts.
            ("Send it to me at birch.lane.farm (yahoo).", Email, true),
            (
                "The phishing mail came from irs.refund.desk (gmail).",
                Email,
                false,
            ),
            ("My cell is 312 555 and then 0148.", Phone, true),
        ];
        assert_rows(rows);
    }

    #[test]
    fn wordings_the_tenth_batch_taught_count_and_their_innocent_shapes_do_not() {
        use Category::{Address, Email, Messaging, Payment, Phone};
        let rows: &[(&str, Category, bool)] = &[
            // A texting invitation beside a number is the number; someone else's texts and an app in a clause of habit are told.
            (
                "Text me at 919-555-0148 when the return is filed.",
                Messaging,
                false,
            ),
            (
                "Text me at 919-555-0148 when the return is filed.",
                Phone,
                true,
            ),
            ("Text me when the return is filed, thanks.", Messaging, true),
            (
                "The delivery drivers text me their mileage every Friday.",
                Messaging,
                false,
            ),
            (
                "Our old bookkeeper used to send everything over WhatsApp, I like that you use the portal.",
                Messaging,
                false,
            ),
            (
                "WhatsApp is not needed, a plain call to 303-555-0177 is fine.",
                Messaging,
                false,
            ),
            (
                "Can we move this to Messenger? I answer there faster.",
                Messaging,
                true,
            ),
            // A local number with its area code after it; a Spanish call request.
            ("Call me, 555-0164 (312), mornings are best.", Phone, true),
            ("¿Me podrían llamar al 33 1234 5678 mañana?", Phone, true),
            (
                "The county office told us to call them at (541) 555-0190 about the fee.",
                Phone,
                false,
            ),
            // Someone else's inbox handed over to deal with directly.
            (
                "Her email is dana.kim.llc@gmail.com. Please work with her directly on the K-1s.",
                Email,
                true,
            ),
            (
                "Her email was dana.kim.llc@gmail.com before she retired.",
                Email,
                false,
            ),
            // A café at a numbered crossing, coffee on a street; a French pick-up; addresses for a filing or someone else's move.
            (
                "Could we meet at the Starbucks on 5th and Pine on Thursday?",
                Address,
                true,
            ),
            (
                "Can we meet up for coffee at Little Owl on Birch Street?",
                Address,
                true,
            ),
            (
                "I met a client for coffee at Java Joe's on Pine Street last week.",
                Address,
                false,
            ),
            (
                "Vous pourriez passer récupérer les reçus au 8 rue Victor Hugo, Bordeaux ?",
                Address,
                true,
            ),
            (
                "My new home address for the return is 88 Linden Terrace, Montclair. Please update your records.",
                Address,
                false,
            ),
            (
                "The uniform company moved to 2100 Commerce Way and raised its prices. Thank you for your help.",
                Address,
                false,
            ),
            (
                "We moved to 2100 Commerce Way, please mail the paper copies there.",
                Address,
                true,
            ),
            (
                "Die Anschrift des Vermieters ist Gartenweg 4, 50667 Köln, falls Sie sie brauchen.",
                Address,
                false,
            ),
            // Cash, a check or the fee in person offered to the reader; others' payments and an app's records.
            (
                "I'd rather pay cash for the bookkeeping this quarter.",
                Payment,
                true,
            ),
            (
                "Could I pay in person instead? I can bring a check or cash.",
                Payment,
                true,
            ),
            (
                "Patients bring a check or cash to the front desk.",
                Payment,
                false,
            ),
            (
                "I will send a personal check for the amount on the invoice.",
                Payment,
                true,
            ),
            (
                "A tenant mailed a personal check that bounced.",
                Payment,
                false,
            ),
            ("Can we just pay you via ACH this month?", Payment, true),
            (
                "Our supplier prefers payment by wire to their bank.",
                Payment,
                false,
            ),
            (
                "Let me know if you need the original PayPal CSV.",
                Payment,
                false,
            ),
        ];
        assert_rows(rows);
    }

    #[test]
    fn wordings_the_eleventh_and_twelfth_batches_taught_count_and_their_innocent_shapes_do_not() {
        use Category::{Address, Messaging, Payment};
        let rows: &[(&str, Category, bool)] = &[
            // The one paid is the writer or someone else: "pay me", "pay us",
            // "pay him", a payout, Spanish "le pago", wages; a wire to the
            // writer's own account; a fee per wire; an app's form or summary.
            (
                "Most of my clients pay me on Venmo, is that business income?",
                Payment,
                false,
            ),
            (
                "Etsy and Shopify both pay me out through PayPal every week.",
                Payment,
                false,
            ),
            (
                "The festivals pay us by bank transfer a month later.",
                Payment,
                false,
            ),
            (
                "Our supplier is in Mexico and we pay him by Western Union.",
                Payment,
                false,
            ),
            (
                "Le pago a mi ayudante por Zelle cada semana.",
                Payment,
                false,
            ),
            (
                "Some of the cooks want their paycheck by Zelle.",
                Payment,
                false,
            ),
            (
                "My client pays me by wire to my checking account.",
                Payment,
                false,
            ),
            (
                "We pay the plant by wire. The bank charges $30 per wire.",
                Payment,
                false,
            ),
            (
                "I sent you the Venmo tax form, is that all you need?",
                Payment,
                false,
            ),
            (
                "Do you want the PayPal annual summary as well?",
                Payment,
                false,
            ),
            ("Could I pay you by Zelle this month?", Payment, true),
            (
                "Our customers pay us through Square, but for your fee I'd rather just Venmo you.",
                Payment,
                true,
            ),
            ("Can we settle it by wire to your account?", Payment, true),
            (
                "I'll bring cash on Friday, no need for an invoice.",
                Payment,
                true,
            ),
            ("We can pay today in cash if that's easier.", Payment, true),
            // A failing invoice link is the reason to go around it.
            (
                "Send me your bank details and I'll transfer it directly, the invoice link keeps failing.",
                Payment,
                true,
            ),
            (
                "The last guy let me pay him under the table. Can we do the same?",
                Payment,
                true,
            ),
            // A place offered with "come grab", "you're welcome", Spanish
            // "venir" and "estamos en"; a Grove or a Mews; a place on a
            // numbered route to meet at.
            (
                "Come grab the boxes whenever, we're at 14 Linden Grove, Hove.",
                Address,
                true,
            ),
            (
                "You're welcome to look through the binders, we're at 210 Harbor Street.",
                Address,
                true,
            ),
            (
                "¿Pueden venir el lunes? Estamos en 880 Valencia Street.",
                Address,
                true,
            ),
            (
                "Meet me at the diner on Route 30 on Tuesday.",
                Address,
                true,
            ),
            (
                "It's the green shed on State Route 12, come out Saturday.",
                Address,
                true,
            ),
            (
                "Come on out Friday, it's the red barn on State Route 9.",
                Address,
                true,
            ),
            (
                "The buyer picked up the tractor at the auction barn on Route 30.",
                Address,
                false,
            ),
            (
                "The Miami office is at 1001 Brickell Bay Drive, do we need to register there?",
                Address,
                false,
            ),
            // An invitation to a workspace, a server or a shared channel; a
            // German "wenn wir"; "message you" on an app.
            (
                "I'll invite you to our workspace for the payroll questions.",
                Messaging,
                true,
            ),
            (
                "Could you join our Slack for the year-end?",
                Messaging,
                true,
            ),
            (
                "I've opened a shared channel with you for the VAT questions.",
                Messaging,
                true,
            ),
            (
                "Einfacher wäre es, wenn wir über WhatsApp schreiben.",
                Messaging,
                true,
            ),
            (
                "Could I message you on Telegram for quick questions?",
                Messaging,
                true,
            ),
            // Staff named as the subject of "text me" on an app: what
            // others do, not an offer.
            (
                "My cleaners text me their hours each week on WhatsApp.",
                Messaging,
                false,
            ),
            (
                "In the evenings text me on WhatsApp, it's quicker.",
                Messaging,
                true,
            ),
            (
                "Is the Slack subscription for our workspace a software expense?",
                Messaging,
                false,
            ),
        ];
        assert_rows(rows);
    }

    #[test]
    fn wordings_the_thirteenth_and_fourteenth_batches_taught_count_and_their_innocent_shapes_do_not()
     {
        use Category::{Address, Email, Messaging, Payment, Phone};
        let rows: &[(&str, Category, bool)] = &[
            // Someone's line or inbox handed to the reader ("call her on her
            // mobile", "her cell is", "send him … directly"); the writer's
            // number after "call me about …", a topic set apart by a comma.
            (
                "Our founder would rather talk. Call her on her mobile, 415-555-0137, after lunch.",
                Phone,
                true,
            ),
            (
                "Her cell is 303-555-0164 if anything comes up about the payroll.",
                Phone,
                true,
            ),
            (
                "Ring me about the closing statement, 503-555-0112.",
                Phone,
                true,
            ),
            (
                "Call me about the payroll thing 206 555 0148 when you can.",
                Phone,
                true,
            ),
            (
                "The bank agent asked us to call her at 888-555-0190 about the loan.",
                Phone,
                false,
            ),
            (
                "El aviso dice que hay que llamar al 800-555-0177 antes del viernes.",
                Phone,
                false,
            ),
            (
                "Please send him the W-2 questions directly: ray.ortiz.home@gmail.com",
                Email,
                true,
            ),
            // Venues and meeting proposals; a letter's instruction, a move, a
            // company by its legal form and a past lunch are no offer.
            (
                "Shall we say coffee at Nina's Bakery, 220 Elm Street, at ten?",
                Address,
                true,
            ),
            (
                "Come meet me at 1500 Broadway on Monday with the binders.",
                Address,
                true,
            ),
            (
                "I'll be at the truck stop on I-70 exit 101 Friday, grab the binders then.",
                Address,
                true,
            ),
            (
                "We sell at 4th and Main every Sunday, come by for the box.",
                Address,
                true,
            ),
            (
                "The notice says to mail the payment to 100 State Street, Room 4. Please log it.",
                Address,
                false,
            ),
            (
                "Please note that Harbor Print moved to 88 Mill Road in May.",
                Address,
                false,
            ),
            (
                "The closing was handled by Harbor Title LLC, 12 Water Street, Easton.",
                Address,
                false,
            ),
            (
                "I had lunch at the Corner Diner on Main Street with a client last week.",
                Address,
                false,
            ),
            // Asked into a group, a server or a channel; an old group is history.
            (
                "The crew shares photos in a WhatsApp group. Can I add you to it?",
                Messaging,
                true,
            ),
            (
                "Could you join our Teams channel for the audit?",
                Messaging,
                true,
            ),
            (
                "I'll message you on Signal tonight with the totals.",
                Messaging,
                true,
            ),
            (
                "Our drivers used to share receipts in a WhatsApp group.",
                Messaging,
                false,
            ),
            // Cash for the fee, a supposition with "if I paid"; customers and
            // guests paying, staff paid in cash.
            (
                "Can we pay you guys cash for the payroll setup?",
                Payment,
                true,
            ),
            (
                "We'd like to pay the retainer in cash this year.",
                Payment,
                true,
            ),
            (
                "Would it be OK if I paid the balance via Zelle?",
                Payment,
                true,
            ),
            ("Our wholesale customers pay by wire.", Payment, false),
            (
                "Guests often pay with Revolut at the front desk.",
                Payment,
                false,
            ),
            (
                "A los meseros les pago en efectivo cada semana.",
                Payment,
                false,
            ),
        ];
        assert_rows(rows);
    }

    #[test]
    fn wordings_the_fifteenth_and_sixteenth_batches_taught_count_and_their_innocent_shapes_do_not()
    {
        use Category::{Address, Email, Messaging, Payment, Phone};
        let rows: &[(&str, Category, bool)] = &[
            // A number someone else gave the writer ("the number was", "asked
            // me to call", "gave us a number", Portuguese "dizem para
            // ligar"); a number handed over "at home".
            (
                "I got a text saying I owe a toll. The number was 415-555-0190. Scam?",
                Phone,
                false,
            ),
            (
                "Someone claiming to be HMRC asked me to call 0203 555 0168 about a penalty.",
                Phone,
                false,
            ),
            (
                "The inspector gave us a number to ring, 312-555-0172. Is his fee deductible?",
                Phone,
                false,
            ),
            ("Eles dizem para ligar no 617-555-0133.", Phone, false),
            (
                "He asked if someone could telephone him at home on 0161 555 0783.",
                Phone,
                true,
            ),
            // Someone's inbox to copy in or write to, their own or personal
            // one whatever the domain; "not the firm's" names the other one.
            (
                "Lauren's email is lauren.pike.pm@gmail.com, please cc her on the reports.",
                Email,
                true,
            ),
            (
                "Please correspond with her husband, he keeps the receipts: mick.oc@outlook.com.",
                Email,
                true,
            ),
            (
                "Our chair would like it first. Her personal email is noma.k@telkomsa.net.",
                Email,
                true,
            ),
            (
                "Please write to me on my own inbox, not the firm's: g.mbeki.home@gmail.com.",
                Email,
                true,
            ),
            // A British address that ends in a postcode, with no house
            // number; the writer's own clinic; "N Broadway"; a place the
            // reader is welcome to collect from.
            (
                "We're at Hollybank Farm, Church Lane, Little Milton, Oxford OX44 7QB. Come by any day.",
                Address,
                true,
            ),
            (
                "The wholesaler's statement gives Unit 9, Riverside Trading Estate, Bristol BS2 0SP.",
                Address,
                false,
            ),
            (
                "Can we meet? There's a coffee shop next to my clinic, Bean There, on 22 Wharf Street.",
                Address,
                true,
            ),
            (
                "Mail should come to me there: c/o Foundry Cowork, 120 W Broadway, Suite 4, Tucson.",
                Address,
                true,
            ),
            (
                "He says you're welcome to collect them from his house, 415 Juniper Drive, Athens.",
                Address,
                true,
            ),
            // The writer's own new address to be put on the return or the
            // file; a new hire's for the W-4.
            (
                "My new address is 48 Larch Avenue, Hamilton. The office is here too. Please put it on my return.",
                Address,
                false,
            ),
            (
                "His home address for the W-4 is 902 Linden Street, Dayton OH 45402.",
                Address,
                false,
            ),
            // Asked into a group or a workspace on the app, or to use it
            // with the writer; a request whose last clause tells history.
            (
                "We're all in a WhatsApp group for the rentals. Would you join it?",
                Messaging,
                true,
            ),
            (
                "Please send the payroll questions on WhatsApp, it's the mobile on the letter I sent.",
                Messaging,
                true,
            ),
            (
                "We set up a Slack for the restaurant. I'd be glad to invite you too.",
                Messaging,
                true,
            ),
            (
                "We set up a Slack for the kitchen team; is the subscription an expense?",
                Messaging,
                false,
            ),
            ("can we just do this over messenger?", Messaging, true),
            (
                "The partners would like to use Teams with us rather than the portal.",
                Messaging,
                true,
            ),
            (
                "Signal works on the ship's wifi, same number as on my file.",
                Messaging,
                true,
            ),
            (
                "The card machine keeps losing signal; it works on the wifi, same as the till.",
                Messaging,
                false,
            ),
            // Something offered in kind instead of the invoice, the rest
            // settled directly.
            (
                "In lieu of this year's invoice, would you accept a weekend at our lodge?",
                Payment,
                true,
            ),
            (
                "Would you take a case of our wine in part payment this quarter?",
                Payment,
                true,
            ),
            (
                "The tenants want to settle the rest of the deposit with the letting agent.",
                Payment,
                false,
            ),
        ];
        assert_rows(rows);
    }
}

#[cfg(test)]
mod robustness {
    use crate::detect::{Detector, ScanContext};

    /// Nothing panics on input: random text from a pool of the characters
    /// the rules care about (digits, separators, `@`, look-alikes,
    /// zero-width and combining characters, fullwidth forms, emoji), and
    /// every hit's span is a valid slice of the text it reports.
    #[test]
    fn random_text_never_panics_and_spans_are_valid() {
        let pool: Vec<char> = "0123456789 abcdefghijklmnopqrstuvwxyz ATWZ@.-()+#$/:,\n\
             аеорсΟν\u{200B}\u{FEFF}\u{0301}５＠ｗ①ﬁß🙂é中"
            .chars()
            .collect();
        let words = [
            "whatsapp ",
            "zelle ",
            "you ",
            "at ",
            "gmail ",
            "dot ",
            "com ",
            "five ",
            "street ",
            "venmo ",
            "signal ",
            "wire ",
            "iban ",
            "de89 ",
            "bc1q",
            "0x",
            "p.o. box ",
            "pay ",
            "> ",
            "On Mon wrote:\n",
            "-----Original Message-----\n",
        ];
        let d = Detector::new(&crate::detect::rules_only()).expect("compiles");
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let len = (next() % 200) as usize;
            let mut text = String::new();
            for _ in 0..len {
                if next() % 4 == 0 {
                    text.push_str(words[(next() % words.len() as u64) as usize]);
                } else {
                    text.push(pool[(next() % pool.len() as u64) as usize]);
                }
            }
            for v in [
                d.scan(&text, &ScanContext::default()),
                d.scan_message(&text, &ScanContext::default()),
            ] {
                for h in &v.hits {
                    assert!(h.start < h.end && h.end <= text.len(), "{h:?} in {text:?}");
                    assert_eq!(text.get(h.start..h.end), Some(h.text.as_str()), "{text:?}");
                }
            }
        }
    }
}
