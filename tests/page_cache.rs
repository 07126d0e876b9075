//! The wrapped SQLite page cache: installed in a fresh process, it skips
//! the truncates that can drop nothing and passes on every other, and a
//! store written through it —
//! b-tree rebalancing, pages freed and reused, savepoints rolled back,
//! a checkpoint — reads back whole and passes SQLite's integrity check.
//!
//! A test binary of its own: the cache can only be installed before SQLite
//! is initialised, which any other test in the same process would do first.

use postdesk::store::pcache;
use rusqlite::ffi;

/// One test, in order: the cache's calls must come before any connection
/// initialises SQLite, and tests of one binary run side by side.
#[test]
fn wrapped_cache_skips_empty_truncates_and_keeps_every_row() {
    assert!(
        pcache::install(),
        "a fresh process installs the wrapped cache"
    );
    truncates_drop_exactly_the_pages_at_or_beyond_their_limit();
    a_store_written_through_it_reads_back_whole();
}

/// The installed methods, called as SQLite calls them.
fn truncates_drop_exactly_the_pages_at_or_beyond_their_limit() {
    let mut m = std::mem::MaybeUninit::<ffi::sqlite3_pcache_methods2>::zeroed();
    // SAFETY: reads the installed methods (allowed before initialisation),
    // then initialises SQLite so the cache can be used; every page pointer
    // below comes from this cache and is used while it lives.
    unsafe {
        assert_eq!(
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, m.as_mut_ptr()),
            ffi::SQLITE_OK
        );
        assert_eq!(ffi::sqlite3_initialize(), ffi::SQLITE_OK);
        let m = m.assume_init();
        let (create, size, fetch, unpin, rekey, truncate, count, destroy) = (
            m.xCreate.expect("xCreate"),
            m.xCachesize.expect("xCachesize"),
            m.xFetch.expect("xFetch"),
            m.xUnpin.expect("xUnpin"),
            m.xRekey.expect("xRekey"),
            m.xTruncate.expect("xTruncate"),
            m.xPagecount.expect("xPagecount"),
            m.xDestroy.expect("xDestroy"),
        );
        let c = create(4096, 64, 1);
        assert!(!c.is_null());
        size(c, 1000);
        for k in 1..=100 {
            let p = fetch(c, k, 2);
            assert!(!p.is_null(), "page {k}");
            unpin(c, p, 0);
        }
        assert_eq!(count(c), 100);
        // A rebalance's swap of pages 60 and 70 through the parking number
        // (the lock-byte page: 2^30 / 4096 + 1).
        let parking = (1u32 << 30) / 4096 + 1;
        let p60 = fetch(c, 60, 0);
        let p70 = fetch(c, 70, 0);
        rekey(c, p60, 60, parking);
        rekey(c, p70, 70, 60);
        rekey(c, p60, parking, 70);
        unpin(c, p60, 0);
        unpin(c, p70, 0);

        // The commit's truncate past the end: nothing to drop, not passed on.
        let skipped = pcache::skipped_truncates();
        truncate(c, 101);
        assert_eq!(pcache::skipped_truncates(), skipped + 1);
        assert_eq!(count(c), 100);

        // A real truncate drops 51..=100 and nothing else.
        truncate(c, 51);
        assert_eq!(count(c), 50);
        assert!(fetch(c, 60, 0).is_null());
        let p50 = fetch(c, 50, 0);
        assert!(!p50.is_null());
        unpin(c, p50, 0);

        // A page left parked is beyond any limit below the parking number:
        // the truncate is passed on and drops it.
        let p10 = fetch(c, 10, 0);
        rekey(c, p10, 10, parking);
        unpin(c, p10, 0);
        let skipped = pcache::skipped_truncates();
        truncate(c, 51);
        assert_eq!(pcache::skipped_truncates(), skipped);
        assert_eq!(count(c), 49);
        assert!(fetch(c, parking, 0).is_null());
        destroy(c);
    }
}

/// A store written through the cache: rebalancing that parks pages,
/// pages freed and reused, savepoints rolled back, a checkpoint.
fn a_store_written_through_it_reads_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.sqlite3");
    let mut conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA cache_size = -8192;
         CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL, v BLOB NOT NULL);
         CREATE INDEX t_k ON t (k);",
    )
    .expect("schema");

    // Keys in a scrambled order: inserts land all over the index, splitting
    // and rebalancing its pages; deletes free pages that later inserts take
    // back out of order, which is what parks pages during a rebalance.
    let key = |i: u64| format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut expected = std::collections::BTreeSet::new();
    let before = pcache::skipped_truncates();
    let parked_before = pcache::parked_pages();
    let mut next = 0u64;
    for round in 0..60 {
        let mut tx = conn.transaction().expect("begin");
        for _ in 0..400 {
            tx.execute(
                "INSERT INTO t (id, k, v) VALUES (?1, ?2, zeroblob(300))",
                rusqlite::params![next as i64, key(next)],
            )
            .expect("insert");
            expected.insert(next);
            next += 1;
        }
        if round % 3 == 2 {
            // Half of an older stretch goes: pages empty out and are freed.
            let lo = (round as u64 - 2) * 400;
            tx.execute(
                "DELETE FROM t WHERE id >= ?1 AND id < ?2 AND id % 2 = 0",
                rusqlite::params![lo as i64, (lo + 800) as i64],
            )
            .expect("delete");
            expected.retain(|&i| !(i >= lo && i < lo + 800 && i % 2 == 0));
        }
        if round % 5 == 4 {
            // A savepoint whose inserts are rolled back: SQLite truncates
            // the cache to the size before them.
            let mut sp = tx.savepoint().expect("savepoint");
            for j in 0..300u64 {
                let id = 1_000_000 + round as u64 * 1000 + j;
                sp.execute(
                    "INSERT INTO t (id, k, v) VALUES (?1, ?2, zeroblob(300))",
                    rusqlite::params![id as i64, key(id)],
                )
                .expect("insert in savepoint");
            }
            sp.rollback().expect("rollback to savepoint");
        }
        tx.commit().expect("commit");
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");

    assert!(
        pcache::parked_pages() > parked_before,
        "rebalancing parked pages (what made every commit walk the cache)"
    );
    assert!(
        pcache::skipped_truncates() > before,
        "commits that could drop nothing were not passed on"
    );
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    drop(conn);

    // A second connection, with a cold cache, reads back every row by key.
    let conn = rusqlite::Connection::open(&path).expect("reopen");
    let mut st = conn
        .prepare("SELECT id FROM t WHERE k = ?1")
        .expect("prepare");
    for &i in &expected {
        let id: i64 = st.query_row([key(i)], |r| r.get(0)).expect("row by key");
        assert_eq!(id as u64, i);
    }
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n as usize, expected.len());
}
