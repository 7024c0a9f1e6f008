//! The ratios section: for each pair of an edgekv-side system and a peer measured in the
//! same run, closed-loop peak throughput and p99 at half load, edgekv ÷ peer, per workload.

use std::fmt::Write as _;

use super::model::{Report, find};
use crate::workload::Workload;

/// (edgekv-side system, peer, what the pair compares)
const PAIRS: [(&str, &str, &str); 7] = [
    ("edgekv", "etcd", "SDK vs etcd-client, both gRPC, 1 node each"),
    (
        "edgekv-secure",
        "edgekv",
        "the cost of security: TLS and a token on every request vs plaintext, same node",
    ),
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

pub(super) fn ratio_tables(report: &Report, out: &mut String) {
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
