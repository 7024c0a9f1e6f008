//! Strong replication: every node runs one openraft member; the leader orders client
//! writes into the log and every member applies them, in order, to its own RocksDB.
//!
//! - [`types`]: the type configuration, members, proposals.
//! - [`log_store`]: the Raft log and vote on RocksDB.
//! - [`state_machine`]: applies committed entries (through the domain's [`Applier`]) and
//!   builds and installs snapshots.
//! - [`network`]: outbound Raft RPCs over the peer transport; [`service`]: the inbound
//!   peer gRPC service (Raft RPCs, write forwarding, read index, join, faults), which
//!   checks what peers send as a client's requests are checked; [`snapshot_chunks`]: the
//!   check of incoming snapshot chunks.
//! - [`proposer`]: batches concurrent client writes into one log entry.
//! - [`reads`]: linearizable reads (read barrier, read index) and staleness;
//!   [`membership`]: adding, promoting and removing members; [`status`]: the cluster as
//!   this node sees it; [`error`]: what fails, with stable codes; [`disk`]: telling a full
//!   disk from other storage failures; [`faults`]: simulated network faults applied
//!   across the cluster.
//! - [`bootstrap`]: forming, joining or awaiting a cluster at startup; [`settings`]: the
//!   member's timings and log compaction, made into openraft's configuration.
//!
//! [`RaftNode`] is what the rest of the node uses: `write` (propose here when leader,
//! otherwise forward to the leader), `read_barrier` (linearizable reads), membership
//! changes and the cluster's status. A single-node `edgekv dev` is a one-voter cluster on
//! exactly this path.

mod bootstrap;
mod disk;
mod error;
mod faults;
mod log_store;
mod membership;
mod network;
mod proposer;
mod reads;
mod service;
mod settings;
mod snapshot_chunks;
mod state_machine;
mod status;
pub mod types;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use edgekv_proto::peer::RaftPayload;
use openraft::ServerState;
use tokio::sync::{Mutex, mpsc};

pub use self::bootstrap::Bootstrap;
pub use self::error::ConsensusError;
pub(crate) use self::error::ForwardAnswer;
pub use self::faults::FaultChange;
pub use self::log_store::LogStore;
pub use self::proposer::Proposer;
pub use self::service::{PeerService, links_to_proto};
pub use self::settings::RaftSettings;
pub use self::snapshot_chunks::MAX_SNAPSHOT_BYTES;
pub use self::state_machine::{
    AppliedBatch, Applier, CHANGE_FEED_RETENTION, CommittedProposal, Refused, ReplicatedClock, StateMachineStore,
    changes_since,
};
pub use self::status::{ClusterStatus, MemberStatus};
pub use self::types::{Member, NodeId};
use self::types::{Raft, RaftMetrics};
use crate::clock::Clock;
use crate::net::{PeerTransport, TransportError};
use crate::storage::{Durability, Engine};

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
    /// The domain's half of the state machine; also checks forwarded requests.
    applier: Arc<dyn Applier>,
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
        let config = Arc::new(settings.openraft_config()?);
        let disk = disk::DiskWatch::new(engine);
        let engine: Arc<dyn Engine> = disk.clone();
        let log_store = LogStore::new(engine.clone(), durability);
        let state_machine = StateMachineStore::open(engine, applier.clone(), replicated_clock.clone())
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
            applier,
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
