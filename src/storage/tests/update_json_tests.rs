//! The JSON of updates and filters as they travel to the server.

use serde_json::json;

use super::fixtures::summary;
use crate::storage::TaskExecutionStorageUpdate;
use crate::task_executions::{
    CloseStatus, ErrorType, ExecutionError, OnChildrenFinishedProcessingStatus,
    TaskExecutionFilters, TaskExecutionStatus, TaskExecutionUnset, TaskExecutionUpdate,
};

#[test]
fn updated_at_always_travels_and_nothing_else_unless_set() {
    let update = TaskExecutionStorageUpdate {
        updated_at: 42,
        ..TaskExecutionUpdate::default()
    };
    assert_eq!(
        serde_json::to_value(&update).unwrap(),
        json!({"updatedAt": 42})
    );
}

#[test]
fn every_updatable_field_travels_under_its_stored_name() {
    let update = TaskExecutionUpdate {
        executor_id: Some("x".into()),
        status: Some(TaskExecutionStatus::TimedOut),
        is_finished: Some(true),
        run_output: Some("r".into()),
        output: Some("o".into()),
        error: Some(ExecutionError {
            error_type: ErrorType::Cancelled,
            message: "m".into(),
            is_retryable: false,
            is_internal: true,
        }),
        retry_attempts: Some(1),
        start_at: Some(2),
        started_at: Some(3),
        expires_at: Some(4),
        waiting_for_children_started_at: Some(5),
        waiting_for_finalize_started_at: Some(6),
        finished_at: Some(7),
        children: Some(vec![summary("t", "e")]),
        active_children_count: Some(8),
        on_children_finished_processing_status: Some(
            OnChildrenFinishedProcessingStatus::Processing,
        ),
        on_children_finished_processing_expires_at: Some(9),
        on_children_finished_processing_finished_at: Some(10),
        finalize: Some(summary("ft", "fe")),
        close_status: Some(CloseStatus::Ready),
        close_expires_at: Some(11),
        closed_at: Some(12),
        needs_promise_cancellation: Some(false),
        updated_at: 13,
        unset: None,
    };
    assert_eq!(
        serde_json::to_value(&update).unwrap(),
        json!({
            "executorId": "x", "status": "timed_out", "isFinished": true,
            "runOutput": "r", "output": "o",
            "error": {"errorType": "cancelled", "message": "m", "isRetryable": false, "isInternal": true},
            "retryAttempts": 1, "startAt": 2, "startedAt": 3, "expiresAt": 4,
            "waitingForChildrenStartedAt": 5, "waitingForFinalizeStartedAt": 6, "finishedAt": 7,
            "children": [{"taskId": "t", "executionId": "e"}],
            "acc": 8, "ocfpStatus": "processing", "ocfpExpiresAt": 9, "ocfpFinishedAt": 10,
            "finalize": {"taskId": "ft", "executionId": "fe"},
            "closeStatus": "ready", "closeExpiresAt": 11, "closedAt": 12,
            "npc": false, "updatedAt": 13
        })
    );
}

#[test]
fn unset_carries_only_its_true_entries() {
    let update = TaskExecutionUpdate {
        updated_at: 1,
        unset: Some(TaskExecutionUnset {
            executor_id: true,
            on_children_finished_processing_expires_at: true,
            ..TaskExecutionUnset::default()
        }),
        ..TaskExecutionUpdate::default()
    };
    assert_eq!(
        serde_json::to_value(&update).unwrap(),
        json!({"updatedAt": 1, "unset": {"executorId": true, "ocfpExpiresAt": true}})
    );
    let every = TaskExecutionUnset {
        executor_id: true,
        run_output: true,
        error: true,
        started_at: true,
        expires_at: true,
        on_children_finished_processing_expires_at: true,
        close_expires_at: true,
    };
    assert_eq!(
        serde_json::to_value(every).unwrap(),
        json!({
            "executorId": true, "runOutput": true, "error": true, "startedAt": true,
            "expiresAt": true, "ocfpExpiresAt": true, "closeExpiresAt": true
        })
    );
    assert_eq!(
        serde_json::to_value(TaskExecutionUnset::default()).unwrap(),
        json!({})
    );
}

#[test]
fn updated_at_is_required_when_decoding() {
    let error = serde_json::from_value::<TaskExecutionUpdate>(json!({"status": "ready"}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("updatedAt"), "{error}");
}

#[test]
fn filters_travel_only_when_given() {
    assert_eq!(
        serde_json::to_value(TaskExecutionFilters::default()).unwrap(),
        json!({})
    );
    let filters = TaskExecutionFilters {
        is_sleeping_task: Some(false),
        status: Some(TaskExecutionStatus::WaitingForChildren),
        is_finished: Some(true),
    };
    assert_eq!(
        serde_json::to_value(filters).unwrap(),
        json!({"isSleepingTask": false, "status": "waiting_for_children", "isFinished": true})
    );
}
