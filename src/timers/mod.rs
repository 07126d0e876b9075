//! What runs against the clock, as writes: a ticket's SLA clocks after a
//! change, stored with when the scheduler should look at the ticket next
//! ([`record`]), and the scheduler's pass over warnings, breaches and
//! auto-close ([`sweep`]). The rules themselves are in `sla`, which is pure.

pub mod sweep;

use crate::domain::{Priority, TicketId, Time};
use crate::sla::{
    Clocks, Happened, Kind, Settings, Target, Ticket, advance, next_check, pending, priority,
};
use crate::store::{self, Tx};

/// Advance `ticket`'s clocks after `happened` and store them; returns them
/// (`None`: no policy applies).
///
/// # Errors
///
/// [`store::Error`].
pub fn record(
    tx: &Tx<'_>,
    settings: &Settings,
    ticket: TicketId,
    happened: Happened,
    now: Time,
) -> Result<Option<Clocks>, store::Error> {
    // Without policies only clocks kept from an earlier configuration
    // need anything (their removal); nothing else is read.
    let prev = tx.sla_clocks(ticket)?;
    if prev.is_none() && settings.policies.is_empty() {
        return Ok(None);
    }
    let Some(t) = tx.sla_ticket(ticket)? else {
        return Ok(None);
    };
    let p = priority(&t.priority);
    let view = Ticket {
        queue: &t.queue,
        issue_type: &t.issue_type,
        mailbox: &t.inbound_address,
        clients: &t.clients,
        status: &t.status,
        priority: p,
        created_at: Time::from_secs(t.created_at),
    };
    let next = advance(settings, prev.as_ref(), &view, happened, now);
    let fired = match &next {
        Some(_) => tx.sla_fired(ticket)?,
        None => Vec::new(),
    };
    store_clocks(
        tx,
        settings,
        ticket,
        prev.is_some(),
        next.as_ref(),
        p,
        &fired,
    )?;
    Ok(next)
}

/// Store `clocks` (or remove the ticket's, when `None` and it `had` some)
/// with the time of its soonest pending alert not in `fired`.
///
/// # Errors
///
/// [`store::Error`].
pub fn store_clocks(
    tx: &Tx<'_>,
    settings: &Settings,
    ticket: TicketId,
    had: bool,
    clocks: Option<&Clocks>,
    priority: Priority,
    fired: &[(Target, i64, Kind)],
) -> Result<(), store::Error> {
    match clocks {
        None if !had => Ok(()),
        None => tx.put_sla(ticket, None, None),
        Some(c) => {
            let check = settings
                .policy(&c.policy)
                .and_then(|p| next_check(&pending(p, c, priority, fired)));
            tx.put_sla(ticket, Some(c), check)
        }
    }
}
