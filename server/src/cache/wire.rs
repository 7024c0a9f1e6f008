//! The messages of the `CacheReplication` peer service, postcard-encoded in
//! `CachePayload.data`. Records travel encoded as they are stored, so a receiver decodes
//! each exactly once and digests hash the same bytes on every node.

use std::time::Duration;

use edgekv_proto::peer::CachePayload;
use serde::{Deserialize, Serialize};

use crate::crdt::hlc::Timestamp;
use crate::net::PeerTransport;
use crate::raft::Member;

/// A key and its encoded [`crate::crdt::record::CacheRecord`].
pub type EncodedRecord = (Vec<u8>, Vec<u8>);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MergeRequest {
    pub from_node: u64,
    /// The sender's clock when it sent this: refused when too far ahead of ours.
    pub sent_at: Timestamp,
    /// From the outbox (fresh writes: their propagation lag is recorded) or anti-entropy.
    pub from_outbox: bool,
    pub records: Vec<EncodedRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MergeReply {
    /// Records that changed the receiver's state.
    pub changed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestsRequest {
    pub from_node: u64,
    pub sent_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestsReply {
    pub digests: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FetchRequest {
    /// One flag per bucket.
    pub buckets: Vec<bool>,
    /// Continue after this key (the previous page's last).
    pub after: Option<Vec<u8>>,
    pub max_bytes: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FetchReply {
    pub records: Vec<EncodedRecord>,
    /// Where the next page starts; `None` when done.
    pub next: Option<Vec<u8>>,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("replication messages always encode")
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The calls of the `CacheReplication` service.
#[derive(Clone, Copy, Debug)]
pub enum Rpc {
    Merge,
    Digests,
    Fetch,
}

/// Sends `request` to `to`'s `CacheReplication` service through the simulated WAN and
/// decodes the answer; a failure is described for logs and status.
pub async fn call<Req: Serialize, Rep: for<'de> Deserialize<'de>>(
    transport: &PeerTransport,
    to: &Member,
    timeout: Duration,
    rpc: Rpc,
    request: &Req,
) -> Result<Rep, String> {
    let payload = CachePayload { data: encode(request) };
    let answer = transport
        .call_cache(to.destination(), timeout, |mut client| async move {
            match rpc {
                Rpc::Merge => client.merge(payload).await,
                Rpc::Digests => client.digests(payload).await,
                Rpc::Fetch => client.fetch(payload).await,
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    decode(&answer.data).map_err(|e| e.to_string())
}
