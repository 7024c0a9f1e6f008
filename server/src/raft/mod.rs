//! Strong replication: every node runs one openraft member; the leader orders client
//! writes into the log and every member applies them, in order, to its own RocksDB.
//!
//! - [`types`]: the type configuration, members, proposals.
//! - [`log_store`]: the Raft log and vote on RocksDB.
//! - [`state_machine`]: applies committed entries (through the domain's [`Applier`]) and
//!   builds and installs snapshots.
//! - [`network`]: outbound Raft RPCs over the peer transport; [`service`]: the inbound
//!   peer gRPC service (Raft RPCs, write forwarding, read index, join, faults).
//! - [`proposer`]: batches concurrent client writes into one log entry.
//!
//! [`RaftNode`] is what the rest of the node uses: `write` (propose here when leader,
//! otherwise forward to the leader), `read_barrier` (linearizable reads), membership
//! changes and the cluster's status. A single-node `edgekv dev` is a one-voter cluster on
//! exactly this path.

mod disk;
mod log_store;
mod network;
mod proposer;
mod service;
mod state_machine;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgekv_proto::ErrorCode;
use edgekv_proto::peer::{DescribeRequest, DescribeResponse, JoinRequest, RaftPayload, ReadIndexRequest};
use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};

pub use self::log_store::LogStore;
pub use self::proposer::Proposer;
pub use self::service::{PeerService, links_to_proto};
pub use self::state_machine::{
    AppliedBatch, Applier, CHANGE_FEED_RETENTION, CommittedProposal, ReplicatedClock, StateMachineStore, changes_since,
};
pub use self::types::{Member, NodeId};
use self::types::{Raft, RaftMetrics};
use crate::clock::Clock;
use crate::net::{Destination, PeerTransport, TransportError};
use crate::storage::{Durability, Engine};

/// Timing and log-compaction settings of the Raft member.
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
        }
    }
}

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
    /// Last, so the variants before it keep their wire numbers between nodes.
    #[error("the disk is full; the Raft member stopped: {0}")]
    StorageFull(String),
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

/// One member as `cluster status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: NodeId,
    pub member: Member,
    pub voter: bool,
    pub leader: bool,
    /// Empty when the member could not be asked.
    pub api_addr: String,
    pub matched_index: Option<u64>,
    /// Only known on the leader.
    pub lag: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub members: Vec<MemberStatus>,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
}

/// Where a node starts from.
#[derive(Clone, Debug, PartialEq)]
pub enum Bootstrap {
    /// Form a new cluster of these voters (this node among them) unless the data
    /// directory already holds one.
    InitialCluster(BTreeMap<NodeId, Member>),
    /// Ask the member at this peer address to add this node as a learner.
    Join(String),
    /// Start empty and wait for the cluster to add this node (`kvctl member add`).
    AwaitMembership,
}

pub struct RaftNode {
    id: NodeId,
    member: Member,
    api_addr: String,
    raft: Raft,
    transport: Arc<PeerTransport>,
    settings: RaftSettings,
    proposals: mpsc::Sender<proposer::Pending>,
    started: Instant,
    /// Milliseconds after `started` of the last append-entries from a leader.
    last_leader_contact_ms: AtomicU64,
    /// Serializes membership changes made through this node.
    membership_lock: Mutex<()>,
    /// The latest leader clock applied here.
    replicated_clock: ReplicatedClock,
    /// The client API address of the leader, as it last told us (id, address).
    leader_api: std::sync::Mutex<Option<(NodeId, String)>>,
    /// The engine under the log store and state machine, watched for a full disk.
    disk: Arc<disk::DiskWatch>,
}

fn raft_config(settings: &RaftSettings) -> Result<openraft::Config, ConsensusError> {
    let election_ms = settings.election_timeout.as_millis() as u64;
    let config = openraft::Config {
        cluster_name: "edgekv".into(),
        heartbeat_interval: settings.heartbeat.as_millis() as u64,
        election_timeout_min: election_ms,
        election_timeout_max: election_ms * 2,
        // Snapshot chunks and append batches stay well under the peer message limit.
        max_payload_entries: 16,
        snapshot_max_chunk_size: 4 * 1024 * 1024,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(settings.snapshot_after_entries),
        max_in_snapshot_log_to_keep: settings.entries_kept_after_snapshot,
        install_snapshot_timeout: 10_000,
        ..Default::default()
    };
    config
        .validate()
        .map_err(|e| ConsensusError::Invalid(format!("invalid Raft settings: {e}")))
}

impl RaftNode {
    /// Opens the log and state machine on `engine` and starts the Raft member and the
    /// proposer. The member does nothing until [`RaftNode::bootstrap`].
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        id: NodeId,
        member: Member,
        api_addr: String,
        engine: Arc<dyn Engine>,
        applier: Arc<dyn Applier>,
        durability: Durability,
        settings: RaftSettings,
        transport: Arc<PeerTransport>,
        clock: Arc<dyn Clock>,
        replicated_clock: ReplicatedClock,
    ) -> Result<(Arc<Self>, Proposer), ConsensusError> {
        let config = Arc::new(raft_config(&settings)?);
        let disk = disk::DiskWatch::new(engine);
        let engine: Arc<dyn Engine> = disk.clone();
        let log_store = LogStore::new(engine.clone(), durability);
        let state_machine = StateMachineStore::open(engine, applier, replicated_clock.clone())
            .map_err(|e| ConsensusError::Storage(e.to_string()))?;
        let raft = Raft::new(
            id,
            config,
            network::Network::new(transport.clone()),
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| ConsensusError::Storage(e.to_string()))?;
        let (proposals, proposer) = Proposer::new(raft.clone(), clock);
        let node = Arc::new(Self {
            id,
            member,
            api_addr,
            raft,
            transport,
            settings,
            proposals,
            started: Instant::now(),
            last_leader_contact_ms: AtomicU64::new(0),
            membership_lock: Mutex::new(()),
            replicated_clock,
            leader_api: std::sync::Mutex::new(None),
            disk,
        });
        Ok((node, proposer))
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn member(&self) -> &Member {
        &self.member
    }

    pub fn api_addr(&self) -> &str {
        &self.api_addr
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn transport(&self) -> &Arc<PeerTransport> {
        &self.transport
    }

    fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    /// Forms the cluster or joins one. Returns once this node is a member; joining retries
    /// until the cluster takes it (the caller races this against its shutdown signal).
    pub async fn bootstrap(&self, bootstrap: &Bootstrap) -> Result<(), ConsensusError> {
        match bootstrap {
            Bootstrap::InitialCluster(members) => {
                if !members.contains_key(&self.id) {
                    return Err(ConsensusError::Invalid(format!(
                        "the initial cluster does not list this node's id {}",
                        self.id
                    )));
                }
                match self.raft.initialize(members.clone()).await {
                    Ok(()) => tracing::info!(voters = members.len(), "formed a new cluster"),
                    Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                        tracing::info!("data directory already holds cluster state; rejoining it");
                        // A one-voter cluster needs no election timeout to pass before it
                        // serves again after a restart.
                        let metrics = self.metrics();
                        let voters: Vec<_> = metrics.membership_config.membership().voter_ids().collect();
                        if voters == [self.id] {
                            let _ = self.raft.trigger().elect().await;
                        }
                    }
                    Err(e) => return Err(ConsensusError::Invalid(format!("cannot form the cluster: {e}"))),
                }
                Ok(())
            }
            Bootstrap::AwaitMembership => {
                if !self
                    .raft
                    .is_initialized()
                    .await
                    .map_err(|_| ConsensusError::ShuttingDown)?
                {
                    tracing::info!(
                        "waiting to be added: run `kvctl member add {} {} {}` against the cluster",
                        self.id,
                        self.member.region,
                        self.member.peer_addr
                    );
                }
                Ok(())
            }
            Bootstrap::Join(peer_addr) => {
                if self
                    .raft
                    .is_initialized()
                    .await
                    .map_err(|_| ConsensusError::ShuttingDown)?
                {
                    tracing::info!("data directory already holds cluster state; not joining again");
                    return Ok(());
                }
                let request = JoinRequest {
                    node_id: self.id,
                    region: self.member.region.clone(),
                    peer_addr: self.member.peer_addr.clone(),
                };
                let mut attempt = 0u32;
                loop {
                    let destination = Destination {
                        region: &self.member.region,
                        peer_addr: peer_addr.as_str(),
                    };
                    let request = request.clone();
                    let result = self
                        .transport
                        .call(destination, self.settings.request_timeout, |mut c| async move {
                            c.join(request).await
                        })
                        .await;
                    match result {
                        Ok(answer) => {
                            tracing::info!(leader = answer.leader_id, "joined the cluster as a learner");
                            return Ok(());
                        }
                        Err(error) => {
                            attempt += 1;
                            if attempt % 10 == 1 {
                                tracing::warn!(%error, "cannot join through {peer_addr} yet; retrying");
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }
        }
    }

    /// Waits until a leader is known, or fails at `deadline`.
    async fn leader(&self, deadline: tokio::time::Instant) -> Result<(NodeId, Member), ConsensusError> {
        let mut metrics = self.raft.metrics();
        loop {
            {
                let current = metrics.borrow_and_update();
                if let Some(leader) = current.current_leader
                    && let Some(member) = current.membership_config.membership().get_node(&leader)
                {
                    return Ok((leader, member.clone()));
                }
                if current.state == ServerState::Shutdown || current.running_state.is_err() {
                    return Err(match &current.running_state {
                        Err(openraft::error::Fatal::StorageError(error)) => self.stopped_by(error),
                        _ => ConsensusError::ShuttingDown,
                    });
                }
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ConsensusError::ShuttingDown),
                Err(_) => {
                    return Err(ConsensusError::NoLeader(
                        self.settings.request_timeout.as_millis() as u64
                    ));
                }
            }
        }
    }

    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.settings.request_timeout
    }

    /// Looks at the current metrics without copying them (the hot paths ask per request).
    fn with_metrics<T>(&self, look: impl FnOnce(&RaftMetrics) -> T) -> T {
        look(&self.raft.metrics().borrow())
    }

    /// Whether this node currently believes it leads.
    pub fn is_leader(&self) -> bool {
        self.with_metrics(|m| m.current_leader == Some(self.id))
    }

    /// Whether this node leads a cluster in which it is the only voter (`edgekv dev`): then
    /// it alone acknowledges writes, each after applying it.
    pub fn is_sole_voter(&self) -> bool {
        self.with_metrics(|metrics| {
            let mut voters = metrics.membership_config.membership().voter_ids();
            metrics.current_leader == Some(self.id) && voters.next() == Some(self.id) && voters.next().is_none()
        })
    }

    /// A sole voter that has applied every entry in its log has nothing newer anywhere: a
    /// strong read needs no read-index round through the Raft core.
    fn is_caught_up_sole_voter(&self) -> bool {
        self.is_sole_voter() && self.with_metrics(|m| m.last_applied.map(|id| id.index) == m.last_log_index)
    }

    /// The leader this node knows of, if any.
    pub fn known_leader(&self) -> Option<(NodeId, Member)> {
        self.with_metrics(|metrics| {
            let leader = metrics.current_leader?;
            let member = metrics.membership_config.membership().get_node(&leader)?.clone();
            Some((leader, member))
        })
    }

    /// Replicates one request through the log and returns the applier's answer. Proposes
    /// here when this node leads, otherwise forwards to the leader.
    pub async fn write(&self, body: Vec<u8>) -> Result<Vec<u8>, ConsensusError> {
        self.check_contact()?;
        let deadline = self.deadline();
        loop {
            let (leader, member) = self.leader(deadline).await?;
            let attempt = if leader == self.id {
                self.propose_local(body.clone(), deadline).await
            } else {
                self.forward(leader, &member, body.clone(), deadline).await
            };
            match attempt {
                // Not applied anywhere (never appended, or truncated): safe to try again at
                // whoever leads now.
                Err(ConsensusError::NotLeader) | Err(ConsensusError::LeaderUnreachable(_))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(ConsensusError::NotLeader) => {
                    return Err(ConsensusError::NoLeader(
                        self.settings.request_timeout.as_millis() as u64
                    ));
                }
                other => return other,
            }
        }
    }

    /// Proposes on this node (the leader). Used for local writes and forwarded ones.
    pub(crate) async fn propose_local(
        &self,
        body: Vec<u8>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<u8>, ConsensusError> {
        self.check_running()?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let claim = Arc::new(proposer::Claim::default());
        let pending = proposer::Pending {
            body,
            reply,
            claim: claim.clone(),
        };
        let timeout_ms = self.settings.request_timeout.as_millis() as u64;
        match tokio::time::timeout_at(deadline, self.proposals.send(pending)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(ConsensusError::ShuttingDown),
            // The queue stayed full (the leader cannot commit): nothing was queued.
            Err(_) => return Err(ConsensusError::NoQuorum(timeout_ms)),
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ConsensusError::ShuttingDown),
            // Still queued: withdrawn, so it is certainly not written. Already proposed: it
            // may commit after we stop waiting.
            Err(_) if claim.abandon() => Err(ConsensusError::NoQuorum(timeout_ms)),
            Err(_) => Err(ConsensusError::OutcomeUnknown(format!(
                "proposed but not committed within {timeout_ms} ms"
            ))),
        }
    }

    /// Fails when the Raft member has stopped (a storage failure stops it for good):
    /// nothing can be proposed, so the answer is definite.
    fn check_running(&self) -> Result<(), ConsensusError> {
        match &self.raft.metrics().borrow().running_state {
            Ok(()) => Ok(()),
            Err(openraft::error::Fatal::StorageError(error)) => Err(self.stopped_by(error)),
            Err(_) => Err(ConsensusError::ShuttingDown),
        }
    }

    /// The answer of a member that a storage failure stopped: a full disk (as the engine
    /// reported it, by type) or another failure.
    fn stopped_by(&self, error: &impl std::fmt::Display) -> ConsensusError {
        if self.disk.is_full() {
            ConsensusError::StorageFull(error.to_string())
        } else {
            ConsensusError::Storage(error.to_string())
        }
    }

    fn remember_leader_api(&self, leader: NodeId, api_addr: String) {
        *self.leader_api.lock().expect("leader address lock") = Some((leader, api_addr));
    }

    /// The leader's client API address for clients of a follower; `None` on the leader or
    /// when not known yet.
    pub fn leader_hint(&self) -> Option<String> {
        let leader = self.with_metrics(|m| m.current_leader)?;
        if leader == self.id {
            return None;
        }
        match &*self.leader_api.lock().expect("leader address lock") {
            Some((id, addr)) if *id == leader => Some(addr.clone()),
            _ => None,
        }
    }

    async fn forward(
        &self,
        leader_id: NodeId,
        leader: &Member,
        body: Vec<u8>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<u8>, ConsensusError> {
        let data = log_store::encode(&body).map_err(|e| ConsensusError::Invalid(e.to_string()))?;
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        let answer = self
            .transport
            .call(leader.destination(), timeout, |mut c| async move {
                c.forward(RaftPayload { data }).await
            })
            .await;
        match answer {
            Ok(payload) => {
                let answer: ForwardAnswer = log_store::decode(&payload.data)
                    .map_err(|e| ConsensusError::OutcomeUnknown(format!("undecodable answer from the leader: {e}")))?;
                if answer.result != Err(ConsensusError::NotLeader) {
                    self.remember_leader_api(leader_id, answer.leader_api_addr);
                }
                answer.result
            }
            // Refused before it was sent (cut link, connection refused): nothing happened.
            Err(error @ TransportError::Unreachable { .. }) => {
                Err(ConsensusError::LeaderUnreachable(error.to_string()))
            }
            Err(error) => Err(ConsensusError::OutcomeUnknown(error.to_string())),
        }
    }

    /// Returns once this node's state machine reflects every write acknowledged before the
    /// call: the leader confirms its leadership with a quorum and names its commit index
    /// (read index); this node waits until it has applied that far.
    pub async fn read_barrier(&self) -> Result<(), ConsensusError> {
        if self.is_caught_up_sole_voter() {
            return Ok(());
        }
        self.check_contact()?;
        let deadline = self.deadline();
        let no_quorum = || ConsensusError::NoQuorum(self.settings.request_timeout.as_millis() as u64);
        loop {
            let (leader, member) = self.leader(deadline).await?;
            let read_index = if leader == self.id {
                match tokio::time::timeout_at(deadline, self.raft.get_read_log_id()).await {
                    Ok(Ok((read_log_id, _))) => read_log_id.map_or(0, |id| id.index),
                    Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => {
                        if tokio::time::Instant::now() >= deadline {
                            return Err(no_quorum());
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    // One round of heartbeats went unanswered by a quorum (a slow link, a
                    // follower restarting): try again until the deadline.
                    Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))))
                        if tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) | Err(_) => {
                        return Err(no_quorum());
                    }
                    Ok(Err(RaftError::Fatal(_))) => return Err(ConsensusError::ShuttingDown),
                }
            } else {
                let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
                match self
                    .transport
                    .call(member.destination(), timeout, |mut c| async move {
                        c.read_index(ReadIndexRequest {}).await
                    })
                    .await
                {
                    Ok(answer) => {
                        self.remember_leader_api(leader, answer.leader_api_addr);
                        answer.read_index
                    }
                    Err(TransportError::Status { status, .. })
                        if status.code() == tonic::Code::FailedPrecondition
                            && tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(error @ (TransportError::Unreachable { .. } | TransportError::Broken { .. }))
                        if tokio::time::Instant::now() < deadline =>
                    {
                        tracing::debug!(%error, "read index: leader unreachable; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(error) => return Err(ConsensusError::LeaderUnreachable(error.to_string())),
                }
            };
            if read_index == 0 {
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            return self
                .raft
                .wait(Some(remaining))
                .applied_index_at_least(Some(read_index), "read barrier")
                .await
                .map(|_| ())
                .map_err(|_| no_quorum());
        }
    }

    /// The leader side of a follower's read barrier.
    pub(crate) async fn read_index(&self) -> Result<u64, ConsensusError> {
        let timeout = self.settings.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.raft.get_read_log_id()).await {
                Ok(Ok((read_log_id, _))) => return Ok(read_log_id.map_or(0, |id| id.index)),
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => {
                    return Err(ConsensusError::NotLeader);
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) | Err(_) => {
                    return Err(ConsensusError::NoQuorum(timeout.as_millis() as u64));
                }
                Ok(Err(RaftError::Fatal(_))) => return Err(ConsensusError::ShuttingDown),
            }
        }
    }

    /// How stale this node's replica may be, in milliseconds: on the leader, the time since
    /// a quorum last acknowledged it (a leader cut off may have been deposed unknowingly);
    /// on a follower, the time since it last heard from a leader.
    pub fn staleness_ms(&self) -> u64 {
        let leader_staleness =
            self.with_metrics(|m| (m.current_leader == Some(self.id)).then(|| m.millis_since_quorum_ack.unwrap_or(0)));
        if let Some(staleness) = leader_staleness {
            // Leading counts as contact, for when this node steps down.
            self.heard_from_leader();
            return staleness;
        }
        let now = self.started.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_leader_contact_ms.load(Ordering::Relaxed))
    }

    /// Fails at once when this node has had no contact with a quorum (a follower: with a
    /// leader; the leader: with a quorum of acks) for three election timeouts: by then a
    /// reachable majority would have elected a leader and contacted it, so waiting out the
    /// request timeout would only delay the same answer. Nothing was proposed: the answer
    /// is definite (`UNAVAILABLE`).
    fn check_contact(&self) -> Result<(), ConsensusError> {
        let (leading, leader_known) =
            self.with_metrics(|m| (m.current_leader == Some(self.id), m.current_leader.is_some()));
        if leader_known && !leading {
            // A follower of a known leader: forwarding finds out soon enough. (A leader that
            // just stepped down has old contact times; its new leader is known quickly.)
            return Ok(());
        }
        let silent_ms = self.staleness_ms();
        let limit_ms = 3 * self.settings.election_timeout.as_millis() as u64;
        if silent_ms > limit_ms {
            return Err(ConsensusError::CutOff(silent_ms));
        }
        Ok(())
    }

    pub(crate) fn heard_from_leader(&self) {
        self.last_leader_contact_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn membership_error(error: RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> ConsensusError {
        match error {
            RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ConsensusError::NotLeader,
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                ConsensusError::Membership(e.to_string())
            }
            RaftError::Fatal(_) => ConsensusError::ShuttingDown,
        }
    }

    /// Adds a member as a learner (it receives the log, does not vote); with `voter`, then
    /// makes it a voter once it has caught up.
    pub async fn add_member(&self, id: NodeId, member: Member, voter: bool) -> Result<(), ConsensusError> {
        let _serial = self.membership_lock.lock().await;
        let metrics = self.metrics();
        if metrics.membership_config.membership().get_node(&id).is_none() {
            self.check_newcomer(id, &member).await?;
            // Blocking: returns once the learner has caught up with the log, so promoting
            // it next does not stall commits while it copies.
            let added = tokio::time::timeout(
                self.settings.request_timeout * 3,
                self.raft.add_learner(id, member, true),
            )
            .await
            .map_err(|_| {
                ConsensusError::OutcomeUnknown(format!(
                    "node {id} was not confirmed as a learner in time; check `kvctl member list`"
                ))
            })?;
            added.map_err(Self::membership_error)?;
        }
        if voter {
            self.change(ChangeMembers::AddVoterIds(BTreeSet::from([id]))).await?;
        }
        Ok(())
    }

    /// What a member says about itself (id, region, addresses, progress).
    async fn describe(&self, member: &Member, timeout: Duration) -> Result<DescribeResponse, TransportError> {
        self.transport
            .call(member.destination(), timeout, |mut c| async move {
                c.describe(DescribeRequest {}).await
            })
            .await
    }

    /// Asks a node about to be added who it is: it must answer with the id it is being added
    /// as and hold no Raft log yet. A node that formed a cluster of its own (started without
    /// `--await-membership`) has a log and terms of its own; adding it would make it refuse
    /// the leader's appends with its higher vote and unsettle the cluster.
    async fn check_newcomer(&self, id: NodeId, member: &Member) -> Result<(), ConsensusError> {
        let answer = self.describe(member, Duration::from_secs(5)).await.map_err(|e| {
            ConsensusError::Membership(format!(
                "cannot reach node {id} at {}: {e}; start it with --await-membership first",
                member.peer_addr
            ))
        })?;
        if answer.node_id != id {
            return Err(ConsensusError::Membership(format!(
                "the node at {} is node {}, not {id}",
                member.peer_addr, answer.node_id
            )));
        }
        if answer.last_log_index > 0 {
            return Err(ConsensusError::Membership(format!(
                "node {id} already holds Raft state (its own cluster?); restart it with --await-membership \
                 on an empty data directory"
            )));
        }
        Ok(())
    }

    pub async fn promote(&self, id: NodeId) -> Result<(), ConsensusError> {
        let _serial = self.membership_lock.lock().await;
        if self.metrics().membership_config.membership().get_node(&id).is_none() {
            return Err(ConsensusError::NotMember(id));
        }
        self.change(ChangeMembers::AddVoterIds(BTreeSet::from([id]))).await
    }

    pub async fn remove(&self, id: NodeId) -> Result<(), ConsensusError> {
        let _serial = self.membership_lock.lock().await;
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        if membership.get_node(&id).is_none() {
            return Err(ConsensusError::NotMember(id));
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(ConsensusError::Membership(format!(
                    "node {id} is the only voter; add another voter first"
                )));
            }
            // retain = false: leaves the cluster entirely instead of staying as a learner.
            self.change_with(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
        } else {
            self.change_with(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
        }
    }

    async fn change(&self, change: ChangeMembers<NodeId, Member>) -> Result<(), ConsensusError> {
        self.change_with(change, true).await
    }

    async fn change_with(&self, change: ChangeMembers<NodeId, Member>, retain: bool) -> Result<(), ConsensusError> {
        tokio::time::timeout(
            self.settings.request_timeout,
            self.raft.change_membership(change, retain),
        )
        .await
        .map_err(|_| ConsensusError::OutcomeUnknown("membership change not committed in time".into()))?
        .map(|_| ())
        .map_err(Self::membership_error)
    }

    /// The cluster as this node sees it, with each member's client address asked of the
    /// member itself (in parallel, briefly).
    pub async fn status(&self) -> ClusterStatus {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        let commit_index = self
            .raft
            .with_raft_state(|state| state.committed.map_or(0, |id| id.index))
            .await
            .unwrap_or(0);
        let replication = metrics.replication.clone();
        let ask = membership.nodes().map(|(id, member)| {
            let id = *id;
            let member = member.clone();
            async move {
                if id == self.id {
                    return (id, self.api_addr.clone());
                }
                let answer = self.describe(&member, Duration::from_secs(2)).await;
                (id, answer.map(|a| a.api_addr).unwrap_or_default())
            }
        });
        let api_addrs: BTreeMap<NodeId, String> = futures::future::join_all(ask).await.into_iter().collect();
        let members = membership
            .nodes()
            .map(|(id, member)| {
                let matched_index = match &replication {
                    Some(progress) => progress.get(id).and_then(|m| m.map(|l| l.index)),
                    None if *id == self.id => metrics.last_log_index,
                    None => None,
                };
                let lag = replication
                    .as_ref()
                    .map(|_| last_log_index.saturating_sub(matched_index.unwrap_or(0)));
                MemberStatus {
                    id: *id,
                    member: member.clone(),
                    voter: voters.contains(id),
                    leader: metrics.current_leader == Some(*id),
                    api_addr: api_addrs.get(id).cloned().unwrap_or_default(),
                    matched_index,
                    lag,
                }
            })
            .collect();
        ClusterStatus {
            node_id: self.id,
            members,
            leader: metrics.current_leader,
            term: metrics.current_term,
            commit_index,
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            last_log_index,
        }
    }

    /// The leader's clock as of the latest entry applied here (0 before any).
    pub fn replicated_now_ms(&self) -> u64 {
        self.replicated_clock.now_ms()
    }

    /// Every member (voters and learners) with its address.
    pub fn members(&self) -> Vec<(NodeId, Member)> {
        let metrics = self.metrics();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, member)| (*id, member.clone()))
            .collect()
    }

    /// The applied log index (for status and tests).
    pub fn applied_index(&self) -> u64 {
        self.with_metrics(|m| m.last_applied.map_or(0, |id| id.index))
    }

    /// Stops the Raft member: no more votes, appends or applies.
    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "Raft member did not stop cleanly");
        }
    }
}
