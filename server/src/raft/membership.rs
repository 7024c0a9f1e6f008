//! Membership changes made through this node: adding a member (after asking the newcomer
//! who it is), promoting a learner, removing a member.
//!
//! A member is added two ways: by an operator (`kvctl member add`, [`RaftNode::add_member`])
//! and by a node asking to join (the peer `Join`, [`RaftNode::join`]). Both run the same
//! checks ([`RaftNode::check_addition`]): a well-formed id, region and address; an id not
//! yet a member, or already a member at that very address (asking again is not an error:
//! a joiner whose first answer was lost asks again); and a newcomer that answers at that
//! address as that id and holds no Raft log.

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
        if self.check_addition(id, &member).await? == Addition::New {
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

    /// Adds a node that asked to join (the peer `Join`) as a learner, after the checks of
    /// [`RaftNode::add_member`]. Returns once the change is committed; the learner catches
    /// up in the background (the joining node only needs to know it is in).
    pub async fn join(&self, id: NodeId, member: Member) -> Result<(), ConsensusError> {
        let _serial = self.membership_lock.lock().await;
        if self.check_addition(id, &member).await? == Addition::Already {
            return Ok(());
        }
        tokio::time::timeout(self.settings.request_timeout, self.raft.add_learner(id, member, false))
            .await
            .map_err(|_| {
                ConsensusError::OutcomeUnknown(format!(
                    "node {id} was not confirmed as a learner in time; check `kvctl member list`"
                ))
            })?
            .map_err(Self::membership_error)?;
        tracing::info!(node = id, "added a learner that asked to join");
        Ok(())
    }

    /// Whether `id` at `member` may be added (run under the membership lock): well-formed,
    /// not a member elsewhere, and, if new, the node it names (see
    /// [`RaftNode::check_newcomer`]).
    async fn check_addition(&self, id: NodeId, member: &Member) -> Result<Addition, ConsensusError> {
        check_member(id, member)?;
        let existing = self.metrics().membership_config.membership().get_node(&id).cloned();
        match existing {
            Some(existing) if existing == *member => Ok(Addition::Already),
            // Taking the id over at another address would send the member's log elsewhere.
            Some(existing) => Err(ConsensusError::Membership(format!(
                "node {id} is already a member at {existing}; remove it first to add it at {member}"
            ))),
            None => {
                self.check_newcomer(id, member).await?;
                Ok(Addition::New)
            }
        }
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

/// What adding a member amounts to, once it passed the checks.
#[derive(Debug, PartialEq, Eq)]
enum Addition {
    New,
    /// A member already, at the same address: nothing to add.
    Already,
}

/// The shape of a member to add, whoever asks: a positive id, a region that is a name (as
/// the configuration requires of `node.region`), and a peer address `HOST:PORT`.
pub(super) fn check_member(id: NodeId, member: &Member) -> Result<(), ConsensusError> {
    if id == 0 {
        return Err(ConsensusError::Invalid("a member's id must be positive".into()));
    }
    if !is_name(&member.region) {
        return Err(ConsensusError::Invalid(format!(
            "region {:?} is not a name (letters, digits, '-', '_', '.')",
            member.region
        )));
    }
    let port = member
        .peer_addr
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty() && !host.contains(char::is_whitespace))
        .and_then(|(_, port)| port.parse::<u16>().ok());
    if !matches!(port, Some(port) if port > 0) {
        return Err(ConsensusError::Invalid(format!(
            "peer address {:?} is not HOST:PORT",
            member.peer_addr
        )));
    }
    Ok(())
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(region: &str, peer_addr: &str) -> Member {
        Member {
            region: region.into(),
            peer_addr: peer_addr.into(),
        }
    }

    #[test]
    fn members_are_checked_for_shape() {
        for (id, region, addr) in [
            (1, "us-east", "10.0.0.1:7001"),
            (2, "eu_west.2", "node-2.example:7001"),
            (3, "ap", "[::1]:7001"),
        ] {
            check_member(id, &member(region, addr)).unwrap();
        }
        for (id, region, addr) in [
            (0, "us-east", "10.0.0.1:7001"),
            (1, "", "10.0.0.1:7001"),
            (1, "us east", "10.0.0.1:7001"),
            (1, "us-east", "10.0.0.1"),
            (1, "us-east", ":7001"),
            (1, "us-east", "10.0.0.1:0"),
            (1, "us-east", "10.0.0.1:70000"),
            (1, "us-east", "a b:7001"),
        ] {
            let refused = check_member(id, &member(region, addr)).unwrap_err();
            assert_eq!(
                refused.code(),
                edgekv_proto::ErrorCode::InvalidArgument,
                "{id} {region} {addr}"
            );
        }
    }
}
