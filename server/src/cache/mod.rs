//! Cache-class replication: multi-master, by CRDT merge.
//!
//! - [`store`]: the merged records, the durable outbox and the due list, under one lock.
//! - [`shipper`]: pushes each write to every peer (in region at once, across regions
//!   batched), from a durable per-peer cursor.
//! - [`service`]: the receiving side, merging idempotently; serves anti-entropy's requests.
//! - [`anti_entropy`]: digest comparison and repair between pairs of nodes.
//! - [`digest`], [`wire`]: the bucket digests and the message formats.
//! - [`settings`]: the `[cache]` section of the configuration file.
//!
//! The topology is the Raft membership: every member, in any region, holds every cache
//! key. Nothing here waits on Raft; a node cut off from the rest keeps reading, writing
//! and queueing.

pub mod anti_entropy;
pub mod digest;
pub mod service;
pub mod settings;
pub mod shipper;
pub mod store;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use self::anti_entropy::SyncTimes;
pub use self::service::CacheReplicationService;
pub use self::settings::CacheSettings;
pub use self::shipper::ShippingStatus;
pub use self::store::{CacheOp, CacheStore};

/// What the status API reads about replication besides the store's own counters.
#[derive(Clone, Debug, Default)]
pub struct Monitors {
    pub shipping: ShippingStatus,
    pub synced: SyncTimes,
}

/// Expires cache values and collects tombstones every `interval`, a bounded batch at a
/// time (a long backlog is worked through batch after batch without waiting).
pub async fn sweep(store: Arc<CacheStore>, interval: Duration, stop: CancellationToken) {
    const BATCH: usize = 1024;
    loop {
        let worker = store.clone();
        let swept = tokio::task::spawn_blocking(move || worker.sweep(BATCH)).await;
        let more = match swept {
            Ok(Ok(count)) => count == BATCH,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cache sweep failed");
                false
            }
            Err(error) => {
                tracing::warn!(%error, "cache sweep task failed");
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
