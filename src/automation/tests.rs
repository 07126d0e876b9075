//! The engine on hand-made rules and facts.

use super::*;

struct Fixed(Option<String>);

impl Assigner for Fixed {
    fn pick(&mut self, _: &Assign) -> Option<String> {
        self.0.clone()
    }
}

fn rule(name: &str, on: &[Trigger], conditions: Conditions, actions: Actions) -> Rule {
    Rule {
        name: name.into(),
        on: on.to_vec(),
        conditions,
        actions,
        stop: false,
    }
}

fn facts() -> Facts {
    Facts {
        queue: "support".into(),
        priority: "Medium".into(),
        status: "Open".into(),
        issue_type: "General".into(),
        subject: "Refund please".into(),
        requester: "ann@bigcorp.example".into(),
        message: Some(MessageFacts::new(
            "ann@bigcorp.example",
            "Refund please",
            "I will file a Chargeback with my bank",
        )),
        ..Facts::default()
    }
}

fn keywords(words: &[&str]) -> Keywords {
    let words: Vec<String> = words.iter().map(|w| crate::detect::fold(w)).collect();
    Keywords {
        matcher: aho_corasick::AhoCorasick::new(&words).unwrap(),
        words,
    }
}

#[test]
fn a_matching_rule_applies_its_actions_in_order_and_says_why() {
    let rules = [rule(
        "chargebacks",
        &[Trigger::TicketCreated],
        Conditions {
            queue: vec!["support".into()],
            from_domain: vec!["bigcorp.example".into()],
            subject_matches: Some(regex::Regex::new("(?i)refund").unwrap()),
            body_keywords: Some(keywords(&["chargeback", "dispute"])),
            ..Conditions::default()
        },
        Actions {
            set_priority: Some("Urgent".into()),
            add_tags: vec!["billing-risk".into()],
            ..Actions::default()
        },
    )];
    let mut f = facts();
    let c = run(
        &rules,
        &mut f,
        &[Trigger::TicketCreated, Trigger::MessageAdded],
        (None, true),
        &mut Fixed(None),
        Time::from_secs(0),
    );
    assert_eq!(c.evaluations.len(), 1);
    let e = &c.evaluations[0];
    assert!(e.matched, "{e:?}");
    assert_eq!(e.on, "ticket_created");
    assert!(e.conditions.iter().all(|h| h.held));
    assert_eq!(
        e.conditions
            .iter()
            .find(|h| h.field == "body_keywords")
            .unwrap()
            .because,
        "chargeback"
    );
    assert_eq!(
        e.actions,
        [
            Action::SetPriority {
                to: "Urgent".into()
            },
            Action::AddTag {
                tag: "billing-risk".into()
            }
        ]
    );
    assert_eq!(f.priority, "Urgent");
}

#[test]
fn a_failing_condition_names_itself_and_nothing_is_applied() {
    let rules = [rule(
        "sales only",
        &[Trigger::MessageAdded],
        Conditions {
            queue: vec!["sales".into()],
            ..Conditions::default()
        },
        Actions {
            set_priority: Some("High".into()),
            ..Actions::default()
        },
    )];
    let mut f = facts();
    let c = run(
        &rules,
        &mut f,
        &[Trigger::MessageAdded],
        (None, true),
        &mut Fixed(None),
        Time::from_secs(0),
    );
    let e = &c.evaluations[0];
    assert!(!e.matched);
    assert_eq!(e.conditions[0].field, "queue");
    assert!(!e.conditions[0].held);
    assert_eq!(e.conditions[0].because, "support");
    assert_eq!(f.priority, "Medium");
}

#[test]
fn two_rules_that_flip_a_status_stop_at_the_cap() {
    let flip = |name: &str, from: &str, to: &str| {
        rule(
            name,
            &[Trigger::StatusChanged, Trigger::TicketCreated],
            Conditions {
                status: vec![from.into()],
                ..Conditions::default()
            },
            Actions {
                set_status: Some(to.into()),
                ..Actions::default()
            },
        )
    };
    let rules = [flip("a", "Open", "Replied"), flip("b", "Replied", "Open")];
    let mut f = facts();
    let c = run(
        &rules,
        &mut f,
        &[Trigger::TicketCreated],
        (None, true),
        &mut Fixed(None),
        Time::from_secs(0),
    );
    assert!(c.capped);
    assert_eq!(c.applied().count(), CASCADE_CAP);
    // Each change re-triggers the other rule only, never its maker.
    let order: Vec<&str> = c.applied().map(|e| e.rule.as_str()).collect();
    assert!(order.windows(2).all(|w| w[0] != w[1]), "{order:?}");
}

#[test]
fn a_rule_does_not_retrigger_itself_and_stop_ends_the_event() {
    let rules = [
        rule(
            "self",
            &[Trigger::StatusChanged, Trigger::MessageAdded],
            Conditions::default(),
            Actions {
                set_status: Some("Replied".into()),
                ..Actions::default()
            },
        ),
        Rule {
            stop: true,
            ..rule(
                "stopper",
                &[Trigger::MessageAdded],
                Conditions::default(),
                Actions::default(),
            )
        },
        rule(
            "never",
            &[Trigger::MessageAdded],
            Conditions::default(),
            Actions {
                set_priority: Some("Low".into()),
                ..Actions::default()
            },
        ),
    ];
    let mut f = facts();
    let c = run(
        &rules,
        &mut f,
        &[Trigger::MessageAdded],
        (None, true),
        &mut Fixed(None),
        Time::from_secs(0),
    );
    let names: Vec<&str> = c.evaluations.iter().map(|e| e.rule.as_str()).collect();
    // `self` changes the status; the status_changed it fires runs no rule
    // (only `self` listens); `stopper` ends the message's event.
    assert_eq!(names, ["self", "stopper"]);
    assert!(!c.capped);
    assert_eq!(f.priority, "Medium");
}

#[test]
fn assignment_fires_assigned_for_later_rules_and_nobody_available_does_not() {
    let rules = [
        rule(
            "assign",
            &[Trigger::TicketCreated],
            Conditions::default(),
            Actions {
                assign: Some(Assign::LeastBusy("support".into())),
                ..Actions::default()
            },
        ),
        rule(
            "on assigned",
            &[Trigger::Assigned],
            Conditions::default(),
            Actions {
                add_tags: vec!["assigned".into()],
                ..Actions::default()
            },
        ),
    ];
    let mut f = facts();
    let c = run(
        &rules,
        &mut f,
        &[Trigger::TicketCreated],
        (None, true),
        &mut Fixed(Some("bob".into())),
        Time::from_secs(0),
    );
    assert_eq!(f.assignee, "bob");
    assert!(f.tags.contains("assigned"));
    assert_eq!(c.applied().count(), 2);

    let mut f = facts();
    let c = run(
        &rules,
        &mut f,
        &[Trigger::TicketCreated],
        (None, true),
        &mut Fixed(None),
        Time::from_secs(0),
    );
    assert_eq!(c.applied().count(), 1);
    assert_eq!(
        c.evaluations[0].actions,
        [Action::Assign {
            how: Assign::LeastBusy("support".into()),
            agent: None
        }]
    );
}

#[test]
fn idle_counts_time_in_the_status() {
    let rules = [rule(
        "stale",
        &[Trigger::Idle],
        Conditions {
            idle: Some(48 * 3600),
            ..Conditions::default()
        },
        Actions {
            add_tags: vec!["stale".into()],
            ..Actions::default()
        },
    )];
    let mut f = Facts {
        status_since: Time::from_secs(1_000_000),
        ..facts()
    };
    let early = run(
        &rules,
        &mut f,
        &[Trigger::Idle],
        (None, true),
        &mut Fixed(None),
        Time::from_secs(1_000_000 + 47 * 3600),
    );
    assert!(!early.evaluations[0].matched);
    let late = run(
        &rules,
        &mut f,
        &[Trigger::Idle],
        (None, true),
        &mut Fixed(None),
        Time::from_secs(1_000_000 + 48 * 3600),
    );
    assert!(late.evaluations[0].matched);
}

#[test]
fn body_keywords_read_folded_text() {
    let rules = [rule(
        "umlaut",
        &[Trigger::MessageAdded],
        Conditions {
            body_keywords: Some(keywords(&["Rückerstattung"])),
            ..Conditions::default()
        },
        Actions::default(),
    )];
    let mut f = Facts {
        message: Some(MessageFacts::new("", "", "Ich möchte eine RÜCKERSTATTUNG")),
        ..facts()
    };
    let c = run(
        &rules,
        &mut f,
        &[Trigger::MessageAdded],
        (None, true),
        &mut Fixed(None),
        Time::from_secs(0),
    );
    assert!(c.evaluations[0].matched);
}
