//! Deno KV clients, unchanged, against a real edgekv node over KV Connect: the Deno CLI
//! (HTTP/2 prior knowledge), @deno/kv on Node.js and the Python `denokv` client (both
//! HTTP/1.1). `cargo x test` installs the clients from npm and PyPI into a cache outside
//! the repository and names it in EDGEKV_CLIENTS_DIR. The node and the clients share a
//! private network namespace with only loopback up (as root), so nothing leaves the host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgekv_client::key;
use edgekv_tests::Node;
use edgekv_tests::cluster::{Cluster, ClusterOptions, KV_CONNECT_TOKEN};
use edgekv_tests::credentials::{TokenSpec, admin_token, certificates, secret_file, token};

const TOKEN: &str = "edgekv-dev-token";

fn clients_dir() -> PathBuf {
    let dir = std::env::var_os("EDGEKV_CLIENTS_DIR")
        .map(PathBuf::from)
        .expect("EDGEKV_CLIENTS_DIR is not set: run the suite with `cargo x test`, which installs the Deno KV clients");
    assert!(
        dir.is_dir(),
        "{} is missing: run `cargo x test`, which installs the Deno KV clients",
        dir.display()
    );
    dir
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kvconnect").join(name)
}

/// The environment every client gets: the token, no update checks, no colour, and a
/// scratch home so nothing is written outside the test's directory.
fn client_command(node: &Node, program: impl AsRef<std::ffi::OsStr>, token: &str, scratch: &Path) -> Command {
    client_env(node.command(program), token, scratch)
}

fn client_env(mut command: Command, token: &str, scratch: &Path) -> Command {
    command
        .env("DENO_KV_ACCESS_TOKEN", token)
        .env("DENO_NO_UPDATE_CHECK", "1")
        .env("DENO_NO_PROMPT", "1")
        .env("DENO_DIR", scratch.join("deno"))
        .env("NO_COLOR", "1")
        .env("HOME", scratch)
        .current_dir(scratch);
    command
}

fn run(mut command: Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn deno(node: &Node, url: &str, mode: &str, token: &str, scratch: &Path) -> Command {
    let mut command = client_command(node, clients_dir().join("npm/node_modules/.bin/deno"), token, scratch);
    command
        .args(["run", "--unstable-kv", "--allow-net", "--allow-env"])
        .arg(scenario("deno_scenario.ts"))
        .args([url, mode]);
    command
}

fn node_js(node: &Node, url: &str, mode: &str, token: &str, scratch: &Path) -> Command {
    let mut command = client_command(node, "node", token, scratch);
    command
        .env("EDGEKV_NODE_MODULES", clients_dir().join("npm/node_modules"))
        .arg(scenario("node_scenario.mjs"))
        .args([url, mode]);
    command
}

fn python(node: &Node, url: &str, mode: &str, token: &str, scratch: &Path) -> Command {
    let mut command = client_command(node, "python3", token, scratch);
    command
        .env("PYTHONPATH", clients_dir().join("py"))
        .arg(scenario("python_scenario.py"))
        .args([url, mode]);
    command
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("kvctl -o json prints JSON")
}

#[test]
fn deno_node_and_python_clients_work_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let node = Node::start_isolated(&dir.path().join("data")).unwrap();
    let url = node.kv_connect.clone().expect("edgekv dev serves KV Connect");

    // Written through the gRPC API; each client checks it reads the same keys and values.
    assert!(
        node.kvctl(&["put", "shared/from-kvctl", "written by kvctl"])
            .status
            .success()
    );
    assert!(node.kvctl(&["sum", "shared/counter", "42"]).status.success());

    run(deno(&node, &url, "full", TOKEN, &scratch), "the Deno CLI scenario");
    run(node_js(&node, &url, "full", TOKEN, &scratch), "the @deno/kv scenario");
    run(
        python(&node, &url, "full", TOKEN, &scratch),
        "the Python denokv scenario",
    );

    // A wrong token is a 401 with a readable message, in every client.
    let wrong = "not-the-right-token";
    run(
        deno(&node, &url, "wrong-token", wrong, &scratch),
        "the Deno CLI with a wrong token",
    );
    run(
        node_js(&node, &url, "wrong-token", wrong, &scratch),
        "@deno/kv with a wrong token",
    );
    run(
        python(&node, &url, "wrong-token", wrong, &scratch),
        "Python denokv with a wrong token",
    );

    // Values the clients wrote are visible through kvctl, V8 bytes shown as such.
    for (key, client) in [
        ("shared/from-deno", "deno"),
        ("shared/from-node", "node"),
        ("shared/from-python", "python"),
    ] {
        let output = node.kvctl(&["get", key, "-o", "json"]);
        assert!(
            output.status.success(),
            "{client} value missing: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let entry = json(&output);
        assert_eq!(entry["encoding"], "v8", "{client} wrote a V8 value");
        assert!(
            entry["value"].as_str().is_some_and(|hex| hex.starts_with("ff")),
            "V8 header: {entry}"
        );
    }
    // JavaScript numbers are floats: Deno's ["deno", "items", 4] is read with a float part,
    // and the integer 4 names another key (docs/kv-connect.md, "Keys").
    let float_part = node.kvctl(&["get", r#"["deno", "items", {"float":"4"}]"#, "-o", "json"]);
    assert!(
        float_part.status.success(),
        "Deno's key with a float part: {}",
        String::from_utf8_lossy(&float_part.stderr)
    );
    assert_eq!(json(&float_part)["encoding"], "v8", "Deno wrote a V8 string");
    let int_part = node.kvctl(&["get", r#"["deno", "items", 4]"#]);
    assert_eq!(int_part.status.code(), Some(1), "an integer part is another key");
    // Deno's versionstamps are edgekv's: the counter kvctl summed is a u64 to both.
    let counter = json(&node.kvctl(&["get", "shared/counter", "-o", "json"]));
    assert_eq!(counter["value"], 42);
    assert_eq!(counter["encoding"], "u64");
}

/// The Deno CLI against a three-region cluster: a write through one region's node, read
/// eventually (and strongly) through another region's, and compare-and-set across them.
#[test]
fn deno_against_a_three_region_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let cluster = Cluster::start_with(
        &["us-east", "eu-west", "ap-northeast"],
        &[],
        ClusterOptions {
            kv_connect: true,
            isolated: true,
            ..ClusterOptions::default()
        },
    )
    .unwrap();
    let deno = |node: &edgekv_tests::cluster::ClusterNode, args: &[&str]| {
        let mut command = client_env(
            node.command(clients_dir().join("npm/node_modules/.bin/deno")),
            KV_CONNECT_TOKEN,
            &scratch,
        );
        command
            .args(["run", "--unstable-kv", "--allow-net", "--allow-env"])
            .arg(scenario("deno_scenario.ts"))
            .arg(node.kv_connect_url())
            .args(args);
        command
    };
    let written = run(deno(&cluster.nodes[0], &["cluster-write"]), "the Deno write in us-east");
    let stamp = String::from_utf8_lossy(&written.stdout).trim().to_string();
    assert_eq!(stamp.len(), 20, "a versionstamp in hex: {stamp:?}");
    for reader in &cluster.nodes[1..2] {
        run(
            deno(reader, &["cluster-read", &stamp]),
            &format!("the Deno read in {}", reader.region),
        );
    }
    // The full single-node scenario also runs unchanged against a member of the cluster
    // (it reads two keys kvctl wrote first).
    let member = &cluster.nodes[2];
    for args in [
        ["put", "shared/from-kvctl", "written by kvctl"],
        ["sum", "shared/counter", "42"],
    ] {
        let mut kvctl = member.command(edgekv_tests::binary("kvctl"));
        kvctl.arg("--endpoint").arg(member.endpoint()).args(args);
        run(kvctl, "kvctl in the cluster");
    }
    run(
        deno(&cluster.nodes[2], &["full"]),
        "the full Deno scenario against a cluster member",
    );
}

/// The Deno CLI over HTTPS against a secure node: it trusts the cluster CA through
/// `DENO_CERT`, its access token is a signed token scoped to `["edge"]`, and the node holds
/// every read and write to that scope. The refused writes are read back as absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deno_over_https_with_a_scoped_token() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let certs = dir.path().join("certs");
    certificates(&certs).unwrap();
    let secrets = dir.path().join("secrets");
    secret_file(&secrets, &[("k1", "a-secret-for-the-deno-over-https-test-0123")]).unwrap();
    let cluster = Cluster::start_with(
        &["us-east"],
        &[],
        ClusterOptions {
            kv_connect: true,
            // On the host's loopback, so the test's own SDK client reads back what Deno did.
            isolated: false,
            certs_dir: Some(certs.clone()),
            auth_secret_file: Some(secrets.clone()),
            token: Some(admin_token(&secrets).unwrap()),
        },
    )
    .unwrap();
    let node = cluster.node(1);
    let url = node.kv_connect_url();
    assert!(url.starts_with("https://"), "{url}");
    let admin = node.client().await.unwrap();
    admin.set(key!["orders", "1"], "placed by the origin").await.unwrap();

    let edge_token = token(
        &secrets,
        &TokenSpec {
            subject: "edge-fn",
            prefixes: &[r#"["edge"]"#],
            read: true,
            write: true,
            ttl: "1h",
            ..TokenSpec::default()
        },
    )
    .unwrap();
    let mut deno = client_env(
        node.command(clients_dir().join("npm/node_modules/.bin/deno")),
        &edge_token,
        &scratch,
    );
    deno.env("DENO_CERT", certs.join("ca.crt"))
        .args(["run", "--unstable-kv", "--allow-net", "--allow-env", "--allow-read"])
        .arg(scenario("deno_scenario.ts"))
        .args([&url, "scoped"]);
    let output = run(deno, "the Deno CLI over HTTPS with a scoped token");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("scoped token held to its prefix"),
        "the scenario ran to its end"
    );

    let kept = admin.get(key!["orders", "1"]).await.unwrap().unwrap();
    assert_eq!(
        kept.value.as_ref().and_then(edgekv_client::Value::as_str),
        Some("placed by the origin")
    );
    assert!(admin.get(key!["orders", "2"]).await.unwrap().is_none());
    let inside = admin.get(key!["edge", "greeting"]).await.unwrap();
    assert!(inside.is_some(), "the write inside the scope landed");
}
