//! Linearizable reads: the read barrier (leadership confirmed by a quorum, this node caught
//! up to the leader's read index), the leader's side of a follower's barrier, how stale a
//! replica may be, and failing at once when this node looks cut off.

use std::sync::atomic::Ordering;
use std::time::Duration;

use edgekv_proto::peer::ReadIndexRequest;
use openraft::error::{CheckIsLeaderError, RaftError};

use super::{ConsensusError, RaftNode};
use crate::net::TransportError;

impl RaftNode {
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
                match self.confirmed_read_index(deadline).await {
                    Ok(index) => index,
                    // Leadership moved while we asked: ask whoever leads now.
                    Err(ConsensusError::NotLeader) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(ConsensusError::NotLeader) => return Err(no_quorum()),
                    Err(error) => return Err(error),
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
        self.confirmed_read_index(tokio::time::Instant::now() + self.settings.request_timeout)
            .await
    }

    /// This leader's commit index once a quorum has confirmed its leadership (openraft's
    /// read index), trying again until `deadline` while a round of heartbeats goes
    /// unanswered by a quorum (a slow link, a follower restarting). `NotLeader` when it is
    /// not the leader (any more).
    async fn confirmed_read_index(&self, deadline: tokio::time::Instant) -> Result<u64, ConsensusError> {
        let no_quorum = || ConsensusError::NoQuorum(self.settings.request_timeout.as_millis() as u64);
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
                    return Err(no_quorum());
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
    pub(super) fn check_contact(&self) -> Result<(), ConsensusError> {
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
}
