//! Ingest: `.eml` files, mbox files, Maildir folders and stdin into the spool.
//!
//! Every message goes through [`Spool::accept`], the same path as SMTP, so
//! exit 0 means every message is committed. The caller maps the outcome to
//! the exit codes an MTA pipe transport understands: 0 stored, 65
//! (EX_DATAERR) input that is not mail, 75 (EX_TEMPFAIL) a transient failure
//! so the MTA retries.

use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use crate::spool::{self, Envelope, Source, Spool};

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
            Error::NotMail { .. } => 65,
            Error::Read { .. } | Error::Store { .. } => 75,
        }
    }
}

/// The shape of an input.
enum Input {
    One(Vec<u8>),
    Mbox(PathBuf),
    Maildir(Vec<PathBuf>),
}

/// Ingest `path` (`-` for stdin) through `spool`.
///
/// # Errors
///
/// See [`Error`]; messages committed before an error stay committed (a rerun
/// skips them as duplicates).
pub async fn run(spool: &Spool, path: &str) -> Result<Summary, Error> {
    let read_err = |source| Error::Read {
        path: path.to_string(),
        source,
    };
    let input = if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(read_err)?;
        Input::One(buf)
    } else {
        classify(Path::new(path)).map_err(|e| match e {
            Classify::Io(source) => Error::Read {
                path: path.to_string(),
                source,
            },
            Classify::NotMail(why) => Error::NotMail {
                path: path.to_string(),
                why,
            },
        })?
    };

    let mut summary = Summary::default();
    match input {
        Input::One(raw) => {
            check_is_mail(&raw).map_err(|why| Error::NotMail {
                path: path.to_string(),
                why,
            })?;
            store_one(spool, path, 1, raw, &mut summary).await?;
        }
        Input::Mbox(file) => {
            let f = std::fs::File::open(&file).map_err(read_err)?;
            let bar = progress(None);
            for (i, m) in
                mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(f)).enumerate()
            {
                let m = m.map_err(read_err)?;
                store_one(spool, path, i + 1, m.unwrap_contents(), &mut summary).await?;
                bar.inc(1);
            }
            bar.finish_and_clear();
        }
        Input::Maildir(files) => {
            let bar = progress(Some(files.len() as u64));
            for (i, f) in files.iter().enumerate() {
                let raw = std::fs::read(f).map_err(read_err)?;
                store_one(spool, path, i + 1, raw, &mut summary).await?;
                bar.inc(1);
            }
            bar.finish_and_clear();
        }
    }
    if summary.read == 0 {
        return Err(Error::NotMail {
            path: path.to_string(),
            why: "no messages found".into(),
        });
    }
    Ok(summary)
}

async fn store_one(
    spool: &Spool,
    path: &str,
    index: usize,
    raw: Vec<u8>,
    summary: &mut Summary,
) -> Result<(), Error> {
    summary.read += 1;
    let envelope = Envelope {
        mail_from: String::new(),
        rcpt_to: Vec::new(),
        source: Source::Ingest,
        peer: None,
        helo: String::new(),
    };
    let accepted = spool
        .accept(envelope, raw)
        .await
        .map_err(|source| Error::Store {
            path: path.to_string(),
            index,
            source,
        })?;
    if accepted.duplicate {
        summary.duplicates += 1;
    } else {
        summary.stored += 1;
        if accepted.ticket.is_some() {
            summary.tickets += 1;
        }
    }
    Ok(())
}

enum Classify {
    Io(std::io::Error),
    NotMail(String),
}

fn classify(path: &Path) -> Result<Input, Classify> {
    let meta = std::fs::metadata(path).map_err(Classify::Io)?;
    if meta.is_dir() {
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
        return Ok(Input::Maildir(files));
    }
    let mut head = [0u8; 5];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(Classify::Io)?;
    if &head[..n] == b"From " {
        return Ok(Input::Mbox(path.to_path_buf()));
    }
    std::fs::read(path).map(Input::One).map_err(Classify::Io)
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
}
