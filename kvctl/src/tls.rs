//! `--cacert`: the cluster CA that `https://` endpoints are verified against, read and
//! checked before kvctl connects anywhere. The SDK client (data commands) and the admin
//! channel ([`crate::admin`]) both trust it; without `--cacert`, an `https://` endpoint is
//! checked against the system's trusted roots, as the SDK does.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{self, PemObject as _};

use crate::{Failure, usage};

/// Whether `url` is reached over TLS. The same test as the SDK's, so the data and admin
/// paths agree on which endpoints are TLS ones.
pub fn is_https(url: &str) -> bool {
    url.starts_with("https://")
}

/// The PEM of the CA that `cacert` names (`None` without `--cacert`), for use with
/// `endpoint`: a file of one or more certificates (several while the CA is being replaced).
pub fn ca_certificate(cacert: Option<&Path>, endpoint: &str) -> Result<Option<Vec<u8>>, Failure> {
    let Some(path) = cacert else {
        return Ok(None);
    };
    // A plaintext endpoint would leave the CA unused, and the operator believing the node
    // was verified.
    if !is_https(endpoint) {
        return Err(usage(format!(
            "--cacert (or EDGEKV_CACERT) is for https:// endpoints, and the endpoint is {endpoint}: \
             use an https:// endpoint, or leave the CA out for a plaintext node"
        )));
    }
    let unusable = |reason: String| Failure {
        code: 3,
        message: format!("cannot use the CA certificate {}: {reason}", path.display()),
    };
    let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
    // tonic silently skips what it cannot parse: a file without a certificate would fail
    // every handshake with an unknown issuer, naming neither the file nor the cause.
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(format!("not PEM: {}", pem_error(&e))))?;
    if certificates.is_empty() {
        return Err(unusable("no CERTIFICATE block in it".into()));
    }
    Ok(Some(pem))
}

/// A PEM error with the lines it quotes as text (its own message lists their bytes).
fn pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("no -----END {}----- line", String::from_utf8_lossy(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed line {:?}", String::from_utf8_lossy(line))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Failure` has no `Debug` (main prints its message), so results are read by hand.
    fn refusal(result: Result<Option<Vec<u8>>, Failure>) -> (u8, String) {
        match result {
            Ok(_) => panic!("the CA certificate was accepted"),
            Err(failure) => (failure.code, failure.message),
        }
    }

    #[test]
    fn no_cacert_reads_nothing() {
        assert!(matches!(ca_certificate(None, "http://127.0.0.1:7070"), Ok(None)));
        assert!(matches!(ca_certificate(None, "https://127.0.0.1:7070"), Ok(None)));
    }

    #[test]
    fn a_cacert_with_a_plaintext_endpoint_is_a_usage_error() {
        let (code, message) = refusal(ca_certificate(
            Some(Path::new("/nonexistent/ca.crt")),
            "http://127.0.0.1:7070",
        ));
        assert_eq!(code, 2);
        assert!(message.contains("https://"), "{message}");
        assert!(message.contains("http://127.0.0.1:7070"), "{message}");
    }

    #[test]
    fn an_unreadable_or_empty_cacert_names_the_file() {
        let dir = std::env::temp_dir().join(format!("kvctl-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.crt");
        let (code, message) = refusal(ca_certificate(Some(&missing), "https://127.0.0.1:7070"));
        assert_eq!(code, 3);
        assert!(message.contains(&missing.display().to_string()), "{message}");

        let not_a_certificate = dir.join("node.key");
        std::fs::write(
            &not_a_certificate,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let (code, message) = refusal(ca_certificate(Some(&not_a_certificate), "https://127.0.0.1:7070"));
        assert_eq!(code, 3);
        assert!(message.contains(&not_a_certificate.display().to_string()), "{message}");
        assert!(message.contains("no CERTIFICATE block"), "{message}");

        let cut_short = dir.join("cut-short.crt");
        std::fs::write(&cut_short, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let (code, message) = refusal(ca_certificate(Some(&cut_short), "https://127.0.0.1:7070"));
        assert_eq!(code, 3);
        assert!(message.contains(&cut_short.display().to_string()), "{message}");
        assert!(message.contains("-----END CERTIFICATE-----"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
