//! The report: `benchmarks.md` (ratios first, then absolute numbers with their
//! conditions), one PNG per workload (p99 latency against offered load, per system), and
//! `results.json` with every run, so any table can be recomputed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::cache::{
    BACKGROUND_WRITES_PER_SECOND, CONVERGENCE_TARGET, CONVERGENCE_TARGET_KEYS, CacheScenario, Convergence,
    LagCondition, PROPAGATION_MARGIN_MS, PairLag, STATUS_POLL_INTERVAL,
};
use crate::driver::RunStats;
use crate::machine::Machine;
use crate::peers::{SYSTEMS, WanLink};
use crate::regional::Regional;
use crate::workload::Workload;

/// Where the hand-written analysis starts; everything after it survives regeneration.
pub const ANALYSIS_MARKER: &str = "<!-- analysis: text below this line is kept when the report is regenerated -->";

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RatePoint {
    /// Offered rate as a fraction of this system's closed-loop peak.
    pub fraction: f64,
    pub rate: f64,
    /// One entry per repetition.
    pub reps: Vec<RunStats>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Series {
    pub system: String,
    pub layout: String,
    pub durability: String,
    pub workload: Workload,
    pub peak: RunStats,
    pub points: Vec<RatePoint>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub command: String,
    pub keys: u64,
    pub value_size: usize,
    pub peak_seconds: f64,
    pub point_seconds: f64,
    pub reps: usize,
    pub closed_loop_workers: usize,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub settings: Settings,
    pub series: Vec<Series>,
    /// (system, workload, why it was not run)
    pub skipped: Vec<(String, String, String)>,
    /// The regional scenario, when `edgekv-3-regions` was run.
    #[serde(default)]
    pub regional: Option<Regional>,
    /// The cache-class scenario, when `edgekv-cache-3-regions` was run.
    #[serde(default)]
    pub cache: Option<CacheScenario>,
    /// The systems this run measured (empty in reports from before it was recorded).
    #[serde(default)]
    pub systems: Vec<String>,
    /// Results of other systems kept from earlier runs (`--merge`), with their conditions.
    #[serde(default)]
    pub kept_runs: Vec<KeptRun>,
}

/// An earlier run whose results of some systems a merged report keeps.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KeptRun {
    pub date: String,
    pub machine: Machine,
    pub settings: Settings,
    /// The systems whose results in the report come from this run.
    pub systems: Vec<String>,
}

impl Report {
    /// The systems whose results this report's own run measured.
    fn own_systems(&self) -> Vec<String> {
        if !self.systems.is_empty() {
            return self.systems.clone();
        }
        // Reports from before `systems` was recorded: every system with results.
        let mut systems: Vec<String> = self.series.iter().map(|s| s.system.clone()).collect();
        if self.regional.is_some() {
            systems.push(crate::regional::SYSTEM.into());
        }
        if self.cache.is_some() {
            systems.push(crate::cache::SYSTEM.into());
        }
        systems.dedup();
        systems
    }

    /// Keeps `earlier`'s results of every system this run did not measure, and records
    /// which run each came from.
    pub fn keep_other_systems_from(&mut self, earlier: Report) {
        let rerun = self.own_systems();
        let kept = |system: &String| !rerun.contains(system);
        let mut kept_runs: Vec<KeptRun> = earlier
            .kept_runs
            .iter()
            .cloned()
            .chain(std::iter::once(KeptRun {
                date: earlier.date.clone(),
                machine: earlier.machine.clone(),
                settings: earlier.settings.clone(),
                systems: earlier.own_systems(),
            }))
            .collect();
        for run in &mut kept_runs {
            run.systems.retain(kept);
        }
        kept_runs.retain(|run| !run.systems.is_empty());
        self.kept_runs = kept_runs;
        self.series
            .extend(earlier.series.into_iter().filter(|s| kept(&s.system)));
        self.series
            .sort_by_key(|s| SYSTEMS.iter().position(|known| *known == s.system));
        self.skipped
            .extend(earlier.skipped.into_iter().filter(|(system, _, _)| kept(system)));
        if kept(&crate::regional::SYSTEM.to_string()) {
            self.regional = self.regional.take().or(earlier.regional);
        }
        if kept(&crate::cache::SYSTEM.to_string()) {
            self.cache = self.cache.take().or(earlier.cache);
        }
    }
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

impl RatePoint {
    /// The median over repetitions of each repetition's p99.
    pub fn p99_median(&self) -> u64 {
        median(self.reps.iter().map(|r| r.p99_us).collect())
    }

    /// The median over repetitions of each repetition's p50.
    pub fn p50_median(&self) -> u64 {
        median(self.reps.iter().map(|r| r.p50_us).collect())
    }
}

impl Series {
    /// The open-loop point nearest half of the peak: where tails are compared.
    fn half_load(&self) -> Option<&RatePoint> {
        self.points
            .iter()
            .min_by(|a, b| (a.fraction - 0.5).abs().total_cmp(&(b.fraction - 0.5).abs()))
    }
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Milliseconds to the microsecond, for quantities (fsync) that can be far below 1 ms.
fn ms3(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn find<'a>(report: &'a Report, system: &str, workload: Workload) -> Option<&'a Series> {
    report
        .series
        .iter()
        .find(|s| s.system == system && s.workload == workload)
}

/// (edgekv-side system, peer, what the pair compares)
const PAIRS: [(&str, &str, &str); 6] = [
    ("edgekv", "etcd", "SDK vs etcd-client, both gRPC, 1 node each"),
    ("edgekv", "etcd-3", "SDK on 1 node vs a 3-member etcd"),
    ("edgekv-3", "etcd-3", "3 voters each, both gRPC"),
    ("edgekv", "redis", "SDK vs redis-rs, both durable (fsync)"),
    ("edgekv-kvconnect", "denokv", "same KV Connect client, both single node"),
    (
        "edgekv-kvconnect",
        "denokv-batched",
        "same KV Connect client, denokv batching writes",
    ),
];

fn ratio_tables(report: &Report, out: &mut String) {
    if report.series.is_empty() {
        return;
    }
    writeln!(out, "## Ratios (edgekv ÷ peer, same run)\n").unwrap();
    writeln!(
        out,
        "Throughput: closed-loop peak ops/s, edgekv ÷ peer (above 1 is edgekv faster). p99 at half load: each \
         system at 50% of its own peak, open loop, edgekv ÷ peer (below 1 is edgekv faster). `n/a`: the \
         peer has no such operation in this harness.\n"
    )
    .unwrap();
    let workloads: Vec<Workload> = crate::workload::ALL
        .into_iter()
        .filter(|w| report.series.iter().any(|s| s.workload == *w))
        .collect();
    write!(out, "| pair |").unwrap();
    for w in &workloads {
        write!(out, " {} |", w.name()).unwrap();
    }
    writeln!(out).unwrap();
    write!(out, "|---|").unwrap();
    for _ in &workloads {
        write!(out, "---|").unwrap();
    }
    writeln!(out).unwrap();
    for (ours, peer, what) in PAIRS {
        if !report.series.iter().any(|s| s.system == peer) || !report.series.iter().any(|s| s.system == ours) {
            continue;
        }
        write!(out, "| {ours} ÷ {peer} ({what}) |").unwrap();
        for w in &workloads {
            match (find(report, ours, *w), find(report, peer, *w)) {
                (Some(a), Some(b)) if b.peak.achieved_rate > 0.0 => {
                    let throughput = a.peak.achieved_rate / b.peak.achieved_rate;
                    let tail = match (a.half_load(), b.half_load()) {
                        (Some(x), Some(y)) if y.p99_median() > 0 => {
                            format!("{:.2}", x.p99_median() as f64 / y.p99_median() as f64)
                        }
                        _ => "–".into(),
                    };
                    write!(out, " {throughput:.2}× / p99 {tail} |").unwrap();
                }
                _ => write!(out, " n/a |").unwrap(),
            }
        }
        writeln!(out).unwrap();
    }
    writeln!(out).unwrap();
}

/// The strong comparison of the two 3-voter clusters, and the design target it is judged on.
const REPLICATED_WRITE_TARGET: f64 = 3.0;
/// The regional target: p50 of a strong write within this multiple of the region's floor.
const REGIONAL_FLOOR_TARGET: f64 = 1.2;

/// How a replicated pair did on one workload: (throughput ratio, p99 ratio at half load).
fn replicated_ratios(ours: &Series, peer: &Series) -> (Option<f64>, Option<f64>) {
    let throughput = (peer.peak.achieved_rate > 0.0).then(|| ours.peak.achieved_rate / peer.peak.achieved_rate);
    let tail = match (ours.half_load(), peer.half_load()) {
        (Some(a), Some(b)) if b.p99_median() > 0 => Some(a.p99_median() as f64 / b.p99_median() as f64),
        _ => None,
    };
    (throughput, tail)
}

fn write_target_verdict(throughput: Option<f64>, tail: Option<f64>) -> &'static str {
    match (throughput, tail) {
        (Some(t), Some(p)) if t >= REPLICATED_WRITE_TARGET && p <= 1.0 => "yes",
        (Some(t), Some(p)) if t < REPLICATED_WRITE_TARGET && p > 1.0 => "**no** (throughput and p99)",
        (Some(t), Some(_)) if t < REPLICATED_WRITE_TARGET => "**no** (throughput)",
        (Some(_), Some(_)) => "**no** (p99)",
        _ => "not measured",
    }
}

fn replicated(report: &Report, out: &mut String) {
    let has = |system: &str| report.series.iter().any(|s| s.system == system);
    if !has("edgekv-3") && !has("etcd-3") {
        return;
    }
    writeln!(
        out,
        "## edgekv-3 vs etcd-3: strong writes and linearizable reads on 3 voters\n"
    )
    .unwrap();
    writeln!(
        out,
        "Both clusters in the same run: 3 members on this machine's loopback (no WAN delay), every member fsyncs its \
         log before acknowledging, a write commits on 2 of 3, heartbeat 100 ms and election timeout 1 s (etcd's \
         defaults, given to edgekv too). edgekv-3: `edgekv serve` ×3, the Rust SDK given one node and following the \
         leader it names; reads are strong (read index on the leader). etcd-3: etcd-client given all three members; \
         reads are etcd's default Get (linearizable, read index). Throughput is the closed-loop peak; p99 is the \
         median over repetitions of the open-loop p99 at about half of each system's own peak (so when edgekv-3's \
         peak is higher, its p99 is taken at a higher absolute rate than etcd-3's). Target (design): strong writes at \
         least {REPLICATED_WRITE_TARGET}× etcd's throughput at equal or lower p99.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| workload | edgekv-3 peak ops/s | etcd-3 peak ops/s | edgekv-3 ÷ etcd-3 | edgekv-3 p99 ms | etcd-3 p99 ms | p99 \
         ratio | errors / timeouts (edgekv-3; etcd-3) | target | met |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|").unwrap();
    let rows = [
        (Workload::Write, "write (strong, durable)", true),
        (Workload::ReadLinearizable, "read-linearizable", false),
    ];
    for (workload, label, judged) in rows {
        let (ours, peer) = (find(report, "edgekv-3", workload), find(report, "etcd-3", workload));
        let peak = |s: Option<&Series>| s.map_or("not run".to_string(), |s| format!("{:.0}", s.peak.achieved_rate));
        let p99 = |s: Option<&Series>| {
            s.and_then(Series::half_load).map_or("–".to_string(), |p| {
                if (p.fraction - 0.5).abs() < 1e-9 {
                    ms(p.p99_median())
                } else {
                    format!("{} (at {:.0}%)", ms(p.p99_median()), p.fraction * 100.0)
                }
            })
        };
        let failures = |s: Option<&Series>| {
            s.map_or("–".to_string(), |s| {
                let runs = std::iter::once(&s.peak).chain(s.points.iter().flat_map(|p| &p.reps));
                let (errors, timeouts) = runs.fold((0, 0), |(e, t), r| (e + r.errors, t + r.timeouts));
                format!("{errors} / {timeouts}")
            })
        };
        let (throughput, tail) = match (ours, peer) {
            (Some(a), Some(b)) => replicated_ratios(a, b),
            _ => (None, None),
        };
        let (target, met) = if judged {
            (
                format!("≥ {REPLICATED_WRITE_TARGET}× at p99 ratio ≤ 1"),
                write_target_verdict(throughput, tail),
            )
        } else {
            ("none set".to_string(), "–")
        };
        writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} | {}; {} | {target} | {met} |",
            peak(ours),
            peak(peer),
            throughput.map_or("–".into(), |t| format!("{t:.2}×")),
            p99(ours),
            p99(peer),
            tail.map_or("–".into(), |t| format!("{t:.2}")),
            failures(ours),
            failures(peer),
        )
        .unwrap();
    }
    writeln!(
        out,
        "\nEvery other workload of both clusters is in the absolute tables below (there `read-uniform` is \
         serializable for etcd, strong for edgekv).\n"
    )
    .unwrap();
}

/// "the peer transport delays ... (a ↔ b 80 ms, ...) plus ...": the simulated WAN, in words.
fn describe_wan(links: &[WanLink]) -> String {
    let round_trips: Vec<String> = links
        .iter()
        .map(|l| format!("{} ↔ {} {} ms", l.a, l.b, l.rtt_ms))
        .collect();
    let max_jitter = links.iter().map(|l| l.jitter_ms).max().unwrap_or(0);
    format!(
        "the peer transport delays every node-to-node message by half the round trip ({}) plus 0 to RTT/40 ms per \
         direction (at most {max_jitter} ms; `edgekv demo`'s matrix)",
        round_trips.join(", ")
    )
}

fn regional_section(regional: &Regional, out: &mut String) {
    writeln!(out, "## Strong writes from each region (simulated 3-region WAN)\n").unwrap();
    writeln!(
        out,
        "Three `edgekv serve` voters, one per region, on loopback; {}. One client per region, pinned to its region's node (`stay_local`), which forwards the write to the \
         leader over the simulated WAN. {} durable writes of {} B per region, one outstanding at a time, regions \
         measured one after another (one write in flight in the whole cluster), after 3 unmeasured warm-up writes; \
         latency from send to acknowledgement, sync writes on (the default), edgekv's default Raft timings \
         (heartbeat 300 ms, election timeout 3 s).\n",
        describe_wan(&regional.links),
        regional.writes_per_region,
        regional.value_size,
    )
    .unwrap();
    writeln!(
        out,
        "- fsync on the data directories' filesystem, this run (4 KiB overwrite + fdatasync, {} rounds): median {} ms, \
         p99 {} ms.",
        regional.fsync_rounds,
        ms3(regional.fsync_p50_us),
        ms3(regional.fsync_p99_us)
    )
    .unwrap();
    let (leader_id, leader_region) = &regional.leader_before;
    if regional.leader_after == regional.leader_before {
        writeln!(out, "- Leader: node {leader_id} ({leader_region}), throughout.").unwrap();
    } else {
        writeln!(
            out,
            "- Leader: node {leader_id} ({leader_region}) at the start, node {} ({}) at the end: leadership moved \
             during the run, so the bounds below (computed for the first leader) do not hold for every write.",
            regional.leader_after.0, regional.leader_after.1
        )
        .unwrap();
    }
    writeln!(
        out,
        "- Floor of a region = round trip to its nearest other region (the cheapest quorum partner of a 3-voter \
         cluster) + one fsync (the median above); jitter is not in it. Target (design): p50 ≤ {REGIONAL_FLOOR_TARGET}× \
         the floor.\n- Single-leader bound = round trip to the leader's region (0 in it) + the leader's round trip to \
         its nearest other region + one fsync: the least a write can take with one Raft leader.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| region | its node | p50 ms | p90 ms | p99 ms | max ms | writes ok | errors / timeouts | floor ms (nearest \
         region, RTT) | p50 ÷ floor | ≤ {REGIONAL_FLOOR_TARGET}× floor | single-leader bound ms | p50 ÷ bound |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
    for r in &regional.regions {
        let role = if r.is_leader_region { "leader" } else { "follower" };
        let ratio = r.stats.p50_us as f64 / r.floor_us.max(1) as f64;
        let met = if r.stats.ok == 0 {
            "not measured"
        } else if ratio <= REGIONAL_FLOOR_TARGET {
            "yes"
        } else {
            "**no**"
        };
        writeln!(
            out,
            "| {} | {} (node {}) | {} | {} | {} | {} | {} | {} / {} | {} ({}, {} ms) | {ratio:.2} | {met} | {} | {:.2} |",
            r.region,
            role,
            r.node_id,
            ms(r.stats.p50_us),
            ms(r.stats.p90_us),
            ms(r.stats.p99_us),
            ms(r.stats.max_us),
            r.stats.ok,
            r.stats.errors,
            r.stats.timeouts,
            ms(r.floor_us),
            r.nearest_region,
            r.nearest_rtt_ms,
            ms(r.single_leader_bound_us),
            r.stats.p50_us as f64 / r.single_leader_bound_us.max(1) as f64,
        )
        .unwrap();
    }
    if let Some(error) = regional.regions.iter().find_map(|r| r.stats.first_error.clone()) {
        writeln!(out, "\nFirst error: {}", error.replace('|', "/")).unwrap();
    }
    writeln!(out).unwrap();
    // The plain reading, from the numbers.
    writeln!(
        out,
        "**What single-leader Raft allows.** A write from a follower region first travels to the leader \
         (forwarding: one round trip to the leader's region) and is then committed by the leader's own quorum round \
         trip, so its latency cannot fall below the single-leader bound, whatever the implementation; only the \
         leader's region can approach its floor. In this run:\n"
    )
    .unwrap();
    for r in &regional.regions {
        let floor = r.floor_us.max(1) as f64;
        let p50 = r.stats.p50_us as f64 / floor;
        let bound = r.single_leader_bound_us as f64 / floor;
        if r.is_leader_region {
            writeln!(
                out,
                "- {} (leader's region): p50 is {p50:.2}× its floor; its bound equals its floor, so the \
                 {REGIONAL_FLOOR_TARGET}× target is {} here.",
                r.region,
                if p50 <= REGIONAL_FLOOR_TARGET {
                    "met"
                } else {
                    "reachable but **not met**"
                }
            )
            .unwrap();
        } else {
            let reachable = bound <= REGIONAL_FLOOR_TARGET;
            writeln!(
                out,
                "- {} (follower): p50 is {p50:.2}× its floor; the single-leader bound alone is {bound:.2}× its \
                 floor, so the {REGIONAL_FLOOR_TARGET}× target is {} from this region with the leader in {}.",
                r.region,
                if reachable { "reachable" } else { "**out of reach**" },
                regional.leader_before.1
            )
            .unwrap();
        }
    }
    writeln!(
        out,
        "\nThe target holds for every region only if each region's writes are ordered by a leader in that region \
         (or by a protocol that commits in one round trip to the nearest quorum); edgekv today has one Raft leader \
         for the whole keyspace.\n"
    )
    .unwrap();
}

/// "yes" / "**no**" for a target verdict.
fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

/// Seconds with two decimals, for durations kept in ms.
fn seconds(ms: u64) -> String {
    format!("{:.2}", ms as f64 / 1000.0)
}

fn lags_in(cache: &CacheScenario, condition: LagCondition) -> impl Iterator<Item = &PairLag> {
    cache.lags.iter().filter(move |l| l.condition == condition)
}

/// What the writer's node did meanwhile, in words.
fn describe_lag_condition(condition: LagCondition) -> String {
    match condition {
        LagCondition::Idle => "idle cluster".into(),
        LagCondition::UnderLoad => format!("writer's node taking {BACKGROUND_WRITES_PER_SECOND} other writes/s"),
    }
}

/// The pair furthest above (or least below) its propagation target.
fn worst_lag(cache: &CacheScenario, condition: LagCondition) -> Option<&PairLag> {
    lags_in(cache, condition).max_by_key(|l| l.stats.p99_us as i64 - l.target_us() as i64)
}

/// The convergence verdict: met, not met, or not judged (fewer keys than the target's).
fn convergence_verdict(convergence: &Convergence) -> &'static str {
    if convergence.divergent_keys < CONVERGENCE_TARGET_KEYS {
        return "not judged (fewer keys than the target's)";
    }
    yes_no(
        convergence
            .all_converged_ms()
            .is_some_and(|ms| u128::from(ms) < CONVERGENCE_TARGET.as_millis()),
    )
}

fn cache_section(cache: &CacheScenario, out: &mut String) {
    writeln!(
        out,
        "## Cache class across simulated regions ({})\n",
        crate::cache::SYSTEM
    )
    .unwrap();
    writeln!(
        out,
        "Three `edgekv serve` nodes, one per region, on loopback; {}. Every key of the scenario is under a prefix in the \
         cache class: a write is acknowledged after a durable write (sync writes on, the default) on the node it \
         reached, then shipped to the other nodes (to other regions after a 5 ms linger) and merged there. \
         Anti-entropy runs every {} (`--anti-entropy-interval {}`, the server's default). One client per region, \
         pinned to its region's node (`stay_local`). Values of {} B.\n",
        describe_wan(&cache.links),
        cache.anti_entropy_interval,
        cache.anti_entropy_interval,
        cache.value_size,
    )
    .unwrap();

    writeln!(out, "### Local cache writes and eventual reads, per region\n").unwrap();
    writeln!(
        out,
        "{} keys loaded through us-east and shipped everywhere first. Regions one after another; in each, {} \
         closed-loop workers for {:.1} s find the peak, then {} open-loop runs of {:.1} s at half of it give p50 and p99 \
         (median over the runs; latency from each request's intended start). Writes: one-key `set`, uniform over the \
         loaded keys. Reads: `get` with eventual consistency, served by the node. The cluster ships what the writes \
         produced before the reads start.\n",
        cache.keys, cache.closed_loop_workers, cache.peak_seconds, cache.reps, cache.point_seconds,
    )
    .unwrap();
    writeln!(
        out,
        "| region | its node | cache writes: peak ops/s | p50 ms at half load | p99 ms at half load | eventual reads: \
         peak ops/s | p50 ms at half load | p99 ms at half load | errors / timeouts (writes; reads) |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|---|---|").unwrap();
    let failures = |peak: &RunStats, point: &RatePoint| {
        let runs = std::iter::once(peak).chain(&point.reps);
        let (errors, timeouts) = runs.fold((0, 0), |(e, t), r| (e + r.errors, t + r.timeouts));
        format!("{errors} / {timeouts}")
    };
    for r in &cache.regions {
        writeln!(
            out,
            "| {} | node {} | {:.0} | {} | {} | {:.0} | {} | {} | {}; {} |",
            r.region,
            r.node_id,
            r.write_peak.achieved_rate,
            ms(r.write_half_load.p50_median()),
            ms(r.write_half_load.p99_median()),
            r.read_peak.achieved_rate,
            ms(r.read_half_load.p50_median()),
            ms(r.read_half_load.p99_median()),
            failures(&r.write_peak, &r.write_half_load),
            failures(&r.read_peak, &r.read_half_load),
        )
        .unwrap();
    }
    let first_error = cache.regions.iter().find_map(|r| {
        std::iter::once(&r.write_peak)
            .chain(&r.write_half_load.reps)
            .chain(std::iter::once(&r.read_peak))
            .chain(&r.read_half_load.reps)
            .find_map(|s| s.first_error.clone())
    });
    if let Some(error) = first_error {
        writeln!(out, "\nFirst error: {}", error.replace('|', "/")).unwrap();
    }
    writeln!(out).unwrap();

    writeln!(out, "### Propagation lag, writer region → reader region\n").unwrap();
    let mut background_rates: Vec<String> = lags_in(cache, LagCondition::UnderLoad)
        .map(|l| format!("{} {:.0}/s", l.writer, l.background_writes_per_second))
        .collect();
    // One entry per writer: its pairs are consecutive and share the rate.
    background_rates.dedup();
    writeln!(
        out,
        "{} probe writes from each region in turn, one in flight in the whole cluster; every other node is polled with \
         eventual `get`s every {} ms from the writer's acknowledgement until the key shows. Lag = when the read that \
         found it answered − when the write was acknowledged to its writer: an upper bound, within one poll interval \
         and one local read of the true time. Two conditions: *idle*, each probe written once the writer has shipped \
         everything before it (its outbox empty, the answers back: no message in flight), the bare path; *under load*, \
         the writer's node also takes {BACKGROUND_WRITES_PER_SECOND} other cache writes per second throughout \
         (achieved: {}), so a probe usually finds a message to its reader already in flight. Target (design): p99 ≤ \
         one-way latency (RTT/2) + {PROPAGATION_MARGIN_MS} ms. {}\n",
        cache.lag_probes,
        cache.lag_poll_interval_ms,
        background_rates.join(", "),
        if cache.lag_probes < 100 {
            "With fewer than 100 probes per pair, p99 is the largest lag seen."
        } else {
            ""
        },
    )
    .unwrap();
    writeln!(
        out,
        "| writer → reader | one-way ms | target: p99 ≤ ms | idle: p50 ms | p99 ms | max ms | met | under load: p50 ms | \
         p99 ms | max ms | met | seen / probes (idle; under load) |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
    let columns = |lag: Option<&PairLag>| {
        lag.map_or("– | – | – | –".to_string(), |l| {
            format!(
                "{} | {} | {} | {}",
                ms(l.stats.p50_us),
                ms(l.stats.p99_us),
                ms(l.stats.max_us),
                yes_no(l.target_met())
            )
        })
    };
    let seen =
        |lag: Option<&PairLag>| lag.map_or("–".to_string(), |l| format!("{} / {}", l.stats.ok, cache.lag_probes));
    for idle in lags_in(cache, LagCondition::Idle) {
        let loaded =
            lags_in(cache, LagCondition::UnderLoad).find(|l| l.writer == idle.writer && l.reader == idle.reader);
        writeln!(
            out,
            "| {} → {} | {} | {} | {} | {} | {}; {} |",
            idle.writer,
            idle.reader,
            idle.one_way_ms,
            ms(idle.target_us()),
            columns(Some(idle)),
            columns(loaded),
            seen(Some(idle)),
            seen(loaded),
        )
        .unwrap();
    }
    if let Some(error) = cache.lags.iter().find_map(|l| l.stats.first_error.clone()) {
        writeln!(out, "\nFirst error: {}", error.replace('|', "/")).unwrap();
    }
    writeln!(out).unwrap();

    let c = &cache.convergence;
    writeln!(out, "### Convergence of divergent keys after a healed partition\n").unwrap();
    writeln!(
        out,
        "{} cut off from the other two regions (both links, both directions, by fault injection). {} distinct keys \
         written on the {} node in {} atomic writes of up to 1000 sets, one after another ({} s, {:.0} keys/s); once \
         every node of the majority side held them all, the cut was healed, {} s after it began. A node has converged \
         when its `cache_records` (Admin.ClusterStatus) reaches {} ({} before the partition + {}); every node is polled \
         every {} ms from the heal. Target (design): under {} s for {CONVERGENCE_TARGET_KEYS} keys.\n",
        c.cut_off_region,
        c.divergent_keys,
        c.writer_region,
        c.atomic_writes,
        seconds(c.write_ms),
        c.divergent_keys as f64 / (c.write_ms.max(1) as f64 / 1000.0),
        seconds(c.partition_ms),
        c.records_expected,
        c.records_before,
        c.divergent_keys,
        STATUS_POLL_INTERVAL.as_millis(),
        CONVERGENCE_TARGET.as_secs(),
    )
    .unwrap();
    writeln!(
        out,
        "| node | role | records at heal | converged after the heal, s | records merged after the heal | of which by \
         anti-entropy | its outbox backlog for the cut-off node: at heal → at the end |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|").unwrap();
    for n in &c.nodes {
        writeln!(
            out,
            "| node {} ({}) | {} | {} | {} | {} | {} | {} |",
            n.node_id,
            n.region,
            if n.cut_off { "cut off" } else { "majority side" },
            n.records_at_heal,
            n.converged_ms.map_or_else(
                || format!("not within {} s ({} records)", c.timeout_ms / 1000, n.records_at_end),
                seconds
            ),
            n.merged_after_heal,
            n.repaired_after_heal,
            if n.cut_off {
                "–".to_string()
            } else {
                format!("{} → {}", n.backlog_to_cut_off_at_heal, n.backlog_to_cut_off_at_end)
            },
        )
        .unwrap();
    }
    writeln!(out).unwrap();
    let all = c.all_converged_ms().map_or_else(
        || format!("did not converge within {} s", c.timeout_ms / 1000),
        |ms| format!("converged {} s after the heal", seconds(ms)),
    );
    write!(
        out,
        "**Every node {all}** (target: under {} s; met: {}).",
        CONVERGENCE_TARGET.as_secs(),
        convergence_verdict(c)
    )
    .unwrap();
    if let Some(cut) = c.cut_off_node().filter(|n| n.merged_after_heal > 0) {
        let repaired_share = cut.repaired_after_heal as f64 / cut.merged_after_heal as f64;
        let mechanism = if repaired_share >= 0.9 {
            "anti-entropy did the work"
        } else if repaired_share <= 0.1 {
            "the outboxes, which resumed shipping after the heal, did the work"
        } else {
            "both mechanisms contributed"
        };
        write!(
            out,
            " On the cut-off node {} of the {} records merged after the heal came from anti-entropy (`repaired`) and \
             the other {} from peers' outboxes: {mechanism}. A record counts for the mechanism that brought it \
             first; the other then finds it already merged. \"At the end\" is once every node had converged.",
            cut.repaired_after_heal,
            cut.merged_after_heal,
            cut.merged_after_heal - cut.repaired_after_heal.min(cut.merged_after_heal),
        )
        .unwrap();
    }
    for n in c.nodes.iter().filter(|n| !n.shipping_error_to_cut_off.is_empty()) {
        write!(
            out,
            " Node {}'s last error shipping to the cut-off node: {}.",
            n.node_id,
            n.shipping_error_to_cut_off.replace('|', "/")
        )
        .unwrap();
    }
    writeln!(out, "\n").unwrap();
}

fn absolute_tables(report: &Report, out: &mut String, plots_dir_name: &str) {
    writeln!(out, "## Absolute numbers\n").unwrap();
    for workload in crate::workload::ALL {
        let series: Vec<&Series> = report.series.iter().filter(|s| s.workload == workload).collect();
        if series.is_empty() {
            continue;
        }
        writeln!(out, "### {} — {}\n", workload.name(), workload.description()).unwrap();
        writeln!(
            out,
            "![p99 latency against offered load: {}]({plots_dir_name}/{}.png)\n",
            workload.name(),
            workload.name()
        )
        .unwrap();
        writeln!(
            out,
            "| system | layout | durability | peak ops/s (closed loop) | offered ops/s | achieved ops/s | p50 ms | p90 ms | p99 ms (min–max over reps) | p99.9 ms | max ms | errors | timeouts | expired reads | CAS conflicts |"
        )
        .unwrap();
        writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
        for s in series {
            for point in &s.points {
                let reps = &point.reps;
                let pick = |f: fn(&RunStats) -> u64| median(reps.iter().map(f).collect());
                let p99s: Vec<u64> = reps.iter().map(|r| r.p99_us).collect();
                let sum = |f: fn(&RunStats) -> u64| reps.iter().map(f).sum::<u64>();
                let achieved = reps.iter().map(|r| r.achieved_rate).sum::<f64>() / reps.len().max(1) as f64;
                writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {:.0} ({:.0}%) | {:.0} | {} | {} | {} ({}–{}) | {} | {} | {} | {} | {} | {} |",
                    s.system,
                    s.layout,
                    s.durability,
                    s.peak.achieved_rate,
                    point.rate,
                    point.fraction * 100.0,
                    achieved,
                    ms(pick(|r| r.p50_us)),
                    ms(pick(|r| r.p90_us)),
                    ms(median(p99s.clone())),
                    ms(p99s.iter().copied().min().unwrap_or(0)),
                    ms(p99s.iter().copied().max().unwrap_or(0)),
                    ms(pick(|r| r.p999_us)),
                    ms(reps.iter().map(|r| r.max_us).max().unwrap_or(0)),
                    sum(|r| r.errors),
                    sum(|r| r.timeouts),
                    sum(|r| r.expired_reads),
                    sum(|r| r.cas_conflicts),
                )
                .unwrap();
            }
            if let Some(error) = s
                .points
                .iter()
                .flat_map(|p| &p.reps)
                .find_map(|r| r.first_error.clone())
                .or(s.peak.first_error.clone())
            {
                writeln!(
                    out,
                    "| {} | first error: {} |||||||||||||",
                    s.system,
                    error.replace('|', "/")
                )
                .unwrap();
            }
        }
        writeln!(out).unwrap();
    }
}

fn describe_machine(m: &Machine) -> String {
    format!(
        "{} ({} cores), {:.1} GiB RAM, Linux {}",
        m.cpu, m.cores, m.memory_gib, m.kernel
    )
}

/// How the workload series were measured: (data, load).
fn describe_workload_settings(s: &Settings) -> (String, String) {
    let data = format!(
        "{} keys loaded before the runs, {} B values. Each system gets a fresh data directory on the same disk.",
        s.keys, s.value_size
    );
    let load = format!(
        "a closed loop of {} workers for {:.1} s finds each system's peak; then open-loop runs at fixed fractions of \
         that peak, {:.1} s each, {} repetitions, latency from each request's intended start (no coordinated \
         omission), HdrHistogram at 3 significant digits; arrivals that could not even be sent within twice a run's \
         length count as timeouts. The load generator runs on the same machine and shares its cores.",
        s.closed_loop_workers, s.peak_seconds, s.point_seconds, s.reps
    );
    (data, load)
}

fn describe_versions(versions: &[(String, String)]) -> String {
    versions
        .iter()
        .map(|(name, version)| format!("{name}: {version}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn conditions(report: &Report, out: &mut String) {
    let m = &report.machine;
    let s = &report.settings;
    let own = report.own_systems();
    writeln!(out, "## Conditions\n").unwrap();
    if report.kept_runs.is_empty() {
        writeln!(out, "- Date: {}. Reproduce with `{}`.", report.date, s.command).unwrap();
    } else {
        writeln!(
            out,
            "- This run: {}, `{}`, measuring {}. The results of the other systems are kept from earlier runs, listed at \
             the end with their own conditions; a ratio between systems from different runs is not a same-run \
             comparison.",
            report.date,
            s.command,
            own.join(", ")
        )
        .unwrap();
    }
    writeln!(out, "- Machine: {}.", describe_machine(m)).unwrap();
    writeln!(
        out,
        "- fsync baseline (4 KiB overwrite + fdatasync, same run, same disk): p50 {} ms, p99 {} ms.",
        ms(m.fsync_p50_us),
        ms(m.fsync_p99_us)
    )
    .unwrap();
    if report.series.iter().any(|series| own.contains(&series.system)) {
        let (data, load) = describe_workload_settings(s);
        writeln!(out, "- Data: {data}").unwrap();
        writeln!(out, "- Load: {load}").unwrap();
    }
    writeln!(
        out,
        "- Every system writes durably (see each table's durability column); none is compared in a relaxed mode."
    )
    .unwrap();
    writeln!(out, "- Versions:").unwrap();
    for (name, version) in &m.versions {
        writeln!(out, "  - {name}: {version}").unwrap();
    }
    for kept in &report.kept_runs {
        write!(
            out,
            "- Kept from the run of {} (`{}`): {}. Machine: {}; fsync baseline p50 {} ms, p99 {} ms.",
            kept.date,
            kept.settings.command,
            kept.systems.join(", "),
            describe_machine(&kept.machine),
            ms(kept.machine.fsync_p50_us),
            ms(kept.machine.fsync_p99_us),
        )
        .unwrap();
        if report.series.iter().any(|series| kept.systems.contains(&series.system)) {
            let (data, load) = describe_workload_settings(&kept.settings);
            write!(out, " Data: {data} Load: {load}").unwrap();
        }
        writeln!(out, " Versions: {}.", describe_versions(&kept.machine.versions)).unwrap();
    }
    if !report.skipped.is_empty() {
        writeln!(out, "- Not run:").unwrap();
        for (system, workload, why) in &report.skipped {
            writeln!(out, "  - {system} / {workload}: {why}").unwrap();
        }
    }
    writeln!(out).unwrap();
}

fn targets(report: &Report, out: &mut String) {
    writeln!(out, "## Targets\n").unwrap();
    writeln!(out, "| target | measured | met |").unwrap();
    writeln!(out, "|---|---|---|").unwrap();
    let peak = |system: &str, w: Workload| find(report, system, w).map(|s| s.peak.achieved_rate);
    let mut row = |name: &str, ours: Option<f64>, theirs: Option<f64>, wanted: f64| {
        if let (Some(a), Some(b)) = (ours, theirs)
            && b > 0.0
        {
            let ratio = a / b;
            let met = if ratio >= wanted { "yes" } else { "**no**" };
            writeln!(
                out,
                "| {name} ≥ {wanted}× | {ratio:.2}× ({a:.0} vs {b:.0} ops/s) | {met} |"
            )
            .unwrap();
        }
    };
    const TARGETS: [(&str, &str, &str, Workload, f64); 4] = [
        (
            "durable writes vs denokv (KV Connect)",
            "edgekv-kvconnect",
            "denokv",
            Workload::Write,
            5.0,
        ),
        (
            "reads vs denokv (KV Connect)",
            "edgekv-kvconnect",
            "denokv",
            Workload::ReadUniform,
            3.0,
        ),
        (
            "local reads vs etcd serializable reads",
            "edgekv",
            "etcd",
            Workload::ReadUniform,
            2.0,
        ),
        (
            "local reads vs Redis GET",
            "edgekv",
            "redis",
            Workload::ReadUniform,
            0.5,
        ),
    ];
    for (name, ours, peer, workload, wanted) in TARGETS {
        row(name, peak(ours, workload), peak(peer, workload), wanted);
    }
    if let (Some(ours), Some(peer)) = (
        find(report, "edgekv-3", Workload::Write),
        find(report, "etcd-3", Workload::Write),
    ) {
        let (throughput, tail) = replicated_ratios(ours, peer);
        writeln!(
            out,
            "| strong writes, 3 voters, vs etcd-3 ≥ {REPLICATED_WRITE_TARGET}× at equal or lower p99 | {} ({:.0} vs {:.0} \
             ops/s), p99 ratio at half load {} | {} |",
            throughput.map_or("–".into(), |t| format!("{t:.2}×")),
            ours.peak.achieved_rate,
            peer.peak.achieved_rate,
            tail.map_or("–".into(), |t| format!("{t:.2}")),
            write_target_verdict(throughput, tail),
        )
        .unwrap();
    }
    if let Some(regional) = &report.regional {
        for r in &regional.regions {
            let ratio = r.stats.p50_us as f64 / r.floor_us.max(1) as f64;
            let met = if r.stats.ok > 0 && ratio <= REGIONAL_FLOOR_TARGET {
                "yes"
            } else {
                "**no**"
            };
            let role = if r.is_leader_region {
                "leader's region".to_string()
            } else {
                format!(
                    "follower: the single-leader bound alone is {:.2}× the floor",
                    r.single_leader_bound_us as f64 / r.floor_us.max(1) as f64
                )
            };
            writeln!(
                out,
                "| strong write p50 from {} ≤ {REGIONAL_FLOOR_TARGET}× floor | {ratio:.2}× ({} vs {} ms; {role}) | {met} |",
                r.region,
                ms(r.stats.p50_us),
                ms(r.floor_us),
            )
            .unwrap();
        }
    }
    if let Some(cache) = &report.cache {
        for condition in [LagCondition::Idle, LagCondition::UnderLoad] {
            let Some(worst) = worst_lag(cache, condition) else {
                continue;
            };
            let pairs = lags_in(cache, condition).count();
            let met = lags_in(cache, condition).filter(|l| l.target_met()).count();
            writeln!(
                out,
                "| cache propagation p99 ≤ one-way latency + {PROPAGATION_MARGIN_MS} ms, every region pair ({}) | {met} \
                 of {pairs} pairs; furthest: {} → {} p99 {} ms vs ≤ {} ms | {} |",
                describe_lag_condition(condition),
                worst.writer,
                worst.reader,
                ms(worst.stats.p99_us),
                ms(worst.target_us()),
                yes_no(met == pairs),
            )
            .unwrap();
        }
        let c = &cache.convergence;
        writeln!(
            out,
            "| convergence of {} divergent keys after a healed partition < {} s | {} (cut-off node {}) | {} |",
            c.divergent_keys,
            CONVERGENCE_TARGET.as_secs(),
            c.all_converged_ms().map_or_else(
                || format!("not within {} s", c.timeout_ms / 1000),
                |ms| format!("{} s", seconds(ms))
            ),
            c.cut_off_region,
            convergence_verdict(c),
        )
        .unwrap();
    }
    if let Some(s) = find(report, "edgekv", Workload::ReadUniform)
        && let Some(point) = s.half_load()
    {
        let p99 = point.p99_median();
        let met = if p99 < 1000 { "yes" } else { "**no**" };
        writeln!(
            out,
            "| edgekv read p99 < 1 ms at half of peak | {} ms | {met} |",
            ms(p99)
        )
        .unwrap();
    }
    writeln!(out).unwrap();
}

fn plot(report: &Report, workload: Workload, path: &Path) -> Result<()> {
    let series: Vec<&Series> = report.series.iter().filter(|s| s.workload == workload).collect();
    let max_rate = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.rate)
        .fold(1.0, f64::max);
    let max_p99 = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.p99_median() as f64 / 1000.0)
        .fold(0.1, f64::max);
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: p99 latency vs offered load (open loop)", workload.name()),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..max_rate * 1.05, (0.01..max_p99 * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered ops/s")
        .y_desc("p99 ms (log)")
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.rate, (p.p99_median() as f64 / 1000.0).max(0.01)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(s.system.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Registers a system font for the plots' text (plotters draws text with ab_glyph).
fn register_font() -> Result<()> {
    let candidates = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let path = candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .context("no DejaVuSans.ttf (apt-get install fonts-dejavu-core)")?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("cannot load {path}"))?;
    Ok(())
}

/// The folder of a report's plots and results.json: `<stem>/` next to it.
fn results_dir(markdown_path: &Path) -> Result<(String, std::path::PathBuf)> {
    let stem = markdown_path
        .file_stem()
        .context("report path has a file name")?
        .to_string_lossy()
        .to_string();
    let dir = markdown_path.with_file_name(&stem);
    Ok((stem, dir))
}

/// The results of the report at `markdown_path` (`<stem>/results.json`), if there is one.
pub fn read_results(markdown_path: &Path) -> Result<Option<Report>> {
    let path = results_dir(markdown_path)?.1.join("results.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("read {}", path.display())),
    };
    let report = serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    Ok(Some(report))
}

/// Writes `markdown_path`, its plots in `<stem>/` next to it, and `<stem>/results.json`.
pub fn write(report: &Report, markdown_path: &Path) -> Result<()> {
    let (stem, plots_dir) = results_dir(markdown_path)?;
    std::fs::create_dir_all(&plots_dir)?;
    std::fs::write(plots_dir.join("results.json"), serde_json::to_string_pretty(report)?)?;
    register_font()?;
    for workload in crate::workload::ALL {
        if report.series.iter().any(|s| s.workload == workload) {
            plot(report, workload, &plots_dir.join(format!("{}.png", workload.name())))?;
        }
    }
    let kept = std::fs::read_to_string(markdown_path)
        .ok()
        .and_then(|old| old.split_once(ANALYSIS_MARKER).map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| "\n\n## What limits us now\n\n(Not written yet.)\n".into());
    let mut out = String::new();
    writeln!(out, "# Benchmarks\n").unwrap();
    let merged = if report.kept_runs.is_empty() {
        ""
    } else {
        ", keeping other systems' results from earlier runs (see Conditions)"
    };
    writeln!(
        out,
        "Generated by `{}`{merged}; do not edit above the analysis marker (the generator rewrites it). Raw runs: \
         `{stem}/results.json`.\n",
        report.settings.command
    )
    .unwrap();
    ratio_tables(report, &mut out);
    targets(report, &mut out);
    replicated(report, &mut out);
    if let Some(regional) = &report.regional {
        regional_section(regional, &mut out);
    }
    if let Some(cache) = &report.cache {
        cache_section(cache, &mut out);
    }
    conditions(report, &mut out);
    absolute_tables(report, &mut out, &stem);
    out.push_str(ANALYSIS_MARKER);
    out.push_str(&kept);
    std::fs::write(markdown_path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(date: &str, systems: &[&str]) -> Report {
        Report {
            date: date.into(),
            machine: Machine::default(),
            settings: Settings {
                command: format!("run of {date}"),
                keys: 10,
                value_size: 8,
                peak_seconds: 1.0,
                point_seconds: 1.0,
                reps: 3,
                closed_loop_workers: 4,
            },
            series: systems
                .iter()
                .map(|system| Series {
                    system: system.to_string(),
                    layout: String::new(),
                    durability: String::new(),
                    workload: Workload::Write,
                    peak: RunStats::default(),
                    points: Vec::new(),
                })
                .collect(),
            skipped: Vec::new(),
            regional: None,
            cache: None,
            systems: systems.iter().map(|s| s.to_string()).collect(),
            kept_runs: Vec::new(),
        }
    }

    #[test]
    fn a_merge_keeps_the_systems_not_rerun_and_names_their_run() {
        let mut first = report("day 1", &["edgekv", "etcd", "redis"]);
        // Written before `systems` was recorded: inferred from the results.
        first.systems.clear();
        let mut second = report("day 2", &["etcd"]);
        second.keep_other_systems_from(first);
        let systems: Vec<&str> = second.series.iter().map(|s| s.system.as_str()).collect();
        assert_eq!(systems, ["edgekv", "etcd", "redis"], "in the harness's order");
        assert_eq!(second.kept_runs.len(), 1);
        assert_eq!(second.kept_runs[0].date, "day 1");
        assert_eq!(second.kept_runs[0].systems, ["edgekv", "redis"]);

        let mut third = report("day 3", &["redis"]);
        third.keep_other_systems_from(second);
        let kept: Vec<(&str, &[String])> = third
            .kept_runs
            .iter()
            .map(|run| (run.date.as_str(), run.systems.as_slice()))
            .collect();
        assert_eq!(
            kept,
            [
                ("day 1", &["edgekv".to_string()][..]),
                ("day 2", &["etcd".to_string()][..])
            ]
        );
        let mut markdown = String::new();
        conditions(&third, &mut markdown);
        assert!(
            markdown.contains("- Kept from the run of day 1 (`run of day 1`): edgekv."),
            "{markdown}"
        );
        assert!(markdown.contains("measuring redis"), "{markdown}");
    }
}
