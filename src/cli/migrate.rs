//! `postdesk migrate-store --to postgres://…`: copy the SQLite store of the
//! data directory into a PostgreSQL database (see `store::copy`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{Common, load, refuse};

#[derive(Args)]
pub(super) struct MigrateArgs {
    #[command(flatten)]
    common: Common,
    /// The PostgreSQL database: `postgres://user@host:port/database` (no
    /// password in it).
    #[arg(long)]
    to: String,
    /// The environment variable holding the database password.
    #[arg(long, conflicts_with = "password_file")]
    password_env: Option<String>,
    /// The file (mode 0600) holding the database password.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

pub(super) fn migrate_store(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.common)?;
    if cfg.store.backend != crate::config::store::Backend::Sqlite {
        return Err(refuse(
            "the configured store is PostgreSQL already: migrate-store copies an SQLite store",
        ));
    }
    let password = match (&args.password_env, &args.password_file) {
        (Some(var), _) => Some(
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    refuse(format!("environment variable `{var}` is not set or empty"))
                })?,
        ),
        (None, Some(file)) => {
            let bytes = crate::files::read_private_file(file)
                .map_err(|e| refuse(format!("{}: {e}", file.display())))?;
            Some(String::from_utf8_lossy(&bytes).trim_end().to_owned())
        }
        (None, None) => None,
    };
    let target = crate::store::pg::Target {
        url: args.to.clone(),
        password,
        node: cfg.store.node.clone(),
    };
    let data_dir = cfg.data_dir();
    if !crate::store::db_path(&data_dir).exists() {
        return Err(refuse(format!(
            "no store in {} to copy",
            data_dir.display()
        )));
    }
    println!("TABLE                       ROWS    COPIED  IN POSTGRESQL  CHECK");
    let tables = crate::store::copy::copy(&data_dir, &target, |t| {
        println!(
            "{:<22} {:>10} {:>9} {:>14}  {}",
            t.table,
            t.rows,
            t.copied,
            t.target_rows,
            if t.verified {
                "same rows, same hash"
            } else {
                "DIFFERS"
            }
        );
    })
    .map_err(refuse)?;
    let bad: Vec<&str> = tables
        .iter()
        .filter(|t| !t.verified)
        .map(|t| t.table.as_str())
        .collect();
    if bad.is_empty() {
        println!(
            "copied and verified: {} tables. Set [store] backend = \"postgres\" and url = \"{}\" (password_env or password_file) and start postdesk.",
            tables.len(),
            args.to
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "postdesk: these tables differ in PostgreSQL: {} (run migrate-store again; rows already there are kept)",
            bad.join(", ")
        );
        Ok(ExitCode::from(1))
    }
}
