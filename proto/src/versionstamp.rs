//! Versionstamps: 10 bytes that order the versions of a key.
//!
//! A strong key's stamp is the Raft log index of its commit (8 bytes, big-endian) and the
//! position of the atomic write among that entry's writes (2 bytes), so every strong stamp
//! is greater than every strong stamp before it. A cache key's stamp is its hybrid-clock
//! time and the writing node (docs/api.md, "Versionstamps"): it grows per key, and shares
//! no order with strong stamps.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Versionstamp(pub [u8; 10]);

impl Versionstamp {
    pub const LEN: usize = 10;

    pub fn new(commit: u64, position: u16) -> Self {
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&commit.to_be_bytes());
        bytes[8..].copy_from_slice(&position.to_be_bytes());
        Self(bytes)
    }

    pub fn commit(&self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("8 bytes"))
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        Self::from_slice(&hex::decode(text).ok()?)
    }
}

impl fmt::Display for Versionstamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Versionstamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Versionstamp({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_commit_order() {
        let a = Versionstamp::new(1, 65535);
        let b = Versionstamp::new(2, 0);
        assert!(a < b);
        assert!(Versionstamp::new(2, 0) < Versionstamp::new(2, 1));
        assert_eq!(b.commit(), 2);
        assert_eq!(Versionstamp::from_hex(&b.to_hex()), Some(b));
        assert_eq!(Versionstamp::from_hex("00"), None);
    }
}
