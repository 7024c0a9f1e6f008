//! The key-value domain: get, get-many, list and atomic writes with the semantics every
//! front-end shares (Deno KV's, plus TTL that is never served stale).
//!
//! [`KvStore`] is the one entry point. Reads go to the local engine and filter out expired
//! values; a strong read first waits for the Raft read index, an eventual one reports how
//! stale it may be. Writes are validated here and replicated through Raft; every replica
//! applies them with [`apply`] (the state machine's domain half). When the cache class
//! arrives, this is where a key's class picks the strong or the cache path; the front-ends
//! do not change.

mod apply;
pub mod error;
pub mod range;
pub mod types;
pub mod v8_sum;
pub mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use edgekv_proto::Versionstamp;
use edgekv_proto::limits::MAX_GET_MANY_KEYS;
use tokio::sync::broadcast;

pub use self::apply::ChangedKeys;
use self::apply::{Answer, Command, KvApplier};
pub use self::error::{KvError, KvResult};
pub use self::types::*;
use crate::clock::Clock;
use crate::raft::{Applier, RaftNode};
use crate::storage::codec::Envelope;
use crate::storage::{ColumnFamily, Durability, Engine, Snapshot};
use crate::ttl::DueExpiry;

/// Change notices kept for slow watchers; one that falls further behind re-reads all its
/// keys instead (see [`KvStore::subscribe`]).
const CHANGE_BACKLOG: usize = 1024;
/// Meta column family key holding this database's id (a UUID, created on first start).
const DATABASE_ID_KEY: &[u8] = b"database_id";

#[derive(Clone)]
pub struct KvStore {
    engine: Arc<dyn Engine>,
    clock: Arc<dyn Clock>,
    raft: Arc<RaftNode>,
    last_commit: Arc<AtomicU64>,
    changes: broadcast::Sender<ChangedKeys>,
    database_id: uuid::Uuid,
}

/// The domain's half of the Raft state machine, made before the Raft member starts (it
/// needs it) and turned into a [`KvStore`] once the member runs.
pub struct KvStateMachine {
    engine: Arc<dyn Engine>,
    clock: Arc<dyn Clock>,
    applier: Arc<KvApplier>,
    last_commit: Arc<AtomicU64>,
    changes: broadcast::Sender<ChangedKeys>,
    database_id: uuid::Uuid,
}

impl KvStateMachine {
    pub fn new(engine: Arc<dyn Engine>, clock: Arc<dyn Clock>) -> KvResult<Self> {
        let database_id = database_id(engine.as_ref())?;
        let (changes, _) = broadcast::channel(CHANGE_BACKLOG);
        let last_commit = Arc::new(AtomicU64::new(0));
        let applier = Arc::new(KvApplier::new(changes.clone(), last_commit.clone()));
        Ok(Self {
            engine,
            clock,
            applier,
            last_commit,
            changes,
            database_id,
        })
    }

    pub fn applier(&self) -> Arc<dyn Applier> {
        self.applier.clone()
    }

    pub fn into_store(self, raft: Arc<RaftNode>) -> KvStore {
        // Until this run commits, the latest versionstamp is at most the applied index.
        self.last_commit.fetch_max(raft.applied_index(), Ordering::SeqCst);
        KvStore {
            engine: self.engine,
            clock: self.clock,
            raft,
            last_commit: self.last_commit,
            changes: self.changes,
            database_id: self.database_id,
        }
    }
}

impl KvStore {
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The versionstamp of the latest commit this node applied, if any (an upper bound
    /// after a restart, until the next commit).
    pub fn last_versionstamp(&self) -> Option<Versionstamp> {
        match self.last_commit.load(Ordering::SeqCst) {
            0 => None,
            commit => Some(Versionstamp::new(commit, 0)),
        }
    }

    /// This database's id: stable across restarts, the `databaseId` of KV Connect.
    pub fn database_id(&self) -> uuid::Uuid {
        self.database_id
    }

    /// The durable change feed: up to `limit` records after log index `after`, oldest first,
    /// each the keys one applied batch changed. Node-local; kept for the last
    /// [`crate::raft::CHANGE_FEED_RETENTION`] log entries and restarted by a snapshot install.
    pub fn changes_since(&self, after: u64, limit: usize) -> KvResult<Vec<(u64, Vec<Vec<u8>>)>> {
        Ok(crate::raft::changes_since(self.engine.as_ref(), after, limit)?)
    }

    /// Notices of the keys each commit changed, from now on. A receiver that lags behind
    /// gets `RecvError::Lagged` and must assume every key changed.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangedKeys> {
        self.changes.subscribe()
    }

    /// The time reads judge expiry by: this node's clock, or the leader's as replicated if
    /// that is ahead, so a node whose clock runs slow never serves a value the cluster has
    /// already expired.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms().max(self.raft.replicated_now_ms())
    }

    pub fn raft(&self) -> &Arc<RaftNode> {
        &self.raft
    }

    /// Makes a read strong if asked (waits for the read index) and says what it was
    /// served with.
    async fn prepare_read(&self, consistency: Consistency) -> KvResult<ReadInfo> {
        match consistency {
            Consistency::Strong => {
                self.raft.read_barrier().await?;
                Ok(ReadInfo {
                    consistency,
                    strongly_consistent: true,
                    staleness_ms: 0,
                })
            }
            Consistency::Eventual => {
                let staleness_ms = self.raft.staleness_ms();
                Ok(ReadInfo {
                    consistency,
                    // The sole voter of a cluster is the only place writes are applied
                    // before they are acknowledged, so its local state is the latest.
                    strongly_consistent: self.raft.is_sole_voter(),
                    staleness_ms,
                })
            }
        }
    }

    fn live(&self, key: &[u8], bytes: Option<Vec<u8>>, now: u64) -> KvResult<Option<Entry>> {
        let Some(bytes) = bytes else { return Ok(None) };
        let envelope = Envelope::decode(&bytes)?;
        Ok(envelope.is_live(now).then(|| Entry {
            key: key.to_vec(),
            envelope,
        }))
    }

    pub async fn get(&self, key: &[u8], consistency: Consistency) -> KvResult<(Option<Entry>, ReadInfo)> {
        validate::read_key(key)?;
        let info = self.prepare_read(consistency).await?;
        let now = self.now_ms();
        let entry = self.live(key, self.engine.get(ColumnFamily::Data, key)?, now)?;
        Ok((entry, info))
    }

    /// Reads every key from one snapshot; the answer has one slot per key, in order.
    pub async fn get_many(
        &self,
        keys: &[Vec<u8>],
        consistency: Consistency,
    ) -> KvResult<(Vec<Option<Entry>>, ReadInfo)> {
        if keys.len() > MAX_GET_MANY_KEYS {
            return Err(KvError::TooManyKeys {
                count: keys.len(),
                limit: MAX_GET_MANY_KEYS,
            });
        }
        for key in keys {
            validate::read_key(key)?;
        }
        let info = self.prepare_read(consistency).await?;
        let now = self.now_ms();
        let snapshot = self.engine.snapshot();
        let entries = keys
            .iter()
            .map(|key| self.live(key, snapshot.get(ColumnFamily::Data, key)?, now))
            .collect::<KvResult<Vec<_>>>()?;
        Ok((entries, info))
    }

    /// One page of a range, from a snapshot. The page holds up to `query.limit` live
    /// entries; the cursor is set only when more may follow.
    pub async fn list(&self, query: &ListQuery, consistency: Consistency) -> KvResult<(ListPage, ReadInfo)> {
        let bounds = range::resolve(&query.selector)?;
        let scan_range = range::after_cursor(&bounds, query.cursor.as_deref(), query.reverse)?;
        let info = self.prepare_read(consistency).await?;
        let now = self.now_ms();
        let snapshot: Box<dyn Snapshot + '_> = self.engine.snapshot();
        let mut entries = Vec::with_capacity(query.limit.min(1024));
        let mut more = false;
        for item in snapshot.scan(ColumnFamily::Data, scan_range, query.reverse) {
            let (key, bytes) = item?;
            let Some(mut entry) = self.live(&key, Some(bytes), now)? else {
                continue;
            };
            if entries.len() == query.limit {
                more = true;
                break;
            }
            if query.keys_only {
                entry.envelope.value.clear();
            }
            entries.push(entry);
        }
        let cursor = if more {
            entries.last().map(|e| range::encode_cursor(&e.key))
        } else {
            None
        };
        Ok((ListPage { entries, cursor }, info))
    }

    /// Reads several ranges from one snapshot (KV Connect's snapshot_read). An empty or
    /// inverted range reads nothing.
    pub async fn snapshot_read(
        &self,
        ranges: &[RangeRead],
        consistency: Consistency,
    ) -> KvResult<(Vec<Vec<Entry>>, ReadInfo)> {
        for range in ranges {
            validate::range_bound(&range.start)?;
            validate::range_bound(&range.end)?;
        }
        let info = self.prepare_read(consistency).await?;
        let now = self.now_ms();
        let snapshot = self.engine.snapshot();
        let mut results = Vec::with_capacity(ranges.len());
        for range in ranges {
            let mut entries = Vec::new();
            if range.start < range.end {
                let scan = crate::storage::ScanRange::new(range.start.clone(), range.end.clone());
                for item in snapshot.scan(ColumnFamily::Data, scan, range.reverse) {
                    if entries.len() == range.limit {
                        break;
                    }
                    let (key, bytes) = item?;
                    entries.extend(self.live(&key, Some(bytes), now)?);
                }
            }
            results.push(entries);
        }
        Ok((results, info))
    }

    pub async fn atomic(&self, write: AtomicWrite) -> KvResult<AtomicOutcome> {
        validate::atomic(&write)?;
        let answer = self.raft.write(apply::encode(&Command::Atomic(write))).await?;
        match decode_answer(&answer)? {
            Answer::Atomic(Ok(outcome)) => Ok(outcome),
            Answer::Atomic(Err(refusal)) => Err(refusal.into_error()),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes the given due entries whose value still carries that expiry. Used by the
    /// TTL sweeper on the leader; the decision is made when the command is applied, at the
    /// leader's clock, identically on every replica. Elsewhere it does nothing.
    pub async fn expire(&self, due: Vec<DueExpiry>) -> KvResult<usize> {
        if !self.raft.is_leader() {
            return Ok(0);
        }
        let answer = self.raft.write(apply::encode(&Command::Expire(due))).await?;
        match decode_answer(&answer)? {
            Answer::Expired(count) => Ok(count),
            other => Err(unexpected(other)),
        }
    }

    /// Counts live keys and stored records (live plus expired ones not reclaimed yet).
    /// O(keys): an admin operation, not a hot path.
    pub fn count_keys(&self) -> KvResult<(u64, u64)> {
        let now = self.now_ms();
        let (mut live, mut stored) = (0, 0);
        for item in self
            .engine
            .scan(ColumnFamily::Data, crate::storage::ScanRange::all(), false)
        {
            let (_, bytes) = item?;
            stored += 1;
            if Envelope::decode(&bytes)?.is_live(now) {
                live += 1;
            }
        }
        Ok((live, stored))
    }
}

fn decode_answer(bytes: &[u8]) -> KvResult<Answer> {
    apply::decode(bytes).map_err(|e| {
        KvError::Consensus(crate::raft::ConsensusError::OutcomeUnknown(format!(
            "undecodable answer from the state machine: {e}"
        )))
    })
}

fn unexpected(answer: Answer) -> KvError {
    match answer {
        Answer::Undecodable(reason) => {
            KvError::InvalidArgument(format!("the leader could not decode the request: {reason}"))
        }
        other => KvError::Consensus(crate::raft::ConsensusError::OutcomeUnknown(format!(
            "the state machine answered {other:?}"
        ))),
    }
}

/// Reads this database's id, creating it on first start.
fn database_id(engine: &dyn Engine) -> KvResult<uuid::Uuid> {
    if let Some(raw) = engine.get(ColumnFamily::Meta, DATABASE_ID_KEY)? {
        return uuid::Uuid::from_slice(&raw).map_err(|_| {
            KvError::Storage(crate::storage::StorageError::Corrupted(
                "database id is not 16 bytes".into(),
            ))
        });
    }
    let id = uuid::Uuid::new_v4();
    let mut batch = crate::storage::WriteBatch::default();
    batch.put(ColumnFamily::Meta, DATABASE_ID_KEY.to_vec(), id.as_bytes().to_vec());
    engine.write(batch, Durability::Sync)?;
    Ok(id)
}
