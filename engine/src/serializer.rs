//! How inputs and outputs are stored: a pluggable [`Serializer`] from a value's JSON text to
//! the stored string and back, with size limits.
//!
//! The default, [`SuperjsonSerializer`], writes what the original's default (superjson) writes
//! for JSON values, `{"json":<value>}`, and reads what superjson writes for JSON values plus
//! `undefined` (the `meta.values` annotation `"undefined"`: the key is dropped, or the value
//! read as `null`), so that TypeScript and Rust executors can read each other's executions.
//! Other superjson types (`Date`, `Map`, `bigint`, …) have no JSON form a Rust type reads the
//! same way: they fail with an error that names the type and where it is.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Why a value could not be stored or read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SerializationError {
    /// The value has no JSON form (serde refused it) or the JSON does not fit the Rust type.
    #[error("{0}")]
    Json(String),
    /// The stored string is not in the serializer's format.
    #[error("not a stored value of this serializer: {0}")]
    Format(String),
    /// The stored value holds a type the Rust side cannot represent.
    #[error("unsupported stored value: {0}")]
    Unsupported(String),
    /// The serialized value is larger than the executor allows.
    #[error("serialized {what} is {size} bytes, more than the maximum of {max} bytes")]
    TooLarge {
        /// `input` or `output`.
        what: &'static str,
        /// Its size in bytes (UTF-8).
        size: usize,
        /// The executor's limit.
        max: usize,
    },
}

/// Turns values into the strings stored as `input`, `output` and `runOutput`, and back.
///
/// Values reach a serializer as JSON text (what `serde_json` writes for them, fields in
/// declaration order); it returns the stored string. Reading gives the JSON value back.
/// Every executor sharing a storage must use the same serializer.
pub trait Serializer: Send + Sync + 'static {
    /// The stored form of a value, given as JSON text.
    fn serialize(&self, json: &str) -> Result<String, SerializationError>;

    /// The JSON value of a stored string.
    fn deserialize(&self, stored: &str) -> Result<Value, SerializationError>;
}

/// Plain JSON: the stored string is the value's JSON text.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonSerializer;

impl Serializer for JsonSerializer {
    fn serialize(&self, json: &str) -> Result<String, SerializationError> {
        Ok(json.to_owned())
    }

    fn deserialize(&self, stored: &str) -> Result<Value, SerializationError> {
        serde_json::from_str(stored).map_err(|e| SerializationError::Format(e.to_string()))
    }
}

/// superjson's form, the original's default: `{"json":<value>}` (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct SuperjsonSerializer;

impl Serializer for SuperjsonSerializer {
    fn serialize(&self, json: &str) -> Result<String, SerializationError> {
        let mut stored = String::with_capacity(json.len() + 9);
        stored.push_str("{\"json\":");
        stored.push_str(json);
        stored.push('}');
        Ok(stored)
    }

    fn deserialize(&self, stored: &str) -> Result<Value, SerializationError> {
        let parsed: Value =
            serde_json::from_str(stored).map_err(|e| SerializationError::Format(e.to_string()))?;
        let Value::Object(mut envelope) = parsed else {
            return Err(SerializationError::Format(
                "expected a JSON object {\"json\": ..., \"meta\"?: ...}".into(),
            ));
        };
        // An absent `json` is superjson's `undefined` at the root.
        let mut json = envelope.remove("json").unwrap_or(Value::Null);
        if let Some(meta) = envelope.remove("meta") {
            apply_meta(&mut json, &meta)?;
        }
        Ok(json)
    }
}

/// Applies superjson's `meta`: `values` annotations of type `undefined` are applied, any other
/// type is refused; `referentialEqualities` need nothing (without deduplication, which the
/// original does not use, `json` holds every copy in full).
fn apply_meta(json: &mut Value, meta: &Value) -> Result<(), SerializationError> {
    let Value::Object(meta) = meta else {
        return Err(SerializationError::Format("meta is not an object".into()));
    };
    // superjson ≥ 2.2.3 writes `v`; before it, paths escape only dots.
    let legacy_paths = meta.get("v").and_then(Value::as_u64).unwrap_or(0) < 1;
    let Some(values) = meta.get("values") else {
        return Ok(());
    };
    let mut annotations = Vec::new();
    collect_annotations(values, &mut Vec::new(), legacy_paths, &mut annotations)?;
    for (annotation, path) in annotations {
        match annotation.as_str() {
            Some("undefined") => remove_at(json, &path),
            _ => {
                return Err(SerializationError::Unsupported(format!(
                    "superjson type {annotation} at {} (only JSON values and undefined are read)",
                    describe_path(&path)
                )))
            }
        }
    }
    Ok(())
}

/// Walks a superjson annotation tree: `[type]`, `[type, {path: tree}]` or `{path: tree}`.
fn collect_annotations(
    tree: &Value,
    origin: &mut Vec<String>,
    legacy_paths: bool,
    out: &mut Vec<(Value, Vec<String>)>,
) -> Result<(), SerializationError> {
    let mut children = |map: &Map<String, Value>, origin: &mut Vec<String>| {
        for (key, subtree) in map {
            let depth = origin.len();
            origin.extend(parse_path(key, legacy_paths));
            collect_annotations(subtree, origin, legacy_paths, out)?;
            origin.truncate(depth);
        }
        Ok::<(), SerializationError>(())
    };
    match tree {
        Value::Object(map) => children(map, origin),
        Value::Array(node) => {
            let Some(annotation) = node.first() else {
                return Err(SerializationError::Format("empty annotation".into()));
            };
            if let Some(child_map) = node.get(1) {
                let Value::Object(map) = child_map else {
                    return Err(SerializationError::Format("bad annotation children".into()));
                };
                children(map, origin)?;
            }
            out.push((annotation.clone(), origin.clone()));
            Ok(())
        }
        _ => Err(SerializationError::Format("bad annotation tree".into())),
    }
}

/// Splits a superjson path on unescaped dots.
fn parse_path(path: &str, legacy: bool) -> Vec<String> {
    let mut segments = Vec::new();
    let mut segment = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('.')) => {
                segment.push('.');
                chars.next();
            }
            '\\' if !legacy && matches!(chars.peek(), Some('\\' | '$')) => {
                segment.extend(chars.next());
            }
            '.' => segments.push(std::mem::take(&mut segment)),
            c => segment.push(c),
        }
    }
    segments.push(segment);
    segments
}

/// Makes the value at `path` undefined: a removed key, or `null` in an array or at the root.
fn remove_at(json: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        *json = Value::Null;
        return;
    };
    let mut current = json;
    for segment in parents {
        let next = match current {
            Value::Object(map) => map.get_mut(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    match current {
        Value::Object(map) => {
            map.remove(last);
        }
        Value::Array(items) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

fn describe_path(path: &[String]) -> String {
    if path.is_empty() {
        "the root".into()
    } else {
        format!("path {}", path.join("."))
    }
}

/// The executor's serializer with its size limits.
#[derive(Clone)]
pub(crate) struct Codec {
    serializer: Arc<dyn Serializer>,
    max_input_size: usize,
    max_output_size: usize,
}

impl Codec {
    pub(crate) fn new(
        serializer: Arc<dyn Serializer>,
        max_input_size: usize,
        max_output_size: usize,
    ) -> Self {
        Self {
            serializer,
            max_input_size,
            max_output_size,
        }
    }

    fn encode_json(
        &self,
        json: &str,
        what: &'static str,
        max: usize,
    ) -> Result<String, SerializationError> {
        let stored = self.serializer.serialize(json)?;
        if stored.len() > max {
            return Err(SerializationError::TooLarge {
                what,
                size: stored.len(),
                max,
            });
        }
        Ok(stored)
    }

    /// The stored form of a task input.
    pub(crate) fn input_json(&self, json: &str) -> Result<String, SerializationError> {
        self.encode_json(json, "input", self.max_input_size)
    }

    /// The stored form of a task output (or run output).
    pub(crate) fn output_json(&self, json: &str) -> Result<String, SerializationError> {
        self.encode_json(json, "output", self.max_output_size)
    }

    #[cfg(test)]
    pub(crate) fn input<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<String, SerializationError> {
        self.input_json(&to_json(value)?)
    }

    pub(crate) fn output<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<String, SerializationError> {
        self.output_json(&to_json(value)?)
    }

    /// The JSON value of a stored string.
    pub(crate) fn value(&self, stored: &str) -> Result<Value, SerializationError> {
        self.serializer.deserialize(stored)
    }

    /// The typed value of a stored string.
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        stored: &str,
    ) -> Result<T, SerializationError> {
        from_value(self.value(stored)?)
    }
}

/// JSON text of a value.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, SerializationError> {
    serde_json::to_string(value).map_err(|e| SerializationError::Json(e.to_string()))
}

/// A typed value from JSON.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, SerializationError> {
    serde_json::from_value(value).map_err(|e| SerializationError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn superjson_reads_undefined_annotations() {
        let s = SuperjsonSerializer;
        assert_eq!(
            s.deserialize(r#"{"meta":{"values":["undefined"]}}"#)
                .unwrap(),
            Value::Null
        );
        assert_eq!(
            s.deserialize(r#"{"json":{"a":null,"b":1,"c":[null,2]},"meta":{"values":{"a":["undefined"],"c.0":["undefined"]}}}"#)
                .unwrap(),
            json!({"b": 1, "c": [null, 2]})
        );
        assert_eq!(
            s.deserialize(
                r#"{"json":{"x.y":{"z":1}},"meta":{"values":{"x\\.y.z":["undefined"]},"v":1}}"#
            )
            .unwrap(),
            json!({"x.y": {}})
        );
        let error = s
            .deserialize(
                r#"{"json":{"d":"2020-01-01T00:00:00.000Z"},"meta":{"values":{"d":["Date"]}}}"#,
            )
            .unwrap_err();
        assert!(
            error.to_string().contains("Date") && error.to_string().contains("path d"),
            "{error}"
        );
        assert!(s.deserialize("[1]").is_err());
    }

    #[test]
    fn sizes_are_limited() {
        let codec = Codec::new(Arc::new(SuperjsonSerializer), 20, 1024);
        assert_eq!(codec.input("abc").unwrap(), r#"{"json":"abc"}"#);
        let error = codec.input(&"x".repeat(20)).unwrap_err();
        assert!(matches!(
            error,
            SerializationError::TooLarge {
                what: "input",
                size: 31,
                max: 20
            }
        ));
    }
}
