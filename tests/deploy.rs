//! What `contrib/` ships for running postdesk on a real machine: the
//! systemd unit passes `systemd-analyze verify` with its `ExecStart`
//! pointed at the built binary, sets the hardening the README promises,
//! and stops the server with the signal `postdesk serve` drains on, within
//! its stop timeout; `postdesk ingest -` (the MTA pipe transport) answers
//! with the exit codes an MTA acts on.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{BIN, Env, Options, REPO, TestServer, fixture};

const UNIT: &str = "contrib/systemd/postdesk.service";

/// The path `ExecStart` names in the shipped unit.
const INSTALLED_BIN: &str = "/usr/local/bin/postdesk";

fn unit_text() -> String {
    std::fs::read_to_string(Path::new(REPO).join(UNIT)).expect("read the unit")
}

/// Every `Key=value` of the unit, in order (comments and sections left
/// out); a key may repeat.
fn directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not a directive: {l}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

fn directive(text: &str, key: &str) -> String {
    let found: Vec<String> = directives(text)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{key} should be set once in {UNIT}: {found:?}"
    );
    found.into_iter().next().unwrap_or_default()
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let text = unit_text();
    assert!(text.contains(INSTALLED_BIN));
    // verify checks that ExecStart's binary exists: point it at this build.
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = dir.path().join("postdesk.service");
    std::fs::write(&unit, text.replace(INSTALLED_BIN, BIN)).expect("write unit copy");
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify")
        .arg("--man=no")
        .arg(&unit)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = common::run_command(cmd, None, "systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", out.status);
    // An unknown key or a bad value is only a warning (exit 0), naming the
    // unit: there must be none.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("postdesk.service"))
        .collect();
    assert!(about_unit.is_empty(), "{stderr}");

    // And the check can fail: a typo in a key is reported.
    std::fs::write(
        &unit,
        text.replace(INSTALLED_BIN, BIN)
            .replace("ProtectSystem=strict", "ProtectSystem=strickt"),
    )
    .expect("write broken unit");
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify")
        .arg("--man=no")
        .arg(&unit)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = common::run_command(cmd, None, "systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("postdesk.service"), "{stderr}");
}

#[test]
fn systemd_unit_runs_as_its_own_user_and_writes_only_the_data_directory() {
    let text = unit_text();
    assert_eq!(directive(&text, "User"), "postdesk");
    assert_eq!(directive(&text, "ProtectSystem"), "strict");
    assert_eq!(directive(&text, "NoNewPrivileges"), "yes");
    assert_eq!(directive(&text, "Restart"), "on-failure");
    assert_eq!(directive(&text, "PrivateTmp"), "yes");
    assert_eq!(directive(&text, "ProtectHome"), "yes");
    let exec = directive(&text, "ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(args[..2], [INSTALLED_BIN, "serve"]);
    let data = args
        .iter()
        .position(|a| *a == "--data")
        .map(|i| args[i + 1])
        .expect("ExecStart names --data");
    // The one writable path is the data directory ExecStart uses.
    assert_eq!(directive(&text, "ReadWritePaths"), data);
    assert_eq!(
        Path::new(data).file_name().and_then(|n| n.to_str()),
        Some(directive(&text, "StateDirectory").as_str())
    );
    // The ExecStart command line is one the binary accepts.
    let config = args
        .iter()
        .position(|a| *a == "--config")
        .map(|i| args[i + 1])
        .expect("ExecStart names --config");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config", config, "--data", data, "--help"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = common::run_command(cmd, None, "postdesk serve --help");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `KillSignal=SIGTERM` as a signal number.
fn signal_number(name: &str) -> i32 {
    match name {
        "SIGTERM" => libc::SIGTERM,
        "SIGINT" => libc::SIGINT,
        other => panic!("postdesk serve drains on SIGTERM or SIGINT, the unit sends {other}"),
    }
}

#[test]
fn the_units_stop_signal_drains_the_server_within_its_stop_timeout() {
    let text = unit_text();
    let signal = signal_number(&directive(&text, "KillSignal"));
    let timeout: u64 = directive(&text, "TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in seconds");
    let mut server = TestServer::start();
    server.deliver(&[common::Mail::text(
        "frank@customer.example.org",
        "Before the stop",
        "stop-1@customer.example.org",
        "Hello.\n",
    )]);
    server.signal(signal);
    let status = server.wait_exit(Duration::from_secs(timeout));
    assert!(status.success(), "postdesk serve exited with {status}");
    assert!(
        server.log_lines("stopped") >= 1,
        "no drain logged:\n{}",
        server.stderr()
    );
    assert_eq!(server.env.tickets_json().len(), 1);
}

// ---------------------------------------------------------------------------
// `postdesk ingest -` as an MTA's pipe transport
// ---------------------------------------------------------------------------

fn ingest_stdin(env: &Env, input: &[u8]) -> (Option<i32>, String) {
    let out = env.run_with_stdin(&["ingest", "-"], input);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ingest_exits_75_when_the_store_cannot_be_opened_so_the_mta_retries() {
    let env = Env::new(&Options::default());
    // The data directory is a file: nothing can be stored.
    std::fs::remove_dir(&env.data_dir).expect("remove data dir");
    std::fs::write(&env.data_dir, "not a directory").expect("write file");
    let (code, stderr) = ingest_stdin(&env, &fixture("ingest/one.eml"));
    assert_eq!(code, Some(75), "{stderr}");
    // The MTA retries later, when the store is back: then it is stored.
    std::fs::remove_file(&env.data_dir).expect("remove file");
    let (code, stderr) = ingest_stdin(&env, &fixture("ingest/one.eml"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(env.messages_json().len(), 1);
}

#[test]
fn ingest_exits_75_when_the_configuration_has_an_error() {
    let env = Env::new(&Options::default());
    let rules = std::fs::read_to_string(env.config_dir.join("rules.toml")).expect("rules");
    env.write_config(
        "rules.toml",
        &format!("{rules}\n[limits]\nmax_mesage_size = 10\n"),
    );
    let (code, stderr) = ingest_stdin(&env, &fixture("ingest/one.eml"));
    assert_eq!(code, Some(75), "{stderr}");
    assert!(
        stderr.contains("rules.toml:"),
        "the error names its place: {stderr}"
    );
}

#[test]
fn ingest_exits_65_for_input_that_is_not_mail_so_the_mta_bounces_it() {
    let env = Env::new(&Options::default());
    let (code, stderr) = ingest_stdin(&env, b"");
    assert_eq!(code, Some(65), "{stderr}");
    let (code, stderr) = ingest_stdin(&env, b"no header here, only words\n");
    assert_eq!(code, Some(65), "{stderr}");
}
