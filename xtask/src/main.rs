//! `cargo x`: the single entry point for developers and CI.
//!
//! - `cargo x dev [ARGS...]`: build and run one node (`edgekv dev`), data in ./edgekv-data,
//!   client API on 127.0.0.1:7070. Extra arguments go to `edgekv dev`.
//! - `cargo x test [ARGS...]`: build the binaries and examples, then run the whole suite.
//!   Extra arguments go to `cargo test`.
//!
//! Both first make sure the machine can build RocksDB's bindings (libclang and a C++
//! compiler). As root they are installed with apt-get; otherwise the exact command to run
//! is printed.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cargo x: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "dev" => {
            ensure_build_tools()?;
            cargo(
                &[
                    "run",
                    "--quiet",
                    "--package",
                    "edgekv-server",
                    "--bin",
                    "edgekv",
                    "--",
                    "dev",
                ],
                &rest,
            )
        }
        "test" => {
            ensure_build_tools()?;
            // The integration tests start the real binaries and run the examples, so build
            // them first; `cargo test` alone only builds what each test crate links.
            let built = cargo(&["build", "--workspace", "--bins", "--examples"], &[])?;
            if built != ExitCode::SUCCESS {
                return Ok(built);
            }
            cargo(&["test", "--workspace"], &rest)
        }
        "" | "help" | "--help" | "-h" => {
            println!(
                "usage: cargo x <dev|test> [ARGS...]\n  dev   run one node (edgekv dev)\n  test  run the whole test suite"
            );
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown task {other:?}; try `cargo x help`"),
    }
}

fn cargo(args: &[&str], extra: &[String]) -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .args(extra)
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8)
    })
}

/// Debian packages the build needs, with the check that tells whether each is present.
fn missing_packages() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !has_libclang() {
        missing.push("libclang-dev");
    }
    if !on_path("c++") && !on_path("g++") {
        missing.push("g++");
    }
    missing
}

fn has_libclang() -> bool {
    if let Ok(dir) = std::env::var("LIBCLANG_PATH")
        && dir_has_libclang(Path::new(&dir))
    {
        return true;
    }
    let mut candidates = vec![
        "/usr/lib".to_string(),
        "/usr/lib64".into(),
        "/usr/local/lib".into(),
        "/usr/lib/x86_64-linux-gnu".into(),
        "/usr/lib/aarch64-linux-gnu".into(),
    ];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("llvm-") {
                candidates.push(format!("/usr/lib/{name}/lib"));
            }
        }
    }
    candidates.iter().any(|dir| dir_has_libclang(Path::new(dir)))
}

fn dir_has_libclang(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.starts_with("libclang") && name.contains(".so")
        })
    })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn ensure_build_tools() -> Result<()> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "building RocksDB's bindings needs: {list}\nrun this once, then try again:\n\n    sudo apt-get update && sudo apt-get install -y {list}\n"
        );
    }
    eprintln!("cargo x: installing {list} (needed to build RocksDB's bindings)");
    let apt = |args: &[&str]| -> Result<()> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(missing.iter().copied());
    apt(&install)?;
    if !missing_packages().is_empty() {
        bail!("installed {list}, but the build tools are still not found");
    }
    Ok(())
}
