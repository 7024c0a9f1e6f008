//! `edgekv-bench`: run by `cargo x bench`, which installs the peers and builds release
//! binaries first. See `run.rs` for what a run does and docs/benchmarks.md for results.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;
use edgekv_bench::peers::{Binaries, SYSTEMS};
use edgekv_bench::run::{Options, run};
use edgekv_bench::workload::{self, Workload};

#[derive(Parser)]
#[command(
    name = "edgekv-bench",
    about = "Open-loop benchmark of edgekv against etcd, Redis and denokv"
)]
struct Cli {
    /// A short run (under 10 minutes): fewer keys, shorter runs, three load points.
    #[arg(long)]
    quick: bool,
    /// Systems to run (comma-separated), in this order. `edgekv-3` is a 3-voter edgekv
    /// cluster (compare with `etcd-3`); `edgekv-3-regions` is the regional scenario:
    /// strong writes from each region of a simulated 3-region cluster against the floor;
    /// `edgekv-cache-3-regions` is the cache-class scenario: local cache writes and reads,
    /// propagation lag between regions, convergence after a healed partition.
    #[arg(long, value_delimiter = ',', default_values_t = SYSTEMS.map(String::from))]
    systems: Vec<String>,
    /// Workloads to run (comma-separated); all by default. `write` and
    /// `read-linearizable` are the strong pair edgekv-3 vs etcd-3 is judged on.
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Sequential writes per region in the regional scenario (default: 20 with --quick,
    /// else 300).
    #[arg(long)]
    regional_writes: Option<usize>,
    /// Probe writes per region and condition (idle, under load) in the cache scenario's
    /// propagation measurement (default: 30 with --quick, else 300).
    #[arg(long)]
    cache_lag_probes: Option<usize>,
    /// Distinct keys written on the majority side of the cache scenario's partition.
    #[arg(long, default_value_t = edgekv_bench::cache::CONVERGENCE_TARGET_KEYS)]
    cache_divergent_keys: usize,
    /// Keep, from the existing report's results.json, the results of the systems this run
    /// does not measure (the report names the run each came from). Without it the report
    /// holds this run's systems only.
    #[arg(long)]
    merge: bool,
    /// The edgekv binary (a release build).
    #[arg(long)]
    edgekv_bin: PathBuf,
    /// The denokv binary.
    #[arg(long)]
    denokv_bin: Option<PathBuf>,
    /// Report to write; plots and results.json go to a folder of the same stem.
    #[arg(long, default_value = "docs/benchmarks.md")]
    output: PathBuf,
    /// Open-loop load points as fractions of each system's peak (default: 0.25,0.5,0.9 with
    /// --quick, else 0.1,0.25,0.5,0.75,0.9,1.1).
    #[arg(long, value_delimiter = ',')]
    fractions: Vec<f64>,
    /// Repetitions of every open-loop point.
    #[arg(long, default_value_t = 3)]
    reps: usize,
}

/// The `cargo x bench` command line that reproduces this run: this process's arguments
/// without the binaries `cargo x bench` passes itself.
fn reproduce_command() -> String {
    let mut command = String::from("cargo x bench");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--edgekv-bin" || arg == "--denokv-bin" {
            args.next();
            continue;
        }
        if arg.starts_with("--edgekv-bin=") || arg.starts_with("--denokv-bin=") {
            continue;
        }
        command.push(' ');
        command.push_str(&arg);
    }
    command
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let workloads = if cli.workloads.is_empty() {
        workload::ALL.to_vec()
    } else {
        cli.workloads
            .iter()
            .map(|name| Workload::parse(name).ok_or_else(|| anyhow::anyhow!("unknown workload {name:?}")))
            .collect::<Result<_>>()?
    };
    if let Some(unknown) = cli.systems.iter().find(|s| !SYSTEMS.contains(&s.as_str())) {
        bail!("unknown system {unknown:?}; known: {}", SYSTEMS.join(", "));
    }
    if cli.regional_writes == Some(0) {
        bail!("--regional-writes must be at least 1");
    }
    if cli.cache_lag_probes == Some(0) || cli.cache_divergent_keys == 0 {
        bail!("--cache-lag-probes and --cache-divergent-keys must be at least 1");
    }
    if cli.reps < 3 {
        bail!("--reps must be at least 3: the report quotes the spread over repetitions");
    }
    let (keys, peak, point, fractions) = if cli.quick {
        (
            5_000,
            Duration::from_secs(1),
            Duration::from_millis(400),
            vec![0.25, 0.5, 0.9],
        )
    } else {
        (
            100_000,
            Duration::from_secs(5),
            Duration::from_secs(5),
            vec![0.1, 0.25, 0.5, 0.75, 0.9, 1.1],
        )
    };
    let fractions = if cli.fractions.is_empty() {
        fractions
    } else {
        cli.fractions
    };
    let options = Options {
        systems: cli.systems,
        workloads,
        keys,
        value_size: 1024,
        peak_duration: peak,
        point_duration: point,
        fractions,
        reps: cli.reps,
        closed_loop_workers: 64,
        regional_writes: cli.regional_writes.unwrap_or(if cli.quick { 20 } else { 300 }),
        cache_lag_probes: cli.cache_lag_probes.unwrap_or(if cli.quick { 30 } else { 300 }),
        cache_divergent_keys: cli.cache_divergent_keys,
        merge: cli.merge,
        binaries: Binaries {
            edgekv: cli.edgekv_bin,
            denokv: cli.denokv_bin,
        },
        output: cli.output,
        command: reproduce_command(),
    };
    // Ctrl-C drops the run, and with it every peer process (stopped by PID on drop).
    let report = tokio::select! {
        report = run(&options) => report?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; every started process was stopped"),
    };
    eprintln!("wrote {} ({} series)", options.output.display(), report.series.len());
    Ok(())
}
