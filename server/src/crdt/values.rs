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
//! - [`Counter`]: `sum` on cache keys, a wrapping counter with resets (hand-written; its
//!   laws are in its doc comment).
//! - [`Set`]: an add-wins observed-remove set (hand-written for a canonical encoding): an
//!   add wins over a concurrent remove; a remove takes away only the adds it has seen.

use std::collections::{BTreeMap, BTreeSet};

use crdts::CvRDT;
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

/// Deno KV's `sum` on a cache key: a wrapping u64 counter that can be reset.
///
/// Each node keeps its own entry: how many sums it made (`seq`) and their total, wrapping
/// modulo 2^64. A reset records, per node, the entry it had seen (`baselines`); the value is
/// the sum over nodes of total − baseline, modulo 2^64. Increments a reset had not seen
/// survive it, and two concurrent resets that saw the same increments remove them once.
///
/// Merge laws: both maps merge pointwise, keeping per node the entry with the higher
/// `seq`. Only a node writes its own entry, so one `seq` has one total, and a pointwise
/// maximum is commutative, associative and idempotent. (Unlike `crdts::PNCounter`, nothing
/// here can overflow or go negative: Deno's decrement idiom, summing 2^64 − 1, works.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    totals: BTreeMap<u64, (u64, u64)>,
    baselines: BTreeMap<u64, (u64, u64)>,
}

fn merge_by_seq(into: &mut BTreeMap<u64, (u64, u64)>, from: BTreeMap<u64, (u64, u64)>) {
    for (node, entry) in from {
        let slot = into.entry(node).or_insert(entry);
        if entry.0 > slot.0 {
            *slot = entry;
        }
    }
}

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `amount` on behalf of `node`, wrapping.
    pub fn add(&mut self, node: u64, amount: u64) {
        let entry = self.totals.entry(node).or_insert((0, 0));
        *entry = (entry.0 + 1, entry.1.wrapping_add(amount));
    }

    /// Forgets everything this replica has seen: it reads 0 until something new arrives.
    pub fn reset(&mut self) {
        merge_by_seq(&mut self.baselines, self.totals.clone());
    }

    pub fn value(&self) -> u64 {
        self.totals.iter().fold(0u64, |sum, (node, (_, total))| {
            let seen = self.baselines.get(node).map_or(0, |(_, base)| *base);
            sum.wrapping_add(total.wrapping_sub(seen))
        })
    }
}

impl CvRDT for Counter {
    type Validation = std::convert::Infallible;

    fn validate_merge(&self, _other: &Self) -> Result<(), Self::Validation> {
        Ok(())
    }

    fn merge(&mut self, other: Counter) {
        merge_by_seq(&mut self.totals, other.totals);
        merge_by_seq(&mut self.baselines, other.baselines);
    }
}

/// An add-wins observed-remove set of byte strings (the optimized OR-set of Bieniusa et
/// al.), hand-written over ordered maps so that equal sets encode to equal bytes (the
/// anti-entropy digests hash the encoding; `crdts::Orswot`'s hash maps do not encode in a
/// stable order).
///
/// Each add gets a dot (node, counter) and replaces the member's dots this replica has
/// seen; a remove drops the member's dots this replica has seen; `clock` records, per
/// node, the highest counter seen. Merge laws: a member keeps the dots both sides have,
/// plus the dots one side has that the other's clock does not cover (adds the other has
/// not seen yet); clocks merge by pointwise maximum. This is the standard add-wins merge:
/// commutative, associative and idempotent, and an add concurrent with a remove survives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Set {
    clock: BTreeMap<u64, u64>,
    entries: BTreeMap<Vec<u8>, BTreeSet<(u64, u64)>>,
}

impl Set {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, node: u64, member: Vec<u8>) {
        let counter = self.clock.entry(node).or_insert(0);
        *counter += 1;
        self.entries.insert(member, BTreeSet::from([(node, *counter)]));
    }

    /// Removes `member` as this replica has seen it (concurrent adds elsewhere survive).
    pub fn remove(&mut self, member: &[u8]) {
        self.entries.remove(member);
    }

    /// Removes every member this replica has seen.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.entries.contains_key(member)
    }

    /// The members, in order.
    pub fn members(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.entries.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl CvRDT for Set {
    type Validation = std::convert::Infallible;

    fn validate_merge(&self, _other: &Self) -> Result<(), Self::Validation> {
        Ok(())
    }

    fn merge(&mut self, other: Set) {
        let covered = |clock: &BTreeMap<u64, u64>, (node, counter): &(u64, u64)| {
            clock.get(node).is_some_and(|seen| seen >= counter)
        };
        let mut members: BTreeSet<Vec<u8>> = self.entries.keys().cloned().collect();
        members.extend(other.entries.keys().cloned());
        let empty = BTreeSet::new();
        let mut entries = BTreeMap::new();
        for member in members {
            let ours = self.entries.get(&member).unwrap_or(&empty);
            let theirs = other.entries.get(&member).unwrap_or(&empty);
            let dots: BTreeSet<(u64, u64)> = ours
                .iter()
                .filter(|dot| theirs.contains(dot) || !covered(&other.clock, dot))
                .chain(theirs.iter().filter(|dot| !covered(&self.clock, dot)))
                .copied()
                .collect();
            if !dots.is_empty() {
                entries.insert(member, dots);
            }
        }
        self.entries = entries;
        for (node, counter) in other.clock {
            let seen = self.clock.entry(node).or_insert(counter);
            *seen = (*seen).max(counter);
        }
    }
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
        fn counters_converge_to_the_wrapping_sum_of_every_nodes_changes(
            changes in proptest::collection::vec((1u64..4, prop_oneof![0u64..50, Just(u64::MAX)]), 0..40),
            order in proptest::collection::vec(0usize..3, 0..20),
        ) {
            // Each node applies its own changes to its own replica (u64::MAX is Deno's -1).
            let mut replicas: Vec<Counter> = (0..3).map(|_| Counter::new()).collect();
            for (node, amount) in &changes {
                replicas[(*node - 1) as usize].add(*node, *amount);
            }
            let expected = changes.iter().fold(0u64, |sum, (_, amount)| sum.wrapping_add(*amount));
            // States travel in any order, with repeats; then every state once (anti-entropy).
            let mut target = Counter::new();
            for index in order.iter().chain([0, 1, 2].iter()) {
                target.merge(over_the_wire(&replicas[*index]));
            }
            prop_assert_eq!(target.value(), expected);
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
                    replicas[replica].add(node, vec![member]);
                } else {
                    replicas[replica].remove(&[member]);
                }
                if gossip {
                    let other = over_the_wire(&replicas[(replica + 1) % 3]);
                    replicas[replica].merge(other);
                }
            }
            let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
            let forward = merged(a, &[b.clone(), c.clone()]);
            let backward = merged(c, &[b.clone(), a.clone(), c.clone()]);
            prop_assert_eq!(&forward, &backward, "equal states, so equal bytes and digests");
            prop_assert_eq!(&merged(a, std::slice::from_ref(a)), a);
            prop_assert_eq!(merged(a, std::slice::from_ref(b)), merged(b, std::slice::from_ref(a)));
        }
    }

    #[test]
    fn concurrent_resets_remove_what_they_saw_once_and_later_increments_survive() {
        let mut a = Counter::new();
        a.add(3, 10);
        let mut b = a.clone();
        let mut c = a.clone();
        a.reset();
        b.reset();
        c.add(3, 3);
        a.merge(b);
        a.merge(c);
        assert_eq!(a.value(), 3);
    }

    #[test]
    fn an_add_wins_over_a_concurrent_remove() {
        let mut here = Set::new();
        here.add(1, b"x".to_vec());
        let mut there = here.clone();
        here.remove(b"x");
        there.add(2, b"x".to_vec());
        here.merge(there.clone());
        assert!(here.contains(b"x"));
        // A remove that saw the add wins over it.
        here.remove(b"x");
        there.merge(here.clone());
        assert!(!there.contains(b"x"));
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
