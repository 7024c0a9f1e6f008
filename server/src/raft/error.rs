//! What can go wrong on the strong path, as the rest of the node and the other nodes see
//! it ([`ConsensusError`], each with its stable code), and the leader's answer to a
//! forwarded write.

use edgekv_proto::ErrorCode;
use serde::{Deserialize, Serialize};

use super::state_machine::Refused;
use super::types::NodeId;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ConsensusError {
    #[error("no leader is known after {0} ms (an election is in progress or no quorum is reachable)")]
    NoLeader(u64),
    #[error("cannot reach the leader: {0}")]
    LeaderUnreachable(String),
    #[error(
        "could not confirm leadership with a quorum within {0} ms; a strong read is refused rather than served stale"
    )]
    NoQuorum(u64),
    #[error(
        "no contact with a quorum for {0} ms: this node looks cut off from the rest of the cluster, so strong \
         requests fail at once until it is back (cache keys keep working)"
    )]
    CutOff(u64),
    #[error("the write was proposed but its outcome is unknown ({0}); it may or may not have been applied")]
    OutcomeUnknown(String),
    /// Only between nodes: the one asked is not the leader (the caller retries at the
    /// leader). Never reaches a client.
    #[error("this node is not the leader")]
    NotLeader,
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("Raft storage failed: {0}")]
    Storage(String),
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("node {0} is not a member of the cluster")]
    NotMember(NodeId),
    #[error("{0}")]
    Invalid(String),
    /// After the variants it follows, so they keep their wire numbers between nodes.
    #[error("the disk is full; the Raft member stopped: {0}")]
    StorageFull(String),
    /// The leader refused a forwarded request before proposing it (the domain's checks
    /// failed: [`super::Applier::check_proposal`]); nothing was proposed. `code` is the
    /// stable code's text, as the domain's answers carry it. Last, for the same reason.
    #[error("{message}")]
    Refused { code: String, message: String },
}

impl ConsensusError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ConsensusError::NoLeader(_)
            | ConsensusError::LeaderUnreachable(_)
            | ConsensusError::NoQuorum(_)
            | ConsensusError::CutOff(_)
            | ConsensusError::NotLeader => ErrorCode::Unavailable,
            ConsensusError::OutcomeUnknown(_) => ErrorCode::OutcomeUnknown,
            ConsensusError::ShuttingDown => ErrorCode::ShuttingDown,
            ConsensusError::StorageFull(_) => ErrorCode::StorageFull,
            ConsensusError::Storage(_) => ErrorCode::StorageError,
            ConsensusError::Membership(_) => ErrorCode::MembershipChangeFailed,
            ConsensusError::NotMember(_) => ErrorCode::NotFound,
            ConsensusError::Invalid(_) => ErrorCode::InvalidArgument,
            ConsensusError::Refused { code, .. } => code.parse().unwrap_or(ErrorCode::InvalidArgument),
        }
    }
}

/// The leader's answer to a forwarded write.
#[derive(Serialize, Deserialize)]
pub(crate) struct ForwardAnswer {
    pub result: Result<Vec<u8>, ConsensusError>,
    /// The answering leader's client API address.
    pub leader_api_addr: String,
}

impl From<Refused> for ConsensusError {
    fn from(refused: Refused) -> Self {
        ConsensusError::Refused {
            code: refused.code.as_str().to_string(),
            message: refused.message,
        }
    }
}
