//! Cost of recognising mail about mail ([`postdesk::parse::classify`]),
//! which every inbound message now pays before it takes the customer path.
//!
//! ```text
//! cargo bench --bench classify
//! ```
//!
//! Reads the bounce corpus (`tests/fixtures/bounces/*/`) and the ordinary
//! mail of `tests/fixtures/mail/` and `tests/fixtures/bounces/ordinary/`,
//! parses each message once (outside the timing, as the pipeline has it
//! parsed already), then classifies every message `ROUNDS` times (env
//! `BENCH_ROUNDS`, default 200) and prints the mean time per message for
//! each set, with how many were recognised, next to the cost of the RFC
//! 3464 parse alone (the only check there was before).

use std::path::Path;
use std::time::Instant;

use postdesk::parse::classify::classify;
use postdesk::parse::{ParsedMessage, parse};

fn load(dirs: &[&str]) -> Vec<(Vec<u8>, ParsedMessage)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(root.join(d)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "eml")
                && let Ok(raw) = std::fs::read(&p)
            {
                let parsed = parse(&raw);
                out.push((raw, parsed));
            }
        }
    }
    out
}

fn run(name: &str, set: &[(Vec<u8>, ParsedMessage)], rounds: usize) {
    let recognised = set
        .iter()
        .filter(|(raw, m)| classify(raw, m, false).is_some())
        .count();
    let start = Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for (raw, m) in set {
            hits += usize::from(classify(raw, m, false).is_some());
        }
    }
    let per = start.elapsed() / u32::try_from(rounds * set.len().max(1)).unwrap_or(u32::MAX);
    println!(
        "{name:<10} {:>4} messages, {recognised:>4} recognised, {per:>10.2?} per message ({hits} hits over {rounds} rounds)",
        set.len()
    );
    // What the RFC 3464 check alone costs (a full parse): the only check
    // before classify existed.
    let start = Instant::now();
    let mut dsns = 0usize;
    for _ in 0..rounds {
        for (raw, _) in set {
            dsns += usize::from(postdesk::parse::dsn::parse(raw).is_some());
        }
    }
    let per = start.elapsed() / u32::try_from(rounds * set.len().max(1)).unwrap_or(u32::MAX);
    println!("{name:<10} dsn::parse alone: {per:>10.2?} per message ({dsns} DSNs)");
}

fn main() {
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let corpus = load(&[
        "bounces/flufl-bounce",
        "bounces/bounced",
        "bounces/bounceparser",
        "bounces/baunsu",
    ]);
    let ordinary = load(&["mail", "bounces/ordinary"]);
    run("corpus", &corpus, rounds);
    run("ordinary", &ordinary, rounds);
}
