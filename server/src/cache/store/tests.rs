//! The cache store against a manual clock: merging, expiry, tombstones, the outbox limit
//! and recovery from a poisoned lock.

use super::*;
use std::time::Duration;

use crate::clock::ManualClock;
use crate::storage::MemoryEngine;

const GRACE_MS: u64 = 10_000;

fn store(node: u64, clock: &ManualClock, keyspace: Arc<Keyspace>) -> CacheStore {
    CacheStore::open(
        Arc::new(MemoryEngine::new()),
        node,
        Arc::new(clock.clone()),
        Durability::Sync,
        CacheSettings {
            max_clock_skew: Duration::from_millis(1_000),
            tombstone_grace: Duration::from_millis(GRACE_MS),
            outbox_limit: 3,
            ..CacheSettings::default()
        },
        keyspace,
        broadcast::channel(16).0,
    )
    .unwrap()
}

/// Every key is a cache key.
fn all_cache() -> Arc<Keyspace> {
    let engine = MemoryEngine::new();
    let mut batch = WriteBatch::default();
    Keyspace::stage(&mut batch, b"", Class::Cache);
    engine.write(batch, Durability::Sync).unwrap();
    Arc::new(Keyspace::load(&engine).unwrap())
}

fn set(key: &[u8], value: &[u8], expires_at_ms: Option<u64>) -> CacheOp {
    CacheOp::Set {
        key: key.to_vec(),
        payload: Payload {
            encoding: 0,
            bytes: value.to_vec(),
            metadata: None,
            expires_at_ms,
        },
    }
}

fn shown(store: &CacheStore, key: &[u8]) -> Option<Vec<u8>> {
    let bytes = store.engine.get(ColumnFamily::Cache, key).unwrap()?;
    CacheStore::visible_envelope(key, &bytes, store.wall.now_ms())
        .unwrap()
        .map(|e| e.value)
}

#[test]
fn a_panic_while_the_state_is_locked_leaves_later_operations_working() {
    let clock = ManualClock::new(1_000);
    let store = store(1, &clock, all_cache());
    store.write(&[set(b"before", b"x", None)]).unwrap();
    let digests = store.digests();
    // Half an update, then a panic with the lock held.
    let panicked = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut state = store.state.lock().unwrap();
                state.digests.toggle(0, 1);
                state.records += 7;
                panic!("a bug in a cache operation");
            })
            .join()
    });
    assert!(panicked.is_err() && store.state.is_poisoned());
    assert_eq!(
        store.digests(),
        digests,
        "the half update is gone: rebuilt from storage"
    );
    assert!(!store.state.is_poisoned());
    clock.advance(1);
    store.write(&[set(b"after", b"y", None)]).unwrap();
    assert_eq!(shown(&store, b"after"), Some(b"y".to_vec()));
    assert_eq!(store.snapshot().records, 2);
}

#[test]
fn merging_is_idempotent_and_two_stores_end_with_equal_digests() {
    let clock = ManualClock::new(1_000);
    let (a, b) = (store(1, &clock, all_cache()), store(2, &clock, all_cache()));
    a.write(&[set(b"k", b"from a", None)]).unwrap();
    clock.advance(1);
    b.write(&[set(b"k", b"from b", None), set(b"other", b"x", None)])
        .unwrap();
    let from_a = a.records(&[b"k".to_vec()]).unwrap();
    let from_b = b.records(&[b"k".to_vec(), b"other".to_vec()]).unwrap();
    assert_eq!(
        b.merge(&from_a, Source::Outbox { from_node: 1 }).unwrap(),
        0,
        "b's write is later"
    );
    assert_eq!(a.merge(&from_b, Source::Outbox { from_node: 2 }).unwrap(), 2);
    assert_eq!(
        a.merge(&from_b, Source::Outbox { from_node: 2 }).unwrap(),
        0,
        "a duplicate changes nothing"
    );
    assert_eq!(shown(&a, b"k"), Some(b"from b".to_vec()));
    assert_eq!(a.digests(), b.digests());
    let counters = a.snapshot();
    assert_eq!(
        (counters.merges, counters.conflicts_resolved, counters.records),
        (2, 1, 2)
    );
}

#[test]
fn a_record_stamped_too_far_ahead_is_refused_and_counted() {
    let clock = ManualClock::new(1_000);
    let ahead = ManualClock::new(5_000);
    let (here, fast) = (store(1, &clock, all_cache()), store(2, &ahead, all_cache()));
    fast.write(&[set(b"k", b"from the future", None)]).unwrap();
    let records = fast.records(&[b"k".to_vec()]).unwrap();
    assert_eq!(here.merge(&records, Source::Repair).unwrap(), 0);
    assert_eq!(shown(&here, b"k"), None);
    assert_eq!(here.snapshot().clock_skew_refusals, 1);
    here.write(&[set(b"k", b"now", None)]).unwrap();
    assert!(here.stamp().wall_ms < 5_000, "the bad clock did not leak into ours");
}

#[test]
fn keys_of_the_strong_class_are_never_merged() {
    let clock = ManualClock::new(1_000);
    let (here, there) = (store(1, &clock, Arc::default()), store(2, &clock, all_cache()));
    there.write(&[set(b"k", b"v", None)]).unwrap();
    let records = there.records(&[b"k".to_vec()]).unwrap();
    assert_eq!(here.merge(&records, Source::Repair).unwrap(), 0);
    assert_eq!(here.snapshot().records, 0);
}

#[test]
fn expired_values_become_tombstones_and_tombstones_go_after_the_grace_period() {
    let clock = ManualClock::new(1_000);
    let store = store(1, &clock, all_cache());
    store.write(&[set(b"brief", b"v", Some(1_500))]).unwrap();
    store.write(&[CacheOp::Delete { key: b"gone".to_vec() }]).unwrap();
    assert_eq!(store.snapshot().tombstones, 1);
    clock.set(1_500);
    assert_eq!(shown(&store, b"brief"), None, "expired, never served");
    store.sweep(100).unwrap();
    let after_expiry = store.snapshot();
    assert_eq!((after_expiry.tombstones, after_expiry.records), (2, 2));
    clock.set(1_500 + GRACE_MS);
    store.sweep(100).unwrap();
    let collected = store.snapshot();
    assert_eq!((collected.tombstones, collected.records), (0, 0));
    assert_eq!(store.digests(), vec![0; BUCKETS], "nothing left to compare");

    // A peer's tombstone that is already collectable is not taken in.
    let other = super::tests::store(2, &clock, all_cache());
    clock.set(2_000 + GRACE_MS);
    other.write(&[CacheOp::Delete { key: b"old".to_vec() }]).unwrap();
    let records = other.records(&[b"old".to_vec()]).unwrap();
    clock.advance(GRACE_MS);
    assert_eq!(store.merge(&records, Source::Repair).unwrap(), 0);
}

#[test]
fn the_outbox_keeps_entries_until_taken_and_drops_the_oldest_beyond_its_limit() {
    let clock = ManualClock::new(1_000);
    let store = store(1, &clock, all_cache());
    for key in [b"a", b"b"] {
        store.write(&[set(key, b"v", None)]).unwrap();
    }
    assert_eq!(store.trim_outbox(0).unwrap(), 1, "nothing taken, under the limit");
    assert_eq!(store.outbox_after(0, 10).unwrap().len(), 2);
    assert_eq!(store.trim_outbox(1).unwrap(), 2, "entry 1 was taken by every peer");
    for key in [b"c", b"d", b"e"] {
        store.write(&[set(key, b"v", None)]).unwrap();
    }
    // Head 5, limit 3: entries up to 2 go although no peer took entry 2.
    assert_eq!(store.trim_outbox(1).unwrap(), 3);
    let kept: Vec<u64> = store
        .outbox_after(0, 10)
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(kept, [3, 4, 5]);
    assert_eq!(store.snapshot().outbox_dropped, 1);
}
