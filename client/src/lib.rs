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
//! With a cluster, give the client nodes and its own region ([`Client::builder`]): eventual
//! reads stay in the region, writes and strong reads go straight to the Raft leader once a
//! node names it ([`routing`]).
//!
//! Reads are retried on other nodes when a node is unreachable. Every commit carries a
//! request id of its own, and a strong write whose outcome is unknown (a lost answer, no
//! leader, a commit not confirmed in time) is sent again under that id until a definite
//! answer or its deadline ([`ClientBuilder::write_deadline`], [`Atomic::deadline`]): the
//! cluster applies it at most once. A write still unknown at its deadline, or a cache-class
//! write of unknown outcome (not deduplicated yet), is indefinite ([`Error::is_indefinite`])
//! and the caller decides. `MIXED_CLASSES` for keys of one class whose class changed on the
//! way is re-routed once, by rules fresh from the leader.

pub mod atomic;
pub mod error;
mod keyspace;
pub mod list;
mod routing;
pub mod value;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use edgekv_proto::v1 as pb;
use edgekv_proto::v1::admin_client::AdminClient;
use edgekv_proto::v1::kv_client::KvClient;
pub use edgekv_proto::{ErrorCode, Key, KeyPart, Versionstamp, key, key::IntoKeyPart};
use tonic::transport::Channel;

use crate::routing::{Dialer, Node, Route, Router};

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

const READ_BACKOFF: Duration = Duration::from_millis(50);
/// How long a write is sent again after answers that leave its outcome unknown, unless
/// the builder or the call says otherwise.
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(30);
/// gRPC messages up to the server's request limit, plus room for answers.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A connection to an edgekv node or cluster. Clones share the connections.
#[derive(Clone)]
pub struct Client {
    router: Arc<Router>,
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    keyspace: Arc<crate::keyspace::KeyspaceCache>,
    write_deadline: Duration,
}

/// Builds a [`Client`] for a cluster: its nodes, the client's own region, a token.
#[derive(Clone, Debug, Default)]
pub struct ClientBuilder {
    nodes: Vec<(Option<String>, String)>,
    region: Option<String>,
    token: Option<String>,
    stay_local: bool,
    ca_certificate: Option<Vec<u8>>,
    write_deadline: Option<Duration>,
}

impl ClientBuilder {
    /// A node, e.g. `http://10.0.0.1:7070`, in an unknown region.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.nodes.push((None, url.into()));
        self
    }

    /// A node and the region it runs in.
    pub fn region_endpoint(mut self, region: impl Into<String>, url: impl Into<String>) -> Self {
        self.nodes.push((Some(region.into()), url.into()));
        self
    }

    /// The client's own region: eventual reads go to its nodes first.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sent as a bearer token with every request.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Trusts the CA whose certificate (PEM) this is for `https://` endpoints: the cluster's
    /// `ca.crt` (made by `edgekv cert create-ca`). Without it, `https://` endpoints are
    /// checked against the system's trusted roots.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// How long a write is sent again (under its request id, so it applies once) after an
    /// answer that leaves its outcome unknown: a lost connection, no leader, a commit not
    /// confirmed in time. [`DEFAULT_WRITE_DEADLINE`] unless given; `Atomic::deadline`
    /// overrides it for one write.
    pub fn write_deadline(mut self, deadline: Duration) -> Self {
        self.write_deadline = Some(deadline);
        self
    }

    /// Sends every request to the given nodes only, never straight to the leader they
    /// name (for a client that can reach only its local nodes).
    pub fn stay_local(mut self, stay_local: bool) -> Self {
        self.stay_local = stay_local;
        self
    }

    /// Connects to the nearest node that answers (the client's region first, then the
    /// others in the order given; failing if none can be reached); the others connect
    /// when first used.
    pub async fn connect(self) -> Result<Client> {
        if self.nodes.is_empty() {
            return Err(Error::Endpoint {
                endpoint: String::new(),
                reason: "no endpoint given".into(),
            });
        }
        let dialer = Dialer::new(self.ca_certificate.as_deref());
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for (region, url) in self.nodes {
            let channel = dialer.endpoint(&url)?.connect_lazy();
            nodes.push(Node { url, region, channel });
        }
        let router = Router::new(nodes, self.region.as_deref(), !self.stay_local, dialer.clone());
        // The nearest node that answers: a region whose nodes are down fails over to the
        // next one given.
        let first = router.pick(Route::Local, 0);
        let mut reached = false;
        let mut failures = Vec::new();
        for attempt in 0..router.attempts() {
            let node = router.pick(Route::Local, attempt);
            match dialer.endpoint(&node.url)?.connect().await {
                Ok(_) => {
                    reached = true;
                    break;
                }
                Err(e) => failures.push(format!("{}: {}", node.url, crate::error::chain(&e))),
            }
        }
        if !reached {
            return Err(Error::Unavailable(format!("cannot connect to {}", failures.join("; "))));
        }
        let authorization = self
            .token
            .map(|t| {
                format!("Bearer {t}").parse().map_err(|_| Error::Endpoint {
                    endpoint: first.url.clone(),
                    reason: "the token must be printable ASCII".into(),
                })
            })
            .transpose()?;
        Ok(Client {
            router: Arc::new(router),
            authorization,
            keyspace: Arc::default(),
            write_deadline: self.write_deadline.unwrap_or(DEFAULT_WRITE_DEADLINE),
        })
    }
}

impl Client {
    /// Connects to one node (e.g. `http://127.0.0.1:7070`); in a cluster, writes then move
    /// to the leader that node names.
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self> {
        Self::connect_with_token(endpoint, None).await
    }

    /// Connects and sends `token` as a bearer token with every request.
    pub async fn connect_with_token(endpoint: impl Into<String>, token: Option<String>) -> Result<Self> {
        let mut builder = Self::builder().endpoint(endpoint);
        if let Some(token) = token {
            builder = builder.token(token);
        }
        builder.connect().await
    }

    /// A client for several nodes: `Client::builder().region("eu-west")
    /// .region_endpoint("eu-west", url).region_endpoint("us-east", url2).connect()`.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The leader this client sends writes to, once a node has named it.
    pub fn leader(&self) -> Option<String> {
        self.router.leader_url()
    }

    pub(crate) fn kv(&self, node: &Node) -> KvClient<Channel> {
        KvClient::new(node.channel.clone())
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

    /// Which keys are cache keys, as the nearest node last said. Only a client that can
    /// choose between the leader and its own region asks.
    pub(crate) async fn keyspace_rules(&self) -> Arc<crate::keyspace::Rules> {
        if !self.router.follows_leader() {
            return Arc::default();
        }
        self.keyspace.rules(|| self.ask_keyspace_rules(Route::Local)).await
    }

    /// The rules asked now of the leader (the nearest node while none is known), whether or
    /// not this client routes by them: after a node said a write's keys changed class on
    /// the way. The leader applied the rule that refused the write; the node that routed
    /// it may still have the old one.
    pub(crate) async fn refetch_keyspace_rules(&self) -> Arc<crate::keyspace::Rules> {
        self.keyspace.refetch(|| self.ask_keyspace_rules(Route::Leader)).await
    }

    async fn ask_keyspace_rules(&self, route: Route) -> std::result::Result<pb::KeyspaceResponse, tonic::Status> {
        let mut admin = AdminClient::new(self.router.pick(route, 0).channel);
        Ok(admin
            .list_keyspace(self.request(pb::ListKeyspaceRequest {}))
            .await?
            .into_inner())
    }

    /// The route of a request on `keys`: its own region when they are all cache keys
    /// (which have no leader), else what `strong` says.
    pub(crate) async fn route_for(&self, keys: &[&[u8]], strong: bool) -> Route {
        if !strong || keys.is_empty() {
            return if strong { Route::Leader } else { Route::Local };
        }
        let rules = self.keyspace_rules().await;
        if keys.iter().all(|key| crate::keyspace::is_cache(&rules, key)) {
            Route::Local
        } else {
            Route::Leader
        }
    }

    /// Runs an idempotent read on `route`, moving on to the next node while one is
    /// unreachable (own region first, then the others in the order given).
    pub(crate) async fn read<T, F, Fut>(&self, route: Route, mut call: F) -> Result<T>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        // One more try than nodes: the first may be a remembered leader.
        let attempts = self.router.attempts() + 1;
        let mut attempt = 0;
        loop {
            let node = self.router.pick(route, attempt);
            match call(self.kv(&node)).await {
                Ok(response) => {
                    self.router.observe(response.metadata());
                    return Ok(response.into_inner());
                }
                Err(status) => {
                    let error = Error::from_status(status, false);
                    if !matches!(error, Error::Unavailable(_)) && error.code() != Some(ErrorCode::Unavailable) {
                        return Err(error);
                    }
                    self.router.leader_failed(&node);
                    attempt += 1;
                    if attempt >= attempts {
                        return Err(error);
                    }
                    tokio::time::sleep(READ_BACKOFF * attempt as u32).await;
                }
            }
        }
    }

    /// Sends a write once on `route` (the leader when known, or the own region for cache
    /// keys): a lost answer is indefinite, which [`Atomic::commit`] may send again under
    /// the write's request id. Only a refusal to connect (nothing sent) moves on to the next
    /// node here.
    pub(crate) async fn write<T, F, Fut>(&self, route: Route, mut call: F) -> Result<T>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let attempts = self.router.attempts() + 1;
        let mut attempt = 0;
        loop {
            let node = self.router.pick(route, attempt);
            match call(self.kv(&node)).await {
                Ok(response) => {
                    self.router.observe(response.metadata());
                    return Ok(response.into_inner());
                }
                Err(status) => {
                    // A refusal may name the leader (the one to send a re-routed write to).
                    self.router.observe(status.metadata());
                    let not_sent = error::is_connect_refusal(&status);
                    let error = Error::from_status(status, true);
                    if not_sent {
                        self.router.leader_failed(&node);
                        attempt += 1;
                        if attempt < attempts {
                            continue;
                        }
                        return Err(Error::Unavailable(error.to_string()));
                    }
                    if error.is_indefinite() {
                        // The next write should not bet on the same node.
                        self.router.leader_failed(&node);
                    }
                    return Err(error);
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
        let slices: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let route = self.route_for(&slices, consistency == Consistency::Strong).await;
        let response = self
            .read(route, |mut kv| {
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

    /// The members of the set at `key` (a cache key written with `sadd`), sorted; empty
    /// when the key is absent.
    pub async fn members(&self, key: impl Into<Key>) -> Result<Vec<String>> {
        let key = key.into();
        let Some(entry) = self.get(key.clone()).consistency(Consistency::Eventual).await? else {
            return Ok(Vec::new());
        };
        match entry.value {
            Some(Value::Json(serde_json::Value::Array(members))) => members
                .into_iter()
                .map(|m| match m {
                    serde_json::Value::String(s) => Ok(s),
                    other => Err(Error::Protocol(format!("set member {other} is not a string"))),
                })
                .collect(),
            other => Err(Error::Protocol(format!("{key} is not a set: it holds {other:?}"))),
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

    /// The nearest node's own report: id, region, version, data size, key count.
    pub async fn status(&self) -> Result<pb::StatusResponse> {
        let request = self.request(pb::StatusRequest {});
        self.admin(|mut admin| async move { admin.status(request).await }).await
    }

    /// An admin call to the nearest node.
    async fn admin<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnOnce(AdminClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let admin = AdminClient::new(self.router.pick(Route::Local, 0).channel);
        let response = call(admin).await.map_err(|s| Error::from_status(s, false))?;
        Ok(response.into_inner())
    }
}

impl Client {
    /// The Raft cluster as the nearest node sees it: members, leader, term, indexes.
    pub async fn cluster_status(&self) -> Result<pb::ClusterStatusResponse> {
        let request = self.request(pb::ClusterStatusRequest {});
        self.admin(|mut admin| async move { admin.cluster_status(request).await })
            .await
    }
}

fn committed(result: CommitResult) -> Result<Versionstamp> {
    result
        .versionstamp
        .ok_or_else(|| Error::Protocol("a write without checks was refused".into()))
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
            let consistency = self.consistency;
            let client = &self.client;
            let route = client.route_for(&[&key], consistency == Consistency::Strong).await;
            let response = client
                .read(route, |mut kv| {
                    let request = client.request(pb::GetRequest {
                        key: key.clone(),
                        consistency: consistency.to_wire(),
                    });
                    async move { kv.get(request).await }
                })
                .await?;
            let served_by = ServedBy::from_wire(response.read);
            // A node older than Entry.class said it here only.
            let class = Some(response.class).filter(|c| !c.is_empty());
            let entry = response.entry.map(|e| Entry::from_wire(e, served_by)).transpose()?;
            Ok(entry.map(|entry| Entry { class, ..entry }))
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
