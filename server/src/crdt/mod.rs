//! The cache class's building blocks: the hybrid logical clock that orders writes across
//! nodes ([`hlc`]) and the CRDT value types with their merge laws ([`values`]).
//!
//! Replication (outbox, shipper, receiver, anti-entropy) and key routing by class build on
//! these; until they do, nothing else in the node uses this module.

pub mod hlc;
pub mod values;
