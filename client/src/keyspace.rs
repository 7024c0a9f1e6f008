//! The client's copy of the cluster's class rules (which key prefixes are cache keys), so
//! requests on cache keys go to the client's own region instead of the Raft leader: a
//! cache key is written and read on the nearest node, and keeps working there when the
//! region is cut off from the leader.
//!
//! The rules are fetched from the nearest node and cached for [`FRESH_FOR`]. A node that
//! cannot answer leaves the last rules in place (none at first: every key is then treated
//! as strong, which is always correct, only slower for cache keys).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use edgekv_proto::Key;
use edgekv_proto::v1 as pb;

/// How long fetched rules are used before asking again.
const FRESH_FOR: Duration = Duration::from_secs(10);
/// How long a rules fetch may take before the request goes on without it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// Prefix -> whether keys under it are cache keys.
pub(crate) type Rules = BTreeMap<Vec<u8>, bool>;

#[derive(Default)]
pub(crate) struct KeyspaceCache {
    fetched: RwLock<Option<(Instant, Arc<Rules>)>>,
    /// One fetch at a time; the others use the rules they have.
    fetching: tokio::sync::Mutex<()>,
}

/// Whether `key` is a cache key: its longest matching prefix's class.
pub(crate) fn is_cache(rules: &Rules, key: &[u8]) -> bool {
    rules
        .range(..=key.to_vec())
        .rev()
        .find(|(prefix, _)| key.starts_with(prefix))
        .is_some_and(|(_, cache)| *cache)
}

/// Whether `keys` are all of one class (all cache keys, or none), so one write may name
/// them together.
pub(crate) fn one_class(rules: &Rules, keys: &[&[u8]]) -> bool {
    let cache = keys.iter().filter(|key| is_cache(rules, key)).count();
    cache == 0 || cache == keys.len()
}

/// Whether every key in `[start, end)` is a cache key.
pub(crate) fn range_is_cache(rules: &Rules, start: &[u8], end: &[u8]) -> bool {
    // The class at the start, of every rule starting inside, and of whatever resumes
    // where a rule's keys end.
    let inside = |key: &[u8]| key > start && key < end;
    is_cache(rules, start)
        && rules.iter().all(|(prefix, cache)| {
            let resumes_cache =
                Key::prefix_successor(prefix).is_none_or(|after| !inside(&after) || is_cache(rules, &after));
            (!inside(prefix) || *cache) && resumes_cache
        })
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
                let rules: Rules = answer
                    .rules
                    .into_iter()
                    .map(|rule| (rule.prefix, rule.class == "cache"))
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
    fn the_longest_prefix_decides_and_ranges_need_every_rule_inside_to_be_cache() {
        let rules: Rules = [(b"c".to_vec(), true), (b"cs".to_vec(), false)].into();
        assert!(is_cache(&rules, b"ca"));
        assert!(!is_cache(&rules, b"csx"));
        assert!(!is_cache(&rules, b"d"));
        assert!(range_is_cache(&rules, b"ca", b"cb"));
        assert!(!range_is_cache(&rules, b"ca", b"d"));
        let nested: Rules = [(b"c".to_vec(), true)].into();
        assert!(range_is_cache(&nested, b"cm", b"c\xff"));
        assert!(range_is_cache(&nested, b"cm", b"d"), "d is where strong keys resume");
        assert!(!range_is_cache(&nested, b"cm", b"da"));
        let everything: Rules = [(Vec::new(), true)].into();
        assert!(range_is_cache(&everything, b"", b"\xff"));
    }

    #[test]
    fn keys_are_of_one_class_when_all_or_none_are_cache_keys() {
        let rules: Rules = [(b"c".to_vec(), true)].into();
        assert!(one_class(&rules, &[b"ca", b"cb"]));
        assert!(one_class(&rules, &[b"a", b"b"]));
        assert!(!one_class(&rules, &[b"ca", b"b"]));
        assert!(one_class(&Rules::new(), &[b"ca", b"b"]));
    }
}
