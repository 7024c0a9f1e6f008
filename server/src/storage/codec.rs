//! The on-disk layout of records: the versioned value envelope of the data column family
//! and the keys of the expiry index.
//!
//! Envelope, format 1 (all integers big-endian):
//!
//! ```text
//! [format=1][encoding][versionstamp: 10][flags]
//! [expires_at_ms: 8]            if flags & HAS_EXPIRY
//! [metadata_len: 4][metadata]   if flags & HAS_METADATA
//! [value bytes ...]             to the end
//! ```
//!
//! The format byte lets a later release add fields (for instance the CRDT clock of the
//! cache class) while still reading every record written before.

use edgekv_proto::Versionstamp;
use edgekv_proto::v1::ValueEncoding;

use super::StorageError;

const FORMAT_V1: u8 = 1;
const HAS_EXPIRY: u8 = 0b01;
const HAS_METADATA: u8 = 0b10;
const HEADER_LEN: usize = 1 + 1 + Versionstamp::LEN + 1;

/// A stored value with everything the API returns about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub encoding: ValueEncoding,
    pub versionstamp: Versionstamp,
    pub expires_at_ms: Option<u64>,
    pub metadata: Option<String>,
    pub value: Vec<u8>,
}

impl Envelope {
    /// Whether a read at `now_ms` may see this value: expiry is exclusive, so a value that
    /// expires at T is already gone at T.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| now_ms < at)
    }

    /// The value as the u64 that sum, min and max work on, if it is one (8 bytes,
    /// little-endian, tagged `U64`).
    pub fn as_u64(&self) -> Option<u64> {
        let bytes: [u8; 8] = self.value.as_slice().try_into().ok()?;
        (self.encoding == ValueEncoding::U64).then(|| u64::from_le_bytes(bytes))
    }

    pub fn encode(&self) -> Vec<u8> {
        let metadata_len = self.metadata.as_ref().map_or(0, |m| 4 + m.len());
        let mut out = Vec::with_capacity(HEADER_LEN + 8 + metadata_len + self.value.len());
        out.push(FORMAT_V1);
        out.push(self.encoding as i32 as u8);
        out.extend_from_slice(self.versionstamp.as_bytes());
        let mut flags = 0;
        if self.expires_at_ms.is_some() {
            flags |= HAS_EXPIRY;
        }
        if self.metadata.is_some() {
            flags |= HAS_METADATA;
        }
        out.push(flags);
        if let Some(at) = self.expires_at_ms {
            out.extend_from_slice(&at.to_be_bytes());
        }
        if let Some(metadata) = &self.metadata {
            let len = u32::try_from(metadata.len()).expect("metadata is limited to 1 KiB");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(metadata.as_bytes());
        }
        out.extend_from_slice(&self.value);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let mut reader = Reader { bytes, at: 0 };
        let format = reader.byte()?;
        if format != FORMAT_V1 {
            return Err(corrupt(format!("unknown envelope format {format}")));
        }
        let tag = reader.byte()?;
        let encoding =
            ValueEncoding::try_from(i32::from(tag)).map_err(|_| corrupt(format!("unknown value encoding {tag}")))?;
        let versionstamp = Versionstamp::from_slice(reader.take(Versionstamp::LEN)?).expect("10 bytes");
        let flags = reader.byte()?;
        if flags & !(HAS_EXPIRY | HAS_METADATA) != 0 {
            return Err(corrupt(format!("unknown envelope flags {flags:#04x}")));
        }
        let expires_at_ms = if flags & HAS_EXPIRY != 0 {
            Some(reader.u64()?)
        } else {
            None
        };
        let metadata = if flags & HAS_METADATA != 0 {
            let len = reader.u32()? as usize;
            let raw = reader.take(len)?;
            Some(String::from_utf8(raw.to_vec()).map_err(|_| corrupt("metadata is not UTF-8".into()))?)
        } else {
            None
        };
        let value = reader.rest().to_vec();
        Ok(Self {
            encoding,
            versionstamp,
            expires_at_ms,
            metadata,
            value,
        })
    }

    /// Reads only the expiry, for the compaction filter's hot loop.
    pub fn peek_expiry(bytes: &[u8]) -> Option<u64> {
        if bytes.len() < HEADER_LEN + 8 || bytes[0] != FORMAT_V1 || bytes[HEADER_LEN - 1] & HAS_EXPIRY == 0 {
            return None;
        }
        Some(u64::from_be_bytes(
            bytes[HEADER_LEN..HEADER_LEN + 8].try_into().expect("8 bytes"),
        ))
    }
}

fn corrupt(reason: String) -> StorageError {
    StorageError::Corrupted(reason)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| corrupt("envelope is truncated".into()))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn byte(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StorageError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, StorageError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }
}

/// Key of the expiry index: the expiry first, so a scan up to "now" finds exactly the
/// entries that are due.
pub fn expiry_index_key(expires_at_ms: u64, data_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + data_key.len());
    key.extend_from_slice(&expires_at_ms.to_be_bytes());
    key.extend_from_slice(data_key);
    key
}

/// Splits an expiry index key into (expires_at_ms, data key).
pub fn split_expiry_index_key(key: &[u8]) -> Result<(u64, &[u8]), StorageError> {
    if key.len() < 8 {
        return Err(corrupt("expiry index key shorter than 8 bytes".into()));
    }
    let (at, data_key) = key.split_at(8);
    Ok((u64::from_be_bytes(at.try_into().expect("8 bytes")), data_key))
}

/// The exclusive upper bound of expiry index keys due at `now_ms`.
pub fn expiry_index_due_end(now_ms: u64) -> Vec<u8> {
    // Keys with expires_at <= now_ms are due; (now_ms + 1) as a prefix bounds them.
    now_ms.saturating_add(1).to_be_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoding() -> impl Strategy<Value = ValueEncoding> {
        prop_oneof![
            Just(ValueEncoding::Bytes),
            Just(ValueEncoding::Utf8),
            Just(ValueEncoding::Json),
            Just(ValueEncoding::V8),
            Just(ValueEncoding::U64),
        ]
    }

    proptest! {
        #[test]
        fn envelope_round_trips(
            encoding in encoding(),
            stamp in any::<[u8; 10]>(),
            expires_at_ms in any::<Option<u64>>(),
            metadata in proptest::option::of(".{0,40}"),
            value in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let envelope = Envelope { encoding, versionstamp: Versionstamp(stamp), expires_at_ms, metadata, value };
            let bytes = envelope.encode();
            prop_assert_eq!(Envelope::peek_expiry(&bytes), envelope.expires_at_ms);
            prop_assert_eq!(Envelope::decode(&bytes).unwrap(), envelope);
        }

        #[test]
        fn truncated_envelopes_are_errors_not_panics(
            value in proptest::collection::vec(any::<u8>(), 0..64),
            cut in 0usize..40,
        ) {
            let envelope = Envelope {
                encoding: ValueEncoding::Bytes,
                versionstamp: Versionstamp::new(1, 0),
                expires_at_ms: Some(5),
                metadata: Some("{\"a\":1}".into()),
                value,
            };
            let bytes = envelope.encode();
            let cut = cut.min(HEADER_LEN + 8 + 4 + 7 - 1);
            prop_assert!(Envelope::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn expiry_index_orders_by_time_then_key() {
        let a = expiry_index_key(10, b"zzz");
        let b = expiry_index_key(11, b"aaa");
        assert!(a < b);
        assert!(a < expiry_index_due_end(10));
        assert!(b >= expiry_index_due_end(10));
        assert_eq!(split_expiry_index_key(&b).unwrap(), (11, &b"aaa"[..]));
    }
}
