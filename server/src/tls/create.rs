//! `edgekv cert`: makes the cluster CA and node certificates (as `cockroach cert` does).
//!
//! `create-ca` writes `ca.crt` and `ca.key`; `create-node` signs a node certificate for
//! the given host names and IP addresses with that CA and writes `node.crt` and
//! `node.key`. Keys are ECDSA P-256 and their files mode 0600; nothing existing is
//! replaced unless asked (`--overwrite`), so a second run cannot silently cut a node off
//! its cluster.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::{CA_CERT, CA_KEY, NODE_CERT, NODE_KEY, TlsError};

/// How long a CA certificate is valid: rotating a CA means re-issuing every node's.
const CA_VALIDITY: Duration = Duration::days(10 * 365);
/// How long a node certificate is valid.
const NODE_VALIDITY: Duration = Duration::days(5 * 365);
/// Backdated a little, so a node whose clock is a bit slow accepts a certificate made now.
const BACKDATE: Duration = Duration::hours(1);

fn generate(error: rcgen::Error) -> TlsError {
    TlsError::Generate(error.to_string())
}

fn base_params(common_name: &str, sans: Vec<String>, validity: Duration) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(sans).map_err(generate)?;
    params.distinguished_name.push(DnType::OrganizationName, "edgekv");
    params.distinguished_name.push(DnType::CommonName, common_name);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    params.serial_number = Some(SerialNumber::from(rand::random::<u64>() >> 1));
    Ok(params)
}

/// Refuses to replace `paths` unless `overwrite`.
fn check_free(paths: &[&Path], overwrite: bool) -> Result<(), TlsError> {
    if overwrite {
        return Ok(());
    }
    match paths.iter().find(|p| p.exists()) {
        Some(path) => Err(TlsError::Exists {
            path: path.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// Writes `contents` to `path` with `mode` (a new file gets it at creation, so a key is
/// never readable by others, even for a moment). Also writes the demo's token secret.
pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), TlsError> {
    let failed = |e: std::io::Error| TlsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(failed)?;
    // An existing file keeps its mode on open; set it again.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

fn make_dir(certs_dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(certs_dir).map_err(|e| TlsError::Write {
        path: certs_dir.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Makes a new cluster CA: `ca.crt` and `ca.key` in `certs_dir`. Returns the paths written.
pub fn create_ca(certs_dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>, TlsError> {
    let cert_path = certs_dir.join(CA_CERT);
    let key_path = certs_dir.join(CA_KEY);
    check_free(&[&cert_path, &key_path], overwrite)?;
    make_dir(certs_dir)?;
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = base_params("edgekv CA", Vec::new(), CA_VALIDITY)?;
    // Only node certificates below it: a path length of 0.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).map_err(generate)?;
    write_file(&key_path, &key.serialize_pem(), 0o600)?;
    write_file(&cert_path, &cert.pem(), 0o644)?;
    Ok(vec![cert_path, key_path])
}

/// Makes this node's certificate for `hosts` (DNS names or IP addresses: every name and
/// address clients and peers dial it by), signed by the CA in `certs_dir` (or the CA key at
/// `ca_key`, for a CA key kept elsewhere). Writes `node.crt` and `node.key`.
pub fn create_node(
    certs_dir: &Path,
    hosts: &[String],
    ca_key: Option<&Path>,
    overwrite: bool,
) -> Result<Vec<PathBuf>, TlsError> {
    if hosts.is_empty() {
        return Err(TlsError::Generate(
            "name at least one --host the node is reached by".into(),
        ));
    }
    let cert_path = certs_dir.join(NODE_CERT);
    let key_path = certs_dir.join(NODE_KEY);
    check_free(&[&cert_path, &key_path], overwrite)?;
    let ca_cert_path = certs_dir.join(CA_CERT);
    let ca_key_path = ca_key.map_or_else(|| certs_dir.join(CA_KEY), Path::to_path_buf);
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| TlsError::Read {
            path: path.to_path_buf(),
            reason: format!("{e} (run `edgekv cert create-ca` first)"),
        })
    };
    let ca_key = KeyPair::from_pem(&read(&ca_key_path)?).map_err(|e| TlsError::Pem {
        path: ca_key_path.clone(),
        what: "private key",
        reason: e.to_string(),
    })?;
    let ca_pem = read(&ca_cert_path)?;
    // A combined ca.crt (while the CA is replaced) does not say which CA the key is of.
    let cas = super::certificates(&ca_cert_path, ca_pem.as_bytes())?.len();
    if cas > 1 {
        return Err(TlsError::Pem {
            path: ca_cert_path,
            what: "single CA certificate",
            reason: format!(
                "it holds {cas} certificates; make node certificates in the directory of the CA that signs them"
            ),
        });
    }
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| TlsError::Pem {
        path: ca_cert_path.clone(),
        what: "CA certificate",
        reason: e.to_string(),
    })?;
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = base_params("edgekv node", hosts.to_vec(), NODE_VALIDITY)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    // Serves clients and peers, and is presented to peers as a client certificate.
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).map_err(generate)?;
    make_dir(certs_dir)?;
    write_file(&key_path, &key.serialize_pem(), 0o600)?;
    write_file(&cert_path, &cert.pem(), 0o644)?;
    Ok(vec![cert_path, key_path])
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::tls::NodeTls;

    #[test]
    fn a_node_certificate_made_here_loads_and_chains_to_its_ca() {
        let dir = tempfile::tempdir().unwrap();
        create_ca(dir.path(), false).unwrap();
        create_node(dir.path(), &["localhost".into(), "127.0.0.1".into()], None, false).unwrap();
        for key in [CA_KEY, NODE_KEY] {
            let mode = std::fs::metadata(dir.path().join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        NodeTls::load(dir.path()).unwrap();
        NodeTls::load(dir.path()).unwrap().https_server().unwrap();
    }

    #[test]
    fn nothing_is_replaced_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        create_ca(dir.path(), false).unwrap();
        let ca = std::fs::read(dir.path().join(CA_CERT)).unwrap();
        let error = create_ca(dir.path(), false).unwrap_err();
        assert!(matches!(error, TlsError::Exists { .. }), "{error}");
        assert_eq!(std::fs::read(dir.path().join(CA_CERT)).unwrap(), ca);
        create_ca(dir.path(), true).unwrap();
        assert_ne!(std::fs::read(dir.path().join(CA_CERT)).unwrap(), ca);
    }

    #[test]
    fn a_node_certificate_of_another_ca_is_refused_at_load() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        create_ca(ours.path(), false).unwrap();
        create_ca(theirs.path(), false).unwrap();
        create_node(theirs.path(), &["127.0.0.1".into()], None, false).unwrap();
        for file in [NODE_CERT, NODE_KEY] {
            std::fs::copy(theirs.path().join(file), ours.path().join(file)).unwrap();
        }
        let error = NodeTls::load(ours.path()).unwrap_err();
        assert!(error.to_string().contains(NODE_CERT), "{error}");
    }

    #[test]
    fn create_node_needs_a_ca_and_a_host() {
        let dir = tempfile::tempdir().unwrap();
        assert!(create_node(dir.path(), &["h".into()], None, false).is_err());
        create_ca(dir.path(), false).unwrap();
        assert!(create_node(dir.path(), &[], None, false).is_err());
    }
}
