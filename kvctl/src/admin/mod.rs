//! Cluster administration: `cluster status`, `member list|add|promote|remove`,
//! `fault partition|heal|latency` and `keyspace set-class|set-default|list`, spoken to the
//! node's `edgekv.v1.Admin` service directly.
//!
//! Membership changes are made by the Raft leader. A follower refuses them with
//! `UNAVAILABLE` and names the leader's client address in the `edgekv-leader` metadata; the
//! command is then sent once more, to that address. A follower that does not know the
//! leader's address yet (it learns it from forwarded client traffic) is asked for its
//! cluster status instead, which lists every member's client address. The leader is
//! reached with the scheme, CA and token of the node given (`--endpoint`, `--cacert`,
//! `--token`).
//!
//! This file owns the plans: what each admin command does ([`Plan`], built from the checked
//! arguments, and [`Plan::execute`], which runs it against a node and prints the answer).
//! The rest is one concern a file:
//! - [`command`]: the clap subcommands and their local argument checks;
//! - [`client`]: reaching a node's admin service (plaintext or TLS), its admin client, and
//!   following a refusal to the leader;
//! - [`render`]: tables and JSON documents for what the node answers.

mod client;
mod command;
mod render;

use std::io::Write as _;

use edgekv_proto::v1::{self as pb, inject_fault_request::Fault};

use crate::output::{print_json, print_json_array};
use crate::{Failure, Output, usage};

use client::{Dialer, authorization, failure};
pub use command::{ClusterCommand, FaultCommand, KeyspaceCommand, MemberCommand};
use command::{check_peer_addr, check_region, check_region_pair};
pub(crate) use render::cluster_json;
/// Read by the docs check (the documented shape of a member in `-o json`).
#[cfg(test)]
pub(crate) use render::member_json;
use render::{link_json, print_cluster, print_keyspace, print_links, print_members};

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

    /// Runs against `endpoint`, sending `token`; `ca_pem` is the CA `--cacert` read.
    pub async fn execute(
        self,
        endpoint: &str,
        token: Option<String>,
        ca_pem: Option<&[u8]>,
        output: Output,
    ) -> Result<(), Failure> {
        let dialer = Dialer::new(ca_pem, authorization(endpoint, token)?);
        let mut node = dialer.connect(endpoint).await?;
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
                        let mut leader = dialer.connect(&leader).await?;
                        leader.change(change).await.map_err(|s| failure(&s))?
                    }
                };
                print_members(&mut out, &status.members, output);
            }
            Plan::SetClass(request) => {
                let rules = node.set_keyspace_class(request).await.map_err(|s| failure(&s))?;
                print_keyspace(&mut out, &rules, output);
            }
            Plan::ListKeyspace => {
                let rules = node.list_keyspace().await.map_err(|s| failure(&s))?;
                print_keyspace(&mut out, &rules, output);
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
