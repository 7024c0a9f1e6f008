//! SDK errors. Every error says whether retrying is safe. A write whose outcome stays
//! unknown is reported as [`Error::Indefinite`]: a strong write after the SDK sent it again
//! under its request id until its deadline (it applies at most once), a cache-class write
//! as soon as the node refuses a copy of it (cache writes are not deduplicated yet).

use edgekv_proto::{ErrorCode, KeyError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused or failed the request and said why.
    #[error("{code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// The node could not be reached; a read can be retried, and a write was not sent.
    #[error("UNAVAILABLE: {0}")]
    Unavailable(String),
    /// A write was sent but no definite answer came back, also after it was sent again
    /// until its deadline: it may or may not have been applied (the message names the
    /// request id a strong write may still apply under, at most once). Read the key (or
    /// check its versionstamp) before deciding to write again.
    #[error("INDEFINITE: the write may or may not have been applied: {0}")]
    Indefinite(String),
    #[error("invalid key: {0}")]
    Key(#[from] KeyError),
    #[error("invalid value: {0}")]
    Value(String),
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl Error {
    /// The stable code of this error, where there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            Error::Unavailable(_) => Some(ErrorCode::Unavailable),
            _ => None,
        }
    }

    /// Whether sending the same request again is safe and may succeed.
    pub fn is_retry_safe(&self) -> bool {
        match self {
            Error::Server { code, .. } => code.is_retryable(),
            Error::Unavailable(_) => true,
            _ => false,
        }
    }

    /// Whether this is a write whose outcome is unknown: no answer came back, or the
    /// cluster lost its leader or quorum after the write was proposed (`OUTCOME_UNKNOWN`).
    pub fn is_indefinite(&self) -> bool {
        matches!(
            self,
            Error::Indefinite(_)
                | Error::Server {
                    code: ErrorCode::OutcomeUnknown,
                    ..
                }
        )
    }

    /// Classifies a failed call. `write` marks calls that change data: when the server did
    /// not answer with a code, they become indefinite rather than retryable.
    pub(crate) fn from_status(status: tonic::Status, write: bool) -> Self {
        if let Some(code) = edgekv_proto::grpc_status::code_of(&status) {
            return Error::Server {
                code,
                message: status.message().to_string(),
            };
        }
        // A status made from a transport failure hides its cause (a refused TLS handshake,
        // a reset connection) in its sources.
        let transport = std::error::Error::source(&status);
        let message = match transport {
            Some(cause) => format!("{}: {} ({:?})", status.message(), chain(cause), status.code()),
            None => format!("{} ({:?})", status.message(), status.code()),
        };
        // A refused token, or a message over the size limit refused before the server read
        // it: definite, whatever the call was.
        if let Some(code) = edgekv_proto::grpc_status::code_implied_by_transport(&status) {
            return Error::Server { code, message };
        }
        match status.code() {
            // A write whose call broke without an answer from edgekv (no code): it may
            // have been applied. Internal covers HTTP/2 protocol errors mid-call.
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
            | tonic::Code::Internal
                if write =>
            {
                Error::Indefinite(message)
            }
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                Error::Unavailable(message)
            }
            // The connection failed under a read: no answer, not a wrong one.
            _ if transport.is_some() => Error::Unavailable(message),
            _ => Error::Protocol(message),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a failed call never reached the server: the connection was refused or could not
/// be made. Only then may a write move on to another node.
pub(crate) fn is_connect_refusal(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    if status.code() != tonic::Code::Unavailable || edgekv_proto::grpc_status::carries_code(status) {
        return false;
    }
    let mut source = status.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            );
        }
        if cause.to_string().contains("tcp connect error") {
            return true;
        }
        source = cause.source();
    }
    false
}

/// An error and its causes on one line ("a: b: c"): transport errors hide the useful part
/// (connection refused, DNS) in their sources.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
