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

    /// Refuses a node open to strangers that was not asked for: `serve` without
    /// certificates, or with certificates but no token secret; `dev` on an address other
    /// machines can reach, unless it has both certificates and a secret. With
    /// `tls.insecure` set, returns a warning for each listener a stranger can use, for the
    /// node to log at startup.
    pub fn check_exposure(&self, profile: Profile) -> Result<Vec<String>, ConfigError> {
        let certs = self.tls.certs_dir().is_some();
        let tokens = self.auth.secret_file().is_some();
        if profile == Profile::Serve && certs && !tokens {
            return Err(ConfigError::Invalid {
                key: "auth.secret_file",
                reason: "`edgekv serve` with certificates checks a token on every request: give \
                         --auth-secret-file (one `KEY_ID SECRET` a line; see docs/security.md)"
                    .into(),
            });
        }
        let open: Vec<(&'static str, SocketAddr, &'static str)> = self
            .listeners()
            .into_iter()
            .filter_map(|(name, address)| exposure(name, certs, tokens).map(|why| (name, address, why)))
            .collect();
        if self.tls.insecure {
            return Ok(open
                .into_iter()
                .map(|(name, address, why)| format!("--insecure: the {name} listener on {address} {why}"))
                .collect());
        }
        match profile {
            Profile::Serve if !certs => Err(ConfigError::Invalid {
                key: "tls.certs_dir",
                reason: "`edgekv serve` runs with TLS: give --certs-dir (made with `edgekv cert`, see \
                         docs/security.md), or --insecure to serve plaintext to anyone who can reach it"
                    .into(),
            }),
            Profile::Serve => Ok(Vec::new()),
            Profile::Dev => match open.iter().find(|(_, address, _)| !address.ip().is_loopback()) {
                Some((name, address, why)) => Err(ConfigError::Invalid {
                    key: "tls.insecure",
                    reason: format!(
                        "`edgekv dev` keeps a listener that {why} on loopback, and the {name} listener is \
                         {address}; give --certs-dir and --auth-secret-file, or --insecure to open it to anyone \
                         who can reach it"
                    ),
                }),
                None => Ok(Vec::new()),
            },
        }
    }
}

/// What a stranger who reaches listener `name` can do, or `None` when it is closed to them
/// (TLS with a token on every request; mutual TLS on the peer listener).
fn exposure(name: &str, certs: bool, tokens: bool) -> Option<&'static str> {
    let peer = name == "peer";
    match (certs, tokens, peer) {
        (true, _, true) | (true, true, false) => None,
        (true, false, false) => Some("checks no token: anyone who reaches it can read and write every key"),
        (false, _, true) => Some(
            "serves plaintext without authentication: anyone who reaches it can vote, append to the Raft \
             log and read or inject cache records, bypassing every token",
        ),
        (false, true, false) => Some("serves plaintext: tokens and data cross the network unencrypted"),
        (false, false, false) => {
            Some("serves plaintext without authentication: anyone who reaches it can read and write every key")
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
        assert!(open.iter().all(|w| w.contains("without authentication")), "{open:?}");
        config.tls.insecure = false;
        config.tls.certs_dir = "certs".into();
        let error = config.check_exposure(Profile::Serve).unwrap_err();
        assert!(error.to_string().contains("--auth-secret-file"), "{error}");
        config.auth.secret_file = "secrets".into();
        assert_eq!(config.check_exposure(Profile::Serve).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn insecure_warnings_say_what_a_stranger_can_do() {
        let mut config = Config::default();
        config.tls.insecure = true;
        config.auth.secret_file = "secrets".into();
        let open = config.check_exposure(Profile::Serve).unwrap();
        let peer = open.iter().find(|w| w.contains("peer listener")).unwrap();
        assert!(peer.contains("bypassing every token"), "{peer}");
        let api = open.iter().find(|w| w.contains("client API listener")).unwrap();
        assert!(api.contains("tokens and data cross the network unencrypted"), "{api}");
    }

    #[test]
    fn dev_stays_on_loopback_unless_insecure_or_fully_secured() {
        let mut config = Config::default();
        assert_eq!(config.check_exposure(Profile::Dev).unwrap(), Vec::<String>::new());
        config.cluster.peer_listen = "0.0.0.0:7080".parse().unwrap();
        let error = config.check_exposure(Profile::Dev).unwrap_err();
        assert!(error.to_string().contains("peer listener is 0.0.0.0:7080"), "{error}");
        config.tls.insecure = true;
        assert!(config.check_exposure(Profile::Dev).is_ok());

        // Certificates alone close the peer listener (mutual TLS) but not the client API:
        // without a token secret it is open to whoever reaches it.
        config.tls.insecure = false;
        config.tls.certs_dir = "certs".into();
        assert!(
            config.check_exposure(Profile::Dev).is_ok(),
            "mutual TLS on the peer listener"
        );
        config.api.listen = "0.0.0.0:7070".parse().unwrap();
        let error = config.check_exposure(Profile::Dev).unwrap_err();
        assert!(error.to_string().contains("checks no token"), "{error}");
        config.auth.secret_file = "secrets".into();
        assert_eq!(config.check_exposure(Profile::Dev).unwrap(), Vec::<String>::new());
    }
}
