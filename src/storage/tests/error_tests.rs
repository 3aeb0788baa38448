//! Classification of Convex errors.

use serde_json::json;

use crate::runtime::{ConvexError, FunctionKind};
use crate::storage::StorageError;

fn function_error(code: Option<&str>) -> ConvexError {
    ConvexError::Function {
        path: "taskExecutionsStorage:insertMany".into(),
        message: "execution e1 already exists".into(),
        code: code.map(str::to_owned),
        data: code.map(|code| json!({ "code": code })),
    }
}

#[test]
fn the_servers_already_exists_code_is_recognised() {
    let error = StorageError::from(function_error(Some("ALREADY_EXISTS")));
    assert!(
        matches!(&error, StorageError::AlreadyExists { message } if message.contains("e1")),
        "{error:?}"
    );
    assert!(error.is_already_exists());
    assert!(!error.is_retry_safe());
    let other = StorageError::from(function_error(Some("OTHER")));
    assert!(matches!(other, StorageError::Convex(_)));
    assert!(!other.is_already_exists());
    assert!(matches!(
        StorageError::from(function_error(None)),
        StorageError::Convex(_)
    ));
}

#[test]
fn retry_safety_comes_from_the_convex_error() {
    let not_sent = StorageError::from(ConvexError::Transport {
        path: "p".into(),
        kind: FunctionKind::Mutation,
        message: "refused".into(),
        request_sent: false,
    });
    assert!(not_sent.is_retry_safe());
    assert!(not_sent.convex_error().is_some());
    let sent = StorageError::from(ConvexError::Transport {
        path: "p".into(),
        kind: FunctionKind::Action,
        message: "reset".into(),
        request_sent: true,
    });
    assert!(!sent.is_retry_safe());
    assert!(!StorageError::InvalidRequest("x".into()).is_retry_safe());
    assert!(!StorageError::InvalidOptions("x".into()).is_retry_safe());
}

#[test]
fn a_partially_applied_batch_keeps_its_cause() {
    let error = StorageError::PartiallyApplied {
        operation: "insertMany",
        applied: 2_000,
        total: 5_000,
        source: Box::new(StorageError::from(function_error(Some("ALREADY_EXISTS")))),
    };
    assert!(error.is_already_exists());
    assert!(!error.is_retry_safe());
    assert_eq!(
        error.to_string(),
        "insertMany failed after 2000 of 5000 elements were applied: \
         task execution already exists: execution e1 already exists"
    );
}
