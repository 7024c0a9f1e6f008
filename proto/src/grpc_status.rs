//! Stable error codes on gRPC, both ways, for the server and the SDK alike: the gRPC
//! status code each [`ErrorCode`] travels with, the `edgekv-error-code` metadata that
//! carries it, and reading it back from a status; and the `edgekv-leader` hint a follower
//! adds to its answers, written and read here alone.
//!
//! The gRPC code is chosen so generic gRPC tooling (retry policies, dashboards) does the
//! right thing without knowing edgekv's codes; a client matches on the stable code.

use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::error_code::{ERROR_CODE_METADATA, ErrorCode, LEADER_METADATA};

impl ErrorCode {
    /// The gRPC status code a failure with this code is sent with.
    pub fn grpc_code(self) -> Code {
        match self {
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
            ErrorCode::PermissionDenied => Code::PermissionDenied,
        }
    }
}

/// A status with a stable code and a message for people.
pub fn status(code: ErrorCode, message: impl Into<String>) -> Status {
    status_with_grpc_code(code.grpc_code(), code, message)
}

/// A status with a stable code but another gRPC code than the usual one: for a peer
/// protocol whose callers branch on the gRPC code.
pub fn status_with_grpc_code(grpc_code: Code, code: ErrorCode, message: impl Into<String>) -> Status {
    let mut status = Status::new(grpc_code, message);
    status.metadata_mut().insert(
        ERROR_CODE_METADATA,
        code.as_str().parse().expect("error codes are ASCII"),
    );
    status
}

/// Whether a status came from edgekv (it carries a code, even one this version does not
/// know), as opposed to the transport.
pub fn carries_code(status: &Status) -> bool {
    status.metadata().get(ERROR_CODE_METADATA).is_some()
}

/// The stable code a status carries, if it came from edgekv (a transport failure, or a
/// node too old to know the code, carries none).
pub fn code_of(status: &Status) -> Option<ErrorCode> {
    status
        .metadata()
        .get(ERROR_CODE_METADATA)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
}

/// The code a status without one stands for, where its gRPC code says it unambiguously:
/// tonic itself answers UNAUTHENTICATED to a refused token and OUT_OF_RANGE to a message
/// over the size limit, before edgekv sees the request. Every other code-less status is a
/// transport failure, which each caller judges itself (a write's may be indefinite).
pub fn code_implied_by_transport(status: &Status) -> Option<ErrorCode> {
    if carries_code(status) {
        return None;
    }
    match status.code() {
        Code::Unauthenticated => Some(ErrorCode::Unauthenticated),
        Code::OutOfRange => Some(ErrorCode::RequestTooLarge),
        _ => None,
    }
}

/// Names the leader's client address (`host:port`) in an answer's or a refusal's metadata.
/// An address that cannot travel as metadata is left out: the hint is an optimisation.
pub fn name_leader(metadata: &mut MetadataMap, leader_addr: &str) {
    if let Ok(value) = leader_addr.parse() {
        metadata.insert(LEADER_METADATA, value);
    }
}

/// The leader's client address an answer or a refusal names, if it names one.
pub fn leader_named(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get(LEADER_METADATA)
        .and_then(|value| value.to_str().ok())
        .filter(|addr| !addr.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_a_status() {
        for code in ErrorCode::ALL {
            let sent = status(*code, "message");
            assert_eq!(sent.code(), code.grpc_code());
            assert_eq!(code_of(&sent), Some(*code));
        }
        assert_eq!(code_of(&Status::unavailable("transport")), None);
        assert!(!carries_code(&Status::unavailable("transport")));
        let mut newer = Status::unavailable("from a newer node");
        newer
            .metadata_mut()
            .insert(ERROR_CODE_METADATA, "SOME_NEW_CODE".parse().unwrap());
        assert!(carries_code(&newer) && code_of(&newer).is_none());
        assert_eq!(
            code_implied_by_transport(&Status::out_of_range("too big")),
            Some(ErrorCode::RequestTooLarge)
        );
        assert_eq!(code_implied_by_transport(&status(ErrorCode::TooManyKeys, "m")), None);
        assert_eq!(code_implied_by_transport(&Status::unavailable("gone")), None);
    }

    #[test]
    fn a_named_leader_reads_back() {
        let mut refusal = status(ErrorCode::Unavailable, "not the leader");
        assert_eq!(leader_named(refusal.metadata()), None);
        name_leader(refusal.metadata_mut(), "10.0.0.7:7070");
        assert_eq!(leader_named(refusal.metadata()), Some("10.0.0.7:7070"));
        let mut unusable = MetadataMap::new();
        name_leader(&mut unusable, "bad\naddress");
        assert_eq!(leader_named(&unusable), None);
    }
}
