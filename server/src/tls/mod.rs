//! TLS for every listener and every peer connection.
//!
//! A node's certificates directory holds `ca.crt` (the cluster CA), `node.crt` and
//! `node.key` (this node's certificate, signed by that CA, good for serving and for
//! presenting to peers). [`NodeTls`] loads it once and hands out the configurations:
//! - the client API and KV Connect serve TLS with the node certificate;
//! - the peer listener also requires a client certificate signed by the cluster CA
//!   (mutual TLS), and every outgoing peer connection presents the node certificate and
//!   accepts only a peer whose certificate that CA signed.
//!
//! [`create`] makes the directory's files (`edgekv cert`); [`handshakes`] accepts TLS
//! connections and counts the handshakes a listener refused. rustls runs with the ring
//! provider, named explicitly, so no process-wide default has to be installed.

pub mod create;
pub mod handshakes;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The cluster CA's certificate.
pub const CA_CERT: &str = "ca.crt";
/// The cluster CA's private key: needed only where node certificates are made.
pub const CA_KEY: &str = "ca.key";
/// This node's certificate, signed by the cluster CA.
pub const NODE_CERT: &str = "node.crt";
/// This node's private key.
pub const NODE_KEY: &str = "node.key";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} holds no usable {what}: {reason}", path.display())]
    Pem {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{} already exists; pass --overwrite to replace it", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("cannot make the certificate: {0}")]
    Generate(String),
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

/// This node's certificates, loaded from its certificates directory.
#[derive(Clone)]
pub struct NodeTls {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    /// Every CA certificate in `ca.crt`: more than one while the CA is being replaced.
    cas: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls").finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The certificates of a PEM file, at least one.
pub fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Pem {
        path: path.to_path_buf(),
        what: "certificate",
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

impl NodeTls {
    /// Loads `ca.crt`, `node.crt` and `node.key` from `certs_dir` and checks that the node
    /// certificate is one the CA signed, so a mixed-up directory fails at startup rather
    /// than at every peer's handshake.
    pub fn load(certs_dir: &Path) -> Result<Self, TlsError> {
        let ca_path = certs_dir.join(CA_CERT);
        let cert_path = certs_dir.join(NODE_CERT);
        let key_path = certs_dir.join(NODE_KEY);
        let ca_pem = read(&ca_path)?;
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        let cas = certificates(&ca_path, &ca_pem)?;
        let chain = certificates(&cert_path, &cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
            path: key_path.clone(),
            what: "private key",
            reason: e.to_string(),
        })?;
        let tls = Self {
            ca_pem,
            cert_pem,
            key_pem,
            cas,
            chain,
            key: Arc::new(key),
        };
        tls.check_signed_by_ca(&cert_path)?;
        Ok(tls)
    }

    fn check_signed_by_ca(&self, cert_path: &Path) -> Result<(), TlsError> {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()), Arc::new(provider()))
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        verifier
            .verify_client_cert(&self.chain[0], &self.chain[1..], rustls::pki_types::UnixTime::now())
            .map(|_| ())
            .map_err(|e| TlsError::Pem {
                path: cert_path.to_path_buf(),
                what: "node certificate for this cluster",
                reason: format!("{e} (is it signed by {CA_CERT}, current, and made by `edgekv cert create-node`?)"),
            })
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        // A CA certificate rustls cannot use is left out; the node certificate check at
        // load then fails if it was the one that mattered.
        roots.add_parsable_certificates(self.cas.iter().cloned());
        roots
    }

    /// The client API: TLS with the node certificate; clients authenticate with tokens.
    pub fn client_api_server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// The peer listener: only members presenting a certificate of the cluster CA get past
    /// the handshake. HTTP/2 only (ALPN `h2`), as gRPC is.
    pub fn peer_server(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let members =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()), Arc::new(provider()))
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(members)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// Outgoing peer connections: present the node certificate, accept only peers whose
    /// certificate the cluster CA signed (for the address dialled).
    pub fn peer_client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// KV Connect (HTTPS): HTTP/2 or HTTP/1.1 by ALPN, server authentication only.
    pub fn https_server(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
