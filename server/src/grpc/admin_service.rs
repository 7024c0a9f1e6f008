//! `edgekv.v1.Admin`: what an operator asks a node about itself.

use std::path::PathBuf;
use std::time::Instant;

use edgekv_proto::v1::admin_server::Admin;
use edgekv_proto::v1::{StatusRequest, StatusResponse};
use tonic::{Request, Response, Status};

use crate::kv::KvStore;

/// Who this node is, as reported in read answers and status.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node_id: String,
    pub region: String,
    pub data_dir: PathBuf,
    pub sync_writes: bool,
}

pub(super) struct AdminService {
    pub store: KvStore,
    pub info: NodeInfo,
    pub started: Instant,
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let store = self.store.clone();
        let (key_count, data_dir_bytes) = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::kv::KvError>((store.count_live_keys()?, store.engine().disk_usage()))
        })
        .await
        .map_err(|e| super::status::status(edgekv_proto::ErrorCode::Internal, e.to_string()))??;
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
        }))
    }
}
