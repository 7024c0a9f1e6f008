//! What a verified token allows: its scopes with their prefixes encoded, and the checks of
//! an encoded key or key range against them.
//!
//! A scope with prefix `p` covers the key `p` itself and every key under it (`p` followed by
//! one or more parts). In byte order those are exactly the encoded keys in
//! `[p, Key::prefix_end(p))`: every part's encoding starts with a tag byte below `0xff`, and
//! a byte string that starts with `p` and continues with `0xff` is not under `p` (it is a
//! longer last part, `["a\0"]` after `["a"]`, whose escape continues with `0xff`). The
//! empty prefix `[]` covers every key.
//!
//! A range `[start, end)` is covered when both of its ends lie in one scope's closed
//! interval `[p, Key::prefix_end(p)]`: a list that starts inside a scope and runs out of it
//! is refused, and the prefix selector of `p` or of a key under it (which ends at
//! `prefix_end`) is allowed. Scopes are not joined: a range spanning two adjacent scopes
//! is refused, which errs on the side of less.

use super::{Claims, TokenError};
use crate::key::Key;

/// The claims of a verified token, with scope prefixes parsed and encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    claims: Claims,
    scopes: Vec<Scope>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Scope {
    /// The encoded prefix key (empty for `[]`).
    prefix: Vec<u8>,
    read: bool,
    write: bool,
}

impl Grant {
    /// Parses each scope's prefix (any that is not a tuple key in the JSON form makes the
    /// claims unusable). Does not check a signature: [`super::verify`] does, then calls this.
    pub fn from_claims(claims: Claims) -> Result<Self, TokenError> {
        if claims.sub.is_empty() {
            return Err(TokenError::Malformed("the subject (`sub`) is empty".into()));
        }
        let scopes = claims
            .scope
            .iter()
            .enumerate()
            .map(|(index, claim)| {
                let key = Key::from_json(&claim.prefix).map_err(|reason| TokenError::InvalidScope { index, reason })?;
                Ok(Scope {
                    prefix: key.encode(),
                    read: claim.read,
                    write: claim.write,
                })
            })
            .collect::<Result<_, TokenError>>()?;
        Ok(Self { claims, scopes })
    }

    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    pub fn is_admin(&self) -> bool {
        self.claims.admin
    }

    /// Expiry, unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.claims.exp
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    pub fn can_read(&self, key: &[u8]) -> bool {
        self.scopes
            .iter()
            .any(|scope| scope.read && covers_key(&scope.prefix, key))
    }

    pub fn can_write(&self, key: &[u8]) -> bool {
        self.scopes
            .iter()
            .any(|scope| scope.write && covers_key(&scope.prefix, key))
    }

    /// Whether every key of the half-open encoded range `[start, end)` is readable through
    /// one read scope.
    pub fn can_read_range(&self, start: &[u8], end: &[u8]) -> bool {
        self.scopes
            .iter()
            .any(|scope| scope.read && covers_range(&scope.prefix, start, end))
    }

    /// Whether every key of `[start, end)` is writable through one write scope (a
    /// delete-range mutation).
    pub fn can_write_range(&self, start: &[u8], end: &[u8]) -> bool {
        self.scopes
            .iter()
            .any(|scope| scope.write && covers_range(&scope.prefix, start, end))
    }
}

/// `key` is in `[prefix, prefix_end(prefix))`: it starts with the prefix and either is the
/// prefix or continues with a byte below `0xff` (a part's tag).
fn covers_key(prefix: &[u8], key: &[u8]) -> bool {
    if prefix.is_empty() {
        return true;
    }
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.first().is_none_or(|&next| next != 0xff))
}

/// `bound` is in the closed interval `[prefix, prefix_end(prefix)]`: a range bound may be
/// the exclusive end of the prefix range itself.
fn bound_within(prefix: &[u8], bound: &[u8]) -> bool {
    covers_key(prefix, bound) || bound.strip_prefix(prefix) == Some(&[0xff][..])
}

fn covers_range(prefix: &[u8], start: &[u8], end: &[u8]) -> bool {
    prefix.is_empty() || (bound_within(prefix, start) && bound_within(prefix, end))
}
