//! The limits every front-end enforces, in one place so docs/api.md, the server and the
//! SDK agree. Key and value sizes match Deno KV's write limits where Deno has one; the
//! value and check limits are deliberately larger (Workers KV allows 25 MiB values, Deno
//! 64 KiB; 1 MiB keeps a whole atomic write well inside one gRPC message).

/// Largest encoded key accepted in a write.
pub const MAX_KEY_BYTES: usize = 2048;
/// Largest encoded key accepted in a read (one more than writes, as in Deno KV, so a range
/// end just past the largest key is expressible).
pub const MAX_READ_KEY_BYTES: usize = MAX_KEY_BYTES + 1;
/// Largest value, in bytes of its encoding.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Largest metadata, in bytes of its JSON text.
pub const MAX_METADATA_BYTES: usize = 1024;
/// Most mutations in one atomic write.
pub const MAX_MUTATIONS: usize = 1000;
/// Largest member of a cache key's set (`sadd`/`srem`), in bytes of UTF-8.
pub const MAX_SET_MEMBER_BYTES: usize = 1024;
/// Most checks in one atomic write.
pub const MAX_CHECKS: usize = 100;
/// Largest atomic write: keys, values and metadata of all its checks and mutations.
pub const MAX_ATOMIC_BYTES: usize = 8 * 1024 * 1024;
/// Largest gRPC message the server decodes. Twice MAX_ATOMIC_BYTES so that writes just over
/// the atomic limit get the precise REQUEST_TOO_LARGE answer; beyond this the transport
/// refuses with gRPC OUT_OF_RANGE before reading the message, which the SDK reports as
/// REQUEST_TOO_LARGE.
pub const MAX_REQUEST_BYTES: usize = 2 * MAX_ATOMIC_BYTES;
/// Most keys in one GetMany.
pub const MAX_GET_MANY_KEYS: usize = 1000;
/// Most entries in one List page.
pub const MAX_LIST_PAGE: usize = 1000;
/// Page size when a List request leaves `limit` at 0.
pub const DEFAULT_LIST_PAGE: usize = 100;
/// Most keys one delete-range mutation may remove; larger ranges are deleted in several
/// atomic writes so one commit never holds an unbounded batch in memory.
pub const MAX_DELETE_RANGE_KEYS: usize = 10_000;
/// Longest relative expiry: 10 years, far enough for any cache while catching unit
/// mistakes (an absolute timestamp passed as `expire_in`).
pub const MAX_EXPIRE_IN_MS: u64 = 10 * 365 * 24 * 60 * 60 * 1000;
