//! A throwaway Dovecot IMAP server for the poller tests.
//!
//! [`Dovecot::start`] writes a config into its own temp dir (passwd-file
//! users with plain passwords, Maildir under the temp dir, `ssl = no` (or
//! TLS with a throwaway CA, [`Dovecot::start_tls`]), a
//! log file, no system services touched) and runs `dovecot -F` on a
//! loopback port found by binding port 0, retrying with another port if
//! Dovecot cannot bind it. Dropping the value kills the server.
//!
//! Mail goes in over IMAP (`APPEND`, Python's imaplib in
//! `tests/common/imap_client.py`), as a client's mail provider would
//! receive it; [`Dovecot::write_maildir`] drops files straight into a
//! Maildir for the bulk benchmark setup.
//!
//! Dovecot refuses to give mail processes uid 0, so when the tests run as
//! root the mail belongs to `nobody` and the temp dir is opened up to it.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::REPO;

/// A running Dovecot.
pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
    /// The IMAP port on 127.0.0.1 (STARTTLS offered when started with TLS).
    pub port: u16,
    /// The IMAPS (implicit TLS) port, 0 without TLS.
    pub tls_port: u16,
    /// The CA that signed the server's certificate (for `ca_file`), when
    /// started with TLS.
    pub ca_file: Option<PathBuf>,
    uid: u32,
    gid: u32,
}

/// Write `ca.pem` (a throwaway CA) and `cert.pem` / `key.pem` (a server
/// certificate for 127.0.0.1 and localhost signed by it) into `dir` with
/// the `openssl` command; returns the CA's path.
fn make_certificates(dir: &Path) -> PathBuf {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (contrib/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=postdesk test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n\
         keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .expect("write the extensions file");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    dir.join("ca.pem")
}

/// Whether Dovecot is installed.
pub fn available() -> bool {
    Path::new("/usr/sbin/dovecot").exists()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind port 0")
}

impl Dovecot {
    /// Start Dovecot with `users` (address, password), without TLS.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_with(users, false)
    }

    /// Start Dovecot with TLS as well: STARTTLS on [`Dovecot::port`],
    /// implicit TLS on [`Dovecot::tls_port`], with a certificate for
    /// 127.0.0.1 signed by a throwaway CA ([`Dovecot::ca_file`]) made with
    /// the `openssl` command.
    pub fn start_tls(users: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_with(users, true)
    }

    fn start_with(users: &[(&str, &str)], tls: bool) -> Dovecot {
        assert!(
            available(),
            "dovecot-imapd is not installed (contrib/test.sh installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("postdesk-dovecot-")
            .tempdir()
            .expect("temp dir");
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        // SAFETY: as above.
        let (uid, gid) = if root {
            (65534, 65534)
        } else {
            unsafe { (libc::getuid(), libc::getgid()) }
        };
        let mail = dir.path().join("mail");
        fs::create_dir_all(&mail).expect("mail dir");
        if root {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
            std::os::unix::fs::chown(&mail, Some(uid), Some(gid)).expect("chown mail dir");
        }
        let ca_file = tls.then(|| make_certificates(dir.path()));
        let mut dir = dir;
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut d = Dovecot {
                child: Command::new("true").spawn().expect("placeholder child"),
                dir,
                port,
                tls_port: if tls { free_port() } else { 0 },
                ca_file: ca_file.clone(),
                uid,
                gid,
            };
            let _ = d.child.wait();
            d.write_users(users);
            fs::write(d.dir.path().join("dovecot.conf"), d.config(root)).expect("write config");
            let _ = fs::remove_file(d.log_path());
            d.child = Command::new("/usr/sbin/dovecot")
                .arg("-F")
                .arg("-c")
                .arg(d.dir.path().join("dovecot.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn dovecot");
            if d.wait_ready(Duration::from_secs(15)) {
                return d;
            }
            last_log = d.log();
            let _ = d.child.kill();
            let _ = d.child.wait();
            dir = std::mem::replace(
                &mut d.dir,
                tempfile::tempdir().expect("placeholder temp dir"),
            );
        }
        panic!("dovecot did not start\n{last_log}");
    }

    fn config(&self, root: bool) -> String {
        let d = self.dir.path().display();
        let (login_user, internal_user, internal_group) = if root {
            (
                "dovenull".to_owned(),
                "dovecot".to_owned(),
                "dovecot".to_owned(),
            )
        } else {
            let user = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
            (user.clone(), user.clone(), user)
        };
        format!(
            "# Written by tests/common/dovecot.rs for one test.\n\
             base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             {ssl}\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             default_login_user = {login_user}\n\
             default_internal_user = {internal_user}\n\
             default_internal_group = {internal_group}\n\
             mail_location = maildir:{d}/mail/%u\n\
             mail_fsync = never\n\
             first_valid_uid = 1\n\
             mail_max_userip_connections = 100\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/mail/%u\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n",
            uid = self.uid,
            gid = self.gid,
            port = self.port,
            tls_port = self.tls_port,
            ssl = if self.ca_file.is_some() {
                format!("ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem")
            } else {
                "ssl = no".to_owned()
            },
        )
    }

    fn wait_ready(&mut self, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf)
                    && buf[..n].starts_with(b"* OK")
                {
                    let _ = s.write_all(b"a LOGOUT\r\n");
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Rewrite the users file (Dovecot rereads it when it changes).
    pub fn write_users(&self, users: &[(&str, &str)]) {
        let text: String = users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
            .collect();
        let path = self.dir.path().join("users");
        let tmp = self.dir.path().join("users.tmp");
        fs::write(&tmp, text).expect("write users");
        fs::rename(&tmp, &path).expect("rename users");
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.log")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The Maildir of `user`.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user)
    }

    fn run(&self, user: &str, password: &str, ops: Value) -> Vec<Value> {
        let job = json!({
            "host": "127.0.0.1",
            "port": self.port,
            "user": user,
            "password": password,
            "ops": ops,
        });
        let mut child = Command::new("python3")
            .arg(Path::new(REPO).join("tests/common/imap_client.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn imap_client.py");
        let body = serde_json::to_vec(&job).expect("job json");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let out = child.wait_with_output().expect("imap_client.py");
        let _ = writer.join();
        assert!(
            out.status.success(),
            "imap_client.py failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("imap_client.py json");
        v["results"].as_array().cloned().unwrap_or_default()
    }

    /// APPEND `messages` to `folder` of `user`; returns their UIDs.
    pub fn append(
        &self,
        user: &str,
        password: &str,
        folder: &str,
        messages: &[Vec<u8>],
    ) -> Vec<u32> {
        let hex: Vec<String> = messages.iter().map(hex::encode).collect();
        let r = self.run(
            user,
            password,
            json!([{ "op": "append", "folder": folder, "messages_hex": hex }]),
        );
        r[0].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_u64().map(|u| u as u32))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// CREATE `folder`.
    pub fn create(&self, user: &str, password: &str, folder: &str) {
        self.run(
            user,
            password,
            json!([{ "op": "create", "folder": folder }]),
        );
    }

    /// RENAME `from` to `to`.
    pub fn rename(&self, user: &str, password: &str, from: &str, to: &str) {
        self.run(
            user,
            password,
            json!([{ "op": "rename", "from": from, "to": to }]),
        );
    }

    /// `(uid, flags)` of every message in `folder`.
    pub fn flags(&self, user: &str, password: &str, folder: &str) -> Vec<(u32, Vec<String>)> {
        let r = self.run(user, password, json!([{ "op": "flags", "folder": folder }]));
        r[0].as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let uid = e[0].as_u64().unwrap_or(0) as u32;
                        let flags = e[1]
                            .as_array()
                            .map(|f| {
                                f.iter()
                                    .filter_map(|x| x.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (uid, flags)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Write `messages` straight into `user`'s INBOX Maildir (`new/`), as a
    /// local delivery agent would: for setting up many messages fast.
    pub fn write_maildir(&self, user: &str, messages: &[Vec<u8>]) {
        let base = self.maildir(user);
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(base.join(sub)).expect("maildir");
        }
        for (i, m) in messages.iter().enumerate() {
            let name = format!(
                "{}.M{i}P{}.postdesk-test",
                1_700_000_000 + i,
                std::process::id()
            );
            let tmp = base.join("tmp").join(&name);
            fs::write(&tmp, m).expect("write mail");
            fs::rename(&tmp, base.join("new").join(&name)).expect("deliver mail");
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let chown = |p: &Path| {
                let _ = std::os::unix::fs::chown(p, Some(self.uid), Some(self.gid));
            };
            chown(&base);
            for sub in ["new", "cur", "tmp"] {
                chown(&base.join(sub));
                if let Ok(entries) = fs::read_dir(base.join(sub)) {
                    for e in entries.flatten() {
                        chown(&e.path());
                    }
                }
            }
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
