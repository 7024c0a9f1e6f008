//! Membership changes made through this node: adding a member (after asking the newcomer
//! who it is), promoting a learner, removing a member.

use std::collections::BTreeSet;
use std::time::Duration;

use edgekv_proto::peer::{DescribeRequest, DescribeResponse};
use openraft::ChangeMembers;
use openraft::error::{ClientWriteError, RaftError};

use super::types::{Member, NodeId};
use super::{ConsensusError, RaftNode};
use crate::net::TransportError;

impl RaftNode {
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
    pub(super) async fn describe(
        &self,
        member: &Member,
        timeout: Duration,
    ) -> Result<DescribeResponse, TransportError> {
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
}
