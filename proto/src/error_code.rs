//! Stable error codes: the contract between the server and every client.
//!
//! A code never changes meaning once released; new failure modes get new codes. The
//! server sends the code in the `edgekv-error-code` metadata of the gRPC status, so a
//! client matches on the code and shows the message to a person.

use std::fmt;
use std::str::FromStr;

/// Response metadata key carrying the [`ErrorCode`] of a failed call.
pub const ERROR_CODE_METADATA: &str = "edgekv-error-code";
/// Response metadata key a follower adds with the leader's client API address
/// (`host:port`), so a client can send writes and strong reads there directly.
pub(crate) const LEADER_METADATA: &str = "edgekv-leader";

macro_rules! error_codes {
    ($($variant:ident => $text:literal, $retry:literal, $doc:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }

            /// Whether repeating the same request can succeed without changing it. For a
            /// write this says nothing about whether the first attempt took effect.
            pub fn is_retryable(self) -> bool {
                match self { $(ErrorCode::$variant => $retry,)* }
            }

            pub fn description(self) -> &'static str {
                match self { $(ErrorCode::$variant => $doc,)* }
            }
        }

        impl FromStr for ErrorCode {
            type Err = ();
            fn from_str(text: &str) -> Result<Self, ()> {
                match text { $($text => Ok(ErrorCode::$variant),)* _ => Err(()) }
            }
        }
    };
}

error_codes! {
    KeyTooLarge => "KEY_TOO_LARGE", false, "The encoded key exceeds the key size limit.";
    KeyMalformed => "KEY_MALFORMED", false, "The key is not a valid tuple encoding, or is empty where a key is required.";
    ValueTooLarge => "VALUE_TOO_LARGE", false, "The value exceeds the value size limit.";
    ValueMalformed => "VALUE_MALFORMED", false, "The value does not match its declared encoding.";
    MetadataTooLarge => "METADATA_TOO_LARGE", false, "The metadata exceeds the metadata size limit.";
    MetadataMalformed => "METADATA_MALFORMED", false, "The metadata is not valid JSON.";
    TooManyMutations => "TOO_MANY_MUTATIONS", false, "The atomic write has more mutations than allowed.";
    TooManyChecks => "TOO_MANY_CHECKS", false, "The atomic write has more checks than allowed.";
    TooManyKeys => "TOO_MANY_KEYS", false, "The read names more keys than allowed.";
    RequestTooLarge => "REQUEST_TOO_LARGE", false, "The request exceeds the total request size limit.";
    InvalidArgument => "INVALID_ARGUMENT", false, "A field of the request is missing or out of range.";
    InvalidRange => "INVALID_RANGE", false, "The list selector or range is malformed (for example start after end).";
    InvalidCursor => "INVALID_CURSOR", false, "The cursor is malformed or belongs to another range.";
    InvalidExpiry => "INVALID_EXPIRY", false, "The expiry is zero, in the past or too far in the future.";
    TypeMismatch => "TYPE_MISMATCH", false, "A numeric mutation met a stored value that is not a u64.";
    SumOutOfRange => "SUM_OUT_OF_RANGE", false, "A bounded sum left its min/max range and clamp was off; nothing was written.";
    RangeTooLarge => "RANGE_TOO_LARGE", false, "A delete-range mutation covers more keys than one commit may remove.";
    UnsupportedForCacheClass => "UNSUPPORTED_FOR_CACHE_CLASS", false, "The operation needs coordination that cache-class keys do not have: a check, a V8 sum, a versionstamped key or a delete-range on cache keys. Use a strong-class key.";
    MixedClasses => "MIXED_CLASSES", false, "One atomic write names keys of both the strong and the cache class; split it in two.";
    KeyspaceNotEmpty => "KEYSPACE_NOT_EMPTY", false, "Changing the class of a key prefix that already holds data of the other class is refused; delete the data first.";
    ClockSkew => "CLOCK_SKEW", false, "A peer's hybrid clock is further ahead of ours than cache.max_clock_skew allows; its updates are refused until the clocks agree.";
    Unavailable => "UNAVAILABLE", true, "The node cannot serve the request right now (for a strong request: no leader or no quorum within the request timeout); nothing was written; retry, possibly elsewhere.";
    OutcomeUnknown => "OUTCOME_UNKNOWN", false, "The write reached the leader but its outcome is unknown (leadership or quorum was lost before it committed); it may or may not have been applied. Read before retrying.";
    NotFound => "NOT_FOUND", false, "The named cluster member does not exist.";
    MembershipChangeFailed => "MEMBERSHIP_CHANGE_FAILED", false, "The membership change was refused (for example removing the last voter, or another change is in progress).";
    FaultInjectionDisabled => "FAULT_INJECTION_DISABLED", false, "Fault injection is off on this node; start it with --allow-fault-injection (edgekv demo does).";
    ShuttingDown => "SHUTTING_DOWN", true, "The node is shutting down; retry on another node or after restart.";
    StorageFull => "STORAGE_FULL", true, "The node's disk is full; nothing was written.";
    StorageError => "STORAGE_ERROR", false, "The storage engine failed; nothing was written.";
    DataCorrupted => "DATA_CORRUPTED", false, "A stored record could not be decoded.";
    Unauthenticated => "UNAUTHENTICATED", false, "The access token is missing, malformed, signed with an unknown or wrong secret, or expired.";
    PermissionDenied => "PERMISSION_DENIED", false, "The access token is valid but does not allow this request: a key, list or range outside its scopes, a write with a read-only scope, or an admin operation without admin. Nothing was done.";
    Internal => "INTERNAL", false, "An unexpected server error; please report it.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_text() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
            assert!(code.as_str().chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        }
        assert!("NOPE".parse::<ErrorCode>().is_err());
    }
}

#[cfg(test)]
mod docs {
    use super::ErrorCode;

    /// docs/api.md lists every code; a code added here without documentation fails.
    #[test]
    fn every_code_is_documented() {
        let api = include_str!("../../docs/api.md");
        for code in ErrorCode::ALL {
            assert!(
                api.contains(&format!("| `{}` |", code.as_str())),
                "docs/api.md does not document {code}"
            );
        }
    }
}
