//! The message size cap of each call on the peer listener, and [`MessageCaps`], the
//! wrapper of a peer gRPC service that enforces them before tonic buffers a message.
//!
//! tonic's `max_decoding_message_size` is one limit per service ([`MAX_PEER_MESSAGE`] on
//! the peer port), and tonic reserves a buffer as long as a message says it is as soon as it
//! has read the message's 5-byte gRPC prefix: a Vote declaring 200 MiB would have it reserve
//! 200 MiB. [`MessageCaps`] follows the gRPC framing of each request body as it streams in
//! and refuses a message whose declared length is over its call's cap while still holding
//! the HTTP/2 frame that carried that prefix, so tonic never sees it: the caller gets
//! RESOURCE_EXHAUSTED with the stable code REQUEST_TOO_LARGE, naming the call and the cap,
//! and the rest of the message is never read (beyond what HTTP/2 flow control had already
//! let the peer send). A path that names no call in [`CALLS`] keeps the service-wide
//! ceiling, which tonic enforces; AppendEntries, whose cap is that ceiling, is passed
//! through untouched.
//!
//! The peer services accept no compressed messages (tonic refuses them), so a message's
//! declared length is its decoded length.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::status_with_grpc_code;
use edgekv_proto::limits::MAX_REQUEST_BYTES;
use edgekv_proto::peer::{cache_replication_server, peer_server};
use http_body::{Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::MAX_PEER_MESSAGE;

/// AppendEntries: the ceiling itself. A message carries up to openraft's
/// `max_payload_entries` (16, raft/settings.rs) log entries; an entry is a batch of writes
/// of up to the proposer's `MAX_BATCH_BYTES` (1 MiB, raft/proposer.rs) plus the one write
/// that crosses it, itself up to `MAX_ATOMIC_BYTES` (8 MiB) of keys and values: about
/// 16 x 9 MiB = 144 MiB before encoding, within a factor of two of the ceiling.
pub const APPEND_ENTRIES_CAP: usize = MAX_PEER_MESSAGE;

/// InstallSnapshot: one chunk of at most openraft's `snapshot_max_chunk_size` (4 MiB,
/// raft/settings.rs) plus the snapshot's meta (its id, last log id and membership, a few
/// hundred bytes a member); twice the chunk leaves the meta megabytes.
pub const INSTALL_SNAPSHOT_CAP: usize = 2 * 4 * 1024 * 1024;

/// Forward: one client write, which the forwarding follower has checked as its client API
/// does (at most `MAX_ATOMIC_BYTES`, 8 MiB, of keys, values and metadata, plus a few bytes of
/// encoding per check and mutation), or one sweep's expiries (1000 keys of at most 2 KiB).
/// The largest client message the node decodes, `MAX_REQUEST_BYTES` (16 MiB), plus room for
/// the envelope covers either twice over.
pub const FORWARD_CAP: usize = MAX_REQUEST_BYTES + 64 * 1024;

/// SetFaults: the simulated WAN's directed links, one per ordered pair of regions, each two
/// region names and three numbers: 1 MiB holds over 10,000 links (more than 100 regions).
pub const SET_FAULTS_CAP: usize = 1024 * 1024;

/// Vote (a vote and a log id: tens of bytes), ReadIndex and Describe (empty), Join (a node
/// id, a region name and a `host:port`), Digests (a node id and a clock) and Fetch (256
/// bucket flags, the previous page's last key of at most `MAX_KEY_BYTES` (2 KiB) and a page
/// size): each at most a few KiB; 64 KiB leaves room to grow.
pub const CONTROL_CAP: usize = 64 * 1024;

/// Merge: an anti-entropy push is a page of records up to its `PAGE_BYTES` (16 MiB,
/// cache/anti_entropy.rs) plus the record that crosses it; an outbox batch is at most
/// `BATCH_ENTRIES` keys and `BATCH_BYTES` (4 MiB, cache/shipper.rs) plus the record that
/// crosses it. A record's value is at most `MAX_VALUE_BYTES` (1 MiB) plus its metadata, but
/// its member set has no count limit, so four pages leave that one record 48 MiB.
pub const MERGE_CAP: usize = 4 * 16 * 1024 * 1024;

/// A call on the peer listener and the largest message it accepts.
#[derive(Debug, PartialEq, Eq)]
pub struct Call {
    /// The gRPC service's full name (`edgekv.peer.v1.Peer`).
    pub service: &'static str,
    pub method: &'static str,
    pub cap: usize,
}

const fn call(service: &'static str, method: &'static str, cap: usize) -> Call {
    Call { service, method, cap }
}

/// Every call of the `Peer` and `CacheReplication` services (proto/edgekv/peer/v1/peer.proto).
pub const CALLS: &[Call] = &[
    call(peer_server::SERVICE_NAME, "AppendEntries", APPEND_ENTRIES_CAP),
    call(peer_server::SERVICE_NAME, "Vote", CONTROL_CAP),
    call(peer_server::SERVICE_NAME, "InstallSnapshot", INSTALL_SNAPSHOT_CAP),
    call(peer_server::SERVICE_NAME, "Forward", FORWARD_CAP),
    call(peer_server::SERVICE_NAME, "ReadIndex", CONTROL_CAP),
    call(peer_server::SERVICE_NAME, "Describe", CONTROL_CAP),
    call(peer_server::SERVICE_NAME, "Join", CONTROL_CAP),
    call(peer_server::SERVICE_NAME, "SetFaults", SET_FAULTS_CAP),
    call(cache_replication_server::SERVICE_NAME, "Merge", MERGE_CAP),
    call(cache_replication_server::SERVICE_NAME, "Digests", CONTROL_CAP),
    call(cache_replication_server::SERVICE_NAME, "Fetch", CONTROL_CAP),
];

// Checked when the node is built: every cap is within the service-wide ceiling, and the
// calls that carry data fit what honest members send (the sizes above).
const _: () = {
    let mut i = 0;
    while i < CALLS.len() {
        assert!(CALLS[i].cap <= MAX_PEER_MESSAGE);
        i += 1;
    }
    assert!(INSTALL_SNAPSHOT_CAP > 4 * 1024 * 1024);
    assert!(FORWARD_CAP > MAX_REQUEST_BYTES);
    assert!(MERGE_CAP > 16 * 1024 * 1024 + edgekv_proto::limits::MAX_VALUE_BYTES);
};

/// The call a request path (`/edgekv.peer.v1.Peer/Vote`) names, if it is one of [`CALLS`].
pub fn call_of(path: &str) -> Option<&'static Call> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    CALLS.iter().find(|c| c.service == service && c.method == method)
}

/// The largest message accepted on `path`: its call's cap, or the service-wide ceiling.
pub fn cap_for(path: &str) -> usize {
    call_of(path).map_or(MAX_PEER_MESSAGE, |call| call.cap)
}

impl Call {
    /// The answer to a message of `len` bytes over the cap.
    fn refusal(&self, len: u64) -> Status {
        status_with_grpc_code(
            tonic::Code::ResourceExhausted,
            ErrorCode::RequestTooLarge,
            format!(
                "a {}/{} message of {len} bytes is over the {}-byte cap of that call on the peer port",
                self.service, self.method, self.cap
            ),
        )
    }
}

/// A peer gRPC service whose requests are held to their call's cap (see the module doc).
#[derive(Clone, Debug)]
pub struct MessageCaps<S> {
    inner: S,
}

impl<S> MessageCaps<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for MessageCaps<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for MessageCaps<S>
where
    S: Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match call_of(request.uri().path()) {
            // At the ceiling, tonic's own limit is the same and refuses as early.
            Some(call) if call.cap < MAX_PEER_MESSAGE => {
                let remote = remote_addr(&request);
                self.inner
                    .call(request.map(|body| Body::new(CappedBody::new(body, call, remote))))
            }
            _ => self.inner.call(request),
        }
    }
}

/// The peer's address, as `tonic::Request::remote_addr` finds it.
fn remote_addr<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
}

/// Length of the prefix of every gRPC message: a compression flag and the big-endian length.
const PREFIX: usize = 5;

/// Where a request body is in its gRPC framing.
#[derive(Debug, Default)]
struct Framing {
    /// The bytes of the next message's prefix seen so far.
    prefix: [u8; PREFIX],
    prefix_len: usize,
    /// Bytes of the current message still to come.
    remaining: u64,
}

impl Framing {
    /// Follows the body through `chunk`. Fails with the declared length of a message over
    /// `cap` as soon as its prefix is complete.
    fn scan(&mut self, mut chunk: &[u8], cap: usize) -> Result<(), u64> {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skipped = chunk.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                chunk = &chunk[skipped..];
                self.remaining -= skipped as u64;
                continue;
            }
            let taken = (PREFIX - self.prefix_len).min(chunk.len());
            self.prefix[self.prefix_len..self.prefix_len + taken].copy_from_slice(&chunk[..taken]);
            self.prefix_len += taken;
            chunk = &chunk[taken..];
            if self.prefix_len == PREFIX {
                self.prefix_len = 0;
                let [_, length @ ..] = self.prefix;
                let len = u64::from(u32::from_be_bytes(length));
                if len > cap as u64 {
                    return Err(len);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

/// A request body that fails, instead of passing on the frame, where a message's prefix
/// declares more than the call's cap.
struct CappedBody {
    inner: Body,
    call: &'static Call,
    remote: Option<SocketAddr>,
    framing: Framing,
    /// The declared length of the message refused; the body ends there.
    refused: Option<u64>,
}

impl CappedBody {
    fn new(inner: Body, call: &'static Call, remote: Option<SocketAddr>) -> Self {
        Self {
            inner,
            call,
            remote,
            framing: Framing::default(),
            refused: None,
        }
    }
}

impl http_body::Body for CappedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Some(len) = this.refused {
            return Poll::Ready(Some(Err(this.call.refusal(len))));
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(len) = this.framing.scan(data, this.call.cap)
        {
            tracing::warn!(
                peer = ?this.remote,
                rpc = %format_args!("{}/{}", this.call.service, this.call.method),
                len,
                cap = this.call.cap,
                "refused an oversized peer message"
            );
            this.refused = Some(len);
            return Poll::Ready(Some(Err(this.call.refusal(len))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.refused.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `rpc` names of each service in the .proto, which [`CALLS`] must list exactly.
    fn proto_calls() -> Vec<(String, String)> {
        let proto = include_str!("../../../proto/edgekv/peer/v1/peer.proto");
        let package = "edgekv.peer.v1";
        let mut service = None;
        let mut calls = Vec::new();
        for line in proto.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("service ") {
                service = rest.split_whitespace().next().map(|name| format!("{package}.{name}"));
            } else if let Some(rest) = line.strip_prefix("rpc ") {
                let method = rest.split('(').next().unwrap().trim().to_string();
                calls.push((service.clone().expect("an rpc inside a service"), method));
            }
        }
        calls
    }

    #[test]
    fn every_call_of_the_proto_has_its_cap() {
        let mut listed: Vec<(String, String)> = CALLS
            .iter()
            .map(|c| (c.service.to_string(), c.method.to_string()))
            .collect();
        let mut declared = proto_calls();
        listed.sort();
        declared.sort();
        assert_eq!(declared.len(), 11, "{declared:?}");
        assert_eq!(listed, declared);
    }

    #[test]
    fn paths_map_to_their_caps() {
        assert_eq!(cap_for("/edgekv.peer.v1.Peer/AppendEntries"), MAX_PEER_MESSAGE);
        assert_eq!(cap_for("/edgekv.peer.v1.Peer/Vote"), 64 * 1024);
        assert_eq!(cap_for("/edgekv.peer.v1.Peer/InstallSnapshot"), 8 * 1024 * 1024);
        assert_eq!(cap_for("/edgekv.peer.v1.Peer/Forward"), MAX_REQUEST_BYTES + 64 * 1024);
        assert_eq!(cap_for("/edgekv.peer.v1.Peer/ReadIndex"), CONTROL_CAP);
        assert_eq!(cap_for("/edgekv.peer.v1.Peer/Describe"), CONTROL_CAP);
        assert_eq!(cap_for("/edgekv.peer.v1.Peer/Join"), CONTROL_CAP);
        assert_eq!(cap_for("/edgekv.peer.v1.Peer/SetFaults"), 1024 * 1024);
        assert_eq!(cap_for("/edgekv.peer.v1.CacheReplication/Merge"), 64 * 1024 * 1024);
        assert_eq!(cap_for("/edgekv.peer.v1.CacheReplication/Digests"), CONTROL_CAP);
        assert_eq!(cap_for("/edgekv.peer.v1.CacheReplication/Fetch"), CONTROL_CAP);
        // Anything else keeps the service-wide ceiling.
        for unknown in [
            "",
            "/",
            "/edgekv.peer.v1.Peer",
            "/edgekv.peer.v1.Peer/",
            "/edgekv.peer.v1.Peer/Merge",
            "/edgekv.peer.v1.CacheReplication/Vote",
            "/edgekv.v1.Kv/Get",
            "edgekv.peer.v1.Peer/Vote",
            "/edgekv.peer.v1.Peer/Vote/extra",
        ] {
            assert_eq!(cap_for(unknown), MAX_PEER_MESSAGE, "{unknown:?}");
        }
    }

    fn prefix(len: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend(len.to_be_bytes());
        bytes
    }

    #[test]
    fn a_message_at_its_cap_passes_and_one_over_is_refused_on_its_prefix() {
        let mut at_cap = Framing::default();
        let mut body = prefix(100);
        body.extend([7; 100]);
        assert_eq!(at_cap.scan(&body, 100), Ok(()));
        // The next message is followed too: its prefix alone is enough to refuse it.
        assert_eq!(at_cap.scan(&prefix(101), 100), Err(101));

        let mut huge = Framing::default();
        assert_eq!(huge.scan(&prefix(200 << 20), 64 * 1024), Err(200 << 20));
    }

    #[test]
    fn prefixes_and_messages_split_across_frames_are_followed() {
        let mut body = prefix(3);
        body.extend([1, 2, 3]);
        body.extend(prefix(0));
        body.extend(prefix(4));
        body.extend([4, 5, 6, 7]);
        body.extend(prefix(9));
        // Every way of cutting the body in frames of one size sees the same messages.
        for size in 1..body.len() {
            let mut framing = Framing::default();
            let results: Vec<_> = body.chunks(size).map(|chunk| framing.scan(chunk, 8)).collect();
            assert_eq!(results.last(), Some(&Err(9)), "frames of {size} bytes");
            assert!(
                results[..results.len() - 1].iter().all(Result::is_ok),
                "frames of {size} bytes: {results:?}"
            );
        }
    }

    #[test]
    fn the_refusal_names_the_call_and_its_cap() {
        let vote = call_of("/edgekv.peer.v1.Peer/Vote").unwrap();
        let status = vote.refusal(70_000);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            edgekv_proto::grpc_status::code_of(&status),
            Some(ErrorCode::RequestTooLarge)
        );
        assert!(status.message().contains("edgekv.peer.v1.Peer/Vote"), "{status:?}");
        assert!(status.message().contains("70000 bytes"), "{status:?}");
        assert!(status.message().contains("65536-byte cap"), "{status:?}");
    }
}
