//! The one place that turns domain errors into gRPC statuses. Every status carries the
//! stable code in the `edgekv-error-code` metadata; the gRPC status code is chosen so
//! generic gRPC tooling (retry policies, dashboards) also does the right thing.

use edgekv_proto::{ERROR_CODE_METADATA, ErrorCode};
use tonic::{Code, Status};

use crate::kv::KvError;

fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::KeyTooLarge
        | ErrorCode::ValueTooLarge
        | ErrorCode::MetadataTooLarge
        | ErrorCode::TooManyMutations
        | ErrorCode::TooManyChecks
        | ErrorCode::TooManyKeys
        | ErrorCode::RequestTooLarge
        | ErrorCode::KeyMalformed
        | ErrorCode::ValueMalformed
        | ErrorCode::MetadataMalformed
        | ErrorCode::InvalidArgument
        | ErrorCode::InvalidRange
        | ErrorCode::InvalidCursor
        | ErrorCode::InvalidExpiry => Code::InvalidArgument,
        ErrorCode::TypeMismatch | ErrorCode::SumOutOfRange | ErrorCode::RangeTooLarge => Code::FailedPrecondition,
        ErrorCode::Unavailable | ErrorCode::ShuttingDown => Code::Unavailable,
        // Not UNAVAILABLE: generic gRPC retry policies retry that, and this write may
        // already have been applied.
        ErrorCode::OutcomeUnknown => Code::Aborted,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::MembershipChangeFailed
        | ErrorCode::FaultInjectionDisabled
        | ErrorCode::UnsupportedForCacheClass
        | ErrorCode::MixedClasses
        | ErrorCode::KeyspaceNotEmpty
        | ErrorCode::ClockSkew => Code::FailedPrecondition,
        ErrorCode::StorageFull => Code::ResourceExhausted,
        ErrorCode::StorageError | ErrorCode::Internal => Code::Internal,
        ErrorCode::DataCorrupted => Code::DataLoss,
        ErrorCode::Unauthenticated => Code::Unauthenticated,
    }
}

/// A status with a stable code and a message for people.
pub fn status(code: ErrorCode, message: impl Into<String>) -> Status {
    let mut status = Status::new(grpc_code(code), message);
    status.metadata_mut().insert(
        ERROR_CODE_METADATA,
        code.as_str().parse().expect("error codes are ASCII"),
    );
    status
}

impl From<crate::raft::ConsensusError> for Status {
    fn from(error: crate::raft::ConsensusError) -> Self {
        Status::from(KvError::from(error))
    }
}

impl From<KvError> for Status {
    fn from(error: KvError) -> Self {
        let code = error.code();
        if matches!(
            code,
            ErrorCode::StorageError | ErrorCode::DataCorrupted | ErrorCode::Internal
        ) {
            tracing::error!(%error, %code, "request failed inside the node");
        }
        status(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_carries_its_code() {
        for code in ErrorCode::ALL {
            let status = status(*code, "m");
            let sent = status.metadata().get(ERROR_CODE_METADATA).unwrap().to_str().unwrap();
            assert_eq!(sent, code.as_str());
        }
    }
}
