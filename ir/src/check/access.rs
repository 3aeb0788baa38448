//! Access patterns: what their entries name fits where it stands, and the index serves the
//! query.

use crate::errors::Errors;
use crate::model::{
    Access, AfterUpdate, Bound, BoundValue, Component, Field, Index, Literal, Operation, Table,
    TypeRef,
};
use crate::spans::Spans;

/// `<Args>/#access/<rest>`.
fn path(operation: &Operation, rest: &str) -> String {
    format!("{}/#access/{rest}", operation.args_type)
}

/// The operations with their table (the parser resolved it) and the fields an `each`
/// request has (the arguments without `each`).
fn operations(component: &Component) -> impl Iterator<Item = (&Operation, &Table, &[Field])> {
    component.operations.iter().filter_map(|operation| {
        let table = component.table(&operation.table)?;
        let scope = match &operation.access {
            Access::GetEach { each, .. } | Access::UpdateEach { each, .. } => {
                &component.object(&each.element)?.fields
            }
            _ => &operation.args,
        };
        Some((operation, table, scope.as_slice()))
    })
}

fn field<'f>(fields: &'f [Field], name: &crate::model::Name) -> Option<&'f Field> {
    fields.iter().find(|field| field.name == *name)
}

/// Each entry naming an argument (or a request's field) names one of the type it needs:
/// `each` of `insert` a `Vec<Table>`, `filters` an `Option<TableFilters>`, `update` a
/// `TableUpdate`, `limit` an integer, `insert_children` a `Vec<Table>`, `parent_link` a table
/// field of type `Option<Id<Table>>`.
pub fn access_argument_types(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (operation, table, scope) in operations(component) {
        let name = &table.rust_name;
        let documents = TypeRef::Array {
            element: Box::new(TypeRef::TableFields {
                table: name.clone(),
            }),
        };
        let mut expect =
            |key: &str, fields: &[Field], arg, fits: &dyn Fn(&Field) -> bool, shown: String| {
                if let Some(field) = field(fields, arg) {
                    if !fits(field) {
                        errors.at(
                            spans.at(&path(operation, &format!("{key}/value"))),
                            format!("`{key}` takes {shown}"),
                        );
                    }
                }
            };
        let is_documents = |field: &Field| field.ty == documents && !field.optional;
        let is_filters = |field: &Field| {
            field.ty
                == TypeRef::Filters {
                    table: name.clone(),
                }
        };
        let is_update = |field: &Field| {
            field.ty
                == TypeRef::Update {
                    table: name.clone(),
                }
                && !field.optional
        };
        match &operation.access {
            Access::Insert { each, .. } => {
                expect(
                    "each",
                    &operation.args,
                    each,
                    &is_documents,
                    format!("a field of type `Vec<{name}>`"),
                );
            }
            Access::GetEach { filters, .. } => {
                if let Some(filters) = filters {
                    let shown = format!("a field of type `Option<{}>`", table.filters_type);
                    expect("filters", scope, filters, &is_filters, shown);
                }
            }
            Access::UpdateEach {
                filters,
                update,
                insert_children,
                ..
            } => {
                if let Some(filters) = filters {
                    let shown = format!("a field of type `Option<{}>`", table.filters_type);
                    expect("filters", scope, filters, &is_filters, shown);
                }
                expect(
                    "update",
                    scope,
                    update,
                    &is_update,
                    format!("a field of type `{}`", table.update_type),
                );
                if let Some(children) = insert_children {
                    expect(
                        "insert_children",
                        scope,
                        &children.from,
                        &is_documents,
                        format!("a field of type `Vec<{name}>`"),
                    );
                    let is_link = |field: &Field| {
                        field.ty
                            == TypeRef::Id {
                                table: name.clone(),
                            }
                    };
                    let shown = format!("a table field of type `Option<Id<{name}>>`");
                    expect(
                        "parent_link",
                        &table.fields,
                        &children.parent_link,
                        &is_link,
                        shown,
                    );
                }
            }
            Access::UpdateRange { limit, update, .. } => {
                expect(
                    "update",
                    scope,
                    update,
                    &is_update,
                    format!("a field of type `{}`", table.update_type),
                );
                let is_integer =
                    |field: &Field| matches!(field.ty, TypeRef::Integer { .. }) && !field.optional;
                expect(
                    "limit",
                    scope,
                    limit,
                    &is_integer,
                    "an integer argument that is always present".to_owned(),
                );
            }
            Access::DeleteOne { .. } | Access::DeleteAll => {}
        }
    }
}

/// A bound's value fits its table field: an argument of the same type that is always present,
/// `now` for a number in a range (`gte`/`lt`), a literal of the field's type (a union's variant
/// for a union).
pub fn bound_values(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (operation, table, scope) in operations(component) {
        for (key, bound) in operation.access.bounds() {
            let Some(field) = table.field(&bound.field.rust) else {
                continue;
            };
            // `eq` of the `*_each` patterns binds request fields; ranges bind arguments.
            let scope = if key == "eq" { scope } else { &operation.args };
            let rust = &field.name.rust;
            let span = spans.at(&path(operation, &format!("{key}/{rust}/value")));
            match &bound.value {
                BoundValue::Now if key == "eq" => errors.at(
                    span,
                    format!(
                        "`now` bounds a range (`gte`/`lt`), not an equality: `eq({rust} = now)` \
                         would match only what was written in this very millisecond"
                    ),
                ),
                BoundValue::Now => {
                    if !matches!(field.ty, TypeRef::Integer { .. } | TypeRef::Float64) {
                        errors.at(
                            span,
                            format!(
                                "`now` is a time in epoch milliseconds; `{rust}` is not a number"
                            ),
                        );
                    }
                }
                BoundValue::Arg { name } => {
                    if let Some(arg) = self::field(scope, name) {
                        if arg.ty != field.ty || arg.optional {
                            errors.at(
                                span,
                                format!(
                                    "`{}` cannot bound `{rust}`: the types differ (or the argument is optional)",
                                    name.rust
                                ),
                            );
                        }
                    }
                }
                BoundValue::Literal { value } => {
                    if let Some(problem) = literal_problem(component, value, field) {
                        errors.at(span, problem);
                    }
                }
            }
        }
    }
}

fn literal_problem(component: &Component, literal: &Literal, field: &Field) -> Option<String> {
    let fits = match (literal, &field.ty) {
        (Literal::Integer(_), TypeRef::Integer { .. } | TypeRef::Float64)
        | (Literal::Bool(_), TypeRef::Bool)
        | (Literal::String(_), TypeRef::String) => true,
        (Literal::String(text), TypeRef::Union { name }) => {
            let is_variant = component.union(name).is_some_and(|union| {
                union
                    .variants
                    .iter()
                    .any(|variant| variant.name.wire == *text)
            });
            if !is_variant {
                return Some(format!("`{text}` is not a variant of `{name}`"));
            }
            true
        }
        _ => false,
    };
    (!fits).then(|| format!("this value does not fit field `{}`", field.name.rust))
}

/// Equality bounds cover a prefix of the index's fields, and a range is on the field that
/// follows: otherwise Convex cannot serve the query from the index.
pub fn index_serves_bounds(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (operation, table, _) in operations(component) {
        let (index, eq, range) = match &operation.access {
            Access::GetEach { index, eq, .. }
            | Access::UpdateEach { index, eq, .. }
            | Access::DeleteOne { index, eq } => (index, eq, None),
            Access::UpdateRange {
                index,
                eq,
                lower,
                upper,
                ..
            } => (index, eq, Some((lower, upper))),
            Access::Insert { .. } | Access::DeleteAll => continue,
        };
        let Some(index) = table.index(index) else {
            continue;
        };
        if let Some(problem) = index_prefix_problem(index, eq) {
            errors.at(spans.at(&path(operation, "eq")), problem);
        } else if let Some((lower, upper)) = range {
            let key = if upper.is_some() { "lt" } else { "gte" };
            if let Some(problem) = range_problem(index, eq, lower, upper) {
                errors.at(spans.at(&path(operation, key)), problem);
            }
        }
    }
}

fn index_fields(index: &Index) -> Vec<&str> {
    index
        .fields
        .iter()
        .map(|field| field.rust.as_str())
        .collect()
}

/// Why `eq` does not cover a prefix of the index's fields, if it does not.
fn index_prefix_problem(index: &Index, eq: &[Bound]) -> Option<String> {
    let fields = index_fields(index);
    let shown = fields.join(", ");
    for (position, field) in fields.iter().enumerate().take(eq.len()) {
        if !eq.iter().any(|bound| bound.field.rust == *field) {
            let stray = eq
                .iter()
                .find(|bound| {
                    fields
                        .iter()
                        .position(|name| *name == bound.field.rust)
                        .is_none_or(|at| at > position)
                })
                .map_or_else(String::new, |bound| bound.field.rust.clone());
            return Some(format!(
                "equality on `{stray}` cannot be served by index `{}` (fields: {shown}): equality bounds must cover a prefix of its fields, and `{field}` comes first",
                index.name
            ));
        }
    }
    (eq.len() > fields.len()).then(|| {
        format!(
            "more equality bounds than index `{}` has fields ({shown})",
            index.name
        )
    })
}

/// Why a range after `eq` is not on the index's next field, if it is not.
fn range_problem(
    index: &Index,
    eq: &[Bound],
    lower: &Option<Bound>,
    upper: &Option<Bound>,
) -> Option<String> {
    let fields = index_fields(index);
    let next = fields.get(eq.len()).copied();
    let bound = [lower, upper]
        .into_iter()
        .flatten()
        .find(|bound| Some(bound.field.rust.as_str()) != next)?;
    let after = if eq.is_empty() {
        "the first field".to_owned()
    } else {
        format!("after equality on {}", fields[..eq.len()].join(", "))
    };
    Some(format!(
        "a range on `{}` cannot be served by index `{}` (fields: {}): {after}, the range must be on `{}`",
        bound.field.rust,
        index.name,
        fields.join(", "),
        next.unwrap_or("(no field left)")
    ))
}

/// A range below a bound (`lt`) on an optional field also matches the documents without the
/// field, which Convex orders first: it needs a lower bound (`gte`) too.
pub fn optional_range_bounded_below(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (operation, table, _) in operations(component) {
        let Access::UpdateRange {
            lower: None,
            upper: Some(upper),
            ..
        } = &operation.access
        else {
            continue;
        };
        let Some(field) = table.field(&upper.field.rust) else {
            continue;
        };
        if field.optional {
            let rust = &field.name.rust;
            errors.at(
                spans.at(&path(operation, "lt")),
                format!(
                    "`{rust}` is optional and Convex orders documents without it first, so \
                     `lt({rust} = ...)` alone also matches them: bound the range below too, \
                     e.g. `gte({rust} = 0)`"
                ),
            );
        }
    }
}

/// Children have one parent: `insert_children` patches the first match only (`first`).
pub fn insert_children_needs_first(component: &Component, spans: &Spans, errors: &mut Errors) {
    for operation in &component.operations {
        if let Access::UpdateEach {
            insert_children: Some(_),
            first: false,
            ..
        } = &operation.access
        {
            errors.at(
                spans.at(&format!("{}/#access", operation.args_type)),
                "`insert_children` needs `first`: children have one parent",
            );
        }
    }
}

/// `add(target = (argument, document_field))` sums an integer argument and an integer field
/// that is always present into an integer field.
pub fn add_is_integer(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (operation, table, _) in operations(component) {
        let Access::UpdateRange { add, .. } = &operation.access else {
            continue;
        };
        let is_integer = |field: Option<&Field>, may_be_absent: bool| {
            field.is_some_and(|field| {
                matches!(field.ty, TypeRef::Integer { .. }) && (may_be_absent || !field.optional)
            })
        };
        for (i, add) in add.iter().enumerate() {
            let fits = is_integer(table.field(&add.target.rust), true)
                && is_integer(field(&operation.args, &add.arg), false)
                && is_integer(table.field(&add.document_field.rust), false);
            if !fits {
                errors.at(
                    spans.at(&path(operation, &format!("add/{i}"))),
                    "`add` sums an integer argument and an integer field that is always present into an integer field",
                );
            }
        }
    }
}

/// `then(decrement_referenced(...))`: `index` has exactly one field, of `via`'s type; `counter`
/// is an integer field that is always present; `unless` and `reset_if` are boolean fields.
pub fn decrement_referenced(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (operation, table, _) in operations(component) {
        let Access::UpdateRange {
            then:
                Some(AfterUpdate::DecrementReferenced {
                    via,
                    index,
                    index_field,
                    counter,
                    unless,
                    reset_if,
                }),
            ..
        } = &operation.access
        else {
            continue;
        };
        let at = |key: &str| spans.at(&path(operation, &format!("then/{key}/value")));
        if let Some(index) = table.index(index) {
            if index.fields.len() != 1 {
                errors.at(
                    at("index"),
                    format!(
                        "`decrement_referenced` finds the referenced document by a single-field \
                         index; `{}` has fields: {}",
                        index.name,
                        index_fields(index).join(", ")
                    ),
                );
            }
        }
        if let (Some(via_field), Some(key_field)) =
            (table.field(&via.rust), table.field(&index_field.rust))
        {
            if via_field.ty != key_field.ty {
                errors.at(
                    at("via"),
                    format!(
                        "`via = {}` holds the key of index `{index}`, whose field `{}` is of another type",
                        via.rust, index_field.rust
                    ),
                );
            }
        }
        if let Some(field) = table.field(&counter.rust) {
            if !matches!(field.ty, TypeRef::Integer { .. }) || field.optional {
                errors.at(
                    at("counter"),
                    format!(
                        "`counter` takes an integer field that is always present; `{}` is not one",
                        counter.rust
                    ),
                );
            }
        }
        for (key, name) in [("unless", unless), ("reset_if", reset_if)] {
            let Some(field) = name.as_ref().and_then(|name| table.field(&name.rust)) else {
                continue;
            };
            if field.ty != TypeRef::Bool {
                errors.at(
                    at(key),
                    format!(
                        "`{key}` takes a boolean field (`bool` or `Option<bool>`); `{}` is not one",
                        field.name.rust
                    ),
                );
            }
        }
    }
}
