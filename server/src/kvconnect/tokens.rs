//! Access tokens and the short-lived data-path tokens minted by the metadata exchange.
//!
//! The access token is what a user puts in `DENO_KV_ACCESS_TOKEN`; it only ever reaches
//! the metadata endpoint. The data-path token the exchange returns is random, expires
//! with the metadata (clients re-exchange before then), and is kept in memory: a restart
//! makes clients exchange again, which they do on the first 401.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long a data-path token (and the metadata that carries it) stays valid.
pub const DATA_PATH_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

pub struct Tokens {
    access: Vec<String>,
    data_path: Mutex<HashMap<String, u64>>,
}

/// Compares without an early exit, so response time does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    pub fn new(access: Vec<String>) -> Self {
        Self {
            access,
            data_path: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_access_token(&self, token: &str) -> bool {
        self.access
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
    }

    /// Mints a data-path token valid until `expires_at_ms`.
    pub fn mint(&self, now_ms: u64, expires_at_ms: u64) -> String {
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut tokens = self.data_path.lock().expect("token lock");
        tokens.retain(|_, expires| *expires > now_ms);
        tokens.insert(token.clone(), expires_at_ms);
        token
    }

    pub fn is_data_path_token(&self, token: &str, now_ms: u64) -> bool {
        self.data_path
            .lock()
            .expect("token lock")
            .get(token)
            .is_some_and(|expires| *expires > now_ms)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_path_tokens_expire() {
        let tokens = Tokens::new(vec!["access-token-123".into()]);
        assert!(tokens.is_access_token("access-token-123"));
        assert!(!tokens.is_access_token("access-token-12"));
        let minted = tokens.mint(1_000, 2_000);
        assert!(tokens.is_data_path_token(&minted, 1_999));
        assert!(!tokens.is_data_path_token(&minted, 2_000));
        assert!(
            !tokens.is_data_path_token("access-token-123", 1_000),
            "access tokens are not data-path tokens"
        );
    }
}
