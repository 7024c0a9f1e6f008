//! `kvctl` against real secure nodes (`edgekv serve --certs-dir --auth-secret-file`, with
//! certificates from `edgekv cert` and tokens from `kvctl token create`): data and admin
//! commands over TLS with `--cacert` and `--token`, a membership change that a follower
//! passes on to the leader over TLS, and the refusals: no CA, no token, a CA with a
//! plaintext endpoint, a CA file that holds no certificate.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use edgekv_tests::cluster::{Cluster, ClusterOptions};
use edgekv_tests::credentials::{admin_token, certificates, secret_file};
use edgekv_tests::{binary, describe, stderr, stdout, without_kvctl_environment};
use serde_json::Value as Json;

const SECRET: (&str, &str) = ("k1", "a-secret-the-kvctl-test-signs-with-0123456789");
/// Generous: an election takes a few election timeouts at most; CI machines are slow.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A secure cluster of one voter per region, its certificates in `dir/certs` and its
/// secrets in `dir/secrets`; the harness holds the admin token this returns too.
fn secure_cluster(dir: &Path, regions: &[&str]) -> (Cluster, String) {
    let certs = dir.join("certs");
    certificates(&certs).unwrap();
    secret_file(&dir.join("secrets"), &[SECRET]).unwrap();
    let token = admin_token(&dir.join("secrets")).unwrap();
    let cluster = Cluster::start_with(
        regions,
        &[],
        ClusterOptions {
            certs_dir: Some(certs),
            auth_secret_file: Some(dir.join("secrets")),
            token: Some(token.clone()),
            ..ClusterOptions::default()
        },
    )
    .unwrap();
    (cluster, token)
}

/// Runs `kvctl ARGS` with nothing taken from the environment: every endpoint, CA and token
/// is on the command line.
fn kvctl(args: &[&str]) -> Output {
    without_kvctl_environment(Command::new(binary("kvctl")).args(args))
        .output()
        .expect("run kvctl")
}

/// The one JSON document a successful run printed.
fn json_of(args: &[&str], output: &Output) -> Json {
    assert!(output.status.success(), "kvctl {args:?}: {}", describe(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("kvctl {args:?}: {e}: {}", describe(output)))
}

#[test]
fn kvctl_speaks_tls_with_cacert_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, token) = secure_cluster(dir.path(), &["us-east"]);
    let endpoint = cluster.node(1).endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let ca = dir.path().join("certs").join("ca.crt");
    let ca = ca.to_str().unwrap();
    let secure =
        |args: &[&str]| kvctl(&[&["--endpoint", &endpoint, "--cacert", ca, "--token", &token][..], args].concat());

    // The data path (the SDK) and the admin path both verify the node with the CA.
    let put = secure(&["put", "users/42", "ada"]);
    assert!(put.status.success(), "{}", describe(&put));
    let args = ["get", "users/42", "-o", "json"];
    let get = json_of(&args, &secure(&args));
    assert_eq!(get["value"], "ada", "{get}");
    assert_eq!(get["key"], serde_json::json!(["users", "42"]), "{get}");
    let args = ["cluster", "status", "-o", "json"];
    let status = json_of(&args, &secure(&args));
    assert_eq!(status["node_id"], 1, "{status}");
    assert_eq!(status["members"].as_array().unwrap().len(), 1, "{status}");
    let args = ["keyspace", "list", "-o", "json"];
    assert!(json_of(&args, &secure(&args)).is_array());

    // The environment works as the flags do.
    let from_env = Command::new(binary("kvctl"))
        .args(["get", "users/42"])
        .env("EDGEKV_ENDPOINT", &endpoint)
        .env("EDGEKV_CACERT", ca)
        .env("EDGEKV_TOKEN", &token)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(from_env.status.success(), "{}", describe(&from_env));
    assert!(stdout(&from_env).contains("ada"), "{}", describe(&from_env));

    // Without --cacert the node's certificate is checked against the system's roots, which
    // do not hold the cluster CA: refused, on both paths. (On a machine with no system roots
    // at all, tonic refuses to build the TLS configuration instead, which the SDK reports
    // as a `transport error` without its cause.)
    for args in [&["get", "users/42"][..], &["cluster", "status"]] {
        let untrusted = kvctl(&[&["--endpoint", &endpoint, "--token", &token][..], args].concat());
        assert_eq!(untrusted.status.code(), Some(3), "{args:?}: {}", describe(&untrusted));
        let message = stderr(&untrusted).to_lowercase();
        assert!(
            (message.contains("cert") || message.contains("transport error")) && message.contains(&endpoint),
            "{args:?}: {}",
            describe(&untrusted)
        );
    }

    // With the CA but no token: the node refuses the call.
    for args in [&["get", "users/42"][..], &["cluster", "status"]] {
        let anonymous = kvctl(&[&["--endpoint", &endpoint, "--cacert", ca][..], args].concat());
        assert_eq!(anonymous.status.code(), Some(3), "{args:?}: {}", describe(&anonymous));
        assert!(
            stderr(&anonymous).contains("UNAUTHENTICATED"),
            "{args:?}: {}",
            describe(&anonymous)
        );
    }

    // A CA with a plaintext endpoint is a usage error, refused before connecting.
    let plaintext = endpoint.replacen("https://", "http://", 1);
    let mixed = kvctl(&[
        "--endpoint",
        &plaintext,
        "--cacert",
        ca,
        "--token",
        &token,
        "get",
        "users/42",
    ]);
    assert_eq!(mixed.status.code(), Some(2), "{}", describe(&mixed));
    assert!(
        stderr(&mixed).contains("--cacert") && stderr(&mixed).contains("https://"),
        "{}",
        describe(&mixed)
    );
    assert!(stdout(&mixed).is_empty(), "{}", describe(&mixed));

    // A CA file that cannot be read, or holds no certificate, is named.
    let missing = dir.path().join("missing.crt");
    let key = dir.path().join("certs").join("node.key");
    for file in [&missing, &key] {
        let file = file.to_str().unwrap();
        let bad = kvctl(&[
            "--endpoint",
            &endpoint,
            "--cacert",
            file,
            "--token",
            &token,
            "get",
            "users/42",
        ]);
        assert_eq!(bad.status.code(), Some(3), "{file}: {}", describe(&bad));
        assert!(stderr(&bad).contains(file), "{file}: {}", describe(&bad));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_passes_kvctl_on_to_the_leader_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, token) = secure_cluster(dir.path(), &["us-east", "eu-west", "ap-northeast"]);
    let ca = dir.path().join("certs").join("ca.crt");
    let ca = ca.to_str().unwrap().to_string();
    let secure = |endpoint: &str, args: &[&str]| {
        kvctl(&[&["--endpoint", endpoint, "--cacert", &ca, "--token", &token][..], args].concat())
    };
    let leader = cluster.wait_for_leader(&[], TIMEOUT).await.unwrap();
    let leader_ep = cluster.node(leader).endpoint();
    let newcomer = cluster.join("eu-west", leader, &[]).unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let args = ["member", "list", "-o", "json"];
        let members = json_of(&args, &secure(&leader_ep, &args));
        let learner = members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == newcomer && m["role"] == "learner");
        if learner {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no learner {newcomer}: {members}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The follower refuses, names the leader by address, and kvctl dials it with the
    // scheme, CA and token it was given.
    let follower = cluster
        .nodes
        .iter()
        .find(|n| n.id != leader && n.id != newcomer)
        .unwrap()
        .endpoint();
    // A follower learns the leader's client address from the first request it forwards.
    let put = secure(&follower, &["put", "kvctl-secure/warm-up", "1"]);
    assert!(put.status.success(), "{}", describe(&put));
    let args = ["member", "promote", &newcomer.to_string(), "-o", "json"];
    let promote = secure(&follower, &args);
    let members = json_of(&args, &promote);
    assert!(
        stderr(&promote).contains(&format!("kvctl: sent to the leader at {leader_ep}")),
        "{}",
        describe(&promote)
    );
    assert!(leader_ep.starts_with("https://"), "{leader_ep}");
    let promoted = members.as_array().unwrap().iter().find(|m| m["id"] == newcomer);
    assert_eq!(promoted.unwrap()["role"], "follower", "{members}");
}
