//! The atomic write builder, Deno KV style:
//! `client.atomic().check(&key, stamp).set(&key, value).sum(&counter, 1).commit().await`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgekv_proto::v1 as pb;
use edgekv_proto::{ErrorCode, Key, Versionstamp};

use crate::Client;
use crate::error::{Error, Result};
use crate::routing::Route;
use crate::value::Value;

/// Options of a set: expiry and Workers KV style metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetOptions {
    pub expire_in: Option<Duration>,
    pub expire_at: Option<SystemTime>,
    pub metadata: Option<serde_json::Value>,
}

impl SetOptions {
    pub(crate) fn to_wire(&self) -> Result<(Option<pb::set_mutation::Expiry>, Option<String>)> {
        use pb::set_mutation::Expiry;
        let expiry = match (self.expire_in, self.expire_at) {
            (Some(_), Some(_)) => return Err(Error::Value("give expire_in or expire_at, not both".into())),
            (Some(d), None) => Some(Expiry::ExpireInMs(
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1),
            )),
            (None, Some(at)) => {
                let ms = at
                    .duration_since(UNIX_EPOCH)
                    .map_err(|_| Error::Value("expire_at is before 1970".into()))?
                    .as_millis();
                Some(Expiry::ExpireAtMs(u64::try_from(ms).unwrap_or(u64::MAX)))
            }
            (None, None) => None,
        };
        let metadata = self.metadata.as_ref().map(|m| m.to_string());
        Ok((expiry, metadata))
    }
}

/// The answer to a commit: `ok` with the versionstamp, or the checks that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitResult {
    pub ok: bool,
    pub versionstamp: Option<Versionstamp>,
    /// Indices (in the order `check` was called) of the checks that failed.
    pub failed_checks: Vec<usize>,
    /// When `ok`, one entry per mutation in the order they were added: the value a `sum`,
    /// `min` or `max` left its key with (a later mutation of the same write may change the
    /// key again), `None` for other mutations. A counter needs no read after its commit. For
    /// a cache key it is the value on the node that took the write, with what that node had
    /// merged from other regions.
    pub numeric_values: Vec<Option<u64>>,
}

#[must_use = "an atomic write does nothing until commit() is awaited"]
pub struct Atomic {
    client: Client,
    checks: Vec<pb::Check>,
    mutations: Vec<pb::Mutation>,
    error: Option<Error>,
    deadline: Option<std::time::Duration>,
}

/// The first pause before a write is sent again, doubled each time up to [`MAX_PAUSE`].
const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);
const MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

impl Atomic {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            checks: Vec::new(),
            mutations: Vec::new(),
            error: None,
            deadline: None,
        }
    }

    /// How long this write is sent again after answers that leave its outcome unknown
    /// (instead of the client's `write_deadline`).
    pub fn deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    fn mutation(mut self, kind: pb::mutation::Kind) -> Self {
        self.mutations.push(pb::Mutation { kind: Some(kind) });
        self
    }

    /// The key must have exactly this versionstamp; `None` means it must not exist.
    pub fn check(mut self, key: impl Into<Key>, versionstamp: Option<Versionstamp>) -> Self {
        let versionstamp = versionstamp.map(|v| v.as_bytes().to_vec()).unwrap_or_default();
        self.checks.push(pb::Check {
            key: key.into().encode(),
            versionstamp,
        });
        self
    }

    pub fn set(self, key: impl Into<Key>, value: impl Into<Value>) -> Self {
        self.set_with(key, value, SetOptions::default())
    }

    pub fn set_with(mut self, key: impl Into<Key>, value: impl Into<Value>, options: SetOptions) -> Self {
        let wire = value.into().to_wire().and_then(|v| options.to_wire().map(|o| (v, o)));
        match wire {
            Ok((value, (expiry, metadata))) => self.mutation(pb::mutation::Kind::Set(pb::SetMutation {
                key: key.into().encode(),
                value: Some(value),
                expiry,
                metadata,
            })),
            Err(error) => {
                self.error.get_or_insert(error);
                self
            }
        }
    }

    pub fn delete(self, key: impl Into<Key>) -> Self {
        self.mutation(pb::mutation::Kind::Delete(pb::DeleteMutation {
            key: key.into().encode(),
        }))
    }

    /// Adds to a u64 (wrapping on overflow); an absent key becomes `n`.
    pub fn sum(self, key: impl Into<Key>, n: u64) -> Self {
        self.mutation(pb::mutation::Kind::Sum(pb::NumericMutation {
            key: key.into().encode(),
            operand: n,
        }))
    }

    pub fn min(self, key: impl Into<Key>, n: u64) -> Self {
        self.mutation(pb::mutation::Kind::Min(pb::NumericMutation {
            key: key.into().encode(),
            operand: n,
        }))
    }

    pub fn max(self, key: impl Into<Key>, n: u64) -> Self {
        self.mutation(pb::mutation::Kind::Max(pb::NumericMutation {
            key: key.into().encode(),
            operand: n,
        }))
    }

    /// Adds `member` to the set at `key` (a cache key; an add wins over a concurrent
    /// remove elsewhere). A read of the key shows the members as a sorted JSON array.
    pub fn sadd(self, key: impl Into<Key>, member: impl Into<String>) -> Self {
        self.mutation(pb::mutation::Kind::Sadd(pb::SetMemberMutation {
            key: key.into().encode(),
            member: member.into(),
        }))
    }

    /// Removes `member` from the set at `key` (a cache key), as far as this region has
    /// seen it.
    pub fn srem(self, key: impl Into<Key>, member: impl Into<String>) -> Self {
        self.mutation(pb::mutation::Kind::Srem(pb::SetMemberMutation {
            key: key.into().encode(),
            member: member.into(),
        }))
    }

    /// Deletes every key strictly under `prefix`.
    pub fn delete_prefix(self, prefix: impl Into<Key>) -> Self {
        let range = pb::delete_range_mutation::Range::Prefix(prefix.into().encode());
        self.mutation(pb::mutation::Kind::DeleteRange(pb::DeleteRangeMutation {
            range: Some(range),
        }))
    }

    /// Deletes every key in `[start, end)`.
    pub fn delete_range(self, start: impl Into<Key>, end: impl Into<Key>) -> Self {
        let span = pb::KeyRange {
            start: start.into().encode(),
            end: end.into().encode(),
        };
        let range = pb::delete_range_mutation::Range::Span(span);
        self.mutation(pb::mutation::Kind::DeleteRange(pb::DeleteRangeMutation {
            range: Some(range),
        }))
    }

    /// Sends the write under a request id of its own. An answer that leaves the outcome
    /// unknown (a lost connection, no leader, a commit the leader could not confirm in
    /// time) sends it again under the same id, with jittered exponential backoff, until a
    /// definite answer or the deadline (`deadline`, else the client's `write_deadline`):
    /// the cluster applies a strong write at most once per id, so the caller sees a
    /// definite result, or after the deadline [`Error::Indefinite`] naming the request id.
    /// Copies are marked `resend`, and the node refuses a copy of a cache-class write
    /// (cache writes are not deduplicated yet), which is then [`Error::Indefinite`]. A
    /// write whose keys are of one
    /// class but changed class on the way (`MIXED_CLASSES`, a definite refusal: nothing was
    /// written) is sent once more, routed by the rules asked of the node again, so a caller
    /// sees that code only for a write that really names both classes.
    pub async fn commit(self) -> Result<CommitResult> {
        if let Some(error) = self.error {
            return Err(error);
        }
        // One id for this logical write, kept when it is sent again (rerouted below), so
        // the cluster applies it once.
        let mut request = pb::AtomicRequest {
            checks: self.checks,
            mutations: self.mutations,
            request_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
            resend: false,
        };
        // Why an earlier copy's outcome is unknown, once one's is: a later "nothing was
        // written" then speaks only for the later copy.
        let mut maybe_applied: Option<String> = None;
        let client = &self.client;
        let deadline = tokio::time::Instant::now() + self.deadline.unwrap_or(client.write_deadline);
        let mut pause = FIRST_PAUSE;
        let mut rerouted = false;
        let response = loop {
            // Checks need the leader (and a cache key's check is refused there, clearly). A
            // re-routed write goes to the leader too: it has the rule that refused the write,
            // which the node that routed it by older rules may still lack.
            let route = if request.checks.is_empty() && !rerouted {
                client.route_for(&mutation_keys(&request.mutations), true).await
            } else {
                Route::Leader
            };
            let sent = client
                .write(route, |mut kv| {
                    let request = client.request(request.clone());
                    async move { kv.atomic(request).await }
                })
                .await;
            match sent {
                Err(error)
                    if error.code() == Some(ErrorCode::MixedClasses)
                        && !rerouted
                        && names_one_class(client, &request).await =>
                {
                    rerouted = true;
                }
                // No answer, no leader, or a commit not confirmed in time: sent again under
                // the same id, which the cluster applies at most once, until the deadline.
                Err(error) if error.is_indefinite() || error.is_retry_safe() => {
                    if error.is_indefinite() {
                        maybe_applied = Some(cause(&error));
                        // The node refuses a copy of a cache-class write (not deduplicated
                        // yet) instead of applying it twice.
                        request.resend = true;
                    }
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Err(unresolved(maybe_applied, error, &request.request_id));
                    }
                    tokio::time::sleep(jittered(pause)).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                // A copy refused for copying a cache-class write: the first may have applied.
                Err(error) if request.resend && error.code() == Some(ErrorCode::UnsupportedForCacheClass) => {
                    return Err(unresolved(maybe_applied, error, &request.request_id));
                }
                sent => break sent?,
            }
        };
        if response.ok {
            let versionstamp = Versionstamp::from_slice(&response.versionstamp)
                .ok_or_else(|| Error::Protocol("commit answer without a versionstamp".into()))?;
            let mut numeric_values = vec![None; request.mutations.len()];
            for result in response.numeric_results {
                let slot = numeric_values.get_mut(result.mutation as usize).ok_or_else(|| {
                    Error::Protocol(format!(
                        "commit answer names mutation {} of {}",
                        result.mutation,
                        request.mutations.len()
                    ))
                })?;
                *slot = Some(result.value);
            }
            Ok(CommitResult {
                ok: true,
                versionstamp: Some(versionstamp),
                failed_checks: Vec::new(),
                numeric_values,
            })
        } else {
            let failed_checks = response.failed_checks.into_iter().map(|i| i as usize).collect();
            Ok(CommitResult {
                ok: false,
                versionstamp: None,
                failed_checks,
                numeric_values: Vec::new(),
            })
        }
    }
}

/// Whether the keys `request` names are of one class by the rules asked of the leader now.
async fn names_one_class(client: &Client, request: &pb::AtomicRequest) -> bool {
    let mutations = mutation_keys(&request.mutations);
    if mutations.is_empty() {
        // A range delete (classified by the node, which said it spans both classes), or a
        // write of checks only (which names no class of its own to change).
        return false;
    }
    let checks = request.checks.iter().map(|c| c.key.as_slice());
    let keys: Vec<&[u8]> = mutations.into_iter().chain(checks).collect();
    let rules = client.refetch_keyspace_rules().await;
    crate::keyspace::one_class(&rules, &keys)
}

/// The keys a write's mutations name; none for a range delete, which then goes to the
/// leader (ranges can span classes).
fn mutation_keys(mutations: &[pb::Mutation]) -> Vec<&[u8]> {
    use pb::mutation::Kind;
    let mut keys = Vec::with_capacity(mutations.len());
    for mutation in mutations {
        match &mutation.kind {
            Some(Kind::Set(set)) => keys.push(set.key.as_slice()),
            Some(Kind::Delete(delete)) => keys.push(delete.key.as_slice()),
            Some(Kind::Sum(n) | Kind::Min(n) | Kind::Max(n)) => keys.push(n.key.as_slice()),
            Some(Kind::Sadd(m) | Kind::Srem(m)) => keys.push(m.key.as_slice()),
            Some(Kind::DeleteRange(_)) | None => return Vec::new(),
        }
    }
    keys
}

/// A pause of between half and all of `pause`, so writes stalled together do not all come
/// back at once.
fn jittered(pause: std::time::Duration) -> std::time::Duration {
    pause.mul_f64(rand::random_range(0.5..1.0))
}

/// The text of an error whose outcome is unknown, without its `INDEFINITE:` preamble.
fn cause(error: &Error) -> String {
    match error {
        Error::Indefinite(cause) => cause.clone(),
        other => other.to_string(),
    }
}

/// The error a write gives up with: when a copy's outcome was unknown (`maybe_applied`),
/// indefinite, naming the request id it may still apply under, at most once, whatever the
/// last copy was told; otherwise `error` itself.
fn unresolved(maybe_applied: Option<String>, error: Error, request_id: &[u8]) -> Error {
    let cause = match maybe_applied {
        Some(cause) => cause,
        None => return error,
    };
    let id: String = request_id.iter().map(|b| format!("{b:02x}")).collect();
    Error::Indefinite(format!(
        "{cause}; sent again until the write deadline, it may still apply, at most once, under request id {id}"
    ))
}
