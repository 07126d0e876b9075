//! A session over `tokio::io::duplex` for the unit tests of the session
//! modules: a [`FakeDeliver`] that records (or fails, or waits), a small
//! [`test_config`], and a [`Peer`] that speaks to the session.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::*;
use crate::config::{Addresses, Config, Domains, Limits, Priority, Senders, Server, Tickets};
use crate::domain::{Accepted, MessageRowId, TicketId};
use crate::spool::{self, Envelope};

/// A Deliver that records what it was given. With `fail`, it answers
/// `ShuttingDown`; with `gate`, it waits for a permit before answering.
#[derive(Default)]
pub(crate) struct FakeDeliver {
    pub(crate) delivered: Mutex<Vec<(Envelope, Vec<u8>)>>,
    pub(crate) fail: bool,
    pub(crate) gate: Option<Arc<Semaphore>>,
}

impl FakeDeliver {
    pub(crate) fn messages(&self) -> Vec<(Envelope, Vec<u8>)> {
        self.delivered.lock().expect("not poisoned").clone()
    }
}

impl Deliver for FakeDeliver {
    async fn deliver(&self, envelope: Envelope, raw: Vec<u8>) -> Result<Accepted, spool::Error> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        if self.fail {
            return Err(spool::Error::ShuttingDown);
        }
        let mut delivered = self.delivered.lock().expect("not poisoned");
        delivered.push((envelope, raw));
        Ok(Accepted {
            message: MessageRowId(100 + delivered.len() as i64),
            ticket: Some(TicketId(1)),
            duplicate: false,
        })
    }
}

/// A config serving `example.org`, max 1000-octet messages, 3
/// recipients, 5 errors, 60 s idle.
pub(crate) fn test_config() -> Config {
    Config {
        dir: PathBuf::from("."),
        server: Server {
            smtp: None,
            lmtp: None,
            data_dir: PathBuf::from("."),
            hostname: "mx.test".to_owned(),
            tls: None,
        },
        domains: Domains {
            served: vec!["example.org".to_owned()],
            internal: Vec::new(),
        },
        addresses: Addresses {
            support: Vec::new(),
            sales: Vec::new(),
            info: Vec::new(),
        },
        senders: Senders {
            blocked: Vec::new(),
            blocked_patterns: Vec::new(),
            system_keywords: Vec::new(),
            system_matcher: Senders::matcher(&[]).expect("an empty automaton builds"),
        },
        tickets: Tickets::new(
            crate::config::NumberFormat::parse("#{n}").expect("a valid format"),
            Vec::new(),
            1000,
            80,
            Priority::Medium,
            "Question".to_owned(),
        )
        .expect("a valid tag pattern"),
        limits: Limits {
            max_message_size: 1000,
            max_recipients: 3,
            max_connections: 10,
            max_connections_per_ip: 5,
            max_errors: 5,
            idle_timeout: Duration::from_secs(60),
        },
        threading: crate::config::Threading::default(),
        agents: Vec::new(),
        clients: Vec::new(),
        monitoring: crate::config::Monitoring::default(),
        loop_guard: crate::config::LoopGuard::defaults("mx.test"),
        sla: crate::sla::Settings::default(),
        satisfaction: crate::config::Satisfaction { enabled: true },
        http: crate::config::Http {
            listen: None,
            public_url: "http://127.0.0.1:8025".to_owned(),
            public_url_is_default: true,
            allowed_origins: Vec::new(),
            posts_per_minute_per_ip: 10,
            customer_link_days: 90,
            metrics_token: None,
        },
        webhooks: crate::config::webhooks::Webhooks::default(),
        store: crate::config::store::Store::default(),
    }
}

pub(crate) struct Harness {
    pub(crate) protocol: Protocol,
    pub(crate) config: Config,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) deliver: FakeDeliver,
    pub(crate) shutdown: CancellationToken,
}

impl Harness {
    pub(crate) fn smtp() -> Harness {
        Harness {
            protocol: Protocol::Smtp,
            config: test_config(),
            tls: None,
            deliver: FakeDeliver::default(),
            shutdown: CancellationToken::new(),
        }
    }

    pub(crate) fn lmtp() -> Harness {
        Harness {
            protocol: Protocol::Lmtp,
            ..Harness::smtp()
        }
    }

    pub(crate) fn start(self) -> Peer {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let settings = Arc::new(Settings::new(Arc::new(self.config), self.tls));
        let deliver = Arc::new(self.deliver);
        let shutdown = self.shutdown;
        let protocol = self.protocol;
        let task = {
            let deliver = Arc::clone(&deliver);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let ctx = Context {
                    settings: &settings,
                    protocol,
                    deliver: &*deliver,
                    peer: Some(SocketAddr::from(([192, 0, 2, 1], 40000))),
                    shutdown: &shutdown,
                };
                run(server, ctx).await
            })
        };
        let (read, write) = tokio::io::split(client);
        Peer {
            read: BufReader::new(read),
            write,
            deliver,
            shutdown,
            task,
        }
    }
}

pub(crate) struct Peer {
    pub(crate) read: BufReader<ReadHalf<DuplexStream>>,
    pub(crate) write: WriteHalf<DuplexStream>,
    pub(crate) deliver: Arc<FakeDeliver>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) task: JoinHandle<Result<Closed, Error>>,
}

impl Peer {
    pub(crate) async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.write
            .write_all(bytes.as_ref())
            .await
            .expect("session reads");
    }

    /// One whole reply (all lines of a multi-line one), CRLFs kept.
    pub(crate) async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let n = timeout(Duration::from_secs(5), self.read.read_line(&mut line))
                .await
                .expect("reply within 5s")
                .expect("read");
            assert!(n > 0, "connection closed; got so far: {reply:?}");
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    pub(crate) async fn expect(&mut self, prefix: &str) -> String {
        let reply = self.reply().await;
        assert!(
            reply.starts_with(prefix),
            "expected {prefix:?}, got {reply:?}"
        );
        reply
    }

    pub(crate) async fn is_closed(&mut self) -> bool {
        let mut line = String::new();
        let n = timeout(Duration::from_secs(5), self.read.read_line(&mut line))
            .await
            .expect("close within 5s")
            .expect("read");
        n == 0
    }

    pub(crate) async fn greeted(mut self) -> Peer {
        self.expect("220 mx.test ").await;
        self
    }

    pub(crate) async fn ehlo(&mut self) -> String {
        self.send("EHLO client.test\r\n").await;
        self.expect("250-mx.test").await
    }

    pub(crate) async fn finished(self) -> Result<Closed, Error> {
        self.task.await.expect("session task did not panic")
    }
}

pub(crate) const MESSAGE: &str = "Subject: hi\r\n\r\nhello\r\n";

pub(crate) async fn transaction(peer: &mut Peer, body: &str) {
    peer.send("MAIL FROM:<alice@customer.test>\r\n").await;
    peer.expect("250 2.1.0 ").await;
    peer.send("RCPT TO:<support@example.org>\r\n").await;
    peer.expect("250 2.1.5 ").await;
    peer.send("DATA\r\n").await;
    peer.expect("354 ").await;
    peer.send(format!("{body}.\r\n")).await;
}
