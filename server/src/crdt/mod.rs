//! The cache class's building blocks: the hybrid logical clock that orders writes across
//! nodes ([`hlc`]), the CRDT value types with their merge laws ([`values`]) and a cache
//! key's whole replicated state built from them ([`record`]).

pub mod hlc;
pub mod record;
pub mod values;
