//! The test harness: starts real `edgekv` processes on temporary directories and free
//! ports, and runs `kvctl` and the SDK examples against them.
//!
//! Binaries are found next to the test executable (`target/<profile>/`), where
//! `cargo x test` builds them first; `EDGEKV_BIN_DIR` overrides the location. Every process
//! started here is stopped by PID when its handle drops.

/// Real-process multi-node clusters.
pub mod cluster;
pub mod convergence;
/// Certificates, token secrets and tokens, made with the CLIs.
pub mod credentials;
/// Checks recorded concurrent histories for linearizability (Wing–Gong/Lowe, split per key).
pub mod linearizability;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// How long a node may take to open its data directory and listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Directory holding the workspace binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGEKV_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the suite with `cargo x test`, which builds the binaries first",
        path.display()
    );
    path
}

pub fn example(name: &str) -> PathBuf {
    let path = bin_dir().join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the suite with `cargo x test`, which builds the examples first",
        path.display()
    );
    path
}

/// `edgekv dev` on `data_dir` with free ports and a fast sweeper, as every test runs it.
fn dev_args(data_dir: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--kv-connect-listen",
        "127.0.0.1:0",
        "--peer-listen",
        "127.0.0.1:0",
        "--sweep-interval",
        "100ms",
        "--data-dir",
    ]
    .map(Into::into)
    .to_vec();
    args.push(data_dir.into());
    args
}

/// A running `edgekv dev` process.
pub struct Node {
    child: Option<Child>,
    /// Set when the node runs in a network namespace of its own; clients join it.
    isolated: bool,
    pub endpoint: String,
    /// The KV Connect URL, when the node serves it.
    pub kv_connect: Option<String>,
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl Node {
    /// Starts a node on `data_dir` with a free port.
    pub fn start(data_dir: &Path) -> Result<Self> {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Result<Self> {
        let mut command = Command::new(binary("edgekv"));
        command.args(dev_args(data_dir)).args(extra).env_remove("EDGEKV_CONFIG");
        Self::launch(command, data_dir)
    }

    /// Starts any `edgekv` command line (for instance `serve --config FILE`) and waits for
    /// its ready line. Its log goes to `<data_dir>.log`.
    pub fn launch(mut command: Command, data_dir: &Path) -> Result<Self> {
        let log = data_dir.with_extension("log");
        let log_file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .context("node log file")?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .context("cannot start edgekv")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        // Reads the ready lines (KV Connect, if served, comes before the client API), then
        // keeps draining stdout so the node never blocks on it.
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            let mut kv_connect = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("edgekv ready: KV Connect on ") {
                    kv_connect = Some(url.to_string());
                }
                if let Some(address) = line.strip_prefix("edgekv ready: client API on ")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send((address.to_string(), kv_connect.take()));
                }
            }
        });
        let mut node = Node {
            child: Some(child),
            isolated: false,
            endpoint: String::new(),
            kv_connect: None,
            data_dir: data_dir.to_path_buf(),
            log,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok((endpoint, kv_connect)) => {
                node.endpoint = endpoint;
                node.kv_connect = kv_connect;
                Ok(node)
            }
            Err(_) => {
                let status = node.kill();
                bail!("edgekv did not become ready ({status:?}); log:\n{}", node.log_text())
            }
        }
    }

    /// Starts `edgekv dev` in a new network namespace with only loopback up, so the
    /// third-party clients run against it (through [`Node::command`]) cannot reach
    /// anything else. Needs root; elsewhere the node runs on the host's loopback.
    pub fn start_isolated(data_dir: &Path) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("not root: running the node on the host loopback instead of a private network namespace");
            return Self::start(data_dir);
        }
        let mut command = Command::new("unshare");
        command
            .args(["--net", "--", "sh", "-c", r#"ip link set lo up && exec "$@""#, "sh"])
            .arg(binary("edgekv"))
            .args(dev_args(data_dir))
            .env_remove("EDGEKV_CONFIG");
        let mut node = Self::launch(command, data_dir)?;
        node.isolated = true;
        Ok(node)
    }

    /// Marks a node launched inside a network namespace (by `unshare --net` or `nsenter`)
    /// so [`Node::command`] runs clients in that namespace too.
    pub fn in_namespace(mut self) -> Self {
        self.isolated = true;
        self
    }

    /// The PID whose network namespace this node runs in.
    pub fn namespace_pid(&self) -> u32 {
        self.pid()
    }

    /// A command that runs `program` where it can reach this node: inside the node's
    /// network namespace when it has one.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        if self.isolated {
            let mut command = Command::new("nsenter");
            command
                .arg(format!("--net=/proc/{}/ns/net", self.pid()))
                .arg("--")
                .arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Runs `kvctl` against this node.
    pub fn kvctl(&self, args: &[&str]) -> Output {
        run_kvctl(self.command(binary("kvctl")), &self.endpoint, args)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running node").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) with a PID we own; at worst the process is already gone.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }

    /// SIGTERM, then waits for the orderly shutdown.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(30))
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.signal(libc::SIGKILL);
        self.wait(Duration::from_secs(30)).ok()
    }

    fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let mut child = self.child.take().ok_or_else(|| anyhow!("node already stopped"))?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("edgekv did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}

/// Runs `kvctl` against `endpoint` with `args`.
pub fn kvctl(endpoint: &str, args: &[&str]) -> Output {
    run_kvctl(Command::new(binary("kvctl")), endpoint, args)
}

/// Runs a prepared `kvctl` command with only the endpoint given on its command line.
fn run_kvctl(mut command: Command, endpoint: &str, args: &[&str]) -> Output {
    without_kvctl_environment(command.arg("--endpoint").arg(endpoint).args(args))
        .output()
        .expect("run kvctl")
}

/// `command` (a kvctl run) with none of the settings kvctl takes from the environment, so
/// a developer's exported `EDGEKV_*` cannot change what a test runs, and no stdin.
pub fn without_kvctl_environment(command: &mut Command) -> &mut Command {
    command
        .env_remove("EDGEKV_ENDPOINT")
        .env_remove("EDGEKV_TOKEN")
        .env_remove("EDGEKV_CACERT")
        .stdin(Stdio::null())
}

/// A process's standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// A process's standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// A finished process for an assertion's message: its exit code and both outputs.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

/// Polls `check` until it returns true or `timeout` passes. For waiting on real time
/// (TTL on a real process); never used to assert on speed.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
