//! The views of `lib.ts` (one component function per operation, by access pattern) and of
//! `limits.ts` (what one call may carry, from `ir::operation_limits`).

use serde::Serialize;

use durable_execution_storage_convex_ir::limits::{
    DOCUMENT_BYTES_MAX, DOCUMENT_READ_BUDGET, MAX_ARRAY_LEN, QUERY_BUDGET, READ_BYTES_BUDGET,
    RETURN_BYTES_BUDGET, SYSTEM_FIELDS_BYTES_MAX, WRITE_BUDGET, WRITE_BYTES_BUDGET,
};
use durable_execution_storage_convex_ir::{
    operation_limits, Access, AfterUpdate, Bound, BoundValue, Component, FunctionKind, Literal,
    Operation, RangeReturns, Table, TypeRef, UpdateMode,
};

use super::docs::js_doc;
use super::types::{screaming_snake, Types, UNSET_FIELD};
use super::validators::{operation_validators, DELETE_ALL_LIMIT_ARG};
use super::{checks, clock};
use crate::error::Error;
use crate::layout::{quote, render_import, render_index_query, Expr, QueryTail, RangeStep};

/// Indentation of a handler's body in `lib.ts`.
const BODY: usize = 4;

#[derive(Debug, Default, Serialize)]
pub struct LibFile {
    pub imports: Vec<String>,
    pub uses_matches_filters: bool,
    pub patch_helpers: Vec<PatchHelper>,
    pub unique_assertions: Vec<UniqueAssertion>,
    pub functions: Vec<ComponentFunction>,
}

/// `<table>Patch(update)`: the patch an update request makes.
#[derive(Debug, Serialize)]
pub struct PatchHelper {
    pub function: String,
    pub table_type: String,
    pub update_type: String,
    /// The `unset` type, when the table has unsettable fields.
    pub unset_type: Option<String>,
    pub unset_field: String,
    pub table_wire: String,
    /// The table's server-time rules (`clock.ts`), when it has time fields.
    pub clock: Option<String>,
}

/// `assert<Table>UniqueBy<Index>(ctx, doc)`: refuses a document whose key is taken.
#[derive(Debug, Serialize)]
pub struct UniqueAssertion {
    pub function: String,
    /// `async function <name>(ctx: MutationCtx, doc: <Table>)`, laid out.
    pub signature: String,
    pub index_literal: String,
    pub table_type: String,
    pub table_wire: String,
    pub index: String,
    /// Optional key fields: a document without one of them is not indexed under a key.
    pub optional_fields: Vec<String>,
    /// Laid out at indent 2 after `const existing = await `.
    pub index_query: String,
    /// The key, as the error reports it.
    pub value: String,
    pub fields: String,
}

#[derive(Debug, Serialize)]
pub struct ComponentFunction {
    pub doc: String,
    pub name: String,
    /// `query` or `mutation`: action operations run as one mutation, which the public action
    /// calls, so that every operation is a single transaction.
    pub builder: &'static str,
    pub args_validator: String,
    pub returns_validator: String,
    /// Statements refusing arguments over budget or with bad numbers, laid out at the body's
    /// indentation.
    pub checks: Vec<String>,
    /// The children budget check of an update that inserts children.
    pub children_budget: Option<ChildrenBudget>,
    /// Reads the server's clock (once): the function writes, or bounds by `now`.
    pub uses_now: bool,
    /// Statements applying the server's clock to the time arguments, laid out.
    pub clock_args: Vec<String>,
    /// The call's budget (what it reads, writes and returns), for every function that reads
    /// or writes more than one document.
    pub budget: Option<BudgetView>,
    pub insert: Option<InsertView>,
    pub get_each: Option<GetEachView>,
    pub update_each: Option<UpdateEachView>,
    pub update_range: Option<UpdateRangeView>,
    pub delete_one: Option<DeleteOneView>,
    pub delete_all: Option<DeleteAllView>,
}

#[derive(Debug, Serialize)]
pub struct ChildrenBudget {
    pub each: String,
    pub from: String,
    pub call: String,
}

/// `new Budget(<unit>, <key>)`.
#[derive(Debug, Serialize)]
pub struct BudgetView {
    /// What `fits` counts, as a string literal (`'executions'`, `'documents'`).
    pub unit: String,
    /// The field naming a document in a refusal, as a string literal.
    pub key: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct InsertView {
    pub each: String,
    pub table_wire: String,
    pub assertions: Vec<String>,
    pub clock: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct GetEachView {
    pub each: String,
    pub first: bool,
    /// Reads every match (`!first`).
    pub collects: bool,
    pub index_query: String,
    /// `request.filters`, when requests carry filters.
    pub filters: Option<String>,
    pub results_type: String,
}

#[derive(Debug, Serialize)]
pub struct UpdateEachView {
    pub each: String,
    pub first: bool,
    pub collects: bool,
    pub index_query: String,
    pub filters: Option<String>,
    pub patch_helper: String,
    pub update: String,
    /// The patch helper takes the server's clock.
    pub clock: bool,
    /// `Doc<'table'>`: the documents read before they are patched.
    pub doc_type: String,
    pub children: Option<ChildrenView>,
}

#[derive(Debug, Serialize)]
pub struct ChildrenView {
    pub from: String,
    pub parent_link: String,
    pub table_wire: String,
    pub assertions: Vec<String>,
    pub clock: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UpdateRangeView {
    pub index_query: String,
    pub patch_helper: String,
    pub update: String,
    pub table_type: String,
    pub add: Vec<AddView>,
    pub has_add: bool,
    /// The table's server-time rules, when it has time fields.
    pub clock: Option<String>,
    pub limit: String,
    pub doc_type: String,
    pub returns_documents: bool,
    pub results_type: String,
    #[serde(skip)]
    pub decrement_parent: Option<DecrementParentView>,
    /// The `then` step, rendered from its own template (empty without one).
    pub then_step: String,
}

#[derive(Debug, Serialize)]
pub struct AddView {
    pub target: String,
    pub arg: String,
    pub document_field: String,
}

/// The one-off step after `updateAndDecrementParentACCByIsFinishedAndCloseStatus`'s patch.
#[derive(Debug, Serialize)]
pub struct DecrementParentView {
    pub parent_execution_id: String,
    pub is_finalize_of_parent: String,
    pub is_only_child_of_parent: String,
    pub active_children_count: String,
    /// Laid out at indent 6 after `const parent = await `.
    pub index_query: String,
    /// Fields every update sets (`updatedAt`): the parent changes at the same time.
    pub required_updates: Vec<String>,
    pub table_type: String,
    pub clock: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeleteOneView {
    pub index_query: String,
}

#[derive(Debug, Serialize)]
pub struct DeleteAllView {
    pub table_wire: String,
    pub limit_arg: String,
}

/// `limits.ts`.
#[derive(Debug, Default, Serialize)]
pub struct LimitsFile {
    pub constants: Vec<LimitConstant>,
    pub costs: Vec<CostConstant>,
}

#[derive(Debug, Serialize)]
pub struct LimitConstant {
    pub doc: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct CostConstant {
    pub doc: String,
    pub name: String,
    pub entries: Vec<LimitConstant>,
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
    for operation in &component.operations {
        let limits = operation_limits(operation);
        if let (Some(max), Some(each)) = (limits.max_items, each_arg(&operation.access)) {
            file.constants.push(LimitConstant {
                doc: js_doc(
                    &format!(
                        "`{}`: at most this many `{each}` per call (Convex's transaction limits).",
                        operation.name
                    ),
                    0,
                ),
                name: max_items_constant(operation),
                value: max.to_string(),
            });
        }
        if let Some(max) = limits.max_limit {
            file.constants.push(LimitConstant {
                doc: js_doc(
                    &format!(
                        "`{}`: the largest `limit` one call accepts (Convex's transaction limits).",
                        operation.name
                    ),
                    0,
                ),
                name: max_limit_constant(operation),
                value: max.to_string(),
            });
        }
        if inserts_children(operation) {
            let entry = |name: &str, value: u32| LimitConstant {
                doc: String::new(),
                name: name.to_owned(),
                value: value.to_string(),
            };
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
                    entry("readsPerItem", limits.reads_per_item),
                    entry("writesPerItem", limits.writes_per_item),
                    entry("readsPerChild", limits.reads_per_child),
                    entry("writesPerChild", limits.writes_per_child),
                ],
            });
        }
    }
    let budget = |name: &str, value: String, doc: &str| LimitConstant {
        doc: js_doc(doc, 0),
        name: name.to_owned(),
        value,
    };
    file.constants.extend([
        budget(
            "QUERY_BUDGET",
            QUERY_BUDGET.to_string(),
            "Index lookups one call may make (a little under Convex's 4,096).",
        ),
        budget(
            "DOCUMENT_READ_BUDGET",
            DOCUMENT_READ_BUDGET.to_string(),
            "Documents one call may read (a little under Convex's 32,000); a patch reads its \
             document again.",
        ),
        budget(
            "WRITE_BUDGET",
            WRITE_BUDGET.to_string(),
            "Documents one call may write (a little under Convex's 16,000).",
        ),
        budget(
            "MAX_ARRAY_LEN",
            MAX_ARRAY_LEN.to_string(),
            "Elements of one array argument (Convex's limit).",
        ),
        budget(
            "DOCUMENT_BYTES_MAX",
            bytes(DOCUMENT_BYTES_MAX),
            "Convex's limit on one document, as Convex sizes it (`getConvexSize`, system fields \
             included): a larger one is never written.",
        ),
        budget(
            "SYSTEM_FIELDS_BYTES_MAX",
            bytes(SYSTEM_FIELDS_BYTES_MAX),
            "The most `_id` and `_creationTime` add to a document's size (a document to insert \
             has none yet).",
        ),
        budget(
            "READ_BYTES_BUDGET",
            bytes(READ_BYTES_BUDGET),
            "Bytes one call may read (Convex allows 16 MiB; a document is counted once read, so \
             one more of the largest size must still fit).",
        ),
        budget(
            "WRITE_BYTES_BUDGET",
            bytes(WRITE_BYTES_BUDGET),
            "Bytes one call may write (Convex allows 16 MiB).",
        ),
        budget(
            "RETURN_BYTES_BUDGET",
            bytes(RETURN_BYTES_BUDGET),
            "Bytes one call may return (Convex allows 16 MiB).",
        ),
    ]);
    file
}

/// A byte count as the reader thinks of it: `15 * 1024 * 1024`.
fn bytes(value: u32) -> String {
    const MIB: u32 = 1024 * 1024;
    if value == MIB {
        "1024 * 1024".to_owned()
    } else if value > MIB && value.is_multiple_of(MIB) {
        format!("{} * 1024 * 1024", value / MIB)
    } else {
        value.to_string()
    }
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

pub fn build_lib(component: &Component) -> Result<LibFile, Error> {
    let types = Types::new(component);
    let mut file = LibFile::default();
    let mut validator_imports: Vec<String> = Vec::new();
    let mut type_imports: Vec<String> = Vec::new();
    let mut limit_imports: Vec<String> = Vec::new();
    let mut budget_imports: Vec<String> = Vec::new();
    let mut check_imports: Vec<String> = Vec::new();
    let mut clock_imports: Vec<String> = Vec::new();
    let mut uses_doc_type = false;
    let mut unique: Vec<(String, String)> = Vec::new();
    let mut patch_tables: Vec<String> = Vec::new();
    let mut uses_mutation_ctx = false;
    let mut builders: Vec<&'static str> = Vec::new();

    for operation in &component.operations {
        let table = types.table(&operation.table)?;
        let table_clock = clock::table_constant(table);
        let limits = operation_limits(operation);
        let names = operation_validators(operation);
        validator_imports.push(names.component_args.clone());
        validator_imports.push(names.component_returns.clone());
        let builder = match operation.kind {
            FunctionKind::Query => "query",
            FunctionKind::Mutation | FunctionKind::Action => "mutation",
        };
        if !builders.contains(&builder) {
            builders.push(builder);
        }
        let mut function = ComponentFunction {
            doc: js_doc(&operation.doc, 0),
            name: operation.name.clone(),
            builder,
            args_validator: names.component_args.clone(),
            returns_validator: names.component_returns.clone(),
            checks: Vec::new(),
            children_budget: None,
            uses_now: false,
            clock_args: Vec::new(),
            budget: None,
            insert: None,
            get_each: None,
            update_each: None,
            update_range: None,
            delete_one: None,
            delete_all: None,
        };
        let budget = |unit: &str| {
            Some(BudgetView {
                unit: quote(unit),
                key: document_key(table).map(|key| quote(&key)),
            })
        };
        if let (Some(_), Some(each)) = (limits.max_items, each_arg(&operation.access)) {
            let constant = max_items_constant(operation);
            function.checks.push(statement(Expr::call(
                "checkMaxItems",
                vec![
                    Expr::string(&each),
                    Expr::atom(format!("args.{each}.length")),
                    Expr::atom(constant.clone()),
                ],
            )));
            limit_imports.push(constant);
            push_unique(&mut budget_imports, "checkMaxItems".into());
        }
        let limit_arg = match &operation.access {
            Access::UpdateRange { limit, .. } => Some(limit.wire.clone()),
            _ => None,
        };
        if let (Some(limit), Some(_)) = (&limit_arg, limits.max_limit) {
            let constant = max_limit_constant(operation);
            function.checks.push(statement(Expr::call(
                "checkLimit",
                vec![
                    Expr::string(limit),
                    Expr::atom(format!("args.{limit}")),
                    Expr::atom(constant.clone()),
                ],
            )));
            limit_imports.push(constant);
            push_unique(&mut budget_imports, "checkLimit".into());
        }
        // Every number in the arguments (documents, updates, children, bounds) is what its
        // declared type says, before anything else happens.
        if checks::args_have_numbers(component, operation)? {
            let constant = checks::args_constant(operation);
            function.checks.push(statement(Expr::call(
                "checkNumbers",
                vec![Expr::atom("args"), Expr::atom(constant.clone())],
            )));
            check_imports.push(constant);
            push_unique(&mut check_imports, "checkNumbers".into());
        }
        let writes = !matches!(
            operation.access,
            Access::GetEach { .. } | Access::DeleteOne { .. } | Access::DeleteAll
        );
        let bounds_by_now = match &operation.access {
            Access::UpdateRange {
                eq, lower, upper, ..
            } => eq
                .iter()
                .chain(lower.iter())
                .chain(upper.iter())
                .any(|bound| matches!(bound.value, BoundValue::Now)),
            _ => false,
        };
        if let Some(constant) = clock::args_constant(operation) {
            function.clock_args.push(statement(Expr::call(
                "applyServerTime",
                vec![
                    Expr::atom("args"),
                    Expr::atom(constant.clone()),
                    Expr::atom("now"),
                ],
            )));
            clock_imports.push(constant);
        }
        function.uses_now = writes || bounds_by_now || !function.clock_args.is_empty();
        let clocks_writes = writes && table_clock.is_some();
        if clocks_writes || !function.clock_args.is_empty() {
            push_unique(&mut clock_imports, "applyServerTime".into());
        }
        if let (true, Some(constant)) = (clocks_writes, &table_clock) {
            push_unique(&mut clock_imports, constant.clone());
        }

        match &operation.access {
            Access::Insert {
                each,
                unique_indexes,
            } => {
                uses_mutation_ctx = true;
                let assertions = assertion_calls(table, unique_indexes, &mut unique);
                type_imports.push(table.rust_name.clone());
                function.budget = budget(&each.wire);
                function.insert = Some(InsertView {
                    each: each.wire.clone(),
                    table_wire: table.wire_name.clone(),
                    assertions,
                    clock: table_clock.clone(),
                });
            }
            Access::GetEach {
                each,
                index,
                eq,
                filters,
                first,
            } => {
                let indent = BODY + 2;
                let results_type = names.component_returns_type.clone();
                type_imports.push(results_type.clone());
                if filters.is_some() {
                    file.uses_matches_filters = true;
                }
                function.budget = budget(&each.arg.wire);
                function.get_each = Some(GetEachView {
                    each: each.arg.wire.clone(),
                    first: *first,
                    collects: !*first,
                    index_query: lookup(table, index, eq, "request", *first, indent),
                    filters: filters
                        .as_ref()
                        .map(|name| format!("request.{}", name.wire)),
                    results_type,
                });
            }
            Access::UpdateEach {
                each,
                index,
                eq,
                filters,
                update,
                first,
                insert_children,
            } => {
                uses_mutation_ctx = true;
                let indent = BODY + 2;
                if filters.is_some() {
                    file.uses_matches_filters = true;
                }
                if !first {
                    uses_doc_type = true;
                }
                push_unique(&mut patch_tables, table.rust_name.clone());
                function.budget = budget(&each.arg.wire);
                let children = match insert_children {
                    Some(children) => {
                        let costs = costs_constant(operation);
                        limit_imports.push(costs.clone());
                        push_unique(&mut budget_imports, "checkChildrenBudget".into());
                        function.children_budget = Some(ChildrenBudget {
                            each: each.arg.wire.clone(),
                            from: children.from.wire.clone(),
                            call: statement(Expr::call(
                                "checkChildrenBudget",
                                vec![Expr::atom("children"), Expr::atom(costs)],
                            )),
                        });
                        Some(ChildrenView {
                            from: children.from.wire.clone(),
                            parent_link: children.parent_link.wire.clone(),
                            table_wire: table.wire_name.clone(),
                            assertions: assertion_calls(
                                table,
                                &children.unique_indexes,
                                &mut unique,
                            ),
                            clock: table_clock.clone(),
                        })
                    }
                    None => None,
                };
                function.update_each = Some(UpdateEachView {
                    each: each.arg.wire.clone(),
                    first: *first,
                    collects: !*first,
                    index_query: lookup(table, index, eq, "request", *first, indent),
                    filters: filters
                        .as_ref()
                        .map(|name| format!("request.{}", name.wire)),
                    patch_helper: patch_helper_name(table),
                    update: format!("request.{}", update.wire),
                    clock: table_clock.is_some(),
                    doc_type: doc_type(table),
                    children,
                });
            }
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
                uses_mutation_ctx = true;
                uses_doc_type = true;
                push_unique(&mut patch_tables, table.rust_name.clone());
                push_unique(&mut budget_imports, "upTo".into());
                type_imports.push(table.rust_name.clone());
                function.budget = budget("documents");
                let index_query = render_index_query(
                    &table.wire_name,
                    index,
                    &range_steps(eq, lower.as_ref(), upper.as_ref(), "args"),
                    &QueryTail(vec!["order('asc')".into()]),
                    BODY,
                );
                let returns_documents = *returns == RangeReturns::Documents;
                let results_type = names.component_returns_type.clone();
                if returns_documents {
                    type_imports.push(results_type.clone());
                }
                let decrement_parent = match then {
                    Some(step) => Some(decrement_parent(
                        table,
                        step,
                        &update.wire,
                        table_clock.clone(),
                    )?),
                    None => None,
                };
                function.update_range = Some(UpdateRangeView {
                    has_add: !add.is_empty(),
                    then_step: String::new(),
                    index_query,
                    patch_helper: patch_helper_name(table),
                    update: format!("args.{}", update.wire),
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
                    doc_type: doc_type(table),
                    returns_documents,
                    results_type,
                    decrement_parent,
                });
            }
            Access::DeleteOne { index, eq } => {
                uses_mutation_ctx = true;
                function.delete_one = Some(DeleteOneView {
                    index_query: lookup(table, index, eq, "args", true, BODY),
                });
            }
            Access::DeleteAll => {
                uses_mutation_ctx = true;
                let constant = max_limit_constant(operation);
                limit_imports.push(constant.clone());
                push_unique(&mut budget_imports, "checkLimit".into());
                push_unique(&mut budget_imports, "upTo".into());
                function.checks.push(statement(Expr::call(
                    "checkLimit",
                    vec![
                        Expr::string(DELETE_ALL_LIMIT_ARG),
                        Expr::atom(format!("args.{DELETE_ALL_LIMIT_ARG}")),
                        Expr::atom(constant),
                    ],
                )));
                function.budget = budget("documents");
                function.delete_all = Some(DeleteAllView {
                    table_wire: table.wire_name.clone(),
                    limit_arg: DELETE_ALL_LIMIT_ARG.into(),
                });
            }
        }
        if function.budget.is_some() {
            push_unique(&mut budget_imports, "Budget".into());
        }
        file.functions.push(function);
    }

    for rust_name in &patch_tables {
        let table = types.table(rust_name)?;
        let has_unset = table
            .fields
            .iter()
            .any(|field| field.update == UpdateMode::Unsettable);
        type_imports.push(table.rust_name.clone());
        type_imports.push(table.update_type.clone());
        if has_unset {
            type_imports.push(table.unset_type.clone());
        }
        let clock = clock::table_constant(table);
        if let Some(constant) = &clock {
            push_unique(&mut clock_imports, "applyServerTime".into());
            push_unique(&mut clock_imports, constant.clone());
        }
        file.patch_helpers.push(PatchHelper {
            function: patch_helper_name(table),
            table_type: table.rust_name.clone(),
            update_type: table.update_type.clone(),
            unset_type: has_unset.then(|| table.unset_type.clone()),
            unset_field: UNSET_FIELD.into(),
            table_wire: table.wire_name.clone(),
            clock,
        });
    }
    for (rust_name, index_name) in &unique {
        let table = types.table(rust_name)?;
        type_imports.push(table.rust_name.clone());
        file.unique_assertions
            .push(unique_assertion(table, index_name)?);
    }

    validator_imports.sort();
    validator_imports.dedup();
    type_imports.sort();
    type_imports.dedup();
    let mut validator_specifiers = validator_imports;
    validator_specifiers.extend(type_imports.into_iter().map(|name| format!("type {name}")));
    let mut server_specifiers: Vec<String> = builders.iter().map(|b| (*b).to_owned()).collect();
    server_specifiers.sort();
    if uses_mutation_ctx {
        server_specifiers.push("type MutationCtx".into());
    }
    for list in [
        &mut limit_imports,
        &mut budget_imports,
        &mut check_imports,
        &mut clock_imports,
    ] {
        list.sort();
        list.dedup();
    }
    let mut imports = vec![render_import(
        &["ConvexError".to_owned()],
        "convex/values",
        false,
    )];
    if uses_doc_type {
        imports.push(render_import(
            &["Doc".to_owned()],
            "./_generated/dataModel",
            true,
        ));
    }
    imports.push(render_import(
        &server_specifiers,
        "./_generated/server",
        false,
    ));
    for (specifiers, module) in [
        (&budget_imports, "./budget"),
        (&check_imports, "./checks"),
        (&clock_imports, "./clock"),
        (&limit_imports, "./limits"),
    ] {
        if !specifiers.is_empty() {
            imports.push(render_import(specifiers, module, false));
        }
    }
    imports.push(render_import(&validator_specifiers, "./validators", false));
    file.imports = imports;
    Ok(file)
}

/// `Doc<'table'>`.
fn doc_type(table: &Table) -> String {
    format!("Doc<{}>", quote(&table.wire_name))
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

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// A statement laid out at the handler body's indentation.
fn statement(expr: Expr) -> String {
    expr.render(BODY, BODY, 0)
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
    format!(
        "assert{}UniqueBy{}",
        table.rust_name,
        durable_execution_storage_convex_ir::names::pascal_case(index)
    )
}

fn assertion_calls(
    table: &Table,
    unique_indexes: &[String],
    registry: &mut Vec<(String, String)>,
) -> Vec<String> {
    unique_indexes
        .iter()
        .map(|index| {
            let key = (table.rust_name.clone(), index.clone());
            if !registry.contains(&key) {
                registry.push(key);
            }
            format!("await {}(ctx, item)", assertion_name(table, index))
        })
        .collect()
}

fn unique_assertion(table: &Table, index_name: &str) -> Result<UniqueAssertion, Error> {
    let index = table
        .index(index_name)
        .ok_or_else(|| Error::Ir(format!("unknown index `{index_name}`")))?;
    let mut optional_fields = Vec::new();
    let mut steps = Vec::new();
    let mut values = Vec::new();
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
            value: format!("doc.{}", name.wire),
        });
        values.push(format!("doc.{}", name.wire));
    }
    let value = if values.len() == 1 {
        values.remove(0)
    } else {
        format!("[{}]", values.join(", "))
    };
    let function = assertion_name(table, index_name);
    let signature = Expr::call(
        format!("async function {function}"),
        vec![
            Expr::atom("ctx: MutationCtx"),
            Expr::atom(format!("doc: {}", table.rust_name)),
        ],
    )
    .render(0, 0, 2);
    Ok(UniqueAssertion {
        signature,
        index_literal: quote(index_name),
        function,
        table_type: table.rust_name.clone(),
        table_wire: table.wire_name.clone(),
        index: index_name.to_owned(),
        optional_fields,
        index_query: render_index_query(
            &table.wire_name,
            index_name,
            &steps,
            &QueryTail(vec!["first()".into()]),
            2,
        ),
        value,
        fields: index
            .fields
            .iter()
            .map(|f| f.wire.clone())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The value of a bound: a field of `source` (`request` or `args`), a literal or `now`.
fn bound_value(bound: &Bound, source: &str) -> String {
    match &bound.value {
        BoundValue::Arg { name } => format!("{source}.{}", name.wire),
        BoundValue::Literal { value } => match value {
            Literal::Integer(value) => value.to_string(),
            Literal::Bool(value) => value.to_string(),
            Literal::String(value) => quote(value),
        },
        BoundValue::Now => "now".into(),
    }
}

fn range_steps(
    eq: &[Bound],
    lower: Option<&Bound>,
    upper: Option<&Bound>,
    source: &str,
) -> Vec<RangeStep> {
    let mut steps: Vec<RangeStep> = eq
        .iter()
        .map(|bound| RangeStep {
            method: "eq",
            field: bound.field.wire.clone(),
            value: bound_value(bound, source),
        })
        .collect();
    if let Some(bound) = lower {
        steps.push(RangeStep {
            method: "gte",
            field: bound.field.wire.clone(),
            value: bound_value(bound, source),
        });
    }
    if let Some(bound) = upper {
        steps.push(RangeStep {
            method: "lt",
            field: bound.field.wire.clone(),
            value: bound_value(bound, source),
        });
    }
    steps
}

/// An index lookup: the first match, or every match in index order (streamed, so that the
/// call counts each document as it reads it).
fn lookup(
    table: &Table,
    index: &str,
    eq: &[Bound],
    source: &str,
    first: bool,
    indent: usize,
) -> String {
    let tail = if first { "first()" } else { "order('asc')" };
    render_index_query(
        &table.wire_name,
        index,
        &range_steps(eq, None, None, source),
        &QueryTail(vec![tail.into()]),
        indent,
    )
}

fn decrement_parent(
    table: &Table,
    step: &AfterUpdate,
    update_arg: &str,
    clock: Option<String>,
) -> Result<DecrementParentView, Error> {
    let AfterUpdate::DecrementReferenced {
        via: parent_execution_id,
        index: parent_index,
        index_field: parent_index_field,
        counter: active_children_count,
        unless,
        reset_if,
    } = step;
    // The step's template always tests both flags; without them it needs its own partial.
    let (Some(is_finalize_of_parent), Some(is_only_child_of_parent)) = (unless, reset_if) else {
        return Err(Error::Declaration(format!(
            "table `{}`: `then(decrement_referenced(...))` without `unless` and `reset_if` is \
             not supported by the generator yet (the step's template needs both)",
            table.rust_name
        )));
    };
    let steps = vec![RangeStep {
        method: "eq",
        field: parent_index_field.wire.clone(),
        value: parent_execution_id.wire.clone(),
    }];
    let required_updates = table
        .fields
        .iter()
        .filter(|field| field.update == UpdateMode::Required)
        .map(|field| format!("{}: args.{update_arg}.{}", field.name.wire, field.name.wire))
        .collect();
    Ok(DecrementParentView {
        parent_execution_id: parent_execution_id.wire.clone(),
        is_finalize_of_parent: is_finalize_of_parent.wire.clone(),
        is_only_child_of_parent: is_only_child_of_parent.wire.clone(),
        active_children_count: active_children_count.wire.clone(),
        index_query: render_index_query(
            &table.wire_name,
            parent_index,
            &steps,
            &QueryTail(vec!["first()".into()]),
            BODY + 4,
        ),
        required_updates,
        table_type: table.rust_name.clone(),
        clock,
    })
}
