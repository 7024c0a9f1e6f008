//! `edgekv.v1.Kv`: translates the wire messages to [`KvStore`] calls and back.

use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::status;
use edgekv_proto::limits::{DEFAULT_LIST_PAGE, MAX_LIST_PAGE};
use edgekv_proto::v1::{self as pb, kv_server::Kv};
use tonic::{Request, Response, Status};

use super::admin_service::NodeInfo;
use super::authentication::principal;
use crate::kv::{self, KvStore, access};

pub(super) struct KvService {
    store: KvStore,
    info: NodeInfo,
}

impl KvService {
    pub(super) fn new(store: KvStore, info: NodeInfo) -> Self {
        Self { store, info }
    }

    fn read_info(&self, read: kv::ReadInfo) -> Option<pb::ReadInfo> {
        Some(pb::ReadInfo {
            consistency: consistency_to_wire(read.consistency) as i32,
            node_id: self.info.node_id.clone(),
            region: self.info.region.clone(),
            staleness_ms: read.staleness_ms,
        })
    }

    /// Adds the leader's client address to an answer from a follower, so the SDK sends
    /// the next write (or strong read) straight there.
    fn with_leader_hint<T>(&self, message: T) -> Response<T> {
        let mut response = Response::new(message);
        super::add_leader_hint(self.store.raft(), response.metadata_mut());
        response
    }

    /// [`Self::with_leader_hint`] for a failed call.
    fn with_leader_hint_on_error(&self, mut status: Status) -> Status {
        super::add_leader_hint(self.store.raft(), status.metadata_mut());
        status
    }
}

fn consistency_from_wire(raw: i32) -> Result<kv::Consistency, Status> {
    match pb::Consistency::try_from(raw) {
        Ok(pb::Consistency::Strong) => Ok(kv::Consistency::Strong),
        Ok(pb::Consistency::Eventual) => Ok(kv::Consistency::Eventual),
        Err(_) => Err(status(ErrorCode::InvalidArgument, format!("unknown consistency {raw}"))),
    }
}

fn consistency_to_wire(consistency: kv::Consistency) -> pb::Consistency {
    match consistency {
        kv::Consistency::Strong => pb::Consistency::Strong,
        kv::Consistency::Eventual => pb::Consistency::Eventual,
    }
}

fn entry_to_wire(entry: kv::Entry, keys_only: bool, store: &KvStore) -> pb::Entry {
    let envelope = entry.envelope;
    pb::Entry {
        class: store.class_of(&entry.key).as_str().into(),
        key: entry.key,
        value: (!keys_only).then_some(pb::Value {
            encoding: envelope.encoding as i32,
            data: envelope.value,
        }),
        versionstamp: envelope.versionstamp.as_bytes().to_vec(),
        expires_at_ms: envelope.expires_at_ms,
        metadata: envelope.metadata,
    }
}

fn invalid(message: impl Into<String>) -> Status {
    status(ErrorCode::InvalidArgument, message)
}

fn mutation_from_wire(index: usize, mutation: pb::Mutation) -> Result<kv::Mutation, Status> {
    use pb::mutation::Kind;
    let numeric = |op, m: pb::NumericMutation| kv::Mutation::Numeric {
        op,
        key: m.key,
        operand: m.operand,
    };
    Ok(match mutation.kind {
        None => {
            return Err(invalid(format!(
                "mutation {index} has no kind (set, delete, sum, min, max, delete_range, sadd or srem)"
            )));
        }
        Some(Kind::Set(set)) => {
            let value = set.value.unwrap_or_default();
            let encoding = pb::ValueEncoding::try_from(value.encoding).map_err(|_| {
                status(
                    ErrorCode::ValueMalformed,
                    format!("mutation {index}: unknown value encoding {}", value.encoding),
                )
            })?;
            let expiry = set.expiry.map(|e| match e {
                pb::set_mutation::Expiry::ExpireInMs(ms) => kv::Expiry::In(ms),
                pb::set_mutation::Expiry::ExpireAtMs(at) => kv::Expiry::At(at),
            });
            kv::Mutation::Set {
                key: set.key,
                encoding,
                value: value.data,
                expiry,
                metadata: set.metadata,
            }
        }
        Some(Kind::Delete(delete)) => kv::Mutation::Delete { key: delete.key },
        Some(Kind::Sadd(m)) => kv::Mutation::SetAdd {
            key: m.key,
            member: m.member,
        },
        Some(Kind::Srem(m)) => kv::Mutation::SetRemove {
            key: m.key,
            member: m.member,
        },
        Some(Kind::Sum(m)) => numeric(kv::NumericOp::Sum, m),
        Some(Kind::Min(m)) => numeric(kv::NumericOp::Min, m),
        Some(Kind::Max(m)) => numeric(kv::NumericOp::Max, m),
        Some(Kind::DeleteRange(range)) => match range.range {
            Some(pb::delete_range_mutation::Range::Prefix(prefix)) => kv::Mutation::DeleteRange {
                start: edgekv_proto::Key::prefix_start(&prefix),
                end: edgekv_proto::Key::prefix_end(&prefix),
            },
            Some(pb::delete_range_mutation::Range::Span(span)) => kv::Mutation::DeleteRange {
                start: span.start,
                end: span.end,
            },
            None => {
                return Err(invalid(format!(
                    "mutation {index}: delete_range needs a prefix or a span"
                )));
            }
        },
    })
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, mut request: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let principal = principal(&mut request)?;
        let request = request.into_inner();
        let consistency = consistency_from_wire(request.consistency)?;
        access::authorize_reads(&principal, [request.key.as_slice()])?;
        // A point read is a few microseconds from the block cache: cheaper inline than a
        // hop to the blocking pool.
        let (entry, read) = self.store.get(&request.key, consistency).await?;
        Ok(self.with_leader_hint(pb::GetResponse {
            entry: entry.map(|e| entry_to_wire(e, false, &self.store)),
            read: self.read_info(read),
            class: self.store.class_of(&request.key).as_str().into(),
        }))
    }

    async fn get_many(
        &self,
        mut request: Request<pb::GetManyRequest>,
    ) -> Result<Response<pb::GetManyResponse>, Status> {
        let principal = principal(&mut request)?;
        let request = request.into_inner();
        let consistency = consistency_from_wire(request.consistency)?;
        access::authorize_reads(&principal, request.keys.iter().map(Vec::as_slice))?;
        let (entries, read) = self.store.get_many(&request.keys, consistency).await?;
        let entries = entries
            .into_iter()
            .map(|e| pb::MaybeEntry {
                entry: e.map(|e| entry_to_wire(e, false, &self.store)),
            })
            .collect();
        Ok(self.with_leader_hint(pb::GetManyResponse {
            entries,
            read: self.read_info(read),
        }))
    }

    async fn list(&self, mut request: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        let principal = principal(&mut request)?;
        let request = request.into_inner();
        let consistency = consistency_from_wire(request.consistency)?;
        let limit = match request.limit as usize {
            0 => DEFAULT_LIST_PAGE,
            n if n > MAX_LIST_PAGE => {
                return Err(invalid(format!(
                    "limit {n} is above the page limit of {MAX_LIST_PAGE}; page with the cursor"
                )));
            }
            n => n,
        };
        let keys_only = request.keys_only;
        let query = kv::ListQuery {
            selector: kv::Selector {
                prefix: request.prefix,
                start: request.start,
                end: request.end,
            },
            limit,
            reverse: request.reverse,
            cursor: Some(request.cursor).filter(|c| !c.is_empty()),
            keys_only,
        };
        access::authorize_list(&principal, &query.selector)?;
        let (page, read) = self.store.list(&query, consistency).await?;
        Ok(self.with_leader_hint(pb::ListResponse {
            entries: page
                .entries
                .into_iter()
                .map(|e| entry_to_wire(e, keys_only, &self.store))
                .collect(),
            cursor: page.cursor.unwrap_or_default(),
            read: self.read_info(read),
        }))
    }

    async fn atomic(&self, mut request: Request<pb::AtomicRequest>) -> Result<Response<pb::AtomicResponse>, Status> {
        let principal = principal(&mut request)?;
        let request = request.into_inner();
        let checks = request
            .checks
            .into_iter()
            .enumerate()
            .map(|(index, check)| {
                let versionstamp = match check.versionstamp.len() {
                    0 => None,
                    _ => Some(
                        edgekv_proto::Versionstamp::from_slice(&check.versionstamp).ok_or_else(|| {
                            invalid(format!(
                                "check {index}: a versionstamp is 10 bytes, got {}",
                                check.versionstamp.len()
                            ))
                        })?,
                    ),
                };
                Ok(kv::Check {
                    key: check.key,
                    versionstamp,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let mutations = request
            .mutations
            .into_iter()
            .enumerate()
            .map(|(index, m)| mutation_from_wire(index, m))
            .collect::<Result<Vec<_>, Status>>()?;
        let write = kv::AtomicWrite { checks, mutations };
        access::authorize_atomic(&principal, &write)?;
        let id = Some(request.request_id.as_slice()).filter(|id| !id.is_empty());
        let outcome = self.store.atomic_once(&write, id, request.resend).await;
        // A refusal names the leader too: the SDK sends a write refused for its keys' class
        // (MIXED_CLASSES) once more, to the node whose rules refused it.
        let response = match outcome.map_err(|error| self.with_leader_hint_on_error(Status::from(error)))? {
            kv::AtomicOutcome::Committed(committed) => pb::AtomicResponse {
                ok: true,
                versionstamp: committed.versionstamp.as_bytes().to_vec(),
                failed_checks: Vec::new(),
                numeric_results: committed
                    .numeric_results
                    .into_iter()
                    .map(|(mutation, value)| pb::NumericResult {
                        mutation: mutation as u32,
                        value,
                    })
                    .collect(),
            },
            kv::AtomicOutcome::CheckFailed(failed) => pb::AtomicResponse {
                ok: false,
                versionstamp: Vec::new(),
                failed_checks: failed.into_iter().map(|i| i as u32).collect(),
                numeric_results: Vec::new(),
            },
        };
        Ok(self.with_leader_hint(response))
    }
}
