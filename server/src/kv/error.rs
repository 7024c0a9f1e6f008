//! Errors of the key-value domain, each with its stable [`ErrorCode`].

use edgekv_proto::ErrorCode;

use crate::auth::AuthError;
use crate::raft::ConsensusError;
use crate::storage::StorageError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum KvError {
    #[error("key is {len} bytes encoded; the limit is {limit}")]
    KeyTooLarge { len: usize, limit: usize },
    #[error("{0}")]
    KeyMalformed(String),
    #[error("value is {len} bytes; the limit is {limit}")]
    ValueTooLarge { len: usize, limit: usize },
    #[error("{0}")]
    ValueMalformed(String),
    #[error("metadata is {len} bytes; the limit is {limit}")]
    MetadataTooLarge { len: usize, limit: usize },
    #[error("metadata is not valid JSON: {0}")]
    MetadataMalformed(String),
    #[error("atomic write has {count} mutations; the limit is {limit}")]
    TooManyMutations { count: usize, limit: usize },
    #[error("atomic write has {count} checks; the limit is {limit}")]
    TooManyChecks { count: usize, limit: usize },
    #[error("request names {count} keys; the limit is {limit}")]
    TooManyKeys { count: usize, limit: usize },
    #[error("atomic write is {len} bytes; the limit is {limit}")]
    RequestTooLarge { len: usize, limit: usize },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRange(String),
    #[error("{0}")]
    InvalidCursor(String),
    #[error("{0}")]
    InvalidExpiry(String),
    #[error("cannot apply {operation} to key {key}: the stored value is {found}, not a u64")]
    TypeMismatch {
        operation: &'static str,
        key: String,
        found: String,
    },
    #[error("cannot apply {operation} to cache key {key}: it holds {found}; delete it first")]
    KindMismatch {
        operation: &'static str,
        key: String,
        found: &'static str,
    },
    #[error("sum on key {key}: {reason}")]
    SumTypeMismatch { key: String, reason: String },
    #[error("sum on key {key} is outside the given min/max bounds (and clamp is off)")]
    SumOutOfRange { key: String },
    #[error("delete-range covers more than {limit} keys; delete it in smaller ranges")]
    RangeTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedForCacheClass(String),
    #[error("{0}")]
    MixedClasses(String),
    #[error("{0}")]
    KeyspaceNotEmpty(String),
    #[error("the node is shutting down")]
    ShuttingDown,
    /// Refused while being applied by the state machine (possibly on another node); the
    /// code is the one the applying node chose.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// A write refused because its keys changed class on the way, which this node could
    /// not route again: it could not catch up with the rule that refused it.
    #[error(
        "this write's keys changed class while it was on its way, and this node could not catch up \
         with the new rule to route it again ({0}); nothing was written"
    )]
    ClassChangeUnresolved(ConsensusError),
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Refused by the request's token before anything was read or written.
    #[error(transparent)]
    Denied(#[from] AuthError),
}

impl KvError {
    pub fn code(&self) -> ErrorCode {
        match self {
            KvError::KeyTooLarge { .. } => ErrorCode::KeyTooLarge,
            KvError::KeyMalformed(_) => ErrorCode::KeyMalformed,
            KvError::ValueTooLarge { .. } => ErrorCode::ValueTooLarge,
            KvError::ValueMalformed(_) => ErrorCode::ValueMalformed,
            KvError::MetadataTooLarge { .. } => ErrorCode::MetadataTooLarge,
            KvError::MetadataMalformed(_) => ErrorCode::MetadataMalformed,
            KvError::TooManyMutations { .. } => ErrorCode::TooManyMutations,
            KvError::TooManyChecks { .. } => ErrorCode::TooManyChecks,
            KvError::TooManyKeys { .. } => ErrorCode::TooManyKeys,
            KvError::RequestTooLarge { .. } => ErrorCode::RequestTooLarge,
            KvError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            KvError::InvalidRange(_) => ErrorCode::InvalidRange,
            KvError::InvalidCursor(_) => ErrorCode::InvalidCursor,
            KvError::InvalidExpiry(_) => ErrorCode::InvalidExpiry,
            KvError::TypeMismatch { .. } | KvError::SumTypeMismatch { .. } | KvError::KindMismatch { .. } => {
                ErrorCode::TypeMismatch
            }
            KvError::SumOutOfRange { .. } => ErrorCode::SumOutOfRange,
            KvError::RangeTooLarge { .. } => ErrorCode::RangeTooLarge,
            KvError::UnsupportedForCacheClass(_) => ErrorCode::UnsupportedForCacheClass,
            KvError::MixedClasses(_) => ErrorCode::MixedClasses,
            KvError::KeyspaceNotEmpty(_) => ErrorCode::KeyspaceNotEmpty,
            KvError::ShuttingDown => ErrorCode::ShuttingDown,
            KvError::Refused { code, .. } => *code,
            KvError::Consensus(error) | KvError::ClassChangeUnresolved(error) => error.code(),
            KvError::Storage(error) => error.code(),
            KvError::Denied(error) => error.code(),
        }
    }
}

impl KvError {
    pub(crate) fn from_sum(error: super::v8_sum::SumError, key: &[u8]) -> Self {
        let key = edgekv_proto::key::display_encoded(key);
        match error {
            super::v8_sum::SumError::Type(reason) => KvError::SumTypeMismatch { key, reason },
            super::v8_sum::SumError::OutOfRange => KvError::SumOutOfRange { key },
        }
    }
}

pub type KvResult<T> = Result<T, KvError>;
