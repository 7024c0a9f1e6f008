//! The one place that turns domain errors into gRPC statuses, each with its stable code
//! (the code <-> status mapping itself is edgekv-proto's [`grpc_status`], shared with the
//! SDK).
//!
//! [`grpc_status`]: edgekv_proto::grpc_status

use edgekv_proto::ErrorCode;
use tonic::Status;

use edgekv_proto::grpc_status::status;

use crate::auth::AuthError;
use crate::kv::KvError;

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        status(error.code(), error.to_string())
    }
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
