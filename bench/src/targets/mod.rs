//! One client per system behind a single enum, so every workload calls the same methods.
//! Keys are numbered; each target spells key `n` its own way, in the same order.

mod edgekv;
mod etcd;
mod kvconnect;
mod redis;

use anyhow::Result;
use bytes::Bytes;

pub use self::edgekv::EdgekvTarget;
pub use self::etcd::EtcdTarget;
pub use self::kvconnect::KvConnectTarget;
pub use self::redis::RedisTarget;

/// A system under test, connected.
#[derive(Clone)]
pub enum Target {
    Edgekv(EdgekvTarget),
    KvConnect(KvConnectTarget),
    Etcd(EtcdTarget),
    Redis(RedisTarget),
}

/// What a compare-and-set attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    Applied,
    Conflict,
}

impl Target {
    pub async fn get(&self, key: u64) -> Result<Option<Bytes>> {
        match self {
            Target::Edgekv(t) => t.get(key).await,
            Target::KvConnect(t) => t.get(key).await,
            Target::Etcd(t) => t.get(key).await,
            Target::Redis(t) => t.get(key).await,
        }
    }

    /// A read that reflects every write acknowledged before it started: edgekv's strong
    /// read, etcd's default Get. KV Connect reads already go to the strong endpoint, and
    /// Redis here is one node with one copy, so their plain read is this read.
    pub async fn get_linearizable(&self, key: u64) -> Result<Option<Bytes>> {
        match self {
            Target::Edgekv(t) => t.get_linearizable(key).await,
            Target::KvConnect(t) => t.get(key).await,
            Target::Etcd(t) => t.get_linearizable(key).await,
            Target::Redis(t) => t.get(key).await,
        }
    }

    /// A durable write, expiring at `expire_at_ms` (ms since the epoch) when given.
    pub async fn put(&self, key: u64, value: Bytes, expire_at_ms: Option<u64>) -> Result<()> {
        match self {
            Target::Edgekv(t) => t.put(key, value, expire_at_ms).await,
            Target::KvConnect(t) => t.put(key, value, expire_at_ms).await,
            Target::Etcd(t) => t.put(key, value, expire_at_ms).await,
            Target::Redis(t) => t.put(key, value, expire_at_ms).await,
        }
    }

    /// Reads up to `count` keys in order from `start`; returns how many were read.
    /// `None` when the system has no ordered scan (Redis).
    pub async fn scan(&self, start: u64, count: usize) -> Option<Result<usize>> {
        Some(match self {
            Target::Edgekv(t) => t.scan(start, count).await,
            Target::KvConnect(t) => t.scan(start, count).await,
            Target::Etcd(t) => t.scan(start, count).await,
            Target::Redis(_) => return None,
        })
    }

    /// Reads a counter and writes it back incremented, only if nobody wrote in between.
    /// `None` when the system has no such primitive in this harness (Redis: WATCH needs
    /// a connection per transaction, which would measure connection setup instead).
    pub async fn cas_increment(&self, key: u64) -> Option<Result<CasOutcome>> {
        Some(match self {
            Target::Edgekv(t) => t.cas_increment(key).await,
            Target::KvConnect(t) => t.cas_increment(key).await,
            Target::Etcd(t) => t.cas_increment(key).await,
            Target::Redis(_) => return None,
        })
    }
}

/// The counter value stored by CAS workloads: 8 bytes little-endian.
pub fn counter_value(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| b.get(..8))
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}
