//! One benchmark run: for each system, start it, load the keys, find each workload's
//! peak, sweep open-loop rates around it with repetitions, stop it; the regional scenario
//! (`edgekv-3-regions`) and the cache-class scenario (`edgekv-cache-3-regions`) run in their
//! places in the order; then the report, merged with the earlier one if asked.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::driver::{closed_loop, load, open_loop};
use crate::peers::{self, Binaries};
use crate::report::{RatePoint, Report, Series, Settings};
use crate::targets::Target;
use crate::workload::Workload;

#[derive(Clone, Debug)]
pub struct Options {
    pub systems: Vec<String>,
    pub workloads: Vec<Workload>,
    pub keys: u64,
    pub value_size: usize,
    pub peak_duration: Duration,
    pub point_duration: Duration,
    pub fractions: Vec<f64>,
    pub reps: usize,
    pub closed_loop_workers: usize,
    /// Sequential writes per region in the regional scenario.
    pub regional_writes: usize,
    /// Probe writes per region in the cache scenario's propagation measurement.
    pub cache_lag_probes: usize,
    /// Keys written on the majority side of the cache scenario's partition.
    pub cache_divergent_keys: usize,
    /// Keep the existing report's results of systems this run does not measure.
    pub merge: bool,
    pub binaries: Binaries,
    pub output: PathBuf,
    pub command: String,
}

/// Why a system cannot run a workload in this harness, if it cannot.
fn unsupported(target: &Target, workload: Workload) -> Option<&'static str> {
    match (target, workload) {
        (Target::Redis(_), Workload::YcsbE) => Some("Redis has no ordered scan over plain keys"),
        (Target::Redis(_), Workload::CasContention) => {
            Some("Redis CAS needs WATCH on a dedicated connection per transaction; not comparable here")
        }
        _ => None,
    }
}

pub async fn run(options: &Options) -> Result<Report> {
    let mut versions = vec![(
        "edgekv".to_string(),
        peers::version_of(&options.binaries.edgekv, &["--version"]),
    )];
    let uses = |prefix: &str| options.systems.iter().any(|s| s.starts_with(prefix));
    if uses("denokv")
        && let Some(denokv) = &options.binaries.denokv
    {
        // denokv has no --version; `cargo x bench` installs it into a folder named after it.
        let installed = denokv
            .parent()
            .and_then(|bin| bin.parent())
            .and_then(|root| root.file_name());
        let version = installed.map_or_else(|| "unknown".into(), |name| name.to_string_lossy().into_owned());
        versions.push(("denokv".into(), version));
    }
    if uses("etcd") {
        versions.push(("etcd".into(), peers::version_of("etcd".as_ref(), &["--version"])));
    }
    if uses("redis") {
        versions.push((
            "redis".into(),
            peers::version_of("redis-server".as_ref(), &["--version"]),
        ));
    }
    let machine = crate::machine::describe(versions);
    let mut series = Vec::new();
    let mut skipped = Vec::new();
    let mut regional = None;
    let mut cache = None;
    for system in &options.systems {
        eprintln!("== {system}: starting");
        if system == crate::regional::SYSTEM {
            regional = Some(
                crate::regional::run(&options.binaries.edgekv, options.regional_writes, options.value_size).await?,
            );
            continue;
        }
        if system == crate::cache::SYSTEM {
            cache = Some(crate::cache::run(options).await?);
            continue;
        }
        let peer = peers::start(system, &options.binaries).await?;
        load(&peer.target, options.keys, options.value_size, 64).await?;
        for &workload in &options.workloads {
            if let Some(why) = unsupported(&peer.target, workload) {
                skipped.push((system.clone(), workload.name().to_string(), why.to_string()));
                continue;
            }
            let peak = closed_loop(
                &peer.target,
                workload,
                options.keys,
                options.value_size,
                options.closed_loop_workers,
                options.peak_duration,
            )
            .await;
            eprintln!(
                "   {:<17} peak {:>9.0} ops/s (errors {})",
                workload.name(),
                peak.achieved_rate,
                peak.errors
            );
            let mut points = Vec::new();
            if peak.achieved_rate > 0.0 {
                for &fraction in &options.fractions {
                    let rate = (peak.achieved_rate * fraction).max(1.0);
                    let mut reps = Vec::new();
                    for _ in 0..options.reps {
                        reps.push(
                            open_loop(
                                &peer.target,
                                workload,
                                options.keys,
                                options.value_size,
                                rate,
                                options.point_duration,
                            )
                            .await,
                        );
                    }
                    let p99 = reps.iter().map(|r| r.p99_us).max().unwrap_or(0);
                    eprintln!(
                        "     {:>4.0}% = {rate:>9.0} ops/s: worst p99 {:.2} ms",
                        fraction * 100.0,
                        p99 as f64 / 1000.0
                    );
                    points.push(RatePoint { fraction, rate, reps });
                }
            }
            series.push(Series {
                system: system.clone(),
                layout: peer.layout.clone(),
                durability: peer.durability.clone(),
                workload,
                peak,
                points,
            });
        }
        drop(peer);
    }
    let mut report = Report {
        date: humantime_now(),
        machine,
        settings: Settings {
            command: options.command.clone(),
            keys: options.keys,
            value_size: options.value_size,
            peak_seconds: options.peak_duration.as_secs_f64(),
            point_seconds: options.point_duration.as_secs_f64(),
            reps: options.reps,
            closed_loop_workers: options.closed_loop_workers,
        },
        series,
        skipped,
        regional,
        cache,
        systems: options.systems.clone(),
        kept_runs: Vec::new(),
    };
    if options.merge {
        match crate::report::read_results(&options.output)? {
            Some(earlier) => report.keep_other_systems_from(earlier),
            None => eprintln!(
                "no earlier results next to {}: nothing to merge",
                options.output.display()
            ),
        }
    }
    crate::report::write(&report, &options.output)?;
    Ok(report)
}

fn humantime_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
