//! `edgekv demo`: a local multi-region cluster in one process, on a simulated WAN, with
//! its data in a temporary directory (like `cockroach demo --global`).
//!
//! The first node of each region is a voter; further nodes of a region join as learners,
//! so every region holds a full copy for local eventual reads. Fault injection is on, so
//! `kvctl fault partition|heal|latency` work against it. Keys under `["cache"]` are in the
//! cache class (multi-master, merged across regions); every other key is strong.
//!
//! With `--secure` ([`credentials`]) the demo runs as a production cluster does: TLS on
//! every listener, mutual TLS between nodes, and a token on every request; it prints the
//! CA file and an admin token for kvctl and Deno.

mod credentials;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use self::credentials::DemoCredentials;
use crate::config::Config;
use crate::net::WanLinkSettings;
use crate::node::{self, NodeError, Ready};
use edgekv_proto::regions::demo_round_trip_ms;

/// The KV Connect token of the demo's nodes.
pub const DEMO_TOKEN: &str = "edgekv-demo-token";

#[derive(Clone, Debug)]
pub struct DemoPlan {
    pub regions: Vec<String>,
    pub nodes_per_region: usize,
    /// Certificates and tokens (`--secure`).
    pub secure: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Plan(String),
    #[error("cannot create the data directory: {0}")]
    DataDir(std::io::Error),
    #[error("cannot find a free port: {0}")]
    Port(std::io::Error),
    #[error("node {id} failed: {error}")]
    Node { id: u64, error: NodeError },
}

/// One node of the demo as configured.
struct DemoNode {
    config: Config,
}

/// A free loopback port the configuration can name before the node binds it.
fn free_port() -> Result<SocketAddr, DemoError> {
    crate::net::unused_loopback_port().map_err(DemoError::Port)
}

/// The simulated WAN of the demo: the default matrix for known region pairs, 100 ms
/// round trips between unknown ones; one-way delay is half the round trip, jitter 5%.
pub fn demo_links(regions: &[String]) -> Vec<WanLinkSettings> {
    let mut links = Vec::new();
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            let rtt = demo_round_trip_ms(a, b).unwrap_or(100);
            links.push(WanLinkSettings {
                a: a.clone(),
                b: b.clone(),
                one_way_delay_ms: rtt / 2,
                jitter_ms: rtt / 40,
            });
        }
    }
    links
}

fn plan_nodes(
    plan: &DemoPlan,
    data_dir: &std::path::Path,
    credentials: Option<&DemoCredentials>,
) -> Result<Vec<DemoNode>, DemoError> {
    if plan.regions.is_empty() {
        return Err(DemoError::Plan("give at least one region".into()));
    }
    for (i, region) in plan.regions.iter().enumerate() {
        if plan.regions[..i].contains(region) {
            return Err(DemoError::Plan(format!("region {region} is listed twice")));
        }
    }
    let links = demo_links(&plan.regions);
    let mut nodes = Vec::new();
    let mut voters = Vec::new();
    let mut id = 0u64;
    for region in &plan.regions {
        for index in 0..plan.nodes_per_region {
            id += 1;
            let mut config = Config::default();
            config.node.id = id;
            config.node.region = region.clone();
            config.storage.data_dir = data_dir.join(format!("node-{id}"));
            config.api.listen = free_port()?;
            config.kv_connect.listen = free_port()?;
            match credentials {
                Some(credentials) => {
                    config.tls.certs_dir = credentials.certs_dir.clone();
                    config.auth.secret_file = credentials.secret_file.clone();
                }
                None => config.kv_connect.access_tokens = vec![DEMO_TOKEN.into()],
            }
            config.cluster.peer_listen = free_port()?;
            config.cluster.allow_fault_injection = true;
            config.cluster.wan_links = links.clone();
            config.log.level = "warn".into();
            if index == 0 {
                voters.push(format!("{id}={region}@{}", config.cluster.peer_listen));
            }
            nodes.push(DemoNode { config });
        }
    }
    let initial_cluster = voters.join(",");
    let first_peer = nodes[0].config.cluster.peer_listen.to_string();
    let mut seen_regions = Vec::new();
    for node in &mut nodes {
        if seen_regions.contains(&node.config.node.region) {
            node.config.cluster.join = first_peer.clone();
        } else {
            seen_regions.push(node.config.node.region.clone());
            node.config.cluster.initial_cluster = initial_cluster.clone();
        }
        node.config.validate().map_err(|e| DemoError::Plan(e.to_string()))?;
    }
    Ok(nodes)
}

pub async fn run(plan: DemoPlan, shutdown: CancellationToken) -> Result<(), DemoError> {
    let data = tempfile::Builder::new()
        .prefix("edgekv-demo-")
        .tempdir()
        .map_err(DemoError::DataDir)?;
    let credentials = plan.secure.then(|| DemoCredentials::create(data.path())).transpose()?;
    let nodes = plan_nodes(&plan, data.path(), credentials.as_ref())?;
    let ready: Arc<Mutex<Vec<(u64, String, Ready)>>> = Arc::default();
    let mut running = JoinSet::new();
    for node in nodes {
        let id = node.config.node.id;
        let region = node.config.node.region.clone();
        let ready = ready.clone();
        let stop = shutdown.clone();
        running.spawn(async move {
            let on_ready = Box::new(move |r: Ready| ready.lock().expect("ready list").push((id, region, r)));
            node::run(node.config, stop, on_ready)
                .await
                .map_err(|error| DemoError::Node { id, error })
        });
    }
    let total = plan.regions.len() * plan.nodes_per_region;
    // Learners are ready once the leader took them in; wait for everyone, or a failure.
    loop {
        if ready.lock().expect("ready list").len() == total {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            Some(done) = running.join_next() => {
                shutdown.cancel();
                while running.join_next().await.is_some() {}
                return match done {
                    Ok(Err(error)) => Err(error),
                    _ => Err(DemoError::Plan("a node stopped during startup".into())),
                };
            }
            _ = shutdown.cancelled() => break,
        }
    }
    if !shutdown.is_cancelled() {
        let first_api = ready
            .lock()
            .expect("ready list")
            .iter()
            .min_by_key(|(id, _, _)| *id)
            .map(|(_, _, r)| r.api);
        if let Some(api) = first_api
            && let Err(error) = make_cache_prefix(api, credentials.as_ref()).await
        {
            shutdown.cancel();
            while running.join_next().await.is_some() {}
            return Err(DemoError::Plan(format!(
                "cannot put [\"cache\"] in the cache class: {error}"
            )));
        }
        print_summary(
            &plan,
            data.path(),
            credentials.as_ref(),
            &ready.lock().expect("ready list"),
        );
    }
    let mut failure = None;
    while let Some(done) = running.join_next().await {
        if let Ok(Err(error)) = done {
            shutdown.cancel();
            failure.get_or_insert(error);
        }
    }
    println!("edgekv demo: stopped; removing {}", data.path().display());
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The demo's cache keys: everything under `["cache"]`, set through the first node (a
/// follower forwards it to the leader).
async fn make_cache_prefix(
    api: SocketAddr,
    credentials: Option<&DemoCredentials>,
) -> Result<(), Box<dyn std::error::Error>> {
    let channel = match credentials {
        Some(credentials) => credentials.channel(api).await?,
        None => {
            tonic::transport::Endpoint::from_shared(format!("http://{api}"))?
                .connect()
                .await?
        }
    };
    let mut request = tonic::Request::new(edgekv_proto::v1::SetKeyspaceClassRequest {
        prefix: edgekv_proto::key!["cache"].encode(),
        class: "cache".into(),
    });
    if let Some(credentials) = credentials {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", credentials.admin_token).parse()?);
    }
    edgekv_proto::v1::admin_client::AdminClient::new(channel)
        .set_keyspace_class(request)
        .await?;
    Ok(())
}

fn print_summary(
    plan: &DemoPlan,
    data_dir: &std::path::Path,
    credentials: Option<&DemoCredentials>,
    ready: &[(u64, String, Ready)],
) {
    let scheme = if credentials.is_some() { "https" } else { "http" };
    let mut nodes = ready.to_vec();
    nodes.sort_by_key(|(id, _, _)| *id);
    println!(
        "edgekv demo: {} nodes in {} regions (data in {})",
        nodes.len(),
        plan.regions.len(),
        data_dir.display()
    );
    println!(
        "{:<4} {:<14} {:<28} {:<28} peer",
        "id", "region", "client API", "KV Connect"
    );
    for (id, region, r) in &nodes {
        let kv_connect = r.kv_connect.map(|a| format!("{scheme}://{a}")).unwrap_or_default();
        println!(
            "{id:<4} {region:<14} {:<28} {kv_connect:<28} {}",
            format!("{scheme}://{}", r.api),
            r.peer
        );
    }
    println!("simulated round trips (one-way delay is half):");
    for link in demo_links(&plan.regions) {
        println!("  {} <-> {}: {} ms", link.a, link.b, link.one_way_delay_ms * 2);
    }
    let Some((_, _, first)) = nodes.first() else {
        return;
    };
    if let Some(credentials) = credentials {
        println!("TLS everywhere, mutual TLS between nodes, a token on every request; in your shell:");
        println!("      export EDGEKV_CACERT={}", credentials.ca_file().display());
        println!("      export EDGEKV_TOKEN={}", credentials.admin_token);
        println!(
            "(an admin token for every key; mint others with: kvctl token create --secret-file {} ...)",
            credentials.secret_file.display()
        );
    }
    let api = format!("{scheme}://{}", first.api);
    println!("try:  kvctl --endpoint {api} cluster status");
    println!("      kvctl --endpoint {api} put greeting hello");
    println!(
        "      kvctl --endpoint {api} fault partition {} {}",
        plan.regions[0],
        plan.regions.get(1).unwrap_or(&plan.regions[0])
    );
    let last = nodes.last().map_or(first.api, |(_, _, r)| r.api);
    println!("cache keys (under [\"cache\"]; written locally, merged in every region):");
    println!("      kvctl --endpoint {api} put cache/greeting hola");
    println!("      kvctl --endpoint {scheme}://{last} get cache/greeting --consistency eventual -o json");
    println!("      kvctl --endpoint {scheme}://{last} sadd cache/tags edge fast");
    let kv_connect = first.kv_connect.map(|a| a.to_string()).unwrap_or_default();
    match credentials {
        Some(_) => println!(
            "Deno: DENO_CERT=$EDGEKV_CACERT DENO_KV_ACCESS_TOKEN=$EDGEKV_TOKEN and Deno.openKv(\"https://{kv_connect}\")"
        ),
        None => println!("Deno: DENO_KV_ACCESS_TOKEN={DEMO_TOKEN} and Deno.openKv(\"http://{kv_connect}\")"),
    }
    println!("edgekv demo ready; Ctrl-C stops every node and removes the data");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_has_one_voter_per_region_and_learners_join() {
        let dir = tempfile::tempdir().unwrap();
        let plan = DemoPlan {
            regions: vec!["us-east".into(), "eu-west".into(), "ap-northeast".into()],
            nodes_per_region: 2,
            secure: false,
        };
        let nodes = plan_nodes(&plan, dir.path(), None).unwrap();
        assert_eq!(nodes.len(), 6);
        let voters = nodes
            .iter()
            .filter(|n| !n.config.cluster.initial_cluster.is_empty())
            .count();
        assert_eq!(voters, 3);
        let initial = nodes[0].config.cluster.initial_members().unwrap();
        assert_eq!(
            initial.iter().map(|m| m.region.as_str()).collect::<Vec<_>>(),
            ["us-east", "eu-west", "ap-northeast"]
        );
        assert!(
            nodes
                .iter()
                .filter(|n| !n.config.cluster.join.is_empty())
                .all(|n| n.config.node.id % 2 == 0)
        );
        let links = demo_links(&plan.regions);
        let us_ap = links
            .iter()
            .find(|l| l.a == "us-east" && l.b == "ap-northeast")
            .unwrap();
        assert_eq!(
            us_ap.one_way_delay_ms * 2,
            144,
            "145 ms round trip, halved and rounded down"
        );
        assert!(
            plan_nodes(
                &DemoPlan {
                    regions: vec!["a".into(), "a".into()],
                    nodes_per_region: 1,
                    secure: false,
                },
                dir.path(),
                None
            )
            .is_err()
        );
    }
}
