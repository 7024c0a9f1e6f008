//! List ranges: resolving Deno KV style selectors into byte ranges, and the opaque cursor
//! that resumes a range after the last key a page returned.

use std::ops::Bound;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edgekv_proto::Key;

use super::error::{KvError, KvResult};
use super::types::Selector;
use super::validate;
use crate::storage::ScanRange;

/// The `[start, end)` byte range a selector covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

pub fn resolve(selector: &Selector) -> KvResult<Bounds> {
    for bound in [&selector.prefix, &selector.start, &selector.end].into_iter().flatten() {
        validate::range_bound(bound)?;
    }
    let bounds = match (&selector.prefix, &selector.start, &selector.end) {
        (Some(prefix), None, None) => Bounds {
            start: Key::prefix_start(prefix),
            end: Key::prefix_end(prefix),
        },
        (Some(prefix), Some(start), None) => {
            // Strictly under the prefix, as in Deno KV: the prefix key itself is not listed.
            if !start.starts_with(prefix) || start.len() == prefix.len() {
                return Err(KvError::InvalidRange(
                    "start must be a key strictly under the prefix".into(),
                ));
            }
            Bounds {
                start: start.clone(),
                end: Key::prefix_end(prefix),
            }
        }
        (Some(prefix), None, Some(end)) => {
            if !end.starts_with(prefix) || end.len() == prefix.len() {
                return Err(KvError::InvalidRange(
                    "end must be a key strictly under the prefix".into(),
                ));
            }
            Bounds {
                start: Key::prefix_start(prefix),
                end: end.clone(),
            }
        }
        (None, Some(start), Some(end)) => Bounds {
            start: start.clone(),
            end: end.clone(),
        },
        (Some(_), Some(_), Some(_)) => {
            return Err(KvError::InvalidRange(
                "give a prefix with start or end, not both".into(),
            ));
        }
        (None, _, _) => {
            return Err(KvError::InvalidRange(
                "a list needs a prefix (an empty prefix lists everything), or both start and end".into(),
            ));
        }
    };
    if bounds.start > bounds.end {
        return Err(KvError::InvalidRange("the range starts after it ends".into()));
    }
    Ok(bounds)
}

pub fn encode_cursor(last_key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(last_key)
}

/// The part of `bounds` that comes after the cursor in the scan direction.
pub fn after_cursor(bounds: &Bounds, cursor: Option<&str>, reverse: bool) -> KvResult<ScanRange> {
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(ScanRange::new(bounds.start.clone(), bounds.end.clone()));
    };
    let last = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| KvError::InvalidCursor("the cursor is not one this server issued".into()))?;
    if last < bounds.start || last >= bounds.end {
        return Err(KvError::InvalidCursor("the cursor belongs to a different range".into()));
    }
    Ok(if reverse {
        ScanRange {
            start: Bound::Included(bounds.start.clone()),
            end: Bound::Excluded(last),
        }
    } else {
        ScanRange {
            start: Bound::Excluded(last),
            end: Bound::Excluded(bounds.end.clone()),
        }
    })
}
