//! A secure cluster of real `edgekv serve` processes, built only with `edgekv cert`: every
//! listener serves TLS, the peer listener takes only members with a certificate of the
//! cluster CA. Outsiders are refused at the handshake: a plaintext client, a client that
//! does not trust the cluster CA, and nodes holding a certificate of another CA, whether
//! they try to join or to call elections; the cluster keeps serving throughout.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgekv_client::{Client, Consistency, key};
use edgekv_proto::peer::v1::{JoinRequest, RaftPayload, peer_client::PeerClient};
use edgekv_tests::binary;
use edgekv_tests::cluster::{Cluster, ClusterOptions};
use edgekv_tests::credentials::{admin_token, certificates, secret_file};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

const SECRET: &str = "c2VjcmV0LW9mLXRoZS1zZWN1cmUtY2x1c3Rlci10ZXN0";

const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];
const FAILOVER: Duration = Duration::from_secs(30);

/// A node process that never becomes ready (it cannot join), stopped by PID on drop.
struct Outsider(Child);

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free now (the kernel's pick; the outsider binds it at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `edgekv serve` with another CA's certificates (and the token secrets in the same
/// directory), its peer listener on `peer_port`, and `bootstrap` flags.
fn outsider(certs_dir: &Path, data_dir: &Path, id: u64, peer_port: u16, bootstrap: &[String]) -> Outsider {
    let log = std::fs::File::create(data_dir.with_extension("log")).unwrap();
    let child = Command::new(binary("edgekv"))
        .arg("serve")
        .arg("--certs-dir")
        .arg(certs_dir)
        .arg("--auth-secret-file")
        .arg(certs_dir.join("secrets"))
        .args(["--id", &id.to_string(), "--region", "eu-west"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--peer-listen", &format!("127.0.0.1:{peer_port}")])
        .args(["--kv-connect-enabled", "false"])
        .args(["--heartbeat", "100ms", "--election-timeout", "1s"])
        .args(bootstrap)
        .env_remove("EDGEKV_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Outsider(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holders_of_the_cluster_ca_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    certificates(&certs).unwrap();
    let secrets = certs.join("secrets");
    secret_file(&secrets, &[("k1", SECRET)]).unwrap();
    let cluster = Cluster::start_with(
        &REGIONS,
        &[],
        ClusterOptions {
            certs_dir: Some(certs.clone()),
            auth_secret_file: Some(secrets.clone()),
            token: Some(admin_token(&secrets).unwrap()),
            ..ClusterOptions::default()
        },
    )
    .unwrap();
    let leader = cluster.wait_for_leader(&[], FAILOVER).await.unwrap();
    assert!(cluster.node(1).endpoint().starts_with("https://"));

    // A client that trusts the cluster CA writes through one node and reads on another.
    let first = cluster.node(1).client().await.unwrap();
    first.set(key!["secure", 1], "one").await.unwrap();
    let second = cluster.node(2).client().await.unwrap();
    let read = second
        .get(key!["secure", 1])
        .consistency(Consistency::Strong)
        .await
        .unwrap();
    assert!(read.is_some(), "a strong read on another node sees the write");

    // A plaintext client gets no answer from a TLS listener.
    let plaintext = format!("http://127.0.0.1:{}", cluster.node(1).api_port);
    // Both hold a valid token: what refuses them is the transport.
    let token = admin_token(&secrets).unwrap();
    let attempt = async {
        Client::connect_with_token(plaintext, Some(token.clone()))
            .await?
            .get(key!["secure", 1])
            .await
    };
    let refused = attempt.await.expect_err("a plaintext client is refused").to_string();
    // A TLS listener answers plaintext HTTP/2 with a TLS alert: no gRPC answer at all.
    assert!(refused.starts_with("UNAVAILABLE"), "{refused}");

    // A client that does not trust the cluster CA (only the system's roots) is refused at
    // the handshake.
    let untrusting = async {
        Client::connect_with_token(cluster.node(1).endpoint(), Some(token.clone()))
            .await?
            .get(key!["secure", 1])
            .await
    };
    let refused = untrusting
        .await
        .expect_err("a client without the cluster CA is refused")
        .to_string();
    assert!(
        refused.contains("UnknownIssuer"),
        "refused for the node's certificate: {refused}"
    );

    // Nodes with another CA's certificate: one tries to join, one claims to be a voter
    // of this cluster and calls elections against it.
    let other = dir.path().join("other-ca");
    certificates(&other).unwrap();
    secret_file(&other.join("secrets"), &[("k1", SECRET)]).unwrap();
    // The outsiders trust the cluster's CA as well as their own, so their side of every
    // handshake succeeds: what refuses them is the cluster checking their certificate.
    let both_cas = [
        std::fs::read_to_string(other.join("ca.crt")).unwrap(),
        std::fs::read_to_string(certs.join("ca.crt")).unwrap(),
    ]
    .concat();
    std::fs::write(other.join("ca.crt"), both_cas).unwrap();
    let term_before = cluster.status(leader).await.unwrap().term;
    let _joiner = outsider(
        &other,
        &dir.path().join("joiner"),
        4,
        free_port(),
        &["--join".into(), cluster.node(1).peer_addr()],
    );
    let candidate_port = free_port();
    let voters = cluster
        .nodes
        .iter()
        .map(|n| format!("{}={}@{}", n.id, n.region, n.peer_addr()))
        .chain([format!("5=eu-west@127.0.0.1:{candidate_port}")])
        .collect::<Vec<_>>()
        .join(",");
    let _candidate = outsider(
        &other,
        &dir.path().join("candidate"),
        5,
        candidate_port,
        &["--initial-cluster".into(), voters],
    );
    // Several election timeouts of the candidate, and join retries of the joiner.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let status = cluster.status(leader).await.unwrap();
    let members: Vec<u64> = status.members.iter().map(|m| m.id).collect();
    assert_eq!(members, vec![1, 2, 3], "the outsider did not join");
    assert_eq!(status.leader_id, leader, "no election was forced on the cluster");
    assert_eq!(status.term, term_before, "no vote request got through");
    let joiner_log = std::fs::read_to_string(dir.path().join("joiner.log")).unwrap();
    assert!(
        joiner_log.contains("cannot join"),
        "the joiner was refused at the handshake: {joiner_log}"
    );

    // Node 1 says so itself: its cluster status counts the handshakes it refused.
    let seen_by_node_1 = cluster.status(1).await.unwrap();
    let refused = seen_by_node_1
        .peer_listener
        .expect("a TLS node reports its peer listener");
    assert!(refused.handshakes_refused > 0, "{refused:?}");
    assert!(refused.last_refused_from.starts_with("127.0.0.1:"), "{refused:?}");
    assert!(!refused.last_refused_reason.is_empty() && refused.last_refused_age_ms.is_some());

    // The candidate did call elections; the cluster closed each connection at the handshake
    // (TLS 1.3 reports a refused client certificate to the client as a closed connection).
    let candidate_log = std::fs::read_to_string(dir.path().join("candidate.log")).unwrap();
    assert!(
        candidate_log.contains("requesting vote") && candidate_log.contains("connection closed"),
        "the candidate's vote requests were cut at the handshake: {candidate_log}"
    );

    // Raw peer calls: trusting the cluster CA is not enough; a caller must present a
    // certificate the cluster CA signed. A member's certificate reaches the service.
    let peer_url = format!("https://{}", cluster.node(leader).peer_addr());
    let identity = |dir: &Path| {
        Identity::from_pem(
            std::fs::read(dir.join("node.crt")).unwrap(),
            std::fs::read(dir.join("node.key")).unwrap(),
        )
    };
    let anonymous =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(certs.join("ca.crt")).unwrap()));
    let foreign = anonymous.clone().identity(identity(&other));
    let member = anonymous.clone().identity(identity(&certs));
    for (who, tls) in [("no certificate", anonymous), ("another CA's certificate", foreign)] {
        for call in ["vote", "append", "join"] {
            let outcome = peer_call(&peer_url, tls.clone(), call).await;
            assert!(
                outcome.as_ref().is_err_and(|reason| !reason.starts_with("answered")),
                "{call} with {who} must fail at the handshake: {outcome:?}"
            );
        }
    }
    let answered = peer_call(&peer_url, member, "vote").await;
    assert!(
        answered.as_ref().is_err_and(|reason| reason.starts_with("answered")),
        "a member's certificate reaches the service, which refuses the empty vote: {answered:?}"
    );

    // The cluster kept serving.
    first.set(key!["secure", 2], "two").await.unwrap();
    let read = second
        .get(key!["secure", 2])
        .consistency(Consistency::Strong)
        .await
        .unwrap();
    assert!(read.is_some());
}

/// One raw call on the peer port with `tls`: `Ok` or `Err("answered: ...")` when the
/// service answered, any other `Err` when the call never reached it.
async fn peer_call(url: &str, tls: ClientTlsConfig, call: &str) -> Result<(), String> {
    let channel = Endpoint::from_shared(url.to_string())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|error| format!("connect: {error:?}"))?;
    let mut peer = PeerClient::new(channel);
    let empty = || RaftPayload { data: Vec::new() };
    let answer = match call {
        "vote" => peer.vote(empty()).await.map(drop),
        "append" => peer.append_entries(empty()).await.map(drop),
        _ => peer
            .join(JoinRequest {
                node_id: 9,
                region: "eu-west".into(),
                peer_addr: "127.0.0.1:1".into(),
            })
            .await
            .map(drop),
    };
    answer.map_err(|status| {
        // A status the service chose carries no transport error underneath; a refused
        // handshake surfaces as a status made from the transport's failure.
        if std::error::Error::source(&status).is_some() {
            format!("transport: {status:?}")
        } else {
            format!("answered: {status:?}")
        }
    })
}
