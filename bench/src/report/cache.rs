//! The cache-class section: the cache class on the simulated 3-region cluster, in three
//! parts after the cluster's description — local writes and eventual reads per region,
//! propagation lag between every pair of regions (idle and under load), and convergence of
//! divergent keys after a healed partition. Also the lag and convergence verdicts the
//! targets section reports.

use std::fmt::Write as _;

use super::format::{describe_wan, ms, seconds, write_first_error, yes_no};
use super::model::RatePoint;
use crate::cache::{
    BACKGROUND_WRITES_PER_SECOND, CONVERGENCE_TARGET, CONVERGENCE_TARGET_KEYS, CacheScenario, Convergence,
    LagCondition, NodeConvergence, PROPAGATION_MARGIN_MS, PairLag, RegionLoad, STATUS_POLL_INTERVAL,
};
use crate::driver::RunStats;

/// The region pairs measured under `condition`.
pub(super) fn lags_in(cache: &CacheScenario, condition: LagCondition) -> impl Iterator<Item = &PairLag> {
    cache.lags.iter().filter(move |l| l.condition == condition)
}

/// What the writer's node did meanwhile, in words.
pub(super) fn describe_lag_condition(condition: LagCondition) -> String {
    match condition {
        LagCondition::Idle => "idle cluster".into(),
        LagCondition::UnderLoad => format!("writer's node taking {BACKGROUND_WRITES_PER_SECOND} other writes/s"),
    }
}

/// The pair furthest above (or least below) its propagation target.
pub(super) fn worst_lag(cache: &CacheScenario, condition: LagCondition) -> Option<&PairLag> {
    lags_in(cache, condition).max_by_key(|l| l.stats.p99_us as i64 - l.target_us() as i64)
}

/// The convergence verdict: met, not met, or not judged (fewer keys than the target's).
pub(super) fn convergence_verdict(convergence: &Convergence) -> &'static str {
    if convergence.divergent_keys < CONVERGENCE_TARGET_KEYS {
        return "not judged (fewer keys than the target's)";
    }
    yes_no(
        convergence
            .all_converged_ms()
            .is_some_and(|ms| u128::from(ms) < CONVERGENCE_TARGET.as_millis()),
    )
}

/// Writes the section: the cluster, then each of its three parts.
pub(super) fn cache_section(cache: &CacheScenario, out: &mut String) {
    writeln!(
        out,
        "## Cache class across simulated regions ({})\n",
        crate::cache::SYSTEM
    )
    .unwrap();
    write_cluster(cache, out);
    write_local_load(cache, out);
    write_propagation_lag(cache, out);
    write_convergence(&cache.convergence, out);
}

/// The cluster every part runs on: nodes, WAN, what a cache write does, anti-entropy, clients.
fn write_cluster(cache: &CacheScenario, out: &mut String) {
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
}

/// Local cache writes and eventual reads: how they were run, then one row per region.
fn write_local_load(cache: &CacheScenario, out: &mut String) {
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
    for r in &cache.regions {
        write_local_load_row(r, out);
    }
    if let Some(error) = first_local_load_error(cache) {
        write_first_error(out, &error);
    }
    writeln!(out).unwrap();
}

/// One region's row: peaks, p50 and p99 at half load, and failures, for writes and reads.
fn write_local_load_row(r: &RegionLoad, out: &mut String) {
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

/// "errors / timeouts" over the peak run and every repetition at half load.
fn failures(peak: &RunStats, point: &RatePoint) -> String {
    let runs = std::iter::once(peak).chain(&point.reps);
    let (errors, timeouts) = runs.fold((0, 0), |(e, t), r| (e + r.errors, t + r.timeouts));
    format!("{errors} / {timeouts}")
}

/// The first error of any local run, region by region, writes before reads.
fn first_local_load_error(cache: &CacheScenario) -> Option<String> {
    cache.regions.iter().find_map(|r| {
        std::iter::once(&r.write_peak)
            .chain(&r.write_half_load.reps)
            .chain(std::iter::once(&r.read_peak))
            .chain(&r.read_half_load.reps)
            .find_map(|s| s.first_error.clone())
    })
}

/// Propagation lag: how the probes ran, then one row per writer → reader pair.
fn write_propagation_lag(cache: &CacheScenario, out: &mut String) {
    writeln!(out, "### Propagation lag, writer region → reader region\n").unwrap();
    write_propagation_method(cache, out);
    write_propagation_table(cache, out);
    if let Some(error) = cache.lags.iter().find_map(|l| l.stats.first_error.clone()) {
        write_first_error(out, &error);
    }
    writeln!(out).unwrap();
}

/// How lag is measured, the two conditions, and the target.
fn write_propagation_method(cache: &CacheScenario, out: &mut String) {
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
        background_rates(cache),
        if cache.lag_probes < 100 {
            "With fewer than 100 probes per pair, p99 is the largest lag seen."
        } else {
            ""
        },
    )
    .unwrap();
}

/// The background write rate each writer achieved under load: "us-east 100/s, ...".
fn background_rates(cache: &CacheScenario) -> String {
    let mut background_rates: Vec<String> = lags_in(cache, LagCondition::UnderLoad)
        .map(|l| format!("{} {:.0}/s", l.writer, l.background_writes_per_second))
        .collect();
    // One entry per writer: its pairs are consecutive and share the rate.
    background_rates.dedup();
    background_rates.join(", ")
}

/// One row per pair: its target, then idle and under-load lags side by side.
fn write_propagation_table(cache: &CacheScenario, out: &mut String) {
    writeln!(
        out,
        "| writer → reader | one-way ms | target: p99 ≤ ms | idle: p50 ms | p99 ms | max ms | met | under load: p50 ms | \
         p99 ms | max ms | met | seen / probes (idle; under load) |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
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
            lag_columns(Some(idle)),
            lag_columns(loaded),
            probes_seen(Some(idle), cache.lag_probes),
            probes_seen(loaded, cache.lag_probes),
        )
        .unwrap();
    }
}

/// One condition's cells of a pair: p50, p99, max, met (dashes when it was not measured).
fn lag_columns(lag: Option<&PairLag>) -> String {
    lag.map_or("– | – | – | –".to_string(), |l| {
        format!(
            "{} | {} | {} | {}",
            ms(l.stats.p50_us),
            ms(l.stats.p99_us),
            ms(l.stats.max_us),
            yes_no(l.target_met())
        )
    })
}

/// "seen / probes" of one condition of a pair.
fn probes_seen(lag: Option<&PairLag>, probes: usize) -> String {
    lag.map_or("–".to_string(), |l| format!("{} / {}", l.stats.ok, probes))
}

/// Convergence after a healed partition: how it ran, one row per node, and the verdict.
fn write_convergence(c: &Convergence, out: &mut String) {
    writeln!(out, "### Convergence of divergent keys after a healed partition\n").unwrap();
    write_convergence_method(c, out);
    write_convergence_table(c, out);
    write_convergence_summary(c, out);
}

/// The partition, the divergent writes, when a node counts as converged, and the target.
fn write_convergence_method(c: &Convergence, out: &mut String) {
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
}

/// One row per node: its side of the cut, records, when it converged, and by which mechanism.
fn write_convergence_table(c: &Convergence, out: &mut String) {
    writeln!(
        out,
        "| node | role | records at heal | converged after the heal, s | records merged after the heal | of which by \
         anti-entropy | its outbox backlog for the cut-off node: at heal → at the end |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|").unwrap();
    for n in &c.nodes {
        write_convergence_row(c, n, out);
    }
    writeln!(out).unwrap();
}

/// One node's row; the cut-off node has no outbox backlog for itself.
fn write_convergence_row(c: &Convergence, n: &NodeConvergence, out: &mut String) {
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

/// The paragraph under the table: when every node converged against the target, which
/// mechanism repaired the cut-off node, and the majority side's last shipping errors.
fn write_convergence_summary(c: &Convergence, out: &mut String) {
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
        write_repair_mechanism(cut, out);
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

/// How the records the cut-off node merged after the heal reached it: anti-entropy or outboxes.
fn write_repair_mechanism(cut: &NodeConvergence, out: &mut String) {
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
