//! Owner: whose contact detail a phone number, e-mail address or street
//! address is.
//!
//! Receives one contact-detail hit (skeleton offsets) and decides whether
//! it is the writer's own, offered to the reader, or someone else's: a
//! courier's, a bank's, an airline's, a government office's, a vendor's,
//! the number a stranger called from, a line quoted from a letter, or the
//! writer's own old details given as history. Only the writer's own is
//! evidence: a client who asks us to call the IRS at its hotline is not
//! moving the conversation off the platform.
//!
//! The decision reads the words before the detail in its sentence, nearest
//! first, and the first decisive word wins:
//!
//! 1. inside double quotes on its line: quoted (a letter, a notice);
//! 2. a word of history (`old`, `former`, `previous`, `ex`): not current;
//! 3. a possessive (`the bank's`, `UPS's`) or a configured third party
//!    (`context.contact_owners`: `irs`, `airline`, `courier`, `vendor`, …)
//!    or a third-person pronoun (`their`, `her`): someone else's, unless
//!    it is one of the writer's own people (`context.contact_proxies`:
//!    `my husband's cell`, `my assistant … email her at`);
//! 4. `from` after a word of contact (`called me from`, `a text from`):
//!    the caller's; `from` after `you` (`I'll text you from`) is the
//!    writer's;
//! 5. a word of the writer's own (`my`, `our`, `I'm`, `me`, `us` not
//!    after a past-tense verb): the writer's.
//!
//! No decisive word: the writer's (a bare number in a signature is shared
//! to be used). A street address, which clients name all the time in
//! bookkeeping (a rental, a move, a closed location), counts only when
//! the text around it offers it (`context.address_offers`: send, mail,
//! drop off, come by, "my address is"), in its sentence or the ones
//! before and after.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::Category;
use super::patterns::Compiled;
use super::words::{self, words_before};

/// Whose a contact detail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The writer's own (or nothing says otherwise): evidence.
    Writer,
    /// Someone else's: a third party named or pointed at.
    ThirdParty,
    /// The writer's, but old (`my old number`, `our old address`).
    History,
    /// Quoted from someone else's text.
    Quoted,
    /// Someone else's, told as news: an instruction read out ("the letter
    /// says to send it to …"), a move ("the grantee moved to …"). Never
    /// handed to the reader.
    Reported,
}

/// What ends the stretch of text the owner is looked for in.
/// A closing bracket ends it too: "(my own return, not the practice's)
/// please write to …" is not the practice's address.
const OWNER_STOPS: &[u8] = b".!?\n;)";

/// How many words back the owner is looked for.
const OWNER_REACH: usize = 8;

/// How many words back a word of history still qualifies the detail ("our
/// old address, 901 …", not "my new number, since the old one got
/// hacked: …").
const HISTORY_REACH: usize = 3;

/// Words of history.
const HISTORY: &[&[u8]] = &[b"old", b"former", b"previous", b"prior", b"ex", b"formerly"];

/// Third-person pronouns that point at someone else.
/// ("them" and "its" are left out: "drop them at", "its Dev here".)
const THIRD_PERSON: &[&[u8]] = &[
    b"their", b"theirs", b"his", b"her", b"hers", b"they", b"he", b"she", b"him",
];

/// Words of the writer's own.
const OWN: &[&[u8]] = &[
    b"my", b"mine", b"our", b"ours", b"i'm", b"im", b"we're", b"i'll", b"i'd",
];

/// Object pronouns of the writer: theirs unless a past-tense verb (someone
/// else acting on them) comes right before.
const OWN_OBJECTS: &[&[u8]] = &[b"me", b"us"];

/// Words before `from` that make the detail the sender's of a call or
/// message, not the writer's.
const RECEIVED: &[&[u8]] = &[
    b"me",
    b"us",
    b"call",
    b"calls",
    b"text",
    b"texts",
    b"voicemail",
    b"message",
    b"messages",
    b"email",
    b"letter",
    b"notice",
    b"number",
    b"sms",
    b"mail",
    b"came",
];

/// `'s` endings that are contractions, not possessives; the names of a
/// contact detail among them ("mobile's oh seven seven…" is "mobile is").
const NOT_POSSESSIVE: &[&[u8]] = &[
    b"it's",
    b"let's",
    b"that's",
    b"what's",
    b"here's",
    b"there's",
    b"he's",
    b"she's",
    b"who's",
    b"where's",
    b"how's",
    b"today's",
    b"mobile's",
    b"cell's",
    b"number's",
    b"phone's",
    b"email's",
    b"address's",
    b"handle's",
];

/// Whether `w` is a possessive (`bank's`), not a contraction (`it's`).
pub(crate) fn is_possessive(w: &[u8]) -> bool {
    possessor(w).is_some()
}

/// A possessive word (`bank's`, `ups's`), not a contraction; the owner.
fn possessor(w: &[u8]) -> Option<&[u8]> {
    if NOT_POSSESSIVE.contains(&w) {
        return None;
    }
    w.strip_suffix(b"'s").filter(|o| !o.is_empty())
}

/// A past-tense verb ("called", "gave", "sent"): someone else acting on
/// the writer.
fn is_past_verb(w: &[u8]) -> bool {
    w.ends_with(b"ed") || matches!(w, b"gave" | b"sent" | b"told" | b"rang" | b"left" | b"got")
}

/// Whether the detail at `start..end` sits inside double quotes on its
/// line: an odd number of `"` before it.
fn is_quoted(norm: &[u8], start: usize) -> bool {
    let line_start = norm[..start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    norm[line_start..start]
        .iter()
        .filter(|&&b| b == b'"')
        .count()
        % 2
        == 1
}

/// One of the writer's own people ("my husband", "our new bookkeeper";
/// not "my old accountant") in the sentence around `start` or the one
/// before it: a pronoun may point at them.
fn proxy_near(c: &Compiled, norm: &[u8], start: usize) -> bool {
    let (s, e) = words::sentence(norm, start, start, 200);
    let (ps, _) = words::sentence(norm, s.saturating_sub(2), s.saturating_sub(2), 200);
    let mut before: [&[u8]; 2] = [b"", b""];
    for w in words::words_in(&norm[ps.min(s)..e]) {
        if c.owner.proxies.contains(w) && is_own_person(before) {
            return true;
        }
        before = [before[1], w];
    }
    false
}

/// The two words before a noun make it the writer's own, current person:
/// "my husband", "our new bookkeeper", not "my old accountant".
fn is_own_person(before: [&[u8]; 2]) -> bool {
    let own = |w: &[u8]| w == b"my" || w == b"our";
    own(before[1]) || (own(before[0]) && !HISTORY.contains(&before[1]))
}

/// Whose the contact detail at `start..end` of the skeleton is.
///
/// For a street address (`for_address`), a word that also offers it
/// ("courier it to", "for the courier: …") names no owner.
pub(crate) fn owner_of(c: &Compiled, norm: &[u8], start: usize, for_address: bool) -> Owner {
    if is_quoted(norm, start) {
        return Owner::Quoted;
    }
    // "the inspector gave us a number to ring for the follow-up, 312-…":
    // a number someone else handed the writer, however far back.
    if !for_address {
        let before = &norm[start.saturating_sub(160)..start];
        if GIVEN_NUMBER_FINDER.find_iter(before).any(|m| {
            !before[m.end()..]
                .iter()
                .any(|b| words::SENTENCE_STOPS.contains(b))
        }) {
            return Owner::Reported;
        }
    }
    let mut back = words_before(norm, start, OWNER_STOPS, OWNER_REACH).peekable();
    let mut nearer: &[u8] = b"";
    let mut n = 0;
    while let Some(w) = back.next() {
        n += 1;
        let further = back.peek().copied().unwrap_or_default();
        if HISTORY.contains(&w) && n <= HISTORY_REACH {
            return Owner::History;
        }
        if let Some(o) = possessor(w) {
            // "my own inbox, not the show's: …": the one it is not.
            if back.clone().take(2).any(|w| w == b"not") {
                nearer = w;
                continue;
            }
            // "my shop, Tony's Auto, 4400 Route 9": the business's name.
            if c.owner.proxies.contains(o) || (for_address && own_place_before(norm, start)) {
                return Owner::Writer;
            }
            // "lunch at Becky's Diner, 390 Commercial Street": a place
            // named after someone, not their address.
            if for_address && VENUES.contains(&nearer) {
                nearer = w;
                continue;
            }
            return Owner::ThirdParty;
        }
        // "send it by DHL to …", "ship via UPS to …": the courier carries
        // to the place after it, it does not own it.
        if nearer == b"to" && matches!(further, b"by" | b"via" | b"per") {
            nearer = w;
            continue;
        }
        // "email me the letter to keymaster502 at aol dot com": the
        // document goes to the address, it does not own it.
        if nearer == b"to" && DOCUMENTS.contains(&w) {
            nearer = w;
            continue;
        }
        // "The CP2000 says to call …", "the letter said to write to …":
        // someone else's instruction, unless the writer said it.
        if SAYS.contains(&w) && !matches!(further, b"i" | b"we") {
            return if proxy_near(c, norm, start) {
                Owner::Writer
            } else {
                Owner::Reported
            };
        }
        // "Heartland Imaging LLC, 500 Main Street": a company named by its
        // legal form right before the address is someone else's.
        if for_address && n == 1 && LEGAL_FORMS.contains(&w) && !writer_in_paragraph(norm, start) {
            return Owner::ThirdParty;
        }
        // "a café across from my clinic, …": the writer's own practice.
        if for_address && OWN_PRACTICES.contains(&w) && matches!(further, b"my" | b"our") {
            return Owner::Writer;
        }
        if c.owner.third_parties.contains(w) && !(for_address && c.owner.address_offers.any_in(w)) {
            // "the number I gave the bank": the bank was given it; "call
            // me about the payroll thing, 408 …": the topic of the call.
            if given_by_writer(back.clone()) || (!for_address && asked_to_call_writer(back.clone()))
            {
                nearer = w;
                continue;
            }
            // "my husband" is the writer's side; "my bank" is not.
            return if c.owner.proxies.contains(w) {
                Owner::Writer
            } else {
                Owner::ThirdParty
            };
        }
        if THIRD_PERSON.contains(&w) {
            return if proxy_near(c, norm, start) {
                Owner::Writer
            } else {
                Owner::ThirdParty
            };
        }
        // "we moved from 14 Rue Oberkampf": the place left behind.
        if w == b"from" && MOVES.contains(&further) {
            return Owner::History;
        }
        // "the flower market moved to 900 Harbor Blvd": someone else's new
        // place, unless the writer or their own place moved ("we moved
        // to", "our warehouse moved to").
        if w == b"to"
            && MOVES.contains(&further)
            && !back.clone().skip(1).take(3).any(|w| MOVED_OWN.contains(&w))
        {
            return Owner::Reported;
        }
        // "told us to call them at 608-…": the number of those called.
        if !for_address
            && matches!(nearer, b"at" | b"on")
            && w == b"them"
            && CALLS.contains(&further)
        {
            return Owner::ThirdParty;
        }
        // "from now on" is a time, not a sender.
        if w == b"from" && nearer != b"now" {
            if RECEIVED.contains(&further) {
                return Owner::ThirdParty;
            }
            if further == b"you" || further == b"u" {
                return Owner::Writer;
            }
        }
        if OWN.contains(&w) {
            return Owner::Writer;
        }
        // "it asked me to call 855-…", "the inspector gave us a number to
        // call, 312-…": a number someone else handed the writer.
        if !for_address
            && OWN_OBJECTS.contains(&w)
            && (GAVE.contains(&further) || (nearer == b"to" && is_past_verb(further)))
        {
            return Owner::Reported;
        }
        // "the number was 202-…": the number a call or a text came from.
        if !for_address && n <= 2 && matches!(w, b"was" | b"were") {
            return Owner::History;
        }
        if OWN_OBJECTS.contains(&w) && nearer != b"from" && !is_past_verb(further) {
            return Owner::Writer;
        }
        nearer = w;
    }
    Owner::Writer
}

/// Third parties' places that are a writer's own after "my" or "our"
/// ("my clinic", "our hotel").
const OWN_PRACTICES: &[&[u8]] = &[b"clinic", b"hospital", b"hotel", b"pharmacy"];

/// Legal forms that end a company's name ("Wilson & Harper LLP").
const LEGAL_FORMS: &[&[u8]] = &[
    b"llc", b"llp", b"inc", b"ltd", b"corp", b"gmbh", b"plc", b"pllc", b"lp",
];

/// Words of the writer in any of the detector's languages ("bei uns im
/// Büro abholen: Bergmann Bau GmbH, …").
const WRITER_WORDS: &[&[u8]] = &[
    b"i", b"me", b"my", b"we", b"us", b"our", b"ich", b"mir", b"mich", b"wir", b"uns", b"unser",
    b"unsere", b"je", b"moi", b"nous", b"notre", b"nos", b"yo", b"mi", b"nuestra", b"nuestro",
];

/// A word of the writer in the paragraph before `start` (see
/// [`offer_window`]).
fn writer_in_paragraph(norm: &[u8], start: usize) -> bool {
    let window = offer_window(norm, start, start);
    words::words_in(window).any(|w| WRITER_WORDS.contains(&w))
}

/// Places named after someone ("Becky's Diner", "Joe's Grill"): the word
/// right after a possessive that makes it a place's name.
const VENUES: &[&[u8]] = &[
    b"diner",
    b"cafe",
    b"coffee",
    b"grill",
    b"kitchen",
    b"bakery",
    b"deli",
    b"pub",
    b"bar",
    b"tavern",
    b"restaurant",
    b"bistro",
    b"pizza",
    b"pizzeria",
    b"inn",
    b"place",
];

/// "call me", "text us", "ring me" in the words before (nearest first): the
/// number that follows is the writer's, whatever the call is about.
fn asked_to_call_writer<'a>(back: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut nearer: &[u8] = b"";
    for w in back {
        if CALLS.contains(&w) && OWN_OBJECTS.contains(&nearer) {
            return true;
        }
        nearer = w;
    }
    false
}

/// Documents that are sent to a contact detail as often as they name one
/// ("email me the letter to …").
const DOCUMENTS: &[&[u8]] = &[b"letter", b"letters", b"notice", b"notices"];

/// Verbs of an instruction read out ("the notice says to call …").
const SAYS: &[&[u8]] = &[
    b"says",
    b"said",
    b"say",
    b"states",
    b"instructs",
    b"dice",
    b"dicen",
    b"diz",
    b"dizem",
];

/// Someone else handing the writer a number ("gave us a number to call").
const GIVEN_NUMBERS: &[&[u8]] = &[
    b"gave us a number",
    b"gave me a number",
    b"gave us the number",
    b"gave me the number",
    b"gave us this number",
    b"gave me this number",
];

/// [`GIVEN_NUMBERS`] as one automaton.
static GIVEN_NUMBER_FINDER: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(GIVEN_NUMBERS).expect("the phrases compile"));

/// Verbs of giving a detail to someone ("the number I gave the bank").
const GAVE: &[&[u8]] = &[b"gave", b"given", b"told", b"showed"];

/// Whether the words before a third party (nearest first) are the writer
/// giving the detail to them: an article or possessive at most, a verb of
/// giving, then the writer ("I gave the bank", "we told our lender").
fn given_by_writer<'a>(mut back: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut w = back.next().unwrap_or_default();
    if matches!(w, b"the" | b"a" | b"an" | b"my" | b"our") {
        w = back.next().unwrap_or_default();
    }
    GAVE.contains(&w) && matches!(back.next(), Some(b"i" | b"we" | b"i've" | b"we've"))
}

/// Verbs of moving house: the address after "moved from" is the old one.
const MOVES: &[&[u8]] = &[b"moved", b"move", b"moving", b"relocated", b"relocating"];

/// Words before "moved to" that make the move the writer's own.
const MOVED_OWN: &[&[u8]] = &[
    b"i", b"we", b"i've", b"we've", b"i'm", b"we're", b"my", b"our", b"i'll", b"we'll",
];

/// Verbs of calling someone at a number.
const CALLS: &[&[u8]] = &[b"call", b"ring", b"phone", b"contact", b"reach", b"text"];

/// Places a writer calls their own before giving the place's name and
/// address ("swing by my shop, Tony's Auto, 4400 Route 9").
const OWN_PLACES: &[&[u8]] = &[
    b"shop",
    b"store",
    b"office",
    b"place",
    b"house",
    b"home",
    b"studio",
    b"salon",
    b"restaurant",
    b"garage",
    b"warehouse",
    b"bakery",
    b"cafe",
    b"workshop",
    b"business",
];

/// "my shop" or "our office" earlier in the sentence of the address at
/// `start`.
fn own_place_before(norm: &[u8], start: usize) -> bool {
    let mut back = words_before(norm, start, words::SENTENCE_STOPS, 16).peekable();
    while let Some(w) = back.next() {
        if OWN_PLACES.contains(&w) && back.peek().is_some_and(|p| *p == b"my" || *p == b"our") {
            return true;
        }
    }
    false
}

/// Who collects tax: a payment to them is the customer's own business,
/// not a payment around the platform.
const TAX_AUTHORITIES: &[&[u8]] = &[b"irs", b"treasury", b"eftps", b"hmrc", b"ftb", b"cra"];

/// Words that bring the platform or the reader's charge into a sentence.
const OUR_BILLING: &[&[u8]] = &[
    b"portal",
    b"platform",
    b"invoice",
    b"invoices",
    b"billing",
    b"fee",
    b"fees",
    b"retainer",
];

/// A payment at `start..end` that goes to a tax authority: one is named
/// in its sentence or the one before ("the IRS notice has wire
/// instructions … Is it safe to wire the balance that way?"), or IRS
/// Direct Pay is, and the sentence neither speaks to the reader nor names
/// the platform's billing.
pub(crate) fn pays_tax_authority(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let (ps, _) = words::sentence(norm, s.saturating_sub(2), s.saturating_sub(2), 160);
    let mut prev: &[u8] = b"";
    let named = words::words_in(&norm[ps.min(s)..e]).any(|w| {
        let hit = TAX_AUTHORITIES.contains(&w) || (prev == b"direct" && w == b"pay");
        prev = w;
        hit
    });
    // Checked only when an authority is named (rare): the reader or the
    // platform's billing in the sentence makes it a payment to us.
    named
        && !words::words_in(&norm[s..e])
            .any(|w| c.mention.second_person.contains(w) || OUR_BILLING.contains(&w))
}

/// How far around a street address an offer is looked for.
const OFFER_REACH: usize = 160;

/// The paragraph-bounded window around `start..end` an offer is looked
/// for in: at most [`OFFER_REACH`] bytes each way, not across a blank line.
fn offer_window(norm: &[u8], start: usize, end: usize) -> &[u8] {
    let lo = start.saturating_sub(OFFER_REACH);
    let hi = (end + OFFER_REACH).min(norm.len());
    let s = norm[lo..start]
        .windows(2)
        .rposition(|w| w == b"\n\n")
        .map_or(lo, |p| lo + p + 2);
    let e = norm[end..hi]
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(hi, |p| end + p);
    &norm[s..e]
}

/// A street address offered to the reader: an offer phrase near it, in
/// its paragraph.
pub(crate) fn address_offered(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let window = offer_window(norm, start, end);
    c.owner
        .address_offers
        .matches_in(window)
        .any(|(_, q)| !offered_to_third_party(c, window, q))
}

/// Entries of the books an offer word ("update") may be about ("update
/// the rent expense"): then no place is offered.
const BOOK_ENTRIES: &[&[u8]] = &[
    b"expense",
    b"expenses",
    b"ledger",
    b"books",
    b"category",
    b"amount",
    b"amounts",
];

/// Words that name who an offer goes to ("send it to the IRS", "update it
/// with the bank").
const RECIPIENT_MARKS: &[&[u8]] = &[b"to", b"with"];

/// Records an address is updated on ("update my address on the return").
const RECORDS: &[&[u8]] = &[
    b"return", b"returns", b"file", b"record", b"records", b"account", b"w9", b"form",
];

/// Words skipped before the noun they belong to ("on the return", "to my
/// accountant").
const DETERMINERS: &[&[u8]] = &[b"the", b"our", b"my"];

/// An offer phrase ending at `q` whose recipient, within four words after
/// it, is a third party ("update it with the IRS", "mail it to the
/// county"): the address goes to them, not to the reader.
fn offered_to_third_party(c: &Compiled, window: &[u8], q: usize) -> bool {
    let mut after = words::words_after(window, q, words::SENTENCE_STOPS, 5).peekable();
    while let Some(w) = after.next() {
        // "update the rent expense": a bookkeeping entry, not a place.
        if BOOK_ENTRIES.contains(&w) {
            return true;
        }
        // "update my address on the return": a record's field, not a place
        // offered.
        if w == b"on" {
            let mut next = after.peek().copied().unwrap_or_default();
            if DETERMINERS.contains(&next) {
                after.next();
                next = after.peek().copied().unwrap_or_default();
            }
            if RECORDS.contains(&next) {
                return true;
            }
            continue;
        }
        if RECIPIENT_MARKS.contains(&w) {
            let mut next = after.next().unwrap_or_default();
            if DETERMINERS.contains(&next) {
                next = after.next().unwrap_or_default();
            }
            return c.owner.third_parties.contains(next) && !c.owner.proxies.contains(next);
        }
    }
    false
}

/// Words that hand an address to the reader: someone else's address
/// counts when it is offered with one of these ("you can drop things
/// there", "please courier it to my cousin's").
const TO_READER: &[&[u8]] = &[
    b"you", b"your", b"u", b"please", b"pls", b"plz", b"vous", b"votre", b"usted", b"ustedes",
    b"ihnen", b"bitte", b"you're", b"you'll", b"you'd",
];

/// The sentence of a street address and the next: where it is handed to
/// the reader ("My cousin's place is …, please send anything there"), not
/// a greeting or a "please note" before it.
fn handed_window(norm: &[u8], start: usize, end: usize) -> &[u8] {
    let (s, e) = words::sentence(norm, start, end, OFFER_REACH);
    let next = (e + 1).min(norm.len());
    let (_, ne) = words::sentence(norm, next, next, OFFER_REACH);
    &norm[s..ne.max(e)]
}

/// A word of [`TO_READER`] in `window` that is not part of a thanks
/// (within five words after "thank": "thank you for all your help" hands
/// nothing over).
fn to_reader_in(window: &[u8]) -> bool {
    let mut since_thanks = usize::MAX;
    words::words_in(window).any(|w| {
        since_thanks = since_thanks.saturating_add(1);
        if matches!(w, b"thank" | b"thanks") {
            since_thanks = 0;
        }
        TO_READER.contains(&w) && since_thanks > 5
    })
}

/// Whether a hit counts: anything but a contact detail does; a contact
/// detail only when it is the writer's own, not in a third party's
/// sentence (`context.phone_vetoes`, `context.address_vetoes`), and, for
/// a street address, offered.
pub(crate) fn is_evidence(
    c: &Compiled,
    norm: &[u8],
    category: Category,
    start: usize,
    end: usize,
) -> bool {
    match category {
        Category::Messaging | Category::Payment => true,
        Category::Email => {
            if is_organisation_address(&norm[start..end]) || is_automated_sender(&norm[start..end])
            {
                return false;
            }
            match owner_of(c, norm, start, false) {
                Owner::Writer => true,
                Owner::ThirdParty => email_handed_over(c, norm, start, end),
                Owner::History | Owner::Quoted | Owner::Reported => false,
            }
        }
        Category::Phone => {
            let owner = owner_of(c, norm, start, false);
            (owner == Owner::Writer
                || (owner == Owner::ThirdParty && phone_handed_over(c, norm, start, end)))
                && !phone_of_someone_else(c, norm, start, end)
        }
        Category::Address => {
            let owner = owner_of(c, norm, start, true);
            let handed = owner == Owner::ThirdParty && {
                let window = handed_window(norm, start, end);
                to_reader_in(window) && !FORMS_FINDER.is_match(window)
            };
            (owner == Owner::Writer || handed)
                && !address_in_bookkeeping_sense(c, norm, start, end)
                && address_offered(c, norm, start, end)
        }
    }
}

/// Top-level endings of government and military mail domains.
const ORGANISATION_DOMAINS: &[&[u8]] = &[
    b".gov",
    b".mil",
    b".gov.uk",
    b".gc.ca",
    b".gouv.fr",
    b".gov.au",
    b".gob.mx",
    b".bund.de",
];

/// An e-mail address at a government domain ("phishing@irs.gov"): an
/// office's, never a client's own way around the platform.
fn is_organisation_address(addr: &[u8]) -> bool {
    let addr = addr.trim_ascii_end();
    let addr = addr.strip_suffix(b".").unwrap_or(addr);
    ORGANISATION_DOMAINS.iter().any(|d| addr.ends_with(d))
}

/// Local parts of the addresses services send from ("transaction@etsy.com",
/// "no-reply@…"): nobody's personal inbox.
const AUTOMATED_LOCAL_PARTS: &[&[u8]] = &[
    b"noreply",
    b"no-reply",
    b"no_reply",
    b"donotreply",
    b"do-not-reply",
    b"notifications",
    b"notification",
    b"alerts",
    b"transaction",
    b"transactions",
    b"receipts",
    b"statements",
    b"mailer-daemon",
];

/// An e-mail address a service sends from, not a person's.
fn is_automated_sender(addr: &[u8]) -> bool {
    addr.iter()
        .position(|&b| b == b'@')
        .is_some_and(|at| AUTOMATED_LOCAL_PARTS.contains(&&addr[..at]))
}

/// Phrases that hand someone's contact to the reader so the conversation
/// goes to them directly ("go straight to him", "email her directly",
/// "loop in my cofounder … outside this tool").
const HAND_OFFS: &[&[u8]] = &[
    b"straight to him",
    b"straight to her",
    b"straight to them",
    b"directly to him",
    b"directly to her",
    b"email him",
    b"email her",
    b"write to him",
    b"write to her",
    b"contact him directly",
    b"contact her directly",
    b"reach him",
    b"reach her",
    b"loop in",
    b"with him directly",
    b"with her directly",
    b"to his private",
    b"to her private",
    b"to his personal",
    b"to her personal",
    b"pass that along",
    b"pass it along",
    // Asked to contact the person named ("call him directly on …", "send
    // her the statements", "write to him at …", "correspond with her at
    // …"), or their own line or inbox given ("her cell is …", "his direct
    // number", "Dr. Farah's private email: …").
    b"call him",
    b"call her ",
    b"ring him",
    b"ring her ",
    b"phone him",
    b"phone her ",
    b"text him",
    b"text her ",
    b"send him",
    b"send her ",
    b"him at ",
    b"her at ",
    b"his cell",
    b"her cell",
    b"his mobile",
    b"her mobile",
    b"his direct",
    b"her direct",
    b"private email",
    b"private e-mail",
    b"personal email",
    b"personal e-mail",
    // Copied in or written to ("please copy her on the payroll mail",
    // "correspond with his wife", "his own email", "telephone him at home").
    b"copy her",
    b"copy him",
    b"cc her",
    b"cc him",
    b"correspond with",
    b"his own",
    b"her own",
    b"telephone him",
    b"telephone her ",
];

/// Someone else's personal (freemail) address handed to the reader with
/// a word to deal with them directly, in its sentence or the one before,
/// and no third party of record just before it (a scammer, the IRS, a
/// bank).
fn email_handed_over(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let at = norm[start..end].iter().position(|&b| b == b'@');
    let domain = at.map_or(&b""[..], |p| &norm[start + p + 1..end]);
    let freemail = c
        .freemail
        .iter()
        .any(|f| domain.eq_ignore_ascii_case(f.as_bytes()));
    // An inbox called someone's own ("her personal email is …", "at his own
    // email, …") is a person's whatever its domain.
    let called_personal = || {
        words_before(norm, start, OWNER_STOPS, OWNER_REACH)
            .any(|w| matches!(w, b"personal" | b"private" | b"own"))
    };
    (freemail || called_personal()) && handed_over(c, norm, start, end, &[])
}

/// Words that make a handed-over number a personal line to use directly
/// ("reach her directly at …", "it's her mobile").
const PERSONAL_LINE: &[&[u8]] = &[
    b"directly",
    b"direct",
    b"mobile",
    b"cell",
    b"personal",
    b"private",
    b"straight",
    b"home",
];

/// Someone else's personal number handed to the reader to deal with them
/// directly ("You can reach her directly at five-oh-three, … It's her
/// mobile"): a hand-off phrase and a word of a personal line around it.
fn phone_handed_over(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    handed_over(c, norm, start, end, PERSONAL_LINE)
}

/// A hand-off phrase in the sentence of `start..end` or the one before,
/// one of `also` (when not empty) there or in the next sentence, and no
/// third party of record just before the detail.
fn handed_over(c: &Compiled, norm: &[u8], start: usize, end: usize, also: &[&[u8]]) -> bool {
    let of_record = |w: &[u8]| {
        let w = possessor(w).unwrap_or(w);
        c.owner.third_parties.contains(w) && !c.owner.proxies.contains(w)
    };
    // "her address was …": an old address, not one to use.
    let told = |w: &[u8]| matches!(w, b"was" | b"were" | b"used");
    if words_before(norm, start, OWNER_STOPS, OWNER_REACH).any(|w| of_record(w) || told(w)) {
        return false;
    }
    let (s, e) = words::sentence(norm, start, end, 200);
    let (ps, _) = words::sentence(norm, s.saturating_sub(2), s.saturating_sub(2), 200);
    let next = (e + 1).min(norm.len());
    let (_, ne) = words::sentence(norm, next, next, 200);
    // The hand-off may follow the detail ("Her email is …. You can deal
    // with her directly on that.").
    let window = &norm[ps.min(s)..ne.max(e)];
    (also.is_empty() || words::words_in(window).any(|w| also.contains(&w)))
        && HAND_OFF_FINDER
            .find_iter(window)
            .any(|m| m.start() == 0 || !words::is_word_byte(window[m.start() - 1]))
}

/// [`HAND_OFFS`] as one automaton: one pass over the window.
static HAND_OFF_FINDER: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(HAND_OFFS).expect("the hand-off phrases compile"));

/// A street address whose sentence puts it in a bookkeeping sense (a
/// rental property, a sale, a vendor's address): not evidence.
fn address_in_bookkeeping_sense(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    // A place the reader is asked to come to ("swing by the shop, 2240
    // Industrial Pkwy, we can go over the depreciation in person"): only a
    // word before the address can make it a rental's or a vendor's; the
    // topic of the visit after it cannot.
    // The invitation may open the hit itself ("meet us at the Lantern
    // Brewery on Canal Street").
    if invites_a_visit(&norm[s..end]) {
        return c.address_vetoes.any_in(&norm[s..start]);
    }
    if c.address_vetoes.any_in(&norm[s..e]) {
        return true;
    }
    // The writer's own new address given to be put on the return or the
    // file ("new address is …. The home office is here too. Please update
    // it on my return", "I had my address on file as …"): the next two
    // sentences may ask.
    let mut to = e;
    for _ in 0..2 {
        let next = (to + 1).min(norm.len());
        to = to.max(words::sentence(norm, next, next, 160).1);
    }
    RECORDS_FINDER.is_match(&norm[s..to])
}

/// [`RECORDS_UPDATES`] as one automaton.
static RECORDS_FINDER: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(RECORDS_UPDATES).expect("the phrases compile"));

/// [`THIRD_PARTY_FORMS`] as one automaton.
static FORMS_FINDER: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(THIRD_PARTY_FORMS).expect("the phrases compile"));

/// Phrases that put an address on the return or the file, not to use.
const RECORDS_UPDATES: &[&[u8]] = &[
    b"on my return",
    b"on the return",
    b"on our return",
    b"business return",
    b"on file",
    b"my file",
    b"our file",
];

/// Forms a third party's address is given for, not to be used by the
/// reader ("his home address for the W-4 is …").
const THIRD_PARTY_FORMS: &[&[u8]] = &[b"w-4", b"w-9", b"i-9", b"1099"];

/// Two-word invitations to come to a place.
const VISITS: &[(&[u8], &[u8])] = &[
    (b"swing", b"by"),
    (b"come", b"by"),
    (b"stop", b"by"),
    (b"pop", b"by"),
    (b"drop", b"by"),
    (b"come", b"over"),
    (b"come", b"round"),
    (b"pop", b"round"),
    (b"come", b"out"),
    (b"stop", b"in"),
    (b"pop", b"in"),
    (b"meet", b"me"),
    (b"meet", b"us"),
];

/// An invitation to come over in `window` ("swing by", "come out").
fn invites_a_visit(window: &[u8]) -> bool {
    words::has_word_pair(window, VISITS)
}

/// Words of the customer's own: a number near one is theirs.
const CLAUSE_OWN: &[&[u8]] = &[
    b"me", b"my", b"mine", b"myself", b"i'm", b"i'll", b"i'd", b"us", b"our", b"ours",
];

/// Words that start a new clause of their own: a word of the customer's
/// own past one does not reach the number ("the IRS says to call
/// 800-829-1040, but I'd rather you handle it").
const CLAUSE_STARTS: &[&[u8]] = &[b"but", b"so", b"though", b"although", b"however", b"and"];

/// A phone number whose sentence gives it to someone else (the IRS, a
/// department, the number on a notice) and whose clause has no word of the
/// customer's own: not evidence.
fn phone_of_someone_else(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    if !c.phone_vetoes.any_in(&norm[s..e]) {
        return false;
    }
    let own = |w: &[u8]| CLAUSE_OWN.contains(&w);
    let before_own = words::words_before(norm, start, words::SENTENCE_STOPS, 40)
        .take_while(|w| !CLAUSE_STARTS.contains(w))
        .any(own);
    let after_own = words::words_after(norm, end, words::SENTENCE_STOPS, 40)
        .take_while(|w| !CLAUSE_STARTS.contains(w))
        .any(own);
    !before_own && !after_own
}

/// Words of a tax refund's paperwork.
const TAX_FORMS: &[&[u8]] = &[
    b"form",
    b"forms",
    b"irs",
    b"tax",
    b"return",
    b"deposit",
    b"1040",
    b"state",
    b"federal",
    b"8879",
    b"estimated",
];

/// A routing number given for a tax refund's direct deposit ("the routing
/// number on the refund form"): the customer's own bank, for the tax
/// authority, not a way to pay us; unless the sentence speaks to the
/// reader.
pub(crate) fn is_refund_deposit(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let sentence = &norm[s..e];
    let has = |list: &[&[u8]]| words::words_in(sentence).any(|w| list.contains(&w));
    has(&[b"refund", b"refunds", b"debit", b"withdrawal"])
        && has(TAX_FORMS)
        && !words::words_in(sentence).any(|w| c.mention.second_person.contains(w))
}

/// Words of a record the customer's own bank details are given for: a
/// voided check, a withholding or payroll tax form.
const ACCOUNT_RECORDS: &[&[u8]] = &[
    b"voided", b"w-8ben", b"w8ben", b"8ben", b"w-9", b"w9", b"eftps",
];

/// Bank details at `start..end` given for a record ("routing 044000037 on
/// the voided check I uploaded", "the W-8BEN form asks for my foreign
/// account"): the customer's own bank on file, not a way to pay us; unless
/// the sentence speaks to the reader.
pub(crate) fn is_account_for_records(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let sentence = &norm[s..e];
    words::words_in(sentence).any(|w| ACCOUNT_RECORDS.contains(&w))
        && !words::words_in(sentence).any(|w| c.mention.second_person.contains(w))
}

/// Words of a debt the customer pays a lender: an account number in a
/// sentence with one of these is the loan's or the lease's.
const FINANCING: &[&[u8]] = &[
    b"lease",
    b"leased",
    b"leasing",
    b"loan",
    b"loans",
    b"mortgage",
    b"financing",
    b"financed",
    b"lender",
    b"lienholder",
];

/// A bank account number at `start..end` in a sentence about a loan, a
/// lease or a mortgage ("the espresso machine lease is through Marlin
/// Business Bank, account 55-02931"): the customer's own debt to a lender,
/// not a way to pay us; unless the sentence speaks to the reader.
pub(crate) fn is_financing_account(c: &Compiled, norm: &[u8], start: usize, end: usize) -> bool {
    let (s, e) = words::sentence(norm, start, end, 160);
    let sentence = &norm[s..e];
    words::words_in(sentence).any(|w| FINANCING.contains(&w))
        && !words::words_in(sentence).any(|w| c.mention.second_person.contains(w))
}

/// What the platform itself does: "can the portal send me a text" asks
/// for a notification, not to move the conversation.
const PLATFORM_NAMES: &[&[u8]] = &[b"portal", b"platform", b"system", b"website", b"site"];

/// Whether the platform is the subject just before an invitation at
/// `start` ("can the portal send me a text"): "the portal" or "the
/// system" within three words, in the clause.
pub(crate) fn platform_is_subject(norm: &[u8], start: usize) -> bool {
    let mut back = words_before(norm, start, words::CLAUSE_STOPS, 3).peekable();
    while let Some(w) = back.next() {
        if PLATFORM_NAMES.contains(&w) && back.peek().is_some_and(|p| *p == b"the") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::detect::{Category, Detector, ScanContext};

    fn has(text: &str, cat: Category) -> bool {
        let d = Detector::new(&crate::detect::rules_only()).expect("defaults compile");
        d.scan(text, &ScanContext::default())
            .hits
            .iter()
            .any(|h| h.category == cat)
    }

    #[test]
    fn a_third_party_s_number_is_not_evidence() {
        for t in [
            "I had to call the airline at 800-433-7300 to rebook.",
            "The courier's note says to call UPS at 1-800-742-5877.",
            "The bank's fraud department (855-555-0133) froze the card.",
            "Our payroll provider's support line is 844-555-0160.",
            "Their bank called me from 312-555-0145 about the check.",
            "I got a text from 202-555-0199 saying my refund was pending.",
            "The ADP support number they gave us is 800-555-0177.",
            "Text of the letter:\n\"If you have questions, call 1-800-829-1040.\"",
        ] {
            assert!(!has(t, Category::Phone), "{t}");
        }
    }

    #[test]
    fn the_writer_s_own_number_is_evidence_even_near_a_third_party() {
        for t in [
            "The IRS may call, so please give them my cell, 312-555-0144.",
            "Call me at 415-555-0199 about the bank's letter.",
            "My husband's cell is 646-555-0150, he does our books.",
            "I'll text you from 917-555-0132 tonight.",
            "Better to talk: 917 555 0132.",
        ] {
            assert!(has(t, Category::Phone), "{t}");
        }
    }

    #[test]
    fn old_details_are_history() {
        assert!(!has(
            "My old number (503-555-0127) was on last year's return.",
            Category::Phone
        ));
        assert!(!has(
            "The employer mailed the W-2 to our old address, 901 Pine Ridge Ct.",
            Category::Address
        ));
    }

    #[test]
    fn someone_else_s_e_mail_is_not_evidence_but_a_proxy_s_is() {
        assert!(!has(
            "Our old CPA has the files; her office email is dana@weisscpa.com.",
            Category::Email
        ));
        assert!(!has(
            "The hotel's billing office (billing@grandharborhotel.com) sent the folio.",
            Category::Email
        ));
        assert!(has(
            "My assistant does my paperwork now. Please email her at rosa.h@gmail.com.",
            Category::Email
        ));
    }

    #[test]
    fn a_street_address_counts_only_when_offered() {
        for t in [
            "Our Riverside location (2300 E Willow St) closed in August.",
            "The vendor's remittance address changed to PO Box 6031, Carol Stream IL.",
        ] {
            assert!(!has(t, Category::Address), "{t}");
        }
        for t in [
            "Please mail the copies to 52 Birchwood Drive, Albany NY.",
            "My new address is 3302 Industrial Pkwy, Dayton OH.",
            "I'm at 815 E 6th St, Austin if you want to swing by.",
        ] {
            assert!(has(t, Category::Address), "{t}");
        }
    }
    #[test]
    fn a_routing_number_for_a_tax_refund_is_not_a_payment_to_us() {
        assert!(!has(
            "The routing number 021000021 on the refund form, is that right for Chase?",
            Category::Payment
        ));
        assert!(has(
            "Wire details for the refund: Bank of America, ABA 026009593.",
            Category::Payment
        ));
    }

    #[test]
    fn the_writer_s_own_place_under_its_business_name_is_theirs() {
        assert!(has(
            "Just swing by my shop to pick it up: Tony's Auto, 4400 Route 9, Freehold NJ.",
            Category::Address
        ));
        assert!(!has(
            "Our supplier's invoice lists 4400 Route 9, Freehold NJ; please send the W-9 there.",
            Category::Address
        ));
    }

    #[test]
    fn a_payment_to_the_tax_authority_is_not_a_payment_around_us() {
        assert!(!has(
            "The IRS notice has Treasury's routing number 051036706. Is it safe to wire the balance that way?",
            Category::Payment
        ));
        assert!(!has(
            "HMRC wants the VAT paid by bank transfer to their account.",
            Category::Payment
        ));
        assert!(has(
            "The IRS refund came in, so I can wire you the balance today.",
            Category::Payment
        ));
    }

    #[test]
    fn from_now_on_is_a_time_not_a_sender() {
        assert!(has(
            "Please write to me from now on: jo.reyes @ protonmail . com",
            Category::Email
        ));
    }

    #[test]
    fn someone_else_s_address_handed_to_the_reader_counts() {
        assert!(has(
            "My cousin's place is 4402 W. Fullerton Ave, Chicago, please send anything there.",
            Category::Address
        ));
        assert!(has(
            "Please courier the signed 8879 to 1550 W. Fullerton Ave, Chicago.",
            Category::Address
        ));
    }
}
