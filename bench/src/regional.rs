//! The regional scenario (system `edgekv-3-regions`): strong writes from each region of a
//! simulated 3-region cluster, against the physical floor of that region.
//!
//! Three `edgekv serve` voters, one per region, with `edgekv demo`'s round trips between
//! them applied by the peer transport (one-way delay = RTT / 2, jitter RTT / 40 per
//! direction, as the demo does). One client per region talks only to its region's node
//! (`stay_local`), which forwards the write to the leader over the simulated WAN. Each
//! client issues durable writes one at a time; the regions are measured one after
//! another, so a single write is in flight in the whole cluster and each latency is the
//! bare write path from that region.
//!
//! The floor of a region is what any protocol needing a majority of 3 must pay: the round
//! trip to its nearest other region (the cheapest quorum partner) plus one fsync,
//! measured in the run on the data directories' filesystem. With one Raft leader, a
//! follower region's write pays the round trip to the leader and then the leader's own
//! quorum round trip, so only the leader's region can come near its floor; the report
//! prints that bound next to the floor.

use std::time::Instant;

use anyhow::{Context, Result};
use edgekv_client::{Client, Value, key};

use crate::driver::{REQUEST_TIMEOUT, RunStats, new_histogram};
use crate::peers::{CLUSTER_REGIONS, WanLink, start_edgekv_cluster};

/// The system name that selects this scenario.
pub const SYSTEM: &str = "edgekv-3-regions";
/// Unmeasured writes per region first (connections, leader discovery, caches).
const WARMUP_WRITES: usize = 3;
/// fsync probes whose median is the floor's fsync term.
const FSYNC_ROUNDS: usize = 200;

/// The simulated WAN between `regions`: the demo's round trips, jitter as the demo's.
pub fn demo_links(regions: &[&str]) -> Vec<WanLink> {
    let mut links = Vec::new();
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            let rtt_ms = edgekv_proto::regions::demo_round_trip_ms(a, b).unwrap_or(100);
            links.push(WanLink {
                a: a.to_string(),
                b: b.to_string(),
                rtt_ms,
                jitter_ms: rtt_ms / 40,
            });
        }
    }
    links
}

/// The simulated round trip between two regions in ms (0 within a region).
pub fn rtt(links: &[WanLink], a: &str, b: &str) -> u32 {
    if a == b {
        return 0;
    }
    links
        .iter()
        .find(|l| (l.a == a && l.b == b) || (l.a == b && l.b == a))
        .map_or(0, |l| l.rtt_ms)
}

/// The nearest other region of `region` and the round trip to it.
fn nearest(links: &[WanLink], regions: &[&str], region: &str) -> (String, u32) {
    regions
        .iter()
        .filter(|r| **r != region)
        .map(|r| (r.to_string(), rtt(links, region, r)))
        .min_by_key(|(_, rtt)| *rtt)
        .unwrap_or_default()
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RegionResult {
    pub region: String,
    pub node_id: u64,
    /// The region's nearest other region and the round trip to it.
    pub nearest_region: String,
    pub nearest_rtt_ms: u32,
    /// nearest round trip + fsync p50.
    pub floor_us: u64,
    /// The best single-leader Raft can do from here: round trip to the leader's region
    /// (0 in it) + the leader's nearest round trip + fsync p50.
    pub single_leader_bound_us: u64,
    pub is_leader_region: bool,
    /// Latencies of the measured writes (sequential, one outstanding).
    pub stats: RunStats,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Regional {
    pub writes_per_region: usize,
    pub value_size: usize,
    pub links: Vec<WanLink>,
    /// Median and p99 of 4 KiB overwrite + fdatasync on the data directories' filesystem.
    pub fsync_p50_us: u64,
    pub fsync_p99_us: u64,
    pub fsync_rounds: usize,
    /// Leader (id, region) before and after the measured writes.
    pub leader_before: (u64, String),
    pub leader_after: (u64, String),
    pub regions: Vec<RegionResult>,
}

async fn leader_of(client: &Client) -> Result<(u64, String)> {
    let status = client.cluster_status().await?;
    let region = status
        .members
        .iter()
        .find(|m| m.id == status.leader_id)
        .map(|m| m.region.clone())
        .unwrap_or_default();
    Ok((status.leader_id, region))
}

/// `writes` sequential durable writes through `client`; latencies in µs.
async fn sequential_writes(client: &Client, region: &str, writes: usize, value_size: usize) -> RunStats {
    let mut histogram = new_histogram();
    let mut stats = RunStats::default();
    let value = vec![0x5au8; value_size];
    let started = Instant::now();
    for i in 0..writes {
        let begin = Instant::now();
        let write = client.set(key!["regional", region, i as u64], Value::Bytes(value.clone()));
        match tokio::time::timeout(REQUEST_TIMEOUT, write).await {
            Ok(Ok(_)) => {
                stats.ok += 1;
                let _ = histogram.record(begin.elapsed().as_micros().max(1) as u64);
            }
            Ok(Err(error)) => {
                stats.errors += 1;
                stats.first_error.get_or_insert_with(|| error.to_string());
            }
            Err(_) => stats.timeouts += 1,
        }
    }
    stats.achieved_rate = stats.ok as f64 / started.elapsed().as_secs_f64();
    stats.set_percentiles(&histogram);
    stats
}

/// Runs the scenario: measures fsync, starts the cluster, writes from each region in
/// turn, stops the cluster.
pub async fn run(edgekv: &std::path::Path, writes_per_region: usize, value_size: usize) -> Result<Regional> {
    let regions = CLUSTER_REGIONS;
    let links = demo_links(&regions);
    let dir = tempfile::Builder::new().prefix("edgekv-bench-regions-").tempdir()?;
    // The data directories live in `dir`: the probe runs on their filesystem.
    let (fsync_p50_us, fsync_p99_us) =
        crate::machine::fsync_baseline(dir.path(), FSYNC_ROUNDS).context("fsync probe in the data directory")?;
    eprintln!(
        "   fsync (4 KiB + fdatasync, median of {FSYNC_ROUNDS}): {:.3} ms",
        fsync_p50_us as f64 / 1000.0
    );
    // edgekv's default Raft timings: made for these round trips.
    let cluster = start_edgekv_cluster(edgekv, dir.path(), &regions, &[], &links).await?;
    let mut clients = Vec::new();
    for node in &cluster.nodes {
        clients.push(node.local_client().await?);
    }
    let leader_before = leader_of(&clients[0]).await?;
    if leader_before.0 == 0 || leader_before.1.is_empty() {
        anyhow::bail!("the regional cluster names no leader after it agreed on one");
    }
    eprintln!("   leader: node {} ({})", leader_before.0, leader_before.1);
    let (_, leader_nearest_rtt) = nearest(&links, &regions, &leader_before.1);
    let mut results = Vec::new();
    for (node, client) in cluster.nodes.iter().zip(&clients) {
        for i in 0..WARMUP_WRITES {
            client
                .set(
                    key!["regional-warmup", node.region.as_str(), i as u64],
                    Value::Bytes(vec![0; 8]),
                )
                .await
                .with_context(|| format!("warm-up write from {}", node.region))?;
        }
        let stats = sequential_writes(client, &node.region, writes_per_region, value_size).await;
        let (nearest_region, nearest_rtt_ms) = nearest(&links, &regions, &node.region);
        let floor_us = u64::from(nearest_rtt_ms) * 1000 + fsync_p50_us;
        let single_leader_bound_us =
            u64::from(rtt(&links, &node.region, &leader_before.1) + leader_nearest_rtt) * 1000 + fsync_p50_us;
        eprintln!(
            "   {:<13} p50 {:>7.2} ms  p99 {:>7.2} ms  floor {:>7.2} ms  p50/floor {:.2}  (errors {}, timeouts {})",
            node.region,
            stats.p50_us as f64 / 1000.0,
            stats.p99_us as f64 / 1000.0,
            floor_us as f64 / 1000.0,
            stats.p50_us as f64 / floor_us as f64,
            stats.errors,
            stats.timeouts
        );
        results.push(RegionResult {
            region: node.region.clone(),
            node_id: node.id,
            nearest_region,
            nearest_rtt_ms,
            floor_us,
            single_leader_bound_us,
            is_leader_region: node.region == leader_before.1,
            stats,
        });
    }
    let leader_after = leader_of(&clients[0]).await?;
    drop(clients);
    drop(cluster);
    Ok(Regional {
        writes_per_region,
        value_size,
        links,
        fsync_p50_us,
        fsync_p99_us,
        fsync_rounds: FSYNC_ROUNDS,
        leader_before,
        leader_after,
        regions: results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_use_the_nearest_region() {
        let links = demo_links(&CLUSTER_REGIONS);
        assert_eq!(nearest(&links, &CLUSTER_REGIONS, "us-east"), ("eu-west".into(), 80));
        assert_eq!(nearest(&links, &CLUSTER_REGIONS, "eu-west"), ("us-east".into(), 80));
        assert_eq!(
            nearest(&links, &CLUSTER_REGIONS, "ap-northeast"),
            ("us-east".into(), 145)
        );
        assert_eq!(rtt(&links, "ap-northeast", "eu-west"), 220);
        assert!(links.iter().all(|l| l.jitter_ms == l.rtt_ms / 40));
    }
}
