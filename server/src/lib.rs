//! The edgekv node.
//!
//! Layers, top first, each importing only from its own layer and the layers below
//! ([`LAYERS`]; `layers.rs` checks every `crate::` path against it):
//! - composition: [`node`] composes the rest, with startup and the ordered shutdown
//!   (`main.rs` parses the command line and calls it); [`demo`] runs several nodes in one
//!   process as a local multi-region cluster; [`config`] aggregates every subsystem's
//!   settings;
//! - front-ends: [`grpc`] (the public `edgekv.v1` API) and [`kvconnect`] (the Deno KV
//!   Connect protocol);
//! - domain: [`kv`] (get, list, atomic writes, limits: the semantics every front-end shares);
//! - replication: [`raft`] (the openraft member: log store, state machine, peer service,
//!   proposer), [`cache`] (the cache class: merged records, outbox, shipping,
//!   anti-entropy), [`ttl`] (reclaiming expired entries);
//! - building blocks: [`crdt`] (the cache class's clock and value types), [`net`] (the peer
//!   transport and the simulated WAN);
//! - base: [`storage`] (the engine trait, RocksDB and in-memory engines, record layout),
//!   [`keyspace`] (the class rules in force, stored and applied), [`clock`],
//!   [`duration_text`] (durations as settings write them), [`tls`] (certificates and the
//!   TLS configurations of every listener and peer connection), [`auth`] (access tokens:
//!   who a request acts as and what its token allows).

/// The layers of the node, top first, as the crate doc describes them. A module may import
/// from its own layer and the layers below, never from one above.
pub const LAYERS: &[&[&str]] = &[
    &["node", "demo", "config"],
    &["grpc", "kvconnect"],
    &["kv"],
    &["raft", "cache", "ttl"],
    &["crdt", "net"],
    &["storage", "keyspace", "clock", "duration_text", "tls", "auth"],
];

pub mod auth;
pub mod cache;
pub mod clock;
pub mod config;
pub mod crdt;
pub mod demo;
pub mod duration_text;
pub mod grpc;
pub mod keyspace;
pub mod kv;
pub mod kvconnect;
pub mod net;
pub mod node;
pub mod raft;
pub mod storage;
pub mod tls;
pub mod ttl;

#[cfg(test)]
mod layers;
