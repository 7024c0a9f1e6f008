//! The edgekv node.
//!
//! Layers, each importing only from the layers below it:
//! - front-ends: [`grpc`] (the public `edgekv.v1` API) and [`kvconnect`] (the Deno KV
//!   Connect protocol);
//! - domain: [`kv`] (get, list, atomic writes, limits: the semantics every front-end shares);
//! - [`ttl`] (reclaiming expired entries);
//! - base: [`storage`] (the engine trait, RocksDB and in-memory engines, record layout),
//!   [`config`], [`clock`].
//!
//! [`node`] composes them, with startup and the ordered shutdown; `main.rs` parses the
//! command line and calls it.

pub mod clock;
pub mod config;
pub mod grpc;
pub mod kv;
pub mod kvconnect;
pub mod node;
pub mod storage;
pub mod ttl;
