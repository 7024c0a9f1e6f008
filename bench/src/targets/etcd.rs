//! etcd v3 through `etcd-client` (gRPC, like edgekv's SDK). Reads are serializable
//! (served by the member without a quorum round), the fair match for edgekv's local
//! reads, except [`EtcdTarget::get_linearizable`]: etcd's default Get, linearizable
//! (read index through the leader), the match for edgekv's strong reads. Writes are
//! etcd's normal durable, quorum-committed puts.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};

use super::{CasOutcome, counter_value};

#[derive(Clone)]
pub struct EtcdTarget {
    client: std::sync::Arc<Client>,
}

fn key(n: u64) -> String {
    format!("bench/{n:020}")
}

impl EtcdTarget {
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        Ok(Self {
            client: std::sync::Arc::new(Client::connect(endpoints, None).await.context("connect to etcd")?),
        })
    }

    pub async fn get(&self, n: u64) -> Result<Option<Bytes>> {
        let mut kv = self.client.kv_client();
        let response = kv.get(key(n), Some(GetOptions::new().with_serializable())).await?;
        Ok(response.kvs().first().map(|kv| Bytes::copy_from_slice(kv.value())))
    }

    /// etcd's default Get: linearizable.
    pub async fn get_linearizable(&self, n: u64) -> Result<Option<Bytes>> {
        let response = self.client.kv_client().get(key(n), None).await?;
        Ok(response.kvs().first().map(|kv| Bytes::copy_from_slice(kv.value())))
    }

    pub async fn put(&self, n: u64, value: Bytes, expire_at_ms: Option<u64>) -> Result<()> {
        let mut options = None;
        if let Some(at) = expire_at_ms {
            // etcd expiry is a lease of whole seconds (at least 1), counted from the grant.
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
            let seconds = at.saturating_sub(now).div_ceil(1000).max(1) as i64;
            let lease = self.client.lease_client().grant(seconds, None).await?;
            options = Some(PutOptions::new().with_lease(lease.id()));
        }
        self.client.kv_client().put(key(n), value.to_vec(), options).await?;
        Ok(())
    }

    pub async fn scan(&self, start: u64, count: usize) -> Result<usize> {
        let options = GetOptions::new()
            .with_range(key(u64::MAX))
            .with_limit(count as i64)
            .with_serializable();
        let response = self.client.kv_client().get(key(start), Some(options)).await?;
        Ok(response.kvs().len())
    }

    pub async fn cas_increment(&self, n: u64) -> Result<CasOutcome> {
        let k = format!("cas/{n:020}");
        let mut kv = self.client.kv_client();
        let current = kv.get(k.clone(), None).await?;
        let (revision, value) = match current.kvs().first() {
            Some(entry) => (entry.mod_revision(), counter_value(Some(entry.value()))),
            None => (0, 0),
        };
        let txn = Txn::new()
            .when([Compare::mod_revision(k.clone(), CompareOp::Equal, revision)])
            .and_then([TxnOp::put(k, (value + 1).to_le_bytes().to_vec(), None)]);
        let response = kv.txn(txn).await?;
        Ok(if response.succeeded() {
            CasOutcome::Applied
        } else {
            CasOutcome::Conflict
        })
    }
}
