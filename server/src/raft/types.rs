//! The Raft type configuration and the few types every part of the Raft layer shares:
//! members, proposals and what applying them answers.
//!
//! The Raft layer is payload-agnostic: a [`Proposal`] carries opaque bytes that the
//! [`Applier`](super::Applier) (the key-value domain) encodes and decodes. Raft only adds the
//! leader's clock reading, so every replica applies TTL decisions at the same instant.

use std::fmt;

use serde::{Deserialize, Serialize};

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// edgekv's openraft configuration.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
pub type Snapshot = openraft::storage::Snapshot<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Member>;
pub type StorageError = openraft::StorageError<NodeId>;

/// What the cluster knows about a member: where it runs and where its peers reach it.
/// The client API address is not part of it; nodes tell it to each other when asked
/// (`Describe`), so it can change across restarts without a membership change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub region: String,
    /// The member's `--peer-listen` address, `host:port`.
    pub peer_addr: String,
}

impl Member {
    /// Where the peer transport sends this member's messages.
    pub fn destination(&self) -> crate::net::Destination<'_> {
        crate::net::Destination {
            region: &self.region,
            peer_addr: &self.peer_addr,
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.region, self.peer_addr)
    }
}

/// One log entry's worth of client requests (the proposer batches concurrent requests into
/// one entry, so a quorum round and an fsync serve them all), plus the leader's clock when
/// it proposed them. Expiry is decided against this clock, never a replica's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub now_ms: u64,
    /// The applier's encoded requests, applied in order.
    pub bodies: Vec<Vec<u8>>,
}

/// The applier's answers, one per body of the proposal (none for blank and membership
/// entries).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied(pub Vec<Vec<u8>>);
