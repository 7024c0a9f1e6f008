//! The class rules in force on this node: stored in the `keyspace` column family (written
//! through Raft, part of every snapshot) and held in memory for every request's routing.
//! Which class a key is in under the rules is edgekv-proto's [`keyspace`] rule, the one
//! the SDK routes by too.
//!
//! [`keyspace`]: edgekv_proto::keyspace

use std::sync::RwLock;

pub use edgekv_proto::keyspace::{Class, Rules};
use edgekv_proto::keyspace::{class_of, classes_in};

use crate::storage::{ColumnFamily, Engine, ScanRange, StorageError, StorageResult, WriteBatch};

/// A class as stored in the `keyspace` column family.
fn class_to_byte(class: Class) -> u8 {
    match class {
        Class::Strong => 0,
        Class::Cache => 1,
    }
}

fn class_from_byte(byte: u8) -> Option<Class> {
    match byte {
        0 => Some(Class::Strong),
        1 => Some(Class::Cache),
        _ => None,
    }
}

/// The class rules in force on this node (as of its last applied entry).
#[derive(Debug, Default)]
pub struct Keyspace {
    rules: RwLock<Rules>,
}

impl Keyspace {
    pub fn load(engine: &dyn Engine) -> StorageResult<Self> {
        let keyspace = Self::default();
        keyspace.reload(engine)?;
        Ok(keyspace)
    }

    /// Re-reads the rules after a rule was applied or a snapshot installed.
    pub fn reload(&self, engine: &dyn Engine) -> StorageResult<()> {
        let mut rules = Rules::new();
        for item in engine.scan(ColumnFamily::Keyspace, ScanRange::all(), false) {
            let (prefix, value) = item?;
            let class = value
                .first()
                .copied()
                .and_then(class_from_byte)
                .ok_or_else(|| StorageError::Corrupted(format!("unknown class {value:?} in the keyspace rules")))?;
            rules.insert(prefix, class);
        }
        *self.rules.write().expect("keyspace lock") = rules;
        Ok(())
    }

    /// Stages a rule in a batch (applied on every replica alike).
    pub fn stage(batch: &mut WriteBatch, prefix: &[u8], class: Class) {
        batch.put(ColumnFamily::Keyspace, prefix.to_vec(), vec![class_to_byte(class)]);
    }

    pub fn class_of(&self, key: &[u8]) -> Class {
        class_of(&self.rules.read().expect("keyspace lock"), key)
    }

    /// The classes keys in `[start, end)` can have (`end` empty: unbounded), as
    /// `(strong, cache)`.
    pub fn classes_in(&self, start: &[u8], end: &[u8]) -> (bool, bool) {
        classes_in(&self.rules.read().expect("keyspace lock"), start, end)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Durability, MemoryEngine};

    #[test]
    fn rules_survive_storage_and_apply_the_shared_rule() {
        let engine = MemoryEngine::default();
        let mut batch = WriteBatch::default();
        Keyspace::stage(&mut batch, b"a", Class::Cache);
        Keyspace::stage(&mut batch, b"ab", Class::Strong);
        engine.write(batch, Durability::Sync).unwrap();
        let keyspace = Keyspace::load(&engine).unwrap();
        assert_eq!(keyspace.class_of(b"aa"), Class::Cache);
        assert_eq!(keyspace.class_of(b"abz"), Class::Strong);
        assert_eq!(keyspace.classes_in(b"aa", b"b"), (true, true));
        assert!(keyspace.has_cache_rules());

        let mut batch = WriteBatch::default();
        Keyspace::stage(&mut batch, b"", Class::Cache);
        engine.write(batch, Durability::Sync).unwrap();
        keyspace.reload(&engine).unwrap();
        assert_eq!(keyspace.class_of(b"b"), Class::Cache, "the empty prefix is the default");
        assert_eq!(keyspace.rules().first(), Some(&(Vec::new(), Class::Cache)));
    }
}
