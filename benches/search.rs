//! Full-text search over a large store: `BENCH_MESSAGES` (default
//! 1,000,000) messages of generated text (64 words each, see `Rng::word`),
//! then `BENCH_QUERIES` (default 200) queries, a quarter each: one common
//! word (in about a fifth of all messages), two common words, a
//! mid-frequency word, a rare word; prints p50, p99 and the slowest query
//! in milliseconds.
//!
//! ```text
//! cargo bench --bench search
//! ```
//!
//! The store is filled with SQL inserts into `messages` and the index
//! (outside the timing); the queries go through `Store::search`, as
//! `postdesk search` runs them (limit 50).

use std::time::{Duration, Instant};

use postdesk::store::{SearchFilter, Store};

const WORDS: &[&str] = &[
    "printer",
    "invoice",
    "refund",
    "password",
    "login",
    "order",
    "delivery",
    "broken",
    "screen",
    "account",
    "billing",
    "payment",
    "shipping",
    "return",
    "warranty",
    "upgrade",
    "cancel",
    "subscription",
    "error",
    "crash",
    "slow",
    "network",
    "router",
    "modem",
    "Müller",
    "Büro",
    "café",
    "naïve",
    "report",
    "meeting",
    "contract",
    "urgent",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A cheap deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A word of mail: one in ten from [`WORDS`] (each then in about a
    /// fifth of the messages), the others from a vocabulary of 50,000
    /// where low numbers are far more common than high ones (roughly
    /// Zipf), as in real text.
    fn word(&mut self) -> String {
        if self.next().is_multiple_of(10) {
            WORDS[(self.next() % WORDS.len() as u64) as usize].to_owned()
        } else {
            let r = (self.next() % 1_000_000) as f64 / 1_000_000.0;
            format!("w{}", (50_000f64.powf(r)) as u64)
        }
    }
}

fn main() {
    let messages = env_usize("BENCH_MESSAGES", 1_000_000);
    let queries = env_usize("BENCH_QUERIES", 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let store = Store::open(&data).expect("store");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fill = Instant::now();
    {
        let mut conn = rusqlite::Connection::open(data.join("postdesk.sqlite3")).expect("db");
        let tx = conn.transaction().expect("begin");
        {
            let mut m = tx
                .prepare(
                    "INSERT INTO messages (id, message_id, content_hash, subject, text,
                        received_at) VALUES (?1, ?2, '', ?3, ?4, ?1)",
                )
                .expect("prepare");
            let mut s = tx
                .prepare(
                    "INSERT INTO message_search (rowid, subject, body, attachments)
                     VALUES (?1, ?2, ?3, '')",
                )
                .expect("prepare");
            for i in 1..=messages as i64 {
                let subject: Vec<String> = (0..4).map(|_| rng.word()).collect();
                let body: Vec<String> = (0..60).map(|_| rng.word()).collect();
                let (subject, body) = (subject.join(" "), body.join(" "));
                m.execute(rusqlite::params![i, format!("m{i}@bench"), subject, body])
                    .expect("message");
                s.execute(rusqlite::params![i, subject, body])
                    .expect("index");
            }
        }
        tx.commit().expect("commit");
    }
    println!(
        "filled {messages} messages in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    let filter = SearchFilter {
        limit: 50,
        ..SearchFilter::default()
    };
    let mut times: Vec<(Duration, String)> = Vec::new();
    for i in 0..queries {
        let common = || WORDS[(i * 7) % WORDS.len()];
        let q = match i % 4 {
            0 => common().to_owned(),
            1 => format!("{} {}", common(), WORDS[(i * 11 + 3) % WORDS.len()]),
            2 => format!("w{}", 100 + rng.next() % 1000),
            _ => format!("w{}", 10_000 + rng.next() % 40_000),
        };
        let t = Instant::now();
        let hits = store.search(&q, &filter).expect("search");
        times.push((t.elapsed(), format!("{q} ({} hits)", hits.len())));
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| ms(times[((times.len() as f64 * q) as usize).min(times.len() - 1)].0);
    let (slowest, which) = times.last().cloned().expect("queries");
    println!(
        "search over {messages} messages, {queries} queries: p50 {:.1} ms, p99 {:.1} ms, slowest {:.1} ms ({which})",
        p(0.50),
        p(0.99),
        ms(slowest)
    );
}
