//! The inbound gRPC front-end: the public `edgekv.v1` services on the client listener.
//! It translates wire messages into domain calls and domain errors into statuses
//! ([`status`]); it never touches storage directly.

mod admin_service;
mod authentication;
mod kv_service;
pub mod status;

use std::sync::Arc;
use std::time::Instant;

use edgekv_proto::limits::MAX_REQUEST_BYTES;
use edgekv_proto::v1::admin_server::AdminServer;
use edgekv_proto::v1::kv_server::KvServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use self::admin_service::AdminService;
pub use self::admin_service::NodeInfo;
use self::authentication::Authenticate;
use self::kv_service::KvService;
use crate::auth::Authenticator;
use crate::kv::KvStore;

/// Serves the client API on `listener` (over TLS when `tls` is given) until `shutdown`
/// fires, then stops accepting and lets in-flight requests finish. Every call is
/// authenticated by `authenticator` before its handler runs.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    authenticator: Arc<Authenticator>,
    store: KvStore,
    info: NodeInfo,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let kv = KvService::new(store.clone(), info.clone());
    let admin = AdminService {
        store,
        info,
        started: Instant::now(),
    };
    let incoming = crate::net::accept_nodelay(listener);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    let authenticate = Authenticate { authenticator };
    server
        .add_service(InterceptedService::new(
            KvServer::new(kv)
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(usize::MAX),
            authenticate.clone(),
        ))
        .add_service(InterceptedService::new(AdminServer::new(admin), authenticate))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// Names the leader's client address in an answer's (or a refusal's) metadata when this
/// node is a follower that knows it, so the SDK sends the next write straight there.
fn add_leader_hint(raft: &crate::raft::RaftNode, metadata: &mut tonic::metadata::MetadataMap) {
    if let Some(leader) = raft.leader_hint() {
        edgekv_proto::grpc_status::name_leader(metadata, &leader);
    }
}
