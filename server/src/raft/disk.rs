//! Knowing by type that the Raft member stopped because the disk is full. openraft carries
//! a storage failure as text, so the engine under the log store and the state machine is
//! watched instead: a write or flush refused with [`StorageError::NoSpace`] marks the disk
//! full, and a member stopped by a storage failure then answers `STORAGE_FULL` (retryable
//! once there is space) rather than `STORAGE_ERROR`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::storage::{
    ColumnFamily, Durability, Engine, Scan, ScanRange, Snapshot, StorageError, StorageResult, WriteBatch,
};

pub(crate) struct DiskWatch {
    engine: Arc<dyn Engine>,
    full: AtomicBool,
}

impl DiskWatch {
    pub(crate) fn new(engine: Arc<dyn Engine>) -> Arc<Self> {
        Arc::new(Self {
            engine,
            full: AtomicBool::new(false),
        })
    }

    /// Whether a write through this engine found the disk full.
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    fn observe(&self, result: StorageResult<()>) -> StorageResult<()> {
        if let Err(StorageError::NoSpace(_)) = &result {
            self.full.store(true, Ordering::SeqCst);
        }
        result
    }
}

impl Engine for DiskWatch {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.engine.get(cf, key)
    }

    fn scan(&self, cf: ColumnFamily, range: ScanRange, reverse: bool) -> Scan<'_> {
        self.engine.scan(cf, range, reverse)
    }

    fn snapshot(&self) -> Box<dyn Snapshot + '_> {
        self.engine.snapshot()
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> StorageResult<()> {
        self.observe(self.engine.write(batch, durability))
    }

    fn flush(&self) -> StorageResult<()> {
        self.observe(self.engine.flush())
    }

    fn disk_usage(&self) -> u64 {
        self.engine.disk_usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryEngine;

    #[test]
    fn only_a_full_disk_marks_it_full() {
        let watch = DiskWatch::new(Arc::new(MemoryEngine::new()));
        watch.write(WriteBatch::default(), Durability::Sync).unwrap();
        assert!(watch.observe(Err(StorageError::Engine("busy".into()))).is_err());
        assert!(!watch.is_full());
        assert!(watch.observe(Err(StorageError::NoSpace("ENOSPC".into()))).is_err());
        assert!(watch.is_full());
    }
}
