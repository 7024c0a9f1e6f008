//! A class change racing the writes it affects, on a cluster of real `edgekv serve`
//! processes: a node whose copy of the class rules is behind the leader's routes a write
//! by the old rule, and the leader refuses it at apply (definitely: nothing was written).
//! Neither the node nor the SDK may hand that refusal to a caller whose write names keys
//! of one class only: they catch up with the rule and send the write the way it says.
//!
//! The race is made certain, not hoped for: the link between the leader's region and one
//! follower's is slowed, so that follower learns of a rule hundreds of milliseconds after
//! the leader (and the third node, its quorum) applied it.

use std::time::Duration;

use edgekv_client::proto::{self as pb, admin_client::AdminClient, kv_client::KvClient};
use edgekv_client::{Client, Key, key};
use edgekv_tests::cluster::Cluster;
use edgekv_tests::{eventually, kvctl};

const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];
const FAILOVER: Duration = Duration::from_secs(30);
/// One way, each direction, between the leader's region and the lagging follower's.
const SLOW_LINK_MS: u32 = 150;
/// Raft timings for that link: a heartbeat (also the replication RPC's time limit) above
/// its round trip, an election timeout well above both. The domain logs each re-route.
const NODE_ARGS: [&str; 8] = [
    "--heartbeat",
    "400ms",
    "--election-timeout",
    "5s",
    "--request-timeout",
    "10s",
    "--log",
    "warn,edgekv_server::kv=info",
];

/// Puts `prefix` in the cache class through the leader, without waiting for the others.
async fn set_cache_class(cluster: &Cluster, leader: u64, prefix: &Key) {
    AdminClient::connect(cluster.node(leader).endpoint())
        .await
        .unwrap()
        .set_keyspace_class(pb::SetKeyspaceClassRequest {
            prefix: prefix.encode(),
            class: "cache".into(),
        })
        .await
        .unwrap();
}

fn set_mutation(key: &Key, value: &str) -> pb::Mutation {
    pb::Mutation {
        kind: Some(pb::mutation::Kind::Set(pb::SetMutation {
            key: key.encode(),
            value: Some(pb::Value {
                encoding: pb::ValueEncoding::Utf8 as i32,
                data: value.as_bytes().to_vec(),
            }),
            expiry: None,
            metadata: None,
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_routed_by_stale_class_rules_are_rerouted_not_refused() {
    let cluster = Cluster::start(&REGIONS, &NODE_ARGS).unwrap();
    let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    let lagging = cluster.nodes.iter().find(|n| n.id != leader).unwrap();
    cluster
        .fault(
            leader,
            pb::inject_fault_request::Fault::Latency(pb::Latency {
                a: cluster.node(leader).region.clone(),
                b: lagging.region.clone(),
                one_way_delay_ms: SLOW_LINK_MS,
                jitter_ms: 0,
            }),
        )
        .await
        .unwrap();

    // Straight to the lagging node's gRPC port: only the node can save this write.
    let prefix = key!["raced", "grpc"];
    set_cache_class(&cluster, leader, &prefix).await;
    let mut kv = KvClient::connect(lagging.endpoint()).await.unwrap();
    let answer = kv
        .atomic(pb::AtomicRequest {
            checks: Vec::new(),
            mutations: vec![set_mutation(&key!["raced", "grpc", "1"], "v1")],
            request_id: Vec::new(),
            resend: false,
        })
        .await;
    assert!(answer.is_ok(), "a raw write right after the class change: {answer:?}");
    assert!(
        lagging.log_text().contains("routing it again"),
        "the race did not happen: the lagging node never re-routed the write"
    );

    // Through the SDK in that node's region: its first write goes to that node (no leader
    // named yet), whose rules are stale.
    let prefix = key!["raced", "sdk"];
    set_cache_class(&cluster, leader, &prefix).await;
    let client = Client::builder()
        .region_endpoint(&lagging.region, lagging.endpoint())
        .region(&lagging.region)
        .connect()
        .await
        .unwrap();
    let written = client.set(key!["raced", "sdk", "1"], "v1").await;
    assert!(
        written.is_ok(),
        "an SDK write right after the class change: {written:?}"
    );

    // Through kvctl, as an operator would type it.
    let prefix = key!["raced", "kvctl"];
    set_cache_class(&cluster, leader, &prefix).await;
    let output = kvctl(&lagging.endpoint(), &["put", "raced/kvctl/1", "v1"]);
    assert!(
        output.status.success(),
        "kvctl put right after the class change: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Each write went where the rule says: a cache key, read on every node.
    for node in &cluster.nodes {
        let kv = KvClient::connect(node.endpoint()).await.unwrap();
        for via in ["grpc", "sdk", "kvctl"] {
            let read = || {
                let mut kv = kv.clone();
                let key = key!["raced", via, "1"].encode();
                async move {
                    kv.get(pb::GetRequest {
                        key,
                        consistency: pb::Consistency::Eventual as i32,
                    })
                    .await
                    .map(|r| r.into_inner())
                }
            };
            let is_the_cache_write = |answer: &pb::GetResponse| {
                answer.class == "cache"
                    && answer
                        .entry
                        .as_ref()
                        .and_then(|e| e.value.as_ref())
                        .is_some_and(|v| v.data == b"v1")
            };
            let seen = eventually(Duration::from_secs(20), || async {
                read().await.is_ok_and(|a| is_the_cache_write(&a))
            })
            .await;
            assert!(seen, "node {} reads the {via} write as {:?}", node.id, read().await);
        }
    }
}
