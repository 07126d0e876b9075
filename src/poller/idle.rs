//! Waiting for new mail: IDLE when the server offers it (RFC 2177), else a
//! plain wait of the poll interval.
//!
//! Receives a session that has just caught up; returns it with the reason
//! it woke. New mail that lands between the last fetch and the start of
//! IDLE is not lost: the server announces it with an untagged `EXISTS`,
//! which async-imap routes to the session's unsolicited channel when it
//! arrives during another command; [`drain_exists`] looks there before and
//! right after IDLE starts, and any `EXISTS` sends the poller back to fetch.
//! IDLE is renewed after the poll interval (at most 29 minutes, as RFC 2177
//! advises), which doubles as a safety poll.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use tokio_util::sync::CancellationToken;

use super::connect::Session;
use super::{Error, timed};
use crate::config::ImapAccount;

/// Why the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server announced a change.
    NewData,
    /// The interval passed.
    Timeout,
    /// The poller is stopping.
    Cancelled,
}

/// Empty the unsolicited channel; true if it held an `EXISTS` or `RECENT`.
pub fn drain_exists(rx: &async_channel::Receiver<UnsolicitedResponse>) -> bool {
    let mut any = false;
    while let Ok(r) = rx.try_recv() {
        if matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        ) {
            any = true;
        }
    }
    any
}

/// Wait for new mail (or the interval, or cancellation).
///
/// # Errors
///
/// [`Error::Imap`] or [`Error::Timeout`] when IDLE fails; the session is
/// then gone and the caller reconnects.
pub async fn wait(
    session: Session,
    account: &ImapAccount,
    has_idle: bool,
    unsolicited: &async_channel::Receiver<UnsolicitedResponse>,
    token: &CancellationToken,
) -> Result<(Session, Wake), Error> {
    if !(has_idle && account.idle) {
        tokio::select! {
            () = token.cancelled() => return Ok((session, Wake::Cancelled)),
            () = tokio::time::sleep(account.poll_interval) => return Ok((session, Wake::Timeout)),
        }
    }
    let mut handle = session.idle();
    timed(account.timeout, "idle", async {
        handle.init().await.map_err(Error::Imap)
    })
    .await?;
    let wake = if drain_exists(unsolicited) {
        Wake::NewData
    } else {
        let renew = account.poll_interval.min(Duration::from_secs(29 * 60));
        // `_stop` interrupts the wait when dropped: it lives as long as the
        // future does.
        let (fut, _stop) = handle.wait_with_timeout(renew);
        tokio::select! {
            r = fut => match r.map_err(Error::Imap)? {
                IdleResponse::NewData(_) => Wake::NewData,
                IdleResponse::Timeout => Wake::Timeout,
                IdleResponse::ManualInterrupt => Wake::Cancelled,
            },
            () = token.cancelled() => Wake::Cancelled,
        }
    };
    let session = timed(account.timeout, "idle done", async {
        handle.done().await.map_err(Error::Imap)
    })
    .await?;
    Ok((session, wake))
}
