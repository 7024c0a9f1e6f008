//! The inbound peer gRPC service: Raft RPCs from other members, writes forwarded by
//! followers, read-index requests, join requests and fault-injection updates. Served on
//! the peer listener only.
//!
//! Whatever a peer sends is checked as a client's request would be, so a peer cannot do
//! what no honest member does: a snapshot chunk must continue the snapshot being received
//! and stay within the configured most a snapshot may have (`max_snapshot_bytes`,
//! [`snapshot_chunks`](super::snapshot_chunks)), a
//! join runs the checks of `kvctl member add`, and a forwarded write the domain's checks
//! of a client's write ([`Applier::check_proposal`](super::Applier::check_proposal)).

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
use super::membership::check_member;
use super::snapshot_chunks::ChunkGuard;
use super::types::{Member, NodeId, TypeConfig};
use super::{ConsensusError, ForwardAnswer, RaftNode};
use crate::net::{Link, Links, MAX_PEER_MESSAGE, TransportError};

pub struct PeerService {
    node: Arc<RaftNode>,
    allow_fault_injection: bool,
    /// The snapshot being received. Held across handing a chunk to openraft, so the guard
    /// and openraft's stream see chunks in the same order.
    snapshot_chunks: tokio::sync::Mutex<ChunkGuard>,
}

impl PeerService {
    /// `max_snapshot_bytes`: the most bytes a received snapshot may have
    /// ([`RaftSettings::max_snapshot_bytes`](super::RaftSettings)).
    pub fn new(node: Arc<RaftNode>, allow_fault_injection: bool, max_snapshot_bytes: u64) -> Self {
        Self {
            node,
            allow_fault_injection,
            snapshot_chunks: tokio::sync::Mutex::new(ChunkGuard::new(max_snapshot_bytes)),
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

/// The status of a refused or failed join: "not the leader" as [`consensus_status`] says
/// it, anything else with its own code (INVALID_ARGUMENT, MEMBERSHIP_CHANGE_FAILED, ...).
fn join_status(error: ConsensusError) -> Status {
    match error {
        ConsensusError::NotLeader => consensus_status(error),
        other => status(other.code(), other.to_string()),
    }
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
        let from = request.remote_addr();
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&request.into_inner().data).map_err(bad_payload)?;
        let (id, offset, len, done) = (
            rpc.meta.snapshot_id.clone(),
            rpc.offset,
            rpc.data.len() as u64,
            rpc.done,
        );
        let vote = rpc.vote;
        let mut chunks = self.snapshot_chunks.lock().await;
        if let Err(refused) = chunks.check(&id, offset, len) {
            tracing::warn!(peer = ?from, %refused, "refused a snapshot chunk");
            return Err(status(ErrorCode::InvalidArgument, refused.to_string()));
        }
        let result = self.node.raft().install_snapshot(rpc).await;
        match &result {
            // openraft streams a chunk only if its vote is at least the one it answers with.
            Ok(answer) if vote >= answer.vote => chunks.taken(&id, offset, len, done),
            _ => chunks.forget(),
        }
        drop(chunks);
        if result.is_ok() {
            self.node.heard_from_leader();
        }
        payload(&result)
    }

    async fn forward(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let body: Vec<u8> = decode(&request.into_inner().data).map_err(bad_payload)?;
        // Only the leader proposes a forwarded write; anyone else says so and the sender
        // tries the new leader. Never forwarded twice, so a write cannot loop. The leader
        // proposes only what passes the checks a client's write passed on its way in.
        let result = if !self.node.is_leader() {
            Err(ConsensusError::NotLeader)
        } else if let Err(refused) = self.node.applier.check_proposal(&body) {
            tracing::warn!(code = %refused.code, %refused, "refused a forwarded request");
            Err(refused.into())
        } else {
            let deadline = tokio::time::Instant::now() + self.node.settings.request_timeout;
            self.node.propose_local(body, deadline).await
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
        let member = Member {
            region: request.region.clone(),
            peer_addr: request.peer_addr.clone(),
        };
        check_member(request.node_id, &member).map_err(join_status)?;
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
                .map_err(|e| match e {
                    // The leader's own answer (a refusal, with its code) goes back as it is.
                    TransportError::Status { status, .. } => status,
                    other => status(ErrorCode::Unavailable, format!("cannot reach leader {leader}: {other}")),
                })?;
            return Ok(Response::new(answer));
        }
        self.node.join(request.node_id, member).await.map_err(join_status)?;
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
