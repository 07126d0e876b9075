//! `[detector]`: the bypass detector's rules, compiled once per
//! configuration.

use std::ops::Range;

use crate::config::diag::{Diagnostic, Source};

/// Build the detector of `[detector]`; an error points at the table header
/// (1:1 when the file has none) and leaves no detector (no `Config` is built
/// with a diagnostic anyway).
pub(super) fn check_detector(
    cfg: &crate::detect::DetectorConfig,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Option<std::sync::Arc<crate::detect::Detector>> {
    match crate::detect::Detector::new(cfg) {
        Ok(d) => Some(std::sync::Arc::new(d)),
        Err(e) => {
            out.push(src.at(detector_table_span(src.text()), e.to_string()));
            None
        }
    }
}

/// The byte span of the first `[detector` table header in `text`, or 0..0.
fn detector_table_span(text: &str) -> Range<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("[detector]") || trimmed.starts_with("[detector.") {
            let at = offset + (line.len() - trimmed.len());
            return at..at;
        }
        offset += line.len();
    }
    0..0
}
