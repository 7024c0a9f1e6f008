//! What a node exposes without TLS or tokens, and the rules that keep that a deliberate
//! choice: `serve` needs certificates (`tls.certs_dir`) and a token secret
//! (`auth.secret_file`), or an explicit `tls.insecure`; `dev` serves plaintext, but only on
//! loopback unless `tls.insecure` says otherwise, and checks tokens only when given a
//! secret.

use std::net::SocketAddr;

use super::{Config, ConfigError};

/// How the node was started, which decides what it may expose in plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `edgekv dev`: one node for development.
    Dev,
    /// `edgekv serve`: a production node.
    Serve,
}

impl Config {
    /// The listeners this configuration serves, named for people.
    pub fn listeners(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut listeners = vec![("client API", self.api.listen), ("peer", self.cluster.peer_listen)];
        if self.kv_connect.enabled {
            listeners.push(("KV Connect", self.kv_connect.listen));
        }
        listeners
    }

    /// Refuses a plaintext node that was not asked for: `serve` without certificates, `dev`
    /// on an address other machines can reach. With `tls.insecure` set, returns what is
    /// open to whoever reaches it, for the warning the node logs at startup.
    pub fn check_exposure(&self, profile: Profile) -> Result<Vec<(&'static str, SocketAddr)>, ConfigError> {
        if self.tls.certs_dir().is_some() {
            if profile == Profile::Serve && self.auth.secret_file().is_none() {
                return Err(ConfigError::Invalid {
                    key: "auth.secret_file",
                    reason: "`edgekv serve` with certificates checks a token on every request: give \
                             --auth-secret-file (one `KEY_ID SECRET` a line; see docs/security.md)"
                        .into(),
                });
            }
            return Ok(Vec::new());
        }
        let listeners = self.listeners();
        if self.tls.insecure {
            return Ok(listeners);
        }
        match profile {
            Profile::Serve => Err(ConfigError::Invalid {
                key: "tls.certs_dir",
                reason: "`edgekv serve` runs with TLS: give --certs-dir (made with `edgekv cert`, see \
                         docs/security.md), or --insecure to serve plaintext to anyone who can reach it"
                    .into(),
            }),
            Profile::Dev => match listeners.iter().find(|(_, addr)| !addr.ip().is_loopback()) {
                Some((name, addr)) => Err(ConfigError::Invalid {
                    key: "tls.insecure",
                    reason: format!(
                        "`edgekv dev` serves plaintext on loopback only, and the {name} listener is {addr}; \
                         give --certs-dir, or --insecure to open it to anyone who can reach it"
                    ),
                }),
                None => Ok(Vec::new()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_needs_certificates_and_a_secret_or_insecure() {
        let mut config = Config::default();
        let error = config.check_exposure(Profile::Serve).unwrap_err();
        assert!(error.to_string().contains("--certs-dir"), "{error}");
        config.tls.insecure = true;
        let open = config.check_exposure(Profile::Serve).unwrap();
        assert_eq!(open.len(), 3, "{open:?}");
        config.tls.insecure = false;
        config.tls.certs_dir = "certs".into();
        let error = config.check_exposure(Profile::Serve).unwrap_err();
        assert!(error.to_string().contains("--auth-secret-file"), "{error}");
        assert_eq!(config.check_exposure(Profile::Dev).unwrap(), Vec::new());
        config.auth.secret_file = "secrets".into();
        assert_eq!(config.check_exposure(Profile::Serve).unwrap(), Vec::new());
    }

    #[test]
    fn dev_stays_on_loopback_unless_insecure() {
        let mut config = Config::default();
        assert_eq!(config.check_exposure(Profile::Dev).unwrap(), Vec::new());
        config.cluster.peer_listen = "0.0.0.0:7080".parse().unwrap();
        let error = config.check_exposure(Profile::Dev).unwrap_err();
        assert!(error.to_string().contains("peer listener is 0.0.0.0:7080"), "{error}");
        config.tls.insecure = true;
        assert!(config.check_exposure(Profile::Dev).is_ok());
    }
}
