//! Access tokens: the format the node verifies and kvctl mints (feature `token`).
//!
//! A token is a JWT signed with HMAC-SHA256 ([`sign`], [`verify`]). Its claims ([`Claims`])
//! name a subject, an expiry, and what the holder may do: read and/or write the keys under
//! some tuple-key prefixes, and run admin operations. Verifying a token yields a [`Grant`],
//! which answers "may this subject read/write this encoded key or range".
//!
//! Signing keys come from a secrets list ([`Secrets`]): one `KEY_ID SECRET` a line; the
//! first signs, every listed one verifies, and the JWT header's `kid` says which. Secrets
//! rotate without downtime: add the new one second, roll it out, move it first, and remove
//! the old one once every token it signed has expired.
//!
//! Expiry is checked against the caller's clock with no leeway: a token is valid while
//! `now < exp` (RFC 7519). A token minted on a machine whose clock is off lives that much
//! shorter or longer; mint with a TTL that covers it rather than widening every token. A
//! `nbf` claim, when present, is honoured the same way.
//!
//! Only HS256 is accepted: a header naming any other algorithm (`none` included) is refused
//! before any key is looked at, so a token cannot choose how it is checked.

mod grant;
mod secrets;
#[cfg(test)]
mod tests;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use grant::Grant;
pub use secrets::Secrets;

/// The only signing algorithm, as the JWT header names it.
pub const ALGORITHM: &str = "HS256";

/// Tokens longer than this are refused unread: real ones are a few hundred bytes, and a
/// bound keeps a hostile header from costing more than a bounded amount of work.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// What a token says about its holder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Who holds the token; named in every refusal.
    pub sub: String,
    /// Expiry, unix seconds. Required: a token that never expires cannot be revoked short
    /// of rotating the secret that signed it.
    pub exp: u64,
    /// Issued at, unix seconds (informational).
    #[serde(default)]
    pub iat: u64,
    /// The key prefixes the holder may read and/or write.
    #[serde(default)]
    pub scope: Vec<ScopeClaim>,
    /// Whether the holder may run admin operations (membership, keyspace classes, faults,
    /// full-scan status). Independent of `scope`: admin grants no key access by itself.
    #[serde(default)]
    pub admin: bool,
}

impl Claims {
    /// Read and write access to every key (the scope `[]`), with or without admin: what an
    /// operator's token, or a harness's own, holds.
    pub fn every_key(subject: impl Into<String>, issued_at: u64, expires_at: u64, admin: bool) -> Self {
        Self {
            sub: subject.into(),
            exp: expires_at,
            iat: issued_at,
            scope: vec![ScopeClaim {
                prefix: Json::Array(Vec::new()),
                read: true,
                write: true,
            }],
            admin,
        }
    }
}

/// One scope entry: a tuple-key prefix in the JSON form kvctl uses (`["users"]`; `[]` is
/// every key) and what the holder may do with the prefix key and every key under it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScopeClaim {
    pub prefix: Json,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
}

/// Why a token or a secrets list was refused. Messages never contain a secret.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("no access token was given")]
    Missing,
    #[error("the access token is malformed: {0}")]
    Malformed(String),
    #[error("scope entry {index} of the access token has an invalid prefix: {reason}")]
    InvalidScope { index: usize, reason: String },
    #[error("the access token is signed with {alg:?}; only HS256 is accepted")]
    UnsupportedAlgorithm { alg: String },
    #[error("the access token was signed with key id {kid:?}, which is not among the configured secrets")]
    UnknownKey { kid: String },
    #[error("the access token's signature does not match its contents")]
    BadSignature,
    #[error("the access token expired at {exp} (unix seconds); it is now {now}")]
    Expired { exp: u64, now: u64 },
    #[error("the access token is not valid before {nbf} (unix seconds); it is now {now}")]
    NotYetValid { nbf: u64, now: u64 },
    #[error("secrets line {line}: {reason}")]
    SecretLine { line: usize, reason: String },
    #[error("the secrets list has no secret (one `KEY_ID SECRET` a line)")]
    NoSecrets,
    #[error("cannot read the secrets file {path}: {reason}")]
    SecretFile { path: String, reason: String },
    #[error("cannot sign the token: {0}")]
    Signing(String),
}

/// The groups a node tells apart when it refuses a token; every group but
/// [`TokenErrorKind::Configuration`] is the client's fault (`UNAUTHENTICATED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// No token at all.
    Missing,
    /// Not a well-formed HS256 token with valid claims.
    Malformed,
    /// Signed by a key this side does not have (a wrong or rotated-out secret), or altered.
    BadSignature,
    /// Outside its validity window (`exp`, `nbf`).
    Expired,
    /// The secrets list or signing failed: the operator's problem, not the token's.
    Configuration,
}

impl TokenError {
    pub fn kind(&self) -> TokenErrorKind {
        match self {
            TokenError::Missing => TokenErrorKind::Missing,
            TokenError::Malformed(_) | TokenError::InvalidScope { .. } | TokenError::UnsupportedAlgorithm { .. } => {
                TokenErrorKind::Malformed
            }
            TokenError::UnknownKey { .. } | TokenError::BadSignature => TokenErrorKind::BadSignature,
            TokenError::Expired { .. } | TokenError::NotYetValid { .. } => TokenErrorKind::Expired,
            TokenError::SecretLine { .. }
            | TokenError::NoSecrets
            | TokenError::SecretFile { .. }
            | TokenError::Signing(_) => TokenErrorKind::Configuration,
        }
    }
}

/// A token's header as far as edgekv reads it. Everything else in it is ignored.
#[derive(Deserialize)]
struct TokenHeader {
    alg: String,
    kid: Option<String>,
    /// Extensions the verifier must understand (RFC 7515 §4.1.11); edgekv knows none.
    crit: Option<Json>,
}

/// What a token says, read without checking its signature or expiry (`kvctl token inspect`).
#[derive(Clone, Debug, PartialEq)]
pub struct Unverified {
    pub algorithm: String,
    pub key_id: Option<String>,
    pub claims: Claims,
}

/// Signs `claims` with the first of `secrets`, naming its key id in the header. Claims the
/// node would refuse (an empty subject, a scope prefix that is not a tuple key) are refused
/// here, so a minted token is always one the node can read.
pub fn sign(claims: &Claims, secrets: &Secrets) -> Result<String, TokenError> {
    Grant::from_claims(claims.clone())?;
    let (key_id, secret) = secrets.signing_key();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key_id.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
        .map_err(|error| TokenError::Signing(error.to_string()))
}

/// Checks `token` (HS256, a listed key id, the signature, then the validity window at
/// `now_unix_secs`) and returns what it grants.
pub fn verify(token: &str, secrets: &Secrets, now_unix_secs: u64) -> Result<Grant, TokenError> {
    let [header, _, _] = split(token)?;
    let header = read_header(header)?;
    if header.alg != ALGORITHM {
        return Err(TokenError::UnsupportedAlgorithm {
            alg: shortened(&header.alg),
        });
    }
    if header.crit.is_some() {
        return Err(TokenError::Malformed(
            "the header lists critical extensions (`crit`), which edgekv does not support".into(),
        ));
    }
    let kid = header
        .kid
        .ok_or_else(|| TokenError::Malformed("the header names no key id (`kid`)".into()))?;
    let secret = secrets
        .secret(&kid)
        .ok_or_else(|| TokenError::UnknownKey { kid: shortened(&kid) })?;

    // jsonwebtoken checks the algorithm and the signature (in constant time) before it
    // parses the claims; the time checks are ours, against the caller's clock.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let payload = jsonwebtoken::decode::<Json>(token, &DecodingKey::from_secret(secret), &validation)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::UnsupportedAlgorithm {
                alg: shortened(&header.alg),
            },
            _ => TokenError::Malformed(error.to_string()),
        })?
        .claims;

    let claims = read_claims(&payload)?;
    if now_unix_secs >= claims.exp {
        return Err(TokenError::Expired {
            exp: claims.exp,
            now: now_unix_secs,
        });
    }
    if let Some(nbf) = payload.get("nbf") {
        let nbf = nbf
            .as_u64()
            .ok_or_else(|| TokenError::Malformed("`nbf` must be unix seconds".into()))?;
        if now_unix_secs < nbf {
            return Err(TokenError::NotYetValid {
                nbf,
                now: now_unix_secs,
            });
        }
    }
    Grant::from_claims(claims)
}

/// Reads a token's header and claims without checking its signature or times: for showing
/// a token to a person, never for deciding what its holder may do.
pub fn decode_unverified(token: &str) -> Result<Unverified, TokenError> {
    let [header, payload, _] = split(token)?;
    let header = read_header(header)?;
    let payload: Json = decode_part(payload, "claims")?;
    Ok(Unverified {
        algorithm: header.alg,
        key_id: header.kid,
        claims: read_claims(&payload)?,
    })
}

/// The three dot-separated parts of a compact JWT.
fn split(token: &str) -> Result<[&str; 3], TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed(format!(
            "{} bytes long; at most {MAX_TOKEN_LEN} are accepted",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok([header, payload, signature]),
        _ => Err(TokenError::Malformed(
            "a token has three dot-separated parts (header.claims.signature)".into(),
        )),
    }
}

fn read_header(encoded: &str) -> Result<TokenHeader, TokenError> {
    decode_part(encoded, "header")
}

fn decode_part<T: serde::de::DeserializeOwned>(encoded: &str, what: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|error| TokenError::Malformed(format!("the {what} is not base64url: {error}")))?;
    serde_json::from_slice(&bytes).map_err(|error| TokenError::Malformed(format!("the {what} is not valid: {error}")))
}

fn read_claims(payload: &Json) -> Result<Claims, TokenError> {
    let claims = Claims::deserialize(payload).map_err(|error| TokenError::Malformed(format!("claims: {error}")))?;
    if claims.sub.is_empty() {
        return Err(TokenError::Malformed("the subject (`sub`) is empty".into()));
    }
    Ok(claims)
}

/// Text from a token, cut short for a message: the token's holder chose it, and a refusal
/// must not repeat kilobytes of it into logs.
fn shortened(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    if text.chars().count() <= MAX_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX_CHARS).collect();
    cut.push('…');
    cut
}
