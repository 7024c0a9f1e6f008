//! Deno KV's `sum` on V8-serialized JavaScript numbers and bigints.
//!
//! Deno 2 sends sums of `number` and `bigint` values V8-serialized, with optional bounds:
//! a result outside `[min, max]` is clamped when `clamp` is set and fails the write
//! otherwise. The rules follow denokv's reference backend so a program behaves the same on
//! edgekv as on Deno Deploy: operand and bounds must have the same type; a stored value of
//! another type is a type mismatch; a bigint operand added to a stored KvU64 (u64) is
//! accepted while it fits a u64 and no bounds are given.

use edgekv_proto::v1::ValueEncoding;
use num_bigint::BigInt;
use v8_valueserializer::{Heap, Value as V8Value, ValueDeserializer, ValueSerializer};

#[derive(Clone, Debug, PartialEq)]
pub enum SumOperand {
    BigInt(BigInt),
    Number(f64),
    U64(u64),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SumError {
    #[error("{0}")]
    Type(String),
    #[error("the sum is outside the given min/max bounds and clamp is off")]
    OutOfRange,
}

impl SumOperand {
    fn name(&self) -> &'static str {
        match self {
            SumOperand::BigInt(_) => "bigint",
            SumOperand::Number(_) => "number",
            SumOperand::U64(_) => "KvU64",
        }
    }

    /// Parses a stored or sent value; `None` for an empty V8 payload (an absent bound).
    pub fn parse(encoding: ValueEncoding, bytes: &[u8]) -> Result<Option<Self>, SumError> {
        match encoding {
            ValueEncoding::U64 => {
                let raw: [u8; 8] = bytes
                    .try_into()
                    .map_err(|_| SumError::Type("a u64 is 8 bytes".into()))?;
                Ok(Some(SumOperand::U64(u64::from_le_bytes(raw))))
            }
            ValueEncoding::V8 if bytes.is_empty() => Ok(None),
            ValueEncoding::V8 => {
                let (value, _) = ValueDeserializer::default()
                    .read(bytes)
                    .map_err(|e| SumError::Type(format!("not a valid V8 value: {e}")))?;
                match value {
                    V8Value::BigInt(x) => Ok(Some(SumOperand::BigInt(x))),
                    V8Value::Double(x) => Ok(Some(SumOperand::Number(x))),
                    V8Value::I32(x) => Ok(Some(SumOperand::Number(f64::from(x)))),
                    V8Value::U32(x) => Ok(Some(SumOperand::Number(f64::from(x)))),
                    _ => Err(SumError::Type("sum works on numbers, bigints and KvU64 only".into())),
                }
            }
            other => Err(SumError::Type(format!("cannot sum a value stored as {other:?}"))),
        }
    }

    /// The stored form of a sum's result.
    pub fn encode(&self) -> (ValueEncoding, Vec<u8>) {
        let serialize = |value: V8Value| {
            ValueSerializer::default()
                .finish(&Heap::default(), &value)
                .expect("numbers and bigints always serialize")
        };
        match self {
            SumOperand::U64(x) => (ValueEncoding::U64, x.to_le_bytes().to_vec()),
            SumOperand::Number(x) => (ValueEncoding::V8, serialize(V8Value::Double(*x))),
            SumOperand::BigInt(x) => (ValueEncoding::V8, serialize(V8Value::BigInt(x.clone()))),
        }
    }
}

/// `current + operand`, bounded by `min`/`max`. `current` is `None` for an absent key,
/// which takes the operand as it is.
pub fn sum(
    current: Option<SumOperand>,
    operand: SumOperand,
    min: Option<SumOperand>,
    max: Option<SumOperand>,
    clamp: bool,
) -> Result<SumOperand, SumError> {
    let same_type = |bound: &Option<SumOperand>| {
        bound
            .as_ref()
            .is_none_or(|b| std::mem::discriminant(b) == std::mem::discriminant(&operand))
    };
    if !same_type(&min) || !same_type(&max) {
        return Err(SumError::Type("min/max must have the same type as the operand".into()));
    }
    let Some(current) = current else { return Ok(operand) };
    let operand = match (&current, operand, &min, &max, clamp) {
        (SumOperand::U64(_), SumOperand::BigInt(x), None, None, false) if u64::try_from(&x).is_ok() => {
            SumOperand::U64(u64::try_from(&x).expect("checked"))
        }
        (_, operand, ..) => operand,
    };
    fn bounded<T: PartialOrd + Clone>(
        mut value: T,
        min: Option<T>,
        max: Option<T>,
        clamp: bool,
    ) -> Result<T, SumError> {
        if let Some(min) = min
            && value < min
        {
            if !clamp {
                return Err(SumError::OutOfRange);
            }
            value = min;
        }
        if let Some(max) = max
            && value > max
        {
            if !clamp {
                return Err(SumError::OutOfRange);
            }
            value = max;
        }
        Ok(value)
    }
    match (current, operand) {
        (SumOperand::BigInt(a), SumOperand::BigInt(b)) => {
            let unwrap = |b: Option<SumOperand>| match b {
                Some(SumOperand::BigInt(x)) => Some(x),
                _ => None,
            };
            bounded(a + b, unwrap(min), unwrap(max), clamp).map(SumOperand::BigInt)
        }
        (SumOperand::Number(a), SumOperand::Number(b)) => {
            let unwrap = |b: Option<SumOperand>| match b {
                Some(SumOperand::Number(x)) => Some(x),
                _ => None,
            };
            bounded(a + b, unwrap(min), unwrap(max), clamp).map(SumOperand::Number)
        }
        (SumOperand::U64(a), SumOperand::U64(b)) => {
            if min.is_some() || max.is_some() {
                return Err(SumError::Type("min/max bounds cannot be used with KvU64".into()));
            }
            Ok(SumOperand::U64(a.wrapping_add(b)))
        }
        (current, operand) => Err(SumError::Type(format!(
            "cannot add a {} to a {}",
            operand.name(),
            current.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v8(value: V8Value) -> Vec<u8> {
        ValueSerializer::default().finish(&Heap::default(), &value).unwrap()
    }

    #[test]
    fn numbers_and_bigints_sum_with_bounds() {
        let n = |x: f64| SumOperand::Number(x);
        assert_eq!(sum(Some(n(1.5)), n(2.0), None, None, false), Ok(n(3.5)));
        assert_eq!(sum(None, n(2.0), None, None, false), Ok(n(2.0)));
        assert_eq!(sum(Some(n(9.0)), n(5.0), None, Some(n(10.0)), true), Ok(n(10.0)));
        assert_eq!(
            sum(Some(n(9.0)), n(5.0), None, Some(n(10.0)), false),
            Err(SumError::OutOfRange)
        );
        let b = |x: i64| SumOperand::BigInt(BigInt::from(x));
        assert_eq!(sum(Some(b(-3)), b(-5), Some(b(-6)), None, true), Ok(b(-6)));
        assert!(matches!(
            sum(Some(n(1.0)), b(1), None, None, false),
            Err(SumError::Type(_))
        ));
        assert!(matches!(
            sum(Some(n(1.0)), n(1.0), Some(b(0)), None, false),
            Err(SumError::Type(_))
        ));
        assert_eq!(
            sum(Some(SumOperand::U64(u64::MAX)), b(2), None, None, false),
            Ok(SumOperand::U64(1))
        );
    }

    #[test]
    fn v8_encodings_round_trip() {
        let parsed = SumOperand::parse(ValueEncoding::V8, &v8(V8Value::I32(7))).unwrap();
        assert_eq!(parsed, Some(SumOperand::Number(7.0)));
        for operand in [
            SumOperand::Number(2.25),
            SumOperand::BigInt(BigInt::from(-42)),
            SumOperand::U64(9),
        ] {
            let (encoding, bytes) = operand.encode();
            assert_eq!(SumOperand::parse(encoding, &bytes).unwrap(), Some(operand));
        }
        assert_eq!(SumOperand::parse(ValueEncoding::V8, &[]).unwrap(), None);
        assert!(SumOperand::parse(ValueEncoding::Utf8, b"1").is_err());
        assert!(
            SumOperand::parse(ValueEncoding::V8, &[0xff, 0x0f, 0x22]).is_err(),
            "a string is not summable"
        );
    }
}
