//! The report: `benchmarks.md` (ratios first, then absolute numbers with their
//! conditions), one PNG per workload (p99 latency against offered load, per system), and
//! `results.json` with every run, so any table can be recomputed.
//!
//! One file per concern:
//! - `model`: the results a report is made of (series, rate points, settings, kept runs)
//!   and how a merged report keeps other systems' results from an earlier run.
//! - `document`: reading `results.json` back and writing the whole document in order,
//!   keeping the hand-written analysis below [`ANALYSIS_MARKER`].
//! - Sections, in the order the document has them: `ratios` (edgekv ÷ peer),
//!   `targets` (every design target and whether it was met), `strong` (edgekv-3 vs
//!   etcd-3), `regional` (strong writes from each simulated region), `cache` (the cache
//!   class across simulated regions), `conditions` (machine, settings, kept runs) and
//!   `absolute` (every open-loop point).
//! - `plot`: the PNGs; `format`: number formats and wording the sections share.

mod absolute;
mod cache;
mod conditions;
mod document;
mod format;
mod model;
mod plot;
mod ratios;
mod regional;
mod strong;
mod targets;

pub use document::{ANALYSIS_MARKER, read_results, write};
pub use model::{KeptRun, RatePoint, Report, Series, Settings};
