//! Fingerprint of the detector's results (`cargo run --release --example detector_fingerprint`): a speed change must leave its output byte-identical.
//!
//! Runs `scan_message` and `scan` over every message of
//! `tests/fixtures/detector/**/*.txt` (tuned part and `heldout/`, with the
//! quality test's configuration and senders) and over the detector bench's
//! realistic corpus, and prints, per corpus and function, a SHA-256 of every
//! verdict's debug form (each hit's category, rule, span, text and weight;
//! score; flag) with totals. It prints no message text.

use postdesk::detect::{Detector, ScanContext, Verdict};
use sha2::{Digest, Sha256};

#[path = "../benches/detector.rs"]
#[allow(dead_code)]
mod bench;

#[path = "../tests/common/detector_fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
use fixtures::{load_cases, platform_config};

/// Hash and totals of a series of verdicts.
#[derive(Default)]
struct Print {
    hash: Sha256,
    messages: usize,
    hits: usize,
    flagged: usize,
    score: u64,
}

impl Print {
    fn add(&mut self, v: &Verdict) {
        self.hash.update(format!("{v:?}\n").as_bytes());
        self.messages += 1;
        self.hits += v.hits.len();
        self.flagged += usize::from(v.flagged);
        self.score += u64::from(v.score);
    }

    fn show(self, name: &str) {
        let digest = self.hash.finalize();
        println!(
            "{name:<28} {}  messages {} hits {} flagged {} score {}",
            hex::encode(&digest[..16]),
            self.messages,
            self.hits,
            self.flagged,
            self.score
        );
    }
}

fn main() {
    // The quality test's configuration for the labelled set, the bench's
    // for its corpus.
    let labelled_cfg = platform_config();
    let labelled_detector = Detector::new(&labelled_cfg).expect("config compiles");
    let mut bench_cfg = labelled_cfg.clone();
    bench_cfg.allow.platform_addresses = vec!["1200 Market Street".into()];
    let bench_detector = Detector::new(&bench_cfg).expect("config compiles");

    for (part, name) in [("", "tuned"), ("heldout", "heldout")] {
        let cases = load_cases(part);
        let (mut pm, mut ps) = (Print::default(), Print::default());
        for case in &cases {
            let ctx = ScanContext {
                sender: case.sender.as_deref(),
                ..ScanContext::default()
            };
            pm.add(&labelled_detector.scan_message(&case.body, &ctx));
            ps.add(&labelled_detector.scan(&case.body, &ctx));
        }
        pm.show(&format!("{name}, scan_message"));
        ps.show(&format!("{name}, scan"));
    }

    let mail = bench::realistic(&bench::labelled_messages());
    let ctx = ScanContext::default();
    let (mut pm, mut ps) = (Print::default(), Print::default());
    for m in &mail {
        pm.add(&bench_detector.scan_message(m, &ctx));
        ps.add(&bench_detector.scan(m, &ctx));
    }
    pm.show("realistic, scan_message");
    ps.show("realistic, scan");
}
