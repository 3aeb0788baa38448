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

fn with_data(message: &str, data: serde_json::Value) -> ConvexError {
    ConvexError::Function {
        path: "taskExecutionsStorage:f".into(),
        message: message.into(),
        code: data["code"].as_str().map(str::to_owned),
        data: Some(data),
    }
}

#[test]
fn every_refusal_of_the_server_has_its_typed_error() {
    let error = StorageError::from(ConvexError::Unauthorized {
        path: "taskExecutionsStorage:f".into(),
        message: "invalid auth secret".into(),
    });
    assert!(
        matches!(&error, StorageError::Unauthorized { function, message }
            if function == "taskExecutionsStorage:f" && message == "invalid auth secret"),
        "{error:?}"
    );
    let error = StorageError::from(with_data(
        "too much",
        json!({"code": "LIMIT_EXCEEDED", "limit": "bytesRead", "fits": 12}),
    ));
    assert!(
        matches!(&error, StorageError::LimitExceeded { limit, fits: Some(12), .. } if limit == "bytesRead"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "`taskExecutionsStorage:f` refused a call over its `bytesRead` budget (12 would fit): too much"
    );
    let error = StorageError::from(with_data(
        "no fits",
        json!({"code": "LIMIT_EXCEEDED", "limit": "items", "fits": -1}),
    ));
    assert!(
        matches!(&error, StorageError::LimitExceeded { fits: None, .. }),
        "{error:?}"
    );
    let error = StorageError::from(with_data(
        "deleteAll only runs in test mode",
        json!({"code": "TEST_MODE_REQUIRED"}),
    ));
    assert!(
        matches!(&error, StorageError::TestModeRequired { .. }),
        "{error:?}"
    );
    let error = StorageError::from(with_data(
        "retryAttempts must be a non-negative integer",
        json!({"code": "INVALID_ARGUMENT", "path": "executions[3].retryAttempts"}),
    ));
    assert!(
        matches!(&error, StorageError::InvalidArgument { path: Some(p), .. } if p == "executions[3].retryAttempts"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("at `executions[3].retryAttempts`"),
        "{error}"
    );
    // Convex's own argument validation: the path comes from the message.
    let error = StorageError::from(ConvexError::Function {
        path: "taskExecutionsStorage:insertMany".into(),
        message: "[Request ID: 1] Server Error\nArgumentValidationError: Value does not match \
                  validator.\nPath: .args.executions[0].shard\nValue: -1\nValidator: v.float64()"
            .into(),
        code: None,
        data: None,
    });
    assert!(
        matches!(&error, StorageError::InvalidArgument { path: Some(p), .. } if p == "executions[0].shard"),
        "{error:?}"
    );
    for refusal in [
        StorageError::from(with_data("x", json!({"code": "TEST_MODE_REQUIRED"}))),
        StorageError::from(with_data("x", json!({"code": "INVALID_ARGUMENT"}))),
        StorageError::from(with_data("x", json!({"code": "LIMIT_EXCEEDED"}))),
    ] {
        assert!(!refusal.is_transient(), "{refusal:?}");
        assert!(!refusal.is_retry_safe(), "{refusal:?}");
    }
}

#[test]
fn the_originals_plain_duplicate_errors_are_already_exists() {
    for message in [
        "Execution id already exists",
        "Sleeping task unique id already exists",
        "Uncaught Error: Execution id already exists",
        "[Request ID: 7f] Server Error\nUncaught Error: Sleeping task unique id already exists\n    at handler (../convex/lib.ts:80:11)",
    ] {
        let error = StorageError::from(ConvexError::Function {
            path: "taskExecutionsStorage:insertMany".into(),
            message: message.into(),
            code: None,
            data: None,
        });
        assert!(
            matches!(&error, StorageError::AlreadyExists { message: m } if m == message),
            "{message}: {error:?}"
        );
    }
    // Other plain errors stay Convex errors.
    let error = StorageError::from(function_error(None));
    assert!(matches!(error, StorageError::Convex(_)), "{error:?}");
}

#[test]
fn refusals_are_recognised_through_retried_attempts() {
    let error = StorageError::from(ConvexError::Attempts {
        path: "taskExecutionsStorage:insertMany".into(),
        attempts: 2,
        elapsed: std::time::Duration::from_millis(3),
        stopped: crate::runtime::StopReason::NotTransient,
        earlier: vec!["attempt 1: reset".into()],
        earlier_may_have_applied: true,
        last: Box::new(function_error(Some("ALREADY_EXISTS"))),
    });
    assert!(error.is_already_exists(), "{error:?}");
    // A transient failure after retries is still transient, and says so.
    let error = StorageError::from(ConvexError::Attempts {
        path: "p".into(),
        attempts: 5,
        elapsed: std::time::Duration::from_secs(1),
        stopped: crate::runtime::StopReason::MaxAttempts(5),
        earlier: vec![],
        earlier_may_have_applied: false,
        last: Box::new(ConvexError::Transport {
            path: "p".into(),
            kind: FunctionKind::Query,
            message: "refused".into(),
            request_sent: false,
        }),
    });
    assert!(error.is_transient());
    assert!(error.is_retry_safe());
    let partial = StorageError::PartiallyApplied {
        operation: "insertMany",
        applied: 1,
        total: 2,
        source: Box::new(error),
    };
    assert!(
        partial.is_transient(),
        "the failing call's failure was transient"
    );
    assert!(!partial.is_retry_safe(), "but the batch is partly written");
    assert!(matches!(partial.cause(), StorageError::Convex(_)));
}
