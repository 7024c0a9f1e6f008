//! KV Connect over HTTPS: the node's TLS acceptor ([`TlsIncoming`]) as an axum listener,
//! handing axum connections only once their handshake is done (HTTP/2 or HTTP/1.1, as ALPN
//! chose).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::tls::handshakes::TlsIncoming;

pub struct TlsListener(TlsIncoming);

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        Self(TlsIncoming::new(tcp, config, "KV Connect"))
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.0.accept().await
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}
