//! The cluster as one node sees it (`kvctl cluster status`): members, roles, the leader,
//! log positions and each member's replication lag.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::RaftNode;
use super::types::{Member, NodeId};

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

impl RaftNode {
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
}
