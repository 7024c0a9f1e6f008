//! The SDK's side of a class change racing a write: a node answers `MIXED_CLASSES` for a
//! write whose keys are of one class (it routed the write by rules older than the ones
//! that refused it; nothing was written). The SDK asks the leader for the rules and sends
//! the write once more, to the leader, so the caller never sees that code; a write that
//! really names both classes still gets it, after one look at the rules and no second send.
//!
//! The node is a stand-in gRPC server on loopback that answers from a script: this tests
//! the SDK's decision, not a node (tests/tests/class_change.rs races real nodes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use edgekv_client::proto::admin_server::{Admin, AdminServer};
use edgekv_client::proto::kv_server::{Kv, KvServer};
use edgekv_client::proto::{self as pb};
use edgekv_client::{Client, ErrorCode, key};
use edgekv_proto::grpc_status::status;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// Refuses the first `refusals` atomic writes with `MIXED_CLASSES` (naming `leader_hint` as
/// the leader, if set), commits the rest; its class rules put `["c"]` in the cache class
/// unless it is `stale` (no rules: every key strong).
#[derive(Clone, Default)]
struct ScriptedNode {
    refusals: usize,
    stale: bool,
    leader_hint: Option<String>,
    writes: Arc<AtomicUsize>,
    rule_fetches: Arc<AtomicUsize>,
}

fn unused<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not part of this test"))
}

#[tonic::async_trait]
impl Kv for ScriptedNode {
    async fn get(&self, _: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        unused()
    }
    async fn get_many(&self, _: Request<pb::GetManyRequest>) -> Result<Response<pb::GetManyResponse>, Status> {
        unused()
    }
    async fn list(&self, _: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        unused()
    }
    async fn atomic(&self, _: Request<pb::AtomicRequest>) -> Result<Response<pb::AtomicResponse>, Status> {
        let write = self.writes.fetch_add(1, Ordering::SeqCst);
        if write < self.refusals {
            // As the node sends it: the stable code in the metadata.
            let mut status = status(
                ErrorCode::MixedClasses,
                "[\"c\",1] became a cache key while this write was on its way; nothing was written",
            );
            if let Some(leader) = &self.leader_hint {
                edgekv_proto::grpc_status::name_leader(status.metadata_mut(), leader);
            }
            return Err(status);
        }
        Ok(Response::new(pb::AtomicResponse {
            ok: true,
            versionstamp: vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
            failed_checks: Vec::new(),
            numeric_results: Vec::new(),
        }))
    }
}

#[tonic::async_trait]
impl Admin for ScriptedNode {
    async fn status(&self, _: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        unused()
    }
    async fn cluster_status(
        &self,
        _: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        unused()
    }
    async fn add_member(
        &self,
        _: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        unused()
    }
    async fn promote_member(
        &self,
        _: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        unused()
    }
    async fn remove_member(
        &self,
        _: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        unused()
    }
    async fn inject_fault(
        &self,
        _: Request<pb::InjectFaultRequest>,
    ) -> Result<Response<pb::InjectFaultResponse>, Status> {
        unused()
    }
    async fn set_keyspace_class(
        &self,
        _: Request<pb::SetKeyspaceClassRequest>,
    ) -> Result<Response<pb::KeyspaceResponse>, Status> {
        unused()
    }
    async fn list_keyspace(
        &self,
        _: Request<pb::ListKeyspaceRequest>,
    ) -> Result<Response<pb::KeyspaceResponse>, Status> {
        self.rule_fetches.fetch_add(1, Ordering::SeqCst);
        let cache_rule = pb::KeyspaceRule {
            prefix: key!["c"].encode(),
            class: "cache".into(),
        };
        Ok(Response::new(pb::KeyspaceResponse {
            rules: if self.stale { Vec::new() } else { vec![cache_rule] },
            default_class: "strong".into(),
        }))
    }
}

/// Serves `node` on a loopback port until the test ends; answers its URL.
async fn serve(node: ScriptedNode) -> String {
    format!("http://{}", serve_at(node).await)
}

/// Serves `node` on a loopback port until the test ends; answers its `host:port`.
async fn serve_at(node: ScriptedNode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KvServer::new(node.clone()))
            .add_service(AdminServer::new(node))
            .serve_with_incoming(incoming),
    );
    address
}

#[tokio::test]
async fn a_one_class_write_refused_as_mixed_is_sent_again_by_fresh_rules() {
    let node = ScriptedNode {
        refusals: 1,
        ..ScriptedNode::default()
    };
    let client = Client::connect(serve(node.clone()).await).await.unwrap();
    let written = client.set(key!["c", 1], "v").await;
    assert!(written.is_ok(), "{written:?}");
    assert_eq!(node.writes.load(Ordering::SeqCst), 2, "refused once, then sent again");
    assert!(
        node.rule_fetches.load(Ordering::SeqCst) >= 1,
        "the rules were asked again"
    );
}

#[tokio::test]
async fn a_write_naming_both_classes_gets_mixed_classes_after_one_send() {
    let node = ScriptedNode {
        refusals: usize::MAX,
        ..ScriptedNode::default()
    };
    let client = Client::connect(serve(node.clone()).await).await.unwrap();
    let refused = client
        .atomic()
        .set(key!["c", 1], "cache")
        .set(key!["s", 1], "strong")
        .commit()
        .await;
    assert_eq!(refused.unwrap_err().code(), Some(ErrorCode::MixedClasses));
    assert_eq!(node.writes.load(Ordering::SeqCst), 1, "not sent again");
}

#[tokio::test]
async fn a_write_refused_as_mixed_again_after_the_second_send_gets_the_code() {
    let node = ScriptedNode {
        refusals: usize::MAX,
        ..ScriptedNode::default()
    };
    let client = Client::connect(serve(node.clone()).await).await.unwrap();
    let refused = client.set(key!["c", 1], "v").await;
    assert_eq!(refused.unwrap_err().code(), Some(ErrorCode::MixedClasses));
    assert_eq!(node.writes.load(Ordering::SeqCst), 2, "sent again once, not more");
}

#[tokio::test]
async fn a_write_refused_by_a_lagging_node_goes_to_the_leader_by_the_leaders_rules() {
    // The node the client knows still has the old rules and keeps refusing; the leader it
    // names has the new ones.
    let leader = ScriptedNode::default();
    let lagging = ScriptedNode {
        refusals: usize::MAX,
        stale: true,
        leader_hint: Some(serve_at(leader.clone()).await),
        ..ScriptedNode::default()
    };
    let client = Client::connect(serve(lagging.clone()).await).await.unwrap();
    let written = client.set(key!["c", 1], "v").await;
    assert!(written.is_ok(), "{written:?}");
    assert_eq!(
        lagging.writes.load(Ordering::SeqCst),
        1,
        "refused by the lagging node once"
    );
    assert_eq!(leader.writes.load(Ordering::SeqCst), 1, "then sent to the leader");
    assert!(leader.rule_fetches.load(Ordering::SeqCst) >= 1, "by the leader's rules");
}
