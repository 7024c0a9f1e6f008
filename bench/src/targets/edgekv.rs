//! edgekv through its Rust SDK (gRPC).

use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use edgekv_client::{Client, Consistency, Selector, Value, key};
use futures::TryStreamExt as _;

use super::{CasOutcome, counter_value};

#[derive(Clone)]
pub struct EdgekvTarget {
    client: Client,
    /// What a plain `get` asks for.
    read_consistency: Consistency,
}

impl EdgekvTarget {
    /// The first part of every key the workloads use (`["bench", n]`), so a scenario can put
    /// them in a keyspace class.
    pub const KEY_PREFIX: &str = "bench";

    pub async fn connect(endpoint: &str) -> Result<Self> {
        Ok(Self::from_client(
            Client::connect(endpoint.to_string())
                .await
                .context("connect to edgekv")?,
        ))
    }

    /// Drives a client built elsewhere (for instance with a CA and a token) with the SDK's
    /// default reads.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            read_consistency: Consistency::default(),
        }
    }

    /// Drives `client` as it is (e.g. pinned to one node of a cluster) with eventual plain
    /// reads, served by the node the client talks to.
    pub fn with_eventual_reads(client: Client) -> Self {
        Self {
            client,
            read_consistency: Consistency::Eventual,
        }
    }

    /// A plain read: the SDK's default (strong), or eventual for a target made by
    /// [`Self::with_eventual_reads`].
    pub async fn get(&self, n: u64) -> Result<Option<Bytes>> {
        let entry = self
            .client
            .get(key![Self::KEY_PREFIX, n])
            .consistency(self.read_consistency)
            .await?;
        Ok(entry
            .and_then(|e| e.value)
            .and_then(|v| v.as_bytes().map(Bytes::copy_from_slice)))
    }

    /// A strong read, asked for explicitly: linearizable (read index on the leader).
    pub async fn get_linearizable(&self, n: u64) -> Result<Option<Bytes>> {
        let entry = self
            .client
            .get(key![Self::KEY_PREFIX, n])
            .consistency(Consistency::Strong)
            .await?;
        Ok(entry
            .and_then(|e| e.value)
            .and_then(|v| v.as_bytes().map(Bytes::copy_from_slice)))
    }

    pub async fn put(&self, n: u64, value: Bytes, expire_at_ms: Option<u64>) -> Result<()> {
        let mut set = self.client.set(key![Self::KEY_PREFIX, n], Value::Bytes(value.to_vec()));
        if let Some(at) = expire_at_ms {
            set = set.expire_at(UNIX_EPOCH + Duration::from_millis(at));
        }
        set.await?;
        Ok(())
    }

    pub async fn scan(&self, start: u64, count: usize) -> Result<usize> {
        let entries: Vec<_> = self
            .client
            .list(Selector::range(
                key![Self::KEY_PREFIX, start],
                key![Self::KEY_PREFIX, u64::MAX],
            ))
            .limit(count)
            .batch_size(count)
            .stream()
            .try_collect()
            .await?;
        Ok(entries.len())
    }

    pub async fn cas_increment(&self, n: u64) -> Result<CasOutcome> {
        let k = key!["cas", n];
        let current = self.client.get(k.clone()).await?;
        let stamp = current.as_ref().map(|e| e.versionstamp);
        let value = counter_value(
            current
                .as_ref()
                .and_then(|e| e.value.as_ref())
                .and_then(Value::as_bytes),
        );
        let result = self
            .client
            .atomic()
            .check(k.clone(), stamp)
            .set(k, Value::Bytes((value + 1).to_le_bytes().to_vec()))
            .commit()
            .await?;
        Ok(if result.ok {
            CasOutcome::Applied
        } else {
            CasOutcome::Conflict
        })
    }
}
