//! Time's work on cache records: values past their expiry become tombstones (keeping
//! their stamps, so they win against older copies), and tombstones are collected once the
//! grace period has passed.

use std::collections::BTreeMap;

use super::{CacheStore, bucket_of, record_hash};
use crate::storage::codec::{expiry_index_key, split_expiry_index_key};
use crate::storage::{ColumnFamily, ScanRange, StorageResult, WriteBatch};

impl CacheStore {
    /// Expires due values (keeping their stamps as tombstones) and collects tombstones
    /// past the grace period, up to `limit` due entries. Returns how many it worked through.
    pub fn sweep(&self, limit: usize) -> StorageResult<usize> {
        let now = self.wall.now_ms();
        let due: Vec<Vec<u8>> = self
            .engine
            .scan(
                ColumnFamily::CacheDue,
                ScanRange::new(Vec::new(), expiry_index_key(now.saturating_add(1), &[])),
                false,
            )
            .take(limit)
            .map(|item| item.map(|(key, _)| key))
            .collect::<StorageResult<_>>()?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut state = self.state();
        let mut batch = WriteBatch::default();
        let mut changed = BTreeMap::new();
        let worked = due.len();
        // A key may be due several times (each write adds an entry); handle it once.
        let mut handled = std::collections::HashSet::new();
        for index_key in due {
            batch.delete(ColumnFamily::CacheDue, index_key.clone());
            let key = split_expiry_index_key(&index_key)?.1.to_vec();
            if !handled.insert(key.clone()) {
                continue;
            }
            let Some(record) = self.load(&key)? else { continue };
            let collectable = record
                .dead_since(now)
                .is_some_and(|since| since.saturating_add(self.settings.tombstone_grace_ms()) <= now);
            if collectable {
                batch.delete(ColumnFamily::Cache, key.clone());
                state
                    .digests
                    .toggle(bucket_of(&key), record_hash(&key, &record.encode()));
                state.tombstones -= u64::from(record.is_tombstone());
                state.records -= 1;
                continue;
            }
            let mut after = record.clone();
            if after.reclaim_expired(now) {
                changed.insert(key, (Some(record), after));
            }
        }
        self.commit(&mut state, batch, changed, now)?;
        Ok(worked)
    }
}
