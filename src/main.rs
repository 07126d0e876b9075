//! The `postdesk` command: serve, check, ingest, tickets, show, messages,
//! explain. Sets up tracing, parses the arguments and runs the subcommand
//! (the grammar and one function per subcommand live in `postdesk::cli`).

use std::process::ExitCode;

use clap::Parser;

use postdesk::cli::{self, Cli};
use postdesk::logging;

fn main() -> ExitCode {
    logging::init();
    cli::run(Cli::parse())
}
