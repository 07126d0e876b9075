use std::sync::Arc;

use super::*;

fn ny(s: &str) -> Time {
    Time::from_timestamp(
        format!("{s}[America/New_York]")
            .parse::<jiff::Zoned>()
            .expect("zoned")
            .timestamp(),
    )
}

fn office() -> Hours {
    let mut week: [Vec<Interval>; 7] = Default::default();
    for d in &mut week[0..4] {
        *d = vec![
            Interval::parse("09:00-12:00").expect("interval"),
            Interval::parse("13:00-18:00").expect("interval"),
        ];
    }
    week[4] = vec![Interval::parse("09:00-17:00").expect("interval")];
    Hours::Calendar(Arc::new(Calendar {
        name: "office".into(),
        time_zone: jiff::tz::TimeZone::get("America/New_York").expect("tz"),
        week,
        holidays: vec![],
    }))
}

fn settings(hours: Hours) -> Settings {
    let t = |f, n, r| Targets {
        first_response: Some(f),
        next_response: Some(n),
        resolution: Some(r),
    };
    let mut targets = BTreeMap::new();
    targets.insert(Priority::Urgent, t(3600, 3600, 4 * 3600));
    targets.insert(Priority::High, t(4 * 3600, 4 * 3600, 24 * 3600));
    targets.insert(Priority::Medium, t(8 * 3600, 8 * 3600, 48 * 3600));
    Settings {
        calendars: BTreeMap::new(),
        policies: vec![Policy {
            name: "standard".into(),
            hours,
            queues: vec!["support".into()],
            clients: vec![],
            mailboxes: vec![],
            issue_types: vec![],
            pause_on: vec!["Replied".into()],
            warn_at: 0.8,
            escalate: vec![],
            targets,
        }],
    }
}

fn ticket<'a>(status: &'a str, priority: Priority, created: Time) -> Ticket<'a> {
    Ticket {
        queue: "support",
        issue_type: "General",
        mailbox: "support@example.com",
        clients: &[],
        status,
        priority,
        created_at: created,
    }
}

fn due(secs: Option<i64>) -> Time {
    Time::from_secs(secs.expect("a due time"))
}

#[test]
fn a_friday_evening_ticket_is_due_monday_morning() {
    let s = settings(office());
    let at = ny("2026-12-11T17:55");
    let c = advance(
        &s,
        None,
        &ticket("Open", Priority::Urgent, at),
        Happened::Opened,
        at,
    )
    .expect("policy");
    assert_eq!(due(c.first.due), ny("2026-12-14T10:00"));
    let v = view(&s.policies[0], &c, Priority::Urgent, at);
    assert_eq!(v.state, State::OnTrack);
    assert_eq!(v.remaining, Some(3600));
}

#[test]
fn no_policy_no_clocks() {
    let s = settings(Hours::Always);
    let at = ny("2026-12-11T17:55");
    let mut t = ticket("Open", Priority::High, at);
    t.queue = "sales";
    assert_eq!(advance(&s, None, &t, Happened::Opened, at), None);
}

#[test]
fn paused_while_replied_and_a_priority_change_keeps_the_pause() {
    let s = settings(Hours::Always);
    let t0 = ny("2026-12-14T09:00");
    let c = advance(
        &s,
        None,
        &ticket("Open", Priority::High, t0),
        Happened::Opened,
        t0,
    )
    .unwrap();
    assert_eq!(due(c.resolution.due), ny("2026-12-15T09:00"));
    // The agent answers at 10:00: first response met, ticket Replied,
    // clocks paused.
    let t1 = ny("2026-12-14T10:00");
    let c = advance(
        &s,
        Some(&c),
        &ticket("Replied", Priority::High, t0),
        Happened::AgentReply,
        t1,
    )
    .unwrap();
    assert_eq!(c.first.met, Some(t1.secs()));
    assert_eq!(c.resolution.due, None);
    assert_eq!(
        view(&s.policies[0], &c, Priority::High, t1).state,
        State::Paused
    );
    // The customer writes back two hours later: resumed, 2 h of pause.
    let t2 = ny("2026-12-14T12:00");
    let c = advance(
        &s,
        Some(&c),
        &ticket("Open", Priority::High, t0),
        Happened::CustomerMessage,
        t2,
    )
    .unwrap();
    assert_eq!(c.paused_secs, 7200);
    assert_eq!(due(c.resolution.due), ny("2026-12-15T11:00"));
    // A next-response clock started with the customer's message.
    assert_eq!(due(c.next.due), ny("2026-12-14T16:00"));
    // Priority raised to Urgent: targets shrink, the pause stays counted.
    let c = advance(
        &s,
        Some(&c),
        &ticket("Open", Priority::Urgent, t0),
        Happened::Changed,
        t2,
    )
    .unwrap();
    assert_eq!(c.paused_secs, 7200);
    assert_eq!(due(c.resolution.due), ny("2026-12-14T15:00"));
    assert_eq!(due(c.next.due), ny("2026-12-14T13:00"));
}

#[test]
fn next_response_counts_only_from_an_unanswered_customer_message() {
    let s = settings(Hours::Always);
    let t0 = ny("2026-12-14T09:00");
    let c = advance(
        &s,
        None,
        &ticket("Open", Priority::High, t0),
        Happened::Opened,
        t0,
    )
    .unwrap();
    // A second customer message before any answer: the first-response
    // clock covers it, no next-response clock.
    let c = advance(
        &s,
        Some(&c),
        &ticket("Open", Priority::High, t0),
        Happened::CustomerMessage,
        ny("2026-12-14T09:30"),
    )
    .unwrap();
    assert_eq!(c.next.start, None);
    let c = advance(
        &s,
        Some(&c),
        &ticket("Replied", Priority::High, t0),
        Happened::AgentReply,
        ny("2026-12-14T10:00"),
    )
    .unwrap();
    let c = advance(
        &s,
        Some(&c),
        &ticket("Open", Priority::High, t0),
        Happened::CustomerMessage,
        ny("2026-12-14T11:00"),
    )
    .unwrap();
    assert_eq!(c.next.cycle, 1);
    // Another customer message while it runs does not restart it.
    let c2 = advance(
        &s,
        Some(&c),
        &ticket("Open", Priority::High, t0),
        Happened::CustomerMessage,
        ny("2026-12-14T11:30"),
    )
    .unwrap();
    assert_eq!(c2.next, c.next);
    // The agent answers: met, and no further alerts for it.
    let c3 = advance(
        &s,
        Some(&c2),
        &ticket("Replied", Priority::High, t0),
        Happened::AgentReply,
        ny("2026-12-14T12:00"),
    )
    .unwrap();
    assert_eq!(c3.next.met, Some(ny("2026-12-14T12:00").secs()));
    let resumed = advance(
        &s,
        Some(&c3),
        &ticket("Open", Priority::High, t0),
        Happened::Changed,
        ny("2026-12-14T12:00"),
    )
    .unwrap();
    assert!(
        pending(&s.policies[0], &resumed, Priority::High, &[])
            .iter()
            .all(|a| a.target != Target::NextResponse)
    );
}

#[test]
fn resolved_meets_and_a_reopen_starts_a_new_resolution_cycle() {
    let s = settings(Hours::Always);
    let t0 = ny("2026-12-14T09:00");
    let c = advance(
        &s,
        None,
        &ticket("Open", Priority::High, t0),
        Happened::Opened,
        t0,
    )
    .unwrap();
    let t1 = ny("2026-12-14T11:00");
    let c = advance(
        &s,
        Some(&c),
        &ticket("Resolved", Priority::High, t0),
        Happened::Changed,
        t1,
    )
    .unwrap();
    assert_eq!(c.resolution.met, Some(t1.secs()));
    assert_eq!(
        view(&s.policies[0], &c, Priority::High, t1).state,
        State::Met
    );
    assert!(pending(&s.policies[0], &c, Priority::High, &[]).is_empty());
    let t2 = ny("2026-12-15T11:00");
    let c = advance(
        &s,
        Some(&c),
        &ticket("Open", Priority::High, t0),
        Happened::CustomerMessage,
        t2,
    )
    .unwrap();
    assert_eq!(c.resolution.cycle, 2);
    assert_eq!(due(c.resolution.due), ny("2026-12-16T11:00"));
}

#[test]
fn warnings_and_breaches_fire_once_per_cycle() {
    let s = settings(office());
    let p = &s.policies[0];
    let t0 = ny("2026-12-14T09:00");
    let c = advance(
        &s,
        None,
        &ticket("Open", Priority::Urgent, t0),
        Happened::Opened,
        t0,
    )
    .unwrap();
    let alerts = pending(p, &c, Priority::Urgent, &[]);
    // 80 % of 1 h: 09:48; breach 10:00; resolution 4 h business: warn at
    // 3 h 12 m = 13:12 (lunch excluded), breach 14:00.
    let first: Vec<(Kind, Time)> = alerts
        .iter()
        .filter(|a| a.target == Target::FirstResponse)
        .map(|a| (a.kind, Time::from_secs(a.at)))
        .collect();
    assert_eq!(
        first,
        vec![
            (Kind::Warning, ny("2026-12-14T09:48")),
            (Kind::Breached, ny("2026-12-14T10:00"))
        ]
    );
    assert_eq!(next_check(&alerts), Some(ny("2026-12-14T09:48").secs()));
    let fired = [(Target::FirstResponse, 1, Kind::Warning)];
    let left = pending(p, &c, Priority::Urgent, &fired);
    assert_eq!(next_check(&left), Some(ny("2026-12-14T10:00").secs()));
    let at_risk = view(p, &c, Priority::Urgent, ny("2026-12-14T09:50"));
    assert_eq!(at_risk.state, State::AtRisk);
    let breached = view(p, &c, Priority::Urgent, ny("2026-12-14T10:01"));
    assert_eq!(breached.state, State::Breached);
}

#[test]
fn durations_parse_or_say_why() {
    assert_eq!(parse_duration("30m"), Ok(1800));
    assert_eq!(parse_duration("4h"), Ok(14_400));
    assert_eq!(parse_duration("2d"), Ok(172_800));
    assert_eq!(parse_duration("1h30m"), Ok(5400));
    for bad in ["", "4", "h", "4x", "0m", "-1h", "4 h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(human(5400), "1h 30m");
    assert_eq!(human(-900), "-15m");
    assert_eq!(human(2 * 86_400 + 4 * 3600), "2d 4h");
}
