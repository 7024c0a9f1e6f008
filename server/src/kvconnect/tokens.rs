//! Who a KV Connect request acts as: the access token of the metadata exchange, and the
//! data-path token the exchange hands out.
//!
//! With signed tokens (the node has `--auth-secret-file`), the access token is a token
//! `kvctl token create` minted (`DENO_KV_ACCESS_TOKEN`), and the data-path token is the
//! same grant (subject, scopes, admin, expiry) signed again by this node: valid on every
//! node that shares the secrets, checked like any other token, kept nowhere.
//!
//! Without secrets (`edgekv dev`), the access tokens are the configured shared strings and
//! the data-path tokens are random, in this node's memory, allowed everything; a restart
//! makes clients exchange again, which they do on the first 401.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::auth::{self, Authenticator, Principal};
use crate::clock::{Clock, SystemClock};

use super::error::KvConnectError;

/// How long the metadata (and, without signed tokens, the data-path token) stays valid;
/// clients exchange again before then.
pub const DATA_PATH_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

pub enum Tokens {
    /// Signed tokens, verified with the node's secrets.
    Signed(Arc<Authenticator>),
    /// Shared access strings and random data-path tokens this node remembers.
    Shared {
        access: Vec<String>,
        data_path: Mutex<HashMap<String, u64>>,
    },
}

/// A metadata exchange's answer: the data-path token and when the metadata expires.
pub struct Issued {
    pub token: String,
    pub expires_at_ms: u64,
}

/// Compares without an early exit, so response time does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    /// Signed tokens when the node has secrets, otherwise the shared `access` strings.
    pub fn new(authenticator: Arc<Authenticator>, access: Vec<String>) -> Self {
        if authenticator.is_enabled() {
            return Tokens::Signed(authenticator);
        }
        Tokens::Shared {
            access,
            data_path: Mutex::new(HashMap::new()),
        }
    }

    /// Checks the exchange's access token and issues a data-path token. Signed tokens live
    /// by the node's wall clock, as every token check does; shared ones by `now_ms`.
    pub fn exchange(&self, headers: &axum::http::HeaderMap, now_ms: u64) -> Result<Issued, KvConnectError> {
        let ttl_ms = DATA_PATH_TOKEN_TTL.as_millis() as u64;
        match self {
            Tokens::Signed(authenticator) => {
                let principal = authenticator.authenticate_header(authorization(headers)?)?;
                let now_ms = SystemClock.now_ms();
                let default_expiry = now_ms + ttl_ms;
                let token = principal
                    .reissue(authenticator, now_ms)
                    .ok_or_else(|| {
                        KvConnectError::Internal("a node with secrets let a request in without a token".into())
                    })?
                    .map_err(|error| KvConnectError::Internal(format!("cannot sign the data-path token: {error}")))?;
                let expires_at_s = principal.grant().map_or(u64::MAX, |grant| grant.expires_at());
                Ok(Issued {
                    token,
                    expires_at_ms: default_expiry.min(expires_at_s.saturating_mul(1000)),
                })
            }
            Tokens::Shared { access, data_path } => {
                let default_expiry = now_ms + ttl_ms;
                let token = bearer(headers).ok_or(KvConnectError::MissingToken)?;
                if !access.iter().any(|t| constant_time_eq(t.as_bytes(), token.as_bytes())) {
                    return Err(KvConnectError::InvalidAccessToken);
                }
                let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                let mut tokens = data_path.lock().unwrap_or_else(PoisonError::into_inner);
                tokens.retain(|_, expires| *expires > now_ms);
                tokens.insert(token.clone(), default_expiry);
                Ok(Issued {
                    token,
                    expires_at_ms: default_expiry,
                })
            }
        }
    }

    /// Who a data-path request acts as, at `now_ms` (the shared tokens' expiry clock).
    pub fn data_path(&self, headers: &axum::http::HeaderMap, now_ms: u64) -> Result<Principal, KvConnectError> {
        match self {
            Tokens::Signed(authenticator) => Ok(authenticator.authenticate_header(authorization(headers)?)?),
            Tokens::Shared { data_path, .. } => {
                let token = bearer(headers).ok_or(KvConnectError::MissingToken)?;
                let known = data_path
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(token)
                    .is_some_and(|expires| *expires > now_ms);
                if !known {
                    return Err(KvConnectError::InvalidDataPathToken);
                }
                Ok(Principal::unrestricted())
            }
        }
    }
}

/// The `Authorization` header's value, if any.
fn authorization(headers: &axum::http::HeaderMap) -> Result<Option<&str>, KvConnectError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|value| value.to_str().map_err(|_| KvConnectError::MissingToken))
        .transpose()
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    auth::bearer_token(authorization(headers).ok()??)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;
    use edgekv_proto::ErrorCode;
    use edgekv_proto::key;
    use edgekv_proto::token::{self, Claims, ScopeClaim, Secrets};

    use super::*;

    const NOW_MS: u64 = 1_000_000;

    fn headers(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn shared_data_path_tokens_expire() {
        let tokens = Tokens::new(Arc::new(Authenticator::disabled()), vec!["access-token-123".into()]);
        assert!(matches!(
            tokens.exchange(&headers("access-token-12"), NOW_MS),
            Err(KvConnectError::InvalidAccessToken)
        ));
        assert!(matches!(
            tokens.exchange(&HeaderMap::new(), NOW_MS),
            Err(KvConnectError::MissingToken)
        ));
        let issued = tokens.exchange(&headers("access-token-123"), NOW_MS).unwrap();
        let expires = issued.expires_at_ms;
        assert_eq!(expires, NOW_MS + DATA_PATH_TOKEN_TTL.as_millis() as u64);
        assert!(tokens.data_path(&headers(&issued.token), expires - 1).is_ok());
        assert!(matches!(
            tokens.data_path(&headers(&issued.token), expires),
            Err(KvConnectError::InvalidDataPathToken)
        ));
        assert!(
            tokens.data_path(&headers("access-token-123"), NOW_MS).is_err(),
            "access tokens are not data-path tokens"
        );
    }

    #[test]
    fn signed_data_path_token_carries_the_access_tokens_grant() {
        let secrets = Secrets::parse("k1 0123456789abcdef0123456789abcdef").unwrap();
        let now_s = SystemClock.now_ms() / 1000;
        let claims = Claims {
            sub: "edge-fn".into(),
            exp: now_s + 600,
            iat: now_s,
            scope: vec![ScopeClaim {
                prefix: serde_json::json!(["users"]),
                read: true,
                write: false,
            }],
            admin: false,
        };
        let access = token::sign(&claims, &secrets).unwrap();
        let other_node = Tokens::new(Arc::new(Authenticator::new(secrets.clone())), Vec::new());
        let tokens = Tokens::new(
            Arc::new(Authenticator::new(secrets)),
            vec!["ignored-shared-token".into()],
        );

        let issued = tokens.exchange(&headers(&access), now_s * 1000).unwrap();
        assert!(
            issued.expires_at_ms <= claims.exp * 1000,
            "never outlives the access token"
        );
        // Any node with the same secrets accepts it, with the same grant.
        let principal = other_node.data_path(&headers(&issued.token), now_s * 1000).unwrap();
        assert_eq!(principal.subject(), "edge-fn");
        assert_eq!(principal.grant().unwrap().expires_at(), claims.exp);
        assert!(principal.require_read(&key!["users", "a"].encode()).is_ok());
        assert!(principal.require_write(&key!["users", "a"].encode()).is_err());

        let refused = tokens.exchange(&headers("ignored-shared-token"), now_s * 1000);
        match refused {
            Err(KvConnectError::Auth(error)) => assert_eq!(error.code(), ErrorCode::Unauthenticated),
            other => panic!("a shared string is no token on a node with secrets: {:?}", other.err()),
        }
        match tokens.data_path(&HeaderMap::new(), now_s * 1000) {
            Err(KvConnectError::Auth(error)) => assert_eq!(error.code(), ErrorCode::Unauthenticated),
            other => panic!("no token: {:?}", other.err()),
        }
    }
}
