//! The fields of tables, objects and operation arguments, and their attributes.

use crate::errors::Errors;
use crate::model::{Component, Field, IntegerKind, ServerTime, TypeRef, UpdateMode};
use crate::names;
use crate::spans::Spans;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Table,
    Object,
    Operation,
}

/// Every struct with fields: its Rust name, what it is, its fields.
fn structs(component: &Component) -> Vec<(&str, Owner, &[Field])> {
    let tables = component.tables.iter().map(|table| {
        (
            table.rust_name.as_str(),
            Owner::Table,
            table.fields.as_slice(),
        )
    });
    let objects = component.objects.iter().map(|object| {
        (
            object.rust_name.as_str(),
            Owner::Object,
            object.fields.as_slice(),
        )
    });
    let operations = component.operations.iter().map(|operation| {
        (
            operation.args_type.as_str(),
            Owner::Operation,
            operation.args.as_slice(),
        )
    });
    tables.chain(objects).chain(operations).collect()
}

/// Wire names are Convex names, distinct within their struct. At the `rename` string when
/// renamed (the name at fault is that string), otherwise at the field's name.
pub fn field_names(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (item, owner, fields) in structs(component) {
        let what = match owner {
            Owner::Operation => "argument name",
            Owner::Table | Owner::Object => "field name",
        };
        for (i, field) in fields.iter().enumerate() {
            let span = spans.at(&format!("{item}/{}/rename", field.name.rust));
            if let Some(problem) = names::convex_name_problem(&field.name.wire) {
                errors.at(span, format!("{what}: {problem}"));
            }
            if fields[..i]
                .iter()
                .any(|other| other.name.wire == field.name.wire)
            {
                errors.at(
                    span,
                    format!("duplicate field name `{}` on the wire", field.name.wire),
                );
            }
        }
    }
}

/// Types that cannot stand where data is stored or sent: `()` and `Doc<T>` are return types
/// only; a table does not store another table's documents or requests; integers below the
/// field level would travel unchecked.
pub fn stored_field_types(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (item, owner, fields) in structs(component) {
        for field in fields {
            if let Some(problem) = stored_type_problem(&field.ty, owner) {
                errors.at(
                    spans.at(&format!("{item}/{}/type", field.name.rust)),
                    problem,
                );
            }
        }
    }
}

fn stored_type_problem(ty: &TypeRef, owner: Owner) -> Option<String> {
    match ty {
        TypeRef::Null => Some("`()` is only a return type".to_owned()),
        TypeRef::Document { .. } => {
            Some("`Doc<T>` is only a return type; store a table's fields or an `Id<T>`".to_owned())
        }
        TypeRef::TableFields { table }
        | TypeRef::Update { table }
        | TypeRef::Unset { table }
        | TypeRef::Filters { table }
            if owner == Owner::Table =>
        {
            Some(format!(
                "a table cannot store `{table}`'s documents or requests; use a `#[convex(object)]` struct"
            ))
        }
        TypeRef::Array { element } | TypeRef::Nullable { inner: element } => {
            match element.as_ref() {
                TypeRef::Integer { .. } => Some(
                    "integers inside `Vec`/`Option` below the field level are not supported; use `f64`, or an object with an integer field".to_owned(),
                ),
                element => stored_type_problem(element, owner),
            }
        }
        _ => None,
    }
}

/// `update(unset)` needs an optional field; `update(required)` one that is always present.
pub fn update_modes(component: &Component, spans: &Spans, errors: &mut Errors) {
    for table in &component.tables {
        for field in &table.fields {
            let rust = &field.name.rust;
            let problem = match field.update {
                UpdateMode::Unsettable if !field.optional => format!(
                    "`update(unset)` needs an optional field: `{rust}: Option<...>`"
                ),
                UpdateMode::Required if field.optional => format!(
                    "`update(required)` needs a field that is always present, not `Option`: `{rust}`"
                ),
                _ => continue,
            };
            errors.at(
                spans.at(&format!("{}/{rust}/update", table.rust_name)),
                problem,
            );
        }
    }
}

/// `server_time` applies to `u64` times; stored fields take `now`, `at_least_now` or
/// `expiry`, arguments `now`, `at_least_now` or `at_most_now`.
pub fn server_time_fields(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (item, owner, fields) in structs(component) {
        for field in fields {
            let Some(rule) = field.server_time else {
                continue;
            };
            let rust = &field.name.rust;
            let span = spans.at(&format!("{item}/{rust}/server_time"));
            let is_time = field.ty
                == (TypeRef::Integer {
                    rust: IntegerKind::U64,
                });
            if !is_time {
                errors.at(
                    span,
                    format!(
                        "`server_time` applies to times in epoch milliseconds: `{rust}` must be \
                         `u64` or `Option<u64>`"
                    ),
                );
            }
            let problem = match (owner, rule) {
                (Owner::Table, ServerTime::AtMostNow) => Some(
                    "`at_most_now` lowers an argument bound (e.g. `start_at_less_than`) to the \
                     server's time; a table field takes `now`, `at_least_now` or `expiry`",
                ),
                (Owner::Operation, ServerTime::Expiry) => Some(
                    "`expiry` applies to stored fields; an argument takes `now`, `at_least_now` \
                     or `at_most_now`",
                ),
                _ => None,
            };
            if let Some(problem) = problem {
                errors.at(span, problem);
            }
        }
    }
}

/// `min`/`max` bound integer fields, within the type's wire range, `min <= max`.
pub fn integer_bounds(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (item, _, fields) in structs(component) {
        for field in fields {
            let rust = &field.name.rust;
            let span = |key: &str| spans.at(&format!("{item}/{rust}/{key}"));
            let declared = [("min", field.min), ("max", field.max)];
            let TypeRef::Integer { rust: kind } = field.ty else {
                for (key, _) in declared.iter().filter(|(_, value)| value.is_some()) {
                    errors.at(
                        span(key),
                        format!("`min` and `max` bound integer fields; `{rust}` is not an integer"),
                    );
                }
                continue;
            };
            let (low, high) = kind.wire_range();
            let mut in_range = true;
            for (key, value) in declared {
                if let Some(value) = value.filter(|value| !(low..=high).contains(value)) {
                    in_range = false;
                    errors.at(
                        span(key),
                        format!(
                            "{value} is outside the values of `{}` on the wire ({low}..={high})",
                            kind.rust_name()
                        ),
                    );
                }
            }
            if let (Some(min), Some(max), true) = (field.min, field.max, in_range) {
                if min > max {
                    errors.at(span("max"), format!("`max = {max}` is below `min = {min}`"));
                }
            }
        }
    }
}

/// A table's filters compare each filter field with `!==` (in the generated TypeScript), which
/// is right for scalars only: an object or an array is never `===` another. At the `filter`
/// attribute of a field of another type.
pub fn filters_on_scalar_fields(component: &Component, spans: &Spans, errors: &mut Errors) {
    for table in &component.tables {
        for field in table.fields.iter().filter(|field| field.filter) {
            if let Some(kind) = non_scalar(&field.ty) {
                errors.at(
                    spans.at(&format!("{}/{}/filter", table.rust_name, field.name.rust)),
                    format!(
                        "`filter` compares with `!==`, so it takes a field of a scalar type \
                         (string, number, integer, boolean, id or union); `{}` is {kind}",
                        field.name.rust
                    ),
                );
            }
        }
    }
}

/// What a non-scalar type is, for the message; `None` for a scalar.
fn non_scalar(ty: &TypeRef) -> Option<&'static str> {
    match ty {
        TypeRef::Bool
        | TypeRef::String
        | TypeRef::Float64
        | TypeRef::Integer { .. }
        | TypeRef::Id { .. }
        | TypeRef::Union { .. } => None,
        TypeRef::Nullable { inner } => non_scalar(inner),
        TypeRef::Array { .. } => Some("an array"),
        TypeRef::Object { .. }
        | TypeRef::TableFields { .. }
        | TypeRef::Document { .. }
        | TypeRef::Update { .. }
        | TypeRef::Unset { .. }
        | TypeRef::Filters { .. } => Some("an object"),
        TypeRef::Null => Some("`()`"),
    }
}
