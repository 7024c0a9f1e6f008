//! `edgekv-bench`: an open-loop benchmark of edgekv side by side with etcd, Redis and
//! denokv, driven through the same workload definitions so client overhead is alike.
//!
//! - [`targets`]: one client per system behind one interface (edgekv's SDK, a KV
//!   Connect client shared by denokv and edgekv's KV Connect listener, etcd, Redis).
//! - [`workload`]: the operations mixes (YCSB A/B/E, point reads and writes, CAS, TTL).
//! - [`driver`]: closed-loop peak finding and the open-loop, constant-arrival-rate runs
//!   whose latencies are measured from each request's intended start.
//! - [`peers`]: starting and stopping every system on loopback, by PID (edgekv also as a
//!   3-voter `edgekv serve` cluster, `edgekv-3`, and with TLS and tokens, `edgekv-secure`,
//!   whose credentials [`security`] makes).
//! - [`regional`]: strong writes from each region of a simulated 3-region cluster against
//!   that region's physical floor (`edgekv-3-regions`).
//! - [`cache`]: the cache class on the same simulated cluster: local writes and reads,
//!   propagation lag between regions, convergence after a healed partition
//!   (`edgekv-cache-3-regions`).
//! - [`machine`]: the conditions every result carries (CPU, fsync baseline, versions).
//! - [`report`]: `docs/benchmarks.md` and its plots.

pub mod cache;
pub mod driver;
pub mod machine;
pub mod peers;
pub mod regional;
pub mod report;
pub mod run;
pub mod security;
pub mod targets;
pub mod workload;
