//! Starting and stopping the systems under test, each on loopback with its data in a
//! temporary directory. Every process is stopped by PID (SIGTERM, then SIGKILL) when its
//! handle drops, so an aborted run leaves nothing behind.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::security::Credentials;
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
    // Below Linux's ephemeral range (32768 and up), so an outgoing connection's source port
    // cannot take it between this check and the peer's bind; never the same port twice.
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let seed = std::process::id().wrapping_mul(7_919) % COUNT;
    let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port between 20000 and 32000")
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

/// Which systems the harness knows how to run, in the order a full run measures them
/// (edgekv-3 right before etcd-3, so the pair runs under the same conditions; edgekv-secure
/// right after edgekv: the same node with TLS on its listener and a token on every request).
/// `edgekv-3-regions` and `edgekv-cache-3-regions` are not workload targets: they select
/// the regional scenario ([`crate::regional`]) and the cache-class scenario ([`crate::cache`]).
pub const SYSTEMS: [&str; 11] = [
    "edgekv",
    "edgekv-secure",
    "edgekv-kvconnect",
    "denokv",
    "denokv-batched",
    "etcd",
    "edgekv-3",
    "etcd-3",
    "redis",
    crate::regional::SYSTEM,
    crate::cache::SYSTEM,
];

/// The regions of the 3-node edgekv clusters (`edgekv demo`'s defaults), one voter each.
pub const CLUSTER_REGIONS: [&str; 3] = edgekv_proto::regions::DEMO_REGIONS;

/// Raft timings of `edgekv-3` on loopback: etcd's defaults (heartbeat 100 ms, election
/// 1 s), instead of edgekv's cross-region defaults (300 ms, 3 s), so both clusters run
/// with the same timings.
const LOOPBACK_RAFT_ARGS: [&str; 4] = ["--heartbeat", "100ms", "--election-timeout", "1s"];

#[derive(Clone, Debug)]
pub struct Binaries {
    pub edgekv: PathBuf,
    pub denokv: Option<PathBuf>,
}

pub async fn start(system: &str, binaries: &Binaries) -> Result<Peer> {
    let dir = tempfile::Builder::new().prefix("edgekv-bench-").tempdir()?;
    let (target, processes, layout, durability) = match system {
        "edgekv" | "edgekv-kvconnect" | "edgekv-secure" => {
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
                ])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .env("EDGEKV_LOG", "warn");
            // The same node, with certificates and a token secret: TLS on every listener
            // and a token checked on every request.
            let credentials = match system {
                "edgekv-secure" => {
                    let credentials = Credentials::create(&binaries.edgekv, dir.path())?;
                    command
                        .arg("--certs-dir")
                        .arg(&credentials.certs_dir)
                        .arg("--auth-secret-file")
                        .arg(&credentials.secret_file);
                    Some(credentials)
                }
                _ => {
                    command.args(["--kv-connect-token", KV_CONNECT_TOKEN]);
                    None
                }
            };
            let mut process = Process::spawn("edgekv", &mut command, &dir.path().join("edgekv.log"))?;
            let (api, kv_connect) = edgekv_ready(&mut process)?;
            let (target, client) = match (system, &credentials) {
                ("edgekv-kvconnect", _) => (
                    Target::KvConnect(KvConnectTarget::connect(&kv_connect, KV_CONNECT_TOKEN).await?),
                    "KV Connect (HTTP/2)",
                ),
                (_, Some(credentials)) => {
                    let client = edgekv_client::Client::builder()
                        .endpoint(&api)
                        .ca_certificate(credentials.ca_pem()?)
                        .token(&credentials.token)
                        .connect()
                        .await
                        .context("connect to the secure edgekv node")?;
                    (
                        Target::Edgekv(EdgekvTarget::from_client(client)),
                        "Rust SDK (gRPC, HTTP/2) over TLS, token on every request",
                    )
                }
                _ => (
                    Target::Edgekv(EdgekvTarget::connect(&api).await?),
                    "Rust SDK (gRPC, HTTP/2)",
                ),
            };
            (
                target,
                vec![process],
                format!("1 node, {client}"),
                "WAL fsync before ack (group commit)".to_string(),
            )
        }
        "edgekv-3" => {
            let cluster =
                start_edgekv_cluster(&binaries.edgekv, dir.path(), &CLUSTER_REGIONS, &LOOPBACK_RAFT_ARGS, &[]).await?;
            // One node, like an application given one address; the SDK moves writes and
            // strong reads to the leader that node names.
            let target = Target::Edgekv(EdgekvTarget::connect(&cluster.nodes[0].api).await?);
            (
                target,
                cluster.processes,
                "3 voters on loopback (no WAN delay), Rust SDK given one node, following the leader".to_string(),
                "Raft log fsync on every voter before it acks (sync writes, the default); commit on 2 of 3".to_string(),
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
        crate::regional::SYSTEM => bail!("{system} is a scenario of its own (crate::regional), not a workload target"),
        crate::cache::SYSTEM => bail!("{system} is a scenario of its own (crate::cache), not a workload target"),
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

/// One node of an `edgekv serve` cluster the harness started.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    pub id: u64,
    pub region: String,
    /// Client API URL, `http://127.0.0.1:PORT`.
    pub api: String,
}

impl ClusterNode {
    /// An SDK client that talks to this node only (`stay_local`), as a client in its region
    /// would: eventual reads and cache writes stay here, strong writes are forwarded by it.
    pub async fn local_client(&self) -> Result<edgekv_client::Client> {
        edgekv_client::Client::builder()
            .region(&self.region)
            .region_endpoint(&self.region, &self.api)
            .stay_local(true)
            .connect()
            .await
            .with_context(|| format!("connect to node {} ({})", self.id, self.region))
    }
}

/// A running `edgekv serve` cluster; its processes stop when it drops.
pub struct EdgekvCluster {
    pub nodes: Vec<ClusterNode>,
    /// The leader every node agreed on once started.
    pub leader: u64,
    processes: Vec<Process>,
}

/// A simulated WAN link between two regions, both directions.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WanLink {
    pub a: String,
    pub b: String,
    /// Round trip; each direction is delayed by half of it.
    pub rtt_ms: u32,
    /// Up to this much more per direction, uniformly drawn.
    pub jitter_ms: u32,
}

/// Starts one `edgekv serve` voter per region (ids 1..=n in order) formed with
/// `--initial-cluster`, data under `dir`, sync writes on (the default), `extra_args` added
/// to every node's command line (Raft timings, cache-replication flags). `wan` goes to
/// every node in a generated config file (`[cluster] wan_links`), so the peer transport
/// delays node-to-node messages like a WAN would. Returns once every node agrees on a
/// leader.
pub async fn start_edgekv_cluster(
    binary: &Path,
    dir: &Path,
    regions: &[&str],
    extra_args: &[&str],
    wan: &[WanLink],
) -> Result<EdgekvCluster> {
    let peer_ports: Vec<u16> = regions.iter().map(|_| free_port()).collect::<Result<_>>()?;
    let initial = regions
        .iter()
        .zip(&peer_ports)
        .enumerate()
        .map(|(i, (region, port))| format!("{}={region}@127.0.0.1:{port}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let config = if wan.is_empty() {
        None
    } else {
        let mut text = String::from("[cluster]\nwan_links = [\n");
        for link in wan {
            text.push_str(&format!(
                "  {{ a = {:?}, b = {:?}, one_way_delay_ms = {}, jitter_ms = {} }},\n",
                link.a,
                link.b,
                link.rtt_ms / 2,
                link.jitter_ms
            ));
        }
        text.push_str("]\n");
        let path = dir.join("edgekv-wan.toml");
        std::fs::write(&path, text)?;
        Some(path)
    };
    let mut processes = Vec::new();
    let mut nodes = Vec::new();
    for (i, (region, peer_port)) in regions.iter().zip(&peer_ports).enumerate() {
        let id = i as u64 + 1;
        let mut command = Command::new(binary);
        // Plaintext on loopback, like the systems it is compared with.
        command.arg("serve").arg("--insecure");
        if let Some(config) = &config {
            command.arg("--config").arg(config);
        }
        command
            .args(["--id", &id.to_string(), "--region", region])
            .arg("--data-dir")
            .arg(dir.join(format!("node-{id}")))
            .args(["--listen", "127.0.0.1:0", "--peer-listen"])
            .arg(format!("127.0.0.1:{peer_port}"))
            .args(["--initial-cluster", &initial])
            .args(["--kv-connect-enabled", "false", "--log", "warn"])
            // Explicit, so an EDGEKV_SYNC_WRITES in the environment cannot turn fsync off.
            .args(["--sync-writes", "true"])
            .args(extra_args)
            .env_remove("EDGEKV_CONFIG");
        let name = format!("edgekv node {id} ({region})");
        let mut process = Process::spawn(&name, &mut command, &dir.join(format!("node-{id}.log")))?;
        let (api, _) = edgekv_ready(&mut process).with_context(|| name.clone())?;
        processes.push(process);
        nodes.push(ClusterNode {
            id,
            region: region.to_string(),
            api,
        });
    }
    let leader = wait_for_leader(&nodes, Duration::from_secs(60)).await?;
    Ok(EdgekvCluster {
        nodes,
        leader,
        processes,
    })
}

/// Waits until every node names the same leader, and returns its id.
pub async fn wait_for_leader(nodes: &[ClusterNode], timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut clients = Vec::new();
    for node in nodes {
        clients.push(edgekv_client::Client::connect(node.api.clone()).await?);
    }
    loop {
        let mut seen = Vec::new();
        for client in &clients {
            // Each client asks its own node (cluster_status is never routed elsewhere).
            seen.push(client.cluster_status().await.map_or(0, |s| s.leader_id));
        }
        if seen[0] != 0 && seen.iter().all(|l| *l == seen[0]) {
            return Ok(seen[0]);
        }
        if Instant::now() > deadline {
            bail!("the edgekv nodes agreed on no leader within {timeout:?}; they see {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
