//! Load drivers.
//!
//! - [`closed_loop`]: N workers issue requests back to back; finds the peak throughput.
//!   Its latencies are not reported (a closed loop hides queueing).
//! - [`open_loop`]: requests start at a constant arrival rate whatever the system does;
//!   each latency is measured from the request's intended start, so time spent queued
//!   behind a slow system is counted (no coordinated omission). Tail latencies are only
//!   quoted from these runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::{Mutex, Semaphore};

use crate::targets::{CasOutcome, Target};
use crate::workload::{Op, OpGenerator, TTL_MS, Workload};

/// A request not answered within this is counted as a timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests in flight at most in an open-loop run; beyond it arrivals wait (and their
/// latency keeps counting from their intended start).
pub const MAX_IN_FLIGHT: usize = 1024;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RunStats {
    /// Arrival rate asked for (ops/s); 0 for closed-loop runs.
    pub offered_rate: f64,
    pub achieved_rate: f64,
    pub ok: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// TTL churn: reads that returned a value after the expiry it was written with.
    pub expired_reads: u64,
    /// CAS: attempts that lost the race (a correct answer, counted apart from errors).
    pub cas_conflicts: u64,
    /// Latency percentiles in microseconds: p50, p90, p99, p99.9, max.
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    expired_reads: AtomicU64,
    cas_conflicts: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A value of `size` bytes whose first 8 bytes say when it expires (0: never).
pub fn value(size: usize, expires_at_ms: u64) -> Bytes {
    let mut bytes = vec![0x5a; size.max(8)];
    bytes[..8].copy_from_slice(&expires_at_ms.to_le_bytes());
    Bytes::from(bytes)
}

/// Runs one operation and counts its outcome.
async fn execute(target: &Target, op: Op, value_size: usize, counters: &Counters) {
    let started_ms = now_ms();
    let result: anyhow::Result<()> = async {
        match op {
            Op::Get(k) => target.get(k).await.map(drop),
            Op::LinearizableGet(k) => target.get_linearizable(k).await.map(drop),
            Op::Put(k) => target.put(k, value(value_size, 0), None).await,
            Op::Scan(k) => target
                .scan(k, crate::workload::SCAN_LENGTH)
                .await
                .unwrap_or(Ok(0))
                .map(drop),
            Op::Cas(k) => match target.cas_increment(k).await {
                Some(Ok(CasOutcome::Conflict)) => {
                    counters.cas_conflicts.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Some(result) => result.map(drop),
                None => Ok(()),
            },
            Op::TtlPut(k) => {
                let expires_at = now_ms() + TTL_MS;
                target.put(k, value(value_size, expires_at), Some(expires_at)).await
            }
            Op::TtlGet(k) => {
                if let Some(bytes) = target.get(k).await? {
                    let expires_at = crate::targets::counter_value(Some(&bytes));
                    // The read started after the value's expiry: it must not have been served.
                    if expires_at != 0 && expires_at <= started_ms {
                        counters.expired_reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            }
        }
    }
    .await;
    match result {
        Ok(()) => {
            counters.ok.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            counters
                .first_error
                .lock()
                .expect("lock")
                .get_or_insert_with(|| format!("{error:#}"));
        }
    }
}

impl RunStats {
    /// Sets the latency percentiles from `histogram` (µs).
    pub fn set_percentiles(&mut self, histogram: &Histogram<u64>) {
        self.p50_us = histogram.value_at_quantile(0.50);
        self.p90_us = histogram.value_at_quantile(0.90);
        self.p99_us = histogram.value_at_quantile(0.99);
        self.p999_us = histogram.value_at_quantile(0.999);
        self.max_us = histogram.max();
    }
}

fn summarize(histogram: &Histogram<u64>, counters: &Counters, offered_rate: f64, elapsed: Duration) -> RunStats {
    let ok = counters.ok.load(Ordering::Relaxed);
    let mut stats = RunStats {
        offered_rate,
        achieved_rate: ok as f64 / elapsed.as_secs_f64(),
        ok,
        errors: counters.errors.load(Ordering::Relaxed),
        timeouts: counters.timeouts.load(Ordering::Relaxed),
        expired_reads: counters.expired_reads.load(Ordering::Relaxed),
        cas_conflicts: counters.cas_conflicts.load(Ordering::Relaxed),
        first_error: counters.first_error.lock().expect("lock").clone(),
        ..RunStats::default()
    };
    stats.set_percentiles(histogram);
    stats
}

/// A latency histogram in µs, 1 µs to 60 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn timed(target: &Target, op: Op, value_size: usize, counters: &Counters) -> bool {
    if tokio::time::timeout(REQUEST_TIMEOUT, execute(target, op, value_size, counters))
        .await
        .is_err()
    {
        counters.timeouts.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// `workers` back-to-back loops for `duration`: the peak throughput.
pub async fn closed_loop(
    target: &Target,
    workload: Workload,
    keys: u64,
    value_size: usize,
    workers: usize,
    duration: Duration,
) -> RunStats {
    let generator = Arc::new(OpGenerator::new(workload, keys));
    let counters = Arc::new(Counters::default());
    let histogram = Arc::new(Mutex::new(new_histogram()));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (target, generator, counters, histogram) =
                (target.clone(), generator.clone(), counters.clone(), histogram.clone());
            tokio::spawn(async move {
                let mut local = new_histogram();
                while Instant::now() < deadline {
                    let op = generator.next(&mut rand::rng());
                    let begin = Instant::now();
                    if timed(&target, op, value_size, &counters).await {
                        let _ = local.record(begin.elapsed().as_micros().max(1) as u64);
                    }
                }
                histogram.lock().await.add(&local).expect("same bounds");
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let histogram = histogram.lock().await;
    summarize(&histogram, &counters, 0.0, started.elapsed())
}

/// Constant arrival rate `rate` ops/s for `duration`; latency from intended start.
pub async fn open_loop(
    target: &Target,
    workload: Workload,
    keys: u64,
    value_size: usize,
    rate: f64,
    duration: Duration,
) -> RunStats {
    let generator = OpGenerator::new(workload, keys);
    let counters = Arc::new(Counters::default());
    let histogram = Arc::new(std::sync::Mutex::new(new_histogram()));
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut rng = rand::rng();
    // Arrivals whose intended start is more than a run's length in the past when the
    // dispatcher reaches them were never sent: past the knee neither the system nor the
    // generator keeps up. They count as timeouts (a client would have given up), so an
    // overloaded point ends in bounded time and still shows the overload.
    let give_up = start + duration * 2;
    for i in 0..total {
        let intended = start + interval.mul_f64(i as f64);
        if tokio::time::Instant::now() > give_up {
            counters.timeouts.fetch_add(total - i, Ordering::Relaxed);
            break;
        }
        tokio::time::sleep_until(intended).await;
        let permit = permits.clone().acquire_owned().await.expect("semaphore open");
        let op = generator.next(&mut rng);
        let (target, counters, histogram) = (target.clone(), counters.clone(), histogram.clone());
        tasks.spawn(async move {
            let _permit = permit;
            if timed(&target, op, value_size, &counters).await {
                let latency = intended.elapsed().as_micros().max(1) as u64;
                let _ = histogram.lock().expect("lock").record(latency);
            }
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let histogram = histogram.lock().expect("lock");
    summarize(&histogram, &counters, rate, elapsed)
}

/// Writes every key once (and the CAS counters), with `concurrency` writers.
pub async fn load(target: &Target, keys: u64, value_size: usize, concurrency: usize) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (target, next) = (target.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= keys {
                        return Ok::<_, anyhow::Error>(());
                    }
                    target.put(k, value(value_size, 0), None).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}
