//! Quoted text: which part of a mail body the sender actually wrote now.
//!
//! Receives a plain-text body and returns the new text: the body without
//! `>`-quoted lines and without the quoted tail that mail clients append
//! under an attribution ("On … wrote:", "Le … a écrit :", "Am … schrieb …:"
//! and their siblings), an Outlook `-----Original Message-----` line or
//! `From:`/`Sent:` header block, a forwarded-message marker, or postdesk's
//! own `-- reply above this line --` separator.
//!
//! It keeps one promise: it never returns an empty text for a body that had
//! text. When everything looks quoted (a forward with no comment, a client
//! that quotes oddly), the whole body is returned, because scanning too much
//! is better than scanning nothing.
//!
//! The detector uses it so that a quoted warning or a quoted agent message
//! never flags the customer; agent replies reuse it so that the quoted
//! notification is not relayed.

use std::borrow::Cow;
use std::ops::Range;

/// The new (unquoted) text of a body. Borrowed when the new text is a prefix
/// of the body (top-posting, the common case); owned when quoted lines had
/// to be removed from the middle. Never empty when `body` has non-blank text.
pub fn new_text(body: &str) -> Cow<'_, str> {
    let ranges = new_text_ranges(body);
    match ranges.as_slice() {
        [] => Cow::Borrowed(""),
        [r] => Cow::Borrowed(&body[r.clone()]),
        _ => Cow::Owned(ranges.iter().map(|r| &body[r.clone()]).collect()),
    }
}

/// The byte ranges of `body` that hold new text, in order, each a run of
/// whole lines. Empty only when `body` is blank.
pub fn new_text_ranges(body: &str) -> Vec<Range<usize>> {
    let mut lines = Lines::new(body);
    let cut = find_cut(body, &mut lines);
    let lines = &lines.lines;
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut i = 0;
    while i < cut {
        let line = &lines[i];
        let text = &body[line.text.clone()];
        if is_quoted_line(text) {
            i += 1;
            continue;
        }
        // An attribution right before a `>` block belongs to the quote.
        if is_attribution_line(text) && next_nonblank_is_quoted(body, &lines[i + 1..cut]) {
            i += 1;
            continue;
        }
        match ranges.last_mut() {
            Some(last) if last.end == line.full.start => last.end = line.full.end,
            _ => ranges.push(line.full.clone()),
        }
        i += 1;
    }
    // Trim trailing blank lines of the last range.
    if let Some(last) = ranges.last_mut() {
        let kept = body[last.clone()].trim_end();
        last.end = last.start + kept.len();
    }
    ranges.retain(|r| !r.is_empty());
    let has_text = ranges.iter().any(|r| !body[r.clone()].trim().is_empty());
    if has_text {
        return ranges;
    }
    let whole = body.trim_end();
    if whole.trim_start().is_empty() {
        Vec::new()
    } else {
        std::iter::once(0..whole.len()).collect()
    }
}

/// One line: `full` with its line ending, `text` without `\r\n`/`\n`;
/// `colon`: the line has a `:` (a header label needs one).
struct Line {
    full: Range<usize>,
    text: Range<usize>,
    colon: bool,
}

/// The lines of a body, split as far as they are read: the quoted tail
/// below the cut is mostly never split.
struct Lines<'b> {
    body: &'b [u8],
    lines: Vec<Line>,
    /// Where the text not yet split starts.
    rest: usize,
}

impl<'b> Lines<'b> {
    fn new(body: &'b str) -> Lines<'b> {
        Lines {
            body: body.as_bytes(),
            lines: Vec::with_capacity(32),
            rest: 0,
        }
    }

    /// Line `i`, splitting up to it; `None` past the last line.
    fn get(&mut self, i: usize) -> Option<&Line> {
        let bytes = self.body;
        while self.lines.len() <= i && self.rest < bytes.len() {
            let start = self.rest;
            let rest = &bytes[start..];
            // One search finds the line's end or its first colon; a second
            // runs only past a colon, so most lines are read once.
            let line_end = |from: usize| {
                memchr::memchr(b'\n', &rest[from..]).map_or(bytes.len(), |p| start + from + p + 1)
            };
            let (end, colon) = match memchr::memchr2(b'\n', b':', rest) {
                None => (bytes.len(), false),
                Some(p) if rest[p] == b'\n' => (start + p + 1, false),
                Some(p) => (line_end(p + 1), true),
            };
            let mut text_end = end;
            if text_end > start && bytes[text_end - 1] == b'\n' {
                text_end -= 1;
            }
            if text_end > start && bytes[text_end - 1] == b'\r' {
                text_end -= 1;
            }
            self.lines.push(Line {
                full: start..end,
                text: start..text_end,
                colon,
            });
            self.rest = end;
        }
        self.lines.get(i)
    }
}

/// The index of the first line of the quoted tail (the number of lines
/// if none; then every line is split).
fn find_cut(body: &str, lines: &mut Lines<'_>) -> usize {
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let colon = line.colon;
        let text = trim(&body[line.text.clone()]);
        if text.is_empty() {
            i += 1;
            continue;
        }
        if is_reply_separator(text) || is_original_message_marker(text) || is_forward_marker(text) {
            return i;
        }
        if is_underscore_rule(text) && header_block_follows(body, lines, i + 1) {
            return i;
        }
        // A header label needs a colon.
        if colon && starts_header_block(body, lines, i) {
            return i;
        }
        let opens = opens_attribution(text);
        if opens && is_client_attribution(text) {
            return i;
        }
        // Gmail and Apple Mail wrap long attributions over two lines.
        if opens && let Some(next) = lines.get(i + 1) {
            let joined = format!("{} {}", text, body[next.text.clone()].trim());
            if is_client_attribution(&joined) {
                return i;
            }
        }
        i += 1;
    }
    lines.lines.len()
}

/// `s.trim()`, without decoding characters when both ends are ASCII and
/// not white space (most lines): then there is nothing to trim.
fn trim(s: &str) -> &str {
    // The ASCII bytes `char::is_whitespace` holds: tab to carriage return, space.
    let solid =
        |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii() && !matches!(b, b' ' | 0x09..=0x0d));
    let bytes = s.as_bytes();
    if solid(bytes.first()) && solid(bytes.last()) {
        s
    } else {
        s.trim()
    }
}

fn is_quoted_line(text: &str) -> bool {
    text.trim_start().starts_with('>')
}

fn next_nonblank_is_quoted(body: &str, lines: &[Line]) -> bool {
    lines
        .iter()
        .map(|l| &body[l.text.clone()])
        .find(|t| !t.trim().is_empty())
        .is_some_and(is_quoted_line)
}

/// ASCII case-insensitive substring test, without allocating.
fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.len() <= h.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// postdesk's own separator and the ones other helpdesks put in their mail.
fn is_reply_separator(text: &str) -> bool {
    // Separator lines are drawn with punctuation ("-- reply above this line
    // --", "##- Please type your reply above this line -##").
    if !matches!(
        text.as_bytes().first(),
        Some(b'-' | b'#' | b'=' | b'*' | b'_' | b'[' | b'<' | b'(')
    ) {
        return false;
    }
    if !(contains_ci(text, "above") || contains_ci(text, "dessus") || contains_ci(text, "oberhalb"))
    {
        return false;
    }
    let lower = text.to_lowercase();
    lower.contains("reply above this line")
        || lower.contains("write above this line")
        || lower.contains("type your reply above")
        || lower.contains("répondez au-dessus de cette ligne")
        || lower.contains("antworten sie oberhalb dieser zeile")
}

/// `-----Original Message-----` and its translations.
fn is_original_message_marker(text: &str) -> bool {
    if !text.starts_with("--") {
        return false;
    }
    let lower = text.to_lowercase();
    [
        "original message",
        "ursprüngliche nachricht",
        "message d'origine",
        "message d’origine",
        "mensaje original",
        "messaggio originale",
        "oorspronkelijk bericht",
        "mensagem original",
        "originalmeddelande",
        "opprinnelig melding",
        "oprindelig meddelelse",
        "alkuperäinen viesti",
        "wiadomość oryginalna",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// Forwarded-message markers (Gmail, Apple Mail, Thunderbird, Outlook).
fn is_forward_marker(text: &str) -> bool {
    if !matches!(
        text.as_bytes().first(),
        Some(b'-' | b'b' | b'B' | b'd' | b'D')
    ) {
        return false;
    }
    // The opening is checked before lower-casing: most lines starting with
    // "d" or "b" are "Dear …" or "Best …", not markers.
    let head = text.as_bytes();
    let opens =
        |p: &str| head.len() >= p.len() && head[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    // "début" in any case: a `d`, then `é` or `É` (both start with 0xC3).
    let debut = || {
        head.get(1) == Some(&0xc3)
            && text
                .chars()
                .take(5)
                .flat_map(char::to_lowercase)
                .eq("début".chars())
    };
    if !(opens("--") || opens("begin ") || debut()) {
        return false;
    }
    let lower = text.to_lowercase();
    [
        "forwarded message",
        "begin forwarded message",
        "weitergeleitete nachricht",
        "message transféré",
        "début du message réexpédié",
        "mensaje reenviado",
        "messaggio inoltrato",
        "doorgestuurd bericht",
        "mensagem encaminhada",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

fn is_underscore_rule(text: &str) -> bool {
    text.len() >= 20 && text.bytes().all(|b| b == b'_')
}

const FROM_LABELS: &[&str] = &[
    "from",
    "de",
    "von",
    "da",
    "van",
    "från",
    "fra",
    "od",
    "від",
    "от",
    "发件人",
    "差出人",
];
const HEADER_LABELS: &[&str] = &[
    "sent",
    "date",
    "to",
    "cc",
    "subject",
    "envoyé",
    "à",
    "objet",
    "gesendet",
    "an",
    "betreff",
    "datum",
    "enviado",
    "enviado el",
    "para",
    "asunto",
    "fecha",
    "inviato",
    "a",
    "oggetto",
    "data",
    "verzonden",
    "aan",
    "onderwerp",
    "skickat",
    "till",
    "ämne",
    "sendt",
    "til",
    "emne",
    "assunto",
    "发送时间",
    "收件人",
    "主题",
];

/// `Label:` at the start of a line (Outlook bolds it as `*Label:*`).
fn header_label(text: &str) -> Option<&str> {
    // Most lines have no colon at all: no label, and nothing to trim.
    memchr::memchr(b':', text.as_bytes())?;
    let t = text.trim_start_matches('*').trim_start();
    let head = &t.as_bytes()[..t.len().min(26)];
    let colon = head.iter().position(|&b| b == b':')?;
    if colon > 24 {
        return None;
    }
    Some(t[..colon].trim().trim_end_matches('*').trim())
}

/// `label` is one of `list` (lower case), ignoring case.
fn is_label(label: &str, list: &[&str]) -> bool {
    if label.is_ascii() {
        list.iter().any(|l| l.eq_ignore_ascii_case(label))
    } else {
        let lower = label.to_lowercase();
        list.contains(&lower.as_str())
    }
}

/// A `From:` line followed within four lines by another header line
/// (`Sent:`, `To:`, `Subject:`…): the block Outlook puts above a quote.
fn starts_header_block(body: &str, lines: &mut Lines<'_>, first: usize) -> bool {
    let Some(first_line) = lines.get(first) else {
        return false;
    };
    let Some(label) = header_label(&body[first_line.text.clone()]) else {
        return false;
    };
    if !is_label(label, FROM_LABELS) {
        return false;
    }
    header_block_follows(body, lines, first + 1)
}

/// One of the next four non-blank lines from line `from` is a header line.
fn header_block_follows(body: &str, lines: &mut Lines<'_>, from: usize) -> bool {
    let mut seen = 0;
    let mut j = from;
    while seen < 4
        && let Some(line) = lines.get(j)
    {
        j += 1;
        let t = body[line.text.clone()].trim();
        if t.is_empty() {
            continue;
        }
        seen += 1;
        if header_label(t).is_some_and(|l| is_label(l, HEADER_LABELS) || is_label(l, FROM_LABELS)) {
            return true;
        }
    }
    false
}

/// Words that open a client's attribution line, per language.
const ATTRIBUTION_OPENERS: &[&str] = &["on", "le", "am", "el", "il", "op", "em", "den", "w dniu"];

/// Verbs that close an attribution (`… wrote:`), per language.
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",
    "a écrit",
    "schrieb",
    "escribió",
    "ha scritto",
    "schreef",
    "escreveu",
    "skrev",
    "napisał",
    "kirjoitti",
    "написал",
    "написала",
    "yazdı",
];

/// `starts_with_word_ci(text, ATTRIBUTION_OPENERS)`, its first letters
/// tested first (`b | 0x20` is that letter only for it and its capital).
fn opens_attribution(text: &str) -> bool {
    text.as_bytes()
        .first()
        .is_some_and(|&b| matches!(b | 0x20, b'o' | b'l' | b'a' | b'e' | b'i' | b'd' | b'w'))
        && starts_with_word_ci(text, ATTRIBUTION_OPENERS)
}

fn starts_with_word_ci(text: &str, words: &[&str]) -> bool {
    let t = text.as_bytes();
    words.iter().any(|w| {
        let w = w.as_bytes();
        t.len() > w.len()
            && t[..w.len()].eq_ignore_ascii_case(w)
            && (t[w.len()].is_ascii_whitespace() || t[w.len()] == b',')
    })
}

/// "On <date>, <name> wrote:" and its translations: opener word, a verb
/// from the list near the end, a closing colon (optional in English).
fn is_client_attribution(text: &str) -> bool {
    if !opens_attribution(text) || text.len() > 1200 {
        return false;
    }
    let lower = text.to_lowercase();
    let trimmed = lower.trim_end().trim_end_matches(':').trim_end();
    // The verb is the last word(s), or is followed by the sender (German,
    // Dutch, Scandinavian: "Am … schrieb Jane Doe <jane@x>:").
    let ends_in_colon = lower.trim_end().ends_with(':');
    ATTRIBUTION_VERBS.iter().any(|v| {
        trimmed.ends_with(v)
            || (ends_in_colon
                && lower.match_indices(v).any(|(at, _)| {
                    lower[..at].ends_with(' ') && lower[at + v.len()..].starts_with(' ')
                }))
    })
}

/// A short line ending in "wrote:" (any language) without the opener:
/// "Jane Doe <jane@x.com> wrote:". Only counted when a `>` block follows.
fn is_attribution_line(text: &str) -> bool {
    let t = text.trim();
    if !t.ends_with(':') || t.chars().count() > 200 {
        return false;
    }
    let lower = t.to_lowercase();
    let body = lower.trim_end_matches(':').trim_end();
    ATTRIBUTION_VERBS.iter().any(|v| body.ends_with(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_posted_reply_keeps_only_the_new_text() {
        let body = "Thanks, that works.\n\nOn Mon, Mar 3, 2025 at 10:12 AM Support <support@example.com> wrote:\n> Please keep all payments on the platform.\n> Do not use WhatsApp.\n";
        assert_eq!(new_text(body), "Thanks, that works.");
    }

    #[test]
    fn attribution_wrapped_over_two_lines_is_recognised() {
        let body = "Sounds good.\n\nOn Mon, Mar 3, 2025 at 10:12 AM Performance West Support <\nsupport@example.com> wrote:\n\nWe never ask for payment by Zelle.\n";
        assert_eq!(new_text(body), "Sounds good.");
    }

    #[test]
    fn attributions_in_other_languages() {
        for attribution in [
            "Le lun. 3 mars 2025 à 10:12, Support <support@example.com> a écrit :",
            "Am 03.03.2025 um 10:12 schrieb Support <support@example.com>:",
            "El lun, 3 mar 2025 a las 10:12, Support (<support@example.com>) escribió:",
            "Il giorno lun 3 mar 2025 alle ore 10:12 Support <support@example.com> ha scritto:",
            "Op ma 3 mrt 2025 om 10:12 schreef Support <support@example.com>:",
            "Em seg., 3 de mar. de 2025 às 10:12, Support <support@example.com> escreveu:",
            "Den mån 3 mars 2025 kl 10:12 skrev Support <support@example.com>:",
        ] {
            let body = format!("Merci !\n\n{attribution}\nDo not share WhatsApp numbers.\n");
            assert_eq!(new_text(&body), "Merci !", "{attribution}");
        }
    }

    #[test]
    fn outlook_original_message_and_header_block_are_cut() {
        let body = "See attached.\r\n\r\n-----Original Message-----\r\nFrom: Support\r\nSent: Monday\r\nDo not pay by Venmo.\r\n";
        assert_eq!(new_text(body), "See attached.");
        let body = "See attached.\r\n\r\n________________________________\r\nFrom: Support <support@example.com>\r\nSent: Monday, March 3, 2025 10:12 AM\r\nTo: Jane\r\nSubject: RE: invoice\r\n\r\nDo not pay by Venmo.\r\n";
        assert_eq!(new_text(body), "See attached.");
        let body = "Done.\n\nFrom: Support <support@example.com>\nSent: Monday, March 3, 2025 10:12 AM\nTo: Jane <jane@acme.com>\nSubject: RE: invoice\n\nText me.\n";
        assert_eq!(new_text(body), "Done.");
        let body = "Erledigt.\n\nVon: Support <support@example.com>\nGesendet: Montag, 3. März 2025 10:12\nAn: Jane\nBetreff: AW: Rechnung\n\nText me.\n";
        assert_eq!(new_text(body), "Erledigt.");
    }

    #[test]
    fn a_from_line_in_the_new_text_is_not_a_header_block() {
        let body = "From: the desk of Jane\nI need help with my invoice.\nThanks";
        assert_eq!(new_text(body), body);
    }

    #[test]
    fn postdesk_reply_separator_cuts() {
        let body = "Here you go\n-- reply above this line --\nTicket #1042: call us at 555-0100";
        assert_eq!(new_text(body), "Here you go");
    }

    #[test]
    fn interleaved_quotes_are_removed_and_the_answers_kept() {
        let body = "> Can you send the W-2?\nYes, attached.\n> And the 1099?\nNext week.\n";
        assert_eq!(new_text(body), "Yes, attached.\nNext week.");
        assert_eq!(
            new_text_ranges(body),
            vec![24..39, 55..65],
            "ranges point into the body"
        );
    }

    #[test]
    fn forwarded_message_marker_cuts() {
        let body = "FYI see below\n\n---------- Forwarded message ---------\nFrom: Bob <bob@x.com>\nCall me 555 123 4567";
        assert_eq!(new_text(body), "FYI see below");
        let body = "FYI\n\nBegin forwarded message:\n\nFrom: Bob\n";
        assert_eq!(new_text(body), "FYI");
    }

    #[test]
    fn never_empty_when_the_body_has_text() {
        let body = "> only quoted\n> text here\n";
        assert_eq!(new_text(body), body.trim_end());
        let body = "On Mon, Mar 3, 2025 Jane wrote:\n> hi\n";
        assert_eq!(new_text(body), body.trim_end());
        assert_eq!(new_text("   \n "), "");
        assert_eq!(new_text(""), "");
    }

    #[test]
    fn a_plain_body_is_returned_as_is() {
        let body = "Hello,\n\nOn Monday I wrote to you about the invoice.\nRegards";
        assert_eq!(new_text(body), body);
    }

    #[test]
    fn bare_attribution_is_dropped_only_before_a_quote() {
        let body = "Thanks!\nJane Doe <jane@x.com> wrote:\n> hello\n";
        assert_eq!(new_text(body), "Thanks!");
        let body = "Here is what my bookkeeper wrote:\nthe totals are fine";
        assert_eq!(new_text(body), body);
    }
}
