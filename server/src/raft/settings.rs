//! The Raft member's settings (its timings and log compaction) and the openraft
//! configuration made from them.

use std::time::Duration;

use super::ConsensusError;

/// Timing and log-compaction settings of the Raft member (keys of `[cluster]` in
/// docs/config.example.toml, which `config` reads together with the node's membership
/// keys of that section).
#[derive(Clone, Debug, PartialEq)]
pub struct RaftSettings {
    /// How often the leader heartbeats its followers.
    pub heartbeat: Duration,
    /// A follower that hears nothing from a leader for this long (randomized up to twice
    /// it) starts an election. Keep it at least 10x the largest round trip between regions.
    pub election_timeout: Duration,
    /// How long a strong request may wait for a leader, a quorum or its commit before it
    /// fails with UNAVAILABLE (or OUTCOME_UNKNOWN for a write already proposed).
    pub request_timeout: Duration,
    /// Build a snapshot (and purge the log before it) after this many entries.
    pub snapshot_after_entries: u64,
    /// Entries kept in the log after a snapshot, so briefly lagging followers catch up
    /// from the log instead of a snapshot.
    pub entries_kept_after_snapshot: u64,
    /// The most bytes a snapshot received from the leader may have; a stream of chunks
    /// beyond it is refused (see `snapshot_chunks`).
    pub max_snapshot_bytes: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        // Cross-region defaults: 220 ms is about the worst round trip between public cloud
        // regions (eu-west to ap-northeast), so elections start after 3 s of silence.
        Self {
            heartbeat: Duration::from_millis(300),
            election_timeout: Duration::from_millis(3000),
            request_timeout: Duration::from_secs(10),
            snapshot_after_entries: 20_000,
            entries_kept_after_snapshot: 5_000,
            max_snapshot_bytes: super::snapshot_chunks::MAX_SNAPSHOT_BYTES,
        }
    }
}

impl RaftSettings {
    /// The openraft configuration these settings make, checked by openraft.
    pub(super) fn openraft_config(&self) -> Result<openraft::Config, ConsensusError> {
        let election_ms = self.election_timeout.as_millis() as u64;
        let config = openraft::Config {
            cluster_name: "edgekv".into(),
            heartbeat_interval: self.heartbeat.as_millis() as u64,
            election_timeout_min: election_ms,
            election_timeout_max: election_ms * 2,
            // Snapshot chunks and append batches stay well under the peer message limit.
            max_payload_entries: 16,
            snapshot_max_chunk_size: 4 * 1024 * 1024,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_after_entries),
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| ConsensusError::Invalid(format!("invalid Raft settings: {e}")))
    }
}
