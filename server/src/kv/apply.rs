//! Applying committed writes: the Raft state machine's domain half.
//!
//! The state machine hands over every committed request of a batch of log entries; they
//! are applied in order against a staged view (storage plus the batch's earlier writes, so
//! a later check sees an earlier write) and the whole batch becomes one `WriteBatch`. The
//! same code runs on every replica with the same inputs (the leader's clock travels with
//! each entry), so every replica reaches the same state and gives the same answers.
//!
//! An atomic write's versionstamp is the log index of its entry plus its position among
//! the entry's committed writes: strictly increasing across restarts and leader changes
//! because log indexes are.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use edgekv_proto::key::display_encoded as display_key;
use edgekv_proto::keyspace::class_of;
use edgekv_proto::v1::ValueEncoding;
use edgekv_proto::{ErrorCode, Key, Versionstamp, limits::MAX_DELETE_RANGE_KEYS};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::error::{KvError, KvResult};
use super::requests::{self, Recorded};
use super::types::{AtomicOutcome, AtomicWrite, Committed, Expiry, Mutation, Target};
use super::v8_sum::{self, SumError, SumOperand};
use super::validate;
use crate::keyspace::{Class, Keyspace, Rules};
use crate::raft::{AppliedBatch, Applier, CommittedProposal, Refused};
use crate::storage::codec::{Envelope, expiry_index_key};
use crate::storage::{ColumnFamily, Engine, ScanRange, StorageError, StorageResult, WriteBatch};
use crate::ttl::DueExpiry;

/// The keys a batch of commits changed (written, deleted or expired), published after the
/// batch is written. Watchers re-read the keys they care about.
pub type ChangedKeys = Arc<Vec<Vec<u8>>>;

/// A replicated request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Command {
    Atomic(AtomicWrite),
    /// Delete these due entries whose value still carries that expiry (the leader's
    /// sweeper proposes them; replicas decide by the entry's clock, not their own).
    Expire(Vec<DueExpiry>),
    /// Puts keys under `prefix` in `class` (refused while strong data there would become
    /// cache keys; the proposing node checks its cache data the other way).
    SetClass {
        prefix: Vec<u8>,
        class: Class,
    },
    /// An atomic write under a request id: applied once, and answered from the request
    /// table ([`super::requests`]) when the same id comes again.
    AtomicOnce {
        id: Vec<u8>,
        write: AtomicWrite,
    },
    /// Forget the request ids applied before this replicated time (at most
    /// [`super::requests::FORGET_BATCH`] of them, oldest first).
    ForgetRequests {
        before_ms: u64,
    },
}

/// [`Command`] by reference, variant for variant: encodes to the same bytes, so a write
/// that may have to be sent again is not copied to be proposed. Every proposal is made
/// with it; [`Command`] is what replicas decode.
#[derive(Serialize)]
pub(crate) enum CommandRef<'a> {
    Atomic(&'a AtomicWrite),
    Expire(&'a [DueExpiry]),
    SetClass { prefix: &'a [u8], class: Class },
    AtomicOnce { id: &'a [u8], write: &'a AtomicWrite },
    ForgetRequests { before_ms: u64 },
}

/// A request refused while it was applied (a type mismatch, a sum out of range): the same
/// refusal on every replica, sent back to the client with its code.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Refusal {
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Atomic(Result<AtomicOutcome, Refusal>),
    Expired(usize),
    ClassSet(Result<(), Refusal>),
    /// The request did not decode (a node of another version proposed it).
    Undecodable(String),
    /// Request ids forgotten.
    Forgotten(usize),
}

impl Refusal {
    fn from_error(error: &KvError) -> Self {
        Self {
            code: error.code().as_str().to_string(),
            message: error.to_string(),
        }
    }

    pub(crate) fn into_error(self) -> KvError {
        let code = self.code.parse().unwrap_or(ErrorCode::Internal);
        KvError::Refused {
            code,
            message: self.message,
        }
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("commands and answers always encode")
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| e.to_string())
}

/// The key-value domain as the Raft state machine's [`Applier`].
pub(crate) struct KvApplier {
    engine: Arc<dyn Engine>,
    changes: broadcast::Sender<ChangedKeys>,
    /// Log index of the latest entry with a committed atomic write (0: none yet).
    last_commit: Arc<AtomicU64>,
    keyspace: Arc<Keyspace>,
    /// Set when a batch changed the class rules: the cache is reloaded once it is written.
    keyspace_changed: AtomicBool,
}

impl KvApplier {
    pub(crate) fn new(
        engine: Arc<dyn Engine>,
        changes: broadcast::Sender<ChangedKeys>,
        last_commit: Arc<AtomicU64>,
        keyspace: Arc<Keyspace>,
    ) -> Self {
        Self {
            engine,
            changes,
            last_commit,
            keyspace,
            keyspace_changed: AtomicBool::new(false),
        }
    }

    /// An atomic write, unless one of its keys became a cache key on its way (under the
    /// rules in force at this point of the log).
    fn apply_write(
        &self,
        staged: &mut Staged<'_>,
        write: &AtomicWrite,
        stamp: Versionstamp,
        now: u64,
    ) -> KvResult<AtomicOutcome> {
        match names_a_cache_key(write, &self.keyspace, &staged.rules) {
            Some(key) => Err(KvError::MixedClasses(format!(
                "{} became a cache key while this write was on its way; nothing was written",
                display_key(&key)
            ))),
            None => apply_atomic(staged, write, stamp, now),
        }
    }

    fn reload_keyspace(&self) {
        if let Err(error) = self.keyspace.reload(self.engine.as_ref()) {
            tracing::error!(%error, "cannot reload the keyspace class rules");
        }
    }
}

impl Applier for KvApplier {
    /// The checks [`super::KvStore`] runs before it proposes each command (the sweeper's
    /// batch bound for expiries); a request that does not decode is no command at all.
    fn check_proposal(&self, body: &[u8]) -> Result<(), Refused> {
        let checked = match decode::<Command>(body) {
            Err(reason) => Err(KvError::InvalidArgument(format!(
                "the request does not decode: {reason}"
            ))),
            Ok(Command::Atomic(write)) => validate::atomic(&write),
            Ok(Command::AtomicOnce { id, write }) => validate::request_id(&id).and_then(|()| validate::atomic(&write)),
            Ok(Command::Expire(due)) => validate::expiries(&due),
            Ok(Command::SetClass { prefix, .. }) => validate::class_prefix(&prefix),
            Ok(Command::ForgetRequests { .. }) => Ok(()),
        };
        checked.map_err(|error| Refused {
            code: error.code(),
            message: error.to_string(),
        })
    }

    fn apply(&self, engine: &dyn Engine, proposals: &[CommittedProposal<'_>]) -> StorageResult<AppliedBatch> {
        let mut staged = Staged::new(engine);
        let mut answers = Vec::with_capacity(proposals.len());
        let mut entry_index = None;
        let mut position: u16 = 0;
        let mut last_commit = None;
        let storage_failure = |error: KvError| match error {
            KvError::Storage(e) => e,
            other => StorageError::Engine(other.to_string()),
        };
        for proposal in proposals {
            if entry_index != Some(proposal.index) {
                entry_index = Some(proposal.index);
                position = 0;
            }
            let answer = match decode::<Command>(proposal.body) {
                Err(reason) => Answer::Undecodable(reason),
                Ok(Command::Atomic(write)) => {
                    let stamp = Versionstamp::new(proposal.index, position);
                    match self.apply_write(&mut staged, &write, stamp, proposal.now_ms) {
                        Ok(outcome) => {
                            if matches!(outcome, AtomicOutcome::Committed(_)) {
                                position += 1;
                                last_commit = Some(proposal.index);
                            }
                            Answer::Atomic(Ok(outcome))
                        }
                        Err(error @ KvError::Storage(_)) => return Err(storage_failure(error)),
                        Err(refused) => Answer::Atomic(Err(Refusal::from_error(&refused))),
                    }
                }
                Ok(Command::AtomicOnce { id, write }) => {
                    // Applied before under this id: the first outcome, and nothing changes.
                    if let Some(recorded) = staged.recorded(&id).map_err(storage_failure)? {
                        Answer::Atomic(recorded.outcome)
                    } else {
                        let stamp = Versionstamp::new(proposal.index, position);
                        match self.apply_write(&mut staged, &write, stamp, proposal.now_ms) {
                            Ok(outcome) => {
                                if matches!(outcome, AtomicOutcome::Committed(_)) {
                                    position += 1;
                                    last_commit = Some(proposal.index);
                                }
                                staged.record(id, proposal.now_ms, Ok(outcome.clone()));
                                Answer::Atomic(Ok(outcome))
                            }
                            Err(error @ KvError::Storage(_)) => return Err(storage_failure(error)),
                            // Refused for a class change on its way: routed again under the
                            // same id, so not recorded (nothing was written either way).
                            Err(refused @ KvError::MixedClasses(_)) => {
                                Answer::Atomic(Err(Refusal::from_error(&refused)))
                            }
                            Err(refused) => {
                                let refusal = Refusal::from_error(&refused);
                                staged.record(id, proposal.now_ms, Err(refusal.clone()));
                                Answer::Atomic(Err(refusal))
                            }
                        }
                    }
                }
                Ok(Command::ForgetRequests { before_ms }) => {
                    Answer::Forgotten(staged.forget_requests_before(before_ms).map_err(storage_failure)?)
                }
                Ok(Command::Expire(due)) => {
                    Answer::Expired(apply_expiry(&mut staged, &due, proposal.now_ms).map_err(storage_failure)?)
                }
                Ok(Command::SetClass { prefix, class }) => {
                    match apply_set_class(&mut staged, &self.keyspace, &prefix, class, proposal.now_ms) {
                        Ok(()) => Answer::ClassSet(Ok(())),
                        Err(error @ KvError::Storage(_)) => return Err(storage_failure(error)),
                        Err(refused) => Answer::ClassSet(Err(Refusal::from_error(&refused))),
                    }
                }
            };
            answers.push(encode(&answer));
        }
        let changed_keys: Vec<Vec<u8>> = staged.written.keys().cloned().collect();
        if !staged.rules.is_empty() {
            self.keyspace_changed.store(true, Ordering::SeqCst);
        }
        let batch = staged.into_batch().map_err(storage_failure)?;
        if let Some(index) = last_commit {
            self.last_commit.fetch_max(index, Ordering::SeqCst);
        }
        Ok(AppliedBatch {
            batch,
            answers,
            changed_keys,
        })
    }

    fn applied(&self, changed_keys: Vec<Vec<u8>>) {
        if self.keyspace_changed.swap(false, Ordering::SeqCst) {
            self.reload_keyspace();
        }
        if changed_keys.is_empty() {
            // An empty notice would mean "everything changed".
            return;
        }
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(Arc::new(changed_keys));
    }

    fn replaced(&self) {
        self.reload_keyspace();
        // Everything may have changed; an empty notice makes watchers re-read all keys.
        let _ = self.changes.send(Arc::new(Vec::new()));
    }
}

/// The group's view: storage underneath, the group's writes on top. Only the final state
/// of each key is kept; the expiry index changes are derived from (stored, final) when the
/// batch is built, so a key written several times in a group gets exactly one index entry.
struct Staged<'a> {
    engine: &'a dyn Engine,
    /// What storage holds for keys the group touched (raw: expired values included).
    stored: BTreeMap<Vec<u8>, Option<Envelope>>,
    /// The group's final state of each key it wrote.
    written: BTreeMap<Vec<u8>, Option<Envelope>>,
    /// Expiry index entries found stale by the sweeper.
    stale_index: Vec<(u64, Vec<u8>)>,
    /// Class rules the group set, in order.
    rules: Vec<(Vec<u8>, Class)>,
    /// Writes the group applied under a request id.
    requests: BTreeMap<Vec<u8>, Recorded>,
    /// Request ids the group forgot: (when recorded, id).
    forgotten: Vec<(u64, Vec<u8>)>,
}

impl<'a> Staged<'a> {
    fn new(engine: &'a dyn Engine) -> Self {
        Self {
            engine,
            stored: BTreeMap::new(),
            written: BTreeMap::new(),
            stale_index: Vec::new(),
            rules: Vec::new(),
            requests: BTreeMap::new(),
            forgotten: Vec::new(),
        }
    }

    /// The write applied under `id`, by this group or before it (and not forgotten).
    fn recorded(&self, id: &[u8]) -> KvResult<Option<Recorded>> {
        if let Some(recorded) = self.requests.get(id) {
            return Ok(Some(recorded.clone()));
        }
        if self.forgotten.iter().any(|(_, forgotten)| forgotten == id) {
            return Ok(None);
        }
        Ok(requests::find(self.engine, id)?)
    }

    fn record(&mut self, id: Vec<u8>, at_ms: u64, outcome: Result<AtomicOutcome, Refusal>) {
        self.requests.insert(id, Recorded { at_ms, outcome });
    }

    /// Forgets the ids recorded in storage before `before_ms` (at most a batch of them).
    fn forget_requests_before(&mut self, before_ms: u64) -> KvResult<usize> {
        let due = requests::recorded_before(self.engine, before_ms, requests::FORGET_BATCH)?;
        let count = due.len();
        self.forgotten.extend(due);
        Ok(count)
    }

    fn stored(&mut self, key: &[u8]) -> KvResult<Option<Envelope>> {
        if let Some(found) = self.stored.get(key) {
            return Ok(found.clone());
        }
        let found = match self.engine.get(ColumnFamily::Data, key)? {
            Some(bytes) => Some(Envelope::decode(&bytes)?),
            None => None,
        };
        self.stored.insert(key.to_vec(), found.clone());
        Ok(found)
    }

    /// The expiry of what storage holds for `key`, read from the envelope header only, so
    /// a record that no longer decodes can still be overwritten or deleted.
    fn stored_expiry(&mut self, key: &[u8]) -> KvResult<Option<u64>> {
        if let Some(found) = self.stored.get(key) {
            return Ok(found.as_ref().and_then(|e| e.expires_at_ms));
        }
        Ok(self
            .engine
            .get(ColumnFamily::Data, key)?
            .and_then(|bytes| Envelope::peek_expiry(&bytes)))
    }

    /// The current value of a key including expired ones, as of the group so far.
    fn raw(&mut self, key: &[u8], pending: &BTreeMap<Vec<u8>, Option<Envelope>>) -> KvResult<Option<Envelope>> {
        if let Some(value) = pending.get(key).or_else(|| self.written.get(key)) {
            return Ok(value.clone());
        }
        self.stored(key)
    }

    fn into_batch(mut self) -> KvResult<WriteBatch> {
        let mut batch = WriteBatch::default();
        for (at_ms, id) in std::mem::take(&mut self.forgotten) {
            requests::forget(&mut batch, at_ms, &id);
        }
        for (id, recorded) in std::mem::take(&mut self.requests) {
            requests::record(&mut batch, &id, &recorded);
        }
        for (prefix, class) in std::mem::take(&mut self.rules) {
            Keyspace::stage(&mut batch, &prefix, class);
        }
        for (at, key) in std::mem::take(&mut self.stale_index) {
            let current_expiry = match self.written.get(&key) {
                Some(after) => after.as_ref().and_then(|e| e.expires_at_ms),
                None => self.stored_expiry(&key)?,
            };
            if current_expiry != Some(at) {
                batch.delete(ColumnFamily::Expiry, expiry_index_key(at, &key));
            }
        }
        let written = std::mem::take(&mut self.written);
        for (key, after) in written {
            let before_expiry = self.stored_expiry(&key)?;
            let after_expiry = after.as_ref().and_then(|e| e.expires_at_ms);
            if let Some(at) = before_expiry
                && after_expiry != Some(at)
            {
                batch.delete(ColumnFamily::Expiry, expiry_index_key(at, &key));
            }
            if let Some(at) = after_expiry {
                batch.put(ColumnFamily::Expiry, expiry_index_key(at, &key), Vec::new());
            }
            match after {
                Some(envelope) => batch.put(ColumnFamily::Data, key, envelope.encode()),
                None => batch.delete(ColumnFamily::Data, key),
            }
        }
        Ok(batch)
    }
}

fn describe(envelope: &Envelope) -> String {
    match envelope.encoding {
        ValueEncoding::Bytes => "bytes".into(),
        ValueEncoding::Utf8 => "a string".into(),
        ValueEncoding::Json => "JSON".into(),
        ValueEncoding::V8 => "a V8-serialized value".into(),
        ValueEncoding::U64 => "a u64".into(),
    }
}

/// Applies one atomic write to the group's view, or nothing at all: its writes are
/// collected in `pending` and merged only when every check passed and every mutation
/// succeeded.
fn apply_atomic(
    staged: &mut Staged<'_>,
    write: &AtomicWrite,
    stamp: Versionstamp,
    now: u64,
) -> KvResult<AtomicOutcome> {
    let mut pending: BTreeMap<Vec<u8>, Option<Envelope>> = BTreeMap::new();
    let live = |envelope: Option<Envelope>| envelope.filter(|e| e.is_live(now));

    let mut failed = Vec::new();
    let mut numeric_results = Vec::new();
    for (index, check) in write.checks.iter().enumerate() {
        let current = live(staged.raw(&check.key, &pending)?).map(|e| e.versionstamp);
        if current != check.versionstamp {
            failed.push(index);
        }
    }
    if !failed.is_empty() {
        return Ok(AtomicOutcome::CheckFailed(failed));
    }

    for (index, mutation) in write.mutations.iter().enumerate() {
        match mutation {
            Mutation::Set {
                key,
                encoding,
                value,
                expiry,
                metadata,
            } => {
                let expires_at_ms = expiry.map(|e| resolve_expiry(e, now));
                let envelope = Envelope {
                    encoding: *encoding,
                    versionstamp: stamp,
                    expires_at_ms,
                    metadata: metadata.clone(),
                    value: value.clone(),
                };
                pending.insert(key.clone(), Some(envelope));
            }
            Mutation::Delete { key } => {
                pending.insert(key.clone(), None);
            }
            Mutation::Numeric { op, key, operand } => {
                let next = match live(staged.raw(key, &pending)?) {
                    None => *operand,
                    Some(current) => match current.as_u64() {
                        Some(value) => op.apply(value, *operand),
                        None => {
                            return Err(KvError::TypeMismatch {
                                operation: op.name(),
                                key: display_key(key),
                                found: describe(&current),
                            });
                        }
                    },
                };
                let envelope = Envelope {
                    encoding: ValueEncoding::U64,
                    versionstamp: stamp,
                    expires_at_ms: None,
                    metadata: None,
                    value: next.to_le_bytes().to_vec(),
                };
                pending.insert(key.clone(), Some(envelope));
                numeric_results.push((index, next));
            }
            Mutation::DeleteRange { start, end } => {
                for key in keys_in_range(staged, &pending, start, end, now)? {
                    pending.insert(key, None);
                }
            }
            Mutation::SumV8 {
                key,
                operand,
                min,
                max,
                clamp,
            } => {
                let invalid = |e: SumError| KvError::from_sum(e, key);
                let current = match live(staged.raw(key, &pending)?) {
                    Some(current) => SumOperand::parse(current.encoding, &current.value).map_err(invalid)?,
                    None => None,
                };
                let parse_v8 = |bytes: &[u8]| SumOperand::parse(ValueEncoding::V8, bytes).map_err(invalid);
                let operand = match parse_v8(operand)? {
                    Some(operand) => operand,
                    None => return Err(invalid(SumError::Type("the sum operand is empty".into()))),
                };
                let result = v8_sum::sum(current, operand, parse_v8(min)?, parse_v8(max)?, *clamp).map_err(invalid)?;
                let (encoding, value) = result.encode();
                let envelope = Envelope {
                    encoding,
                    versionstamp: stamp,
                    expires_at_ms: None,
                    metadata: None,
                    value,
                };
                pending.insert(key.clone(), Some(envelope));
            }
            Mutation::SetAdd { .. } | Mutation::SetRemove { .. } => {
                // Refused before proposing; a node of another version may still send one.
                return Err(KvError::InvalidArgument("sadd and srem work on cache keys only".into()));
            }
            Mutation::SetVersionstampedKey {
                prefix,
                encoding,
                value,
                expiry,
            } => {
                let mut key = prefix.clone();
                key.push(0x02);
                key.extend_from_slice(stamp.to_hex().as_bytes());
                key.push(0x00);
                let envelope = Envelope {
                    encoding: *encoding,
                    versionstamp: stamp,
                    expires_at_ms: expiry.map(|e| resolve_expiry(e, now)),
                    metadata: None,
                    value: value.clone(),
                };
                pending.insert(key, Some(envelope));
            }
        }
    }
    staged.written.extend(pending);
    Ok(AtomicOutcome::Committed(Committed {
        versionstamp: stamp,
        numeric_results,
    }))
}

/// A key of `write` that is a cache key under the rules in force at this point of the log
/// (the node that routed the write may have had older rules): the same answer on every
/// replica, so such a write is refused everywhere rather than stored where no read looks.
fn names_a_cache_key(write: &AtomicWrite, keyspace: &Keyspace, staged: &[(Vec<u8>, Class)]) -> Option<Vec<u8>> {
    if staged.is_empty() && !keyspace.has_cache_rules() {
        return None;
    }
    // The rules as of this batch: only a batch that set rules itself needs its own copy.
    let with_staged: Option<Rules> =
        (!staged.is_empty()).then(|| keyspace.rules().into_iter().chain(staged.iter().cloned()).collect());
    let is_cache = |key: &[u8]| {
        let class = match &with_staged {
            Some(rules) => class_of(rules, key),
            None => keyspace.class_of(key),
        };
        class == Class::Cache
    };
    let checks = write.checks.iter().map(|c| c.key.as_slice());
    let mutations = write.mutations.iter().filter_map(|m| match m.target() {
        Target::Key(key) => Some(key),
        // Its range was classified when it was routed; its deletes touch strong data only.
        Target::Range { .. } => None,
    });
    checks.chain(mutations).find(|key| is_cache(key)).map(<[u8]>::to_vec)
}

/// Sets a class rule unless live strong data under `prefix` would become cache keys (that
/// data would vanish from reads; it is never silently reinterpreted).
fn apply_set_class(
    staged: &mut Staged<'_>,
    keyspace: &Keyspace,
    prefix: &[u8],
    class: Class,
    now: u64,
) -> KvResult<()> {
    let mut rules: Rules = keyspace
        .rules()
        .into_iter()
        .chain(staged.rules.iter().cloned())
        .collect();
    rules.insert(prefix.to_vec(), class);
    let end = Key::prefix_end(prefix);
    let becomes_cache = |key: &[u8]| class_of(&rules, key) == Class::Cache;
    let pending = BTreeMap::new();
    // Stored keys, and keys an earlier write of this batch created.
    let mut keys: Vec<Vec<u8>> = staged
        .written
        .range(prefix.to_vec()..end.clone())
        .map(|(key, _)| key.clone())
        .collect();
    for item in staged
        .engine
        .scan(ColumnFamily::Data, ScanRange::new(prefix.to_vec(), end), false)
    {
        keys.push(item?.0);
    }
    for key in keys {
        if becomes_cache(&key) && staged.raw(&key, &pending)?.is_some_and(|e| e.is_live(now)) {
            return Err(KvError::KeyspaceNotEmpty(format!(
                "{} holds strong data (for example {}); delete it, or pin its prefix to strong first",
                prefix_text(prefix),
                display_key(&key)
            )));
        }
    }
    staged.rules.push((prefix.to_vec(), class));
    Ok(())
}

/// A class rule's prefix as people read it.
pub(crate) fn prefix_text(prefix: &[u8]) -> String {
    if prefix.is_empty() {
        "the default class (keys no other rule matches)".into()
    } else {
        format!("prefix {}", display_key(prefix))
    }
}

pub(crate) fn resolve_expiry(expiry: Expiry, now: u64) -> u64 {
    match expiry {
        Expiry::In(ms) => now.saturating_add(ms),
        Expiry::At(at) => at,
    }
}

/// Every key that is live at `now` in `[start, end)` in the batch's view. Expired records
/// are left to the sweeper: whether one is still on disk depends on each replica's
/// compactions, so counting or deleting them would make replicas disagree on the outcome.
fn keys_in_range(
    staged: &mut Staged<'_>,
    pending: &BTreeMap<Vec<u8>, Option<Envelope>>,
    start: &[u8],
    end: &[u8],
    now: u64,
) -> KvResult<Vec<Vec<u8>>> {
    let mut keys = std::collections::BTreeSet::new();
    let too_large = || KvError::RangeTooLarge {
        limit: MAX_DELETE_RANGE_KEYS,
    };
    for item in staged
        .engine
        .scan(ColumnFamily::Data, ScanRange::new(start.to_vec(), end.to_vec()), false)
    {
        let (key, value) = item?;
        if Envelope::peek_expiry(&value).is_some_and(|at| at <= now) {
            continue;
        }
        // A key an earlier write of this batch already deleted is not in the range any more.
        let deleted = pending
            .get(&key)
            .or_else(|| staged.written.get(&key))
            .is_some_and(Option::is_none);
        if !deleted {
            keys.insert(key);
        }
        if keys.len() > MAX_DELETE_RANGE_KEYS {
            return Err(too_large());
        }
    }
    let range = start.to_vec()..end.to_vec();
    for (key, value) in staged.written.range(range.clone()).chain(pending.range(range)) {
        if value.as_ref().is_some_and(|envelope| envelope.is_live(now)) {
            keys.insert(key.clone());
        }
    }
    if keys.len() > MAX_DELETE_RANGE_KEYS {
        return Err(too_large());
    }
    Ok(keys.into_iter().collect())
}

/// Deletes the due entries whose value still carries that expiry; drops index entries
/// that no longer match their value (the key was overwritten or deleted since).
fn apply_expiry(staged: &mut Staged<'_>, due: &[DueExpiry], now: u64) -> KvResult<usize> {
    let mut expired = 0;
    let nothing_pending = BTreeMap::new();
    for entry in due {
        match staged.raw(&entry.key, &nothing_pending) {
            Ok(Some(envelope)) if envelope.expires_at_ms == Some(entry.expires_at_ms) && !envelope.is_live(now) => {
                staged.written.insert(entry.key.clone(), None);
                expired += 1;
            }
            Ok(_) => staged.stale_index.push((entry.expires_at_ms, entry.key.clone())),
            Err(error) => {
                // One undecodable record must not stall every later expiry: drop its index
                // entry (the compaction filter reads the expiry header on its own) and go on.
                tracing::warn!(%error, key = %display_key(&entry.key), "expiry sweep skipped an undecodable record");
                staged.stale_index.push((entry.expires_at_ms, entry.key.clone()));
            }
        }
    }
    Ok(expired)
}
