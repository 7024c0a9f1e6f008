//! The conditions section: the date and command, the machine and its fsync baseline, how
//! the workloads were run, versions, the earlier runs a merged report keeps results from
//! (each with its own conditions), and what was not run.

use std::fmt::Write as _;

use super::format::ms;
use super::model::{Report, Settings};
use crate::machine::Machine;

/// CPU, cores, memory and kernel, in one line.
fn describe_machine(m: &Machine) -> String {
    format!(
        "{} ({} cores), {:.1} GiB RAM, Linux {}",
        m.cpu, m.cores, m.memory_gib, m.kernel
    )
}

/// How the workload series were measured: (data, load).
fn describe_workload_settings(s: &Settings) -> (String, String) {
    let data = format!(
        "{} keys loaded before the runs, {} B values. Each system gets a fresh data directory on the same disk.",
        s.keys, s.value_size
    );
    let load = format!(
        "a closed loop of {} workers for {:.1} s finds each system's peak; then open-loop runs at fixed fractions of \
         that peak, {:.1} s each, {} repetitions, latency from each request's intended start (no coordinated \
         omission), HdrHistogram at 3 significant digits; arrivals that could not even be sent within twice a run's \
         length count as timeouts. The load generator runs on the same machine and shares its cores.",
        s.closed_loop_workers, s.peak_seconds, s.point_seconds, s.reps
    );
    (data, load)
}

/// "name: version; ...", for a kept run on one line.
fn describe_versions(versions: &[(String, String)]) -> String {
    versions
        .iter()
        .map(|(name, version)| format!("{name}: {version}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Writes the section.
pub(super) fn conditions(report: &Report, out: &mut String) {
    let m = &report.machine;
    let s = &report.settings;
    let own = report.own_systems();
    writeln!(out, "## Conditions\n").unwrap();
    if report.kept_runs.is_empty() {
        writeln!(out, "- Date: {}. Reproduce with `{}`.", report.date, s.command).unwrap();
    } else {
        writeln!(
            out,
            "- This run: {}, `{}`, measuring {}. The results of the other systems are kept from earlier runs, listed at \
             the end with their own conditions; a ratio between systems from different runs is not a same-run \
             comparison.",
            report.date,
            s.command,
            own.join(", ")
        )
        .unwrap();
    }
    writeln!(out, "- Machine: {}.", describe_machine(m)).unwrap();
    writeln!(
        out,
        "- fsync baseline (4 KiB overwrite + fdatasync, same run, same disk): p50 {} ms, p99 {} ms.",
        ms(m.fsync_p50_us),
        ms(m.fsync_p99_us)
    )
    .unwrap();
    if report.series.iter().any(|series| own.contains(&series.system)) {
        let (data, load) = describe_workload_settings(s);
        writeln!(out, "- Data: {data}").unwrap();
        writeln!(out, "- Load: {load}").unwrap();
    }
    writeln!(
        out,
        "- Every system writes durably (see each table's durability column); none is compared in a relaxed mode."
    )
    .unwrap();
    writeln!(out, "- Versions:").unwrap();
    for (name, version) in &m.versions {
        writeln!(out, "  - {name}: {version}").unwrap();
    }
    for kept in &report.kept_runs {
        write!(
            out,
            "- Kept from the run of {} (`{}`): {}. Machine: {}; fsync baseline p50 {} ms, p99 {} ms.",
            kept.date,
            kept.settings.command,
            kept.systems.join(", "),
            describe_machine(&kept.machine),
            ms(kept.machine.fsync_p50_us),
            ms(kept.machine.fsync_p99_us),
        )
        .unwrap();
        if report.series.iter().any(|series| kept.systems.contains(&series.system)) {
            let (data, load) = describe_workload_settings(&kept.settings);
            write!(out, " Data: {data} Load: {load}").unwrap();
        }
        writeln!(out, " Versions: {}.", describe_versions(&kept.machine.versions)).unwrap();
    }
    if !report.skipped.is_empty() {
        writeln!(out, "- Not run:").unwrap();
        for (system, workload, why) in &report.skipped {
            writeln!(out, "  - {system} / {workload}: {why}").unwrap();
        }
    }
    writeln!(out).unwrap();
}
