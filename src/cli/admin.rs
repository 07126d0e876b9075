//! The commands about what postdesk does on its own: `digest run`,
//! `notices`, `mailboxes`, `outbox` (and `outbox retry`), `client list`,
//! `client unsuspend` and `rescan`.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Common, load, open, print_json, refuse};
use crate::domain::Time;
use crate::report::{self, printable, printable_lines};
use crate::store::{RetryOutcome, Store};

#[derive(Subcommand)]
pub(super) enum DigestAction {
    /// Compose the digests now (each lists what is not in an earlier one).
    Run(DigestRunArgs),
}

#[derive(Args)]
pub(super) struct DigestRunArgs {
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
}

#[derive(Args)]
pub(super) struct NoticesArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct MailboxesArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct OutboxArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    action: Option<OutboxAction>,
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
pub(super) enum ClientAction {
    /// Lift a client's suspension (every queue, or only `--queue`): their
    /// mail is answered again. Recorded on the Compliance Alert ticket.
    Unsuspend(UnsuspendArgs),
    /// Suspended clients (with `--all`, lifted suspensions too) and how
    /// many of each client's messages were flagged.
    List(ClientListArgs),
}

#[derive(Args)]
pub(super) struct UnsuspendArgs {
    #[command(flatten)]
    common: Common,
    /// The client's e-mail address.
    address: String,
    /// Only this queue.
    #[arg(long)]
    queue: Option<String>,
}

#[derive(Args)]
pub(super) struct ClientListArgs {
    #[command(flatten)]
    common: Common,
    /// Lifted suspensions too.
    #[arg(long)]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct RescanArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Compose the digests now (or, with `--dry-run`, only print them).
pub(super) fn digest_run(args: DigestRunArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.common)?;
    if let Some(c) = &args.client
        && c != "admin"
        && !cfg.clients.iter().any(|k| &k.name == c)
    {
        return Err(refuse(format!("no client {c} (mailboxes/{c}.toml)")));
    }
    let mut store = Store::open(cfg.store_location())?;
    let now = crate::clock::from_env().now();
    let digests =
        crate::scheduler::run_now(&mut store, &cfg, args.client.as_deref(), now, args.dry_run)?;
    if args.json {
        print_json(&serde_json::to_value(&digests)?)?;
        return Ok(ExitCode::SUCCESS);
    }
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
    Ok(ExitCode::SUCCESS)
}

/// Alert and digest mails composed so far, oldest first.
pub(super) fn notices(args: NoticesArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&args.common)?;
    let notices = store.notices(0)?;
    if args.json {
        print_json(&serde_json::to_value(&notices)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for n in &notices {
        println!(
            "{:>5} {:<17} {} -> {}",
            n.id,
            printable(&n.kind),
            printable(&n.subject),
            printable(&n.recipients.join(", "))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Polled mailboxes: stored UID state and health.
pub(super) fn mailboxes(args: MailboxesArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(&args.common)?;
    let states = store.mailbox_states()?;
    if args.json {
        print_json(&serde_json::Value::Array(
            states
                .iter()
                .map(|st| report::mailbox_json(&cfg, st))
                .collect(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    for st in &states {
        let broken = st.health.as_ref().is_some_and(|h| h.broken);
        println!(
            "{:<40} last_uid {:<8} {}",
            printable(&st.mailbox),
            st.sync.as_ref().map_or(0, |s| s.last_uid),
            if broken { "BROKEN" } else { "ok" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Mail postdesk sent or will send; `outbox retry ID` queues a failed one
/// again.
pub(super) fn outbox(args: OutboxArgs) -> anyhow::Result<ExitCode> {
    let (cfg, mut store) = open(&args.common)?;
    if let Some(OutboxAction::Retry { id }) = args.action {
        return retry(&mut store, id);
    }
    let rows = store.outbox()?;
    if args.json {
        print_json(&serde_json::Value::Array(
            rows.iter()
                .map(|r| crate::report::outbox::row_json(&cfg, r))
                .collect(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for r in &rows {
        writeln!(out, "{}", crate::report::outbox::row_line(&cfg, r))?;
    }
    if rows.is_empty() {
        writeln!(out, "outbox empty")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Queue outbox row `id` again, due now.
fn retry(store: &mut Store, id: i64) -> anyhow::Result<ExitCode> {
    match store.retry_outbox(id, Time::now())? {
        None => Err(refuse(format!("no outbox row {id}"))),
        Some(RetryOutcome::Requeued) => {
            println!("outbox {id}: queued again");
            Ok(ExitCode::SUCCESS)
        }
        Some(RetryOutcome::AlreadySent) => Err(refuse(format!(
            "outbox {id} was already sent; nothing to retry"
        ))),
        Some(RetryOutcome::Pending) => {
            println!("outbox {id}: already queued");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Lift a client's suspension, in every queue or one.
pub(super) fn unsuspend(args: UnsuspendArgs) -> anyhow::Result<ExitCode> {
    let (_, mut store) = open(&args.common)?;
    let (address, queue) = (&args.address, args.queue.as_deref());
    let now = Time::now();
    let lifted = store.write(|tx| crate::compliance::unsuspend(tx, address, queue, "cli", now))?;
    if lifted.is_empty() {
        return Err(refuse(format!(
            "{} is not suspended{}",
            printable(address),
            queue
                .map(|q| format!(" in queue {}", printable(q)))
                .unwrap_or_default()
        )));
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

/// Suspended clients and how many of each client's messages were flagged.
pub(super) fn client_list(args: ClientListArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open(&args.common)?;
    let suspensions = store.suspensions(!args.all)?;
    let counts = store.flag_counts()?;
    if args.json {
        let flagged: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(c, n)| (c.clone(), serde_json::Value::from(*n)))
            .collect();
        print_json(&serde_json::json!({
            "suspensions": suspensions,
            "flagged_messages": flagged,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
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
    Ok(ExitCode::SUCCESS)
}

/// Rescan stored customer messages under the current detector rules.
pub(super) fn rescan(args: RescanArgs) -> anyhow::Result<ExitCode> {
    let (cfg, mut store) = open(&args.common)?;
    let cfg = std::sync::Arc::new(cfg);
    let now = Time::now();
    let (scanned, flags) = crate::compliance::rescan_all(&mut store, &cfg, now)?;
    let version = cfg.detector_engine.version();
    if args.json {
        print_json(&serde_json::json!({
            "version": version,
            "scanned": scanned,
            "flagged": flags,
        }))?;
    } else {
        println!("rules {version}: {scanned} message(s) scanned, {flags} flagged");
    }
    Ok(ExitCode::SUCCESS)
}
