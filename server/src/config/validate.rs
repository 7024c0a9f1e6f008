//! The checks a loaded configuration passes before a node starts: ids, names and addresses,
//! Raft timings that the configured simulated WAN would not break, positive intervals and
//! limits. Each failure names the setting.

use std::time::Duration;

use super::sections::is_name;
use super::{Config, ConfigError};

impl Config {
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
        if self.auth.secret_file().is_some() {
            // Every front-end checks signed tokens; a shared string would bypass their scopes.
            if !self.kv_connect.all_access_tokens()?.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "kv_connect.access_tokens",
                    reason: "with auth.secret_file, KV Connect's access tokens are the signed tokens \
                             `kvctl token create` mints; remove kv_connect.access_tokens, kv_connect.token_file \
                             and --kv-connect-token"
                        .into(),
                });
            }
        } else if self.kv_connect.enabled {
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
        if cluster.raft.heartbeat.is_zero() || cluster.raft.election_timeout < cluster.raft.heartbeat * 3 {
            return Err(ConfigError::Invalid {
                key: "cluster.election_timeout",
                reason: format!(
                    "must be at least 3x the heartbeat ({:?}); it is {:?}",
                    cluster.raft.heartbeat, cluster.raft.election_timeout
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
            if cluster.raft.heartbeat <= worst_rtt {
                return Err(ConfigError::Invalid {
                    key: "cluster.heartbeat",
                    reason: format!(
                        "{:?} is not above the slowest simulated round trip ({worst_rtt:?})",
                        cluster.raft.heartbeat
                    ),
                });
            }
            if cluster.raft.election_timeout < worst_rtt * 10 {
                return Err(ConfigError::Invalid {
                    key: "cluster.election_timeout",
                    reason: format!(
                        "{:?} is under 10x the slowest simulated round trip ({worst_rtt:?})",
                        cluster.raft.election_timeout
                    ),
                });
            }
        }
        if cluster.raft.request_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "cluster.request_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if cluster.raft.max_snapshot_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "cluster.max_snapshot_bytes",
                reason: "must be greater than zero".into(),
            });
        }
        if cluster.raft.snapshot_after_entries == 0 {
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
