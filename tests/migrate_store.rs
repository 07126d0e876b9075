//! `postdesk migrate-store --to postgres://…`: a store filled over SMTP on
//! SQLite is copied into a fresh PostgreSQL database (a throwaway cluster,
//! see `tests/common/pg.rs`), every table checked by count and hash; run
//! again it copies nothing more; the server started on PostgreSQL shows the
//! same tickets and numbers on.

mod common;

use common::*;

#[test]
fn an_sqlite_store_moves_to_postgresql_whole_and_numbering_goes_on() {
    let mut env = Env::new_sqlite(&Options::default());
    let mut server = TestServer::start_in(env, Vec::new());
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
    server.kill9();
    env = std::mem::replace(&mut server.env, Env::new_sqlite(&Options::default()));
    drop(server);

    let cluster = common::pg::cluster();
    let db = cluster.new_database();
    let password = env.config_dir.join("store-password");
    write_private(&password, cluster.password.as_bytes());
    let url = format!("postgres://postdesk@127.0.0.1:{}/{db}", cluster.port);
    let pw = password.to_str().expect("utf-8 path");
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
