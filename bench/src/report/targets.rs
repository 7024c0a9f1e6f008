//! The targets section: every design target with what was measured and whether it was met —
//! peak ratios against the peers, strong writes on 3 voters, strong writes from each region,
//! cache propagation and convergence, and edgekv's read tail.

use std::fmt::Write as _;

use super::cache::{convergence_verdict, describe_lag_condition, lags_in, worst_lag};
use super::format::{ms, seconds, yes_no};
use super::model::{Report, find};
use super::regional::REGIONAL_FLOOR_TARGET;
use super::strong::{REPLICATED_WRITE_TARGET, replicated_ratios, write_target_verdict};
use crate::cache::{CONVERGENCE_TARGET, CacheScenario, LagCondition, PROPAGATION_MARGIN_MS};
use crate::regional::Regional;
use crate::workload::Workload;

/// (target, edgekv-side system, peer, workload, least peak ratio)
const TARGETS: [(&str, &str, &str, Workload, f64); 6] = [
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
    // The cost of security: at most 15% fewer ops/s with TLS and a token on every request.
    (
        "reads with TLS and tokens vs plaintext (cost of security ≤ 15%)",
        "edgekv-secure",
        "edgekv",
        Workload::ReadUniform,
        0.85,
    ),
    (
        "durable writes with TLS and tokens vs plaintext (cost of security ≤ 15%)",
        "edgekv-secure",
        "edgekv",
        Workload::Write,
        0.85,
    ),
];

/// Writes the section: one row per target whose systems were run.
pub(super) fn targets(report: &Report, out: &mut String) {
    writeln!(out, "## Targets\n").unwrap();
    writeln!(out, "| target | measured | met |").unwrap();
    writeln!(out, "|---|---|---|").unwrap();
    let peak = |system: &str, w: Workload| find(report, system, w).map(|s| s.peak.achieved_rate);
    for (name, ours, peer, workload, wanted) in TARGETS {
        write_peak_ratio_row(out, name, peak(ours, workload), peak(peer, workload), wanted);
    }
    write_strong_row(report, out);
    if let Some(regional) = &report.regional {
        write_regional_rows(regional, out);
    }
    if let Some(cache) = &report.cache {
        write_cache_rows(cache, out);
    }
    write_read_tail_row(report, out);
    writeln!(out).unwrap();
}

/// A peak-throughput target against a peer, when both were run.
fn write_peak_ratio_row(out: &mut String, name: &str, ours: Option<f64>, theirs: Option<f64>, wanted: f64) {
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
}

/// Strong writes of edgekv-3 against etcd-3, when both were run.
fn write_strong_row(report: &Report, out: &mut String) {
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
}

/// Strong-write p50 against the floor, one row per region.
fn write_regional_rows(regional: &Regional, out: &mut String) {
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

/// Cache propagation, per condition (every pair must meet it), then convergence.
fn write_cache_rows(cache: &CacheScenario, out: &mut String) {
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

/// edgekv's read p99 at half of its peak, under 1 ms.
fn write_read_tail_row(report: &Report, out: &mut String) {
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
}
