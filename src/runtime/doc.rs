//! [`Doc`]: a stored document with its Convex system fields.

use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Serialize};

use super::Id;

/// A document as Convex returns it: the system fields `_id` and `_creationTime` next to the
/// fields of the stored value `T`.
///
/// The generated table structs describe only what the application stores; wrapping them here
/// (instead of adding `_id` to every struct) keeps the insert arguments, which must not carry
/// system fields, and the read results, which always do, the same Rust type. On the wire the
/// fields of `T` are flattened: `{"_id": "…", "_creationTime": 1.7e12, "shard": 0, …}`.
///
/// `Doc<T>` dereferences to `T`, so `doc.status` reads the stored field directly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Doc<T> {
    /// The document id (`_id`).
    #[serde(rename = "_id")]
    pub id: Id<T>,
    /// Creation time in epoch milliseconds (`_creationTime`). A float because Convex stores it
    /// as one, with sub-millisecond digits.
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    /// The stored fields.
    #[serde(flatten)]
    pub value: T,
}

impl<T> Doc<T> {
    /// The stored value, dropping the system fields.
    pub fn into_value(self) -> T {
        self.value
    }
}

impl<T> Deref for Doc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Doc<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Note {
        title: String,
        is_done: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    }

    #[test]
    fn system_fields_sit_next_to_the_flattened_value() {
        let doc = Doc {
            id: Id::<Note>::new("k57"),
            creation_time: 1_700_000_000_123.5,
            value: Note {
                title: "t".into(),
                is_done: true,
                tag: None,
            },
        };
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            json,
            json!({"_id": "k57", "_creationTime": 1_700_000_000_123.5, "title": "t", "isDone": true})
        );
        let back: Doc<Note> = serde_json::from_value(json).unwrap();
        assert_eq!(back, doc);
        // Deref reaches the stored fields.
        assert_eq!(back.title, "t");
        assert_eq!(back.into_value().title, "t");
    }

    #[test]
    fn integral_creation_time_and_optional_fields_decode() {
        let doc: Doc<Note> = serde_json::from_value(
            json!({"_creationTime": 5, "_id": "x", "title": "a", "isDone": false, "tag": "u"}),
        )
        .unwrap();
        assert_eq!(doc.creation_time, 5.0);
        assert_eq!(doc.tag.as_deref(), Some("u"));
    }

    #[test]
    fn missing_system_fields_are_refused() {
        let err = serde_json::from_value::<Doc<Note>>(json!({"title": "a", "isDone": false}))
            .unwrap_err();
        assert!(err.to_string().contains("missing field `_id`"), "{err}");
    }
}
