//! What comes in through the web door, made a message: RFC 5322 bytes and
//! the envelope that goes with them into the spool.
//!
//! Receives a checked form, page reply or alert; returns `(Envelope,
//! bytes)` for [`crate::spool::Spool::accept`], the same accept path as
//! SMTP, so the message is threaded, routed, scanned and acknowledged by
//! the same pipeline, and its raw bytes are kept like a mail's. The
//! decisions the web door made (queue, issue type, priority, alert key)
//! travel in [`WebIntake`] on the envelope, never in a header: a header
//! anyone can write in a mail.

use mail_send::mail_builder::MessageBuilder;
use mail_send::mail_builder::headers::HeaderType;
use mail_send::mail_builder::headers::address::Address;
use mail_send::mail_builder::headers::message_id::MessageId;
use mail_send::mail_builder::headers::text::Text;

use crate::config::Config;
use crate::domain::{Envelope, Priority, Queue, Source, TicketId, WebIntake, WebKind};

/// The header naming the page a form was sent from: for the agents, as
/// information only; the pipeline reads nothing from it.
pub const PAGE_HEADER: &str = "X-Postdesk-Web-Page";

/// A form category (`category`), with the issue type and queue it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `question`: a sales lead, `Sales Inquiry`.
    Question,
    /// `support`: a support ticket, `Support`.
    Support,
    /// `issue`: a support ticket, `Bug`.
    Issue,
    /// `service_request`: a support ticket, `Feature Request`.
    ServiceRequest,
    /// `quote`: a sales lead, `Sales Inquiry`.
    Quote,
}

impl Category {
    /// Every category, as the form offers them.
    pub const ALL: [Category; 5] = [
        Category::Question,
        Category::Support,
        Category::Issue,
        Category::ServiceRequest,
        Category::Quote,
    ];

    /// The category named `name` (the form's value).
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The form's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Question => "question",
            Category::Support => "support",
            Category::Issue => "issue",
            Category::ServiceRequest => "service_request",
            Category::Quote => "quote",
        }
    }

    /// The issue type of the ticket it opens.
    pub fn issue_type(self) -> &'static str {
        match self {
            Category::Question | Category::Quote => "Sales Inquiry",
            Category::Support => "Support",
            Category::Issue => "Bug",
            Category::ServiceRequest => "Feature Request",
        }
    }

    /// The queue: questions and quotes are sales leads.
    pub fn queue(self) -> Queue {
        match self {
            Category::Question | Category::Quote => Queue::Sales,
            _ => Queue::Support,
        }
    }
}

/// A file sent with a form.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The file name the browser gave.
    pub name: String,
    /// Its content type as sent (reduced to `type/subtype` when built).
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A checked contact form.
#[derive(Debug, Clone)]
pub struct Form {
    /// The sender's name.
    pub name: String,
    /// The sender's address.
    pub email: String,
    /// Subject.
    pub subject: String,
    /// The text.
    pub message: String,
    /// What it is about.
    pub category: Category,
    /// The page it was sent from, if the form said.
    pub page: Option<String>,
    /// Files.
    pub uploads: Vec<Upload>,
}

/// A checked monitor alert.
#[derive(Debug, Clone)]
pub struct Alert {
    /// What broke.
    pub title: String,
    /// The monitor that saw it (`prometheus`, `uptime-kuma`, a host name).
    pub source: String,
    /// The ticket's priority.
    pub severity: Priority,
    /// Detail.
    pub body: String,
    /// Alerts with the same key share one open ticket.
    pub dedupe_key: Option<String>,
    /// The trouble is over.
    pub resolved: bool,
}

/// The envelope and bytes of a contact form from `peer`.
///
/// # Errors
///
/// Only when writing to memory fails.
pub fn form(
    cfg: &Config,
    f: &Form,
    peer: Option<std::net::SocketAddr>,
) -> std::io::Result<(Envelope, Vec<u8>)> {
    let to = match f.category.queue() {
        Queue::Sales => cfg
            .addresses
            .sales
            .first()
            .or(cfg.addresses.info.first())
            .or(cfg.addresses.support.first()),
        _ => cfg.addresses.support.first(),
    }
    .cloned()
    .unwrap_or_else(|| format!("support@{}", cfg.server.hostname));
    let mut b = MessageBuilder::new()
        .message_id(MessageId::new(message_id(cfg, "web")))
        .from(Address::new_address(
            Some(one_line(&f.name)),
            f.email.clone(),
        ))
        .to(Address::new_address(None::<String>, to.clone()))
        .subject(Text::new(one_line(&f.subject)));
    if let Some(page) = &f.page {
        b = b.header(PAGE_HEADER, HeaderType::Text(Text::new(one_line(page))));
    }
    b = b.text_body(crlf(&f.message));
    for u in &f.uploads {
        b = b.attachment(
            crate::outbound::compose::safe_content_type(&u.content_type),
            one_line(&u.name),
            u.bytes.clone(),
        );
    }
    let intake = WebIntake {
        kind: WebKind::Form,
        queue: f.category.queue(),
        issue_type: f.category.issue_type().to_owned(),
        priority: None,
    };
    Ok((envelope(&f.email, &to, peer, intake), b.write_to_vec()?))
}

/// What a reply from the customer page is sent as: the ticket's requester
/// writing to the ticket's customer reply address.
#[derive(Debug, Clone)]
pub struct PageReply<'a> {
    /// The ticket.
    pub ticket: TicketId,
    /// Its requester's address (the page belongs to them).
    pub requester: &'a str,
    /// Their name.
    pub requester_name: &'a str,
    /// The address the ticket came in through (the base of the reply
    /// address).
    pub inbound_address: &'a str,
    /// The ticket's subject and tag, for `Re:`.
    pub subject: &'a str,
    /// The newest customer-visible Message-ID, for `In-Reply-To`.
    pub in_reply_to: Option<&'a str>,
    /// The reply.
    pub text: &'a str,
    /// A rating (1 to 5) instead of a reply: the mail goes to the signed
    /// rating address of that score, as a click in the survey mail does,
    /// and `text` is its comment.
    pub rating: Option<u8>,
}

/// The envelope and bytes of a reply from the customer page: addressed to
/// the ticket's signed customer reply address, so threading rule 1 puts
/// it on that ticket as it would a mail reply; `None` without a token
/// secret.
///
/// # Errors
///
/// Only when writing to memory fails.
pub fn page_reply(
    cfg: &Config,
    r: &PageReply<'_>,
    peer: Option<std::net::SocketAddr>,
) -> std::io::Result<Option<(Envelope, Vec<u8>)>> {
    let Some(keys) = cfg.threading.keys() else {
        return Ok(None);
    };
    let base = if r.inbound_address.contains('@') {
        r.inbound_address.to_owned()
    } else {
        cfg.addresses
            .support
            .first()
            .cloned()
            .unwrap_or_else(|| format!("support@{}", cfg.server.hostname))
    };
    let purpose = match r.rating {
        Some(score) => crate::token::Purpose::Rating { score },
        None => crate::token::Purpose::Customer,
    };
    let to = crate::token::address(keys, &purpose, r.ticket, &base);
    let mut b = MessageBuilder::new()
        .message_id(MessageId::new(message_id(cfg, "page")))
        .from(Address::new_address(
            Some(one_line(r.requester_name)),
            r.requester.to_owned(),
        ))
        .to(Address::new_address(None::<String>, to.clone()))
        .subject(Text::new(format!("Re: {}", one_line(r.subject))));
    if let Some(id) = r.in_reply_to {
        b = b
            .in_reply_to(MessageId::new(id.to_owned()))
            .references(MessageId::new(id.to_owned()));
    }
    b = b.text_body(crlf(r.text));
    let intake = WebIntake {
        kind: WebKind::PageReply,
        queue: Queue::Support,
        issue_type: String::new(),
        priority: None,
    };
    Ok(Some((
        envelope(r.requester, &to, peer, intake),
        b.write_to_vec()?,
    )))
}

/// The envelope and bytes of a monitor alert: from `<source>@alerts.invalid`
/// (a name no mail is sent to, as alerts are not acknowledged), to the
/// first support address, in the monitoring queue as a `Bug`.
///
/// # Errors
///
/// Only when writing to memory fails.
pub fn alert(
    cfg: &Config,
    a: &Alert,
    peer: Option<std::net::SocketAddr>,
) -> std::io::Result<(Envelope, Vec<u8>)> {
    let to = cfg
        .addresses
        .support
        .first()
        .cloned()
        .unwrap_or_else(|| format!("support@{}", cfg.server.hostname));
    let from = format!("{}@alerts.invalid", slug(&a.source));
    let state = if a.resolved { "RESOLVED" } else { "ALERT" };
    let subject = format!("[{state}] {}", one_line(&a.title));
    let mut body = format!(
        "{state}: {}\nsource: {}\nseverity: {}\n",
        one_line(&a.title),
        one_line(&a.source),
        a.severity.as_str().to_ascii_lowercase()
    );
    if let Some(k) = &a.dedupe_key {
        body.push_str(&format!("dedupe key: {}\n", one_line(k)));
    }
    if !a.body.is_empty() {
        body.push('\n');
        body.push_str(&a.body);
        body.push('\n');
    }
    let b = MessageBuilder::new()
        .message_id(MessageId::new(message_id(cfg, "alert")))
        .from(Address::new_address(
            Some(format!("{} monitor", one_line(&a.source))),
            from.clone(),
        ))
        .to(Address::new_address(None::<String>, to.clone()))
        .subject(Text::new(subject))
        .text_body(crlf(&body));
    let intake = WebIntake {
        kind: WebKind::Alert {
            dedupe_key: a.dedupe_key.clone(),
            resolved: a.resolved,
        },
        queue: Queue::Monitoring,
        issue_type: "Bug".to_owned(),
        priority: Some(a.severity),
    };
    Ok((envelope(&from, &to, peer, intake), b.write_to_vec()?))
}

fn envelope(
    from: &str,
    to: &str,
    peer: Option<std::net::SocketAddr>,
    intake: WebIntake,
) -> Envelope {
    Envelope {
        mail_from: from.to_owned(),
        rcpt_to: vec![to.to_owned()],
        source: Source::Web,
        peer,
        helo: String::new(),
        web: Some(intake),
    }
}

/// A Message-ID for a web message: unguessable, as every Message-ID
/// postdesk makes.
fn message_id(cfg: &Config, kind: &str) -> String {
    format!(
        "{kind}.{}",
        crate::outbound::compose::message_id(&cfg.server.hostname)
    )
}

/// `s` on one line: control characters (a CR or LF someone put in a name
/// to add a header) become spaces.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Text with CRLF line ends, as RFC 5322 wants.
fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// `source` as the local part of an address: lower-case letters, digits
/// and `-`, at most 40; `monitor` when nothing is left.
fn slug(source: &str) -> String {
    let s: String = source
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(40)
        .collect();
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "monitor".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn each_category_gives_its_issue_type_and_queue() {
        let rows = [
            ("question", "Sales Inquiry", Queue::Sales),
            ("support", "Support", Queue::Support),
            ("issue", "Bug", Queue::Support),
            ("service_request", "Feature Request", Queue::Support),
            ("quote", "Sales Inquiry", Queue::Sales),
        ];
        for (name, issue_type, queue) in rows {
            let c = Category::parse(name).unwrap();
            assert_eq!((c.issue_type(), c.queue()), (issue_type, queue), "{name}");
        }
        assert_eq!(Category::parse("Support"), None);
        assert_eq!(Category::parse(""), None);
    }

    #[test]
    fn names_cannot_add_headers_and_sources_become_local_parts() {
        assert_eq!(one_line("Eve\r\nBcc: x@y.z"), "Eve  Bcc: x@y.z");
        assert_eq!(slug("Uptime Kuma!"), "uptime-kuma");
        assert_eq!(slug("<<>>"), "monitor");
    }
}
