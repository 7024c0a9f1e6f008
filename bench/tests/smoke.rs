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
        systems: vec!["edgekv".into(), "edgekv-kvconnect".into()],
        workloads: workload::ALL.to_vec(),
        keys: 200,
        value_size: 128,
        peak_duration: Duration::from_millis(200),
        point_duration: Duration::from_millis(200),
        fractions: vec![0.25, 0.5],
        reps: 3,
        closed_loop_workers: 4,
        regional_writes: 1,
        binaries: Binaries {
            edgekv: edgekv_binary(),
            denokv: None,
        },
        output: output.clone(),
        command: "smoke test".into(),
    };
    let report = run(&options).await.unwrap();
    assert_eq!(report.series.len(), 2 * workload::ALL.len());
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
