//! Anti-entropy: every interval, this node syncs with the next peer in turn. It compares
//! bucket digests, then for the buckets that differ pulls the peer's records (merged here)
//! and pushes its own (merged there). After a round both hold the merge of both, whatever
//! the outbox missed: a node that was down, a new node, a region cut off for an hour.
//!
//! Costs: the digests are kept current in memory, so a round between nodes that agree is
//! one small message each way. A differing bucket is found by scanning the records (no
//! per-bucket index yet), which is linear in the cache records of the node asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::digest;
use super::store::{CacheStore, Source};
use super::wire::{self, DigestsReply, DigestsRequest, FetchReply, FetchRequest, MergeReply, MergeRequest, Rpc};
use crate::raft::{Member, NodeId, RaftNode};

/// Bytes per page of records in either direction.
const PAGE_BYTES: u32 = 16 * 1024 * 1024;

/// When each peer last finished a round with this node (a poisoned lock is taken as it
/// is: every update is one insert).
pub type SyncTimes = Arc<Mutex<HashMap<NodeId, Instant>>>;

pub struct AntiEntropy {
    pub store: Arc<CacheStore>,
    pub raft: Arc<RaftNode>,
    pub interval: Duration,
    pub request_timeout: Duration,
    pub synced: SyncTimes,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    pub differing_buckets: usize,
    pub pulled: usize,
    pub pushed: usize,
}

impl AntiEntropy {
    /// Runs until `stop`: a round with the next peer in turn every interval, and at once
    /// with a peer the shipper saw come back (`recovered`).
    pub async fn run(self, mut recovered: mpsc::UnboundedReceiver<NodeId>, stop: CancellationToken) {
        let mut turn = 0usize;
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wanted = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => None,
                Some(peer) = recovered.recv() => Some(peer),
            };
            let mut peers: Vec<(NodeId, Member)> = self
                .raft
                .members()
                .into_iter()
                .filter(|(id, _)| *id != self.store.node())
                .collect();
            if peers.is_empty() {
                continue;
            }
            peers.sort_by_key(|(id, _)| *id);
            let index = match wanted.and_then(|peer| peers.iter().position(|(id, _)| *id == peer)) {
                Some(index) => index,
                None => {
                    turn = turn.wrapping_add(1);
                    turn % peers.len()
                }
            };
            let (peer, member) = peers.swap_remove(index);
            let round = tokio::select! {
                _ = stop.cancelled() => return,
                round = self.sync_with(&member) => round,
            };
            match round {
                Ok(outcome) => {
                    self.synced
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(peer, Instant::now());
                    if outcome.differing_buckets > 0 {
                        tracing::info!(
                            peer,
                            buckets = outcome.differing_buckets,
                            pulled = outcome.pulled,
                            pushed = outcome.pushed,
                            "anti-entropy repaired differences"
                        );
                    }
                }
                Err(error) => tracing::debug!(%error, peer, "anti-entropy round failed"),
            }
        }
    }

    /// One round with `member`: compare digests, pull and push the differing buckets.
    pub async fn sync_with(&self, member: &Member) -> Result<RoundOutcome, String> {
        let (transport, timeout) = (self.raft.transport(), self.request_timeout);
        let asked = DigestsRequest {
            from_node: self.store.node(),
            sent_at: self.store.stamp(),
        };
        let theirs: DigestsReply = wire::call(transport, member, timeout, Rpc::Digests, &asked).await?;
        let buckets = digest::differing(&self.store.digests(), &theirs.digests);
        let mut outcome = RoundOutcome {
            differing_buckets: buckets.iter().filter(|b| **b).count(),
            ..RoundOutcome::default()
        };
        if outcome.differing_buckets == 0 {
            return Ok(outcome);
        }
        // Pull theirs.
        let mut after = None;
        loop {
            let fetch = FetchRequest {
                buckets: buckets.to_vec(),
                after: after.take(),
                max_bytes: PAGE_BYTES,
            };
            let page: FetchReply = wire::call(transport, member, timeout, Rpc::Fetch, &fetch).await?;
            let store = self.store.clone();
            outcome.pulled += tokio::task::spawn_blocking(move || store.merge(&page.records, Source::Repair))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // Push ours.
        let mut after: Option<Vec<u8>> = None;
        loop {
            let store = self.store.clone();
            let from = after.take();
            let (records, next) = tokio::task::spawn_blocking(move || {
                store.records_in_buckets(&buckets, from.as_deref(), PAGE_BYTES as usize)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            if !records.is_empty() {
                let push = MergeRequest {
                    from_node: self.store.node(),
                    sent_at: self.store.stamp(),
                    from_outbox: false,
                    records,
                };
                let answer: MergeReply = wire::call(transport, member, timeout, Rpc::Merge, &push).await?;
                outcome.pushed += answer.changed as usize;
            }
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(outcome)
    }
}
