//! SQLite's page cache, with one wasted walk taken out.
//!
//! At the end of every write transaction SQLite asks its page cache to drop
//! the pages beyond the database's end (`xTruncate`). The default cache
//! keeps the largest page number it ever held and, when that is far beyond
//! the limit, walks its whole hash table to find them. The b-tree's
//! rebalancing, when it puts new sibling pages in order, parks a page for a
//! moment under the number of the lock-byte page (the page holding byte
//! 2^30 of the file, never used for data): from then on the cache believes
//! it holds a page 262,145 (with 4 KiB pages) and every commit walks every
//! cached page — up to 16,384 with postdesk's 64 MiB cache — to remove
//! nothing. On an insert-heavy store smaller than 1 GiB that walk was about
//! 1.7 % of the server's CPU.
//!
//! [`install`] wraps the default cache (the same code, every call passed
//! on) and keeps, per cache, an upper bound of the page numbers it holds;
//! a truncate that cannot remove anything is not passed on. Exact because
//! pages enter a cache only through `xFetch` and `xRekey`, both counted:
//! the bound covers every page but those parked under the lock-byte page's
//! number, which are counted apart; while any may be parked, every truncate
//! is passed on.

use std::ffi::{c_int, c_uint};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

use rusqlite::ffi;

/// SQLite's lock-byte offset (`PENDING_BYTE`): the page holding it is the
/// number the b-tree parks pages under.
const PENDING_BYTE: c_uint = 0x4000_0000;

/// The default cache's methods, read before ours were installed.
struct Base(ffi::sqlite3_pcache_methods2);

// SAFETY: the methods are plain function pointers and a null argument;
// SQLite's default cache is thread-safe behind its own mutexes.
unsafe impl Send for Base {}
unsafe impl Sync for Base {}

/// The default cache's methods, which every callback passes on to.
static METHODS: OnceLock<Base> = OnceLock::new();

static INSTALL: Once = Once::new();

/// One cache: the default cache it wraps and what it knows of its keys.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    /// Every held page's number but the parked ones is at most this.
    max_key: c_uint,
    /// The lock-byte page's number at this page size.
    parking: c_uint,
    /// Pages moved to `parking` and not yet moved away (an overcount is
    /// harmless: it only passes a truncate on).
    parked: c_uint,
}

/// Truncates not passed on because they could drop nothing.
static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// Put the wrapped cache in place; only the first call does anything, and
/// only before SQLite is initialised (the first connection opened). If
/// SQLite was initialised already, the default cache stays, unchanged.
/// Returns whether the wrapped cache is in place.
pub fn install() -> bool {
    INSTALL.call_once(|| {
        let mut base = std::mem::MaybeUninit::<ffi::sqlite3_pcache_methods2>::zeroed();
        // SAFETY: SQLITE_CONFIG_GETPCACHE2 writes the current methods into
        // the struct it is given; it is allowed before initialisation.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, base.as_mut_ptr()) };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite already initialised: its default page cache stays"
            );
            return;
        }
        // SAFETY: written by SQLite just above.
        let base = unsafe { base.assume_init() };
        // The callbacks read the default methods from here: set before
        // SQLite can call any of them.
        if METHODS.set(Base(base)).is_err() {
            return;
        }
        let ours = ffi::sqlite3_pcache_methods2 {
            iVersion: 1,
            pArg: base.pArg,
            xInit: base.xInit,
            xShutdown: base.xShutdown,
            xCreate: Some(create),
            xCachesize: Some(cachesize),
            xPagecount: Some(pagecount),
            xFetch: Some(fetch),
            xUnpin: Some(unpin),
            xRekey: Some(rekey),
            xTruncate: Some(truncate),
            xDestroy: Some(destroy),
            xShrink: Some(shrink),
        };
        // SAFETY: SQLITE_CONFIG_PCACHE2 copies the struct; it fails with
        // SQLITE_MISUSE once SQLite is initialised, which leaves the
        // default cache in place.
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_PCACHE2,
                &ours as *const ffi::sqlite3_pcache_methods2,
            )
        };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite already initialised: its default page cache stays"
            );
            return;
        }
        INSTALLED.store(true, Ordering::Release);
    });
    INSTALLED.load(Ordering::Acquire)
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// How many truncates the wrapped cache did not pass on, since start.
pub fn skipped_truncates() -> u64 {
    SKIPPED.load(Ordering::Relaxed)
}

/// Pages moved under the lock-byte page's number, since start.
static PARKED: AtomicU64 = AtomicU64::new(0);

/// How many times a rebalance parked a page, since start (each would have
/// made the default cache walk all its pages at the next commit).
pub fn parked_pages() -> u64 {
    PARKED.load(Ordering::Relaxed)
}

/// The default methods (set before ours were installed).
fn base() -> &'static ffi::sqlite3_pcache_methods2 {
    match METHODS.get() {
        Some(b) => &b.0,
        None => unreachable!("page cache callbacks run only once installed"),
    }
}

/// # Safety
/// `p` is a cache [`create`] returned and [`destroy`] has not freed.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    // SAFETY: by the caller; SQLite uses one cache from one connection at
    // a time, so no two callbacks hold it at once.
    unsafe { &mut *p.cast::<Cache>() }
}

macro_rules! call {
    ($name:ident($($arg:expr),*)) => {
        match base().$name {
            Some(f) => f($($arg),*),
            None => unreachable!(concat!("the default page cache has ", stringify!($name))),
        }
    };
}

unsafe extern "C" fn create(
    sz_page: c_int,
    sz_extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    // SAFETY: passed on unchanged.
    let inner = unsafe { call!(xCreate(sz_page, sz_extra, purgeable)) };
    if inner.is_null() {
        return inner;
    }
    let parking = PENDING_BYTE / (sz_page.max(1) as c_uint) + 1;
    Box::into_raw(Box::new(Cache {
        inner,
        max_key: 0,
        parking,
        parked: 0,
    }))
    .cast()
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, n: c_int) {
    // SAFETY: `p` came from `create`; passed on.
    unsafe { call!(xCachesize(cache(p).inner, n)) }
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    // SAFETY: as above.
    unsafe { call!(xPagecount(cache(p).inner)) }
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    // SAFETY: as above.
    let c = unsafe { cache(p) };
    // SAFETY: passed on.
    let page = unsafe { call!(xFetch(c.inner, key, create)) };
    if !page.is_null() && key > c.max_key {
        c.max_key = key;
    }
    page
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    // SAFETY: as above.
    unsafe { call!(xUnpin(cache(p).inner, page, discard)) }
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    // SAFETY: as above.
    let c = unsafe { cache(p) };
    // SAFETY: passed on.
    unsafe { call!(xRekey(c.inner, page, old, new)) };
    if old == c.parking {
        c.parked = c.parked.saturating_sub(1);
    }
    if new == c.parking {
        c.parked += 1;
        PARKED.fetch_add(1, Ordering::Relaxed);
    } else if new > c.max_key {
        c.max_key = new;
    }
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    // SAFETY: as above.
    let c = unsafe { cache(p) };
    // Nothing held at `limit` or beyond: nothing to drop.
    if c.parked == 0 && limit > c.max_key {
        SKIPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // SAFETY: passed on.
    unsafe { call!(xTruncate(c.inner, limit)) };
    if limit <= c.parking {
        c.parked = 0;
    }
    if limit > 0 {
        c.max_key = c.max_key.min(limit - 1);
    }
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: `p` came from `create` (a leaked Box) and SQLite destroys a
    // cache once.
    let c = unsafe { Box::from_raw(p.cast::<Cache>()) };
    // SAFETY: passed on.
    unsafe { call!(xDestroy(c.inner)) }
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: as above.
    unsafe { call!(xShrink(cache(p).inner)) }
}
