//! The leaf of the configuration: what a check reports
//! ([`Diagnostic`], [`ConfigError`]), the file text it points into
//! (`Source`), and the plain values other modules share
//! ([`PasswordSource`], [`resolve`]).
//!
//! It imports nothing of the crate, so a module that checks its own table
//! (`outbound::settings`, `detect`) can use it without depending on the
//! rest of `config`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;

/// One problem in one file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// `FILE:LINE:COLUMN: message`, on one line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem found while loading a configuration directory.
///
/// Its `Display` is [`ConfigError::render`]: one `FILE:LINE:COLUMN: message`
/// line per diagnostic.
#[derive(Debug)]
pub struct ConfigError {
    /// All diagnostics, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// One `FILE:LINE:COLUMN: message` line per diagnostic, joined by `\n`
    /// (no trailing newline).
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for ConfigError {}

/// The text of one file, kept so a byte span can become line and column.
pub(crate) struct Source {
    path: PathBuf,
    text: String,
}

impl Source {
    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Read `path` as UTF-8, or report why not.
    pub(crate) fn read(path: PathBuf, out: &mut Vec<Diagnostic>) -> Option<Source> {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                out.push(Diagnostic {
                    file: path,
                    line: 1,
                    column: 1,
                    message: format!("cannot read file: {e}"),
                });
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some(Source { path, text }),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                // Locate the bad byte using the valid prefix only.
                let prefix = String::from_utf8_lossy(e.as_bytes().get(..valid).unwrap_or(&[]));
                let src = Source {
                    path,
                    text: prefix.into_owned(),
                };
                out.push(src.at(valid..valid, "file is not valid UTF-8"));
                None
            }
        }
    }

    /// A diagnostic at the start of `span`. An empty span at 0 (a default
    /// value, in no file) lands on 1:1.
    pub(crate) fn at(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, column) = line_col(&self.text, span.start);
        let message: String = message.into();
        Diagnostic {
            file: self.path.clone(),
            line,
            column,
            // One diagnostic, one line: `render` promises that.
            message: message.replace(['\r', '\n'], " "),
        }
    }

    /// Push a diagnostic for `value`.
    pub(crate) fn error<T>(
        &self,
        out: &mut Vec<Diagnostic>,
        value: &Spanned<T>,
        message: impl Into<String>,
    ) {
        out.push(self.at(value.span(), message));
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

/// `path` if absolute, else `base/path`.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Where a password is read when the poller connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// An environment variable's name.
    Env(String),
    /// A file (absolute); its content, trailing newline removed.
    File(PathBuf),
}
