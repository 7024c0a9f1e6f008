//! The cache class's value types and the laws their merges obey.
//!
//! Every type here is a state-based CRDT: `merge` is commutative, associative and
//! idempotent, so replicas that receive the same updates in any order, any number of
//! times, end in the same state (property-tested below, including on the postcard bytes
//! that travel between nodes).
//!
//! - [`Register`]: the default. Last writer wins by hybrid logical timestamp (unique per
//!   write: the node id is part of it, so there are no ties). The register holds the whole
//!   value: bytes, encoding, metadata and expiry, or a tombstone for a delete. So the TTL
//!   rule for concurrent writes is simply "the later write's TTL wins": a later write
//!   without a TTL makes the key permanent, a later write with a short TTL expires it, and
//!   every replica agrees on whether a key is live at any instant.
//! - [`Counter`]: `sum` on cache keys, a PN-counter (`crdts::PNCounter`): per node
//!   increment and decrement totals; the value is their difference.
//! - [`Set`]: an observed-remove set (`crdts::Orswot`): an add wins over a concurrent
//!   remove; a remove takes away only the adds it has seen.

use crdts::{CmRDT, CvRDT, Orswot, PNCounter};
use serde::{Deserialize, Serialize};

use super::hlc::Timestamp;

/// One version of a cache key's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// `edgekv.v1.ValueEncoding` as its protobuf number.
    pub encoding: i32,
    pub bytes: Vec<u8>,
    pub metadata: Option<String>,
    pub expires_at_ms: Option<u64>,
}

/// Last-writer-wins register over the whole value (`None`: deleted, a tombstone).
pub type Register = crdts::LWWReg<Option<Payload>, Timestamp>;

/// A register holding one write made at `stamp`.
pub fn register(value: Option<Payload>, stamp: Timestamp) -> Register {
    crdts::LWWReg {
        val: value,
        marker: stamp,
    }
}

/// The register's value if it is live at `now_ms` (not deleted, not expired).
pub fn live(register: &Register, now_ms: u64) -> Option<&Payload> {
    register
        .val
        .as_ref()
        .filter(|p| p.expires_at_ms.is_none_or(|at| at > now_ms))
}

/// A PN-counter with node ids as actors.
pub type Counter = PNCounter<u64>;

/// Adds `amount` (negative: subtracts) on behalf of `node`.
pub fn add(counter: &mut Counter, node: u64, amount: i64) {
    let op = if amount >= 0 {
        counter.inc_many(node, amount.unsigned_abs())
    } else {
        counter.dec_many(node, amount.unsigned_abs())
    };
    counter.apply(op);
}

/// An observed-remove set of byte strings, node ids as actors.
pub type Set = Orswot<Vec<u8>, u64>;

/// Adds `member` on behalf of `node`.
pub fn set_add(set: &mut Set, node: u64, member: Vec<u8>) {
    let ctx = set.read_ctx().derive_add_ctx(node);
    let op = set.add(member, ctx);
    set.apply(op);
}

/// Removes `member` as this replica has seen it (concurrent adds elsewhere survive).
pub fn set_remove(set: &mut Set, member: Vec<u8>) {
    let ctx = set.contains(&member).derive_rm_ctx();
    let op = set.rm(member, ctx);
    set.apply(op);
}

/// Merges `other` into `state`: the one operation replication and anti-entropy use.
pub fn merge<T: CvRDT>(state: &mut T, other: T) {
    state.merge(other);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// Sends a state through the wire format, as replication does.
    fn over_the_wire<T: Serialize + for<'de> Deserialize<'de>>(value: &T) -> T {
        postcard::from_bytes(&postcard::to_allocvec(value).unwrap()).unwrap()
    }

    fn write_strategy() -> impl Strategy<Value = (Option<Payload>, Timestamp)> {
        (
            proptest::option::of((
                0i32..5,
                proptest::collection::vec(any::<u8>(), 0..4),
                proptest::option::of(0u64..100),
            )),
            0u64..50,
            0u32..3,
            1u64..4,
        )
            .prop_map(|(value, wall_ms, logical, node)| {
                let payload = value.map(|(encoding, bytes, expires_at_ms)| Payload {
                    encoding,
                    bytes,
                    metadata: None,
                    expires_at_ms,
                });
                (payload, Timestamp { wall_ms, logical, node })
            })
    }

    /// Unique stamps, as a hybrid clock guarantees (one write per stamp).
    fn distinct_writes(writes: Vec<(Option<Payload>, Timestamp)>) -> Vec<Register> {
        let mut seen = BTreeSet::new();
        writes
            .into_iter()
            .filter(|(_, stamp)| seen.insert(*stamp))
            .map(|(value, stamp)| register(value, stamp))
            .collect()
    }

    fn merged<T: CvRDT + Clone>(first: &T, rest: &[T]) -> T {
        let mut state = first.clone();
        for other in rest {
            state.merge(other.clone());
        }
        state
    }

    proptest! {
        #[test]
        fn register_merge_is_commutative_associative_and_idempotent(
            writes in proptest::collection::vec(write_strategy(), 3..4)
        ) {
            let r = distinct_writes(writes);
            prop_assume!(r.len() == 3);
            let (a, b, c) = (&r[0], &r[1], &r[2]);
            prop_assert_eq!(merged(a, std::slice::from_ref(b)), merged(b, std::slice::from_ref(a)));
            prop_assert_eq!(merged(&merged(a, std::slice::from_ref(b)), std::slice::from_ref(c)), merged(a, &[merged(b, std::slice::from_ref(c))]));
            prop_assert_eq!(merged(a, std::slice::from_ref(a)), a.clone());
        }

        #[test]
        fn replicas_receiving_register_updates_in_any_order_with_duplicates_agree(
            writes in proptest::collection::vec(write_strategy(), 1..12),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
            now in 0u64..120,
        ) {
            let updates = distinct_writes(writes);
            let mut in_order = register(None, Timestamp::default());
            for update in &updates {
                in_order.merge(over_the_wire(update));
            }
            // Another replica: a random sequence with repeats, then everything once more
            // (anti-entropy), each update through the wire format.
            let mut shuffled = register(None, Timestamp::default());
            for index in &order {
                shuffled.merge(over_the_wire(index.get(&updates)));
            }
            for update in updates.iter().rev() {
                shuffled.merge(over_the_wire(update));
            }
            prop_assert_eq!(&in_order, &shuffled);
            // The winner is the write with the highest stamp, TTL and all.
            let latest = updates.iter().max_by_key(|r| r.marker).unwrap();
            prop_assert_eq!(&in_order.val, &latest.val);
            prop_assert_eq!(live(&in_order, now), live(latest, now));
        }

        #[test]
        fn counters_converge_to_the_sum_of_every_nodes_changes(
            changes in proptest::collection::vec((1u64..4, -50i64..50), 0..40),
            order in proptest::collection::vec(0usize..3, 0..20),
        ) {
            // Each node applies its own changes to its own replica.
            let mut replicas: Vec<Counter> = (0..3).map(|_| Counter::new()).collect();
            for (node, amount) in &changes {
                add(&mut replicas[(*node - 1) as usize], *node, *amount);
            }
            let expected: i64 = changes.iter().map(|(_, amount)| amount).sum();
            // States travel in any order, with repeats; then every state once (anti-entropy).
            let mut target = Counter::new();
            for index in order.iter().chain([0, 1, 2].iter()) {
                target.merge(over_the_wire(&replicas[*index]));
            }
            prop_assert_eq!(target.read(), num_bigint::BigInt::from(expected));
            let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
            prop_assert_eq!(merged(a, std::slice::from_ref(b)), merged(b, std::slice::from_ref(a)));
            prop_assert_eq!(merged(&merged(a, std::slice::from_ref(b)), std::slice::from_ref(c)), merged(a, &[merged(b, std::slice::from_ref(c))]));
            prop_assert_eq!(merged(a, std::slice::from_ref(a)), a.clone());
        }

        #[test]
        fn sets_converge_whatever_order_replicas_exchange_states(
            steps in proptest::collection::vec((0usize..3, any::<bool>(), 0u8..5, any::<bool>()), 0..40),
        ) {
            // Three replicas; each step adds or removes on one replica, and sometimes that
            // replica then pulls another's state (gossip in arbitrary order).
            let mut replicas: Vec<Set> = (0..3).map(|_| Set::new()).collect();
            for (replica, adding, member, gossip) in steps {
                let node = replica as u64 + 1;
                if adding {
                    set_add(&mut replicas[replica], node, vec![member]);
                } else {
                    set_remove(&mut replicas[replica], vec![member]);
                }
                if gossip {
                    let other = over_the_wire(&replicas[(replica + 1) % 3]);
                    replicas[replica].merge(other);
                }
            }
            let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
            let forward = merged(a, &[b.clone(), c.clone()]);
            let backward = merged(c, &[b.clone(), a.clone(), c.clone()]);
            prop_assert_eq!(forward.read().val, backward.read().val);
            prop_assert_eq!(merged(a, std::slice::from_ref(a)).read().val, a.read().val);
        }
    }

    #[test]
    fn an_add_wins_over_a_concurrent_remove() {
        let mut here = Set::new();
        set_add(&mut here, 1, b"x".to_vec());
        let mut there = here.clone();
        set_remove(&mut here, b"x".to_vec());
        set_add(&mut there, 2, b"x".to_vec());
        here.merge(there);
        assert!(here.contains(&b"x".to_vec()).val);
    }

    #[test]
    fn the_later_writes_ttl_wins() {
        let forever = register(
            Some(Payload {
                encoding: 0,
                bytes: b"a".to_vec(),
                metadata: None,
                expires_at_ms: None,
            }),
            Timestamp {
                wall_ms: 10,
                logical: 0,
                node: 1,
            },
        );
        let short = register(
            Some(Payload {
                encoding: 0,
                bytes: b"b".to_vec(),
                metadata: None,
                expires_at_ms: Some(50),
            }),
            Timestamp {
                wall_ms: 20,
                logical: 0,
                node: 2,
            },
        );
        let merged = merged(&forever, &[short]);
        assert_eq!(live(&merged, 49).map(|p| p.bytes.as_slice()), Some(&b"b"[..]));
        assert_eq!(
            live(&merged, 50),
            None,
            "expired everywhere at 50, whatever order updates came in"
        );
    }
}
