//! Domain tests on the in-memory engine with a manual clock: the semantics of atomic
//! writes, lists and TTL, checked against a plain model.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgekv_proto::v1::ValueEncoding;
use edgekv_proto::{Versionstamp, key};
use proptest::prelude::*;

use super::*;
use crate::clock::ManualClock;
use crate::storage::MemoryEngine;
use crate::ttl::sweeper::{SWEEP_BATCH, due_entries};

/// A one-voter Raft member on the in-memory engine: the same write path as a node.
struct TestNode {
    raft: Arc<crate::raft::RaftNode>,
    proposer: tokio::task::JoinHandle<()>,
    stop: tokio_util::sync::CancellationToken,
}

impl TestNode {
    async fn start(engine: Arc<MemoryEngine>, clock: &ManualClock) -> (KvStore, Self) {
        use crate::raft::{Bootstrap, Member, RaftNode, RaftSettings};
        let clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let machine = KvStoreBuilder::new(engine.clone(), clock.clone()).unwrap();
        let (engine_for_cache, clock_for_cache): (Arc<dyn Engine>, _) = (engine.clone(), clock.clone());
        let member = Member {
            region: "local".into(),
            peer_addr: "127.0.0.1:1".into(),
        };
        let transport = Arc::new(crate::net::PeerTransport::new(
            "local".into(),
            Arc::default(),
            std::time::Duration::from_secs(1),
            None,
        ));
        let (raft, proposer) = RaftNode::start(
            1,
            member.clone(),
            "127.0.0.1:0".into(),
            engine,
            machine.applier(),
            Durability::Sync,
            RaftSettings::default(),
            transport,
            clock,
            Default::default(),
        )
        .await
        .unwrap();
        raft.bootstrap(&Bootstrap::InitialCluster([(1, member)].into()))
            .await
            .unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let proposer = tokio::spawn(proposer.run(stop.clone()));
        let cache = Arc::new(
            crate::cache::CacheStore::open(
                engine_for_cache,
                1,
                clock_for_cache,
                Durability::Sync,
                crate::cache::CacheSettings {
                    tombstone_grace: std::time::Duration::from_secs(60),
                    outbox_limit: 1_000,
                    ..Default::default()
                },
                machine.keyspace(),
                machine.changes(),
            )
            .unwrap(),
        );
        (machine.into_store(raft.clone(), cache), Self { raft, proposer, stop })
    }

    async fn shutdown(self) {
        self.raft.shutdown().await;
        self.stop.cancel();
        self.proposer.await.unwrap();
    }
}

async fn store(clock: &ManualClock) -> (KvStore, TestNode, Arc<MemoryEngine>) {
    let engine = Arc::new(MemoryEngine::new());
    let (store, node) = TestNode::start(engine.clone(), clock).await;
    (store, node, engine)
}

fn set(key: Vec<u8>, value: &str, expiry: Option<Expiry>) -> Mutation {
    Mutation::Set {
        key,
        encoding: ValueEncoding::Utf8,
        value: value.as_bytes().to_vec(),
        expiry,
        metadata: None,
    }
}

fn write(checks: Vec<Check>, mutations: Vec<Mutation>) -> AtomicWrite {
    AtomicWrite { checks, mutations }
}

async fn commit(store: &KvStore, mutations: Vec<Mutation>) -> Versionstamp {
    match store.atomic(write(vec![], mutations)).await.unwrap() {
        AtomicOutcome::Committed(committed) => committed.versionstamp,
        other => panic!("expected a commit, got {other:?}"),
    }
}

async fn value_of(store: &KvStore, key: &[u8]) -> Option<String> {
    let (entry, _) = store.get(key, Consistency::Strong).await.unwrap();
    entry.map(|e| String::from_utf8(e.envelope.value).unwrap())
}

#[tokio::test]
async fn a_commit_answers_with_the_values_of_its_numeric_mutations() {
    let clock = ManualClock::new(10_000);
    let (store, thread, _) = store(&clock).await;
    let numeric = |op, key: Vec<u8>, operand| Mutation::Numeric { op, key, operand };
    let (hits, peak) = (key!["hits"].encode(), key!["peak"].encode());
    commit(&store, vec![numeric(NumericOp::Sum, hits.clone(), 40)]).await;
    let outcome = store
        .atomic(write(
            vec![],
            vec![
                numeric(NumericOp::Sum, hits.clone(), 2),
                set(key!["other"].encode(), "x", None),
                numeric(NumericOp::Max, peak.clone(), 7),
                numeric(NumericOp::Max, peak.clone(), 5),
                numeric(NumericOp::Min, hits.clone(), 10),
            ],
        ))
        .await
        .unwrap();
    let AtomicOutcome::Committed(committed) = outcome else {
        panic!("no checks: {outcome:?}")
    };
    // Each in the order applied: 40 + 2, max(absent, 7), max(7, 5), min(42, 10).
    assert_eq!(committed.numeric_results, vec![(0, 42), (2, 7), (3, 7), (4, 10)]);

    // A cache key's counter answers with this node's merged value.
    store.set_class(&key!["c"].encode(), Class::Cache).await.unwrap();
    let counter = key!["c", "visits"].encode();
    commit(&store, vec![numeric(NumericOp::Sum, counter.clone(), 3)]).await;
    let AtomicOutcome::Committed(cached) = store
        .atomic(write(vec![], vec![numeric(NumericOp::Sum, counter, 4)]))
        .await
        .unwrap()
    else {
        panic!("no checks")
    };
    assert_eq!(cached.numeric_results, vec![(0, 7)]);
    thread.shutdown().await;
}

#[tokio::test]
async fn versionstamps_increase_and_checks_see_them() {
    let clock = ManualClock::new(1_000);
    let (store, thread, _) = store(&clock).await;
    let k = key!["a"].encode();
    let first = commit(&store, vec![set(k.clone(), "1", None)]).await;
    let second = commit(&store, vec![set(k.clone(), "2", None)]).await;
    assert!(second > first);

    let stale = store
        .atomic(write(
            vec![Check {
                key: k.clone(),
                versionstamp: Some(first),
            }],
            vec![set(k.clone(), "3", None)],
        ))
        .await;
    assert_eq!(stale.unwrap(), AtomicOutcome::CheckFailed(vec![0]));
    assert_eq!(value_of(&store, &k).await.as_deref(), Some("2"));

    let fresh = store
        .atomic(write(
            vec![Check {
                key: k.clone(),
                versionstamp: Some(second),
            }],
            vec![set(k.clone(), "3", None)],
        ))
        .await;
    assert!(matches!(fresh.unwrap(), AtomicOutcome::Committed(c) if c.versionstamp > second));

    let absent = store
        .atomic(write(
            vec![Check {
                key: key!["b"].encode(),
                versionstamp: None,
            }],
            vec![],
        ))
        .await;
    assert!(matches!(absent.unwrap(), AtomicOutcome::Committed(_)));
    thread.shutdown().await;
}

#[tokio::test]
async fn failed_mutation_leaves_nothing_behind() {
    let clock = ManualClock::new(1_000);
    let (store, thread, _) = store(&clock).await;
    let text = key!["text"].encode();
    let other = key!["other"].encode();
    commit(&store, vec![set(text.clone(), "hello", None)]).await;
    let result = store
        .atomic(write(
            vec![],
            vec![
                set(other.clone(), "x", None),
                Mutation::Numeric {
                    op: NumericOp::Sum,
                    key: text.clone(),
                    operand: 1,
                },
            ],
        ))
        .await;
    assert_eq!(result.unwrap_err().code(), edgekv_proto::ErrorCode::TypeMismatch);
    assert_eq!(
        value_of(&store, &other).await,
        None,
        "the set before the failing sum must not land"
    );
    thread.shutdown().await;
}

#[tokio::test]
async fn numeric_mutations_follow_deno_semantics() {
    let clock = ManualClock::new(1_000);
    let (store, thread, _) = store(&clock).await;
    let n = key!["n"].encode();
    let read = async |store: &KvStore| {
        let entry = store.get(&n, Consistency::Strong).await.unwrap().0.unwrap();
        assert_eq!(entry.envelope.encoding, ValueEncoding::U64);
        u64::from_le_bytes(entry.envelope.value.try_into().unwrap())
    };
    commit(
        &store,
        vec![Mutation::Numeric {
            op: NumericOp::Sum,
            key: n.clone(),
            operand: 5,
        }],
    )
    .await;
    assert_eq!(read(&store).await, 5);
    commit(
        &store,
        vec![Mutation::Numeric {
            op: NumericOp::Sum,
            key: n.clone(),
            operand: u64::MAX,
        }],
    )
    .await;
    assert_eq!(read(&store).await, 4, "sum wraps around");
    commit(
        &store,
        vec![Mutation::Numeric {
            op: NumericOp::Max,
            key: n.clone(),
            operand: 10,
        }],
    )
    .await;
    assert_eq!(read(&store).await, 10);
    commit(
        &store,
        vec![Mutation::Numeric {
            op: NumericOp::Min,
            key: n.clone(),
            operand: 3,
        }],
    )
    .await;
    assert_eq!(read(&store).await, 3);
    thread.shutdown().await;
}

#[tokio::test]
async fn list_pages_with_cursor_and_skips_expired() {
    let clock = ManualClock::new(1_000);
    let (store, thread, _) = store(&clock).await;
    let mut mutations: Vec<Mutation> = (0..10)
        .map(|i| set(key!["items", i].encode(), &i.to_string(), None))
        .collect();
    mutations.push(set(key!["items", 4].encode(), "short-lived", Some(Expiry::In(10))));
    mutations.push(set(key!["other"].encode(), "x", None));
    commit(&store, mutations).await;
    clock.advance(10);

    for reverse in [false, true] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let query = ListQuery {
                selector: Selector {
                    prefix: Some(key!["items"].encode()),
                    start: None,
                    end: None,
                },
                limit: 3,
                reverse,
                cursor: cursor.clone(),
                keys_only: false,
            };
            let (page, _) = store.list(&query, Consistency::Eventual).await.unwrap();
            assert!(page.entries.len() <= 3);
            seen.extend(
                page.entries
                    .into_iter()
                    .map(|e| String::from_utf8(e.envelope.value).unwrap()),
            );
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..10).filter(|i| *i != 4).map(|i| i.to_string()).collect();
        if reverse {
            expected.reverse();
        }
        assert_eq!(seen, expected);
    }

    let bogus = ListQuery {
        selector: Selector {
            prefix: Some(key!["items"].encode()),
            start: None,
            end: None,
        },
        limit: 3,
        reverse: false,
        cursor: Some(range::encode_cursor(&key!["other"].encode())),
        keys_only: false,
    };
    assert_eq!(
        store.list(&bogus, Consistency::Strong).await.unwrap_err().code(),
        edgekv_proto::ErrorCode::InvalidCursor
    );
    thread.shutdown().await;
}

#[tokio::test]
async fn delete_range_removes_keys_and_their_index_entries() {
    let clock = ManualClock::new(1_000);
    let (store, thread, engine) = store(&clock).await;
    let mutations = (0..5)
        .map(|i| set(key!["r", i].encode(), "v", Some(Expiry::In(1_000))))
        .collect();
    commit(&store, mutations).await;
    let prefix = key!["r"].encode();
    commit(
        &store,
        vec![Mutation::DeleteRange {
            start: edgekv_proto::Key::prefix_start(&prefix),
            end: edgekv_proto::Key::prefix_end(&prefix),
        }],
    )
    .await;
    assert_eq!(store.count_keys().unwrap().0, 0);
    assert_eq!(
        engine
            .scan(ColumnFamily::Expiry, crate::storage::ScanRange::all(), false)
            .count(),
        0
    );
    thread.shutdown().await;
}

#[tokio::test]
async fn sweeper_reclaims_due_entries_and_stale_index_entries() {
    let clock = ManualClock::new(1_000);
    let (store, thread, engine) = store(&clock).await;
    let (a, b) = (key!["a"].encode(), key!["b"].encode());
    commit(
        &store,
        vec![
            set(a.clone(), "a", Some(Expiry::In(100))),
            set(b.clone(), "b", Some(Expiry::In(100))),
        ],
    )
    .await;
    // b is rewritten without expiry: its old index entry is stale and must not delete it.
    commit(&store, vec![set(b.clone(), "b2", None)]).await;
    clock.advance(100);
    assert_eq!(
        value_of(&store, &a).await,
        None,
        "expired values are invisible before any sweep"
    );
    let due = due_entries(engine.as_ref(), clock.now_ms(), SWEEP_BATCH).unwrap();
    assert_eq!(due.len(), 1, "rewriting b moved its index entry");
    assert_eq!(store.expire(due).await.unwrap(), 1);
    assert_eq!(engine.get(ColumnFamily::Data, &a).unwrap(), None);
    assert_eq!(value_of(&store, &b).await.as_deref(), Some("b2"));
    assert_eq!(
        engine
            .scan(ColumnFamily::Expiry, crate::storage::ScanRange::all(), false)
            .count(),
        0
    );
    thread.shutdown().await;
}

#[tokio::test]
async fn limits_are_enforced_with_codes() {
    use edgekv_proto::ErrorCode;
    let clock = ManualClock::new(1_000);
    let (store, thread, _) = store(&clock).await;
    let big_key = key!["x".repeat(3000)].encode();
    let code = |w| async { store.atomic(w).await.unwrap_err().code() };
    assert_eq!(
        code(write(vec![], vec![set(big_key.clone(), "v", None)])).await,
        ErrorCode::KeyTooLarge
    );
    assert_eq!(
        code(write(vec![], vec![set(vec![0x02, b'a'], "v", None)])).await,
        ErrorCode::KeyMalformed
    );
    let huge = Mutation::Set {
        key: key!["k"].encode(),
        encoding: ValueEncoding::Bytes,
        value: vec![0; (1 << 20) + 1],
        expiry: None,
        metadata: None,
    };
    assert_eq!(code(write(vec![], vec![huge])).await, ErrorCode::ValueTooLarge);
    let meta = Mutation::Set {
        key: key!["k"].encode(),
        encoding: ValueEncoding::Bytes,
        value: vec![],
        expiry: None,
        metadata: Some(format!("\"{}\"", "m".repeat(1100))),
    };
    assert_eq!(code(write(vec![], vec![meta])).await, ErrorCode::MetadataTooLarge);
    let bad_meta = Mutation::Set {
        key: key!["k"].encode(),
        encoding: ValueEncoding::Bytes,
        value: vec![],
        expiry: None,
        metadata: Some("{nope".into()),
    };
    assert_eq!(code(write(vec![], vec![bad_meta])).await, ErrorCode::MetadataMalformed);
    let many = (0..1001).map(|i| set(key!["m", i].encode(), "v", None)).collect();
    assert_eq!(code(write(vec![], many)).await, ErrorCode::TooManyMutations);
    let checks = (0..101)
        .map(|i| Check {
            key: key!["c", i].encode(),
            versionstamp: None,
        })
        .collect();
    assert_eq!(code(write(checks, vec![])).await, ErrorCode::TooManyChecks);
    assert_eq!(
        code(write(vec![], vec![set(key!["k"].encode(), "v", Some(Expiry::In(0)))])).await,
        ErrorCode::InvalidExpiry
    );
    assert_eq!(
        store.get(&big_key, Consistency::Strong).await.unwrap_err().code(),
        ErrorCode::KeyTooLarge
    );
    thread.shutdown().await;
}

/// One step of the model test.
#[derive(Clone, Debug)]
enum Step {
    Set {
        key: u8,
        value: u8,
        expire_in: Option<u64>,
    },
    Delete {
        key: u8,
    },
    Sum {
        key: u8,
        operand: u64,
    },
    /// Check the key against what the model believes, a stale stamp, or absence.
    CheckAndSet {
        key: u8,
        check: CheckKind,
        value: u8,
    },
    Advance {
        ms: u64,
    },
    Sweep,
}

#[derive(Clone, Copy, Debug)]
enum CheckKind {
    Current,
    Absent,
    Stale,
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0u8..4;
    prop_oneof![
        (key.clone(), any::<u8>(), proptest::option::of(1u64..50)).prop_map(|(key, value, expire_in)| Step::Set {
            key,
            value,
            expire_in
        }),
        key.clone().prop_map(|key| Step::Delete { key }),
        (key.clone(), any::<u64>()).prop_map(|(key, operand)| Step::Sum { key, operand }),
        (
            key,
            prop_oneof![
                Just(CheckKind::Current),
                Just(CheckKind::Absent),
                Just(CheckKind::Stale)
            ],
            any::<u8>()
        )
            .prop_map(|(key, check, value)| Step::CheckAndSet { key, check, value }),
        (0u64..40).prop_map(|ms| Step::Advance { ms }),
        Just(Step::Sweep),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum ModelValue {
    Bytes(u8),
    Counter(u64),
}

#[derive(Clone, Debug)]
struct ModelEntry {
    value: ModelValue,
    stamp: Versionstamp,
    expires_at: Option<u64>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Atomic writes, numeric mutations, TTL visibility and sweeping, against a model in
    /// which an entry exists until `now >= expires_at` and not one millisecond longer.
    #[test]
    fn atomic_and_ttl_semantics_match_the_model(steps in proptest::collection::vec(step(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let clock = ManualClock::new(10_000);
            let (store, thread, engine) = store(&clock).await;
            let mut model: BTreeMap<u8, ModelEntry> = BTreeMap::new();
            let mut last_stamp = Versionstamp::default();
            let k = |i: u8| key!["k", i].encode();
            for step in steps {
                let now = clock.now_ms();
                model.retain(|_, e| e.expires_at.is_none_or(|at| now < at));
                match step {
                    Step::Set { key, value, expire_in } => {
                        let m = Mutation::Set { key: k(key), encoding: ValueEncoding::Bytes, value: vec![value], expiry: expire_in.map(Expiry::In), metadata: None };
                        let stamp = commit(&store, vec![m]).await;
                        prop_assert!(stamp > last_stamp);
                        last_stamp = stamp;
                        model.insert(key, ModelEntry { value: ModelValue::Bytes(value), stamp, expires_at: expire_in.map(|ms| now + ms) });
                    }
                    Step::Delete { key } => {
                        last_stamp = commit(&store, vec![Mutation::Delete { key: k(key) }]).await;
                        model.remove(&key);
                    }
                    Step::Sum { key, operand } => {
                        let result = store.atomic(write(vec![], vec![Mutation::Numeric { op: NumericOp::Sum, key: k(key), operand }])).await;
                        match model.get(&key).map(|e| e.value.clone()) {
                            Some(ModelValue::Bytes(_)) => prop_assert_eq!(result.unwrap_err().code(), edgekv_proto::ErrorCode::TypeMismatch),
                            current => {
                                let AtomicOutcome::Committed(committed) = result.unwrap() else { panic!("sum has no checks") };
                                let stamp = committed.versionstamp;
                                last_stamp = stamp;
                                let next = match current { Some(ModelValue::Counter(c)) => c.wrapping_add(operand), _ => operand };
                                // The commit answers with the value the sum left, as the model has it.
                                prop_assert_eq!(committed.numeric_results, vec![(0, next)]);
                                model.insert(key, ModelEntry { value: ModelValue::Counter(next), stamp, expires_at: None });
                            }
                        }
                    }
                    Step::CheckAndSet { key, check, value } => {
                        let current = model.get(&key).map(|e| e.stamp);
                        let expected = match check {
                            CheckKind::Current => current,
                            CheckKind::Absent => None,
                            CheckKind::Stale => Some(Versionstamp::new(0, 7)),
                        };
                        let m = Mutation::Set { key: k(key), encoding: ValueEncoding::Bytes, value: vec![value], expiry: None, metadata: None };
                        let outcome = store.atomic(write(vec![Check { key: k(key), versionstamp: expected }], vec![m])).await.unwrap();
                        if expected == current {
                            let AtomicOutcome::Committed(committed) = outcome else { panic!("check should pass: {outcome:?}") };
                            let stamp = committed.versionstamp;
                            prop_assert!(committed.numeric_results.is_empty());
                            last_stamp = stamp;
                            model.insert(key, ModelEntry { value: ModelValue::Bytes(value), stamp, expires_at: None });
                        } else {
                            prop_assert_eq!(outcome, AtomicOutcome::CheckFailed(vec![0]));
                        }
                    }
                    Step::Advance { ms } => clock.advance(ms),
                    Step::Sweep => {
                        let due = due_entries(engine.as_ref(), clock.now_ms(), SWEEP_BATCH).unwrap();
                        store.expire(due).await.unwrap();
                    }
                }
                let now = clock.now_ms();
                model.retain(|_, e| e.expires_at.is_none_or(|at| now < at));
                for key in 0u8..4 {
                    let (entry, _) = store.get(&k(key), Consistency::Strong).await.unwrap();
                    let expected = model.get(&key);
                    prop_assert_eq!(entry.as_ref().map(|e| e.envelope.versionstamp), expected.map(|e| e.stamp));
                    if let (Some(entry), Some(expected)) = (entry, expected) {
                        let value = match expected.value {
                            ModelValue::Bytes(b) => vec![b],
                            ModelValue::Counter(c) => c.to_le_bytes().to_vec(),
                        };
                        prop_assert_eq!(entry.envelope.value, value);
                        prop_assert_eq!(entry.envelope.expires_at_ms, expected.expires_at);
                    }
                }
                let keys: Vec<Vec<u8>> = (0u8..4).map(k).collect();
                let (many, _) = store.get_many(&keys, Consistency::Eventual).await.unwrap();
                prop_assert_eq!(many.iter().filter(|e| e.is_some()).count(), model.len());
            }
            thread.shutdown().await;
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn check_only_and_empty_writes_get_versionstamps_that_survive_a_restart() {
    let clock = ManualClock::new(1_000);
    let engine = Arc::new(MemoryEngine::new());
    let (store, thread) = TestNode::start(engine.clone(), &clock).await;
    let checked = store
        .atomic(write(
            vec![Check {
                key: key!["nobody"].encode(),
                versionstamp: None,
            }],
            vec![],
        ))
        .await;
    let AtomicOutcome::Committed(checked) = checked.unwrap() else {
        panic!("check passes")
    };
    let AtomicOutcome::Committed(empty) = store.atomic(AtomicWrite::default()).await.unwrap() else {
        panic!("an empty write commits, as in Deno KV")
    };
    assert!(empty.versionstamp > checked.versionstamp);
    thread.shutdown().await;

    let (store, thread) = TestNode::start(engine, &clock).await;
    let after_restart = commit(&store, vec![set(key!["k"].encode(), "v", None)]).await;
    assert!(
        after_restart > empty.versionstamp,
        "a versionstamp is never handed out twice"
    );
    thread.shutdown().await;
}

#[tokio::test]
async fn prefix_selectors_exclude_the_prefix_key_itself() {
    let clock = ManualClock::new(1_000);
    let (store, thread, _) = store(&clock).await;
    let prefix = key!["a"].encode();
    for (start, end) in [(Some(prefix.clone()), None), (None, Some(prefix.clone()))] {
        let query = ListQuery {
            selector: Selector {
                prefix: Some(prefix.clone()),
                start,
                end,
            },
            limit: 10,
            reverse: false,
            cursor: None,
            keys_only: false,
        };
        assert_eq!(
            store.list(&query, Consistency::Strong).await.unwrap_err().code(),
            edgekv_proto::ErrorCode::InvalidRange
        );
    }
    thread.shutdown().await;
}

#[tokio::test]
async fn every_applied_batch_is_in_the_change_feed_in_commit_order() {
    let clock = ManualClock::new(1_000);
    let (store, thread, _) = store(&clock).await;
    let a = key!["feed", "a"].encode();
    let b = key!["feed", "b"].encode();
    let first = commit(&store, vec![set(a.clone(), "1", None)]).await;
    let second = commit(
        &store,
        vec![set(b.clone(), "2", None), Mutation::Delete { key: a.clone() }],
    )
    .await;
    let feed = store.changes_since(0, 100).unwrap();
    let written: Vec<(u64, Vec<Vec<u8>>)> = feed.into_iter().filter(|(_, keys)| !keys.is_empty()).collect();
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(written[0], (first.commit(), vec![a.clone()]));
    assert_eq!(written[1].0, second.commit());
    assert_eq!(written[1].1, vec![a.clone(), b.clone()], "keys in key order");
    assert_eq!(
        store.changes_since(first.commit(), 100).unwrap().len(),
        1,
        "resumes after an index"
    );
    thread.shutdown().await;
}

mod cache_class {
    use super::*;
    use crate::keyspace::Class;

    async fn cache_store(clock: &ManualClock) -> (KvStore, TestNode) {
        let (store, node, _) = store(clock).await;
        store.set_class(&key!["c"].encode(), Class::Cache).await.unwrap();
        (store, node)
    }

    fn refusal(result: KvResult<AtomicOutcome>) -> edgekv_proto::ErrorCode {
        result.unwrap_err().code()
    }

    #[tokio::test]
    async fn cache_keys_are_written_and_read_locally_with_their_class() {
        let clock = ManualClock::new(1_000);
        let (store, node) = cache_store(&clock).await;
        let k = key!["c", "a"].encode();
        assert_eq!(store.class_of(&k), Class::Cache);
        assert_eq!(store.class_of(&key!["s"].encode()), Class::Strong);
        let first = commit(&store, vec![set(k.clone(), "1", None)]).await;
        let second = commit(&store, vec![set(k.clone(), "2", Some(Expiry::In(500)))]).await;
        assert!(second > first, "cache versionstamps follow the hybrid clock");
        let (entry, info) = store.get(&k, Consistency::Strong).await.unwrap();
        assert_eq!(entry.unwrap().envelope.value, b"2");
        assert!(!info.strongly_consistent, "a cache read is never linearizable");
        clock.advance(500);
        assert_eq!(value_of(&store, &k).await, None, "expired, never served");
        commit(&store, vec![set(k.clone(), "3", None)]).await;
        commit(&store, vec![set(key!["s"].encode(), "strong", None)]).await;
        assert_eq!(store.count_keys().unwrap(), (2, 2), "live keys of both classes count");
        commit(&store, vec![Mutation::Delete { key: k.clone() }]).await;
        assert_eq!(value_of(&store, &k).await, None);
        assert_eq!(store.count_keys().unwrap(), (1, 2), "a tombstone is stored, not live");
        node.shutdown().await;
    }

    #[tokio::test]
    async fn checks_versionstamped_keys_and_mixed_writes_are_refused_with_their_codes() {
        use edgekv_proto::ErrorCode;
        let clock = ManualClock::new(1_000);
        let (store, node) = cache_store(&clock).await;
        let c = key!["c", "a"].encode();
        let check = Check {
            key: c.clone(),
            versionstamp: None,
        };
        assert_eq!(
            refusal(store.atomic(write(vec![check], vec![set(c.clone(), "x", None)])).await),
            ErrorCode::UnsupportedForCacheClass
        );
        let versionstamped = Mutation::SetVersionstampedKey {
            prefix: key!["c"].encode(),
            encoding: ValueEncoding::Utf8,
            value: b"x".to_vec(),
            expiry: None,
        };
        assert_eq!(
            refusal(store.atomic(write(vec![], vec![versionstamped])).await),
            ErrorCode::UnsupportedForCacheClass
        );
        let mixed = vec![set(c.clone(), "x", None), set(key!["s"].encode(), "y", None)];
        assert_eq!(
            refusal(store.atomic(write(vec![], mixed)).await),
            ErrorCode::MixedClasses
        );
        let spanning = Mutation::DeleteRange {
            start: key!["a"].encode(),
            end: key!["z"].encode(),
        };
        assert_eq!(
            refusal(store.atomic(write(vec![], vec![spanning])).await),
            ErrorCode::MixedClasses
        );
        assert_eq!(
            value_of(&store, &c).await,
            None,
            "nothing of a refused write is applied"
        );
        node.shutdown().await;
    }

    #[tokio::test]
    async fn sum_on_a_cache_key_counts_and_a_set_value_is_not_summed() {
        let clock = ManualClock::new(1_000);
        let (store, node) = cache_store(&clock).await;
        let counter = key!["c", "hits"].encode();
        let sum = |n| Mutation::Numeric {
            op: NumericOp::Sum,
            key: counter.clone(),
            operand: n,
        };
        commit(&store, vec![sum(2)]).await;
        commit(&store, vec![sum(3)]).await;
        let (entry, _) = store.get(&counter, Consistency::Eventual).await.unwrap();
        let envelope = entry.unwrap().envelope;
        assert_eq!(envelope.encoding, ValueEncoding::U64);
        assert_eq!(envelope.value, 5u64.to_le_bytes());
        let highest = key!["c", "highest"].encode();
        for operand in [4, 9, 2] {
            let max = Mutation::Numeric {
                op: NumericOp::Max,
                key: highest.clone(),
                operand,
            };
            commit(&store, vec![max]).await;
        }
        let (entry, _) = store.get(&highest, Consistency::Eventual).await.unwrap();
        assert_eq!(entry.unwrap().envelope.value, 9u64.to_le_bytes());
        let named = key!["c", "name"].encode();
        commit(&store, vec![set(named.clone(), "x", None)]).await;
        let on_value = store
            .atomic(write(
                vec![],
                vec![Mutation::Numeric {
                    op: NumericOp::Sum,
                    key: named,
                    operand: 1,
                }],
            ))
            .await;
        assert_eq!(on_value.unwrap_err().code(), edgekv_proto::ErrorCode::TypeMismatch);
        node.shutdown().await;
    }

    #[tokio::test]
    async fn a_list_over_both_classes_merges_them_in_key_order() {
        let clock = ManualClock::new(1_000);
        let (store, node) = cache_store(&clock).await;
        commit(&store, vec![set(key!["b"].encode(), "strong b", None)]).await;
        commit(&store, vec![set(key!["c", "x"].encode(), "cache x", None)]).await;
        commit(&store, vec![set(key!["d"].encode(), "strong d", None)]).await;
        for reverse in [false, true] {
            let query = ListQuery {
                selector: Selector {
                    prefix: Some(Vec::new()),
                    start: None,
                    end: None,
                },
                limit: 10,
                reverse,
                cursor: None,
                keys_only: false,
            };
            let (page, _) = store.list(&query, Consistency::Strong).await.unwrap();
            let mut values: Vec<String> = page
                .entries
                .into_iter()
                .map(|e| String::from_utf8(e.envelope.value).unwrap())
                .collect();
            if reverse {
                values.reverse();
            }
            assert_eq!(values, ["strong b", "cache x", "strong d"]);
        }
        node.shutdown().await;
    }

    #[tokio::test]
    async fn a_prefix_holding_data_keeps_its_class() {
        let clock = ManualClock::new(1_000);
        let (store, node) = cache_store(&clock).await;
        commit(&store, vec![set(key!["s", "1"].encode(), "strong", None)]).await;
        let refused = store.set_class(&key!["s"].encode(), Class::Cache).await.unwrap_err();
        assert_eq!(refused.code(), edgekv_proto::ErrorCode::KeyspaceNotEmpty);
        commit(&store, vec![set(key!["c", "1"].encode(), "cached", None)]).await;
        let refused = store.set_class(&key!["c"].encode(), Class::Strong).await.unwrap_err();
        assert_eq!(refused.code(), edgekv_proto::ErrorCode::KeyspaceNotEmpty);
        // Empty prefixes change freely, and the empty prefix sets the default.
        store.set_class(&key!["e"].encode(), Class::Cache).await.unwrap();
        store.set_class(b"", Class::Cache).await.unwrap_err();
        assert_eq!(store.class_of(&key!["s", "1"].encode()), Class::Strong);
        commit(
            &store,
            vec![Mutation::Delete {
                key: key!["s", "1"].encode(),
            }],
        )
        .await;
        store.set_class(b"", Class::Cache).await.unwrap();
        assert_eq!(store.class_of(&key!["zz"].encode()), Class::Cache);
        assert_eq!(store.class_of(&key!["c", "1"].encode()), Class::Cache);
        node.shutdown().await;
    }
}

#[test]
fn a_write_proposed_by_reference_encodes_as_the_command() {
    let atomic = write(
        vec![Check {
            key: key!["a"].encode(),
            versionstamp: None,
        }],
        vec![set(key!["a"].encode(), "x", Some(Expiry::In(5)))],
    );
    assert_eq!(
        apply::encode(&apply::CommandRef::Atomic(&atomic)),
        apply::encode(&apply::Command::Atomic(atomic.clone()))
    );
    // Every variant, in the same position: replicas decode what was proposed by reference.
    let due = vec![DueExpiry {
        expires_at_ms: 5,
        key: key!["a"].encode(),
    }];
    let pairs = [
        (
            apply::encode(&apply::CommandRef::Expire(&due)),
            apply::encode(&apply::Command::Expire(due.clone())),
        ),
        (
            apply::encode(&apply::CommandRef::SetClass {
                prefix: b"p",
                class: Class::Cache,
            }),
            apply::encode(&apply::Command::SetClass {
                prefix: b"p".to_vec(),
                class: Class::Cache,
            }),
        ),
        (
            apply::encode(&apply::CommandRef::AtomicOnce {
                id: b"id",
                write: &atomic,
            }),
            apply::encode(&apply::Command::AtomicOnce {
                id: b"id".to_vec(),
                write: atomic.clone(),
            }),
        ),
        (
            apply::encode(&apply::CommandRef::ForgetRequests { before_ms: 7 }),
            apply::encode(&apply::Command::ForgetRequests { before_ms: 7 }),
        ),
    ];
    for (by_reference, owned) in pairs {
        assert_eq!(by_reference, owned);
    }
}

#[tokio::test]
async fn a_refusal_under_a_request_id_is_its_answer_for_good() {
    let clock = ManualClock::new(10_000);
    let (store, thread, _) = store(&clock).await;
    let word = key!["word"].encode();
    commit(&store, vec![set(word.clone(), "text", None)]).await;
    let sum = write(
        vec![],
        vec![Mutation::Numeric {
            op: NumericOp::Sum,
            key: word.clone(),
            operand: 1,
        }],
    );
    let refused = store.atomic_once(&sum, Some(b"sum-on-text"), false).await.unwrap_err();
    assert_eq!(refused.code(), edgekv_proto::ErrorCode::TypeMismatch);
    // The key changes so the sum would now apply; a copy of the refused write (still in
    // flight when its sender was told no) is answered with the refusal and writes nothing.
    commit(&store, vec![Mutation::Delete { key: word.clone() }]).await;
    let copy = store.atomic_once(&sum, Some(b"sum-on-text"), false).await.unwrap_err();
    assert_eq!(copy.code(), edgekv_proto::ErrorCode::TypeMismatch);
    let (entry, _) = store.get(&word, Consistency::Strong).await.unwrap();
    assert!(entry.is_none(), "the copy wrote nothing");

    // A copy of a cache-class write whose outcome is unknown is refused, writing nothing:
    // cache writes are not deduplicated by id yet.
    store.set_class(&key!["c"].encode(), Class::Cache).await.unwrap();
    let cached = write(vec![], vec![set(key!["c", 1].encode(), "v", None)]);
    let copy = store.atomic_once(&cached, Some(b"cache-copy"), true).await.unwrap_err();
    assert_eq!(copy.code(), edgekv_proto::ErrorCode::UnsupportedForCacheClass);
    let (entry, _) = store.get(&key!["c", 1].encode(), Consistency::Eventual).await.unwrap();
    assert!(entry.is_none());
    assert!(store.atomic_once(&cached, Some(b"cache-first"), false).await.is_ok());
    thread.shutdown().await;
}

#[tokio::test]
async fn a_write_under_a_request_id_applies_once() {
    let clock = ManualClock::new(10_000);
    let (store, thread, engine) = store(&clock).await;
    let counter = key!["counter"].encode();
    let sum = |n| {
        write(
            vec![],
            vec![Mutation::Numeric {
                op: NumericOp::Sum,
                key: counter.clone(),
                operand: n,
            }],
        )
    };
    let first = store.atomic_once(&sum(5), Some(b"request-1"), false).await.unwrap();
    // The same id again (a retry after an unknown outcome): the first answer, applied once.
    let again = store.atomic_once(&sum(5), Some(b"request-1"), false).await.unwrap();
    assert_eq!(again, first);
    let other = store.atomic_once(&sum(5), Some(b"request-2"), false).await.unwrap();
    assert_ne!(other, first);
    let value = |store: KvStore| {
        let key = counter.clone();
        async move {
            let (entry, _) = store.get(&key, Consistency::Strong).await.unwrap();
            entry.unwrap().envelope.as_u64()
        }
    };
    assert_eq!(value(store.clone()).await, Some(10));
    // An id that is too long is refused, and nothing is written.
    let refused = store.atomic_once(&sum(5), Some(&[7; 65]), false).await.unwrap_err();
    assert_eq!(refused.code(), edgekv_proto::ErrorCode::InvalidArgument);
    thread.shutdown().await;

    // The table is durable: after a restart the same id still answers without applying.
    let (store, thread) = TestNode::start(engine.clone(), &clock).await;
    assert_eq!(
        store.atomic_once(&sum(5), Some(b"request-1"), false).await.unwrap(),
        first
    );
    assert_eq!(value(store.clone()).await, Some(10));

    // Past the window the leader forgets it; the same id is then a new write. The window is
    // measured by the replicated clock, which the next write carries forward; that write's
    // own id is inside the window and stays.
    clock.advance(requests::REQUEST_WINDOW.as_millis() as u64 + 1);
    assert_eq!(
        store.forget_old_requests(requests::REQUEST_WINDOW).await.unwrap(),
        0,
        "no write moved the replicated clock yet"
    );
    let recent = store.atomic_once(&sum(0), Some(b"request-3"), false).await.unwrap();
    assert_eq!(store.forget_old_requests(requests::REQUEST_WINDOW).await.unwrap(), 2);
    assert_eq!(
        store.atomic_once(&sum(0), Some(b"request-3"), false).await.unwrap(),
        recent
    );
    assert_eq!(
        store.forget_old_requests(requests::REQUEST_WINDOW).await.unwrap(),
        0,
        "nothing left to forget"
    );
    let renewed = store.atomic_once(&sum(5), Some(b"request-1"), false).await.unwrap();
    assert_ne!(renewed, first);
    assert_eq!(value(store.clone()).await, Some(15));
    thread.shutdown().await;
}
