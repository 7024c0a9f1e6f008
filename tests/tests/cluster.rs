//! Three-node, three-region clusters of real `edgekv serve` processes: writes through every
//! node, leader failover under SIGKILL without losing an acknowledged write, a restarted
//! node catching up, a minority that refuses strong requests while the majority serves,
//! a lagging node caught up by snapshot, and membership changes under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use edgekv_client::{Client, Consistency, ErrorCode, Value, key};
use edgekv_tests::cluster::Cluster;
use edgekv_tests::eventually;

const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];
/// Generous: an election takes a few election timeouts at most; CI machines are slow.
const FAILOVER: Duration = Duration::from_secs(30);

async fn value(client: &Client, n: u64, consistency: Consistency) -> Option<Value> {
    client
        .get(key!["k", n])
        .consistency(consistency)
        .await
        .unwrap()
        .map(|e| e.value.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_every_node_survive_leader_loss_and_restart() {
    let mut cluster = Cluster::start(&REGIONS, &[]).unwrap();
    let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();

    // Every node accepts writes (followers forward them) and serves strong reads.
    let mut acknowledged = Vec::new();
    let mut last_stamp = None;
    for node in &cluster.nodes {
        let client = node.client().await.unwrap();
        for i in 0..10 {
            let n = node.id * 100 + i;
            let stamp = client.set(key!["k", n], format!("v{n}")).await.unwrap();
            assert!(Some(stamp) > last_stamp, "versionstamps increase across nodes");
            last_stamp = Some(stamp);
            acknowledged.push(n);
        }
    }
    for node in &cluster.nodes {
        let client = node.client().await.unwrap();
        for &n in &acknowledged {
            assert_eq!(
                value(&client, n, Consistency::Strong).await,
                Some(Value::from(format!("v{n}"))),
                "node {} misses k{n}",
                node.id
            );
        }
    }

    // A follower's answer names the leader, and a cluster-aware client then writes there.
    let follower = cluster.nodes.iter().find(|n| n.id != leader).unwrap().id;
    let routed = Client::builder()
        .region_endpoint(&cluster.node(follower).region, cluster.node(follower).endpoint())
        .connect()
        .await
        .unwrap();
    routed.set(key!["routed"], "x").await.unwrap();
    assert_eq!(routed.leader(), Some(cluster.node(leader).endpoint()));

    // SIGKILL the leader: a new one takes over and nothing acknowledged is lost.
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader(&[leader], FAILOVER).await.unwrap();
    assert_ne!(new_leader, leader);
    let survivor = cluster.node(new_leader).client().await.unwrap();
    for &n in &acknowledged {
        assert_eq!(
            value(&survivor, n, Consistency::Strong).await,
            Some(Value::from(format!("v{n}")))
        );
    }
    // The client that followed the old leader moves on by itself (its first write after
    // the loss may fail: the old leader's address refuses connections, so nothing was sent).
    let mut after = None;
    for attempt in 0..5 {
        match routed.set(key!["after-failover"], attempt).await {
            Ok(stamp) => {
                after = Some(stamp);
                break;
            }
            Err(error) => assert!(!error.is_indefinite() || attempt > 0, "{error}"),
        }
    }
    assert!(after.is_some(), "writes resume after failover");
    for i in 0..20 {
        let stamp = survivor.set(key!["k", 900 + i], format!("v{}", 900 + i)).await.unwrap();
        assert!(
            Some(stamp) > last_stamp,
            "versionstamps keep increasing across a leader change"
        );
        last_stamp = Some(stamp);
    }

    // The old leader comes back as a follower and catches up.
    cluster.restart(leader).unwrap();
    let rejoined = cluster.node(leader).client().await.unwrap();
    assert!(
        eventually(FAILOVER, || async {
            rejoined
                .get(key!["k", 919u64])
                .consistency(Consistency::Eventual)
                .await
                .is_ok_and(|e| e.is_some())
        })
        .await,
        "the restarted node caught up"
    );
    assert_eq!(
        value(&rejoined, 919, Consistency::Strong).await,
        Some(Value::from("v919"))
    );
    let status = cluster.status(leader).await.unwrap();
    assert_eq!(status.members.len(), 3);
    assert!(status.members.iter().all(|m| !m.api_addr.is_empty()), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_minority_refuses_strong_requests_while_the_majority_serves() {
    let cluster = Cluster::start(&REGIONS, &[]).unwrap();
    let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    let setup = cluster.node(leader).client().await.unwrap();
    setup.set(key!["k", 1u64], "before").await.unwrap();

    for isolate_leader in [false, true] {
        let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
        let victim = if isolate_leader {
            leader
        } else {
            cluster.nodes.iter().find(|n| n.id != leader).unwrap().id
        };
        let majority = cluster.nodes.iter().find(|n| n.id != victim).unwrap().id;
        // Make sure the victim has the latest value before the cut.
        let victim_client = cluster.node(victim).client().await.unwrap();
        assert_eq!(
            value(&victim_client, 1, Consistency::Strong).await,
            Some(Value::from("before"))
        );

        cluster.isolate(&cluster.node(victim).region, majority).await.unwrap();
        let majority_client = cluster.node(majority).client().await.unwrap();
        let mut written = None;
        for attempt in 0..20 {
            match majority_client
                .set(key!["k", 1u64], format!("after-{isolate_leader}"))
                .await
            {
                Ok(stamp) => {
                    written = Some(stamp);
                    break;
                }
                Err(error) => {
                    // Until the majority elects a leader of its own.
                    assert!(
                        error.is_retry_safe() || error.is_indefinite(),
                        "attempt {attempt}: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
        assert!(written.is_some(), "the majority keeps taking writes");
        assert_eq!(
            value(&majority_client, 1, Consistency::Strong).await,
            Some(Value::from(format!("after-{isolate_leader}")))
        );

        // The minority never serves the stale value as strong; it says it cannot.
        let read = victim_client.get(key!["k", 1u64]).await;
        match read {
            Err(error) => assert_eq!(error.code(), Some(ErrorCode::Unavailable), "{error}"),
            Ok(entry) => panic!("an isolated node served a strong read: {entry:?}"),
        }
        // The SDK sends it again until its deadline (a short one here), then gives up.
        let write = victim_client
            .atomic()
            .set(key!["k", 2u64], "minority")
            .deadline(Duration::from_secs(2))
            .commit()
            .await
            .unwrap_err();
        assert!(
            matches!(write.code(), Some(ErrorCode::Unavailable | ErrorCode::OutcomeUnknown)),
            "{write}"
        );
        // Its local replica still answers eventual reads, saying how stale it may be.
        let stale = victim_client
            .get(key!["k", 1u64])
            .consistency(Consistency::Eventual)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stale.value, Some(Value::from("before")));

        cluster.heal(majority).await.unwrap();
        let expected = Value::from(format!("after-{isolate_leader}"));
        assert!(
            eventually(FAILOVER, || async {
                victim_client
                    .get(key!["k", 1u64])
                    .await
                    .is_ok_and(|e| e.and_then(|e| e.value) == Some(expected.clone()))
            })
            .await,
            "the healed node serves the majority's value"
        );
        let again = cluster.node(majority).client().await.unwrap();
        again.set(key!["k", 1u64], "before").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_catches_up_by_snapshot_after_log_purge() {
    let mut cluster = Cluster::start(
        &REGIONS,
        &["--snapshot-after-entries", "20", "--entries-kept-after-snapshot", "5"],
    )
    .unwrap();
    let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    let lagging = cluster.nodes.iter().find(|n| n.id != leader).unwrap().id;
    cluster.kill(lagging);
    let client = cluster.node(leader).client().await.unwrap();
    for n in 0..200u64 {
        client
            .set(key!["k", n], format!("v{n}"))
            .expire_in(Duration::from_secs(3600))
            .await
            .unwrap();
    }
    cluster.restart(lagging).unwrap();
    let behind = cluster.node(lagging).client().await.unwrap();
    assert!(
        eventually(FAILOVER, || async {
            behind
                .get(key!["k", 199u64])
                .consistency(Consistency::Eventual)
                .await
                .is_ok_and(|e| e.is_some())
        })
        .await,
        "the lagging node caught up"
    );
    assert!(
        cluster
            .node(lagging)
            .log_text()
            .contains("installed a snapshot from the leader"),
        "it caught up by snapshot, not by log replay:\n{}",
        cluster.node(lagging).log_text()
    );
    for n in [0u64, 57, 199] {
        let entry = behind
            .get(key!["k", n])
            .consistency(Consistency::Eventual)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.value, Some(Value::from(format!("v{n}"))));
        assert!(entry.expires_at().is_some(), "expiry travels in the snapshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_under_load_lose_nothing() {
    let mut cluster = Cluster::start(&REGIONS, &[]).unwrap();
    let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    let writer = cluster.client_in("us-east").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let load = tokio::spawn({
        let (stop, next) = (stop.clone(), next.clone());
        async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                match writer.set(key!["load", n], n).await {
                    Ok(_) => acknowledged.push(n),
                    Err(error) => assert!(error.is_retry_safe() || error.is_indefinite(), "{error}"),
                }
            }
            acknowledged
        }
    });

    // A fourth node joins as a learner, is promoted, and an original follower leaves.
    let newcomer = cluster.join("eu-west", leader, &[]).unwrap();
    let admin = cluster.node(leader).client().await.unwrap();
    assert!(
        eventually(FAILOVER, || async {
            admin
                .cluster_status()
                .await
                .is_ok_and(|s| s.members.iter().any(|m| m.id == newcomer && m.role == "learner"))
        })
        .await
    );
    let mut admin_rpc = edgekv_client::proto::admin_client::AdminClient::connect(cluster.node(leader).endpoint())
        .await
        .unwrap();
    admin_rpc
        .promote_member(edgekv_client::proto::MemberRequest { id: newcomer })
        .await
        .unwrap();
    let leaving = cluster
        .nodes
        .iter()
        .find(|n| n.id != leader && n.id != newcomer)
        .unwrap()
        .id;
    let status = admin_rpc
        .remove_member(edgekv_client::proto::MemberRequest { id: leaving })
        .await
        .unwrap()
        .into_inner();
    assert!(!status.members.iter().any(|m| m.id == leaving));
    assert_eq!(
        status
            .members
            .iter()
            .find(|m| m.id == newcomer)
            .map(|m| m.role.as_str()),
        Some("follower")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let acknowledged = load.await.unwrap();
    assert!(acknowledged.len() > 10, "the load kept going: {}", acknowledged.len());
    cluster.kill(leaving);

    // Every acknowledged write is on the newcomer.
    let newcomer_client = cluster.node(newcomer).client().await.unwrap();
    for &n in &acknowledged {
        assert_eq!(
            value_of(&newcomer_client, n).await,
            Some(Value::from(n)),
            "acknowledged write {n} missing on the new member"
        );
    }
}

async fn value_of(client: &Client, n: u64) -> Option<Value> {
    client.get(key!["load", n]).await.unwrap().map(|e| e.value.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_decided_by_the_leader_and_the_same_on_every_replica() {
    let cluster = Cluster::start(&REGIONS, &[]).unwrap();
    let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    let writer = cluster.node(leader).client().await.unwrap();
    for n in 0..20u64 {
        writer
            .set(key!["ttl", n], n)
            .expire_in(Duration::from_millis(600))
            .await
            .unwrap();
    }
    writer.set(key!["ttl", "forever"], "stays").await.unwrap();
    let clients: Vec<Client> =
        futures::future::join_all(cluster.nodes.iter().map(|n| async { n.client().await.unwrap() })).await;
    for client in &clients {
        assert!(
            eventually(FAILOVER, || async {
                client
                    .get(key!["ttl", 19u64])
                    .consistency(Consistency::Eventual)
                    .await
                    .is_ok_and(|e| e.is_some())
            })
            .await
        );
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Expired everywhere, whether or not the sweeper has run yet.
    for client in &clients {
        for consistency in [Consistency::Strong, Consistency::Eventual] {
            for n in 0..20u64 {
                assert_eq!(client.get(key!["ttl", n]).consistency(consistency).await.unwrap(), None);
            }
        }
    }
    // The leader's sweeper removes them through the log: every replica ends with the same
    // single record.
    for (node, client) in cluster.nodes.iter().zip(&clients) {
        assert!(
            eventually(FAILOVER, || async {
                client
                    .status()
                    .await
                    .is_ok_and(|s| s.key_count == 1 && s.stored_records == 1)
            })
            .await,
            "node {} still holds expired records",
            node.id
        );
    }
}
