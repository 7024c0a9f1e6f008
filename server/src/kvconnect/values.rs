//! Value encodings between edgekv and KV Connect.
//!
//! Deno's values (V8-serialized, `Deno.KvU64`, `Uint8Array`) are stored byte for byte
//! with their encoding and returned unchanged. Values written through the gRPC API as
//! UTF-8 or JSON have no KV Connect encoding, so they are handed to Deno clients as the
//! V8 serialization of the same string or JSON value: Deno reads what kvctl wrote.

use denokv_proto::datapath as pb;
use edgekv_proto::v1::ValueEncoding;
use v8_valueserializer::{
    DenseArray, Heap, HeapValue, Object, PropertyKey, StringValue, Value as V8Value, ValueSerializer,
};

/// The edgekv encoding of a KV Connect value encoding, if it has one.
pub fn from_wire(encoding: i32) -> Option<ValueEncoding> {
    match pb::ValueEncoding::try_from(encoding).ok()? {
        pb::ValueEncoding::VeV8 => Some(ValueEncoding::V8),
        pb::ValueEncoding::VeLe64 => Some(ValueEncoding::U64),
        pb::ValueEncoding::VeBytes => Some(ValueEncoding::Bytes),
        pb::ValueEncoding::VeUnspecified => None,
    }
}

/// A stored value as a KV Connect client receives it.
pub fn to_wire(encoding: ValueEncoding, value: Vec<u8>) -> (pb::ValueEncoding, Vec<u8>) {
    match encoding {
        ValueEncoding::V8 => (pb::ValueEncoding::VeV8, value),
        ValueEncoding::U64 => (pb::ValueEncoding::VeLe64, value),
        ValueEncoding::Bytes => (pb::ValueEncoding::VeBytes, value),
        ValueEncoding::Utf8 => {
            let text = String::from_utf8_lossy(&value).into_owned();
            (
                pb::ValueEncoding::VeV8,
                serialize(&Heap::default(), &V8Value::String(StringValue::new(text))),
            )
        }
        ValueEncoding::Json => match serde_json::from_slice::<serde_json::Value>(&value) {
            Ok(json) => {
                let mut heap = Heap::default();
                let root = json_to_v8(&mut heap, &json);
                (pb::ValueEncoding::VeV8, serialize(&heap, &root))
            }
            // Validated on write; should a stored record be damaged, hand out its bytes.
            Err(_) => (pb::ValueEncoding::VeBytes, value),
        },
    }
}

fn serialize(heap: &Heap, value: &V8Value) -> Vec<u8> {
    ValueSerializer::default()
        .finish(heap, value)
        .expect("values built from JSON always serialize")
}

fn json_to_v8(heap: &mut Heap, json: &serde_json::Value) -> V8Value {
    use serde_json::Value as J;
    match json {
        J::Null => V8Value::Null,
        J::Bool(b) => V8Value::Bool(*b),
        J::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(small) => V8Value::I32(small),
            None => V8Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => V8Value::String(StringValue::new(s.clone())),
        J::Array(items) => {
            let elements = items.iter().map(|item| Some(json_to_v8(heap, item))).collect();
            V8Value::HeapReference(heap.insert(HeapValue::DenseArray(DenseArray {
                elements,
                properties: Vec::new(),
            })))
        }
        J::Object(map) => {
            let properties = map
                .iter()
                .map(|(k, v)| (PropertyKey::String(StringValue::new(k.clone())), json_to_v8(heap, v)))
                .collect();
            V8Value::HeapReference(heap.insert(HeapValue::Object(Object { properties })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v8_valueserializer::ValueDeserializer;

    #[test]
    fn strings_and_json_become_v8_values() {
        let (encoding, bytes) = to_wire(ValueEncoding::Utf8, b"hello".to_vec());
        assert_eq!(encoding, pb::ValueEncoding::VeV8);
        let (value, _) = ValueDeserializer::default().read(&bytes).unwrap();
        assert!(matches!(value, V8Value::String(s) if s.to_string() == "hello"));

        let (encoding, bytes) = to_wire(ValueEncoding::Json, br#"{"a":[1,2.5,"x"],"b":null}"#.to_vec());
        assert_eq!(encoding, pb::ValueEncoding::VeV8);
        let (value, heap) = ValueDeserializer::default().read(&bytes).unwrap();
        let V8Value::HeapReference(reference) = value else {
            panic!("an object")
        };
        assert!(matches!(reference.open(&heap), HeapValue::Object(o) if o.properties.len() == 2));

        assert_eq!(
            to_wire(ValueEncoding::U64, vec![1; 8]),
            (pb::ValueEncoding::VeLe64, vec![1; 8])
        );
        assert_eq!(from_wire(pb::ValueEncoding::VeBytes as i32), Some(ValueEncoding::Bytes));
        assert_eq!(from_wire(0), None);
    }
}
