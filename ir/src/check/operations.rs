//! Operations as functions of the public API: names, kinds, returns, retry safety.

use crate::errors::Errors;
use crate::model::{Access, Component, FunctionKind, Operation, RetrySafety, TypeRef};
use crate::names;
use crate::spans::Spans;

fn path(operation: &Operation, key: &str) -> String {
    format!("{}/#operation/{key}", operation.args_type)
}

/// The name is a JavaScript identifier, a declared `method` a Rust one; no two operations share
/// a name or a method.
pub fn operation_names(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (i, operation) in component.operations.iter().enumerate() {
        if !names::is_js_identifier(&operation.name) {
            errors.at(
                spans.at(&path(operation, "name")),
                format!("`{}` is not a JavaScript identifier", operation.name),
            );
        }
        if let Some(span) = spans.get(&path(operation, "method")) {
            if syn::parse_str::<syn::Ident>(&operation.method).is_err() {
                errors.at(
                    span,
                    format!("`{}` is not a Rust method name", operation.method),
                );
            }
        }
        let duplicate = component.operations[..i]
            .iter()
            .find(|other| other.name == operation.name || other.method == operation.method);
        if let Some(other) = duplicate {
            errors.at(
                spans.at(&format!("{}/#operation", operation.args_type)),
                format!(
                    "duplicate operation name `{}` (method `{}`)",
                    other.name, other.method
                ),
            );
        }
    }
}

/// `returns` is what the access pattern answers: one document or null per request
/// (`get_each, first`), every match per request (`get_each`), the patched documents or their
/// count (`update_range`), nothing otherwise.
pub fn returns_match_access(component: &Component, spans: &Spans, errors: &mut Errors) {
    for operation in &component.operations {
        let table = &operation.table;
        let document = || TypeRef::Document {
            table: table.clone(),
        };
        let list = |element: TypeRef| TypeRef::Array {
            element: Box::new(element),
        };
        let (fits, expected) = match &operation.access {
            Access::GetEach { first: true, .. } => (
                operation.returns
                    == list(TypeRef::Nullable {
                        inner: Box::new(document()),
                    }),
                format!("this access pattern returns `Vec<Option<Doc<{table}>>>`"),
            ),
            Access::GetEach { first: false, .. } => (
                operation.returns == list(list(document())),
                format!("this access pattern returns `Vec<Vec<Doc<{table}>>>`"),
            ),
            Access::UpdateRange { .. } => (
                matches!(operation.returns, TypeRef::Integer { .. })
                    || operation.returns == list(document()),
                format!(
                    "`update_range` returns the patched documents (`Vec<Doc<{table}>>`) or their \
                     count (an integer)"
                ),
            ),
            _ => (
                operation.returns == TypeRef::Null,
                "this access pattern returns `()`".to_owned(),
            ),
        };
        if !fits {
            let span = spans.at(&path(operation, "returns"));
            let declared = rust_type(&operation.returns);
            errors.at(span, format!("{expected}, not `{declared}`"));
        }
    }
}

/// A type as a declaration writes it.
fn rust_type(ty: &TypeRef) -> String {
    match ty {
        TypeRef::Null => "()".to_owned(),
        TypeRef::Bool => "bool".to_owned(),
        TypeRef::String => "String".to_owned(),
        TypeRef::Float64 => "f64".to_owned(),
        TypeRef::Integer { rust } => rust.rust_name().to_owned(),
        TypeRef::Id { table } => format!("Id<{table}>"),
        TypeRef::Object { name } | TypeRef::Union { name } => name.clone(),
        TypeRef::TableFields { table } => table.clone(),
        TypeRef::Document { table } => format!("Doc<{table}>"),
        TypeRef::Update { table } => format!("{table}Update"),
        TypeRef::Unset { table } => format!("{table}Unset"),
        TypeRef::Filters { table } => format!("{table}Filters"),
        TypeRef::Nullable { inner } => format!("Option<{}>", rust_type(inner)),
        TypeRef::Array { element } => format!("Vec<{}>", rust_type(element)),
    }
}

/// Every access pattern but `get_each` writes, which a query cannot.
pub fn queries_do_not_write(component: &Component, spans: &Spans, errors: &mut Errors) {
    for operation in &component.operations {
        let writes = !matches!(operation.access, Access::GetEach { .. });
        if operation.kind == FunctionKind::Query && writes {
            errors.at(
                spans.at(&path(operation, "kind")),
                "a query cannot write: declare this operation as a mutation or an action",
            );
        }
    }
}

/// A query never writes: its retry is `idempotent`.
pub fn query_retry(component: &Component, spans: &Spans, errors: &mut Errors) {
    for operation in &component.operations {
        if operation.kind == FunctionKind::Query && operation.retry != RetrySafety::Idempotent {
            errors.at(
                spans.at(&path(operation, "retry")),
                format!(
                    "a query never writes, so re-sending it is always safe: its retry is \
                     \"idempotent\", not \"{}\"",
                    operation.retry.as_str()
                ),
            );
        }
    }
}
