//! The production [`Engine`]: RocksDB with one column family per [`ColumnFamily`].
//!
//! Opening takes an exclusive lock on `<data dir>/edgekv.lock` first, so a second process
//! on the same directory fails with a message naming the holder instead of RocksDB's
//! terse lock error. Writes go through one `WriteBatch` with an fsync of the WAL when
//! [`Durability::Sync`] is asked for.

use std::fs::File;
use std::io::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use rocksdb::{
    BoundColumnFamily, ColumnFamilyDescriptor, DBWithThreadMode, IteratorMode, MultiThreaded, ReadOptions,
    SnapshotWithThreadMode, WriteOptions, compaction_filter::Decision,
};

use super::{
    BatchOp, ColumnFamily, Durability, Engine, Scan, ScanRange, Snapshot, StorageError, StorageResult, WriteBatch,
};

type Db = DBWithThreadMode<MultiThreaded>;

/// Block cache shared by every column family.
const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Decides during compaction whether a data record may be dropped (it is expired).
pub type DropFilter = Box<dyn Fn(&[u8], &[u8]) -> bool + Send + Sync + 'static>;

#[derive(Default)]
pub struct RocksOptions {
    /// Compaction filter for the data column family: the TTL backstop.
    pub data_drop_filter: Option<DropFilter>,
}

pub struct RocksEngine {
    db: Db,
    path: PathBuf,
    // Held for the engine's lifetime; the OS releases the lock when the process dies, so
    // a crash never leaves a stale lock behind.
    _lock: File,
}

fn engine_error(error: rocksdb::Error) -> StorageError {
    let text = error.to_string();
    if text.contains("No space left on device") || text.contains("ENOSPC") {
        StorageError::NoSpace(text)
    } else if matches!(error.kind(), rocksdb::ErrorKind::Corruption) {
        StorageError::Corrupted(text)
    } else {
        StorageError::Engine(text)
    }
}

fn lock_data_dir(path: &Path) -> StorageResult<File> {
    let io = |e: std::io::Error| StorageError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(path).map_err(io)?;
    let lock_path = path.join("edgekv.lock");
    let mut lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StorageError::Locked {
                path: path.to_path_buf(),
                lock: lock_path,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // The PID is for people reading the file; the lock itself is what excludes.
    lock.set_len(0).map_err(io)?;
    writeln!(lock, "{}", std::process::id()).map_err(io)?;
    Ok(lock)
}

impl RocksEngine {
    pub fn open(path: &Path, options: RocksOptions) -> StorageResult<Self> {
        let lock = lock_data_dir(path)?;
        let mut db_options = rocksdb::Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_keep_log_file_num(4);
        db_options.set_max_background_jobs(2);

        let mut data_filter = options.data_drop_filter;
        // One block cache for all column families; bloom filters on the data family make
        // a get of an absent key (common: caches, checks that a key does not exist) skip
        // the SST reads.
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let descriptors = ColumnFamily::ALL.map(|cf| {
            let mut cf_options = rocksdb::Options::default();
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_block_cache(&cache);
            if cf == ColumnFamily::Data {
                table.set_bloom_filter(10.0, false);
                table.set_cache_index_and_filter_blocks(true);
                cf_options.set_compression_type(rocksdb::DBCompressionType::Lz4);
            }
            cf_options.set_block_based_table_factory(&table);
            if cf == ColumnFamily::Data
                && let Some(filter) = data_filter.take()
            {
                cf_options.set_compaction_filter("edgekv-expiry", move |_level: u32, key: &[u8], value: &[u8]| {
                    if filter(key, value) {
                        Decision::Remove
                    } else {
                        Decision::Keep
                    }
                });
            }
            ColumnFamilyDescriptor::new(cf.name(), cf_options)
        });
        let db = Db::open_cf_descriptors(&db_options, path, descriptors).map_err(engine_error)?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    fn handle(&self, cf: ColumnFamily) -> std::sync::Arc<BoundColumnFamily<'_>> {
        self.db
            .cf_handle(cf.name())
            .expect("every column family is created at open")
    }

    /// Forces a full compaction of the data column family (tests use it to exercise the
    /// compaction filter).
    pub fn compact_data(&self) {
        self.db
            .compact_range_cf(&self.handle(ColumnFamily::Data), None::<&[u8]>, None::<&[u8]>);
    }
}

fn read_options(range: &ScanRange) -> (ReadOptions, IteratorMode<'static>, Option<Vec<u8>>) {
    let mut options = ReadOptions::default();
    // Exclusive lower bounds are rare (cursors) and handled by skipping the one key.
    let mut skip = None;
    match &range.start {
        Bound::Included(start) => options.set_iterate_lower_bound(start.clone()),
        Bound::Excluded(start) => {
            options.set_iterate_lower_bound(start.clone());
            skip = Some(start.clone());
        }
        Bound::Unbounded => {}
    }
    match &range.end {
        Bound::Excluded(end) => options.set_iterate_upper_bound(end.clone()),
        Bound::Included(end) => {
            let mut after = end.clone();
            after.push(0);
            options.set_iterate_upper_bound(after);
        }
        Bound::Unbounded => {}
    }
    (options, IteratorMode::Start, skip)
}

fn to_scan<'a, I>(iter: I, skip: Option<Vec<u8>>) -> Scan<'a>
where
    I: Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>> + 'a,
{
    Box::new(
        iter.map(|item| item.map(|(k, v)| (k.into_vec(), v.into_vec())).map_err(engine_error))
            .filter(move |item| match (&skip, item) {
                (Some(skip), Ok((key, _))) => key != skip,
                _ => true,
            }),
    )
}

fn direction(reverse: bool) -> IteratorMode<'static> {
    if reverse {
        IteratorMode::End
    } else {
        IteratorMode::Start
    }
}

struct RocksSnapshot<'a> {
    engine: &'a RocksEngine,
    snapshot: SnapshotWithThreadMode<'a, Db>,
}

impl Snapshot for RocksSnapshot<'_> {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.snapshot.get_cf(&self.engine.handle(cf), key).map_err(engine_error)
    }

    fn scan(&self, cf: ColumnFamily, range: ScanRange, reverse: bool) -> Scan<'_> {
        let (options, _, skip) = read_options(&range);
        let iter = self
            .snapshot
            .iterator_cf_opt(&self.engine.handle(cf), options, direction(reverse));
        to_scan(iter, skip)
    }
}

impl Engine for RocksEngine {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.db.get_cf(&self.handle(cf), key).map_err(engine_error)
    }

    fn scan(&self, cf: ColumnFamily, range: ScanRange, reverse: bool) -> Scan<'_> {
        let (options, _, skip) = read_options(&range);
        let iter = self.db.iterator_cf_opt(&self.handle(cf), options, direction(reverse));
        to_scan(iter, skip)
    }

    fn snapshot(&self) -> Box<dyn Snapshot + '_> {
        Box::new(RocksSnapshot {
            engine: self,
            snapshot: self.db.snapshot(),
        })
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> StorageResult<()> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.ops {
            match op {
                BatchOp::Put { cf, key, value } => rocks_batch.put_cf(&self.handle(cf), key, value),
                BatchOp::Delete { cf, key } => rocks_batch.delete_cf(&self.handle(cf), key),
                BatchOp::DeleteRange { cf, start, end } => rocks_batch.delete_range_cf(&self.handle(cf), start, end),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(durability == Durability::Sync);
        self.db.write_opt(rocks_batch, &options).map_err(engine_error)
    }

    fn flush(&self) -> StorageResult<()> {
        self.db.flush_wal(true).map_err(engine_error)?;
        for cf in ColumnFamily::ALL {
            self.db.flush_cf(&self.handle(cf)).map_err(engine_error)?;
        }
        Ok(())
    }

    fn disk_usage(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => walk(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_a_data_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RocksEngine::open(dir.path(), RocksOptions::default()).unwrap();
        match RocksEngine::open(dir.path(), RocksOptions::default()) {
            Err(StorageError::Locked { .. }) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("expected Locked, got a second engine"),
        }
    }

    #[test]
    fn scans_respect_bounds_in_both_directions() {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(dir.path(), RocksOptions::default()).unwrap();
        let mut batch = WriteBatch::default();
        for k in [b"a", b"b", b"c", b"d"] {
            batch.put(ColumnFamily::Data, k.to_vec(), k.to_vec());
        }
        engine.write(batch, Durability::Sync).unwrap();
        let keys = |range: ScanRange, reverse| -> Vec<Vec<u8>> {
            engine
                .scan(ColumnFamily::Data, range, reverse)
                .map(|r| r.unwrap().0)
                .collect()
        };
        let range = ScanRange::new(b"b".to_vec(), b"d".to_vec());
        assert_eq!(keys(range.clone(), false), vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(keys(range, true), vec![b"c".to_vec(), b"b".to_vec()]);
        let excluded = ScanRange {
            start: Bound::Excluded(b"b".to_vec()),
            end: Bound::Unbounded,
        };
        assert_eq!(keys(excluded, false), vec![b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(engine.scan(ColumnFamily::Expiry, ScanRange::all(), false).count(), 0);
    }
}
