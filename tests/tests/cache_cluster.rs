//! The cache class on clusters of real `edgekv serve` processes in three regions, two nodes
//! in one of them: concurrent writes to the same keys from every region converge; a region
//! cut off from the rest keeps serving cache keys (strong keys fail there) and converges
//! after the cut heals; a node restarted after missing updates converges through
//! anti-entropy. Every run's history goes through the convergence checker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgekv_client::{Client, Consistency, ErrorCode, Key, Value, key};
use edgekv_tests::cluster::Cluster;
use edgekv_tests::convergence::{self, History, Read, Write};
use edgekv_tests::eventually;

/// Two nodes in us-east, one in each other region.
const REGIONS: [&str; 4] = ["us-east", "us-east", "eu-west", "ap-northeast"];
const FAILOVER: Duration = Duration::from_secs(30);
const CONVERGE: Duration = Duration::from_secs(30);
const FAST_REPAIR: [&str; 2] = ["--anti-entropy-interval", "300ms"];

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn text(value: Option<Value>) -> Option<String> {
    value.map(|v| match v {
        Value::String(s) => s,
        other => format!("{other:?}"),
    })
}

/// Records every acknowledged write and every read a test makes.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<History>>);

impl Recorder {
    async fn set(&self, client: &Client, key: Key, value: String, ttl: Option<Duration>) {
        let set = client.set(key.clone(), value.clone());
        let (set, expires_at_ms) = match ttl {
            Some(ttl) => (set.expire_in(ttl), Some(now_ms() + ttl.as_millis() as u64)),
            None => (set, None),
        };
        let stamp = set.await.unwrap();
        self.0.lock().unwrap().writes.push(Write {
            key: key.to_string(),
            value: Some(value),
            versionstamp: stamp.as_bytes().try_into().unwrap(),
            // The server resolves the TTL a little later than this; the checker only uses
            // it to decide whether the winner expired before the final read.
            expires_at_ms,
            acknowledged: true,
        });
    }

    async fn delete(&self, client: &Client, key: Key) {
        let stamp = client.delete(key.clone()).await.unwrap();
        self.0.lock().unwrap().writes.push(Write {
            key: key.to_string(),
            value: None,
            versionstamp: stamp.as_bytes().try_into().unwrap(),
            expires_at_ms: None,
            acknowledged: true,
        });
    }

    async fn read(&self, client: &Client, key: Key) -> Option<String> {
        let began_ms = now_ms();
        let entry = client
            .get(key.clone())
            .consistency(Consistency::Eventual)
            .await
            .unwrap();
        let value = text(entry.as_ref().and_then(|e| e.value.clone()));
        self.0.lock().unwrap().reads.push(Read {
            key: key.to_string(),
            began_ms,
            value: value.clone(),
            expires_at_ms: entry.and_then(|e| e.expires_at_ms),
        });
        value
    }

    fn keys(&self) -> Vec<Key> {
        let history = self.0.lock().unwrap();
        let mut keys: Vec<String> = history.writes.iter().map(|w| w.key.clone()).collect();
        keys.sort();
        keys.dedup();
        keys.iter().map(|k| Key::parse(k).unwrap()).collect()
    }

    /// Each running node's state of every written key.
    async fn final_states(&self, cluster: &Cluster) -> Vec<(String, convergence::FinalState)> {
        let mut finals = Vec::new();
        for node in cluster.nodes.iter().filter(|n| n.process.is_some()) {
            let client = node.client().await.unwrap();
            let mut state = convergence::FinalState::new();
            for key in self.keys() {
                let entry = client
                    .get(key.clone())
                    .consistency(Consistency::Eventual)
                    .await
                    .unwrap();
                state.insert(key.to_string(), text(entry.and_then(|e| e.value)));
            }
            finals.push((format!("node {} ({})", node.id, node.region), state));
        }
        finals
    }

    /// Waits until the replicas agree (or the time is up), then checks the whole history
    /// against that last round of final reads.
    async fn converged(&self, cluster: &Cluster) -> Vec<convergence::Violation> {
        let deadline = tokio::time::Instant::now() + CONVERGE;
        let (finals, read_at) = loop {
            let read_at = now_ms();
            let finals = self.final_states(cluster).await;
            if finals.windows(2).all(|pair| pair[0].1 == pair[1].1) || tokio::time::Instant::now() > deadline {
                break (finals, read_at);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut history = self.0.lock().unwrap().clone();
        history.final_read_ms = read_at;
        history.finals = finals;
        convergence::check(&history)
    }
}

/// Waits until every node reads the `["c", "hits"]` counter as `total`.
async fn every_node_counts(cluster: &Cluster, total: u64) {
    for node in &cluster.nodes {
        let client = node.client().await.unwrap();
        let counted = eventually(CONVERGE, || async {
            let entry = client
                .get(key!["c", "hits"])
                .consistency(Consistency::Eventual)
                .await
                .unwrap();
            entry.and_then(|e| e.value).and_then(|v| v.as_u64()) == Some(total)
        })
        .await;
        assert!(counted, "node {} does not count every sum (expected {total})", node.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_every_region_converge_and_a_cut_off_region_keeps_serving() {
    let cluster = Cluster::start(&REGIONS, &FAST_REPAIR).unwrap();
    cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    cluster.set_class(1, &key!["c"], "cache").await.unwrap();
    let recorder = Recorder::default();

    // Every node writes the same keys at once; a counter is summed everywhere.
    let mut writers = Vec::new();
    for node in &cluster.nodes {
        let client = node.client().await.unwrap();
        let recorder = recorder.clone();
        let id = node.id;
        writers.push(tokio::spawn(async move {
            for round in 0..5 {
                for k in 0..8 {
                    recorder
                        .set(&client, key!["c", "k", k], format!("n{id}-r{round}"), None)
                        .await;
                }
                recorder.read(&client, key!["c", "k", round]).await;
                client.atomic().sum(key!["c", "hits"], 1).commit().await.unwrap();
            }
            client
                .atomic()
                .sadd(key!["c", "tags"], format!("n{id}"))
                .commit()
                .await
                .unwrap();
            client
                .atomic()
                .sadd(key!["c", "tags"], "shared")
                .commit()
                .await
                .unwrap();
            recorder.delete(&client, key!["c", "gone", id]).await;
            // Expired long before the final read: must read as absent everywhere.
            recorder
                .set(
                    &client,
                    key!["c", "brief", id],
                    "soon gone".into(),
                    Some(Duration::from_millis(300)),
                )
                .await;
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // Past every TTL, so the final reads do not race an expiry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let violations = recorder.converged(&cluster).await;
    assert!(violations.is_empty(), "{violations:#?}");
    every_node_counts(&cluster, 20).await;

    let every_tag: Vec<String> = ["n1", "n2", "n3", "n4", "shared"].map(String::from).to_vec();
    for node in &cluster.nodes {
        let client = node.client().await.unwrap();
        assert!(
            eventually(CONVERGE, || async {
                client.members(key!["c", "tags"]).await.unwrap() == every_tag
            })
            .await,
            "node {} misses set members",
            node.id
        );
    }

    // A cluster-aware SDK client serves cache keys from its own region even when it asks
    // for strong reads and knows the leader; strong keys go to the leader.
    let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    let elsewhere = cluster
        .nodes
        .iter()
        .find(|n| n.region != cluster.node(leader).region)
        .unwrap();
    let routed = cluster.client_in(&elsewhere.region).await.unwrap();
    let served = |entry: Option<edgekv_client::Entry>| entry.and_then(|e| e.served_by).map(|s| s.region);
    routed.set(key!["strong"], "s").await.unwrap();
    assert_eq!(
        routed.leader(),
        Some(cluster.node(leader).endpoint()),
        "the client follows the leader"
    );
    let strong = routed.get(key!["strong"]).await.unwrap();
    assert_eq!(served(strong), Some(cluster.node(leader).region.clone()));
    let cached = routed.get(key!["c", "k", 0]).await.unwrap();
    assert_eq!(served(cached), Some(elsewhere.region.clone()));

    // Cut ap-northeast (node 4) off. It keeps serving cache keys; strong keys fail fast.
    cluster.isolate("ap-northeast", 1).await.unwrap();
    let cut_off = cluster.node(4).client().await.unwrap();
    let mainland = cluster.node(1).client().await.unwrap();
    for k in 0..8 {
        recorder
            .set(&cut_off, key!["c", "k", k], format!("cut-off-{k}"), None)
            .await;
        assert_eq!(
            recorder.read(&cut_off, key!["c", "k", k]).await,
            Some(format!("cut-off-{k}"))
        );
    }
    for k in 4..12 {
        recorder
            .set(&mainland, key!["c", "k", k], format!("mainland-{k}"), None)
            .await;
    }
    cut_off.atomic().sum(key!["c", "hits"], 5).commit().await.unwrap();
    mainland.atomic().sum(key!["c", "hits"], 7).commit().await.unwrap();
    let strong = cut_off.set(key!["strong"], "x").await.unwrap_err();
    assert!(
        matches!(strong.code(), Some(ErrorCode::Unavailable | ErrorCode::OutcomeUnknown)),
        "a strong write in a cut-off region fails with a clear code, not {strong:?}"
    );
    // Once out of contact for a few election timeouts, strong requests there fail at once.
    let fails_fast = eventually(CONVERGE, || async {
        let refused = cut_off.get(key!["strong"]).await.unwrap_err();
        refused.code() == Some(ErrorCode::Unavailable) && refused.to_string().contains("cut off")
    })
    .await;
    assert!(fails_fast, "a cut-off node refuses strong reads with a clear message");
    assert_ne!(
        recorder.read(&mainland, key!["c", "k", 0]).await,
        Some("cut-off-0".to_string()),
        "nothing crosses the cut"
    );

    cluster.heal(1).await.unwrap();
    let violations = recorder.converged(&cluster).await;
    assert!(violations.is_empty(), "{violations:#?}");
    every_node_counts(&cluster, 32).await;
    let status = cluster.status(4).await.unwrap();
    let cache = status.cache.expect("cache replication status");
    assert!(cache.merges > 0 && cache.conflicts_resolved > 0, "{cache:?}");
    assert_eq!(cache.peers.len(), 3, "{cache:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_after_missing_updates_converges_through_anti_entropy() {
    // An outbox of one entry: what a stopped node misses is dropped from its peers'
    // outboxes, so only anti-entropy can bring it back.
    let args = [FAST_REPAIR[0], FAST_REPAIR[1], "--outbox-limit", "1"];
    let mut cluster = Cluster::start(&["us-east", "us-east", "eu-west"], &args).unwrap();
    cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    cluster.set_class(1, &key!["c"], "cache").await.unwrap();
    let recorder = Recorder::default();
    let writer = cluster.node(1).client().await.unwrap();
    recorder
        .set(&writer, key!["c", "before"], "seen by all".into(), None)
        .await;

    let stopped = 3;
    cluster.kill(stopped);
    // A client in the stopped node's region fails over to the next region for cache keys.
    let local_first = edgekv_client::Client::builder()
        .region("eu-west")
        .region_endpoint("eu-west", cluster.node(stopped).endpoint())
        .region_endpoint("us-east", cluster.node(1).endpoint())
        .connect()
        .await
        .unwrap();
    let entry = local_first.get(key!["c", "before"]).await.unwrap().unwrap();
    assert_eq!(entry.served_by.unwrap().region, "us-east");
    for k in 0..300 {
        recorder
            .set(&writer, key!["c", "missed", k], format!("v{k}"), None)
            .await;
    }
    recorder.delete(&writer, key!["c", "before"]).await;
    // Let the trimmer drop the outbox entries the stopped node never took.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.restart(stopped).unwrap();

    let violations = recorder.converged(&cluster).await;
    assert!(violations.is_empty(), "{violations:#?}");
    let status = cluster.status(stopped).await.unwrap();
    let cache = status.cache.expect("cache replication status");
    assert!(
        cache.repaired >= 300,
        "anti-entropy brought the missed writes: {cache:?}"
    );
    let sender = cluster.status(1).await.unwrap().cache.unwrap();
    assert!(
        sender.outbox_dropped > 0,
        "the outbox limit dropped entries: {sender:?}"
    );
}
