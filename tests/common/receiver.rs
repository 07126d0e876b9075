//! A real HTTP receiver for webhooks: Python's `http.server` on loopback
//! (`tests/common/webhook_receiver.py`), answering by a mode the test sets
//! and logging every request it got.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::REPO;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request path.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: Value,
    /// Body text.
    pub body: String,
    /// What it answered (`200`, `503`, `stall`, ...).
    pub status: String,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers[name].as_str()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }
}

/// The receiver process; killed on drop.
pub struct Receiver {
    child: Option<Child>,
    /// Its port (kept across [`Receiver::stop`] and [`Receiver::start_again`]).
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Receiver {
    /// Start on a free port, answering 200.
    pub fn start() -> Receiver {
        let dir = tempfile::Builder::new()
            .prefix("postdesk-hook-")
            .tempdir()
            .expect("receiver temp dir");
        let (child, port) = spawn(dir.path(), 0);
        Receiver {
            child: Some(child),
            port,
            dir,
        }
    }

    /// Its URL with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answer later requests with `mode` (a status, or `stall`).
    pub fn set_mode(&self, mode: &str) {
        let tmp = self.dir.path().join("mode.tmp");
        std::fs::write(&tmp, mode).expect("write the mode");
        std::fs::rename(&tmp, self.dir.path().join("mode")).expect("rename the mode");
    }

    /// Stop listening (the port refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Listen again on the same port.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the receiver is running");
        let (child, port) = spawn(self.dir.path(), self.port);
        assert_eq!(port, self.port);
        self.child = Some(child);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        let text =
            std::fs::read_to_string(self.dir.path().join("requests.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("a request line");
                Request {
                    path: v["path"].as_str().unwrap_or("").to_owned(),
                    headers: v["headers"].clone(),
                    body: v["body"].as_str().unwrap_or("").to_owned(),
                    status: v["status"].as_str().unwrap_or("").to_owned(),
                }
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn script() -> PathBuf {
    Path::new(REPO).join("tests/common/webhook_receiver.py")
}

fn spawn(dir: &Path, port: u16) -> (Child, u16) {
    let mut child = Command::new("python3")
        .arg(script())
        .arg(dir)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn python3 webhook_receiver.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .expect("read the receiver's port");
    let v: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("webhook_receiver.py did not start ({e}): {line:?}"));
    let port = u16::try_from(v["port"].as_u64().expect("port")).expect("port fits");
    (child, port)
}
