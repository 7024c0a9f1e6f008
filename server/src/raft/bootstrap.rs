//! How a member starts: forming a new cluster from its initial voters, joining one through
//! any member's peer address, or waiting to be added.

use std::collections::BTreeMap;
use std::time::Duration;

use edgekv_proto::peer::JoinRequest;
use openraft::error::{InitializeError, RaftError};

use super::{ConsensusError, Member, NodeId, RaftNode};
use crate::net::Destination;

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

impl RaftNode {
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
}
