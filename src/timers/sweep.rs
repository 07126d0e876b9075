//! The scheduler's SLA pass: warnings and breaches that came due, and
//! auto-close.
//!
//! Every alert is recorded (`sla_alerts`, one row per ticket, target,
//! cycle and kind) in the same transaction as its event and its mail, so it
//! fires once however often the pass runs, across restarts and crashes. A
//! pass after downtime fires what came due meanwhile; a warning whose breach
//! is also due is recorded without a mail of its own (the breach says
//! more). Mail goes out only inside the policy's business hours: an alert
//! that comes due outside them waits for the next open minute.

use serde::Serialize;

use super::{record, store_clocks};
use crate::domain::{Priority, Status, TicketId, Time};
use crate::monitor::{Notify, deliver};
use crate::outbound::{self, AutoReplyMail, Config};
use crate::sla::{
    Alert, Escalation, Happened, Hours, Kind, Policy, Target, human, next_check, pending, priority,
};
use crate::store::{self, TicketField, Tx};

/// Tickets looked at per transaction.
pub const BATCH: usize = 500;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Tickets looked at.
    pub checked: usize,
    /// Warnings fired.
    pub warnings: usize,
    /// Breaches fired.
    pub breaches: usize,
    /// Tickets auto-closed.
    pub closed: usize,
}

/// `first_response` → `first response`.
fn target_name(t: Target) -> &'static str {
    match t {
        Target::FirstResponse => "first response",
        Target::NextResponse => "next response",
        Target::Resolution => "resolution",
    }
}

/// One batch of due SLA checks; returns what it did and whether a full
/// batch was due (more may be).
///
/// # Errors
///
/// [`store::Error`].
pub fn alerts(tx: &Tx<'_>, cfg: &Config, now: Time) -> Result<Alerts, store::Error> {
    let due = tx.sla_due(now, BATCH)?;
    let mut out = Alerts {
        swept: Swept {
            checked: due.len(),
            ..Swept::default()
        },
        fired: Vec::new(),
        more: due.len() == BATCH,
    };
    for ticket in &due {
        check(tx, cfg, *ticket, now, &mut out)?;
    }
    Ok(out)
}

/// What one pass of [`alerts`] did.
#[derive(Debug, Default)]
pub struct Alerts {
    /// The counts.
    pub swept: Swept,
    /// Each warning or breach that fired, on its ticket, in order.
    pub fired: Vec<(TicketId, Kind)>,
    /// More tickets may be due.
    pub more: bool,
}

fn check(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: TicketId,
    now: Time,
    out: &mut Alerts,
) -> Result<(), store::Error> {
    let swept = &mut out.swept;
    let (Some(t), Some(c)) = (tx.sla_ticket(ticket)?, tx.sla_clocks(ticket)?) else {
        return tx.set_sla_next_check(ticket, None);
    };
    let Some(policy) = cfg.sla.policy(&c.policy) else {
        // The policy was removed from the configuration: re-match.
        record(tx, &cfg.sla, ticket, Happened::Changed, now)?;
        return Ok(());
    };
    let p = priority(&t.priority);
    let mut fired = tx.sla_fired(ticket)?;
    let all = pending(policy, &c, p, &fired);
    let due: Vec<_> = all.iter().filter(|a| a.at <= now.secs()).copied().collect();
    if due.is_empty() {
        return tx.set_sla_next_check(ticket, next_check(&all));
    }
    if !policy.hours.is_open(now.timestamp()) {
        let open = policy
            .hours
            .next_open(now.timestamp())
            .map(|o| o.as_second());
        return tx.set_sla_next_check(ticket, open);
    }
    let mut raised = false;
    for a in &due {
        if !tx.record_sla_alert(ticket, a.target, a.cycle, a.kind, now)? {
            continue;
        }
        fired.push((a.target, a.cycle, a.kind));
        let superseded = a.kind == Kind::Warning
            && due
                .iter()
                .any(|b| b.kind == Kind::Breached && b.target == a.target && b.cycle == a.cycle);
        if superseded {
            continue;
        }
        let event = match a.kind {
            Kind::Warning => {
                swept.warnings += 1;
                "sla_warning"
            }
            Kind::Breached => {
                swept.breaches += 1;
                "sla_breached"
            }
        };
        let mut escalated = Vec::new();
        if a.kind == Kind::Breached {
            for e in &policy.escalate {
                match e {
                    Escalation::RaisePriority => {
                        if let Some(up) = raise(p)
                            && !raised
                        {
                            tx.set_ticket_field(ticket, TicketField::Priority, up.as_str(), now)?;
                            tx.event(
                                Some(ticket),
                                None,
                                "priority_changed",
                                "sla",
                                &serde_json::json!({ "from": p.as_str(), "to": up.as_str() }),
                                now,
                            )?;
                            raised = true;
                            escalated.push(format!("priority raised to {}", up.as_str()));
                        }
                    }
                    Escalation::NotifyAdmins => escalated.push("admins notified".to_owned()),
                }
            }
        }
        tx.event(
            Some(ticket),
            None,
            event,
            policy.name.as_str(),
            &serde_json::json!({
                "target": a.target.as_str(),
                "cycle": a.cycle,
                "due": Time::from_secs(a.at).timestamp().to_string(),
                "escalated": escalated,
            }),
            now,
        )?;
        mail(tx, cfg, ticket, &t, policy, a, &escalated, now)?;
        out.fired.push((ticket, a.kind));
    }
    if raised {
        record(tx, &cfg.sla, ticket, Happened::Changed, now)?;
    } else {
        store_clocks(tx, &cfg.sla, ticket, true, Some(&c), p, &fired)?;
    }
    Ok(())
}

/// One step up (Urgent stays).
fn raise(p: Priority) -> Option<Priority> {
    match p {
        Priority::Low => Some(Priority::Medium),
        Priority::Medium => Some(Priority::High),
        Priority::High => Some(Priority::Urgent),
        Priority::Urgent => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn mail(
    tx: &Tx<'_>,
    cfg: &Config,
    ticket: TicketId,
    t: &store::SlaTicket,
    policy: &Policy,
    a: &Alert,
    escalated: &[String],
    now: Time,
) -> Result<(), store::Error> {
    let Some(conv) = tx.conversation(ticket)? else {
        return Ok(());
    };
    let (agents, _) = outbound::notify_targets(cfg, &t.queue, &t.assignee);
    let mut to: Vec<String> = agents.into_iter().map(|(_, a)| a).collect();
    if a.kind == Kind::Breached && policy.escalate.contains(&Escalation::NotifyAdmins) {
        for admin in &cfg.monitoring.admins {
            if !to.iter().any(|x| x.eq_ignore_ascii_case(admin)) {
                to.push(admin.clone());
            }
        }
    }
    if to.is_empty() {
        return Ok(());
    }
    let zone = match &policy.hours {
        Hours::Calendar(c) => c.time_zone.clone(),
        Hours::Always => cfg.monitoring.time_zone.clone(),
    };
    let due = Time::from_secs(a.at).timestamp().to_zoned(zone);
    let left = if a.at >= now.secs() {
        policy
            .hours
            .between(now.timestamp(), Time::from_secs(a.at).timestamp())
    } else {
        -policy
            .hours
            .between(Time::from_secs(a.at).timestamp(), now.timestamp())
    };
    let mut vars = outbound::ticket_vars(cfg, &conv);
    let s = |x: &str| minijinja::Value::from(x.to_owned());
    vars.insert("sla_kind", s(a.kind.as_str()));
    vars.insert("sla_target", s(a.target.as_str()));
    vars.insert("sla_target_name", s(target_name(a.target)));
    vars.insert("sla_policy", s(&policy.name));
    vars.insert("sla_due", s(&due.strftime("%Y-%m-%d %H:%M %Z").to_string()));
    vars.insert("sla_left", s(&human(left)));
    vars.insert("sla_escalated", s(&escalated.join(", ")));
    let kind = match a.kind {
        Kind::Warning => "sla_warning",
        Kind::Breached => "sla_breached",
    };
    deliver(
        tx,
        cfg,
        &Notify {
            kind,
            template: "sla",
            client: "",
            ticket: Some(ticket),
            digest: None,
            recipients: &to,
            vars,
        },
        now,
    )?;
    Ok(())
}

/// The statuses auto-close applies to.
pub const WAITING: [&str; 2] = ["Replied", "Resolved"];

/// One batch of auto-close: tickets Replied or Resolved for
/// `[tickets] auto_close_days` are Closed (event `auto_closed`) and their
/// customer gets the `auto_closed` mail, loop-guarded like every automatic
/// mail. Returns how many closed and whether a full batch was due.
///
/// # Errors
///
/// [`store::Error`].
pub fn auto_close(tx: &Tx<'_>, cfg: &Config, now: Time) -> Result<(usize, bool), store::Error> {
    let days = i64::from(cfg.tickets.auto_close_days);
    if days == 0 {
        return Ok((0, false));
    }
    let due = tx.unchanged_since(WAITING, now.secs() - days * 86_400, BATCH)?;
    let mut closed = 0;
    for (ticket, _, _) in &due {
        let Some(mut conv) = tx.conversation(*ticket)? else {
            continue;
        };
        let from = conv.status.clone();
        tx.set_ticket_status(*ticket, Status::Closed.as_str(), false, now)?;
        tx.event(
            Some(*ticket),
            None,
            "auto_closed",
            "auto_close_days",
            &serde_json::json!({ "from": from, "days": days }),
            now,
        )?;
        conv.status = Status::Closed.as_str().to_owned();
        record(tx, &cfg.sla, *ticket, Happened::Changed, now)?;
        closed += 1;
        notify_customer(tx, cfg, &mut conv, days, now)?;
    }
    Ok((closed, due.len() == BATCH))
}

fn notify_customer(
    tx: &Tx<'_>,
    cfg: &Config,
    conv: &mut store::Conversation,
    days: i64,
    now: Time,
) -> Result<(), store::Error> {
    if conv.requester.is_empty() {
        return Ok(());
    }
    let sent = tx.automatic_mails_since(&conv.requester, now.secs() - 3600)?;
    let suppression = tx.suppression(&conv.requester, now)?;
    if let crate::guard::AutoReply::Suppressed { because, detail } =
        crate::guard::limit(cfg, sent, suppression.as_deref())
    {
        tx.event(
            Some(conv.id),
            None,
            "auto_reply_suppressed",
            because,
            &serde_json::json!({ "to": conv.requester, "detail": detail, "mail": "auto_closed" }),
            now,
        )?;
        return Ok(());
    }
    tx.load_thread(conv)?;
    let mut vars = outbound::ticket_vars(cfg, conv);
    vars.insert("auto_close_days", minijinja::Value::from(days.to_string()));
    let mut refs = conv.last_customer_refs.clone();
    refs.extend(conv.last_customer_message.iter().cloned());
    let reply = AutoReplyMail {
        kind: "auto_closed",
        template: "auto_closed",
        to: &conv.requester.clone(),
        in_reply_to: conv.last_customer_message.clone(),
        references: refs,
    };
    outbound::auto_reply(tx, cfg, conv, &reply, &vars, now)?;
    Ok(())
}
