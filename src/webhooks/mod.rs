//! The webhook worker: claim due deliveries, POST them, mark them.
//!
//! Delivery rows are queued by the transaction of the event itself
//! (`store::Tx::record_event`), so this worker only moves rows. One tokio
//! task, tracked by the server's shutdown; each turn:
//!
//! 1. in one store transaction on its own connection (off the runtime):
//!    mark the POSTs that finished (sent; retry at a backoff time; failed,
//!    with the `webhook_failed` event and the admin alert committed with
//!    the mark), then claim as many due rows as there are free slots;
//! 2. start one POST per claimed row (a `JoinSet`, at most [`IN_FLIGHT`]);
//! 3. wait for a POST to finish, the next row to fall due (at most
//!    [`POLL`]: rows are also queued by other processes, such as the CLI),
//!    or shutdown.
//!
//! Why an event is neither lost nor sent under two ids: a row is `sending`
//! from its claim until its mark, and the mark is written only after the
//! POST returned. A process that dies in between leaves it `sending`;
//! [`crate::store::WebhookQueue::recover`] queues it again at the next
//! start, and it is POSTed with the same event id, which receivers use to
//! drop a copy. On shutdown POSTs in flight are cut (they are short and
//! idempotent by id) and recovered the same way.

pub mod post;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::webhooks::{Format, Webhooks};
use crate::domain::{TicketId, Time};
use crate::outbound::Config;
use crate::store::{self, Delivery, Settlement, Subscription, WebhookQueue};
use post::PostError;

/// Most POSTs in flight at once.
pub const IN_FLIGHT: usize = 8;

/// The longest the worker sleeps before looking for due rows.
pub const POLL: Duration = Duration::from_millis(500);

/// The subscriptions the store publishes to, from `[[webhook]]`.
pub fn subscriptions(webhooks: &Webhooks) -> Vec<Subscription> {
    webhooks
        .hooks
        .iter()
        .map(|h| Subscription {
            url: h.url.clone(),
            format: h.format.as_str().to_owned(),
            events: h.events.clone(),
            queues: h.queues.clone(),
            priorities: h.priorities.clone(),
            client_domains: h.client_domains.clone(),
        })
        .collect()
}

/// What one POST reports back.
struct Done {
    id: i64,
    event: String,
    url: String,
    attempts: u32,
    result: Result<u16, PostError>,
}

/// Run the worker until `stop` is cancelled.
pub async fn run(
    mut queue: WebhookQueue,
    config: watch::Receiver<Arc<Config>>,
    stop: CancellationToken,
) {
    match queue.recover() {
        Ok(0) => {}
        Ok(n) => tracing::warn!(rows = n, "webhook deliveries cut by a crash queued again"),
        Err(e) => crate::logging::log_error("webhook recovery failed", &e),
    }
    let tls = match post::tls_config() {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "no TLS for https webhooks; they are retried");
            None
        }
    };
    let mut sending: JoinSet<Done> = JoinSet::new();
    let mut finished: Vec<Done> = Vec::new();
    let mut store = Some(queue);
    let mut next_look = tokio::time::Instant::now();
    loop {
        let cfg = config.borrow().clone();
        let room = IN_FLIGHT.saturating_sub(sending.len());
        let look = room > 0 && tokio::time::Instant::now() >= next_look;
        if !finished.is_empty() || look {
            let Some(q) = store.take() else { return };
            let marking = std::mem::take(&mut finished);
            let limit = if look { room } else { 0 };
            let (q, marking, result) = turn(q, cfg.clone(), marking, limit).await;
            store = q;
            match result {
                Ok((claimed, due)) => {
                    for d in &marking {
                        log_result(d);
                    }
                    let full = limit > 0 && claimed.len() >= limit;
                    for d in claimed {
                        start(&mut sending, &cfg, d, tls.clone());
                    }
                    next_look = match due {
                        _ if full => tokio::time::Instant::now(),
                        Some(at) => {
                            let wait = u64::try_from(at - Time::now().millis()).unwrap_or(0);
                            tokio::time::Instant::now() + Duration::from_millis(wait).min(POLL)
                        }
                        None => tokio::time::Instant::now() + POLL,
                    };
                }
                Err(e) => {
                    // Nothing was committed: mark these again next turn.
                    crate::logging::log_error("webhook transaction failed, will retry", &e);
                    finished = marking;
                    next_look = tokio::time::Instant::now() + POLL;
                }
            }
            if !finished.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            continue;
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            Some(joined) = sending.join_next(), if !sending.is_empty() => match joined {
                Ok(d) => finished.push(d),
                Err(e) => tracing::error!(error = %e, "webhook task failed; its row is recovered at the next start"),
            },
            () = tokio::time::sleep_until(next_look) => {}
        }
    }
    // POSTs cut here stay `sending` and go again, same id, at the next
    // start; the finished ones are marked now.
    sending.abort_all();
    while let Some(joined) = sending.join_next().await {
        if let Ok(d) = joined {
            finished.push(d);
        }
    }
    if let (Some(q), false) = (store, finished.is_empty()) {
        let cfg = config.borrow().clone();
        let (_, marking, result) = turn(q, cfg, finished, 0).await;
        match result {
            Ok(_) => marking.iter().for_each(log_result),
            Err(e) => crate::logging::log_error("webhook marks at shutdown failed", &e),
        }
    }
    tracing::info!("webhook worker stopped");
}

type Claim = Result<(Vec<Delivery>, Option<i64>), store::Error>;

/// One store turn off the runtime: mark `done`, claim up to `limit`.
async fn turn(
    mut q: WebhookQueue,
    cfg: Arc<Config>,
    done: Vec<Done>,
    limit: usize,
) -> (Option<WebhookQueue>, Vec<Done>, Claim) {
    let settled: Vec<(i64, Settlement)> = done.iter().map(|d| (d.id, settle(&cfg, d))).collect();
    let failed: HashMap<i64, (String, String)> = done
        .iter()
        .map(|d| (d.id, (d.url.clone(), d.event.clone())))
        .collect();
    let joined = tokio::task::spawn_blocking(move || {
        let result = q.settle_and_claim(
            &settled,
            |tx, id, ticket, error| {
                let (url, event) = failed.get(&id).cloned().unwrap_or_default();
                failure(tx, &cfg, ticket, &url, &event, error)
            },
            limit,
            Time::now(),
        );
        (q, result)
    })
    .await;
    match joined {
        Ok((q, result)) => (Some(q), done, result),
        Err(e) => {
            // The store task panicked and took the connection with it: the
            // worker stops, and the rows it held are recovered at the next
            // start (the outbox worker does the same).
            tracing::error!(error = %e, "webhook store task failed; the worker stops");
            (None, done, Ok((Vec::new(), None)))
        }
    }
}

/// A delivery that failed for good: its event on the ticket and an alert
/// to the admins, committed with the mark (as a mail's failure is).
fn failure(
    tx: &store::Tx<'_>,
    cfg: &Config,
    ticket: Option<TicketId>,
    url: &str,
    event: &str,
    error: &str,
) -> Result<(), store::Error> {
    let now = Time::now();
    tracing::warn!(url, event, error, "webhook delivery failed permanently");
    tx.event(
        ticket,
        None,
        "webhook_failed",
        "webhook",
        &serde_json::json!({ "url": url, "event": event, "error": error }),
        now,
    )?;
    let mut vars = crate::outbound::empty_vars();
    vars.insert("alert_title", "Webhook delivery failed".into());
    vars.insert(
        "alert_text",
        format!("The {event} event could not be delivered to {url}: {error}").into(),
    );
    crate::outbound::alert(tx, cfg, ticket, &vars, now)
}

/// Sent; retry after the backoff; or failed (a final answer, or a
/// transient one after `max_attempts`).
fn settle(cfg: &Config, d: &Done) -> Settlement {
    let hooks = &cfg.webhooks;
    Settlement::of_attempt(
        d.result
            .as_ref()
            .err()
            .map(|e| (e.is_transient(), crate::logging::chain(e))),
        d.attempts,
        hooks.max_attempts,
        hooks.backoff(d.attempts),
        Time::now().millis(),
    )
}

/// Start the POST of `d`, signed with its webhook's current secret.
fn start(
    sending: &mut JoinSet<Done>,
    cfg: &Config,
    d: Delivery,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
) {
    let format = Format::parse(&d.format).unwrap_or(Format::Json);
    let body = post::body(cfg, &d, format);
    let hook = cfg.webhooks.find(&d.url, &d.format);
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        (
            "user-agent",
            format!("postdesk/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("x-postdesk-event", d.event.clone()),
        ("x-postdesk-delivery", d.event_id.clone()),
    ];
    if let Some(secret) = hook.and_then(|h| h.secret.as_ref()) {
        headers.push((
            "x-postdesk-signature",
            post::signature(secret, Time::now().secs(), &body),
        ));
    }
    // A webhook removed from rules.toml since the event: its rows fail
    // rather than go out unsigned.
    let gone = hook.is_none();
    sending.spawn(async move {
        let result = if gone {
            Err(PostError::Url("the webhook is no longer configured".into()))
        } else {
            post::post(&d.url, &headers, body, tls.as_ref()).await
        };
        Done {
            id: d.id,
            event: d.event,
            url: d.url,
            attempts: d.attempts,
            result,
        }
    });
}

/// Log one finished POST, once, where its outcome was decided, and count
/// it.
fn log_result(d: &Done) {
    let outcome = match &d.result {
        Ok(status) => {
            tracing::info!(delivery = d.id, event = %d.event, url = %d.url, status, attempt = d.attempts, "webhook delivered");
            "sent"
        }
        Err(e) => {
            tracing::warn!(delivery = d.id, event = %d.event, url = %d.url, attempt = d.attempts, error = %crate::logging::chain(e), transient = e.is_transient(), "webhook POST failed");
            e.class()
        }
    };
    metrics::counter!("postdesk_webhook_posts_total", "event" => d.event.clone(), "outcome" => outcome)
        .increment(1);
}
