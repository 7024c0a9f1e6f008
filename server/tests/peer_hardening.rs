//! The peer port refuses what no honest member sends, and stays up doing it: a forged
//! InstallSnapshot chunk (an offset beyond what was received, which openraft would zero-fill
//! in memory), a Join the admin `member add` would refuse, a forwarded write the client
//! API would refuse, and a message over its call's size cap. Each is driven through the
//! real peer gRPC service of an in-process three-region cluster on loopback; afterwards the
//! attacked node still serves and is still a member. What honest members send still
//! passes: a snapshot of several chunks, a megabyte value forwarded by a follower.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgekv_client::{Client, Value, key};
use edgekv_proto::ErrorCode;
use edgekv_proto::grpc_status::code_of;
use edgekv_proto::peer::cache_replication_client::CacheReplicationClient;
use edgekv_proto::peer::peer_client::PeerClient;
use edgekv_proto::peer::{CachePayload, DescribeRequest, JoinRequest, RaftPayload};
use edgekv_proto::v1::ValueEncoding;
use edgekv_server::config::Config;
use edgekv_server::kv::{AtomicWrite, Mutation};
use edgekv_server::net::message_caps::{CONTROL_CAP, MERGE_CAP};
use edgekv_server::node::{self, Ready};
use edgekv_server::raft::ConsensusError;
use edgekv_server::raft::types::{NodeId, TypeConfig};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{InstallSnapshotRequest, InstallSnapshotResponse};
use openraft::{SnapshotMeta, Vote};
use tokio_util::sync::CancellationToken;

const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];

struct TestNode {
    id: u64,
    region: &'static str,
    api: SocketAddr,
    peer: SocketAddr,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), node::NodeError>>>,
}

impl TestNode {
    async fn client(&self) -> Client {
        Client::builder()
            .region_endpoint(self.region, format!("http://{}", self.api))
            .stay_local(true)
            .connect()
            .await
            .unwrap()
    }

    async fn peer_client(&self) -> PeerClient<tonic::transport::Channel> {
        PeerClient::connect(format!("http://{}", self.peer)).await.unwrap()
    }

    async fn cache_client(&self) -> CacheReplicationClient<tonic::transport::Channel> {
        CacheReplicationClient::connect(format!("http://{}", self.peer))
            .await
            .unwrap()
    }

    fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }
}

struct Cluster {
    nodes: Vec<TestNode>,
    configs: Vec<Config>,
    _data: tempfile::TempDir,
}

/// Runs a node in this process; returns once it accepts requests.
async fn run_node(config: Config, region: &'static str) -> TestNode {
    let id = config.node.id;
    let ready: Arc<Mutex<Option<Ready>>> = Arc::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(node::run(config, stop.clone(), {
        let ready = ready.clone();
        Box::new(move |r| *ready.lock().unwrap() = Some(r))
    }));
    let (api, peer) = loop {
        if let Some(r) = *ready.lock().unwrap() {
            break (r.api, r.peer);
        }
        assert!(!task.is_finished(), "node {id} stopped during startup");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    TestNode {
        id,
        region,
        api,
        peer,
        stop,
        task: Some(task),
    }
}

impl Cluster {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A cluster whose nodes' configuration `adjust` changes first.
    async fn start_with(adjust: impl Fn(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let peers: Vec<SocketAddr> = REGIONS
            .iter()
            .map(|_| edgekv_server::net::unused_loopback_port().unwrap())
            .collect();
        let initial = REGIONS
            .iter()
            .zip(&peers)
            .enumerate()
            .map(|(i, (region, peer))| format!("{}={region}@{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let (mut nodes, mut configs) = (Vec::new(), Vec::new());
        for (i, region) in REGIONS.iter().enumerate() {
            let mut config = Config::default();
            config.node.id = i as u64 + 1;
            config.node.region = region.to_string();
            config.storage.data_dir = data.path().join(format!("node-{}", i + 1));
            config.api.listen = SocketAddr::from(([127, 0, 0, 1], 0));
            config.kv_connect.enabled = false;
            config.cluster.peer_listen = peers[i];
            config.cluster.initial_cluster = initial.clone();
            config.cluster.raft.heartbeat = Duration::from_millis(100);
            config.cluster.raft.election_timeout = Duration::from_secs(1);
            config.cluster.raft.request_timeout = Duration::from_secs(3);
            adjust(&mut config);
            config.validate().unwrap();
            configs.push(config.clone());
            nodes.push(run_node(config, region).await);
        }
        Self {
            nodes,
            configs,
            _data: data,
        }
    }

    async fn stop_node(&mut self, id: u64) {
        let node = self.nodes.iter_mut().find(|n| n.id == id).unwrap();
        node.stop.cancel();
        node.task.take().unwrap().await.unwrap().unwrap();
    }

    async fn restart_node(&mut self, id: u64) {
        let config = self.configs.iter().find(|c| c.node.id == id).unwrap().clone();
        let at = self.nodes.iter().position(|n| n.id == id).unwrap();
        self.nodes[at] = run_node(config, self.nodes[at].region).await;
    }

    fn node(&self, id: u64) -> &TestNode {
        self.nodes.iter().find(|n| n.id == id).unwrap()
    }

    /// The leader every node agrees on.
    async fn leader(&self) -> u64 {
        for _ in 0..300 {
            let mut seen = Vec::new();
            for node in &self.nodes {
                if let Ok(status) = node.client().await.cluster_status().await {
                    seen.push(status.leader_id);
                }
            }
            if seen.len() == self.nodes.len() && seen[0] != 0 && seen.iter().all(|l| *l == seen[0]) {
                return seen[0];
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no agreed leader");
    }

    /// The member ids the leader lists, in order.
    async fn members(&self) -> Vec<u64> {
        let leader = self.leader().await;
        let status = self.node(leader).client().await.cluster_status().await.unwrap();
        let mut ids: Vec<u64> = status.members.iter().map(|m| m.id).collect();
        ids.sort();
        ids
    }

    /// Every node is up, a member, and serves a strong write and read through `via`.
    async fn assert_serving(&self, via: u64, what: &str) {
        for node in &self.nodes {
            assert!(node.is_running(), "node {} stopped after {what}", node.id);
        }
        assert_eq!(self.members().await, vec![1, 2, 3], "membership after {what}");
        let client = self.node(via).client().await;
        client.set(key!["after", what], 7u64).await.unwrap();
        let entry = client.get(key!["after", what]).await.unwrap().expect("written");
        assert_eq!(entry.value, Some(Value::from(7u64)));
    }

    async fn stop(mut self) {
        for node in &mut self.nodes {
            node.stop.cancel();
            if let Some(task) = node.task.take() {
                task.await.unwrap().unwrap();
            }
        }
    }
}

fn payload<T: serde::Serialize>(value: &T) -> RaftPayload {
    RaftPayload {
        data: postcard::to_allocvec(value).unwrap(),
    }
}

type SnapshotAnswer = Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;

fn chunk(vote: Vote<NodeId>, offset: u64, data: Vec<u8>) -> InstallSnapshotRequest<TypeConfig> {
    InstallSnapshotRequest {
        vote,
        meta: SnapshotMeta {
            last_log_id: None,
            last_membership: Default::default(),
            snapshot_id: "forged".into(),
        },
        offset,
        data,
        done: false,
    }
}

async fn send_chunk(
    peer: &mut PeerClient<tonic::transport::Channel>,
    request: &InstallSnapshotRequest<TypeConfig>,
) -> Result<SnapshotAnswer, tonic::Status> {
    let answer = peer.install_snapshot(payload(request)).await?.into_inner();
    Ok(postcard::from_bytes(&answer.data).unwrap())
}

/// The refusal of a forged chunk: an error answer with a stable code, not an accepted chunk.
fn assert_refused_chunk(answer: Result<SnapshotAnswer, tonic::Status>, what: &str) {
    match answer {
        Err(status) => assert_eq!(code_of(&status), Some(ErrorCode::InvalidArgument), "{what}: {status:?}"),
        Ok(accepted) => panic!("{what} was accepted: {accepted:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_snapshot_chunks_are_refused_and_the_node_stays_in_the_cluster() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    let follower = cluster.nodes.iter().find(|n| n.id != leader).unwrap();
    let mut peer = follower.peer_client().await;

    // A chunk with the lowest vote is turned away by openraft without being streamed, and
    // its answer tells the follower's vote; with that vote a chunk is streamed in.
    let probe = send_chunk(&mut peer, &chunk(Vote::new(0, 0), 0, vec![1]))
        .await
        .unwrap();
    let vote = probe.expect("probe answered").vote;
    let first = send_chunk(&mut peer, &chunk(vote, 0, vec![1, 2, 3])).await.unwrap();
    assert!(first.is_ok(), "a first chunk at offset 0 is taken: {first:?}");

    // 64 MiB past the 3 bytes received: openraft would zero-fill the gap in memory.
    let gap = send_chunk(&mut peer, &chunk(vote, 64 << 20, vec![4])).await;
    assert_refused_chunk(gap, "a chunk 64 MiB past the bytes received");
    // 1 TiB: the allocation would abort the process.
    let huge = send_chunk(&mut peer, &chunk(vote, 1 << 40, vec![4])).await;
    assert_refused_chunk(huge, "a chunk at a 1 TiB offset");
    // An offset that overflows with its length.
    let overflow = send_chunk(&mut peer, &chunk(vote, u64::MAX, vec![4, 5])).await;
    assert_refused_chunk(overflow, "a chunk whose end overflows");
    // A chunk of a snapshot never started here.
    let mut unknown = chunk(vote, 3, vec![4]);
    unknown.meta.snapshot_id = "never-started".into();
    assert_refused_chunk(send_chunk(&mut peer, &unknown).await, "a chunk of an unknown snapshot");
    // The honest next chunk still goes in.
    let next = send_chunk(&mut peer, &chunk(vote, 3, vec![4])).await.unwrap();
    assert!(next.is_ok(), "the next chunk in order is taken: {next:?}");

    cluster.assert_serving(follower.id, "forged snapshot chunks").await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_runs_the_checks_of_member_add() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    let follower = cluster.nodes.iter().find(|n| n.id != leader).unwrap();
    let other = cluster
        .nodes
        .iter()
        .find(|n| n.id != leader && n.id != follower.id)
        .unwrap();
    let mut at_leader = cluster.node(leader).peer_client().await;
    let mut at_follower = follower.peer_client().await;
    let join = |node_id: u64, region: &str, peer_addr: String| JoinRequest {
        node_id,
        region: region.into(),
        peer_addr,
    };

    // A member joining again at its own address: nothing to do, and not an error (a
    // joiner whose first answer was lost asks again).
    at_leader
        .join(join(other.id, other.region, other.peer.to_string()))
        .await
        .expect("an idempotent re-join is accepted");

    let refusals = [
        (
            "a member's id at another address",
            join(other.id, other.region, follower.peer.to_string()),
            ErrorCode::MembershipChangeFailed,
        ),
        (
            "an id the node at that address does not have",
            join(9, other.region, other.peer.to_string()),
            ErrorCode::MembershipChangeFailed,
        ),
        (
            "an address where no node answers",
            join(8, "us-east", "127.0.0.1:1".into()),
            ErrorCode::MembershipChangeFailed,
        ),
        (
            "a region that is not a name",
            join(7, "us east!", "127.0.0.1:1".into()),
            ErrorCode::InvalidArgument,
        ),
        (
            "an address without a port",
            join(6, "us-east", "127.0.0.1".into()),
            ErrorCode::InvalidArgument,
        ),
        (
            "an address with port 0",
            join(5, "us-east", "127.0.0.1:0".into()),
            ErrorCode::InvalidArgument,
        ),
    ];
    for (what, request, code) in refusals {
        for (via, peer) in [("leader", &mut at_leader), ("follower", &mut at_follower)] {
            let refused = peer.join(request.clone()).await;
            let status = refused
                .err()
                .unwrap_or_else(|| panic!("{what} (via the {via}) was accepted"));
            assert_eq!(code_of(&status), Some(code), "{what} (via the {via}): {status:?}");
        }
    }

    cluster.assert_serving(leader, "refused joins").await;
    cluster.stop().await;
}

/// A forwarded request: an encoded `Command::Atomic` (the first variant of the domain's
/// command), as a follower forwards a client's write to the leader.
fn forwarded_atomic(write: &AtomicWrite) -> RaftPayload {
    let mut body = vec![0u8];
    body.extend(postcard::to_allocvec(write).unwrap());
    payload(&body)
}

/// The leader's answer to a forward: the result and the leader's client API address.
type ForwardAnswer = (Result<Vec<u8>, ConsensusError>, String);

async fn forward(peer: &mut PeerClient<tonic::transport::Channel>, request: RaftPayload) -> ForwardAnswer {
    let answer = peer.forward(request).await.unwrap().into_inner();
    postcard::from_bytes(&answer.data).unwrap()
}

fn set(key: Vec<u8>, encoding: ValueEncoding, value: Vec<u8>) -> AtomicWrite {
    AtomicWrite {
        checks: Vec::new(),
        mutations: vec![Mutation::Set {
            key,
            encoding,
            value,
            expiry: None,
            metadata: None,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_writes_are_validated_as_client_writes_are() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    let mut peer = cluster.node(leader).peer_client().await;

    // A well-formed forwarded write commits: the encoding above is the one followers send.
    let good = set(key!["forwarded"].encode(), ValueEncoding::Utf8, b"fine".to_vec());
    let (result, _) = forward(&mut peer, forwarded_atomic(&good)).await;
    assert!(result.is_ok(), "{result:?}");
    let entry = cluster
        .node(leader)
        .client()
        .await
        .get(key!["forwarded"])
        .await
        .unwrap();
    assert_eq!(entry.expect("written").value, Some(Value::from("fine")));

    let refusals = [
        (
            "a key that is not a tuple encoding",
            forwarded_atomic(&set(vec![0xff, 0xfe], ValueEncoding::Bytes, b"x".to_vec())),
            ErrorCode::KeyMalformed,
        ),
        (
            "a key over the size limit",
            forwarded_atomic(&set(
                key!["k", "x".repeat(4096)].encode(),
                ValueEncoding::Bytes,
                b"x".to_vec(),
            )),
            ErrorCode::KeyTooLarge,
        ),
        (
            "a value declared UTF-8 that is not",
            forwarded_atomic(&set(key!["k"].encode(), ValueEncoding::Utf8, vec![0xff, 0xff])),
            ErrorCode::ValueMalformed,
        ),
        (
            "a value over the size limit",
            forwarded_atomic(&set(key!["k"].encode(), ValueEncoding::Bytes, vec![0; 2 << 20])),
            ErrorCode::ValueTooLarge,
        ),
        (
            "an undecodable request",
            payload(&vec![0xffu8, 0xff, 0xff]),
            ErrorCode::InvalidArgument,
        ),
    ];
    for (what, request, code) in refusals {
        let (result, _) = forward(&mut peer, request).await;
        match result {
            Err(error) => assert_eq!(error.code(), code, "{what}: {error}"),
            Ok(answer) => panic!("{what} was proposed and applied (answer {answer:?})"),
        }
    }

    cluster.assert_serving(leader, "refused forwards").await;
    cluster.stop().await;
}

/// The refusal of a message over its call's cap: RESOURCE_EXHAUSTED with REQUEST_TOO_LARGE,
/// naming the call and its cap.
fn assert_too_large<T: std::fmt::Debug>(answer: Result<T, tonic::Status>, call: &str, cap: usize) {
    let status = match answer {
        Err(status) => status,
        Ok(accepted) => panic!("an oversized {call} was accepted: {accepted:?}"),
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{call}: {status:?}");
    assert_eq!(code_of(&status), Some(ErrorCode::RequestTooLarge), "{call}: {status:?}");
    assert!(status.message().contains(call), "{call}: {status:?}");
    assert!(
        status.message().contains(&format!("{cap}-byte cap")),
        "{call}: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_peer_messages_are_refused_and_the_node_stays_in_the_cluster() {
    // A slower heartbeat, as for the snapshot below: the honest write at the end appends a
    // megabyte, longer than 100 ms in a debug build.
    let cluster = Cluster::start_with(|config| {
        config.cluster.raft.heartbeat = Duration::from_millis(500);
        config.cluster.raft.election_timeout = Duration::from_secs(5);
        config.cluster.raft.request_timeout = Duration::from_secs(10);
    })
    .await;
    let leader = cluster.leader().await;
    let follower = cluster.nodes.iter().find(|n| n.id != leader).unwrap();
    let mut peer = follower.peer_client().await;
    let mut cache = follower.cache_client().await;

    // A Vote whose payload alone is its whole cap: the message is a few bytes over it.
    let vote = peer
        .vote(RaftPayload {
            data: vec![0xff; CONTROL_CAP],
        })
        .await;
    assert_too_large(vote, "edgekv.peer.v1.Peer/Vote", CONTROL_CAP);
    // Just under the cap it reaches the service, which finds it undecodable.
    let under = peer
        .vote(RaftPayload {
            data: vec![0xff; CONTROL_CAP - 8],
        })
        .await
        .expect_err("an undecodable vote is refused");
    assert_eq!(code_of(&under), Some(ErrorCode::InvalidArgument), "{under:?}");

    // A Join with a region name as long as the cap, at the leader.
    let join = cluster
        .node(leader)
        .peer_client()
        .await
        .join(JoinRequest {
            node_id: 9,
            region: "r".repeat(CONTROL_CAP),
            peer_addr: "127.0.0.1:1".into(),
        })
        .await;
    assert_too_large(join, "edgekv.peer.v1.Peer/Join", CONTROL_CAP);

    // Both services: a Digests request and a Merge of 64 MiB, cut short while it is still
    // being sent.
    let digests = cache
        .digests(CachePayload {
            data: vec![0; CONTROL_CAP + 1],
        })
        .await;
    assert_too_large(digests, "edgekv.peer.v1.CacheReplication/Digests", CONTROL_CAP);
    let merge = cache
        .merge(CachePayload {
            data: vec![0; MERGE_CAP],
        })
        .await;
    assert_too_large(merge, "edgekv.peer.v1.CacheReplication/Merge", MERGE_CAP);

    // The refusals were answers, not broken connections: the same channels still serve.
    let described = peer.describe(DescribeRequest {}).await.unwrap().into_inner();
    assert_eq!(described.node_id, follower.id);
    let undecodable = cache
        .digests(CachePayload { data: vec![0xff; 3] })
        .await
        .expect_err("an undecodable digests request is refused");
    assert_eq!(
        code_of(&undecodable),
        Some(ErrorCode::InvalidArgument),
        "{undecodable:?}"
    );

    // What honest members send still passes: a value of nearly the value limit written
    // through the follower goes to the leader in a Forward of many frames, each followed
    // against the cap, and comes back in an AppendEntries.
    let client = follower.client().await;
    client.set(key!["large"], vec![7u8; 1000 * 1000]).await.unwrap();
    let entry = client.get(key!["large"]).await.unwrap().expect("written");
    assert_eq!(entry.value, Some(Value::from(vec![7u8; 1000 * 1000])));

    cluster.assert_serving(follower.id, "oversized peer messages").await;
    cluster.stop().await;
}

/// Log lines of this test process, to tell a snapshot install from a log replay.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_several_chunks_still_installs() {
    // The process's subscriber (the nodes log from runtime threads); only this test sets it.
    let log = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter("edgekv_server::raft=info")
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .init();
    // Snapshots every 4 entries, keeping none after: a member that missed them catches up
    // by snapshot only. A slower heartbeat: openraft gives an append as long as one, and
    // appending a megabyte takes longer than 100 ms in a debug build.
    let mut cluster = Cluster::start_with(|config| {
        config.cluster.raft.heartbeat = Duration::from_millis(500);
        config.cluster.raft.election_timeout = Duration::from_secs(5);
        config.cluster.raft.request_timeout = Duration::from_secs(10);
        config.cluster.raft.snapshot_after_entries = 4;
        config.cluster.raft.entries_kept_after_snapshot = 0;
    })
    .await;
    let leader = cluster.leader().await;
    let lagging = cluster.nodes.iter().find(|n| n.id != leader).unwrap().id;
    cluster.stop_node(lagging).await;

    // About 14 MiB of values: the snapshot takes four 4 MiB chunks.
    let client = cluster.node(leader).client().await;
    for n in 0..14u64 {
        client.set(key!["big", n], vec![n as u8; 1000 * 1000]).await.unwrap();
    }
    cluster.restart_node(lagging).await;
    let behind = cluster.node(lagging).client().await;
    let mut caught_up = false;
    for _ in 0..300 {
        let last = behind
            .get(key!["big", 13u64])
            .consistency(edgekv_client::Consistency::Eventual)
            .await;
        if last.is_ok_and(|entry| entry.is_some()) {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(caught_up, "the lagging node caught up");
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
    assert!(
        text.contains("installed a snapshot from the leader"),
        "it caught up by snapshot:\n{text}"
    );
    for n in [0u64, 7, 13] {
        let entry = behind
            .get(key!["big", n])
            .consistency(edgekv_client::Consistency::Eventual)
            .await
            .unwrap()
            .expect("in the snapshot");
        assert_eq!(entry.value, Some(Value::from(vec![n as u8; 1000 * 1000])));
    }
    cluster.stop().await;
}
