//! Node configuration: defaults < TOML file < `EDGEKV_*` environment < command-line flags.
//!
//! The file is strict: an unknown key is an error, so a typo never silently falls back
//! to a default. `docs/config.example.toml` lists every key with its default and is
//! parsed by a test, so it cannot drift from this module.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("invalid config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    pub storage: StorageConfig,
    pub api: ApiConfig,
    pub kv_connect: KvConnectConfig,
    pub cluster: ClusterConfig,
    pub ttl: TtlConfig,
    pub cache: CacheConfig,
    pub log: LogConfig,
}

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

fn is_name(s: &str) -> bool {
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

/// Settings given on the command line or in `EDGEKV_*` variables; `None` keeps the value
/// from the file or the default.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub node_id: Option<u64>,
    pub region: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub sync_writes: Option<bool>,
    pub sweep_interval: Option<Duration>,
    pub log_level: Option<String>,
    pub kv_connect_enabled: Option<bool>,
    pub kv_connect_listen: Option<SocketAddr>,
    pub kv_connect_token: Option<String>,
    pub kv_connect_token_file: Option<PathBuf>,
    pub peer_listen: Option<SocketAddr>,
    pub peer_advertise: Option<String>,
    pub initial_cluster: Option<String>,
    pub join: Option<String>,
    pub await_membership: Option<bool>,
    pub allow_fault_injection: Option<bool>,
    pub heartbeat: Option<Duration>,
    pub election_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
    pub snapshot_after_entries: Option<u64>,
    pub entries_kept_after_snapshot: Option<u64>,
    pub tombstone_grace: Option<Duration>,
    pub outbox_limit: Option<u64>,
    pub anti_entropy_interval: Option<Duration>,
    pub max_clock_skew: Option<Duration>,
}

impl Config {
    pub fn parse_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
                Self::parse_toml(&text, path)?
            }
            None => Self::default(),
        };
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    pub fn apply(&mut self, overrides: Overrides) {
        let Overrides {
            node_id,
            region,
            data_dir,
            listen,
            sync_writes,
            sweep_interval,
            log_level,
            kv_connect_enabled,
            kv_connect_listen,
            kv_connect_token,
            kv_connect_token_file,
            peer_listen,
            peer_advertise,
            initial_cluster,
            join,
            await_membership,
            allow_fault_injection,
            heartbeat,
            election_timeout,
            request_timeout,
            snapshot_after_entries,
            entries_kept_after_snapshot,
            tombstone_grace,
            outbox_limit,
            anti_entropy_interval,
            max_clock_skew,
        } = overrides;
        for (value, slot) in [
            (tombstone_grace, &mut self.cache.tombstone_grace),
            (anti_entropy_interval, &mut self.cache.anti_entropy_interval),
            (max_clock_skew, &mut self.cache.max_clock_skew),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(v) = outbox_limit {
            self.cache.outbox_limit = v;
        }
        let cluster = &mut self.cluster;
        for (value, slot) in [
            (peer_advertise, &mut cluster.peer_advertise),
            (initial_cluster, &mut cluster.initial_cluster),
            (join, &mut cluster.join),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
        for (value, slot) in [
            (heartbeat, &mut cluster.heartbeat),
            (election_timeout, &mut cluster.election_timeout),
            (request_timeout, &mut cluster.request_timeout),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(v) = peer_listen {
            cluster.peer_listen = v;
        }
        if let Some(v) = allow_fault_injection {
            cluster.allow_fault_injection = v;
        }
        if let Some(v) = await_membership {
            cluster.await_membership = v;
        }
        if let Some(v) = snapshot_after_entries {
            cluster.snapshot_after_entries = v;
        }
        if let Some(v) = entries_kept_after_snapshot {
            cluster.entries_kept_after_snapshot = v;
        }
        if let Some(v) = kv_connect_enabled {
            self.kv_connect.enabled = v;
        }
        if let Some(v) = kv_connect_listen {
            self.kv_connect.listen = v;
        }
        // A token given on the command line or in the environment replaces the file's.
        if let Some(v) = kv_connect_token {
            self.kv_connect.access_tokens = vec![v];
        }
        if let Some(v) = kv_connect_token_file {
            self.kv_connect.token_file = v;
        }
        if let Some(v) = node_id {
            self.node.id = v;
        }
        if let Some(v) = region {
            self.node.region = v;
        }
        if let Some(v) = data_dir {
            self.storage.data_dir = v;
        }
        if let Some(v) = listen {
            self.api.listen = v;
        }
        if let Some(v) = sync_writes {
            self.storage.sync_writes = v;
        }
        if let Some(v) = sweep_interval {
            self.ttl.sweep_interval = v;
        }
        if let Some(v) = log_level {
            self.log.level = v;
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = is_name;
        if self.node.id == 0 {
            return Err(ConfigError::Invalid {
                key: "node.id",
                reason: "must be a positive integer".into(),
            });
        }
        if !name_ok(&self.node.region) {
            return Err(ConfigError::Invalid {
                key: "node.region",
                reason: format!(
                    "{:?} must be non-empty letters, digits, '-', '_' or '.'",
                    self.node.region
                ),
            });
        }
        if self.kv_connect.enabled {
            let tokens = self.kv_connect.all_access_tokens()?;
            if tokens.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "kv_connect.access_tokens",
                    reason: "KV Connect is enabled but has no access token; set kv_connect.access_tokens, \
                             kv_connect.token_file or --kv-connect-token, or set kv_connect.enabled = false"
                        .into(),
                });
            }
            if let Some(short) = tokens.iter().find(|t| t.len() < 12) {
                return Err(ConfigError::Invalid {
                    key: "kv_connect.access_tokens",
                    reason: format!("token {short:?} is shorter than 12 characters (Deno refuses such tokens)"),
                });
            }
        }
        let cluster = &self.cluster;
        let members = cluster.initial_members()?;
        let ways = [!members.is_empty(), !cluster.join.is_empty(), cluster.await_membership];
        if ways.iter().filter(|given| **given).count() > 1 {
            return Err(ConfigError::Invalid {
                key: "cluster.join",
                reason: "give one of initial_cluster (form a cluster), join (join one as a learner) or \
                         await_membership (wait for `kvctl member add`)"
                    .into(),
            });
        }
        if !members.is_empty() && !members.iter().any(|m| m.id == self.node.id) {
            return Err(ConfigError::Invalid {
                key: "cluster.initial_cluster",
                reason: format!("does not list this node's id {}", self.node.id),
            });
        }
        if let Some(me) = members.iter().find(|m| m.id == self.node.id)
            && me.region != self.node.region
        {
            return Err(ConfigError::Invalid {
                key: "cluster.initial_cluster",
                reason: format!(
                    "lists node {} in region {:?} but the node runs in region {:?}",
                    me.id, me.region, self.node.region
                ),
            });
        }
        if cluster.heartbeat.is_zero() || cluster.election_timeout < cluster.heartbeat * 3 {
            return Err(ConfigError::Invalid {
                key: "cluster.election_timeout",
                reason: format!(
                    "must be at least 3x the heartbeat ({:?}); it is {:?}",
                    cluster.heartbeat, cluster.election_timeout
                ),
            });
        }
        // With a simulated WAN the worst round trip is known, so the Raft timings can be
        // checked against it: a heartbeat shorter than a round trip fails every leadership
        // check (openraft gives each heartbeat that long), and an election timeout under 10x
        // the round trip calls elections on a healthy but slow link.
        if let Some(worst_rtt) = cluster
            .wan_links
            .iter()
            .map(|l| Duration::from_millis(2 * u64::from(l.one_way_delay_ms + l.jitter_ms)))
            .max()
        {
            if cluster.heartbeat <= worst_rtt {
                return Err(ConfigError::Invalid {
                    key: "cluster.heartbeat",
                    reason: format!(
                        "{:?} is not above the slowest simulated round trip ({worst_rtt:?})",
                        cluster.heartbeat
                    ),
                });
            }
            if cluster.election_timeout < worst_rtt * 10 {
                return Err(ConfigError::Invalid {
                    key: "cluster.election_timeout",
                    reason: format!(
                        "{:?} is under 10x the slowest simulated round trip ({worst_rtt:?})",
                        cluster.election_timeout
                    ),
                });
            }
        }
        if cluster.request_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "cluster.request_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if cluster.snapshot_after_entries == 0 {
            return Err(ConfigError::Invalid {
                key: "cluster.snapshot_after_entries",
                reason: "must be greater than zero".into(),
            });
        }
        for (key, value) in [
            ("cache.tombstone_grace", self.cache.tombstone_grace),
            ("cache.anti_entropy_interval", self.cache.anti_entropy_interval),
            ("cache.max_clock_skew", self.cache.max_clock_skew),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be greater than zero".into(),
                });
            }
        }
        if self.cache.outbox_limit == 0 {
            return Err(ConfigError::Invalid {
                key: "cache.outbox_limit",
                reason: "must be greater than zero".into(),
            });
        }
        if self.ttl.sweep_interval.is_zero() {
            return Err(ConfigError::Invalid {
                key: "ttl.sweep_interval",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_timings_must_suit_the_simulated_wan() {
        let mut config = Config::default();
        config.kv_connect.enabled = false;
        config.cluster.wan_links = vec![WanLinkConfig {
            a: "eu-west".into(),
            b: "ap-northeast".into(),
            one_way_delay_ms: 110,
            jitter_ms: 5,
        }];
        config.validate().unwrap();
        config.cluster.heartbeat = Duration::from_millis(200);
        assert!(config.validate().unwrap_err().to_string().contains("cluster.heartbeat"));
        config.cluster.heartbeat = Duration::from_millis(300);
        config.cluster.election_timeout = Duration::from_secs(2);
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("cluster.election_timeout")
        );
    }

    #[test]
    fn initial_cluster_is_parsed_and_checked() {
        let mut config = Config::default();
        config.kv_connect.enabled = false;
        config.node.region = "us-east".into();
        config.cluster.initial_cluster = "1=us-east@127.0.0.1:7080, 2=eu-west@127.0.0.1:7081".into();
        config.validate().unwrap();
        let members = config.cluster.initial_members().unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].region, "eu-west");
        assert_eq!(members[1].peer_addr, "127.0.0.1:7081");
        for bad in [
            "1=us-east",
            "x=us-east@h:1",
            "1=us-east@h:1,1=eu@h:2",
            "2=eu-west@h:1",
            "1=eu-west@h:1",
        ] {
            config.cluster.initial_cluster = bad.into();
            assert!(config.validate().is_err(), "{bad} must be refused");
        }
        config.cluster.initial_cluster = "1=us-east@h:1".into();
        config.cluster.join = "h:2".into();
        assert!(config.validate().is_err(), "initial cluster and join together");
    }

    const EXAMPLE: &str = include_str!("../../../docs/config.example.toml");

    #[test]
    fn the_documented_example_is_exactly_the_defaults() {
        let parsed = Config::parse_toml(EXAMPLE, Path::new("docs/config.example.toml")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = Config::parse_toml("[storage]\ndata_dri = \"x\"\n", Path::new("c.toml")).unwrap_err();
        assert!(error.to_string().contains("data_dri"), "{error}");
        assert!(Config::parse_toml("[nope]\n", Path::new("c.toml")).is_err());
    }

    #[test]
    fn file_then_overrides() {
        let mut config = Config::parse_toml("[node]\nid = 7\nregion = \"eu\"\n", Path::new("c.toml")).unwrap();
        config.apply(Overrides {
            node_id: Some(9),
            ..Overrides::default()
        });
        assert_eq!(config.node.id, 9);
        assert_eq!(config.node.region, "eu");
        assert_eq!(config.api.listen, ApiConfig::default().listen);
    }

    #[test]
    fn invalid_values_are_refused() {
        let mut config = Config::default();
        config.node.id = 0;
        assert!(config.validate().is_err());
        let mut config = Config::default();
        config.node.region = "has space".into();
        assert!(config.validate().is_err());
        assert!(Config::parse_toml("[ttl]\nsweep_interval = \"soon\"\n", Path::new("c.toml")).is_err());
    }
}
