//! The absolute-numbers section: per workload, its plot and one row per system and offered
//! rate (medians over repetitions, the spread of p99, and every failure counted).

use std::fmt::Write as _;

use super::format::ms;
use super::model::{Report, Series, median};
use crate::driver::RunStats;

/// Writes the section; `plots_dir_name` is the plots' folder, relative to the document.
pub(super) fn absolute_tables(report: &Report, out: &mut String, plots_dir_name: &str) {
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
