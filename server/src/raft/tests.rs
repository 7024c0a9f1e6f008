//! openraft's storage conformance suite, run against the RocksDB log store and state
//! machine.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};

use super::state_machine::{AppliedBatch, Applier, CommittedProposal, Refused};
use super::types::{StorageError, TypeConfig};
use super::{LogStore, StateMachineStore};
use crate::storage::{Durability, Engine, RocksEngine, RocksOptions, StorageResult, WriteBatch};

/// Answers every request with its own bytes and writes nothing: the suite exercises Raft
/// bookkeeping (blank and membership entries), not the domain.
struct EchoApplier;

impl Applier for EchoApplier {
    fn check_proposal(&self, _: &[u8]) -> Result<(), Refused> {
        Ok(())
    }
    fn apply(&self, _: &dyn Engine, proposals: &[CommittedProposal<'_>]) -> StorageResult<AppliedBatch> {
        Ok(AppliedBatch {
            batch: WriteBatch::default(),
            answers: proposals.iter().map(|p| p.body.to_vec()).collect(),
            changed_keys: Vec::new(),
        })
    }
    fn applied(&self, _: Vec<Vec<u8>>) {}
    fn replaced(&self) {}
}

struct RocksStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for RocksStoreBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine: Arc<dyn Engine> =
            Arc::new(RocksEngine::open(dir.path(), RocksOptions::default()).expect("open RocksDB"));
        let log_store = LogStore::new(engine.clone(), Durability::Sync);
        let state_machine = StateMachineStore::open(engine, Arc::new(EchoApplier), Default::default())?;
        Ok((dir, log_store, state_machine))
    }
}

#[test]
fn rocksdb_storage_passes_openraft_conformance_suite() {
    Suite::test_all(RocksStoreBuilder).expect("storage conformance");
}
