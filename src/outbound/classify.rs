//! Classify: whether an inbound message is mail that machines send about
//! mail (a bounce, a feedback report, an automatic reply, a mailing-list
//! notice) rather than a person writing to support.
//!
//! Receives the raw bytes, the parsed message and whether the return path
//! was null; returns a [`Class`] naming the [`Kind`] and the rule that
//! fired, or `None` for ordinary mail. Pure: the pipeline
//! ([`crate::agent::intercept`]) records a bounce on the ticket of the mail
//! it bounced, suppresses the address a feedback report names, and adds an
//! automatic reply to its ticket as an event; none of them opens a ticket.
//!
//! Bounce parsers (flufl.bounce, Mail::DeliveryStatus::BounceParser) have
//! taught that RFC 3464 is only part of what real servers send: qmail's
//! "failure notice", Exim's "Mail delivery failed" without a `From:`,
//! Exchange, Lotus Notes and GroupWise non-delivery reports, sendmail's
//! "Returned mail: see transcript", vacation programs that set no header
//! at all. The rules, in order, first match wins:
//!
//! 1. `dsn`: a `multipart/report; report-type=delivery-status` with a
//!    status part ([`crate::outbound::bounce::parse`]).
//! 2. `feedback_report`: a `multipart/report; report-type=feedback-report`
//!    (RFC 5965, ARF) with its `message/feedback-report` part.
//! 3. `disposition_notification`: a read receipt (RFC 8098): an
//!    automatic reply.
//! 4. `report`: any other `multipart/report`: a bounce.
//! 5. `mta_signature`: a sentence that only delivery software writes
//!    ("This is the qmail-send program", "Delivery has failed to these
//!    recipients or groups", "----- Transcript of session follows -----")
//!    on the first line of the text, or anywhere when the sender is
//!    automatic.
//! 6. `bounce_subject` / `bounce_body`: a non-delivery subject or phrase
//!    ("Undeliverable:", "failure notice", "user unknown") from an
//!    automatic sender.
//! 7. `list_notice`: a mailing-list manager's answer ("awaits moderator
//!    approval", "not a member", "mail loop") from a list or automatic
//!    sender.
//! 8. `auto_submitted` / `autoreply_header`: `Auto-Submitted: auto-replied`,
//!    `X-Autoreply`, `X-Autorespond`, `Precedence: auto_reply`.
//! 9. `autoreply_subject`: an auto-reply subject form ("Automatic reply:",
//!    "AUTO:", "Out of Office:", "Abwesenheitsnotiz:", and their sisters
//!    in other languages) at the start of the subject, or anywhere in it
//!    with a vacation sentence in the text or an automatic sender.
//! 10. `autoreply_body`: two vacation sentences ("I am out of the office",
//!    "limited access to e-mail"), or one "this is an automatic reply",
//!    at the top of a reply.
//!
//! "An automatic sender" is one of: no `From:` address, the null return
//! path, `Auto-Submitted` other than `no`, or a delivery-system sender
//! (`MAILER-DAEMON`, `postmaster`, "Mail Delivery System", ...).
//!
//! Ordinary mail that merely talks about a bounce stays ordinary: a person
//! who forwards one (`Fwd:`) or pastes one under a line of their own is not
//! an automatic sender and does not start with a delivery system's
//! sentence, so only rules 1 to 4 (structure no mail client writes) can
//! take it, and none of the phrase rules does. Forging any of these only
//! keeps the forger's own mail out of the queue: suppression by a feedback
//! report needs the reported mail to be one postdesk sent to that address
//! (checked by the caller against the outbox).

use std::sync::LazyLock;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use regex::{Regex, RegexSet};
use serde::Serialize;

use crate::outbound::bounce::{self, Dsn};
use crate::parse::ParsedMessage;

/// How much of the text the phrase rules read: delivery reports say what
/// they are at the top, and a bound keeps a huge message cheap.
const SCAN_CHARS: usize = 64 * 1024;

/// A feedback report (RFC 5965).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feedback {
    /// `Feedback-Type` (`abuse`, `fraud`, `not-spam`, ...), lower-case.
    pub feedback_type: String,
    /// The complaining recipients: `Original-Rcpt-To`, else the `To:` of
    /// the reported message; lower-case.
    pub addresses: Vec<String>,
    /// The Message-ID of the reported message.
    pub original_message_id: Option<String>,
}

/// What kind of machine-sent mail a message is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// An RFC 3464 delivery status notification.
    Dsn(Dsn),
    /// A non-delivery report in some other shape.
    Bounce {
        /// The Message-ID of the returned message, when the report quotes
        /// its headers.
        original_message_id: Option<String>,
    },
    /// An RFC 5965 feedback report (a spam complaint).
    Feedback(Feedback),
    /// A vacation or other automatic reply, or a read receipt.
    AutoReply,
    /// A mailing-list manager's notice (moderation, not a member, loop).
    ListNotice,
}

impl Kind {
    /// The stored message kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Dsn(_) | Kind::Bounce { .. } => "bounce",
            Kind::Feedback(_) => "feedback",
            Kind::AutoReply => "auto_reply",
            Kind::ListNotice => "list_notice",
        }
    }
}

/// A classification and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Class {
    /// What the message is.
    pub kind: Kind,
    /// The rule that fired (see the module docs).
    pub because: &'static str,
    /// What made it fire: the header, subject or sentence.
    pub detail: String,
}

/// Case-insensitive regex set; the patterns are literals of this file.
fn set(patterns: &[&str]) -> RegexSet {
    RegexSet::new(patterns.iter().map(|p| format!("(?i){p}")))
        .expect("the classifier's patterns are constants that compile")
}

/// Sentences only delivery software writes (rule 5).
const MTA_SIGNATURES: &[&str] = &[
    r"this is the qmail-send program",
    r"i'm afraid i wasn't able to deliver your message",
    r"this message was created automatically by mail delivery software",
    r"a message that you sent could not be delivered to one or more of\s+its\s+recipients",
    r"this is the mail system at host",
    r"i'm sorry to have to inform you that your message could not\s+be\s+delivered",
    r"-{3,}\s*transcript of session follows\s*-{3,}",
    r"the original message was received at .{0,80}\bfrom\b",
    r"your message did not reach some or all of the intended recipients",
    r"delivery has failed to these recipients or groups",
    r"did not reach the following recipient\(s\)",
    r"the following recipient\(s\) cannot be reached",
    r"this is an automatically generated delivery status notification",
    r"delivery to the following recipients? failed permanently",
    r"the following addresses had permanent fatal errors",
    r"unable to deliver (?:your )?message to the following (?:recipients|address)",
    r"sorry, we were unable to deliver your message to the following address",
    r"message from .{1,80} was undeliverable",
    r"the message that you sent was undeliverable",
    r"your message\s+(?:was|could)\s+not\s+(?:be\s+)?delivered to",
    r"could not be delivered to one or more recipients",
    r"your mail item could not be delivered",
    r"\bwas not delivered to:",
    r"this message was undeliverable due to the following reason",
    r"message delivery to .{1,120} failed",
    r"delivery to the following recipients? (?:has been )?(?:failed|was aborted)",
    r"your message cannot be delivered to the following recipients",
    r"the following message to .{1,120} was undeliverable",
    r"undeliverable message returned to sender",
    r"delivery failure notification",
    r"this is a permanent error; i've given up",
    r"the following destination addresses were unknown",
    r"mail delivery failed: returning message to sender",
    r"your message has encountered delivery problems",
    r"sorry\. your message could not be delivered",
    r"the following address\(es\) failed:",
    r"message not delivered to the following",
    r"could not deliver mail to this user",
    r"the user\(s\) account is temporarily over quota",
    r"unable to deliver to the following recipients",
    r"sent mail could not be delivered",
    r"votre message n.a pas pu (?:etre|être) (?:d[ée]livr[ée]|remis)",
];

/// Subjects of non-delivery reports (rule 6, with an automatic sender).
const BOUNCE_SUBJECTS: &[&str] = &[
    r"undeliver",
    r"undelivered",
    r"\bnon[- ]?deliver",
    r"not delivered",
    r"could not be delivered",
    r"delivery (?:status )?notification",
    r"delivery fail",
    r"delivery problem",
    r"failure notice",
    r"failed delivery",
    r"mail delivery",
    r"returned mail",
    r"failed mail|mail failed|(?:mail|message) failure",
    r"processing error",
    r"returned to sender",
    r"mail system error",
    r"delivery report",
    r"rejected",
    r"user unknown",
    r"mailbox (?:full|unavailable|unknown)",
    r"over quota",
    r"could not send message",
    r"delayed mail",
    r"delivery (?:has )?(?:been )?delayed",
    r"warning: message .{0,60}delayed",
    r"non remis",
    r"unzustellbar",
    r"nicht zustellbar",
    r"non recapitabile",
    r"no se puede entregar",
    r"onbestelbaar",
    r"ej levererat",
    r"nie dostarczon",
    r"no entregad",
    r"n[aã]o entregue",
    r"error during delivery",
    r"message (?:status|failure)",
];

/// Non-delivery phrases of a report body (rule 6, with an automatic
/// sender).
const BOUNCE_PHRASES: &[&str] = &[
    r"user unknown",
    r"unknown user",
    r"no such user",
    r"user (?:doesn't|does not) (?:exist|have)",
    r"mailbox (?:unavailable|full|not found|is full|does not exist|disabled)",
    r"address (?:rejected|unknown|not found)",
    r"recipient (?:rejected|unknown|not found|address rejected)",
    r"does not exist",
    r"could not be delivered",
    r"was not delivered",
    r"undeliverable",
    r"delivery (?:has )?failed",
    r"permanent(?:ly)? (?:error|failure|fatal)",
    r"over quota",
    r"quota exceeded",
    r"message (?:too large|size exceeds)",
    r"host unknown",
    r"domain (?:not found|does not exist)",
    r"relay(?:ing)? (?:denied|not permitted|access denied)",
    r"\b55[0-4][ -]",
    r"\b5\.[0-7]\.[0-9]{1,3}\b",
    r"rejected",
    r"spam",
    r"blocked",
    r"still trying|will keep trying|delivery attempts will continue|has not yet been delivered",
    r"retry timeout exceeded",
];

/// Mailing-list manager notices (rule 7).
const LIST_PHRASES: &[&str] = &[
    r"awaits? moderator approval",
    r"requires? (?:moderator|list moderator) approval",
    r"held for (?:moderation|approval)",
    r"not a member",
    r"non-?member",
    r"(?:only|not allowed to post|restricted to) (?:list )?members",
    r"not allowed to post",
    r"mail(?:ing list)? loop",
    r"loop detected",
    r"post(?:ing)? to a moderated",
    r"you are not subscribed",
    r"not subscribed to",
    r"the results of your email commands?",
];

/// Senders that are list managers (rule 7).
static LIST_SENDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:owner-.*|.*-owner|.*-bounces?(?:\+.*)?|.*-request|mailman|majordomo|listserv|listproc|sympa|ecartis|lyris|.*-admin)$",
    )
    .expect("constant pattern")
});

/// Delivery-system sender local parts and display names.
static DAEMON_SENDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)mailer[-_.]?daemon|mail[-_.]?daemon|\bmdaemon\b|postmaster|mail[-_. ]?delivery|delivery[-_. ]?(?:subsystem|system|status)|mail[-_. ]?(?:system|administrator|admin)|system administrator|\bndr\b|^bounces?$|^nobody$|antivirus|mailscanner|smtp[-_. ]?(?:gateway|mail|service)|mail[-_. ]?gateway|^inetgw|^imss$|^e500_|^admin$|mailsweeper|mail[-_. ]?server|mail[-_. ]?router|^router$|^root$|network administrator|internet mail",
    )
    .expect("constant pattern")
});

/// Auto-reply subject forms at the start of the subject (rule 9).
static AUTOREPLY_SUBJECT_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:\[\s*)?(?:automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|automatic response|auto|out of (?:the )?office(?: autoreply| reply)?|abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|risposta automatica|respuesta autom[aá]tica|resposta autom[aá]tica|automatyczna odpowied[zź]|automatisch antwoord|autosvar|automaattinen vastaus|automatisk svar|vacation(?: reply)?|away)\s*(?:[:\]]|\s-\s)",
    )
    .expect("constant pattern")
});

/// Auto-reply words anywhere in the subject (rule 9, with more evidence).
const AUTOREPLY_SUBJECT_WORDS: &[&str] = &[
    r"automatic (?:reply|response)",
    r"auto[- ]?(?:reply|response|respond)",
    r"autoreply",
    r"out of (?:the )?office",
    r"\bis out\b",
    r"\baway (?:until|from)",
    r"\bon (?:vacation|holiday|leave)",
    r"abwesenheit",
    r"automatische antwort",
    r"r[ée]ponse automatique",
    r"risposta automatica",
    r"respuesta autom[aá]tica",
    r"automatyczna odpowied",
    r"automatiska atbilde",
    r"atval[iī]n[aā]jums",
    r"automatisch antwoord",
    r"autosvar",
    r"thank you for (?:your )?(?:e-?mail|message|contacting)",
    r"we have received your (?:e-?mail|message)",
    r"^\s*vacation",
];

/// Vacation sentences (rules 9 and 10).
const VACATION_PHRASES: &[&str] = &[
    r"(?:i am|i'm|i will be|i'll be|i am currently|i'm currently) (?:currently )?(?:out of (?:the )?office|away|on (?:vacation|holiday|leave|annual leave|maternity leave|a business trip)|travel(?:l)?ing|not in the office|out until)",
    r"out of (?:the )?office (?:until|from|and will)",
    r"(?:limited|no) access to (?:my )?e-?mail",
    r"(?:upon|on|after) my return",
    r"will (?:be )?(?:back|returning|return) (?:on|to the office)",
    r"in my absence",
    r"during my absence",
    r"(?:respond|reply|answer|get back to you) (?:to your (?:e-?mail|message) )?(?:as soon as (?:possible|i can)|when i (?:return|get back))",
    r"for (?:urgent|immediate) (?:matters|assistance|issues|requests)",
    r"ich bin (?:bis|vom|ab|derzeit|zur zeit|nicht)",
    r"je suis (?:absent|en cong)",
    r"estar[eé] fuera",
    r"sono assente",
    r"jestem nieobecn",
];

/// "This is an automatic reply" and kin: one is enough (rule 10).
static AUTOMATIC_SENTENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)this (?:is an?|e-?mail is an?|message is an?) (?:automatic(?:ally generated)?|automated|auto[- ]?generated) (?:reply|response|acknowledge?ment)\b|\bthis is an auto-?reply\b",
    )
    .expect("constant pattern")
});

/// Challenge-response systems asking the sender to prove they are a
/// person (rule 10): automatic replies too.
static CHALLENGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:added to|add you to) (?:the recipient's|my|the) (?:allowed|approved|white|safe)[- ]?(?:senders? )?list|ensure (?:the )?delivery of your (?:e-?mail|message)|verify (?:that )?you are (?:a )?(?:real )?(?:person|human)|(?:spam ?blocker|spamarrest|challenge[- ]response)|your (?:e-?mail|message) (?:is|has been) (?:being )?(?:held|quarantined) (?:pending|until)",
    )
    .expect("constant pattern")
});

/// A subject that says a person forwarded something.
static FORWARD_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:fwd?|fw|wg|tr|enc|rv|doorst|vs|vl|i)\s*:").expect("constant pattern")
});

static MTA_SET: LazyLock<RegexSet> = LazyLock::new(|| set(MTA_SIGNATURES));
static BOUNCE_SUBJECT_SET: LazyLock<RegexSet> = LazyLock::new(|| set(BOUNCE_SUBJECTS));
static BOUNCE_PHRASE_SET: LazyLock<RegexSet> = LazyLock::new(|| set(BOUNCE_PHRASES));
static LIST_SET: LazyLock<RegexSet> = LazyLock::new(|| set(LIST_PHRASES));
static AUTOREPLY_WORD_SET: LazyLock<RegexSet> = LazyLock::new(|| set(AUTOREPLY_SUBJECT_WORDS));
static VACATION_SET: LazyLock<RegexSet> = LazyLock::new(|| set(VACATION_PHRASES));

/// The first pattern of `set` that matches `text`, as its source.
fn first(set: &RegexSet, patterns: &[&'static str], text: &str) -> Option<&'static str> {
    set.matches(text)
        .iter()
        .next()
        .and_then(|i| patterns.get(i).copied())
}

/// Every value of header `name`, trimmed.
fn header_values<'a>(msg: &'a ParsedMessage, name: &'a str) -> impl Iterator<Item = &'a str> {
    msg.headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The value before any `;` parameter or `(comment)`, lower-case.
fn token(value: &str) -> String {
    value
        .split([';', '('])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Why the sender counts as automatic, if it does.
fn automatic_sender(msg: &ParsedMessage, null_return_path: bool) -> Option<String> {
    if let Some(why) = delivery_system(msg, null_return_path) {
        return Some(why);
    }
    header_values(msg, "Auto-Submitted")
        .find(|v| token(v) != "no")
        .map(|v| format!("Auto-Submitted: {v}"))
}

/// Why the sender looks like delivery software (no `From:`, the null
/// return path, a daemon's name), if it does. Stricter than
/// [`automatic_sender`]: the weak phrase rules need it, so a customer's
/// monitoring system (`Auto-Submitted: auto-generated`) that writes
/// "rejected" still opens a ticket.
fn delivery_system(msg: &ParsedMessage, null_return_path: bool) -> Option<String> {
    let address = msg.from.as_ref().map_or("", |m| m.address.trim());
    if address.is_empty() {
        return Some("no From: address".into());
    }
    if null_return_path {
        return Some("null return path".into());
    }
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    let local = local.trim_matches('"');
    let name = msg
        .from
        .as_ref()
        .and_then(|m| m.name.as_deref())
        .unwrap_or("");
    if DAEMON_SENDER.is_match(local) || DAEMON_SENDER.is_match(name) {
        return Some(format!("delivery-system sender {address}"));
    }
    None
}

/// Whether the sender's local part is a list manager's.
fn is_list_sender(msg: &ParsedMessage) -> bool {
    let address = msg.from.as_ref().map_or("", |m| m.address.trim());
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    (!local.is_empty() && LIST_SENDER.is_match(local))
        || header_values(msg, "List-Id").next().is_some()
        || header_values(msg, "Precedence").any(|v| matches!(token(v).as_str(), "list" | "bulk"))
}

/// The text lines a person did not quote (`>`), lower-case.
fn fresh_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(SCAN_CHARS));
    for line in prefix(text, SCAN_CHARS).lines() {
        if line.trim_start().starts_with('>') {
            continue;
        }
        out.push_str(&line.to_lowercase());
        out.push('\n');
    }
    out
}

/// The report type of a `multipart/report` root, lower-case; `None` for
/// any other message.
fn report_type(raw: &[u8]) -> Option<String> {
    let msg = MessageParser::default().parse_headers(raw)?;
    let ct = msg.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"));
    is_report.then(|| {
        ct.attribute("report-type")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// Parse `raw` as an RFC 5965 feedback report.
fn feedback(raw: &[u8]) -> Option<Feedback> {
    let msg = MessageParser::default().parse(raw)?;
    let mut out = Feedback {
        feedback_type: String::new(),
        addresses: Vec::new(),
        original_message_id: None,
    };
    let mut saw_report = false;
    let mut returned_to = Vec::new();
    for part in msg.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let full = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase()
        );
        let body: &[u8] = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            PartType::Message(_) | PartType::Multipart(_) => raw
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or(&[]),
        };
        match full.as_str() {
            "message/feedback-report" => {
                saw_report = true;
                for line in String::from_utf8_lossy(body).lines() {
                    let Some((name, value)) = line.split_once(':') else {
                        continue;
                    };
                    let value = value.trim();
                    match name.trim().to_ascii_lowercase().as_str() {
                        "feedback-type" => out.feedback_type = value.to_ascii_lowercase(),
                        "original-rcpt-to" => out.addresses.push(clean_address(value)),
                        _ => {}
                    }
                }
            }
            "message/rfc822" | "text/rfc822-headers" | "message/global"
                if out.original_message_id.is_none() =>
            {
                let mut bytes = body.to_vec();
                bytes.extend_from_slice(b"\r\n\r\n");
                if let Some(m) = MessageParser::default().parse_headers(&bytes) {
                    out.original_message_id = m
                        .message_id()
                        .map(|s| s.trim().trim_matches(['<', '>']).to_owned())
                        .filter(|s| !s.is_empty());
                    if let Some(to) = m.to() {
                        returned_to
                            .extend(to.iter().filter_map(|a| a.address()).map(clean_address));
                    }
                }
            }
            _ => {}
        }
    }
    if out.addresses.is_empty() {
        out.addresses = returned_to;
    }
    out.addresses.retain(|a| a.contains('@'));
    out.addresses.dedup();
    saw_report.then_some(out)
}

/// The type of the first part that carries a returned message
/// (`message/rfc822`, `text/rfc822-headers`), if any.
fn returned_part(raw: &[u8]) -> Option<&'static str> {
    let msg = MessageParser::default().parse(raw)?;
    msg.parts.iter().skip(1).find_map(|part| {
        let ct = part.content_type()?;
        let sub = ct.subtype().unwrap_or("");
        match (
            ct.ctype().to_ascii_lowercase().as_str(),
            sub.to_ascii_lowercase().as_str(),
        ) {
            ("message", "rfc822") => Some("message/rfc822"),
            ("text", "rfc822-headers") => Some("text/rfc822-headers"),
            ("message", "global") => Some("message/global"),
            _ => None,
        }
    })
}

/// `rfc822; <Ann@X.test>` → `ann@x.test`.
fn clean_address(value: &str) -> String {
    let v = value.split_once(';').map_or(value, |(_, rest)| rest);
    v.trim()
        .trim_matches(['<', '>'])
        .trim()
        .to_ascii_lowercase()
}

/// The Message-ID quoted in the body of a report (the returned message's
/// headers), if any: the first `Message-ID:` line after the report's own
/// header section.
fn quoted_message_id(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(prefix_bytes(raw, SCAN_CHARS * 4));
    let body_start = text
        .find("\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| text.find("\n\n").map(|i| i + 2))?;
    let body = text.get(body_start..)?;
    for line in body.lines() {
        let line = line.trim_start_matches(['>', ' ']);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("message-id") {
            let id = value.trim().trim_matches(['<', '>']).trim();
            if !id.is_empty() && id.contains('@') && !id.contains(' ') {
                return Some(id.to_owned());
            }
        }
    }
    None
}

fn prefix_bytes(raw: &[u8], max: usize) -> &[u8] {
    raw.get(..max).unwrap_or(raw)
}

/// What kind of machine-sent mail `msg` is, or `None` for ordinary mail.
/// `null_return_path` is the caller's reading of the envelope (see
/// [`crate::guard::has_null_return_path`]).
pub fn classify(raw: &[u8], msg: &ParsedMessage, null_return_path: bool) -> Option<Class> {
    let class = |kind, because, detail: String| {
        Some(Class {
            kind,
            because,
            detail,
        })
    };
    // 1-4: structure.
    if let Some(dsn) = bounce::parse(raw) {
        let n = dsn.recipients.len();
        return class(
            Kind::Dsn(dsn),
            "dsn",
            format!("multipart/report delivery-status, {n} recipient(s)"),
        );
    }
    let report = report_type(raw);
    match report.as_deref() {
        Some("feedback-report") => {
            if let Some(f) = feedback(raw) {
                let detail = format!("Feedback-Type: {}", f.feedback_type);
                return class(Kind::Feedback(f), "feedback_report", detail);
            }
        }
        Some("disposition-notification") => {
            return class(
                Kind::AutoReply,
                "disposition_notification",
                "multipart/report disposition-notification".into(),
            );
        }
        _ => {}
    }
    let subject = msg.subject.as_deref().unwrap_or("").trim();
    let sender = automatic_sender(msg, null_return_path);
    let is_forward = FORWARD_SUBJECT.is_match(subject);
    if let Some(rt) = &report
        && (sender.is_some() || !is_forward)
    {
        return class(
            Kind::Bounce {
                original_message_id: quoted_message_id(raw),
            },
            "report",
            format!("multipart/report report-type={rt}"),
        );
    }
    let text = fresh_text(&msg.text);

    // 5: a delivery system's own sentence.
    if sender.is_some() || !is_forward {
        let matched = first(&MTA_SET, MTA_SIGNATURES, &text);
        if let Some(p) = matched {
            // The first line with a word in it (banners of `*` or `-`
            // come before some reports' first sentence).
            let first_line = text
                .lines()
                .find(|l| l.chars().any(char::is_alphanumeric))
                .unwrap_or("");
            let at_top = MTA_SET.matches(first_line).matched_any();
            if sender.is_some() || at_top {
                return class(
                    Kind::Bounce {
                        original_message_id: quoted_message_id(raw),
                    },
                    "mta_signature",
                    p.to_owned(),
                );
            }
        }
    }

    // 8: headers an auto-responder sets. Before the phrase rules so a
    // vacation reply whose subject says "delivery" is still a reply.
    if let Some(v) = header_values(msg, "Auto-Submitted").find(|v| token(v) == "auto-replied") {
        return class(
            Kind::AutoReply,
            "auto_submitted",
            format!("Auto-Submitted: {v}"),
        );
    }
    for name in ["X-Autoreply", "X-Autorespond"] {
        if let Some(v) = header_values(msg, name).next() {
            return class(Kind::AutoReply, "autoreply_header", format!("{name}: {v}"));
        }
    }
    // IMail's `X-Autogenerated: Reply`; its `Mirror` marks a returned
    // message, which the bounce rules below take.
    if let Some(v) = header_values(msg, "X-Autogenerated").find(|v| token(v) == "reply") {
        return class(
            Kind::AutoReply,
            "autoreply_header",
            format!("X-Autogenerated: {v}"),
        );
    }
    if let Some(v) = header_values(msg, "Precedence").find(|v| token(v) == "auto_reply") {
        return class(
            Kind::AutoReply,
            "autoreply_header",
            format!("Precedence: {v}"),
        );
    }

    if let Some(why) = &delivery_system(msg, null_return_path) {
        // 6: a non-delivery subject or phrase from an automatic sender.
        if let Some(p) = first(&BOUNCE_SUBJECT_SET, BOUNCE_SUBJECTS, subject) {
            return class(
                Kind::Bounce {
                    original_message_id: quoted_message_id(raw),
                },
                "bounce_subject",
                format!("{p} ({why})"),
            );
        }
        if let Some(p) = first(&LIST_SET, LIST_PHRASES, &format!("{subject}\n{text}")) {
            return class(Kind::ListNotice, "list_notice", format!("{p} ({why})"));
        }
        if let Some(p) = first(&BOUNCE_PHRASE_SET, BOUNCE_PHRASES, &text) {
            return class(
                Kind::Bounce {
                    original_message_id: quoted_message_id(raw),
                },
                "bounce_body",
                format!("{p} ({why})"),
            );
        }
    }
    // 6: a delivery system returning a message, whatever its language.
    if let Some(why) = delivery_system(msg, null_return_path)
        && let Some(part) = returned_part(raw)
    {
        return class(
            Kind::Bounce {
                original_message_id: quoted_message_id(raw),
            },
            "returned_message",
            format!("{part} part ({why})"),
        );
    }
    // 7: a list manager's notice.
    if is_list_sender(msg)
        && let Some(p) = first(&LIST_SET, LIST_PHRASES, &format!("{subject}\n{text}"))
    {
        return class(Kind::ListNotice, "list_notice", p.to_owned());
    }

    // 9: an auto-reply subject.
    let lower_subject = subject.to_lowercase();
    if AUTOREPLY_SUBJECT_START.is_match(subject) {
        return class(Kind::AutoReply, "autoreply_subject", subject.to_owned());
    }
    let vacation = VACATION_SET.matches(&text);
    let automatic_sentence = AUTOMATIC_SENTENCE.find(&text);
    if let Some(p) = first(&AUTOREPLY_WORD_SET, AUTOREPLY_SUBJECT_WORDS, &lower_subject)
        && (vacation.matched_any() || automatic_sentence.is_some() || sender.is_some())
    {
        return class(
            Kind::AutoReply,
            "autoreply_subject",
            format!("{p}: {subject}"),
        );
    }

    // 10: vacation sentences at the top of a reply.
    let top = prefix(&text, 1500);
    let is_reply = !msg.in_reply_to.is_empty()
        || !msg.references.is_empty()
        || lower_subject.starts_with("re:")
        || lower_subject.starts_with("aw:");
    if let Some(m) = AUTOMATIC_SENTENCE.find(top)
        && (is_reply || sender.is_some())
    {
        return class(Kind::AutoReply, "autoreply_body", m.as_str().to_owned());
    }
    if let Some(m) = CHALLENGE.find(top)
        && (is_reply || sender.is_some())
    {
        return class(Kind::AutoReply, "challenge_response", m.as_str().to_owned());
    }
    let top_vacation = VACATION_SET.matches(top);
    if is_reply && top_vacation.iter().count() >= 2 {
        let p = top_vacation
            .iter()
            .next()
            .and_then(|i| VACATION_PHRASES.get(i))
            .copied()
            .unwrap_or("");
        return class(Kind::AutoReply, "autoreply_body", p.to_owned());
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    /// Classify `raw` as `ingest` would see it: the null return path only
    /// from a `Return-Path: <>` header.
    fn run(raw: &[u8]) -> Option<Class> {
        let msg = crate::parse::parse(raw);
        let null = header_values(&msg, "Return-Path").next().is_some_and(|v| {
            v.trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace())
                .is_empty()
        });
        classify(raw, &msg, null)
    }

    fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bounces")
            .join(dir);
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        out.sort();
        out
    }

    /// Every message of the public corpus is recognised, and the bounce
    /// parsers' own negative cases are not.
    #[test]
    fn every_corpus_message_is_recognised_and_no_negative_case_is() {
        let mut missed = Vec::new();
        let mut n = 0;
        for dir in ["flufl-bounce", "bounced", "bounceparser", "baunsu"] {
            for (name, raw) in corpus(dir) {
                n += 1;
                if run(&raw).is_none() {
                    missed.push(name);
                }
            }
        }
        assert!(n > 250, "corpus incomplete: {n}");
        assert!(
            missed.is_empty(),
            "{} of {n} missed: {missed:#?}",
            missed.len()
        );
        for (name, raw) in corpus("ordinary") {
            assert_eq!(run(&raw), None, "{name}");
        }
    }

    /// A message with `headers` (each line `Name: value`) and `body`.
    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("{headers}\nMessage-ID: <t1@x.test>\n\n{body}")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    /// One table row: a name, the message, the kind and rule expected.
    type Row = (&'static str, Vec<u8>, Option<(&'static str, &'static str)>);

    fn check(rows: Vec<Row>) {
        for (name, raw, expected) in rows {
            let got = run(&raw);
            assert_eq!(
                got.as_ref().map(|c| (c.kind.as_str(), c.because)),
                expected,
                "{name}: {got:?}"
            );
        }
    }

    const RETURNED: &str = "\n--- Below this line is a copy of the message.\n\n\
        Return-Path: <support@example.com>\nFrom: support@example.com\n\
        Message-ID: <ack-7@desk.example.com>\nSubject: Re: Help [#1001]\n\nHello\n";

    #[test]
    fn bounces_in_each_mtas_own_words() {
        check(vec![
            (
                "qmail failure notice",
                mail(
                    "From: MAILER-DAEMON@mx.c.test\nTo: support@example.com\nSubject: failure notice",
                    &format!(
                        "Hi. This is the qmail-send program at mx.c.test.\n\
                         I'm afraid I wasn't able to deliver your message to the following addresses.\n\
                         This is a permanent error; I've given up. Sorry it didn't work out.\n{RETURNED}"
                    ),
                ),
                Some(("bounce", "mta_signature")),
            ),
            (
                "Exim with no From",
                mail(
                    "To: support@example.com\nSubject: Mail delivery failed: returning message to sender",
                    "This message was created automatically by mail delivery software.\n\n\
                     A message that you sent could not be delivered to one or more of its\n\
                     recipients. This is a permanent error.\n",
                ),
                Some(("bounce", "mta_signature")),
            ),
            (
                "Exchange NDR",
                mail(
                    "From: System Administrator <postmaster@corp.test>\nSubject: Undeliverable: Help",
                    "Your message did not reach some or all of the intended recipients.\n",
                ),
                Some(("bounce", "mta_signature")),
            ),
            (
                "Lotus Notes",
                mail(
                    "From: Mail Router <router@notes.test>\nSubject: DELIVERY FAILURE: User bob not listed",
                    "Your document:  Re: Help\nwas not delivered to:  bob@notes.test\nbecause:  User bob not listed in public Name & Address Book\n",
                ),
                Some(("bounce", "mta_signature")),
            ),
            (
                "sendmail returned mail, no DSN",
                mail(
                    "From: Mail Delivery Subsystem <MAILER-DAEMON@m.test>\nSubject: Returned mail: see transcript for details",
                    "The original message was received at Mon, 2 Mar 2026 from localhost\n\n   ----- Transcript of session follows -----\n550 5.1.1 bob... User unknown\n",
                ),
                Some(("bounce", "mta_signature")),
            ),
            (
                "a daemon's subject alone",
                mail(
                    "From: MAILER-DAEMON@m.test\nSubject: Undelivered Mail",
                    "(no text)\n",
                ),
                Some(("bounce", "bounce_subject")),
            ),
            (
                "null return path with a failure phrase",
                mail(
                    "Return-Path: <>\nFrom: gateway@m.test\nSubject: Notice",
                    "Recipient address rejected: user unknown in local table\n",
                ),
                Some(("bounce", "bounce_body")),
            ),
            (
                "a daemon returning a message in another language",
                mail(
                    "From: MAILER-DAEMON@sina.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"",
                    "--b\nContent-Type: text/plain\n\n\u{90ae}\u{4ef6}\n--b\nContent-Type: message/rfc822\n\nFrom: a@b.test\nSubject: x\n\nbody\n--b--\n",
                ),
                Some(("bounce", "returned_message")),
            ),
        ]);
    }

    #[test]
    fn a_bounce_quoting_the_returned_headers_names_the_original_message() {
        let raw = mail(
            "From: MAILER-DAEMON@mx.c.test\nSubject: failure notice",
            &format!("Hi. This is the qmail-send program at mx.c.test.\n{RETURNED}"),
        );
        let c = run(&raw).unwrap();
        assert_eq!(
            c.kind,
            Kind::Bounce {
                original_message_id: Some("ack-7@desk.example.com".into())
            }
        );
    }

    #[test]
    fn reports_by_structure() {
        let arf = mail(
            "From: fbl@isp.test\nSubject: Abuse report\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"F\"",
            "--F\nContent-Type: text/plain\n\nA complaint.\n--F\nContent-Type: message/feedback-report\n\n\
             Feedback-Type: abuse\nUser-Agent: x/1\nVersion: 1\nOriginal-Rcpt-To: <Ann@C.test>\n\
             \n--F\nContent-Type: text/rfc822-headers\n\nFrom: support@example.com\nTo: ann@c.test\n\
             Message-ID: <ack-9@desk.example.com>\n\n--F--\n",
        );
        let c = run(&arf).unwrap();
        assert_eq!(c.because, "feedback_report");
        assert_eq!(
            c.kind,
            Kind::Feedback(Feedback {
                feedback_type: "abuse".into(),
                addresses: vec!["ann@c.test".into()],
                original_message_id: Some("ack-9@desk.example.com".into()),
            })
        );
        let mdn = mail(
            "From: ann@c.test\nSubject: Read: Help\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"M\"",
            "--M\nContent-Type: text/plain\n\nYour message was read.\n--M--\n",
        );
        check(vec![
            (
                "read receipt",
                mdn,
                Some(("auto_reply", "disposition_notification")),
            ),
            (
                "a report of an unknown type",
                mail(
                    "From: ann@c.test\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=x-weird; boundary=\"R\"",
                    "--R\nContent-Type: text/plain\n\nx\n--R--\n",
                ),
                Some(("bounce", "report")),
            ),
        ]);
    }

    #[test]
    fn automatic_replies_with_and_without_headers() {
        check(vec![
            (
                "Auto-Submitted: auto-replied",
                mail(
                    "From: ann@c.test\nAuto-Submitted: auto-replied\nSubject: Re: Help",
                    "Thanks.\n",
                ),
                Some(("auto_reply", "auto_submitted")),
            ),
            (
                "X-Autoreply",
                mail(
                    "From: ann@c.test\nX-Autoreply: yes\nSubject: Help",
                    "Away.\n",
                ),
                Some(("auto_reply", "autoreply_header")),
            ),
            (
                "Outlook",
                mail(
                    "From: ann@c.test\nSubject: Automatic reply: Help",
                    "Back on Monday.\n",
                ),
                Some(("auto_reply", "autoreply_subject")),
            ),
            (
                "Lotus AUTO:",
                mail(
                    "From: ann@c.test\nSubject: AUTO: Ann is out of the office (returning 05/01)",
                    "x\n",
                ),
                Some(("auto_reply", "autoreply_subject")),
            ),
            (
                "German",
                mail(
                    "From: ann@c.test\nSubject: Abwesenheitsnotiz: Hilfe",
                    "Ich bin bis Montag nicht im Haus.\n",
                ),
                Some(("auto_reply", "autoreply_subject")),
            ),
            (
                "Away until, with a vacation sentence",
                mail(
                    "From: ann@c.test\nSubject: Away until 12 March",
                    "I am currently out of the office with limited access to email.\n",
                ),
                Some(("auto_reply", "autoreply_subject")),
            ),
            (
                "no header, no subject form: two vacation sentences in a reply",
                mail(
                    "From: ann@c.test\nIn-Reply-To: <ack-1@desk.example.com>\nSubject: Re: Help",
                    "I am out of the office until Monday with limited access to e-mail.\n\
                     I will respond to your message when I return.\n",
                ),
                Some(("auto_reply", "autoreply_body")),
            ),
            (
                "challenge-response",
                mail(
                    "From: ann@c.test\nSubject: RE: Help",
                    "Please click the link to have your address added to the recipient's allowed list.\n",
                ),
                Some(("auto_reply", "challenge_response")),
            ),
        ]);
    }

    #[test]
    fn mailing_list_notices() {
        check(vec![
            (
                "Mailman moderation",
                mail(
                    "From: users-owner@lists.c.test\nSubject: Your message to Users awaits moderator approval",
                    "Your mail to 'Users' is being held until the list moderator can review it.\n",
                ),
                Some(("list_notice", "list_notice")),
            ),
            (
                "not a member",
                mail(
                    "From: users-bounces@lists.c.test\nSubject: Re: Help",
                    "You are not a member of this list; your message was not distributed.\n",
                ),
                Some(("list_notice", "list_notice")),
            ),
            (
                "loop from a daemon",
                mail(
                    "From: MAILER-DAEMON@lists.c.test\nSubject: Message rejected: mail loop",
                    "A mail loop was detected.\n",
                ),
                Some(("bounce", "bounce_subject")),
            ),
        ]);
    }

    #[test]
    fn people_who_talk_about_bounces_and_absences_write_ordinary_mail() {
        check(vec![
            (
                "a customer mentions a bounce",
                mail(
                    "From: ann@c.test\nSubject: Mail delivery failed when I wrote to sales",
                    "Hello, my mail to sales was undeliverable: user unknown. Can you help?\n",
                ),
                None,
            ),
            (
                "a customer pastes a bounce under a line of their own",
                mail(
                    "From: ann@c.test\nSubject: Help",
                    "I got this back:\nThis message was created automatically by mail delivery software.\n",
                ),
                None,
            ),
            (
                "a customer forwards a bounce",
                mail(
                    "From: ann@c.test\nSubject: Fwd: Undelivered Mail Returned to Sender",
                    "This is the mail system at host mx.c.test.\n",
                ),
                None,
            ),
            (
                "a customer asks about out-of-office replies",
                mail(
                    "From: ann@c.test\nSubject: Out of office replies do not work",
                    "Our Outlook sends no replies since Monday.\n",
                ),
                None,
            ),
            (
                "a customer will be away, once",
                mail(
                    "From: ann@c.test\nIn-Reply-To: <ack-1@desk.example.com>\nSubject: Re: Help",
                    "Thanks! I am on vacation next week, so let's test after that.\n",
                ),
                None,
            ),
            (
                "a monitoring system's auto-generated alert says rejected",
                mail(
                    "From: alerts@c.test\nAuto-Submitted: auto-generated\nSubject: Payment gateway down",
                    "All requests rejected since 10:00.\n",
                ),
                None,
            ),
        ]);
    }
}
