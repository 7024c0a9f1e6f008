//! The conditions every result is reported with: the machine, an fsync baseline measured
//! in the same run, and the versions of everything measured.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// fsync (fdatasync) of a 4 KiB overwrite in the benchmark's temporary directory.
    pub fsync_p50_us: u64,
    pub fsync_p99_us: u64,
    pub versions: Vec<(String, String)>,
}

fn first_match(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.split(':').nth(1))
        .map(|v| v.trim().to_string())
}

/// Latency percentiles (p50, p99) of `rounds` 4 KiB overwrite + fdatasync in `dir`.
pub fn fsync_baseline(dir: &Path, rounds: usize) -> std::io::Result<(u64, u64)> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = vec![0x42u8; 4096];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
        file.write_all(&block)?;
        file.sync_data()?;
        samples.push(start.elapsed().as_micros() as u64);
    }
    std::fs::remove_file(&path)?;
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok((at(0.50), at(0.99)))
}

pub fn describe(versions: Vec<(String, String)>) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = first_match(&meminfo, "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0.0);
    let (fsync_p50_us, fsync_p99_us) = fsync_baseline(&std::env::temp_dir(), 200).unwrap_or((0, 0));
    Machine {
        cpu: first_match(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: memory_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        fsync_p50_us,
        fsync_p99_us,
        versions,
    }
}
