//! The regional section: strong writes from each region of the simulated 3-region cluster,
//! against that region's physical floor and the bound a single Raft leader sets, with a
//! plain reading of what the numbers allow.

use std::fmt::Write as _;

use super::format::{describe_wan, ms, ms3, write_first_error};
use crate::regional::Regional;

/// The regional target: p50 of a strong write within this multiple of the region's floor.
pub(super) const REGIONAL_FLOOR_TARGET: f64 = 1.2;

/// Writes the section: how the scenario ran, the per-region table, and what it means.
pub(super) fn regional_section(regional: &Regional, out: &mut String) {
    writeln!(out, "## Strong writes from each region (simulated 3-region WAN)\n").unwrap();
    write_setup(regional, out);
    write_table(regional, out);
    write_reading(regional, out);
}

/// The cluster, the load, this run's fsync and leader, and how floor and bound are computed.
fn write_setup(regional: &Regional, out: &mut String) {
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
}

/// One row per region: latencies, failures, floor, bound, and the target's verdict.
fn write_table(regional: &Regional, out: &mut String) {
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
        write_first_error(out, &error);
    }
    writeln!(out).unwrap();
}

/// The plain reading, from the numbers: which regions single-leader Raft lets reach the target.
fn write_reading(regional: &Regional, out: &mut String) {
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
