//! KV Connect over HTTPS: a listener that hands axum connections only once their TLS
//! handshake is done (HTTP/2 or HTTP/1.1, as ALPN chose), with TCP_NODELAY set.
//!
//! Handshakes run side by side inside `accept`, each bounded by [`HANDSHAKE_TIMEOUT`], so
//! a client that connects and says nothing holds neither the accept loop nor a task.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Handshake = Pin<Box<dyn Future<Output = (std::io::Result<TlsStream<TcpStream>>, SocketAddr)> + Send>>;

pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: FuturesUnordered<Handshake>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: FuturesUnordered::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        // Nagle off, as on the gRPC listener: small answers would otherwise
                        // meet delayed ACKs.
                        if let Err(error) = tcp.set_nodelay(true) {
                            tracing::warn!(%error, "cannot set TCP_NODELAY on a KV Connect connection");
                        }
                        let handshake = self.acceptor.accept(tcp);
                        self.handshakes.push(Box::pin(async move {
                            let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
                                .await
                                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
                            (stream, peer)
                        }));
                    }
                    // As axum's own listener does: a failed accept (out of file descriptors,
                    // say) is retried after a pause rather than ending the server.
                    Err(error) => {
                        tracing::warn!(%error, "KV Connect cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some((stream, peer)) = self.handshakes.next(), if !self.handshakes.is_empty() => match stream {
                    Ok(stream) => return (stream, peer),
                    Err(error) => tracing::debug!(%peer, %error, "KV Connect TLS handshake failed"),
                },
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
