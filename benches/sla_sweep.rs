//! The scheduler's SLA pass over a large store: a million open tickets
//! under a policy, of which `DUE` have an alert due now.
//!
//! ```text
//! cargo bench --bench sla_sweep            # 1,000,000 tickets, 1,000 due
//! BENCH_TICKETS=100000 BENCH_DUE=100 cargo bench --bench sla_sweep
//! ```
//!
//! Fills a fresh store (SQL inserts, outside the timing), then times
//! `scheduler::sla_tick` (the alert pass and the auto-close query) twice:
//! with `DUE` tickets due (each fires a warning: an event, a notice and a
//! queued mail), and right after (nothing due: the index probes alone).
//! Prints each in milliseconds; the target is under a second.

use std::sync::Arc;
use std::time::Instant;

use postdesk::domain::Time;
use postdesk::store::Store;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let tickets = env_usize("BENCH_TICKETS", 1_000_000);
    let due = env_usize("BENCH_DUE", 1_000).min(tickets);
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    std::fs::write(
        conf.join("rules.toml"),
        "[server]\nsmtp = \"127.0.0.1:0\"\n[domains]\nserved = [\"example.com\"]\n\
         [addresses]\nsupport = [\"support@example.com\"]\n\
         [agents]\nbob = \"bob@example.com\"\n\
         [[sla.policy]]\nname = \"standard\"\nqueues = [\"support\"]\n\
         [sla.policy.targets]\n\
         medium = { first_response = \"8h\", next_response = \"8h\", resolution = \"48h\" }\n",
    )
    .expect("rules.toml");
    let cfg = Arc::new(postdesk::outbound::whole::load(&conf).expect("config"));
    let data = dir.path().join("data");
    let mut store = Store::open(&data).expect("store");

    // 2026-12-14 12:00 UTC; each ticket opened 8 h before a point spread
    // over the next days, so its warning (at 80 %) is in the future, except
    // for the first `due` tickets, whose warning is due now.
    let now = Time::from_secs(1_797_249_600);
    let fill = Instant::now();
    {
        let mut conn = rusqlite::Connection::open(data.join("postdesk.sqlite3")).expect("open db");
        let tx = conn.transaction().expect("begin");
        {
            let mut t = tx
                .prepare(
                    "INSERT INTO tickets (id, number, subject, status, priority, queue,
                        created_at, updated_at, status_changed_at)
                     VALUES (?1, ?1, 'Printer on fire', 'Open', 'Medium', 'support', ?2, ?2, ?2)",
                )
                .expect("prepare");
            let mut s = tx
                .prepare(
                    "INSERT INTO ticket_sla (ticket_id, policy, status_seen, first_start,
                        first_cycle, first_due, res_start, res_cycle, res_due, next_check)
                     VALUES (?1, 'standard', 'Open', ?2, 1, ?3, ?2, 1, ?4, ?5)",
                )
                .expect("prepare");
            for i in 0..tickets as i64 {
                let opened = if (i as usize) < due {
                    now.secs() - 7 * 3600
                } else {
                    now.secs() + (i % 5000) * 60
                };
                t.execute(rusqlite::params![i + 1, opened]).expect("ticket");
                s.execute(rusqlite::params![
                    i + 1,
                    opened,
                    opened + 8 * 3600,
                    opened + 48 * 3600,
                    opened + 8 * 3600 * 8 / 10
                ])
                .expect("sla");
            }
        }
        tx.commit().expect("commit");
    }
    println!(
        "filled {tickets} open tickets ({due} with a warning due) in {:.1} s",
        fill.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let swept = postdesk::scheduler::sla_tick(&mut store, &cfg, now).expect("sweep");
    let busy = t.elapsed();
    let t = Instant::now();
    let again = postdesk::scheduler::sla_tick(&mut store, &cfg, now).expect("sweep");
    let idle = t.elapsed();
    println!(
        "sla pass, {} due: {:.1} ms ({} warnings, {} breaches)",
        swept.checked,
        busy.as_secs_f64() * 1000.0,
        swept.warnings,
        swept.breaches
    );
    println!(
        "sla pass, nothing due: {:.3} ms ({} checked)",
        idle.as_secs_f64() * 1000.0,
        again.checked
    );
    assert_eq!(swept.warnings, due, "every due ticket warned once");
    assert_eq!(again.warnings, 0, "nothing fires twice");
}
