//! The Raft state machine on RocksDB. Each batch of committed entries that openraft hands
//! over is applied in one `WriteBatch`: the data and expiry-index changes the [`Applier`]
//! computes, plus the applied log id, the membership and the replicated clock. A crash
//! therefore leaves either all of a batch or none of it, and the applied log id always
//! says which.
//!
//! The same batch records the keys it changed in the change feed (`changes` column family,
//! keyed by applied log index), so a reader can follow every change in commit order from
//! any recent index ([`changes_since`]); the feed keeps the last [`CHANGE_FEED_RETENTION`]
//! log entries and, being node-local history, starts over after a snapshot install.
//!
//! Snapshots are a copy of the replicated column families (data, expiry index, class
//! rules, request ids) read from one RocksDB snapshot, so they are consistent with the
//! applied log id read from the same view. openraft streams them to followers in chunks;
//! installing one replaces those families in a single `WriteBatch`.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use edgekv_proto::ErrorCode;
use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};

use super::log_store::{blocking, decode, encode};
use super::types::{Applied, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::storage::{ColumnFamily, Durability, Engine, ScanRange, StorageResult, WriteBatch};

const APPLIED_KEY: &[u8] = b"applied";
const MEMBERSHIP_KEY: &[u8] = b"membership";
const CLOCK_KEY: &[u8] = b"clock";
/// The column families a snapshot carries: the replicated state (the request-id table
/// too, so a node that installed a snapshot still answers a retried write with its first
/// outcome). Meta (node-local) and the Raft families are not part of it.
const SNAPSHOT_FAMILIES: [ColumnFamily; 4] = [
    ColumnFamily::Data,
    ColumnFamily::Expiry,
    ColumnFamily::Keyspace,
    ColumnFamily::Requests,
];
/// An end bound above every key of the snapshot families: tuple-encoded keys never start
/// with 0xff, expiry-index keys start with a big-endian time in milliseconds, and
/// request-table keys with `i` or `t`.
const ABOVE_EVERY_KEY: [u8; 16] = [0xff; 16];

/// Log entries of history the change feed keeps.
pub const CHANGE_FEED_RETENTION: u64 = 100_000;
/// The feed is trimmed when the applied index crosses a multiple of this, so trimming adds
/// one range deletion per thousands of entries rather than one per batch.
const CHANGE_FEED_TRIM_EVERY: u64 = 4096;

fn feed_key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

/// Records `changed_keys` at `index` in `batch`, trimming history older than the retention.
fn record_changes(
    batch: &mut WriteBatch,
    previous: Option<u64>,
    index: u64,
    changed_keys: &[Vec<u8>],
) -> Result<(), AnyError> {
    if !changed_keys.is_empty() {
        batch.put(ColumnFamily::Changes, feed_key(index), encode(&changed_keys)?);
    }
    if previous.unwrap_or(0) / CHANGE_FEED_TRIM_EVERY != index / CHANGE_FEED_TRIM_EVERY && index > CHANGE_FEED_RETENTION
    {
        batch.delete_range(
            ColumnFamily::Changes,
            feed_key(0),
            feed_key(index - CHANGE_FEED_RETENTION),
        );
    }
    Ok(())
}

/// Up to `limit` change-feed records after log index `after`, oldest first: (index, keys
/// changed by the batch applied at that index).
pub fn changes_since(engine: &dyn Engine, after: u64, limit: usize) -> StorageResult<Vec<(u64, Vec<Vec<u8>>)>> {
    let range = ScanRange {
        start: std::ops::Bound::Excluded(feed_key(after)),
        end: std::ops::Bound::Unbounded,
    };
    engine
        .scan(ColumnFamily::Changes, range, false)
        .take(limit)
        .map(|item| {
            let (key, value) = item?;
            let index = u64::from_be_bytes(
                key.as_slice()
                    .try_into()
                    .map_err(|_| crate::storage::StorageError::Corrupted("change feed key is not 8 bytes".into()))?,
            );
            let keys = decode(&value).map_err(|e| crate::storage::StorageError::Corrupted(e.to_string()))?;
            Ok((index, keys))
        })
        .collect()
}

/// One committed request, in log order, as the applier sees it. Requests batched into one
/// entry share its index; their order within it is their order here.
pub struct CommittedProposal<'a> {
    pub index: u64,
    /// The replicated clock for this proposal: the leader's clock when it proposed it,
    /// never less than that of any earlier proposal (so time never runs backwards across
    /// a leader change).
    pub now_ms: u64,
    pub body: &'a [u8],
}

/// What applying a run of proposals produced.
pub struct AppliedBatch {
    /// The data and expiry-index changes, written atomically with Raft's bookkeeping.
    pub batch: WriteBatch,
    /// One answer per proposal, in order.
    pub answers: Vec<Vec<u8>>,
    /// Keys whose value changed, for watchers.
    pub changed_keys: Vec<Vec<u8>>,
}

/// A request body the domain refuses to have proposed, with the stable code its front-ends
/// answer for the same request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
}

/// The domain logic the state machine runs. It must be deterministic: the same storage
/// state and the same proposals give the same batch and answers on every replica. A
/// refused request is an answer, not an error; errors are for storage failures, which stop
/// this node's Raft member.
pub trait Applier: Send + Sync + 'static {
    /// Checks a request body a peer forwarded, before the leader proposes it: the checks
    /// the domain's front-ends run on a client's request before it is proposed, so a peer
    /// gets nothing into the log that a client could not. Only checks that need no state
    /// belong here (the follower ran the same ones, so an honest forward always passes);
    /// what depends on the state is decided when the request is applied.
    fn check_proposal(&self, body: &[u8]) -> Result<(), Refused>;
    fn apply(&self, engine: &dyn Engine, proposals: &[CommittedProposal<'_>]) -> StorageResult<AppliedBatch>;
    /// Called once the batch is written (also when it changed no keys).
    fn applied(&self, changed_keys: Vec<Vec<u8>>);
    /// Called after a snapshot replaced the whole state.
    fn replaced(&self);
}

/// The replicated clock: the highest proposal time applied so far. The compaction filter
/// drops expired records by this clock, not the local one, so a replica never drops a
/// value that a later proposal still treats as live.
#[derive(Clone, Default)]
pub struct ReplicatedClock(Arc<AtomicU64>);

impl ReplicatedClock {
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl crate::clock::Clock for ReplicatedClock {
    fn now_ms(&self) -> u64 {
        ReplicatedClock::now_ms(self)
    }
}

#[derive(Serialize, Deserialize)]
struct SnapshotImage {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    clock_ms: u64,
    /// (column family position in SNAPSHOT_FAMILIES, key, value)
    records: Vec<(u8, Vec<u8>, Vec<u8>)>,
}

struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

pub struct StateMachineStore {
    engine: Arc<dyn Engine>,
    applier: Arc<dyn Applier>,
    clock: ReplicatedClock,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The latest snapshot built or installed. Kept in memory: after a restart openraft
    /// rebuilds one from the state when it needs it.
    current_snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
}

fn read<T: for<'de> Deserialize<'de>>(engine: &dyn Engine, key: &[u8]) -> Result<Option<T>, AnyError> {
    match engine
        .get(ColumnFamily::RaftState, key)
        .map_err(|e| AnyError::new(&e))?
    {
        Some(bytes) => Ok(Some(decode(&bytes)?)),
        None => Ok(None),
    }
}

fn bookkeeping(
    batch: &mut WriteBatch,
    applied: &Option<LogId>,
    membership: &StoredMembership,
    clock_ms: u64,
) -> Result<(), AnyError> {
    batch.put(ColumnFamily::RaftState, APPLIED_KEY.to_vec(), encode(applied)?);
    batch.put(ColumnFamily::RaftState, MEMBERSHIP_KEY.to_vec(), encode(membership)?);
    batch.put(ColumnFamily::RaftState, CLOCK_KEY.to_vec(), encode(&clock_ms)?);
    Ok(())
}

impl StateMachineStore {
    /// Opens the state machine over `engine`; `clock` is set to the stored replicated
    /// clock and advanced as entries are applied. Fails with openraft's own (large) error
    /// type, as its storage traits do.
    #[allow(clippy::result_large_err)]
    pub fn open(
        engine: Arc<dyn Engine>,
        applier: Arc<dyn Applier>,
        clock: ReplicatedClock,
    ) -> Result<Self, StorageError> {
        let last_applied: Option<LogId> = read::<Option<LogId>>(engine.as_ref(), APPLIED_KEY)
            .map_err(StorageIOError::read_state_machine)?
            .flatten();
        let membership = read(engine.as_ref(), MEMBERSHIP_KEY)
            .map_err(StorageIOError::read_state_machine)?
            .unwrap_or_default();
        let clock_ms: u64 = read(engine.as_ref(), CLOCK_KEY)
            .map_err(StorageIOError::read_state_machine)?
            .unwrap_or(0);
        clock.0.fetch_max(clock_ms, Ordering::SeqCst);
        Ok(Self {
            engine,
            applier,
            clock,
            last_applied,
            membership,
            current_snapshot: Arc::default(),
        })
    }
}

pub struct SnapshotBuilder {
    engine: Arc<dyn Engine>,
    current_snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let engine = self.engine.clone();
        let image = blocking(move || {
            // Everything from one RocksDB snapshot, so the records are exactly the state at
            // `last_applied`.
            let view = engine.snapshot();
            let get = |key: &[u8]| -> Result<Option<Vec<u8>>, AnyError> {
                view.get(ColumnFamily::RaftState, key).map_err(|e| AnyError::new(&e))
            };
            let last_applied: Option<LogId> = match get(APPLIED_KEY)? {
                Some(bytes) => decode(&bytes)?,
                None => None,
            };
            let membership: StoredMembership = match get(MEMBERSHIP_KEY)? {
                Some(bytes) => decode(&bytes)?,
                None => StoredMembership::default(),
            };
            let clock_ms: u64 = match get(CLOCK_KEY)? {
                Some(bytes) => decode(&bytes)?,
                None => 0,
            };
            let mut records = Vec::new();
            for (position, cf) in SNAPSHOT_FAMILIES.iter().enumerate() {
                for item in view.scan(*cf, ScanRange::all(), false) {
                    let (key, value) = item.map_err(|e| AnyError::new(&e))?;
                    records.push((position as u8, key, value));
                }
            }
            Ok(SnapshotImage {
                last_applied,
                membership,
                clock_ms,
                records,
            })
        })
        .await
        .map_err(StorageIOError::read_state_machine)?;
        let data = encode(&image).map_err(|e| StorageIOError::write_snapshot(None, e))?;
        let snapshot_id = match image.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, uuid::Uuid::new_v4().simple()),
            None => format!("empty-{}", uuid::Uuid::new_v4().simple()),
        };
        let meta = SnapshotMeta {
            last_log_id: image.last_applied,
            last_membership: image.membership,
            snapshot_id,
        };
        *self.current_snapshot.lock().expect("snapshot lock") = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut last = None;
        let mut clock_ms = self.clock.now_ms();
        let mut membership = self.membership.clone();
        // How many applier answers each entry gets; blank and membership entries get none.
        let mut answer_counts = Vec::new();
        let mut proposals = Vec::new();
        // Consumed, so the request bodies move into the apply step instead of being copied.
        for entry in entries {
            last = Some(entry.log_id);
            let mut count = 0;
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(proposal) => {
                    clock_ms = clock_ms.max(proposal.now_ms);
                    count = proposal.bodies.len();
                    proposals.extend(
                        proposal
                            .bodies
                            .into_iter()
                            .map(|body| (entry.log_id.index, clock_ms, body)),
                    );
                }
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            answer_counts.push(count);
        }
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        let engine = self.engine.clone();
        let applier = self.applier.clone();
        let applied_membership = membership.clone();
        let previous_index = self.last_applied.map(|id| id.index);
        let (answers, changed) = blocking(move || {
            let committed: Vec<CommittedProposal<'_>> = proposals
                .iter()
                .map(|(index, now_ms, body)| CommittedProposal {
                    index: *index,
                    now_ms: *now_ms,
                    body,
                })
                .collect();
            let AppliedBatch {
                mut batch,
                answers,
                changed_keys,
            } = applier
                .apply(engine.as_ref(), &committed)
                .map_err(|e| AnyError::new(&e))?;
            bookkeeping(&mut batch, &Some(last), &applied_membership, clock_ms)?;
            record_changes(&mut batch, previous_index, last.index, &changed_keys)?;
            // No fsync: the entries are durable in the log, and a restart re-applies any
            // batch lost with the page cache (the applied log id is in the same batch).
            engine
                .write(batch, Durability::Buffered)
                .map_err(|e| AnyError::new(&e))?;
            Ok((answers, changed_keys))
        })
        .await
        .map_err(|e| StorageIOError::apply(last, e))?;

        self.last_applied = Some(last);
        self.membership = membership;
        self.clock.0.store(clock_ms, Ordering::SeqCst);
        self.applier.applied(changed);
        let mut answers = answers.into_iter();
        Ok(answer_counts
            .into_iter()
            .map(|count| Applied(answers.by_ref().take(count).collect()))
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            engine: self.engine.clone(),
            current_snapshot: self.current_snapshot.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image: SnapshotImage =
            decode(&data).map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), e))?;
        let mut batch = WriteBatch::default();
        for cf in SNAPSHOT_FAMILIES {
            batch.delete_range(cf, Vec::new(), ABOVE_EVERY_KEY.to_vec());
        }
        // The feed's history does not describe the installed state: it starts over here.
        batch.delete_range(ColumnFamily::Changes, feed_key(0), feed_key(u64::MAX));
        batch.delete(ColumnFamily::Changes, feed_key(u64::MAX));
        for (position, key, value) in image.records {
            let cf = *SNAPSHOT_FAMILIES.get(position as usize).ok_or_else(|| {
                StorageIOError::read_snapshot(
                    Some(meta.signature()),
                    AnyError::error("unknown column family in snapshot"),
                )
            })?;
            batch.put(cf, key, value);
        }
        let membership = meta.last_membership.clone();
        bookkeeping(&mut batch, &meta.last_log_id, &membership, image.clock_ms)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        let engine = self.engine.clone();
        blocking(move || engine.write(batch, Durability::Sync).map_err(|e| AnyError::new(&e)))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        self.last_applied = meta.last_log_id;
        self.membership = membership;
        self.clock.0.fetch_max(image.clock_ms, Ordering::SeqCst);
        *self.current_snapshot.lock().expect("snapshot lock") = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        self.applier.replaced();
        tracing::info!(
            snapshot = %meta.snapshot_id,
            last_index = meta.last_log_id.map_or(0, |id| id.index),
            "installed a snapshot from the leader"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self
            .current_snapshot
            .lock()
            .expect("snapshot lock")
            .as_ref()
            .map(|s| Snapshot {
                meta: s.meta.clone(),
                snapshot: Box::new(Cursor::new(s.data.clone())),
            }))
    }
}
