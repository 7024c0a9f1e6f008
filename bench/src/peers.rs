//! Starting and stopping the systems under test, each on loopback with its data in a
//! temporary directory. Every process is stopped by PID (SIGTERM, then SIGKILL) when its
//! handle drops, so an aborted run leaves nothing behind.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::targets::{EdgekvTarget, EtcdTarget, KvConnectTarget, RedisTarget, Target};

/// The KV Connect access token given to denokv and edgekv.
pub const KV_CONNECT_TOKEN: &str = "edgekv-bench-token";

pub struct Process {
    name: String,
    child: Child,
}

impl Process {
    fn spawn(name: &str, command: &mut Command, log: &Path) -> Result<Self> {
        let log_file = std::fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            name: name.to_string(),
            child,
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signals to a child we started; at worst it has already exited.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_for_port(port: u16, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("{name} did not open port {port} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// A running system with a connected client.
pub struct Peer {
    pub system: String,
    pub layout: String,
    pub durability: String,
    pub target: Target,
    _processes: Vec<Process>,
    _dir: tempfile::TempDir,
}

/// Which systems the harness knows how to run.
pub const SYSTEMS: [&str; 7] = [
    "edgekv",
    "edgekv-kvconnect",
    "denokv",
    "denokv-batched",
    "etcd",
    "etcd-3",
    "redis",
];

#[derive(Clone, Debug)]
pub struct Binaries {
    pub edgekv: PathBuf,
    pub denokv: Option<PathBuf>,
}

pub async fn start(system: &str, binaries: &Binaries) -> Result<Peer> {
    let dir = tempfile::Builder::new().prefix("edgekv-bench-").tempdir()?;
    let (target, processes, layout, durability) = match system {
        "edgekv" | "edgekv-kvconnect" => {
            let mut command = Command::new(&binaries.edgekv);
            command
                .args([
                    "dev",
                    "--listen",
                    "127.0.0.1:0",
                    "--kv-connect-listen",
                    "127.0.0.1:0",
                    "--peer-listen",
                    "127.0.0.1:0",
                    "--kv-connect-token",
                ])
                .arg(KV_CONNECT_TOKEN)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .env("EDGEKV_LOG", "warn");
            let mut process = Process::spawn("edgekv", &mut command, &dir.path().join("edgekv.log"))?;
            let (api, kv_connect) = edgekv_ready(&mut process)?;
            let target = if system == "edgekv" {
                Target::Edgekv(EdgekvTarget::connect(&api).await?)
            } else {
                Target::KvConnect(KvConnectTarget::connect(&kv_connect, KV_CONNECT_TOKEN).await?)
            };
            let client = if system == "edgekv" {
                "Rust SDK (gRPC, HTTP/2)"
            } else {
                "KV Connect (HTTP/2)"
            };
            (
                target,
                vec![process],
                format!("1 node, {client}"),
                "WAL fsync before ack (group commit)".to_string(),
            )
        }
        "denokv" | "denokv-batched" => {
            let binary = binaries
                .denokv
                .as_ref()
                .context("denokv is not installed (cargo x bench installs it)")?;
            let port = free_port()?;
            let mut command = Command::new(binary);
            command
                .arg("--sqlite-path")
                .arg(dir.path().join("denokv.sqlite"))
                .args(["serve", "--access-token", KV_CONNECT_TOKEN, "--addr"])
                .arg(format!("127.0.0.1:{port}"))
                .env("RUST_LOG", "warn");
            if system == "denokv-batched" {
                command.args(["--atomic-write-batch-timeout-ms", "5"]);
            }
            let process = Process::spawn(system, &mut command, &dir.path().join("denokv.log"))?;
            wait_for_port(port, system).await?;
            let target = KvConnectTarget::connect(&format!("http://127.0.0.1:{port}"), KV_CONNECT_TOKEN).await?;
            let layout = if system == "denokv" {
                "1 node (SQLite)"
            } else {
                "1 node (SQLite), write batching 5 ms"
            };
            (
                Target::KvConnect(target),
                vec![process],
                layout.to_string(),
                "denokv defaults (SQLite WAL)".to_string(),
            )
        }
        "etcd" | "etcd-3" => {
            let members = if system == "etcd" { 1 } else { 3 };
            let (processes, endpoints) = start_etcd(members, dir.path()).await?;
            let target = EtcdTarget::connect(&endpoints).await?;
            (
                Target::Etcd(target),
                processes,
                format!("{members} member(s), one client endpoint each"),
                "fsync per raft batch (etcd default)".to_string(),
            )
        }
        "redis" => {
            let port = free_port()?;
            let mut command = Command::new("redis-server");
            command
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--appendonly",
                    "yes",
                ])
                .args(["--appendfsync", "always", "--save", "", "--dir"])
                .arg(dir.path());
            let process = Process::spawn("redis", &mut command, &dir.path().join("redis.log"))?;
            wait_for_port(port, "redis").await?;
            let target = RedisTarget::connect(&format!("redis://127.0.0.1:{port}/")).await?;
            (
                Target::Redis(target),
                vec![process],
                "1 node".to_string(),
                "appendfsync always".to_string(),
            )
        }
        other => bail!("unknown system {other:?}; known: {}", SYSTEMS.join(", ")),
    };
    Ok(Peer {
        system: system.to_string(),
        layout,
        durability,
        target,
        _processes: processes,
        _dir: dir,
    })
}

/// Reads edgekv's ready lines: (client API URL, KV Connect URL).
fn edgekv_ready(process: &mut Process) -> Result<(String, String)> {
    let stdout = process.child.stdout.take().context("edgekv stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kv_connect = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("edgekv ready: KV Connect on ") {
                kv_connect = url.to_string();
            }
            if let Some(url) = line.strip_prefix("edgekv ready: client API on ") {
                let _ = tx.send((url.to_string(), kv_connect.clone()));
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .context("edgekv did not become ready")
}

async fn start_etcd(members: usize, dir: &Path) -> Result<(Vec<Process>, Vec<String>)> {
    let ports: Vec<(u16, u16)> = (0..members)
        .map(|_| Ok((free_port()?, free_port()?)))
        .collect::<Result<_>>()?;
    let cluster = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut processes = Vec::new();
    let mut endpoints = Vec::new();
    for (i, (client, peer)) in ports.iter().enumerate() {
        let mut command = Command::new("etcd");
        command
            .arg("--name")
            .arg(format!("m{i}"))
            .arg("--data-dir")
            .arg(dir.join(format!("etcd-{i}")))
            .arg("--listen-client-urls")
            .arg(format!("http://127.0.0.1:{client}"))
            .arg("--advertise-client-urls")
            .arg(format!("http://127.0.0.1:{client}"))
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{peer}"))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{peer}"))
            .arg("--initial-cluster")
            .arg(&cluster)
            .args(["--initial-cluster-state", "new", "--log-level", "warn"]);
        processes.push(Process::spawn(
            "etcd",
            &mut command,
            &dir.join(format!("etcd-{i}.log")),
        )?);
        endpoints.push(format!("http://127.0.0.1:{client}"));
    }
    for (client, _) in &ports {
        wait_for_port(*client, "etcd").await?;
    }
    Ok((processes, endpoints))
}

/// `program --version`, first line, for the report.
pub fn version_of(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(if o.stdout.is_empty() { &o.stderr } else { &o.stdout })
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
