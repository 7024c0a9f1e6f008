//! The edgekv SDK: a key-value client that feels like Deno KV and Workers KV.
//!
//! ```no_run
//! # async fn demo() -> edgekv_client::Result<()> {
//! use edgekv_client::{Client, key};
//! use std::time::Duration;
//!
//! let kv = Client::connect("http://127.0.0.1:7070").await?;
//! kv.set(key!["users", 42], "Ada").expire_in(Duration::from_secs(300)).await?;
//! let entry = kv.get(key!["users", 42]).await?;
//! let result = kv.atomic().sum(key!["visits"], 1).commit().await?;
//! # Ok(()) }
//! ```
//!
//! - [`Client`]: connect (cheap to clone), get, get_many, set, delete, list, atomic.
//! - [`atomic`]: the check-and-mutate builder.
//! - [`list`]: range reads as an async stream that pages with the server's cursor.
//! - [`value`]: typed values and entries.
//! - [`error`]: errors with stable codes that say whether a retry is safe.
//!
//! Reads are retried a few times when the node is unreachable. Writes are never retried:
//! if an answer is lost the error is [`Error::Indefinite`], and the caller decides.

pub mod atomic;
pub mod error;
pub mod list;
pub mod value;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use edgekv_proto::v1 as pb;
use edgekv_proto::v1::admin_client::AdminClient;
use edgekv_proto::v1::kv_client::KvClient;
pub use edgekv_proto::{ErrorCode, Key, KeyPart, Versionstamp, key, key::IntoKeyPart};
use tonic::transport::{Channel, Endpoint};

pub use crate::atomic::{Atomic, CommitResult, SetOptions};
pub use crate::error::{Error, Result};
pub use crate::list::{List, Selector};
pub use crate::value::{Entry, ServedBy, Value};

/// The wire types, for callers that need them (for instance the admin status).
pub use edgekv_proto::v1 as proto;

/// Read guarantee, as in Deno KV.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read (the default).
    #[default]
    Strong,
    /// May be served by a nearby replica that lags a little.
    Eventual,
}

impl Consistency {
    fn to_wire(self) -> i32 {
        match self {
            Consistency::Strong => pb::Consistency::Strong as i32,
            Consistency::Eventual => pb::Consistency::Eventual as i32,
        }
    }
}

/// Attempts for a read whose node is unreachable (reads are idempotent).
const READ_ATTEMPTS: u32 = 3;
const READ_BACKOFF: Duration = Duration::from_millis(50);
/// gRPC messages up to the server's request limit, plus room for answers.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A connection to an edgekv node. Clones share the connection.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Client {
    /// Connects to `endpoint` (e.g. `http://127.0.0.1:7070`).
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self> {
        Self::connect_with_token(endpoint, None).await
    }

    /// Connects and sends `token` as a bearer token with every request.
    pub async fn connect_with_token(endpoint: impl Into<String>, token: Option<String>) -> Result<Self> {
        let endpoint = endpoint.into();
        let invalid = |reason: String| Error::Endpoint {
            endpoint: endpoint.clone(),
            reason,
        };
        let target = Endpoint::from_shared(endpoint.clone())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = target
            .connect()
            .await
            .map_err(|e| Error::Unavailable(format!("cannot connect to {endpoint}: {}", error_chain(&e))))?;
        let authorization = token
            .map(|t| {
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| invalid("the token must be printable ASCII".into()))
            })
            .transpose()?;
        Ok(Self { channel, authorization })
    }

    pub(crate) fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(authorization) = &self.authorization {
            request.metadata_mut().insert("authorization", authorization.clone());
        }
        request
    }

    /// Runs an idempotent read, retrying while the node is unreachable.
    pub(crate) async fn read<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut attempt = 1;
        loop {
            match call(self.kv()).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => {
                    let error = Error::from_status(status, false);
                    if attempt >= READ_ATTEMPTS || !matches!(error, Error::Unavailable(_)) {
                        return Err(error);
                    }
                    tokio::time::sleep(READ_BACKOFF * attempt).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Reads one key: `client.get(key).await?`, or `.consistency(Consistency::Eventual)`.
    pub fn get(&self, key: impl Into<Key>) -> Get {
        Get {
            client: self.clone(),
            key: key.into(),
            consistency: Consistency::Strong,
        }
    }

    /// Reads many keys from one snapshot; one slot per key, in order.
    pub async fn get_many<K: Into<Key>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        consistency: Consistency,
    ) -> Result<Vec<Option<Entry>>> {
        let keys: Vec<Vec<u8>> = keys.into_iter().map(|k| k.into().encode()).collect();
        let response = self
            .read(|mut kv| {
                let request = self.request(pb::GetManyRequest {
                    keys: keys.clone(),
                    consistency: consistency.to_wire(),
                });
                async move { kv.get_many(request).await }
            })
            .await?;
        let served_by = ServedBy::from_wire(response.read);
        response
            .entries
            .into_iter()
            .map(|slot| slot.entry.map(|e| Entry::from_wire(e, served_by.clone())).transpose())
            .collect()
    }

    /// Sets a key: `client.set(key, value).expire_in(d).metadata(json).await?` returns the
    /// versionstamp of the write.
    pub fn set(&self, key: impl Into<Key>, value: impl Into<Value>) -> Set {
        Set {
            client: self.clone(),
            key: key.into(),
            value: value.into(),
            options: SetOptions::default(),
        }
    }

    /// Deletes a key (deleting an absent key succeeds).
    pub async fn delete(&self, key: impl Into<Key>) -> Result<Versionstamp> {
        committed(self.atomic().delete(key).commit().await?)
    }

    /// Starts an atomic write.
    pub fn atomic(&self) -> Atomic {
        Atomic::new(self.clone())
    }

    /// Lists a range: `client.list(Selector::prefix(key)).limit(10).stream()`.
    pub fn list(&self, selector: Selector) -> List {
        List::new(self.clone(), selector)
    }

    /// The node's own report: id, region, version, data size, key count.
    pub async fn status(&self) -> Result<pb::StatusResponse> {
        let mut admin = AdminClient::new(self.channel.clone());
        let response = admin
            .status(self.request(pb::StatusRequest {}))
            .await
            .map_err(|s| Error::from_status(s, false))?;
        Ok(response.into_inner())
    }
}

fn committed(result: CommitResult) -> Result<Versionstamp> {
    result
        .versionstamp
        .ok_or_else(|| Error::Protocol("a write without checks was refused".into()))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A pending get; await it.
#[must_use = "a get does nothing until awaited"]
pub struct Get {
    client: Client,
    key: Key,
    consistency: Consistency,
}

impl Get {
    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }
}

impl IntoFuture for Get {
    type Output = Result<Option<Entry>>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let key = self.key.encode();
            let consistency = self.consistency.to_wire();
            let client = &self.client;
            let response = client
                .read(|mut kv| {
                    let request = client.request(pb::GetRequest {
                        key: key.clone(),
                        consistency,
                    });
                    async move { kv.get(request).await }
                })
                .await?;
            let served_by = ServedBy::from_wire(response.read);
            response.entry.map(|e| Entry::from_wire(e, served_by)).transpose()
        })
    }
}

/// A pending set; add options, then await it.
#[must_use = "a set does nothing until awaited"]
pub struct Set {
    client: Client,
    key: Key,
    value: Value,
    options: SetOptions,
}

impl Set {
    /// Expires the value this long after the write.
    pub fn expire_in(mut self, ttl: Duration) -> Self {
        self.options.expire_in = Some(ttl);
        self
    }

    /// Expires the value at this time.
    pub fn expire_at(mut self, at: std::time::SystemTime) -> Self {
        self.options.expire_at = Some(at);
        self
    }

    /// Attaches JSON metadata (at most 1 KiB), returned with every read of the key.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.options.metadata = Some(metadata);
        self
    }

    pub fn options(mut self, options: SetOptions) -> Self {
        self.options = options;
        self
    }
}

impl IntoFuture for Set {
    type Output = Result<Versionstamp>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            committed(
                self.client
                    .atomic()
                    .set_with(self.key, self.value, self.options)
                    .commit()
                    .await?,
            )
        })
    }
}
