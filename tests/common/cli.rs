//! The CLI under test: `postdesk ARGS --config DIR --data DIR` run to
//! completion under a deadline, with the server's environment variables, with helpers that check the exit status
//! and parse `--json` output.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::server::{BIN, Env};
use super::wait::wait_with_deadline;

/// How long a CLI command (`tickets`, `show`, `ingest`, ...) may take.
pub const CLI_DEADLINE: Duration = Duration::from_secs(60);

impl Env {
    /// `postdesk ARGS --config DIR --data DIR`, stdin closed, output piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--config")
            .arg(&self.config_dir)
            .arg("--data")
            .arg(&self.data_dir)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // The server's variables (a clock file): one clock for the
            // server and the commands run beside it.
            .envs(self.server_vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Run a CLI command to completion (with a deadline) and return its output.
    pub fn run(&self, args: &[&str]) -> Output {
        run_command(
            self.command(args),
            None,
            &format!("postdesk {}", args.join(" ")),
        )
    }

    /// Run a CLI command with `stdin` piped in.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        run_command(cmd, Some(stdin), &format!("postdesk {}", args.join(" ")))
    }

    /// Run a CLI command that must exit 0; return its stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "postdesk {} failed with {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("stdout is UTF-8")
    }

    /// Run a `--json` command and parse its stdout.
    pub fn run_json(&self, args: &[&str]) -> Value {
        let stdout = self.run_ok(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "postdesk {} printed invalid JSON ({e}):\n{stdout}",
                args.join(" ")
            )
        })
    }

    /// `postdesk tickets --json`.
    pub fn tickets_json(&self) -> Vec<Value> {
        as_array(self.run_json(&["tickets", "--json"]), "tickets --json")
    }

    /// `postdesk show ID_OR_NUMBER --json`.
    pub fn show_json(&self, id_or_number: &str) -> Value {
        let v = self.run_json(&["show", id_or_number, "--json"]);
        assert!(v.is_object(), "show --json did not print an object: {v}");
        v
    }

    /// `postdesk messages --json`.
    pub fn messages_json(&self) -> Vec<Value> {
        as_array(self.run_json(&["messages", "--json"]), "messages --json")
    }
}

fn as_array(v: Value, what: &str) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("{what} did not print a JSON array: {other}"),
    }
}

/// Run `cmd` with an optional stdin, collecting output, under [`CLI_DEADLINE`].
/// stdout and stderr are drained on threads so a chatty child cannot block.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, what: &str) -> Output {
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let input = input.to_vec();
        // A writer thread: the child may print before it has read all input.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let out_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let status = wait_with_deadline(&mut child, CLI_DEADLINE, what);
    Output {
        status,
        stdout: out_t.join().expect("stdout reader"),
        stderr: err_t.join().expect("stderr reader"),
    }
}
