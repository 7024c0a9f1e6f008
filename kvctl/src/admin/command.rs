//! The admin commands as typed on the command line: the clap subcommands of `cluster`,
//! `member`, `fault` and `keyspace`, and the checks their arguments pass before anything is
//! sent (member ids, region names, peer addresses). A failed check is a usage error (exit 2).

use clap::Subcommand;

use crate::{Failure, usage};

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
    pub(super) fn name(self) -> &'static str {
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

pub(super) fn check_region(region: &str) -> Result<(), Failure> {
    if region.trim().is_empty() {
        return Err(usage("a region name must not be empty"));
    }
    Ok(())
}

pub(super) fn check_region_pair(a: &str, b: &str) -> Result<(), Failure> {
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
pub(super) fn check_peer_addr(addr: &str) -> Result<(), Failure> {
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
}
