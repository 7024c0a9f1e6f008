//! The key-value domain: get, get-many, list and atomic writes with the semantics every
//! front-end shares (Deno KV's, plus TTL that is never served stale).
//!
//! [`KvStore`] is the one entry point. Reads go to the local engine and filter out expired
//! values; a strong read first waits for the Raft read index, an eventual one reports how
//! stale it may be. Writes are validated here and replicated through Raft; every replica
//! applies them with [`apply`] (the state machine's domain half).
//!
//! Each key's class (the keyspace rules) picks its path. Strong keys live in the `data`
//! family and change only through Raft. Cache keys live in the replication store: read
//! locally whatever consistency was asked (they have no linearizable reads), written by
//! merging locally and shipping to peers. A read over a range merges both families, each
//! key taken only from its own class's family, so a class change never mixes semantics.

pub mod access;
mod apply;
pub mod error;
pub mod range;
pub mod requests;
pub mod types;
pub mod v8_sum;
pub mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use edgekv_proto::key::display_encoded as display_key;
use edgekv_proto::keyspace::class_of;
use edgekv_proto::limits::MAX_GET_MANY_KEYS;
use edgekv_proto::{ErrorCode, Versionstamp};
use tokio::sync::broadcast;

pub use self::apply::ChangedKeys;
use self::apply::{Answer, CommandRef, KvApplier};
pub use self::error::{KvError, KvResult};
pub use self::types::*;
use crate::cache::store::CacheError;
use crate::cache::{CacheOp, CacheStore};
use crate::clock::Clock;
use crate::crdt::values::Payload;
use crate::keyspace::{Class, Keyspace, Rules};
use crate::raft::{Applier, RaftNode};
use crate::storage::codec::Envelope;
use crate::storage::{ColumnFamily, Durability, Engine, ScanRange, Snapshot};
use crate::ttl::DueExpiry;

/// Change notices kept for slow watchers; one that falls further behind re-reads all its
/// keys instead (see [`KvStore::subscribe`]).
const CHANGE_BACKLOG: usize = 1024;
/// How often one write refused because its keys changed class on the way is routed again
/// (each time after this node caught up with the rule): more than one change of the same
/// keys within one round trip is not a race worth more tries.
const CLASS_CHANGE_REROUTES: usize = 3;
/// Meta column family key holding this database's id (a UUID, created on first start).
const DATABASE_ID_KEY: &[u8] = b"database_id";

#[derive(Clone)]
pub struct KvStore {
    engine: Arc<dyn Engine>,
    clock: Arc<dyn Clock>,
    raft: Arc<RaftNode>,
    last_commit: Arc<AtomicU64>,
    changes: broadcast::Sender<ChangedKeys>,
    database_id: uuid::Uuid,
    keyspace: Arc<Keyspace>,
    cache: Arc<CacheStore>,
}

/// A [`KvStore`] in the making: it holds the domain's half of the Raft state machine (the
/// applier), which the Raft member needs before it starts, and becomes the store once the
/// member runs. (The Raft side of the state machine is `raft::StateMachineStore`.)
pub struct KvStoreBuilder {
    engine: Arc<dyn Engine>,
    clock: Arc<dyn Clock>,
    applier: Arc<KvApplier>,
    last_commit: Arc<AtomicU64>,
    changes: broadcast::Sender<ChangedKeys>,
    database_id: uuid::Uuid,
    keyspace: Arc<Keyspace>,
}

impl KvStoreBuilder {
    pub fn new(engine: Arc<dyn Engine>, clock: Arc<dyn Clock>) -> KvResult<Self> {
        let database_id = database_id(engine.as_ref())?;
        let keyspace = Arc::new(Keyspace::load(engine.as_ref())?);
        let (changes, _) = broadcast::channel(CHANGE_BACKLOG);
        let last_commit = Arc::new(AtomicU64::new(0));
        let applier = Arc::new(KvApplier::new(
            engine.clone(),
            changes.clone(),
            last_commit.clone(),
            keyspace.clone(),
        ));
        Ok(Self {
            engine,
            clock,
            applier,
            last_commit,
            changes,
            database_id,
            keyspace,
        })
    }

    /// The class rules, kept current by the applier.
    pub fn keyspace(&self) -> Arc<Keyspace> {
        self.keyspace.clone()
    }

    /// Where change notices go (cache writes and merges publish there too).
    pub fn changes(&self) -> broadcast::Sender<ChangedKeys> {
        self.changes.clone()
    }

    pub fn applier(&self) -> Arc<dyn Applier> {
        self.applier.clone()
    }

    pub fn into_store(self, raft: Arc<RaftNode>, cache: Arc<CacheStore>) -> KvStore {
        // Until this run commits, the latest versionstamp is at most the applied index.
        self.last_commit.fetch_max(raft.applied_index(), Ordering::SeqCst);
        KvStore {
            engine: self.engine,
            clock: self.clock,
            raft,
            last_commit: self.last_commit,
            changes: self.changes,
            database_id: self.database_id,
            keyspace: self.keyspace,
            cache,
        }
    }
}

impl KvStore {
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The versionstamp of the latest commit this node applied, if any (an upper bound
    /// after a restart, until the next commit).
    pub fn last_versionstamp(&self) -> Option<Versionstamp> {
        match self.last_commit.load(Ordering::SeqCst) {
            0 => None,
            commit => Some(Versionstamp::new(commit, 0)),
        }
    }

    /// This database's id: stable across restarts, the `databaseId` of KV Connect.
    pub fn database_id(&self) -> uuid::Uuid {
        self.database_id
    }

    /// The durable change feed: up to `limit` records after log index `after`, oldest first,
    /// each the keys one applied batch changed. Node-local; kept for the last
    /// [`crate::raft::CHANGE_FEED_RETENTION`] log entries and restarted by a snapshot install.
    pub fn changes_since(&self, after: u64, limit: usize) -> KvResult<Vec<(u64, Vec<Vec<u8>>)>> {
        Ok(crate::raft::changes_since(self.engine.as_ref(), after, limit)?)
    }

    /// Notices of the keys each commit changed, from now on. A receiver that lags behind
    /// gets `RecvError::Lagged` and must assume every key changed.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangedKeys> {
        self.changes.subscribe()
    }

    /// The time reads judge expiry by: this node's clock, or the leader's as replicated if
    /// that is ahead, so a node whose clock runs slow never serves a value the cluster has
    /// already expired.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms().max(self.raft.replicated_now_ms())
    }

    pub fn raft(&self) -> &Arc<RaftNode> {
        &self.raft
    }

    pub fn cache(&self) -> &Arc<CacheStore> {
        &self.cache
    }

    pub fn class_of(&self, key: &[u8]) -> Class {
        self.keyspace.class_of(key)
    }

    /// The class rules in force on this node.
    pub fn keyspace_rules(&self) -> Vec<(Vec<u8>, Class)> {
        self.keyspace.rules()
    }

    /// Puts keys under `prefix` in `class`, through Raft. Refused while data of the other
    /// class is there: strong data is checked by every replica as the rule is applied;
    /// cache data by this node before proposing (cache data is node-local, and replicas
    /// converge to the same records, so this node's view is the cluster's up to lag).
    pub async fn set_class(&self, prefix: &[u8], class: Class) -> KvResult<()> {
        validate::class_prefix(prefix)?;
        let mut rules: Rules = self.keyspace.rules().into_iter().collect();
        rules.insert(prefix.to_vec(), class);
        if class == Class::Strong {
            let cache = self.cache.clone();
            let owned = prefix.to_vec();
            let live = tokio::task::spawn_blocking(move || cache.live_keys_under(&owned))
                .await
                .map_err(|e| KvError::InvalidArgument(e.to_string()))??;
            if let Some(key) = live.iter().find(|k| class_of(&rules, k) == Class::Strong) {
                return Err(KvError::KeyspaceNotEmpty(format!(
                    "{} holds cache data (for example {}); delete it, or pin its prefix to cache first",
                    apply::prefix_text(prefix),
                    display_key(key)
                )));
            }
        }
        let answer = self
            .raft
            .write(apply::encode(&CommandRef::SetClass { prefix, class }))
            .await?;
        match decode_answer(&answer)? {
            Answer::ClassSet(Ok(())) => {
                // Reads here follow the rule at once (the applier reloads on every node).
                self.raft.read_barrier().await?;
                Ok(())
            }
            Answer::ClassSet(Err(refusal)) => Err(refusal.into_error()),
            other => Err(unexpected(other)),
        }
    }

    /// How a read of cache keys only is served: locally, never linearizable; its
    /// staleness is the replication lag last seen here.
    fn cache_read_info(&self, consistency: Consistency) -> ReadInfo {
        ReadInfo {
            consistency,
            strongly_consistent: false,
            staleness_ms: self.cache.recent_lag_ms(),
        }
    }

    /// Reads strongly if asked and any strong key is involved; otherwise as a cache read.
    async fn prepare_read_of(&self, consistency: Consistency, strong_involved: bool) -> KvResult<ReadInfo> {
        if strong_involved {
            self.prepare_read(consistency).await
        } else {
            Ok(self.cache_read_info(consistency))
        }
    }

    /// The entry of `key` from its own class's family, read with `get` (the engine, or a
    /// snapshot), if live at `now`.
    fn read_in(
        &self,
        get: impl Fn(ColumnFamily, &[u8]) -> crate::storage::StorageResult<Option<Vec<u8>>>,
        key: &[u8],
        now: u64,
    ) -> KvResult<Option<Entry>> {
        match self.keyspace.class_of(key) {
            Class::Strong => self.live(key, get(ColumnFamily::Data, key)?, now),
            Class::Cache => Ok(get(ColumnFamily::Cache, key)?
                .map(|bytes| CacheStore::visible_envelope(key, &bytes, now))
                .transpose()?
                .flatten()
                .map(|envelope| Entry {
                    key: key.to_vec(),
                    envelope,
                })),
        }
    }

    /// Live entries in `range`, in order, from both families: each key from its own
    /// class's family only.
    fn live_entries<'a>(
        &'a self,
        view: &'a dyn Snapshot,
        range: ScanRange,
        reverse: bool,
        now: u64,
        (strong, cache): (bool, bool),
    ) -> impl Iterator<Item = KvResult<Entry>> + 'a {
        let keyspace = self.keyspace.clone();
        let data = strong
            .then(|| view.scan(ColumnFamily::Data, range.clone(), reverse))
            .into_iter()
            .flatten()
            .map(|item| item.map(|(k, v)| (k, v, Class::Strong)));
        let cached = cache
            .then(|| view.scan(ColumnFamily::Cache, range, reverse))
            .into_iter()
            .flatten()
            .map(|item| item.map(|(k, v)| (k, v, Class::Cache)));
        merge_sorted(data, cached, reverse).filter_map(move |item| {
            let (key, bytes, family) = match item {
                Ok(found) => found,
                Err(error) => return Some(Err(KvError::from(error))),
            };
            if keyspace.class_of(&key) != family {
                return None;
            }
            let envelope = match family {
                Class::Strong => Envelope::decode(&bytes).map(|e| e.is_live(now).then_some(e)),
                Class::Cache => CacheStore::visible_envelope(&key, &bytes, now),
            };
            match envelope {
                Ok(Some(envelope)) => Some(Ok(Entry { key, envelope })),
                Ok(None) => None,
                Err(error) => Some(Err(error.into())),
            }
        })
    }

    /// Makes a read strong if asked (waits for the read index) and says what it was
    /// served with.
    async fn prepare_read(&self, consistency: Consistency) -> KvResult<ReadInfo> {
        match consistency {
            Consistency::Strong => {
                self.raft.read_barrier().await?;
                Ok(ReadInfo {
                    consistency,
                    strongly_consistent: true,
                    staleness_ms: 0,
                })
            }
            Consistency::Eventual => {
                let staleness_ms = self.raft.staleness_ms();
                Ok(ReadInfo {
                    consistency,
                    // The sole voter of a cluster is the only place writes are applied
                    // before they are acknowledged, so its local state is the latest.
                    strongly_consistent: self.raft.is_sole_voter(),
                    staleness_ms,
                })
            }
        }
    }

    fn live(&self, key: &[u8], bytes: Option<Vec<u8>>, now: u64) -> KvResult<Option<Entry>> {
        let Some(bytes) = bytes else { return Ok(None) };
        let envelope = Envelope::decode(&bytes)?;
        Ok(envelope.is_live(now).then(|| Entry {
            key: key.to_vec(),
            envelope,
        }))
    }

    pub async fn get(&self, key: &[u8], consistency: Consistency) -> KvResult<(Option<Entry>, ReadInfo)> {
        validate::read_key(key)?;
        let strong = self.keyspace.class_of(key) == Class::Strong;
        let info = self.prepare_read_of(consistency, strong).await?;
        let now = self.now_ms();
        // A point read needs no snapshot.
        let entry = self.read_in(|cf, key| self.engine.get(cf, key), key, now)?;
        Ok((entry, info))
    }

    /// Reads every key from one snapshot; the answer has one slot per key, in order.
    pub async fn get_many(
        &self,
        keys: &[Vec<u8>],
        consistency: Consistency,
    ) -> KvResult<(Vec<Option<Entry>>, ReadInfo)> {
        if keys.len() > MAX_GET_MANY_KEYS {
            return Err(KvError::TooManyKeys {
                count: keys.len(),
                limit: MAX_GET_MANY_KEYS,
            });
        }
        for key in keys {
            validate::read_key(key)?;
        }
        let strong = keys.iter().any(|key| self.keyspace.class_of(key) == Class::Strong);
        let info = self.prepare_read_of(consistency, strong).await?;
        let now = self.now_ms();
        let snapshot = self.engine.snapshot();
        let entries = keys
            .iter()
            .map(|key| self.read_in(|cf, key| snapshot.get(cf, key), key, now))
            .collect::<KvResult<Vec<_>>>()?;
        Ok((entries, info))
    }

    /// One page of a range, from a snapshot. The page holds up to `query.limit` live
    /// entries; the cursor is set only when more may follow.
    pub async fn list(&self, query: &ListQuery, consistency: Consistency) -> KvResult<(ListPage, ReadInfo)> {
        let bounds = range::resolve(&query.selector)?;
        let scan_range = range::after_cursor(&bounds, query.cursor.as_deref(), query.reverse)?;
        let classes = self.keyspace.classes_in(&bounds.start, &bounds.end);
        let info = self.prepare_read_of(consistency, classes.0).await?;
        let now = self.now_ms();
        let snapshot: Box<dyn Snapshot + '_> = self.engine.snapshot();
        let mut entries = Vec::with_capacity(query.limit.min(1024));
        let mut more = false;
        for item in self.live_entries(snapshot.as_ref(), scan_range, query.reverse, now, classes) {
            let mut entry = item?;
            if entries.len() == query.limit {
                more = true;
                break;
            }
            if query.keys_only {
                entry.envelope.value.clear();
            }
            entries.push(entry);
        }
        let cursor = if more {
            entries.last().map(|e| range::encode_cursor(&e.key))
        } else {
            None
        };
        Ok((ListPage { entries, cursor }, info))
    }

    /// Reads several ranges from one snapshot (KV Connect's snapshot_read). An empty or
    /// inverted range reads nothing.
    pub async fn snapshot_read(
        &self,
        ranges: &[RangeRead],
        consistency: Consistency,
    ) -> KvResult<(Vec<Vec<Entry>>, ReadInfo)> {
        for range in ranges {
            validate::range_bound(&range.start)?;
            validate::range_bound(&range.end)?;
        }
        let classes: Vec<(bool, bool)> = ranges
            .iter()
            .map(|r| self.keyspace.classes_in(&r.start, &r.end))
            .collect();
        let info = self.prepare_read_of(consistency, classes.iter().any(|c| c.0)).await?;
        let now = self.now_ms();
        let snapshot = self.engine.snapshot();
        let mut results = Vec::with_capacity(ranges.len());
        for (range, classes) in ranges.iter().zip(classes) {
            let entries = if range.start < range.end {
                let scan = ScanRange::new(range.start.clone(), range.end.clone());
                self.live_entries(snapshot.as_ref(), scan, range.reverse, now, classes)
                    .take(range.limit)
                    .collect::<KvResult<Vec<_>>>()?
            } else {
                Vec::new()
            };
            results.push(entries);
        }
        Ok((results, info))
    }

    pub async fn atomic(&self, write: AtomicWrite) -> KvResult<AtomicOutcome> {
        self.atomic_once(&write, None, false).await
    }

    /// [`Self::atomic`] under a request id: a strong write proposed again with the same id
    /// (by a retrying client, or by this node after a leader change) is applied once and
    /// answered with its first outcome while the id is remembered
    /// ([`requests::REQUEST_WINDOW`]). Cache-class writes do not use the id yet: one marked
    /// `resend` (a copy of a write whose outcome its sender does not know) is refused with
    /// `UNSUPPORTED_FOR_CACHE_CLASS`, writing nothing.
    pub async fn atomic_once(&self, write: &AtomicWrite, id: Option<&[u8]>, resend: bool) -> KvResult<AtomicOutcome> {
        validate::atomic(write)?;
        if let Some(id) = id {
            validate::request_id(id)?;
        }
        let mut reroutes = 0;
        loop {
            match self.route_atomic(write, id, resend).await {
                // The only refusal with this code at apply: a key became a cache key after
                // this node routed the write by its older rules. Nothing was written, so once
                // this node has applied that rule too (the refusal was applied after it, so a
                // read barrier covers it), the write goes the way the rule says.
                Err(KvError::Refused {
                    code: ErrorCode::MixedClasses,
                    ..
                }) if reroutes < CLASS_CHANGE_REROUTES => {
                    reroutes += 1;
                    tracing::info!(reroutes, "a write's keys changed class on its way; routing it again");
                    self.raft.read_barrier().await.map_err(KvError::ClassChangeUnresolved)?;
                }
                outcome => return outcome,
            }
        }
    }

    /// Sends `write` down its class's path, as this node's rules say now.
    async fn route_atomic(&self, write: &AtomicWrite, id: Option<&[u8]>, resend: bool) -> KvResult<AtomicOutcome> {
        if self.class_of_write(write)? == Class::Cache {
            if resend {
                return Err(KvError::UnsupportedForCacheClass(
                    "this is a copy of a cache-class write whose outcome is unknown; cache writes are not \
                     deduplicated by request id yet, so the copy was refused and wrote nothing"
                        .into(),
                ));
            }
            return self.cache_write(write).await;
        }
        let command = match id {
            Some(id) => CommandRef::AtomicOnce { id, write },
            None => CommandRef::Atomic(write),
        };
        let answer = self.raft.write(apply::encode(&command)).await?;
        match decode_answer(&answer)? {
            Answer::Atomic(Ok(outcome)) => Ok(outcome),
            Answer::Atomic(Err(refusal)) => Err(refusal.into_error()),
            other => Err(unexpected(other)),
        }
    }

    /// The one class every key of `write` is in; an atomic write never spans both, since
    /// the two classes cannot commit together.
    fn class_of_write(&self, write: &AtomicWrite) -> KvResult<Class> {
        let mut classes = Vec::new();
        for check in &write.checks {
            classes.push(self.keyspace.class_of(&check.key));
        }
        for mutation in &write.mutations {
            match mutation.target() {
                Target::Key(key) => classes.push(self.keyspace.class_of(key)),
                Target::Range { start, end } => {
                    let (strong, cache) = self.keyspace.classes_in(start, end);
                    classes.extend(strong.then_some(Class::Strong));
                    classes.extend(cache.then_some(Class::Cache));
                }
            }
        }
        let cache = classes.contains(&Class::Cache);
        if cache && classes.contains(&Class::Strong) {
            return Err(KvError::MixedClasses(
                "this atomic write names strong and cache keys (or a delete-range spanning both); \
                 the classes cannot commit together, so split it"
                    .into(),
            ));
        }
        if !cache
            && write
                .mutations
                .iter()
                .any(|m| matches!(m, Mutation::SetAdd { .. } | Mutation::SetRemove { .. }))
        {
            return Err(KvError::InvalidArgument(
                "sadd and srem work on cache keys (OR-sets); put the key under a cache prefix \
                 (kvctl keyspace set-class PREFIX cache)"
                    .into(),
            ));
        }
        Ok(if cache { Class::Cache } else { Class::Strong })
    }

    /// A write of cache keys: merged here and queued for the peers in one durable batch,
    /// acknowledged without waiting for any other node.
    async fn cache_write(&self, write: &AtomicWrite) -> KvResult<AtomicOutcome> {
        let unsupported = |what: &str| {
            Err(KvError::UnsupportedForCacheClass(format!(
                "{what} on cache keys needs coordination the cache class does not have; use a strong key"
            )))
        };
        if !write.checks.is_empty() {
            return unsupported("a check");
        }
        let now = self.clock.now_ms();
        let mut ops = Vec::with_capacity(write.mutations.len());
        for mutation in &write.mutations {
            ops.push(match mutation {
                Mutation::Set {
                    key,
                    encoding,
                    value,
                    expiry,
                    metadata,
                } => CacheOp::Set {
                    key: key.clone(),
                    payload: Payload {
                        encoding: *encoding as i32,
                        bytes: value.clone(),
                        metadata: metadata.clone(),
                        expires_at_ms: expiry.map(|e| apply::resolve_expiry(e, now)),
                    },
                },
                Mutation::Delete { key } => CacheOp::Delete { key: key.clone() },
                Mutation::SetAdd { key, member } => CacheOp::SetAdd {
                    key: key.clone(),
                    member: member.as_bytes().to_vec(),
                },
                Mutation::SetRemove { key, member } => CacheOp::SetRemove {
                    key: key.clone(),
                    member: member.as_bytes().to_vec(),
                },
                Mutation::Numeric {
                    op: NumericOp::Sum,
                    key,
                    operand,
                } => CacheOp::Sum {
                    key: key.clone(),
                    operand: *operand,
                },
                Mutation::Numeric { op, key, operand } => CacheOp::Extremum {
                    key: key.clone(),
                    operand: *operand,
                    largest: *op == NumericOp::Max,
                },
                Mutation::SumV8 { .. } => return unsupported("a sum of JavaScript numbers (use Deno.KvU64)"),
                Mutation::SetVersionstampedKey { .. } => return unsupported("a versionstamped key"),
                Mutation::DeleteRange { .. } => return unsupported("delete-range"),
            });
        }
        let cache = self.cache.clone();
        let stamp = tokio::task::spawn_blocking(move || cache.write(&ops))
            .await
            .map_err(|e| KvError::InvalidArgument(e.to_string()))?
            .map_err(|error| match error {
                CacheError::Storage(e) => KvError::Storage(e),
                CacheError::KindMismatch { operation, key, found } => KvError::KindMismatch { operation, key, found },
                CacheError::ClockSkew(skew) => KvError::InvalidArgument(skew.to_string()),
            })?;
        // A counter's value is its merge of every region's operations: read back what this
        // node now holds, which the write's own operation is part of.
        let mut numeric_results = Vec::new();
        for (index, mutation) in write.mutations.iter().enumerate() {
            if let Mutation::Numeric { key, .. } = mutation
                && let (Some(entry), _) = self.get(key, Consistency::Eventual).await?
                && let Some(value) = entry.envelope.as_u64()
            {
                numeric_results.push((index, value));
            }
        }
        Ok(AtomicOutcome::Committed(Committed {
            versionstamp: crate::cache::store::versionstamp_of(stamp),
            numeric_results,
        }))
    }

    /// Forgets the request ids applied more than `window` ago by the replicated clock (the
    /// clock their times were recorded by, not this node's own, which may run ahead), when
    /// the oldest one is. Proposed by the leader only; replicas forget exactly what the
    /// command says. Returns how many were forgotten (at most a batch).
    pub async fn forget_old_requests(&self, window: std::time::Duration) -> KvResult<usize> {
        if !self.raft.is_leader() {
            return Ok(0);
        }
        let before_ms = self.raft.replicated_now_ms().saturating_sub(window.as_millis() as u64);
        let engine = self.engine.clone();
        let oldest = tokio::task::spawn_blocking(move || requests::oldest(engine.as_ref()))
            .await
            .map_err(|e| KvError::InvalidArgument(e.to_string()))??;
        if oldest.is_none_or(|at| at >= before_ms) {
            return Ok(0);
        }
        let answer = self
            .raft
            .write(apply::encode(&CommandRef::ForgetRequests { before_ms }))
            .await?;
        match decode_answer(&answer)? {
            Answer::Forgotten(count) => Ok(count),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes the given due entries whose value still carries that expiry. Used by the
    /// TTL sweeper on the leader; the decision is made when the command is applied, at the
    /// leader's clock, identically on every replica. Elsewhere it does nothing.
    pub async fn expire(&self, due: Vec<DueExpiry>) -> KvResult<usize> {
        if !self.raft.is_leader() {
            return Ok(0);
        }
        validate::expiries(&due)?;
        let answer = self.raft.write(apply::encode(&CommandRef::Expire(&due))).await?;
        match decode_answer(&answer)? {
            Answer::Expired(count) => Ok(count),
            other => Err(unexpected(other)),
        }
    }

    /// Counts live keys and stored records (live plus expired ones not reclaimed yet).
    /// O(keys): an admin operation, not a hot path.
    pub fn count_keys(&self) -> KvResult<(u64, u64)> {
        let now = self.now_ms();
        let (mut live, mut stored) = (0, 0);
        for item in self
            .engine
            .scan(ColumnFamily::Data, crate::storage::ScanRange::all(), false)
        {
            let (_, bytes) = item?;
            stored += 1;
            if Envelope::decode(&bytes)?.is_live(now) {
                live += 1;
            }
        }
        // Cache records (tombstones included in `stored`) and the live ones among them,
        // each key counted only under its own class, as reads see them.
        let snapshot = self.engine.snapshot();
        let cache_only = (false, true);
        for entry in self.live_entries(snapshot.as_ref(), ScanRange::all(), false, now, cache_only) {
            entry?;
            live += 1;
        }
        stored += self.cache.snapshot().records;
        Ok((live, stored))
    }
}

/// Merges two ordered scans into one (descending when `reverse`); on equal keys the first
/// comes first.
fn merge_sorted<T, E>(
    a: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>, T), E>>,
    b: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>, T), E>>,
    reverse: bool,
) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>, T), E>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        let take_a = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(Err(_)), _) => true,
            (_, Some(Err(_))) => false,
            (Some(Ok((ka, _, _))), Some(Ok((kb, _, _)))) => (ka <= kb) != reverse || ka == kb,
        };
        if take_a { a.next() } else { b.next() }
    })
}

fn decode_answer(bytes: &[u8]) -> KvResult<Answer> {
    apply::decode(bytes).map_err(|e| {
        KvError::Consensus(crate::raft::ConsensusError::OutcomeUnknown(format!(
            "undecodable answer from the state machine: {e}"
        )))
    })
}

fn unexpected(answer: Answer) -> KvError {
    match answer {
        Answer::Undecodable(reason) => {
            KvError::InvalidArgument(format!("the leader could not decode the request: {reason}"))
        }
        other => KvError::Consensus(crate::raft::ConsensusError::OutcomeUnknown(format!(
            "the state machine answered {other:?}"
        ))),
    }
}

/// Reads this database's id, creating it on first start.
fn database_id(engine: &dyn Engine) -> KvResult<uuid::Uuid> {
    if let Some(raw) = engine.get(ColumnFamily::Meta, DATABASE_ID_KEY)? {
        return uuid::Uuid::from_slice(&raw).map_err(|_| {
            KvError::Storage(crate::storage::StorageError::Corrupted(
                "database id is not 16 bytes".into(),
            ))
        });
    }
    let id = uuid::Uuid::new_v4();
    let mut batch = crate::storage::WriteBatch::default();
    batch.put(ColumnFamily::Meta, DATABASE_ID_KEY.to_vec(), id.as_bytes().to_vec());
    engine.write(batch, Durability::Sync)?;
    Ok(id)
}
