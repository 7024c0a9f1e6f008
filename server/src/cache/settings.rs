//! The cache class's settings (`[cache]` in docs/config.example.toml), and the shipping
//! settings made from them.

use std::time::Duration;

use serde::Deserialize;

use super::shipper::{BATCH_ENTRIES, ShipSettings};

/// Tunables of the cache class's replication (see docs/cluster.md, "Cache class").
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// A peer's clock may be this far ahead of ours; records stamped further ahead are
    /// refused (and counted), never merged.
    #[serde(with = "crate::duration_text")]
    pub max_clock_skew: Duration,
    /// How long a deleted or expired key's tombstone is kept: longer than the longest
    /// partition the cluster must survive, or a write older than the delete, delivered
    /// after the partition, could bring the key back.
    #[serde(with = "crate::duration_text")]
    pub tombstone_grace: Duration,
    /// Outbox entries kept for a peer that does not take them; beyond that the oldest are
    /// dropped and anti-entropy repairs that peer instead (nothing is lost, only slower).
    pub outbox_limit: u64,
    /// How often a node compares digests with the next peer in turn.
    #[serde(with = "crate::duration_text")]
    pub anti_entropy_interval: Duration,
    /// How long shipping to another region waits to batch writes.
    #[serde(with = "crate::duration_text")]
    pub cross_region_linger: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_clock_skew: Duration::from_secs(1),
            tombstone_grace: Duration::from_secs(24 * 3600),
            outbox_limit: 1_000_000,
            anti_entropy_interval: Duration::from_secs(1),
            cross_region_linger: Duration::from_millis(5),
        }
    }
}

impl CacheSettings {
    pub fn max_clock_skew_ms(&self) -> u64 {
        self.max_clock_skew.as_millis() as u64
    }

    pub fn tombstone_grace_ms(&self) -> u64 {
        self.tombstone_grace.as_millis() as u64
    }

    /// How the shippers run: batching by these settings, each call bounded by
    /// `request_timeout` (the cluster's).
    pub fn ship_settings(&self, request_timeout: Duration) -> ShipSettings {
        ShipSettings {
            cross_region_linger: self.cross_region_linger,
            batch_entries: BATCH_ENTRIES,
            request_timeout,
        }
    }
}
