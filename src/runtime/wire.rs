//! Serde helpers that carry Rust integers as Convex numbers.
//!
//! A Convex `v.number()` is an IEEE-754 float64. A float64 holds every integer whose magnitude
//! is at most 2^53-1 ([`MAX_SAFE_INTEGER`]) exactly, and nothing beyond that reliably: `2^53 + 1`
//! silently becomes `2^53`. The generated structs keep integer fields as Rust integers (a shard
//! is a `u32`, a timestamp a `u64`) and use these helpers so that:
//!
//! - serializing writes a JSON integer (`5`, never `5.0`) and **refuses** a value beyond
//!   2^53-1 instead of letting the deployment round it;
//! - deserializing accepts a JSON integer *or* an integral float (`1.0`: a deployment, or a
//!   TypeScript client writing through it, may render a number that way) and refuses anything
//!   that would not round-trip: a fraction, a non-finite value, a negative value for an unsigned
//!   type, a value out of range for the target type or beyond 2^53-1.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Row {
//!     #[serde(with = "durable_execution_storage_convex::runtime::wire::integer")]
//!     shard: u32,
//!     #[serde(
//!         default,
//!         skip_serializing_if = "Option::is_none",
//!         with = "durable_execution_storage_convex::runtime::wire::optional_integer"
//!     )]
//!     started_at: Option<u64>,
//! }
//!
//! let row: Row = serde_json::from_str(r#"{"shard": 3.0}"#).unwrap();
//! assert_eq!(row, Row { shard: 3, started_at: None });
//! assert_eq!(serde_json::to_string(&row).unwrap(), r#"{"shard":3}"#);
//! assert!(serde_json::from_str::<Row>(r#"{"shard": 1.5}"#).is_err());
//! let too_big = Row { shard: 0, started_at: Some(1 << 53) };
//! assert!(serde_json::to_string(&too_big).unwrap_err().to_string().contains("2^53-1"));
//! ```
//!
//! Both helpers decode through `deserialize_any`, so they also work inside `#[serde(flatten)]`
//! (as in [`Doc`](super::Doc)), where serde buffers the input before the field sees it.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{self, Serialize, Serializer};

/// The largest integer magnitude a float64 represents exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

mod sealed {
    pub trait Sealed {}
}

/// A Rust integer type that travels as a Convex number. Implemented for `u8`…`u64` and
/// `i8`…`i64`; sealed because the range checks below rely on every value fitting an `i128`.
pub trait WireInteger: Copy + sealed::Sealed {
    /// The Rust name of the type, for error messages.
    const TYPE_NAME: &'static str;
    /// The smallest value of the type.
    const MIN: i128;
    /// The largest value of the type.
    const MAX: i128;
    /// Widens the value losslessly.
    fn to_i128(self) -> i128;
    /// Narrows `value`, or `None` when it is out of range for the type.
    fn from_i128(value: i128) -> Option<Self>;
}

macro_rules! impl_wire_integer {
    ($($t:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl WireInteger for $t {
            const TYPE_NAME: &'static str = stringify!($t);
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
            fn to_i128(self) -> i128 {
                i128::from(self)
            }
            fn from_i128(value: i128) -> Option<Self> {
                <$t>::try_from(value).ok()
            }
        }
    )*};
}

impl_wire_integer!(u8, u16, u32, u64, i8, i16, i32, i64);

/// Why `value` cannot be sent to Convex, or `None` when it can.
fn unsafe_to_send<T: WireInteger>(value: T) -> Option<String> {
    let wide = value.to_i128();
    (wide.unsigned_abs() > u128::from(MAX_SAFE_INTEGER)).then(|| {
        format!(
            "cannot send the {} {wide} to Convex: its magnitude exceeds 2^53-1 \
             ({MAX_SAFE_INTEGER}), and a Convex number is a float64, which cannot hold it exactly",
            T::TYPE_NAME
        )
    })
}

/// `#[serde(with = "…::wire::integer")]` for a `u8`…`u64` / `i8`…`i64` field.
pub mod integer {
    use super::*;

    /// Writes `value` as a JSON integer; fails when its magnitude exceeds 2^53-1.
    pub fn serialize<T: WireInteger, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if let Some(why) = unsafe_to_send(*value) {
            return Err(ser::Error::custom(why));
        }
        // Within ±2^53-1 the value fits an i64; the check above guarantees it.
        match i64::try_from(value.to_i128()) {
            Ok(v) => serializer.serialize_i64(v),
            Err(_) => Err(ser::Error::custom(format!(
                "cannot send the {} {} to Convex",
                T::TYPE_NAME,
                value.to_i128()
            ))),
        }
    }

    /// Reads a JSON integer or an integral float into `T`; see the [module docs](super).
    pub fn deserialize<'de, T: WireInteger, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        deserializer.deserialize_any(IntegerVisitor(PhantomData))
    }
}

/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "…::wire::optional_integer")]`
/// for an `Option<integer>` field.
///
/// Absent (thanks to `default`) and `null` both decode to `None`; `None` is skipped when
/// serializing (Convex's `v.optional` refuses `null`, it wants the field absent).
pub mod optional_integer {
    use super::*;

    /// Writes `Some(v)` like [`integer::serialize`]; `None` as `null` (normally skipped).
    pub fn serialize<T: WireInteger, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.serialize_some(&Int(*v)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null` as `None`, anything else like [`integer::deserialize`].
    pub fn deserialize<'de, T: WireInteger, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<Int<T>>::deserialize(deserializer).map(|v| v.map(|Int(v)| v))
    }
}

/// An integer that (de)serializes with the [`integer`] rules, for places where a `with`
/// attribute cannot reach (inside a `Vec`, a map, a tuple).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Int<T>(pub T);

impl<T: WireInteger> Serialize for Int<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        integer::serialize(&self.0, serializer)
    }
}

impl<'de, T: WireInteger> Deserialize<'de> for Int<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        integer::deserialize(deserializer).map(Int)
    }
}

struct IntegerVisitor<T>(PhantomData<T>);

impl<T: WireInteger> IntegerVisitor<T> {
    fn refuse<E: de::Error>(found: impl fmt::Display, why: &str) -> E {
        E::custom(format!(
            "expected an integer of type {}, found {found}{why}",
            T::TYPE_NAME
        ))
    }

    fn check<E: de::Error>(value: i128, found: impl fmt::Display) -> Result<T, E> {
        let Some(v) = T::from_i128(value) else {
            let why = if value < 0 && T::MIN == 0 {
                " (negative)".to_owned()
            } else {
                format!(" (out of range {}..={})", T::MIN, T::MAX)
            };
            return Err(Self::refuse(found, &why));
        };
        if value.unsigned_abs() > u128::from(MAX_SAFE_INTEGER) {
            return Err(Self::refuse(
                found,
                " (beyond 2^53-1: a Convex number is a float64, which cannot hold it exactly)",
            ));
        }
        Ok(v)
    }
}

impl<T: WireInteger> Visitor<'_> for IntegerVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer of type {}", T::TYPE_NAME)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Self::check(i128::from(v), v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Self::check(i128::from(v), v)
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
        Self::check(v, v)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
        match i128::try_from(v) {
            Ok(wide) => Self::check(wide, v),
            Err(_) => Err(Self::refuse(
                v,
                &format!(" (out of range {}..={})", T::MIN, T::MAX),
            )),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // `{v:?}` keeps `1.5` readable and prints `1e300` rather than 301 digits.
        if !v.is_finite() {
            return Err(Self::refuse(format!("{v:?}"), " (not a finite number)"));
        }
        if v.fract() != 0.0 {
            return Err(Self::refuse(format!("{v:?}"), ""));
        }
        // An integral float beyond 2^53 is refused by `check`; beyond i128 it is out of range
        // for every target type anyway (the cast saturates, so the check still fails).
        Self::check(v as i128, format!("{v:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Doc, Id};
    use serde::{Deserialize, Serialize};
    use serde_json::{json, Value};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct One<T: WireInteger> {
        #[serde(with = "crate::runtime::wire::integer")]
        v: T,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Opt<T: WireInteger> {
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::runtime::wire::optional_integer"
        )]
        v: Option<T>,
    }

    fn decode<T: WireInteger + fmt::Debug>(v: Value) -> Result<T, String> {
        serde_json::from_value::<One<T>>(json!({ "v": v }))
            .map(|o| o.v)
            .map_err(|e| e.to_string())
    }

    /// Also decodes from text, which goes through serde_json's own parser (not `Value`).
    fn decode_text<T: WireInteger + fmt::Debug>(text: &str) -> Result<T, String> {
        // serde_json appends " at line 1 column N" to messages from text; drop it.
        serde_json::from_str::<One<T>>(&format!(r#"{{"v":{text}}}"#))
            .map(|o| o.v)
            .map_err(|e| {
                let e = e.to_string();
                e.split(" at line ").next().unwrap_or_default().to_owned()
            })
    }

    fn encode<T: WireInteger>(v: T) -> Result<String, String> {
        serde_json::to_string(&One { v }).map_err(|e| e.to_string())
    }

    fn round_trips<T>(values: &[T])
    where
        T: WireInteger + fmt::Debug + PartialEq + fmt::Display,
    {
        for &v in values {
            let text = encode(v).unwrap();
            assert_eq!(text, format!(r#"{{"v":{v}}}"#), "{}", T::TYPE_NAME);
            assert_eq!(decode_text::<T>(&v.to_string()).unwrap(), v);
            assert_eq!(serde_json::from_str::<One<T>>(&text).unwrap().v, v);
        }
    }

    #[test]
    fn every_integer_type_round_trips_as_a_json_integer() {
        round_trips::<u8>(&[0, 1, u8::MAX]);
        round_trips::<u16>(&[0, 7, u16::MAX]);
        round_trips::<u32>(&[0, 42, u32::MAX]);
        round_trips::<u64>(&[0, 1_700_000_000_000, MAX_SAFE_INTEGER]);
        round_trips::<i8>(&[i8::MIN, -1, 0, i8::MAX]);
        round_trips::<i16>(&[i16::MIN, 0, i16::MAX]);
        round_trips::<i32>(&[i32::MIN, 0, i32::MAX]);
        round_trips::<i64>(&[-(MAX_SAFE_INTEGER as i64), -1, 0, MAX_SAFE_INTEGER as i64]);
    }

    #[test]
    fn integral_floats_are_accepted() {
        assert_eq!(decode::<u32>(json!(1.0)), Ok(1));
        assert_eq!(decode_text::<u32>("1.0"), Ok(1));
        assert_eq!(decode_text::<u64>("1.7e12"), Ok(1_700_000_000_000));
        assert_eq!(decode_text::<i8>("-128.0"), Ok(-128));
        assert_eq!(decode_text::<i64>("-0.0"), Ok(0));
        assert_eq!(
            decode_text::<u64>("9007199254740991.0"),
            Ok(MAX_SAFE_INTEGER)
        );
    }

    #[test]
    fn fractions_are_refused_with_a_clear_message() {
        assert_eq!(
            decode_text::<u32>("1.5").unwrap_err(),
            "expected an integer of type u32, found 1.5"
        );
        assert_eq!(
            decode::<i64>(json!(-0.25)).unwrap_err(),
            "expected an integer of type i64, found -0.25"
        );
    }

    #[test]
    fn negative_values_are_refused_for_unsigned_types() {
        for (err, ty) in [
            (decode_text::<u8>("-1").unwrap_err(), "u8"),
            (decode_text::<u16>("-1").unwrap_err(), "u16"),
            (decode_text::<u32>("-1").unwrap_err(), "u32"),
            (decode_text::<u64>("-1.0").unwrap_err(), "u64"),
        ] {
            assert!(
                err.starts_with(&format!("expected an integer of type {ty}, found -1")),
                "{err}"
            );
            assert!(err.contains("(negative)"), "{err}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert_eq!(
            decode_text::<u8>("256").unwrap_err(),
            "expected an integer of type u8, found 256 (out of range 0..=255)"
        );
        assert_eq!(
            decode_text::<i8>("-129").unwrap_err(),
            "expected an integer of type i8, found -129 (out of range -128..=127)"
        );
        assert!(decode_text::<u16>("65536.0")
            .unwrap_err()
            .starts_with("expected an integer of type u16, found 65536.0 (out of range"));
        assert!(decode_text::<i32>("2147483648")
            .unwrap_err()
            .contains("(out of range -2147483648..=2147483647)"));
        assert!(decode_text::<u64>("1e300")
            .unwrap_err()
            .starts_with("expected an integer of type u64, found 1e300 (out of range"));
        assert!(decode_text::<u64>("18446744073709551616")
            .unwrap_err()
            .contains("expected an integer of type u64"));
    }

    #[test]
    fn values_beyond_2_pow_53_are_refused_both_ways() {
        let err = decode_text::<u64>("9007199254740992").unwrap_err();
        assert!(
            err.starts_with(
                "expected an integer of type u64, found 9007199254740992 (beyond 2^53-1"
            ),
            "{err}"
        );
        assert!(decode::<i64>(json!(-9_007_199_254_740_992.0))
            .unwrap_err()
            .contains("beyond 2^53-1"));

        let err = encode(MAX_SAFE_INTEGER + 1).unwrap_err();
        assert!(err.contains("9007199254740992"), "{err}");
        assert!(err.contains("2^53-1"), "{err}");
        assert!(err.contains("float64"), "{err}");
        assert!(err.contains("u64"), "{err}");
        assert!(encode(u64::MAX)
            .unwrap_err()
            .contains("18446744073709551615"));
        assert!(encode(i64::MIN)
            .unwrap_err()
            .contains("-9223372036854775808"));
        assert_eq!(
            encode(-(MAX_SAFE_INTEGER as i64)).unwrap(),
            r#"{"v":-9007199254740991}"#
        );
    }

    #[test]
    fn non_numbers_are_refused() {
        let err = decode::<u32>(json!("5")).unwrap_err();
        assert!(err.contains("expected an integer of type u32"), "{err}");
        assert!(err.contains("string"), "{err}");
        assert!(decode::<u32>(Value::Null).is_err());
        assert!(decode::<u32>(json!(true)).is_err());
    }

    #[test]
    fn non_finite_floats_are_refused() {
        // JSON cannot carry NaN or infinities, so drive the visitor directly.
        use serde::de::value::{Error, F64Deserializer};
        use serde::de::IntoDeserializer;
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let d: F64Deserializer<Error> = v.into_deserializer();
            let err = integer::deserialize::<u32, _>(d).unwrap_err().to_string();
            assert!(
                err.starts_with("expected an integer of type u32, found")
                    && err.ends_with("(not a finite number)"),
                "{err}"
            );
        }
    }

    #[test]
    fn optional_integers_absent_null_and_present() {
        assert_eq!(serde_json::from_str::<Opt<u64>>("{}").unwrap().v, None);
        assert_eq!(
            serde_json::from_str::<Opt<u64>>(r#"{"v":null}"#).unwrap().v,
            None
        );
        assert_eq!(
            serde_json::from_str::<Opt<u64>>(r#"{"v":12}"#).unwrap().v,
            Some(12)
        );
        assert_eq!(
            serde_json::from_str::<Opt<u64>>(r#"{"v":12.0}"#).unwrap().v,
            Some(12)
        );
        assert_eq!(
            serde_json::from_str::<Opt<u32>>(r#"{"v":1.5}"#)
                .unwrap_err()
                .to_string(),
            "expected an integer of type u32, found 1.5 at line 1 column 8"
        );
        assert_eq!(
            serde_json::to_string(&Opt::<u64> { v: None }).unwrap(),
            "{}"
        );
        assert_eq!(
            serde_json::to_string(&Opt::<i16> { v: Some(-3) }).unwrap(),
            r#"{"v":-3}"#
        );
        assert!(serde_json::to_string(&Opt::<u64> { v: Some(u64::MAX) })
            .unwrap_err()
            .to_string()
            .contains("2^53-1"));
    }

    #[test]
    fn int_wrapper_works_inside_collections() {
        let v: Vec<Int<u8>> = serde_json::from_str("[1, 2.0, 255]").unwrap();
        assert_eq!(v, [Int(1), Int(2), Int(255)]);
        assert_eq!(serde_json::to_string(&v).unwrap(), "[1,2,255]");
        assert!(serde_json::from_str::<Vec<Int<u8>>>("[256]").is_err());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Row {
        #[serde(with = "crate::runtime::wire::integer")]
        shard: u32,
        #[serde(with = "crate::runtime::wire::integer")]
        start_at: u64,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::runtime::wire::optional_integer"
        )]
        expires_at: Option<u64>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::runtime::wire::optional_integer"
        )]
        delta: Option<i32>,
    }

    #[test]
    fn works_inside_flatten_of_doc() {
        // Integral floats, plain integers, an absent and a null optional, all behind
        // `#[serde(flatten)]`, where serde buffers the map before the fields see it.
        let text = r#"{"_id":"r1","_creationTime":1700000000000.25,"shard":3.0,
                       "startAt":1700000000000,"expiresAt":null}"#;
        let doc: Doc<Row> = serde_json::from_str(text).unwrap();
        assert_eq!(doc.id, Id::new("r1"));
        assert_eq!(
            doc.value,
            Row {
                shard: 3,
                start_at: 1_700_000_000_000,
                expires_at: None,
                delta: None
            }
        );
        assert_eq!(doc.shard, 3);

        let doc: Doc<Row> = serde_json::from_value(json!({
            "_id": "r2", "_creationTime": 1.0, "shard": 0, "startAt": 5.0,
            "expiresAt": 9.0, "delta": -4
        }))
        .unwrap();
        assert_eq!(doc.expires_at, Some(9));
        assert_eq!(doc.delta, Some(-4));
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({"_id": "r2", "_creationTime": 1.0, "shard": 0, "startAt": 5,
                   "expiresAt": 9, "delta": -4})
        );
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"_id":"r2","_creationTime":1.0,"shard":0,"startAt":5,"expiresAt":9,"delta":-4}"#
        );

        let err = serde_json::from_str::<Doc<Row>>(
            r#"{"_id":"r3","_creationTime":1,"shard":1.5,"startAt":0}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("expected an integer of type u32, found 1.5"),
            "{err}"
        );
        let err = serde_json::from_str::<Doc<Row>>(
            r#"{"_id":"r3","_creationTime":1,"shard":-1,"startAt":0}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("expected an integer of type u32, found -1 (negative)"),
            "{err}"
        );
        let err = serde_json::from_str::<Doc<Row>>(
            r#"{"_id":"r3","_creationTime":1,"shard":1,"startAt":0,"expiresAt":0.5}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("expected an integer of type u64, found 0.5"),
            "{err}"
        );
    }
}
