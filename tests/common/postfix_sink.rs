//! Postfix's `smtp-sink` as the SMTP server postdesk's alerts and digests
//! are delivered to: every message is dumped to a file in a temp dir.
//!
//! Started on a loopback port found by binding port 0 (retried if taken);
//! killed on drop. Root drops to `nobody` (smtp-sink insists), so the dump
//! directory is opened up to it.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running smtp-sink.
pub struct PostfixSink {
    dir: tempfile::TempDir,
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// Whether smtp-sink is installed.
pub fn available() -> bool {
    Path::new("/usr/sbin/smtp-sink").exists()
}

impl PostfixSink {
    /// Start a sink.
    pub fn start() -> PostfixSink {
        assert!(available(), "postfix's smtp-sink is not installed");
        let dir = tempfile::Builder::new()
            .prefix("postdesk-sink-")
            .tempdir()
            .expect("temp dir");
        let dump = dir.path().join("mail");
        fs::create_dir_all(&dump).expect("dump dir");
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
            fs::set_permissions(&dump, fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("port 0");
            let mut child = Command::new("/usr/sbin/smtp-sink")
                .arg("-u")
                .arg("nobody")
                .arg("-d")
                .arg(format!("{}/%Y%m%d%H%M%S.", dump.display()))
                .arg(format!("127.0.0.1:{port}"))
                .arg("64")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn smtp-sink");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return PostfixSink { dir, child, port };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("smtp-sink did not start");
    }

    /// The `[outbound]` table that delivers to this sink.
    pub fn outbound_toml(&self) -> String {
        format!(
            "[outbound]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\npoll_secs = 1\n\
             retry_initial_secs = 1\n",
            self.port
        )
    }

    /// Every message received so far (envelope lines and data), oldest
    /// first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = fs::read_dir(self.dir.path().join("mail"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }
}

impl Drop for PostfixSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
