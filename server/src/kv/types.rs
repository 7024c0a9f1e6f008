//! The domain's requests and answers, independent of any wire protocol. Front-ends
//! translate into these; [`super::validate`] checks them against the limits.

use edgekv_proto::Versionstamp;
use edgekv_proto::v1::ValueEncoding;
use serde::{Deserialize, Serialize};

use crate::storage::codec::Envelope;

/// Whether a read must reflect every acknowledged write or may be served locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    Strong,
    Eventual,
}

/// A live entry as reads return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub envelope: Envelope,
}

/// When a value set by an atomic write expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// Milliseconds after the commit.
    In(u64),
    /// Absolute milliseconds since the Unix epoch.
    At(u64),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub key: Vec<u8>,
    /// `None`: the key must not exist (or be expired).
    pub versionstamp: Option<Versionstamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NumericOp {
    Sum,
    Min,
    Max,
}

impl NumericOp {
    pub fn name(self) -> &'static str {
        match self {
            NumericOp::Sum => "sum",
            NumericOp::Min => "min",
            NumericOp::Max => "max",
        }
    }

    /// Sum wraps around on overflow, as Deno KV's does.
    pub fn apply(self, current: u64, operand: u64) -> u64 {
        match self {
            NumericOp::Sum => current.wrapping_add(operand),
            NumericOp::Min => current.min(operand),
            NumericOp::Max => current.max(operand),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mutation {
    Set {
        key: Vec<u8>,
        #[serde(with = "encoding_serde")]
        encoding: ValueEncoding,
        value: Vec<u8>,
        expiry: Option<Expiry>,
        metadata: Option<String>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Replaces a u64 value with `op(current, operand)`, or sets `operand` when absent.
    Numeric {
        op: NumericOp,
        key: Vec<u8>,
        operand: u64,
    },
    /// Deletes every key in `[start, end)`.
    DeleteRange {
        start: Vec<u8>,
        end: Vec<u8>,
    },
    /// Deno KV's sum on V8-serialized JavaScript numbers or bigints, with optional bounds
    /// (V8-serialized, empty when absent) that either clamp the result or fail the write.
    /// A u64 operand behaves as [`NumericOp::Sum`].
    SumV8 {
        key: Vec<u8>,
        operand: Vec<u8>,
        min: Vec<u8>,
        max: Vec<u8>,
        clamp: bool,
    },
    /// Adds a member to a cache key's OR-set (cache class only).
    SetAdd {
        key: Vec<u8>,
        member: String,
    },
    /// Removes a member from a cache key's OR-set (cache class only).
    SetRemove {
        key: Vec<u8>,
        member: String,
    },
    /// Sets the key `prefix` + a string part holding the write's versionstamp in hex, as
    /// Deno KV's versionstamped keys do (unique, commit-ordered keys without a read).
    SetVersionstampedKey {
        prefix: Vec<u8>,
        #[serde(with = "encoding_serde")]
        encoding: ValueEncoding,
        value: Vec<u8>,
        expiry: Option<Expiry>,
    },
}

/// What a mutation writes, for the checks that look at keys rather than at what is done
/// to them (class routing, token scopes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// One key. A versionstamped key is named by its prefix: the key made at commit is the
    /// prefix plus one part, so whatever holds for every key under the prefix holds for it.
    Key(&'a [u8]),
    /// Every key in `[start, end)`.
    Range { start: &'a [u8], end: &'a [u8] },
}

impl Mutation {
    pub fn target(&self) -> Target<'_> {
        match self {
            Mutation::Set { key, .. }
            | Mutation::Delete { key }
            | Mutation::Numeric { key, .. }
            | Mutation::SumV8 { key, .. }
            | Mutation::SetAdd { key, .. }
            | Mutation::SetRemove { key, .. } => Target::Key(key),
            Mutation::SetVersionstampedKey { prefix, .. } => Target::Key(prefix),
            Mutation::DeleteRange { start, end } => Target::Range { start, end },
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtomicWrite {
    pub checks: Vec<Check>,
    pub mutations: Vec<Mutation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AtomicOutcome {
    Committed(Committed),
    /// Indices of the checks that failed; nothing was written.
    CheckFailed(Vec<usize>),
}

/// A committed atomic write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub versionstamp: Versionstamp,
    /// The value each sum, min or max mutation left its key with, by the mutation's index
    /// in the write (a later mutation of the same write may change the key again).
    pub numeric_results: Vec<(usize, u64)>,
}

/// Which keys a list covers, in Deno KV's selector vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub prefix: Option<Vec<u8>>,
    pub start: Option<Vec<u8>>,
    pub end: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub selector: Selector,
    /// Entries in this page (already clamped to the page limit by validation).
    pub limit: usize,
    pub reverse: bool,
    pub cursor: Option<String>,
    pub keys_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<Entry>,
    /// Where the next page starts; `None` when the range is exhausted.
    pub cursor: Option<String>,
}

/// What a read reports about how it was served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadInfo {
    pub consistency: Consistency,
    /// Whether the answer reflects every write acknowledged before the read, whatever
    /// consistency was asked for (true on a single node).
    pub strongly_consistent: bool,
    pub staleness_ms: u64,
}

/// One range of a multi-range snapshot read: `[start, end)`, at most `limit` live entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRead {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub limit: usize,
    pub reverse: bool,
}

/// Value encodings travel in the Raft log as their protobuf numbers.
mod encoding_serde {
    use edgekv_proto::v1::ValueEncoding;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(encoding: &ValueEncoding, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(*encoding as i32)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ValueEncoding, D::Error> {
        let number = i32::deserialize(deserializer)?;
        ValueEncoding::try_from(number)
            .map_err(|_| serde::de::Error::custom(format!("unknown value encoding {number}")))
    }
}
