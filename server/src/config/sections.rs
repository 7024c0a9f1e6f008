//! The configuration file's sections, their defaults, and the settings each subsystem takes
//! from them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Unique id of this node in its cluster (a positive integer; Raft's member id).
    pub id: u64,
    /// The region the node runs in; clients prefer nodes of their own region.
    pub region: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// fsync the write-ahead log before acknowledging a write. Turning it off keeps
    /// acknowledged writes across a process crash but not across power loss.
    pub sync_writes: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address of the client gRPC API.
    pub listen: SocketAddr,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvConnectConfig {
    /// Serve the Deno KV Connect protocol (Deno.openKv("http://...")).
    pub enabled: bool,
    /// Address of the KV Connect listener (HTTP/1.1 and h2c on one port).
    pub listen: SocketAddr,
    /// Access tokens clients present in the metadata exchange (DENO_KV_ACCESS_TOKEN).
    pub access_tokens: Vec<String>,
    /// A file with one access token per line, read at startup; empty for none.
    pub token_file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Address of the peer listener (Raft and forwarding between nodes; never clients).
    pub peer_listen: SocketAddr,
    /// The address other members use to reach this node's peer listener; empty means
    /// `peer_listen` (set it when listening on 0.0.0.0).
    pub peer_advertise: String,
    /// The voters of a new cluster, `ID=REGION@PEER_ADDR,...` (etcd's --initial-cluster).
    /// Empty, with no `join`: a one-voter cluster of this node alone.
    pub initial_cluster: String,
    /// Peer address of any member of an existing cluster; this node joins it as a learner.
    pub join: String,
    /// Start empty and wait for the cluster to add this node (`kvctl member add`).
    pub await_membership: bool,
    /// Serve the fault-injection admin call (simulated WAN latency and partitions).
    pub allow_fault_injection: bool,
    /// How often the leader heartbeats its followers.
    #[serde(with = "humantime_serde_compat")]
    pub heartbeat: Duration,
    /// Silence after which a follower calls an election (randomized up to twice this).
    /// Keep it at least 10x the largest round trip between regions.
    #[serde(with = "humantime_serde_compat")]
    pub election_timeout: Duration,
    /// How long a strong request waits for a leader, quorum or commit before it fails.
    #[serde(with = "humantime_serde_compat")]
    pub request_timeout: Duration,
    /// Take a snapshot (and purge the log before it) every this many entries.
    pub snapshot_after_entries: u64,
    /// Entries kept after a snapshot for followers that lag a little.
    pub entries_kept_after_snapshot: u64,
    /// Simulated WAN links between regions (one-way delay each direction). Off when empty.
    pub wan_links: Vec<WanLinkConfig>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanLinkConfig {
    pub a: String,
    pub b: String,
    pub one_way_delay_ms: u32,
    #[serde(default)]
    pub jitter_ms: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtlConfig {
    /// How often the expiry sweeper looks for due entries (reads never depend on it).
    #[serde(with = "humantime_serde_compat")]
    pub sweep_interval: Duration,
}

/// The cache class's replication (see docs/cluster.md, "Cache class").
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How far ahead of ours a peer's clock may be before its updates are refused.
    #[serde(with = "humantime_serde_compat")]
    pub max_clock_skew: Duration,
    /// How long tombstones of deleted and expired cache keys are kept. Must be longer
    /// than the longest partition the cluster is meant to survive.
    #[serde(with = "humantime_serde_compat")]
    pub tombstone_grace: Duration,
    /// Outbox entries kept for peers that do not take them (then anti-entropy repairs).
    pub outbox_limit: u64,
    /// How often a node compares digests with the next peer in turn.
    #[serde(with = "humantime_serde_compat")]
    pub anti_entropy_interval: Duration,
    /// How long shipping to another region waits to batch writes.
    #[serde(with = "humantime_serde_compat")]
    pub cross_region_linger: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_clock_skew: Duration::from_secs(1),
            tombstone_grace: Duration::from_secs(24 * 3600),
            outbox_limit: 1_000_000,
            anti_entropy_interval: Duration::from_secs(1),
            cross_region_linger: Duration::from_millis(5),
        }
    }
}

impl CacheConfig {
    pub fn settings(&self) -> crate::cache::CacheSettings {
        crate::cache::CacheSettings {
            max_clock_skew_ms: self.max_clock_skew.as_millis() as u64,
            tombstone_grace_ms: self.tombstone_grace.as_millis() as u64,
            outbox_limit: self.outbox_limit,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter, such as `info` or `edgekv_server=debug,info`.
    pub level: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            id: 1,
            region: "local".into(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./edgekv-data"),
            sync_writes: true,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
        }
    }
}

impl Default for KvConnectConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 7071)),
            access_tokens: Vec::new(),
            token_file: PathBuf::new(),
        }
    }
}

impl KvConnectConfig {
    /// The configured tokens plus those in the token file.
    pub fn all_access_tokens(&self) -> Result<Vec<String>, ConfigError> {
        let mut tokens = self.access_tokens.clone();
        if !self.token_file.as_os_str().is_empty() {
            let text = std::fs::read_to_string(&self.token_file).map_err(|e| ConfigError::Read {
                path: self.token_file.clone(),
                reason: e.to_string(),
            })?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        Ok(tokens)
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        let raft = crate::raft::RaftSettings::default();
        Self {
            peer_listen: SocketAddr::from(([127, 0, 0, 1], 7080)),
            peer_advertise: String::new(),
            initial_cluster: String::new(),
            join: String::new(),
            await_membership: false,
            allow_fault_injection: false,
            heartbeat: raft.heartbeat,
            election_timeout: raft.election_timeout,
            request_timeout: raft.request_timeout,
            snapshot_after_entries: raft.snapshot_after_entries,
            entries_kept_after_snapshot: raft.entries_kept_after_snapshot,
            wan_links: Vec::new(),
        }
    }
}

/// One voter of `--initial-cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMember {
    pub id: u64,
    pub region: String,
    pub peer_addr: String,
}

impl ClusterConfig {
    pub fn raft_settings(&self) -> crate::raft::RaftSettings {
        crate::raft::RaftSettings {
            heartbeat: self.heartbeat,
            election_timeout: self.election_timeout,
            request_timeout: self.request_timeout,
            snapshot_after_entries: self.snapshot_after_entries,
            entries_kept_after_snapshot: self.entries_kept_after_snapshot,
        }
    }

    /// The address peers reach this node at.
    pub fn advertised_peer_addr(&self, bound: SocketAddr) -> String {
        if self.peer_advertise.is_empty() {
            bound.to_string()
        } else {
            self.peer_advertise.clone()
        }
    }

    /// Parses `ID=REGION@PEER_ADDR,...`.
    pub fn initial_members(&self) -> Result<Vec<InitialMember>, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "cluster.initial_cluster",
            reason,
        };
        let mut members: Vec<InitialMember> = Vec::new();
        for item in self.initial_cluster.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, rest) = item
                .split_once('=')
                .ok_or_else(|| invalid(format!("{item:?} is not ID=REGION@PEER_ADDR")))?;
            let (region, peer_addr) = rest
                .split_once('@')
                .ok_or_else(|| invalid(format!("{item:?} is not ID=REGION@PEER_ADDR")))?;
            let id: u64 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| invalid(format!("member id {id:?} is not a positive integer")))?;
            if !is_name(region) {
                return Err(invalid(format!("region {region:?} of member {id} is not a valid name")));
            }
            if peer_addr.is_empty() || !peer_addr.contains(':') {
                return Err(invalid(format!(
                    "peer address {peer_addr:?} of member {id} is not HOST:PORT"
                )));
            }
            if members.iter().any(|m| m.id == id) {
                return Err(invalid(format!("member id {id} is listed twice")));
            }
            members.push(InitialMember {
                id,
                region: region.to_string(),
                peer_addr: peer_addr.to_string(),
            });
        }
        Ok(members)
    }
}

pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl Default for TtlConfig {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(1),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        // openraft narrates every election and replication step at info.
        Self {
            level: "info,openraft=warn".into(),
        }
    }
}

/// Durations in the file are humantime strings ("1s", "250ms").
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
