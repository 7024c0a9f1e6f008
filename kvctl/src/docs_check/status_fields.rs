//! Cluster-status fields: every field the docs name for `kvctl cluster status` or `member
//! list` is one kvctl prints.
//!
//! The reference is kvctl's own output: every key, at any depth, of `cluster status -o json`
//! and `member list -o json` ([`cluster_json`], [`member_json`]) for a sample status with a
//! member, a cache section and a peer, and the member roles the docs quote (`leader`). The
//! table format prints the cache counters under the same names and is not checked.
//!
//! In a paragraph or table row with a span naming `cluster status` or `member list` (with
//! or without `kvctl`, with or without flags) or `Admin.ClusterStatus` (whose fields the
//! JSON keys mirror), every backticked snake_case identifier (`outbox_depth`, `lag`) must be
//! such a key, unless it is a kvctl command name or flag value (`status`, `json`). In a table
//! row the first cell names the thing described (a command, a setting) and is not checked.

use std::collections::BTreeSet;

use edgekv_proto::v1 as pb;
use serde_json::Value as Json;

use super::{Block, commands, parse};
use crate::admin::{cluster_json, member_json};

/// A member's roles, which the docs quote as values of `role`.
const ROLES: [&str; 3] = ["leader", "follower", "learner"];

/// Every key kvctl prints for the cluster status and the member list, and the roles.
fn printed_names() -> BTreeSet<String> {
    let member = pb::Member {
        role: ROLES[0].into(),
        lag: Some(0),
        ..Default::default()
    };
    let peer = pb::CachePeerStatus {
        last_sync_age_ms: Some(0),
        ..Default::default()
    };
    let status = pb::ClusterStatusResponse {
        members: vec![member.clone()],
        cache: Some(pb::CacheReplicationStatus {
            peers: vec![peer],
            ..Default::default()
        }),
        peer_listener: Some(pb::PeerListenerStatus {
            last_refused_age_ms: Some(0),
            ..Default::default()
        }),
        ..Default::default()
    };
    fn keys(json: &Json, names: &mut BTreeSet<String>) {
        match json {
            Json::Object(object) => {
                for (key, value) in object {
                    names.insert(key.clone());
                    keys(value, names);
                }
            }
            Json::Array(items) => items.iter().for_each(|item| keys(item, names)),
            _ => {}
        }
    }
    let mut names = ROLES.map(String::from).into();
    keys(&cluster_json(&status), &mut names);
    keys(&member_json(&member), &mut names);
    names
}

/// Whether a block talks about the cluster status (so its field names are checked).
fn names_cluster_status(block: &Block) -> bool {
    block.spans().iter().any(|(_, span)| {
        let command: Vec<&str> = span
            .strip_prefix("kvctl ")
            .unwrap_or(span)
            .split(' ')
            .take_while(|word| !word.starts_with('-'))
            .collect();
        matches!(command[..], ["cluster", "status"] | ["member", "list"]) || span.starts_with("Admin.ClusterStatus")
    })
}

/// `outbox_depth`, `lag`: what a field name looks like.
fn is_identifier(span: &str) -> bool {
    span.starts_with(|c: char| c.is_ascii_lowercase())
        && span
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Problems of every cluster-status field named in `doc`; and how many names were checked.
pub(super) fn check(name: &str, doc: &str) -> (Vec<String>, usize) {
    let (printed, vocabulary) = (printed_names(), commands::vocabulary());
    let (_, blocks) = parse(doc);
    let mut problems = Vec::new();
    let mut checked = 0;
    for block in blocks.iter().filter(|b| names_cluster_status(b)) {
        for (line, span) in block.described_spans() {
            let is_field = printed.contains(&span);
            if !is_identifier(&span) || (!is_field && vocabulary.contains(&span)) {
                continue;
            }
            checked += 1;
            if !is_field {
                problems.push(format!(
                    "{name}:{line}: `{span}` is named as a cluster status field, but kvctl prints no such key"
                ));
            }
        }
    }
    (problems, checked)
}

#[test]
fn every_cluster_status_field_in_the_docs_exists() {
    let (problems, checked) = super::check_every_page(check);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        checked >= 20,
        "only {checked} cluster status fields found in the docs: is the parser broken?"
    );
}

#[test]
fn members_the_cache_section_and_its_peers_are_printed() {
    let printed = printed_names();
    for name in [
        "leader_id",
        "members",
        "lag",
        "learner",
        "cache",
        "tombstones_pending_gc",
        "inbound_lag_ms",
        "last_sync_age_ms",
    ] {
        assert!(printed.contains(name), "{name} not found in {printed:?}");
    }
    assert!(!printed.contains("staleness_ms"), "a field of another message");
}
