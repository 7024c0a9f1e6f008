//! Who may do what on this node: the access-token policy every front-end applies before the
//! domain layer sees a request.
//!
//! The token format (claims, secrets, signature and expiry checks, scope containment) is
//! `edgekv_proto::token`'s, shared with kvctl, which mints tokens. This module owns the
//! node's side: the [`Authenticator`] built from `--auth-secret-file` (or disabled, when the
//! node has no secrets), the [`Principal`] a request acts as, and the checks that refuse a
//! request with an [`AuthError`]: `UNAUTHENTICATED` for a missing, malformed, badly signed
//! or expired token, `PERMISSION_DENIED` naming the subject and the key for a request
//! outside the token's scope.
//!
//! Every node verifies tokens alone, with its own copy of the secrets: there is no token
//! state to replicate or to lose.

mod error;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use edgekv_proto::key::{Key, display_encoded};
use edgekv_proto::token::{self, Claims, Grant, Secrets, TokenError};

use crate::clock::{Clock, SystemClock};

pub use error::AuthError;

/// What a principal of a node without secrets is called in messages and logs.
pub const UNRESTRICTED_SUBJECT: &str = "anonymous (authentication is off)";

/// Verified tokens remembered at most; the memory is emptied when it is full. A client
/// sends the same token with every request, so a few thousand cover every live client.
const REMEMBERED_TOKENS: usize = 4096;

/// Verifies the tokens of incoming requests, or lets everything through when the node has
/// no secrets (`edgekv dev` without `--auth-secret-file`).
///
/// A token that verified once is remembered with its grant: the same bytes under the same
/// secrets verify the same way, so a later request with it is checked for expiry only,
/// instead of decoding, checking the signature and parsing the scopes again on every call.
#[derive(Debug)]
pub struct Authenticator {
    secrets: Option<Secrets>,
    verified: Mutex<HashMap<String, Arc<Grant>>>,
}

impl Authenticator {
    /// Every request is allowed everything, whatever token it carries.
    pub fn disabled() -> Self {
        Self {
            secrets: None,
            verified: Mutex::default(),
        }
    }

    pub fn new(secrets: Secrets) -> Self {
        Self {
            secrets: Some(secrets),
            verified: Mutex::default(),
        }
    }

    /// Reads the secrets file (`KEY_ID SECRET` a line; see `edgekv_proto::token::Secrets`).
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        Secrets::read_file(path).map(Self::new)
    }

    pub fn is_enabled(&self) -> bool {
        self.secrets.is_some()
    }

    /// The secrets tokens are checked against, for minting tokens the node hands out
    /// itself (KV Connect's data-path token).
    pub fn secrets(&self) -> Option<&Secrets> {
        self.secrets.as_ref()
    }

    /// Who a request with this `Authorization` value (`Bearer <token>`) acts as, by this
    /// node's wall clock. A value of another scheme is refused as malformed rather than read
    /// as no token, so the message points at the header.
    pub fn authenticate_header(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let now_ms = SystemClock.now_ms();
        match authorization {
            Some(value) if self.is_enabled() && bearer_token(value).is_none() => Err(AuthError::Unauthenticated(
                TokenError::Malformed("the authorization header is not `Bearer <token>`".into()),
            )),
            Some(value) => self.authenticate(bearer_token(value), now_ms),
            None => self.authenticate(None, now_ms),
        }
    }

    /// Who a request acts as: the verified grant of its bearer token at `now_ms`, or, with
    /// authentication off, a principal allowed everything.
    ///
    /// Expiry is judged by the node's own wall clock, as every JWT verifier does, not by the
    /// replicated clock: a leader's clock running ahead must not expire every token.
    pub fn authenticate(&self, bearer: Option<&str>, now_ms: u64) -> Result<Principal, AuthError> {
        let Some(secrets) = &self.secrets else {
            return Ok(Principal::unrestricted());
        };
        let token = bearer.map(str::trim).unwrap_or_default();
        let now_secs = now_ms / 1000;
        let remembered = self.remembered().get(token).cloned();
        let grant = match remembered {
            // Verified before: only time has moved since (`nbf` was already reached then).
            Some(grant) if now_secs < grant.expires_at() => grant,
            Some(grant) => {
                self.remembered().remove(token);
                return Err(AuthError::Unauthenticated(TokenError::Expired {
                    exp: grant.expires_at(),
                    now: now_secs,
                }));
            }
            None => {
                let grant = Arc::new(token::verify(token, secrets, now_secs).map_err(AuthError::Unauthenticated)?);
                let mut remembered = self.remembered();
                if remembered.len() >= REMEMBERED_TOKENS {
                    remembered.clear();
                }
                remembered.insert(token.to_string(), grant.clone());
                grant
            }
        };
        Ok(Principal {
            access: Access::Token(grant),
        })
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Grant>>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The token of an `Authorization` value (`Bearer <token>`, the scheme in any case).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Who a request acts as, and the checks of what it asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    access: Access,
}

#[derive(Clone, Debug, PartialEq)]
enum Access {
    /// Authentication is off on this node.
    Unrestricted,
    Token(Arc<Grant>),
}

impl Principal {
    /// Allowed everything: what every request is on a node without secrets.
    pub fn unrestricted() -> Self {
        Self {
            access: Access::Unrestricted,
        }
    }

    pub fn subject(&self) -> &str {
        match &self.access {
            Access::Unrestricted => UNRESTRICTED_SUBJECT,
            Access::Token(grant) => grant.subject(),
        }
    }

    /// A token carrying this principal's grant (subject, scopes, admin, expiry), signed with
    /// the node's signing secret: what KV Connect hands out as its data-path token, valid
    /// on every node that shares the secrets. `None` when authentication is off.
    pub fn reissue(&self, authenticator: &Authenticator, now_ms: u64) -> Option<Result<String, TokenError>> {
        let (Access::Token(grant), Some(secrets)) = (&self.access, authenticator.secrets()) else {
            return None;
        };
        let claims = Claims {
            iat: now_ms / 1000,
            ..grant.claims().clone()
        };
        Some(token::sign(&claims, secrets))
    }

    /// The verified token, or `None` when authentication is off.
    pub fn grant(&self) -> Option<&Grant> {
        match &self.access {
            Access::Unrestricted => None,
            Access::Token(grant) => Some(grant),
        }
    }

    pub fn require_read(&self, key: &[u8]) -> Result<(), AuthError> {
        self.require(
            |grant| grant.can_read(key),
            || format!("read key {}", display_encoded(key)),
        )
    }

    pub fn require_write(&self, key: &[u8]) -> Result<(), AuthError> {
        self.require(
            |grant| grant.can_write(key),
            || format!("write key {}", display_encoded(key)),
        )
    }

    /// Every key of the encoded half-open range `[start, end)` (a list selector, resolved
    /// to bytes) must be readable through one of the token's read scopes.
    pub fn require_read_range(&self, start: &[u8], end: &[u8]) -> Result<(), AuthError> {
        self.require(
            |grant| grant.can_read_range(start, end),
            || format!("read {}", describe_range(start, end)),
        )
    }

    /// Every key of `[start, end)` must be writable through one write scope (a
    /// delete-range mutation).
    pub fn require_write_range(&self, start: &[u8], end: &[u8]) -> Result<(), AuthError> {
        self.require(
            |grant| grant.can_write_range(start, end),
            || format!("write {}", describe_range(start, end)),
        )
    }

    /// Membership, keyspace classes, fault injection and full-scan status.
    pub fn require_admin(&self) -> Result<(), AuthError> {
        self.require(Grant::is_admin, || {
            "run admin operations (the token is not an admin token)".to_string()
        })
    }

    fn require(&self, allowed: impl FnOnce(&Grant) -> bool, what: impl FnOnce() -> String) -> Result<(), AuthError> {
        match &self.access {
            Access::Unrestricted => Ok(()),
            Access::Token(grant) if allowed(grant) => Ok(()),
            Access::Token(grant) => Err(AuthError::PermissionDenied {
                subject: grant.subject().to_string(),
                what: what(),
            }),
        }
    }
}

/// A range as people read it: one key when it holds only that key (how KV Connect clients
/// send a get), the keys under a prefix when it is a prefix selector's range, otherwise its
/// two ends.
fn describe_range(start: &[u8], end: &[u8]) -> String {
    if end.strip_suffix(&[0x00]) == Some(start) {
        return format!("key {}", display_encoded(start));
    }
    if let Some(prefix) = start.strip_suffix(&[0x00])
        && end.strip_suffix(&[0xff]) == Some(prefix)
        && let Ok(key) = Key::decode(prefix)
    {
        return format!("the keys under {key}");
    }
    format!(
        "the range from {} up to {}",
        display_encoded(start),
        display_encoded(end)
    )
}
