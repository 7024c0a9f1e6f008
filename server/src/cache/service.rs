//! The receiving side of cache replication: the `CacheReplication` peer service merges
//! what peers ship and answers anti-entropy's digest and fetch requests. Served on the
//! peer listener next to the Raft service.

use std::sync::Arc;

use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::status;
use edgekv_proto::peer::CachePayload;
use edgekv_proto::peer::cache_replication_server::{CacheReplication, CacheReplicationServer};
use tonic::{Request, Response, Status};

use super::digest::BUCKETS;
use super::store::{CacheStore, Source};
use super::wire::{self, DigestsReply, DigestsRequest, FetchReply, FetchRequest, MergeReply, MergeRequest};
use crate::net::MAX_PEER_MESSAGE;

/// The largest page a fetch returns, whatever the caller asks.
const MAX_FETCH_BYTES: usize = 16 * 1024 * 1024;

pub struct CacheReplicationService {
    store: Arc<CacheStore>,
}

impl CacheReplicationService {
    pub fn new(store: Arc<CacheStore>) -> Self {
        Self { store }
    }

    pub fn into_server(self) -> CacheReplicationServer<Self> {
        CacheReplicationServer::new(self)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE)
    }

    /// Refuses a peer whose clock is too far ahead, with the stable code.
    fn check_clock(&self, sent_at: crate::crdt::hlc::Timestamp) -> Result<(), Status> {
        self.store
            .check_peer_clock(sent_at)
            .map_err(|skew| status(ErrorCode::ClockSkew, skew.to_string()))
    }
}

fn request<T: for<'de> serde::Deserialize<'de>>(payload: Request<CachePayload>) -> Result<T, Status> {
    wire::decode(&payload.into_inner().data).map_err(|e| {
        status(
            ErrorCode::InvalidArgument,
            format!("undecodable replication message: {e}"),
        )
    })
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<CachePayload>, Status> {
    Ok(Response::new(CachePayload {
        data: wire::encode(value),
    }))
}

/// A storage failure while serving a peer: logged here (the sender only sees it as a
/// shipping error), and answered with its stable code.
fn storage_status(error: crate::storage::StorageError) -> Status {
    tracing::error!(%error, "a cache replication request failed in storage");
    status(error.code(), error.to_string())
}

/// The blocking task that served a request (`what`) panicked or was cancelled (shutdown).
fn task_failed(what: &'static str) -> impl Fn(tokio::task::JoinError) -> Status {
    move |error| {
        tracing::error!(%error, "the {what} task failed");
        status(ErrorCode::Internal, format!("the {what} task failed: {error}"))
    }
}

#[tonic::async_trait]
impl CacheReplication for CacheReplicationService {
    async fn merge(&self, payload: Request<CachePayload>) -> Result<Response<CachePayload>, Status> {
        let merge: MergeRequest = request(payload)?;
        self.check_clock(merge.sent_at)?;
        let source = if merge.from_outbox {
            Source::Outbox {
                from_node: merge.from_node,
            }
        } else {
            Source::Repair
        };
        let store = self.store.clone();
        let changed = tokio::task::spawn_blocking(move || store.merge(&merge.records, source))
            .await
            .map_err(task_failed("merge"))?
            .map_err(storage_status)?;
        reply(&MergeReply {
            changed: changed as u64,
        })
    }

    async fn digests(&self, payload: Request<CachePayload>) -> Result<Response<CachePayload>, Status> {
        let asked: DigestsRequest = request(payload)?;
        self.check_clock(asked.sent_at)?;
        reply(&DigestsReply {
            digests: self.store.digests(),
        })
    }

    async fn fetch(&self, payload: Request<CachePayload>) -> Result<Response<CachePayload>, Status> {
        let fetch: FetchRequest = request(payload)?;
        let mut buckets = [false; BUCKETS];
        for (slot, wanted) in buckets.iter_mut().zip(&fetch.buckets) {
            *slot = *wanted;
        }
        let max_bytes = (fetch.max_bytes as usize).clamp(1, MAX_FETCH_BYTES);
        let store = self.store.clone();
        let (records, next) =
            tokio::task::spawn_blocking(move || store.records_in_buckets(&buckets, fetch.after.as_deref(), max_bytes))
                .await
                .map_err(task_failed("fetch"))?
                .map_err(storage_status)?;
        reply(&FetchReply { records, next })
    }
}
