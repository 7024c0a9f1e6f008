//! Which consistency class each key belongs to: rules by encoded key prefix, replicated
//! through Raft (the `keyspace` column family, part of every snapshot) and cached here.
//!
//! The longest matching prefix decides. The empty prefix is the default rule; without
//! one, keys are strong (as in Deno KV). Because tuple-encoded parts are self-delimiting,
//! a byte prefix of encoded keys is a tuple prefix: the rule for `["cache"]` covers
//! `["cache", ...]` and nothing else.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::storage::{ColumnFamily, Engine, ScanRange, StorageError, StorageResult, WriteBatch};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Class {
    Strong,
    Cache,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Strong => "strong",
            Class::Cache => "cache",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "strong" => Some(Class::Strong),
            "cache" => Some(Class::Cache),
            _ => None,
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            Class::Strong => 0,
            Class::Cache => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Class::Strong),
            1 => Some(Class::Cache),
            _ => None,
        }
    }
}

/// The class rules in force on this node (as of its last applied entry).
#[derive(Debug, Default)]
pub struct Keyspace {
    rules: RwLock<BTreeMap<Vec<u8>, Class>>,
}

impl Keyspace {
    pub fn load(engine: &dyn Engine) -> StorageResult<Self> {
        let keyspace = Self::default();
        keyspace.reload(engine)?;
        Ok(keyspace)
    }

    /// Re-reads the rules after a rule was applied or a snapshot installed.
    pub fn reload(&self, engine: &dyn Engine) -> StorageResult<()> {
        let mut rules = BTreeMap::new();
        for item in engine.scan(ColumnFamily::Keyspace, ScanRange::all(), false) {
            let (prefix, value) = item?;
            let class = value
                .first()
                .copied()
                .and_then(Class::from_byte)
                .ok_or_else(|| StorageError::Corrupted(format!("unknown class {value:?} in the keyspace rules")))?;
            rules.insert(prefix, class);
        }
        *self.rules.write().expect("keyspace lock") = rules;
        Ok(())
    }

    /// Stages a rule in a batch (applied on every replica alike).
    pub fn stage(batch: &mut WriteBatch, prefix: &[u8], class: Class) {
        batch.put(ColumnFamily::Keyspace, prefix.to_vec(), vec![class.to_byte()]);
    }

    pub fn class_of(&self, key: &[u8]) -> Class {
        class_in(&self.rules.read().expect("keyspace lock"), key)
    }

    /// The classes keys in `[start, end)` can have (`end` empty: unbounded).
    pub fn classes_in(&self, start: &[u8], end: &[u8]) -> (bool, bool) {
        let rules = self.rules.read().expect("keyspace lock");
        let inside = |key: &[u8]| key > start && (end.is_empty() || key < end);
        let mut classes = vec![class_in(&rules, start)];
        // Where a rule's keys start inside the range its class begins, and where they end
        // inside it whatever encloses it resumes (another rule's class, or the default).
        for (prefix, class) in rules.iter() {
            if inside(prefix) {
                classes.push(*class);
            }
            if let Some(after) = edgekv_proto::Key::prefix_successor(prefix)
                && inside(&after)
            {
                classes.push(class_in(&rules, &after));
            }
        }
        (classes.contains(&Class::Strong), classes.contains(&Class::Cache))
    }

    /// Whether any rule puts keys in the cache class.
    pub fn has_cache_rules(&self) -> bool {
        self.rules
            .read()
            .expect("keyspace lock")
            .values()
            .any(|c| *c == Class::Cache)
    }

    /// Every rule, in prefix order (the empty prefix, the default, first).
    pub fn rules(&self) -> Vec<(Vec<u8>, Class)> {
        let rules = self.rules.read().expect("keyspace lock");
        rules.iter().map(|(p, c)| (p.clone(), *c)).collect()
    }
}

/// The class of `key` under `rules`: its longest matching prefix's, else strong. Every
/// prefix of a key sorts at or before it, and a longer prefix after a shorter one, so the
/// first match walking back from the key is the longest.
pub fn class_in(rules: &BTreeMap<Vec<u8>, Class>, key: &[u8]) -> Class {
    rules
        .range(..=key.to_vec())
        .rev()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map_or(Class::Strong, |(_, class)| *class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Durability, MemoryEngine};

    #[test]
    fn the_longest_matching_prefix_decides_and_unmatched_keys_are_strong() {
        let engine = MemoryEngine::default();
        let mut batch = WriteBatch::default();
        Keyspace::stage(&mut batch, b"a", Class::Cache);
        Keyspace::stage(&mut batch, b"ab", Class::Strong);
        Keyspace::stage(&mut batch, b"abc", Class::Cache);
        engine.write(batch, Durability::Sync).unwrap();
        let keyspace = Keyspace::load(&engine).unwrap();
        assert_eq!(keyspace.class_of(b"b"), Class::Strong);
        assert_eq!(keyspace.class_of(b"a"), Class::Cache);
        assert_eq!(keyspace.class_of(b"aa"), Class::Cache);
        assert_eq!(keyspace.class_of(b"abz"), Class::Strong);
        assert_eq!(keyspace.class_of(b"abcd"), Class::Cache);
        assert_eq!(keyspace.classes_in(b"b", b"c"), (true, false));
        assert_eq!(keyspace.classes_in(b"aa", b"b"), (true, true));
        // A range starting inside a nested rule and running past its end meets the class
        // that resumes after it.
        assert_eq!(keyspace.classes_in(b"abcd", b"b"), (true, true));
        assert_eq!(keyspace.classes_in(b"abcd", b"abc\xff"), (false, true));
        assert_eq!(
            keyspace.classes_in(b"abcd", b"abd"),
            (false, true),
            "abd is where ab resumes"
        );
        assert_eq!(keyspace.classes_in(b"abcd", b"abda"), (true, true));

        let mut batch = WriteBatch::default();
        Keyspace::stage(&mut batch, b"", Class::Cache);
        engine.write(batch, Durability::Sync).unwrap();
        keyspace.reload(&engine).unwrap();
        assert_eq!(keyspace.class_of(b"b"), Class::Cache, "the empty prefix is the default");
        assert_eq!(keyspace.class_of(b"abz"), Class::Strong);
    }
}
