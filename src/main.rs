//! The `postdesk` command: serve, check, ingest, tickets, show, messages,
//! explain. Parses arguments, sets up tracing, and calls into the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use postdesk::config::{self, Config};
use postdesk::report::{printable, printable_lines};
use postdesk::store::{Store, TicketFilter, TicketRef};
use postdesk::{app, logging, report};

#[derive(Parser)]
#[command(name = "postdesk", version, about = "A mail-native helpdesk server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Directory holding rules.toml, mailboxes/ and templates/.
    #[arg(long, global = true, default_value = ".")]
    config: PathBuf,
    /// Data directory (overrides `server.data_dir`).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SMTP/LMTP listeners and the pipeline.
    Serve {
        #[command(flatten)]
        common: Common,
        /// SMTP listen address (overrides rules.toml).
        #[arg(long)]
        smtp: Option<SocketAddr>,
        /// LMTP listen address (overrides rules.toml).
        #[arg(long)]
        lmtp: Option<SocketAddr>,
    },
    /// Validate the configuration; errors as file:line:column.
    Check {
        #[command(flatten)]
        common: Common,
    },
    /// Store a .eml file, an mbox, a Maildir, or stdin (`-`); a message over
    /// `max_message_size` is refused (exit 65), the others are stored.
    Ingest {
        #[command(flatten)]
        common: Common,
        /// File (or FIFO), folder, or `-` for stdin; input starting with
        /// `From ` is read as an mbox.
        path: String,
    },
    /// List tickets.
    Tickets {
        #[command(flatten)]
        common: Common,
        /// Only tickets with this status.
        #[arg(long)]
        status: Option<String>,
        /// Only tickets in this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket with its messages (by number, e.g. 1001 or #1001, or row id).
    Show {
        #[command(flatten)]
        common: Common,
        /// Ticket number or id.
        ticket: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Write the attachment NAME of the ticket's messages (the newest of
        /// that name) to standard output, or to the file given by -o.
        #[arg(long, value_name = "NAME")]
        attachment: Option<String>,
        /// With --attachment: the file to write (created, never overwritten).
        #[arg(
            short = 'o',
            long = "output",
            value_name = "FILE",
            requires = "attachment"
        )]
        output: Option<std::path::PathBuf>,
    },
    /// Write one attachment of a stored message to stdout (or a file).
    Attachment {
        #[command(flatten)]
        common: Common,
        /// The message's row id (`id` in `messages --json` and `show --json`).
        message: i64,
        /// Which attachment, from 1, in the order `show` lists them.
        index: usize,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// List every message received, ticketed or not (sent mail: `outbox`).
    Messages {
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show how a message would be threaded and routed, changing nothing.
    Explain {
        #[command(flatten)]
        common: Common,
        /// The .eml file.
        file: PathBuf,
        /// An envelope recipient (RCPT TO), repeatable; default: none, as
        /// for `ingest` (recipients then come from To/Cc).
        #[arg(long)]
        rcpt: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Client and admin digests (issue 6).
    Digest {
        #[command(subcommand)]
        action: DigestAction,
    },
    /// Alert and digest mails composed so far, oldest first.
    Notices {
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Polled mailboxes: stored UID state and health.
    Mailboxes {
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mail postdesk sent or will send: queued, sent, failed.
    Outbox {
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Clients the bypass detector suspended: list, lift.
    Client {
        #[command(subcommand)]
        action: ClientAction,
    },
    /// Rescan stored customer messages of in-scope tickets under the current
    /// detector rules now (the server does it at start, on every change of
    /// the rules and every `rescan_interval_minutes`).
    Rescan {
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Close a ticket (by number, e.g. 1001 or #1001, or row id): a later
    /// reply reopens it within the reopen window, else opens a linked ticket.
    Close {
        #[command(flatten)]
        common: Common,
        /// Ticket number or id.
        ticket: String,
    },
}

#[derive(Subcommand)]
enum ClientAction {
    /// Lift a client's suspension (every queue, or only `--queue`): their
    /// mail is answered again. Recorded on the Compliance Alert ticket.
    Unsuspend {
        #[command(flatten)]
        common: Common,
        /// The client's e-mail address.
        address: String,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
    },
    /// Suspended clients (with `--all`, lifted suspensions too) and how
    /// many of each client's messages were flagged.
    List {
        #[command(flatten)]
        common: Common,
        /// Lifted suspensions too.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Queue a failed mail again, due now (the server sends it within its
    /// poll interval).
    Retry {
        /// The outbox row id (see `postdesk outbox`).
        id: i64,
    },
}

#[derive(Subcommand)]
enum DigestAction {
    /// Compose the digests now (each lists what is not in an earlier one).
    Run {
        #[command(flatten)]
        common: Common,
        /// Only this client (its file name), or `admin`.
        #[arg(long)]
        client: Option<String>,
        /// Print the digests without recording or sending anything.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // `postdesk tickets | head`: the reader went away, which is not an
        // error worth a message.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postdesk: {}", logging::chain(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

/// The bytes of attachment `index` (from 1) of message row `message`,
/// decoded from the raw message when that is where they are.
fn attachment_content(
    store: &Store,
    message: i64,
    index: usize,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(stored) = store.attachment(message, index)? else {
        return Ok(None);
    };
    Ok(match stored.bytes {
        postdesk::store::AttachmentBytes::Stored(bytes) => Some(bytes),
        postdesk::store::AttachmentBytes::InRaw { raw, part } => {
            postdesk::parse::attachment(&raw, part).map(|a| a.content)
        }
    })
}

/// Write `bytes` to `path` (created 0600, never overwriting a file), or to
/// standard output.
fn write_output(path: Option<&std::path::Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            let mut f = config::create_private(path, false)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(bytes)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => std::io::stdout().lock().write_all(bytes)?,
    }
    Ok(())
}

/// Load the config or print its diagnostics.
fn load(common: &Common) -> anyhow::Result<Result<Config, ExitCode>> {
    match config::load(&common.config) {
        Ok(mut cfg) => {
            if let Some(d) = &common.data {
                cfg.server.data_dir = std::path::absolute(d).unwrap_or_else(|_| d.clone());
            }
            // The secret `serve` generated, when none is configured, so
            // `explain` and `ingest` verify what the server signs.
            if let Err(e) = cfg.use_generated_secret(false) {
                eprintln!("postdesk: {e}");
                return Ok(Err(ExitCode::from(1)));
            }
            Ok(Ok(cfg))
        }
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!(
                    "{}:{}:{}: {}",
                    d.file.display(),
                    d.line,
                    d.column,
                    d.message
                );
            }
            Ok(Err(ExitCode::from(1)))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { common, smtp, lmtp } => {
            let mut cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            if smtp.is_some() {
                cfg.server.smtp = smtp;
            }
            if lmtp.is_some() {
                cfg.server.lmtp = lmtp;
            }
            match cfg.use_generated_secret(true) {
                Ok(Some(path)) => tracing::info!(
                    file = %path.display(),
                    "no [threading] token_secret_file configured: generated a token secret for \
                     signed reply addresses"
                ),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("postdesk: the generated token secret: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
            runtime()?.block_on(app::serve(cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { common } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let mailboxes: usize = cfg.clients.iter().map(|c| c.mailboxes.len()).sum();
            println!(
                "{}: ok ({} client files, {} mailboxes, schema version {})",
                common.config.join("rules.toml").display(),
                cfg.clients.len(),
                mailboxes,
                postdesk::store::SCHEMA_VERSION
            );
            for line in postdesk::report::outbox::check_summary(&cfg) {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest { common, path } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let result = runtime()?.block_on(app::ingest(cfg, &path));
            match result {
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
                    Ok(ExitCode::from(75))
                }
            }
        }
        Command::Tickets {
            common,
            status,
            queue,
            json,
        } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let store = Store::open(&cfg.data_dir())?;
            let rows = store.list_tickets(&TicketFilter { status, queue })?;
            if json {
                print_json(&serde_json::Value::Array(
                    rows.iter().map(|t| report::ticket_json(&cfg, t)).collect(),
                ))?;
            } else {
                let mut out = std::io::stdout().lock();
                for t in &rows {
                    writeln!(out, "{}", report::ticket_line(&cfg, t))?;
                }
                if rows.is_empty() {
                    writeln!(out, "no tickets")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show {
            common,
            ticket,
            json,
            attachment,
            output,
        } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let store = Store::open(&cfg.data_dir())?;
            let Some(detail) = find_ticket(&cfg, &store, &ticket)? else {
                eprintln!("postdesk: no ticket {ticket}");
                return Ok(ExitCode::from(1));
            };
            if let Some(name) = attachment {
                let id = postdesk::ids::TicketId(detail.ticket.id);
                let content = match store.attachment_named(id, &name)? {
                    Some((message, index)) => attachment_content(&store, message, index)?,
                    None => None,
                };
                let Some(content) = content else {
                    eprintln!("postdesk: ticket {ticket} has no attachment named {name:?}");
                    return Ok(ExitCode::from(1));
                };
                write_output(output.as_deref(), &content)?;
                return Ok(ExitCode::SUCCESS);
            }
            if json {
                print_json(&report::detail_json(&cfg, &detail))?;
            } else {
                write!(
                    std::io::stdout().lock(),
                    "{}",
                    report::detail_text(&cfg, &detail)
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Attachment {
            common,
            message,
            index,
            output,
        } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let store = Store::open(&cfg.data_dir())?;
            let Some(content) = attachment_content(&store, message, index)? else {
                eprintln!("postdesk: message {message} has no attachment {index}");
                return Ok(ExitCode::from(1));
            };
            write_output(output.as_deref(), &content)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Messages { common, json } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let store = Store::open(&cfg.data_dir())?;
            // Mail received; what postdesk sent is in `outbox` and `show`.
            let rows = store.inbound_messages()?;
            if json {
                print_json(&serde_json::Value::Array(
                    rows.iter().map(report::message_json).collect(),
                ))?;
            } else {
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
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Close { common, ticket } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let mut store = Store::open(&cfg.data_dir())?;
            let n = ticket_arg(&ticket)?;
            let now = jiff::Timestamp::now().as_second();
            let changed = match store.set_status(TicketRef::Number(n), "Closed", "cli", now)? {
                Some(c) => Some(c),
                None => store.set_status(TicketRef::Id(n), "Closed", "cli", now)?,
            };
            let Some(c) = changed else {
                eprintln!("postdesk: no ticket {ticket}");
                return Ok(ExitCode::from(1));
            };
            println!(
                "{}: {} -> {}",
                cfg.tickets.format_number(c.number),
                printable(&c.from),
                printable(&c.to)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Digest {
            action:
                DigestAction::Run {
                    common,
                    client,
                    dry_run,
                    json,
                },
        } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            if let Some(c) = &client
                && c != "admin"
                && !cfg.clients.iter().any(|k| &k.name == c)
            {
                eprintln!("postdesk: no client {c} (mailboxes/{c}.toml)");
                return Ok(ExitCode::from(1));
            }
            let mut store = Store::open(&cfg.data_dir())?;
            let now = postdesk::clock::from_env().now();
            let digests =
                postdesk::scheduler::run_now(&mut store, &cfg, client.as_deref(), now, dry_run)?;
            if json {
                print_json(&serde_json::to_value(&digests)?)?;
            } else {
                for d in &digests {
                    println!(
                        "To: {}\nSubject: {}\n\n{}",
                        printable(&d.recipients.join(", ")),
                        printable(&d.subject),
                        printable_lines(&d.body)
                    );
                }
                if digests.is_empty() {
                    println!("nothing to send");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Client {
            action:
                ClientAction::Unsuspend {
                    common,
                    address,
                    queue,
                },
        } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let mut store = Store::open(&cfg.data_dir())?;
            let now = jiff::Timestamp::now().as_second();
            let lifted = store.write(|tx| {
                postdesk::compliance::unsuspend(tx, &address, queue.as_deref(), "cli", now)
            })?;
            if lifted.is_empty() {
                eprintln!(
                    "postdesk: {} is not suspended{}",
                    printable(&address),
                    queue
                        .map(|q| format!(" in queue {}", printable(&q)))
                        .unwrap_or_default()
                );
                return Ok(ExitCode::from(1));
            }
            for s in &lifted {
                println!(
                    "{}: access to queue {} restored",
                    printable(&s.client),
                    printable(&s.queue)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Client {
            action: ClientAction::List { common, all, json },
        } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let store = Store::open(&cfg.data_dir())?;
            let suspensions = store.suspensions(!all)?;
            let counts = store.flag_counts()?;
            if json {
                let flagged: serde_json::Map<String, serde_json::Value> = counts
                    .iter()
                    .map(|(c, n)| (c.clone(), serde_json::Value::from(*n)))
                    .collect();
                print_json(&serde_json::json!({
                    "suspensions": suspensions,
                    "flagged_messages": flagged,
                }))?;
            } else {
                for s in &suspensions {
                    let state = match s.lifted_at {
                        Some(_) => format!("lifted by {}", printable(&s.lifted_by)),
                        None => "suspended".to_owned(),
                    };
                    println!(
                        "{:<40} {:<12} {state}",
                        printable(&s.client),
                        printable(&s.queue)
                    );
                }
                if suspensions.is_empty() {
                    println!("no suspended clients");
                }
                for (client, n) in &counts {
                    println!("flagged  {}: {n} message(s)", printable(client));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rescan { common, json } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let mut store = Store::open(&cfg.data_dir())?;
            let now = jiff::Timestamp::now().as_second();
            let (scanned, flags) = postdesk::compliance::rescan_all(&mut store, &cfg, now)?;
            if json {
                print_json(&serde_json::json!({
                    "version": cfg.detector_engine.version(),
                    "scanned": scanned,
                    "flagged": flags,
                }))?;
            } else {
                println!(
                    "rules {}: {scanned} message(s) scanned, {flags} flagged",
                    cfg.detector_engine.version()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Notices { common, json } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let store = Store::open(&cfg.data_dir())?;
            let notices = store.notices(0)?;
            if json {
                print_json(&serde_json::to_value(&notices)?)?;
            } else {
                for n in &notices {
                    println!(
                        "{:>5} {:<17} {} -> {}",
                        n.id,
                        printable(&n.kind),
                        printable(&n.subject),
                        printable(&n.recipients.join(", "))
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Mailboxes { common, json } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let store = Store::open(&cfg.data_dir())?;
            let states = store.mailbox_states()?;
            if json {
                print_json(&serde_json::Value::Array(
                    states
                        .iter()
                        .map(|st| report::mailbox_json(&cfg, st))
                        .collect(),
                ))?;
            } else {
                for st in &states {
                    let broken = st.health.as_ref().is_some_and(|h| h.broken);
                    println!(
                        "{:<40} last_uid {:<8} {}",
                        printable(&st.mailbox),
                        st.sync.as_ref().map_or(0, |s| s.last_uid),
                        if broken { "BROKEN" } else { "ok" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox {
            common,
            json,
            action,
        } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let mut store = Store::open(&cfg.data_dir())?;
            if let Some(OutboxAction::Retry { id }) = action {
                let now_ms = jiff::Timestamp::now().as_millisecond();
                use postdesk::store::RetryOutcome;
                let code = match store.retry_outbox(id, now_ms)? {
                    None => {
                        eprintln!("postdesk: no outbox row {id}");
                        1
                    }
                    Some(RetryOutcome::Requeued) => {
                        println!("outbox {id}: queued again");
                        0
                    }
                    Some(RetryOutcome::AlreadySent) => {
                        eprintln!("postdesk: outbox {id} was already sent; nothing to retry");
                        1
                    }
                    Some(RetryOutcome::Pending) => {
                        println!("outbox {id}: already queued");
                        0
                    }
                };
                return Ok(ExitCode::from(code));
            }
            let rows = store.outbox()?;
            if json {
                print_json(&serde_json::Value::Array(
                    rows.iter()
                        .map(|r| postdesk::report::outbox::row_json(&cfg, r))
                        .collect(),
                ))?;
            } else {
                let mut out = std::io::stdout().lock();
                for r in &rows {
                    writeln!(out, "{}", postdesk::report::outbox::row_line(&cfg, r))?;
                }
                if rows.is_empty() {
                    writeln!(out, "outbox empty")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain {
            common,
            file,
            rcpt,
            json,
        } => {
            let cfg = match load(&common)? {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let raw =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let outcome = app::explain(Arc::new(cfg), raw, rcpt)?;
            if json {
                print_json(&outcome)?;
            } else {
                print!("{}", app::explain_text(&outcome));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The number in `1001`, `#1001` (the displayed form) or a row id.
fn ticket_arg(arg: &str) -> anyhow::Result<i64> {
    let digits: String = arg.chars().filter(|c| c.is_ascii_digit()).collect();
    digits
        .parse()
        .with_context(|| format!("{arg:?} is not a ticket number or id"))
}

/// `1001`, `#1001` (the displayed form) or a row id.
fn find_ticket(
    cfg: &Config,
    store: &Store,
    arg: &str,
) -> anyhow::Result<Option<postdesk::store::TicketDetail>> {
    let digits: String = arg.chars().filter(|c| c.is_ascii_digit()).collect();
    let n: i64 = digits
        .parse()
        .with_context(|| format!("{arg:?} is not a ticket number or id"))?;
    if let Some(d) = store.ticket(TicketRef::Number(n))? {
        return Ok(Some(d));
    }
    let _ = cfg;
    Ok(store.ticket(TicketRef::Id(n))?)
}
