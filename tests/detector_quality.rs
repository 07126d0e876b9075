//! Detector quality, measured on the labelled set in
//! `tests/fixtures/detector/` (see its README for the format and the
//! labelling rules).
//!
//! The set has two parts: the tuned part (the `*.txt` files of the folder),
//! which rules are developed against, and the held-out part (`heldout/`),
//! written before the rules it measures and never tuned on. For each part
//! the test prints precision and recall per category and overall (message
//! level: a category is predicted when the message has any hit of it), the
//! flag's own precision and recall, and the share of hard negatives (clean
//! messages marked `hard`: app names, numbers and addresses in ordinary
//! business senses) that raise an alarm. It lists every miss of the tuned
//! part with the hits behind it; held-out misses are listed only with
//! `DETECTOR_SHOW_HELDOUT=1`, so tuning does not read them by accident.
//! It fails when the tuned part is below 0.95 precision or recall or above
//! 5 % alarms on hard negatives, or when the held-out part scores below the
//! floors set when it was first measured (`HELD_OUT_FLOORS`). Between
//! batches the held-out folder may be empty or missing: the test then says
//! "no held-out part" and checks the tuned part alone. Also checks that
//! `contrib/detector.toml` is exactly the built-in default, so the
//! documented configuration cannot drift from the code.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use postdesk::detect::{Category, Detector, DetectorConfig, ScanContext};

#[path = "common/detector_fixtures.rs"]
mod fixtures;
use fixtures::{Case, load_cases, platform_config};

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
}

impl Counts {
    fn precision(self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(self.tp + self.fp)
        }
    }

    fn recall(self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(self.tp + self.fn_)
        }
    }
}

/// What one part of the set scored.
struct Report {
    /// Per category, in [`Category::ALL`] order.
    per: [Counts; 5],
    /// All categories added up.
    total: Counts,
    /// The flag itself: a message with any label against `flagged`.
    flag: Counts,
    /// Hard negatives, and how many of them flagged.
    hard: u32,
    hard_alarms: u32,
}

impl Report {
    fn hard_alarm_rate(&self) -> f64 {
        if self.hard == 0 {
            0.0
        } else {
            f64::from(self.hard_alarms) / f64::from(self.hard)
        }
    }
}

/// Scan every case, print the part's figures (and its misses when
/// `show_misses`), and return them.
fn evaluate(name: &str, cases: &[Case], show_misses: bool) -> Report {
    let detector = Detector::new(&platform_config()).expect("config compiles");
    let mut per = [Counts::default(); 5];
    let mut flag = Counts::default();
    let mut misses = Vec::new();
    let mut positives = 0;
    let (mut hard, mut hard_alarms) = (0, 0);
    // Per file: messages, messages whose categories differ from the label.
    let mut per_file: std::collections::BTreeMap<&str, (u32, u32)> = Default::default();
    for case in cases {
        let ticket_domains = case.ticket_domains();
        let ctx = case.context(&ticket_domains);
        let verdict = detector.scan_message(&case.body, &ctx);
        // What explain shows decides the same: the rules run in full only
        // to list what the model set aside.
        let full = detector.scan_message_in_full(&case.body, &ctx);
        assert_eq!(
            (full.flagged, full.categories()),
            (verdict.flagged, verdict.categories()),
            "{}: scan_message and scan_message_in_full disagree",
            case.id
        );
        let got: BTreeSet<Category> = if verdict.flagged {
            verdict.categories().into_iter().collect()
        } else {
            BTreeSet::new()
        };
        for (i, cat) in Category::ALL.iter().enumerate() {
            match (case.expect.contains(cat), got.contains(cat)) {
                (true, true) => per[i].tp += 1,
                (false, true) => per[i].fp += 1,
                (true, false) => per[i].fn_ += 1,
                (false, false) => {}
            }
        }
        match (!case.expect.is_empty(), verdict.flagged) {
            (true, true) => flag.tp += 1,
            (false, true) => flag.fp += 1,
            (true, false) => flag.fn_ += 1,
            (false, false) => {}
        }
        if !case.expect.is_empty() {
            positives += 1;
        }
        if case.hard {
            hard += 1;
            if verdict.flagged {
                hard_alarms += 1;
            }
        }
        let file_counts = per_file.entry(case.file.as_str()).or_default();
        file_counts.0 += 1;
        if got != case.expect {
            file_counts.1 += 1;
            let hits: Vec<String> = verdict
                .hits
                .iter()
                .map(|h| {
                    let listed = if h.weight == 0 { " (weight 0)" } else { "" };
                    format!("{}:{}={:?}{listed}", h.category.as_str(), h.rule, h.text)
                })
                .collect();
            misses.push(format!(
                "  {} {}: expected {:?}, got {:?} {}",
                case.file,
                case.id,
                case.expect.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                got.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                hits.join(" ")
            ));
        }
    }

    let mut total = Counts::default();
    println!(
        "\n{name}: {} messages ({} with evidence, {} clean, {} of them hard negatives)",
        cases.len(),
        positives,
        cases.len() - positives,
        hard
    );
    println!(
        "{:<10} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "category", "tp", "fp", "fn", "precision", "recall"
    );
    let line = |label: &str, c: Counts| {
        println!(
            "{:<10} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
            label,
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall()
        );
    };
    for (i, cat) in Category::ALL.iter().enumerate() {
        line(cat.as_str(), per[i]);
        total.tp += per[i].tp;
        total.fp += per[i].fp;
        total.fn_ += per[i].fn_;
    }
    line("overall", total);
    line("flagged", flag);
    let report = Report {
        per,
        total,
        flag,
        hard,
        hard_alarms,
    };
    println!(
        "hard negatives flagged: {} of {} ({:.1} %)",
        hard_alarms,
        hard,
        100.0 * report.hard_alarm_rate()
    );
    println!("per file: messages, exactly right");
    for (file, (n, wrong)) in &per_file {
        println!("  {file:<28} {n:>4} {:>4}", n - wrong);
    }
    if show_misses {
        println!(
            "messages whose categories differ from the label ({}):",
            misses.len()
        );
        for m in &misses {
            println!("{m}");
        }
    } else {
        println!(
            "{} messages differ from their label (listed with DETECTOR_SHOW_HELDOUT=1)",
            misses.len()
        );
    }
    report
}

/// Floors a part must stay above: precision and recall (overall and of the
/// flag), and the most hard negatives that may raise an alarm.
struct Floors {
    precision: f64,
    recall: f64,
    hard_alarm_rate: f64,
}

/// The targets: 0.95 precision and recall, at most 5 % alarms on hard
/// negatives.
const TARGETS: Floors = Floors {
    precision: 0.95,
    recall: 0.95,
    hard_alarm_rate: 0.05,
};

/// The floors of the held-out part, set from what it scored when it was
/// first measured: a change that scores worse there is a regression,
/// whatever the tuned part says. Checked only while `heldout/` holds a
/// batch: now the seventeenth to the twentieth, the twenty-second and the
/// twenty-third (client mail by six writers, 1,500 messages; the
/// twenty-second short everyday requests that touch contact and payment
/// words), measured with the rules and the model trained on the tuned
/// part, long text read in windows: overall precision 0.984 and recall
/// 0.953, the flag's 0.987 and 0.953, 7 of 660 hard negatives (1.1 %),
/// rounded down (the alarm rate up).
const HELD_OUT_FLOORS: Floors = Floors {
    precision: 0.98,
    recall: 0.95,
    hard_alarm_rate: 0.02,
};

fn assert_floors(name: &str, r: &Report, f: &Floors) {
    assert!(
        r.total.precision() >= f.precision && r.total.recall() >= f.recall,
        "{name}: overall precision {:.3} / recall {:.3} below {} / {}",
        r.total.precision(),
        r.total.recall(),
        f.precision,
        f.recall
    );
    assert!(
        r.flag.precision() >= f.precision && r.flag.recall() >= f.recall,
        "{name}: flag precision {:.3} / recall {:.3} below {} / {}",
        r.flag.precision(),
        r.flag.recall(),
        f.precision,
        f.recall
    );
    assert!(
        r.hard_alarm_rate() <= f.hard_alarm_rate,
        "{name}: {} of {} hard negatives flagged, above {:.0} %",
        r.hard_alarms,
        r.hard,
        100.0 * f.hard_alarm_rate
    );
}

#[test]
fn tuned_part_meets_the_targets_and_held_out_part_its_floors() {
    let tuned = load_cases("");
    let heldout = load_cases("heldout");
    let all: Vec<&Case> = tuned.iter().chain(&heldout).collect();
    let ids: BTreeSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "case ids must be unique");
    let t = evaluate("tuned part", &tuned, true);
    let h = if heldout.is_empty() {
        println!("\nno held-out part");
        None
    } else {
        let show = std::env::var_os("DETECTOR_SHOW_HELDOUT").is_some_and(|v| v == "1");
        Some(evaluate("held-out part", &heldout, show))
    };
    assert!(
        all.len() >= 600,
        "the labelled set has {} messages, want 600+",
        all.len()
    );
    let positives = all.iter().filter(|c| !c.expect.is_empty()).count();
    let hard = all.iter().filter(|c| c.hard).count();
    assert!(positives >= 200, "{positives} positives, want 200+");
    assert!(hard >= 200, "{hard} hard negatives, want 200+");
    assert!(
        heldout.is_empty() || heldout.len() >= 100,
        "the held-out part has {} messages, want 100+ (or none between batches)",
        heldout.len()
    );

    for (i, cat) in Category::ALL.iter().enumerate() {
        let held = h.as_ref().map_or(0, |h| h.per[i].tp + h.per[i].fn_);
        let labelled = t.per[i].tp + t.per[i].fn_ + held;
        assert!(
            labelled >= 20,
            "{}: only {labelled} labelled positives",
            cat.as_str()
        );
    }
    assert_floors("tuned part", &t, &TARGETS);
    if let Some(h) = &h {
        assert_floors("held-out part", h, &HELD_OUT_FLOORS);
    }
}

#[test]
fn text_added_around_evidence_does_not_water_it_down() {
    // A client who pads a message with pleasantries or a pasted document
    // must not slip under the flag line: a rule's hit is judged by the
    // window that holds it too. Pad every positive of the held-out part
    // (the tuned part between batches) with twenty clean messages of the
    // tuned part, before and after; at least 90 % as many must flag as the
    // rules alone flag unpadded (the model's own hits, read from the whole
    // message, may be watered down; the rules' may not).
    let detector = Detector::new(&platform_config()).expect("config compiles");
    let mut rules_cfg = platform_config();
    rules_cfg.model.enabled = false;
    let rules = Detector::new(&rules_cfg).expect("config compiles");
    let tuned = load_cases("");
    let pad: Vec<&str> = tuned
        .iter()
        .filter(|c| c.file.contains("plain"))
        .take(20)
        .map(|c| c.body.as_str())
        .collect();
    assert_eq!(pad.len(), 20, "clean messages to pad with");
    let pad = pad.join("\n\n");
    let held = load_cases("heldout");
    let cases = if held.is_empty() { &tuned } else { &held };
    let ctx = ScanContext::default();
    let (mut by_rules, mut kept) = (0u32, 0u32);
    for c in cases.iter().filter(|c| !c.expect.is_empty()) {
        if rules.scan_message(&c.body, &ctx).flagged {
            by_rules += 2;
        }
        for padded in [
            format!("{}\n\n{pad}", c.body),
            format!("{pad}\n\n{}", c.body),
        ] {
            if detector.scan_message(&padded, &ctx).flagged {
                kept += 1;
            }
        }
    }
    println!(
        "padded with {} bytes: {kept} flag; the rules alone flag {by_rules} unpadded",
        pad.len()
    );
    assert!(
        by_rules >= 100 && f64::from(kept) >= 0.9 * f64::from(by_rules),
        "{kept} padded positives flag, the rules alone {by_rules} unpadded"
    );
}

#[test]
fn contrib_detector_toml_is_exactly_the_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/detector.toml");
    let text = fs::read_to_string(&path).expect("contrib/detector.toml");
    let doc: toml::Table = toml::from_str(&text).expect("contrib/detector.toml parses");
    let table = doc
        .get("detector")
        .and_then(|v| v.as_table())
        .expect("a [detector] table")
        .clone();
    // Every key is written out (no silent reliance on defaults)...
    let default_value = toml::Value::try_from(DetectorConfig::default()).expect("serialises");
    assert_eq!(
        toml::Value::Table(table.clone()),
        default_value,
        "contrib/detector.toml differs from DetectorConfig::default()"
    );
    // ...and it parses into the default.
    let parsed: DetectorConfig = table.try_into().expect("[detector] deserialises");
    assert_eq!(parsed, DetectorConfig::default());
    Detector::new(&parsed).expect("the shipped configuration compiles");
}

#[test]
fn shipped_rules_toml_detector_table_is_contrib_detector_toml() {
    // rules.toml ships the detector's settings written out, as
    // contrib/detector.toml does; a list changed in one must change in both.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = |file: &str| {
        let text = fs::read_to_string(root.join(file)).expect(file);
        let doc: toml::Table = toml::from_str(&text).expect(file);
        doc.get("detector").cloned().expect("a [detector] table")
    };
    assert_eq!(
        table("rules.toml"),
        table("contrib/detector.toml"),
        "rules.toml's [detector] differs from contrib/detector.toml"
    );
}
