//! `postdesk migrate-store --to postgres://…`: a store filled over SMTP on
//! SQLite is copied into a fresh PostgreSQL database (a throwaway cluster,
//! see `tests/common/pg.rs`), every table checked by count and hash; run
//! again it copies nothing more; the server started on PostgreSQL shows the
//! same tickets and numbers on. A copy killed half-way is resumed by
//! running it again.

mod common;

use common::*;

/// Kill `server` and keep its store (config and data directories).
fn stopped(mut server: TestServer) -> Env {
    server.kill9();
    std::mem::replace(&mut server.env, Env::new_sqlite(&Options::default()))
}

/// A fresh PostgreSQL database to copy `env`'s store into, its password in
/// a file of `env`'s config directory: the cluster, the database's name,
/// its URL and the password file's path.
fn target(env: &Env) -> (&'static common::pg::Cluster, String, String, String) {
    let cluster = common::pg::cluster();
    let db = cluster.new_database();
    let password = env.config_dir.join("store-password");
    write_private(&password, cluster.password.as_bytes());
    let url = format!("postgres://postdesk@127.0.0.1:{}/{db}", cluster.port);
    let pw = password.to_str().expect("utf-8 path").to_owned();
    (cluster, db, url, pw)
}

#[test]
fn an_sqlite_store_moves_to_postgresql_whole_and_numbering_goes_on() {
    let mut env = Env::new_sqlite(&Options::default());
    let server = TestServer::start_in(env, Vec::new());
    let first = mail(
        "ann@customer.test",
        "support@example.com",
        "Invoice missing",
        "m1@customer.test",
        &[],
    );
    let reply = mail(
        "ann@customer.test",
        "support@example.com",
        "Re: Invoice missing",
        "m2@customer.test",
        &[("In-Reply-To", "<m1@customer.test>")],
    );
    let other = mail(
        "bob@customer.test",
        "sales@example.com",
        "A quote, please",
        "m3@customer.test",
        &[],
    );
    for out in server.send(&[first, reply, other]) {
        assert!(out.accepted(), "{out:?}");
    }
    server.wait_tickets(2);
    server.env.run_ok(&["close", "1002"]);
    let before = server.tickets_json();
    let shown = server.show_json("1001");
    env = stopped(server);

    let (cluster, db, url, pw) = target(&env);
    let pw = pw.as_str();
    let out = env.run_ok(&["migrate-store", "--to", &url, "--password-file", pw]);
    assert!(out.contains("copied and verified"), "{out}");
    assert!(!out.contains("DIFFERS"), "{out}");
    let copied = |out: &str, table: &str| -> (i64, i64) {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no {table} line in {out}"));
        let f: Vec<&str> = line.split_whitespace().collect();
        (f[1].parse().expect("rows"), f[2].parse().expect("copied"))
    };
    let (rows, n) = copied(&out, "messages");
    assert!(rows >= 3, "{out}");
    assert_eq!(rows, n, "{out}");
    // Again: nothing more to copy, everything still checks.
    let again = env.run_ok(&["migrate-store", "--to", &url, "--password-file", pw]);
    assert!(again.contains("copied and verified"), "{again}");
    assert_eq!(copied(&again, "messages"), (rows, 0), "{again}");
    assert_eq!(copied(&again, "tickets").1, 0, "{again}");

    // A password in the URL is refused, naming the keys to use.
    let bad = env.run(&[
        "migrate-store",
        "--to",
        &format!("postgres://postdesk:secret@127.0.0.1:{}/{db}", cluster.port),
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("password_env or password_file"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // The same store, on PostgreSQL.
    env.pg_database = Some(db);
    env.write_config("rules.toml", &rules_toml(&Options::default()));
    let server = TestServer::start_in(env, Vec::new());
    assert_eq!(server.tickets_json(), before);
    assert_eq!(server.show_json("1001"), shown);
    let out = server.send_one(&mail(
        "cid@customer.test",
        "support@example.com",
        "After the move",
        "m4@customer.test",
        &[],
    ));
    assert!(out.accepted(), "{out:?}");
    let tickets = server.wait_tickets(3);
    let new = tickets
        .iter()
        .find(|t| t["subject"] == "After the move")
        .expect("the new ticket");
    assert_eq!(str_field(new, "number"), "#1003");
    // `backup` is the SQLite store's tool: on PostgreSQL it says what to use.
    let file = server.env.dir.path().join("copy.sqlite3");
    let refused = server
        .env
        .run(&["backup", file.to_str().expect("utf-8 path")]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pg_dump"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!file.exists());
}

#[test]
fn a_copy_killed_half_way_resumes_without_copying_a_row_twice() {
    let mut env = Env::new_sqlite(&Options::default());
    let server = TestServer::start_in(env, Vec::new());
    // Enough rows that the copy (committed in batches of 500) is still
    // running when it is killed.
    let mails: Vec<Mail> = (0..2000)
        .map(|i| {
            mail(
                &format!("client{}@customer.test", i % 50),
                "support@example.com",
                &format!("Question {i}"),
                &format!("bulk-{i}@customer.test"),
                &[],
            )
        })
        .collect();
    for chunk in mails.chunks(200) {
        for out in server.send(chunk) {
            assert!(out.accepted(), "{out:?}");
        }
    }
    server.wait_messages(2000);
    env = stopped(server);

    let (cluster, db, url, pw) = target(&env);
    let pw = pw.as_str();
    let args = ["migrate-store", "--to", url.as_str(), "--password-file", pw];

    // SIGKILL as soon as the first rows of `messages` are committed.
    let mut child = env.command(&args).spawn().expect("start migrate-store");
    let mut client = cluster.connect(&db);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n: i64 = client
            .query_opt(
                "SELECT count(*) FROM messages WHERE to_regclass('messages') IS NOT NULL",
                &[],
            )
            .ok()
            .flatten()
            .map_or(0, |r| r.get(0));
        if n > 0 {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "migrate-store ended before any message was copied"
        );
        assert!(std::time::Instant::now() < deadline, "no row copied");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL migrate-store");
    let status = child.wait().expect("reap");
    assert!(!status.success(), "it was killed, not done");
    // What the killed run committed.
    let copied_before: i64 = client
        .query_one("SELECT count(*) FROM messages", &[])
        .expect("count")
        .get(0);

    // Run again: it resumes, copies only what is missing, and every table
    // checks out by count and hash.
    let out = env.run_ok(&args);
    assert!(out.contains("copied and verified"), "{out}");
    assert!(!out.contains("DIFFERS"), "{out}");
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some("messages"))
        .unwrap_or_else(|| panic!("no messages line in {out}"));
    let f: Vec<i64> = line
        .split_whitespace()
        .skip(1)
        .take(2)
        .map(|x| x.parse().expect("a number"))
        .collect();
    // The 2,000 received and the acknowledgements sent.
    assert!(f[0] >= 2000, "{out}");
    assert_eq!(
        f[1],
        f[0] - copied_before,
        "the rerun copies exactly what the killed run had not: {out}"
    );
    let total: i64 = client
        .query_one("SELECT count(*) FROM messages", &[])
        .expect("count")
        .get(0);
    assert_eq!(total, f[0]);
}
