//! The report: `benchmarks.md` (ratios first, then absolute numbers with their
//! conditions), one PNG per workload (p99 latency against offered load, per system), and
//! `results.json` with every run, so any table can be recomputed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::driver::RunStats;
use crate::machine::Machine;
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
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

impl RatePoint {
    fn p99_median(&self) -> u64 {
        median(self.reps.iter().map(|r| r.p99_us).collect())
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

fn regional_section(regional: &Regional, out: &mut String) {
    writeln!(out, "## Strong writes from each region (simulated 3-region WAN)\n").unwrap();
    let links: Vec<String> = regional
        .links
        .iter()
        .map(|l| format!("{} ↔ {} {} ms", l.a, l.b, l.rtt_ms))
        .collect();
    let max_jitter = regional.links.iter().map(|l| l.jitter_ms).max().unwrap_or(0);
    writeln!(
        out,
        "Three `edgekv serve` voters, one per region, on loopback; the peer transport delays every node-to-node message \
         by half the round trip ({}) plus 0 to RTT/40 ms per direction (at most {max_jitter} ms; `edgekv demo`'s \
         matrix). One client per region, pinned to its region's node (`stay_local`), which forwards the write to the \
         leader over the simulated WAN. {} durable writes of {} B per region, one outstanding at a time, regions \
         measured one after another (one write in flight in the whole cluster), after 3 unmeasured warm-up writes; \
         latency from send to acknowledgement, sync writes on (the default), edgekv's default Raft timings \
         (heartbeat 300 ms, election timeout 3 s).\n",
        links.join(", "),
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

fn conditions(report: &Report, out: &mut String) {
    let m = &report.machine;
    let s = &report.settings;
    writeln!(out, "## Conditions\n").unwrap();
    writeln!(out, "- Date: {}. Reproduce with `{}`.", report.date, s.command).unwrap();
    writeln!(
        out,
        "- Machine: {} ({} cores), {:.1} GiB RAM, Linux {}.",
        m.cpu, m.cores, m.memory_gib, m.kernel
    )
    .unwrap();
    writeln!(
        out,
        "- fsync baseline (4 KiB overwrite + fdatasync, same run, same disk): p50 {} ms, p99 {} ms.",
        ms(m.fsync_p50_us),
        ms(m.fsync_p99_us)
    )
    .unwrap();
    writeln!(
        out,
        "- Data: {} keys loaded before the runs, {} B values. Each system gets a fresh data directory on the same disk.",
        s.keys, s.value_size
    )
    .unwrap();
    writeln!(
        out,
        "- Load: a closed loop of {} workers for {:.1} s finds each system's peak; then open-loop runs at fixed fractions of that \
         peak, {:.1} s each, {} repetitions, latency from each request's intended start (no coordinated omission), \
         HdrHistogram at 3 significant digits; arrivals that could not even be sent within twice a run's length count as \
         timeouts. The load generator runs on the same machine and shares its cores.",
        s.closed_loop_workers, s.peak_seconds, s.point_seconds, s.reps
    )
    .unwrap();
    writeln!(
        out,
        "- Every system writes durably (see each table's durability column); none is compared in a relaxed mode."
    )
    .unwrap();
    writeln!(out, "- Versions:").unwrap();
    for (name, version) in &m.versions {
        writeln!(out, "  - {name}: {version}").unwrap();
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

/// Writes `markdown_path`, its plots in `<stem>/` next to it, and `<stem>/results.json`.
pub fn write(report: &Report, markdown_path: &Path) -> Result<()> {
    let stem = markdown_path
        .file_stem()
        .context("report path has a file name")?
        .to_string_lossy()
        .to_string();
    let plots_dir = markdown_path.with_file_name(&stem);
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
    writeln!(
        out,
        "Generated by `{}`; do not edit above the analysis marker (the generator rewrites it). Raw runs: \
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
    conditions(report, &mut out);
    absolute_tables(report, &mut out, &stem);
    out.push_str(ANALYSIS_MARKER);
    out.push_str(&kept);
    std::fs::write(markdown_path, out)?;
    Ok(())
}
