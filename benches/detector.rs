//! Detector throughput, single thread: `cargo bench --bench detector`.
//!
//! Three corpora of about 64 MB, each message scanned on its own the way
//! the pipeline scans them:
//!
//! - **realistic mail**: client mail as it arrives: a greeting, the new text
//!   (a message of the labelled set, `tests/fixtures/detector`), a closing,
//!   a signature, often a confidentiality footer, and the quoted history of
//!   one to three earlier turns. Measured with `scan_message` (what the
//!   pipeline calls: quoted history skipped) and with `scan` over the whole
//!   body (nothing skipped).
//! - **labelled set**: the labelled messages alone, short (about 120 bytes)
//!   and dense with evidence and near-misses, so the per-message cost and
//!   the slow paths dominate: a worst case.
//!
//! Time is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), best of three,
//! so a busy machine does not distort the figure. Prints MB/s (10^6 bytes
//! per second). Target: 200 MB/s on realistic mail.
//! `DETECTOR_BENCH=<word>` runs only the measurements whose name has it.

use std::fs;
use std::hint::black_box;
use std::path::Path;

use postdesk::detect::{Detector, DetectorConfig, ScanContext};

const TARGET_BYTES: usize = 64 * 1_000_000;

/// Message bodies of the labelled set.
pub fn labelled_messages() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detector");
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .expect("fixture directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = fs::read_to_string(&p).expect("fixture");
        let mut body: Option<String> = None;
        for line in text.lines() {
            if line.starts_with("#### ") {
                out.extend(body.take());
                body = Some(String::new());
            } else if let Some(b) = body.as_mut() {
                b.push_str(line);
                b.push('\n');
            }
        }
        out.extend(body);
    }
    out
}

/// A small deterministic generator (xorshift), so every run scans the same
/// corpus.
struct Rng(u64);

impl Rng {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        &items[(self.0 % items.len() as u64) as usize]
    }
}

const GREETINGS: &[&str] = &[
    "Hi Maria,",
    "Hello,",
    "Good morning Maria,",
    "Hi team,",
    "Dear Maria,",
    "Hey Maria -",
];
const CLOSINGS: &[&str] = &[
    "Thanks,",
    "Best regards,",
    "Kind regards,",
    "Cheers,",
    "Thank you,",
    "Best,",
];
const SIGNATURES: &[&str] = &[
    "Dana Price\nOwner, Acme Bakery LLC\nacmebakery.com | Walnut Creek, CA",
    "Rob Kessler\nKessler HVAC Services\n\"Comfort you can count on\"\nwww.kesslerhvac.com",
    "Tom Alvarez, DDS\nBrightside Dental\nSent from my iPhone",
    "Jenny Lee | Office Manager\nLee & Sons Landscaping\nLicensed & insured since 1998",
    "Olga Petrova\nPetrov Translations GmbH\nGeschäftsführerin\nwww.petrovtranslations.com",
    "Greg O'Grady\nO'Grady Floors LLC\nOffice: (888) 555-0142 ext. 3",
];
const FOOTER: &str = "CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is \
for the sole use of the intended recipient(s) and may contain confidential and privileged \
information. Any unauthorized review, use, disclosure or distribution is prohibited. If you are \
not the intended recipient, please contact the sender by reply e-mail and destroy all copies of \
the original message. Please consider the environment before printing this e-mail.";
const AGENT_REPLIES: &[&str] = &[
    "Hi,\n\nThanks for sending these over. I've reviewed the Q3 statements and I have a few \
questions about the deposits on 9/14 and 9/22. Could you upload the supporting invoices to the \
portal when you get a chance? Once I have them I can finish the reconciliation and send you the \
draft return for review.\n\nBest,\nMaria Santos\nPerformance West | Accounting Support",
    "Hello,\n\nA quick reminder that your quarterly estimated payment is due on the 15th. I've \
attached the voucher to ticket #1042 in the portal. The amount is based on last year's safe \
harbor, so you're covered even if this year's income ends up higher.\n\nKind regards,\nMaria",
    "Hi there,\n\nI've filed the extension for you, the confirmation is in the portal. The new \
deadline is October 15. Please keep collecting the 1099s and the brokerage statements; we'll \
need the corrected ones too if any arrive.\n\nThanks,\nMaria Santos",
    "Hi,\n\nFor your protection and ours, all communication and payments must stay on the \
platform. Please don't share phone numbers, WhatsApp or Telegram contacts, or pay by Venmo, \
Zelle, Cash App, wire or crypto outside the portal.\n\nPerformance West Compliance",
];
const DATES: &[&str] = &[
    "On Mon, Mar 4, 2024 at 10:12 AM Maria Santos <maria@performancewest.net> wrote:",
    "On Tue, Mar 12, 2024 at 4:40 PM Performance West Support <support@performancewest.net> wrote:",
    "On Fri, Apr 5, 2024, at 9:03 AM, Maria Santos wrote:",
];

fn quote(text: &str) -> String {
    text.lines().map(|l| format!("> {l}\n")).collect()
}

/// Client mail as it arrives: greeting, new text, closing, signature,
/// footer, quoted history. Public for `examples/detector_fingerprint.rs`,
/// which fingerprints the detector's results on this corpus.
pub fn realistic(labelled: &[String]) -> Vec<String> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::new();
    let mut bytes = 0;
    while bytes < TARGET_BYTES {
        for new_text in labelled {
            let mut m = format!(
                "{}\n\n{}\n{}\n{}\n",
                rng.pick(GREETINGS),
                new_text.trim(),
                rng.pick(CLOSINGS),
                rng.pick(SIGNATURES)
            );
            if rng.0.is_multiple_of(2) {
                m.push('\n');
                m.push_str(FOOTER);
                m.push('\n');
            }
            let turns = 1 + rng.0 % 3;
            let mut history = String::new();
            for _ in 0..turns {
                let earlier = rng.pick(labelled).clone();
                let turn = format!(
                    "{}\n\n{}\n\n{}\n{}",
                    rng.pick(AGENT_REPLIES),
                    rng.pick(DATES),
                    quote(&earlier),
                    history
                );
                history = turn;
            }
            m.push('\n');
            let date: &&str = rng.pick(DATES);
            m.push_str(date);
            m.push('\n');
            m.push_str(&quote(&history));
            bytes += m.len();
            out.push(m);
        }
    }
    out
}

/// Labelled messages repeated to the target size.
fn repeated(labelled: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut bytes = 0;
    while bytes < TARGET_BYTES {
        for m in labelled {
            out.push(m.clone());
            bytes += m.len();
        }
    }
    out
}

/// The thread's CPU time in seconds.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // every Linux and macOS libc provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn run(name: &str, corpus: &[String], f: impl Fn(&str) -> usize) {
    if let Ok(only) = std::env::var("DETECTOR_BENCH")
        && !name.contains(&only)
    {
        return;
    }
    let bytes: usize = corpus.iter().map(String::len).sum();
    let mut hits = 0;
    for m in corpus.iter().take(2000) {
        hits += f(m);
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = cpu_seconds();
        hits = 0;
        for m in corpus {
            hits += f(black_box(m));
        }
        best = best.min(cpu_seconds() - start);
    }
    println!(
        "{name:<44} {:>7.1} MB/s  ({:.1} MB, {} messages of {} bytes on average, {} hits)",
        bytes as f64 / 1e6 / best,
        bytes as f64 / 1e6,
        corpus.len(),
        bytes / corpus.len().max(1),
        hits,
    );
}

fn main() {
    let labelled = labelled_messages();
    assert!(labelled.len() >= 300, "labelled set not found");
    let mut cfg = DetectorConfig::default();
    cfg.allow.platform_domains = vec!["performancewest.net".into()];
    cfg.allow.platform_phones = vec!["+1 (888) 555-0142".into()];
    cfg.allow.platform_addresses = vec!["1200 Market Street".into()];
    let detector = Detector::new(&cfg).expect("config compiles");
    let ctx = ScanContext::default();
    println!("detector throughput, one thread, CPU time, best of 3");

    let mail = realistic(&labelled);
    run("realistic mail, scan_message (pipeline)", &mail, |m| {
        detector.scan_message(m, &ctx).hits.len()
    });
    run("realistic mail, scan (whole body)", &mail, |m| {
        detector.scan(m, &ctx).hits.len()
    });
    let dense = repeated(&labelled);
    run("labelled set, scan_message (worst case)", &dense, |m| {
        detector.scan_message(m, &ctx).hits.len()
    });
    run("labelled set, scan", &dense, |m| {
        detector.scan(m, &ctx).hits.len()
    });
}
