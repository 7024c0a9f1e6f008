//! Cluster administration: `cluster status`, `member list|add|promote|remove` and
//! `fault partition|heal|latency`, spoken to the node's `edgekv.v1.Admin` service directly.
//!
//! Membership changes are made by the Raft leader. A follower refuses them with
//! `UNAVAILABLE` and names the leader's client address in the `edgekv-leader` metadata; the
//! command is then sent once more, to that address. A follower that does not know the
//! leader's address yet (it learns it from forwarded client traffic) is asked for its
//! cluster status instead, which lists every member's client address.

use std::io::Write as _;
use std::time::Duration;

use clap::Subcommand;
use edgekv_proto::grpc_status::code_of;
use edgekv_proto::v1::{self as pb, admin_client::AdminClient, inject_fault_request::Fault};
use edgekv_proto::{ErrorCode, LEADER_METADATA};
use serde_json::{Value as Json, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::output::{print_json, print_json_array};
use crate::{Failure, Output, usage};

/// Class rules go through Raft: any node takes them (a follower forwards to the leader).
#[derive(Subcommand)]
pub enum KeyspaceCommand {
    /// Put the keys under PREFIX in CLASS. Refused (KEYSPACE_NOT_EMPTY) while the prefix
    /// holds data of the other class: a class change never reinterprets data.
    SetClass {
        /// A key prefix: `sessions` or '["cache", "eu"]'.
        prefix: String,
        #[arg(value_enum)]
        class: ClassArg,
    },
    /// The class of keys no other rule matches (strong unless set).
    SetDefault {
        #[arg(value_enum)]
        class: ClassArg,
    },
    /// The rules in force: prefix and class, and the default.
    List,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassArg {
    /// Linearizable, through Raft; atomic checks allowed.
    Strong,
    /// Multi-master: written locally in any region, merged everywhere (no checks).
    Cache,
}

impl ClassArg {
    fn name(self) -> &'static str {
        match self {
            ClassArg::Strong => "strong",
            ClassArg::Cache => "cache",
        }
    }
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// The answering node's view: leader, term, log indexes and every member with its lag.
    Status,
}

/// Membership changes go to the leader (kvctl follows a follower's pointer to it).
#[derive(Subcommand)]
pub enum MemberCommand {
    /// The members: id, region, role, peer and client addresses, matched index, lag.
    List,
    /// Add a node; it becomes a voter once it has caught up, or stays a learner (--learner).
    ///
    /// The node must be running, started with `edgekv serve --id ID --region REGION
    /// --peer-listen PEER_ADDR --await-membership` on an empty data directory. Prints the
    /// resulting member list.
    Add {
        /// The id the node was started with (--id).
        #[arg(value_parser = member_id)]
        id: u64,
        /// The region the node was started with (--region).
        region: String,
        /// The new node's --peer-listen address, HOST:PORT.
        peer_addr: String,
        /// Leave it a learner: a full copy for local reads that does not vote.
        #[arg(long)]
        learner: bool,
    },
    /// Turn a learner into a voter; prints the resulting member list.
    Promote {
        #[arg(value_parser = member_id)]
        id: u64,
    },
    /// Remove a voter or a learner from the cluster; prints the resulting member list.
    Remove {
        #[arg(value_parser = member_id)]
        id: u64,
    },
}

/// Simulated WAN faults, passed by the answering node to every member. Only on nodes started
/// with --allow-fault-injection (edgekv demo does); each prints the links now in force.
#[derive(Subcommand)]
pub enum FaultCommand {
    /// Cut both directions between two regions.
    Partition {
        #[arg(value_name = "REGION")]
        a: String,
        #[arg(value_name = "REGION")]
        b: String,
    },
    /// Restore every cut link. Latencies stay (set them to 0 to remove them).
    Heal,
    /// Delay messages between two regions by MS milliseconds each way (a round trip: 2×MS).
    ///
    /// The delay applies in both directions, so a round trip between the two regions costs
    /// 2×MS more (plus jitter). It replaces the pair's previous setting; 0 (and no jitter)
    /// removes it.
    Latency {
        #[arg(value_name = "REGION")]
        a: String,
        #[arg(value_name = "REGION")]
        b: String,
        /// One-way delay in milliseconds, added in each direction.
        #[arg(value_name = "MS")]
        ms: u32,
        /// Random extra delay, 0 to this many milliseconds, per message and direction.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        jitter: u32,
    },
}

/// Member ids start at 1.
fn member_id(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("member ids start at 1".into()),
        Ok(id) => Ok(id),
        Err(_) => Err(format!("{text:?} is not a member id (a positive integer)")),
    }
}

/// An admin command with its arguments checked.
pub enum Plan {
    ClusterStatus,
    MemberList,
    Membership(Change),
    Fault(Fault),
    SetClass(pb::SetKeyspaceClassRequest),
    ListKeyspace,
}

/// A membership change, sent to the leader.
#[derive(Clone)]
pub enum Change {
    Add(pb::AddMemberRequest),
    Promote(u64),
    Remove(u64),
}

fn check_region(region: &str) -> Result<(), Failure> {
    if region.trim().is_empty() {
        return Err(usage("a region name must not be empty"));
    }
    Ok(())
}

fn check_region_pair(a: &str, b: &str) -> Result<(), Failure> {
    check_region(a)?;
    check_region(b)?;
    if a == b {
        return Err(usage(format!(
            "a fault is between two different regions, not {a:?} and itself"
        )));
    }
    Ok(())
}

/// `HOST:PORT`, as given to `edgekv serve --peer-listen`.
fn check_peer_addr(addr: &str) -> Result<(), Failure> {
    let valid = !addr.contains("://")
        && addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if !valid {
        return Err(usage(format!(
            "PEER_ADDR {addr:?} is not HOST:PORT (the node's --peer-listen address)"
        )));
    }
    Ok(())
}

impl Plan {
    pub fn cluster(command: ClusterCommand) -> Self {
        match command {
            ClusterCommand::Status => Plan::ClusterStatus,
        }
    }

    pub fn member(command: MemberCommand) -> Result<Self, Failure> {
        Ok(match command {
            MemberCommand::List => Plan::MemberList,
            MemberCommand::Add {
                id,
                region,
                peer_addr,
                learner,
            } => {
                check_region(&region)?;
                check_peer_addr(&peer_addr)?;
                Plan::Membership(Change::Add(pb::AddMemberRequest {
                    id,
                    region,
                    peer_addr,
                    learner,
                }))
            }
            MemberCommand::Promote { id } => Plan::Membership(Change::Promote(id)),
            MemberCommand::Remove { id } => Plan::Membership(Change::Remove(id)),
        })
    }

    pub fn keyspace(command: KeyspaceCommand) -> Result<Self, Failure> {
        Ok(match command {
            KeyspaceCommand::SetClass { prefix, class } => {
                let prefix = crate::parse_key(&prefix)?;
                if prefix.0.is_empty() {
                    return Err(usage(
                        "PREFIX is empty; use `keyspace set-default CLASS` for the default class",
                    ));
                }
                Plan::SetClass(pb::SetKeyspaceClassRequest {
                    prefix: prefix.encode(),
                    class: class.name().into(),
                })
            }
            KeyspaceCommand::SetDefault { class } => Plan::SetClass(pb::SetKeyspaceClassRequest {
                prefix: Vec::new(),
                class: class.name().into(),
            }),
            KeyspaceCommand::List => Plan::ListKeyspace,
        })
    }

    pub fn fault(command: FaultCommand) -> Result<Self, Failure> {
        Ok(Plan::Fault(match command {
            FaultCommand::Partition { a, b } => {
                check_region_pair(&a, &b)?;
                Fault::Partition(pb::RegionPair { a, b })
            }
            FaultCommand::Heal => Fault::Heal(pb::Heal {}),
            FaultCommand::Latency { a, b, ms, jitter } => {
                check_region_pair(&a, &b)?;
                Fault::Latency(pb::Latency {
                    a,
                    b,
                    one_way_delay_ms: ms,
                    jitter_ms: jitter,
                })
            }
        }))
    }

    pub async fn execute(self, endpoint: &str, token: Option<String>, output: Output) -> Result<(), Failure> {
        let authorization = authorization(endpoint, token)?;
        let mut node = Node::connect(endpoint, authorization.clone()).await?;
        let mut out = std::io::stdout().lock();
        match self {
            Plan::ClusterStatus => {
                let status = node.cluster_status().await.map_err(|s| failure(&s))?;
                match output {
                    Output::Json => print_json(&mut out, &cluster_json(&status)),
                    Output::Table => print_cluster(&mut out, &status),
                }
            }
            Plan::MemberList => {
                let status = node.cluster_status().await.map_err(|s| failure(&s))?;
                print_members(&mut out, &status.members, output);
            }
            Plan::Membership(change) => {
                let status = match node.change(change.clone()).await {
                    Ok(status) => status,
                    Err(refusal) => {
                        let Some(leader) = node.leader_after(&refusal).await else {
                            return Err(failure(&refusal));
                        };
                        eprintln!("kvctl: sent to the leader at {leader}");
                        let mut leader = Node::connect(&leader, authorization).await?;
                        leader.change(change).await.map_err(|s| failure(&s))?
                    }
                };
                print_members(&mut out, &status.members, output);
            }
            Plan::SetClass(request) => {
                let request = node.request(request);
                let rules = node.admin.set_keyspace_class(request).await.map_err(|s| failure(&s))?;
                print_keyspace(&mut out, &rules.into_inner(), output);
            }
            Plan::ListKeyspace => {
                let request = node.request(pb::ListKeyspaceRequest {});
                let rules = node.admin.list_keyspace(request).await.map_err(|s| failure(&s))?;
                print_keyspace(&mut out, &rules.into_inner(), output);
            }
            Plan::Fault(fault) => {
                let answer = node.inject_fault(fault).await.map_err(|s| failure(&s))?;
                let mut links = answer.links;
                links.sort_by(|x, y| (&x.from_region, &x.to_region).cmp(&(&y.from_region, &y.to_region)));
                // Members the fault did not reach are a warning on stderr (and exit 3), in
                // either format.
                match output {
                    Output::Json => print_json_array(&mut out, &links.iter().map(link_json).collect::<Vec<_>>()),
                    Output::Table => print_links(&mut out, &links),
                }
                let _ = out.flush();
                if !answer.unreached.is_empty() {
                    let ids = answer
                        .unreached
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(Failure {
                        code: 3,
                        message: format!(
                            "warning: member(s) {ids} could not be reached; the fault is not in force there"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The bearer token as request metadata.
fn authorization(endpoint: &str, token: Option<String>) -> Result<Option<MetadataValue<Ascii>>, Failure> {
    token
        .map(|t| {
            format!("Bearer {t}")
                .parse::<MetadataValue<Ascii>>()
                .map_err(|_| Failure {
                    code: 3,
                    message: format!("invalid endpoint {endpoint:?}: the token must be printable ASCII"),
                })
        })
        .transpose()
}

/// One node's admin service.
struct Node {
    url: String,
    admin: AdminClient<Channel>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl Node {
    async fn connect(url: &str, authorization: Option<MetadataValue<Ascii>>) -> Result<Self, Failure> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Failure {
                code: 3,
                message: format!("invalid endpoint {url:?}: {e}"),
            })?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = endpoint.connect().await.map_err(|e| Failure {
            code: 3,
            message: format!(
                "UNAVAILABLE: cannot connect to {url}: {}",
                edgekv_client::error::chain(&e)
            ),
        })?;
        Ok(Self {
            url: url.to_string(),
            admin: AdminClient::new(channel),
            authorization,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(authorization) = &self.authorization {
            request.metadata_mut().insert("authorization", authorization.clone());
        }
        request
    }

    async fn cluster_status(&mut self) -> Result<pb::ClusterStatusResponse, tonic::Status> {
        let request = self.request(pb::ClusterStatusRequest {});
        Ok(self.admin.cluster_status(request).await?.into_inner())
    }

    async fn change(&mut self, change: Change) -> Result<pb::ClusterStatusResponse, tonic::Status> {
        let answer = match change {
            Change::Add(add) => {
                let request = self.request(add);
                self.admin.add_member(request).await
            }
            Change::Promote(id) => {
                let request = self.request(pb::MemberRequest { id });
                self.admin.promote_member(request).await
            }
            Change::Remove(id) => {
                let request = self.request(pb::MemberRequest { id });
                self.admin.remove_member(request).await
            }
        };
        Ok(answer?.into_inner())
    }

    async fn inject_fault(&mut self, fault: Fault) -> Result<pb::InjectFaultResponse, tonic::Status> {
        let request = self.request(pb::InjectFaultRequest { fault: Some(fault) });
        Ok(self.admin.inject_fault(request).await?.into_inner())
    }

    /// Where to send a membership change this node refused, if it refused it for not being
    /// the leader: the address it named, or else the leader's client address from its status.
    async fn leader_after(&mut self, refusal: &tonic::Status) -> Option<String> {
        let named = refusal
            .metadata()
            .get(LEADER_METADATA)
            .and_then(|v| v.to_str().ok())
            .filter(|addr| !addr.is_empty())
            .map(leader_url);
        let leader = match named {
            Some(url) => url,
            None => {
                if code_of(refusal) != Some(ErrorCode::Unavailable) {
                    return None;
                }
                let status = self.cluster_status().await.ok()?;
                if status.leader_id == 0 || status.leader_id == status.node_id {
                    return None;
                }
                let member = status.members.iter().find(|m| m.id == status.leader_id)?;
                if member.api_addr.is_empty() {
                    return None;
                }
                leader_url(&member.api_addr)
            }
        };
        (leader != self.url).then_some(leader)
    }
}

/// `host:port` from the server becomes `http://host:port`, as the SDK does.
fn leader_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// `CODE: message`, with the server's stable code when it sent one.
fn failure(status: &tonic::Status) -> Failure {
    let message = match code_of(status) {
        Some(code) => format!("{code}: {}", status.message()),
        None => match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                format!("UNAVAILABLE: {} ({:?})", status.message(), status.code())
            }
            tonic::Code::Unauthenticated => format!("UNAUTHENTICATED: {}", status.message()),
            tonic::Code::Unimplemented => format!(
                "unexpected answer from the server: {} ({:?}; is the node older than this kvctl?)",
                status.message(),
                status.code()
            ),
            code => format!("unexpected answer from the server: {} ({code:?})", status.message()),
        },
    };
    Failure { code: 3, message }
}

fn sorted(members: &[pb::Member]) -> Vec<&pb::Member> {
    let mut members: Vec<&pb::Member> = members.iter().collect();
    members.sort_by_key(|m| m.id);
    members
}

pub(crate) fn member_json(member: &pb::Member) -> Json {
    json!({
        "id": member.id,
        "region": member.region,
        "role": member.role,
        "peer_addr": member.peer_addr,
        "api_addr": member.api_addr,
        "matched_index": member.matched_index,
        "lag": member.lag,
    })
}

pub(crate) fn cluster_json(status: &pb::ClusterStatusResponse) -> Json {
    json!({
        "node_id": status.node_id,
        "leader_id": status.leader_id,
        "term": status.term,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "last_log_index": status.last_log_index,
        "members": sorted(&status.members).into_iter().map(member_json).collect::<Vec<_>>(),
        "cache": status.cache.as_ref().map(cache_json),
    })
}

fn cache_json(cache: &pb::CacheReplicationStatus) -> Json {
    json!({
        "outbox_depth": cache.outbox_depth,
        "merges": cache.merges,
        "conflicts_resolved": cache.conflicts_resolved,
        "tombstones_pending_gc": cache.tombstones_pending_gc,
        "clock_skew_refusals": cache.clock_skew_refusals,
        "repaired": cache.repaired,
        "outbox_dropped": cache.outbox_dropped,
        "cache_records": cache.cache_records,
        "peers": cache.peers.iter().map(|p| json!({
            "node_id": p.node_id,
            "region": p.region,
            "backlog": p.backlog,
            "inbound_lag_ms": p.inbound_lag_ms,
            "inbound_max_lag_ms": p.inbound_max_lag_ms,
            "last_error": p.last_error,
            "last_sync_age_ms": p.last_sync_age_ms,
        })).collect::<Vec<_>>(),
    })
}

fn print_cache(out: &mut impl std::io::Write, cache: &pb::CacheReplicationStatus) {
    let _ = writeln!(out);
    let fields = [
        ("cache_records", cache.cache_records),
        ("outbox_depth", cache.outbox_depth),
        ("merges", cache.merges),
        ("conflicts_resolved", cache.conflicts_resolved),
        ("tombstones_pending_gc", cache.tombstones_pending_gc),
        ("clock_skew_refusals", cache.clock_skew_refusals),
        ("repaired", cache.repaired),
        ("outbox_dropped", cache.outbox_dropped),
    ];
    for (name, value) in fields {
        let _ = writeln!(out, "{name:<21} {value}");
    }
    let _ = writeln!(out);
    let rows: Vec<[String; 6]> = cache
        .peers
        .iter()
        .map(|p| {
            [
                p.node_id.to_string(),
                p.region.clone(),
                p.backlog.to_string(),
                format!("{}/{}", p.inbound_lag_ms, p.inbound_max_lag_ms),
                p.last_sync_age_ms.map_or("never".into(), |ms| format!("{ms} ms ago")),
                p.last_error.clone(),
            ]
        })
        .collect();
    print_aligned(
        out,
        [
            "PEER",
            "REGION",
            "BACKLOG",
            "LAG_MS(LAST/MAX)",
            "LAST_SYNC",
            "SHIP_ERROR",
        ],
        &rows,
    );
}

fn prefix_json(prefix: &[u8]) -> Json {
    edgekv_proto::Key::decode(prefix).map_or_else(|_| Json::String(hex::encode(prefix)), |k| k.to_json())
}

/// The rules as `keyspace` commands print them: in prefix order, the default first as the
/// rule of the empty prefix (`[]` in JSON, `(default)` last in the table).
fn print_keyspace(out: &mut impl std::io::Write, rules: &pb::KeyspaceResponse, output: Output) {
    let named: Vec<&pb::KeyspaceRule> = rules.rules.iter().filter(|r| !r.prefix.is_empty()).collect();
    match output {
        Output::Json => {
            let default = json!({ "prefix": [], "class": rules.default_class });
            let rows: Vec<Json> = std::iter::once(default)
                .chain(
                    named
                        .iter()
                        .map(|r| json!({ "prefix": prefix_json(&r.prefix), "class": r.class })),
                )
                .collect();
            print_json_array(out, &rows);
        }
        Output::Table => {
            let mut rows: Vec<[String; 2]> = named
                .iter()
                .map(|r| [prefix_json(&r.prefix).to_string(), r.class.clone()])
                .collect();
            rows.push(["(default)".into(), rules.default_class.clone()]);
            print_aligned(out, ["PREFIX", "CLASS"], &rows);
        }
    }
}

fn link_json(link: &pb::FaultLink) -> Json {
    json!({
        "from": link.from_region,
        "to": link.to_region,
        "one_way_delay_ms": link.one_way_delay_ms,
        "jitter_ms": link.jitter_ms,
        "cut": link.cut,
    })
}

fn print_cluster(out: &mut impl std::io::Write, status: &pb::ClusterStatusResponse) {
    let leader = match status.leader_id {
        0 => "none known".to_string(),
        id => id.to_string(),
    };
    let fields = [
        ("node_id", status.node_id.to_string()),
        ("leader_id", leader),
        ("term", status.term.to_string()),
        ("commit_index", status.commit_index.to_string()),
        ("applied_index", status.applied_index.to_string()),
        ("last_log_index", status.last_log_index.to_string()),
    ];
    for (name, value) in fields {
        let _ = writeln!(out, "{name:<18} {value}");
    }
    let _ = writeln!(out);
    print_member_table(out, &status.members);
    if let Some(cache) = &status.cache {
        print_cache(out, cache);
    }
}

fn print_members(out: &mut impl std::io::Write, members: &[pb::Member], output: Output) {
    match output {
        Output::Json => print_json_array(out, &sorted(members).into_iter().map(member_json).collect::<Vec<_>>()),
        Output::Table => print_member_table(out, members),
    }
}

fn print_member_table(out: &mut impl std::io::Write, members: &[pb::Member]) {
    let rows: Vec<[String; 7]> = sorted(members)
        .into_iter()
        .map(|m| {
            [
                m.id.to_string(),
                m.region.clone(),
                m.role.clone(),
                m.peer_addr.clone(),
                m.api_addr.clone(),
                m.matched_index.to_string(),
                m.lag.map_or(String::new(), |lag| lag.to_string()),
            ]
        })
        .collect();
    print_aligned(
        out,
        ["ID", "REGION", "ROLE", "PEER_ADDR", "API_ADDR", "MATCHED_INDEX", "LAG"],
        &rows,
    );
}

fn print_links(out: &mut impl std::io::Write, links: &[pb::FaultLink]) {
    let rows: Vec<[String; 5]> = links
        .iter()
        .map(|l| {
            [
                l.from_region.clone(),
                l.to_region.clone(),
                l.one_way_delay_ms.to_string(),
                l.jitter_ms.to_string(),
                if l.cut { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    print_aligned(out, ["FROM", "TO", "ONE_WAY_DELAY_MS", "JITTER_MS", "CUT"], &rows);
}

/// Left-aligned columns two spaces apart, as the other kvctl tables.
fn print_aligned<const N: usize>(out: &mut impl std::io::Write, header: [&str; N], rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let text = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        text.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_and_peer_addresses_are_checked_locally() {
        assert!(member_id("0").is_err());
        assert!(member_id("x").is_err());
        assert_eq!(member_id("7"), Ok(7));
        assert!(check_peer_addr("127.0.0.1:7071").is_ok());
        assert!(check_peer_addr("node-4.internal:7071").is_ok());
        assert!(check_peer_addr("[::1]:7071").is_ok());
        for bad in [
            "y",
            "127.0.0.1",
            ":7071",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "http://h:1",
        ] {
            assert_eq!(check_peer_addr(bad).err().map(|f| f.code), Some(2), "{bad}");
        }
        assert_eq!(check_region_pair("us-east", "us-east").err().map(|f| f.code), Some(2));
        assert_eq!(check_region_pair("", "us-east").err().map(|f| f.code), Some(2));
    }

    #[test]
    fn leader_addresses_become_urls() {
        assert_eq!(leader_url("127.0.0.1:7070"), "http://127.0.0.1:7070");
        assert_eq!(leader_url("https://kv.example:443"), "https://kv.example:443");
    }

    #[test]
    fn tables_are_aligned_and_lag_is_blank_when_unknown() {
        let member = |id, role: &str, lag| pb::Member {
            id,
            region: "us-east".into(),
            role: role.into(),
            peer_addr: "127.0.0.1:7071".into(),
            api_addr: "127.0.0.1:7070".into(),
            matched_index: 12,
            lag,
        };
        let mut out = Vec::new();
        print_member_table(&mut out, &[member(10, "follower", None), member(2, "leader", Some(0))]);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  REGION   ROLE      PEER_ADDR"), "{text}");
        assert!(lines[1].starts_with("2   us-east  leader  "), "{text}");
        assert!(lines[1].ends_with("12             0"), "{text}");
        assert!(lines[2].starts_with("10  us-east  follower"), "{text}");
        assert!(lines[2].ends_with("  12"), "blank lag: {text}");
        assert_eq!(member_json(&member(3, "learner", None))["lag"], Json::Null);
    }
}
