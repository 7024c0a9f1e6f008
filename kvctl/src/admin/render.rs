//! Rendering what the admin service answers: the aligned tables (cluster status, members,
//! cache replication, keyspace rules, fault links) and their JSON documents. `cluster_json`
//! and `member_json` are also the documented shape of `cluster status -o json`, which the
//! docs check reads.

use edgekv_proto::v1 as pb;
use serde_json::{Value as Json, json};

use crate::Output;
use crate::output::print_json_array;

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
        "peer_listener": status.peer_listener.as_ref().map(peer_listener_json),
    })
}

fn peer_listener_json(listener: &pb::PeerListenerStatus) -> Json {
    json!({
        "handshakes_refused": listener.handshakes_refused,
        "last_refused_from": listener.last_refused_from,
        "last_refused_reason": listener.last_refused_reason,
        "last_refused_age_ms": listener.last_refused_age_ms,
    })
}

/// Who the peer listener turned away, under the cache section.
fn print_peer_listener(out: &mut impl std::io::Write, listener: &pb::PeerListenerStatus) {
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<21} {}", "handshakes_refused", listener.handshakes_refused);
    if let Some(age_ms) = listener.last_refused_age_ms {
        let _ = writeln!(
            out,
            "{:<21} from {} {age_ms} ms ago: {}",
            "last_refused", listener.last_refused_from, listener.last_refused_reason
        );
    }
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
pub(super) fn print_keyspace(out: &mut impl std::io::Write, rules: &pb::KeyspaceResponse, output: Output) {
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

pub(super) fn link_json(link: &pb::FaultLink) -> Json {
    json!({
        "from": link.from_region,
        "to": link.to_region,
        "one_way_delay_ms": link.one_way_delay_ms,
        "jitter_ms": link.jitter_ms,
        "cut": link.cut,
    })
}

pub(super) fn print_cluster(out: &mut impl std::io::Write, status: &pb::ClusterStatusResponse) {
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
    if let Some(listener) = &status.peer_listener {
        print_peer_listener(out, listener);
    }
}

pub(super) fn print_members(out: &mut impl std::io::Write, members: &[pb::Member], output: Output) {
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

pub(super) fn print_links(out: &mut impl std::io::Write, links: &[pb::FaultLink]) {
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
