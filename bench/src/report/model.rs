//! The results a report is made of: each system's series of runs per workload, the
//! settings and machine they were measured with, the scenarios' results, and the earlier
//! runs a merged report keeps some systems' results from. Also the few reductions every
//! section reads them through (median over repetitions, the half-load point, lookup).

use crate::cache::CacheScenario;
use crate::driver::RunStats;
use crate::machine::Machine;
use crate::peers::SYSTEMS;
use crate::regional::Regional;
use crate::workload::Workload;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RatePoint {
    /// Offered rate as a fraction of this system's closed-loop peak.
    pub fraction: f64,
    pub rate: f64,
    /// One entry per repetition.
    pub reps: Vec<RunStats>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Series {
    pub system: String,
    pub layout: String,
    pub durability: String,
    pub workload: Workload,
    pub peak: RunStats,
    pub points: Vec<RatePoint>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub command: String,
    pub keys: u64,
    pub value_size: usize,
    pub peak_seconds: f64,
    pub point_seconds: f64,
    pub reps: usize,
    pub closed_loop_workers: usize,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub settings: Settings,
    pub series: Vec<Series>,
    /// (system, workload, why it was not run)
    pub skipped: Vec<(String, String, String)>,
    /// The regional scenario, when `edgekv-3-regions` was run.
    #[serde(default)]
    pub regional: Option<Regional>,
    /// The cache-class scenario, when `edgekv-cache-3-regions` was run.
    #[serde(default)]
    pub cache: Option<CacheScenario>,
    /// The systems this run measured (empty in reports from before it was recorded).
    #[serde(default)]
    pub systems: Vec<String>,
    /// Results of other systems kept from earlier runs (`--merge`), with their conditions.
    #[serde(default)]
    pub kept_runs: Vec<KeptRun>,
}

/// An earlier run whose results of some systems a merged report keeps.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KeptRun {
    pub date: String,
    pub machine: Machine,
    pub settings: Settings,
    /// The systems whose results in the report come from this run.
    pub systems: Vec<String>,
}

impl Report {
    /// The systems whose results this report's own run measured.
    pub(super) fn own_systems(&self) -> Vec<String> {
        if !self.systems.is_empty() {
            return self.systems.clone();
        }
        // Reports from before `systems` was recorded: every system with results.
        let mut systems: Vec<String> = self.series.iter().map(|s| s.system.clone()).collect();
        if self.regional.is_some() {
            systems.push(crate::regional::SYSTEM.into());
        }
        if self.cache.is_some() {
            systems.push(crate::cache::SYSTEM.into());
        }
        systems.dedup();
        systems
    }

    /// Keeps `earlier`'s results of every system this run did not measure, and records
    /// which run each came from.
    pub fn keep_other_systems_from(&mut self, earlier: Report) {
        let rerun = self.own_systems();
        let kept = |system: &String| !rerun.contains(system);
        let mut kept_runs: Vec<KeptRun> = earlier
            .kept_runs
            .iter()
            .cloned()
            .chain(std::iter::once(KeptRun {
                date: earlier.date.clone(),
                machine: earlier.machine.clone(),
                settings: earlier.settings.clone(),
                systems: earlier.own_systems(),
            }))
            .collect();
        for run in &mut kept_runs {
            run.systems.retain(kept);
        }
        kept_runs.retain(|run| !run.systems.is_empty());
        self.kept_runs = kept_runs;
        self.series
            .extend(earlier.series.into_iter().filter(|s| kept(&s.system)));
        self.series
            .sort_by_key(|s| SYSTEMS.iter().position(|known| *known == s.system));
        self.skipped
            .extend(earlier.skipped.into_iter().filter(|(system, _, _)| kept(system)));
        if kept(&crate::regional::SYSTEM.to_string()) {
            self.regional = self.regional.take().or(earlier.regional);
        }
        if kept(&crate::cache::SYSTEM.to_string()) {
            self.cache = self.cache.take().or(earlier.cache);
        }
    }
}

/// The median of `values` (the upper one of an even count; 0 for none).
pub(super) fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

impl RatePoint {
    /// The median over repetitions of each repetition's p99.
    pub fn p99_median(&self) -> u64 {
        median(self.reps.iter().map(|r| r.p99_us).collect())
    }

    /// The median over repetitions of each repetition's p50.
    pub fn p50_median(&self) -> u64 {
        median(self.reps.iter().map(|r| r.p50_us).collect())
    }
}

impl Series {
    /// The open-loop point nearest half of the peak: where tails are compared.
    pub(super) fn half_load(&self) -> Option<&RatePoint> {
        self.points
            .iter()
            .min_by(|a, b| (a.fraction - 0.5).abs().total_cmp(&(b.fraction - 0.5).abs()))
    }
}

/// The series of `system` on `workload`, if it was run.
pub(super) fn find<'a>(report: &'a Report, system: &str, workload: Workload) -> Option<&'a Series> {
    report
        .series
        .iter()
        .find(|s| s.system == system && s.workload == workload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::conditions::conditions;

    fn report(date: &str, systems: &[&str]) -> Report {
        Report {
            date: date.into(),
            machine: Machine::default(),
            settings: Settings {
                command: format!("run of {date}"),
                keys: 10,
                value_size: 8,
                peak_seconds: 1.0,
                point_seconds: 1.0,
                reps: 3,
                closed_loop_workers: 4,
            },
            series: systems
                .iter()
                .map(|system| Series {
                    system: system.to_string(),
                    layout: String::new(),
                    durability: String::new(),
                    workload: Workload::Write,
                    peak: RunStats::default(),
                    points: Vec::new(),
                })
                .collect(),
            skipped: Vec::new(),
            regional: None,
            cache: None,
            systems: systems.iter().map(|s| s.to_string()).collect(),
            kept_runs: Vec::new(),
        }
    }

    #[test]
    fn a_merge_keeps_the_systems_not_rerun_and_names_their_run() {
        let mut first = report("day 1", &["edgekv", "etcd", "redis"]);
        // Written before `systems` was recorded: inferred from the results.
        first.systems.clear();
        let mut second = report("day 2", &["etcd"]);
        second.keep_other_systems_from(first);
        let systems: Vec<&str> = second.series.iter().map(|s| s.system.as_str()).collect();
        assert_eq!(systems, ["edgekv", "etcd", "redis"], "in the harness's order");
        assert_eq!(second.kept_runs.len(), 1);
        assert_eq!(second.kept_runs[0].date, "day 1");
        assert_eq!(second.kept_runs[0].systems, ["edgekv", "redis"]);

        let mut third = report("day 3", &["redis"]);
        third.keep_other_systems_from(second);
        let kept: Vec<(&str, &[String])> = third
            .kept_runs
            .iter()
            .map(|run| (run.date.as_str(), run.systems.as_slice()))
            .collect();
        assert_eq!(
            kept,
            [
                ("day 1", &["edgekv".to_string()][..]),
                ("day 2", &["etcd".to_string()][..])
            ]
        );
        let mut markdown = String::new();
        conditions(&third, &mut markdown);
        assert!(
            markdown.contains("- Kept from the run of day 1 (`run of day 1`): edgekv."),
            "{markdown}"
        );
        assert!(markdown.contains("measuring redis"), "{markdown}");
    }
}
