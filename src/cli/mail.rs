//! The commands about single messages: `ingest` (files, mbox, Maildir or
//! stdin into the spool), `explain` (a dry run of the pipeline),
//! `messages` (every message received) and `attachment` (one attachment's
//! bytes).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::{Common, load, open, print_json, refuse, runtime, write_output};
use crate::report::{self, printable};
use crate::store::{AttachmentBytes, Store};
use crate::{app, logging};

#[derive(Args)]
pub(super) struct IngestArgs {
    #[command(flatten)]
    common: Common,
    /// File (or FIFO), folder, or `-` for stdin; input starting with
    /// `From ` is read as an mbox.
    path: String,
}

#[derive(Args)]
pub(super) struct AttachmentArgs {
    #[command(flatten)]
    common: Common,
    /// The message's row id (`id` in `messages --json` and `show --json`).
    message: i64,
    /// Which attachment, from 1, in the order `show` lists them.
    index: usize,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub(super) struct MessagesArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct ExplainArgs {
    #[command(flatten)]
    common: Common,
    /// The .eml file.
    file: PathBuf,
    /// An envelope recipient (RCPT TO), repeatable; default: none, as
    /// for `ingest` (recipients then come from To/Cc).
    #[arg(long)]
    rcpt: Vec<String>,
    /// Explain it as mail received over SMTP from this envelope sender
    /// (MAIL FROM; "" for the null sender); default: as `ingest` sees it,
    /// with no envelope (and no mail sent unless `[outbound]
    /// ingest_sends_mail`).
    #[arg(long, value_name = "ADDR")]
    mail_from: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Store what `path` holds: exit 0 when every message is committed, 65
/// (EX_DATAERR) for input refused (not mail, over `max_message_size`), 75
/// (EX_TEMPFAIL) for everything else. An MTA's pipe transport bounces on
/// 65 and keeps the mail queued and retries on 75, so whatever is not the
/// message's own fault (a configuration being edited, a store that cannot
/// be opened, written or is being restored) must be 75, never 1: an exit
/// status an MTA does not know is a bounce.
pub(super) fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    const EX_TEMPFAIL: u8 = 75;
    let cfg = match load(&args.common) {
        Ok(cfg) => cfg,
        Err(e) => {
            // `load` printed its diagnostics (and returned `Reported`).
            if e.downcast_ref::<super::Reported>().is_none() {
                eprintln!("postdesk: {}", logging::chain(e.as_ref()));
            }
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    let path = args.path;
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("postdesk: {}", logging::chain(e.as_ref()));
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    match runtime.block_on(app::ingest(cfg, &path)) {
        Ok(Ok(s)) => {
            println!(
                "{path}: {} read, {} stored, {} duplicates, {} ticketed",
                s.read, s.stored, s.duplicates, s.tickets
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(e)) => {
            eprintln!("postdesk: {}", logging::chain(&e));
            Ok(ExitCode::from(e.exit_code() as u8))
        }
        Err(e) => {
            eprintln!("postdesk: {}", logging::chain(e.as_ref()));
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
    }
}

/// Write one attachment of a stored message.
pub(super) fn attachment(args: AttachmentArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&args.common)?;
    let (message, index) = (args.message, args.index);
    let Some(content) = attachment_content(&store, message, index)? else {
        return Err(refuse(format!(
            "message {message} has no attachment {index}"
        )));
    };
    write_output(args.output.as_deref(), &content)?;
    Ok(ExitCode::SUCCESS)
}

/// The bytes of attachment `index` (from 1) of message row `message`,
/// decoded from the raw message when that is where they are.
pub(super) fn attachment_content(
    store: &Store,
    message: i64,
    index: usize,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(stored) = store.attachment(message, index)? else {
        return Ok(None);
    };
    Ok(match stored.bytes {
        AttachmentBytes::Stored(bytes) => Some(bytes),
        AttachmentBytes::InRaw { raw, part } => {
            crate::parse::attachment(&raw, part).map(|a| a.content)
        }
    })
}

/// List every message received; what postdesk sent is in `outbox` and
/// `show`.
pub(super) fn messages(args: MessagesArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&args.common)?;
    let rows = store.inbound_messages()?;
    if args.json {
        print_json(&serde_json::Value::Array(
            rows.iter().map(report::message_json).collect(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for m in &rows {
        writeln!(
            out,
            "{:>6} {:<11} {:<30} {} {}",
            m.id,
            printable(&m.state),
            printable(&m.from),
            printable(&m.subject),
            m.flag
                .as_deref()
                .map(|f| format!("[{}]", printable(f)))
                .unwrap_or_default()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Show how a message would be threaded and routed, changing nothing.
pub(super) fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.common)?;
    let file = &args.file;
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let outcome = crate::explain::run(Arc::new(cfg), raw, args.rcpt, args.mail_from)?;
    if args.json {
        print_json(&outcome)?;
    } else {
        print!("{}", crate::explain::text(&outcome));
    }
    Ok(ExitCode::SUCCESS)
}
