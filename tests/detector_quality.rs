//! Detector quality, measured on the labelled set in
//! `tests/fixtures/detector/` (see its README for the format and the
//! labelling rules).
//!
//! Prints precision and recall per category and overall (message level: a
//! category is predicted when the message has any hit of it), lists every
//! miss with the hits behind it, and fails below 0.95 precision or recall
//! overall. Also checks that `contrib/detector.toml` is exactly the built-in
//! default, so the documented configuration cannot drift from the code.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use postdesk::detect::{Category, Detector, DetectorConfig, ScanContext};

/// One labelled message.
struct Case {
    file: String,
    id: String,
    expect: BTreeSet<Category>,
    sender: Option<String>,
    body: String,
}

/// Replace `\u{XXXX}` escapes with their characters.
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
            .unwrap_or_else(|| panic!("bad escape \\u{{{}}}", &after[..close]));
        out.push(c);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn load_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detector");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
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
                let mut parts = header.split_whitespace();
                let id = parts.next().expect("case id").to_owned();
                let mut expect = BTreeSet::new();
                let mut sender = None;
                for p in parts {
                    if let Some(list) = p.strip_prefix("expect=") {
                        for name in list.split(',').filter(|n| !n.is_empty()) {
                            expect.insert(
                                Category::parse(name).unwrap_or_else(|| {
                                    panic!("{file} {id}: unknown category {name}")
                                }),
                            );
                        }
                    } else if let Some(s) = p.strip_prefix("sender=") {
                        sender = Some(s.to_owned());
                    } else {
                        panic!("{file} {id}: unknown header field {p}");
                    }
                }
                assert!(header.contains("expect="), "{file} {id}: no expect=");
                current = Some(Case {
                    file: file.clone(),
                    id,
                    expect,
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

/// The configuration an admin of the set's platform would run: the
/// defaults plus the platform's own contact details.
fn platform_config() -> DetectorConfig {
    let mut cfg = DetectorConfig::default();
    cfg.allow.platform_domains = vec!["performancewest.net".into()];
    cfg.allow.platform_phones = vec!["+1 (888) 555-0142".into()];
    cfg.allow.platform_addresses = vec!["1200 Market Street, Suite 400, San Francisco".into()];
    cfg
}

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

#[test]
fn labelled_set_precision_and_recall_are_at_least_95_percent() {
    let cases = load_cases();
    assert!(
        cases.len() >= 300,
        "the labelled set has {} messages, want 300+",
        cases.len()
    );
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases.len(), "case ids must be unique");

    let detector = Detector::new(&platform_config()).expect("config compiles");
    let mut per = [Counts::default(); 5];
    let mut binary = Counts::default();
    let mut misses = Vec::new();
    let mut positives = 0;
    // Per file: messages, messages whose categories differ from the label.
    let mut per_file: std::collections::BTreeMap<&str, (u32, u32)> = Default::default();
    for case in &cases {
        let ticket_domains: Vec<String> = case
            .sender
            .as_deref()
            .and_then(|s| s.rsplit_once('@'))
            .map(|(_, d)| vec![d.to_owned()])
            .unwrap_or_default();
        let ctx = ScanContext {
            sender: case.sender.as_deref(),
            ticket_domains: &ticket_domains,
            platform_domains: &[],
        };
        let verdict = detector.scan_message(&case.body, &ctx);
        let got: BTreeSet<Category> = verdict.hits.iter().map(|h| h.category).collect();
        for (i, cat) in Category::ALL.iter().enumerate() {
            match (case.expect.contains(cat), got.contains(cat)) {
                (true, true) => per[i].tp += 1,
                (false, true) => per[i].fp += 1,
                (true, false) => per[i].fn_ += 1,
                (false, false) => {}
            }
        }
        match (!case.expect.is_empty(), verdict.flagged) {
            (true, true) => binary.tp += 1,
            (false, true) => binary.fp += 1,
            (true, false) => binary.fn_ += 1,
            (false, false) => {}
        }
        if !case.expect.is_empty() {
            positives += 1;
        }
        let file_counts = per_file.entry(case.file.as_str()).or_default();
        file_counts.0 += 1;
        if got != case.expect {
            file_counts.1 += 1;
            let hits: Vec<String> = verdict
                .hits
                .iter()
                .map(|h| format!("{}:{}={:?}", h.category.as_str(), h.rule, h.text))
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
        "\ndetector quality on {} messages ({} with evidence, {} clean)",
        cases.len(),
        positives,
        cases.len() - positives
    );
    println!(
        "{:<10} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "category", "tp", "fp", "fn", "precision", "recall"
    );
    for (i, cat) in Category::ALL.iter().enumerate() {
        let c = per[i];
        assert!(
            c.tp + c.fn_ >= 20,
            "{}: only {} labelled positives",
            cat.as_str(),
            c.tp + c.fn_
        );
        println!(
            "{:<10} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
            cat.as_str(),
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall()
        );
        total.tp += c.tp;
        total.fp += c.fp;
        total.fn_ += c.fn_;
    }
    println!(
        "{:<10} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
        "overall",
        total.tp,
        total.fp,
        total.fn_,
        total.precision(),
        total.recall()
    );
    println!(
        "{:<10} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
        "flagged",
        binary.tp,
        binary.fp,
        binary.fn_,
        binary.precision(),
        binary.recall()
    );
    println!("\nper file: messages, exactly right");
    for (file, (n, wrong)) in &per_file {
        println!("  {file:<28} {n:>4} {:>4}", n - wrong);
    }
    println!(
        "\nmessages whose categories differ from the label ({}):",
        misses.len()
    );
    for m in &misses {
        println!("{m}");
    }
    assert!(
        total.precision() >= 0.95 && total.recall() >= 0.95,
        "overall precision {:.3} / recall {:.3} below 0.95",
        total.precision(),
        total.recall()
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
