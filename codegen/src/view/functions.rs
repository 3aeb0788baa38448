//! The views of `lib.ts` (one component function per operation, each printed by the partial of
//! its access pattern, `templates/partials/access/<pattern>.hbs`) and of `limits.ts` (what one
//! call may carry, from `ir::operation_limits`).
//!
//! Data only: names, field lists and flags derived from the operations. The templates print
//! every statement, and build the imports from the names listed here.

use serde::Serialize;

use durable_execution_storage_convex_ir::limits::{
    DOCUMENT_BYTES_MAX, DOCUMENT_READ_BUDGET, MAX_ARRAY_LEN, QUERY_BUDGET, READ_BYTES_BUDGET,
    RETURN_BYTES_BUDGET, SYSTEM_FIELDS_BYTES_MAX, WRITE_BUDGET, WRITE_BYTES_BUDGET,
};
use durable_execution_storage_convex_ir::names::pascal_case;
use durable_execution_storage_convex_ir::{
    operation_limits, Access, AfterUpdate, Bound, BoundValue, Component, FunctionKind, Literal,
    Operation, RangeReturns, Table, TypeRef, UpdateMode,
};

use super::docs::{js_doc, Doc};
use super::types::{json_string, screaming_snake, Types, UNSET_FIELD};
use super::validators::{operation_validators, DELETE_ALL_LIMIT_ARG};
use super::{checks, clock};
use crate::error::Error;

/// `lib.ts`.
#[derive(Debug, Default, Serialize)]
pub struct LibFile {
    pub tables: Vec<LibTable>,
    pub functions: Vec<ComponentFunction>,
}

/// A table of the component, with the helpers its operations need.
#[derive(Debug, Serialize)]
pub struct LibTable {
    pub wire: String,
    /// The document's type (without system fields), its update and `unset` types.
    pub type_name: String,
    pub update_type: String,
    pub unset_type: Option<String>,
    pub unset_field: &'static str,
    /// The table's server-time rules (`clock.ts`), when it has time fields.
    pub clock: Option<String>,
    /// `<table>Patch(update)`, when an operation patches the table's documents.
    pub patch_helper: Option<String>,
    /// The unique indexes an insert checks, in the order the operations use them.
    pub unique_assertions: Vec<UniqueAssertion>,
}

/// `assert<Table>UniqueBy<Index>(ctx, doc)`: refuses a document whose key is taken.
#[derive(Debug, Serialize)]
pub struct UniqueAssertion {
    pub function: String,
    pub index: String,
    /// The key's fields; `doc.<field>` each.
    pub fields: Vec<String>,
    /// More than one field: the key is reported as an array.
    pub composite: bool,
    /// Optional key fields: a document without one of them is not indexed under a key.
    pub optional_fields: Vec<String>,
    pub lookup: IndexLookup,
}

/// One component function.
#[derive(Debug, Serialize)]
pub struct ComponentFunction {
    pub doc: Doc,
    pub name: String,
    /// `query` or `mutation`: action operations run as one mutation, which the public action
    /// calls, so that every operation is a single transaction.
    pub builder: &'static str,
    pub args_validator: String,
    pub returns_validator: String,
    /// The type of what the handler collects and returns, when it builds the result itself.
    pub results_type: Option<String>,
    pub limits: FunctionLimits,
    /// The constant describing the numbers in the arguments, when they hold numbers.
    pub numbers: Option<String>,
    /// Reads the server's clock (once): the function writes, or bounds by `now`.
    pub now: bool,
    /// The server-time rules of the arguments, when it has time arguments.
    pub args_server_time: Option<String>,
    /// The call's budget (what it reads, writes and returns), for every function that reads
    /// or writes more than one document.
    pub budget: Option<BudgetView>,
    pub access: AccessView,
}

/// The `limits.ts` constants a function checks its arguments against.
#[derive(Debug, Default, Serialize)]
pub struct FunctionLimits {
    /// `checkMaxItems(arg, args.<arg>.length, constant)`.
    pub max_items: Option<LimitCheck>,
    /// `checkLimit(arg, args.<arg>, constant)`.
    pub max_limit: Option<LimitCheck>,
    /// The reads and writes of one request and one child (an update inserting children).
    pub costs: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LimitCheck {
    pub arg: String,
    pub constant: String,
}

/// `new Budget(unit, key)`.
#[derive(Debug, Serialize)]
pub struct BudgetView {
    /// What `fits` counts (`executions`, `documents`).
    pub unit: String,
    /// The field naming a document in a refusal.
    pub key: Option<String>,
}

/// What a function does, by access pattern: the data of `partials/access/<pattern>.hbs`.
#[derive(Debug, Serialize)]
#[serde(tag = "pattern", rename_all = "snake_case")]
pub enum AccessView {
    Insert {
        /// The argument holding the documents.
        list: String,
        table: String,
        /// The unique assertions each document goes through.
        assertions: Vec<String>,
        clock: Option<String>,
    },
    GetEach {
        /// The argument holding the requests.
        list: String,
        first: bool,
        lookup: IndexLookup,
        /// The request field holding filters, when requests carry filters.
        filters: Option<String>,
        results_type: String,
    },
    UpdateEach {
        list: String,
        first: bool,
        lookup: IndexLookup,
        filters: Option<String>,
        patch_helper: String,
        /// The request field holding the update.
        update: String,
        /// The patch helper takes the server's clock.
        clock: bool,
        table: String,
        children: Option<ChildrenView>,
    },
    UpdateRange {
        lookup: IndexLookup,
        patch_helper: String,
        /// The argument holding the update.
        update: String,
        table: String,
        table_type: String,
        /// `target: args.<arg> + doc.<document_field>` on every patched document.
        add: Vec<AddView>,
        /// The table's server-time rules, when it has time fields.
        clock: Option<String>,
        /// The argument holding the limit.
        limit: String,
        /// Returns the patched documents (otherwise their count).
        returns_documents: bool,
        results_type: Option<String>,
        /// A step after the patches: the data of `partials/after/<step>.hbs`.
        then: Option<AfterView>,
    },
    DeleteOne {
        lookup: IndexLookup,
    },
    DeleteAll {
        table: String,
        limit_arg: &'static str,
    },
}

/// Children inserted under each patched document (`update_each`).
#[derive(Debug, Serialize)]
pub struct ChildrenView {
    /// The request field holding the children.
    pub from: String,
    /// The child's field set to the parent's `_id`.
    pub parent_link: String,
    pub table: String,
    pub assertions: Vec<String>,
    pub clock: Option<String>,
    /// The children budget's costs constant.
    pub costs: String,
}

#[derive(Debug, Serialize)]
pub struct AddView {
    pub target: String,
    pub arg: String,
    pub document_field: String,
}

/// `ctx.db.query(table).withIndex(index, (q) => q.eq(field, value)...)`, printed by the
/// `index_lookup` partial; the caller adds `.first()` or `.order('asc')`.
#[derive(Debug, Serialize)]
pub struct IndexLookup {
    pub table: String,
    pub index: String,
    pub steps: Vec<RangeStep>,
}

/// `.eq('field', value)`, `.gte(...)` or `.lt(...)`.
#[derive(Debug, Serialize)]
pub struct RangeStep {
    pub method: &'static str,
    pub field: String,
    pub value: BoundView,
}

/// The value of a bound: a field of the request or the arguments (the partial's `source`), a
/// JSON literal, or the server's `now`.
#[derive(Debug, Serialize)]
pub struct BoundView {
    pub arg: Option<String>,
    pub literal: Option<String>,
    pub now: bool,
}

/// A step after an `update_range`'s patches: the data of `partials/after/<step>.hbs`.
#[derive(Debug, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum AfterView {
    /// For each patched document whose `via` field is set (and whose `unless` field is not
    /// true), the document of the same table it refers to (found by `index` on `index_field`)
    /// loses one from `counter` (never below 0), or has it reset to 0 when the patched
    /// document's `reset_if` field is true; it takes the update's required fields, and the
    /// table's clock, at the same time.
    DecrementReferenced {
        via: String,
        index: String,
        index_field: String,
        counter: String,
        unless: Option<String>,
        reset_if: Option<String>,
        table: String,
        table_type: String,
        /// The argument holding the update.
        update: String,
        /// Fields every update sets (`updatedAt`).
        required_updates: Vec<String>,
        clock: Option<String>,
    },
}

/// `limits.ts`.
#[derive(Debug, Default, Serialize)]
pub struct LimitsFile {
    pub constants: Vec<LimitConstant>,
    pub costs: Vec<CostConstant>,
}

#[derive(Debug, Serialize)]
pub struct LimitConstant {
    pub doc: Doc,
    pub name: String,
    pub value: u32,
    /// A whole number of MiB: printed as `<n> * 1024 * 1024`.
    pub mebibytes: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct CostConstant {
    pub doc: Doc,
    pub name: String,
    pub entries: Vec<CostEntry>,
}

#[derive(Debug, Serialize)]
pub struct CostEntry {
    pub name: &'static str,
    pub value: u32,
}

pub fn max_items_constant(operation: &Operation) -> String {
    format!("{}_MAX_ITEMS", screaming_snake(&operation.name))
}

pub fn max_limit_constant(operation: &Operation) -> String {
    format!("{}_MAX_LIMIT", screaming_snake(&operation.name))
}

fn costs_constant(operation: &Operation) -> String {
    format!("{}_COSTS", screaming_snake(&operation.name))
}

pub fn build_limits(component: &Component) -> LimitsFile {
    let mut file = LimitsFile::default();
    let constant = |doc: &str, name: String, value: u32| LimitConstant {
        doc: js_doc(doc, 0),
        name,
        value,
        mebibytes: None,
    };
    for operation in &component.operations {
        let limits = operation_limits(operation);
        if let (Some(max), Some(each)) = (limits.max_items, each_arg(&operation.access)) {
            file.constants.push(constant(
                &format!(
                    "`{}`: at most this many `{each}` per call (Convex's transaction limits).",
                    operation.name
                ),
                max_items_constant(operation),
                max,
            ));
        }
        if let Some(max) = limits.max_limit {
            file.constants.push(constant(
                &format!(
                    "`{}`: the largest `limit` one call accepts (Convex's transaction limits).",
                    operation.name
                ),
                max_limit_constant(operation),
                max,
            ));
        }
        if inserts_children(operation) {
            file.costs.push(CostConstant {
                doc: js_doc(
                    &format!(
                        "`{}`: the reads and writes of one request and of one inserted child.",
                        operation.name
                    ),
                    0,
                ),
                name: costs_constant(operation),
                entries: vec![
                    CostEntry {
                        name: "readsPerItem",
                        value: limits.reads_per_item,
                    },
                    CostEntry {
                        name: "writesPerItem",
                        value: limits.writes_per_item,
                    },
                    CostEntry {
                        name: "readsPerChild",
                        value: limits.reads_per_child,
                    },
                    CostEntry {
                        name: "writesPerChild",
                        value: limits.writes_per_child,
                    },
                ],
            });
        }
    }
    let count = |name: &str, value: u32, doc: &str| constant(doc, name.to_owned(), value);
    let bytes = |name: &str, value: u32, doc: &str| LimitConstant {
        mebibytes: mebibytes(value),
        ..constant(doc, name.to_owned(), value)
    };
    file.constants.extend([
        count(
            "QUERY_BUDGET",
            QUERY_BUDGET,
            "Index lookups one call may make (a little under Convex's 4,096).",
        ),
        count(
            "DOCUMENT_READ_BUDGET",
            DOCUMENT_READ_BUDGET,
            "Documents one call may read (a little under Convex's 32,000); a patch reads its \
             document again.",
        ),
        count(
            "WRITE_BUDGET",
            WRITE_BUDGET,
            "Documents one call may write (a little under Convex's 16,000).",
        ),
        count(
            "MAX_ARRAY_LEN",
            MAX_ARRAY_LEN,
            "Elements of one array argument (Convex's limit).",
        ),
        bytes(
            "DOCUMENT_BYTES_MAX",
            DOCUMENT_BYTES_MAX,
            "Convex's limit on one document, as Convex sizes it (`getConvexSize`, system fields \
             included): a larger one is never written.",
        ),
        bytes(
            "SYSTEM_FIELDS_BYTES_MAX",
            SYSTEM_FIELDS_BYTES_MAX,
            "The most `_id` and `_creationTime` add to a document's size (a document to insert \
             has none yet).",
        ),
        bytes(
            "READ_BYTES_BUDGET",
            READ_BYTES_BUDGET,
            "Bytes one call may read (Convex allows 16 MiB; a document is counted once read, so \
             one more of the largest size must still fit).",
        ),
        bytes(
            "WRITE_BYTES_BUDGET",
            WRITE_BYTES_BUDGET,
            "Bytes one call may write (Convex allows 16 MiB).",
        ),
        bytes(
            "RETURN_BYTES_BUDGET",
            RETURN_BYTES_BUDGET,
            "Bytes one call may return (Convex allows 16 MiB).",
        ),
    ]);
    file
}

/// A byte count as the reader thinks of it, when it is a whole number of MiB.
fn mebibytes(value: u32) -> Option<u32> {
    const MIB: u32 = 1024 * 1024;
    (value >= MIB && value.is_multiple_of(MIB)).then_some(value / MIB)
}

fn each_arg(access: &Access) -> Option<String> {
    match access {
        Access::Insert { each, .. } => Some(each.wire.clone()),
        Access::GetEach { each, .. } | Access::UpdateEach { each, .. } => {
            Some(each.arg.wire.clone())
        }
        _ => None,
    }
}

fn inserts_children(operation: &Operation) -> bool {
    matches!(
        &operation.access,
        Access::UpdateEach {
            insert_children: Some(_),
            ..
        }
    )
}

/// Whether the operation patches documents (its table then needs a patch helper).
fn patches(operation: &Operation) -> bool {
    matches!(
        operation.access,
        Access::UpdateEach { .. } | Access::UpdateRange { .. }
    )
}

/// Whether the operation writes, so that its function reads the server's clock.
fn writes(operation: &Operation) -> bool {
    !matches!(
        operation.access,
        Access::GetEach { .. } | Access::DeleteOne { .. } | Access::DeleteAll
    )
}

/// Whether a bound of the operation, in any pattern, is the server's `now` (the function then
/// reads the clock before its access pattern runs).
fn bounds_by_now(operation: &Operation) -> bool {
    operation
        .access
        .bounds()
        .into_iter()
        .any(|(_, bound)| matches!(bound.value, BoundValue::Now))
}

/// The unique indexes the operation's inserts check.
fn unique_indexes(operation: &Operation) -> &[String] {
    match &operation.access {
        Access::Insert { unique_indexes, .. } => unique_indexes,
        Access::UpdateEach {
            insert_children: Some(children),
            ..
        } => &children.unique_indexes,
        _ => &[],
    }
}

pub fn build_lib(component: &Component) -> Result<LibFile, Error> {
    let types = Types::new(component);
    let mut file = LibFile::default();
    for table in &component.tables {
        file.tables.push(lib_table(component, table)?);
    }
    for operation in &component.operations {
        file.functions
            .push(component_function(component, &types, operation)?);
    }
    Ok(file)
}

/// A table's helpers, derived from the operations on it.
fn lib_table(component: &Component, table: &Table) -> Result<LibTable, Error> {
    let operations = || {
        component
            .operations
            .iter()
            .filter(|operation| operation.table == table.rust_name)
    };
    let mut indexes: Vec<&String> = Vec::new();
    for index in operations().flat_map(unique_indexes) {
        if !indexes.contains(&index) {
            indexes.push(index);
        }
    }
    let unique_assertions = indexes
        .into_iter()
        .map(|index| unique_assertion(table, index))
        .collect::<Result<_, _>>()?;
    let has_unset = table
        .fields
        .iter()
        .any(|field| field.update == UpdateMode::Unsettable);
    Ok(LibTable {
        wire: table.wire_name.clone(),
        type_name: table.rust_name.clone(),
        update_type: table.update_type.clone(),
        unset_type: has_unset.then(|| table.unset_type.clone()),
        unset_field: UNSET_FIELD,
        clock: clock::table_constant(table),
        patch_helper: operations().any(patches).then(|| patch_helper_name(table)),
        unique_assertions,
    })
}

fn component_function(
    component: &Component,
    types: &Types<'_>,
    operation: &Operation,
) -> Result<ComponentFunction, Error> {
    let table = types.table(&operation.table)?;
    let table_clock = clock::table_constant(table);
    let limits = operation_limits(operation);
    let names = operation_validators(operation);
    let args_server_time = clock::args_constant(operation);
    let each = each_arg(&operation.access);
    let budget = |unit: &str| {
        Some(BudgetView {
            unit: unit.to_owned(),
            key: document_key(table),
        })
    };
    let mut function = ComponentFunction {
        doc: js_doc(&operation.doc, 0),
        name: operation.name.clone(),
        builder: match operation.kind {
            FunctionKind::Query => "query",
            FunctionKind::Mutation | FunctionKind::Action => "mutation",
        },
        args_validator: names.component_args.clone(),
        returns_validator: names.component_returns.clone(),
        results_type: None,
        limits: FunctionLimits {
            max_items: limits.max_items.and(each.clone()).map(|arg| LimitCheck {
                arg,
                constant: max_items_constant(operation),
            }),
            max_limit: None,
            costs: inserts_children(operation).then(|| costs_constant(operation)),
        },
        // Every number in the arguments (documents, updates, children, bounds) is what its
        // declared type says, before anything else happens.
        numbers: checks::args_have_numbers(component, operation)?
            .then(|| checks::args_constant(operation)),
        now: writes(operation) || bounds_by_now(operation) || args_server_time.is_some(),
        args_server_time,
        budget: each.as_deref().and_then(budget),
        access: AccessView::DeleteAll {
            table: String::new(),
            limit_arg: DELETE_ALL_LIMIT_ARG,
        },
    };
    let results_type = names.component_returns_type.clone();
    function.access = match &operation.access {
        Access::Insert { each, .. } => AccessView::Insert {
            list: each.wire.clone(),
            table: table.wire_name.clone(),
            assertions: assertion_names(table, unique_indexes(operation)),
            clock: table_clock,
        },
        Access::GetEach {
            each,
            index,
            eq,
            filters,
            first,
        } => {
            function.results_type = Some(results_type.clone());
            AccessView::GetEach {
                list: each.arg.wire.clone(),
                first: *first,
                lookup: lookup(table, index, eq, None, None),
                filters: filters.as_ref().map(|name| name.wire.clone()),
                results_type,
            }
        }
        Access::UpdateEach {
            each,
            index,
            eq,
            filters,
            update,
            first,
            insert_children,
        } => AccessView::UpdateEach {
            list: each.arg.wire.clone(),
            first: *first,
            lookup: lookup(table, index, eq, None, None),
            filters: filters.as_ref().map(|name| name.wire.clone()),
            patch_helper: patch_helper_name(table),
            update: update.wire.clone(),
            clock: table_clock.is_some(),
            table: table.wire_name.clone(),
            children: insert_children.as_ref().map(|children| ChildrenView {
                from: children.from.wire.clone(),
                parent_link: children.parent_link.wire.clone(),
                table: table.wire_name.clone(),
                assertions: assertion_names(table, &children.unique_indexes),
                clock: table_clock.clone(),
                costs: costs_constant(operation),
            }),
        },
        Access::UpdateRange {
            index,
            eq,
            lower,
            upper,
            limit,
            update,
            add,
            returns,
            then,
        } => {
            if limits.max_limit.is_some() {
                function.limits.max_limit = Some(LimitCheck {
                    arg: limit.wire.clone(),
                    constant: max_limit_constant(operation),
                });
            }
            function.budget = budget("documents");
            let returns_documents = *returns == RangeReturns::Documents;
            if returns_documents {
                function.results_type = Some(results_type.clone());
            }
            AccessView::UpdateRange {
                lookup: lookup(table, index, eq, lower.as_ref(), upper.as_ref()),
                patch_helper: patch_helper_name(table),
                update: update.wire.clone(),
                table: table.wire_name.clone(),
                table_type: table.rust_name.clone(),
                add: add
                    .iter()
                    .map(|add| AddView {
                        target: add.target.wire.clone(),
                        arg: add.arg.wire.clone(),
                        document_field: add.document_field.wire.clone(),
                    })
                    .collect(),
                clock: table_clock.clone(),
                limit: limit.wire.clone(),
                returns_documents,
                results_type: returns_documents.then_some(results_type),
                then: then
                    .as_ref()
                    .map(|step| after_view(table, step, &update.wire, table_clock)),
            }
        }
        Access::DeleteOne { index, eq } => AccessView::DeleteOne {
            lookup: lookup(table, index, eq, None, None),
        },
        Access::DeleteAll => {
            function.limits.max_limit = Some(LimitCheck {
                arg: DELETE_ALL_LIMIT_ARG.into(),
                constant: max_limit_constant(operation),
            });
            function.budget = budget("documents");
            AccessView::DeleteAll {
                table: table.wire_name.clone(),
                limit_arg: DELETE_ALL_LIMIT_ARG,
            }
        }
    };
    Ok(function)
}

/// The field that names a document in a refusal: the first field indexed alone that is a
/// required string (`executionId`).
fn document_key(table: &Table) -> Option<String> {
    table
        .indexes
        .iter()
        .find_map(|index| match index.fields.as_slice() {
            [name] => table
                .fields
                .iter()
                .find(|field| field.name == *name)
                .filter(|field| field.ty == TypeRef::String && !field.optional)
                .map(|field| field.name.wire.clone()),
            _ => None,
        })
}

fn patch_helper_name(table: &Table) -> String {
    format!("{}Patch", lower_first(&table.rust_name))
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn assertion_name(table: &Table, index: &str) -> String {
    let index = index.strip_prefix("by_").unwrap_or(index);
    format!("assert{}UniqueBy{}", table.rust_name, pascal_case(index))
}

fn assertion_names(table: &Table, unique_indexes: &[String]) -> Vec<String> {
    unique_indexes
        .iter()
        .map(|index| assertion_name(table, index))
        .collect()
}

fn unique_assertion(table: &Table, index_name: &str) -> Result<UniqueAssertion, Error> {
    let index = table
        .index(index_name)
        .ok_or_else(|| Error::Ir(format!("unknown index `{index_name}`")))?;
    let mut optional_fields = Vec::new();
    let mut steps = Vec::new();
    for name in &index.fields {
        let field = table
            .fields
            .iter()
            .find(|field| field.name.wire == name.wire)
            .ok_or_else(|| Error::Ir(format!("unknown field `{}`", name.wire)))?;
        if field.optional {
            optional_fields.push(name.wire.clone());
        }
        steps.push(RangeStep {
            method: "eq",
            field: name.wire.clone(),
            value: BoundView {
                arg: Some(name.wire.clone()),
                literal: None,
                now: false,
            },
        });
    }
    let fields: Vec<String> = index.fields.iter().map(|f| f.wire.clone()).collect();
    Ok(UniqueAssertion {
        function: assertion_name(table, index_name),
        index: index_name.to_owned(),
        composite: fields.len() > 1,
        fields,
        optional_fields,
        lookup: IndexLookup {
            table: table.wire_name.clone(),
            index: index_name.to_owned(),
            steps,
        },
    })
}

fn bound_view(bound: &Bound) -> BoundView {
    let (arg, literal, now) = match &bound.value {
        BoundValue::Arg { name } => (Some(name.wire.clone()), None, false),
        BoundValue::Literal { value } => {
            let literal = match value {
                Literal::Integer(value) => value.to_string(),
                Literal::Bool(value) => value.to_string(),
                Literal::String(value) => json_string(value),
            };
            (None, Some(literal), false)
        }
        BoundValue::Now => (None, None, true),
    };
    BoundView { arg, literal, now }
}

/// An index lookup: equality bounds, then the range's lower (`gte`) and upper (`lt`) bounds.
fn lookup(
    table: &Table,
    index: &str,
    eq: &[Bound],
    lower: Option<&Bound>,
    upper: Option<&Bound>,
) -> IndexLookup {
    let step = |method, bound: &Bound| RangeStep {
        method,
        field: bound.field.wire.clone(),
        value: bound_view(bound),
    };
    let mut steps: Vec<RangeStep> = eq.iter().map(|bound| step("eq", bound)).collect();
    steps.extend(lower.map(|bound| step("gte", bound)));
    steps.extend(upper.map(|bound| step("lt", bound)));
    IndexLookup {
        table: table.wire_name.clone(),
        index: index.to_owned(),
        steps,
    }
}

/// The view of a `then(...)` step after an `update_range`.
fn after_view(
    table: &Table,
    step: &AfterUpdate,
    update_arg: &str,
    clock: Option<String>,
) -> AfterView {
    let AfterUpdate::DecrementReferenced {
        via,
        index,
        index_field,
        counter,
        unless,
        reset_if,
    } = step;
    AfterView::DecrementReferenced {
        via: via.wire.clone(),
        index: index.clone(),
        index_field: index_field.wire.clone(),
        counter: counter.wire.clone(),
        unless: unless.as_ref().map(|field| field.wire.clone()),
        reset_if: reset_if.as_ref().map(|field| field.wire.clone()),
        table: table.wire_name.clone(),
        table_type: table.rust_name.clone(),
        update: update_arg.to_owned(),
        required_updates: table
            .fields
            .iter()
            .filter(|field| field.update == UpdateMode::Required)
            .map(|field| field.name.wire.clone())
            .collect(),
        clock,
    }
}
