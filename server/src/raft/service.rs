//! The inbound peer gRPC service: Raft RPCs from other members, writes forwarded by
//! followers, read-index requests, join requests and fault-injection updates. Served on
//! the peer listener only.

use std::sync::Arc;

use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::{status, status_with_grpc_code};
use edgekv_proto::peer::peer_server::{Peer, PeerServer};
use edgekv_proto::peer::{
    DescribeRequest, DescribeResponse, FaultState, JoinRequest, JoinResponse, RaftPayload, ReadIndexRequest,
    ReadIndexResponse,
};
use edgekv_proto::v1::FaultLink;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use tonic::{Request, Response, Status};

use super::log_store::{decode, encode};
use super::types::{Member, NodeId, TypeConfig};
use super::{ConsensusError, ForwardAnswer, RaftNode};
use crate::net::{Link, Links, MAX_PEER_MESSAGE};

pub struct PeerService {
    node: Arc<RaftNode>,
    allow_fault_injection: bool,
}

impl PeerService {
    pub fn new(node: Arc<RaftNode>, allow_fault_injection: bool) -> Self {
        Self {
            node,
            allow_fault_injection,
        }
    }

    pub fn into_server(self) -> PeerServer<Self> {
        PeerServer::new(self)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE)
    }
}

fn bad_payload(e: impl std::fmt::Display) -> Status {
    status(ErrorCode::InvalidArgument, format!("undecodable Raft payload: {e}"))
}

fn payload<T: serde::Serialize>(value: &T) -> Result<Response<RaftPayload>, Status> {
    let data = encode(value).map_err(|e| status(ErrorCode::Internal, format!("cannot encode a Raft reply: {e}")))?;
    Ok(Response::new(RaftPayload { data }))
}

/// The peer-side status of a consensus error: FAILED_PRECONDITION for "not the leader"
/// (the caller retries at the leader), UNAVAILABLE otherwise, with the stable code attached.
fn consensus_status(error: ConsensusError) -> Status {
    let code = match error {
        ConsensusError::NotLeader => tonic::Code::FailedPrecondition,
        _ => tonic::Code::Unavailable,
    };
    status_with_grpc_code(code, error.code(), error.to_string())
}

/// The simulated WAN's links as the admin and peer APIs carry them.
pub fn links_to_proto(links: &Links) -> Vec<FaultLink> {
    links
        .iter()
        .map(|((from, to), link)| FaultLink {
            from_region: from.clone(),
            to_region: to.clone(),
            one_way_delay_ms: link.one_way_delay_ms,
            jitter_ms: link.jitter_ms,
            cut: link.cut,
        })
        .collect()
}

pub fn links_from_proto(links: &[FaultLink]) -> Links {
    links
        .iter()
        .map(|l| {
            (
                (l.from_region.clone(), l.to_region.clone()),
                Link {
                    one_way_delay_ms: l.one_way_delay_ms,
                    jitter_ms: l.jitter_ms,
                    cut: l.cut,
                },
            )
        })
        .collect()
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&request.into_inner().data).map_err(bad_payload)?;
        let result = self.node.raft().append_entries(rpc).await;
        if matches!(&result, Ok(openraft::raft::AppendEntriesResponse::Success)) {
            self.node.heard_from_leader();
        }
        payload(&result)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: VoteRequest<NodeId> = decode(&request.into_inner().data).map_err(bad_payload)?;
        payload(&self.node.raft().vote(rpc).await)
    }

    async fn install_snapshot(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&request.into_inner().data).map_err(bad_payload)?;
        let result = self.node.raft().install_snapshot(rpc).await;
        if result.is_ok() {
            self.node.heard_from_leader();
        }
        payload(&result)
    }

    async fn forward(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let body: Vec<u8> = decode(&request.into_inner().data).map_err(bad_payload)?;
        // Only the leader proposes a forwarded write; anyone else says so and the sender
        // tries the new leader. Never forwarded twice, so a write cannot loop.
        let result = if self.node.is_leader() {
            let deadline = tokio::time::Instant::now() + self.node.settings.request_timeout;
            self.node.propose_local(body, deadline).await
        } else {
            Err(ConsensusError::NotLeader)
        };
        payload(&ForwardAnswer {
            result,
            leader_api_addr: self.node.api_addr().to_string(),
        })
    }

    async fn read_index(&self, _: Request<ReadIndexRequest>) -> Result<Response<ReadIndexResponse>, Status> {
        let read_index = self.node.read_index().await.map_err(consensus_status)?;
        Ok(Response::new(ReadIndexResponse {
            read_index,
            leader_api_addr: self.node.api_addr().to_string(),
        }))
    }

    async fn describe(&self, _: Request<DescribeRequest>) -> Result<Response<DescribeResponse>, Status> {
        let metrics = self.node.raft().metrics().borrow().clone();
        Ok(Response::new(DescribeResponse {
            node_id: self.node.id(),
            region: self.node.member().region.clone(),
            api_addr: self.node.api_addr().to_string(),
            peer_addr: self.node.member().peer_addr.clone(),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            last_log_index: metrics.last_log_index.unwrap_or(0),
        }))
    }

    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let request = request.into_inner();
        if request.node_id == 0 || request.peer_addr.is_empty() || request.region.is_empty() {
            return Err(status(
                ErrorCode::InvalidArgument,
                "join needs a node id, region and peer address",
            ));
        }
        if !self.node.is_leader() {
            // Pass it on to the leader once; the leader adds the node.
            let Some((leader, member)) = self.node.known_leader() else {
                return Err(consensus_status(ConsensusError::NoLeader(0)));
            };
            let answer = self
                .node
                .transport()
                .call(
                    member.destination(),
                    self.node.settings.request_timeout,
                    |mut c| async move { c.join(request).await },
                )
                .await
                .map_err(|e| status(ErrorCode::Unavailable, format!("cannot reach leader {leader}: {e}")))?;
            return Ok(Response::new(answer));
        }
        let member = Member {
            region: request.region,
            peer_addr: request.peer_addr,
        };
        // Non-blocking: the learner catches up in the background; the joining node only
        // needs to know it is in.
        self.node
            .raft()
            .add_learner(request.node_id, member, false)
            .await
            .map_err(|e| {
                status(
                    ErrorCode::MembershipChangeFailed,
                    format!("cannot add node {}: {e}", request.node_id),
                )
            })?;
        tracing::info!(node = request.node_id, "added a learner");
        Ok(Response::new(JoinResponse {
            leader_id: self.node.id(),
        }))
    }

    async fn set_faults(&self, request: Request<FaultState>) -> Result<Response<FaultState>, Status> {
        if !self.allow_fault_injection {
            return Err(status(
                ErrorCode::FaultInjectionDisabled,
                "fault injection is off on this node (start it with --allow-fault-injection)",
            ));
        }
        let state = request.into_inner();
        let wan = self.node.transport().wan();
        wan.replace(links_from_proto(&state.links));
        Ok(Response::new(FaultState {
            links: links_to_proto(&wan.links()),
            broadcast: false,
        }))
    }
}
