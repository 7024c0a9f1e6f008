//! Simulated network faults across the cluster: a change is applied to this node's
//! simulated WAN and sent to every other member, so every member sees the same picture.
//! It travels out of band (outside the simulated WAN): a link cut between two other regions
//! must still reach both, and a cut region can always be healed.

use std::time::Duration;

use edgekv_proto::peer::FaultState;

use super::types::{Member, NodeId};
use super::{RaftNode, links_to_proto};
use crate::net::Links;

/// How long a member has to take a fault change before it counts as unreached.
const SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// One change to the simulated WAN, between two different regions where it names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultChange {
    /// Cut both directions between two regions.
    Partition { a: String, b: String },
    /// Restore every cut link (latencies stay).
    Heal,
    /// Set the one-way delay (plus up to `jitter_ms`) of both directions.
    Latency {
        a: String,
        b: String,
        one_way_delay_ms: u32,
        jitter_ms: u32,
    },
}

impl RaftNode {
    /// Applies `change` here and sends the resulting links to every other member. Answers
    /// the links now in force and the members that could not be told.
    pub async fn change_faults(&self, change: FaultChange) -> (Links, Vec<NodeId>) {
        let wan = self.transport.wan();
        match change {
            FaultChange::Partition { a, b } => wan.partition(&a, &b),
            FaultChange::Heal => wan.heal(),
            FaultChange::Latency {
                a,
                b,
                one_way_delay_ms,
                jitter_ms,
            } => wan.set_latency(&a, &b, one_way_delay_ms, jitter_ms),
        }
        let links = wan.links();
        let state = FaultState {
            links: links_to_proto(&links),
            broadcast: false,
        };
        let others: Vec<(NodeId, Member)> = self.members().into_iter().filter(|(id, _)| *id != self.id).collect();
        let sends = others.iter().map(|(id, member)| {
            let state = state.clone();
            async move {
                let sent = self
                    .transport
                    .call_out_of_band(member.destination(), SEND_TIMEOUT, |mut c| async move {
                        c.set_faults(state).await
                    })
                    .await;
                (*id, sent.is_ok())
            }
        });
        let unreached = futures::future::join_all(sends)
            .await
            .into_iter()
            .filter(|(_, told)| !told)
            .map(|(id, _)| id)
            .collect();
        (links, unreached)
    }
}
