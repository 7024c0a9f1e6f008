//! A three-region cluster of in-process nodes (`node::run` three times in one runtime) on
//! a simulated WAN: writes through every node, a region cut off by the transport's fault
//! injection refuses strong requests while the majority serves and catches up after the
//! heal, and a stopped leader is replaced without losing an acknowledged write.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgekv_client::{Client, Consistency, ErrorCode, Value, key};
use edgekv_proto::v1::{self as pb, admin_client::AdminClient, inject_fault_request::Fault};
use edgekv_server::config::Config;
use edgekv_server::net::WanLinkSettings;
use edgekv_server::node::{self, Ready};
use tokio_util::sync::CancellationToken;

const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];

fn free_port() -> SocketAddr {
    edgekv_server::net::unused_loopback_port().unwrap()
}

struct InProcessNode {
    id: u64,
    region: &'static str,
    api: SocketAddr,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), node::NodeError>>>,
}

impl InProcessNode {
    async fn client(&self) -> Client {
        Client::builder()
            .region_endpoint(self.region, format!("http://{}", self.api))
            .stay_local(true)
            .connect()
            .await
            .unwrap()
    }

    async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

async fn start_cluster(data: &std::path::Path) -> Vec<InProcessNode> {
    let peers: Vec<SocketAddr> = REGIONS.iter().map(|_| free_port()).collect();
    let initial = REGIONS
        .iter()
        .zip(&peers)
        .enumerate()
        .map(|(i, (region, peer))| format!("{}={region}@{peer}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes = Vec::new();
    for (i, region) in REGIONS.iter().enumerate() {
        let mut config = Config::default();
        config.node.id = i as u64 + 1;
        config.node.region = region.to_string();
        config.storage.data_dir = data.join(format!("node-{}", i + 1));
        config.api.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.kv_connect.enabled = false;
        config.cluster.peer_listen = peers[i];
        config.cluster.initial_cluster = initial.clone();
        config.cluster.allow_fault_injection = true;
        config.cluster.raft.heartbeat = Duration::from_millis(100);
        config.cluster.raft.election_timeout = Duration::from_secs(1);
        config.cluster.raft.request_timeout = Duration::from_secs(3);
        config.cluster.wan_links = vec![WanLinkSettings {
            a: "us-east".into(),
            b: "ap-northeast".into(),
            one_way_delay_ms: 5,
            jitter_ms: 1,
        }];
        config.validate().unwrap();
        let ready: Arc<Mutex<Option<Ready>>> = Arc::default();
        let stop = CancellationToken::new();
        let task = tokio::spawn(node::run(config, stop.clone(), {
            let ready = ready.clone();
            Box::new(move |r| *ready.lock().unwrap() = Some(r))
        }));
        let api = loop {
            if let Some(r) = *ready.lock().unwrap() {
                break r.api;
            }
            assert!(!task.is_finished(), "node {} stopped during startup", i + 1);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        nodes.push(InProcessNode {
            id: i as u64 + 1,
            region,
            api,
            stop,
            task: Some(task),
        });
    }
    nodes
}

async fn leader_of(nodes: &[InProcessNode], not: Option<u64>) -> u64 {
    for _ in 0..300 {
        let mut seen = Vec::new();
        for node in nodes.iter().filter(|n| n.task.is_some()) {
            if let Ok(status) = node.client().await.cluster_status().await {
                seen.push(status.leader_id);
            }
        }
        if let Some(&leader) = seen.first()
            && leader != 0
            && Some(leader) != not
            && seen.iter().all(|l| *l == leader)
        {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no agreed leader");
}

async fn fault(node: &InProcessNode, fault: Fault) {
    let mut admin = AdminClient::connect(format!("http://{}", node.api)).await.unwrap();
    let answer = admin
        .inject_fault(pb::InjectFaultRequest { fault: Some(fault) })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.unreached.is_empty(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_cluster_survives_partition_and_leader_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path()).await;
    let leader = leader_of(&nodes, None).await;

    let mut acknowledged = Vec::new();
    for node in &nodes {
        let client = node.client().await;
        for i in 0..5u64 {
            let n = node.id * 10 + i;
            client.set(key!["k", n], n).await.unwrap();
            acknowledged.push(n);
        }
    }

    // Cut a follower's region off: it refuses strong requests; the majority serves.
    let victim = nodes.iter().find(|n| n.id != leader).unwrap();
    let majority = nodes.iter().find(|n| n.id != victim.id).unwrap();
    for other in REGIONS.iter().filter(|r| **r != victim.region) {
        fault(
            majority,
            Fault::Partition(pb::RegionPair {
                a: victim.region.into(),
                b: other.to_string(),
            }),
        )
        .await;
    }
    let victim_client = victim.client().await;
    let refused = victim_client.get(key!["k", 10u64]).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Unavailable), "{refused}");
    let write = victim_client.set(key!["minority"], 1u64).await.unwrap_err();
    assert!(
        matches!(write.code(), Some(ErrorCode::Unavailable | ErrorCode::OutcomeUnknown)),
        "{write}"
    );
    let majority_client = majority.client().await;
    majority_client.set(key!["during-partition"], 1u64).await.unwrap();
    fault(majority, Fault::Heal(pb::Heal {})).await;
    let mut caught_up = false;
    for _ in 0..200 {
        if let Ok(Some(_)) = victim_client
            .get(key!["during-partition"])
            .consistency(Consistency::Eventual)
            .await
        {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the healed node catches up");

    // Stop the leader: another takes over with every acknowledged write.
    let leader_index = nodes.iter().position(|n| n.id == leader).unwrap();
    nodes[leader_index].stop().await;
    let new_leader = leader_of(&nodes, Some(leader)).await;
    let survivor = nodes.iter().find(|n| n.id == new_leader).unwrap().client().await;
    for &n in &acknowledged {
        let entry = survivor
            .get(key!["k", n])
            .await
            .unwrap()
            .expect("acknowledged write kept");
        assert_eq!(entry.value, Some(Value::from(n)));
    }
    for node in &mut nodes {
        node.stop().await;
    }
}
