//! What a request touches, checked against who sends it. Every front-end calls these with
//! the request's [`Principal`] before handing it to the store, so a key outside the token's
//! scope is refused the same way on gRPC and on KV Connect, and nothing of it is applied.
//!
//! Reads need read access to every key they name or range they cover (a list is checked
//! over its whole selector, so one that starts inside the scope and runs out of it is
//! refused). An atomic write needs read access to each checked key (a check reveals
//! whether the key exists and its versionstamp) and write access to each mutated key or
//! range; one part outside the scope refuses the whole write.

use super::error::KvResult;
use super::range;
use super::types::{AtomicWrite, Mutation, RangeRead, Selector};
use crate::auth::Principal;

/// Point reads (get, get-many, watch).
pub fn authorize_reads<'k>(principal: &Principal, keys: impl IntoIterator<Item = &'k [u8]>) -> KvResult<()> {
    for key in keys {
        principal.require_read(key)?;
    }
    Ok(())
}

/// A list: its selector resolved to the byte range it covers (an invalid selector is
/// refused for what it is, before access is judged).
pub fn authorize_list(principal: &Principal, selector: &Selector) -> KvResult<()> {
    let bounds = range::resolve(selector)?;
    principal.require_read_range(&bounds.start, &bounds.end)?;
    Ok(())
}

/// Range reads as KV Connect sends them (`[start, end)` each).
pub fn authorize_ranges(principal: &Principal, ranges: &[RangeRead]) -> KvResult<()> {
    for range in ranges {
        principal.require_read_range(&range.start, &range.end)?;
    }
    Ok(())
}

/// Every check and mutation of an atomic write.
pub fn authorize_atomic(principal: &Principal, write: &AtomicWrite) -> KvResult<()> {
    for check in &write.checks {
        principal.require_read(&check.key)?;
    }
    for mutation in &write.mutations {
        match mutation {
            Mutation::Set { key, .. }
            | Mutation::Delete { key }
            | Mutation::Numeric { key, .. }
            | Mutation::SumV8 { key, .. }
            | Mutation::SetAdd { key, .. }
            | Mutation::SetRemove { key, .. } => principal.require_write(key)?,
            Mutation::DeleteRange { start, end } => principal.require_write_range(start, end)?,
            // The key written is `prefix` plus one part, unknown until commit: writable
            // wherever the prefix key is, since a scope covering it covers all under it.
            Mutation::SetVersionstampedKey { prefix, .. } => principal.require_write(prefix)?,
        }
    }
    Ok(())
}
