//! One IMAP session of one mailbox: log in, reconcile the stored UID state
//! with the server's, fetch new mail by UID in batches, and wait for more.
//!
//! UID bookkeeping, the part that makes "neither lost nor duplicated" true:
//!
//! - The stored state is `(uid_validity, last_uid)`: every message up to
//!   `last_uid` is in the store. It moves only inside the writer's
//!   transaction that stores a message, and only along a chain: message
//!   `uids[i]` moves it from `uids[i-1]` to `uids[i]` (see
//!   `Tx::advance_sync`). A crash before a commit loses the message and its
//!   state move together (fetched again); after it keeps both (not fetched
//!   again). If one message of a batch is not stored, the chain stops there
//!   and the next fetch starts at it; the ones after it come again and are
//!   recognised as duplicates by Message-ID and content hash.
//! - After each batch the state is read back from the store, so the session
//!   never runs ahead of what is committed.
//! - `\Seen`/move/delete happen only after the batch committed. A crash
//!   between the commit and the flag leaves those messages unflagged on the
//!   server but never fetches them again; every session start finishes the
//!   job for the stored messages, those between `start_uid` (where the sync
//!   began: older mail was never fetched and is never touched) and
//!   `last_uid`.
//! - A changed UIDVALIDITY makes the stored UIDs meaningless: the state is
//!   reset to 0 and everything is fetched again; what was stored before is
//!   recognised as a duplicate. A changed server, user or folder starts
//!   over as a first sync.

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::connect::{self, Session};
use super::health::Health;
use super::idle::{self, Wake};
use super::{Context, Error, timed};
use crate::config::{AfterIngest, FirstSync, ImapAccount};
use crate::domain::{Envelope, Source, Time};
use crate::store::{SyncState, SyncUpdate};

/// Messages fetched per `UID FETCH`: the unit that commits before the next
/// one is fetched, and after which a stopping poller stops.
pub const BATCH: usize = 256;

/// Run one session until `token` is cancelled (`Ok`) or something fails.
///
/// # Errors
///
/// Whatever stopped the session; the caller backs off and reconnects.
pub async fn session(
    ctx: &Context,
    mailbox: &str,
    account: &ImapAccount,
    token: &CancellationToken,
    health: &mut Health,
) -> Result<(), Error> {
    let (mut session, has_idle) = tokio::select! {
        r = connect::login(account) => r?,
        () = token.cancelled() => return Ok(()),
    };
    let selected = timed(account.timeout, "select", async {
        session.select(&account.folder).await.map_err(Error::Imap)
    })
    .await?;
    let mut validity = selected
        .uid_validity
        .ok_or_else(|| Error::Protocol("SELECT returned no UIDVALIDITY".into()))?;
    let (start, mut last) = start_state(
        ctx,
        &mut session,
        mailbox,
        account,
        validity,
        selected.uid_next,
    )
    .await?;
    health.succeeded(ctx).await;
    tracing::info!(
        validity,
        last_uid = last,
        idle = has_idle && account.idle,
        "mailbox selected"
    );
    finish_leftovers(&mut session, account, start, last).await?;

    let unsolicited = session.unsolicited_responses.clone();
    loop {
        last = fetch_new(ctx, &mut session, mailbox, account, validity, last, token).await?;
        // Everything up to `last` is committed: an observable tick (target
        // `postdesk::tick`, off at the default level) that tests wait on
        // before asserting that nothing more was stored.
        tracing::debug!(target: "postdesk::tick", validity, last_uid = last, "mailbox caught up");
        if token.is_cancelled() {
            logout(session, account).await;
            return Ok(());
        }
        // New mail announced while fetching: fetch again before waiting.
        if idle::drain_exists(&unsolicited) {
            continue;
        }
        let (s, wake) = idle::wait(session, account, has_idle, &unsolicited, token).await?;
        session = s;
        match wake {
            Wake::Cancelled => {
                logout(session, account).await;
                return Ok(());
            }
            // Every interval, select the folder again: a folder deleted and
            // recreated under the same name (new UIDVALIDITY) raises no
            // event on the old one.
            Wake::Timeout => {
                let again = timed(account.timeout, "select", async {
                    session.select(&account.folder).await.map_err(Error::Imap)
                })
                .await?;
                if let Some(v) = again.uid_validity
                    && v != validity
                {
                    validity = v;
                    (_, last) =
                        start_state(ctx, &mut session, mailbox, account, v, again.uid_next).await?;
                }
            }
            Wake::NewData => {}
        }
    }
}

async fn logout(mut session: Session, account: &ImapAccount) {
    let _ = timed(account.timeout, "logout", async {
        session.logout().await.map_err(Error::Imap)
    })
    .await;
}

async fn uid_search(
    session: &mut Session,
    account: &ImapAccount,
    query: String,
) -> Result<Vec<u32>, Error> {
    let found = timed(account.timeout, "uid search", async {
        session.uid_search(&query).await.map_err(Error::Imap)
    })
    .await?;
    let mut uids: Vec<u32> = found.into_iter().collect();
    uids.sort_unstable();
    Ok(uids)
}

/// Reconcile the stored state with the selected folder; returns where the
/// sync started and the UID to fetch after.
async fn start_state(
    ctx: &Context,
    session: &mut Session,
    mailbox: &str,
    account: &ImapAccount,
    validity: u32,
    uid_next: Option<u32>,
) -> Result<(u32, u32), Error> {
    let source = account.source();
    let mb = mailbox.to_owned();
    let stored = ctx.store.with(move |s| s.sync_state(&mb)).await?;
    let base = match stored {
        Some(s) if s.source == source && s.uid_validity == validity => {
            return Ok((s.start_uid.min(s.last_uid), s.last_uid));
        }
        Some(s) if s.source == source => {
            tracing::warn!(
                old = s.uid_validity,
                new = validity,
                "uidvalidity changed, fetching the folder again (stored messages are recognised as duplicates)"
            );
            0
        }
        _ => {
            let newest = match uid_next {
                Some(n) => n.saturating_sub(1),
                None => uid_search(session, account, "ALL".into())
                    .await?
                    .last()
                    .copied()
                    .unwrap_or(0),
            };
            let base = match account.first_sync {
                FirstSync::All => 0,
                FirstSync::New => newest,
                FirstSync::Unseen => uid_search(session, account, "UNSEEN".into())
                    .await?
                    .first()
                    .map_or(newest, |u| u.saturating_sub(1)),
            };
            tracing::info!(first_sync = ?account.first_sync, start_after = base, "first sync of this folder");
            base
        }
    };
    let mb = mailbox.to_owned();
    let state = SyncState {
        uid_validity: validity,
        last_uid: base,
        start_uid: base,
        source,
    };
    let now = Time::now();
    ctx.store
        .write(move |tx| tx.set_sync_state(&mb, &state, now))
        .await?;
    Ok((base, base))
}

/// Messages above `start` and at or below `last` are committed; a crash
/// (or a lost connection) between that commit and the after-ingest step
/// leaves them unmarked. Finish it at every session start: in move and
/// delete modes, those still in the folder; in seen mode, those still
/// without `\Seen`. (In seen mode this also marks again a stored message
/// someone set back to unread: the folder belongs to the poller.) Mail at
/// or below `start` was never fetched and is left alone.
async fn finish_leftovers(
    session: &mut Session,
    account: &ImapAccount,
    start: u32,
    last: u32,
) -> Result<(), Error> {
    if last <= start {
        return Ok(());
    }
    let first = start + 1;
    let query = match account.after_ingest {
        AfterIngest::Seen => format!("UID {first}:{last} UNSEEN"),
        _ => format!("UID {first}:{last}"),
    };
    if let AfterIngest::Move(folder) = &account.after_ingest {
        // Creating an existing folder fails harmlessly.
        let _ = timed(account.timeout, "create", async {
            session.create(folder).await.map_err(Error::Imap)
        })
        .await;
    }
    let left = uid_search(session, account, query).await?;
    // `a:b` is unordered in IMAP and a UID past the newest matches the
    // newest message: keep only what the range means.
    let left: Vec<u32> = left
        .into_iter()
        .filter(|u| (first..=last).contains(u))
        .collect();
    if !left.is_empty() {
        tracing::info!(
            count = left.len(),
            "finishing after-ingest of messages committed earlier"
        );
        after_ingest(session, account, &left).await?;
    }
    Ok(())
}

/// `a:b,c,...` for sorted `uids`.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Mark, move or delete committed messages.
async fn after_ingest(
    session: &mut Session,
    account: &ImapAccount,
    uids: &[u32],
) -> Result<(), Error> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    let t = account.timeout;
    match &account.after_ingest {
        AfterIngest::Seen => {
            timed(t, "uid store", async {
                let stream = session
                    .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                    .await
                    .map_err(Error::Imap)?;
                let _: Vec<_> = stream.collect().await;
                Ok(())
            })
            .await
        }
        AfterIngest::Move(folder) => {
            timed(t, "uid move", async {
                session.uid_mv(&set, folder).await.map_err(Error::Imap)
            })
            .await
        }
        AfterIngest::Delete => {
            timed(t, "uid store", async {
                let stream = session
                    .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                    .await
                    .map_err(Error::Imap)?;
                let _: Vec<_> = stream.collect().await;
                Ok(())
            })
            .await?;
            timed(t, "uid expunge", async {
                let stream = session.uid_expunge(&set).await.map_err(Error::Imap)?;
                let _: Vec<_> = stream.collect().await;
                Ok(())
            })
            .await
        }
    }
}

/// Fetch every message after `last`, batch by batch; returns the new
/// stored `last_uid`.
async fn fetch_new(
    ctx: &Context,
    session: &mut Session,
    mailbox: &str,
    account: &ImapAccount,
    validity: u32,
    mut last: u32,
    token: &CancellationToken,
) -> Result<u32, Error> {
    let uids: Vec<u32> = uid_search(
        session,
        account,
        format!("UID {}:*", last.saturating_add(1)),
    )
    .await?
    .into_iter()
    // `n:*` names the newest message even when its UID is below n.
    .filter(|u| *u > last)
    .collect();
    if uids.is_empty() {
        return Ok(last);
    }
    tracing::info!(count = uids.len(), after = last, "fetching new mail");
    for batch in uids.chunks(BATCH) {
        let mut pending = Vec::with_capacity(batch.len());
        {
            let mut stream = timed(account.timeout, "uid fetch", async {
                session
                    .uid_fetch(uid_set(batch), "(UID BODY.PEEK[])")
                    .await
                    .map_err(Error::Imap)
            })
            .await?;
            loop {
                let item = match tokio::time::timeout(account.timeout, stream.next()).await {
                    Err(_) => return Err(Error::Timeout("uid fetch")),
                    Ok(None) => break,
                    Ok(Some(item)) => item.map_err(Error::Imap)?,
                };
                let (Some(uid), Some(body)) = (item.uid, item.body()) else {
                    continue;
                };
                // The chain link: this message moves the state from the UID
                // before it in the search result (see the module docs).
                let Some(i) = batch.iter().position(|u| *u == uid) else {
                    continue;
                };
                let prev = if i == 0 { last } else { batch[i - 1] };
                let raw = body.to_vec();
                let envelope = envelope(mailbox, &raw);
                let sync = SyncUpdate {
                    mailbox: mailbox.to_owned(),
                    uid_validity: validity,
                    prev_uid: prev,
                    uid,
                    now: Time::now(),
                };
                pending.push((uid, ctx.spool.accept_imap(envelope, raw, sync).await?));
            }
        }
        let mut committed = Vec::with_capacity(pending.len());
        for (uid, p) in pending {
            let accepted = p.committed().await?;
            if accepted.duplicate {
                tracing::debug!(uid, "already stored");
            }
            committed.push(uid);
        }
        after_ingest(session, account, &committed).await?;
        // What the store holds is the truth: a message the server listed but
        // did not send leaves the state before it.
        let mb = mailbox.to_owned();
        let stored = ctx.store.with(move |s| s.sync_state(&mb)).await?;
        let now_last = stored.map_or(last, |s| s.last_uid);
        if batch.last().is_some_and(|u| *u > now_last) {
            tracing::warn!(stored = now_last, fetched = ?batch.last(), "a listed message was not stored; it will be fetched again");
            return Ok(now_last);
        }
        last = now_last;
        tracing::debug!(last_uid = last, size = batch.len(), "batch committed");
        if token.is_cancelled() {
            break;
        }
    }
    Ok(last)
}

/// The envelope of a fetched message: for the mailbox it sits in, from its
/// `Return-Path` (or, when the server added none, its `From`).
pub fn envelope(mailbox: &str, raw: &[u8]) -> Envelope {
    let mail_from = header_address(raw, "return-path")
        .or_else(|| header_address(raw, "from"))
        .unwrap_or_default();
    Envelope {
        mail_from,
        rcpt_to: vec![mailbox.to_owned()],
        source: Source::Imap,
        peer: None,
        helo: String::new(),
        web: None,
    }
}

/// The address in the first `name:` header of `raw` (`<a@b>` or a bare
/// token with `@`); `Some("")` for `<>`.
fn header_address(raw: &[u8], name: &str) -> Option<String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line);
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.to_owned());
        }
    }
    let v = value?;
    if let (Some(a), Some(b)) = (v.rfind('<'), v.rfind('>'))
        && a < b
    {
        return Some(v[a + 1..b].trim().to_owned());
    }
    v.split_whitespace()
        .find(|t| t.contains('@'))
        .map(|t| t.trim_matches(|c| c == '"' || c == ',').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
    }

    #[test]
    fn envelope_sender_comes_from_return_path_then_from() {
        let raw = b"Return-Path: <bounce@x.test>\r\nFrom: Ann <ann@x.test>\r\n\r\nhi";
        assert_eq!(envelope("a@b.test", raw).mail_from, "bounce@x.test");
        let raw = b"From: Ann\r\n <ann@x.test>\r\nSubject: s\r\n\r\nhi";
        assert_eq!(envelope("a@b.test", raw).mail_from, "ann@x.test");
        let raw = b"Return-Path: <>\r\nFrom: ann@x.test\r\n\r\nhi";
        assert_eq!(envelope("a@b.test", raw).mail_from, "");
        assert_eq!(envelope("a@b.test", raw).rcpt_to, ["a@b.test"]);
    }
}
