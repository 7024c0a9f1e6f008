//! `watch`: a stream of `u32`-length-prefixed `WatchOutput` frames.
//!
//! A frame is sent at once, then whenever a commit touches a watched key (or a watched
//! value expires) and its versionstamp, value or presence actually changed. Every frame is a
//! consistent snapshot of all watched keys and marks each one `changed` with its current
//! entry, as denokv does: the Deno CLI reads a key marked unchanged as absent instead of
//! keeping what it was last told, so a frame must never rely on the client's memory. An
//! empty frame every few seconds keeps idle connections alive. The stream ends when the
//! client goes away, the node shuts down, or the signed token that opened it expires.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use denokv_proto::datapath as pb;
use edgekv_proto::Versionstamp;
use prost::Message as _;
use tokio::sync::broadcast::error::RecvError;

use super::datapath::entry_to_wire;
use super::error::KvConnectError;
use super::{AppState, DataPath, Protobuf, endpoint_consistency};
use crate::clock::{Clock, SystemClock};
use crate::kv::{ChangedKeys, Consistency, Entry, KvStore, access};

const KEEPALIVE: Duration = Duration::from_secs(5);

pub(super) async fn watch(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    DataPath(principal): DataPath,
    Protobuf(request): Protobuf<pb::Watch>,
) -> Result<Response, KvConnectError> {
    endpoint_consistency(&endpoint)?;
    let keys: Vec<Vec<u8>> = request.try_into()?;
    access::authorize_reads(&principal, keys.iter().map(Vec::as_slice))?;
    // Subscribe before the first read so no commit between the two is missed.
    let changes = state.store.subscribe();
    let first = read(&state.store, &keys).await?;
    let watcher = Watcher {
        store: state.store.clone(),
        last_expiries: vec![None; keys.len()],
        keys,
        last: Vec::new(),
        changes,
        pending: Some(first),
        keepalive_at: tokio::time::Instant::now() + KEEPALIVE,
    };
    let shutdown = state.shutdown.clone();
    // A watch lives no longer than the token that opened it: the stream ends when the token
    // expires, and the client's reconnect needs a valid one.
    let token_expiry = principal.grant().map(|grant| {
        let left_ms = (grant.expires_at().saturating_mul(1000)).saturating_sub(SystemClock.now_ms());
        tokio::time::Instant::now() + Duration::from_millis(left_ms)
    });
    let frames = futures::stream::unfold(Some(watcher), move |watcher| {
        let shutdown = shutdown.clone();
        async move {
            let mut watcher = watcher?;
            let expired = async {
                match token_expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => None,
                () = expired => None,
                frame = watcher.next_frame() => frame.map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), Some(watcher))),
            }
        }
    });
    Ok((
        [("content-type", "application/octet-stream")],
        Body::from_stream(frames),
    )
        .into_response())
}

async fn read(store: &KvStore, keys: &[Vec<u8>]) -> Result<Vec<Option<Entry>>, KvConnectError> {
    let (entries, _) = store.get_many(keys, Consistency::Eventual).await?;
    Ok(entries)
}

struct Watcher {
    store: KvStore,
    keys: Vec<Vec<u8>>,
    /// What was last reported of each key (`None`: absent); empty before the first frame.
    last: Vec<Option<Reported>>,
    changes: tokio::sync::broadcast::Receiver<ChangedKeys>,
    /// The expiries of the values last reported, to re-read when one passes.
    last_expiries: Vec<Option<u64>>,
    /// A snapshot read but not yet reported.
    pending: Option<Vec<Option<Entry>>>,
    /// When the next keepalive is due if no frame is sent before.
    keepalive_at: tokio::time::Instant,
}

/// What a watcher was told about a key: its versionstamp and a fingerprint of its value.
/// A cache key's value can change without a new versionstamp (an increment or an add
/// merged from a peer that carries an older stamp than the one shown), so both count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reported {
    versionstamp: Versionstamp,
    value: u64,
}

impl Reported {
    fn of(entry: &Entry) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        entry.envelope.value.hash(&mut hasher);
        Self {
            versionstamp: entry.envelope.versionstamp,
            value: hasher.finish(),
        }
    }
}

fn frame(output: &pb::WatchOutput) -> Bytes {
    let body = output.encode_to_vec();
    let mut framed = Vec::with_capacity(4 + body.len());
    framed.extend_from_slice(&(body.len() as u32).to_le_bytes());
    framed.extend_from_slice(&body);
    Bytes::from(framed)
}

impl Watcher {
    /// The next frame to send: a change, or a keepalive. `None` ends the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(snapshot) = self.pending.take()
                && let Some(output) = self.diff(snapshot)
            {
                self.keepalive_at = tokio::time::Instant::now() + KEEPALIVE;
                return Some(frame(&output));
            }
            let next_expiry = self.next_expiry();
            let until_expiry = async {
                match next_expiry {
                    Some(at) => tokio::time::sleep(Duration::from_millis(at.saturating_sub(self.store.now_ms()))).await,
                    None => std::future::pending().await,
                }
            };
            let dirty = tokio::select! {
                change = self.changes.recv() => match change {
                    // An empty notice means a snapshot replaced everything.
                    Ok(keys) => keys.is_empty() || keys.iter().any(|k| self.keys.contains(k)),
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return None,
                },
                _ = until_expiry => true,
                // A deadline, not a fresh sleep per loop: notices about other keys must not
                // postpone the keepalive forever.
                _ = tokio::time::sleep_until(self.keepalive_at) => {
                    self.keepalive_at = tokio::time::Instant::now() + KEEPALIVE;
                    return Some(Bytes::from_static(&[0, 0, 0, 0]));
                }
            };
            if dirty {
                match read(&self.store, &self.keys).await {
                    Ok(snapshot) => self.pending = Some(snapshot),
                    Err(error) => {
                        tracing::warn!(%error, "watch read failed; ending the stream so the client retries");
                        return None;
                    }
                }
            }
        }
    }

    /// When the first reported value expires, if any does.
    fn next_expiry(&self) -> Option<u64> {
        self.last_expiries.iter().flatten().min().copied()
    }

    /// A frame for `snapshot` if anything changed since the last one (always for the first),
    /// carrying every key's current entry.
    fn diff(&mut self, snapshot: Vec<Option<Entry>>) -> Option<pb::WatchOutput> {
        let first = self.last.is_empty();
        let stamps: Vec<Option<Reported>> = snapshot.iter().map(|e| e.as_ref().map(Reported::of)).collect();
        if !first && stamps == self.last {
            return None;
        }
        let keys = snapshot
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                self.last_expiries[i] = entry.as_ref().and_then(|e| e.envelope.expires_at_ms);
                pb::WatchKeyOutput {
                    changed: true,
                    entry_if_changed: entry.map(entry_to_wire),
                }
            })
            .collect();
        self.last = stamps;
        Some(pb::WatchOutput {
            status: pb::SnapshotReadStatus::SrSuccess as i32,
            keys,
        })
    }
}
