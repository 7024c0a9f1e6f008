//! The edgekv node.
//!
//! Layers, each importing only from the layers below it:
//! - front-ends: [`grpc`] (the public `edgekv.v1` API) and [`kvconnect`] (the Deno KV
//!   Connect protocol);
//! - domain: [`kv`] (get, list, atomic writes, limits: the semantics every front-end shares);
//! - replication: [`raft`] (the openraft member: log store, state machine, peer service,
//!   proposer), [`replication`] (the cache class: merged records, outbox,
//!   shipping, anti-entropy), [`crdt`] (the cache class's clock and value types), [`net`] (the peer
//!   transport and the simulated WAN), [`ttl`] (reclaiming expired entries);
//! - base: [`storage`] (the engine trait, RocksDB and in-memory engines, record layout),
//!   [`keyspace`] (the class rules in force, stored and applied), [`config`], [`clock`].
//!
//! [`node`] composes them, with startup and the ordered shutdown; `main.rs` parses the
//! command line and calls it. [`demo`] runs several nodes in one process as a local
//! multi-region cluster.

pub mod clock;
pub mod config;
pub mod crdt;
pub mod demo;
pub mod grpc;
pub mod keyspace;
pub mod kv;
pub mod kvconnect;
pub mod net;
pub mod node;
pub mod raft;
pub mod replication;
pub mod storage;
pub mod ttl;
