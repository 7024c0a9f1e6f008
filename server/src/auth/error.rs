//! Why a request was refused before it reached the domain layer, and the stable code each
//! refusal travels with on every front-end.

use edgekv_proto::ErrorCode;
use edgekv_proto::token::TokenError;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No usable token: missing, malformed, badly signed (or by a rotated-out key), expired.
    /// The message says which, so a client can tell "renew the token" from "wrong token".
    #[error("{0}")]
    Unauthenticated(TokenError),
    /// A valid token that does not allow this request.
    #[error("permission denied: {subject:?} may not {what}")]
    PermissionDenied { subject: String, what: String },
}

impl AuthError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AuthError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        }
    }
}
