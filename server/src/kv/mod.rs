//! The key-value domain: get, get-many, list and atomic writes with the semantics every
//! front-end shares (Deno KV's, plus TTL that is never served stale).
//!
//! [`KvStore`] is the one entry point. Reads go straight to the engine and filter out
//! expired values; writes are validated here and then queued to the [`commit`] pipeline,
//! the single writer. When replication arrives, this is where a key's class picks the
//! strong (Raft) or cache (CRDT) path; the front-ends do not change.

mod commit;
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
use tokio::sync::{broadcast, mpsc, oneshot};

pub use self::commit::ChangedKeys;
use self::commit::{CommitRequest, Committer};
pub use self::error::{KvError, KvResult};
pub use self::types::*;
use crate::clock::Clock;
use crate::storage::codec::Envelope;
use crate::storage::{ColumnFamily, Durability, Engine, Snapshot};
use crate::ttl::DueExpiry;

/// Requests waiting for the commit pipeline before callers are pushed back on.
const COMMIT_QUEUE: usize = 4096;
/// Change notices kept for slow watchers; one that falls further behind re-reads all its
/// keys instead (see [`KvStore::subscribe`]).
const CHANGE_BACKLOG: usize = 1024;
/// Meta column family key holding this database's id (a UUID, created on first start).
const DATABASE_ID_KEY: &[u8] = b"database_id";

#[derive(Clone)]
pub struct KvStore {
    engine: Arc<dyn Engine>,
    clock: Arc<dyn Clock>,
    commits: mpsc::Sender<CommitRequest>,
    last_commit: Arc<AtomicU64>,
    changes: broadcast::Sender<ChangedKeys>,
    database_id: uuid::Uuid,
}

/// The running commit pipeline; [`CommitThread::shutdown`] drains and joins it.
pub struct CommitThread {
    commits: mpsc::Sender<CommitRequest>,
    thread: std::thread::JoinHandle<()>,
}

impl CommitThread {
    /// Lets the group in progress finish, refuses everything queued after it, and waits
    /// for the thread to exit. Blocking.
    pub fn shutdown(self) {
        let _ = self.commits.blocking_send(CommitRequest::Shutdown);
        if self.thread.join().is_err() {
            tracing::error!("commit thread panicked");
        }
    }
}

impl KvStore {
    /// Starts the commit pipeline on its own thread and returns the store with the
    /// handle that stops it.
    pub fn start(
        engine: Arc<dyn Engine>,
        clock: Arc<dyn Clock>,
        durability: Durability,
    ) -> KvResult<(Self, CommitThread)> {
        let last_commit = Arc::new(AtomicU64::new(commit::read_last_commit(engine.as_ref())?));
        let database_id = database_id(engine.as_ref())?;
        let (commits, requests) = mpsc::channel(COMMIT_QUEUE);
        let (changes, _) = broadcast::channel(CHANGE_BACKLOG);
        let committer = Committer::new(
            engine.clone(),
            clock.clone(),
            durability,
            last_commit.clone(),
            requests,
            changes.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("edgekv-commit".into())
            .spawn(move || committer.run())
            .map_err(|e| {
                KvError::Storage(crate::storage::StorageError::Engine(format!(
                    "cannot start the commit thread: {e}"
                )))
            })?;
        let store = Self {
            engine,
            clock,
            commits: commits.clone(),
            last_commit,
            changes,
            database_id,
        };
        Ok((store, CommitThread { commits, thread }))
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The versionstamp of the latest commit, if any.
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

    /// Notices of the keys each commit changed, from now on. A receiver that lags behind
    /// gets `RecvError::Lagged` and must assume every key changed.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangedKeys> {
        self.changes.subscribe()
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn read_info(&self, consistency: Consistency) -> ReadInfo {
        // One node: every acknowledged write is applied before it is acknowledged, so the
        // local replica is the latest state and both guarantees are met.
        ReadInfo {
            consistency,
            strongly_consistent: true,
            staleness_ms: 0,
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

    pub fn get(&self, key: &[u8], consistency: Consistency) -> KvResult<(Option<Entry>, ReadInfo)> {
        validate::read_key(key)?;
        let now = self.clock.now_ms();
        let entry = self.live(key, self.engine.get(ColumnFamily::Data, key)?, now)?;
        Ok((entry, self.read_info(consistency)))
    }

    /// Reads every key from one snapshot; the answer has one slot per key, in order.
    pub fn get_many(&self, keys: &[Vec<u8>], consistency: Consistency) -> KvResult<(Vec<Option<Entry>>, ReadInfo)> {
        if keys.len() > MAX_GET_MANY_KEYS {
            return Err(KvError::TooManyKeys {
                count: keys.len(),
                limit: MAX_GET_MANY_KEYS,
            });
        }
        for key in keys {
            validate::read_key(key)?;
        }
        let now = self.clock.now_ms();
        let snapshot = self.engine.snapshot();
        let entries = keys
            .iter()
            .map(|key| self.live(key, snapshot.get(ColumnFamily::Data, key)?, now))
            .collect::<KvResult<Vec<_>>>()?;
        Ok((entries, self.read_info(consistency)))
    }

    /// One page of a range, from a snapshot. The page holds up to `query.limit` live
    /// entries; the cursor is set only when more may follow.
    pub fn list(&self, query: &ListQuery, consistency: Consistency) -> KvResult<(ListPage, ReadInfo)> {
        let bounds = range::resolve(&query.selector)?;
        let scan_range = range::after_cursor(&bounds, query.cursor.as_deref(), query.reverse)?;
        let now = self.clock.now_ms();
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
        Ok((ListPage { entries, cursor }, self.read_info(consistency)))
    }

    /// Reads several ranges from one snapshot (KV Connect's snapshot_read). An empty or
    /// inverted range reads nothing.
    pub fn snapshot_read(
        &self,
        ranges: &[RangeRead],
        consistency: Consistency,
    ) -> KvResult<(Vec<Vec<Entry>>, ReadInfo)> {
        for range in ranges {
            validate::range_bound(&range.start)?;
            validate::range_bound(&range.end)?;
        }
        let now = self.clock.now_ms();
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
        Ok((results, self.read_info(consistency)))
    }

    pub async fn atomic(&self, write: AtomicWrite) -> KvResult<AtomicOutcome> {
        validate::atomic(&write)?;
        let (reply, answer) = oneshot::channel();
        self.commits
            .send(CommitRequest::Atomic(write, reply))
            .await
            .map_err(|_| KvError::ShuttingDown)?;
        answer.await.map_err(|_| KvError::ShuttingDown)?
    }

    /// Deletes the given due entries whose value still carries that expiry. Used by the
    /// TTL sweeper; the decision is the commit pipeline's, made at its own clock.
    pub async fn expire(&self, due: Vec<DueExpiry>) -> KvResult<usize> {
        let (reply, answer) = oneshot::channel();
        self.commits
            .send(CommitRequest::Expire(due, reply))
            .await
            .map_err(|_| KvError::ShuttingDown)?;
        answer.await.map_err(|_| KvError::ShuttingDown)?
    }

    /// Counts live keys. O(keys): an admin operation, not a hot path.
    pub fn count_live_keys(&self) -> KvResult<u64> {
        let now = self.clock.now_ms();
        let mut count = 0;
        for item in self
            .engine
            .scan(ColumnFamily::Data, crate::storage::ScanRange::all(), false)
        {
            let (_, bytes) = item?;
            if Envelope::decode(&bytes)?.is_live(now) {
                count += 1;
            }
        }
        Ok(count)
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
