//! The RocksDB compaction filter for the data column family: drops records whose expiry
//! has passed. RocksDB turns a dropped record into a deletion marker, so an older version
//! of the key in a lower level cannot resurface. The expiry index entry of a dropped
//! record is left for the sweeper, which removes index entries whose value is gone.

use std::sync::Arc;

use crate::clock::Clock;
use crate::storage::DropFilter;
use crate::storage::codec::Envelope;

pub fn expired_records(clock: Arc<dyn Clock>) -> DropFilter {
    Box::new(move |_key: &[u8], value: &[u8]| Envelope::peek_expiry(value).is_some_and(|at| at <= clock.now_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::storage::codec::Envelope;
    use edgekv_proto::Versionstamp;
    use edgekv_proto::v1::ValueEncoding;

    fn record(expires_at_ms: Option<u64>) -> Vec<u8> {
        Envelope {
            encoding: ValueEncoding::Bytes,
            versionstamp: Versionstamp::new(1, 0),
            expires_at_ms,
            metadata: None,
            value: b"v".to_vec(),
        }
        .encode()
    }

    #[test]
    fn drops_only_expired_records() {
        let clock = ManualClock::new(1_000);
        let filter = expired_records(Arc::new(clock.clone()));
        assert!(!filter(b"k", &record(None)));
        assert!(!filter(b"k", &record(Some(1_001))));
        assert!(filter(b"k", &record(Some(1_000))));
        clock.set(2_000);
        assert!(filter(b"k", &record(Some(1_001))));
    }

    #[test]
    fn rocksdb_compaction_drops_expired_records() {
        use crate::storage::{ColumnFamily, Durability, Engine, RocksEngine, RocksOptions, WriteBatch};
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        let engine = RocksEngine::open(
            dir.path(),
            RocksOptions {
                data_drop_filter: Some(expired_records(Arc::new(clock.clone()))),
            },
        )
        .unwrap();
        let mut batch = WriteBatch::default();
        batch.put(ColumnFamily::Data, b"expiring".to_vec(), record(Some(1_500)));
        batch.put(ColumnFamily::Data, b"forever".to_vec(), record(None));
        engine.write(batch, Durability::Sync).unwrap();
        engine.flush().unwrap();
        engine.compact_data();
        assert!(
            engine.get(ColumnFamily::Data, b"expiring").unwrap().is_some(),
            "not expired yet"
        );
        clock.set(1_500);
        engine.compact_data();
        assert_eq!(engine.get(ColumnFamily::Data, b"expiring").unwrap(), None);
        assert!(engine.get(ColumnFamily::Data, b"forever").unwrap().is_some());
    }
}
