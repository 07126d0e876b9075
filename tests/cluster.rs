//! Several postdesk nodes on one PostgreSQL store (a throwaway cluster, see
//! `tests/common/pg.rs`), each a real `postdesk serve` with its own data
//! directory, talked to over SMTP; acknowledgements go to a real SMTP sink.
//!
//! - Mail spread over three nodes, one killed with SIGKILL mid-run and what
//!   it did not acknowledge sent again to another: every acknowledged
//!   message stored once, one ticket per conversation, one acknowledgement
//!   per ticket; the killed node's IMAP mailbox is polled again by another
//!   node within 10 s.
//! - Races on purpose: the same new conversation reaching two nodes at the
//!   same moment ends in one ticket (two replies to a parent not stored
//!   yet; two mails of the recent-ticket rule), and the same message
//!   delivered to both is stored once.
//! - A mail claimed by a node that dies before sending it is sent by
//!   another within 30 s, with the same Message-ID, once.
//! - The scheduler and the rescans, run by one node only, move to a live
//!   node within 10 s of their holder's SIGKILL.
//! - A webhook delivery claimed by a node that dies mid-POST is posted by
//!   another within 30 s under the same event id, answered once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::dovecot::{self, Dovecot};
use common::sink::{Received, SECRET, Sink, outbound_rules};
use common::*;
use serde_json::Value;

/// `postdesk nodes --json` of the store `env` shares.
fn nodes(env: &Env) -> Value {
    env.run_json(&["nodes", "--json"])
}

/// The node holding `duty`, when it is alive.
fn holder(env: &Env, duty: &str) -> Option<String> {
    nodes(env)["duties"]
        .as_array()?
        .iter()
        .find(|d| d["duty"] == duty && d["alive"] == true)
        .and_then(|d| d["node"].as_str().map(str::to_owned))
}

/// Three nodes named n1..n3 of one store, sending through `sink`, with
/// `extra` tables; the envs' primary (never started) is returned too, so
/// its temp dir lives as long as the nodes.
fn three_nodes(sink: &Sink, extra: &str) -> (Env, Vec<TestServer>) {
    three_nodes_with(sink, extra, &[])
}

/// [`three_nodes`] with more secret files in the shared config directory.
fn three_nodes_with(sink: &Sink, extra: &str, secrets: &[(&str, &str)]) -> (Env, Vec<TestServer>) {
    let primary = Env::new_postgres(&Options::default());
    primary.write_config(
        "rules.toml",
        &outbound_rules("example.com", sink.port, extra),
    );
    primary.write_secret("token_secret", SECRET);
    for (name, value) in secrets {
        primary.write_secret(name, value);
    }
    let servers = ["n1", "n2", "n3"]
        .iter()
        .map(|n| TestServer::start_in(primary.node(n), Vec::new()))
        .collect();
    (primary, servers)
}

/// SIGKILL the node (of n1..n3) named by `claimed_by`, the one column of
/// the one row `query` selects; when it died.
fn kill_the_claimer(
    client: &mut postgres::Client,
    servers: &mut [TestServer],
    query: &str,
) -> Instant {
    let claimed: String = client
        .query_one(query, &[])
        .unwrap_or_else(|e| panic!("the claimed row ({query}): {e}"))
        .get(0);
    let claimer = ["n1", "n2", "n3"]
        .iter()
        .position(|n| *n == claimed)
        .expect("claimed by a node of ours");
    servers[claimer].kill9();
    Instant::now()
}

/// Customer `i`'s conversation: its first mail, and a reply to it.
fn conversation(i: usize) -> [Mail; 2] {
    let from = format!("customer{i}@clients.test");
    let subject = format!("Order {i} never arrived");
    let first = format!("c{i}-1@clients.test");
    let parent = format!("<{first}>");
    [
        mail(&from, "support@example.com", &subject, &first, &[]),
        mail(
            &from,
            "support@example.com",
            &format!("Re: {subject}"),
            &format!("c{i}-2@clients.test"),
            &[("In-Reply-To", &parent), ("References", &parent)],
        ),
    ]
}

#[test]
fn three_nodes_share_the_work_and_a_killed_node_loses_nothing() {
    if !dovecot::available() {
        panic!("dovecot is needed (contrib/test.sh installs it)");
    }
    let dovecot = Dovecot::start(&[("inbox@acme.test", "pw-acme-1")]);
    let sink = Sink::start();
    let imap = format!(
        "[client]\ncustomer = \"Acme\"\ndomain = \"acme.test\"\n\
         [[mailbox]]\naddress = \"inbox\"\npriority = \"Medium\"\n\
         [imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         password_file = \"secrets/{{local}}.pass\"\npoll_interval_secs = 1\n\
         timeout_secs = 20\n",
        dovecot.port
    );
    let primary = Env::new_postgres(&Options::default());
    primary.write_config("rules.toml", &outbound_rules("example.com", sink.port, ""));
    primary.write_secret("token_secret", SECRET);
    primary.write_secret("secrets/inbox.pass", "pw-acme-1\n");
    primary.write_config("mailboxes/acme.toml", &imap);
    let mut servers: Vec<TestServer> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| TestServer::start_in(primary.node(n), Vec::new()))
        .collect();

    // Every duty is held by exactly one live node.
    let duty = "imap:inbox@acme.test";
    let imap_holder = eventually(Duration::from_secs(20), || {
        holder(&primary, duty).ok_or_else(|| "no node holds the mailbox yet".to_owned())
    });
    let listed = nodes(&primary);
    assert_eq!(
        listed["nodes"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
    for d in ["scheduler", "rescan", duty] {
        let holders: Vec<&Value> = listed["duties"]
            .as_array()
            .expect("duties")
            .iter()
            .filter(|x| x["duty"] == d)
            .collect();
        assert_eq!(holders.len(), 1, "{d}: {listed}");
    }

    // 20 SMTP sessions, one per conversation's first mail and one per
    // reply, spread over the three nodes; the node polling the mailbox is
    // killed after the first round.
    let victim = ["n1", "n2", "n3"]
        .iter()
        .position(|n| *n == imap_holder)
        .expect("a node of ours");
    let mut pending: Vec<Mail> = Vec::new();
    let mut accepted: BTreeSet<String> = BTreeSet::new();
    let id_of = |m: &Mail| -> String {
        let text = String::from_utf8_lossy(&m.raw).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("a Message-ID")
            .trim()
            .to_owned()
    };
    let killed_at;
    {
        let round: Vec<(usize, Mail)> = (0..10)
            .map(|i| (i % 3, conversation(i)[0].clone()))
            .collect();
        send_round(&servers, round, &mut accepted, &mut pending, id_of);
        // The second round: the victim dies while its sessions run.
        let round: Vec<(usize, Mail)> = (0..10)
            .map(|i| (i % 3, conversation(i)[1].clone()))
            .collect();
        let at = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            let (dying, at) = (&servers[victim], &at);
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(15));
                dying.signal(libc::SIGKILL);
                *at.lock().expect("lock") = Some(Instant::now());
            });
            send_round(&servers, round, &mut accepted, &mut pending, id_of);
        });
        killed_at = at.into_inner().expect("lock").expect("killed");
        servers[victim].kill9();
    }
    // What got no 250 goes to a live node.
    let live = (victim + 1) % 3;
    for m in std::mem::take(&mut pending) {
        let out = servers[live].send_one(&m);
        assert!(out.accepted(), "resend to a live node: {out:?}");
        accepted.insert(id_of(&m));
    }

    // The mailbox is polled again by a live node within 10 s of the kill.
    dovecot.append(
        "inbox@acme.test",
        "pw-acme-1",
        "INBOX",
        &[crlf(
            b"From: Wile <wile@customer.test>\nTo: inbox@acme.test\nSubject: Anvil\n\
              Message-ID: <anvil-1@customer.test>\n\nIt fell.\n",
        )],
    );
    let new_holder = eventually(Duration::from_secs(10), || {
        holder(&primary, duty)
            .filter(|h| *h != imap_holder)
            .ok_or_else(|| "the mailbox is still the dead node's".to_owned())
    });
    let taken = killed_at.elapsed();
    assert!(
        taken <= Duration::from_secs(10),
        "taken over after {taken:?}"
    );
    eventually(Duration::from_secs(20), || {
        let m = servers[live].messages_json();
        find_message(&m, "anvil-1@customer.test")
            .map(|_| ())
            .ok_or_else(|| "the mail in the mailbox is not stored yet".to_owned())
    });
    assert_ne!(new_holder, imap_holder);

    // Every acknowledged message stored once; one ticket per conversation.
    let messages = servers[live].messages_json();
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for m in &messages {
        *stored
            .entry(bare_id(str_field(m, "message_id")).to_owned())
            .or_default() += 1;
    }
    for id in &accepted {
        assert_eq!(
            stored.get(bare_id(id)).copied(),
            Some(1),
            "{id} stored {:?} times",
            stored.get(bare_id(id))
        );
    }
    let tickets = servers[live].tickets_json();
    for i in 0..10 {
        let subject = format!("Order {i} never arrived");
        let n = tickets
            .iter()
            .filter(|t| t["subject"] == subject.as_str())
            .count();
        assert_eq!(n, 1, "conversation {i}: {n} tickets");
    }
    // One acknowledgement per conversation, sent once, by whichever node.
    eventually(Duration::from_secs(30), || {
        let acks: Vec<Received> = sink
            .messages()
            .into_iter()
            .filter(|r| r.rcpt_tos.iter().any(|t| t.starts_with("customer")))
            .collect();
        if acks.len() >= 10 {
            Ok(())
        } else {
            Err(format!("{} acknowledgements so far", acks.len()))
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let acks: Vec<Received> = sink
        .messages()
        .into_iter()
        .filter(|r| r.rcpt_tos.iter().any(|t| t.starts_with("customer")))
        .collect();
    assert_eq!(acks.len(), 10, "{} acknowledgements", acks.len());
    let ids: BTreeSet<&str> = acks.iter().map(Received::message_id).collect();
    assert_eq!(ids.len(), 10, "an acknowledgement was sent twice");
    let to: BTreeSet<&str> = acks.iter().map(|a| a.rcpt_tos[0].as_str()).collect();
    assert_eq!(to.len(), 10, "a customer got two acknowledgements");
}

/// Send each `(node, mail)` in a session of its own, all at once; what a
/// node acknowledged goes to `accepted`, the rest to `pending`.
fn send_round(
    servers: &[TestServer],
    round: Vec<(usize, Mail)>,
    accepted: &mut BTreeSet<String>,
    pending: &mut Vec<Mail>,
    id_of: impl Fn(&Mail) -> String,
) {
    let outcomes: Vec<(Mail, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = round
            .into_iter()
            .map(|(node, m)| {
                let addr = servers[node].smtp;
                s.spawn(move || {
                    let out = smtp_send(addr, false, std::slice::from_ref(&m));
                    let ok = out.first().is_some_and(Outcome::accepted);
                    (m, ok)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sender thread"))
            .collect()
    });
    for (m, ok) in outcomes {
        if ok {
            accepted.insert(id_of(&m));
        } else {
            pending.push(m);
        }
    }
}

#[test]
fn one_new_conversation_at_two_nodes_at_once_is_one_ticket() {
    let sink = Sink::start();
    let (primary, servers) = three_nodes(&sink, "");
    let _ = &primary;
    let (a, b) = (&servers[0], &servers[1]);
    let at_once = |ma: Mail, mb: Mail| -> (bool, bool) {
        let gate = Arc::new(Barrier::new(2));
        std::thread::scope(|s| {
            let (ga, gb) = (gate.clone(), gate.clone());
            let ha = s.spawn(move || {
                ga.wait();
                a.send_one(&ma).accepted()
            });
            let hb = s.spawn(move || {
                gb.wait();
                b.send_one(&mb).accepted()
            });
            (ha.join().expect("a"), hb.join().expect("b"))
        })
    };
    for i in 0..8 {
        // Two replies to a parent neither node has stored.
        let parent = format!("<parent-{i}@clients.test>");
        let from = format!("race{i}@clients.test");
        let reply = |n: usize| {
            mail(
                &from,
                "support@example.com",
                &format!("Re: Race {i}"),
                &format!("reply-{i}-{n}@clients.test"),
                &[("In-Reply-To", &parent), ("References", &parent)],
            )
        };
        assert_eq!(at_once(reply(1), reply(2)), (true, true));
        // Two mails of the recent-ticket rule: one sender, one subject.
        let recent = |n: usize| {
            mail(
                &format!("recent{i}@clients.test"),
                "support@example.com",
                &format!("Invoice question {i}"),
                &format!("recent-{i}-{n}@clients.test"),
                &[],
            )
        };
        assert_eq!(at_once(recent(1), recent(2)), (true, true));
        // The same message delivered to both nodes.
        let same = mail(
            &format!("twice{i}@clients.test"),
            "support@example.com",
            &format!("Delivered twice {i}"),
            &format!("twice-{i}@clients.test"),
            &[],
        );
        assert_eq!(at_once(same.clone(), same), (true, true));
    }
    let tickets = a.tickets_json();
    let messages = a.messages_json();
    for i in 0..8 {
        for subject in [
            format!("Re: Race {i}"),
            format!("Invoice question {i}"),
            format!("Delivered twice {i}"),
        ] {
            let n = tickets
                .iter()
                .filter(|t| t["subject"] == subject.as_str())
                .count();
            assert_eq!(n, 1, "{subject}: {n} tickets");
        }
        let copies = messages
            .iter()
            .filter(|m| m["message_id"] == format!("twice-{i}@clients.test").as_str())
            .count();
        assert_eq!(copies, 1, "twice-{i} stored {copies} times");
    }
    // Ticket numbers are unique across nodes.
    let numbers: BTreeSet<&str> = tickets.iter().map(|t| str_field(t, "number")).collect();
    assert_eq!(numbers.len(), tickets.len(), "a ticket number given twice");
}

#[test]
fn a_mail_claimed_by_a_node_that_dies_is_sent_by_another_within_30_s_once() {
    let mut sink = Sink::start();
    let (primary, mut servers) = three_nodes(&sink, "");
    // Every send stops at MAIL FROM: the claiming node holds its row.
    sink.hold();
    let out = servers[0].send_one(&mail(
        "held@clients.test",
        "support@example.com",
        "Held acknowledgement",
        "held-1@clients.test",
        &[],
    ));
    assert!(out.accepted(), "{out:?}");
    eventually(Duration::from_secs(20), || {
        if sink.held() > 0 {
            Ok(())
        } else {
            Err("no send waiting at the sink yet".to_owned())
        }
    });
    let db = primary.pg_database.clone().expect("postgres");
    let mut client = common::pg::cluster().connect(&db);
    let message_id: String = client
        .query_one(
            "SELECT message_id FROM outbox WHERE rcpt_to = 'held@clients.test'",
            &[],
        )
        .expect("the row")
        .get(0);
    let killed = kill_the_claimer(
        &mut client,
        &mut servers,
        "SELECT claimed_by FROM outbox WHERE status = 'sending' AND rcpt_to = 'held@clients.test'",
    );
    sink.release();
    let got = eventually(Duration::from_secs(40), || {
        let to = sink.to("held@clients.test");
        if to.is_empty() {
            Err("not sent yet".to_owned())
        } else {
            Ok(to)
        }
    });
    let after = killed.elapsed();
    assert!(
        after <= Duration::from_secs(30),
        "sent {after:?} after the kill"
    );
    assert_eq!(got[0].message_id(), bare_id(&message_id));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.to("held@clients.test").len(), 1, "sent twice");
    let by: String = client
        .query_one(
            "SELECT status FROM outbox WHERE rcpt_to = 'held@clients.test'",
            &[],
        )
        .expect("the row")
        .get(0);
    assert_eq!(by, "sent");
}

#[test]
fn the_scheduler_and_rescans_move_to_a_live_node_within_10_s() {
    let sink = Sink::start();
    let (primary, mut servers) = three_nodes(&sink, "");
    let names = ["n1", "n2", "n3"];
    let index = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .expect("a node of ours")
    };
    let (scheduler, rescan) = eventually(Duration::from_secs(20), || {
        match (holder(&primary, "scheduler"), holder(&primary, "rescan")) {
            (Some(s), Some(r)) => Ok((s, r)),
            other => Err(format!("holders so far: {other:?}")),
        }
    });
    // Only the holder runs scheduler passes (one as it takes the duty,
    // then one every 20 s).
    let passes = |server: &TestServer| server.log_lines(SCHEDULER_PASS);
    eventually(Duration::from_secs(10), || {
        match passes(&servers[index(&scheduler)]) {
            0 => Err(format!("{scheduler} has run no scheduler pass yet")),
            _ => Ok(()),
        }
    });
    for (i, name) in names.iter().enumerate() {
        if *name != scheduler {
            assert_eq!(
                servers[i].log_lines(SCHEDULER_PASS),
                0,
                "{name} ran a scheduler pass while {scheduler} held the duty"
            );
        }
    }
    // Kill whichever nodes hold the two duties (one node or two).
    let dead: BTreeSet<String> = [scheduler.clone(), rescan.clone()].into();
    for name in &dead {
        servers[index(name)].kill9();
    }
    let killed = Instant::now();
    let before: Vec<usize> = servers.iter().map(passes).collect();
    let (new_scheduler, new_rescan) = eventually(Duration::from_secs(15), || {
        match (holder(&primary, "scheduler"), holder(&primary, "rescan")) {
            (Some(s), Some(r)) if !dead.contains(&s) && !dead.contains(&r) => Ok((s, r)),
            other => Err(format!("holders after the kill: {other:?}")),
        }
    });
    let taken = killed.elapsed();
    assert!(
        taken <= Duration::from_secs(10),
        "taken over after {taken:?}"
    );
    assert!(!dead.contains(&new_rescan));
    // The new holder runs the passes now, the first as it takes the duty.
    let i = index(&new_scheduler);
    eventually(Duration::from_secs(10), || {
        if passes(&servers[i]) > before[i] {
            Ok(())
        } else {
            Err(format!(
                "{new_scheduler} has run no pass since it took the duty"
            ))
        }
    });
}

#[test]
fn a_webhook_claimed_by_a_node_that_dies_is_posted_by_another_within_30_s() {
    let sink = Sink::start();
    let rx = common::receiver::Receiver::start();
    // Every POST is held unanswered: the claiming node is mid-POST.
    rx.set_mode("stall");
    let hooks = format!(
        "[webhooks]\nretry_initial_secs = 0.2\nretry_max_secs = 0.5\nmax_attempts = 50\n\
         [[webhook]]\nurl = \"{}\"\nevents = [\"ticket.created\"]\n\
         secret_file = \"hook_secret\"\n",
        rx.url("/hook")
    );
    let (primary, mut servers) = three_nodes_with(&sink, &hooks, &[("hook_secret", "hook-secret")]);
    let out = servers[1].send_one(&mail(
        "hooked@clients.test",
        "support@example.com",
        "Hooked",
        "hooked-1@clients.test",
        &[],
    ));
    assert!(out.accepted(), "{out:?}");
    let stalled = eventually(Duration::from_secs(20), || match rx.requests().first() {
        Some(r) => Ok(r.clone()),
        None => Err("no POST yet".to_owned()),
    });
    let db = primary.pg_database.clone().expect("postgres");
    let mut client = common::pg::cluster().connect(&db);
    let killed = kill_the_claimer(
        &mut client,
        &mut servers,
        "SELECT claimed_by FROM webhook_deliveries WHERE status = 'sending'",
    );
    rx.set_mode("200");
    let answered = eventually(Duration::from_secs(40), || {
        match rx.requests().into_iter().find(|r| r.status == "200") {
            Some(r) => Ok(r),
            None => Err("not posted again yet".to_owned()),
        }
    });
    let after = killed.elapsed();
    assert!(
        after <= Duration::from_secs(30),
        "posted {after:?} after the kill"
    );
    assert_eq!(
        answered.json()["id"],
        stalled.json()["id"],
        "the same event id"
    );
    eventually(Duration::from_secs(10), || {
        let status: String = client
            .query_one("SELECT status FROM webhook_deliveries", &[])
            .expect("the row")
            .get(0);
        if status == "sent" {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let ok = rx.requests().iter().filter(|r| r.status == "200").count();
    assert_eq!(ok, 1, "posted and answered once");
}
