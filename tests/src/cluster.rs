//! Real-process clusters: `edgekv serve` nodes on loopback, one per region, formed with
//! `--initial-cluster`, with Raft timeouts short enough for tests and fault injection on
//! (the simulated WAN cuts links between regions). Each node keeps its ports and data
//! directory across kill and restart, as a real server does.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use edgekv_client::Client;
use edgekv_client::proto::{self as pb, admin_client::AdminClient};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::{Node, binary};

/// Test timings: loopback round trips are microseconds, so elections can be quick. A
/// cluster's extra arguments may name any of these flags to replace it.
const RAFT_ARGS: [&str; 8] = [
    "--heartbeat",
    "100ms",
    "--election-timeout",
    "1s",
    "--request-timeout",
    "3s",
    "--sweep-interval",
    "100ms",
];

/// A free loopback port the command line can name before the node binds it. Picked below
/// Linux's ephemeral range (32768 and up): a port from the kernel's own pick could be
/// taken, between this check and the node's bind, as the source port of any outgoing
/// connection (seen in CI). Ports handed out once are not handed out again by this
/// process, and processes running side by side start at different places in the range.
fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let seed = std::process::id().wrapping_mul(7_919) % COUNT;
    let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port between 20000 and 32000")
}

/// How a cluster is started.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Serve KV Connect on every node (token [`KV_CONNECT_TOKEN`]).
    pub kv_connect: bool,
    /// Run every node in one private network namespace with only loopback up (needs
    /// root); clients must then run through [`ClusterNode::command`].
    pub isolated: bool,
    /// A certificates directory (`edgekv cert`) every node serves TLS with; plaintext
    /// (`--insecure`) when `None`.
    pub certs_dir: Option<PathBuf>,
    /// A token secrets file (`--auth-secret-file`) every node checks tokens with; KV
    /// Connect's access tokens are then signed tokens, not [`KV_CONNECT_TOKEN`].
    pub auth_secret_file: Option<PathBuf>,
    /// The token the harness's own clients and admin calls send (an admin token with
    /// access to every key, for a cluster that checks tokens).
    pub token: Option<String>,
}

/// Sends a bearer token with every admin call (none when the cluster checks no tokens).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    fn new(token: Option<&str>) -> Result<Self> {
        Ok(Self(
            token
                .map(|token| format!("Bearer {token}").parse())
                .transpose()
                .context("a token is printable ASCII")?,
        ))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The KV Connect access token of test clusters.
pub const KV_CONNECT_TOKEN: &str = "edgekv-cluster-token";

pub struct ClusterNode {
    pub id: u64,
    pub region: String,
    pub api_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    /// How it joined: `--initial-cluster ...` or `--join ...`.
    bootstrap: Vec<String>,
    extra: Vec<String>,
    options: ClusterOptions,
    /// The process whose network namespace an isolated cluster shares (the first node's).
    namespace_of: Option<u32>,
    pub kv_connect_port: u16,
    pub process: Option<Node>,
}

impl ClusterNode {
    fn scheme(&self) -> &'static str {
        if self.options.certs_dir.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.api_port)
    }

    pub fn peer_addr(&self) -> String {
        format!("127.0.0.1:{}", self.peer_port)
    }

    /// The KV Connect URL (Deno.openKv), when the cluster serves it.
    pub fn kv_connect_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.kv_connect_port)
    }

    /// A command that runs `program` where it can reach this node.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.process.as_ref().expect("running node").command(program)
    }

    fn start(&mut self) -> Result<()> {
        let isolated = self.options.isolated && unsafe { libc::geteuid() } == 0;
        let mut command = match (isolated, self.namespace_of) {
            (false, _) => Command::new(binary("edgekv")),
            (true, None) => {
                let mut command = Command::new("unshare");
                command
                    .args(["--net", "--", "sh", "-c", r#"ip link set lo up && exec "$@""#, "sh"])
                    .arg(binary("edgekv"));
                command
            }
            (true, Some(pid)) => {
                let mut command = Command::new("nsenter");
                command
                    .arg(format!("--net=/proc/{pid}/ns/net"))
                    .arg("--")
                    .arg(binary("edgekv"));
                command
            }
        };
        let kv_connect = if self.options.kv_connect {
            let mut flags = vec![
                "--kv-connect-listen".to_string(),
                format!("127.0.0.1:{}", self.kv_connect_port),
            ];
            if self.options.auth_secret_file.is_none() {
                flags.extend(["--kv-connect-token".to_string(), KV_CONNECT_TOKEN.to_string()]);
            }
            flags
        } else {
            vec!["--kv-connect-enabled".to_string(), "false".to_string()]
        };
        command
            .arg("serve")
            .args(self.security_args())
            .args(["--id", &self.id.to_string(), "--region", &self.region])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.api_port)])
            .args(["--peer-listen", &self.peer_addr()])
            .args(kv_connect)
            .arg("--allow-fault-injection")
            .args(self.raft_args())
            .args(&self.bootstrap)
            .args(&self.extra)
            .env_remove("EDGEKV_CONFIG");
        let node = Node::launch(command, &self.data_dir).with_context(|| format!("start node {}", self.id))?;
        self.process = Some(if isolated { node.in_namespace() } else { node });
        Ok(())
    }

    /// The cluster's certificates, or plaintext on loopback (`--insecure`) unless the
    /// node's extra arguments give it certificates of its own; and its token secrets.
    fn security_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = if let Some(dir) = &self.options.certs_dir {
            vec!["--certs-dir".into(), dir.into()]
        } else if self.extra.iter().any(|e| e.starts_with("--certs-dir")) {
            Vec::new()
        } else {
            vec!["--insecure".into()]
        };
        if let Some(file) = &self.options.auth_secret_file {
            args.extend(["--auth-secret-file".into(), file.into()]);
        }
        args
    }

    /// The test timings, less those the node's extra arguments name themselves.
    fn raft_args(&self) -> Vec<&'static str> {
        RAFT_ARGS
            .chunks(2)
            .filter(|flag_value| {
                let flag = flag_value[0];
                !self
                    .extra
                    .iter()
                    .any(|e| e == flag || e.strip_prefix(flag).is_some_and(|rest| rest.starts_with('=')))
            })
            .flatten()
            .copied()
            .collect()
    }

    /// A client that talks to this node only (no leader following), as a client in this
    /// node's region that can reach nothing else would.
    pub async fn client(&self) -> Result<Client> {
        self.client_as(self.options.token.as_deref()).await
    }

    /// [`Self::client`] sending `token` instead of the harness's own (`None`: no token).
    pub async fn client_as(&self, token: Option<&str>) -> Result<Client> {
        let mut builder = Client::builder()
            .region_endpoint(&self.region, self.endpoint())
            .region(&self.region)
            .stay_local(true);
        if let Some(dir) = &self.options.certs_dir {
            builder = builder.ca_certificate(std::fs::read(dir.join("ca.crt"))?);
        }
        if let Some(token) = token {
            builder = builder.token(token);
        }
        Ok(builder.connect().await?)
    }

    /// The admin service of this node, over TLS when the cluster has certificates, sending
    /// the harness's token.
    pub async fn admin(&self) -> Result<AdminClient<InterceptedService<Channel, Bearer>>> {
        self.admin_as(self.options.token.as_deref()).await
    }

    /// [`Self::admin`] sending `token` instead (`None`: no token).
    pub async fn admin_as(&self, token: Option<&str>) -> Result<AdminClient<InterceptedService<Channel, Bearer>>> {
        let mut endpoint = Channel::from_shared(self.endpoint())?;
        if let Some(dir) = &self.options.certs_dir {
            let ca = Certificate::from_pem(std::fs::read(dir.join("ca.crt"))?);
            endpoint = endpoint.tls_config(ClientTlsConfig::new().ca_certificate(ca))?;
        }
        let bearer = Bearer::new(token)?;
        Ok(AdminClient::with_interceptor(endpoint.connect().await?, bearer))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }
}

pub struct Cluster {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pub nodes: Vec<ClusterNode>,
}

impl Cluster {
    /// One voter per region, ids 1..=n in region order; `extra` goes to every node.
    pub fn start(regions: &[&str], extra: &[&str]) -> Result<Self> {
        Self::start_with(regions, extra, ClusterOptions::default())
    }

    pub fn start_with(regions: &[&str], extra: &[&str], options: ClusterOptions) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let mut nodes = Vec::new();
        for (i, region) in regions.iter().enumerate() {
            let id = i as u64 + 1;
            nodes.push(ClusterNode {
                id,
                region: region.to_string(),
                api_port: free_port()?,
                peer_port: free_port()?,
                data_dir: root.join(format!("node-{id}")),
                bootstrap: Vec::new(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
                options: options.clone(),
                namespace_of: None,
                kv_connect_port: free_port()?,
                process: None,
            });
        }
        let initial = nodes
            .iter()
            .map(|n| format!("{}={}@{}", n.id, n.region, n.peer_addr()))
            .collect::<Vec<_>>()
            .join(",");
        for node in &mut nodes {
            node.bootstrap = vec!["--initial-cluster".into(), initial.clone()];
        }
        // Started one by one: each waits for its own ready line only, so order is free.
        // In an isolated cluster the first node creates the namespace the others enter.
        let mut namespace_of = None;
        for node in &mut nodes {
            node.namespace_of = namespace_of;
            node.start()?;
            if options.isolated {
                namespace_of = node.process.as_ref().map(Node::namespace_pid);
            }
        }
        Ok(Self { _dir: dir, root, nodes })
    }

    pub fn node(&self, id: u64) -> &ClusterNode {
        self.nodes.iter().find(|n| n.id == id).expect("no such node")
    }

    fn node_mut(&mut self, id: u64) -> &mut ClusterNode {
        self.nodes.iter_mut().find(|n| n.id == id).expect("no such node")
    }

    /// Starts a new node that joins through `via` as a learner.
    pub fn join(&mut self, region: &str, via: u64, extra: &[&str]) -> Result<u64> {
        let peer = self.node(via).peer_addr();
        self.add_node(region, vec!["--join".into(), peer], extra)
    }

    /// Starts a new node with no bootstrap flag: it forms a one-voter cluster of its own.
    pub fn start_standalone(&mut self, region: &str, extra: &[&str]) -> Result<u64> {
        self.add_node(region, Vec::new(), extra)
    }

    /// Starts a new node that waits to be added (`kvctl member add`).
    pub fn start_waiting(&mut self, region: &str, extra: &[&str]) -> Result<u64> {
        self.add_node(region, vec!["--await-membership".into()], extra)
    }

    fn add_node(&mut self, region: &str, bootstrap: Vec<String>, extra: &[&str]) -> Result<u64> {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        let mut node = ClusterNode {
            id,
            region: region.to_string(),
            api_port: free_port()?,
            peer_port: free_port()?,
            data_dir: self.root.join(format!("node-{id}")),
            bootstrap,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            options: self.nodes[0].options.clone(),
            namespace_of: self.nodes[0]
                .namespace_of
                .or(self.nodes[0].process.as_ref().map(Node::namespace_pid)),
            kv_connect_port: free_port()?,
            process: None,
        };
        node.start()?;
        self.nodes.push(node);
        Ok(id)
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut process) = self.node_mut(id).process.take() {
            process.kill();
        }
    }

    pub fn restart(&mut self, id: u64) -> Result<()> {
        self.kill(id);
        self.node_mut(id).start()
    }

    /// A client given every running node, in `region`.
    pub async fn client_in(&self, region: &str) -> Result<Client> {
        let mut builder = Client::builder().region(region);
        for node in self.nodes.iter().filter(|n| n.process.is_some()) {
            builder = builder.region_endpoint(&node.region, node.endpoint());
        }
        let options = &self.nodes[0].options;
        if let Some(dir) = &options.certs_dir {
            builder = builder.ca_certificate(std::fs::read(dir.join("ca.crt"))?);
        }
        if let Some(token) = &options.token {
            builder = builder.token(token);
        }
        Ok(builder.connect().await?)
    }

    /// The cluster status as node `id` sees it.
    pub async fn status(&self, id: u64) -> Result<pb::ClusterStatusResponse> {
        Ok(self.node(id).client().await?.cluster_status().await?)
    }

    /// Waits until every running node agrees on one leader, not in `not`, and returns it.
    pub async fn wait_for_leader(&self, not: &[u64], timeout: std::time::Duration) -> Result<u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for node in self.nodes.iter().filter(|n| n.process.is_some()) {
                if let Ok(status) = self.status(node.id).await {
                    seen.push(status.leader_id);
                }
            }
            if let Some(&leader) = seen.first()
                && leader != 0
                && !not.contains(&leader)
                && seen.iter().all(|l| *l == leader)
                && seen.len() == self.nodes.iter().filter(|n| n.process.is_some()).count()
            {
                return Ok(leader);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no agreed leader within {timeout:?}; nodes see {seen:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Applies a simulated network fault through node `via` (it passes it to everyone).
    pub async fn fault(&self, via: u64, fault: pb::inject_fault_request::Fault) -> Result<pb::InjectFaultResponse> {
        let mut admin = self.node(via).admin().await?;
        Ok(admin
            .inject_fault(pb::InjectFaultRequest { fault: Some(fault) })
            .await?
            .into_inner())
    }

    /// Cuts every link between `region` and the other regions.
    pub async fn isolate(&self, region: &str, via: u64) -> Result<()> {
        for other in self.nodes.iter().map(|n| n.region.clone()).filter(|r| r != region) {
            self.fault(
                via,
                pb::inject_fault_request::Fault::Partition(pb::RegionPair {
                    a: region.to_string(),
                    b: other,
                }),
            )
            .await?;
        }
        Ok(())
    }

    /// Puts keys under `prefix` in `class` ("strong" or "cache") through node `via`, and
    /// waits until every running node applies the rule.
    pub async fn set_class(&self, via: u64, prefix: &edgekv_client::Key, class: &str) -> Result<()> {
        let request = pb::SetKeyspaceClassRequest {
            prefix: prefix.encode(),
            class: class.into(),
        };
        self.node(via).admin().await?.set_keyspace_class(request).await?;
        for node in self.nodes.iter().filter(|n| n.process.is_some()) {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let rules = node
                    .admin()
                    .await?
                    .list_keyspace(pb::ListKeyspaceRequest {})
                    .await?
                    .into_inner();
                if rules
                    .rules
                    .iter()
                    .any(|r| r.prefix == prefix.encode() && r.class == class)
                {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("node {} did not apply the class rule", node.id);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    pub async fn heal(&self, via: u64) -> Result<()> {
        self.fault(via, pb::inject_fault_request::Fault::Heal(pb::Heal {}))
            .await
            .map(|_| ())
    }
}
