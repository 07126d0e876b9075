//! Ticket number formats: `#{n}`, `{n:06}`, `S-{year}-{n:04}`, and the
//! subject tag pattern built from every configured format.
//!
//! One number sequence serves every queue; a format only changes how a
//! number is shown. `{year}` is the year the ticket was opened, in UTC, so
//! a ticket keeps its displayed number for good. The tag pattern is the
//! alternation of every configured format, each with its own capture
//! groups, so a tag found in a subject says which format wrote it and, for
//! `{year}`, which year: threading then checks both against the ticket
//! (`thread::rules`), and a tag of another queue's format or another year
//! does not thread.

use serde::Serialize;

/// The widest zero padding `{n:0W}` may ask for (an `i64` has 19 digits;
/// the tag pattern reads at most 18).
pub const MAX_WIDTH: usize = 18;

/// One parsed `number_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFormat {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Number { width: usize },
    Year,
}

/// Why a `number_format` is refused; the message names the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// No `{n}` at all.
    #[error("must contain `{{n}}`, where the number goes")]
    NoNumber,
    /// `{n}` twice: a tag could carry two different numbers.
    #[error("contains the number twice; write `{{n}}` once")]
    TwoNumbers,
    /// A `{...}` that is neither `{n}`, `{n:0W}` nor `{year}`.
    #[error("unknown placeholder `{0}`; known are {{n}}, {{n:0W}} (e.g. {{n:06}}) and {{year}}")]
    UnknownPlaceholder(String),
    /// `{n:...}` with a width that is not `0` followed by 1 to 18.
    #[error(
        "bad width in `{0}`: write {{n:0W}} with W from 1 to {max}, e.g. {{n:06}}",
        max = MAX_WIDTH
    )]
    BadWidth(String),
    /// A `{` never closed.
    #[error("has a `{{` that is never closed")]
    Unclosed,
}

impl NumberFormat {
    /// Parse a format.
    ///
    /// # Errors
    ///
    /// [`FormatError`] for a format without `{n}`, with it twice, with an
    /// unknown placeholder, a bad width or an unclosed `{`.
    pub fn parse(source: &str) -> Result<NumberFormat, FormatError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut numbers = 0;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(FormatError::Unclosed);
            };
            let placeholder = &rest[open..=open + close];
            let inner = &placeholder[1..placeholder.len() - 1];
            let part = match inner {
                "n" => Part::Number { width: 0 },
                "year" => Part::Year,
                _ => match inner.strip_prefix("n:") {
                    Some(spec) => Part::Number {
                        width: width(spec)
                            .ok_or_else(|| FormatError::BadWidth(placeholder.to_owned()))?,
                    },
                    None => return Err(FormatError::UnknownPlaceholder(placeholder.to_owned())),
                },
            };
            if matches!(part, Part::Number { .. }) {
                numbers += 1;
            }
            parts.push(part);
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        match numbers {
            0 => Err(FormatError::NoNumber),
            1 => Ok(NumberFormat {
                source: source.to_owned(),
                parts,
            }),
            _ => Err(FormatError::TwoNumbers),
        }
    }

    /// The format as configured.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Number `n` of a ticket opened in `year` (UTC), e.g. `S-2026-0042`.
    pub fn render(&self, n: i64, year: i32) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Number { width } => out.push_str(&format!("{n:0width$}")),
                Part::Year => out.push_str(&format!("{year:04}")),
            }
        }
        out
    }

    /// Whether the format shows the year.
    pub fn has_year(&self) -> bool {
        self.parts.contains(&Part::Year)
    }

    /// The regex of this format as alternative `i`: literal parts escaped,
    /// the number captured as `n{i}` (at least its padded width of
    /// digits), the first `{year}` captured as `y{i}` (4 digits).
    fn pattern(&self, i: usize) -> String {
        let mut out = String::new();
        let mut year_seen = false;
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(&regex::escape(t)),
                Part::Number { width } => {
                    out.push_str(&format!(r"(?P<n{i}>\d{{{},{MAX_WIDTH}}})", (*width).max(1)));
                }
                Part::Year if year_seen => out.push_str(r"\d{4}"),
                Part::Year => {
                    year_seen = true;
                    out.push_str(&format!(r"(?P<y{i}>\d{{4}})"));
                }
            }
        }
        out
    }
}

/// The width of `{n:0W}` from `0W`, when `W` is 1 to [`MAX_WIDTH`].
fn width(spec: &str) -> Option<usize> {
    let digits = spec.strip_prefix('0')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<usize>()
        .ok()
        .filter(|w| (1..=MAX_WIDTH).contains(w))
}

/// A ticket tag found in a subject: the number and what wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagSeen {
    /// The ticket number.
    pub number: i64,
    /// The format whose shape the tag has (as configured).
    pub format: String,
    /// The year the tag shows, when its format has `{year}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
}

/// The alternation of `formats`, group names by position: the body of
/// both the tag pattern and the bare-number pattern.
fn alternation(formats: &[NumberFormat]) -> String {
    formats
        .iter()
        .enumerate()
        .map(|(i, f)| format!("(?:{})", f.pattern(i)))
        .collect::<Vec<_>>()
        .join("|")
}

/// The subject tag pattern of `formats`: `[` + any of the formats + `]`,
/// whitespace inside the brackets tolerated (some clients pad tags), any
/// case. Read it with [`read_tag`] and the same `formats`.
///
/// # Errors
///
/// When the regex cannot be built (too large).
pub fn tag_pattern(formats: &[NumberFormat]) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!(r"\[\s*(?:{})\s*\]", alternation(formats)))
        .case_insensitive(true)
        .build()
}

/// The pattern of a number written alone, as a person types it on the
/// command line or in `#merge`: any of `formats`, or bare digits.
///
/// # Errors
///
/// When the regex cannot be built (too large).
pub fn number_pattern(formats: &[NumberFormat]) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!(
        r"^\s*(?:{}|(?P<bare>\d{{1,{MAX_WIDTH}}}))\s*$",
        alternation(formats)
    ))
    .case_insensitive(true)
    .build()
}

/// The tag of the first match of `pattern` (built by [`tag_pattern`] or
/// [`number_pattern`] from `formats`) in `text`.
pub fn read_tag(pattern: &regex::Regex, formats: &[NumberFormat], text: &str) -> Option<TagSeen> {
    let caps = pattern.captures(text)?;
    if let Some(bare) = caps.name("bare") {
        return Some(TagSeen {
            number: bare.as_str().parse().ok()?,
            format: String::new(),
            year: None,
        });
    }
    formats.iter().enumerate().find_map(|(i, f)| {
        let n = caps.name(&format!("n{i}"))?;
        Some(TagSeen {
            number: n.as_str().parse().ok()?,
            format: f.as_str().to_owned(),
            year: caps
                .name(&format!("y{i}"))
                .and_then(|y| y.as_str().parse().ok()),
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    fn f(s: &str) -> NumberFormat {
        NumberFormat::parse(s).unwrap()
    }

    #[test]
    fn formats_render_number_padding_and_year() {
        for (format, n, year, want) in [
            ("#{n}", 1042, 2026, "#1042"),
            ("{n:06}", 42, 2026, "000042"),
            ("FCT-{n:06}", 1, 2026, "FCT-000001"),
            ("S-{year}-{n:04}", 42, 2026, "S-2026-0042"),
            ("S-{year}-{n:04}", 123_456, 2026, "S-2026-123456"),
            ("{year}/{n}", 7, 999, "0999/7"),
        ] {
            assert_eq!(f(format).render(n, year), want, "{format}");
        }
        assert!(f("S-{year}-{n:04}").has_year());
        assert!(!f("#{n}").has_year());
    }

    #[test]
    fn bad_formats_say_what_is_wrong() {
        for (format, want) in [
            ("T-", FormatError::NoNumber),
            ("{year}", FormatError::NoNumber),
            ("{n}-{n}", FormatError::TwoNumbers),
            ("#{num}", FormatError::UnknownPlaceholder("{num}".into())),
            ("#{N}", FormatError::UnknownPlaceholder("{N}".into())),
            ("{n:6}", FormatError::BadWidth("{n:6}".into())),
            ("{n:00}", FormatError::BadWidth("{n:00}".into())),
            ("{n:019}", FormatError::BadWidth("{n:019}".into())),
            ("{n:0x}", FormatError::BadWidth("{n:0x}".into())),
            ("{n:0}", FormatError::BadWidth("{n:0}".into())),
            ("#{n", FormatError::Unclosed),
        ] {
            assert_eq!(NumberFormat::parse(format), Err(want), "{format}");
        }
    }

    #[test]
    fn tags_of_every_format_are_read_with_their_format_and_year() {
        let formats = vec![f("#{n}"), f("S-{year}-{n:04}"), f("FCT-{n:06}")];
        let tag = tag_pattern(&formats).unwrap();
        let read = |s: &str| read_tag(&tag, &formats, s);
        assert_eq!(
            read("Re: [#1042] help"),
            Some(TagSeen {
                number: 1042,
                format: "#{n}".into(),
                year: None
            })
        );
        assert_eq!(
            read("Re: [ S-2026-0042 ] quote"),
            Some(TagSeen {
                number: 42,
                format: "S-{year}-{n:04}".into(),
                year: Some(2026)
            })
        );
        assert_eq!(read("[fct-000001]").map(|t| t.number), Some(1));
        // Not the configured shapes.
        for s in [
            "Re: #1042 help",
            "[S-26-0042]",
            "[S-2026-42]",
            "[FCT-1]",
            "[T-7]",
        ] {
            assert_eq!(read(s), None, "{s}");
        }
        // Literal parts are literal, not regex syntax.
        let dotted = vec![f("T.{n}")];
        let p = tag_pattern(&dotted).unwrap();
        assert_eq!(read_tag(&p, &dotted, "[TX5]"), None);
        assert_eq!(read_tag(&p, &dotted, "[T.5]").map(|t| t.number), Some(5));
    }

    #[test]
    fn a_number_alone_is_read_in_any_format_or_bare() {
        let formats = vec![f("#{n}"), f("S-{year}-{n:04}")];
        let p = number_pattern(&formats).unwrap();
        let n = |s: &str| read_tag(&p, &formats, s).map(|t| t.number);
        assert_eq!(n("#1042"), Some(1042));
        assert_eq!(n("1042"), Some(1042));
        assert_eq!(n("S-2026-0042"), Some(42));
        assert_eq!(n(" s-2026-0042 "), Some(42));
        assert_eq!(n("S-2026-0042x"), None);
        assert_eq!(n("x1042"), None);
    }
}
