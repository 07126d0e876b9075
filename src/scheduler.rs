//! Scheduler: client digests and the admin digest, on their schedules;
//! SLA warnings, breaches and auto-close ([`sla_tick`], `sla::sweep`).
//!
//! Receives the configuration, the store and a [`Clock`]; at each tick, for
//! every schedule whose latest firing is newer than the last one handled,
//! composes that digest in one transaction: the items not yet in any digest
//! are claimed for it, the digest row (unique per client and firing), its
//! notice and the new "last handled" firing commit together. So a digest is
//! never composed twice, no item is skipped or listed twice, and a firing
//! missed while postdesk was down is handled at the first tick after start
//! (several missed firings make one digest listing everything since the
//! last). A schedule seen for the first time starts from its latest past
//! firing: a new install sends nothing until the next one.
//!
//! [`due`] is the pure decision; [`compose_client`] and
//! [`compose_admin`] are what `postdesk digest run` calls too.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Client, Schedule};
use crate::domain::Time;
use crate::monitor::{Notify, deliver};
use crate::outbound::Config;
use crate::outbound::templates::Vars;
use crate::poller::SharedStore;
use crate::store::{self, DigestItem, OpenCount, TicketLine, Tx};
use crate::timers::sweep::{self, Swept};

/// The schedule key of the admin digest.
pub const ADMIN: &str = "";

/// A digest composed (or, in a dry run, rendered).
#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    /// Client short name, or empty for the admin digest.
    pub client: String,
    /// The firing it is for, Unix seconds.
    pub slot: i64,
    /// The digest row, when one was written.
    pub digest_id: Option<i64>,
    /// Items listed (client digests) or new tickets (admin digest).
    pub items: usize,
    /// Recipients.
    pub recipients: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// What to do about a schedule at `now`, given the last firing handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet.
    No,
    /// First sight of this schedule: record this firing, send nothing.
    Start(i64),
    /// This firing is due.
    Fire(i64),
}

/// The pure decision: is a firing of `schedule` due at `now`?
pub fn due(schedule: &Schedule, last: Option<i64>, now: jiff::Timestamp) -> Due {
    let Some(latest) = schedule.latest_at_or_before(now).map(|t| t.as_second()) else {
        return Due::No;
    };
    match last {
        None => Due::Start(latest),
        Some(l) if latest > l => Due::Fire(latest),
        Some(_) => Due::No,
    }
}

fn time(secs: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default()
}

/// One digest item as a template value.
fn item(fields: [(&'static str, String); 7]) -> minijinja::Value {
    let map: std::collections::BTreeMap<&'static str, minijinja::Value> = fields
        .into_iter()
        .map(|(k, v)| (k, minijinja::Value::from(v)))
        .collect();
    minijinja::Value::from(map)
}

/// Template variables of a client digest (template `digest`): `period`
/// and `items`, each item with `ticket_number`, `subject`, `priority`,
/// `status`, `sender`, `mailbox` and `received`.
pub fn client_vars(cfg: &Config, client: &Client, items: &[DigestItem], slot: i64) -> Vars {
    use minijinja::Value;
    let list: Vec<minijinja::Value> = items
        .iter()
        .map(|i| {
            let subject = crate::route::display_subject(Some(&i.subject), cfg.tickets.subject_max);
            item([
                (
                    "ticket_number",
                    cfg.tickets.format_number(
                        i.ticket_number,
                        &i.ticket_queue,
                        Time::from_secs(i.ticket_opened_at),
                    ),
                ),
                ("subject", subject),
                ("priority", i.priority.clone()),
                ("status", i.status.clone()),
                (
                    "sender",
                    if i.sender.is_empty() {
                        "(no sender)".to_owned()
                    } else {
                        i.sender.clone()
                    },
                ),
                ("mailbox", i.mailbox.clone()),
                ("received", time(i.created_at, &client.time_zone)),
            ])
        })
        .collect();
    let mut v = crate::outbound::empty_vars();
    v.insert(
        "period",
        Value::from(format!(
            "for {} ({}): {} new",
            client.customer,
            time(slot, &client.time_zone),
            items.len()
        )),
    );
    v.insert("items", Value::from(list));
    v.insert("customer_name", Value::from(client.customer.as_str()));
    v
}

/// Template variables of the admin digest: `period` names the open
/// tickets by queue and priority, `items` are the tickets new since
/// `since`.
pub fn admin_vars(cfg: &Config, counts: &[OpenCount], new: &[TicketLine], since: i64) -> Vars {
    use minijinja::Value;
    let open: i64 = counts.iter().map(|c| c.count).sum();
    let mut by_queue = String::new();
    let mut queue = "";
    for c in counts {
        if c.queue != queue {
            if !by_queue.is_empty() {
                by_queue.push_str("; ");
            }
            let _ = write!(by_queue, "{}:", c.queue);
            queue = &c.queue;
        }
        let _ = write!(by_queue, " {} {}", c.priority, c.count);
    }
    let list: Vec<minijinja::Value> = new
        .iter()
        .map(|t| {
            item([
                (
                    "ticket_number",
                    cfg.tickets
                        .format_number(t.number, &t.queue, Time::from_secs(t.created_at)),
                ),
                ("subject", t.subject.clone()),
                ("priority", t.priority.clone()),
                ("status", t.status.clone()),
                ("sender", t.requester.clone()),
                ("mailbox", t.queue.clone()),
                ("received", String::new()),
            ])
        })
        .collect();
    let mut v = crate::outbound::empty_vars();
    v.insert(
        "period",
        Value::from(format!(
            "for the admin team: {open} open ({}), {} new since {}",
            if by_queue.is_empty() {
                "none".to_owned()
            } else {
                by_queue
            },
            new.len(),
            time(since, &cfg.monitoring.time_zone)
        )),
    );
    v.insert("items", Value::from(list));
    v
}

/// Render `vars` with the `digest` template; `None` (logged) when the
/// template fails.
fn render(cfg: &Config, vars: &Vars) -> Option<(String, String)> {
    match cfg.outbound.templates.render("digest", vars) {
        Ok(r) => Some((r.subject, r.body)),
        Err(e) => {
            crate::logging::log_error("digest template failed, digest not composed", &e);
            None
        }
    }
}

/// Compose `client`'s digest for firing `slot` inside `tx`: claim its
/// pending items, write the digest, its notice and its outbox mail, record
/// the firing as handled. `None` when there is nothing to send (and empty
/// digests are off), no one to send to, the template fails (the items
/// then wait for the next firing), or this firing already has a digest.
///
/// # Errors
///
/// [`store::Error`].
pub fn compose_client(
    tx: &mut Tx<'_>,
    cfg: &Config,
    client: &Client,
    slot: i64,
    now: Time,
) -> Result<Option<Digest>, store::Error> {
    let items = tx.pending_digest_items(&client.name)?;
    tx.set_digest_slot(&client.name, slot)?;
    let recipients = client.digest.recipients.clone();
    if (items.is_empty() && !client.digest.send_empty) || recipients.is_empty() {
        if !items.is_empty() {
            tracing::warn!(client = %client.name, "digest has items but no recipients");
        }
        return Ok(None);
    }
    let vars = client_vars(cfg, client, &items, slot);
    if render(cfg, &vars).is_none() {
        return Ok(None);
    }
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let Some(id) = tx.create_digest(&client.name, slot, &ids, now)? else {
        return Ok(None);
    };
    let notify = Notify {
        kind: "digest",
        template: "digest",
        client: &client.name,
        ticket: None,
        digest: Some(id),
        recipients: &recipients,
        vars,
    };
    let Some((subject, body)) = deliver(tx, cfg, &notify, now)? else {
        return Ok(None);
    };
    Ok(Some(Digest {
        client: client.name.clone(),
        slot,
        digest_id: Some(id),
        items: items.len(),
        recipients,
        subject,
        body,
    }))
}

/// Compose the admin digest for firing `slot` (new tickets since
/// `since`); as [`compose_client`].
///
/// # Errors
///
/// [`store::Error`].
pub fn compose_admin(
    tx: &mut Tx<'_>,
    cfg: &Config,
    slot: i64,
    since: i64,
    now: Time,
) -> Result<Option<Digest>, store::Error> {
    let counts = tx.open_ticket_counts()?;
    let new = tx.tickets_created_since(since)?;
    tx.set_digest_slot(ADMIN, slot)?;
    let settings = &cfg.monitoring.admin_digest;
    if (counts.is_empty() && new.is_empty() && !settings.send_empty)
        || settings.recipients.is_empty()
    {
        return Ok(None);
    }
    let vars = admin_vars(cfg, &counts, &new, since);
    if render(cfg, &vars).is_none() {
        return Ok(None);
    }
    let Some(id) = tx.create_digest(ADMIN, slot, &[], now)? else {
        return Ok(None);
    };
    let notify = Notify {
        kind: "admin_digest",
        template: "digest",
        client: ADMIN,
        ticket: None,
        digest: Some(id),
        recipients: &settings.recipients,
        vars,
    };
    let Some((subject, body)) = deliver(tx, cfg, &notify, now)? else {
        return Ok(None);
    };
    Ok(Some(Digest {
        client: String::new(),
        slot,
        digest_id: Some(id),
        items: new.len(),
        recipients: settings.recipients.clone(),
        subject,
        body,
    }))
}

/// One tick: handle every due firing. Returns the digests composed.
///
/// # Errors
///
/// [`store::Error`] from the first schedule that failed (the others of
/// this tick are still tried next tick).
pub fn tick(
    store: &mut impl store::Writes,
    config: &Arc<Config>,
    now: jiff::Timestamp,
) -> Result<Vec<Digest>, store::Error> {
    let secs = now.as_second();
    let mut out = Vec::new();
    for (i, c) in config.clients.iter().enumerate() {
        if !c.digest.enabled {
            continue;
        }
        let cfg = config.clone();
        let d = store.write(move |tx| {
            let client = &cfg.clients[i];
            match due(&client.digest.schedule, tx.digest_slot(&client.name)?, now) {
                Due::No => Ok(None),
                Due::Start(slot) => tx.set_digest_slot(&client.name, slot).map(|()| None),
                Due::Fire(slot) => compose_client(tx, &cfg, client, slot, Time::from_secs(secs)),
            }
        })?;
        out.extend(d);
    }
    if config.monitoring.admin_digest.enabled {
        let cfg = config.clone();
        let d = store.write(move |tx| {
            let last = tx.digest_slot(ADMIN)?;
            match due(&cfg.monitoring.admin_digest.schedule, last, now) {
                Due::No => Ok(None),
                Due::Start(slot) => tx.set_digest_slot(ADMIN, slot).map(|()| None),
                Due::Fire(slot) => {
                    let since = last.unwrap_or(slot - 86_400);
                    compose_admin(tx, &cfg, slot, since, Time::from_secs(secs))
                }
            }
        })?;
        out.extend(d);
    }
    Ok(out)
}

/// The SLA pass of one tick: warnings and breaches that came due, then
/// auto-close, each in batches of [`sweep::BATCH`] tickets per transaction.
///
/// # Errors
///
/// [`store::Error`] of the first batch that failed.
pub fn sla_tick(
    store: &mut impl store::Writes,
    config: &Arc<Config>,
    now: Time,
) -> Result<Swept, store::Error> {
    let mut total = Swept::default();
    loop {
        let cfg = config.clone();
        let (s, more) = store.write(move |tx| {
            let a = sweep::alerts(tx, &cfg, now)?;
            for (ticket, kind) in &a.fired {
                let trigger = match kind {
                    crate::sla::Kind::Warning => crate::automation::Trigger::SlaWarning,
                    crate::sla::Kind::Breached => crate::automation::Trigger::SlaBreached,
                };
                crate::triggers::fire(tx, &cfg, *ticket, &[trigger], None, now)?;
            }
            Ok((a.swept, a.more))
        })?;
        total.checked += s.checked;
        total.warnings += s.warnings;
        total.breaches += s.breaches;
        if !more {
            break;
        }
    }
    loop {
        let cfg = config.clone();
        let (closed, more) = store.write(move |tx| sweep::auto_close(tx, &cfg, now))?;
        total.closed += closed;
        if !more {
            break;
        }
    }
    // Idle automation rules: each ticket once per stay in a status.
    loop {
        let cfg = config.clone();
        let more = store.write(move |tx| crate::triggers::idle(tx, &cfg, now, sweep::BATCH))?;
        if !more {
            break;
        }
    }
    Ok(total)
}

/// Run the scheduler until `token` is cancelled.
pub async fn run(
    config: watch::Receiver<Arc<Config>>,
    store: SharedStore,
    clock: Arc<dyn Clock>,
    mut duties: crate::nodes::Duties,
    token: CancellationToken,
) {
    let every = if clock.is_controlled() {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(20)
    };
    loop {
        // Several nodes: only the one holding the duty runs the passes.
        if !duties.holds(crate::nodes::SCHEDULER) {
            tokio::select! {
                () = token.cancelled() => return,
                () = duties.changed() => {}
            }
            continue;
        }
        let cfg = config.borrow().clone();
        let now = clock.now();
        let composed = match store.writing(move |w| tick(w, &cfg, now)).await {
            Ok(digests) => {
                for d in &digests {
                    tracing::info!(client = %d.client, items = d.items, slot = d.slot, "digest composed");
                }
                digests.len()
            }
            Err(e) => {
                crate::logging::log_error("digest tick failed", &e);
                0
            }
        };
        let cfg = config.borrow().clone();
        let at = Time::from_timestamp(now);
        let swept = match store.writing(move |w| sla_tick(w, &cfg, at)).await {
            Ok(s) => {
                if s.warnings + s.breaches + s.closed > 0 {
                    tracing::info!(
                        warnings = s.warnings,
                        breaches = s.breaches,
                        closed = s.closed,
                        "sla pass"
                    );
                }
                s
            }
            Err(e) => {
                crate::logging::log_error("sla tick failed", &e);
                Swept::default()
            }
        };
        // The pass has committed: an observable tick (target
        // `postdesk::tick`, off at the default level) that tests wait on
        // before asserting that nothing more was sent.
        tracing::debug!(
            target: "postdesk::tick",
            composed,
            sla_checked = swept.checked,
            "scheduler pass done"
        );
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// `postdesk digest run`: compose (or with `dry_run` only render) the
/// digests of `only` (a client name, or `admin`) or of everyone, now.
///
/// # Errors
///
/// [`store::Error`].
pub fn run_now(
    store: &mut store::Store,
    cfg: &Config,
    only: Option<&str>,
    now: jiff::Timestamp,
    dry_run: bool,
) -> Result<Vec<Digest>, store::Error> {
    let secs = now.as_second();
    let mut out = Vec::new();
    let mut run = |f: &mut dyn FnMut(&mut Tx<'_>) -> Result<Option<Digest>, store::Error>| {
        if dry_run {
            store.dry_run(|tx| f(tx))
        } else {
            store.write(|tx| f(tx))
        }
    };
    for client in cfg
        .clients
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.name))
    {
        let d = run(&mut |tx| {
            if dry_run {
                // Render even an empty digest, so the admin sees its form.
                let items = tx.pending_digest_items(&client.name)?;
                let Some((subject, body)) = render(cfg, &client_vars(cfg, client, &items, secs))
                else {
                    return Ok(None);
                };
                return Ok(Some(Digest {
                    client: client.name.clone(),
                    slot: secs,
                    digest_id: None,
                    items: items.len(),
                    recipients: client.digest.recipients.clone(),
                    subject,
                    body,
                }));
            }
            compose_client(tx, cfg, client, secs, Time::from_secs(secs))
        })?;
        out.extend(d);
    }
    if only.is_none_or(|o| o == "admin") {
        let d = run(&mut |tx| {
            let since = tx.digest_slot(ADMIN)?.unwrap_or(secs - 86_400);
            if dry_run {
                let vars = admin_vars(
                    cfg,
                    &tx.open_ticket_counts()?,
                    &tx.tickets_created_since(since)?,
                    since,
                );
                let Some((subject, body)) = render(cfg, &vars) else {
                    return Ok(None);
                };
                return Ok(Some(Digest {
                    client: String::new(),
                    slot: secs,
                    digest_id: None,
                    items: 0,
                    recipients: cfg.monitoring.admin_digest.recipients.clone(),
                    subject,
                    body,
                }));
            }
            compose_admin(tx, cfg, secs, since, Time::from_secs(secs))
        })?;
        out.extend(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn a_schedule_starts_quietly_then_fires_once_per_firing() {
        let s = Schedule::parse("08:00", jiff::tz::TimeZone::UTC).expect("schedule");
        let start = due(&s, None, at("2026-03-02T07:00:00Z"));
        let Due::Start(slot) = start else {
            panic!("{start:?}")
        };
        assert_eq!(slot, at("2026-03-01T08:00:00Z").as_second());
        assert_eq!(due(&s, Some(slot), at("2026-03-02T07:59:59Z")), Due::No);
        let fire = at("2026-03-02T08:00:00Z").as_second();
        assert_eq!(
            due(&s, Some(slot), at("2026-03-02T08:00:30Z")),
            Due::Fire(fire)
        );
        assert_eq!(due(&s, Some(fire), at("2026-03-02T09:00:00Z")), Due::No);
    }

    #[test]
    fn firings_missed_while_down_make_one_digest() {
        let s = Schedule::parse("08:00", jiff::tz::TimeZone::UTC).expect("schedule");
        let last = at("2026-03-01T08:00:00Z").as_second();
        // Down for three days: one firing is due, the latest.
        assert_eq!(
            due(&s, Some(last), at("2026-03-04T12:00:00Z")),
            Due::Fire(at("2026-03-04T08:00:00Z").as_second())
        );
    }
}
