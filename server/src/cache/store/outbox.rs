//! The durable outbox: one entry per cache key written here, read by each peer's shipper
//! from its own cursor and trimmed behind the slowest (and beyond the limit, for peers
//! that anti-entropy then repairs).

use std::sync::atomic::Ordering;

use super::{CacheStore, outbox_key, seq_of};
use crate::storage::{ColumnFamily, Durability, ScanRange, StorageResult, WriteBatch};

impl CacheStore {
    /// Up to `limit` outbox entries after `after`: (sequence number, key).
    pub fn outbox_after(&self, after: u64, limit: usize) -> StorageResult<Vec<(u64, Vec<u8>)>> {
        let range = ScanRange::new(outbox_key(after.saturating_add(1)), outbox_key(u64::MAX));
        self.engine
            .scan(ColumnFamily::Outbox, range, false)
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                Ok((seq_of(&key)?, value))
            })
            .collect()
    }

    /// Drops outbox entries every peer has taken (up to `taken`), and the oldest beyond
    /// the limit. Returns the oldest sequence number still kept: a peer whose cursor is
    /// below it missed entries and relies on anti-entropy.
    pub fn trim_outbox(&self, taken: u64) -> StorageResult<u64> {
        let mut state = self.state();
        let over_limit = state.outbox_head.saturating_sub(self.settings.outbox_limit);
        let upto = taken.max(over_limit).min(state.outbox_head);
        if state.outbox_oldest == 0 || upto < state.outbox_oldest {
            return Ok(state.outbox_oldest);
        }
        // Entries no peer had taken yet, dropped only because of the limit.
        let dropped = (upto + 1).saturating_sub(state.outbox_oldest.max(taken + 1));
        self.counters.outbox_dropped.fetch_add(dropped, Ordering::Relaxed);
        let mut batch = WriteBatch::default();
        batch.delete_range(ColumnFamily::Outbox, outbox_key(0), outbox_key(upto + 1));
        self.engine.write(batch, Durability::Buffered)?;
        state.outbox_oldest = if upto == state.outbox_head { 0 } else { upto + 1 };
        Ok(state.outbox_oldest)
    }
}
