//! The `#[convex_component]` attribute (documented on [`macro@convex_component`]).
//!
//! The parsing and every check live in `durable-execution-storage-convex-ir`, shared with the
//! TypeScript generator; this crate only turns the checked IR into Rust.

mod expand;

use proc_macro::TokenStream;

/// Declares a Convex component — its tables, value types and public operations — in one inline
/// module, checks it against Convex's rules at `cargo check`, and expands it into the Rust
/// types and a typed client. The same module, read from its source file, is what
/// `cargo codegen generate` turns into the Convex TypeScript, with the same checks and messages.
///
/// ```rust,ignore
/// use durable_execution_storage_convex::convex_component;
///
/// #[convex_component(name = "notesStorage")]
/// pub mod notes {
///     #[convex(union)]
///     pub enum NoteKind { Plain, ToDo }                  // "plain", "to_do"
///
///     #[convex(table = "notes")]
///     #[convex(index(name = "by_noteId", fields(note_id)))]
///     pub struct Note {
///         pub note_id: String,                          // "noteId"
///         #[convex(update, filter)]
///         pub kind: NoteKind,
///         #[convex(update(required))]
///         pub updated_at: u64,
///     }
///
///     #[convex(object)]
///     pub struct ByNoteIdRequest { pub note_id: String }
///
///     /// One answer per request, in order.
///     #[convex(operation(name = "getManyById", kind = "query", returns = "Vec<Option<Doc<Note>>>"))]
///     #[convex(access(get_each, each = requests, index = "by_noteId", eq(note_id = note_id), first))]
///     pub struct GetManyByIdArgs { pub requests: Vec<ByNoteIdRequest> }
/// }
/// ```
///
/// # The attribute vocabulary
///
/// Every attribute inside the module is `#[convex(...)]`, made of entries `key`, `key = value`
/// or `key(...)`. An unknown key is an error that lists the valid keys; a key may appear once.
///
/// ## Component: `#[convex_component(...)]`
///
/// | key | value | default |
/// |---|---|---|
/// | `name` | the Convex component name | camelCase of the module name |
/// | `app_module` | the app module exposing the public API (`<app_module>:<operation>`) | `name` |
/// | `client` | the Rust name of the generated client | `<PascalCase(name)>Client` |
/// | `compat_factory` | also export the public API under this name, as `(component, authSecret?) => api` (for apps moving over from a package with that entry point) | none |
///
/// ```rust,ignore
/// #[convex_component(name = "taskExecutionsStorage", app_module = "taskExecutionsStorage",
///                    client = "TaskExecutionsStorageClient")]
/// pub mod task_executions { /* ... */ }
/// ```
///
/// The module must be inline (`mod name { ... }`) and hold only structs and enums (a `use` is
/// refused: types are resolved by name and the expansion, generated from the declaration rather
/// than copied, names everything by absolute path). Structs have named fields (`{}` for none);
/// no generics. Doc comments are carried to the generated
/// items.
///
/// ## Item roles
///
/// Every struct and enum has exactly one role:
///
/// ```rust,ignore
/// #[convex(object)]             // a struct travelling as `v.object({...})`
/// pub struct RetryOptions { pub max_attempts: u32 }
///
/// #[convex(union)]              // a unit-only enum travelling as a union of string literals
/// pub enum CloseStatus { Idle, Ready }
///
/// #[convex(table = "taskExecutions")]   // a Convex table; the string is the table name
/// pub struct TaskExecution { /* ... */ }
///
/// #[convex(operation(...))]     // an operation's argument struct, with its `access(...)`
/// #[convex(access(...))]
/// pub struct InsertManyArgs { pub executions: Vec<TaskExecution> }
/// ```
///
/// ## Indexes: `#[convex(index(name = "...", fields(...)))]` on a table
///
/// `fields` lists the table's Rust field names, in index order:
///
/// ```rust,ignore
/// #[convex(index(name = "by_shard_status_startAt", fields(shard, status, start_at)))]
/// ```
///
/// ## Field attributes
///
/// | attribute | where | meaning |
/// |---|---|---|
/// | `rename = "wire"` | any field, any variant | the name on the wire |
/// | `update` | table field | the update request may set it (`Option<T>` in `<Table>Update`) |
/// | `update(unset)` | optional table field | may be set, or removed through the update's `unset` |
/// | `update(required)` | non-optional table field | every update sets it (`T` in `<Table>Update`) |
/// | `filter` | table field of a scalar type (string, number, integer, boolean, id, union; optional or not) | part of `<Table>Filters`, the conditions of by-id reads and updates (compared with `!==`, hence no objects or arrays) |
/// | `server_time = "now"` | `u64` table field or argument | the server stores its own time (`Date.now()`, once per call), whatever was sent |
/// | `server_time = "at_least_now"` | `u64` table field | raised to the server's time when earlier |
/// | `server_time = "expiry"` | `u64` table field | when earlier than the server's time: that time plus `EXPIRY_GRACE_MS` (1000) |
/// | `server_time = "at_most_now"` | `u64` argument | lowered to the server's time when later (e.g. a `…LessThan` bound) |
/// | `min = n`, `max = n` | integer field, anywhere | the server refuses values outside the bounds (within the type's range) |
///
/// Server times apply to `u64` and `Option<u64>` fields (epoch milliseconds), on every insert
/// (children inserted with their parent included) and every patch, to the fields the
/// document or the update carries. Every integer field is checked by the server against its
/// Rust type's range (and ±(2^53-1)), every `f64` field for being finite, inside documents,
/// updates, children and arguments alike; a bad value is refused with `INVALID_ARGUMENT` and
/// the path of the field (`executions[3].retryAttempts`) before anything is written.
///
/// Table fields without `update` are immutable. Wire names default to camelCase for fields
/// (`start_at` → `startAt`) and snake_case for variants (`TimedOut` → `timed_out`).
///
/// ```rust,ignore
/// #[convex(rename = "acc", update)]
/// pub active_children_count: u32,
/// #[convex(update(unset))]
/// pub expires_at: Option<u64>,
/// #[convex(update(required))]
/// pub updated_at: u64,
/// #[convex(update, filter)]
/// pub status: TaskExecutionStatus,
/// #[convex(update(required), server_time = "now")]
/// pub updated_at: u64,
/// #[convex(update(unset), server_time = "expiry")]
/// pub expires_at: Option<u64>,
/// #[convex(max = 63)]
/// pub shard: u32,
///
/// // in an operation's arguments
/// #[convex(server_time = "at_most_now")]
/// pub start_at_less_than: u64,
///
/// #[convex(union)]
/// pub enum Kind { #[convex(rename = "timeout")] TimedOut }
/// ```
///
/// ## Operations: `#[convex(operation(...))]`
///
/// | key | value | default |
/// |---|---|---|
/// | `name` | the public (and component) function name, a JavaScript identifier | required |
/// | `kind` | `"query"`, `"mutation"` or `"action"` (a query cannot write) | required |
/// | `returns` | the Rust return type, as a string; must match the access pattern | required |
/// | `test_only` | flag: the server refuses the call outside test mode | off |
/// | `method` | the client method name | snake_case of `name` |
/// | `table` | the Rust name of the table it works on | the only table |
/// | `retry` | what re-sending the call after an unknown outcome does: `"idempotent"`, `"verify_duplicates"` or `"only_unsent"` (a query is always `"idempotent"`) | `"idempotent"` for a query, `"only_unsent"` otherwise |
///
/// ```rust,ignore
/// #[convex(operation(name = "deleteById", kind = "mutation", returns = "()", test_only,
///                    method = "delete_by_id", table = "TaskExecution", retry = "idempotent"))]
/// ```
///
/// ## Access patterns: `#[convex(access(<pattern>, ...))]`
///
/// The pattern comes first; its keys follow. `each` names an argument of type
/// `Vec<SomeObject>` (one request per element); in the `*_each` patterns the other names refer
/// to the fields of that request object.
///
/// | pattern | keys (optional in brackets) | returns |
/// |---|---|---|
/// | `insert` | `each`, \[`unique("by_x", ...)`\] | `()` |
/// | `get_each` | `each`, `index`, `eq(...)`, \[`filters`\], \[`first`\] | `Vec<Option<Doc<T>>>` with `first`, else `Vec<Vec<Doc<T>>>` |
/// | `update_each` | `each`, `index`, `eq(...)`, `update`, \[`filters`\], \[`first`\], \[`insert_children`, `parent_link`, \[`unique(...)`\]\] | `()` |
/// | `update_range` | `index`, \[`eq(...)`\], \[`gte(...)`\], \[`lt(...)`\], `limit`, `update`, \[`add(...)`\], \[`then(<step>)`\] | `Vec<Doc<T>>` or an integer (the count) |
/// | `delete_one` | `index`, `eq(...)` | `()` |
/// | `delete_all` | none | `()` |
///
/// - `each = requests`: the list argument; `unique("by_executionId", ...)`: indexes whose key
///   must not exist yet (the whole call fails otherwise).
/// - `index = "by_x"`: an index of the table; `eq(field = value, ...)`: equality bounds, which
///   must cover a prefix of the index's fields; `gte(field = value)` / `lt(field = value)`: one
///   range bound each, on the index field right after the equalities. Convex orders documents
///   without a field before every value, so an `lt` on an optional field needs a `gte` too
///   (`gte(expires_at = 0)`): the documents without the field then never match.
/// - `filters = filters`: a field of type `Option<<Table>Filters>`; `update = update`: a field
///   of type `<Table>Update`; `first`: only the first match (one document or none).
/// - `insert_children = children, parent_link = parent_doc_id` (with `first`): children
///   (`Vec<Table>`) inserted when the update happened, with the table field `parent_link`
///   (`Option<Id<Table>>`) set to the parent's `_id`; `unique(...)` then applies to them.
/// - `limit = limit`: an integer argument, the most documents one call patches.
/// - `add(target = (argument, document_field))`: sets `target = argument + document_field`
///   on every patched document (integers; the document field always present).
/// - `then(<step>)`: a step run after the patch, in the same transaction, for each patched
///   document. The one step is `decrement_referenced`:
///
///   ```rust,ignore
///   then(decrement_referenced(counter = active_children_count, via = parent_execution_id,
///                             index = "by_executionId", unless = is_finalize_of_parent,
///                             reset_if = is_only_child_of_parent))
///   ```
///
///   For each patched document whose field `via` is present and whose boolean field `unless`
///   is not `true`, it finds the document of the same table whose `index` key (a single-field
///   index, of `via`'s type) equals that `via`, and sets its integer field `counter` to
///   `max(0, counter - 1)`, or to 0 when the patched document's boolean field `reset_if` is
///   `true`; the referenced document's `update(required)` fields change with it, as in a
///   patch. `counter`, `via` and `index` are required, `unless` and `reset_if` optional. Each
///   patched document then costs one more read and write in the call's budget.
///
/// Bound values are an argument (or request) field of the same type (`eq(shard = shard)`), a
/// literal (`0`, `-1`, `true`, `"text"`, or a union variant's wire string such as `"ready"`),
/// or `now` (the server's time in epoch milliseconds, for numeric fields).
///
/// ```rust,ignore
/// #[convex(access(insert, each = executions, unique("by_executionId")))]
/// #[convex(access(get_each, each = requests, index = "by_executionId",
///                 eq(execution_id = execution_id), filters = filters, first))]
/// #[convex(access(update_each, each = requests, index = "by_executionId",
///                 eq(execution_id = execution_id), update = update, first,
///                 insert_children = children, parent_link = parent_execution_doc_id,
///                 unique("by_executionId")))]
/// #[convex(access(update_range, index = "by_shard_status_startAt",
///                 eq(shard = shard, status = status), lt(start_at = now), limit = limit,
///                 update = update, add(expires_at = (started_at, timeout_ms))))]
/// #[convex(access(delete_one, index = "by_executionId", eq(execution_id = execution_id)))]
/// #[convex(access(delete_all))]
/// ```
///
/// ## Types
///
/// `String`, `bool`, `f64`, `u8`…`u64` and `i8`…`i64` (travelling as Convex float64 numbers,
/// checked to stay within ±2^53-1), `Option<T>` (an optional field; `T | null` below the
/// field level), `Vec<T>`, `Id<Table>`, `Doc<Table>` (return types only), `()` (return types
/// only), and the objects, unions and tables of the module, plus the generated
/// `<Table>Update`, `<Table>Unset` and `<Table>Filters`. Refused: references, `f32`, `u128`,
/// `usize` and friends, maps, integers nested inside `Vec`/`Option`, a table storing
/// documents or requests, an operation's argument struct used as a type.
///
/// ## Checks
///
/// All problems are reported at once, each at the offending attribute, name or type:
///
/// - Convex names: table, field and index names are non-empty, at most 64 characters, ASCII
///   letters, digits and `_`, and start with neither a digit nor `_`; `by_id` and
///   `by_creation_time` are reserved index names;
/// - at most 32 indexes per table and 16 fields per index; index fields exist and appear once;
/// - no duplicate type, table, index, operation, field or variant wire name; the generated
///   `<Table>Update`/`Unset`/`Filters` names stay free;
/// - `update(unset)` only on `Option` fields, `update(required)` only on non-`Option` ones;
/// - `server_time` only on `u64`/`Option<u64>` fields: `now`, `at_least_now` or `expiry` on
///   table fields, `now` or `at_most_now` on arguments, none on objects' fields; `min`/`max`
///   only on integer fields, within the type's range, `min <= max`;
/// - a `filter` field has a scalar type (no object or array, optional or not);
/// - a query's `retry` is `"idempotent"`; an operation's name is a JavaScript identifier, its
///   `method` a Rust one;
/// - access patterns: the names exist with the right types (`each`, `filters`, `update`,
///   `limit`, `insert_children`, `parent_link`, `add`), bound values fit their fields,
///   equality bounds cover an index prefix and ranges follow it, an `lt` on an optional field
///   comes with a `gte`, `insert_children` goes with `first`, `returns` matches the pattern, a
///   query does not write;
/// - `then(decrement_referenced(...))`: a known step with known keys; `index` has exactly one
///   field, of `via`'s type; `counter` is an integer field that is always present; `unless`
///   and `reset_if` are `bool` or `Option<bool>` fields.
///
/// Parsing reports malformed attributes, unknown and missing keys, unsupported types and
/// names that refer to nothing; the rules above are checks over the parsed declaration,
/// which run even when parsing found problems elsewhere.
///
/// # What it generates
///
/// In `pub mod <module>` (only from the checked declaration):
///
/// - each union: an enum deriving `Copy`, `Eq`, `Ord`, `Hash` and serde, with `ALL` and
///   `as_str()`;
/// - each object, the table struct and each argument struct: a struct deriving `Debug`,
///   `Clone`, `PartialEq` and serde with the wire names (unknown fields are ignored on reads);
/// - per table: `<Table>Update` (`Option<T>` per updatable field, `T` per required one, and
///   `unset: Option<<Table>Unset>`), `<Table>Unset` (a `bool` per unsettable field) and
///   `<Table>Filters` (`Option<T>` per filter field);
/// - per operation: `type <Op>Response` (the `Args` suffix replaced) and an impl of
///   `runtime::ConvexOperation` (name, kind, retry safety, test-only, call limits);
/// - `COMPONENT_NAME`, `APP_MODULE`, `OPERATION_NAMES`, `limits::CALL_BUDGET`, the byte limits
///   `limits::DOCUMENT_BYTES_MAX`, `READ_BYTES_BUDGET`, `WRITE_BYTES_BUDGET`,
///   `RETURN_BYTES_BUDGET`, and `limits::EXPIRY_GRACE_MS`;
/// - the client: `new(http, secret)`, `with_module`, `module`, generic `call(&args)` and one
///   async method per operation.
#[proc_macro_attribute]
pub fn convex_component(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
