//! `[detector]`: the bypass detector's rules, compiled once per
//! configuration.
//!
//! The detector's table is deserialized without spans (it is the
//! detector's own type), so an error is placed by its key path: the
//! detector names the value at fault (`patterns`, `1`, `category`) and the
//! path is looked up in the file's syntax tree. A value the file does not
//! set (a built-in default) falls back to the `[detector]` header.

use std::ops::Range;
use std::sync::Arc;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::diag::{Diagnostic, Source};
use crate::detect::{Detector, DetectorConfig, KeyPart};

/// Build the detector of `[detector]`; an error points at the value at
/// fault, else at the table header (1:1 when the file has none), and
/// leaves no detector (no `Config` is built with a diagnostic anyway).
pub(super) fn check_detector(
    cfg: &DetectorConfig,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Option<Arc<Detector>> {
    match Detector::new(cfg) {
        Ok(d) => Some(Arc::new(d)),
        Err(e) => {
            let span = value_span(src.text(), &e.key_path())
                .unwrap_or_else(|| detector_table_span(src.text()));
            out.push(src.at(span, e.to_string()));
            None
        }
    }
}

/// The byte span of the value at `path` below `[detector]` in `text`, or
/// `None` when the file does not set it (or `path` is empty).
fn value_span(text: &str, path: &[KeyPart<'_>]) -> Option<Range<usize>> {
    if path.is_empty() {
        return None;
    }
    // The file parsed once already (a diagnostic is only made for a file
    // whose syntax and shape are right), so this cannot fail in practice;
    // if it does, the caller falls back to the table header.
    let root = DeTable::parse(text).ok()?;
    let mut value = key(root.get_ref(), "detector")?;
    for part in path {
        value = match (part, value.get_ref()) {
            (KeyPart::Key(k), DeValue::Table(table)) => key(table, k)?,
            (KeyPart::Index(i), DeValue::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value.span())
}

/// The value of `name` in `table`.
fn key<'t, 'i>(table: &'t DeTable<'i>, name: &str) -> Option<&'t Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == name)
        .map(|(_, v)| v)
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
