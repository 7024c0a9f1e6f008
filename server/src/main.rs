//! `edgekv`: the node binary. Parses the command line, sets up logging and signals, and
//! hands over to [`edgekv_server::node::run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use edgekv_server::config::{Config, Overrides, Profile};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "edgekv",
    version,
    about = "A geo-distributed key-value store for edge functions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node for development: data in ./edgekv-data, API on 127.0.0.1:7070.
    Dev {
        #[command(flatten)]
        settings: Settings,
    },
    /// Run a local multi-region cluster with a simulated WAN, data in a temporary
    /// directory (like `cockroach demo --global`). Ctrl-C stops it and removes the data.
    Demo {
        /// Regions, comma-separated; the first node of each is a voter.
        #[arg(long, value_delimiter = ',', default_value = "us-east,eu-west,ap-northeast")]
        regions: Vec<String>,
        /// Nodes per region; those beyond the first join as learners (local eventual reads).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=5))]
        nodes_per_region: u16,
        /// Log filter, e.g. warn or edgekv_server=debug.
        #[arg(long = "log", env = "EDGEKV_LOG", default_value = "warn,openraft=error")]
        log_level: String,
        /// Run as a production cluster does: certificates and tokens, made in the demo's
        /// temporary directory; prints the CA file and an admin token for kvctl and Deno.
        #[arg(long)]
        secure: bool,
    },
    /// Make the cluster's certificates (`cert create-ca`, then `cert create-node` per node).
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Run a node from a configuration file (production).
    Serve {
        /// TOML configuration file (see docs/config.example.toml).
        #[arg(long, env = "EDGEKV_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Make a new cluster CA: ca.crt and ca.key in the certificates directory.
    CreateCa {
        /// Where the certificates go (created if missing).
        #[arg(long, env = "EDGEKV_CERTS_DIR")]
        certs_dir: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Make this node's certificate (node.crt, node.key), signed by the cluster CA.
    CreateNode {
        /// Where the certificates are: ca.crt (and ca.key, unless --ca-key names it).
        #[arg(long, env = "EDGEKV_CERTS_DIR")]
        certs_dir: PathBuf,
        /// A DNS name or IP address clients and peers reach this node by (repeat for each).
        #[arg(long = "host", required = true, num_args = 1..)]
        hosts: Vec<String>,
        /// The CA's private key, when it is kept outside the certificates directory.
        #[arg(long)]
        ca_key: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
}

/// Settings that override the configuration file; each also reads an EDGEKV_* variable.
#[derive(Args)]
struct Settings {
    /// Node id, a positive integer unique in the cluster.
    #[arg(long = "id", env = "EDGEKV_NODE_ID")]
    node_id: Option<u64>,
    /// Region this node runs in.
    #[arg(long, env = "EDGEKV_REGION")]
    region: Option<String>,
    /// RocksDB data directory.
    #[arg(long, env = "EDGEKV_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Client API address, e.g. 127.0.0.1:7070 (port 0 picks a free port).
    #[arg(long, env = "EDGEKV_LISTEN")]
    listen: Option<SocketAddr>,
    /// fsync before acknowledging writes (default true; false survives a process crash
    /// but not power loss).
    #[arg(long, env = "EDGEKV_SYNC_WRITES", action = clap::ArgAction::Set)]
    sync_writes: Option<bool>,
    /// How often expired entries are reclaimed, e.g. 1s.
    #[arg(long, env = "EDGEKV_SWEEP_INTERVAL", value_parser = humantime::parse_duration)]
    sweep_interval: Option<Duration>,
    /// Serve Deno KV Connect (true/false).
    #[arg(long, env = "EDGEKV_KV_CONNECT_ENABLED", action = clap::ArgAction::Set)]
    kv_connect_enabled: Option<bool>,
    /// KV Connect address, e.g. 127.0.0.1:7071.
    #[arg(long, env = "EDGEKV_KV_CONNECT_LISTEN")]
    kv_connect_listen: Option<SocketAddr>,
    /// KV Connect access token (what clients put in DENO_KV_ACCESS_TOKEN).
    #[arg(long, env = "EDGEKV_KV_CONNECT_TOKEN", hide_env_values = true)]
    kv_connect_token: Option<String>,
    /// File with KV Connect access tokens, one per line.
    #[arg(long, env = "EDGEKV_KV_CONNECT_TOKEN_FILE")]
    kv_connect_token_file: Option<PathBuf>,
    /// Log filter, e.g. info or edgekv_server=debug.
    #[arg(long = "log", env = "EDGEKV_LOG")]
    log_level: Option<String>,
    /// Peer listener (Raft and forwarding between nodes), e.g. 127.0.0.1:7080.
    #[arg(long, env = "EDGEKV_PEER_LISTEN")]
    peer_listen: Option<SocketAddr>,
    /// Address other members reach this node's peer listener at (default: --peer-listen).
    #[arg(long, env = "EDGEKV_PEER_ADVERTISE")]
    peer_advertise: Option<String>,
    /// Voters of a new cluster: ID=REGION@PEER_ADDR,... (this node among them).
    #[arg(long, env = "EDGEKV_INITIAL_CLUSTER", conflicts_with = "join")]
    initial_cluster: Option<String>,
    /// Peer address of a member of an existing cluster to join as a learner.
    #[arg(long, env = "EDGEKV_JOIN")]
    join: Option<String>,
    /// Start empty and wait to be added with `kvctl member add`.
    #[arg(long, env = "EDGEKV_AWAIT_MEMBERSHIP", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    await_membership: Option<bool>,
    /// Serve the fault-injection admin call (simulated WAN latency and partitions).
    #[arg(long, env = "EDGEKV_ALLOW_FAULT_INJECTION", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    allow_fault_injection: Option<bool>,
    /// Raft heartbeat interval, e.g. 300ms.
    #[arg(long, env = "EDGEKV_HEARTBEAT", value_parser = humantime::parse_duration)]
    heartbeat: Option<Duration>,
    /// Raft election timeout, e.g. 3s (at least 10x the largest RTT between regions).
    #[arg(long, env = "EDGEKV_ELECTION_TIMEOUT", value_parser = humantime::parse_duration)]
    election_timeout: Option<Duration>,
    /// How long a strong request waits for a leader or quorum before failing, e.g. 10s.
    #[arg(long, env = "EDGEKV_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    request_timeout: Option<Duration>,
    /// Take a Raft snapshot every this many log entries.
    #[arg(long, env = "EDGEKV_SNAPSHOT_AFTER_ENTRIES")]
    snapshot_after_entries: Option<u64>,
    /// Log entries kept after a snapshot for followers that lag a little.
    #[arg(long, env = "EDGEKV_ENTRIES_KEPT_AFTER_SNAPSHOT")]
    entries_kept_after_snapshot: Option<u64>,
    /// The most bytes a snapshot received from the leader may have (chunks beyond are
    /// refused). Keep it above the data set's size on every node.
    #[arg(long, env = "EDGEKV_MAX_SNAPSHOT_BYTES")]
    max_snapshot_bytes: Option<u64>,
    /// How long tombstones of cache keys are kept, e.g. 24h: longer than the longest
    /// partition the cluster must survive.
    #[arg(long, env = "EDGEKV_TOMBSTONE_GRACE", value_parser = humantime::parse_duration)]
    tombstone_grace: Option<Duration>,
    /// Cache-replication outbox entries kept for peers that do not take them.
    #[arg(long, env = "EDGEKV_OUTBOX_LIMIT")]
    outbox_limit: Option<u64>,
    /// How often cache anti-entropy compares digests with the next peer, e.g. 2s.
    #[arg(long, env = "EDGEKV_ANTI_ENTROPY_INTERVAL", value_parser = humantime::parse_duration)]
    anti_entropy_interval: Option<Duration>,
    /// How far ahead a peer's clock may be before its cache updates are refused, e.g. 1s.
    #[arg(long, env = "EDGEKV_MAX_CLOCK_SKEW", value_parser = humantime::parse_duration)]
    max_clock_skew: Option<Duration>,
    /// Directory with ca.crt, node.crt and node.key (`edgekv cert`): serve TLS everywhere
    /// and mutual TLS between nodes.
    #[arg(long, env = "EDGEKV_CERTS_DIR")]
    certs_dir: Option<PathBuf>,
    /// Serve plaintext: `serve` without --certs-dir, or `dev` on a non-loopback address.
    #[arg(long, env = "EDGEKV_INSECURE", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    insecure: Option<bool>,
    /// File of token secrets, one `KEY_ID SECRET` a line (the first signs, all verify):
    /// every request then needs a token from `kvctl token create`. Required by `serve`
    /// with --certs-dir.
    #[arg(long, env = "EDGEKV_AUTH_SECRET_FILE")]
    auth_secret_file: Option<PathBuf>,
}

impl From<Settings> for Overrides {
    fn from(s: Settings) -> Self {
        Overrides {
            node_id: s.node_id,
            region: s.region,
            data_dir: s.data_dir,
            listen: s.listen,
            sync_writes: s.sync_writes,
            sweep_interval: s.sweep_interval,
            log_level: s.log_level,
            kv_connect_enabled: s.kv_connect_enabled,
            kv_connect_listen: s.kv_connect_listen,
            kv_connect_token: s.kv_connect_token,
            kv_connect_token_file: s.kv_connect_token_file,
            peer_listen: s.peer_listen,
            peer_advertise: s.peer_advertise,
            initial_cluster: s.initial_cluster,
            join: s.join,
            await_membership: s.await_membership,
            allow_fault_injection: s.allow_fault_injection,
            heartbeat: s.heartbeat,
            election_timeout: s.election_timeout,
            request_timeout: s.request_timeout,
            snapshot_after_entries: s.snapshot_after_entries,
            entries_kept_after_snapshot: s.entries_kept_after_snapshot,
            max_snapshot_bytes: s.max_snapshot_bytes,
            tombstone_grace: s.tombstone_grace,
            outbox_limit: s.outbox_limit,
            anti_entropy_interval: s.anti_entropy_interval,
            max_clock_skew: s.max_clock_skew,
            certs_dir: s.certs_dir,
            insecure: s.insecure,
            auth_secret_file: s.auth_secret_file,
        }
    }
}

/// The KV Connect access token of `edgekv dev` when none is given: a development node
/// listens on loopback only, and a fixed token makes `DENO_KV_ACCESS_TOKEN` copy-pasteable.
const DEV_KV_CONNECT_TOKEN: &str = "edgekv-dev-token";

/// The node's configuration, and a warning for each listener it opens to strangers on
/// purpose (`--insecure`), to log once logging is up.
type Loaded = (Config, Vec<String>);

fn load(command: Command) -> Result<Loaded, edgekv_server::config::ConfigError> {
    let (config, profile) = match command {
        Command::Dev { settings } => {
            let mut overrides = Overrides::from(settings);
            // With secrets, KV Connect's access tokens are signed tokens instead.
            if overrides.kv_connect_token_file.is_none() && overrides.auth_secret_file.is_none() {
                overrides
                    .kv_connect_token
                    .get_or_insert_with(|| DEV_KV_CONNECT_TOKEN.into());
            }
            (Config::load(None, overrides)?, Profile::Dev)
        }
        Command::Serve { config, settings } => (Config::load(config.as_deref(), settings.into())?, Profile::Serve),
        Command::Demo { .. } | Command::Cert { .. } => unreachable!("handled before a node configuration is loaded"),
    };
    let open = config.check_exposure(profile)?;
    Ok((config, open))
}

fn cert(command: CertCommand) -> ExitCode {
    let written = match command {
        CertCommand::CreateCa { certs_dir, overwrite } => edgekv_server::tls::create::create_ca(&certs_dir, overwrite),
        CertCommand::CreateNode {
            certs_dir,
            hosts,
            ca_key,
            overwrite,
        } => edgekv_server::tls::create::create_node(&certs_dir, &hosts, ca_key.as_deref(), overwrite),
    };
    match written {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("edgekv cert: {error}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Cert { command } = cli.command {
        return cert(command);
    }
    if let Command::Demo {
        regions,
        nodes_per_region,
        log_level,
        secure,
    } = cli.command
    {
        let plan = edgekv_server::demo::DemoPlan {
            regions,
            nodes_per_region: nodes_per_region.into(),
            secure,
        };
        return run_until_signal("edgekv demo", &log_level, |shutdown| {
            edgekv_server::demo::run(plan, shutdown)
        });
    }
    let (config, open) = match load(cli.command) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("edgekv: {error}");
            return ExitCode::from(2);
        }
    };
    let log_level = config.log.level.clone();
    let scheme = if config.tls.certs_dir().is_some() {
        "https"
    } else {
        "http"
    };
    run_until_signal("edgekv", &log_level, |shutdown| async move {
        for warning in open {
            tracing::warn!("{warning}");
        }
        // The ready line goes to stdout, one line, so scripts and tests can wait for it.
        let on_ready = Box::new(move |ready: edgekv_server::node::Ready| {
            println!("edgekv ready: peer listener on {}", ready.peer);
            if let Some(kv_connect) = ready.kv_connect {
                println!("edgekv ready: KV Connect on {scheme}://{kv_connect}");
            }
            println!("edgekv ready: client API on {scheme}://{}", ready.api);
        });
        edgekv_server::node::run(config, shutdown, on_ready).await
    })
}

/// Sets up logging and the runtime, runs `work` until it ends or a signal asks it to, and
/// turns the outcome into the exit code (2 for a bad log filter, 1 for a failure).
fn run_until_signal<F, Fut, E>(name: &str, log_level: &str, work: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let filter = match tracing_subscriber::EnvFilter::try_new(log_level) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("{name}: invalid log filter {log_level:?}: {error}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
        let result = work(shutdown).await;
        signals.abort();
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM both start the orderly shutdown.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        tracing::error!("cannot install signal handlers; stop the node with SIGKILL");
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}
