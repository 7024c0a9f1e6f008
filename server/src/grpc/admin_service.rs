//! `edgekv.v1.Admin`: what an operator asks a node about itself and its cluster, and the
//! membership and fault-injection commands.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::status;
use edgekv_proto::v1::admin_server::Admin;
use edgekv_proto::v1::{
    AddMemberRequest, CachePeerStatus, CacheReplicationStatus, ClusterStatusRequest, ClusterStatusResponse,
    InjectFaultRequest, InjectFaultResponse, KeyspaceResponse, KeyspaceRule, ListKeyspaceRequest, Member as WireMember,
    MemberRequest, PeerListenerStatus, SetKeyspaceClassRequest, StatusRequest, StatusResponse,
    inject_fault_request::Fault,
};
use tonic::{Request, Response, Status};

use super::authentication::principal;
use crate::keyspace::Class;
use crate::kv::KvStore;
use crate::raft::{ClusterStatus, FaultChange, Member, RaftNode, links_to_proto};
use crate::tls::handshakes::HandshakeMonitor;

/// Who this node is, as reported in read answers and status.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node_id: String,
    pub region: String,
    pub data_dir: PathBuf,
    pub sync_writes: bool,
    pub allow_fault_injection: bool,
    pub replication: crate::cache::Monitors,
    /// The peer listener's refused TLS handshakes (`None`: the node serves no TLS).
    pub peer_handshakes: Option<Arc<HandshakeMonitor>>,
}

pub(super) struct AdminService {
    pub store: KvStore,
    pub info: NodeInfo,
    pub started: Instant,
}

/// The cache class's replication as this node sees it: its store's counters, shipping to
/// each peer and the lag of writes from each peer.
fn cache_to_wire(store: &KvStore, monitors: &crate::cache::Monitors) -> CacheReplicationStatus {
    let cache = store.cache().snapshot();
    let shipping = monitors
        .shipping
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let synced = monitors
        .synced
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut peers: Vec<CachePeerStatus> = store
        .raft()
        .members()
        .into_iter()
        .filter(|(id, _)| *id != store.cache().node())
        .map(|(id, member)| {
            let ship = shipping.get(&id);
            let inbound = cache.inbound.get(&id).copied().unwrap_or_default();
            CachePeerStatus {
                node_id: id,
                region: member.region,
                backlog: ship.map_or(0, |s| cache.outbox_head.saturating_sub(s.cursor)),
                inbound_lag_ms: inbound.last_ms,
                inbound_max_lag_ms: inbound.max_ms,
                last_error: ship.and_then(|s| s.last_error.clone()).unwrap_or_default(),
                last_sync_age_ms: synced.get(&id).map(|at| at.elapsed().as_millis() as u64),
            }
        })
        .collect();
    peers.sort_by_key(|p| p.node_id);
    CacheReplicationStatus {
        outbox_depth: peers.iter().map(|p| p.backlog).max().unwrap_or(0),
        merges: cache.merges,
        conflicts_resolved: cache.conflicts_resolved,
        tombstones_pending_gc: cache.tombstones,
        clock_skew_refusals: cache.clock_skew_refusals,
        repaired: cache.repaired,
        outbox_dropped: cache.outbox_dropped,
        cache_records: cache.records,
        peers,
    }
}

/// Who the peer listener turned away at the TLS handshake.
fn peer_listener_to_wire(monitor: &HandshakeMonitor) -> PeerListenerStatus {
    let refusals = monitor.snapshot();
    let last = refusals.last.as_ref();
    PeerListenerStatus {
        handshakes_refused: refusals.count,
        last_refused_from: last.map(|r| r.from.to_string()).unwrap_or_default(),
        last_refused_reason: last.map(|r| r.reason.clone()).unwrap_or_default(),
        last_refused_age_ms: last.map(|r| r.at.elapsed().as_millis() as u64),
    }
}

fn keyspace_to_wire(rules: Vec<(Vec<u8>, Class)>) -> KeyspaceResponse {
    let default_class = rules
        .iter()
        .find(|(prefix, _)| prefix.is_empty())
        .map_or(Class::Strong, |(_, class)| *class);
    KeyspaceResponse {
        rules: rules
            .into_iter()
            .map(|(prefix, class)| KeyspaceRule {
                prefix,
                class: class.as_str().into(),
            })
            .collect(),
        default_class: default_class.as_str().into(),
    }
}

fn cluster_to_wire(status: ClusterStatus) -> ClusterStatusResponse {
    ClusterStatusResponse {
        node_id: status.node_id,
        members: status
            .members
            .into_iter()
            .map(|m| WireMember {
                id: m.id,
                region: m.member.region,
                role: if m.leader {
                    "leader"
                } else if m.voter {
                    "follower"
                } else {
                    "learner"
                }
                .into(),
                peer_addr: m.member.peer_addr,
                api_addr: m.api_addr,
                matched_index: m.matched_index.unwrap_or(0),
                lag: m.lag,
            })
            .collect(),
        leader_id: status.leader.unwrap_or(0),
        term: status.term,
        commit_index: status.commit_index,
        applied_index: status.applied_index,
        last_log_index: status.last_log_index,
        cache: None,
        peer_listener: None,
    }
}

impl AdminService {
    fn raft(&self) -> &RaftNode {
        self.store.raft()
    }

    /// Membership changes are made by the leader; elsewhere the answer names it.
    fn require_leader(&self) -> Result<(), Status> {
        if self.raft().is_leader() {
            return Ok(());
        }
        let mut refusal = status(
            ErrorCode::Unavailable,
            match self.raft().leader_hint() {
                Some(leader) => format!("membership changes are made by the leader; send this to {leader}"),
                None => "membership changes are made by the leader, and this node knows of none right now".into(),
            },
        );
        super::add_leader_hint(self.raft(), refusal.metadata_mut());
        Err(refusal)
    }

    async fn cluster_answer(&self) -> Response<ClusterStatusResponse> {
        let mut answer = cluster_to_wire(self.raft().status().await);
        answer.cache = Some(cache_to_wire(&self.store, &self.info.replication));
        answer.peer_listener = self.info.peer_handshakes.as_deref().map(peer_listener_to_wire);
        Response::new(answer)
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn set_keyspace_class(
        &self,
        mut request: Request<SetKeyspaceClassRequest>,
    ) -> Result<Response<KeyspaceResponse>, Status> {
        principal(&mut request)?.require_admin()?;
        let request = request.into_inner();
        let class = Class::parse(&request.class).ok_or_else(|| {
            status(
                ErrorCode::InvalidArgument,
                format!("unknown class {:?}: use strong or cache", request.class),
            )
        })?;
        self.store.set_class(&request.prefix, class).await?;
        Ok(Response::new(keyspace_to_wire(self.store.keyspace_rules())))
    }

    async fn list_keyspace(
        &self,
        _request: Request<ListKeyspaceRequest>,
    ) -> Result<Response<KeyspaceResponse>, Status> {
        Ok(Response::new(keyspace_to_wire(self.store.keyspace_rules())))
    }

    async fn status(&self, mut request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        // Counting keys scans the whole store: not for every token holder.
        principal(&mut request)?.require_admin()?;
        let store = self.store.clone();
        let ((key_count, stored_records), data_dir_bytes) = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::kv::KvError>((store.count_keys()?, store.engine().disk_usage()))
        })
        .await
        .map_err(|e| status(ErrorCode::Internal, e.to_string()))??;
        Ok(Response::new(StatusResponse {
            node_id: self.info.node_id.clone(),
            region: self.info.region.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            data_dir: self.info.data_dir.display().to_string(),
            data_dir_bytes,
            key_count,
            last_versionstamp: self.store.last_versionstamp().map(|v| v.to_hex()).unwrap_or_default(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            sync_writes: self.info.sync_writes,
            stored_records,
        }))
    }

    async fn cluster_status(
        &self,
        _request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        Ok(self.cluster_answer().await)
    }

    async fn add_member(
        &self,
        mut request: Request<AddMemberRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        principal(&mut request)?.require_admin()?;
        let request = request.into_inner();
        if request.id == 0 || request.region.is_empty() || !request.peer_addr.contains(':') {
            return Err(status(
                ErrorCode::InvalidArgument,
                "a member needs a positive id, a region and a peer address HOST:PORT",
            ));
        }
        self.require_leader()?;
        let member = Member {
            region: request.region,
            peer_addr: request.peer_addr,
        };
        self.raft().add_member(request.id, member, !request.learner).await?;
        Ok(self.cluster_answer().await)
    }

    async fn promote_member(
        &self,
        mut request: Request<MemberRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        principal(&mut request)?.require_admin()?;
        self.require_leader()?;
        self.raft().promote(request.into_inner().id).await?;
        Ok(self.cluster_answer().await)
    }

    async fn remove_member(
        &self,
        mut request: Request<MemberRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        principal(&mut request)?.require_admin()?;
        self.require_leader()?;
        self.raft().remove(request.into_inner().id).await?;
        Ok(self.cluster_answer().await)
    }

    async fn inject_fault(
        &self,
        mut request: Request<InjectFaultRequest>,
    ) -> Result<Response<InjectFaultResponse>, Status> {
        principal(&mut request)?.require_admin()?;
        if !self.info.allow_fault_injection {
            return Err(status(
                ErrorCode::FaultInjectionDisabled,
                "fault injection is off on this node; start it with --allow-fault-injection (edgekv demo does)",
            ));
        }
        let two_regions = |a: &str, b: &str, what: &str| {
            if a.is_empty() || b.is_empty() || a == b {
                return Err(status(
                    ErrorCode::InvalidArgument,
                    format!("a {what} needs two different regions"),
                ));
            }
            Ok(())
        };
        let change = match request.into_inner().fault {
            Some(Fault::Partition(pair)) => {
                two_regions(&pair.a, &pair.b, "partition")?;
                FaultChange::Partition { a: pair.a, b: pair.b }
            }
            Some(Fault::Heal(_)) => FaultChange::Heal,
            Some(Fault::Latency(latency)) => {
                two_regions(&latency.a, &latency.b, "latency")?;
                FaultChange::Latency {
                    a: latency.a,
                    b: latency.b,
                    one_way_delay_ms: latency.one_way_delay_ms,
                    jitter_ms: latency.jitter_ms,
                }
            }
            None => return Err(status(ErrorCode::InvalidArgument, "no fault given")),
        };
        let (links, unreached) = self.raft().change_faults(change).await;
        Ok(Response::new(InjectFaultResponse {
            links: links_to_proto(&links),
            unreached,
        }))
    }
}
