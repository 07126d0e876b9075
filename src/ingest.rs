//! Ingest: `.eml` files, mbox files, Maildir folders and stdin into the spool.
//!
//! Every message goes through [`Spool::accept`], the same path as SMTP, so
//! exit 0 means every message is committed. The caller maps the outcome to
//! the exit codes an MTA pipe transport understands: 0 stored, 65
//! (EX_DATAERR) input that is not mail or a message over
//! `max_message_size`, 75 (EX_TEMPFAIL) a transient failure so the MTA
//! retries.
//!
//! Each input is opened and read once, as a stream (so a FIFO or a pipe
//! works like a file), and at most one message of at most
//! `max_message_size` octets is held in memory: reading stops one octet past
//! the limit. An oversize message in an mbox or a Maildir is skipped, named
//! in the error, and the others are stored.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use crate::spool::{self, Envelope, Source, Spool};

/// Octets read from an input at a time.
const READ_BUFFER: usize = 64 * 1024;

/// Octets of an oversize message kept to look for its Message-ID.
const HEAD_FOR_ID: usize = 64 * 1024;

/// What `ingest` did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Messages read from the input.
    pub read: usize,
    /// Newly stored.
    pub stored: usize,
    /// Already stored (same Message-ID and content).
    pub duplicates: usize,
    /// Newly stored messages that joined or opened a ticket.
    pub tickets: usize,
    /// Messages refused for being larger than `max_message_size`.
    pub refused: Vec<Refused>,
}

/// A message refused for its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 1-based position of the message in its input.
    pub index: usize,
    /// Where it is: the Maildir file, or the octet offset of its `From `
    /// line in an mbox; empty for a single message.
    pub place: String,
    /// Its Message-ID, when one was found in the part that was read.
    pub message_id: Option<String>,
    /// Octets read before giving up: the message is at least this long.
    pub at_least: u64,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message {}", self.index)?;
        if !self.place.is_empty() {
            write!(f, " ({})", self.place)?;
        }
        if let Some(id) = &self.message_id {
            write!(f, " <{id}>")?;
        }
        write!(
            f,
            " has more than {} octets",
            self.at_least.saturating_sub(1)
        )
    }
}

/// Why ingest stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not mail (empty, no header section, not a Maildir).
    #[error("{path}: not mail: {why}")]
    NotMail {
        /// The input.
        path: String,
        /// Why.
        why: String,
    },
    /// One or more messages were larger than `max_message_size`; every
    /// other message was stored.
    #[error("{path}: {} refused, larger than max_message_size ({limit} octets): {}; {} of {} messages stored, {} duplicates",
        summary.refused.len(),
        summary.refused.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        summary.stored, summary.read, summary.duplicates)]
    TooLarge {
        /// The input.
        path: String,
        /// `max_message_size`.
        limit: usize,
        /// What was stored and what was refused.
        summary: Summary,
    },
    /// The input could not be read.
    #[error("reading {path}")]
    Read {
        /// The input.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A message could not be committed (after `stored` others were).
    #[error("storing message {index} of {path}")]
    Store {
        /// The input.
        path: String,
        /// 1-based index of the message that failed.
        index: usize,
        /// The spool's error.
        #[source]
        source: spool::Error,
    },
}

impl Error {
    /// The sysexits code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotMail { .. } | Error::TooLarge { .. } => 65,
            Error::Read { .. } | Error::Store { .. } => 75,
        }
    }
}

/// Ingest `path` (`-` for stdin) through `spool`, refusing any message over
/// `max_message_size` octets.
///
/// # Errors
///
/// See [`Error`]; messages committed before an error stay committed (a rerun
/// skips them as duplicates).
pub async fn run(spool: &Spool, path: &str, max_message_size: usize) -> Result<Summary, Error> {
    let mut job = Job {
        spool,
        path,
        max: max_message_size,
        summary: Summary::default(),
    };
    if path == "-" {
        job.stream(std::io::stdin().lock(), None).await?;
    } else {
        let p = Path::new(path);
        let meta = std::fs::metadata(p).map_err(|e| job.read_err(e))?;
        if meta.is_dir() {
            let files = maildir_files(p).map_err(|e| match e {
                Classify::Io(source) => job.read_err(source),
                Classify::NotMail(why) => job.not_mail(why),
            })?;
            job.maildir(&files).await?;
        } else {
            // Opened once: a FIFO has one writer to meet and one stream.
            let file = std::fs::File::open(p).map_err(|e| job.read_err(e))?;
            let len = meta.is_file().then_some(meta.len());
            job.stream(file, len).await?;
        }
    }
    let Job { summary, .. } = job;
    if summary.read == 0 {
        return Err(Error::NotMail {
            path: path.to_string(),
            why: "no messages found".into(),
        });
    }
    if !summary.refused.is_empty() {
        return Err(Error::TooLarge {
            path: path.to_string(),
            limit: max_message_size,
            summary,
        });
    }
    Ok(summary)
}

/// One ingest run: the input's name, the limit and the tally.
struct Job<'a> {
    spool: &'a Spool,
    path: &'a str,
    max: usize,
    summary: Summary,
}

impl Job<'_> {
    fn read_err(&self, source: std::io::Error) -> Error {
        Error::Read {
            path: self.path.to_string(),
            source,
        }
    }

    fn not_mail(&self, why: String) -> Error {
        Error::NotMail {
            path: self.path.to_string(),
            why,
        }
    }

    /// A file, FIFO or stdin: an mbox when it starts with `From `, one
    /// message otherwise. `len` is the size of a regular file.
    async fn stream(&mut self, mut input: impl Read, len: Option<u64>) -> Result<(), Error> {
        let head = read_head(&mut input, 5).map_err(|e| self.read_err(e))?;
        let is_mbox = head == b"From ";
        let mut input =
            BufReader::with_capacity(READ_BUFFER, std::io::Cursor::new(head).chain(input));
        if is_mbox {
            return self.mbox(input).await;
        }
        if let Some(len) = len.filter(|n| *n > self.max as u64) {
            // Known from the file's size: refused without reading it all.
            self.summary.read += 1;
            let message_id = read_capped(&mut input, HEAD_FOR_ID)
                .ok()
                .and_then(|head| find_message_id(&head));
            self.refuse(1, String::new(), message_id, len);
            return Ok(());
        }
        let raw =
            read_capped(&mut input, self.max.saturating_add(1)).map_err(|e| self.read_err(e))?;
        if raw.len() > self.max {
            self.summary.read += 1;
            let message_id = find_message_id(&raw);
            self.refuse(1, String::new(), message_id, raw.len() as u64);
            return Ok(());
        }
        check_is_mail(&raw).map_err(|why| self.not_mail(why))?;
        self.store(1, raw).await
    }

    async fn mbox(&mut self, input: impl BufRead) -> Result<(), Error> {
        let bar = progress(None);
        let mut mbox = Mbox::new(input, self.max);
        let mut index = 0;
        while let Some(next) = mbox.next_message().map_err(|e| self.read_err(e))? {
            index += 1;
            match next {
                MboxMessage::Fits(raw) => self.store(index, raw).await?,
                MboxMessage::TooLarge {
                    offset,
                    message_id,
                    at_least,
                } => {
                    self.summary.read += 1;
                    self.refuse(index, format!("at octet {offset}"), message_id, at_least);
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(())
    }

    async fn maildir(&mut self, files: &[PathBuf]) -> Result<(), Error> {
        let bar = progress(Some(files.len() as u64));
        for (i, f) in files.iter().enumerate() {
            let read = |f: &Path| -> std::io::Result<(u64, Vec<u8>)> {
                let file = std::fs::File::open(f)?;
                let len = file.metadata()?.len();
                let cap = if len > self.max as u64 {
                    HEAD_FOR_ID
                } else {
                    self.max.saturating_add(1)
                };
                Ok((len, read_capped(&mut BufReader::new(file), cap)?))
            };
            let (len, raw) = read(f).map_err(|e| self.read_err(e))?;
            if len > self.max as u64 || raw.len() > self.max {
                self.summary.read += 1;
                let at_least = len.max(raw.len() as u64);
                let message_id = find_message_id(&raw);
                self.refuse(i + 1, f.display().to_string(), message_id, at_least);
            } else {
                self.store(i + 1, raw).await?;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// Record a refused message; [`Error::TooLarge`] names each one at the
    /// end (the one report of it).
    fn refuse(&mut self, index: usize, place: String, message_id: Option<String>, at_least: u64) {
        let refused = Refused {
            index,
            place,
            message_id,
            at_least,
        };
        self.summary.refused.push(refused);
    }

    async fn store(&mut self, index: usize, raw: Vec<u8>) -> Result<(), Error> {
        self.summary.read += 1;
        let envelope = Envelope {
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            source: Source::Ingest,
            peer: None,
            helo: String::new(),
            web: None,
        };
        let accepted = self
            .spool
            .accept(envelope, raw)
            .await
            .map_err(|source| Error::Store {
                path: self.path.to_string(),
                index,
                source,
            })?;
        if accepted.duplicate {
            self.summary.duplicates += 1;
        } else {
            self.summary.stored += 1;
            if accepted.ticket.is_some() {
                self.summary.tickets += 1;
            }
        }
        Ok(())
    }
}

/// Up to the first `n` octets of `input`, in as many reads as a pipe
/// needs; fewer only at the end of the input.
fn read_head(input: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    input.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Read `input` to its end or to `cap` octets, whichever comes first.
fn read_capped(input: &mut impl Read, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(cap.min(READ_BUFFER));
    input.take(cap as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// The Message-ID in the header section at the start of `raw`, if any.
fn find_message_id(raw: &[u8]) -> Option<String> {
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_at_checked(11) else {
            continue;
        };
        if name.eq_ignore_ascii_case(b"message-id:") {
            let id = String::from_utf8_lossy(value);
            let id = id
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim();
            return (!id.is_empty()).then(|| id.chars().take(256).collect());
        }
    }
    None
}

/// One message of an mbox.
enum MboxMessage {
    /// At most `max_message_size` octets, `>From ` unescaped.
    Fits(Vec<u8>),
    /// Larger: skipped to the next `From ` line.
    TooLarge {
        /// Octet offset of its `From ` line in the input.
        offset: u64,
        /// Its Message-ID, if the part read had one.
        message_id: Option<String>,
        /// Octets counted before the limit was passed.
        at_least: u64,
    },
}

/// An mbox read as a stream, one message at a time, with no line or
/// message held past the limit (a line without an end, such as
/// `/dev/zero`'s, is read in pieces and dropped).
///
/// The format is mail-parser's: a line starting `From ` begins a message,
/// anything before the first is ignored, and one `>` is removed from a
/// line that is `>`s followed by `From ` (mboxrd).
struct Mbox<R> {
    input: R,
    max: usize,
    /// Offset of the next unread octet.
    offset: u64,
    /// Offset of the `From ` line of the message about to be read, once
    /// one was seen.
    next_from: Option<u64>,
    line: Vec<u8>,
}

impl<R: BufRead> Mbox<R> {
    fn new(input: R, max: usize) -> Self {
        Mbox {
            input,
            max,
            offset: 0,
            next_from: None,
            line: Vec::with_capacity(1024),
        }
    }

    /// Read one line into `self.line`, keeping at most `cap` octets of it
    /// and dropping the rest; returns its full length (0 at the end).
    fn read_line(&mut self, cap: usize) -> std::io::Result<u64> {
        self.line.clear();
        let mut total = 0u64;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                break;
            }
            let (used, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let keep = used.min(cap.saturating_sub(self.line.len()));
            self.line.extend_from_slice(&buf[..keep]);
            self.input.consume(used);
            total += used as u64;
            if done {
                break;
            }
        }
        self.offset += total;
        Ok(total)
    }

    /// The next message, or `None` at the end of the input.
    fn next_message(&mut self) -> std::io::Result<Option<MboxMessage>> {
        // Up to the first `From ` line (only the first call reads here).
        while self.next_from.is_none() {
            let start = self.offset;
            if self.read_line(5)? == 0 {
                return Ok(None);
            }
            if self.line.starts_with(b"From ") {
                self.next_from = Some(start);
            }
        }
        let Some(from_offset) = self.next_from.take() else {
            return Ok(None);
        };
        let mut message: Vec<u8> = Vec::new();
        let mut size = 0u64;
        let mut message_id = None;
        let mut over = false;
        loop {
            let start = self.offset;
            // A line is kept whole while the message still fits, and only
            // its first octets (enough to see `From `) once it does not.
            let cap = if over {
                5
            } else {
                self.max
                    .saturating_add(1)
                    .saturating_sub(message.len())
                    .max(5)
            };
            let len = self.read_line(cap)?;
            if len == 0 {
                break;
            }
            if self.line.starts_with(b"From ") {
                self.next_from = Some(start);
                break;
            }
            let line = &self.line[..];
            let gt = line.iter().take_while(|b| **b == b'>').count();
            let unescape = gt > 0 && line[gt..].starts_with(b"From ");
            size += len - u64::from(unescape);
            if over {
                continue;
            }
            if size > self.max as u64 {
                over = true;
                message_id = find_message_id(&message);
                message = Vec::new();
                continue;
            }
            message.extend_from_slice(if unescape { &line[1..] } else { line });
        }
        Ok(Some(if over {
            MboxMessage::TooLarge {
                offset: from_offset,
                message_id,
                at_least: size,
            }
        } else {
            MboxMessage::Fits(message)
        }))
    }
}

enum Classify {
    Io(std::io::Error),
    NotMail(String),
}

/// The delivered messages of a Maildir (`cur/` and `new/`, not `tmp/`),
/// sorted by name.
fn maildir_files(path: &Path) -> Result<Vec<PathBuf>, Classify> {
    let mut files = Vec::new();
    let mut is_maildir = false;
    for sub in ["cur", "new"] {
        let dir = path.join(sub);
        if !dir.is_dir() {
            continue;
        }
        is_maildir = true;
        for entry in std::fs::read_dir(&dir).map_err(Classify::Io)? {
            let entry = entry.map_err(Classify::Io)?;
            if entry.file_type().map_err(Classify::Io)?.is_file()
                && !entry.file_name().to_string_lossy().starts_with('.')
            {
                files.push(entry.path());
            }
        }
    }
    if !is_maildir {
        return Err(Classify::NotMail(
            "a directory without cur/ or new/ is not a Maildir".into(),
        ));
    }
    files.sort();
    Ok(files)
}

/// Input that is not mail: empty, or not starting with a header field.
fn check_is_mail(raw: &[u8]) -> Result<(), String> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("empty input".into());
    }
    if !crate::parse::starts_with_header(raw) {
        return Err("input does not start with a header field".into());
    }
    Ok(())
}

fn progress(len: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} messages {per_sec} {eta}")
    {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_check_accepts_headers_and_rejects_noise() {
        assert!(check_is_mail(b"From: a@b.c\r\n\r\nx").is_ok());
        assert!(check_is_mail(b"Received: from x\r\n").is_ok());
        assert!(check_is_mail(b"").is_err());
        assert!(check_is_mail(b"  \n").is_err());
        assert!(check_is_mail(b"hello world\n").is_err());
        assert!(check_is_mail(b"\x00\x01binary").is_err());
    }

    fn messages(mbox: &[u8], max: usize) -> Vec<MboxMessage> {
        let mut m = Mbox::new(BufReader::with_capacity(7, mbox), max);
        let mut out = Vec::new();
        while let Some(next) = m.next_message().expect("in memory") {
            out.push(next);
        }
        out
    }

    #[test]
    fn mbox_splits_unescapes_and_skips_the_preamble() {
        let mbox = b"junk before\nFrom a@b Mon Mar  2 10:00:00 2026\nSubject: one\n\n>From here\n>>From there\n>Fromage\n\nFrom c@d Mon Mar  2 10:00:00 2026\nSubject: two\n\nbody\n";
        let got = messages(mbox, 1000);
        assert_eq!(got.len(), 2);
        let MboxMessage::Fits(one) = &got[0] else {
            panic!("first fits")
        };
        assert_eq!(
            one.as_slice(),
            b"Subject: one\n\nFrom here\n>From there\n>Fromage\n\n"
        );
        let MboxMessage::Fits(two) = &got[1] else {
            panic!("second fits")
        };
        assert_eq!(two.as_slice(), b"Subject: two\n\nbody\n");
    }

    #[test]
    fn mbox_refuses_an_oversize_message_and_reads_on() {
        let big = "x".repeat(300);
        let mbox = format!(
            "From a@b Mon\nMessage-ID: <small1@x>\n\nhi\nFrom a@b Mon\nMessage-ID: <big@x>\n\n{big}\n{big}\nFrom a@b Mon\nMessage-ID: <small2@x>\n\nho\n"
        );
        let got = messages(mbox.as_bytes(), 200);
        assert_eq!(got.len(), 3);
        assert!(
            matches!(&got[0], MboxMessage::Fits(m) if m.starts_with(b"Message-ID: <small1@x>"))
        );
        match &got[1] {
            MboxMessage::TooLarge {
                offset,
                message_id,
                at_least,
            } => {
                assert_eq!(
                    *offset,
                    mbox.find("From a@b Mon\nMessage-ID: <big").expect("there") as u64
                );
                assert_eq!(message_id.as_deref(), Some("big@x"));
                assert!(*at_least > 200, "{at_least}");
            }
            MboxMessage::Fits(_) => panic!("the big one fits"),
        }
        assert!(
            matches!(&got[2], MboxMessage::Fits(m) if m.starts_with(b"Message-ID: <small2@x>"))
        );
    }

    #[test]
    fn a_line_without_end_is_not_held() {
        // One endless line: only the limit's worth is ever kept.
        let mut mbox = b"From a@b Mon\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'z', 100_000));
        let mut m = Mbox::new(BufReader::with_capacity(64, mbox.as_slice()), 1000);
        let next = m.next_message().expect("in memory").expect("one message");
        assert!(matches!(
            next,
            MboxMessage::TooLarge {
                at_least: 100_000,
                ..
            }
        ));
        assert!(m.line.capacity() < 4096, "{}", m.line.capacity());
    }

    #[test]
    fn message_id_is_found_in_the_header_section_only() {
        assert_eq!(
            find_message_id(b"Subject: x\r\nMessage-Id:  <a@b>\r\n\r\n").as_deref(),
            Some("a@b")
        );
        assert_eq!(find_message_id(b"Subject: x\n\nMessage-ID: <a@b>\n"), None);
    }
}
