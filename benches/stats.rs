//! `postdesk stats` over a large store: `BENCH_TICKETS` (default 100,000)
//! tickets over 90 days in four queues and four priorities, a third of
//! them under a business-hours SLA policy, with their status changes in
//! the audit log, agent replies, resolutions and ratings as a busy
//! helpdesk has them.
//!
//! ```text
//! cargo bench --bench stats
//! BENCH_TICKETS=1000000 cargo bench --bench stats
//! ```
//!
//! The store is filled with SQL inserts (outside the timing). Then the
//! figures are computed as `postdesk stats` computes them
//! (`Store::each_stats_ticket` into `report::overview::Overview`): over
//! everything, by queue, and for the last 30 days by agent; each printed
//! in milliseconds of wall-clock time and of CPU time (the two differ on
//! a busy machine). Last, the command itself (`postdesk stats --json` as a
//! process: configuration, store, figures, output) is timed. The target is
//! under a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postdesk::domain::Time;
use postdesk::report::overview::{Dimension, Overview, Window};
use postdesk::store::{Store, TicketScope};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift), so every run fills the same
/// store.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

const QUEUES: [&str; 4] = ["support", "sales", "billing", "info"];
const PRIORITIES: [&str; 4] = ["Low", "Medium", "High", "Urgent"];
const AGENTS: [&str; 6] = ["", "bob", "carol", "dave", "erin", "frank"];
const TYPES: [&str; 3] = ["General", "Incident", "Question"];

/// CPU time this thread has run, from `/proc/thread-self/schedstat`
/// (nanoseconds on the CPU): on a shared machine the wall-clock time also
/// counts waiting for a core.
fn cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn main() {
    let tickets = env_usize("BENCH_TICKETS", 100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    std::fs::write(
        conf.join("rules.toml"),
        "[server]\nsmtp = \"127.0.0.1:0\"\n[domains]\nserved = [\"example.com\"]\n\
         [addresses]\nsupport = [\"support@example.com\"]\n\
         [agents]\nbob = \"bob@example.com\"\n\
         [sla.calendar.office]\ntime_zone = \"Europe/Berlin\"\n\
         monday = [\"09:00-17:00\"]\ntuesday = [\"09:00-17:00\"]\n\
         wednesday = [\"09:00-17:00\"]\nthursday = [\"09:00-17:00\"]\n\
         friday = [\"09:00-17:00\"]\n\
         [[sla.policy]]\nname = \"office\"\ncalendar = \"office\"\nqueues = [\"support\"]\n\
         [sla.policy.targets]\n\
         medium = { first_response = \"8h\", next_response = \"8h\", resolution = \"48h\" }\n",
    )
    .expect("rules.toml");
    let cfg = Arc::new(postdesk::outbound::whole::load(&conf).expect("config"));
    let data = dir.path().join("data");
    drop(Store::open(&data).expect("store"));

    // 2026-12-14 12:00 UTC; tickets opened over the 90 days before.
    let now = Time::from_secs(1_797_249_600);
    let span = 90 * 86_400;
    let fill = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut events = 0usize;
    {
        let mut conn = rusqlite::Connection::open(data.join("postdesk.sqlite3")).expect("open db");
        let tx = conn.transaction().expect("begin");
        {
            let mut contact = tx
                .prepare("INSERT INTO contacts (id, address) VALUES (?1, ?2)")
                .expect("prepare");
            for c in 0..1000i64 {
                contact
                    .execute(rusqlite::params![
                        c + 1,
                        format!("customer{c}@client{}.test", c % 150)
                    ])
                    .expect("contact");
            }
            let mut t = tx
                .prepare(
                    "INSERT INTO tickets (id, number, subject, status, priority, queue,
                        issue_type, requester_id, assignee, message_count, created_at,
                        updated_at, status_changed_at, closed_at, first_response_at)
                     VALUES (?1, ?1 + 1000, 'Printer on fire', ?2, ?3, ?4, ?5, ?6, ?7, 3,
                        ?8, ?9, ?9, ?10, ?11)",
                )
                .expect("prepare");
            let mut s = tx
                .prepare(
                    "INSERT INTO ticket_sla (ticket_id, policy, status_seen, first_start,
                        first_cycle, first_met, first_due, res_start, res_cycle, res_met,
                        res_due)
                     VALUES (?1, 'office', ?2, ?3, 1, ?4, ?5, ?3, 1, ?6, ?7)",
                )
                .expect("prepare");
            let mut e = tx
                .prepare(
                    "INSERT INTO events (ticket_id, at, kind, cause, detail)
                     VALUES (?1, ?2, ?3, 'bench', ?4)",
                )
                .expect("prepare");
            let mut r = tx
                .prepare("INSERT INTO ratings (ticket_id, score, rated_at) VALUES (?1, ?2, ?3)")
                .expect("prepare");
            for i in 0..tickets as i64 {
                let id = i + 1;
                let created = now.secs() - span + i * span / tickets as i64;
                let queue = QUEUES[rng.below(4) as usize];
                let answered = rng.below(10) < 8;
                let first = answered.then(|| created + 600 + rng.below(2 * 86_400));
                // Of the answered: 70 % resolved, half of those closed since.
                let fate = rng.below(10);
                let resolved = first
                    .filter(|_| fate < 7)
                    .map(|f| f + rng.below(5 * 86_400));
                let closed = resolved.filter(|_| fate < 4).map(|r| r + 7 * 86_400);
                let status = match (first, resolved, closed) {
                    (_, _, Some(_)) => "Closed",
                    (_, Some(_), None) => "Resolved",
                    (Some(_), None, None) => "Replied",
                    _ => "Open",
                };
                let last = closed.or(resolved).or(first).unwrap_or(created);
                t.execute(rusqlite::params![
                    id,
                    status,
                    PRIORITIES[rng.below(4) as usize],
                    queue,
                    TYPES[rng.below(3) as usize],
                    rng.below(1000) + 1,
                    AGENTS[rng.below(6) as usize],
                    created,
                    last,
                    closed.or(resolved),
                    first
                ])
                .expect("ticket");
                let mut event = |at: i64, kind: &str, to: &str| {
                    e.execute(rusqlite::params![
                        id,
                        at,
                        kind,
                        format!("{{\"from\":\"Open\",\"to\":\"{to}\"}}")
                    ])
                    .expect("event");
                    events += 1;
                };
                event(created, "ticket_opened", "Open");
                if let Some(f) = first {
                    event(f, "status_changed", "Replied");
                }
                if let Some(r) = resolved {
                    event(r, "status_changed", "Resolved");
                }
                if let Some(c) = closed {
                    event(c, "auto_closed", "Closed");
                }
                if queue == "support" {
                    s.execute(rusqlite::params![
                        id,
                        status,
                        created,
                        first,
                        created + 8 * 3600 + rng.below(86_400),
                        resolved,
                        created + 2 * 86_400 + rng.below(3 * 86_400)
                    ])
                    .expect("sla");
                }
                if let Some(r_at) = resolved.filter(|_| rng.below(4) == 0) {
                    r.execute(rusqlite::params![id, rng.below(5) + 1, r_at + 3600])
                        .expect("rating");
                }
            }
        }
        tx.commit().expect("commit");
    }
    println!(
        "filled {tickets} tickets ({events} events) in {:.1} s",
        fill.elapsed().as_secs_f64()
    );

    let store = Store::open(&data).expect("store");
    let run = |label: &str, since: Option<i64>, by: Option<Dimension>| {
        let t = Instant::now();
        let cpu0 = cpu();
        let mut o = Overview::new(
            Window {
                since,
                until: now.secs() + 1,
            },
            by,
            now,
        );
        store
            .each_stats_ticket(
                TicketScope::Activity,
                since.unwrap_or(i64::MIN),
                now.secs() + 1,
                |t| -> Result<(), postdesk::store::Error> {
                    o.add(t, &cfg.sla);
                    Ok(())
                },
            )
            .expect("stats");
        let json = o.json().to_string();
        let took = t.elapsed();
        let on_cpu = cpu().zip(cpu0).map(|(b, a)| b - a);
        println!(
            "stats {label}: {:.1} ms ({:.1} ms on the CPU; {} opened, {} resolved, {} groups, {} bytes of JSON)",
            took.as_secs_f64() * 1000.0,
            on_cpu.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
            o.total.opened,
            o.total.resolved,
            o.groups.len(),
            json.len()
        );
        o
    };
    let all = run("over everything", None, None);
    assert_eq!(all.total.opened, tickets as i64, "every ticket counted");
    run("by queue", None, Some(Dimension::Queue));
    run(
        "for the last 30 days by agent",
        Some(now.secs() - 30 * 86_400),
        Some(Dimension::Agent),
    );

    // The command as an admin runs it: a process reading the
    // configuration and the store, printing JSON.
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "2026-12-14T12:00:00Z").expect("clock file");
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args(["stats", "--by", "queue", "--json", "--config"])
        .arg(&conf)
        .arg("--data")
        .arg(&data)
        .env("POSTDESK_CLOCK_FILE", &clock)
        .output()
        .expect("run postdesk stats");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "postdesk stats failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "postdesk stats --by queue --json (the process): {:.1} ms",
        took.as_secs_f64() * 1000.0
    );
}
