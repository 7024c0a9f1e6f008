//! Tuple keys and their encoding.
//!
//! A key is a tuple of parts (bytes, string, integer, float, bool), encoded with the
//! FoundationDB tuple layer exactly as Deno KV encodes it (the codec is `denokv_proto`'s),
//! so byte order equals tuple order and keys written through any front-end are the same
//! keys. Text forms for people: `users/42` (every part a string) or a JSON array
//! (`["users", 42]`), where `{"bytes": "<hex>"}` and `{"bigint": "<digits>"}` spell the
//! parts JSON has no literal for.

use std::fmt;

pub use denokv_proto::KeyPart;
use num_bigint::BigInt;
use serde_json::Value as Json;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Key(pub Vec<KeyPart>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the key bytes are not a valid tuple encoding: {0}")]
    Malformed(String),
    #[error("a key needs at least one part")]
    Empty,
    #[error("cannot parse key {text:?}: {reason}")]
    Unparsable { text: String, reason: String },
}

impl Key {
    pub fn new(parts: Vec<KeyPart>) -> Self {
        Self(parts)
    }

    pub fn parts(&self) -> &[KeyPart] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This key with one more part appended.
    pub fn child(&self, part: impl IntoKeyPart) -> Self {
        let mut parts = self.0.clone();
        parts.push(part.into_key_part());
        Self(parts)
    }

    /// The tuple encoding. Panics on an integer part whose magnitude needs more than 255
    /// bytes, which the tuple encoding cannot hold: [`Key::parse`] and [`Key::from_json`]
    /// refuse such keys, and [`Key::try_encode`] reports them.
    pub fn encode(&self) -> Vec<u8> {
        self.try_encode()
            .expect("an integer part of at most 255 bytes (use try_encode for keys built from input)")
    }

    /// The tuple encoding, or why the key has none (an integer part beyond 255 bytes).
    pub fn try_encode(&self) -> Result<Vec<u8>, KeyError> {
        denokv_proto::encode_key(&denokv_proto::Key(self.0.clone()))
            .map_err(|error| KeyError::Malformed(format!("the key has no tuple encoding: {error}")))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, KeyError> {
        let key = denokv_proto::decode_key(bytes).map_err(|e| KeyError::Malformed(e.to_string()))?;
        // The codec accepts some non-canonical inputs; only canonical bytes are keys,
        // otherwise two different byte strings would name the same key.
        let canonical = denokv_proto::encode_key(&key).map_err(|e| KeyError::Malformed(e.to_string()))?;
        if canonical != bytes {
            return Err(KeyError::Malformed("not in canonical form".into()));
        }
        Ok(Self(key.0))
    }

    /// Parses the forms people type: a JSON array, or string parts separated by `/`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let trimmed = text.trim();
        let unparsable = |reason: String| KeyError::Unparsable {
            text: text.to_string(),
            reason,
        };
        if trimmed.starts_with('[') {
            let json: Json = serde_json::from_str(trimmed).map_err(|e| unparsable(e.to_string()))?;
            return Self::from_json(&json).map_err(unparsable);
        }
        if trimmed.is_empty() {
            return Err(KeyError::Empty);
        }
        let parts: Vec<KeyPart> = trimmed.split('/').map(|p| KeyPart::String(p.to_string())).collect();
        if parts.iter().any(|p| matches!(p, KeyPart::String(s) if s.is_empty())) {
            return Err(unparsable(
                "empty part between slashes; use a JSON array for an empty string part".into(),
            ));
        }
        Ok(Self(parts))
    }

    /// Parses a JSON array of parts (the inverse of [`Key::to_json`]).
    pub fn from_json(json: &Json) -> Result<Self, String> {
        let Json::Array(items) = json else {
            return Err("a key must be a JSON array".into());
        };
        let key = items.iter().map(part_from_json).collect::<Result<_, _>>().map(Self)?;
        // An integer too large for the tuple encoding is refused here, where the text is.
        key.try_encode().map_err(|error| error.to_string())?;
        Ok(key)
    }

    pub fn to_json(&self) -> Json {
        Json::Array(self.0.iter().map(part_to_json).collect())
    }

    /// The first key after every key that has this key as a strict prefix: the exclusive
    /// end of a prefix range. Tuple encodings never contain a bare 0xff part tag, so
    /// appending it bounds the prefix.
    pub fn prefix_end(encoded: &[u8]) -> Vec<u8> {
        let mut end = encoded.to_vec();
        end.push(0xff);
        end
    }

    /// The first byte string after every one that starts with `encoded` (`None` for the
    /// empty prefix, which every key starts with). Unlike [`Key::prefix_end`] it does not
    /// itself start with the prefix, so it names where keys outside the prefix resume.
    pub fn prefix_successor(encoded: &[u8]) -> Option<Vec<u8>> {
        let mut next = encoded.to_vec();
        while let Some(last) = next.pop() {
            if last < 0xff {
                next.push(last + 1);
                return Some(next);
            }
        }
        None
    }

    /// The first key strictly under the prefix: the inclusive start of a prefix range
    /// (which excludes the prefix key itself, as in Deno KV).
    pub fn prefix_start(encoded: &[u8]) -> Vec<u8> {
        let mut start = encoded.to_vec();
        start.push(0x00);
        start
    }
}

fn part_from_json(item: &Json) -> Result<KeyPart, String> {
    Ok(match item {
        Json::String(s) => KeyPart::String(s.clone()),
        Json::Bool(true) => KeyPart::True,
        Json::Bool(false) => KeyPart::False,
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                KeyPart::Int(BigInt::from(i))
            } else if let Some(u) = n.as_u64() {
                KeyPart::Int(BigInt::from(u))
            } else {
                KeyPart::Float(n.as_f64().ok_or("unrepresentable number")?)
            }
        }
        Json::Object(map) if map.len() == 1 => {
            let (kind, value) = map.iter().next().expect("one entry");
            let text = value
                .as_str()
                .ok_or_else(|| format!("{{\"{kind}\": ...}} takes a string"))?;
            match kind.as_str() {
                "bytes" => KeyPart::Bytes(hex::decode(text).map_err(|e| format!("bytes part: {e}"))?),
                "bigint" => KeyPart::Int(text.parse::<BigInt>().map_err(|e| format!("bigint part: {e}"))?),
                "float" => KeyPart::Float(text.parse::<f64>().map_err(|e| format!("float part: {e}"))?),
                other => return Err(format!("unknown key part kind {other:?} (use bytes, bigint or float)")),
            }
        }
        other => return Err(format!("{other} cannot be a key part")),
    })
}

fn part_to_json(part: &KeyPart) -> Json {
    match part {
        KeyPart::String(s) => Json::String(s.clone()),
        KeyPart::True => Json::Bool(true),
        KeyPart::False => Json::Bool(false),
        KeyPart::Int(i) => match i64::try_from(i) {
            Ok(small) => Json::from(small),
            Err(_) => serde_json::json!({ "bigint": i.to_string() }),
        },
        // Integral floats would read back as integers, and NaN/inf have no JSON literal.
        KeyPart::Float(f) if f.is_finite() && f.fract() != 0.0 => Json::from(*f),
        KeyPart::Float(f) => serde_json::json!({ "float": f.to_string() }),
        KeyPart::Bytes(b) => serde_json::json!({ "bytes": hex::encode(b) }),
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// An encoded key as people read it in messages and logs: the tuple, or hex when the
/// bytes do not decode (a message about a bad key must still name it).
pub fn display_encoded(encoded: &[u8]) -> String {
    Key::decode(encoded).map_or_else(|_| hex::encode(encoded), |key| key.to_string())
}

/// Anything that can be one part of a key.
pub trait IntoKeyPart {
    fn into_key_part(self) -> KeyPart;
}

impl IntoKeyPart for KeyPart {
    fn into_key_part(self) -> KeyPart {
        self
    }
}
impl IntoKeyPart for &str {
    fn into_key_part(self) -> KeyPart {
        KeyPart::String(self.to_string())
    }
}
impl IntoKeyPart for String {
    fn into_key_part(self) -> KeyPart {
        KeyPart::String(self)
    }
}
impl IntoKeyPart for &String {
    fn into_key_part(self) -> KeyPart {
        KeyPart::String(self.clone())
    }
}
impl IntoKeyPart for bool {
    fn into_key_part(self) -> KeyPart {
        if self { KeyPart::True } else { KeyPart::False }
    }
}
impl IntoKeyPart for f64 {
    fn into_key_part(self) -> KeyPart {
        KeyPart::Float(self)
    }
}
impl IntoKeyPart for Vec<u8> {
    fn into_key_part(self) -> KeyPart {
        KeyPart::Bytes(self)
    }
}
impl IntoKeyPart for &[u8] {
    fn into_key_part(self) -> KeyPart {
        KeyPart::Bytes(self.to_vec())
    }
}
impl IntoKeyPart for BigInt {
    fn into_key_part(self) -> KeyPart {
        KeyPart::Int(self)
    }
}
macro_rules! int_key_parts {
    ($($t:ty),*) => {$(
        impl IntoKeyPart for $t {
            fn into_key_part(self) -> KeyPart {
                KeyPart::Int(BigInt::from(self))
            }
        }
    )*};
}
int_key_parts!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128, isize, usize);

macro_rules! tuple_keys {
    ($(($($name:ident),+)),*) => {$(
        impl<$($name: IntoKeyPart),+> From<($($name,)+)> for Key {
            #[allow(non_snake_case)]
            fn from(($($name,)+): ($($name,)+)) -> Self {
                Key(vec![$($name.into_key_part()),+])
            }
        }
    )*};
}
tuple_keys!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H)
);

impl<P: IntoKeyPart> From<Vec<P>> for Key {
    fn from(parts: Vec<P>) -> Self {
        Key(parts.into_iter().map(IntoKeyPart::into_key_part).collect())
    }
}

impl From<&Key> for Key {
    fn from(key: &Key) -> Self {
        key.clone()
    }
}

/// Builds a [`Key`] from parts of any [`IntoKeyPart`] type: `key!["users", 42]`.
#[macro_export]
macro_rules! key {
    ($($part:expr),* $(,)?) => {
        $crate::key::Key::new(vec![$($crate::key::IntoKeyPart::into_key_part($part)),*])
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_forms() {
        assert_eq!(Key::parse("users/42").unwrap(), key!["users", "42"]);
        assert_eq!(Key::parse(r#"["users", 42]"#).unwrap(), key!["users", 42]);
        assert_eq!(
            Key::parse(r#"[{"bytes":"00ff"}, true, 1.5, {"bigint":"123456789012345678901234567890"}]"#).unwrap(),
            key![
                vec![0u8, 255],
                true,
                1.5,
                "123456789012345678901234567890".parse::<BigInt>().unwrap()
            ]
        );
        assert!(matches!(Key::parse(""), Err(KeyError::Empty)));
        assert!(Key::parse("a//b").is_err());
        assert!(Key::parse("[1, {\"x\": \"y\"}]").is_err());
        assert!(Key::parse("[1, ").is_err());
        // The tuple encoding holds integers of at most 255 bytes (about 614 digits).
        let huge = format!(r#"[{{"bigint":"{}"}}]"#, "9".repeat(700));
        let error = Key::parse(&huge).unwrap_err();
        assert!(error.to_string().contains("no tuple encoding"), "{error}");
        let big = Key::new(vec![KeyPart::Int("9".repeat(700).parse::<BigInt>().unwrap())]);
        assert!(big.try_encode().is_err());
        let fits = format!(r#"[{{"bigint":"{}"}}]"#, "9".repeat(600));
        assert!(Key::parse(&fits).unwrap().try_encode().is_ok());
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(Key::decode(&[0x02, b'a']).is_err(), "unterminated string");
        assert!(Key::decode(&[0x99]).is_err(), "unknown tag");
    }

    #[test]
    fn prefix_bounds_contain_children_only() {
        let prefix = key!["users"].encode();
        let child = key!["users", 1].encode();
        let deep = key!["users", "z", "zz"].encode();
        let sibling = key!["usersx"].encode();
        let (start, end) = (Key::prefix_start(&prefix), Key::prefix_end(&prefix));
        for inside in [&child, &deep] {
            assert!(start.as_slice() <= inside.as_slice() && inside.as_slice() < end.as_slice());
        }
        assert!(
            start.as_slice() > prefix.as_slice(),
            "the prefix key itself is excluded"
        );
        assert!(!(sibling.as_slice() < end.as_slice() && sibling.as_slice() >= start.as_slice()));
    }

    fn part() -> impl Strategy<Value = KeyPart> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(KeyPart::Bytes),
            ".{0,8}".prop_map(KeyPart::String),
            any::<i64>().prop_map(|i| KeyPart::Int(BigInt::from(i))),
            any::<i128>().prop_map(|i| KeyPart::Int(BigInt::from(i))),
            any::<f64>().prop_map(KeyPart::Float),
            any::<bool>().prop_map(|b| b.into_key_part()),
        ]
    }

    fn key_strategy() -> impl Strategy<Value = Key> {
        proptest::collection::vec(part(), 1..5).prop_map(Key)
    }

    proptest! {
        #[test]
        fn encoding_round_trips(key in key_strategy()) {
            let decoded = Key::decode(&key.encode()).unwrap();
            prop_assert_eq!(decoded, key);
        }

        #[test]
        fn byte_order_equals_tuple_order(a in key_strategy(), b in key_strategy()) {
            prop_assert_eq!(a.encode().cmp(&b.encode()), a.cmp(&b));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            if let Ok(key) = Key::decode(&bytes) {
                prop_assert_eq!(key.encode(), bytes);
            }
        }

        #[test]
        fn json_form_round_trips(key in key_strategy()) {
            // NaN payloads other than the canonical ones are not distinguishable in text.
            prop_assume!(key.0.iter().all(|p| !matches!(p, KeyPart::Float(f) if f.is_nan())));
            let text = key.to_json().to_string();
            prop_assert_eq!(Key::parse(&text).unwrap(), key);
        }
    }
}
