//! The sentences, subjects and sender names the rules of
//! [`super::classify`] look for, compiled once.
//!
//! Each table says which rule reads it (the numbering of the parent
//! module's docs). Patterns are matched case-insensitively; a set reports
//! which pattern fired, and that pattern is the `detail` of the
//! [`Class`](super::Class).

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// Case-insensitive regex set; the patterns are literals of this file.
fn set(patterns: &[&str]) -> RegexSet {
    RegexSet::new(patterns.iter().map(|p| format!("(?i){p}")))
        .expect("the classifier's patterns are constants that compile")
}

/// Sentences only delivery software writes (rule 5).
pub(super) const MTA_SIGNATURES: &[&str] = &[
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
    r"could not deliver (?:the )?message to the following recipient",
    r"votre message n.a pas pu (?:etre|être) (?:d[ée]livr[ée]|remis)",
];

/// Subjects of non-delivery reports (rule 7, from a delivery system).
pub(super) const BOUNCE_SUBJECTS: &[&str] = &[
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

/// Non-delivery phrases of a report body (rule 7, from a delivery
/// system).
pub(super) const BOUNCE_PHRASES: &[&str] = &[
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

/// Mailing-list manager notices (rules 7 and 8).
pub(super) const LIST_PHRASES: &[&str] = &[
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

/// Senders that are list managers (rule 8).
pub(super) static LIST_SENDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:owner-.*|.*-owner|.*-bounces?(?:\+.*)?|.*-request|mailman|majordomo|listserv|listproc|sympa|ecartis|lyris|.*-admin)$",
    )
    .expect("constant pattern")
});

/// Delivery-system sender local parts and display names.
pub(super) static DAEMON_SENDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)mailer[-_.]?daemon|mail[-_.]?daemon|\bmdaemon\b|postmaster|mail[-_. ]?delivery|delivery[-_. ]?(?:subsystem|system|status)|mail[-_. ]?system|\bndr\b|^bounces?$|^nobody$|antivirus|mailscanner|smtp[-_. ]?(?:gateway|mail|service)|mail[-_. ]?gateway|^inetgw|^imss$|^e500_|mailsweeper|mail[-_. ]?router",
    )
    .expect("constant pattern")
});

/// Auto-reply subject forms at the start of the subject (rule 9).
pub(super) static AUTOREPLY_SUBJECT_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i:^\s*(?:\[\s*)?(?:automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|automatic response|out of (?:the )?office(?: autoreply| reply)?|abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|risposta automatica|respuesta autom[aá]tica|resposta autom[aá]tica|automatyczna odpowied[zź]|automatisch antwoord|autosvar|automaattinen vastaus|automatisk svar|vacation reply)\s*(?:[:\]]|\s-\s))|^\s*AUTO:.*\b(?:is out of|out of (?:the )?office|is away|returning)\b",
    )
    .expect("constant pattern")
});

/// Auto-reply words anywhere in the subject (rule 9, with more evidence).
pub(super) const AUTOREPLY_SUBJECT_WORDS: &[&str] = &[
    r"automatic (?:reply|response)",
    r"auto[- ]?(?:reply|response|respond)",
    r"autoreply",
    r"out of (?:the )?office",
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
pub(super) const VACATION_PHRASES: &[&str] = &[
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
pub(super) static AUTOMATIC_SENTENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)this (?:is an?|e-?mail is an?|message is an?) (?:automatic(?:ally generated)?|automated|auto[- ]?generated) (?:reply|response|acknowledge?ment)\b|\bthis is an auto-?reply\b",
    )
    .expect("constant pattern")
});

/// Challenge-response systems asking the sender to prove they are a
/// person (rule 10): automatic replies too.
pub(super) static CHALLENGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:added to|add you to) (?:the recipient's|my|the) (?:allowed|approved|white|safe)[- ]?(?:senders? )?list|ensure (?:the )?delivery of your (?:e-?mail|message)|verify (?:that )?you are (?:a )?(?:real )?(?:person|human)|(?:spam ?blocker|spamarrest|challenge[- ]response)|your (?:e-?mail|message) (?:is|has been) (?:being )?(?:held|quarantined) (?:pending|until)",
    )
    .expect("constant pattern")
});

/// A subject that says a person forwarded something.
pub(super) static FORWARD_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:fwd?|fw|wg|tr|enc|rv|doorst|vs|vl|i)\s*:").expect("constant pattern")
});

pub(super) static MTA_SET: LazyLock<RegexSet> = LazyLock::new(|| set(MTA_SIGNATURES));
pub(super) static BOUNCE_SUBJECT_SET: LazyLock<RegexSet> = LazyLock::new(|| set(BOUNCE_SUBJECTS));
pub(super) static BOUNCE_PHRASE_SET: LazyLock<RegexSet> = LazyLock::new(|| set(BOUNCE_PHRASES));
pub(super) static LIST_SET: LazyLock<RegexSet> = LazyLock::new(|| set(LIST_PHRASES));
pub(super) static AUTOREPLY_WORD_SET: LazyLock<RegexSet> =
    LazyLock::new(|| set(AUTOREPLY_SUBJECT_WORDS));
pub(super) static VACATION_SET: LazyLock<RegexSet> = LazyLock::new(|| set(VACATION_PHRASES));
