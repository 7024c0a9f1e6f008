//! The storage engine: an ordered key-value store with column families, atomic write
//! batches, point-in-time snapshots and ordered scans.
//!
//! Everything above this module talks to [`Engine`], never to RocksDB, so the domain logic
//! is unit-tested against [`MemoryEngine`] and runs in production on [`RocksEngine`].
//! Values are opaque here; [`codec`] owns their layout.

pub mod codec;
mod memory;
mod rocks;

use std::ops::Bound;
use std::path::PathBuf;

pub use memory::MemoryEngine;
pub use rocks::{DropFilter, RocksEngine, RocksOptions};

/// The column families. Each holds one kind of record, so scans never have to skip
/// records of another kind and each can have its own compaction policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnFamily {
    /// Encoded tuple key -> value envelope.
    Data,
    /// Expiry time (big-endian ms) + encoded key -> empty: the TTL sweeper's work list.
    Expiry,
    /// Node-local bookkeeping, such as the database id.
    Meta,
    /// The Raft log: log index (big-endian u64) -> encoded entry.
    RaftLog,
    /// Raft's durable state: vote, committed and purged log ids, and the state machine's
    /// applied log id and membership (written in the same batch as the data they describe).
    RaftState,
    /// The change feed: applied log index (big-endian u64) -> the keys that batch changed.
    Changes,
    /// Class rules (replicated through Raft): encoded key prefix -> class.
    Keyspace,
    /// Cache-class keys: encoded key -> merged CRDT record (node-local, converged by
    /// replication, never in a Raft snapshot).
    Cache,
    /// The cache class's work list: due time (big-endian ms) + encoded key -> empty, for
    /// values to expire and tombstones to collect.
    CacheDue,
    /// The replication outbox: sequence number (big-endian u64) -> encoded key written.
    Outbox,
    /// Writes applied under a request id (replicated, in snapshots): `i` + id -> the
    /// outcome and when it was applied; `t` + time (big-endian ms) + id -> empty, to forget
    /// them in time order. A write proposed again with the same id answers from here.
    Requests,
}

impl ColumnFamily {
    pub const ALL: [ColumnFamily; 11] = [
        ColumnFamily::Data,
        ColumnFamily::Expiry,
        ColumnFamily::Meta,
        ColumnFamily::RaftLog,
        ColumnFamily::RaftState,
        ColumnFamily::Changes,
        ColumnFamily::Keyspace,
        ColumnFamily::Cache,
        ColumnFamily::CacheDue,
        ColumnFamily::Outbox,
        ColumnFamily::Requests,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ColumnFamily::Data => "data",
            ColumnFamily::Expiry => "expiry",
            ColumnFamily::Meta => "meta",
            ColumnFamily::RaftLog => "raft_log",
            ColumnFamily::RaftState => "raft_state",
            ColumnFamily::Changes => "changes",
            ColumnFamily::Keyspace => "keyspace",
            ColumnFamily::Cache => "cache",
            ColumnFamily::CacheDue => "cache_due",
            ColumnFamily::Outbox => "outbox",
            ColumnFamily::Requests => "requests",
        }
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the disk is full: {0}")]
    NoSpace(String),
    #[error("data directory {path} is in use by another edgekv process (lock file {lock})")]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("storage engine error: {0}")]
    Engine(String),
    #[error("corrupted record: {0}")]
    Corrupted(String),
    #[error("i/o error on {path}: {reason}")]
    Io { path: PathBuf, reason: String },
}

impl StorageError {
    /// The stable code a client sees for this failure.
    pub fn code(&self) -> edgekv_proto::ErrorCode {
        use edgekv_proto::ErrorCode;
        match self {
            StorageError::NoSpace(_) => ErrorCode::StorageFull,
            StorageError::Corrupted(_) => ErrorCode::DataCorrupted,
            StorageError::Locked { .. } | StorageError::Engine(_) | StorageError::Io { .. } => ErrorCode::StorageError,
        }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// An owned key-value pair read from the engine.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One write in a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    Put {
        cf: ColumnFamily,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: ColumnFamily,
        key: Vec<u8>,
    },
    /// Deletes every key in `[start, end)`.
    DeleteRange {
        cf: ColumnFamily,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

/// Writes applied all-or-nothing by [`Engine::write`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    pub fn put(&mut self, cf: ColumnFamily, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(BatchOp::Put { cf, key, value });
    }

    pub fn delete(&mut self, cf: ColumnFamily, key: Vec<u8>) {
        self.ops.push(BatchOp::Delete { cf, key });
    }

    pub fn delete_range(&mut self, cf: ColumnFamily, start: Vec<u8>, end: Vec<u8>) {
        self.ops.push(BatchOp::DeleteRange { cf, start, end });
    }

    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// Whether a write must reach stable storage before [`Engine::write`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the write-ahead log: survives power loss and SIGKILL.
    Sync,
    /// Leave the WAL in the OS page cache: survives SIGKILL, not power loss.
    Buffered,
}

/// A key range for scans: `start` inclusive or unbounded, `end` exclusive or unbounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRange {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
}

impl ScanRange {
    pub fn new(start: Vec<u8>, end: Vec<u8>) -> Self {
        Self {
            start: Bound::Included(start),
            end: Bound::Excluded(end),
        }
    }

    pub fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let before_end = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        after_start && before_end
    }
}

/// An iterator over key-value pairs in key order (or reverse key order).
pub type Scan<'a> = Box<dyn Iterator<Item = StorageResult<KeyValue>> + 'a>;

/// A consistent, read-only view of the engine at one point in time.
pub trait Snapshot {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> StorageResult<Option<Vec<u8>>>;
    fn scan(&self, cf: ColumnFamily, range: ScanRange, reverse: bool) -> Scan<'_>;
}

/// An ordered, durable key-value engine. Implementations must make [`Engine::write`]
/// atomic (all ops or none) and visible to every read that starts after it returns.
pub trait Engine: Send + Sync + 'static {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> StorageResult<Option<Vec<u8>>>;
    fn scan(&self, cf: ColumnFamily, range: ScanRange, reverse: bool) -> Scan<'_>;
    fn snapshot(&self) -> Box<dyn Snapshot + '_>;
    fn write(&self, batch: WriteBatch, durability: Durability) -> StorageResult<()>;
    /// Persists everything written so far (memtables included) so a restart replays
    /// nothing. Called on orderly shutdown.
    fn flush(&self) -> StorageResult<()>;
    /// Bytes on disk (0 for engines that have no disk).
    fn disk_usage(&self) -> u64;
}
