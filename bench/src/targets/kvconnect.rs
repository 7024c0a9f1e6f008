//! A KV Connect client: the protocol the Deno CLI speaks, used here for both denokv and
//! edgekv's own KV Connect listener so the two are measured through identical code. Like
//! the Deno CLI it uses HTTP/2 with prior knowledge over one multiplexed connection.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use denokv_proto::datapath as pb;
use edgekv_proto::key;
use serde::Deserialize;

use super::{CasOutcome, counter_value};

#[derive(Clone)]
pub struct KvConnectTarget {
    http: reqwest::Client,
    /// Base URL of the strong endpoint (`.../snapshot_read` and `.../atomic_write`).
    endpoint: String,
    token: String,
    database_id: String,
    version: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    version: u32,
    database_id: String,
    endpoints: Vec<Endpoint>,
    token: String,
}

#[derive(Deserialize)]
struct Endpoint {
    url: String,
    consistency: String,
}

fn bench_key(n: u64) -> Vec<u8> {
    key!["bench", n].encode()
}

impl KvConnectTarget {
    /// Performs the metadata exchange at `url` with `access_token`.
    pub async fn connect(url: &str, access_token: &str) -> Result<Self> {
        let http = reqwest::Client::builder().http2_prior_knowledge().build()?;
        let response = http
            .post(url)
            .bearer_auth(access_token)
            .header("content-type", "application/json")
            .body(r#"{"supportedVersions":[2,3]}"#)
            .send()
            .await
            .context("KV Connect metadata exchange")?;
        if !response.status().is_success() {
            bail!(
                "metadata exchange failed: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        let metadata: Metadata = serde_json::from_slice(&response.bytes().await?).context("metadata JSON")?;
        let strong = metadata
            .endpoints
            .iter()
            .find(|e| e.consistency == "strong")
            .context("no strong endpoint in the metadata")?;
        let base = reqwest::Url::parse(url)?;
        let endpoint = base.join(&strong.url)?.to_string().trim_end_matches('/').to_string();
        Ok(Self {
            http,
            endpoint,
            token: metadata.token,
            database_id: metadata.database_id,
            version: metadata.version,
        })
    }

    async fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        path: &str,
        request: Req,
    ) -> Result<Resp> {
        let response = self
            .http
            .post(format!("{}/{path}", self.endpoint))
            .bearer_auth(&self.token)
            .header("content-type", "application/x-protobuf")
            .header("x-denokv-version", self.version.to_string())
            .header("x-denokv-database-id", &self.database_id)
            .body(request.encode_to_vec())
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!("{path}: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok(Resp::decode(body)?)
    }

    async fn read_one(&self, key: Vec<u8>) -> Result<Option<pb::KvEntry>> {
        let mut end = key.clone();
        end.push(0);
        let request = pb::SnapshotRead {
            ranges: vec![pb::ReadRange {
                start: key,
                end,
                limit: 1,
                reverse: false,
            }],
        };
        let output: pb::SnapshotReadOutput = self.call("snapshot_read", request).await?;
        Ok(output
            .ranges
            .into_iter()
            .next()
            .and_then(|r| r.values.into_iter().next()))
    }

    async fn write(&self, write: pb::AtomicWrite) -> Result<bool> {
        let output: pb::AtomicWriteOutput = self.call("atomic_write", write).await?;
        match pb::AtomicWriteStatus::try_from(output.status) {
            Ok(pb::AtomicWriteStatus::AwSuccess) => Ok(true),
            Ok(pb::AtomicWriteStatus::AwCheckFailure) => Ok(false),
            other => bail!("atomic_write status {other:?}"),
        }
    }

    pub async fn get(&self, n: u64) -> Result<Option<Bytes>> {
        Ok(self.read_one(bench_key(n)).await?.map(|e| Bytes::from(e.value)))
    }

    pub async fn put(&self, n: u64, value: Bytes, expire_at_ms: Option<u64>) -> Result<()> {
        let expire_at_ms = expire_at_ms.map_or(0, |at| at as i64);
        let mutation = pb::Mutation {
            key: bench_key(n),
            value: Some(pb::KvValue {
                data: value.to_vec(),
                encoding: pb::ValueEncoding::VeBytes as i32,
            }),
            mutation_type: pb::MutationType::MSet as i32,
            expire_at_ms,
            ..Default::default()
        };
        self.write(pb::AtomicWrite {
            mutations: vec![mutation],
            ..Default::default()
        })
        .await?;
        Ok(())
    }

    pub async fn scan(&self, start: u64, count: usize) -> Result<usize> {
        let request = pb::SnapshotRead {
            ranges: vec![pb::ReadRange {
                start: bench_key(start),
                end: key!["bench", u64::MAX].encode(),
                limit: count as i32,
                reverse: false,
            }],
        };
        let output: pb::SnapshotReadOutput = self.call("snapshot_read", request).await?;
        Ok(output.ranges.first().map_or(0, |r| r.values.len()))
    }

    pub async fn cas_increment(&self, n: u64) -> Result<CasOutcome> {
        let k = key!["cas", n].encode();
        let current = self.read_one(k.clone()).await?;
        let value = counter_value(current.as_ref().map(|e| e.value.as_slice()));
        let check = pb::Check {
            key: k.clone(),
            versionstamp: current.map(|e| e.versionstamp).unwrap_or_default(),
        };
        let mutation = pb::Mutation {
            key: k,
            value: Some(pb::KvValue {
                data: (value + 1).to_le_bytes().to_vec(),
                encoding: pb::ValueEncoding::VeBytes as i32,
            }),
            mutation_type: pb::MutationType::MSet as i32,
            ..Default::default()
        };
        let applied = self
            .write(pb::AtomicWrite {
                checks: vec![check],
                mutations: vec![mutation],
                enqueues: vec![],
            })
            .await?;
        Ok(if applied {
            CasOutcome::Applied
        } else {
            CasOutcome::Conflict
        })
    }
}
