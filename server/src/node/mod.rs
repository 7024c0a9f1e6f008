//! A running node: opens storage, starts the Raft member with its peer listener, forms or
//! joins the cluster, then serves the client API, KV Connect and the expiry sweeper; tears
//! them down in order when the shutdown token fires.
//!
//! Each part runs as a [`component::Component`] (tasks that start and stop together, in a
//! `JoinSet` the node owns): the peer side (peer listener, proposer), the client side
//! (client API, KV Connect) and the background work (TTL sweeper, cache shippers,
//! anti-entropy and sweeper). Shutdown order: stop accepting and drain in-flight client
//! requests while the background work stops, stop the Raft member, then the peer side,
//! flush RocksDB, release the data directory.

mod component;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use self::component::Component;
use crate::auth::Authenticator;
use crate::cache::anti_entropy::AntiEntropy;
use crate::cache::shipper::Shippers;
use crate::cache::{self, CacheReplicationService, CacheStore};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::grpc::{self, NodeInfo};
use crate::kv::{KvError, KvStore, KvStoreBuilder};
use crate::kvconnect;
use crate::net::{PeerTransport, Wan};
use crate::raft::{Bootstrap, ConsensusError, Member, PeerService, Proposer, RaftNode, ReplicatedClock};
use crate::storage::{Durability, Engine, RocksEngine, RocksOptions, StorageError};
use crate::tls::NodeTls;
use crate::tls::handshakes::{HandshakeMonitor, TlsIncoming};
use crate::ttl::{compaction_filter, sweeper::Sweeper};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Listen(std::io::Error),
    #[error("client API failed: {0}")]
    Api(#[from] tonic::transport::Error),
    #[error("a node task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot load the token secrets: {0}")]
    AuthSecrets(#[from] edgekv_proto::token::TokenError),
}

/// How long shutdown waits for in-flight requests and for clients to acknowledge the
/// connection close before it drops their connections. Writes already handed to the commit
/// pipeline still complete; only the answers are lost.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The addresses a ready node listens on.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    pub api: SocketAddr,
    pub kv_connect: Option<SocketAddr>,
    pub peer: SocketAddr,
}

/// Called once the node accepts requests.
pub type OnReady = Box<dyn FnOnce(Ready) + Send>;

/// Peer connections give up connecting after this long; Raft retries on its own schedule.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn run(config: Config, shutdown: CancellationToken, on_ready: OnReady) -> Result<(), NodeError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Compaction drops expired records by the replicated clock, never ahead of what later
    // log entries will consider expired.
    let replicated_clock = ReplicatedClock::default();
    let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(
        &config.storage.data_dir,
        RocksOptions {
            data_drop_filter: Some(compaction_filter::expired_records(Arc::new(replicated_clock.clone()))),
        },
    )?);
    // Certificates are read before anything opens, so a bad directory stops the start.
    let tls = config.tls.certs_dir().map(NodeTls::load).transpose()?;
    let peer_tls = tls.as_ref().map(NodeTls::peer_server).transpose()?;
    let peer_handshakes = Arc::new(HandshakeMonitor::default());
    let authenticator = Arc::new(match config.auth.secret_file() {
        Some(path) => Authenticator::from_file(path)?,
        None => Authenticator::disabled(),
    });
    let durability = if config.storage.sync_writes {
        Durability::Sync
    } else {
        Durability::Buffered
    };
    // Everything that can fail is bound before any task starts, so an early return never
    // leaves a running task or an unflushed engine behind.
    let Listeners {
        api: listener,
        api_address: address,
        peer: peer_listener,
        peer_address,
        kv_connect,
    } = Listeners::bind(&config).await?;

    let member = Member {
        region: config.node.region.clone(),
        peer_addr: config.cluster.advertised_peer_addr(peer_address),
    };
    let bootstrap = bootstrap_plan(&config, &member)?;
    let wan = Arc::new(Wan::new(crate::net::links_from_settings(&config.cluster.wan_links)));
    let transport = Arc::new(PeerTransport::new(
        config.node.region.clone(),
        wan,
        PEER_CONNECT_TIMEOUT,
        tls.as_ref().map(NodeTls::peer_client),
    ));
    let store_builder = KvStoreBuilder::new(engine.clone(), clock.clone())?;
    let cache = Arc::new(CacheStore::open(
        engine.clone(),
        config.node.id,
        clock.clone(),
        durability,
        config.cache,
        store_builder.keyspace(),
        store_builder.changes(),
    )?);
    let (raft, proposer) = RaftNode::start(
        config.node.id,
        member,
        address.to_string(),
        engine.clone(),
        store_builder.applier(),
        durability,
        config.cluster.raft.clone(),
        transport,
        clock.clone(),
        replicated_clock,
    )
    .await?;

    // The Raft side: peer listener and proposer. Stopped after the client side.
    let mut peer_side = start_peer_side(
        peer_listener,
        peer_tls.map(|config| (config, peer_handshakes.clone())),
        &raft,
        &cache,
        config.cluster.allow_fault_injection,
        config.cluster.raft.max_snapshot_bytes,
        proposer,
    );
    let stop_raft = |raft: Arc<RaftNode>, peer_side: Component| async move {
        raft.shutdown().await;
        peer_side.stop(None).await;
    };

    let bootstrapped = tokio::select! {
        result = raft.bootstrap(&bootstrap) => result.map(|_| true),
        _ = shutdown.cancelled() => Ok(false),
    };
    match bootstrapped {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            stop_raft(raft.clone(), peer_side).await;
            tokio::task::spawn_blocking(move || engine.flush())
                .await
                .map_err(|e| NodeError::Task(e.to_string()))??;
            return bootstrapped.map(|_| ()).map_err(NodeError::from);
        }
    }
    let store = store_builder.into_store(raft.clone(), cache.clone());
    let monitors = cache::Monitors::default();
    let info = NodeInfo {
        node_id: config.node.id.to_string(),
        region: config.node.region.clone(),
        data_dir: config.storage.data_dir.clone(),
        sync_writes: config.storage.sync_writes,
        allow_fault_injection: config.cluster.allow_fault_injection,
        replication: monitors.clone(),
        peer_handshakes: tls.is_some().then(|| peer_handshakes.clone()),
    };

    // The client side: the APIs, and the work behind them.
    let kv_connect_address = kv_connect.as_ref().map(|(_, _, address)| *address);
    let mut client_side = start_client_side(listener, kv_connect, tls.as_ref(), &authenticator, &store, info)?;
    let mut background = start_background(&config, &engine, &clock, store, &cache, &raft, &monitors);

    tracing::info!(
        node = config.node.id,
        region = %config.node.region,
        data_dir = %config.storage.data_dir.display(),
        sync_writes = config.storage.sync_writes,
        peer = %peer_address,
        "edgekv listening on {address}"
    );
    if let Some(kv_connect) = kv_connect_address {
        tracing::info!("KV Connect listening on {kv_connect}");
    }
    on_ready(Ready {
        api: address,
        kv_connect: kv_connect_address,
        peer: peer_address,
    });

    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        error = client_side.failure() => Some(error),
        error = background.failure() => Some(error),
        error = peer_side.failure() => Some(error),
    };
    tracing::info!("shutting down: draining requests");
    tokio::join!(
        client_side.stop(Some(DRAIN_TIMEOUT)),
        background.stop(Some(DRAIN_TIMEOUT))
    );
    stop_raft(raft, peer_side).await;
    tokio::task::spawn_blocking(move || engine.flush())
        .await
        .map_err(|e| NodeError::Task(e.to_string()))??;
    tracing::info!("shut down cleanly");
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The node's listening sockets, bound before anything starts.
struct Listeners {
    api: tokio::net::TcpListener,
    api_address: SocketAddr,
    peer: tokio::net::TcpListener,
    peer_address: SocketAddr,
    /// KV Connect's listener, access tokens and address, when it is enabled.
    kv_connect: Option<(tokio::net::TcpListener, Vec<String>, SocketAddr)>,
}

impl Listeners {
    async fn bind(config: &Config) -> Result<Self, NodeError> {
        let api = bind(config.api.listen, "the client API")
            .await
            .map_err(NodeError::Listen)?;
        let api_address = api.local_addr().map_err(NodeError::Listen)?;
        let peer = bind(config.cluster.peer_listen, "peers (--peer-listen)")
            .await
            .map_err(NodeError::Listen)?;
        let peer_address = peer.local_addr().map_err(NodeError::Listen)?;
        let kv_connect = if config.kv_connect.enabled {
            let tokens = config
                .kv_connect
                .all_access_tokens()
                .map_err(|e| NodeError::Task(e.to_string()))?;
            let listener = bind(config.kv_connect.listen, "KV Connect")
                .await
                .map_err(NodeError::Listen)?;
            let address = listener.local_addr().map_err(NodeError::Listen)?;
            Some((listener, tokens, address))
        } else {
            None
        };
        Ok(Self {
            api,
            api_address,
            peer,
            peer_address,
            kv_connect,
        })
    }
}

/// The peer side: the peer listener (Raft and cache replication services) and the
/// proposer that batches writes into log entries.
fn start_peer_side(
    listener: tokio::net::TcpListener,
    tls: Option<(Arc<rustls::ServerConfig>, Arc<HandshakeMonitor>)>,
    raft: &Arc<RaftNode>,
    cache: &Arc<CacheStore>,
    allow_fault_injection: bool,
    max_snapshot_bytes: u64,
    proposer: Proposer,
) -> Component {
    let mut peer_side = Component::new("peer");
    let peer_service = PeerService::new(raft.clone(), allow_fault_injection, max_snapshot_bytes).into_server();
    let cache_service = CacheReplicationService::new(cache.clone()).into_server();
    let stop = peer_side.stop_signal();
    peer_side.spawn(async move {
        // Each call's message size cap, enforced before tonic buffers the message.
        let router = tonic::transport::Server::builder()
            .add_service(crate::net::MessageCaps::new(peer_service))
            .add_service(crate::net::MessageCaps::new(cache_service));
        // With TLS the node runs the handshakes itself, to count the ones it refuses.
        let served = match tls {
            Some((config, monitor)) => {
                let incoming = TlsIncoming::new(listener, config, "peer").with_monitor(monitor);
                router
                    .serve_with_incoming_shutdown(incoming.into_stream(), stop.cancelled_owned())
                    .await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(crate::net::accept_nodelay(listener), stop.cancelled_owned())
                    .await
            }
        };
        served.map_err(NodeError::from)
    });
    let stop = peer_side.stop_signal();
    peer_side.spawn(async move {
        proposer.run(stop).await;
        Ok(())
    });
    peer_side
}

/// The client side: the gRPC API and, when enabled, KV Connect (its listener, access
/// tokens and address).
fn start_client_side(
    listener: tokio::net::TcpListener,
    kv_connect: Option<(tokio::net::TcpListener, Vec<String>, SocketAddr)>,
    tls: Option<&NodeTls>,
    authenticator: &Arc<Authenticator>,
    store: &KvStore,
    info: NodeInfo,
) -> Result<Component, NodeError> {
    let mut client_side = Component::new("client API");
    let api = grpc::serve(
        listener,
        tls.map(NodeTls::client_api_server),
        authenticator.clone(),
        store.clone(),
        info,
        client_side.stop_signal(),
    );
    client_side.spawn(async move { api.await.map_err(NodeError::from) });
    if let Some((listener, tokens, _)) = kv_connect {
        let https = tls.map(NodeTls::https_server).transpose()?;
        let serve = kvconnect::serve(
            listener,
            https,
            authenticator.clone(),
            store.clone(),
            tokens,
            client_side.stop_signal(),
        );
        client_side.spawn(async move {
            serve
                .await
                .map_err(|e| NodeError::Task(format!("KV Connect failed: {e}")))
        });
    }
    Ok(client_side)
}

/// The node's background work: the TTL sweeper of strong keys (which proposes expiries
/// through `store`), and the cache class's shippers, anti-entropy and sweeper.
fn start_background(
    config: &Config,
    engine: &Arc<dyn Engine>,
    clock: &Arc<dyn Clock>,
    store: KvStore,
    cache: &Arc<CacheStore>,
    raft: &Arc<RaftNode>,
    monitors: &cache::Monitors,
) -> Component {
    let mut background = Component::new("background");
    let sweeper = Sweeper {
        engine: engine.clone(),
        clock: clock.clone(),
        interval: config.ttl.sweep_interval,
    };
    let stop = background.stop_signal();
    let sweeping = store.clone();
    background.spawn(async move {
        sweeper
            .run(
                move |due| {
                    let store = sweeping.clone();
                    async move { store.expire(due).await }
                },
                stop,
            )
            .await;
        Ok(())
    });
    // The leader forgets request ids once they leave the window (replicas follow its log).
    let stop = background.stop_signal();
    background.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(crate::kv::requests::FORGET_INTERVAL) => {}
            }
            // A full batch is followed by another at once, so forgetting keeps up with any
            // write rate.
            loop {
                match store.forget_old_requests(crate::kv::requests::REQUEST_WINDOW).await {
                    Ok(forgotten) if forgotten >= crate::kv::requests::FORGET_BATCH && !stop.is_cancelled() => {
                        tracing::debug!(forgotten, "forgot request ids past their window");
                    }
                    Ok(0) => break,
                    Ok(forgotten) => {
                        tracing::debug!(forgotten, "forgot request ids past their window");
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot forget old request ids; retrying later");
                        break;
                    }
                }
            }
        }
    });
    let (recovered, recoveries) = tokio::sync::mpsc::unbounded_channel();
    let shippers = Shippers {
        store: cache.clone(),
        engine: engine.clone(),
        raft: raft.clone(),
        settings: config.cache.ship_settings(config.cluster.raft.request_timeout),
        status: monitors.shipping.clone(),
        recovered,
    };
    background.spawn(shippers.run(background.stop_signal()).map(Ok));
    let anti_entropy = AntiEntropy {
        store: cache.clone(),
        raft: raft.clone(),
        interval: config.cache.anti_entropy_interval,
        request_timeout: config.cluster.raft.request_timeout,
        synced: monitors.synced.clone(),
    };
    background.spawn(anti_entropy.run(recoveries, background.stop_signal()).map(Ok));
    background.spawn(cache::sweep(cache.clone(), config.ttl.sweep_interval, background.stop_signal()).map(Ok));
    background
}

/// Waits to be added (`await_membership`), forms a cluster from `initial_cluster`, joins
/// through `join`, or (none given) forms a one-voter cluster of this node.
fn bootstrap_plan(config: &Config, me: &Member) -> Result<Bootstrap, NodeError> {
    if config.cluster.await_membership {
        return Ok(Bootstrap::AwaitMembership);
    }
    if !config.cluster.join.is_empty() {
        return Ok(Bootstrap::Join(config.cluster.join.clone()));
    }
    let members = config.cluster.initial_members()?;
    if members.is_empty() {
        return Ok(Bootstrap::InitialCluster([(config.node.id, me.clone())].into()));
    }
    Ok(Bootstrap::InitialCluster(
        members
            .into_iter()
            .map(|m| {
                let member = if m.id == config.node.id {
                    me.clone()
                } else {
                    Member {
                        region: m.region,
                        peer_addr: m.peer_addr,
                    }
                };
                (m.id, member)
            })
            .collect(),
    ))
}

/// Binds a listener, naming what it is for and where when that fails.
async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}")))
}
