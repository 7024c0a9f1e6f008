//! The one place KV Connect errors become HTTP responses: a status and a plain-text body
//! a person can read, as the protocol asks (clients show the body to the user).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use denokv_proto::ConvertError;
use edgekv_proto::ErrorCode;

use crate::auth::AuthError;
use crate::kv::KvError;

#[derive(Debug, thiserror::Error)]
pub enum KvConnectError {
    #[error("missing or malformed Authorization header; send `Authorization: Bearer <token>`")]
    MissingToken,
    #[error("invalid access token")]
    InvalidAccessToken,
    #[error("the data path token is unknown or expired; perform the metadata exchange again")]
    InvalidDataPathToken,
    #[error("{0}")]
    BadRequest(String),
    #[error("queues (enqueue / listenQueue) are not supported by edgekv; the atomic write was not applied")]
    QueuesUnsupported,
    #[error("resource not found")]
    NotFound,
    #[error("{0}")]
    Kv(#[from] KvError),
    /// A signed token refused (missing, malformed, badly signed, expired) or a request
    /// outside its scope.
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ConvertError> for KvConnectError {
    fn from(error: ConvertError) -> Self {
        let message = match error {
            ConvertError::KeyTooLong => "a key exceeds the key size limit",
            ConvertError::ValueTooLong => "a value exceeds the value size limit (64 KiB over KV Connect)",
            ConvertError::ReadRangeTooLarge => "the read asks for more than 1000 entries across its ranges",
            ConvertError::AtomicWriteTooLarge => "the atomic write exceeds the total size limit",
            ConvertError::TooManyReadRanges => "too many read ranges in one read (at most 10)",
            ConvertError::TooManyChecks => "too many checks in one atomic write (at most 10 over KV Connect)",
            ConvertError::TooManyMutations => "too many mutations in one atomic write (at most 1000)",
            ConvertError::TooManyQueueUndeliveredKeys => "too many undelivered keys for a queue message",
            ConvertError::TooManyQueueBackoffIntervals => "too many backoff intervals for a queue message",
            ConvertError::QueueBackoffIntervalTooLarge => "a queue backoff interval is too large",
            ConvertError::InvalidReadRangeLimit => "a read range limit must be between 1 and 1000",
            ConvertError::DecodeError => "a value has an unknown encoding",
            ConvertError::InvalidVersionstamp => "a versionstamp must be 10 bytes",
            ConvertError::InvalidMutationKind => "invalid mutation kind or arguments",
            ConvertError::InvalidMutationExpireAt => "invalid mutation expire_at_ms",
            ConvertError::InvalidMutationEnqueueDeadline => "invalid enqueue deadline",
            ConvertError::TooManyWatchedKeys => "too many watched keys (at most 10)",
        };
        KvConnectError::BadRequest(message.into())
    }
}

impl KvConnectError {
    fn status(&self) -> StatusCode {
        match self {
            KvConnectError::MissingToken
            | KvConnectError::InvalidAccessToken
            | KvConnectError::InvalidDataPathToken => StatusCode::UNAUTHORIZED,
            KvConnectError::BadRequest(_) | KvConnectError::QueuesUnsupported => StatusCode::BAD_REQUEST,
            KvConnectError::NotFound => StatusCode::NOT_FOUND,
            KvConnectError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            KvConnectError::Kv(error) => http_status(error.code()),
            KvConnectError::Auth(error) => http_status(error.code()),
        }
    }
}

/// The HTTP status of a stable code. Exhaustive: a new code must choose its status here.
fn http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unavailable | ErrorCode::ShuttingDown | ErrorCode::StorageFull => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StorageError | ErrorCode::DataCorrupted | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        // The write may or may not have been applied: the leader did not confirm it in
        // time. Deno's clients send a request again after any 5xx, without limit, which
        // would apply such a write twice; a 4xx reaches the program instead, whose body
        // says to read the key before writing again.
        ErrorCode::OutcomeUnknown => StatusCode::CONFLICT,
        // The request itself cannot be served as sent; Deno's clients show the body.
        ErrorCode::KeyTooLarge
        | ErrorCode::KeyMalformed
        | ErrorCode::ValueTooLarge
        | ErrorCode::ValueMalformed
        | ErrorCode::MetadataTooLarge
        | ErrorCode::MetadataMalformed
        | ErrorCode::TooManyMutations
        | ErrorCode::TooManyChecks
        | ErrorCode::TooManyKeys
        | ErrorCode::RequestTooLarge
        | ErrorCode::InvalidArgument
        | ErrorCode::InvalidRange
        | ErrorCode::InvalidCursor
        | ErrorCode::InvalidExpiry
        | ErrorCode::TypeMismatch
        | ErrorCode::SumOutOfRange
        | ErrorCode::RangeTooLarge
        | ErrorCode::UnsupportedForCacheClass
        | ErrorCode::MixedClasses
        | ErrorCode::KeyspaceNotEmpty
        | ErrorCode::ClockSkew
        | ErrorCode::NotFound
        | ErrorCode::MembershipChangeFailed
        | ErrorCode::FaultInjectionDisabled => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for KvConnectError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            // Same stable codes as the gRPC API, so logs and clients agree.
            KvConnectError::Kv(error) => format!("{}: {error}", error.code()),
            KvConnectError::Auth(error) => format!("{}: {error}", error.code()),
            // Shared tokens refused read as signed ones do.
            KvConnectError::MissingToken
            | KvConnectError::InvalidAccessToken
            | KvConnectError::InvalidDataPathToken => format!("{}: {self}", ErrorCode::Unauthenticated),
            other => other.to_string(),
        };
        if status.is_server_error() {
            tracing::error!(%status, %body, "KV Connect request failed inside the node");
        }
        (status, [("content-type", "text/plain; charset=utf-8")], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_may_have_applied_is_never_answered_with_a_server_error() {
        // Deno's KV Connect clients send a request again after any 5xx, without limit: a
        // write that may already be applied would apply twice.
        let status = http_status(ErrorCode::OutcomeUnknown);
        assert!(status.is_client_error(), "{status}");
        assert_ne!(
            status,
            StatusCode::UNAUTHORIZED,
            "a 401 makes clients exchange and retry"
        );
        // Nothing was written: retrying is safe, and 503 says so.
        assert_eq!(http_status(ErrorCode::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
    }
}
