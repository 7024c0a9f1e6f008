//! The configuration file's sections, their defaults, and the settings each subsystem takes
//! from them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::net::WanLinkSettings;
use crate::raft::RaftSettings;

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

/// `[cluster]`: the node's membership settings, and the Raft member's own settings, which
/// the file writes in the same section.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "ClusterSection")]
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
    /// Simulated WAN links between regions (one-way delay each direction). Off when empty.
    pub wan_links: Vec<WanLinkSettings>,
    /// The Raft member's timings and log compaction.
    pub raft: RaftSettings,
}

/// `[cluster]` as the file writes it: every key in one flat table. Read through this
/// rather than with `#[serde(flatten)]`, which would keep unknown keys refused but lose
/// the line and the expected keys from every error about a Raft key. The meaning of each
/// Raft key is documented on [`RaftSettings`].
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ClusterSection {
    peer_listen: SocketAddr,
    peer_advertise: String,
    initial_cluster: String,
    join: String,
    await_membership: bool,
    allow_fault_injection: bool,
    wan_links: Vec<WanLinkSettings>,
    #[serde(with = "crate::duration_text")]
    heartbeat: Duration,
    #[serde(with = "crate::duration_text")]
    election_timeout: Duration,
    #[serde(with = "crate::duration_text")]
    request_timeout: Duration,
    snapshot_after_entries: u64,
    entries_kept_after_snapshot: u64,
    max_snapshot_bytes: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        let ClusterConfig {
            peer_listen,
            peer_advertise,
            initial_cluster,
            join,
            await_membership,
            allow_fault_injection,
            wan_links,
            raft,
        } = ClusterConfig::default();
        Self {
            peer_listen,
            peer_advertise,
            initial_cluster,
            join,
            await_membership,
            allow_fault_injection,
            wan_links,
            heartbeat: raft.heartbeat,
            election_timeout: raft.election_timeout,
            request_timeout: raft.request_timeout,
            snapshot_after_entries: raft.snapshot_after_entries,
            entries_kept_after_snapshot: raft.entries_kept_after_snapshot,
            max_snapshot_bytes: raft.max_snapshot_bytes,
        }
    }
}

impl From<ClusterSection> for ClusterConfig {
    fn from(section: ClusterSection) -> Self {
        let ClusterSection {
            peer_listen,
            peer_advertise,
            initial_cluster,
            join,
            await_membership,
            allow_fault_injection,
            wan_links,
            heartbeat,
            election_timeout,
            request_timeout,
            snapshot_after_entries,
            entries_kept_after_snapshot,
            max_snapshot_bytes,
        } = section;
        Self {
            peer_listen,
            peer_advertise,
            initial_cluster,
            join,
            await_membership,
            allow_fault_injection,
            wan_links,
            raft: RaftSettings {
                heartbeat,
                election_timeout,
                request_timeout,
                snapshot_after_entries,
                entries_kept_after_snapshot,
                max_snapshot_bytes,
            },
        }
    }
}

/// Transport security: the node's certificates, or the explicit choice to run without.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Directory with `ca.crt`, `node.crt` and `node.key` (`edgekv cert`); empty for none.
    pub certs_dir: PathBuf,
    /// Serve plaintext (`serve` without certificates, or `dev` on a non-loopback address).
    pub insecure: bool,
}

impl TlsConfig {
    /// The certificates directory, when one is configured.
    pub fn certs_dir(&self) -> Option<&std::path::Path> {
        (!self.certs_dir.as_os_str().is_empty()).then_some(self.certs_dir.as_path())
    }
}

/// Who may do what: the secrets access tokens are checked against.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// File with one `KEY_ID SECRET` a line (the first signs, all verify); every request
    /// then needs a token (`kvctl token create`). Empty: no token checks.
    pub secret_file: PathBuf,
}

impl AuthConfig {
    /// The secrets file, when one is configured.
    pub fn secret_file(&self) -> Option<&std::path::Path> {
        (!self.secret_file.as_os_str().is_empty()).then_some(self.secret_file.as_path())
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
        Self {
            peer_listen: SocketAddr::from(([127, 0, 0, 1], 7080)),
            peer_advertise: String::new(),
            initial_cluster: String::new(),
            join: String::new(),
            await_membership: false,
            allow_fault_injection: false,
            wan_links: Vec::new(),
            raft: RaftSettings::default(),
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

impl Default for LogConfig {
    fn default() -> Self {
        // openraft narrates every election and replication step at info.
        Self {
            level: "info,openraft=warn".into(),
        }
    }
}
