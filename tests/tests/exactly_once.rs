//! A strong write sent again under the same request id is applied once, and answered with
//! its first outcome, on real nodes: a single node, and a follower of a three-region
//! cluster that forwards both copies to the leader.

use edgekv_client::key;
use edgekv_client::proto::{self as pb, kv_client::KvClient};
use edgekv_tests::Node;
use edgekv_tests::cluster::Cluster;

fn sum(key: &edgekv_client::Key, n: u64, request_id: &[u8]) -> pb::AtomicRequest {
    pb::AtomicRequest {
        checks: Vec::new(),
        mutations: vec![pb::Mutation {
            kind: Some(pb::mutation::Kind::Sum(pb::NumericMutation {
                key: key.encode(),
                operand: n,
            })),
        }],
        request_id: request_id.to_vec(),
        resend: false,
    }
}

/// Sends the same sum twice under one id and once under another; returns the three answers.
async fn sum_twice_then_once(endpoint: String) -> [pb::AtomicResponse; 3] {
    let mut kv = KvClient::connect(endpoint).await.unwrap();
    let counter = key!["exactly-once", "counter"];
    let mut send = async |id: &[u8]| kv.atomic(sum(&counter, 1, id)).await.unwrap().into_inner();
    [send(b"retry-me").await, send(b"retry-me").await, send(b"another").await]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_applies_once_on_a_single_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let [first, retried, other] = sum_twice_then_once(node.endpoint.clone()).await;
    assert!(first.ok);
    assert_eq!(retried, first, "the retry is answered with the first outcome");
    assert_eq!(first.numeric_results[0].value, 1);
    assert_eq!(
        other.numeric_results[0].value, 2,
        "counted once, then once more for another id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_forwarded_by_a_follower_applies_once() {
    let cluster = Cluster::start(&["us-east", "eu-west", "ap-northeast"], &[]).unwrap();
    let leader = cluster
        .wait_for_leader(&[], std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let follower = cluster.nodes.iter().find(|n| n.id != leader).unwrap();
    let [first, retried, other] = sum_twice_then_once(follower.endpoint()).await;
    assert!(first.ok);
    assert_eq!(retried, first);
    assert_eq!(other.numeric_results[0].value, first.numeric_results[0].value + 1);
}

/// Clients summing through the SDK while the leader is killed and restarted: every call
/// ends definite (the SDK sends a write of unknown outcome again under its id until the
/// cluster answers), and the counter holds exactly one increment per acknowledged call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sums_through_a_leader_kill_count_each_acknowledged_call_once() {
    const CLIENTS: usize = 4;
    const SUMS: usize = 200;
    let mut cluster = Cluster::start(&["us-east", "eu-west", "ap-northeast"], &[]).unwrap();
    let leader = cluster
        .wait_for_leader(&[], std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let counter = key!["exactly-once", "through-a-kill"];
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = cluster.client_in("us-east").await.unwrap();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, Vec::new());
            for _ in 0..SUMS {
                match client
                    .atomic()
                    .sum(counter.clone(), 1)
                    .deadline(std::time::Duration::from_secs(60))
                    .commit()
                    .await
                {
                    Ok(result) if result.ok => ok += 1,
                    Ok(result) => errors.push(format!("a sum without checks failed its checks: {result:?}")),
                    Err(error) => errors.push(error.to_string()),
                }
            }
            (ok, errors)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(
        !tasks.iter().all(|t| t.is_finished()),
        "the kill comes while the clients write"
    );
    cluster.kill(leader);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    cluster.restart(leader).unwrap();

    let mut acknowledged = 0;
    for task in tasks {
        let (ok, errors) = task.await.unwrap();
        assert!(errors.is_empty(), "every call ends definite: {errors:?}");
        acknowledged += ok;
    }
    assert_eq!(acknowledged, (CLIENTS * SUMS) as u64);
    cluster
        .wait_for_leader(&[], std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let total = cluster
        .client_in("us-east")
        .await
        .unwrap()
        .get(counter)
        .await
        .unwrap()
        .and_then(|entry| entry.value)
        .and_then(|value| value.as_u64());
    assert_eq!(
        total,
        Some(acknowledged),
        "one increment per acknowledged call, none twice"
    );
}
