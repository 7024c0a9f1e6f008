//! `kvctl`: the edgekv admin CLI.
//!
//! Exit codes: 0 success, 1 a key that was asked for does not exist, 2 a usage error,
//! 3 any other failure (the server's code and message are printed on stderr; an unknown
//! cluster member, for one, is the server's `NOT_FOUND`).
//!
//! `-o json` prints one JSON document per invocation: an array for a collection, an object
//! for anything else (see [`output`]).
//!
//! An `https://` endpoint is reached over TLS, verified against the CA of `--cacert` (see
//! [`tls`]) or else the system's trusted roots.

mod admin;
#[cfg(test)]
mod docs_check;
mod output;
mod tls;
mod token;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use edgekv_client::{Client, Consistency, Entry, Error, Key, Selector, SetOptions, Value};
use futures::TryStreamExt as _;
use serde_json::{Value as Json, json};

use crate::output::{JsonArray, print_json, print_json_array};

#[derive(Parser)]
#[command(name = "kvctl", version, about = "Administer and query an edgekv cluster")]
struct Cli {
    /// Node to talk to: `http://` for a plaintext node, `https://` for one serving TLS.
    #[arg(
        long,
        global = true,
        env = "EDGEKV_ENDPOINT",
        default_value = "http://127.0.0.1:7070"
    )]
    endpoint: String,
    /// Access token, sent as a bearer token.
    #[arg(long, global = true, env = "EDGEKV_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of the cluster CA (may hold several certificates) that an https://
    /// endpoint is verified against; without it, the system's trusted roots.
    #[arg(long, global = true, env = "EDGEKV_CACERT", value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Output format: aligned tables, or one JSON document (an array for a collection such
    /// as `list` or `member list`, an object otherwise).
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ConsistencyArg {
    Strong,
    Eventual,
}

impl From<ConsistencyArg> for Consistency {
    fn from(c: ConsistencyArg) -> Self {
        match c {
            ConsistencyArg::Strong => Consistency::Strong,
            ConsistencyArg::Eventual => Consistency::Eventual,
        }
    }
}

/// KEY is `users/42` (string parts) or a JSON array such as '["users", 42]'.
#[derive(Subcommand)]
enum Command {
    /// Set a key to a string value.
    Put {
        key: String,
        value: String,
        /// Expire after this long, e.g. 30s, 5m, 1h.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// JSON metadata stored with the value (at most 1 KiB).
        #[arg(long)]
        metadata: Option<String>,
        /// Store VALUE as JSON instead of a string.
        #[arg(long)]
        json: bool,
    },
    /// Read a key.
    Get {
        key: String,
        #[arg(long, value_enum, default_value_t = ConsistencyArg::Strong)]
        consistency: ConsistencyArg,
    },
    /// Delete a key.
    Delete { key: String },
    /// List keys by prefix or range.
    List {
        /// List keys strictly under this key.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        prefix: Option<String>,
        /// First key of the range (inclusive); needs --end.
        #[arg(long, requires = "end")]
        start: Option<String>,
        /// End of the range (exclusive); needs --start.
        #[arg(long, requires = "start")]
        end: Option<String>,
        /// Stop after this many entries.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        reverse: bool,
        /// Print keys (and versionstamps) only.
        #[arg(long)]
        keys_only: bool,
        #[arg(long, value_enum, default_value_t = ConsistencyArg::Strong)]
        consistency: ConsistencyArg,
    },
    /// Add N to a u64 counter (created at N when absent).
    Sum { key: String, n: u64 },
    /// Add members to the set at a cache key (an OR-set: an add wins over a concurrent
    /// remove).
    Sadd {
        key: String,
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Remove members from the set at a cache key.
    Srem {
        key: String,
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// The members of the set at a cache key, one per line (sorted).
    Smembers { key: String },
    /// Show the node's id, region, version, data size and key count.
    Status,
    /// The Raft cluster as the answering node sees it.
    Cluster {
        #[command(subcommand)]
        command: admin::ClusterCommand,
    },
    /// List, add, promote and remove cluster members (sent to the leader).
    Member {
        #[command(subcommand)]
        command: admin::MemberCommand,
    },
    /// Simulated WAN faults between regions (nodes started with --allow-fault-injection).
    Fault {
        #[command(subcommand)]
        command: admin::FaultCommand,
    },
    /// Which keys are strong (Raft) and which are cache (multi-master CRDT) keys.
    Keyspace {
        #[command(subcommand)]
        command: admin::KeyspaceCommand,
    },
    /// Mint and inspect access tokens (locally, from a secrets file; no node is contacted).
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            code: 3,
            message: error.to_string(),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn parse_key(text: &str) -> Result<Key, Failure> {
    Key::parse(text).map_err(|e| usage(e.to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("kvctl: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    // Parse everything local before connecting, so a usage error never waits on the network.
    let output = cli.output;
    let command = cli.command;
    let plan = Plan::from_command(command)?;
    if let Plan::Token(token) = plan {
        return token.execute(cli.token.as_deref(), output);
    }
    let ca_pem = tls::ca_certificate(cli.cacert.as_deref(), &cli.endpoint)?;
    // Admin commands speak to the node's Admin service themselves (and may move on to the
    // leader); everything else goes through the SDK.
    if let Plan::Admin(admin) = plan {
        return admin.execute(&cli.endpoint, cli.token, ca_pem.as_deref(), output).await;
    }
    let mut builder = Client::builder().endpoint(&cli.endpoint);
    if let Some(token) = cli.token {
        builder = builder.token(token);
    }
    if let Some(pem) = ca_pem {
        builder = builder.ca_certificate(pem);
    }
    let client = builder.connect().await?;
    plan.execute(&client, output).await
}

/// A command with its arguments parsed and checked.
enum Plan {
    Put {
        key: Key,
        value: Value,
        options: SetOptions,
    },
    Get {
        key: Key,
        consistency: Consistency,
    },
    Delete {
        key: Key,
    },
    List {
        selector: Selector,
        limit: Option<usize>,
        reverse: bool,
        keys_only: bool,
        consistency: Consistency,
    },
    SetChange {
        key: Key,
        members: Vec<String>,
        add: bool,
    },
    Smembers {
        key: Key,
    },
    Sum {
        key: Key,
        n: u64,
    },
    Status,
    Admin(admin::Plan),
    Token(token::Plan),
}

impl Plan {
    fn from_command(command: Command) -> Result<Self, Failure> {
        Ok(match command {
            Command::Put {
                key,
                value,
                ttl,
                metadata,
                json,
            } => {
                let value = if json {
                    Value::Json(serde_json::from_str(&value).map_err(|e| usage(format!("VALUE is not JSON: {e}")))?)
                } else {
                    Value::String(value)
                };
                let metadata = metadata
                    .map(|m| {
                        serde_json::from_str::<Json>(&m).map_err(|e| usage(format!("--metadata is not JSON: {e}")))
                    })
                    .transpose()?;
                if ttl.is_some_and(|t| t.is_zero()) {
                    return Err(usage("--ttl must be greater than zero"));
                }
                Plan::Put {
                    key: parse_key(&key)?,
                    value,
                    options: SetOptions {
                        expire_in: ttl,
                        expire_at: None,
                        metadata,
                    },
                }
            }
            Command::Get { key, consistency } => Plan::Get {
                key: parse_key(&key)?,
                consistency: consistency.into(),
            },
            Command::Delete { key } => Plan::Delete { key: parse_key(&key)? },
            Command::List {
                prefix,
                start,
                end,
                limit,
                reverse,
                keys_only,
                consistency,
            } => {
                let selector = match (prefix, start, end) {
                    (Some(prefix), None, None) => Selector::prefix(parse_key(&prefix)?),
                    (None, Some(start), Some(end)) => Selector::range(parse_key(&start)?, parse_key(&end)?),
                    (None, None, None) => Selector::prefix(Key::default()),
                    _ => return Err(usage("give --prefix, or both --start and --end")),
                };
                Plan::List {
                    selector,
                    limit,
                    reverse,
                    keys_only,
                    consistency: consistency.into(),
                }
            }
            Command::Sadd { key, members } => Plan::SetChange {
                key: parse_key(&key)?,
                members,
                add: true,
            },
            Command::Srem { key, members } => Plan::SetChange {
                key: parse_key(&key)?,
                members,
                add: false,
            },
            Command::Smembers { key } => Plan::Smembers { key: parse_key(&key)? },
            Command::Sum { key, n } => Plan::Sum {
                key: parse_key(&key)?,
                n,
            },
            Command::Status => Plan::Status,
            Command::Cluster { command } => Plan::Admin(admin::Plan::cluster(command)),
            Command::Member { command } => Plan::Admin(admin::Plan::member(command)?),
            Command::Fault { command } => Plan::Admin(admin::Plan::fault(command)?),
            Command::Keyspace { command } => Plan::Admin(admin::Plan::keyspace(command)?),
            Command::Token { command } => Plan::Token(token::Plan::new(command)?),
        })
    }

    async fn execute(self, client: &Client, output: Output) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        match self {
            Plan::Put { key, value, options } => {
                let stamp = client.set(key.clone(), value).options(options).await?;
                match output {
                    Output::Json => print_json(
                        &mut out,
                        &json!({ "key": key.to_json(), "versionstamp": stamp.to_hex() }),
                    ),
                    Output::Table => println!("OK {stamp}"),
                }
            }
            Plan::Get { key, consistency } => {
                let Some(entry) = client.get(key.clone()).consistency(consistency).await? else {
                    return Err(Failure {
                        code: 1,
                        message: format!("not found: {key}"),
                    });
                };
                match output {
                    Output::Json => print_json(&mut out, &entry_json(&entry)),
                    Output::Table => print_table(&mut out, &[entry], false),
                }
            }
            Plan::Delete { key } => {
                let stamp = client.delete(key).await?;
                match output {
                    Output::Json => print_json(&mut out, &json!({ "versionstamp": stamp.to_hex() })),
                    Output::Table => println!("OK {stamp}"),
                }
            }
            Plan::List {
                selector,
                limit,
                reverse,
                keys_only,
                consistency,
            } => {
                let mut list = client
                    .list(selector)
                    .reverse(reverse)
                    .keys_only(keys_only)
                    .consistency(consistency)
                    .batch_size(500);
                if let Some(limit) = limit {
                    list = list.limit(limit);
                }
                let mut stream = std::pin::pin!(list.stream());
                if output == Output::Table {
                    // Columns are aligned to the widest cell, so the table waits for the end.
                    let mut rows = Vec::new();
                    while let Some(entry) = stream.try_next().await? {
                        rows.push(entry);
                    }
                    print_table(&mut out, &rows, keys_only);
                    return Ok(());
                }
                // One array, written as the pages arrive: a huge listing starts printing at
                // once and is never held in memory. A failure midway leaves the array
                // unclosed (not valid JSON) and exits 3.
                let mut array = JsonArray::new(std::io::BufWriter::new(out));
                while let Some(entry) = stream.try_next().await? {
                    if let Err(error) = array.push(&entry_json(&entry)) {
                        return stdout_failed(error);
                    }
                }
                if let Err(error) = array.finish() {
                    return stdout_failed(error);
                }
            }
            Plan::Sum { key, n } => {
                // The commit answers with the counter's value: no second request, which could
                // fail after the sum committed and invite a retry that counts twice.
                let result = client.atomic().sum(key, n).commit().await?;
                let stamp = result.versionstamp.map(|v| v.to_hex()).unwrap_or_default();
                let total = result.numeric_values.first().copied().flatten();
                match output {
                    Output::Json => print_json(&mut out, &json!({ "versionstamp": stamp, "value": total })),
                    Output::Table => println!("OK {stamp} value={}", total.map_or("?".into(), |t| t.to_string())),
                }
            }
            Plan::SetChange { key, members, add } => {
                let mut atomic = client.atomic();
                for member in members {
                    atomic = if add {
                        atomic.sadd(key.clone(), member)
                    } else {
                        atomic.srem(key.clone(), member)
                    };
                }
                let stamp = atomic
                    .commit()
                    .await?
                    .versionstamp
                    .map(|v| v.to_hex())
                    .unwrap_or_default();
                match output {
                    Output::Json => print_json(&mut out, &json!({ "versionstamp": stamp })),
                    Output::Table => println!("OK {stamp}"),
                }
            }
            Plan::Smembers { key } => {
                let members = client.members(key).await?;
                match output {
                    Output::Json => {
                        let members: Vec<Json> = members.into_iter().map(Json::String).collect();
                        print_json_array(&mut out, &members);
                    }
                    Output::Table => {
                        for member in members {
                            let _ = writeln!(out, "{member}");
                        }
                    }
                }
            }
            Plan::Status => {
                let status = client.status().await?;
                let report = json!({
                    "node_id": status.node_id,
                    "region": status.region,
                    "version": status.version,
                    "data_dir": status.data_dir,
                    "data_dir_bytes": status.data_dir_bytes,
                    "key_count": status.key_count,
                    "last_versionstamp": status.last_versionstamp,
                    "uptime_ms": status.uptime_ms,
                    "sync_writes": status.sync_writes,
                });
                match output {
                    Output::Json => print_json(&mut out, &report),
                    Output::Table => {
                        for (name, value) in report.as_object().expect("object") {
                            let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                            let _ = writeln!(out, "{name:<18} {text}");
                        }
                    }
                }
            }
            Plan::Admin(_) => unreachable!("run() executes admin plans without an SDK client"),
            Plan::Token(_) => unreachable!("run() executes token plans locally"),
        }
        Ok(())
    }
}

fn value_json(value: &Value) -> (Json, &'static str) {
    match value {
        Value::String(s) => (Json::String(s.clone()), "string"),
        Value::Json(j) => (j.clone(), "json"),
        Value::U64(n) => (json!(n), "u64"),
        Value::Bytes(b) => (Json::String(hex::encode(b)), "bytes"),
        Value::V8(b) => (Json::String(hex::encode(b)), "v8"),
    }
}

/// Stdout could not be written (a closed pipe: `kvctl list -o json | head`): stop there.
fn stdout_failed(error: std::io::Error) -> Result<(), Failure> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        return Ok(());
    }
    Err(Failure {
        code: 3,
        message: format!("cannot write to stdout: {error}"),
    })
}

/// An entry as `get` and `list` print it. `class` is left out when it is not known (a node
/// too old to say), never printed as null.
fn entry_json(entry: &Entry) -> Json {
    let (value, encoding) = entry.value.as_ref().map_or((Json::Null, "none"), value_json);
    let served = entry.served_by.as_ref().map(|s| {
        json!({
            "node_id": s.node_id,
            "region": s.region,
            "consistency": match s.consistency { Consistency::Strong => "strong", Consistency::Eventual => "eventual" },
        })
    });
    let mut json = json!({
        "key": entry.key.to_json(),
        "value": value,
        "encoding": encoding,
        "versionstamp": entry.versionstamp.to_hex(),
        "expires_at": entry.expires_at_ms,
        "metadata": entry.metadata,
        "served_by": served,
    });
    if let Some(class) = &entry.class {
        json["class"] = Json::String(class.clone());
    }
    json
}

fn print_table(out: &mut impl std::io::Write, entries: &[Entry], keys_only: bool) {
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            let value = e.value.as_ref().map_or(String::new(), |v| {
                let (json, _) = value_json(v);
                json.as_str().map_or_else(|| json.to_string(), str::to_string)
            });
            let expires = e.expires_at_ms.map_or("-".into(), |ms| ms.to_string());
            [e.key.to_string(), value, e.versionstamp.to_hex(), expires]
        })
        .collect();
    let header = [
        "KEY",
        if keys_only { "" } else { "VALUE" },
        "VERSIONSTAMP",
        "EXPIRES_AT_MS",
    ];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0), width(1));
    let _ = writeln!(
        out,
        "{:<w0$}  {:<w1$}  {:<20}  {}",
        header[0], header[1], header[2], header[3]
    );
    for row in rows {
        let _ = writeln!(out, "{:<w0$}  {:<w1$}  {:<20}  {}", row[0], row[1], row[2], row[3]);
    }
}
