//! The labelled set as the detector model sees it (`cargo run --release
//! --example detector_features > features.jsonl`): one JSON line per
//! message of `tests/fixtures/detector/` (tuned part, then `heldout/`) with
//! its part, file, id, labels, `hard` mark, the categories the rules alone
//! flag (`rules`: the quality test's configuration and sender, the model
//! off) and distinct features (tokens and neighbour pairs of its unquoted
//! text, cut exactly as the detector cuts them).
//! `contrib/train-detector-model.py` trains on these lines.

use std::collections::BTreeSet;

use postdesk::detect::{Detector, model, new_text_ranges};

#[path = "../tests/common/detector_fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
use fixtures::{load_cases, platform_config};

fn main() {
    let mut cfg = platform_config();
    cfg.model.enabled = false;
    let rules = Detector::new(&cfg).expect("the quality test's configuration compiles");
    for part in ["", "heldout"] {
        for c in load_cases(part) {
            let domains = c.ticket_domains();
            let verdict = rules.scan_message(&c.body, &c.context(&domains));
            let found: Vec<&str> = verdict.categories().iter().map(|x| x.as_str()).collect();
            let mut feats = BTreeSet::new();
            for r in new_text_ranges(&c.body) {
                model::features(&c.body[r], |f| {
                    feats.insert(f.to_owned());
                });
            }
            let expect: Vec<&str> = c.expect.iter().map(|x| x.as_str()).collect();
            let line = serde_json::json!({
                "part": if part.is_empty() { "tuned" } else { part },
                "file": c.file,
                "id": c.id,
                "expect": expect,
                "hard": c.hard,
                "rules": if verdict.flagged { found } else { Vec::new() },
                "features": feats,
            });
            println!("{line}");
        }
    }
}
