//! What the command line and the `EDGEKV_*` environment change over the file: every
//! setting given there replaces the file's value (or the default).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Config;

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
    pub max_snapshot_bytes: Option<u64>,
    pub tombstone_grace: Option<Duration>,
    pub outbox_limit: Option<u64>,
    pub anti_entropy_interval: Option<Duration>,
    pub max_clock_skew: Option<Duration>,
    pub certs_dir: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub auth_secret_file: Option<PathBuf>,
}

impl Config {
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
            max_snapshot_bytes,
            tombstone_grace,
            outbox_limit,
            anti_entropy_interval,
            max_clock_skew,
            certs_dir,
            insecure,
            auth_secret_file,
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
            (heartbeat, &mut cluster.raft.heartbeat),
            (election_timeout, &mut cluster.raft.election_timeout),
            (request_timeout, &mut cluster.raft.request_timeout),
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
            cluster.raft.snapshot_after_entries = v;
        }
        if let Some(v) = entries_kept_after_snapshot {
            cluster.raft.entries_kept_after_snapshot = v;
        }
        if let Some(v) = max_snapshot_bytes {
            cluster.raft.max_snapshot_bytes = v;
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
        if let Some(v) = certs_dir {
            self.tls.certs_dir = v;
        }
        if let Some(v) = insecure {
            self.tls.insecure = v;
        }
        if let Some(v) = auth_secret_file {
            self.auth.secret_file = v;
        }
    }
}
