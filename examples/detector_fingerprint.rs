//! Fingerprint of the detector's results (`cargo run --release --example detector_fingerprint`): a speed change must leave its output byte-identical.
//!
//! Runs `scan_message` and `scan` over every message of
//! `tests/fixtures/detector/**/*.txt` (tuned part and `heldout/`, with the
//! quality test's configuration and senders) and over the detector bench's
//! realistic corpus, and prints, per corpus and function, a SHA-256 of every
//! verdict's debug form (each hit's category, rule, span, text and weight;
//! score; flag) with totals. It prints no message text.

use std::fs;
use std::path::Path;

use postdesk::detect::{Detector, DetectorConfig, ScanContext, Verdict};
use sha2::{Digest, Sha256};

#[path = "../benches/detector.rs"]
#[allow(dead_code)]
mod bench;

/// One labelled message: its sender (if the header names one) and body.
struct Case {
    sender: Option<String>,
    body: String,
}

/// Replace `\u{XXXX}` escapes with their characters, as the quality test does.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("\\u{") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 3..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[p..]);
            return out;
        };
        let c = u32::from_str_radix(&after[..close], 16)
            .ok()
            .and_then(char::from_u32)
            .expect("valid \\u{} escape");
        out.push(c);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The cases of one fixture folder (`""` the tuned part, `"heldout"`).
fn load_cases(part: &str) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/detector")
        .join(part);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path).expect("fixture file");
        let mut current: Option<Case> = None;
        let mut body = String::new();
        for line in text.lines() {
            if let Some(header) = line.strip_prefix("#### ") {
                if let Some(mut c) = current.take() {
                    c.body = unescape(body.trim_end());
                    cases.push(c);
                }
                body.clear();
                let sender = header
                    .split_whitespace()
                    .find_map(|p| p.strip_prefix("sender="))
                    .map(str::to_owned);
                current = Some(Case {
                    sender,
                    body: String::new(),
                });
            } else {
                body.push_str(line);
                body.push('\n');
            }
        }
        if let Some(mut c) = current.take() {
            c.body = unescape(body.trim_end());
            cases.push(c);
        }
    }
    cases
}

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
    let mut labelled_cfg = DetectorConfig::default();
    labelled_cfg.allow.platform_domains = vec!["performancewest.net".into()];
    labelled_cfg.allow.platform_phones = vec!["+1 (888) 555-0142".into()];
    labelled_cfg.allow.platform_addresses =
        vec!["1200 Market Street, Suite 400, San Francisco".into()];
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
