//! Broken mailboxes: consecutive failures become one ticket and one alert,
//! and a working session afterwards becomes one recovery note.
//!
//! The failure count lives in memory (a restart gives a mailbox a fresh
//! start); whether the mailbox is broken, and its ticket, live in the store
//! (`mailbox_health`), written in the same transaction as the ticket, the
//! event and the notice. So a restart while broken opens no second ticket,
//! and a recovery after a restart is still noted on the ticket.

use super::{Context, Error};
use crate::domain::{TicketId, Time};
use crate::monitor::{Notify, alert_vars, deliver};
use crate::outbound::Config;
use crate::store::{self, MailboxHealth, NewEvent, NewTicket, Tx};

/// One mailbox's failure count.
pub struct Health {
    mailbox: String,
    client: String,
    threshold: u32,
    failures: u32,
}

impl Health {
    /// A mailbox that has not failed yet.
    pub fn new(mailbox: &str, client: &str, threshold: u32) -> Self {
        Health {
            mailbox: mailbox.to_owned(),
            client: client.to_owned(),
            threshold: threshold.max(1),
            failures: 0,
        }
    }

    /// Count a failure; at the threshold, report the mailbox broken (once).
    /// Returns the consecutive failures so far.
    pub async fn failed(&mut self, ctx: &Context, error: &Error) -> u32 {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.threshold {
            let cfg = ctx.config.borrow().clone();
            let mailbox = self.mailbox.clone();
            let client = self.client.clone();
            let reason = reason(error);
            let now = Time::now();
            let result = ctx
                .store
                .write(move |tx| mark_broken(tx, &cfg, &mailbox, &client, &reason, now))
                .await;
            match result {
                Ok(Some(ticket)) => {
                    tracing::error!(
                    mailbox = %self.mailbox,
                    ticket = ticket.0,
                    failures = self.failures,
                    "mailbox broken, ticket opened"
                    );
                }
                Ok(None) => {}
                Err(e) => crate::logging::log_error("recording a broken mailbox failed", &e),
            }
        }
        self.failures
    }

    /// A session got as far as selecting the folder: reset the count and,
    /// if the mailbox was broken, note its recovery.
    pub async fn succeeded(&mut self, ctx: &Context) {
        self.failures = 0;
        let cfg = ctx.config.borrow().clone();
        let mailbox = self.mailbox.clone();
        let now = Time::now();
        let result = ctx
            .store
            .write(move |tx| mark_recovered(tx, &cfg, &mailbox, now))
            .await;
        match result {
            Ok(true) => {
                tracing::info!(mailbox = %self.mailbox, "mailbox recovered");
            }
            Ok(false) => {}
            Err(e) => crate::logging::log_error("recording a mailbox recovery failed", &e),
        }
    }
}

/// What the ticket says went wrong: the error chain, one line, never a
/// password (none is ever put in an error).
pub fn reason(error: &Error) -> String {
    let text = crate::logging::chain(error);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}

/// Store an internal note on `ticket`.
fn add_note(tx: &Tx<'_>, ticket: TicketId, text: &str, now: Time) -> Result<(), store::Error> {
    tx.add_note(ticket, text, "poller", now).map(|_| ())
}

/// Mark `mailbox` broken: open its ticket (or note on the still-open one
/// of an earlier break), record the event and the admins' alert. `None`
/// when it was already broken.
///
/// # Errors
///
/// [`store::Error`]; nothing is written then.
pub fn mark_broken(
    tx: &mut Tx<'_>,
    cfg: &Config,
    mailbox: &str,
    client: &str,
    reason: &str,
    now: Time,
) -> Result<Option<TicketId>, store::Error> {
    let before = tx.mailbox_health(mailbox)?;
    if before.as_ref().is_some_and(|h| h.broken) {
        return Ok(None);
    }
    let subject = crate::route::display_subject(
        Some(&format!("Mailbox {mailbox} unreachable: {reason}")),
        cfg.tickets.subject_max,
    );
    let broken = Broken {
        mailbox,
        client,
        reason,
        subject: &subject,
        now,
    };
    let earlier = before.as_ref().and_then(|h| h.ticket);
    let ticket = broken_ticket(tx, cfg, &broken, earlier)?;
    tx.record_event(&NewEvent {
        ticket: Some(ticket),
        message: None,
        kind: "mailbox_broken",
        cause: "poller",
        detail: &serde_json::json!({ "mailbox": mailbox, "reason": reason }).to_string(),
        now,
    })?;
    alert_broken(tx, cfg, &broken, ticket)?;
    tx.set_mailbox_health(
        mailbox,
        &MailboxHealth {
            broken: true,
            ticket: Some(ticket),
            reason: reason.to_owned(),
            since: now.secs(),
        },
        now,
    )?;
    Ok(Some(ticket))
}

/// A break being recorded: which mailbox, why, and the ticket's subject.
struct Broken<'a> {
    mailbox: &'a str,
    client: &'a str,
    reason: &'a str,
    subject: &'a str,
    now: Time,
}

/// The ticket of a break: the `earlier` break's ticket while it is still
/// open (with a note that the mailbox failed again), else a new one in the
/// monitoring queue, linked to the client.
fn broken_ticket(
    tx: &mut Tx<'_>,
    cfg: &Config,
    b: &Broken<'_>,
    earlier: Option<TicketId>,
) -> Result<TicketId, store::Error> {
    let Broken {
        mailbox,
        client,
        reason,
        subject,
        now,
    } = *b;
    let reopened = match earlier {
        Some(t) => tx
            .ticket_number_status(t)?
            .filter(|(_, status)| !crate::domain::Status::name_is_closed(status))
            .map(|_| t),
        None => None,
    };
    if let Some(t) = reopened {
        add_note(
            tx,
            t,
            &format!("Mailbox {mailbox} is unreachable again: {reason}"),
            now,
        )?;
        return Ok(t);
    }
    let t = tx.open_ticket(
        &NewTicket {
            subject,
            normalized_subject: "",
            status: "Open",
            priority: "High",
            // The admins' queue for client mailboxes, where the
            // mailbox's own mail lands too.
            queue: crate::domain::Queue::Monitoring.as_str(),
            issue_type: "Bug",
            requester: None,
            requester_name: "postdesk",
            inbound_address: mailbox,
            linked_ticket: None,
            now,
        },
        cfg.tickets.number_start,
        &crate::store::Opened {
            cause: "mailbox_broken",
            detail: &serde_json::json!({ "mailbox": mailbox }).to_string(),
        },
    )?;
    add_note(
        tx,
        t,
        &format!("Mailbox {mailbox} unreachable: {reason}"),
        now,
    )?;
    if let Some((c, _)) = cfg.mailbox(mailbox) {
        tx.link_ticket_client(t, client, &c.customer, mailbox)?;
    }
    Ok(t)
}

/// `ticket`'s number as it shows it (empty when it is gone).
fn shown_number(tx: &Tx<'_>, cfg: &Config, ticket: TicketId) -> Result<String, store::Error> {
    Ok(tx
        .conversation(ticket)?
        .map(|c| cfg.tickets.format_number(c.number, &c.queue, c.opened()))
        .unwrap_or_default())
}

/// Queue the admins' alert for a break on `ticket`; without
/// `[monitoring] admins`, only a warning in the log.
fn alert_broken(
    tx: &mut Tx<'_>,
    cfg: &Config,
    b: &Broken<'_>,
    ticket: TicketId,
) -> Result<(), store::Error> {
    let Broken {
        mailbox,
        client,
        reason,
        subject,
        now,
    } = *b;
    let number = shown_number(tx, cfg, ticket)?;
    let text = format!(
        "postdesk cannot read the mailbox {mailbox}.\n\n\
         Reason     {reason}\n\n\
         Mail sent to this address is not turned into tickets until the \
         problem is fixed. postdesk keeps retrying and will note on the ticket \
         when the mailbox works again."
    );
    if cfg.monitoring.admins.is_empty() {
        tracing::warn!(
            mailbox,
            "mailbox broken but no [monitoring] admins to alert"
        );
        return Ok(());
    }
    deliver(
        tx,
        cfg,
        &Notify {
            kind: "mailbox_broken",
            template: "alert",
            client,
            ticket: Some(ticket),
            digest: None,
            recipients: &cfg.monitoring.admins,
            vars: alert_vars(
                &number,
                &format!("Mailbox {mailbox} unreachable"),
                &text,
                subject,
            ),
        },
        now,
    )?;
    Ok(())
}

/// Note the recovery of a broken `mailbox`; false when it was not broken.
///
/// # Errors
///
/// [`store::Error`]; nothing is written then.
pub fn mark_recovered(
    tx: &mut Tx<'_>,
    cfg: &Config,
    mailbox: &str,
    now: Time,
) -> Result<bool, store::Error> {
    let Some(h) = tx.mailbox_health(mailbox)? else {
        return Ok(false);
    };
    if !h.broken {
        return Ok(false);
    }
    let minutes = (now.secs() - h.since).max(0) / 60;
    let text = format!("Mailbox {mailbox} works again (it was unreachable for {minutes} min).");
    if let Some(t) = h.ticket {
        add_note(tx, t, &text, now)?;
        tx.record_event(&NewEvent {
            ticket: Some(t),
            message: None,
            kind: "mailbox_recovered",
            cause: "poller",
            detail: &serde_json::json!({ "mailbox": mailbox, "down_secs": now.secs() - h.since })
                .to_string(),
            now,
        })?;
        let number = shown_number(tx, cfg, t)?;
        let client = cfg
            .mailbox(mailbox)
            .map(|(c, _)| c.name.clone())
            .unwrap_or_default();
        if !cfg.monitoring.admins.is_empty() {
            deliver(
                tx,
                cfg,
                &Notify {
                    kind: "mailbox_recovered",
                    template: "alert",
                    client: &client,
                    ticket: Some(t),
                    digest: None,
                    recipients: &cfg.monitoring.admins,
                    vars: alert_vars(
                        &number,
                        &format!("Mailbox {mailbox} recovered"),
                        &text,
                        &format!("Mailbox {mailbox} unreachable"),
                    ),
                },
                now,
            )?;
        }
    }
    tx.set_mailbox_health(
        mailbox,
        &MailboxHealth {
            broken: false,
            ticket: h.ticket,
            reason: h.reason,
            since: h.since,
        },
        now,
    )?;
    Ok(true)
}
