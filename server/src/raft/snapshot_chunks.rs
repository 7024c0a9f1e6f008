//! Checks an incoming InstallSnapshot chunk before openraft sees it.
//!
//! openraft 0.9 writes each chunk at its `offset` into the `Cursor<Vec<u8>>` receiving the
//! snapshot, zero-filling any gap first. Unchecked, one message naming a snapshot offset of
//! a terabyte makes the receiver allocate a terabyte (and abort). An honest sender
//! (openraft's chunked transport) only ever sends, for one snapshot id, the chunk at offset
//! 0, the chunk starting where the previous one ended, or the previous chunk again (after
//! its answer was lost); so a chunk is taken only at one of those offsets, and only if it
//! ends within the node's cap (`[cluster] max_snapshot_bytes`, [`MAX_SNAPSHOT_BYTES`] by
//! default). Every write then lands at or before the end of what was received, so the
//! buffer grows only by bytes actually sent, and never past the cap. openraft 0.9's
//! InstallSnapshot carries no total size to check chunks against, so the cap is the bound.

/// The most bytes a snapshot may have, unless configured otherwise. Snapshots are built and installed in memory (the
/// whole encoded data, expiry and keyspace families), which docs/architecture.md puts at
/// "a few GiB per node" for this version; their encoding adds a few bytes per record to the
/// keys and values. 8 GiB is twice that with room to spare, so any snapshot a node of this
/// version can build passes, while a peer streaming without end is stopped before it
/// exhausts the memory of a node sized for such a data set.
pub const MAX_SNAPSHOT_BYTES: u64 = 8 << 30;

/// Why a chunk is refused (answered INVALID_ARGUMENT; nothing is written).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error(
        "snapshot {id}: a chunk of {len} bytes at offset {offset} would end past {cap} bytes, the most a snapshot \
         may have"
    )]
    TooLarge {
        id: String,
        offset: u64,
        len: u64,
        cap: u64,
    },
    #[error("snapshot {id}: a chunk at offset {offset}, but {received} bytes were received (chunks arrive in order)")]
    OutOfOrder { id: String, offset: u64, received: u64 },
    #[error("snapshot {id} is not being received here; its first chunk must be at offset 0, not {offset}")]
    NotStarted { id: String, offset: u64 },
}

/// The snapshot being received, as openraft's stream of it stands.
#[derive(Debug)]
struct Receiving {
    id: String,
    /// Where the next chunk starts: the end of the last chunk taken.
    next: u64,
    /// Where the last chunk taken started (it may be sent again).
    last: u64,
}

/// Tracks the snapshot being received and judges each chunk before it is handed over.
#[derive(Debug)]
pub struct ChunkGuard {
    cap: u64,
    receiving: Option<Receiving>,
}

impl ChunkGuard {
    pub fn new(cap: u64) -> Self {
        Self { cap, receiving: None }
    }

    /// Whether a chunk of snapshot `id` with `len` bytes at `offset` may be handed over.
    pub fn check(&self, id: &str, offset: u64, len: u64) -> Result<(), ChunkError> {
        let too_large = || ChunkError::TooLarge {
            id: id.to_string(),
            offset,
            len,
            cap: self.cap,
        };
        let end = offset.checked_add(len).ok_or_else(too_large)?;
        if end > self.cap {
            return Err(too_large());
        }
        // Offset 0 starts the snapshot (or starts it over); openraft writes it from the
        // beginning of its buffer, so it never leaves a gap.
        if offset == 0 {
            return Ok(());
        }
        match &self.receiving {
            Some(r) if r.id == id && (offset == r.next || offset == r.last) => Ok(()),
            Some(r) if r.id == id => Err(ChunkError::OutOfOrder {
                id: id.to_string(),
                offset,
                received: r.next,
            }),
            _ => Err(ChunkError::NotStarted {
                id: id.to_string(),
                offset,
            }),
        }
    }

    /// openraft took the chunk (checked first) into its stream; `done` ends the stream.
    pub fn taken(&mut self, id: &str, offset: u64, len: u64, done: bool) {
        if done {
            self.receiving = None;
            return;
        }
        let receiving = self.receiving.get_or_insert_with(|| Receiving {
            id: id.to_string(),
            next: 0,
            last: 0,
        });
        if receiving.id != id {
            receiving.id = id.to_string();
        }
        receiving.last = offset;
        receiving.next = offset + len;
    }

    /// openraft did not take the chunk (a stale vote, an error): what its stream holds now
    /// is not known here, so the next chunk must start a snapshot at offset 0, which is
    /// always safe.
    pub fn forget(&mut self) {
        self.receiving = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_honest_sender_passes() {
        let mut guard = ChunkGuard::new(100);
        for (offset, len) in [(0, 30), (30, 30), (60, 40)] {
            guard.check("s", offset, len).unwrap();
            guard.taken("s", offset, len, offset + len == 100);
        }
        // A new snapshot afterwards, started over, and a chunk sent again after a lost answer.
        guard.check("t", 0, 10).unwrap();
        guard.taken("t", 0, 10, false);
        guard.check("t", 10, 10).unwrap();
        guard.taken("t", 10, 10, false);
        guard.check("t", 10, 10).unwrap();
        guard.taken("t", 10, 10, false);
        guard.check("t", 0, 10).unwrap();
        guard.taken("t", 0, 10, false);
        guard.check("t", 10, 10).unwrap();
    }

    #[test]
    fn a_gap_is_refused() {
        let mut guard = ChunkGuard::new(u64::MAX);
        guard.taken("s", 0, 3, false);
        assert!(matches!(
            guard.check("s", 1 << 40, 1),
            Err(ChunkError::OutOfOrder { received: 3, .. })
        ));
        // Nor may a chunk skip back into the middle of what was received.
        guard.taken("s", 3, 3, false);
        assert!(matches!(guard.check("s", 1, 1), Err(ChunkError::OutOfOrder { .. })));
    }

    #[test]
    fn a_snapshot_not_started_must_start_at_zero() {
        let mut guard = ChunkGuard::new(100);
        assert!(matches!(guard.check("s", 5, 1), Err(ChunkError::NotStarted { .. })));
        guard.taken("s", 0, 5, false);
        assert!(matches!(guard.check("other", 5, 1), Err(ChunkError::NotStarted { .. })));
        // A finished or forgotten snapshot is not continued either.
        guard.taken("s", 5, 5, true);
        assert!(matches!(guard.check("s", 10, 1), Err(ChunkError::NotStarted { .. })));
        guard.taken("s", 0, 5, false);
        guard.forget();
        assert!(matches!(guard.check("s", 5, 1), Err(ChunkError::NotStarted { .. })));
        guard.check("s", 0, 5).unwrap();
    }

    #[test]
    fn nothing_ends_past_the_cap() {
        let mut guard = ChunkGuard::new(100);
        assert!(matches!(guard.check("s", 0, 101), Err(ChunkError::TooLarge { .. })));
        guard.taken("s", 0, 60, false);
        assert!(matches!(guard.check("s", 60, 41), Err(ChunkError::TooLarge { .. })));
        guard.check("s", 60, 40).unwrap();
        assert!(matches!(
            guard.check("s", u64::MAX, 2),
            Err(ChunkError::TooLarge { .. })
        ));
    }
}
