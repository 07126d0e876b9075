//! A throwaway PostgreSQL cluster for the test binary (started once, on
//! first use, by `contrib/pg-cluster.sh` on a loopback port; it stops when
//! the test process exits) and a fresh database per test.
//!
//! With `POSTDESK_TEST_BACKEND=postgres`, every [`crate::common::Env`]
//! gets its own database and a `[store]` table naming it, so the same
//! integration tests run on PostgreSQL (the test command runs the store's
//! tests both ways).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The running cluster.
pub struct Cluster {
    /// Its directory (data, socket, password file).
    pub dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// The superuser `postdesk`'s password.
    pub password: String,
}

/// Whether this run puts the store on PostgreSQL.
pub fn enabled() -> bool {
    std::env::var("POSTDESK_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}

/// The cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(start)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn start() -> Cluster {
    // Kept for the whole process; the script removes it once the server
    // has stopped (when this process ends).
    let dir = tempfile::Builder::new()
        .prefix("postdesk-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let port = free_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contrib/pg-cluster.sh");
    let (dir2, log) = (dir.clone(), dir.join("server.log"));
    // The server gets SIGINT when the thread that started it ends: this
    // thread never does, so the cluster lives as long as the process.
    std::thread::spawn(move || {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(&log).expect("cluster log");
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .arg(&dir2)
            .arg(port.to_string())
            .arg("--throwaway")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        // SAFETY: prctl only sets this process's parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start contrib/pg-cluster.sh");
        let _ = child.wait();
        loop {
            std::thread::park();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let password = std::fs::read_to_string(dir.join("password")).unwrap_or_default();
        let password = password.trim().to_owned();
        if !password.is_empty() {
            let url = format!(
                "host=127.0.0.1 port={port} user=postdesk dbname=postgres password={password}"
            );
            if postgres::Client::connect(&url, postgres::NoTls).is_ok() {
                return Cluster {
                    dir,
                    port,
                    password,
                };
            }
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Cluster {
    /// A superuser connection to `database`.
    pub fn connect(&self, database: &str) -> postgres::Client {
        let url = format!(
            "host=127.0.0.1 port={} user=postdesk dbname={database} password={}",
            self.port, self.password
        );
        postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {database}: {e}"))
    }

    /// A new, empty database; its name.
    pub fn new_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.connect("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        name
    }

    /// The `[store]` table for `database`, the password read from
    /// `password_file` (which the caller writes).
    pub fn store_toml(&self, database: &str, password_file: &std::path::Path) -> String {
        format!(
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://postdesk@127.0.0.1:{}/{database}\"\npassword_file = \"{}\"\n",
            self.port,
            password_file.display()
        )
    }
}
