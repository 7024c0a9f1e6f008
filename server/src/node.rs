//! A running node: opens storage, starts the commit pipeline, the expiry sweeper and the
//! client API, and tears them down in order when the shutdown token fires.
//!
//! Shutdown order: stop accepting and drain in-flight requests, stop the sweeper, let
//! the commit pipeline finish its group, flush RocksDB, release the data directory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::grpc::{self, NodeInfo};
use crate::kv::{KvError, KvStore};
use crate::kvconnect;
use crate::storage::{Durability, Engine, RocksEngine, RocksOptions, StorageError};
use crate::ttl::{compaction_filter, sweeper::Sweeper};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("{0}")]
    Listen(std::io::Error),
    #[error("client API failed: {0}")]
    Api(#[from] tonic::transport::Error),
    #[error("a node task failed: {0}")]
    Task(String),
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
}

/// Called once the node accepts requests.
pub type OnReady = Box<dyn FnOnce(Ready) + Send>;

pub async fn run(config: Config, shutdown: CancellationToken, on_ready: OnReady) -> Result<(), NodeError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(
        &config.storage.data_dir,
        RocksOptions {
            data_drop_filter: Some(compaction_filter::expired_records(clock.clone())),
        },
    )?);
    let durability = if config.storage.sync_writes {
        Durability::Sync
    } else {
        Durability::Buffered
    };
    // Everything that can fail is done before the commit pipeline starts, so an early
    // return never leaves a running pipeline or an unflushed engine behind.
    let listener = bind(config.api.listen, "the client API")
        .await
        .map_err(NodeError::Listen)?;
    let address = listener.local_addr().map_err(NodeError::Listen)?;
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
    let (store, commit_thread) = KvStore::start(engine.clone(), clock.clone(), durability)?;
    let info = NodeInfo {
        node_id: config.node.id.clone(),
        region: config.node.region.clone(),
        data_dir: config.storage.data_dir.clone(),
        sync_writes: config.storage.sync_writes,
    };

    // Every background task lives in this set; none is detached.
    let mut tasks: JoinSet<Result<(), NodeError>> = JoinSet::new();
    let api_stop = CancellationToken::new();
    let api = grpc::serve(listener, store.clone(), info, api_stop.clone());
    tasks.spawn(async move { api.await.map_err(NodeError::from) });
    let kv_connect_address = match kv_connect {
        Some((listener, tokens, address)) => {
            let serve = kvconnect::serve(listener, store.clone(), tokens, api_stop.clone());
            tasks.spawn(async move {
                serve
                    .await
                    .map_err(|e| NodeError::Task(format!("KV Connect failed: {e}")))
            });
            Some(address)
        }
        None => None,
    };
    let sweeper_stop = CancellationToken::new();
    let sweeper = Sweeper {
        engine: engine.clone(),
        clock: clock.clone(),
        interval: config.ttl.sweep_interval,
    };
    let sweep_store = store.clone();
    tasks.spawn({
        let stop = sweeper_stop.clone();
        async move {
            sweeper
                .run(
                    move |due| {
                        let store = sweep_store.clone();
                        async move { store.expire(due).await }
                    },
                    stop,
                )
                .await;
            Ok(())
        }
    });
    drop(store);

    tracing::info!(
        node = %config.node.id,
        region = %config.node.region,
        data_dir = %config.storage.data_dir.display(),
        sync_writes = config.storage.sync_writes,
        "edgekv listening on {address}"
    );
    if let Some(kv_connect) = kv_connect_address {
        tracing::info!("KV Connect listening on {kv_connect}");
    }
    on_ready(Ready {
        api: address,
        kv_connect: kv_connect_address,
    });

    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        Some(done) = tasks.join_next() => Some(match done {
            Ok(Ok(())) => NodeError::Task("a node task stopped unexpectedly".into()),
            Ok(Err(error)) => error,
            Err(join) => NodeError::Task(join.to_string()),
        }),
    };
    tracing::info!("shutting down: draining requests");
    api_stop.cancel();
    sweeper_stop.cancel();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(error)) = done {
                tracing::warn!(%error, "task ended with an error during shutdown");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still open after {DRAIN_TIMEOUT:?}; closing their connections");
        tasks.shutdown().await;
    }
    tokio::task::spawn_blocking(move || {
        commit_thread.shutdown();
        engine.flush()
    })
    .await
    .map_err(|e| NodeError::Task(e.to_string()))??;
    tracing::info!("shut down cleanly");
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Binds a listener, naming what it is for and where when that fails.
async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}")))
}
