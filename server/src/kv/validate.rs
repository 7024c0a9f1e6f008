//! Limit and shape checks for every request, before anything touches storage. One place,
//! so gRPC, KV Connect and any later front-end refuse exactly the same inputs, and the
//! leader refuses them too when a peer forwards them (`KvApplier::check_proposal`).

use edgekv_proto::Key;
use edgekv_proto::limits::*;
use edgekv_proto::v1::ValueEncoding;

use super::error::{KvError, KvResult};
use super::types::{AtomicWrite, Expiry, Mutation};
use crate::ttl::DueExpiry;
use crate::ttl::sweeper::SWEEP_BATCH;

/// Bytes a versionstamped key adds to its prefix: a string part of 20 hex digits.
pub const VERSIONSTAMP_SUFFIX_LEN: usize = 22;

/// A key named by a write: non-empty, canonical tuple encoding, within the write limit.
pub fn write_key(key: &[u8]) -> KvResult<()> {
    key_with_limit(key, MAX_KEY_BYTES)
}

/// A key named by a read: the read limit is one byte larger (see limits).
pub fn read_key(key: &[u8]) -> KvResult<()> {
    key_with_limit(key, MAX_READ_KEY_BYTES)
}

fn key_with_limit(key: &[u8], limit: usize) -> KvResult<()> {
    if key.len() > limit {
        return Err(KvError::KeyTooLarge { len: key.len(), limit });
    }
    if key.is_empty() {
        return Err(KvError::KeyMalformed(
            "the key is empty; a key needs at least one part".into(),
        ));
    }
    Key::decode(key).map_err(|e| KvError::KeyMalformed(e.to_string()))?;
    Ok(())
}

/// A range bound: any bytes within the read limit (bounds need not be keys themselves,
/// since prefix ends are not valid tuple encodings).
pub fn range_bound(bound: &[u8]) -> KvResult<()> {
    if bound.len() > MAX_READ_KEY_BYTES {
        return Err(KvError::KeyTooLarge {
            len: bound.len(),
            limit: MAX_READ_KEY_BYTES,
        });
    }
    Ok(())
}

/// The prefix of a class rule: empty (every key) or a range bound.
pub fn class_prefix(prefix: &[u8]) -> KvResult<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    range_bound(prefix)
}

/// A write's request id: 1 to [`MAX_REQUEST_ID_BYTES`] bytes.
///
/// [`MAX_REQUEST_ID_BYTES`]: super::requests::MAX_REQUEST_ID_BYTES
pub fn request_id(id: &[u8]) -> KvResult<()> {
    let limit = super::requests::MAX_REQUEST_ID_BYTES;
    if id.is_empty() || id.len() > limit {
        return Err(KvError::InvalidArgument(format!(
            "a request id is 1 to {limit} bytes, not {}",
            id.len()
        )));
    }
    Ok(())
}

/// Due expiries as the sweeper hands them over: at most one sweep's batch, each naming a
/// key within the write limit (every stored key is).
pub fn expiries(due: &[DueExpiry]) -> KvResult<()> {
    if due.len() > SWEEP_BATCH {
        return Err(KvError::TooManyKeys {
            count: due.len(),
            limit: SWEEP_BATCH,
        });
    }
    for entry in due {
        if entry.key.len() > MAX_KEY_BYTES {
            return Err(KvError::KeyTooLarge {
                len: entry.key.len(),
                limit: MAX_KEY_BYTES,
            });
        }
    }
    Ok(())
}

pub fn value(encoding: ValueEncoding, value: &[u8]) -> KvResult<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::ValueTooLarge {
            len: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    match encoding {
        ValueEncoding::Utf8 => {
            std::str::from_utf8(value)
                .map_err(|e| KvError::ValueMalformed(format!("value is declared UTF-8 but is not: {e}")))?;
        }
        ValueEncoding::Json => {
            serde_json::from_slice::<serde::de::IgnoredAny>(value)
                .map_err(|e| KvError::ValueMalformed(format!("value is declared JSON but is not: {e}")))?;
        }
        ValueEncoding::U64 if value.len() != 8 => {
            return Err(KvError::ValueMalformed(format!(
                "a u64 value is 8 bytes, got {}",
                value.len()
            )));
        }
        ValueEncoding::U64 | ValueEncoding::Bytes | ValueEncoding::V8 => {}
    }
    Ok(())
}

pub fn metadata(metadata: &str) -> KvResult<()> {
    if metadata.len() > MAX_METADATA_BYTES {
        return Err(KvError::MetadataTooLarge {
            len: metadata.len(),
            limit: MAX_METADATA_BYTES,
        });
    }
    serde_json::from_str::<serde::de::IgnoredAny>(metadata).map_err(|e| KvError::MetadataMalformed(e.to_string()))?;
    Ok(())
}

pub fn expiry(expiry: Expiry) -> KvResult<()> {
    match expiry {
        Expiry::In(0) => Err(KvError::InvalidExpiry("expire_in must be at least 1 ms".into())),
        Expiry::In(ms) if ms > MAX_EXPIRE_IN_MS => Err(KvError::InvalidExpiry(format!(
            "expire_in of {ms} ms is more than 10 years; did you pass an absolute time? use expire_at for that"
        ))),
        Expiry::At(0) => Err(KvError::InvalidExpiry(
            "expire_at must be a time after the Unix epoch".into(),
        )),
        _ => Ok(()),
    }
}

pub fn atomic(write: &AtomicWrite) -> KvResult<()> {
    if write.checks.len() > MAX_CHECKS {
        return Err(KvError::TooManyChecks {
            count: write.checks.len(),
            limit: MAX_CHECKS,
        });
    }
    if write.mutations.len() > MAX_MUTATIONS {
        return Err(KvError::TooManyMutations {
            count: write.mutations.len(),
            limit: MAX_MUTATIONS,
        });
    }
    let mut total = 0usize;
    for check in &write.checks {
        read_key(&check.key)?;
        total += check.key.len() + 10;
    }
    for mutation in &write.mutations {
        total += match mutation {
            Mutation::Set {
                key,
                encoding,
                value: bytes,
                expiry: when,
                metadata: meta,
            } => {
                write_key(key)?;
                value(*encoding, bytes)?;
                if let Some(when) = when {
                    expiry(*when)?;
                }
                if let Some(meta) = meta {
                    metadata(meta)?;
                }
                key.len() + bytes.len() + meta.as_ref().map_or(0, String::len)
            }
            Mutation::Delete { key } => {
                write_key(key)?;
                key.len()
            }
            Mutation::Numeric { key, .. } => {
                write_key(key)?;
                key.len() + 8
            }
            Mutation::SetAdd { key, member } | Mutation::SetRemove { key, member } => {
                write_key(key)?;
                if member.len() > edgekv_proto::limits::MAX_SET_MEMBER_BYTES {
                    return Err(KvError::ValueTooLarge {
                        len: member.len(),
                        limit: edgekv_proto::limits::MAX_SET_MEMBER_BYTES,
                    });
                }
                key.len() + member.len()
            }
            Mutation::SumV8 {
                key, operand, min, max, ..
            } => {
                write_key(key)?;
                key.len() + operand.len() + min.len() + max.len()
            }
            Mutation::SetVersionstampedKey {
                prefix,
                encoding,
                value: bytes,
                expiry: when,
            } => {
                // The suffix adds 22 bytes; the prefix must leave room for it.
                if prefix.len() + VERSIONSTAMP_SUFFIX_LEN > MAX_KEY_BYTES {
                    return Err(KvError::KeyTooLarge {
                        len: prefix.len() + VERSIONSTAMP_SUFFIX_LEN,
                        limit: MAX_KEY_BYTES,
                    });
                }
                if !prefix.is_empty() {
                    Key::decode(prefix).map_err(|e| KvError::KeyMalformed(e.to_string()))?;
                }
                value(*encoding, bytes)?;
                if let Some(when) = when {
                    expiry(*when)?;
                }
                prefix.len() + bytes.len()
            }
            Mutation::DeleteRange { start, end } => {
                range_bound(start)?;
                range_bound(end)?;
                if start > end {
                    return Err(KvError::InvalidRange("delete-range start is after its end".into()));
                }
                start.len() + end.len()
            }
        };
    }
    if total > MAX_ATOMIC_BYTES {
        return Err(KvError::RequestTooLarge {
            len: total,
            limit: MAX_ATOMIC_BYTES,
        });
    }
    Ok(())
}
