//! The envelope of a message: where it came in, from whom, for whom; and
//! what the store made of it.

use std::net::SocketAddr;

use super::ids::{MessageRowId, TicketId};
use super::ticket::{Priority, Queue};

/// Where a message came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The SMTP listener.
    Smtp,
    /// The LMTP listener.
    Lmtp,
    /// `postdesk ingest`.
    Ingest,
    /// An IMAP poller.
    Imap,
    /// The HTTP door (`web`): a form, a customer-page reply or a monitor
    /// alert, turned into a message by the web module.
    Web,
}

impl Source {
    /// The name stored with the message.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Smtp => "smtp",
            Source::Lmtp => "lmtp",
            Source::Ingest => "ingest",
            Source::Imap => "imap",
            Source::Web => "web",
        }
    }
}

/// The envelope of one message: who handed it to us and for whom.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Reverse path (`MAIL FROM`); empty for the null sender `<>`.
    pub mail_from: String,
    /// Forward paths (`RCPT TO`) that were accepted, in order.
    pub rcpt_to: Vec<String>,
    /// The channel the message arrived on.
    pub source: Source,
    /// The peer's address, for network sources.
    pub peer: Option<SocketAddr>,
    /// The name the peer gave in HELO/EHLO/LHLO.
    pub helo: String,
    /// What the web door decided about the message before it was built:
    /// only [`Source::Web`] carries it, so nothing a sender writes in a
    /// mail can ask for it (routing reads it only when `source` is `Web`).
    pub web: Option<WebIntake>,
}

impl Envelope {
    /// The web intake of a message that came in through the web door;
    /// `None` for every other source, whatever the envelope holds.
    pub fn web_intake(&self) -> Option<&WebIntake> {
        self.web.as_ref().filter(|_| self.source == Source::Web)
    }
}

/// What a web form or alert says about the ticket it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIntake {
    /// What came in.
    pub kind: WebKind,
    /// The queue of a new ticket.
    pub queue: Queue,
    /// The issue type of a new ticket.
    pub issue_type: String,
    /// The priority of a new ticket; `None`: the route's usual one.
    pub priority: Option<Priority>,
}

/// The door a web message came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebKind {
    /// The contact form or widget (`POST /api/v1/tickets`): acknowledged
    /// by mail like a support ticket, whatever its queue.
    Form,
    /// A reply from the customer page: threads by the customer reply
    /// address it is sent to, like a mail reply.
    PageReply,
    /// A monitor alert: joins the open alert ticket of its `dedupe_key`,
    /// if any; `resolved` resolves it. Never acknowledged.
    Alert {
        /// Alerts with the same key share one open ticket.
        dedupe_key: Option<String>,
        /// The alert is over: note it and resolve the ticket.
        resolved: bool,
    },
}

/// What the store made of an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The stored message's row.
    pub message: MessageRowId,
    /// The ticket it joined or opened, if it was ticketed.
    pub ticket: Option<TicketId>,
    /// The same Message-ID and content were already stored: nothing new was
    /// written, and `message` is the earlier row.
    pub duplicate: bool,
}
