//! The detector's labelled set (`tests/fixtures/detector/`, format in its
//! README): one loader for the quality test, the fingerprint example and
//! the detector bench, which include this file by path.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use postdesk::detect::{Category, DetectorConfig, ScanContext};

/// One labelled message.
pub struct Case {
    pub file: String,
    pub id: String,
    pub expect: BTreeSet<Category>,
    pub sender: Option<String>,
    /// A clean message that names an app, a number or an address in an
    /// ordinary sense (header word `hard`).
    pub hard: bool,
    pub body: String,
}

impl Case {
    /// The ticket's domains as the quality test sees them: the sender's.
    pub fn ticket_domains(&self) -> Vec<String> {
        self.sender
            .as_deref()
            .and_then(|s| s.rsplit_once('@'))
            .map(|(_, d)| vec![d.to_owned()])
            .unwrap_or_default()
    }

    /// What is not evidence for this message: its sender and `domains`
    /// (from [`Case::ticket_domains`]).
    pub fn context<'a>(&'a self, domains: &'a [String]) -> ScanContext<'a> {
        ScanContext {
            sender: self.sender.as_deref(),
            ticket_domains: domains,
            platform_domains: &[],
        }
    }
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

pub fn load_cases(part: &str) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/detector")
        .join(part);
    // Only the held-out folder may be missing (between batches); the tuned
    // folder always exists.
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !part.is_empty() => {
            return Vec::new();
        }
        Err(e) => panic!("fixture directory {}: {e}", dir.display()),
    };
    let mut files: Vec<_> = entries
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
                let mut hard = false;
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
                    } else if p == "hard" {
                        hard = true;
                    } else {
                        panic!("{file} {id}: unknown header field {p}");
                    }
                }
                assert!(header.contains("expect="), "{file} {id}: no expect=");
                assert!(
                    !hard || expect.is_empty(),
                    "{file} {id}: only a clean message can be a hard negative"
                );
                current = Some(Case {
                    file: file.clone(),
                    id,
                    expect,
                    sender,
                    hard,
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
pub fn platform_config() -> DetectorConfig {
    let mut cfg = DetectorConfig::default();
    cfg.allow.platform_domains = vec!["performancewest.net".into()];
    cfg.allow.platform_phones = vec!["+1 (888) 555-0142".into()];
    cfg.allow.platform_addresses = vec!["1200 Market Street, Suite 400, San Francisco".into()];
    cfg
}
