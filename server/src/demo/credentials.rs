//! `edgekv demo --secure`: the demo cluster's certificates, token secret and admin token,
//! made in its temporary directory as an operator would make them (`edgekv cert`,
//! a secrets file, `kvctl token create`), and the admin client the demo uses itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgekv_proto::token::{self, Claims, Secrets};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::DemoError;
use crate::tls::create;

/// How long the demo's admin token is valid: longer than anyone runs a demo.
const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// What a secure demo's nodes and its user share.
#[derive(Clone, Debug)]
pub struct DemoCredentials {
    /// `ca.crt`, `node.crt` and `node.key` (one certificate for every node: all on loopback).
    pub certs_dir: PathBuf,
    pub secret_file: PathBuf,
    /// An admin token with read and write access to every key.
    pub admin_token: String,
}

impl DemoCredentials {
    /// Makes the CA, a loopback node certificate, a random secret and an admin token under
    /// `dir`.
    pub fn create(dir: &Path) -> Result<Self, DemoError> {
        let certs_dir = dir.join("certs");
        let failed = |what: &str, error: &dyn std::fmt::Display| DemoError::Plan(format!("cannot {what}: {error}"));
        create::create_ca(&certs_dir, false).map_err(|e| failed("make the demo CA", &e))?;
        let hosts = ["127.0.0.1".to_string(), "localhost".to_string()];
        create::create_node(&certs_dir, &hosts, None, false).map_err(|e| failed("make the node certificate", &e))?;

        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let line = format!("demo {secret}\n");
        let secret_file = dir.join("secrets");
        create::write_file(&secret_file, &line, 0o600).map_err(|e| failed("write the token secret", &e))?;
        let secrets = Secrets::parse(&line).map_err(|e| failed("read the token secret", &e))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims::every_key("demo-admin", now, now + ADMIN_TOKEN_TTL.as_secs(), true);
        let admin_token = token::sign(&claims, &secrets).map_err(|e| failed("sign the admin token", &e))?;
        Ok(Self {
            certs_dir,
            secret_file,
            admin_token,
        })
    }

    pub fn ca_file(&self) -> PathBuf {
        self.certs_dir.join("ca.crt")
    }

    /// A channel to a demo node's client API that trusts the demo CA.
    pub async fn channel(&self, api: std::net::SocketAddr) -> Result<Channel, Box<dyn std::error::Error>> {
        let ca = Certificate::from_pem(std::fs::read(self.ca_file())?);
        Ok(Endpoint::from_shared(format!("https://{api}"))?
            .tls_config(ClientTlsConfig::new().ca_certificate(ca))?
            .connect()
            .await?)
    }
}
