//! Workload definitions, shared by every system.
//!
//! Keys are `0..keys` (loaded before the runs); values are `value_size` bytes. Skewed
//! workloads use a scrambled Zipfian distribution with θ = 0.99 (YCSB's), so the hottest
//! keys are spread over the keyspace rather than clustered at its start.

use rand::Rng;
use rand_distr::{Distribution, Zipf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Workload {
    /// Point reads, keys uniform.
    ReadUniform,
    /// Point reads, keys Zipfian.
    ReadZipfian,
    /// Linearizable point reads, keys uniform: edgekv's strong reads (read index on the
    /// leader) and etcd's default (quorum) Get, where `ReadUniform` lets etcd serve
    /// serializable reads from any member.
    ReadLinearizable,
    /// Durable point writes of whole values, keys uniform.
    Write,
    /// YCSB A: 50% reads, 50% updates, Zipfian.
    YcsbA,
    /// YCSB B: 95% reads, 5% updates, Zipfian.
    YcsbB,
    /// YCSB E: 95% short scans (10 keys from a Zipfian start), 5% updates.
    YcsbE,
    /// Read-then-compare-and-set increments on 4 hot counters.
    CasContention,
    /// Writes with a 1 s expiry and reads of the same keys; counts reads that return a
    /// value after the expiry it was written with.
    TtlChurn,
}

pub const ALL: [Workload; 9] = [
    Workload::ReadUniform,
    Workload::ReadZipfian,
    Workload::ReadLinearizable,
    Workload::Write,
    Workload::YcsbA,
    Workload::YcsbB,
    Workload::YcsbE,
    Workload::CasContention,
    Workload::TtlChurn,
];

/// Length of a YCSB E scan.
pub const SCAN_LENGTH: usize = 10;
/// Counters the CAS workload contends on.
pub const CAS_KEYS: u64 = 4;
/// Keys the TTL workload churns (offset past the loaded keyspace).
pub const TTL_KEYS: u64 = 1000;
pub const TTL_OFFSET: u64 = 1 << 40;
/// Expiry of TTL churn writes.
pub const TTL_MS: u64 = 1000;

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::ReadUniform => "read-uniform",
            Workload::ReadZipfian => "read-zipfian",
            Workload::ReadLinearizable => "read-linearizable",
            Workload::Write => "write",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbE => "ycsb-e",
            Workload::CasContention => "cas-contention",
            Workload::TtlChurn => "ttl-churn",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        ALL.into_iter().find(|w| w.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Workload::ReadUniform => "point reads, uniform keys",
            Workload::ReadZipfian => "point reads, Zipfian keys (θ=0.99)",
            Workload::ReadLinearizable => {
                "linearizable point reads, uniform keys (edgekv strong read / etcd default quorum Get)"
            }
            Workload::Write => "durable point writes, uniform keys",
            Workload::YcsbA => "YCSB A: 50% read / 50% update, Zipfian",
            Workload::YcsbB => "YCSB B: 95% read / 5% update, Zipfian",
            Workload::YcsbE => "YCSB E: 95% scans of 10 keys / 5% update, Zipfian",
            Workload::CasContention => "read + compare-and-set increment on 4 hot keys",
            Workload::TtlChurn => "50% writes with 1 s TTL / 50% reads of the same 1000 keys",
        }
    }
}

/// One operation to issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get(u64),
    /// A read that reflects every write acknowledged before it started.
    LinearizableGet(u64),
    Put(u64),
    Scan(u64),
    Cas(u64),
    TtlPut(u64),
    TtlGet(u64),
}

/// Draws operations for a workload over `keys` loaded keys.
pub struct OpGenerator {
    workload: Workload,
    keys: u64,
    zipf: Zipf<f64>,
}

/// FNV-1a, to scramble Zipfian ranks over the keyspace.
fn scramble(rank: u64, keys: u64) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in rank.to_le_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash % keys
}

impl OpGenerator {
    pub fn new(workload: Workload, keys: u64) -> Self {
        let zipf = Zipf::new(keys as f64, 0.99).expect("keys > 0 and θ > 0");
        Self { workload, keys, zipf }
    }

    fn uniform(&self, rng: &mut impl Rng) -> u64 {
        rng.random_range(0..self.keys)
    }

    fn zipfian(&self, rng: &mut impl Rng) -> u64 {
        let rank = self.zipf.sample(rng) as u64 - 1;
        scramble(rank, self.keys)
    }

    pub fn next(&self, rng: &mut impl Rng) -> Op {
        let p: f64 = rng.random();
        match self.workload {
            Workload::ReadUniform => Op::Get(self.uniform(rng)),
            Workload::ReadZipfian => Op::Get(self.zipfian(rng)),
            Workload::ReadLinearizable => Op::LinearizableGet(self.uniform(rng)),
            Workload::Write => Op::Put(self.uniform(rng)),
            Workload::YcsbA if p < 0.5 => Op::Get(self.zipfian(rng)),
            Workload::YcsbA => Op::Put(self.zipfian(rng)),
            Workload::YcsbB if p < 0.95 => Op::Get(self.zipfian(rng)),
            Workload::YcsbB => Op::Put(self.zipfian(rng)),
            Workload::YcsbE if p < 0.95 => {
                Op::Scan(self.zipfian(rng).min(self.keys.saturating_sub(SCAN_LENGTH as u64)))
            }
            Workload::YcsbE => Op::Put(self.zipfian(rng)),
            Workload::CasContention => Op::Cas(rng.random_range(0..CAS_KEYS)),
            Workload::TtlChurn if p < 0.5 => Op::TtlPut(TTL_OFFSET + rng.random_range(0..TTL_KEYS)),
            Workload::TtlChurn => Op::TtlGet(TTL_OFFSET + rng.random_range(0..TTL_KEYS)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_and_skew_are_as_documented() {
        let mut rng = rand::rng();
        let generator = OpGenerator::new(Workload::YcsbB, 10_000);
        let ops: Vec<Op> = (0..20_000).map(|_| generator.next(&mut rng)).collect();
        let reads = ops.iter().filter(|op| matches!(op, Op::Get(_))).count() as f64 / ops.len() as f64;
        assert!((0.93..0.97).contains(&reads), "YCSB B read share {reads}");
        let mut counts = std::collections::HashMap::new();
        for op in &ops {
            if let Op::Get(k) | Op::Put(k) = op {
                assert!(*k < 10_000);
                *counts.entry(*k).or_insert(0) += 1;
            }
        }
        let hottest = counts.values().max().copied().unwrap_or(0);
        assert!(
            hottest > 20_000 / 100,
            "Zipfian skew: the hottest key got {hottest} of 20000"
        );
        assert_eq!(Workload::parse("ycsb-e"), Some(Workload::YcsbE));
    }
}
