//! What the cache store reports for `kvctl cluster status`: counters, inbound replication
//! lag per peer, and one snapshot of both with the writer state's counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::CacheStore;

/// Counters for `kvctl cluster status`.
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Records from peers that changed ours.
    pub merges: AtomicU64,
    /// Merges where two different writes of one key met and the stamps picked one.
    pub conflicts_resolved: AtomicU64,
    /// Records refused because their stamp was too far ahead of our clock.
    pub clock_skew_refusals: AtomicU64,
    /// Records anti-entropy brought in.
    pub repaired: AtomicU64,
    /// Outbox entries dropped over the limit (their peers are repaired by anti-entropy).
    pub outbox_dropped: AtomicU64,
}

/// Propagation lag observed for writes shipped from one node: wall time from the write's
/// stamp to its merge here.
#[derive(Clone, Copy, Debug, Default)]
pub struct InboundLag {
    pub last_ms: u64,
    pub max_ms: u64,
    pub records: u64,
}

/// What the store holds, as one snapshot of the counters.
#[derive(Clone, Debug, Default)]
pub struct CacheSnapshot {
    pub outbox_head: u64,
    pub outbox_oldest: u64,
    pub tombstones: u64,
    pub records: u64,
    pub merges: u64,
    pub conflicts_resolved: u64,
    pub clock_skew_refusals: u64,
    pub repaired: u64,
    pub outbox_dropped: u64,
    pub inbound: HashMap<u64, InboundLag>,
}

impl CacheStore {
    pub fn snapshot(&self) -> CacheSnapshot {
        let state = self.state();
        let c = &self.counters;
        CacheSnapshot {
            outbox_head: state.outbox_head,
            outbox_oldest: state.outbox_oldest,
            tombstones: state.tombstones,
            records: state.records,
            merges: c.merges.load(Ordering::Relaxed),
            conflicts_resolved: c.conflicts_resolved.load(Ordering::Relaxed),
            clock_skew_refusals: c.clock_skew_refusals.load(Ordering::Relaxed),
            repaired: c.repaired.load(Ordering::Relaxed),
            outbox_dropped: c.outbox_dropped.load(Ordering::Relaxed),
            inbound: self.inbound().clone(),
        }
    }

    /// The largest propagation lag among the latest writes merged from each peer.
    pub fn recent_lag_ms(&self) -> u64 {
        let inbound = self.inbound();
        inbound.values().map(|lag| lag.last_ms).max().unwrap_or(0)
    }
}
