//! The strong-class section: edgekv-3 against etcd-3, both 3 voters on loopback, strong
//! writes and linearizable reads, judged on the replicated-write target (which the targets
//! section also reports).

use std::fmt::Write as _;

use super::format::ms;
use super::model::{Report, Series, find};
use crate::workload::Workload;

/// The design target the two 3-voter clusters are judged on: edgekv-3 writes at least this
/// multiple of etcd-3's throughput at equal or lower p99.
pub(super) const REPLICATED_WRITE_TARGET: f64 = 3.0;

/// How a replicated pair did on one workload: (throughput ratio, p99 ratio at half load).
pub(super) fn replicated_ratios(ours: &Series, peer: &Series) -> (Option<f64>, Option<f64>) {
    let throughput = (peer.peak.achieved_rate > 0.0).then(|| ours.peak.achieved_rate / peer.peak.achieved_rate);
    let tail = match (ours.half_load(), peer.half_load()) {
        (Some(a), Some(b)) if b.p99_median() > 0 => Some(a.p99_median() as f64 / b.p99_median() as f64),
        _ => None,
    };
    (throughput, tail)
}

/// Whether the replicated-write target was met and, if not, on what.
pub(super) fn write_target_verdict(throughput: Option<f64>, tail: Option<f64>) -> &'static str {
    match (throughput, tail) {
        (Some(t), Some(p)) if t >= REPLICATED_WRITE_TARGET && p <= 1.0 => "yes",
        (Some(t), Some(p)) if t < REPLICATED_WRITE_TARGET && p > 1.0 => "**no** (throughput and p99)",
        (Some(t), Some(_)) if t < REPLICATED_WRITE_TARGET => "**no** (throughput)",
        (Some(_), Some(_)) => "**no** (p99)",
        _ => "not measured",
    }
}

/// Writes the section, when either 3-voter cluster was run.
pub(super) fn replicated(report: &Report, out: &mut String) {
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
