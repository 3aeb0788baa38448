//! Reading returned documents one at a time, so that one bad document never fails the others.
//!
//! The generated response types decode a whole answer at once: one document that does not
//! match `TaskExecution` (e.g. a negative `acc`, which the original component's decrement can
//! write) would fail the whole answer — and for a claim, strand the healthy executions it has
//! already patched on the server. The storage therefore asks for the answer as JSON and reads
//! each document on its own:
//!
//! - a negative `acc` is read as 0 (the original has no floor on its decrement; 0 is what a
//!   floor would have left), with a warning;
//! - a document that still cannot be read becomes an [`UndecodableDocument`] (its `_id`, its
//!   `executionId`, why): the caller reports it and carries on with the others.

use serde_json::Value;

use super::UndecodableDocument;
use crate::runtime::ConvexError;
use crate::task_executions::TaskExecution;
use crate::Doc;

/// One returned document, read on its own.
pub(crate) type Decoded = Result<Doc<TaskExecution>, UndecodableDocument>;

fn text_field(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Reads one document; see the [module](self) documentation for what is tolerated.
pub(crate) fn decode_document(function: &str, mut value: Value) -> Decoded {
    let id = text_field(&value, "_id");
    let execution_id = text_field(&value, "executionId");
    if let Some(acc) = value.get_mut("acc") {
        if acc.as_f64().is_some_and(|n| n < 0.0) {
            tracing::warn!(
                function,
                id = id.as_deref().unwrap_or("?"),
                execution_id = execution_id.as_deref().unwrap_or("?"),
                acc = %acc,
                "a document with a negative active children count (acc), read as 0"
            );
            *acc = Value::from(0);
        }
    }
    serde_json::from_value(value).map_err(|error| UndecodableDocument {
        function: function.to_owned(),
        id,
        execution_id,
        message: error.to_string(),
    })
}

fn not_a(function: &str, what: &str, value: &Value) -> ConvexError {
    let mut shown = value.to_string();
    if shown.len() > 200 {
        shown = format!("{}…", shown.chars().take(200).collect::<String>());
    }
    ConvexError::Decode {
        path: function.to_owned(),
        message: format!("expected {what}, got: {shown}"),
    }
}

/// An array of documents (a range update's answer).
pub(crate) fn decode_documents(function: &str, value: Value) -> Result<Vec<Decoded>, ConvexError> {
    match value {
        Value::Array(items) => Ok(items
            .into_iter()
            .map(|item| decode_document(function, item))
            .collect()),
        other => Err(not_a(function, "an array of documents", &other)),
    }
}

/// An array of documents or nulls (a lookup's answer).
pub(crate) fn decode_optional_documents(
    function: &str,
    value: Value,
) -> Result<Vec<Option<Decoded>>, ConvexError> {
    match value {
        Value::Array(items) => Ok(items
            .into_iter()
            .map(|item| match item {
                Value::Null => None,
                item => Some(decode_document(function, item)),
            })
            .collect()),
        other => Err(not_a(function, "an array of documents or nulls", &other)),
    }
}

/// An array of arrays of documents (the children of each parent).
pub(crate) fn decode_document_lists(
    function: &str,
    value: Value,
) -> Result<Vec<Vec<Decoded>>, ConvexError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| decode_documents(function, item))
            .collect(),
        other => Err(not_a(function, "an array of arrays of documents", &other)),
    }
}
