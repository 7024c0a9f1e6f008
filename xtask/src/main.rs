//! `cargo x`: the single entry point for developers and CI.
//!
//! - `cargo x dev [ARGS...]`: build and run one node (`edgekv dev`), data in ./edgekv-data,
//!   client API on 127.0.0.1:7070. Extra arguments go to `edgekv dev`.
//! - `cargo x test [ARGS...]`: build the binaries and examples, then run the whole suite.
//!   Extra arguments go to `cargo test`.
//! - `cargo x bench [--quick] [ARGS...]`: install etcd, Redis and denokv, build release
//!   binaries, and run `edgekv-bench`, which writes docs/benchmarks.md. Extra arguments go
//!   to `edgekv-bench`.
//!
//! Both first make sure the machine can build RocksDB's bindings (libclang and a C++
//! compiler). As root they are installed with apt-get; otherwise the exact command to run
//! is printed. `test` also installs the Deno KV clients the KV Connect tests drive (the
//! Deno CLI and @deno/kv from npm, denokv from PyPI) into a cache outside the checkout.

mod libclang;

use std::path::{Path, PathBuf};
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
            ensure_debian_packages(
                &[("fonts-dejavu-core", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")],
                "the benchmark smoke test draws plots, which need a font",
            )?;
            let clients = ensure_kv_connect_clients()?;
            // SAFETY: xtask is single-threaded; the variable is read by the child cargo.
            unsafe { std::env::set_var("EDGEKV_CLIENTS_DIR", &clients) };
            cargo(&["test", "--workspace"], &rest)
        }
        "bench" => {
            ensure_build_tools()?;
            bench(&rest)
        }
        "" | "help" | "--help" | "-h" => {
            println!(
                "usage: cargo x <dev|test|bench> [ARGS...]\n  dev    run one node (edgekv dev)\n  test   run the whole test suite\n  \
                 bench  benchmark against etcd, Redis and denokv (--quick: under 10 minutes)"
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
    if !libclang::installed() {
        missing.push("libclang-dev");
    }
    if !on_path("c++") && !on_path("g++") {
        missing.push("g++");
    }
    missing
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
    install_packages(
        &missing,
        "building RocksDB's bindings needs libclang and a C++ compiler",
    )?;
    if !missing_packages().is_empty() {
        bail!(
            "installed {}, but the build tools are still not found",
            missing.join(" ")
        );
    }
    Ok(())
}

/// Pinned third-party KV Connect clients. Bumping a version reinstalls it.
const DENO_CLI: &str = "deno@2.9.6";
const DENO_KV_NODE: &str = "@deno/kv@0.14.0";
const DENOKV_PYTHON: &str = "denokv==0.1.0a0.dev180";

fn run_checked(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Installs the KV Connect clients into `$EDGEKV_CLIENTS_DIR` (default
/// `~/.cache/edgekv-clients`) unless the pinned versions are already there, and returns
/// the directory.
fn ensure_kv_connect_clients() -> Result<PathBuf> {
    let dir = match std::env::var_os("EDGEKV_CLIENTS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache/edgekv-clients"),
    };
    let npm_dir = dir.join("npm");
    let npm_version = |package: &str| {
        std::fs::read_to_string(npm_dir.join("node_modules").join(package).join("package.json"))
            .ok()
            .and_then(|text| {
                text.split("\"version\": \"")
                    .nth(1)
                    .map(|rest| rest.split('"').next().unwrap_or("").to_string())
            })
    };
    let wanted = |spec: &str| spec.rsplit_once('@').map(|(_, v)| v.to_string());
    let npm_ready = npm_version("deno") == wanted(DENO_CLI)
        && npm_version("@deno/kv") == wanted(DENO_KV_NODE)
        && npm_dir.join("node_modules/.bin/deno").exists();
    if !npm_ready {
        if !on_path("npm") {
            install_packages(
                &["nodejs", "npm"],
                "the KV Connect tests run the Deno CLI and @deno/kv from npm",
            )?;
        }
        eprintln!(
            "cargo x: installing {DENO_CLI} and {DENO_KV_NODE} into {}",
            npm_dir.display()
        );
        std::fs::create_dir_all(&npm_dir)?;
        run_checked(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                .arg(&npm_dir)
                .args([DENO_CLI, DENO_KV_NODE])
                .env("DENO_NO_UPDATE_CHECK", "1"),
            "npm install",
        )?;
    }
    let py_dir = dir.join("py");
    let (py_name, py_version) = DENOKV_PYTHON.split_once("==").expect("pinned as name==version");
    if !py_dir.join(format!("{py_name}-{py_version}.dist-info")).exists() {
        if Command::new("python3")
            .args(["-m", "pip", "--version"])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            install_packages(
                &["python3-pip"],
                "the KV Connect tests run the Python denokv client from PyPI",
            )?;
        }
        eprintln!("cargo x: installing {DENOKV_PYTHON} into {}", py_dir.display());
        run_checked(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--upgrade",
                    "--target",
                ])
                .arg(&py_dir)
                .arg(DENOKV_PYTHON),
            "pip install",
        )?;
    }
    Ok(dir)
}

/// Installs Debian packages as root, or says exactly what to run.
fn install_packages(packages: &[&str], why: &str) -> Result<()> {
    let list = packages.join(" ");
    if !is_root() {
        bail!(
            "{why}; install them once, then try again:\n\n    sudo apt-get update && sudo apt-get install -y {list}\n"
        );
    }
    eprintln!("cargo x: installing {list} ({why})");
    run_checked(
        Command::new("apt-get")
            .args(["update", "-qq"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get update",
    )?;
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )
}

/// Installs each Debian package whose marker file is missing.
fn ensure_debian_packages(packages: &[(&str, &str)], why: &str) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, marker)| !Path::new(marker).exists())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    install_packages(&missing, why)
}

/// The target directory cargo uses here (CARGO_TARGET_DIR or the workspace's).
fn target_dir() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()?;
    let text = String::from_utf8(output.stdout)?;
    let dir = text
        .split("\"target_directory\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("cargo metadata has no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// Pinned denokv, the self-hosted Deno KV server the benchmark compares against.
const DENOKV_VERSION: &str = "0.14.0";

fn bench(args: &[String]) -> Result<ExitCode> {
    ensure_debian_packages(
        &[
            ("etcd-server", "/usr/bin/etcd"),
            ("redis-server", "/usr/bin/redis-server"),
            ("fonts-dejavu-core", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        ],
        "the benchmark runs etcd and Redis side by side with edgekv",
    )?;
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    let denokv_root = home.join(format!(".cache/edgekv-bench/denokv-{DENOKV_VERSION}"));
    let denokv = denokv_root.join("bin/denokv");
    if !denokv.exists() {
        eprintln!(
            "cargo x: installing denokv {DENOKV_VERSION} into {} (a few minutes, once)",
            denokv_root.display()
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run_checked(
            Command::new(cargo)
                .args([
                    "install",
                    "--locked",
                    "--quiet",
                    "--version",
                    DENOKV_VERSION,
                    "denokv",
                    "--root",
                ])
                .arg(&denokv_root)
                // Its own target directory: denokv's dependencies must not disturb ours.
                .env("CARGO_TARGET_DIR", home.join(".cache/edgekv-bench/denokv-build")),
            "cargo install denokv",
        )?;
    }
    // Both binaries by name: with `--bin` given, cargo builds only the named binaries of
    // the selected packages, so `--package edgekv-bench` alone would leave a stale harness.
    let built = cargo(
        &[
            "build",
            "--release",
            "--package",
            "edgekv-server",
            "--bin",
            "edgekv",
            "--package",
            "edgekv-bench",
            "--bin",
            "edgekv-bench",
        ],
        &[],
    )?;
    if built != ExitCode::SUCCESS {
        return Ok(built);
    }
    let release = target_dir()?.join("release");
    let status = Command::new(release.join("edgekv-bench"))
        .arg("--edgekv-bin")
        .arg(release.join("edgekv"))
        .arg("--denokv-bin")
        .arg(&denokv)
        .args(args)
        .status()
        .context("cannot run edgekv-bench")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
