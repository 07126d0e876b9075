//! The DATA half of a session: reading the message text to its final dot
//! within `max_message_size`, then handing it to [`Deliver::deliver`] and
//! answering from the result.
//!
//! The `250` (in LMTP, one per recipient) is queued only after `deliver`
//! returned `Ok`; a failure is answered `451 4.3.0`. A message over the
//! limit is read to its final dot, dropped and answered `552 5.3.4`; the
//! buffer never holds more than `max_message_size + 2` octets.

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use tracing::{error, info, warn};

use super::reply;
use super::{DataProgress, Flow, Phase, Protocol, Session, Transaction};
use crate::spool::{self, Deliver, Envelope};

/// First allocation for a message; it grows on demand up to the cap.
const INITIAL_MESSAGE_CAPACITY: usize = 64 * 1024;

impl<D: Deliver> Session<'_, D> {
    pub(super) fn data(&mut self) -> Flow {
        let Some(transaction) = &self.transaction else {
            return self.reject(reply::mail_first());
        };
        if transaction.rcpt_to.is_empty() {
            return self.reject(reply::no_valid_recipients());
        }
        let Some(transaction) = self.transaction.take() else {
            return Flow::Continue;
        };
        let mut receiver = DataReceiver::new();
        // smtp-proto only sees a dot as special right after CRLF, and its
        // receiver starts with no previous line. The CRLF that ended the
        // DATA command is that line, so a first line of "." (empty
        // message) or ".." (stuffed) is read correctly. The scratch buffer
        // takes the two octets and is dropped.
        let mut scratch = Vec::with_capacity(2);
        receiver.ingest(&mut b"\r\n".iter(), &mut scratch);
        let max = self.ctx.settings.limits().max_message_size;
        self.phase = Phase::Data {
            receiver,
            message: Vec::with_capacity(max.saturating_add(2).min(INITIAL_MESSAGE_CAPACITY)),
            transaction,
        };
        self.reply(reply::start_data())
    }

    /// Feed DATA input; at the final dot, deliver (or refuse) the message.
    pub(super) async fn read_data(&mut self, bytes: &mut &[u8]) -> Flow {
        let max = self.ctx.settings.limits().max_message_size;
        let Phase::Data {
            mut receiver,
            mut message,
            transaction,
        } = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return Flow::Continue;
        };
        match feed_data(&mut receiver, &mut message, bytes, max) {
            DataProgress::NeedMore => {
                self.phase = Phase::Data {
                    receiver,
                    message,
                    transaction,
                };
                Flow::Continue
            }
            DataProgress::Overflow => {
                // Keep reading to the final dot so the rest of the message
                // is not taken for commands; the transaction is over.
                self.phase = Phase::DataTooLarge(DummyDataReceiver::new_data(&receiver));
                Flow::Continue
            }
            DataProgress::Complete if message.len() > max => {
                info!(limit = max, "message too large, discarded");
                self.reply(reply::too_large())
            }
            DataProgress::Complete => self.deliver(transaction, message).await,
        }
    }

    /// Hand a complete message to `deliver` and answer from its result.
    async fn deliver(&mut self, transaction: Transaction, message: Vec<u8>) -> Flow {
        let replies = transaction.rcpt_to.len();
        let mut rcpt_to: Vec<String> = Vec::with_capacity(replies);
        for address in transaction.rcpt_to {
            if !rcpt_to
                .iter()
                .any(|seen| seen.eq_ignore_ascii_case(&address))
            {
                rcpt_to.push(address);
            }
        }
        let envelope = Envelope {
            mail_from: transaction.mail_from,
            rcpt_to,
            source: self.ctx.protocol.source(),
            peer: self.ctx.peer,
            helo: self.helo.clone().unwrap_or_default(),
            web: None,
        };
        let size = message.len();
        let recipients = envelope.rcpt_to.len();
        // Not raced against shutdown or a timer: once the message is
        // handed over, the answer must reflect whether it was committed.
        let result = self.ctx.deliver.deliver(envelope, message).await;
        let per_recipient = self.ctx.protocol == Protocol::Lmtp;
        let count = if per_recipient { replies } else { 1 };
        match result {
            Ok(accepted) => {
                info!(
                    message_row = %accepted.message,
                    ticket = accepted.ticket.map(|t| t.0),
                    duplicate = accepted.duplicate,
                    size,
                    recipients,
                    "message accepted"
                );
                let reply = if per_recipient {
                    reply::delivered(&accepted)
                } else {
                    reply::queued(&accepted)
                };
                for _ in 0..count {
                    self.reply(reply.clone());
                }
            }
            Err(failure) => {
                log_delivery_failure(&failure);
                for _ in 0..count {
                    self.reply(reply::not_stored());
                }
            }
        }
        Flow::Continue
    }
}

/// The one place a failed delivery is logged (the session answers 451).
fn log_delivery_failure(failure: &spool::Error) {
    let source = failure as &dyn std::error::Error;
    match failure {
        spool::Error::ShuttingDown => {
            warn!(error = source, "message not stored, spool shutting down")
        }
        spool::Error::Store(_) => error!(error = source, "message not stored"),
    }
}

/// Feed `bytes` to the DATA receiver, keeping `message` at most `max + 2`
/// octets long, and advance `bytes` past what was used.
///
/// The receiver pushes the CR of a final `.CRLF` before it sees the LF
/// and pops it again, so a message can stand one octet over `max` for a
/// moment; only a second octet over means it is really too large.
fn feed_data(
    receiver: &mut DataReceiver,
    message: &mut Vec<u8>,
    bytes: &mut &[u8],
    max: usize,
) -> DataProgress {
    let cap = max.saturating_add(2);
    loop {
        if bytes.is_empty() {
            return DataProgress::NeedMore;
        }
        // At most `max + 1` octets are held here, so `room` is at least 1,
        // and dot-unstuffing only ever shrinks input, so feeding `room`
        // octets cannot push the message past `cap`.
        let room = cap.saturating_sub(message.len()).max(1);
        let take = room.min(bytes.len());
        reserve_capped(message, take, cap);
        let mut input = bytes[..take].iter();
        let is_done = receiver.ingest(&mut input, message);
        let used = take - input.as_slice().len();
        *bytes = &bytes[used..];
        if is_done {
            return DataProgress::Complete;
        }
        if message.len() > max.saturating_add(1) {
            return DataProgress::Overflow;
        }
    }
}

/// Grow `buf` for `additional` more octets, doubling as Vec does but never
/// past `cap`, so an over-sized message cannot allocate twice the limit.
fn reserve_capped(buf: &mut Vec<u8>, additional: usize, cap: usize) {
    let needed = buf.len().saturating_add(additional);
    if needed <= buf.capacity() {
        return;
    }
    let target = buf.capacity().saturating_mul(2).min(cap).max(needed);
    buf.reserve_exact(target - buf.len());
}

/// Drop input until `receiver` finds its end; true once it has.
pub(super) fn ingest_discarding(receiver: &mut DummyDataReceiver, bytes: &mut &[u8]) -> bool {
    let mut input = bytes.iter();
    let is_done = receiver.ingest(&mut input);
    *bytes = input.as_slice();
    is_done
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::AsyncBufReadExt;
    use tokio::sync::Semaphore;
    use tokio::time::timeout;

    use super::super::Closed;
    use super::super::harness::{Harness, MESSAGE, transaction};
    use super::*;
    use crate::domain::Source;

    #[tokio::test]
    async fn full_transaction_is_answered_250_only_after_deliver_returns() {
        let gate = Arc::new(Semaphore::new(0));
        let mut harness = Harness::smtp();
        harness.deliver.gate = Some(Arc::clone(&gate));
        let mut peer = harness.start().greeted().await;
        peer.ehlo().await;
        transaction(&mut peer, MESSAGE).await;

        // deliver has not returned: no reply may arrive.
        let mut line = String::new();
        let early = timeout(Duration::from_millis(200), peer.read.read_line(&mut line)).await;
        assert!(early.is_err(), "reply before deliver returned: {line:?}");

        gate.add_permits(1);
        let reply = peer.expect("250 2.0.0 ").await;
        assert_eq!(reply, "250 2.0.0 Ok: queued as 101\r\n");
        let delivered = peer.deliver.messages();
        assert_eq!(delivered.len(), 1);
        let (envelope, raw) = &delivered[0];
        assert_eq!(
            raw,
            MESSAGE.as_bytes(),
            "stored exactly as sent, no Received added"
        );
        assert_eq!(envelope.mail_from, "alice@customer.test");
        assert_eq!(envelope.rcpt_to, vec!["support@example.org".to_owned()]);
        assert_eq!(envelope.source, Source::Smtp);
        assert_eq!(envelope.helo, "client.test");
        assert_eq!(
            envelope.peer,
            Some(SocketAddr::from(([192, 0, 2, 1], 40000)))
        );

        peer.send("QUIT\r\n").await;
        peer.expect("221 2.0.0 ").await;
        assert!(peer.is_closed().await);
        assert_eq!(peer.finished().await.expect("clean end"), Closed::Quit);
    }

    #[tokio::test]
    async fn deliver_error_is_answered_451_and_never_250() {
        let mut harness = Harness::smtp();
        harness.deliver.fail = true;
        let mut peer = harness.start().greeted().await;
        peer.ehlo().await;
        transaction(&mut peer, MESSAGE).await;
        assert_eq!(peer.reply().await, reply::not_stored().to_string() + "\r\n");
        // The session goes on; the sender may retry later.
        peer.send("NOOP\r\n").await;
        peer.expect("250 2.0.0 ").await;
    }

    #[tokio::test]
    async fn oversize_data_is_552_and_the_session_stays_usable() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        let big = "x".repeat(78) + "\r\n";
        transaction(&mut peer, &big.repeat(100)).await;
        peer.expect("552 5.3.4 ").await;
        assert!(peer.deliver.messages().is_empty());

        peer.send("RSET\r\n").await;
        peer.expect("250 ").await;
        transaction(&mut peer, MESSAGE).await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages().len(), 1);
    }

    #[tokio::test]
    async fn message_of_exactly_the_limit_is_accepted_and_one_more_octet_is_not() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        let exact = "y".repeat(998) + "\r\n";
        transaction(&mut peer, &exact).await;
        peer.expect("250 2.0.0 ").await;
        let over = "y".repeat(999) + "\r\n";
        transaction(&mut peer, &over).await;
        peer.expect("552 5.3.4 ").await;
        assert_eq!(peer.deliver.messages()[0].1.len(), 1000);
    }

    #[tokio::test]
    async fn lmtp_answers_once_per_recipient_and_stores_once() {
        let mut peer = Harness::lmtp().start();
        peer.expect("220 mx.test LMTP").await;
        peer.send("LHLO client.test\r\n").await;
        let lhlo = peer.expect("250-mx.test").await;
        assert!(lhlo.contains("PIPELINING") && lhlo.contains("ENHANCEDSTATUSCODES"));
        peer.send("MAIL FROM:<alice@customer.test>\r\n").await;
        peer.expect("250 ").await;
        peer.send("RCPT TO:<support@example.org>\r\nRCPT TO:<sales@example.org>\r\n")
            .await;
        peer.expect("250 2.1.5 ").await;
        peer.expect("250 2.1.5 ").await;
        peer.send("DATA\r\n").await;
        peer.expect("354 ").await;
        peer.send(format!("{MESSAGE}.\r\n")).await;
        peer.expect("250 2.1.5 ").await;
        peer.expect("250 2.1.5 ").await;
        peer.send("NOOP\r\n").await;
        peer.expect("250 2.0.0 ").await;
        let delivered = peer.deliver.messages();
        assert_eq!(delivered.len(), 1, "one store per transaction");
        assert_eq!(delivered[0].0.source, Source::Lmtp);
        assert_eq!(delivered[0].0.rcpt_to.len(), 2);
    }

    #[tokio::test]
    async fn lmtp_failure_is_451_for_each_recipient() {
        let mut harness = Harness::lmtp();
        harness.deliver.fail = true;
        let mut peer = harness.start();
        peer.expect("220 ").await;
        peer.send("LHLO client.test\r\nMAIL FROM:<a@customer.test>\r\n")
            .await;
        peer.expect("250-").await;
        peer.expect("250 ").await;
        peer.send("RCPT TO:<support@example.org>\r\nRCPT TO:<sales@example.org>\r\nDATA\r\n")
            .await;
        peer.expect("250 ").await;
        peer.expect("250 ").await;
        peer.expect("354 ").await;
        peer.send(format!("{MESSAGE}.\r\n")).await;
        peer.expect("451 4.3.0 ").await;
        peer.expect("451 4.3.0 ").await;
    }

    #[tokio::test]
    async fn dot_stuffing_is_undone() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        transaction(&mut peer, "..first line\r\nmiddle\r\n..\r\n...last\r\n").await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(
            peer.deliver.messages()[0].1,
            b".first line\r\nmiddle\r\n.\r\n..last\r\n"
        );
    }

    #[tokio::test]
    async fn nul_bytes_binary_noise_and_long_lines_are_delivered_as_is() {
        let mut harness = Harness::smtp();
        harness.config.limits.max_message_size = 10_000;
        let mut peer = harness.start().greeted().await;
        peer.ehlo().await;
        let mut body: Vec<u8> = b"Subject: bin\r\n\r\n".to_vec();
        body.extend_from_slice(&[0, 1, 2, 0xff, 0xfe, b'\r', 0, b'\n', 0x80, b'.']);
        body.extend_from_slice(b"\r\n");
        body.extend(std::iter::repeat_n(b'z', 3000));
        body.extend_from_slice(b"\r\nbare\nlf\r\n");
        peer.send("MAIL FROM:<a@customer.test>\r\nRCPT TO:<support@example.org>\r\nDATA\r\n")
            .await;
        peer.expect("250 ").await;
        peer.expect("250 ").await;
        peer.expect("354 ").await;
        peer.send(&body).await;
        peer.send(".\r\n").await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages()[0].1, body);
    }

    #[tokio::test]
    async fn data_arriving_one_octet_at_a_time_is_assembled() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.send("EHLO client.test\r\nMAIL FROM:<a@customer.test>\r\nRCPT TO:<support@example.org>\r\nDATA\r\n").await;
        peer.expect("250-").await;
        peer.expect("250 ").await;
        peer.expect("250 ").await;
        peer.expect("354 ").await;
        for byte in format!("{MESSAGE}.\r\n").bytes() {
            peer.send([byte]).await;
            tokio::task::yield_now().await;
        }
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages()[0].1, MESSAGE.as_bytes());
    }

    #[tokio::test]
    async fn empty_message_ends_at_the_first_dot() {
        let mut peer = Harness::smtp().start().greeted().await;
        peer.ehlo().await;
        transaction(&mut peer, "").await;
        peer.expect("250 2.0.0 ").await;
        assert_eq!(peer.deliver.messages()[0].1, b"");
    }

    #[test]
    fn feed_data_never_holds_more_than_the_limit_plus_two() {
        let max = 100;
        let mut receiver = DataReceiver::new();
        receiver.ingest(&mut b"\r\n".iter(), &mut Vec::new());
        let mut message = Vec::new();
        let input = vec![b'a'; 10_000];
        let mut bytes = input.as_slice();
        assert_eq!(
            feed_data(&mut receiver, &mut message, &mut bytes, max),
            DataProgress::Overflow
        );
        assert!(
            message.len() <= max + 2 && message.capacity() <= max + 2,
            "{}",
            message.capacity()
        );
        assert!(
            !bytes.is_empty(),
            "the rest is left for the discarding receiver"
        );
    }

    #[test]
    fn final_dot_split_at_the_limit_is_not_an_overflow() {
        // 98 octets + CRLF = 100 = max; the CR of ".\r\n" briefly makes 101.
        let max = 100;
        let mut receiver = DataReceiver::new();
        receiver.ingest(&mut b"\r\n".iter(), &mut Vec::new());
        let mut message = Vec::new();
        let mut text = vec![b'b'; 98];
        text.extend_from_slice(b"\r\n.\r");
        let mut bytes = text.as_slice();
        assert_eq!(
            feed_data(&mut receiver, &mut message, &mut bytes, max),
            DataProgress::NeedMore
        );
        let mut bytes: &[u8] = b"\n";
        assert_eq!(
            feed_data(&mut receiver, &mut message, &mut bytes, max),
            DataProgress::Complete
        );
        assert_eq!(message.len(), max);
    }
}
