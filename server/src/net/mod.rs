//! The peer transport: gRPC channels from this node to the other members' peer listeners,
//! with the simulated WAN ([`wan`]) applied to every message.
//!
//! Each call is delayed by the one-way delay of the link towards the peer before it is
//! sent and by that of the link back once the answer arrives, so a round trip costs what
//! the configured matrix says. A cut link fails the call at once, as a dropped packet
//! would after a timeout, only sooner.
//!
//! The listening side's message size caps, one per peer call, are [`message_caps`].

pub mod message_caps;
pub mod wan;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgekv_proto::peer::cache_replication_client::CacheReplicationClient;
use edgekv_proto::peer::peer_client::PeerClient;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

pub use self::message_caps::MessageCaps;
pub use self::wan::{Link, Links, Wan, WanLinkSettings, links_from_settings};

/// Accepted connections of `listener` with TCP_NODELAY set. The tonic builder's
/// `tcp_nodelay` only applies to listeners tonic binds itself; ours need it per
/// connection, or Nagle's algorithm meets delayed ACKs and small answers wait up to 40 ms.
pub fn accept_nodelay(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
        let stream = stream?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

/// A loopback port that is free now, for a configuration that must name its ports before
/// the node binds them (`edgekv demo`, tests). Picked below Linux's ephemeral range
/// (32768 and up), so the source port of some outgoing connection cannot take it in the
/// moment between this check and the bind; ports handed out once are not handed out again
/// by this process.
pub fn unused_loopback_port() -> std::io::Result<std::net::SocketAddr> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Processes running side by side start at different places in the range.
    let seed = std::process::id().wrapping_mul(7_919) % COUNT;
    let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let port = FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            return listener.local_addr();
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free loopback port between 20000 and 32000",
    ))
}

/// Largest message on the peer port, the service-wide limit of both peer services: what
/// append-entries batches may reach. Every other call has a smaller cap of its own
/// ([`message_caps`]).
pub const MAX_PEER_MESSAGE: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The message was never delivered: the link is cut or the connection was refused.
    #[error("peer {addr} is unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The call failed after it may have been delivered (connection lost mid-call).
    #[error("the call to peer {addr} failed midway: {reason}")]
    Broken { addr: String, reason: String },
    #[error("peer {addr} answered: {status}")]
    Status { addr: String, status: tonic::Status },
    #[error("peer {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
}

/// Where a message goes: the member's region (for the WAN) and peer address.
#[derive(Clone, Debug)]
pub struct Destination<'a> {
    pub region: &'a str,
    pub peer_addr: &'a str,
}

/// A constructor of a generated peer client that takes messages as large as the peer
/// port allows (append-entries batches, snapshot chunks, replication pages).
macro_rules! peer_client {
    ($client:ident) => {
        |channel| {
            $client::new(channel)
                .max_decoding_message_size(MAX_PEER_MESSAGE)
                .max_encoding_message_size(MAX_PEER_MESSAGE)
        }
    };
}

pub struct PeerTransport {
    local_region: String,
    wan: Arc<Wan>,
    connect_timeout: Duration,
    /// Mutual TLS towards the peers (the node's certificate and the cluster CA), or
    /// plaintext when the node runs without certificates.
    tls: Option<ClientTlsConfig>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl PeerTransport {
    pub fn new(local_region: String, wan: Arc<Wan>, connect_timeout: Duration, tls: Option<ClientTlsConfig>) -> Self {
        Self {
            local_region,
            wan,
            connect_timeout,
            tls,
            channels: Mutex::new(HashMap::new()),
        }
    }

    pub fn wan(&self) -> &Arc<Wan> {
        &self.wan
    }

    fn channel(&self, addr: &str) -> Result<Channel, TransportError> {
        let mut channels = self.channels.lock().expect("channel cache lock");
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let invalid = |e: tonic::transport::Error| TransportError::Unreachable {
            addr: addr.into(),
            reason: format!("invalid peer address: {e}"),
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(invalid)?;
        if let Some(tls) = &self.tls {
            // The peer's certificate must name the host part of `addr`.
            endpoint = endpoint.tls_config(tls.clone()).map_err(invalid)?;
        }
        // Lazy: a member that is down must not stall the caller here; the call fails and
        // Raft retries on its own schedule.
        let channel = endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// Calls a peer directly, bypassing the simulated WAN: for fault control itself, which
    /// must reach members that the simulated network currently cuts off.
    pub async fn call_out_of_band<T, F, Fut>(
        &self,
        to: Destination<'_>,
        timeout: Duration,
        rpc: F,
    ) -> Result<T, TransportError>
    where
        F: FnOnce(PeerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = PeerClient::new(self.channel(to.peer_addr)?);
        match tokio::time::timeout(timeout, rpc(client)).await {
            Ok(Ok(answer)) => Ok(answer.into_inner()),
            Ok(Err(status)) => Err(TransportError::Status {
                addr: to.peer_addr.into(),
                status,
            }),
            Err(_) => Err(TransportError::Timeout {
                addr: to.peer_addr.into(),
                timeout,
            }),
        }
    }

    /// Calls a peer's `Peer` service, through the simulated WAN, failing after `timeout`.
    pub async fn call<T, F, Fut>(&self, to: Destination<'_>, timeout: Duration, rpc: F) -> Result<T, TransportError>
    where
        F: FnOnce(PeerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_service(to, timeout, peer_client!(PeerClient), rpc).await
    }

    /// Calls a peer's `CacheReplication` service, through the simulated WAN.
    pub async fn call_cache<T, F, Fut>(
        &self,
        to: Destination<'_>,
        timeout: Duration,
        rpc: F,
    ) -> Result<T, TransportError>
    where
        F: FnOnce(CacheReplicationClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_service(to, timeout, peer_client!(CacheReplicationClient), rpc)
            .await
    }

    /// Calls any service on a peer's listener, through the simulated WAN.
    async fn call_service<C, T, F, Fut>(
        &self,
        to: Destination<'_>,
        timeout: Duration,
        make_client: impl FnOnce(Channel) -> C,
        rpc: F,
    ) -> Result<T, TransportError>
    where
        F: FnOnce(C) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let cut = || TransportError::Unreachable {
            addr: to.peer_addr.into(),
            reason: format!(
                "the simulated link between {} and {} is cut",
                self.local_region, to.region
            ),
        };
        let outbound = self.wan.delay(&self.local_region, to.region).ok_or_else(cut)?;
        let client = make_client(self.channel(to.peer_addr)?);
        let exchange = async {
            if !outbound.is_zero() {
                tokio::time::sleep(outbound).await;
            }
            let answer = rpc(client).await;
            // The answer travels back over the reverse link, which may have been cut or
            // slowed while the request was out. A lost answer is not a lost request: the
            // peer may have acted on it.
            let inbound = self
                .wan
                .delay(to.region, &self.local_region)
                .ok_or_else(|| TransportError::Broken {
                    addr: to.peer_addr.into(),
                    reason: format!(
                        "the answer was lost: the simulated link from {} to {} is cut",
                        to.region, self.local_region
                    ),
                })?;
            if !inbound.is_zero() {
                tokio::time::sleep(inbound).await;
            }
            answer.map(tonic::Response::into_inner).map_err(|status| {
                let from_transport = matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown)
                    && !edgekv_proto::grpc_status::carries_code(&status);
                if !from_transport {
                    TransportError::Status {
                        addr: to.peer_addr.into(),
                        status,
                    }
                } else if never_connected(&status) {
                    TransportError::Unreachable {
                        addr: to.peer_addr.into(),
                        reason: status.message().into(),
                    }
                } else {
                    TransportError::Broken {
                        addr: to.peer_addr.into(),
                        reason: status.message().into(),
                    }
                }
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout {
                addr: to.peer_addr.into(),
                timeout,
            })?
    }
}

/// Whether a failed call never got a connection (refused, no route): then nothing was
/// delivered and the caller may safely try elsewhere.
fn never_connected(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            );
        }
        // hyper-util's connector wraps the io error in its own ConnectError.
        if cause.to_string().starts_with("tcp connect error") {
            return true;
        }
        source = cause.source();
    }
    false
}
