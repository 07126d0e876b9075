//! The envelope of a message: where it came in, from whom, for whom; and
//! what the store made of it.

use std::net::SocketAddr;

use super::ids::{MessageRowId, TicketId};

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
}

impl Source {
    /// The name stored with the message.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Smtp => "smtp",
            Source::Lmtp => "lmtp",
            Source::Ingest => "ingest",
            Source::Imap => "imap",
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
