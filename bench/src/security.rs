//! The credentials of `edgekv-secure`: a CA and node certificate made with `edgekv cert`,
//! a token secret, and a token allowed every key, as an operator would set a node up.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use edgekv_proto::token::{self, Claims, Secrets};

/// Longer than any benchmark run.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

pub struct Credentials {
    pub certs_dir: PathBuf,
    pub secret_file: PathBuf,
    /// Read and write access to every key; not an admin token (the workloads need none).
    pub token: String,
}

impl Credentials {
    pub fn create(edgekv: &Path, dir: &Path) -> Result<Self> {
        let certs_dir = dir.join("certs");
        for args in [
            &["cert", "create-ca"][..],
            &["cert", "create-node", "--host", "127.0.0.1"][..],
        ] {
            let output = Command::new(edgekv)
                .args(args)
                .arg("--certs-dir")
                .arg(&certs_dir)
                .output()
                .context("run edgekv cert")?;
            if !output.status.success() {
                bail!("edgekv {args:?}: {}", String::from_utf8_lossy(&output.stderr));
            }
        }
        let line = format!("bench {:032x}{:032x}\n", rand::random::<u128>(), rand::random::<u128>());
        let secret_file = dir.join("secrets");
        // Only its owner may read it, as `edgekv cert` writes keys.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret_file)?
            .write_all(line.as_bytes())?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        // The workloads need every key and no admin call.
        let claims = Claims::every_key("edgekv-bench", now, now + TOKEN_TTL.as_secs(), false);
        let token = token::sign(&claims, &Secrets::parse(&line)?)?;
        Ok(Self {
            certs_dir,
            secret_file,
            token,
        })
    }

    pub fn ca_pem(&self) -> Result<Vec<u8>> {
        Ok(std::fs::read(self.certs_dir.join("ca.crt"))?)
    }
}
