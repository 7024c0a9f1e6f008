//! `kvctl cluster|member|fault` against real processes: a three-region cluster (status seen
//! from a follower, simulated faults, a joined learner promoted and removed through a
//! follower, which passes the command on to the leader) and a single `edgekv dev` node.

use std::time::Duration;

use edgekv_tests::cluster::Cluster;
use edgekv_tests::{Node, describe, kvctl, stderr, stdout};
use serde_json::{Value as Json, json};

const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];
/// Generous: an election takes a few election timeouts at most; CI machines are slow.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs kvctl, expects success and returns its JSON output.
fn kvctl_json(endpoint: &str, args: &[&str]) -> Json {
    let output = kvctl(endpoint, &[args, &["-o", "json"][..]].concat());
    assert!(output.status.success(), "kvctl {args:?}: {}", describe(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("kvctl {args:?}: {e}: {}", describe(&output)))
}

/// Polls `check` (which runs kvctl) until it returns something.
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn member(members: &Json, id: u64) -> Option<&Json> {
    members.as_array().unwrap().iter().find(|m| m["id"] == id)
}

fn link(from: &str, to: &str, delay: u64, cut: bool) -> Json {
    json!({ "from": from, "to": to, "one_way_delay_ms": delay, "jitter_ms": 0, "cut": cut })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_faults_and_membership_through_kvctl() {
    let mut cluster = Cluster::start(&REGIONS, &[]).unwrap();
    let leader = cluster.wait_for_leader(&[], TIMEOUT).await.unwrap();
    let follower = cluster.nodes.iter().find(|n| n.id != leader).unwrap().id;
    let follower_ep = cluster.node(follower).endpoint();

    // A follower's view: three members, one leader (the one leader_id names), and the client
    // address of each (asked of the members, so polled until every one has answered).
    let status = wait_for("a full cluster status from a follower", || {
        let status = kvctl_json(&follower_ep, &["cluster", "status"]);
        let members = status["members"].as_array().unwrap();
        (status["leader_id"] == leader
            && members.len() == 3
            && members.iter().all(|m| !m["api_addr"].as_str().unwrap().is_empty()))
        .then_some(status)
    })
    .await;
    assert_eq!(status["node_id"], follower);
    assert!(status["term"].as_u64().unwrap() >= 1, "{status}");
    for field in ["commit_index", "applied_index", "last_log_index"] {
        assert!(status[field].as_u64().unwrap() >= 1, "{field}: {status}");
    }
    let members = status["members"].as_array().unwrap();
    let leaders: Vec<&Json> = members.iter().filter(|m| m["role"] == "leader").collect();
    assert_eq!(leaders.len(), 1, "{status}");
    assert_eq!(leaders[0]["id"], status["leader_id"]);
    for node in &cluster.nodes {
        let m = member(&status["members"], node.id).unwrap_or_else(|| panic!("node {} missing: {status}", node.id));
        assert_eq!(m["region"], node.region.as_str());
        assert_eq!(m["peer_addr"], node.peer_addr());
        assert_eq!(format!("http://{}", m["api_addr"].as_str().unwrap()), node.endpoint());
        assert!(
            m["matched_index"].is_u64() && (m["lag"].is_null() || m["lag"].is_u64()),
            "{m}"
        );
        if node.id != leader {
            assert_eq!(m["role"], "follower");
        }
    }

    // The same as tables.
    let table = kvctl(&follower_ep, &["cluster", "status"]);
    assert!(table.status.success(), "{}", describe(&table));
    let text = stdout(&table);
    assert!(text.contains(&format!("leader_id          {leader}\n")), "{text}");
    assert!(
        text.contains("ID  REGION        ROLE      PEER_ADDR  "),
        "members table: {text}"
    );
    let list = kvctl(&follower_ep, &["member", "list"]);
    assert!(list.status.success(), "{}", describe(&list));
    let text = stdout(&list);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and 3 members: {text}");
    assert!(lines[0].starts_with("ID  REGION"), "{text}");
    for (line, node) in lines[1..].iter().zip(&cluster.nodes) {
        assert!(line.starts_with(&format!("{}   {}", node.id, node.region)), "{text}");
        assert!(line.contains(&node.peer_addr()), "{text}");
    }
    assert_eq!(
        kvctl_json(&follower_ep, &["member", "list"]).as_array().unwrap().len(),
        3
    );

    // Faults, sent to a follower, which passes them on to every member.
    // `-o json` prints the links in force as one array, as every collection.
    let answer = kvctl_json(&follower_ep, &["fault", "latency", "us-east", "eu-west", "20"]);
    assert_eq!(
        answer,
        json!([
            link("eu-west", "us-east", 20, false),
            link("us-east", "eu-west", 20, false)
        ])
    );
    let heal = kvctl(&follower_ep, &["fault", "heal"]);
    assert!(heal.status.success(), "{}", describe(&heal));
    let text = stdout(&heal);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "heal keeps the latency: {text}");
    assert!(
        lines[0].starts_with("FROM     TO       ONE_WAY_DELAY_MS  JITTER_MS  CUT"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("eu-west  us-east  20") && lines[1].ends_with("no"),
        "{text}"
    );
    let partition = kvctl(&follower_ep, &["fault", "partition", "us-east", "eu-west"]);
    assert!(partition.status.success(), "{}", describe(&partition));
    assert!(
        stdout(&partition).lines().skip(1).all(|l| l.ends_with("yes")),
        "{}",
        describe(&partition)
    );
    assert_eq!(
        kvctl_json(&follower_ep, &["fault", "partition", "us-east", "eu-west"]),
        json!([
            link("eu-west", "us-east", 20, true),
            link("us-east", "eu-west", 20, true)
        ])
    );
    let healed = kvctl_json(&follower_ep, &["fault", "heal"]);
    assert_eq!(
        healed,
        json!([
            link("eu-west", "us-east", 20, false),
            link("us-east", "eu-west", 20, false)
        ])
    );
    let cleared = kvctl_json(&follower_ep, &["fault", "latency", "us-east", "eu-west", "0"]);
    assert_eq!(cleared, json!([]));
    let same = kvctl(&follower_ep, &["fault", "partition", "us-east", "us-east"]);
    assert_eq!(same.status.code(), Some(2), "{}", describe(&same));

    // The partition may have moved the leadership.
    let leader = cluster.wait_for_leader(&[], TIMEOUT).await.unwrap();
    let leader_ep = cluster.node(leader).endpoint();

    // A fourth node joins as a learner.
    let newcomer = cluster.join("eu-west", leader, &[]).unwrap();
    wait_for("the newcomer as a learner", || {
        let members = kvctl_json(&leader_ep, &["member", "list"]);
        member(&members, newcomer)
            .is_some_and(|m| m["role"] == "learner")
            .then_some(())
    })
    .await;

    // Promoted through a follower: it refuses, names the leader, and kvctl goes there.
    let follower = cluster
        .nodes
        .iter()
        .find(|n| n.id != leader && n.id != newcomer)
        .unwrap()
        .id;
    let follower_ep = cluster.node(follower).endpoint();
    // A follower learns the leader's client address from the first request it forwards.
    let put = kvctl(&follower_ep, &["put", "kvctl-cluster/warm-up", "1"]);
    assert!(put.status.success(), "{}", describe(&put));
    let promote = kvctl(
        &follower_ep,
        &["member", "promote", &newcomer.to_string(), "-o", "json"],
    );
    assert!(promote.status.success(), "{}", describe(&promote));
    assert!(
        stderr(&promote).contains(&format!("kvctl: sent to the leader at {leader_ep}")),
        "{}",
        describe(&promote)
    );
    let members: Json = serde_json::from_str(&stdout(&promote)).unwrap();
    assert_eq!(members.as_array().unwrap().len(), 4, "{members}");
    assert_eq!(member(&members, newcomer).unwrap()["role"], "follower", "{members}");

    // Removed through the other follower, as a table. It has forwarded nothing, so it may not
    // know the leader's client address; kvctl then finds it in that node's cluster status.
    let other = cluster
        .nodes
        .iter()
        .find(|n| ![leader, follower, newcomer].contains(&n.id))
        .unwrap()
        .endpoint();
    let remove = kvctl(&other, &["member", "remove", &newcomer.to_string()]);
    assert!(remove.status.success(), "{}", describe(&remove));
    assert!(
        stderr(&remove).contains(&format!("kvctl: sent to the leader at {leader_ep}")),
        "{}",
        describe(&remove)
    );
    let text = stdout(&remove);
    assert_eq!(text.lines().count(), 4, "a header and 3 members: {text}");
    assert!(!text.lines().any(|l| l.starts_with(&format!("{newcomer} "))), "{text}");
    let members = kvctl_json(&leader_ep, &["member", "list"]);
    assert!(member(&members, newcomer).is_none(), "{members}");

    // A node that formed a cluster of its own is refused, and the cluster keeps its leader.
    let loner = cluster.start_standalone("ap-northeast", &[]).unwrap();
    let loner_peer = cluster.node(loner).peer_addr();
    let refused = kvctl(
        &leader_ep,
        &["member", "add", &loner.to_string(), "ap-northeast", &loner_peer],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", describe(&refused));
    assert!(
        stderr(&refused).contains("MEMBERSHIP_CHANGE_FAILED"),
        "{}",
        describe(&refused)
    );
    assert!(
        stderr(&refused).contains("--await-membership"),
        "{}",
        describe(&refused)
    );
    cluster.kill(loner);
    assert_eq!(cluster.wait_for_leader(&[], TIMEOUT).await.unwrap(), leader);

    // A node started with --await-membership is added by kvctl and becomes a voter.
    let waiting = cluster.start_waiting("ap-northeast", &[]).unwrap();
    let peer = cluster.node(waiting).peer_addr();
    let add = kvctl(
        &leader_ep,
        &[
            "member",
            "add",
            &waiting.to_string(),
            "ap-northeast",
            &peer,
            "-o",
            "json",
        ],
    );
    assert!(add.status.success(), "{}", describe(&add));
    let members: Json = serde_json::from_str(&stdout(&add)).unwrap();
    assert_eq!(member(&members, waiting).unwrap()["role"], "follower", "{members}");
    let added = cluster.node(waiting).client().await.unwrap();
    added
        .get(edgekv_client::key!["kvctl-cluster", "warm-up"])
        .await
        .unwrap()
        .expect("the added node has the data");

    // An unknown member is the server's NOT_FOUND (exit 3; 1 is for keys only).
    let missing = kvctl(&leader_ep, &["member", "remove", "99"]);
    assert_eq!(missing.status.code(), Some(3), "{}", describe(&missing));
    assert!(stderr(&missing).contains("NOT_FOUND"), "{}", describe(&missing));
    let missing = kvctl(&follower_ep, &["member", "promote", "99"]);
    assert_eq!(missing.status.code(), Some(3), "{}", describe(&missing));
    assert!(stderr(&missing).contains("NOT_FOUND"), "{}", describe(&missing));

    // Bad arguments never reach the server.
    for args in [
        &["member", "add", "0", "x", "y"][..],
        &["member", "add", "5", "eu-west", "no-port"],
        &["member", "add", "5", "", "127.0.0.1:7080"],
        &["member", "add", "five", "eu-west", "127.0.0.1:7080"],
        &["member", "add", "5"],
        &["member", "promote", "0"],
        &["member", "remove", "-3"],
        &["fault", "latency", "us-east", "eu-west", "soon"],
        &["fault", "partition", "us-east"],
    ] {
        let output = kvctl(&leader_ep, args);
        assert_eq!(output.status.code(), Some(2), "kvctl {args:?}: {}", describe(&output));
    }
}

#[test]
fn a_single_dev_node_is_its_own_leader_and_refuses_faults() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let ep = node.endpoint.as_str();

    let heal = kvctl(ep, &["fault", "heal"]);
    assert_eq!(heal.status.code(), Some(3), "{}", describe(&heal));
    assert!(
        stderr(&heal).contains("FAULT_INJECTION_DISABLED"),
        "{}",
        describe(&heal)
    );
    assert!(stdout(&heal).is_empty(), "{}", describe(&heal));

    let status = kvctl_json(ep, &["cluster", "status"]);
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{status}");
    assert_eq!(members[0]["role"], "leader");
    assert_eq!(members[0]["id"], status["leader_id"]);
    assert_eq!(status["node_id"], status["leader_id"]);
    assert_eq!(
        format!("http://{}", members[0]["api_addr"].as_str().unwrap()),
        node.endpoint
    );
    let table = kvctl(ep, &["cluster", "status"]);
    assert!(table.status.success(), "{}", describe(&table));
    let text = stdout(&table);
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("ID  "))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[1].contains("  leader  "), "{text}");

    // The only voter cannot be removed; an unknown member is NOT_FOUND.
    let remove = kvctl(ep, &["member", "remove", &status["node_id"].to_string()]);
    assert_eq!(remove.status.code(), Some(3), "{}", describe(&remove));
    assert!(
        stderr(&remove).contains("MEMBERSHIP_CHANGE_FAILED"),
        "{}",
        describe(&remove)
    );
    let missing = kvctl(ep, &["member", "promote", "42"]);
    assert_eq!(missing.status.code(), Some(3), "{}", describe(&missing));
    assert!(stderr(&missing).contains("NOT_FOUND"), "{}", describe(&missing));
}
