//! The HTTP listener's connections, bounded like SMTP's: a permit of the
//! shared total cap (`[limits] max_connections`) before `accept`, a slot of
//! the per-address cap (`max_connections_per_ip`) after it, and an idle
//! timeout (`idle_timeout_secs`) on every read, so a client that opens a
//! connection and sends nothing (or a byte now and then) cannot hold it,
//! and a flood of connections waits in the kernel's backlog.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::listener::{ConnLimits, IpSlot};

/// A TCP listener whose connections count against [`ConnLimits`].
pub struct Bounded {
    tcp: TcpListener,
    limits: Arc<ConnLimits>,
    idle: Duration,
}

impl Bounded {
    /// Connections of `tcp` under `limits`, each closed after `idle`
    /// without a byte read.
    pub fn new(tcp: TcpListener, limits: Arc<ConnLimits>, idle: Duration) -> Bounded {
        Bounded { tcp, limits, idle }
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        loop {
            // Permit before accept (as the SMTP listener does): at the cap,
            // new connections wait in the backlog. The semaphore is never
            // closed; if it were, serving on without a cap is the lesser harm
            // than stopping the listener.
            let permit = self.limits.permit().await;
            let (io, peer) = match self.tcp.accept().await {
                Ok(v) => v,
                Err(e) => {
                    // Out of file descriptors and the like: wait, retry.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = self.limits.admit(peer.ip()) else {
                tracing::info!(peer = %peer.ip(), "http connection refused: too many from this address");
                drop(io);
                continue;
            };
            return (
                Guarded {
                    io,
                    idle: self.idle,
                    deadline: Box::pin(tokio::time::sleep(self.idle)),
                    _permit: permit,
                    _slot: slot,
                },
                peer,
            );
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// One connection: its stream, its place under the caps (given back on
/// drop), and the deadline for its next byte.
pub struct Guarded {
    io: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    _permit: Option<OwnedSemaphorePermit>,
    _slot: IpSlot,
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "http connection idle",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The peer's address, as handlers take it (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Bounded>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Bounded>) -> Peer {
        Peer(*stream.remote_addr())
    }
}
