//! The client's copy of the cluster's class rules (which key prefixes are cache keys), so
//! requests on cache keys go to the client's own region instead of the Raft leader: a
//! cache key is written and read on the nearest node, and keeps working there when the
//! region is cut off from the leader.
//!
//! The rules are fetched from the nearest node and cached for [`FRESH_FOR`]. A node that
//! cannot answer leaves the last rules in place (none at first: every key is then treated
//! as strong, which is always correct, only slower for cache keys).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use edgekv_proto::Key;
use edgekv_proto::keyspace::{Class, class_of, classes_in};
use edgekv_proto::v1 as pb;

pub(crate) use edgekv_proto::keyspace::Rules;

/// How long fetched rules are used before asking again.
const FRESH_FOR: Duration = Duration::from_secs(10);
/// How long a rules fetch may take before the request goes on without it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Default)]
pub(crate) struct KeyspaceCache {
    fetched: RwLock<Option<(Instant, Arc<Rules>)>>,
    /// One fetch at a time; the others use the rules they have.
    fetching: tokio::sync::Mutex<()>,
}

/// Whether `key` is a cache key under `rules` (the server's own rule, from edgekv-proto).
pub(crate) fn is_cache(rules: &Rules, key: &[u8]) -> bool {
    class_of(rules, key) == Class::Cache
}

/// Whether `keys` are all of one class (all cache keys, or none), so one write may name
/// them together.
pub(crate) fn one_class(rules: &Rules, keys: &[&[u8]]) -> bool {
    let cache = keys.iter().filter(|key| is_cache(rules, key)).count();
    cache == 0 || cache == keys.len()
}

/// Whether every key in `[start, end)` is a cache key.
pub(crate) fn range_is_cache(rules: &Rules, start: &[u8], end: &[u8]) -> bool {
    classes_in(rules, start, end) == (false, true)
}

/// The `[start, end)` a list selector covers (prefix ranges end before `prefix + 0xff`).
pub(crate) fn selector_range(prefix: Option<&[u8]>, start: Option<&[u8]>, end: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let from = start
        .map(<[u8]>::to_vec)
        .or(prefix.map(<[u8]>::to_vec))
        .unwrap_or_default();
    let to = end
        .map(<[u8]>::to_vec)
        .or(prefix.map(Key::prefix_end))
        .unwrap_or_else(|| vec![0xff]);
    (from, to)
}

impl KeyspaceCache {
    /// The rules, fetched again through `admin` when stale.
    pub(crate) async fn rules<F, Fut>(&self, fetch: F) -> Arc<Rules>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<pb::KeyspaceResponse, tonic::Status>>,
    {
        if let Some((at, rules)) = self.fetched.read().expect("keyspace lock").as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return rules.clone();
        }
        let Ok(_only_fetch) = self.fetching.try_lock() else {
            return self.current();
        };
        self.fetch(fetch).await
    }

    /// The rules fetched now (after any fetch under way), however fresh the last ones: for a
    /// node's word that they changed.
    pub(crate) async fn refetch<F, Fut>(&self, fetch: F) -> Arc<Rules>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<pb::KeyspaceResponse, tonic::Status>>,
    {
        let _only_fetch = self.fetching.lock().await;
        self.fetch(fetch).await
    }

    /// The last rules fetched (none before the first answer).
    fn current(&self) -> Arc<Rules> {
        self.fetched
            .read()
            .expect("keyspace lock")
            .as_ref()
            .map(|(_, rules)| rules.clone())
            .unwrap_or_default()
    }

    async fn fetch<F, Fut>(&self, fetch: F) -> Arc<Rules>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<pb::KeyspaceResponse, tonic::Status>>,
    {
        match tokio::time::timeout(FETCH_TIMEOUT, fetch()).await {
            Ok(Ok(answer)) => {
                // A class this SDK does not know is routed as strong: always correct.
                let rules: Rules = answer
                    .rules
                    .into_iter()
                    .map(|rule| (rule.prefix, Class::parse(&rule.class).unwrap_or(Class::Strong)))
                    .collect();
                let rules = Arc::new(rules);
                *self.fetched.write().expect("keyspace lock") = Some((Instant::now(), rules.clone()));
                rules
            }
            // An older node without the call, or none reachable: try again later.
            _ => {
                let rules = self.current();
                *self.fetched.write().expect("keyspace lock") = Some((Instant::now(), rules.clone()));
                rules
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_cache_only_when_every_class_inside_is() {
        let rules: Rules = [(b"c".to_vec(), Class::Cache), (b"cs".to_vec(), Class::Strong)].into();
        assert!(is_cache(&rules, b"ca"));
        assert!(!is_cache(&rules, b"csx"));
        assert!(range_is_cache(&rules, b"ca", b"cb"));
        assert!(!range_is_cache(&rules, b"ca", b"d"));
        let nested: Rules = [(b"c".to_vec(), Class::Cache)].into();
        assert!(range_is_cache(&nested, b"cm", b"d"), "d is where strong keys resume");
        assert!(!range_is_cache(&nested, b"cm", b"da"));
    }

    #[test]
    fn keys_are_of_one_class_when_all_or_none_are_cache_keys() {
        let rules: Rules = [(b"c".to_vec(), Class::Cache)].into();
        assert!(one_class(&rules, &[b"ca", b"cb"]));
        assert!(one_class(&rules, &[b"a", b"b"]));
        assert!(!one_class(&rules, &[b"ca", b"b"]));
        assert!(one_class(&Rules::new(), &[b"ca", b"b"]));
    }
}
