//! Credentials made the way an operator makes them: certificates with `edgekv cert`, token
//! secrets written to a file, tokens with `kvctl token create`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::binary;

/// Runs `edgekv cert ARGS --certs-dir DIR` and insists that it succeeds.
pub fn cert(args: &[&str], certs_dir: &Path) -> Result<()> {
    let output = Command::new(binary("edgekv"))
        .arg("cert")
        .args(args)
        .arg("--certs-dir")
        .arg(certs_dir)
        .output()
        .context("run edgekv cert")?;
    if !output.status.success() {
        bail!("edgekv cert {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// A CA and a node certificate for loopback in `dir`.
pub fn certificates(dir: &Path) -> Result<()> {
    cert(&["create-ca"], dir)?;
    cert(&["create-node", "--host", "127.0.0.1", "--host", "localhost"], dir)
}

/// Writes a secrets file of `(key id, secret)` lines, the first one signing.
pub fn secret_file(path: &Path, secrets: &[(&str, &str)]) -> Result<()> {
    let text: String = secrets.iter().map(|(id, secret)| format!("{id} {secret}\n")).collect();
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// What a token made by [`token`] allows.
#[derive(Clone, Debug, Default)]
pub struct TokenSpec<'a> {
    pub subject: &'a str,
    /// Prefixes in kvctl's key syntax (`'["users"]'`, `[]` for every key).
    pub prefixes: &'a [&'a str],
    pub read: bool,
    pub write: bool,
    pub admin: bool,
    /// `--ttl`, e.g. `1h`.
    pub ttl: &'a str,
}

/// `kvctl token create` with the secrets in `secret_file`; returns the token.
pub fn token(secret_file: &Path, spec: &TokenSpec) -> Result<String> {
    let mut command = Command::new(binary("kvctl"));
    command
        .args(["token", "create", "--secret-file"])
        .arg(secret_file)
        .args([
            "--subject",
            spec.subject,
            "--ttl",
            if spec.ttl.is_empty() { "1h" } else { spec.ttl },
        ]);
    for prefix in spec.prefixes {
        command.args(["--prefix", prefix]);
    }
    for (flag, on) in [("--read", spec.read), ("--write", spec.write), ("--admin", spec.admin)] {
        if on {
            command.arg(flag);
        }
    }
    let output = command.output().context("run kvctl token create")?;
    if !output.status.success() {
        bail!("kvctl token create: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_string())
}

/// An admin token with read and write access to every key.
pub fn admin_token(secret_file: &Path) -> Result<String> {
    token(
        secret_file,
        &TokenSpec {
            subject: "operator",
            prefixes: &["[]"],
            read: true,
            write: true,
            admin: true,
            ttl: "1h",
        },
    )
}
