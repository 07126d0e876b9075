//! The one way in to "accepted".
//!
//! SMTP `250`, LMTP's per-recipient `250` and `postdesk ingest`'s exit 0 all
//! go through [`Spool::accept`]. It parses the message on the caller's task,
//! hands it to the store's writer thread and returns only after the batch
//! holding the message has been committed with `synchronous=FULL`. Nothing is
//! acknowledged before that commit.

use std::future::Future;
use std::net::SocketAddr;

use crate::ids::{MessageRowId, TicketId};
use crate::store;

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

/// Why a message could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not commit; the sender should retry later.
    #[error("store unavailable")]
    Store(#[from] store::Error),
    /// The server is shutting down or the writer is gone.
    #[error("spool is shutting down")]
    ShuttingDown,
}

impl Error {
    /// Whether the sender should retry (SMTP 4xx, exit 75). Every spool error is
    /// transient today: input that is not mail is still stored raw and
    /// flagged, never refused here.
    pub fn is_transient(&self) -> bool {
        true
    }
}

/// Something that takes a message and returns once it is durably stored.
///
/// The listener is generic over this so its session loop can be unit-tested
/// without a store.
pub trait Deliver: Send + Sync + 'static {
    /// Store `raw` under `envelope`; resolve only after the commit.
    fn deliver(
        &self,
        envelope: Envelope,
        raw: Vec<u8>,
    ) -> impl Future<Output = Result<Accepted, Error>> + Send;
}

/// Handle on the durable accept path (cheap to clone).
#[derive(Clone)]
pub struct Spool {
    writer: store::Writer,
}

impl Spool {
    /// A spool committing through `writer`.
    pub fn new(writer: store::Writer) -> Self {
        Spool { writer }
    }

    /// Parse and store one message; returns after its batch commits.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the commit failed, [`Error::ShuttingDown`] when
    /// the writer has stopped. Either way nothing was acknowledged.
    pub async fn accept(&self, envelope: Envelope, raw: Vec<u8>) -> Result<Accepted, Error> {
        let parsed = crate::parse::parse(&raw);
        self.writer.submit(envelope, raw, parsed).await
    }

    /// Parse and queue one message fetched by an IMAP poller, with the UID
    /// state `sync` to commit in the same transaction. Returns once queued;
    /// the message counts as accepted (and may be marked `\Seen` or moved)
    /// only when [`store::writer::Pending::committed`] returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`Error::ShuttingDown`] when the writer has stopped.
    pub async fn accept_imap(
        &self,
        envelope: Envelope,
        raw: Vec<u8>,
        sync: store::SyncUpdate,
    ) -> Result<store::writer::Pending, Error> {
        let parsed = crate::parse::parse(&raw);
        self.writer
            .submit_with_sync(envelope, raw, parsed, sync)
            .await
    }
}

impl Deliver for Spool {
    fn deliver(
        &self,
        envelope: Envelope,
        raw: Vec<u8>,
    ) -> impl Future<Output = Result<Accepted, Error>> + Send {
        self.accept(envelope, raw)
    }
}
