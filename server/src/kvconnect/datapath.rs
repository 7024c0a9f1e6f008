//! `snapshot_read` and `atomic_write`: KV Connect's protobuf data path, mapped onto the
//! domain. Limits are checked with `denokv_proto`'s conversions (Deno's limits, 400 on
//! violation) before the domain's own checks.

use axum::extract::{Path, State};
use denokv_proto::datapath as pb;
use denokv_proto::{KvValue, MutationKind};
use edgekv_proto::Versionstamp;

use super::error::KvConnectError;
use super::{AppState, DataPath, Protobuf, ProtobufResponse, endpoint_consistency};
use super::{resolve, values};
use crate::kv::{self, AtomicOutcome, Check, Expiry, Mutation, NumericOp, RangeRead, access};

pub(super) async fn snapshot_read(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    DataPath(principal): DataPath,
    Protobuf(request): Protobuf<pb::SnapshotRead>,
) -> Result<ProtobufResponse<pb::SnapshotReadOutput>, KvConnectError> {
    let consistency = endpoint_consistency(&endpoint)?;
    let ranges: Vec<denokv_proto::ReadRange> = request.try_into()?;
    let ranges: Vec<RangeRead> = ranges
        .into_iter()
        .map(|r| RangeRead {
            start: r.start,
            end: r.end,
            limit: r.limit.get() as usize,
            reverse: r.reverse,
        })
        .collect();
    access::authorize_ranges(&principal, &ranges)?;
    let (results, read) = state.store.snapshot_read(&ranges, consistency).await?;
    let ranges = results
        .into_iter()
        .map(|entries| pb::ReadRangeOutput {
            values: entries.into_iter().map(entry_to_wire).collect(),
        })
        .collect();
    Ok(ProtobufResponse(pb::SnapshotReadOutput {
        ranges,
        read_disabled: false,
        read_is_strongly_consistent: read.strongly_consistent,
        status: pb::SnapshotReadStatus::SrSuccess as i32,
    }))
}

pub(super) fn entry_to_wire(entry: kv::Entry) -> pb::KvEntry {
    let envelope = entry.envelope;
    let (encoding, value) = values::to_wire(envelope.encoding, envelope.value);
    pb::KvEntry {
        key: entry.key,
        value,
        encoding: encoding as i32,
        versionstamp: envelope.versionstamp.as_bytes().to_vec(),
    }
}

fn encoded(value: KvValue) -> Result<(edgekv_proto::v1::ValueEncoding, Vec<u8>), KvConnectError> {
    let (bytes, encoding) = denokv_proto::encode_value_owned(value);
    let encoding = values::from_wire(encoding as i32)
        .ok_or_else(|| KvConnectError::BadRequest(format!("unknown value encoding {encoding}")))?;
    Ok((encoding, bytes))
}

fn mutation_from_wire(mutation: denokv_proto::Mutation) -> Result<Mutation, KvConnectError> {
    let key = mutation.key;
    let expiry = mutation
        .expire_at
        .map(|at| Expiry::At(at.timestamp_millis().max(1) as u64));
    let u64_operand = |name: &str, value: KvValue| match value {
        KvValue::U64(n) => Ok(n),
        _ => Err(KvConnectError::BadRequest(format!(
            "the '{name}' mutation needs a Deno.KvU64 operand"
        ))),
    };
    Ok(match mutation.kind {
        MutationKind::Set(value) => {
            let (encoding, value) = encoded(value)?;
            Mutation::Set {
                key,
                encoding,
                value,
                expiry,
                metadata: None,
            }
        }
        MutationKind::Delete => Mutation::Delete { key },
        MutationKind::Sum {
            value: KvValue::U64(operand),
            ..
        } => Mutation::Numeric {
            op: NumericOp::Sum,
            key,
            operand,
        },
        MutationKind::Sum {
            value,
            min_v8,
            max_v8,
            clamp,
        } => {
            let (_, operand) = encoded(value)?;
            Mutation::SumV8 {
                key,
                operand,
                min: min_v8,
                max: max_v8,
                clamp,
            }
        }
        MutationKind::Min(value) => Mutation::Numeric {
            op: NumericOp::Min,
            key,
            operand: u64_operand("min", value)?,
        },
        MutationKind::Max(value) => Mutation::Numeric {
            op: NumericOp::Max,
            key,
            operand: u64_operand("max", value)?,
        },
        MutationKind::SetSuffixVersionstampedKey(value) => {
            let (encoding, value) = encoded(value)?;
            Mutation::SetVersionstampedKey {
                prefix: key,
                encoding,
                value,
                expiry,
            }
        }
    })
}

pub(super) async fn atomic_write(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    DataPath(principal): DataPath,
    Protobuf(request): Protobuf<pb::AtomicWrite>,
) -> Result<ProtobufResponse<pb::AtomicWriteOutput>, KvConnectError> {
    // Writes take the strong path whichever endpoint they arrive on.
    endpoint_consistency(&endpoint)?;
    let write: denokv_proto::AtomicWrite = request.try_into()?;
    if !write.enqueues.is_empty() {
        return Err(KvConnectError::QueuesUnsupported);
    }
    let checks = write
        .checks
        .into_iter()
        .map(|c| Check {
            key: c.key,
            versionstamp: c.versionstamp.map(Versionstamp),
        })
        .collect();
    let mutations = write
        .mutations
        .into_iter()
        .map(mutation_from_wire)
        .collect::<Result<_, _>>()?;
    let write = kv::AtomicWrite { checks, mutations };
    access::authorize_atomic(&principal, &write)?;
    // An id of the node's own: the Deno clients send none, and retry blindly (resolve.rs).
    let id = uuid::Uuid::new_v4();
    let attempt = |resend| state.store.atomic_once(&write, Some(id.as_bytes()), resend);
    let output = match resolve::resolve(attempt, resolve::RESOLVE_FOR, resolve::BACKOFF).await? {
        AtomicOutcome::Committed(committed) => pb::AtomicWriteOutput {
            status: pb::AtomicWriteStatus::AwSuccess as i32,
            versionstamp: committed.versionstamp.as_bytes().to_vec(),
            failed_checks: Vec::new(),
        },
        AtomicOutcome::CheckFailed(failed) => pb::AtomicWriteOutput {
            status: pb::AtomicWriteStatus::AwCheckFailure as i32,
            versionstamp: Vec::new(),
            failed_checks: failed.into_iter().map(|i| i as u32).collect(),
        },
    };
    Ok(ProtobufResponse(output))
}
