//! The one way in to "accepted".
//!
//! SMTP `250`, LMTP's per-recipient `250` and `postdesk ingest`'s exit 0 all
//! go through [`Spool::accept`]. It parses and classifies the message on the
//! caller's task, hands it to the store's writer thread and returns only after the batch
//! holding the message has been committed with `synchronous=FULL`. Nothing is
//! acknowledged before that commit.

use std::future::Future;

use crate::store;

pub use crate::domain::{Accepted, Envelope, Source};

pub use crate::store::writer::SubmitError as Error;

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
        let class = crate::pipeline::classify(&envelope, &raw, &parsed);
        self.writer.submit(envelope, raw, parsed, class).await
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
        let class = crate::pipeline::classify(&envelope, &raw, &parsed);
        self.writer
            .submit_with_sync(envelope, raw, parsed, class, sync)
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
