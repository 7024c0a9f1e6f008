//! The benchmark harness runs end to end against edgekv alone and writes its report.
//! A smoke test of the harness only: tiny sizes, and no assertion on any speed.

use std::path::PathBuf;
use std::time::Duration;

use edgekv_bench::peers::Binaries;
use edgekv_bench::run::{Options, run};
use edgekv_bench::workload;

fn edgekv_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let binary = dir.join("edgekv");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo x test`, which builds it first",
        binary.display()
    );
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_runs_against_edgekv_and_writes_a_report() {
    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("benchmarks.md");
    let options = Options {
        systems: vec!["edgekv".into(), "edgekv-secure".into(), "edgekv-kvconnect".into()],
        workloads: workload::ALL.to_vec(),
        keys: 200,
        value_size: 128,
        peak_duration: Duration::from_millis(200),
        point_duration: Duration::from_millis(200),
        fractions: vec![0.25, 0.5],
        reps: 3,
        closed_loop_workers: 4,
        regional_writes: 1,
        cache_lag_probes: 1,
        cache_divergent_keys: 1,
        merge: false,
        binaries: Binaries {
            edgekv: edgekv_binary(),
            denokv: None,
        },
        output: output.clone(),
        command: "smoke test".into(),
    };
    let report = run(&options).await.unwrap();
    assert_eq!(report.series.len(), 3 * workload::ALL.len());
    for series in &report.series {
        assert!(
            series.peak.ok > 0,
            "{} / {} completed nothing",
            series.system,
            series.workload.name()
        );
        assert_eq!(
            series.peak.errors,
            0,
            "{} / {}: {:?}",
            series.system,
            series.workload.name(),
            series.peak.first_error
        );
        assert_eq!(series.points.len(), 2);
        assert!(series.points.iter().all(|p| p.reps.len() == 3));
        // edgekv never serves a value past its expiry.
        assert!(series.points.iter().flat_map(|p| &p.reps).all(|r| r.expired_reads == 0));
    }
    let markdown = std::fs::read_to_string(&output).unwrap();
    assert!(
        markdown.contains("## Absolute numbers") && markdown.contains("| edgekv |"),
        "{markdown}"
    );
    assert!(markdown.contains(edgekv_bench::report::ANALYSIS_MARKER));
    for workload in workload::ALL {
        let plot = out.path().join("benchmarks").join(format!("{}.png", workload.name()));
        assert!(
            std::fs::metadata(&plot).unwrap().len() > 1000,
            "{} is empty",
            plot.display()
        );
    }
    assert!(out.path().join("benchmarks/results.json").is_file());
}

/// A 3-voter `edgekv serve` cluster runs the strong pair, and the regional scenario runs on
/// a simulated WAN; both land in the report. Tiny counts, no assertion on any speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_runs_a_three_node_cluster_and_the_regional_scenario() {
    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("benchmarks.md");
    let workloads = vec![workload::Workload::Write, workload::Workload::ReadLinearizable];
    let options = Options {
        systems: vec!["edgekv-3".into(), edgekv_bench::regional::SYSTEM.into()],
        workloads: workloads.clone(),
        keys: 100,
        value_size: 128,
        peak_duration: Duration::from_millis(200),
        point_duration: Duration::from_millis(200),
        fractions: vec![0.5],
        reps: 3,
        closed_loop_workers: 4,
        regional_writes: 2,
        cache_lag_probes: 1,
        cache_divergent_keys: 1,
        merge: false,
        binaries: Binaries {
            edgekv: edgekv_binary(),
            denokv: None,
        },
        output: output.clone(),
        command: "smoke test".into(),
    };
    let report = run(&options).await.unwrap();
    assert_eq!(report.series.len(), workloads.len());
    for series in &report.series {
        assert_eq!(series.system, "edgekv-3");
        assert!(series.peak.ok > 0, "{} completed nothing", series.workload.name());
        assert_eq!(
            series.peak.errors,
            0,
            "{}: {:?}",
            series.workload.name(),
            series.peak.first_error
        );
    }
    let regional = report.regional.as_ref().expect("the regional scenario ran");
    assert_eq!(regional.regions.len(), 3);
    assert!(
        regional.regions.iter().filter(|r| r.is_leader_region).count() == 1,
        "{regional:?}"
    );
    for region in &regional.regions {
        assert_eq!(region.stats.ok, 2, "{region:?}");
        assert!(region.floor_us >= u64::from(region.nearest_rtt_ms) * 1000);
    }
    let markdown = std::fs::read_to_string(&output).unwrap();
    assert!(markdown.contains("## edgekv-3 vs etcd-3"), "{markdown}");
    assert!(markdown.contains("## Strong writes from each region"), "{markdown}");
    assert!(markdown.contains("What single-leader Raft allows"), "{markdown}");
}

/// The cache-class scenario runs end to end on a simulated 3-region cluster (local load,
/// propagation probes, a partition healed after divergent writes) and lands in the report.
/// Tiny counts, no assertion on any speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_runs_the_cache_scenario() {
    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("benchmarks.md");
    let options = Options {
        systems: vec![edgekv_bench::cache::SYSTEM.into()],
        workloads: Vec::new(),
        keys: 100,
        value_size: 128,
        peak_duration: Duration::from_millis(200),
        point_duration: Duration::from_millis(200),
        fractions: vec![0.5],
        reps: 3,
        closed_loop_workers: 4,
        regional_writes: 1,
        cache_lag_probes: 3,
        // Two atomic writes, the second partial.
        cache_divergent_keys: 1500,
        merge: false,
        binaries: Binaries {
            edgekv: edgekv_binary(),
            denokv: None,
        },
        output: output.clone(),
        command: "smoke test".into(),
    };
    let report = run(&options).await.unwrap();
    assert!(report.series.is_empty());
    let cache = report.cache.as_ref().expect("the cache scenario ran");
    assert_eq!(cache.regions.len(), 3);
    for region in &cache.regions {
        for stats in [&region.write_peak, &region.read_peak] {
            assert!(stats.ok > 0 && stats.errors == 0, "{}: {stats:?}", region.region);
        }
        assert_eq!(region.write_half_load.reps.len(), 3);
    }
    assert_eq!(
        cache.lags.len(),
        12,
        "every ordered pair of 3 regions, idle and under load"
    );
    for lag in &cache.lags {
        assert_eq!(lag.stats.ok, 3, "{} -> {}: {:?}", lag.writer, lag.reader, lag.stats);
    }
    let convergence = &cache.convergence;
    assert_eq!(convergence.atomic_writes, 2);
    assert_eq!(
        convergence.records_expected,
        convergence.records_before + 1500,
        "{convergence:?}"
    );
    assert!(
        convergence.nodes.iter().all(|n| n.converged_ms.is_some()),
        "{convergence:?}"
    );
    let cut_off = convergence.cut_off_node().expect("one node was cut off");
    assert_eq!(
        cut_off.records_at_heal, convergence.records_before,
        "nothing crossed the cut"
    );
    let markdown = std::fs::read_to_string(&output).unwrap();
    assert!(
        markdown.contains("## Cache class across simulated regions"),
        "{markdown}"
    );
    assert!(markdown.contains("### Propagation lag"), "{markdown}");
    assert!(markdown.contains("convergence of 1500 divergent keys"), "{markdown}");
}
