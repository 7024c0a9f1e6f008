//! The expiry sweeper: a background worker that finds due entries in the expiry index and
//! passes them to whoever owns deletes (the commit pipeline), in bounded batches.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DueExpiry;
use crate::clock::Clock;
use crate::storage::codec::{expiry_index_due_end, split_expiry_index_key};
use crate::storage::{ColumnFamily, Engine, ScanRange, StorageResult};

/// Most entries handed over in one batch, so one sweep never builds an unbounded commit.
pub const SWEEP_BATCH: usize = 1000;

/// The due entries at `now_ms`, oldest first, at most `max`.
pub fn due_entries(engine: &dyn Engine, now_ms: u64, max: usize) -> StorageResult<Vec<DueExpiry>> {
    let range = ScanRange {
        start: std::ops::Bound::Unbounded,
        end: std::ops::Bound::Excluded(expiry_index_due_end(now_ms)),
    };
    let mut due = Vec::new();
    for item in engine.scan(ColumnFamily::Expiry, range, false).take(max) {
        let (index_key, _) = item?;
        let (expires_at_ms, key) = split_expiry_index_key(&index_key)?;
        due.push(DueExpiry {
            expires_at_ms,
            key: key.to_vec(),
        });
    }
    Ok(due)
}

pub struct Sweeper {
    pub engine: Arc<dyn Engine>,
    pub clock: Arc<dyn Clock>,
    pub interval: Duration,
}

impl Sweeper {
    /// Sweeps every `interval` until `shutdown` fires. A full batch is followed by another
    /// at once, so a backlog drains at commit speed rather than one batch per interval.
    pub async fn run<F, Fut, E>(self, expire: F, shutdown: CancellationToken)
    where
        F: Fn(Vec<DueExpiry>) -> Fut,
        Fut: Future<Output = Result<usize, E>>,
        E: std::fmt::Display,
    {
        loop {
            let due = match due_entries(self.engine.as_ref(), self.clock.now_ms(), SWEEP_BATCH) {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "expiry sweep could not read the expiry index");
                    Vec::new()
                }
            };
            let full = due.len() == SWEEP_BATCH;
            let mut drained = false;
            if !due.is_empty() {
                match expire(due).await {
                    Ok(expired) => {
                        tracing::debug!(expired, "expiry sweep reclaimed entries");
                        drained = true;
                    }
                    Err(error) => tracing::warn!(%error, "expiry sweep failed; retrying next interval"),
                }
            }
            if full && drained && !shutdown.is_cancelled() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
