//! Values and entries as the SDK hands them out: typed by the encoding stored with the
//! value, so a string comes back as a string and a counter as a u64.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgekv_proto::v1 as pb;
use edgekv_proto::{Key, Versionstamp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bytes(Vec<u8>),
    String(String),
    Json(serde_json::Value),
    /// A V8-serialized JavaScript value written by a Deno client, as raw bytes.
    V8(Vec<u8>),
    U64(u64),
}

impl Value {
    /// Serializes any serde value as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        serde_json::to_value(value)
            .map(Value::Json)
            .map_err(|e| Error::Value(e.to_string()))
    }

    pub(crate) fn to_wire(&self) -> Result<pb::Value> {
        use pb::ValueEncoding as E;
        let (encoding, data) = match self {
            Value::Bytes(b) => (E::Bytes, b.clone()),
            Value::String(s) => (E::Utf8, s.clone().into_bytes()),
            Value::Json(j) => (E::Json, serde_json::to_vec(j).map_err(|e| Error::Value(e.to_string()))?),
            Value::V8(b) => (E::V8, b.clone()),
            Value::U64(n) => (E::U64, n.to_le_bytes().to_vec()),
        };
        Ok(pb::Value {
            encoding: encoding as i32,
            data,
        })
    }

    pub(crate) fn from_wire(value: pb::Value) -> Result<Self> {
        use pb::ValueEncoding as E;
        let bad = |what: &str| Error::Protocol(format!("stored value is not valid {what}"));
        Ok(
            match E::try_from(value.encoding)
                .map_err(|_| Error::Protocol(format!("unknown value encoding {}", value.encoding)))?
            {
                E::Bytes => Value::Bytes(value.data),
                E::Utf8 => Value::String(String::from_utf8(value.data).map_err(|_| bad("UTF-8"))?),
                E::Json => Value::Json(serde_json::from_slice(&value.data).map_err(|_| bad("JSON"))?),
                E::V8 => Value::V8(value.data),
                E::U64 => Value::U64(u64::from_le_bytes(
                    value.data.as_slice().try_into().map_err(|_| bad("u64"))?,
                )),
            },
        )
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::U64(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) | Value::V8(b) => Some(b),
            _ => None,
        }
    }

    /// Deserializes a JSON value (or a string holding JSON) into `T`.
    pub fn to_json<T: DeserializeOwned>(&self) -> Result<T> {
        match self {
            Value::Json(j) => serde_json::from_value(j.clone()).map_err(|e| Error::Value(e.to_string())),
            Value::String(s) => serde_json::from_str(s).map_err(|e| Error::Value(e.to_string())),
            other => Err(Error::Value(format!("{other:?} is not JSON"))),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}
impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::U64(n)
    }
}
impl From<serde_json::Value> for Value {
    fn from(j: serde_json::Value) -> Self {
        Value::Json(j)
    }
}

/// Which guarantee a read was served with, and by which node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedBy {
    pub consistency: crate::Consistency,
    pub node_id: String,
    pub region: String,
    pub staleness: Duration,
}

impl ServedBy {
    pub(crate) fn from_wire(read: Option<pb::ReadInfo>) -> Option<Self> {
        let read = read?;
        Some(Self {
            consistency: match pb::Consistency::try_from(read.consistency) {
                Ok(pb::Consistency::Eventual) => crate::Consistency::Eventual,
                _ => crate::Consistency::Strong,
            },
            node_id: read.node_id,
            region: read.region,
            staleness: Duration::from_millis(read.staleness_ms),
        })
    }
}

/// A key with its value and what the store knows about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Key,
    /// `None` only in key-only listings.
    pub value: Option<Value>,
    pub versionstamp: Versionstamp,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
    pub metadata: Option<serde_json::Value>,
    pub served_by: Option<ServedBy>,
    /// The key's consistency class, "strong" or "cache", as the node that answered sees it
    /// (`None` from a node too old to say).
    pub class: Option<String>,
}

impl Entry {
    pub(crate) fn from_wire(entry: pb::Entry, served_by: Option<ServedBy>) -> Result<Self> {
        let versionstamp = Versionstamp::from_slice(&entry.versionstamp)
            .ok_or_else(|| Error::Protocol(format!("versionstamp of {} bytes", entry.versionstamp.len())))?;
        let metadata = entry
            .metadata
            .map(|m| serde_json::from_str(&m).map_err(|e| Error::Protocol(format!("metadata is not JSON: {e}"))))
            .transpose()?;
        Ok(Self {
            key: Key::decode(&entry.key)?,
            value: entry.value.map(Value::from_wire).transpose()?,
            versionstamp,
            expires_at_ms: entry.expires_at_ms,
            metadata,
            served_by,
            class: Some(entry.class).filter(|c| !c.is_empty()),
        })
    }

    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at_ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }
}
