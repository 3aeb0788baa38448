//! The intermediate representation: plain, serialisable data with no `syn` types.
//!
//! The parser (private) builds it from the declaration, keeping the spans beside it; the checks
//! (private) then run over it. The proc-macro (Rust client) and the generator (Convex
//! TypeScript) only read it.

use serde::Serialize;

/// A Convex component: its tables, value types and operations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// The component's name (`defineComponent(name)`, `app.use(...)` mounts it under it).
    pub name: String,
    /// The app module that exposes the public API (`<app_module>:<operation>` paths).
    pub app_module: String,
    /// The Rust module that holds the declaration.
    pub rust_module: String,
    /// The generated Rust client type.
    pub client_name: String,
    /// The name of a second entry point of the public API taking `(component, authSecret?)`,
    /// for apps moving over from a package that exported one under that name.
    pub compat_factory: Option<String>,
    pub doc: String,
    pub objects: Vec<ObjectDef>,
    pub unions: Vec<UnionDef>,
    pub tables: Vec<Table>,
    pub operations: Vec<Operation>,
}

/// A Rust name and the name it travels under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Name {
    pub rust: String,
    pub wire: String,
}

/// A struct that travels as a Convex object (`v.object`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectDef {
    pub rust_name: String,
    pub doc: String,
    pub fields: Vec<Field>,
}

/// A unit-only enum that travels as a union of string literals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnionDef {
    pub rust_name: String,
    pub doc: String,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    pub name: Name,
    pub doc: String,
}

/// A field of a table, an object or an operation's arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: Name,
    pub doc: String,
    /// The type without the outer `Option` (see `optional`).
    pub ty: TypeRef,
    /// Declared as `Option<T>`: the field may be absent (`v.optional`).
    pub optional: bool,
    /// How the table's update request may change it (tables only).
    pub update: UpdateMode,
    /// Part of the table's by-id filters (tables only).
    pub filter: bool,
    /// How the server's clock applies to it (integer time fields of tables and arguments).
    pub server_time: Option<ServerTime>,
    /// Declared bounds of an integer field, within its Rust type's range (`min = ..`,
    /// `max = ..`); the server refuses values outside them.
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// How the server's clock applies to a time field (epoch milliseconds), with `now` the
/// server's `Date.now()`, taken once per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerTime {
    /// The server writes `now`, whatever was sent (event stamps: `createdAt`, `updatedAt`).
    Now,
    /// Raised to `now` when earlier (a start time never lies in the server's past).
    AtLeastNow,
    /// When earlier than `now`: `now + EXPIRY_GRACE_MS` (nothing expires as it is written).
    Expiry,
    /// Lowered to `now` when later (argument bounds such as `startAtLessThan`).
    AtMostNow,
}

impl ServerTime {
    pub const ALL: [ServerTime; 4] = [
        ServerTime::Now,
        ServerTime::AtLeastNow,
        ServerTime::Expiry,
        ServerTime::AtMostNow,
    ];

    /// The attribute value (`server_time = "at_least_now"`), also the wire name of the rule.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerTime::Now => "now",
            ServerTime::AtLeastNow => "at_least_now",
            ServerTime::Expiry => "expiry",
            ServerTime::AtMostNow => "at_most_now",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.as_str() == name)
    }
}

/// The grace an expiry time earlier than the server's `now` gets: it becomes
/// `now + EXPIRY_GRACE_MS` (as the original does).
pub const EXPIRY_GRACE_MS: u64 = 1_000;

/// How a table field takes part in the update request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateMode {
    /// Never updated (identity fields).
    Immutable,
    /// May be set by an update.
    Optional,
    /// May be set by an update, or removed through the update's `unset` object.
    Unsettable,
    /// Every update sets it (e.g. `updatedAt`).
    Required,
}

/// A type as the declaration names it, resolved against the declared items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeRef {
    /// `()`: `v.null()`.
    Null,
    Bool,
    String,
    /// `f64`: `v.number()`.
    Float64,
    /// A Rust integer travelling as a float64 `v.number()`, checked on the way in and out.
    Integer {
        rust: IntegerKind,
    },
    /// `Id<Table>`: `v.id("table")`.
    Id {
        table: String,
    },
    /// A declared `#[convex(object)]` struct.
    Object {
        name: String,
    },
    /// A declared `#[convex(union)]` enum.
    Union {
        name: String,
    },
    /// The table struct itself: a document without system fields.
    TableFields {
        table: String,
    },
    /// `Doc<Table>`: a document with `_id` and `_creationTime`.
    Document {
        table: String,
    },
    /// The table's generated update request type.
    Update {
        table: String,
    },
    /// The table's generated `unset` object type.
    Unset {
        table: String,
    },
    /// The table's generated by-id filters type.
    Filters {
        table: String,
    },
    /// `Option<T>` below the field level: `v.union(T, v.null())`.
    Nullable {
        inner: Box<TypeRef>,
    },
    /// `Vec<T>`: `v.array(T)`.
    Array {
        element: Box<TypeRef>,
    },
}

/// The largest integer a float64 represents exactly, with all below it (JavaScript's
/// `Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegerKind {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
}

impl IntegerKind {
    pub const ALL: [IntegerKind; 8] = [
        IntegerKind::U8,
        IntegerKind::U16,
        IntegerKind::U32,
        IntegerKind::U64,
        IntegerKind::I8,
        IntegerKind::I16,
        IntegerKind::I32,
        IntegerKind::I64,
    ];

    pub fn rust_name(self) -> &'static str {
        match self {
            IntegerKind::U8 => "u8",
            IntegerKind::U16 => "u16",
            IntegerKind::U32 => "u32",
            IntegerKind::U64 => "u64",
            IntegerKind::I8 => "i8",
            IntegerKind::I16 => "i16",
            IntegerKind::I32 => "i32",
            IntegerKind::I64 => "i64",
        }
    }

    pub fn from_rust_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.rust_name() == name)
    }

    /// The values a field of this kind holds on the wire: its Rust range, within the range of
    /// integers a float64 represents exactly (±(2^53 - 1)).
    pub fn wire_range(self) -> (i64, i64) {
        match self {
            IntegerKind::U8 => (0, u8::MAX.into()),
            IntegerKind::U16 => (0, u16::MAX.into()),
            IntegerKind::U32 => (0, u32::MAX.into()),
            IntegerKind::U64 => (0, MAX_SAFE_INTEGER),
            IntegerKind::I8 => (i8::MIN.into(), i8::MAX.into()),
            IntegerKind::I16 => (i16::MIN.into(), i16::MAX.into()),
            IntegerKind::I32 => (i32::MIN.into(), i32::MAX.into()),
            IntegerKind::I64 => (-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
        }
    }

    pub fn is_signed(self) -> bool {
        matches!(
            self,
            IntegerKind::I8 | IntegerKind::I16 | IntegerKind::I32 | IntegerKind::I64
        )
    }
}

/// A Convex table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// The Rust struct (a document without system fields).
    pub rust_name: String,
    /// The Convex table name.
    pub wire_name: String,
    pub doc: String,
    pub fields: Vec<Field>,
    pub indexes: Vec<Index>,
    /// Names of the types generated from the fields' `update` and `filter` attributes.
    pub update_type: String,
    pub unset_type: String,
    pub filters_type: String,
}

impl Table {
    pub fn field(&self, rust_name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|field| field.name.rust == rust_name)
    }

    pub fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|index| index.name == name)
    }
}

/// A Convex index: name and ordered fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    pub name: String,
    pub fields: Vec<Name>,
}

/// One function of the public API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operation {
    /// The public (and component) function name, e.g. `insertMany`.
    pub name: String,
    /// The Rust client method, e.g. `insert_many`.
    pub method: String,
    /// The Rust argument struct.
    pub args_type: String,
    pub doc: String,
    pub kind: FunctionKind,
    pub args: Vec<Field>,
    pub returns: TypeRef,
    /// Refused by the server unless the deployment is in test mode.
    pub test_only: bool,
    /// What re-sending the call does when the first attempt's outcome is unknown.
    pub retry: RetrySafety,
    /// The table it reads and writes.
    pub table: String,
    pub access: Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionKind {
    Query,
    Mutation,
    Action,
}

/// What re-sending a call does when the first attempt may have committed and only its response
/// was lost (`operation(retry = "...")`); the Rust client retries accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrySafety {
    /// Applying the call twice leaves the state of one application.
    Idempotent,
    /// A re-sent insert may be refused as a duplicate of its own first attempt; the client
    /// verifies the stored content.
    VerifyDuplicates,
    /// Re-sending could apply the call twice: only calls that provably did not run are re-sent.
    OnlyUnsent,
}

impl RetrySafety {
    pub const ALL: [RetrySafety; 3] = [
        RetrySafety::Idempotent,
        RetrySafety::VerifyDuplicates,
        RetrySafety::OnlyUnsent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetrySafety::Idempotent => "idempotent",
            RetrySafety::VerifyDuplicates => "verify_duplicates",
            RetrySafety::OnlyUnsent => "only_unsent",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|safety| safety.as_str() == name)
    }

    /// Without a declaration: queries never write; anything else is re-sent only unsent.
    pub fn default_for(kind: FunctionKind) -> Self {
        match kind {
            FunctionKind::Query => RetrySafety::Idempotent,
            FunctionKind::Mutation | FunctionKind::Action => RetrySafety::OnlyUnsent,
        }
    }
}

impl FunctionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
            FunctionKind::Action => "action",
        }
    }
}

/// The access pattern an operation implements; each has a template on the TypeScript side.
// Built once per operation; boxing the large variants would only add noise for the readers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "pattern", rename_all = "snake_case")]
pub enum Access {
    /// Insert every element of `each`; the call fails when a unique index already holds a key.
    Insert {
        each: Name,
        unique_indexes: Vec<String>,
    },
    /// For each request of `each`, read `index` with equality bounds; `first` answers one
    /// document or null, otherwise every match.
    GetEach {
        each: EachRef,
        index: String,
        eq: Vec<Bound>,
        filters: Option<Name>,
        first: bool,
    },
    /// For each request of `each`, patch the matching documents (the first only with `first`)
    /// with its `update`; optionally insert children when the patch happened.
    UpdateEach {
        each: EachRef,
        index: String,
        eq: Vec<Bound>,
        filters: Option<Name>,
        update: Name,
        first: bool,
        insert_children: Option<InsertChildren>,
    },
    /// Patch at most `limit` documents of an index range in ascending order; return them or
    /// their count.
    UpdateRange {
        index: String,
        eq: Vec<Bound>,
        lower: Option<Bound>,
        upper: Option<Bound>,
        limit: Name,
        update: Name,
        add: Vec<AddAssign>,
        returns: RangeReturns,
        then: Option<AfterUpdate>,
    },
    /// Delete the document an index lookup finds, if any.
    DeleteOne { index: String, eq: Vec<Bound> },
    /// Delete every document of the table.
    DeleteAll,
}

/// An argument holding a list of requests, and the object type of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EachRef {
    pub arg: Name,
    pub element: String,
}

/// Children inserted under an updated parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InsertChildren {
    /// The request field holding the children.
    pub from: Name,
    /// The table field set to the parent's `_id`.
    pub parent_link: Name,
    pub unique_indexes: Vec<String>,
}

/// A bound on a table field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bound {
    pub field: Name,
    pub value: BoundValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BoundValue {
    /// A field of the arguments (or of the request, for the `*_each` patterns).
    Arg {
        name: Name,
    },
    Literal {
        value: Literal,
    },
    /// The server's current time in epoch milliseconds.
    Now,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Literal {
    Integer(i64),
    Bool(bool),
    String(String),
}

/// `target = arg + document.field`, set on every patched document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddAssign {
    pub target: Name,
    pub arg: Name,
    pub document_field: Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeReturns {
    Documents,
    Count,
}

/// A step after an update, run for each patched document in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum AfterUpdate {
    /// `then(decrement_referenced(...))`: for each patched document whose `via` field is
    /// present and whose `unless` field is not `true`, find the document of the same table
    /// whose `index_field` (the single field of `index`) equals the patched document's `via`,
    /// and set its `counter` to `max(0, counter - 1)`, or to 0 when the patched document's
    /// `reset_if` field is `true`. The referenced document's required update fields change
    /// with it.
    DecrementReferenced {
        /// The patched document's field holding the referenced document's key.
        via: Name,
        /// A single-field index of the table that finds the referenced document.
        index: String,
        /// The index's field.
        index_field: Name,
        /// The referenced document's integer field to decrement.
        counter: Name,
        /// A boolean field of the patched document: when `true`, nothing is decremented.
        unless: Option<Name>,
        /// A boolean field of the patched document: when `true`, the counter becomes 0.
        reset_if: Option<Name>,
    },
}

impl Access {
    /// The bounds of the access pattern, with the entry they stand in (`eq`, `gte`, `lt`).
    pub fn bounds(&self) -> Vec<(&'static str, &Bound)> {
        match self {
            Access::GetEach { eq, .. }
            | Access::UpdateEach { eq, .. }
            | Access::DeleteOne { eq, .. } => eq.iter().map(|bound| ("eq", bound)).collect(),
            Access::UpdateRange {
                eq, lower, upper, ..
            } => eq
                .iter()
                .map(|bound| ("eq", bound))
                .chain(lower.iter().map(|bound| ("gte", bound)))
                .chain(upper.iter().map(|bound| ("lt", bound)))
                .collect(),
            Access::Insert { .. } | Access::DeleteAll => Vec::new(),
        }
    }
}

impl Component {
    pub fn table(&self, rust_name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|table| table.rust_name == rust_name)
    }

    pub fn object(&self, rust_name: &str) -> Option<&ObjectDef> {
        self.objects
            .iter()
            .find(|object| object.rust_name == rust_name)
    }

    pub fn union(&self, rust_name: &str) -> Option<&UnionDef> {
        self.unions
            .iter()
            .find(|union| union.rust_name == rust_name)
    }
}
