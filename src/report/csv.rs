//! CSV for spreadsheets (`stats --csv`, `export ... --csv`): RFC 4180
//! records in UTF-8, written one at a time to any `Write`, so an export of
//! a large store never holds more than one row.
//!
//! - Records end in CRLF (RFC 4180 §2.1), also the last one.
//! - A field holding a comma, a double quote, a CR or an LF is enclosed in
//!   double quotes and its quotes doubled (§2.5-2.7); other fields are
//!   written bare.
//! - **Formula injection.** A text cell that a stranger may have written
//!   (a subject, an address, a name) and that starts with `=`, `+`, `-`,
//!   `@`, a tab or a CR is run as a formula by Excel, LibreOffice and
//!   Google Sheets when the file is opened (`=HYPERLINK(...)`,
//!   `=WEBSERVICE(...)`, DDE `=cmd|' /C calc'!A0`). Every text cell starting
//!   with one of those gets a leading `'` (what OWASP recommends, and what
//!   a spreadsheet shows as a text marker). Numbers (written with
//!   [`Record::number`]) are never changed, so `-5` stays a number; text
//!   that really starts with `-` reads `'-` in the file. This guard is not
//!   optional: postdesk cannot tell a subject a customer typed from one an
//!   attacker chose, and the admin opening the export is the target.

use std::io::Write;

/// The characters that make a spreadsheet read a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `s` as one RFC 4180 field, quoted when it must be; no formula guard.
fn quoted(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// `s` made inert for a spreadsheet: a leading `'` when it starts like a
/// formula.
fn inert(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(FORMULA_START) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// One record being built: add fields in column order, then
/// [`Record::write`].
#[derive(Debug, Default)]
pub struct Record {
    line: String,
    fields: usize,
}

impl Record {
    /// An empty record.
    pub fn new() -> Record {
        Record::default()
    }

    fn push(&mut self, field: &str) {
        if self.fields > 0 {
            self.line.push(',');
        }
        self.line.push_str(field);
        self.fields += 1;
    }

    /// A text cell, quoted as needed and guarded against formula
    /// injection.
    pub fn text(&mut self, s: &str) -> &mut Record {
        let s = inert(s);
        let q = quoted(&s).into_owned();
        self.push(&q);
        self
    }

    /// A number cell, written as it is.
    pub fn number(&mut self, n: impl std::fmt::Display) -> &mut Record {
        self.push(&n.to_string());
        self
    }

    /// A number cell, empty for `None`.
    pub fn maybe<T: std::fmt::Display>(&mut self, n: Option<T>) -> &mut Record {
        match n {
            Some(n) => self.number(n),
            None => {
                self.push("");
                self
            }
        }
    }

    /// Write the record and its CRLF to `out`, leaving the record empty
    /// for the next row.
    ///
    /// # Errors
    ///
    /// The writer's error.
    pub fn write(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        self.line.push_str("\r\n");
        out.write_all(self.line.as_bytes())?;
        self.line.clear();
        self.fields = 0;
        Ok(())
    }
}

/// Write a header record of `names` to `out`.
///
/// # Errors
///
/// The writer's error.
pub fn header(out: &mut impl Write, names: &[&str]) -> std::io::Result<()> {
    let mut r = Record::new();
    for n in names {
        r.text(n);
    }
    r.write(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(f: impl FnOnce(&mut Record)) -> String {
        let mut r = Record::new();
        f(&mut r);
        let mut out = Vec::new();
        r.write(&mut out).expect("write to a Vec");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn fields_with_commas_quotes_and_line_breaks_are_quoted_and_quotes_doubled() {
        assert_eq!(
            row(|r| {
                r.text("plain")
                    .text("a, b")
                    .text("say \"hi\"")
                    .text("one\ntwo");
            }),
            "plain,\"a, b\",\"say \"\"hi\"\"\",\"one\ntwo\"\r\n"
        );
        assert_eq!(
            row(|r| {
                r.text("cr\rlf");
            }),
            "\"cr\rlf\"\r\n"
        );
        assert_eq!(
            row(|r| {
                r.text("Café ☕").text("");
            }),
            "Café ☕,\r\n"
        );
    }

    #[test]
    fn text_starting_like_a_formula_is_made_inert_but_numbers_are_not() {
        assert_eq!(
            row(|r| {
                r.text("=HYPERLINK(\"http://evil.test\",\"x\")")
                    .text("+1")
                    .text("-2")
                    .text("@SUM(A1)")
                    .text("\tx")
                    .number(-5)
                    .maybe(None::<i64>)
                    .maybe(Some(2.5));
            }),
            "\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"x\"\")\",'+1,'-2,'@SUM(A1),'\tx,-5,,2.5\r\n"
        );
        // Only the start counts: a formula sign inside text is text.
        assert_eq!(
            row(|r| {
                r.text("a=b");
            }),
            "a=b\r\n"
        );
    }

    #[test]
    fn a_written_record_starts_the_next_one_empty() {
        let mut r = Record::new();
        let mut out = Vec::new();
        r.text("a").number(1);
        r.write(&mut out).expect("write");
        r.text("b");
        r.write(&mut out).expect("write");
        assert_eq!(out, b"a,1\r\nb\r\n");
    }
}
