//! A cache key's whole replicated state, [`CacheRecord`]: what a node stores for the key,
//! ships to its peers and merges from them.
//!
//! The record is a product of lattices: the value [`Register`] (set and delete), the sum
//! [`Counter`] (a wrapping counter with resets), the member [`Set`] (an add-wins OR-set), the `max` and `min`
//! [`Extremum`]s, and the stamp of the latest write to each part (max registers). Merging
//! merges each part on its own, so the record's merge inherits their laws: commutative,
//! associative and idempotent (property-tested below, through the wire format, with
//! tombstones and TTLs).
//!
//! What a read sees is decided by the stamps, identically on every replica holding the
//! same record: the part written last shows. The register shows its value, or nothing for
//! a tombstone or an expired value; the counter shows as a u64; the set shows as a JSON
//! array of its members (sorted), or nothing when empty; `max` and `min` show their u64.
//! On equal stamps (one atomic write touching a key twice) the register wins over the set,
//! the set over the counter, the counter over `max`, `max` over `min`.
//!
//! Rules for the operations on one node (all documented in docs/api.md):
//! - `set` writes the register; the later write (by hybrid timestamp) wins everywhere,
//!   TTL and metadata included.
//! - `delete` writes a tombstone, resets the counter and removes the set members, as far
//!   as this node has observed them: a later `sum` counts from zero and a later `sadd`
//!   starts an empty set, while increments and adds made concurrently elsewhere survive
//!   (an add survives a concurrent remove, as in any OR-set).
//! - `max`/`min` keep the largest/smallest operand of the current run. A run starts when
//!   the key showed nothing or something else, in the epoch of the record's latest stamp
//!   then (the empty stamp for a key never written, so first writes from every region
//!   combine); a later epoch replaces an earlier one, so a `max` concurrent with a
//!   `delete` it had not seen is dropped with the run it belonged to.
//! - `sum`, `sadd`, `srem`, `max` and `min` are refused (`TYPE_MISMATCH`) on a key that
//!   shows a value of another kind; on a key that shows nothing they start afresh.

use crdts::CvRDT;
use serde::{Deserialize, Serialize};

use super::hlc::Timestamp;
use super::values::{Counter, Payload, Register, Set, register};

/// `edgekv.v1.ValueEncoding.VALUE_ENCODING_JSON` as its protobuf number.
const JSON_ENCODING: i32 = 2;
/// `edgekv.v1.ValueEncoding.VALUE_ENCODING_U64` as its protobuf number.
const U64_ENCODING: i32 = 4;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub register: Register,
    pub counter: Counter,
    /// The stamp of the latest `sum`.
    pub counter_stamp: Timestamp,
    pub set: Set,
    /// The stamp of the latest `sadd` or `srem`.
    pub set_stamp: Timestamp,
    pub max: Extremum,
    pub max_stamp: Timestamp,
    pub min: Extremum,
    pub min_stamp: Timestamp,
}

/// The largest (or smallest) operand of one run of `max` (or `min`) writes. Merge laws:
/// the later epoch wins outright; within one epoch the values combine by max (or min),
/// with `None` as the identity. That is the lexicographic product of a total order and a
/// semilattice, itself a semilattice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extremum {
    pub epoch: Timestamp,
    pub value: Option<u64>,
}

impl Extremum {
    fn merge(&mut self, other: Extremum, combine: fn(u64, u64) -> u64) {
        match self.epoch.cmp(&other.epoch) {
            std::cmp::Ordering::Less => *self = other,
            std::cmp::Ordering::Equal => {
                self.value = match (self.value, other.value) {
                    (Some(a), Some(b)) => Some(combine(a, b)),
                    (a, b) => a.or(b),
                }
            }
            std::cmp::Ordering::Greater => {}
        }
    }
}

/// Which part of a record a read sees: the one written last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shown {
    Nothing,
    Register,
    Set,
    Counter,
    Max,
    Min,
}

/// What a read of a cache key shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visible {
    pub payload: Payload,
    /// The write that decided it (the versionstamp a reader sees).
    pub stamp: Timestamp,
}

/// Why a `sum`, `sadd` or `srem` was refused: the key shows a value of another kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindMismatch {
    pub found: &'static str,
}

impl Default for CacheRecord {
    fn default() -> Self {
        Self {
            register: register(None, Timestamp::default()),
            counter: Counter::new(),
            counter_stamp: Timestamp::default(),
            set: Set::new(),
            set_stamp: Timestamp::default(),
            max: Extremum::default(),
            max_stamp: Timestamp::default(),
            min: Extremum::default(),
            min_stamp: Timestamp::default(),
        }
    }
}

impl CacheRecord {
    pub fn merge(&mut self, other: CacheRecord) {
        // One stamp, two values: the same write, one copy of it reclaimed by a sweeper after
        // it expired. The reclaimed copy wins, so replicas agree on the bytes too (and their
        // digests match). A stamp belongs to one write, so nothing else meets this way.
        let reclaimed = self.register.marker == other.register.marker && other.register.val.is_none();
        self.register.merge(other.register);
        if reclaimed {
            self.register.val = None;
        }
        self.counter.merge(other.counter);
        self.counter_stamp = self.counter_stamp.max(other.counter_stamp);
        self.set.merge(other.set);
        self.set_stamp = self.set_stamp.max(other.set_stamp);
        self.max.merge(other.max, u64::max);
        self.max_stamp = self.max_stamp.max(other.max_stamp);
        self.min.merge(other.min, u64::min);
        self.min_stamp = self.min_stamp.max(other.min_stamp);
    }

    /// The latest stamp of any write in the record.
    pub fn stamp(&self) -> Timestamp {
        [self.counter_stamp, self.set_stamp, self.max_stamp, self.min_stamp]
            .into_iter()
            .fold(self.register.marker, Timestamp::max)
    }

    fn shown(&self) -> Shown {
        let latest = self.stamp();
        // In order of precedence on equal stamps.
        let parts = [
            (self.register.marker, Shown::Register),
            (self.set_stamp, Shown::Set),
            (self.counter_stamp, Shown::Counter),
            (self.max_stamp, Shown::Max),
            (self.min_stamp, Shown::Min),
        ];
        match parts.into_iter().find(|(stamp, _)| *stamp == latest) {
            Some(_) if latest == Timestamp::default() => Shown::Nothing,
            Some((_, shown)) => shown,
            None => Shown::Nothing,
        }
    }

    /// The members, sorted.
    pub fn members(&self) -> Vec<Vec<u8>> {
        self.set.members().cloned().collect()
    }

    /// What kind of value a read at `now_ms` sees, if any (for refusals).
    fn live_kind(&self, now_ms: u64) -> Option<Shown> {
        self.visible(now_ms).map(|_| self.shown())
    }

    /// What a read at `now_ms` sees, if anything.
    pub fn visible(&self, now_ms: u64) -> Option<Visible> {
        let computed = |encoding, bytes, stamp| {
            Some(Visible {
                payload: Payload {
                    encoding,
                    bytes,
                    metadata: None,
                    expires_at_ms: None,
                },
                stamp,
            })
        };
        match self.shown() {
            Shown::Nothing => None,
            Shown::Counter => computed(
                U64_ENCODING,
                self.counter.value().to_le_bytes().to_vec(),
                self.counter_stamp,
            ),
            Shown::Max => self
                .max
                .value
                .and_then(|v| computed(U64_ENCODING, v.to_le_bytes().to_vec(), self.max_stamp)),
            Shown::Min => self
                .min
                .value
                .and_then(|v| computed(U64_ENCODING, v.to_le_bytes().to_vec(), self.min_stamp)),
            Shown::Set => {
                let members = self.members();
                if members.is_empty() {
                    return None;
                }
                let members: Vec<String> = members
                    .into_iter()
                    .map(|m| String::from_utf8_lossy(&m).into_owned())
                    .collect();
                let json = serde_json::to_vec(&members).expect("strings always serialize");
                computed(JSON_ENCODING, json, self.set_stamp)
            }
            Shown::Register => super::values::live(&self.register, now_ms).map(|payload| Visible {
                payload: payload.clone(),
                stamp: self.register.marker,
            }),
        }
    }

    /// Whether the record is a tombstone: deleted, its expired value reclaimed, or its
    /// set emptied. It stays until collected, so older writes arriving late lose to it.
    pub fn is_tombstone(&self) -> bool {
        match self.shown() {
            Shown::Register => self.register.val.is_none(),
            Shown::Set => self.set.is_empty(),
            Shown::Max => self.max.value.is_none(),
            Shown::Min => self.min.value.is_none(),
            Shown::Nothing | Shown::Counter => false,
        }
    }

    /// Since when the key has shown nothing (deleted, or its value expired): `None` while
    /// a read can see something or could once its value expires.
    pub fn dead_since(&self, now_ms: u64) -> Option<u64> {
        match self.shown() {
            Shown::Nothing | Shown::Counter => None,
            Shown::Set => self.is_tombstone().then_some(self.set_stamp.wall_ms),
            Shown::Max => self.is_tombstone().then_some(self.max_stamp.wall_ms),
            Shown::Min => self.is_tombstone().then_some(self.min_stamp.wall_ms),
            Shown::Register => match &self.register.val {
                None => Some(self.register.marker.wall_ms),
                Some(payload) => payload
                    .expires_at_ms
                    .filter(|at| *at <= now_ms)
                    .map(|at| at.max(self.register.marker.wall_ms)),
            },
        }
    }

    /// When the sweeper should next look at this record: when its value expires, or when
    /// its tombstone may be collected (`grace_ms` after the key died).
    pub fn next_due(&self, now_ms: u64, grace_ms: u64) -> Option<u64> {
        if let Some(since) = self.dead_since(now_ms) {
            return Some(since.saturating_add(grace_ms));
        }
        if self.shown() != Shown::Register {
            return None;
        }
        self.register.val.as_ref().and_then(|p| p.expires_at_ms)
    }

    /// A local write's stamp is above everything this node holds (the store's clock has
    /// witnessed every stored stamp and observes every merged one), so the register takes
    /// it outright.
    fn write_register(&mut self, value: Option<Payload>, stamp: Timestamp) {
        debug_assert!(stamp > self.register.marker, "a local stamp is above every stored one");
        self.register = register(value, stamp);
    }

    pub fn set(&mut self, payload: Payload, stamp: Timestamp) {
        self.write_register(Some(payload), stamp);
    }

    pub fn delete(&mut self, stamp: Timestamp) {
        self.counter.reset();
        self.set.clear();
        // A new, empty run: a max or min of the old run that arrives later is dropped.
        self.max = Extremum {
            epoch: stamp,
            value: None,
        };
        self.min = self.max;
        self.write_register(None, stamp);
    }

    /// Drops an expired value's bytes, keeping its stamp (so an older write arriving late
    /// still loses to it). Returns whether anything changed.
    pub fn reclaim_expired(&mut self, now_ms: u64) -> bool {
        let expired = self.shown() == Shown::Register
            && self
                .register
                .val
                .as_ref()
                .is_some_and(|p| p.expires_at_ms.is_some_and(|at| at <= now_ms));
        if expired {
            self.register.val = None;
        }
        expired
    }

    /// Refuses an operation on `kind` when the key shows a live value of another kind;
    /// says whether the key shows nothing (the operation then starts afresh).
    fn starts_afresh(&self, kind: Shown, now_ms: u64) -> Result<bool, KindMismatch> {
        match self.live_kind(now_ms) {
            None => Ok(self.shown() != kind || self.is_tombstone()),
            Some(shown) if shown == kind => Ok(false),
            Some(Shown::Register) => Err(KindMismatch {
                found: "a value written with set",
            }),
            Some(Shown::Counter) => Err(KindMismatch { found: "a counter" }),
            Some(Shown::Max) => Err(KindMismatch {
                found: "a max register",
            }),
            Some(Shown::Min) => Err(KindMismatch {
                found: "a min register",
            }),
            Some(_) => Err(KindMismatch { found: "a set" }),
        }
    }

    pub fn sum(&mut self, operand: u64, stamp: Timestamp, node: u64, now_ms: u64) -> Result<(), KindMismatch> {
        if self.starts_afresh(Shown::Counter, now_ms)? {
            self.counter.reset();
        }
        self.counter.add(node, operand);
        self.counter_stamp = self.counter_stamp.max(stamp);
        Ok(())
    }

    /// `max` (`largest`) or `min` (not `largest`) of the current run and `operand`.
    pub fn extremum(&mut self, largest: bool, operand: u64, stamp: Timestamp, now_ms: u64) -> Result<(), KindMismatch> {
        let kind = if largest { Shown::Max } else { Shown::Min };
        let epoch = self.stamp();
        let afresh = self.starts_afresh(kind, now_ms)?;
        let (part, part_stamp, combine): (&mut Extremum, &mut Timestamp, fn(u64, u64) -> u64) = if largest {
            (&mut self.max, &mut self.max_stamp, u64::max)
        } else {
            (&mut self.min, &mut self.min_stamp, u64::min)
        };
        if afresh {
            *part = Extremum {
                epoch,
                value: Some(operand),
            };
        } else {
            part.merge(
                Extremum {
                    epoch: part.epoch,
                    value: Some(operand),
                },
                combine,
            );
        }
        *part_stamp = (*part_stamp).max(stamp);
        Ok(())
    }

    pub fn add_member(
        &mut self,
        member: Vec<u8>,
        stamp: Timestamp,
        node: u64,
        now_ms: u64,
    ) -> Result<(), KindMismatch> {
        if self.starts_afresh(Shown::Set, now_ms)? {
            self.set.clear();
        }
        self.set.add(node, member);
        self.set_stamp = self.set_stamp.max(stamp);
        Ok(())
    }

    pub fn remove_member(&mut self, member: Vec<u8>, stamp: Timestamp, now_ms: u64) -> Result<(), KindMismatch> {
        if self.starts_afresh(Shown::Set, now_ms)? {
            self.set.clear();
        }
        self.set.remove(&member);
        self.set_stamp = self.set_stamp.max(stamp);
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("records always encode")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Set {
            bytes: u8,
            ttl: Option<u64>,
        },
        Delete,
        Sum(u64),
        Add(u8),
        Remove(u8),
        Max(u64),
        Min(u64),
        /// The sweeper reclaiming an expired value.
        Reclaim,
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), proptest::option::of(1u64..40)).prop_map(|(bytes, ttl)| Op::Set { bytes, ttl }),
            Just(Op::Delete),
            (0u64..1_000).prop_map(Op::Sum),
            (0u8..4).prop_map(Op::Add),
            (0u8..4).prop_map(Op::Remove),
            (0u64..100).prop_map(Op::Max),
            (0u64..100).prop_map(Op::Min),
            Just(Op::Reclaim),
        ]
    }

    /// Three nodes each apply their own operations to their own replica at increasing
    /// times; the states (after every step) are what replication ships.
    fn histories(ops: &[(u64, Op)]) -> Vec<CacheRecord> {
        let mut replicas = [CacheRecord::default(), CacheRecord::default(), CacheRecord::default()];
        let mut shipped = Vec::new();
        for (step, (node, op)) in ops.iter().enumerate() {
            let now = step as u64 * 5;
            let stamp = Timestamp {
                wall_ms: now,
                logical: 0,
                node: *node,
            };
            let replica = &mut replicas[(*node - 1) as usize];
            match op {
                Op::Set { bytes, ttl } => replica.set(
                    Payload {
                        encoding: 0,
                        bytes: vec![*bytes],
                        metadata: None,
                        expires_at_ms: ttl.map(|t| now + t),
                    },
                    stamp,
                ),
                Op::Delete => replica.delete(stamp),
                Op::Sum(n) => {
                    let _ = replica.sum(*n, stamp, *node, now);
                }
                Op::Add(m) => {
                    let _ = replica.add_member(vec![b'a' + m], stamp, *node, now);
                }
                Op::Remove(m) => {
                    let _ = replica.remove_member(vec![b'a' + m], stamp, now);
                }
                Op::Max(n) => {
                    let _ = replica.extremum(true, *n, stamp, now);
                }
                Op::Min(n) => {
                    let _ = replica.extremum(false, *n, stamp, now);
                }
                Op::Reclaim => {
                    replica.reclaim_expired(now);
                }
            }
            shipped.push(replica.clone());
        }
        shipped
    }

    fn over_the_wire(record: &CacheRecord) -> CacheRecord {
        CacheRecord::decode(&record.encode()).unwrap()
    }

    fn merged(states: &[&CacheRecord]) -> CacheRecord {
        let mut out = CacheRecord::default();
        for state in states {
            out.merge(over_the_wire(state));
        }
        out
    }

    proptest! {
        #[test]
        fn record_merge_is_commutative_associative_and_idempotent(
            ops in proptest::collection::vec((1u64..4, op_strategy()), 3..20),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 3),
        ) {
            let states = histories(&ops);
            let (a, b, c) = (picks[0].get(&states), picks[1].get(&states), picks[2].get(&states));
            prop_assert_eq!(merged(&[a, b]), merged(&[b, a]));
            prop_assert_eq!(merged(&[&merged(&[a, b]), c]), merged(&[a, &merged(&[b, c])]));
            prop_assert_eq!(merged(&[a, a]), merged(&[a]));
        }

        #[test]
        fn replicas_that_receive_any_permutation_with_duplicates_agree_on_what_reads_see(
            ops in proptest::collection::vec((1u64..4, op_strategy()), 1..20),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
            now in 0u64..150,
        ) {
            let states = histories(&ops);
            let in_order = merged(&states.iter().collect::<Vec<_>>());
            let mut shuffled: Vec<&CacheRecord> = order.iter().map(|i| i.get(&states)).collect();
            shuffled.extend(states.iter().rev());
            let other = merged(&shuffled);
            prop_assert_eq!(&in_order, &other);
            prop_assert_eq!(in_order.encode(), other.encode(), "equal states encode alike (digests hash the bytes)");
            prop_assert_eq!(in_order.visible(now), other.visible(now));
            // Reclaiming an expired value never changes what a read sees.
            let mut reclaimed = other.clone();
            reclaimed.reclaim_expired(now);
            prop_assert_eq!(reclaimed.visible(now), other.visible(now));
        }
    }

    fn stamp(wall_ms: u64, node: u64) -> Timestamp {
        Timestamp {
            wall_ms,
            logical: 0,
            node,
        }
    }

    #[test]
    fn sums_from_every_node_add_up_and_a_delete_resets_what_it_saw() {
        let mut here = CacheRecord::default();
        here.sum(5, stamp(1, 1), 1, 1).unwrap();
        let mut there = here.clone();
        there.sum(7, stamp(2, 2), 2, 2).unwrap();
        here.merge(there.clone());
        assert_eq!(here.visible(3).unwrap().payload.bytes, 12u64.to_le_bytes());
        // A delete on node 1 that saw 12, concurrent with +3 on node 2: the +3 survives.
        here.delete(stamp(4, 1));
        there.sum(3, stamp(4, 2), 2, 4).unwrap();
        here.merge(there);
        assert_eq!(here.visible(5).unwrap().payload.bytes, 3u64.to_le_bytes());
    }

    #[test]
    fn sum_on_a_set_value_is_refused_but_counts_from_zero_once_it_expired() {
        let mut record = CacheRecord::default();
        record.sum(9, stamp(1, 1), 1, 1).unwrap();
        record.set(
            Payload {
                encoding: 0,
                bytes: b"x".to_vec(),
                metadata: None,
                expires_at_ms: Some(10),
            },
            stamp(2, 1),
        );
        assert_eq!(
            record.sum(1, stamp(3, 1), 1, 3),
            Err(KindMismatch {
                found: "a value written with set"
            })
        );
        record.sum(1, stamp(11, 1), 1, 11).unwrap();
        assert_eq!(record.visible(12).unwrap().payload.bytes, 1u64.to_le_bytes());
    }

    #[test]
    fn set_members_read_as_a_sorted_json_array_and_an_add_beats_a_concurrent_delete() {
        let mut here = CacheRecord::default();
        here.add_member(b"b".to_vec(), stamp(1, 1), 1, 1).unwrap();
        here.add_member(b"a".to_vec(), stamp(2, 1), 1, 2).unwrap();
        assert_eq!(here.visible(3).unwrap().payload.bytes, br#"["a","b"]"#);
        let mut there = here.clone();
        here.delete(stamp(4, 1));
        there.add_member(b"c".to_vec(), stamp(4, 2), 2, 4).unwrap();
        here.merge(there);
        assert_eq!(here.visible(5).unwrap().payload.bytes, br#"["c"]"#);
        assert!(here.sum(1, stamp(6, 1), 1, 6).is_err(), "a set is not a counter");
        here.remove_member(b"c".to_vec(), stamp(7, 1), 7).unwrap();
        assert_eq!(here.visible(8), None, "an empty set reads as absent");
        assert!(here.is_tombstone());
        here.sum(2, stamp(9, 1), 1, 9).unwrap();
        assert_eq!(here.visible(10).unwrap().payload.bytes, 2u64.to_le_bytes());
    }

    #[test]
    fn max_from_every_region_keeps_the_largest_and_a_delete_starts_a_new_run() {
        let mut here = CacheRecord::default();
        let mut there = CacheRecord::default();
        here.extremum(true, 5, stamp(1, 1), 1).unwrap();
        there.extremum(true, 9, stamp(1, 2), 1).unwrap();
        here.merge(there.clone());
        assert_eq!(
            here.visible(2).unwrap().payload.bytes,
            9u64.to_le_bytes(),
            "first writes combine"
        );
        here.delete(stamp(3, 1));
        here.extremum(true, 2, stamp(4, 1), 4).unwrap();
        there.merge(here.clone());
        assert_eq!(
            there.visible(5).unwrap().payload.bytes,
            2u64.to_le_bytes(),
            "the new run replaced the old"
        );
        assert!(
            there.sum(1, stamp(6, 2), 2, 6).is_err(),
            "a max register is not a counter"
        );
        let mut low = CacheRecord::default();
        low.extremum(false, 7, stamp(1, 1), 1).unwrap();
        low.extremum(false, 3, stamp(2, 1), 2).unwrap();
        low.extremum(false, 4, stamp(3, 1), 3).unwrap();
        assert_eq!(low.visible(4).unwrap().payload.bytes, 3u64.to_le_bytes());
    }

    #[test]
    fn one_write_touching_a_key_twice_ends_with_its_last_mutation() {
        let mut record = CacheRecord::default();
        let payload = Payload {
            encoding: 0,
            bytes: b"x".to_vec(),
            metadata: None,
            expires_at_ms: None,
        };
        record.set(payload, stamp(1, 1));
        record.delete(stamp(2, 1));
        record.sum(3, stamp(3, 1), 1, 3).unwrap();
        assert_eq!(record.visible(4).unwrap().payload.bytes, 3u64.to_le_bytes());
    }

    #[test]
    fn a_dead_key_is_due_for_collection_a_grace_period_after_it_died() {
        let mut record = CacheRecord::default();
        assert_eq!(record.next_due(0, 100), None, "an empty record is never written");
        record.set(
            Payload {
                encoding: 0,
                bytes: b"x".to_vec(),
                metadata: None,
                expires_at_ms: Some(50),
            },
            stamp(10, 1),
        );
        assert_eq!(record.next_due(20, 100), Some(50), "first: when the value expires");
        assert_eq!(record.next_due(60, 100), Some(150), "then: a grace period after");
        record.delete(stamp(200, 1));
        assert_eq!(record.next_due(201, 100), Some(300));
    }
}
