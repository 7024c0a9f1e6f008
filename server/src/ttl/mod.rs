//! Expiry: reclaiming the space of expired entries.
//!
//! Reads never depend on this module: every read filters expired values itself, so a
//! value is invisible from the millisecond it expires whether or not it was reclaimed.
//! Reclaiming has two mechanisms:
//! - [`sweeper`]: walks the expiry index up to "now" and hands the due entries to the
//!   commit pipeline, which deletes those whose value still carries that expiry.
//! - [`compaction_filter`]: drops expired records while RocksDB compacts, a backstop
//!   for entries the sweeper has not reached.
//!
//! [`TtlSettings`] is the `[ttl]` section of the configuration file.

pub mod compaction_filter;
pub mod sweeper;

use std::time::Duration;

/// Expiry's settings (`[ttl]` in docs/config.example.toml).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtlSettings {
    /// How often the sweepers (of strong keys and of cache keys) look for due entries;
    /// reads never depend on them.
    #[serde(with = "crate::duration_text")]
    pub sweep_interval: Duration,
}

impl Default for TtlSettings {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(1),
        }
    }
}

/// An expiry index entry that is due: the key's value expired at `expires_at_ms`, unless
/// it was overwritten since.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DueExpiry {
    pub expires_at_ms: u64,
    pub key: Vec<u8>,
}
