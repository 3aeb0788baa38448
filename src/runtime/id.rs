//! [`Id`]: a typed Convex document id.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id of a document of the table whose Rust type is `T` (Convex's `Id<"table">`).
///
/// On the wire it is the plain string Convex generated; the type parameter only exists so that
/// an id of one table cannot be passed where an id of another is expected. It is carried as
/// `PhantomData<fn() -> T>` so that `Id<T>` is `Send + Sync` and covariant whatever `T` is, and
/// every trait is implemented by hand so that none of them requires anything of `T` (a derive
/// would demand `T: Clone` to clone an id, which makes no sense).
pub struct Id<T> {
    id: String,
    table: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// Wraps an id string as returned by Convex. No validation happens here: Convex's id format
    /// is opaque and the deployment rejects an id that does not belong to the table.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            table: PhantomData,
        }
    }

    /// The id as Convex renders it.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The id string, consuming the id.
    pub fn into_string(self) -> String {
        self.id
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        Self::new(self.id.clone())
    }
}

impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for Id<T> {}

impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.id.cmp(&other.id)
    }
}

impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Id").field(&self.id).finish()
    }
}

impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl<T> AsRef<str> for Id<T> {
    fn as_ref(&self) -> &str {
        &self.id
    }
}

impl<T> From<Id<T>> for String {
    fn from(id: Id<T>) -> Self {
        id.id
    }
}

impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.id)
    }
}

impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    /// A table type that implements nothing at all: every `Id` trait must still work.
    struct Opaque;

    #[test]
    fn traits_do_not_require_anything_of_the_table_type() {
        let a: Id<Opaque> = Id::new("k1");
        let b = a.clone();
        assert_eq!(a, b);
        assert!(Id::<Opaque>::new("a") < Id::new("b"));
        assert_eq!(format!("{a:?}"), r#"Id("k1")"#);
        assert_eq!(a.to_string(), "k1");
        assert_eq!(a.as_str(), "k1");
        let set: HashSet<Id<Opaque>> = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        let ordered: BTreeSet<Id<Opaque>> = [Id::new("z"), Id::new("a")].into_iter().collect();
        assert_eq!(
            ordered.iter().map(Id::as_str).collect::<Vec<_>>(),
            ["a", "z"]
        );
        assert_eq!(b.into_string(), "k1");
        fn send_sync<X: Send + Sync>() {}
        send_sync::<Id<*const u8>>();
    }

    #[test]
    fn serializes_as_a_plain_string() {
        let id: Id<Opaque> = Id::new("jd7abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""jd7abc""#);
        let back: Id<Opaque> = serde_json::from_str(r#""jd7abc""#).unwrap();
        assert_eq!(back, id);
        let err = serde_json::from_str::<Id<Opaque>>("42").unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
}
