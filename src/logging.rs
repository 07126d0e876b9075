//! Tracing setup and the one helper that logs an error with its source chain.

use std::error::Error;

/// Log `err` at error level with every cause in its chain.
pub fn log_error(what: &'static str, err: &dyn Error) {
    tracing::error!(error = %chain(err), "{what}");
}

/// `err: cause: cause...` on one line.
pub fn chain(err: &dyn Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Install the stderr subscriber; `RUST_LOG` controls the filter (default
/// `info`).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
