//! An in-memory [`Engine`] for unit tests: a `BTreeMap` per column family behind one lock,
//! with snapshots taken by cloning. Never used by the node itself.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{
    BatchOp, ColumnFamily, Durability, Engine, KeyValue, Scan, ScanRange, Snapshot, StorageResult, WriteBatch,
};

type Tables = BTreeMap<ColumnFamily, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Default)]
pub struct MemoryEngine {
    tables: RwLock<Tables>,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }
}

struct MemorySnapshot(Tables);

fn scan_table(tables: &Tables, cf: ColumnFamily, range: ScanRange, reverse: bool) -> Vec<KeyValue> {
    let Some(table) = tables.get(&cf) else {
        return Vec::new();
    };
    let matching = table
        .range((range.start, range.end))
        .map(|(k, v)| (k.clone(), v.clone()));
    if reverse {
        matching.rev().collect()
    } else {
        matching.collect()
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.0.get(&cf).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, cf: ColumnFamily, range: ScanRange, reverse: bool) -> Scan<'_> {
        Box::new(scan_table(&self.0, cf, range, reverse).into_iter().map(Ok))
    }
}

impl Engine for MemoryEngine {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        let tables = self.tables.read().expect("memory engine lock");
        Ok(tables.get(&cf).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, cf: ColumnFamily, range: ScanRange, reverse: bool) -> Scan<'_> {
        let tables = self.tables.read().expect("memory engine lock");
        Box::new(scan_table(&tables, cf, range, reverse).into_iter().map(Ok))
    }

    fn snapshot(&self) -> Box<dyn Snapshot + '_> {
        Box::new(MemorySnapshot(self.tables.read().expect("memory engine lock").clone()))
    }

    fn write(&self, batch: WriteBatch, _durability: Durability) -> StorageResult<()> {
        let mut tables = self.tables.write().expect("memory engine lock");
        for op in batch.ops {
            match op {
                BatchOp::Put { cf, key, value } => {
                    tables.entry(cf).or_default().insert(key, value);
                }
                BatchOp::Delete { cf, key } => {
                    tables.entry(cf).or_default().remove(&key);
                }
                BatchOp::DeleteRange { cf, start, end } => {
                    tables
                        .entry(cf)
                        .or_default()
                        .retain(|key, _| key < &start || key >= &end);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> StorageResult<()> {
        Ok(())
    }

    fn disk_usage(&self) -> u64 {
        0
    }
}
