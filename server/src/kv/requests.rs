//! The request-id table: which writes were applied under which request id, and with what
//! outcome, so a write proposed again with the same id (a retry after an unknown outcome,
//! or the proposer re-proposing after a leader change) answers with its first outcome
//! instead of applying twice.
//!
//! It lives in the `requests` column family, is written in the same `WriteBatch` as the
//! write it records, and travels in snapshots like the data, so every replica answers a
//! duplicate the same way. Entries are forgotten in time order, by the replicated clock,
//! when the leader proposes it ([`super::apply::Command::ForgetRequests`]); a retry after
//! that is a new write.

use serde::{Deserialize, Serialize};

use super::apply::Refusal;
use super::types::AtomicOutcome;
use crate::storage::{ColumnFamily, Engine, ScanRange, StorageError, StorageResult, WriteBatch};

/// How long a request id is remembered after its write was applied (by the replicated
/// clock): a retry within it answers with the first outcome, a retry after it is a new
/// write.
pub const REQUEST_WINDOW: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How often the leader looks for request ids to forget.
pub const FORGET_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The longest request id accepted: a UUID is 16 bytes, a caller's idempotency key may be
/// longer, and the table keeps one copy per applied write.
pub const MAX_REQUEST_ID_BYTES: usize = 64;

/// Entries forgotten by one `ForgetRequests` command at most, so one entry's work stays
/// bounded however many requests fell out of the window at once.
pub(crate) const FORGET_BATCH: usize = 4096;

const ID_TAG: u8 = b'i';
const TIME_TAG: u8 = b't';

/// A write applied under a request id: its outcome, or the refusal that wrote nothing
/// (recorded too, so a copy of the write still in flight cannot apply after a retry was
/// told it was refused).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Recorded {
    /// The replicated clock when it was applied.
    pub at_ms: u64,
    pub outcome: Result<AtomicOutcome, Refusal>,
}

fn id_key(id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(ID_TAG);
    key.extend_from_slice(id);
    key
}

fn time_key(at_ms: u64, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + id.len());
    key.push(TIME_TAG);
    key.extend_from_slice(&at_ms.to_be_bytes());
    key.extend_from_slice(id);
    key
}

/// What the table holds for `id`, if the write was applied (and not yet forgotten).
pub(crate) fn find(engine: &dyn Engine, id: &[u8]) -> StorageResult<Option<Recorded>> {
    engine
        .get(ColumnFamily::Requests, &id_key(id))?
        .map(|bytes| {
            postcard::from_bytes(&bytes).map_err(|e| StorageError::Corrupted(format!("request id record: {e}")))
        })
        .transpose()
}

/// Stages `recorded` under `id` in `batch`.
pub(crate) fn record(batch: &mut WriteBatch, id: &[u8], recorded: &Recorded) {
    let bytes = postcard::to_allocvec(recorded).expect("a recorded outcome always encodes");
    batch.put(ColumnFamily::Requests, id_key(id), bytes);
    batch.put(ColumnFamily::Requests, time_key(recorded.at_ms, id), Vec::new());
}

/// The ids recorded before `before_ms`, oldest first, at most `limit` of them.
pub(crate) fn recorded_before(engine: &dyn Engine, before_ms: u64, limit: usize) -> StorageResult<Vec<(u64, Vec<u8>)>> {
    let range = ScanRange::new(vec![TIME_TAG], time_key(before_ms, &[]));
    engine
        .scan(ColumnFamily::Requests, range, false)
        .take(limit)
        .map(|item| {
            let (key, _) = item?;
            let at_ms = key
                .get(1..9)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StorageError::Corrupted("a request time key is shorter than 9 bytes".into()))?;
            Ok((at_ms, key[9..].to_vec()))
        })
        .collect()
}

/// Stages forgetting the request `id` recorded at `at_ms`.
pub(crate) fn forget(batch: &mut WriteBatch, at_ms: u64, id: &[u8]) {
    batch.delete(ColumnFamily::Requests, id_key(id));
    batch.delete(ColumnFamily::Requests, time_key(at_ms, id));
}

/// When the oldest recorded request was applied, if any (the sweeper's cue to propose
/// forgetting).
pub(crate) fn oldest(engine: &dyn Engine) -> StorageResult<Option<u64>> {
    Ok(recorded_before(engine, u64::MAX, 1)?.first().map(|(at, _)| *at))
}
