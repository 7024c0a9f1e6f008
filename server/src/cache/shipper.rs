//! The sending side of cache replication: one shipper per peer takes the outbox from that
//! peer's cursor and pushes the current records of the keys written, at once to peers in
//! this region and after a short linger (to batch) across regions. The cursor is durable,
//! so a restart resumes where the peer left off; a peer that is down or cut off keeps its
//! place while local reads and writes go on untouched.
//!
//! A supervisor follows the Raft membership (every member, voter or learner, is a cache
//! replica), starts and stops shippers, and trims the outbox behind the slowest cursor. The
//! shippers are its own tasks: it waits for every one of them before it returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::store::{CacheStore, OUTBOX_CURSOR_PREFIX};
use super::wire::{self, EncodedRecord, MergeReply, MergeRequest, Rpc};
use crate::raft::{Member, NodeId, RaftNode};
use crate::storage::{ColumnFamily, Durability, StorageResult, WriteBatch};

/// Batches on their way to one peer at once. Under light load a batch may hold a single
/// write, so the window must cover a round trip's worth of writes: 64 is a write every
/// 3.5 ms over the demo's longest (220 ms) round trip before a write has to wait.
const IN_FLIGHT: usize = 64;
/// Bytes of records per batch (at most; one record larger than this travels alone).
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Outbox entries per message.
pub const BATCH_ENTRIES: usize = 1024;
/// The longest wait before shipping to a failing peer again.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Tunables of shipping.
#[derive(Clone, Copy, Debug)]
pub struct ShipSettings {
    /// How long a shipper to another region waits after the first new write, so one
    /// message carries what arrives meanwhile.
    pub cross_region_linger: Duration,
    /// Outbox entries per message.
    pub batch_entries: usize,
    pub request_timeout: Duration,
}

/// How shipping to one peer goes, for `kvctl cluster status`.
#[derive(Clone, Debug, Default)]
pub struct PeerShipping {
    pub region: String,
    /// The outbox sequence number the peer has taken up to.
    pub cursor: u64,
    pub last_error: Option<String>,
}

/// Shipping state per peer, shared with the status API. Every update is one insert or
/// field write, so a panic while it is held leaves it consistent: a poisoned lock is taken
/// as it is.
pub type ShippingStatus = Arc<Mutex<HashMap<NodeId, PeerShipping>>>;

fn cursor_key(peer: NodeId) -> Vec<u8> {
    let mut key = OUTBOX_CURSOR_PREFIX.to_vec();
    key.extend_from_slice(format!("{peer:020}").as_bytes());
    key
}

fn load_cursor(store: &CacheStore, engine: &dyn crate::storage::Engine, peer: NodeId) -> StorageResult<u64> {
    Ok(match engine.get(ColumnFamily::Meta, &cursor_key(peer))? {
        Some(raw) => raw.try_into().map(u64::from_be_bytes).unwrap_or(0),
        // A new peer starts at the current head: what it missed before it joined comes
        // from anti-entropy, not from replaying history.
        None => *store.watch_outbox().borrow(),
    })
}

fn save_cursor(engine: &dyn crate::storage::Engine, peer: NodeId, cursor: u64) -> StorageResult<()> {
    let mut batch = WriteBatch::default();
    batch.put(ColumnFamily::Meta, cursor_key(peer), cursor.to_be_bytes().to_vec());
    // Buffered: a cursor lost in a power failure only means shipping some entries twice,
    // which merging makes harmless.
    engine.write(batch, Durability::Buffered)
}

pub struct Shippers {
    pub store: Arc<CacheStore>,
    pub engine: Arc<dyn crate::storage::Engine>,
    pub raft: Arc<RaftNode>,
    pub settings: ShipSettings,
    pub status: ShippingStatus,
    /// Told the id of a peer that answers again after failing (anti-entropy syncs with
    /// it at once instead of on its next turn).
    pub recovered: mpsc::UnboundedSender<NodeId>,
}

impl Shippers {
    /// Runs until `stop`: keeps one shipper per peer and trims the outbox.
    pub async fn run(self, stop: CancellationToken) {
        let this = Arc::new(self);
        let mut running: HashMap<NodeId, (Member, CancellationToken)> = HashMap::new();
        let mut shippers = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            // Shippers of removed peers end once cancelled; collect them as they do.
            while shippers.try_join_next().is_some() {}
            let peers: HashMap<NodeId, Member> = this
                .raft
                .members()
                .into_iter()
                .filter(|(id, _)| *id != this.store.node())
                .collect();
            running.retain(|id, (member, token)| {
                let keep = peers.get(id) == Some(member);
                if !keep {
                    token.cancel();
                    this.status
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(id);
                }
                keep
            });
            for (id, member) in peers {
                if running.contains_key(&id) {
                    continue;
                }
                // The cursor is in the status before the trim below runs, so the trim never
                // drops entries a starting shipper has yet to send.
                let cursor = match load_cursor(&this.store, this.engine.as_ref(), id) {
                    Ok(cursor) => cursor,
                    Err(error) => {
                        tracing::error!(%error, peer = id, "cannot read the replication cursor; not shipping to it");
                        continue;
                    }
                };
                this.status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(
                        id,
                        PeerShipping {
                            region: member.region.clone(),
                            cursor,
                            last_error: None,
                        },
                    );
                let token = stop.child_token();
                running.insert(id, (member.clone(), token.clone()));
                let shipper = this.clone();
                shippers.spawn(async move { shipper.ship_to(id, member, cursor, token).await });
            }
            this.trim();
        }
        for (_, (_, token)) in running {
            token.cancel();
        }
        while shippers.join_next().await.is_some() {}
    }

    fn trim(&self) {
        let taken = {
            let status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            status
                .values()
                .map(|p| p.cursor)
                .min()
                .unwrap_or(*self.store.watch_outbox().borrow())
        };
        match self.store.trim_outbox(taken) {
            Ok(oldest) => {
                // Peers behind the oldest kept entry skip ahead; anti-entropy covers the gap.
                if oldest > 0 {
                    let mut status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    for peer in status.values_mut() {
                        peer.cursor = peer.cursor.max(oldest - 1);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot trim the replication outbox"),
        }
    }

    async fn ship_to(self: Arc<Self>, peer: NodeId, member: Member, mut cursor: u64, stop: CancellationToken) {
        let same_region = member.region == self.raft.member().region;
        let mut head = self.store.watch_outbox();
        let mut failures: u32 = 0;
        // Everything up to `cursor` the peer has merged; up to `sent` is on its way. Up to
        // IN_FLIGHT batches travel at once, so a write never waits a whole round trip for
        // the batch before it; the answers come back in order (FuturesOrdered), and after a
        // failure the unanswered ones are sent again (merging twice is harmless).
        let mut sent = cursor;
        let mut in_flight = FuturesOrdered::new();
        loop {
            // The trimmer may have moved the cursor past entries it dropped.
            let floor = self
                .status
                .lock()
                .expect("status lock")
                .get(&peer)
                .map_or(0, |p| p.cursor);
            cursor = cursor.max(floor);
            sent = sent.max(cursor);
            while in_flight.len() < IN_FLIGHT && *head.borrow_and_update() > sent {
                match self.next_batch(sent).await {
                    Ok(Some((last, records))) => {
                        in_flight.push_back(self.send(&member, records, last));
                        sent = last;
                    }
                    // Trimmed away meanwhile: nothing left to send below the head.
                    Ok(None) => sent = *head.borrow(),
                    Err(error) => {
                        tracing::warn!(%error, peer, "cannot read the replication outbox");
                        break;
                    }
                }
            }
            if in_flight.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = head.changed() => if changed.is_err() { return },
                }
                if !same_region {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(self.settings.cross_region_linger) => {}
                    }
                }
                continue;
            }
            // Wait for an answer, or for a new write while the window has room: it leaves
            // at once, without waiting for the batches ahead of it.
            let answer = tokio::select! {
                _ = stop.cancelled() => return,
                Some(answer) = in_flight.next() => answer,
                changed = head.changed(), if in_flight.len() < IN_FLIGHT => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            };
            match answer {
                Ok(shipped_to) => {
                    cursor = shipped_to;
                    if failures > 0 {
                        // The peer is back: repair what the outbox may not carry now.
                        let _ = self.recovered.send(peer);
                    }
                    failures = 0;
                    if let Err(error) = save_cursor(self.engine.as_ref(), peer, cursor) {
                        tracing::warn!(%error, peer, "cannot save the replication cursor");
                    }
                    if let Some(status) = self
                        .status
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get_mut(&peer)
                    {
                        status.cursor = cursor;
                        status.last_error = None;
                    }
                }
                Err(error) => {
                    in_flight.clear();
                    sent = cursor;
                    failures = failures.saturating_add(1);
                    tracing::debug!(%error, peer, "shipping cache writes failed; will retry");
                    if let Some(status) = self
                        .status
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get_mut(&peer)
                    {
                        status.last_error = Some(error);
                    }
                    let backoff = Duration::from_millis(50 * 2u64.pow(failures.min(5))).min(MAX_BACKOFF);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
    }

    /// The next batch after `sent`: its last sequence number and the current records of
    /// its keys; `None` when the outbox holds nothing there.
    async fn next_batch(&self, sent: u64) -> Result<Option<(u64, Vec<EncodedRecord>)>, String> {
        let store = self.store.clone();
        let limit = self.settings.batch_entries;
        tokio::task::spawn_blocking(move || -> StorageResult<_> {
            let entries = store.outbox_after(sent, limit)?;
            let mut last = None;
            let mut seen = std::collections::HashSet::new();
            let mut records = Vec::new();
            let mut bytes = 0;
            for (seq, key) in entries {
                // Always at least one entry, so a huge record still travels alone.
                if bytes >= BATCH_BYTES {
                    break;
                }
                last = Some(seq);
                if !seen.insert(key.clone()) {
                    continue;
                }
                for record in store.records(std::slice::from_ref(&key))? {
                    bytes += record.0.len() + record.1.len();
                    records.push(record);
                }
            }
            Ok(last.map(|last| (last, records)))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    /// Sends one batch; resolves to its last sequence number once the peer merged it.
    async fn send(&self, member: &Member, records: Vec<EncodedRecord>, last: u64) -> Result<u64, String> {
        let request = MergeRequest {
            from_node: self.store.node(),
            sent_at: self.store.stamp(),
            from_outbox: true,
            records,
        };
        let transport = self.raft.transport();
        let _: MergeReply = wire::call(transport, member, self.settings.request_timeout, Rpc::Merge, &request).await?;
        Ok(last)
    }
}
