//! Wire types shared by every edgekv crate.
//!
//! - [`v1`]: the generated `edgekv.v1` gRPC API (messages, client and server stubs).
//! - [`key`]: tuple keys and their order-preserving encoding (the Deno KV codec).
//! - [`versionstamp`]: the 10-byte commit stamps returned by every write.
//! - [`limits`]: the size and count limits every front-end enforces.
//! - [`regions`]: the demo's regions and the round trips between them.
//! - [`error_code`]: the stable error codes a client can match on; [`grpc_status`]: how
//!   they travel on gRPC statuses, both ways.
//! - [`keyspace`]: consistency classes and the longest-prefix rule that assigns them.
//! - `token` (feature `token`, for the node and kvctl; the SDK goes without it): access
//!   tokens, their signing secrets, and the key scopes a verified token grants.

pub mod error_code;
pub mod grpc_status;
pub mod key;
pub mod keyspace;
pub mod limits;
pub mod regions;
#[cfg(feature = "token")]
pub mod token;
pub mod versionstamp;

/// The generated `edgekv.v1` API.
pub mod v1 {
    #![allow(clippy::all)]
    tonic::include_proto!("edgekv.v1");
}

/// The generated internal `edgekv.peer.v1` API (node to node; Raft and forwarding).
pub mod peer {
    /// Nested as the package path is, so its references to `edgekv.v1` types resolve.
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("edgekv.peer.v1");
    }
    pub use v1::*;
}

pub use error_code::{ERROR_CODE_METADATA, ErrorCode};
pub use key::{Key, KeyError, KeyPart};
pub use versionstamp::Versionstamp;
