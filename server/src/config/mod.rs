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
    pub ttl: TtlConfig,
    pub log: LogConfig,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Unique name of this node in its cluster.
    pub id: String,
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
pub struct TtlConfig {
    /// How often the expiry sweeper looks for due entries (reads never depend on it).
    #[serde(with = "humantime_serde_compat")]
    pub sweep_interval: Duration,
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
            id: "node-1".into(),
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

impl Default for TtlConfig {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(1),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into() }
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
    pub node_id: Option<String>,
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
        } = overrides;
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
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        if !name_ok(&self.node.id) {
            return Err(ConfigError::Invalid {
                key: "node.id",
                reason: format!("{:?} must be non-empty letters, digits, '-', '_' or '.'", self.node.id),
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
        let mut config =
            Config::parse_toml("[node]\nid = \"from-file\"\nregion = \"eu\"\n", Path::new("c.toml")).unwrap();
        config.apply(Overrides {
            node_id: Some("from-flag".into()),
            ..Overrides::default()
        });
        assert_eq!(config.node.id, "from-flag");
        assert_eq!(config.node.region, "eu");
        assert_eq!(config.api.listen, ApiConfig::default().listen);
    }

    #[test]
    fn invalid_values_are_refused() {
        let mut config = Config::default();
        config.node.id = "has space".into();
        assert!(config.validate().is_err());
        assert!(Config::parse_toml("[ttl]\nsweep_interval = \"soon\"\n", Path::new("c.toml")).is_err());
    }
}
