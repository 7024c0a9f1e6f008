//! The cache class's storage: every cache key's merged [`CacheRecord`] in the `cache`
//! column family, the durable outbox of keys to ship, the due list of values to expire and
//! tombstones to collect, and the per-bucket digests anti-entropy compares.
//!
//! All changes to cache records go through [`CacheStore`] under one lock, so a
//! read-merge-write of a key is never interleaved with another, and the in-memory digests
//! and counters always describe what is on disk. A local write puts the record and its
//! outbox entry in one `WriteBatch`: once acknowledged, it is shipped even across a crash.
//!
//! This file holds the store and its writes and merges; [`outbox`] the outbox's reading and
//! trimming, [`sweep`] expiry and tombstone collection, [`status`] the counters it reports.

mod outbox;
mod status;
mod sweep;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use edgekv_proto::Versionstamp;
use edgekv_proto::key::display_encoded as display_key;
use tokio::sync::{broadcast, watch};

pub use self::status::{CacheCounters, CacheSnapshot, InboundLag};
use super::digest::{BUCKETS, Buckets, bucket_of, record_hash};
use super::settings::CacheSettings;
use super::wire::EncodedRecord;
use crate::clock::Clock;
use crate::crdt::hlc::{ClockSkew, HybridClock, Timestamp};
use crate::crdt::record::{CacheRecord, KindMismatch};
use crate::crdt::values::Payload;
use crate::keyspace::{Class, Keyspace};
use crate::storage::codec::{Envelope, expiry_index_key};
use crate::storage::{ColumnFamily, Durability, Engine, ScanRange, StorageError, StorageResult, WriteBatch};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{operation} on cache key {key}: the key holds {found}; delete it first")]
    KindMismatch {
        operation: &'static str,
        key: String,
        found: &'static str,
    },
    #[error(transparent)]
    ClockSkew(#[from] ClockSkew),
}

/// One change of a local cache write.
#[derive(Clone, Debug)]
pub enum CacheOp {
    Set {
        key: Vec<u8>,
        payload: Payload,
    },
    Delete {
        key: Vec<u8>,
    },
    Sum {
        key: Vec<u8>,
        operand: u64,
    },
    /// Adds a member to the key's OR-set.
    SetAdd {
        key: Vec<u8>,
        member: Vec<u8>,
    },
    /// Removes a member from the key's OR-set, as far as this node has seen it.
    SetRemove {
        key: Vec<u8>,
        member: Vec<u8>,
    },
    /// Keeps the largest (`largest`) or smallest operand of the key's current run.
    Extremum {
        key: Vec<u8>,
        operand: u64,
        largest: bool,
    },
}

impl CacheOp {
    fn key(&self) -> &[u8] {
        match self {
            CacheOp::Set { key, .. }
            | CacheOp::Delete { key }
            | CacheOp::Sum { key, .. }
            | CacheOp::SetAdd { key, .. }
            | CacheOp::SetRemove { key, .. }
            | CacheOp::Extremum { key, .. } => key,
        }
    }
}

/// Where merged records came from, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Shipped from a peer's outbox right after it was written.
    Outbox { from_node: u64 },
    /// Found different by anti-entropy.
    Repair,
}

struct WriterState {
    /// Sequence number of the newest outbox entry (0: none ever).
    outbox_head: u64,
    /// Sequence number of the oldest outbox entry still kept.
    outbox_oldest: u64,
    digests: Buckets,
    /// Tombstones (deleted keys and reclaimed expired values) waiting for collection.
    tombstones: u64,
    records: u64,
}

impl WriterState {
    /// Reads the outbox bounds and computes the digests and counts with one scan of the
    /// cache records; every stored stamp is witnessed by `hlc`.
    fn load(engine: &dyn Engine, hlc: &HybridClock<Arc<dyn Clock>>) -> StorageResult<Self> {
        let mut digests = Buckets::default();
        let (mut tombstones, mut records) = (0, 0);
        for item in engine.scan(ColumnFamily::Cache, ScanRange::all(), false) {
            let (key, bytes) = item?;
            let record = CacheRecord::decode(&bytes).map_err(|e| corrupt(&key, e))?;
            digests.toggle(bucket_of(&key), record_hash(&key, &bytes));
            records += 1;
            tombstones += u64::from(record.is_tombstone());
            // Stamps issued from now on stay above every stored one, even when the wall
            // clock was set back across a restart.
            hlc.witness(record.stamp());
        }
        let last = |reverse| -> StorageResult<u64> {
            match engine.scan(ColumnFamily::Outbox, ScanRange::all(), reverse).next() {
                Some(item) => seq_of(&item?.0),
                None => Ok(0),
            }
        };
        // The sequence never restarts below a peer's saved cursor, even when every entry
        // was taken and trimmed before a restart: a shipper only sends above its cursor.
        let mut outbox_head = last(true)?;
        // The prefix ends in '/'; '0' is the byte after it.
        let cursors = ScanRange::new(OUTBOX_CURSOR_PREFIX.to_vec(), b"outbox_cursor0".to_vec());
        for item in engine.scan(ColumnFamily::Meta, cursors, false) {
            let (_, value) = item?;
            let cursor = value.try_into().map(u64::from_be_bytes).unwrap_or(0);
            outbox_head = outbox_head.max(cursor);
        }
        Ok(Self {
            outbox_head,
            outbox_oldest: last(false)?,
            digests,
            tombstones,
            records,
        })
    }
}

pub struct CacheStore {
    engine: Arc<dyn Engine>,
    node: u64,
    wall: Arc<dyn Clock>,
    hlc: HybridClock<Arc<dyn Clock>>,
    durability: Durability,
    settings: CacheSettings,
    keyspace: Arc<Keyspace>,
    state: Mutex<WriterState>,
    counters: CacheCounters,
    inbound: Mutex<HashMap<u64, InboundLag>>,
    changes: broadcast::Sender<Arc<Vec<Vec<u8>>>>,
    outbox_head: watch::Sender<u64>,
}

/// Meta keys of the peers' shipping cursors: this prefix + the peer id (20 digits).
pub const OUTBOX_CURSOR_PREFIX: &[u8] = b"outbox_cursor/";

fn outbox_key(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

fn seq_of(key: &[u8]) -> StorageResult<u64> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StorageError::Corrupted("outbox key is not 8 bytes".into()))
}

fn corrupt(key: &[u8], error: postcard::Error) -> StorageError {
    StorageError::Corrupted(format!("cache record of {} does not decode: {error}", display_key(key)))
}

/// The versionstamp a read of a cache key reports: the deciding write's hybrid timestamp
/// (wall ms and counter in the first 8 bytes, node in the last 2), ordered as the stamps
/// are.
pub fn versionstamp_of(stamp: Timestamp) -> Versionstamp {
    let logical = u64::from(stamp.logical.min(u32::from(u16::MAX)));
    Versionstamp::new((stamp.wall_ms << 16) | logical, stamp.node as u16)
}

impl CacheStore {
    /// Opens the store: reads the outbox bounds and computes the digests and counters
    /// with one scan of the cache records.
    pub fn open(
        engine: Arc<dyn Engine>,
        node: u64,
        wall: Arc<dyn Clock>,
        durability: Durability,
        settings: CacheSettings,
        keyspace: Arc<Keyspace>,
        changes: broadcast::Sender<Arc<Vec<Vec<u8>>>>,
    ) -> StorageResult<Self> {
        let hlc = HybridClock::new(node, wall.clone(), settings.max_clock_skew_ms());
        let state = WriterState::load(engine.as_ref(), &hlc)?;
        let outbox_head = state.outbox_head;
        let (head_sender, _) = watch::channel(outbox_head);
        Ok(Self {
            engine,
            node,
            wall,
            hlc,
            durability,
            settings,
            keyspace,
            state: Mutex::new(state),
            counters: CacheCounters::default(),
            inbound: Mutex::new(HashMap::new()),
            changes,
            outbox_head: head_sender,
        })
    }

    pub fn node(&self) -> u64 {
        self.node
    }

    /// The writer state, locked. A panic while it was held may have left it half-updated;
    /// everything in it is derived from the engine, so it is rebuilt from there and every
    /// later operation goes on (instead of each panicking on the poisoned lock).
    fn state(&self) -> MutexGuard<'_, WriterState> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => {
                let mut state = poisoned.into_inner();
                match WriterState::load(self.engine.as_ref(), &self.hlc) {
                    Ok(reloaded) => {
                        *state = reloaded;
                        tracing::error!("a cache operation panicked; its state was rebuilt from storage");
                    }
                    // Anti-entropy repairs whatever a stale digest hides; the next panic
                    // (or restart) tries the rebuild again.
                    Err(error) => {
                        tracing::error!(%error, "a cache operation panicked and its state could not be rebuilt")
                    }
                }
                self.state.clear_poison();
                state
            }
        }
    }

    /// Inbound lag per peer, locked. It only feeds status reports: after a panic while it
    /// was held, its values stand as they are.
    fn inbound(&self) -> MutexGuard<'_, HashMap<u64, InboundLag>> {
        self.inbound.lock().unwrap_or_else(|poisoned| {
            self.inbound.clear_poison();
            poisoned.into_inner()
        })
    }

    /// This node's wall clock, for an outgoing message: the receiver refuses a sender
    /// whose clock is too far ahead of its own. (The wall clock, not the hybrid one, which
    /// a fast peer may have pulled ahead within the allowed skew.)
    pub fn stamp(&self) -> Timestamp {
        Timestamp {
            wall_ms: self.wall.now_ms(),
            logical: 0,
            node: self.node,
        }
    }

    /// Refuses (and counts) a peer whose clock is too far ahead of ours.
    pub fn check_peer_clock(&self, sent_at: Timestamp) -> Result<(), ClockSkew> {
        self.hlc.check(sent_at).inspect_err(|_| {
            self.counters.clock_skew_refusals.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Takes in a record's stamp: refused (and counted) when it is too far ahead.
    fn observe(&self, stamp: Timestamp) -> Result<(), ClockSkew> {
        self.hlc.observe(stamp).inspect_err(|_| {
            self.counters.clock_skew_refusals.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// The newest outbox sequence number, watched by the shippers.
    pub fn watch_outbox(&self) -> watch::Receiver<u64> {
        self.outbox_head.subscribe()
    }

    /// What a read of `key` sees, as an envelope.
    pub fn visible_envelope(key: &[u8], bytes: &[u8], now_ms: u64) -> StorageResult<Option<Envelope>> {
        let record = CacheRecord::decode(bytes).map_err(|e| corrupt(key, e))?;
        Ok(record.visible(now_ms).map(|visible| Envelope {
            encoding: edgekv_proto::v1::ValueEncoding::try_from(visible.payload.encoding).unwrap_or_default(),
            versionstamp: versionstamp_of(visible.stamp),
            expires_at_ms: visible.payload.expires_at_ms,
            metadata: visible.payload.metadata,
            value: visible.payload.bytes,
        }))
    }

    fn load(&self, key: &[u8]) -> StorageResult<Option<CacheRecord>> {
        self.engine
            .get(ColumnFamily::Cache, key)?
            .map(|bytes| CacheRecord::decode(&bytes).map_err(|e| corrupt(key, e)))
            .transpose()
    }

    /// Applies a local write: its changes merged into the stored records and queued in
    /// the outbox in one durable batch. Each change gets its own, increasing stamp, so a
    /// later mutation of the write wins over an earlier one on the same key (as in Deno
    /// KV). Returns the last stamp.
    pub fn write(&self, ops: &[CacheOp]) -> Result<Timestamp, CacheError> {
        let mut state = self.state();
        let mut stamp = self.hlc.now();
        let now = self.wall.now_ms();
        let mut changed: BTreeMap<Vec<u8>, (Option<CacheRecord>, CacheRecord)> = BTreeMap::new();
        for (index, op) in ops.iter().enumerate() {
            if index > 0 {
                stamp = self.hlc.now();
            }
            let key = op.key().to_vec();
            let record = match changed.remove(&key) {
                Some(pair) => pair,
                None => {
                    let before = self.load(&key)?;
                    let after = before.clone().unwrap_or_default();
                    (before, after)
                }
            };
            let (before, mut after) = record;
            let shown_key = key.as_slice();
            let mismatch = |operation| {
                move |KindMismatch { found }| CacheError::KindMismatch {
                    operation,
                    key: display_key(shown_key),
                    found,
                }
            };
            match op {
                CacheOp::Set { payload, .. } => after.set(payload.clone(), stamp),
                CacheOp::Delete { .. } => after.delete(stamp),
                CacheOp::Sum { operand, .. } => after.sum(*operand, stamp, self.node, now).map_err(mismatch("sum"))?,
                CacheOp::SetAdd { member, .. } => after
                    .add_member(member.clone(), stamp, self.node, now)
                    .map_err(mismatch("sadd"))?,
                CacheOp::SetRemove { member, .. } => after
                    .remove_member(member.clone(), stamp, now)
                    .map_err(mismatch("srem"))?,
                CacheOp::Extremum { operand, largest, .. } => after
                    .extremum(*largest, *operand, stamp, now)
                    .map_err(mismatch(if *largest { "max" } else { "min" }))?,
            }
            changed.insert(key, (before, after));
        }
        let mut batch = WriteBatch::default();
        let mut seq = state.outbox_head;
        for key in changed.keys() {
            seq += 1;
            batch.put(ColumnFamily::Outbox, outbox_key(seq), key.clone());
        }
        let keys = self.commit(&mut state, batch, changed, now)?;
        if state.outbox_oldest == 0 {
            state.outbox_oldest = state.outbox_head + 1;
        }
        state.outbox_head = seq;
        drop(state);
        self.outbox_head.send_replace(seq);
        let _ = self.changes.send(Arc::new(keys));
        Ok(stamp)
    }

    /// Writes changed records (with their due entries) and updates digests and counters.
    /// Returns the changed keys.
    fn commit(
        &self,
        state: &mut WriterState,
        mut batch: WriteBatch,
        changed: BTreeMap<Vec<u8>, (Option<CacheRecord>, CacheRecord)>,
        now: u64,
    ) -> StorageResult<Vec<Vec<u8>>> {
        let mut updates = Vec::with_capacity(changed.len());
        for (key, (before, after)) in changed {
            let bytes = after.encode();
            if let Some(due) = after.next_due(now, self.settings.tombstone_grace_ms()) {
                batch.put(ColumnFamily::CacheDue, expiry_index_key(due, &key), Vec::new());
            }
            batch.put(ColumnFamily::Cache, key.clone(), bytes.clone());
            updates.push((key, before, after, bytes));
        }
        self.engine.write(batch, self.durability)?;
        let mut keys = Vec::with_capacity(updates.len());
        for (key, before, after, bytes) in updates {
            let bucket = bucket_of(&key);
            if let Some(before) = &before {
                state.digests.toggle(bucket, record_hash(&key, &before.encode()));
                state.tombstones -= u64::from(before.is_tombstone());
            } else {
                state.records += 1;
            }
            state.digests.toggle(bucket, record_hash(&key, &bytes));
            state.tombstones += u64::from(after.is_tombstone());
            keys.push(key);
        }
        Ok(keys)
    }

    /// Merges records from a peer (encoded as they travel). Records of keys that are not
    /// cache keys here, duplicates and records already collectable are skipped; records
    /// stamped too far ahead of our clock are refused and counted. Returns how many
    /// changed a record here.
    pub fn merge(&self, records: &[EncodedRecord], source: Source) -> StorageResult<usize> {
        let now = self.wall.now_ms();
        let mut state = self.state();
        let mut changed: BTreeMap<Vec<u8>, (Option<CacheRecord>, CacheRecord)> = BTreeMap::new();
        let mut lags = Vec::new();
        for (key, bytes) in records {
            if self.keyspace.class_of(key) != Class::Cache {
                continue;
            }
            let incoming = CacheRecord::decode(bytes).map_err(|e| corrupt(key, e))?;
            if let Err(skew) = self.observe(incoming.stamp()) {
                tracing::warn!(%skew, key = %display_key(key), "refused a cache record");
                continue;
            }
            let collectable = incoming
                .dead_since(now)
                .is_some_and(|since| since.saturating_add(self.settings.tombstone_grace_ms()) <= now);
            let (before, mut after) = match changed.remove(key) {
                Some(pair) => pair,
                None => {
                    let before = self.load(key)?;
                    if before.is_none() && collectable {
                        continue;
                    }
                    let after = before.clone().unwrap_or_default();
                    (before, after)
                }
            };
            let unwritten = Timestamp::default();
            let two_writes_met = after.register.marker != unwritten
                && incoming.register.marker != unwritten
                && after.register.marker != incoming.register.marker;
            let incoming_stamp = incoming.stamp();
            after.merge(incoming);
            if before.as_ref() == Some(&after) {
                continue;
            }
            if two_writes_met {
                self.counters.conflicts_resolved.fetch_add(1, Ordering::Relaxed);
            }
            if let Source::Outbox { from_node } = source {
                lags.push((from_node, now.saturating_sub(incoming_stamp.wall_ms)));
            }
            changed.insert(key.clone(), (before, after));
        }
        let count = changed.len();
        if count == 0 {
            return Ok(0);
        }
        let keys = self.commit(&mut state, WriteBatch::default(), changed, now)?;
        drop(state);
        self.counters.merges.fetch_add(count as u64, Ordering::Relaxed);
        if source == Source::Repair {
            self.counters.repaired.fetch_add(count as u64, Ordering::Relaxed);
        }
        if !lags.is_empty() {
            let mut inbound = self.inbound();
            for (node, lag) in lags {
                let entry = inbound.entry(node).or_default();
                entry.last_ms = lag;
                entry.max_ms = entry.max_ms.max(lag);
                entry.records += 1;
            }
        }
        let _ = self.changes.send(Arc::new(keys));
        Ok(count)
    }

    /// The stored records of `keys` (encoded), skipping keys without one.
    pub fn records(&self, keys: &[Vec<u8>]) -> StorageResult<Vec<EncodedRecord>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(bytes) = self.engine.get(ColumnFamily::Cache, key)? {
                out.push((key.clone(), bytes));
            }
        }
        Ok(out)
    }

    /// The digest of every bucket.
    pub fn digests(&self) -> Vec<u64> {
        self.state().digests.to_vec()
    }

    /// Records in the chosen buckets, in key order after `after`, up to about `max_bytes`.
    /// Returns them and the key to continue after, if the scan stopped early.
    pub fn records_in_buckets(
        &self,
        buckets: &[bool; BUCKETS],
        after: Option<&[u8]>,
        max_bytes: usize,
    ) -> StorageResult<(Vec<EncodedRecord>, Option<Vec<u8>>)> {
        let range = match after {
            Some(key) => ScanRange {
                start: std::ops::Bound::Excluded(key.to_vec()),
                end: std::ops::Bound::Unbounded,
            },
            None => ScanRange::all(),
        };
        let snapshot = self.engine.snapshot();
        let mut out = Vec::new();
        let mut size = 0;
        for item in snapshot.scan(ColumnFamily::Cache, range, false) {
            let (key, bytes) = item?;
            if !buckets[bucket_of(&key)] {
                continue;
            }
            size += key.len() + bytes.len();
            out.push((key, bytes));
            if size >= max_bytes {
                let next = out.last().map(|(k, _)| k.clone());
                return Ok((out, next));
            }
        }
        Ok((out, None))
    }

    /// Keys under `prefix` that show a value (for class changes).
    pub fn live_keys_under(&self, prefix: &[u8]) -> StorageResult<Vec<Vec<u8>>> {
        let now = self.wall.now_ms();
        let range = ScanRange::new(prefix.to_vec(), edgekv_proto::Key::prefix_end(prefix));
        let mut live = Vec::new();
        for item in self.engine.scan(ColumnFamily::Cache, range, false) {
            let (key, bytes) = item?;
            if CacheRecord::decode(&bytes)
                .map_err(|e| corrupt(&key, e))?
                .visible(now)
                .is_some()
            {
                live.push(key);
            }
        }
        Ok(live)
    }
}

#[cfg(test)]
mod tests;
