//! The SMTP and LMTP listeners: accept loop, connection limits, shutdown.
//!
//! Receives a bound [`TcpListener`] and runs one [`session`] per accepted
//! connection, each in a task on the shared [`TaskTracker`] with a tracing
//! span carrying `peer` and `session_id`. Messages go to a [`Deliver`]
//! (the spool in production); a session answers `250` only after
//! `deliver` returned `Ok`, so nothing is acknowledged before its commit.
//!
//! Bounds: a [`ConnLimits`] shared by the SMTP and LMTP listeners caps
//! connections overall (a semaphore permit is taken *before* `accept`, as
//! mini-redis does, so a full server leaves new connections in the kernel
//! backlog rather than accepting and dropping them) and per peer address
//! (over the cap the peer gets `421 4.7.0` and the connection closes).
//!
//! Shutdown: when the token is cancelled the listener stops accepting and
//! drops its socket. Sessions notice the same token: one in the middle of a
//! transaction finishes it; one between transactions answers `421 4.3.2`
//! and closes. The lead's drain waits on the tracker.
//!
//! Settings are a snapshot taken at start ([`Settings::from_config`]); a
//! config reload does not reach running listeners. Rejected alternative: a
//! `watch::Receiver<Arc<Config>>` read per connection. It would let served
//! domains change without a restart, but the TLS files would still need
//! reloading, and nothing reloads the config yet.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{Config, Limits};
use crate::spool::{Deliver, Source};

pub mod reply;
pub mod session;
pub mod tls;

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP (RFC 5321): EHLO/HELO, one reply after DATA.
    Smtp,
    /// LMTP (RFC 2033): LHLO, one reply per recipient after DATA.
    Lmtp,
}

impl Protocol {
    /// The name used in logs (`smtp`, `lmtp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Lmtp => "lmtp",
        }
    }

    /// The [`Source`] recorded with messages that arrive this way.
    pub fn source(self) -> Source {
        match self {
            Protocol::Smtp => Source::Smtp,
            Protocol::Lmtp => Source::Lmtp,
        }
    }
}

/// What every session needs from the configuration: host name, limits,
/// served domains and the STARTTLS acceptor.
pub struct Settings {
    config: Arc<Config>,
    tls: Option<TlsAcceptor>,
}

impl Settings {
    /// Settings from a validated config, loading the STARTTLS certificate
    /// and key when `[server.tls]` names them.
    ///
    /// # Errors
    ///
    /// When the certificate or key cannot be read or rustls refuses them;
    /// the message names the file.
    pub fn from_config(config: &Config) -> anyhow::Result<Settings> {
        let tls = match &config.server.tls {
            Some(files) => {
                Some(tls::load_acceptor(files).context("Loading the STARTTLS certificate")?)
            }
            None => None,
        };
        Ok(Settings::new(Arc::new(config.clone()), tls))
    }

    /// Settings from parts already loaded (tests, or a caller that built
    /// its own acceptor).
    pub fn new(config: Arc<Config>, tls: Option<TlsAcceptor>) -> Settings {
        Settings { config, tls }
    }

    /// The name announced in the greeting and in EHLO/LHLO.
    pub fn hostname(&self) -> &str {
        &self.config.server.hostname
    }

    /// Size, recipient, error and time limits.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Whether RCPT may name `domain` (see [`Config::serves_domain`]).
    pub fn serves_domain(&self, domain: &str) -> bool {
        self.config.serves_domain(domain)
    }

    /// The first served domain: where the domain-less `<postmaster>` goes.
    pub fn first_served_domain(&self) -> Option<&str> {
        self.config.domains.served.first().map(String::as_str)
    }

    /// The STARTTLS acceptor, when a certificate is configured.
    pub fn tls(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }
}

/// Connection caps shared by every listener: one total, one per peer IP.
pub struct ConnLimits {
    permits: Arc<Semaphore>,
    // Live connection count per address. An entry exists only while a
    // connection from that address is open, so the map never holds more
    // than `max_connections` entries. A std mutex is enough: it is held for
    // one map update and never across an await.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
}

impl ConnLimits {
    /// At most `max_connections` at once over all listeners sharing this
    /// value, and at most `max_per_ip` from one address.
    pub fn new(max_connections: usize, max_per_ip: usize) -> ConnLimits {
        ConnLimits {
            permits: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip,
        }
    }

    /// A permit of the total cap, once one is free (the web door's
    /// listener takes them from the same semaphore as SMTP and LMTP).
    pub(crate) async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }

    /// Caps from `[limits]`.
    pub fn from_config(limits: &Limits) -> ConnLimits {
        ConnLimits::new(limits.max_connections, limits.max_connections_per_ip)
    }

    /// Count one more connection from `ip`, or `None` when it already holds
    /// `max_per_ip`. The slot gives the count back when dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        // The map is consistent after every statement, so a panic elsewhere
        // while the lock was held cannot leave it half-updated.
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            if *count == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            limits: Arc::clone(self),
            ip,
        })
    }
}

/// One connection counted against its address; released on drop.
pub(crate) struct IpSlot {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = self
            .limits
            .per_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Ids for session spans, unique within the process.
static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// The longest wait for an accept error to clear (for example, out of file
/// descriptors) before trying again.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How long a refused peer gets to take its `421` before we hang up.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accept connections on `listener` until `shutdown` is cancelled, running
/// one `protocol` session per connection on `tracker`.
///
/// `deliver` is shared by every session (pass the spool in an `Arc`).
/// `limits` should be the same value for the SMTP and LMTP listeners so the
/// total cap covers both. Accept errors are logged and retried with a short
/// backoff; they never stop the listener. Returns once shutdown is
/// requested; sessions still running are tracked by `tracker` and finish
/// as described in the module docs.
pub async fn serve<D: Deliver>(
    listener: TcpListener,
    protocol: Protocol,
    settings: Arc<Settings>,
    deliver: Arc<D>,
    limits: Arc<ConnLimits>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let local = listener.local_addr().ok();
    let shared = Arc::new(Shared {
        protocol,
        settings,
        deliver,
        limits: Arc::clone(&limits),
        shutdown: shutdown.clone(),
    });
    info!(protocol = protocol.as_str(), address = ?local, "listener started");
    let mut backoff = Duration::from_millis(10);
    loop {
        // Permit before accept (mini-redis): at the cap, new connections wait
        // in the kernel backlog instead of being accepted and dropped. The
        // select lets shutdown interrupt the wait; nothing is lost by
        // dropping the acquire future.
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&limits.permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // Nobody closes the semaphore; treat it like shutdown.
                Err(_closed) => break,
            },
        };
        // `accept` is cancel-safe: a connection is either returned here or
        // stays in the backlog, so shutdown winning the race loses nothing.
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(error) => {
                warn!(
                    protocol = protocol.as_str(),
                    error = &error as &dyn std::error::Error,
                    "accept failed"
                );
                drop(permit);
                // The sleep only paces retries; shutdown may cut it short.
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let session_id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("postdesk_smtp_sessions_total", "protocol" => protocol.as_str())
            .increment(1);
        let span = info_span!("session", %peer, session_id, protocol = protocol.as_str());
        tracker.spawn(connection(Arc::clone(&shared), stream, peer, permit).instrument(span));
    }
    // Dropping the listener here closes the socket: no new connections.
    info!(protocol = protocol.as_str(), address = ?local, "listener stopped");
}

/// What every connection of one listener shares.
struct Shared<D> {
    protocol: Protocol,
    settings: Arc<Settings>,
    deliver: Arc<D>,
    limits: Arc<ConnLimits>,
    shutdown: CancellationToken,
}

/// One accepted connection: per-address check, then the session, then one
/// log line saying how it ended. The permit is held until it returns.
async fn connection<D: Deliver>(
    shared: Arc<Shared<D>>,
    mut stream: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
) {
    let Some(_slot) = shared.limits.admit(peer.ip()) else {
        info!("too many connections from peer, refused");
        let mut out = Vec::new();
        reply::too_many_connections().write_to(&mut out);
        // Best effort: the connection is refused either way, and the line
        // above already recorded why. The timeout keeps a peer that does
        // not read from holding the permit.
        let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
            stream.write_all(&out).await?;
            stream.shutdown().await
        })
        .await;
        return;
    };
    // Replies are already batched per read (PIPELINING); Nagle would only
    // delay them.
    if let Err(error) = stream.set_nodelay(true) {
        debug!(
            error = &error as &dyn std::error::Error,
            "set_nodelay failed"
        );
    }
    debug!("session opened");
    let ctx = session::Context {
        settings: &shared.settings,
        protocol: shared.protocol,
        deliver: &*shared.deliver,
        peer: Some(peer),
        shutdown: &shared.shutdown,
    };
    match session::run(stream, ctx).await {
        Ok(closed) => info!(reason = closed.as_str(), "session closed"),
        Err(error) => warn!(
            error = &error as &dyn std::error::Error,
            "session ended by i/o error"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::session::harness::{FakeDeliver, test_config};
    use tokio::io::{AsyncBufReadExt, BufReader};

    async fn read_line(reader: &mut BufReader<TcpStream>) -> String {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
            .await
            .expect("reply within 5s")
            .expect("read");
        line
    }

    struct Running {
        addr: SocketAddr,
        token: CancellationToken,
        tracker: TaskTracker,
    }

    async fn start(max_connections: usize, max_per_ip: usize) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let settings = Arc::new(Settings::new(Arc::new(test_config()), None));
        let limits = Arc::new(ConnLimits::new(max_connections, max_per_ip));
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(serve(
            listener,
            Protocol::Smtp,
            settings,
            Arc::new(FakeDeliver::default()),
            limits,
            token.child_token(),
            tracker.clone(),
        ));
        Running {
            addr,
            token,
            tracker,
        }
    }

    async fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
        BufReader::new(TcpStream::connect(addr).await.expect("connect"))
    }

    #[tokio::test]
    async fn connection_over_the_per_ip_cap_gets_421_and_is_closed() {
        let running = start(10, 1).await;
        let mut first = connect(running.addr).await;
        assert!(read_line(&mut first).await.starts_with("220 "));

        let mut second = connect(running.addr).await;
        assert!(read_line(&mut second).await.starts_with("421 4.7.0 "));
        assert_eq!(read_line(&mut second).await, "", "closed after the refusal");

        // The first session is unaffected, and its slot comes back when it ends.
        first.get_mut().write_all(b"QUIT\r\n").await.expect("write");
        assert!(read_line(&mut first).await.starts_with("221 "));
        assert_eq!(read_line(&mut first).await, "");
        let mut third = {
            // The slot is released when the session task ends, just after
            // the close the client saw; retry briefly rather than sleep.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                let mut conn = connect(running.addr).await;
                if read_line(&mut conn).await.starts_with("220 ") {
                    break conn;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "slot never released"
                );
                tokio::task::yield_now().await;
            }
        };
        third.get_mut().write_all(b"QUIT\r\n").await.expect("write");
        assert!(read_line(&mut third).await.starts_with("221 "));
    }

    #[tokio::test]
    async fn at_the_global_cap_new_connections_wait_until_a_slot_frees() {
        let running = start(1, 10).await;
        let mut first = connect(running.addr).await;
        assert!(read_line(&mut first).await.starts_with("220 "));

        // The kernel completes the handshake, but postdesk does not accept
        // (no greeting) while the only permit is taken.
        let mut second = connect(running.addr).await;
        let mut line = String::new();
        let early =
            tokio::time::timeout(Duration::from_millis(200), second.read_line(&mut line)).await;
        assert!(early.is_err(), "greeted over the cap: {line:?}");

        first.get_mut().write_all(b"QUIT\r\n").await.expect("write");
        assert!(read_line(&mut first).await.starts_with("221 "));
        assert!(read_line(&mut second).await.starts_with("220 "));
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_idle_sessions_get_421() {
        let running = start(10, 10).await;
        let mut idle = connect(running.addr).await;
        assert!(read_line(&mut idle).await.starts_with("220 "));

        running.token.cancel();
        running.tracker.close();
        assert!(read_line(&mut idle).await.starts_with("421 4.3.2 "));
        assert_eq!(read_line(&mut idle).await, "");
        tokio::time::timeout(Duration::from_secs(5), running.tracker.wait())
            .await
            .expect("listener and sessions finish");
        assert!(
            TcpStream::connect(running.addr).await.is_err(),
            "socket closed"
        );
    }

    #[test]
    fn per_ip_slots_are_counted_and_released() {
        let limits = Arc::new(ConnLimits::new(10, 2));
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let a = limits.admit(ip).expect("first");
        let b = limits.admit(ip).expect("second");
        assert!(limits.admit(ip).is_none(), "third is over the cap");
        assert!(
            limits.admit("192.0.2.2".parse().expect("ip")).is_some(),
            "other address"
        );
        drop(a);
        let c = limits.admit(ip).expect("slot released");
        drop(b);
        drop(c);
        assert!(
            limits.per_ip.lock().expect("not poisoned").is_empty(),
            "no entry left behind"
        );
    }
}
