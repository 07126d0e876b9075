//! `postdesk backup FILE` (the store copied to one file, safe while the
//! server runs) and `postdesk restore FILE` (the store replaced by a
//! checked backup, the replaced one kept aside; refused while a server or
//! an ingest uses the data directory). The work is in
//! [`crate::store::backup`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{Common, load, refuse};
use crate::logging;
use crate::store::backup::{self, Contents};

#[derive(Args)]
pub(super) struct BackupArgs {
    #[command(flatten)]
    common: Common,
    /// The backup file to write (a new file, mode 0600; never overwritten).
    file: PathBuf,
}

#[derive(Args)]
pub(super) struct RestoreArgs {
    #[command(flatten)]
    common: Common,
    /// A file written by `postdesk backup`.
    file: PathBuf,
}

/// `backup` and `restore` work on the SQLite store; a PostgreSQL store has
/// PostgreSQL's own tools.
fn sqlite_only(cfg: &crate::config::Config) -> anyhow::Result<()> {
    if cfg.store.backend == crate::config::store::Backend::Postgres {
        return Err(refuse(
            "the store is PostgreSQL ([store] backend = \"postgres\"): back it up with pg_dump \
             and restore it with pg_restore (or psql for a plain dump)",
        ));
    }
    Ok(())
}

/// Copy the store to a new file.
pub(super) fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.common)?;
    sqlite_only(&cfg)?;
    let data_dir = cfg.data_dir();
    match backup::backup(&data_dir, &args.file) {
        Ok(c) => {
            println!("{}: {}", args.file.display(), describe(&c));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(refuse(logging::chain(&e))),
    }
}

/// Replace the store with a backup.
pub(super) fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.common)?;
    sqlite_only(&cfg)?;
    let data_dir = cfg.data_dir();
    match backup::restore(&data_dir, &args.file) {
        Ok(r) => {
            let db = crate::store::db_path(&data_dir);
            let migrated = if r.restored_version == r.contents.schema_version {
                String::new()
            } else {
                format!(" (migrated from schema version {})", r.restored_version)
            };
            println!(
                "restored {} into {}: {}{migrated}",
                args.file.display(),
                db.display(),
                describe(&r.contents)
            );
            if let Some(old) = r.replaced {
                println!("the store it replaced is kept as {}", old.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(refuse(logging::chain(&e))),
    }
}

fn describe(c: &Contents) -> String {
    format!(
        "{} tickets, {} messages, schema version {}, {} octets",
        c.tickets, c.messages, c.schema_version, c.bytes
    )
}
