//! Digests of the cache records for anti-entropy: keys fall into [`BUCKETS`] buckets by
//! hash, and a bucket's digest is the XOR of its records' hashes (key and encoded record).
//! XOR makes the digest independent of order and cheap to keep current: a changed record
//! toggles its old hash out and its new hash in. Two nodes whose bucket digests agree hold
//! the same records there (up to a 64-bit hash collision); a differing bucket is exchanged
//! in full.
//!
//! The hash is FNV-1a 64: stable across builds and platforms, which `std`'s hasher does
//! not promise, and good enough for spreading keys and spotting differences (this is not
//! an adversarial setting: peers are trusted members).

pub const BUCKETS: usize = 256;

#[derive(Clone, Debug)]
pub struct Buckets(Box<[u64; BUCKETS]>);

impl Default for Buckets {
    fn default() -> Self {
        Self(Box::new([0; BUCKETS]))
    }
}

impl Buckets {
    pub fn toggle(&mut self, bucket: usize, hash: u64) {
        self.0[bucket] ^= hash;
    }

    pub fn to_vec(&self) -> Vec<u64> {
        self.0.to_vec()
    }
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") hash apart.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

pub fn bucket_of(key: &[u8]) -> usize {
    (fnv1a(&[key]) >> 56) as usize
}

pub fn record_hash(key: &[u8], record: &[u8]) -> u64 {
    fnv1a(&[key, record])
}

/// The buckets whose digests differ (a peer of another bucket count differs everywhere).
pub fn differing(ours: &[u64], theirs: &[u64]) -> [bool; BUCKETS] {
    let mut out = [false; BUCKETS];
    for (bucket, slot) in out.iter_mut().enumerate() {
        *slot = ours.get(bucket) != theirs.get(bucket);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_do_not_depend_on_order_and_toggling_twice_undoes() {
        let mut a = Buckets::default();
        let mut b = Buckets::default();
        let records: Vec<(Vec<u8>, Vec<u8>)> = (0..50u8).map(|i| (vec![i], vec![i, i])).collect();
        for (k, v) in &records {
            a.toggle(bucket_of(k), record_hash(k, v));
        }
        for (k, v) in records.iter().rev() {
            b.toggle(bucket_of(k), record_hash(k, v));
        }
        assert_eq!(a.to_vec(), b.to_vec());
        b.toggle(bucket_of(b"x"), record_hash(b"x", b"1"));
        assert_eq!(differing(&a.to_vec(), &b.to_vec()).iter().filter(|d| **d).count(), 1);
        b.toggle(bucket_of(b"x"), record_hash(b"x", b"1"));
        assert_eq!(a.to_vec(), b.to_vec());
        assert_ne!(record_hash(b"ab", b"c"), record_hash(b"a", b"bc"));
    }
}
