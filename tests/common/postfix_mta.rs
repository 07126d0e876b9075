//! A throwaway Postfix in front of postdesk: a whole mail server (smtpd,
//! cleanup, qmgr, the LMTP client) with its own `config_directory`,
//! `queue_directory` and `data_directory` in a temp dir, listening on one
//! loopback port, relaying the domains it is given over the transports it
//! is given. It shares nothing with a system Postfix but the binaries: not
//! its configuration, queue, pid file, ports or log (its own
//! `maillog_file`).
//!
//! Postfix does not retry deferred mail on its own during a test (backoff
//! and queue run delay of an hour), so a test decides when the queue is
//! retried ([`Postfix::flush`], `postqueue -f`). Stopped on drop
//! (`postfix stop`, then SIGKILL to the master if it outlives a deadline).
//! Every command runs under a deadline.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::cli::run_command;
use super::wait::eventually;

/// How long Postfix may take to start listening or to stop.
const START_STOP: Duration = Duration::from_secs(20);

/// The Postfix services this instance runs (master.cf), the listener
/// prepended: what mail in, queued, relayed over SMTP or LMTP, bounced and
/// flushed needs.
const SERVICES: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// Whether Postfix (the whole server, not only smtp-sink) is installed.
pub fn available() -> bool {
    Path::new("/usr/sbin/postfix").exists() && Path::new("/usr/sbin/postqueue").exists()
}

/// A free loopback port (bound and released; the caller binds it again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A running throwaway Postfix.
pub struct Postfix {
    dir: tempfile::TempDir,
    /// Its SMTP listener on 127.0.0.1.
    pub addr: SocketAddr,
}

impl Postfix {
    /// Start an instance relaying `relay_domains` by `transports`
    /// (`domain=transport:nexthop` pairs of an `inline:` table, e.g.
    /// `example.com=lmtp:inet:127.0.0.1:2424`).
    pub fn start(relay_domains: &str, transports: &[String]) -> Postfix {
        Postfix::start_with(relay_domains, transports, "")
    }

    /// [`start`](Self::start) with more services in master.cf (e.g. a
    /// `pipe` transport).
    pub fn start_with(relay_domains: &str, transports: &[String], services: &str) -> Postfix {
        assert!(
            available(),
            "postfix is not installed (contrib/test.sh installs it)"
        );
        let mut last_log = String::new();
        for _ in 0..5 {
            let pf = Postfix::prepare(relay_domains, transports, services);
            let out = pf.postfix(&["start"]);
            assert!(
                out.status.success(),
                "postfix start: {}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                pf.log()
            );
            let listening = (0..(START_STOP.as_millis() / 50)).any(|_| {
                if TcpStream::connect(pf.addr).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
                false
            });
            if listening {
                return pf;
            }
            // The port was taken between our probe and the master's bind:
            // a new instance on another port (this one stops on drop).
            last_log = pf.log();
        }
        panic!("the throwaway postfix never listened:\n{last_log}");
    }

    /// A temp dir with the instance's directories and configuration, on a
    /// free port; not started.
    fn prepare(relay_domains: &str, transports: &[String], services: &str) -> Postfix {
        let dir = tempfile::Builder::new()
            .prefix("postdesk-postfix-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();
        for sub in ["etc", "spool", "data"] {
            fs::create_dir_all(root.join(sub)).expect("postfix dirs");
        }
        {
            use std::os::unix::fs::PermissionsExt;
            // The daemons run as the `postfix` user: it walks the temp dir
            // and owns its data directory (the master's lock).
            fs::set_permissions(root, fs::Permissions::from_mode(0o755)).expect("chmod");
            let status = Command::new("chown")
                .arg("postfix")
                .arg(root.join("data"))
                .status()
                .expect("run chown");
            assert!(status.success(), "chown postfix data dir: {status}");
        }
        let pf = Postfix {
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        };
        pf.write_config(relay_domains, transports, services);
        pf
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    fn write_config(&self, relay_domains: &str, transports: &[String], services: &str) {
        let root = self.dir.path().display().to_string();
        let main = format!(
            "# A throwaway Postfix written by tests/common/postfix_mta.rs.\n\
             compatibility_level = 3.6\n\
             queue_directory = {root}/spool\n\
             data_directory = {root}/data\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             syslog_name = postfix-front\n\
             maillog_file = {root}/maillog\n\
             maillog_file_prefixes = {root}\n\
             myhostname = mx.postfix-front.test\n\
             mydomain = postfix-front.test\n\
             myorigin = $myhostname\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mydestination =\n\
             mynetworks = 127.0.0.0/8\n\
             relay_domains = {relay_domains}\n\
             transport_maps = inline:{{ {} }}\n\
             smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
             smtpd_peername_lookup = no\n\
             local_transport = error:no local delivery here\n\
             alias_maps =\n\
             alias_database =\n\
             biff = no\n\
             lmtp_connect_timeout = 5s\n\
             # Deferred mail waits for the test's flush.\n\
             queue_run_delay = 1h\n\
             minimal_backoff_time = 1h\n\
             maximal_backoff_time = 1h\n",
            transports.join(", ")
        );
        fs::write(self.etc().join("main.cf"), main).expect("write main.cf");
        let master = format!(
            "{}:{}  inet  n       -       n       -       -       smtpd\n{SERVICES}{services}",
            self.addr.ip(),
            self.addr.port()
        );
        fs::write(self.etc().join("master.cf"), master).expect("write master.cf");
    }

    /// `postfix -c ETC ARGS` under a deadline.
    fn postfix(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("/usr/sbin/postfix");
        cmd.arg("-c").arg(self.etc()).args(args);
        piped(cmd, &format!("postfix {}", args.join(" ")))
    }

    /// `postqueue -c ETC ARGS` under a deadline; must succeed.
    fn postqueue(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("/usr/sbin/postqueue");
        cmd.arg("-c").arg(self.etc()).args(args);
        let out = piped(cmd, &format!("postqueue {}", args.join(" ")));
        assert!(
            out.status.success(),
            "postqueue {}: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("postqueue output is UTF-8")
    }

    /// The queue (`postqueue -j`): one object per message, with its
    /// `queue_name` (`incoming`, `active`, `deferred`, `hold`) and
    /// `recipients` (each with its `delay_reason` when deferred).
    pub fn queue(&self) -> Vec<Value> {
        self.postqueue(&["-j"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("postqueue -j: {e}: {l}")))
            .collect()
    }

    /// Retry every deferred message now (`postqueue -f`).
    pub fn flush(&self) {
        self.postqueue(&["-f"]);
    }

    /// Wait until the queue is empty: everything delivered or bounced.
    pub fn wait_empty(&self, deadline: Duration) {
        eventually(deadline, || {
            let q = self.queue();
            if q.is_empty() {
                Ok(())
            } else {
                Err(format!("postfix queue not empty: {q:?}\n{}", self.log()))
            }
        });
    }

    /// The instance's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The log lines that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    fn master_pid(&self) -> Option<i32> {
        fs::read_to_string(self.dir.path().join("spool/pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// `postfix stop`, then wait for the master to be gone; SIGKILL it
    /// after [`START_STOP`].
    fn stop(&self) {
        let pid = self.master_pid();
        let _ = self.postfix(&["stop"]);
        let Some(pid) = pid else { return };
        let alive = || {
            // SAFETY: kill(2) with signal 0 only checks the pid.
            unsafe { libc::kill(pid, 0) == 0 }
        };
        let start = std::time::Instant::now();
        while alive() && start.elapsed() < START_STOP {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive() {
            // SAFETY: the pid is this instance's master (its pid file).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("----- postfix log -----\n{}", self.log());
        }
    }
}

fn piped(mut cmd: Command, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_command(cmd, None, what)
}
