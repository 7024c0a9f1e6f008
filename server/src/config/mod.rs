//! Node configuration: defaults < TOML file < `EDGEKV_*` environment < command-line flags.
//!
//! The file is strict: an unknown key is an error, so a typo never silently falls back
//! to a default. `docs/config.example.toml` lists every key with its default and is
//! parsed by a test, so it cannot drift from this module.
//!
//! - [`sections`]: the node's own sections and their defaults; the subsystems' sections
//!   are their own settings types (`RaftSettings`, `TtlSettings`, `CacheSettings`);
//! - [`overrides`]: what the command line and the environment change;
//! - [`validate`]: the checks a loaded configuration passes before a node starts;
//! - [`exposure`]: what a node may serve without TLS or tokens (`serve` needs certificates
//!   and a token secret, or `--insecure`; `dev` stays on loopback).
//!
//! Config sits with the node in the composition layer: it aggregates the subsystems'
//! settings, and nothing below the node reads it.

mod exposure;
mod overrides;
mod sections;
mod validate;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::exposure::Profile;
pub use self::overrides::Overrides;
pub use self::sections::*;
use crate::cache::CacheSettings;
use crate::ttl::TtlSettings;

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
    pub ttl: TtlSettings,
    pub cache: CacheSettings,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::net::WanLinkSettings;
    use crate::raft::RaftSettings;

    #[test]
    fn raft_timings_must_suit_the_simulated_wan() {
        let mut config = Config::default();
        config.kv_connect.enabled = false;
        config.cluster.wan_links = vec![WanLinkSettings {
            a: "eu-west".into(),
            b: "ap-northeast".into(),
            one_way_delay_ms: 110,
            jitter_ms: 5,
        }];
        config.validate().unwrap();
        config.cluster.raft.heartbeat = Duration::from_millis(200);
        assert!(config.validate().unwrap_err().to_string().contains("cluster.heartbeat"));
        config.cluster.raft.heartbeat = Duration::from_millis(300);
        config.cluster.raft.election_timeout = Duration::from_secs(2);
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
        // [cluster] is the node's membership keys and Raft's settings together; a key
        // that neither knows is still refused, and each is read into its owner.
        let error =
            Config::parse_toml("[cluster]\njoin = \"\"\nheartbeet = \"1s\"\n", Path::new("c.toml")).unwrap_err();
        assert!(error.to_string().contains("heartbeet"), "{error}");
        assert!(
            error.to_string().contains("line 3"),
            "the error points at the key: {error}"
        );
        let error =
            Config::parse_toml("[cluster]\n\nsnapshot_after_entries = \"many\"\n", Path::new("c.toml")).unwrap_err();
        assert!(
            error.to_string().contains("snapshot_after_entries"),
            "the error names the key: {error}"
        );
        let config = Config::parse_toml(
            "[cluster]\nheartbeat = \"100ms\"\nsnapshot_after_entries = 7\njoin = \"h:1\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(config.cluster.raft.heartbeat, Duration::from_millis(100));
        assert_eq!(config.cluster.raft.snapshot_after_entries, 7);
        assert_eq!(config.cluster.join, "h:1");
        assert_eq!(
            config.cluster.raft.election_timeout,
            RaftSettings::default().election_timeout
        );
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
