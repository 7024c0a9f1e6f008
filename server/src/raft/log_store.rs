//! The Raft log on RocksDB: entries in the `raft_log` column family (keyed by big-endian
//! index, so a scan is in log order), the vote and the committed and purged log ids in
//! `raft_state`.
//!
//! Appends are fsynced before openraft is told they are durable (unless the node runs with
//! `sync_writes = false`); that one fsync also makes every state-machine write before it
//! durable, because all column families share RocksDB's write-ahead log.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::storage::{ColumnFamily, Durability, Engine, ScanRange, WriteBatch};

const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const LAST_PURGED_KEY: &[u8] = b"last_purged";

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AnyError> {
    postcard::to_allocvec(value).map_err(|e| AnyError::error(format!("cannot encode: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AnyError> {
    postcard::from_bytes(bytes).map_err(|e| AnyError::error(format!("cannot decode: {e}")))
}

fn index_key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

/// Runs blocking engine work off the async worker threads: an fsync must not stall the
/// Raft core and the client API that share the runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AnyError> + Send + 'static,
) -> Result<T, AnyError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AnyError::error(format!("storage task failed: {e}")))?
}

#[derive(Clone)]
pub struct LogStore {
    engine: Arc<dyn Engine>,
    durability: Durability,
}

impl LogStore {
    pub fn new(engine: Arc<dyn Engine>, durability: Durability) -> Self {
        Self { engine, durability }
    }

    fn read_state<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, AnyError> {
        match self
            .engine
            .get(ColumnFamily::RaftState, key)
            .map_err(|e| AnyError::new(&e))?
        {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    async fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), AnyError> {
        let engine = self.engine.clone();
        blocking(move || engine.write(batch, durability).map_err(|e| AnyError::new(&e))).await
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, AnyError> {
        let mut newest = self.engine.scan(ColumnFamily::RaftLog, ScanRange::all(), true);
        match newest.next() {
            None => Ok(None),
            Some(item) => {
                let (_, bytes) = item.map_err(|e| AnyError::new(&e))?;
                let entry: Entry = decode(&bytes)?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let engine = self.engine.clone();
        let entries = blocking(move || {
            engine
                .scan(ColumnFamily::RaftLog, ScanRange { start, end }, false)
                .map(|item| {
                    let (_, bytes) = item.map_err(|e| AnyError::new(&e))?;
                    decode::<Entry>(&bytes)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(StorageIOError::read_logs)?;
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_state(LAST_PURGED_KEY).map_err(StorageIOError::read_logs)?;
        let last_log_id = self
            .last_entry_id()
            .map_err(StorageIOError::read_logs)?
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put(
            ColumnFamily::RaftState,
            VOTE_KEY.to_vec(),
            encode(vote).map_err(StorageIOError::write_vote)?,
        );
        // A vote must survive power loss whatever sync_writes says: voting twice in one
        // term is how Raft loses safety.
        self.write(batch, Durability::Sync)
            .await
            .map_err(StorageIOError::write_vote)?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.read_state(VOTE_KEY).map_err(StorageIOError::read_vote)?)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // A hint for restart (re-apply up to here at once); losing it is safe, so it
        // rides along with the next fsync instead of paying for one.
        let mut batch = WriteBatch::default();
        batch.put(
            ColumnFamily::RaftState,
            COMMITTED_KEY.to_vec(),
            encode(&committed).map_err(StorageIOError::write)?,
        );
        self.write(batch, Durability::Buffered)
            .await
            .map_err(StorageIOError::write)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = self.read_state(COMMITTED_KEY).map_err(StorageIOError::read)?;
        Ok(committed.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put(
                ColumnFamily::RaftLog,
                index_key(entry.log_id.index),
                encode(&entry).map_err(StorageIOError::write_logs)?,
            );
        }
        let result = self.write(batch, self.durability).await;
        callback.log_io_completed(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string())),
        );
        result.map_err(StorageIOError::write_logs)?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range(ColumnFamily::RaftLog, index_key(log_id.index), index_key(u64::MAX));
        batch.delete(ColumnFamily::RaftLog, index_key(u64::MAX));
        self.write(batch, self.durability)
            .await
            .map_err(StorageIOError::write_logs)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put(
            ColumnFamily::RaftState,
            LAST_PURGED_KEY.to_vec(),
            encode(&log_id).map_err(StorageIOError::write_logs)?,
        );
        batch.delete_range(ColumnFamily::RaftLog, index_key(0), index_key(log_id.index + 1));
        // Synced even with sync_writes off: once entries are gone, the state machine
        // writes they produced (made without fsync) must be on disk, and this fsync of the
        // shared write-ahead log is what puts them there.
        self.write(batch, Durability::Sync)
            .await
            .map_err(StorageIOError::write_logs)?;
        Ok(())
    }
}
