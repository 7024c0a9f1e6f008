//! The cache-class scenario (system `edgekv-cache-3-regions`): multi-master cache keys in a
//! simulated 3-region cluster, measured against the design's cache targets.
//!
//! The cluster is the regional scenario's ([`crate::regional`]): three `edgekv serve` nodes,
//! one per region, with `edgekv demo`'s round trips applied by the peer transport, started
//! with fault injection on and anti-entropy at the server's default interval. Every key the
//! scenario writes is under one prefix put in the cache class. One SDK client per region
//! talks only to its region's node (`stay_local`). Three measurements, one after another:
//!
//! 1. Local work, region by region: durable cache writes (acknowledged after the local
//!    write) and eventual reads, through the harness's driver: a closed-loop peak, then
//!    open-loop repetitions at half of it.
//! 2. Propagation lag, per ordered region pair: sequential probe writes from each region;
//!    the other nodes are polled with eventual reads every millisecond until the write
//!    shows. Lag = when the read found it − when the write was acknowledged to its writer.
//!    Measured twice: on an idle cluster (each probe waits until the writer has shipped the
//!    previous one, so no message is in flight: the bare path), and with a steady stream
//!    of other cache writes on the writer's node (shipping always busy, as under steady traffic).
//! 3. Convergence after a healed partition: one region is cut off from the other two,
//!    distinct keys are written on the majority side in atomic writes of 1000 sets, the cut
//!    is healed, and every node's cache record count is polled until it reaches the total.
//!    The cut-off node's counters say whether outbox shipping or anti-entropy merged them.
//!
//! Every process started here stops when the cluster handle drops.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use edgekv_client::{Client, Consistency, Key, Value, key};
use edgekv_proto::limits::MAX_MUTATIONS;
use edgekv_proto::v1::{self as pb, admin_client::AdminClient, inject_fault_request::Fault};

use crate::driver::{REQUEST_TIMEOUT, RunStats, closed_loop, load, new_histogram, open_loop};
use crate::peers::{CLUSTER_REGIONS, ClusterNode, WanLink, start_edgekv_cluster};
use crate::regional::{demo_links, rtt};
use crate::report::RatePoint;
use crate::run::Options;
use crate::targets::{EdgekvTarget, Target};
use crate::workload::Workload;

/// The system name that selects this scenario.
pub const SYSTEM: &str = "edgekv-cache-3-regions";
/// Anti-entropy interval given to every node: the server's default, named so the report can
/// state it.
pub const ANTI_ENTROPY_INTERVAL: &str = "1s";
/// Design target: a cache write is visible in another region within the one-way link
/// latency plus this, at p99.
pub const PROPAGATION_MARGIN_MS: u64 = 50;
/// Design target: divergent keys converge within this after a partition heals.
pub const CONVERGENCE_TARGET: Duration = Duration::from_secs(10);
/// The number of divergent keys the convergence target is stated for.
pub const CONVERGENCE_TARGET_KEYS: usize = 100_000;
/// How often a reader node is polled for a probe write.
pub const LAG_POLL_INTERVAL: Duration = Duration::from_millis(1);
/// Other cache writes per second on the writer's node while the loaded lag is measured.
pub const BACKGROUND_WRITES_PER_SECOND: u32 = 100;
/// Keys the background writes cycle through, per writer region.
const BACKGROUND_KEYS: u64 = 1000;
/// A probe write not seen within this counts as a timeout.
const LAG_TIMEOUT: Duration = Duration::from_secs(10);
/// How often every node's cache status is polled while waiting for convergence.
pub const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often the writer is polled, between idle probes, for its outbox to empty.
const SHIPPED_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How long the nodes may take to converge after the heal before the run gives up.
const CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the cluster may take to ship what a phase wrote before the next one starts.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The open-loop point, as a fraction of each region's closed-loop peak.
const HALF_LOAD: f64 = 0.5;

/// Fault injection for the partition; anti-entropy pinned to the default interval.
const NODE_ARGS: [&str; 3] = [
    "--allow-fault-injection",
    "--anti-entropy-interval",
    ANTI_ENTROPY_INTERVAL,
];

/// Every key of the scenario is under this prefix, put in the cache class: the driver's
/// workload keys, the lag probes and the divergent keys.
fn cache_prefix() -> Key {
    key![EdgekvTarget::KEY_PREFIX]
}

fn lag_probe_key(condition: LagCondition, writer_region: &str, probe: usize) -> Key {
    key![
        EdgekvTarget::KEY_PREFIX,
        "lag",
        condition.name(),
        writer_region,
        probe as u64
    ]
}

fn background_key(writer_region: &str, index: u64) -> Key {
    key![
        EdgekvTarget::KEY_PREFIX,
        "background",
        writer_region,
        index % BACKGROUND_KEYS
    ]
}

fn divergent_key(index: usize) -> Key {
    key![EdgekvTarget::KEY_PREFIX, "diverged", index as u64]
}

/// Cache writes and eventual reads on one region's node.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RegionLoad {
    pub region: String,
    pub node_id: u64,
    pub write_peak: RunStats,
    /// Open-loop repetitions at half of `write_peak` (none when the peak is 0).
    pub write_half_load: RatePoint,
    pub read_peak: RunStats,
    pub read_half_load: RatePoint,
}

/// What else the writer's node does while the probes are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LagCondition {
    /// Nothing: each probe starts once the writer has shipped everything before it.
    Idle,
    /// [`BACKGROUND_WRITES_PER_SECOND`] other cache writes, so a message is nearly always
    /// in flight to every peer when a probe is written.
    UnderLoad,
}

impl LagCondition {
    pub fn name(self) -> &'static str {
        match self {
            LagCondition::Idle => "idle",
            LagCondition::UnderLoad => "under-load",
        }
    }
}

/// Propagation from one region's node to another's.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PairLag {
    pub writer: String,
    pub reader: String,
    pub condition: LagCondition,
    /// Other cache writes per second the writer's node acknowledged meanwhile (0 when idle).
    pub background_writes_per_second: f64,
    /// Half the simulated round trip between the two regions.
    pub one_way_ms: u32,
    /// Lags in µs of the probes the reader saw (`ok`); `timeouts`: not seen within the
    /// scenario's limit; `errors`: failed probe writes or reads.
    pub stats: RunStats,
}

impl PairLag {
    /// The design target for this pair: one-way latency + the margin.
    pub fn target_us(&self) -> u64 {
        (u64::from(self.one_way_ms) + PROPAGATION_MARGIN_MS) * 1000
    }

    pub fn target_met(&self) -> bool {
        self.stats.ok > 0 && self.stats.timeouts == 0 && self.stats.p99_us <= self.target_us()
    }
}

/// One node during the convergence measurement.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NodeConvergence {
    pub node_id: u64,
    pub region: String,
    pub cut_off: bool,
    pub records_at_heal: u64,
    pub records_at_end: u64,
    /// From the heal until its record count reached the expected total (`None`: not within
    /// the scenario's limit).
    pub converged_ms: Option<u64>,
    /// Records merged from peers between the heal and the end, and how many of those
    /// anti-entropy brought (the rest came from peers' outboxes).
    pub merged_after_heal: u64,
    pub repaired_after_heal: u64,
    /// Outbox entries this node still held for the cut-off node when the cut healed, and
    /// once every node had converged (or the scenario gave up).
    pub backlog_to_cut_off_at_heal: u64,
    pub backlog_to_cut_off_at_end: u64,
    /// The last error shipping to the cut-off node, at the end (empty: none).
    pub shipping_error_to_cut_off: String,
}

/// Divergent keys written on the majority side of a partition, and their convergence.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Convergence {
    pub divergent_keys: usize,
    pub value_size: usize,
    pub cut_off_region: String,
    pub writer_region: String,
    pub atomic_writes: usize,
    /// Writing the divergent keys (all atomic writes, one after another).
    pub write_ms: u64,
    /// From the partition to the heal.
    pub partition_ms: u64,
    /// Every node's record count before the partition, and the total expected after.
    pub records_before: u64,
    pub records_expected: u64,
    pub nodes: Vec<NodeConvergence>,
    pub timeout_ms: u64,
}

impl Convergence {
    /// From the heal until the last node converged.
    pub fn all_converged_ms(&self) -> Option<u64> {
        self.nodes
            .iter()
            .map(|n| n.converged_ms)
            .try_fold(0, |latest, ms| Some(latest.max(ms?)))
    }

    pub fn cut_off_node(&self) -> Option<&NodeConvergence> {
        self.nodes.iter().find(|n| n.cut_off)
    }
}

/// Everything the scenario measured, with its conditions.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CacheScenario {
    pub links: Vec<WanLink>,
    pub anti_entropy_interval: String,
    pub value_size: usize,
    pub keys: u64,
    pub closed_loop_workers: usize,
    pub peak_seconds: f64,
    pub point_seconds: f64,
    pub reps: usize,
    pub regions: Vec<RegionLoad>,
    pub lag_probes: usize,
    pub lag_poll_interval_ms: u64,
    /// Every ordered pair on the idle cluster, then every pair under load.
    pub lags: Vec<PairLag>,
    pub convergence: Convergence,
}

/// The scenario's cluster and its clients, one per node, in region order.
struct CacheCluster {
    nodes: Vec<ClusterNode>,
    clients: Vec<Client>,
}

impl CacheCluster {
    async fn cache_status(&self, index: usize) -> Result<pb::CacheReplicationStatus> {
        // Each client asks its own node: cluster status is never routed elsewhere.
        let status = self.clients[index].cluster_status().await?;
        status
            .cache
            .with_context(|| format!("node {} reports no cache replication status", self.nodes[index].id))
    }

    async fn cache_statuses(&self) -> Result<Vec<pb::CacheReplicationStatus>> {
        let mut statuses = Vec::with_capacity(self.nodes.len());
        for index in 0..self.nodes.len() {
            statuses.push(self.cache_status(index).await?);
        }
        Ok(statuses)
    }

    /// Waits until node `index` has shipped every write to every peer and had the answers.
    async fn wait_until_shipped(&self, index: usize) -> Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while self.cache_status(index).await?.outbox_depth > 0 {
            if Instant::now() > deadline {
                bail!(
                    "node {} did not ship its cache writes within {SETTLE_TIMEOUT:?}",
                    self.nodes[index].id
                );
            }
            tokio::time::sleep(SHIPPED_POLL_INTERVAL).await;
        }
        Ok(())
    }

    /// Waits until no node holds outbox entries a peer has not taken and every node holds
    /// the same number of records; returns that number.
    async fn settle(&self) -> Result<u64> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let statuses = self.cache_statuses().await?;
            let shipped = statuses.iter().all(|s| s.peers.iter().all(|p| p.backlog == 0));
            let records: Vec<u64> = statuses.iter().map(|s| s.cache_records).collect();
            if shipped && records.iter().all(|r| *r == records[0]) {
                return Ok(records[0]);
            }
            if Instant::now() > deadline {
                bail!("the cache replicas did not settle within {SETTLE_TIMEOUT:?}: records {records:?}");
            }
            tokio::time::sleep(STATUS_POLL_INTERVAL).await;
        }
    }

    /// Puts every key under `prefix` in the cache class, and waits until each node lists
    /// the rule.
    async fn put_in_cache_class(&self, via: &ClusterNode, prefix: &Key) -> Result<()> {
        AdminClient::connect(via.api.clone())
            .await?
            .set_keyspace_class(pb::SetKeyspaceClassRequest {
                prefix: prefix.encode(),
                class: "cache".into(),
            })
            .await
            .context("set the cache class")?;
        for node in &self.nodes {
            let deadline = Instant::now() + SETTLE_TIMEOUT;
            let mut admin = AdminClient::connect(node.api.clone()).await?;
            loop {
                let rules = admin.list_keyspace(pb::ListKeyspaceRequest {}).await?.into_inner();
                if rules
                    .rules
                    .iter()
                    .any(|r| r.prefix == prefix.encode() && r.class == "cache")
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("node {} did not apply the cache class rule", node.id);
                }
                tokio::time::sleep(STATUS_POLL_INTERVAL).await;
            }
        }
        Ok(())
    }
}

/// A simulated network fault, applied through `via` to every member.
async fn inject_fault(via: &ClusterNode, fault: Fault) -> Result<()> {
    let answer = AdminClient::connect(via.api.clone())
        .await?
        .inject_fault(pb::InjectFaultRequest { fault: Some(fault) })
        .await
        .context("inject a fault")?
        .into_inner();
    if !answer.unreached.is_empty() {
        bail!("the fault did not reach nodes {:?}", answer.unreached);
    }
    Ok(())
}

/// Runs the scenario: starts the cluster, measures, stops the cluster.
pub async fn run(options: &Options) -> Result<CacheScenario> {
    let regions = CLUSTER_REGIONS;
    let links = demo_links(&regions);
    let dir = tempfile::Builder::new().prefix("edgekv-bench-cache-").tempdir()?;
    let cluster = start_edgekv_cluster(&options.binaries.edgekv, dir.path(), &regions, &NODE_ARGS, &links).await?;
    let leader = cluster
        .nodes
        .iter()
        .find(|n| n.id == cluster.leader)
        .context("the leader is a member")?;
    let mut clients = Vec::new();
    for node in &cluster.nodes {
        clients.push(node.local_client().await?);
    }
    let cache = CacheCluster {
        nodes: cluster.nodes.clone(),
        clients,
    };
    cache.put_in_cache_class(leader, &cache_prefix()).await?;

    // Every region reads the same keys: load them once and let them reach every node.
    load(
        &Target::Edgekv(EdgekvTarget::with_eventual_reads(cache.clients[0].clone())),
        options.keys,
        options.value_size,
        64,
    )
    .await
    .context("load the keys to read")?;
    cache.settle().await?;

    let mut region_loads = Vec::new();
    for (node, client) in cache.nodes.iter().zip(&cache.clients) {
        region_loads.push(local_load(&cache, node, client, options).await?);
    }
    cache.settle().await?;
    let mut lags = Vec::new();
    for condition in [LagCondition::Idle, LagCondition::UnderLoad] {
        lags.extend(propagation(&cache, &links, condition, options.cache_lag_probes, options.value_size).await?);
        cache.settle().await?;
    }
    let convergence = converge_after_partition(&cache, options.cache_divergent_keys, options.value_size).await?;
    drop(cache);
    drop(cluster);
    Ok(CacheScenario {
        links,
        anti_entropy_interval: ANTI_ENTROPY_INTERVAL.into(),
        value_size: options.value_size,
        keys: options.keys,
        closed_loop_workers: options.closed_loop_workers,
        peak_seconds: options.peak_duration.as_secs_f64(),
        point_seconds: options.point_duration.as_secs_f64(),
        reps: options.reps,
        regions: region_loads,
        lag_probes: options.cache_lag_probes,
        lag_poll_interval_ms: LAG_POLL_INTERVAL.as_millis() as u64,
        lags,
        convergence,
    })
}

/// A closed-loop peak of `workload` on one node, then open-loop repetitions at half of it.
async fn peak_and_half_load(target: &Target, workload: Workload, options: &Options) -> (RunStats, RatePoint) {
    let peak = closed_loop(
        target,
        workload,
        options.keys,
        options.value_size,
        options.closed_loop_workers,
        options.peak_duration,
    )
    .await;
    let rate = (peak.achieved_rate * HALF_LOAD).max(1.0);
    let mut reps = Vec::new();
    if peak.achieved_rate > 0.0 {
        for _ in 0..options.reps {
            reps.push(
                open_loop(
                    target,
                    workload,
                    options.keys,
                    options.value_size,
                    rate,
                    options.point_duration,
                )
                .await,
            );
        }
    }
    (
        peak,
        RatePoint {
            fraction: HALF_LOAD,
            rate,
            reps,
        },
    )
}

/// Cache writes, then eventual reads, on one region's node; the cluster settles after the
/// writes so their shipping does not overlap the reads.
async fn local_load(
    cache: &CacheCluster,
    node: &ClusterNode,
    client: &Client,
    options: &Options,
) -> Result<RegionLoad> {
    let target = Target::Edgekv(EdgekvTarget::with_eventual_reads(client.clone()));
    let (write_peak, write_half_load) = peak_and_half_load(&target, Workload::Write, options).await;
    cache.settle().await?;
    let (read_peak, read_half_load) = peak_and_half_load(&target, Workload::ReadUniform, options).await;
    eprintln!(
        "   {:<13} cache writes: peak {:>6.0}/s, p99 at half {:>6.2} ms; eventual reads: peak {:>6.0}/s, p99 at half \
         {:>6.2} ms",
        node.region,
        write_peak.achieved_rate,
        write_half_load.p99_median() as f64 / 1000.0,
        read_peak.achieved_rate,
        read_half_load.p99_median() as f64 / 1000.0,
    );
    Ok(RegionLoad {
        region: node.region.clone(),
        node_id: node.id,
        write_peak,
        write_half_load,
        read_peak,
        read_half_load,
    })
}

/// How long after `acknowledged` the key shows on the node `reader` talks to: polled every
/// [`LAG_POLL_INTERVAL`], taken when the read that finds it answers (an upper bound, within
/// one poll interval plus one local read of the true time). `None` if not within `timeout`.
async fn visible_after(
    reader: &Client,
    key: &Key,
    acknowledged: Instant,
    timeout: Duration,
) -> Result<Option<Duration>> {
    let mut tick = tokio::time::interval(LAG_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let entry = reader.get(key.clone()).consistency(Consistency::Eventual).await?;
        let lag = acknowledged.elapsed();
        if entry.is_some() {
            return Ok(Some(lag));
        }
        if lag > timeout {
            return Ok(None);
        }
    }
}

/// Cache writes at [`BACKGROUND_WRITES_PER_SECOND`] from one client, over keys of their own,
/// until dropped.
struct BackgroundWrites {
    task: tokio::task::JoinHandle<()>,
    started: Instant,
    acknowledged: Arc<AtomicU64>,
    first_error: Arc<Mutex<Option<String>>>,
}

impl BackgroundWrites {
    fn start(client: Client, region: String, value_size: usize) -> Self {
        let acknowledged = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(Mutex::new(None));
        let (count, error) = (acknowledged.clone(), first_error.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / BACKGROUND_WRITES_PER_SECOND);
            for index in 0.. {
                tick.tick().await;
                let write = client.set(background_key(&region, index), Value::Bytes(vec![0x5a; value_size]));
                match write.await {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => {
                        error.lock().expect("lock").get_or_insert(failure.to_string());
                    }
                }
            }
        });
        Self {
            task,
            started: Instant::now(),
            acknowledged,
            first_error,
        }
    }

    fn achieved_rate(&self) -> f64 {
        self.acknowledged.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64()
    }

    fn first_error(&self) -> Option<String> {
        self.first_error.lock().expect("lock").clone()
    }
}

impl Drop for BackgroundWrites {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `probes` sequential writes from each region in turn (one probe in flight in the whole
/// cluster), each polled for on every other node at once, under `condition`.
async fn propagation(
    cache: &CacheCluster,
    links: &[WanLink],
    condition: LagCondition,
    probes: usize,
    value_size: usize,
) -> Result<Vec<PairLag>> {
    let mut lags = Vec::new();
    for (w, writer) in cache.nodes.iter().enumerate() {
        let background = (condition == LagCondition::UnderLoad)
            .then(|| BackgroundWrites::start(cache.clients[w].clone(), writer.region.clone(), value_size));
        let readers: Vec<usize> = (0..cache.nodes.len()).filter(|r| *r != w).collect();
        let mut histograms = vec![new_histogram(); readers.len()];
        let mut stats = vec![RunStats::default(); readers.len()];
        for probe in 0..probes {
            if condition == LagCondition::Idle {
                cache.wait_until_shipped(w).await?;
            }
            let key = lag_probe_key(condition, &writer.region, probe);
            let write = cache.clients[w].set(key.clone(), Value::Bytes(vec![0x5a; value_size]));
            let failure = match tokio::time::timeout(REQUEST_TIMEOUT, write).await {
                Ok(Ok(_)) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(_) => Some(format!("no answer within {REQUEST_TIMEOUT:?}")),
            };
            let acknowledged = Instant::now();
            if let Some(failure) = failure {
                for s in &mut stats {
                    s.errors += 1;
                    s.first_error.get_or_insert_with(|| format!("probe write: {failure}"));
                }
                continue;
            }
            let polls = readers
                .iter()
                .map(|r| visible_after(&cache.clients[*r], &key, acknowledged, LAG_TIMEOUT));
            let seen = futures::future::join_all(polls).await;
            for (i, outcome) in seen.into_iter().enumerate() {
                match outcome {
                    Ok(Some(lag)) => {
                        stats[i].ok += 1;
                        let _ = histograms[i].record(lag.as_micros().max(1) as u64);
                    }
                    Ok(None) => stats[i].timeouts += 1,
                    Err(error) => {
                        stats[i].errors += 1;
                        stats[i]
                            .first_error
                            .get_or_insert_with(|| format!("probe read: {error:#}"));
                    }
                }
            }
        }
        let background_writes_per_second = background.as_ref().map_or(0.0, BackgroundWrites::achieved_rate);
        let background_error = background.as_ref().and_then(BackgroundWrites::first_error);
        drop(background);
        for ((r, mut stats), histogram) in readers.into_iter().zip(stats).zip(&histograms) {
            stats.set_percentiles(histogram);
            if let Some(error) = &background_error {
                stats
                    .first_error
                    .get_or_insert_with(|| format!("background write: {error}"));
            }
            let reader = &cache.nodes[r];
            let one_way_ms = rtt(links, &writer.region, &reader.region) / 2;
            eprintln!(
                "   lag ({:<10}) {:>12} -> {:<12} p50 {:>7.2} ms  p99 {:>7.2} ms  (one-way {one_way_ms} ms; seen {}/{probes})",
                condition.name(),
                writer.region,
                reader.region,
                stats.p50_us as f64 / 1000.0,
                stats.p99_us as f64 / 1000.0,
                stats.ok,
            );
            lags.push(PairLag {
                writer: writer.region.clone(),
                reader: reader.region.clone(),
                condition,
                background_writes_per_second,
                one_way_ms,
                stats,
            });
        }
    }
    Ok(lags)
}

/// Cuts the last region off, writes `keys` divergent keys on the first region's node in
/// atomic writes of [`MAX_MUTATIONS`] sets, waits until the majority side holds them all,
/// heals the cut, and times every node's convergence.
async fn converge_after_partition(cache: &CacheCluster, keys: usize, value_size: usize) -> Result<Convergence> {
    let writer = 0;
    let cut_off = cache.nodes.len() - 1;
    let (writer_node, cut_off_node) = (&cache.nodes[writer], &cache.nodes[cut_off]);
    let records_before = cache.settle().await?;
    let records_expected = records_before + keys as u64;

    let partitioned = Instant::now();
    for other in cache.nodes.iter().filter(|n| n.region != cut_off_node.region) {
        let pair = pb::RegionPair {
            a: cut_off_node.region.clone(),
            b: other.region.clone(),
        };
        inject_fault(writer_node, Fault::Partition(pair)).await?;
    }
    let value = vec![0x5a; value_size];
    let started = Instant::now();
    let mut atomic_writes = 0;
    for first in (0..keys).step_by(MAX_MUTATIONS) {
        let mut write = cache.clients[writer].atomic();
        for index in first..(first + MAX_MUTATIONS).min(keys) {
            write = write.set(divergent_key(index), Value::Bytes(value.clone()));
        }
        let committed = write
            .commit()
            .await
            .with_context(|| format!("atomic write of divergent keys from {first}"))?;
        if !committed.ok {
            bail!("an atomic write without checks was refused: {committed:?}");
        }
        atomic_writes += 1;
    }
    let write_ms = started.elapsed().as_millis() as u64;
    eprintln!(
        "   wrote {keys} divergent keys on {} in {atomic_writes} atomic writes, {:.1} s; {} cut off",
        writer_node.region,
        write_ms as f64 / 1000.0,
        cut_off_node.region
    );
    // The majority side first agrees, so the time below is the cut-off node catching up.
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let statuses = cache.cache_statuses().await?;
        let majority_done = statuses
            .iter()
            .enumerate()
            .all(|(i, s)| i == cut_off || s.cache_records >= records_expected);
        if majority_done {
            break;
        }
        if Instant::now() > deadline {
            let records: Vec<u64> = statuses.iter().map(|s| s.cache_records).collect();
            bail!("the majority side did not share the divergent keys within {SETTLE_TIMEOUT:?}: records {records:?}");
        }
        tokio::time::sleep(STATUS_POLL_INTERVAL).await;
    }

    let at_heal = cache.cache_statuses().await?;
    let healed = Instant::now();
    inject_fault(writer_node, Fault::Heal(pb::Heal {})).await?;
    let partition_ms = (healed - partitioned).as_millis() as u64;
    let mut converged_ms: Vec<Option<u64>> = vec![None; cache.nodes.len()];
    while converged_ms.iter().any(Option::is_none) && healed.elapsed() < CONVERGENCE_TIMEOUT {
        tokio::time::sleep(STATUS_POLL_INTERVAL).await;
        for (i, converged) in converged_ms.iter_mut().enumerate() {
            if converged.is_none() && cache.cache_status(i).await?.cache_records >= records_expected {
                *converged = Some(healed.elapsed().as_millis() as u64);
            }
        }
    }
    let at_end = cache.cache_statuses().await?;
    let to_cut_off = |status: &pb::CacheReplicationStatus| {
        status
            .peers
            .iter()
            .find(|p| p.node_id == cut_off_node.id)
            .cloned()
            .unwrap_or_default()
    };
    let nodes = cache
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| NodeConvergence {
            node_id: node.id,
            region: node.region.clone(),
            cut_off: i == cut_off,
            records_at_heal: at_heal[i].cache_records,
            records_at_end: at_end[i].cache_records,
            converged_ms: converged_ms[i],
            merged_after_heal: at_end[i].merges.saturating_sub(at_heal[i].merges),
            repaired_after_heal: at_end[i].repaired.saturating_sub(at_heal[i].repaired),
            backlog_to_cut_off_at_heal: to_cut_off(&at_heal[i]).backlog,
            backlog_to_cut_off_at_end: to_cut_off(&at_end[i]).backlog,
            shipping_error_to_cut_off: to_cut_off(&at_end[i]).last_error,
        })
        .collect();
    let convergence = Convergence {
        divergent_keys: keys,
        value_size,
        cut_off_region: cut_off_node.region.clone(),
        writer_region: writer_node.region.clone(),
        atomic_writes,
        write_ms,
        partition_ms,
        records_before,
        records_expected,
        nodes,
        timeout_ms: CONVERGENCE_TIMEOUT.as_millis() as u64,
    };
    let cut = convergence.cut_off_node().expect("the cut-off node is listed");
    eprintln!(
        "   converged after the heal: {} (cut-off node: {}; merged {}, of which anti-entropy {})",
        convergence
            .all_converged_ms()
            .map_or("not within the limit".into(), |ms| format!(
                "{:.2} s",
                ms as f64 / 1000.0
            )),
        cut.converged_ms.map_or("not within the limit".into(), |ms| format!(
            "{:.2} s",
            ms as f64 / 1000.0
        )),
        cut.merged_after_heal,
        cut.repaired_after_heal,
    );
    Ok(convergence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_key_is_under_the_cache_prefix() {
        let prefix = cache_prefix().encode();
        assert!(
            lag_probe_key(LagCondition::UnderLoad, "us-east", 7)
                .encode()
                .starts_with(&prefix)
        );
        assert!(background_key("us-east", 7).encode().starts_with(&prefix));
        assert_ne!(
            lag_probe_key(LagCondition::Idle, "us-east", 7),
            lag_probe_key(LagCondition::UnderLoad, "us-east", 7)
        );
        assert!(divergent_key(99_999).encode().starts_with(&prefix));
        assert_ne!(divergent_key(1), divergent_key(2));
    }

    #[test]
    fn the_propagation_target_is_one_way_plus_the_margin() {
        let lag = PairLag {
            writer: "eu-west".into(),
            reader: "ap-northeast".into(),
            condition: LagCondition::Idle,
            background_writes_per_second: 0.0,
            one_way_ms: 110,
            stats: RunStats {
                ok: 10,
                p99_us: 160_000,
                ..RunStats::default()
            },
        };
        assert_eq!(lag.target_us(), 160_000);
        assert!(lag.target_met());
        let late = PairLag {
            stats: RunStats {
                timeouts: 1,
                ..lag.stats.clone()
            },
            ..lag
        };
        assert!(!late.target_met(), "a probe never seen fails the target");
    }
}
