//! The signing secrets: parsing the secrets list (`--auth-secret-file`, `kvctl token create
//! --secret-file`) and finding the secret a token's key id names.
//!
//! Format: one `KEY_ID SECRET` a line, separated by whitespace; blank lines and lines whose
//! first non-blank character is `#` are skipped (a `#` later on a line is part of the
//! secret). Key ids are unique, 1 to 64 characters of `A-Z a-z 0-9 . _ -`; a secret is at
//! least [`Secrets::MIN_SECRET_LEN`] bytes and contains no whitespace (`openssl rand -hex 32`
//! makes one). A refusal names the line, never the secret.

use std::fmt;
use std::path::Path;

use super::TokenError;

/// The secrets list: the first entry signs, every entry verifies.
#[derive(Clone)]
pub struct Secrets {
    /// Never empty: parsing refuses a list without a secret.
    keys: Vec<SigningKey>,
}

#[derive(Clone)]
struct SigningKey {
    id: String,
    secret: Vec<u8>,
}

impl Secrets {
    /// HMAC-SHA256 keys shorter than its 32-byte output weaken it (RFC 7518 §3.2).
    pub const MIN_SECRET_LEN: usize = 32;
    pub const MAX_KEY_ID_LEN: usize = 64;

    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let mut keys: Vec<(usize, SigningKey)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let content = line.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let refuse = |reason: String| TokenError::SecretLine { line: number, reason };
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [id, secret] = fields[..] else {
                // The fields are not echoed: a lone field may well be a secret.
                return Err(refuse(format!(
                    "expected `KEY_ID SECRET` (two fields), found {} field(s); a secret cannot contain whitespace",
                    fields.len()
                )));
            };
            if !is_valid_key_id(id) {
                return Err(refuse(format!(
                    "the key id must be 1 to {} characters of A-Z a-z 0-9 . _ - (is the secret first?)",
                    Self::MAX_KEY_ID_LEN
                )));
            }
            if secret.len() < Self::MIN_SECRET_LEN {
                return Err(refuse(format!(
                    "the secret of key id {id} is {} bytes; at least {} are needed",
                    secret.len(),
                    Self::MIN_SECRET_LEN
                )));
            }
            if let Some((first_line, _)) = keys.iter().find(|(_, key)| key.id == id) {
                return Err(refuse(format!("key id {id} is already used on line {first_line}")));
            }
            keys.push((
                number,
                SigningKey {
                    id: id.to_string(),
                    secret: secret.as_bytes().to_vec(),
                },
            ));
        }
        if keys.is_empty() {
            return Err(TokenError::NoSecrets);
        }
        Ok(Self {
            keys: keys.into_iter().map(|(_, key)| key).collect(),
        })
    }

    pub fn read_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|error| TokenError::SecretFile {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        Self::parse(&text).map_err(|error| match error {
            TokenError::SecretLine { line, reason } => TokenError::SecretFile {
                path: path.display().to_string(),
                reason: format!("line {line}: {reason}"),
            },
            TokenError::NoSecrets => TokenError::SecretFile {
                path: path.display().to_string(),
                reason: error.to_string(),
            },
            other => other,
        })
    }

    /// The key id new tokens are signed with (the first listed).
    pub fn signing_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key id that verifies, signing one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }

    pub(super) fn signing_key(&self) -> (&str, &[u8]) {
        let key = &self.keys[0];
        (&key.id, &key.secret)
    }

    pub(super) fn secret(&self, key_id: &str) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|key| key.id == key_id)
            .map(|key| key.secret.as_slice())
    }
}

/// Key ids only: a secrets list must never reach a log through `{:?}`.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

fn is_valid_key_id(id: &str) -> bool {
    (1..=Secrets::MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
