//! Accepting TLS connections with our own acceptor instead of the server library's: the
//! handshakes run side by side, each bounded by [`HANDSHAKE_TIMEOUT`], with TCP_NODELAY set,
//! and a [`HandshakeMonitor`] keeps count of the ones refused, so `cluster status` can show
//! who was turned away at the peer listener (a certificate of another CA, none, or no TLS
//! at all).
//!
//! A client that connects and says nothing holds neither the accept loop nor a task.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The handshakes a listener refused since the node started.
#[derive(Debug, Default)]
pub struct HandshakeMonitor {
    refusals: Mutex<Refusals>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Refusals {
    pub count: u64,
    pub last: Option<Refusal>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub from: SocketAddr,
    pub reason: String,
    pub at: Instant,
}

impl HandshakeMonitor {
    fn record(&self, from: SocketAddr, reason: String) {
        let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        refusals.count += 1;
        refusals.last = Some(Refusal {
            from,
            reason,
            at: Instant::now(),
        });
    }

    pub fn snapshot(&self) -> Refusals {
        self.refusals.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

type Handshake = Pin<Box<dyn Future<Output = (std::io::Result<TlsStream<TcpStream>>, SocketAddr)> + Send>>;

/// A TCP listener handing out connections once their TLS handshake is done.
pub struct TlsIncoming {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: FuturesUnordered<Handshake>,
    /// Which listener this is, for logs.
    name: &'static str,
    /// Where refusals are counted (and logged as warnings), for a listener whose refusals
    /// an operator should see; without it they are logged at debug level only.
    monitor: Option<Arc<HandshakeMonitor>>,
}

impl TlsIncoming {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>, name: &'static str) -> Self {
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: FuturesUnordered::new(),
            name,
            monitor: None,
        }
    }

    pub fn with_monitor(mut self, monitor: Arc<HandshakeMonitor>) -> Self {
        self.monitor = Some(monitor);
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next connection whose handshake succeeded, and its peer's address.
    pub async fn accept(&mut self) -> (TlsStream<TcpStream>, SocketAddr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        // Nagle off: small answers would otherwise meet delayed ACKs.
                        if let Err(error) = tcp.set_nodelay(true) {
                            tracing::warn!(%error, listener = self.name, "cannot set TCP_NODELAY");
                        }
                        let handshake = self.acceptor.accept(tcp);
                        self.handshakes.push(Box::pin(async move {
                            let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
                                .await
                                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
                            (stream, peer)
                        }));
                    }
                    // A failed accept (out of file descriptors, say) is retried after a pause
                    // rather than ending the server.
                    Err(error) => {
                        tracing::warn!(%error, listener = self.name, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some((stream, peer)) = self.handshakes.next(), if !self.handshakes.is_empty() => match stream {
                    Ok(stream) => return (stream, peer),
                    Err(error) => self.refused(peer, &error),
                },
            }
        }
    }

    fn refused(&self, peer: SocketAddr, error: &std::io::Error) {
        match &self.monitor {
            Some(monitor) => {
                tracing::warn!(%peer, %error, listener = self.name, "refused a TLS handshake");
                monitor.record(peer, error.to_string());
            }
            None => tracing::debug!(%peer, %error, listener = self.name, "a TLS handshake failed"),
        }
    }

    /// The connections as a stream, for a server that takes its incoming connections so
    /// (tonic's `serve_with_incoming`).
    pub fn into_stream(self) -> impl futures::Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
        futures::stream::unfold(self, |mut incoming| async move {
            let (stream, _) = incoming.accept().await;
            Some((Ok(stream), incoming))
        })
    }
}
