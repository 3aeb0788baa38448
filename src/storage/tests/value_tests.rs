//! Document ↔ storage value mapping, new executions, updates and filters.

use serde_json::json;

use super::fixtures::{full_value, minimal_value, new_execution, summary};
use crate::storage::{ParentTaskExecutionSummary, TaskExecutionStorageValue};
use crate::task_executions::{
    CloseStatus, ErrorType, ExecutionError, OnChildrenFinishedProcessingStatus, TaskExecution,
    TaskExecutionFilters, TaskExecutionStatus, TaskExecutionUnset, TaskExecutionUpdate,
};
use crate::{Doc, Id};

/// The wire document of [`full_value`] in shard 5: every field by its stored name.
fn full_document_json() -> serde_json::Value {
    // In two parts: one `json!` of every field exceeds the macro's recursion limit.
    let mut document = json!({
        "shard": 5,
        "rootTaskId": "root-task", "rootExecutionId": "root-exec",
        "parentTaskId": "parent-task", "parentExecutionId": "parent-exec",
        "indexInParentChildren": 3, "isOnlyChildOfParent": true, "isFinalizeOfParent": true,
        "taskId": "task", "executionId": "exec",
        "isSleepingTask": true, "sleepingTaskUniqueId": "sleep-uid",
        "retryOptions": {"maxAttempts": 5, "baseDelayMs": 100, "maxDelayMs": 10000, "delayMultiplier": 1.5},
        "sleepMsBeforeRun": 11, "timeoutMs": 12, "areChildrenSequential": true,
        "input": "{\"in\":1}", "executorId": "executor",
        "status": "waiting_for_finalize", "isFinished": true,
        "runOutput": "run-out", "output": "out",
        "error": {"errorType": "timed_out", "message": "boom", "isRetryable": true, "isInternal": true}
    });
    let rest = json!({
        "retryAttempts": 2, "startAt": 1000, "startedAt": 1001, "expiresAt": 1002,
        "waitingForChildrenStartedAt": 1003, "waitingForFinalizeStartedAt": 1004, "finishedAt": 1005,
        "children": [
            {"taskId": "c-task", "executionId": "c-exec-0"},
            {"taskId": "c-task", "executionId": "c-exec-1"}
        ],
        "acc": 7, "ocfpStatus": "processed", "ocfpExpiresAt": 1006, "ocfpFinishedAt": 1007,
        "finalize": {"taskId": "fin-task", "executionId": "fin-exec"},
        "closeStatus": "closing", "closeExpiresAt": 1008, "closedAt": 1009,
        "npc": true, "createdAt": 900, "updatedAt": 950
    });
    if let (Some(document), Some(rest)) = (document.as_object_mut(), rest.as_object()) {
        document.extend(rest.clone());
    }
    document
}

#[test]
fn every_present_field_maps_to_its_stored_name() {
    let document = full_value().into_document(5);
    assert_eq!(document.parent_execution_doc_id, None);
    assert_eq!(
        serde_json::to_value(&document).unwrap(),
        full_document_json()
    );
}

#[test]
fn every_stored_field_maps_back_from_a_returned_document() {
    let mut wire = full_document_json();
    wire["_id"] = json!("k1");
    wire["_creationTime"] = json!(1.5);
    wire["parentExecutionDocId"] = json!("k0");
    let document: Doc<TaskExecution> = serde_json::from_value(wire).unwrap();
    assert_eq!(
        document.parent_execution_doc_id,
        Some(Id::new("k0")),
        "the server's link is read"
    );
    // The storage value drops the shard, the link and the system fields, and keeps the rest.
    assert_eq!(TaskExecutionStorageValue::from(document), full_value());
}

#[test]
fn full_value_round_trips_through_the_document() {
    let value = full_value();
    let back = TaskExecutionStorageValue::from_document(value.clone().into_document(0));
    assert_eq!(back, value);
}

#[test]
fn absent_fields_stay_absent_both_ways() {
    let value = minimal_value("e");
    let document = value.clone().into_document(0);
    let wire = serde_json::to_value(&document).unwrap();
    let keys: Vec<&str> = wire
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "shard",
        "taskId",
        "executionId",
        "isSleepingTask",
        "retryOptions",
        "sleepMsBeforeRun",
        "timeoutMs",
        "areChildrenSequential",
        "input",
        "status",
        "isFinished",
        "retryAttempts",
        "startAt",
        "acc",
        "ocfpStatus",
        "closeStatus",
        "npc",
        "createdAt",
        "updatedAt",
    ];
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys_sorted, expected, "only required fields travel");
    assert_eq!(wire["retryOptions"], json!({"maxAttempts": 0}));
    assert_eq!(TaskExecutionStorageValue::from_document(document), value);
}

#[test]
fn missing_parent_index_and_flags_default_to_zero_and_false() {
    let mut document = minimal_value("e").into_document(0);
    document.parent_task_id = Some("pt".into());
    document.parent_execution_id = Some("pe".into());
    let value = TaskExecutionStorageValue::from_document(document);
    assert_eq!(
        value.parent,
        Some(ParentTaskExecutionSummary {
            task_id: "pt".into(),
            execution_id: "pe".into(),
            index_in_parent_children: 0,
            is_only_child_of_parent: false,
            is_finalize_of_parent: false,
        })
    );
}

#[test]
fn root_and_parent_need_both_ids() {
    let half = |set: fn(&mut TaskExecution)| {
        let mut document = minimal_value("e").into_document(0);
        set(&mut document);
        TaskExecutionStorageValue::from_document(document)
    };
    assert_eq!(half(|d| d.root_task_id = Some("r".into())).root, None);
    assert_eq!(half(|d| d.root_execution_id = Some("r".into())).root, None);
    assert_eq!(half(|d| d.parent_task_id = Some("p".into())).parent, None);
    assert_eq!(
        half(|d| d.parent_execution_id = Some("p".into())).parent,
        None
    );
    let both = half(|d| {
        d.root_task_id = Some("rt".into());
        d.root_execution_id = Some("re".into());
    });
    assert_eq!(both.root, Some(summary("rt", "re")));
}

#[test]
fn a_parent_is_flattened_with_its_index_and_flags() {
    let mut value = minimal_value("e");
    value.parent = Some(ParentTaskExecutionSummary {
        task_id: "pt".into(),
        execution_id: "pe".into(),
        index_in_parent_children: 0,
        is_only_child_of_parent: false,
        is_finalize_of_parent: false,
    });
    let document = value.into_document(2);
    assert_eq!(document.shard, 2);
    assert_eq!(document.parent_task_id.as_deref(), Some("pt"));
    assert_eq!(document.parent_execution_id.as_deref(), Some("pe"));
    assert_eq!(document.index_in_parent_children, Some(0));
    assert_eq!(document.is_only_child_of_parent, Some(false));
    assert_eq!(document.is_finalize_of_parent, Some(false));
    assert_eq!(document.parent_execution_doc_id, None);
}

#[test]
fn a_new_execution_is_ready() {
    let mut new = new_execution("e");
    new.sleep_ms_before_run = 50;
    new.timeout_ms = 70;
    let value = TaskExecutionStorageValue::new_execution(new, 1_000);
    assert_eq!(value.status, TaskExecutionStatus::Ready);
    assert!(!value.is_finished);
    assert_eq!(value.retry_attempts, 0);
    assert_eq!(value.start_at, 1_050);
    assert_eq!((value.started_at, value.expires_at), (None, None));
    assert_eq!(value.active_children_count, 0);
    assert_eq!(
        value.on_children_finished_processing_status,
        OnChildrenFinishedProcessingStatus::Idle
    );
    assert_eq!(value.close_status, CloseStatus::Idle);
    assert!(!value.needs_promise_cancellation);
    assert_eq!((value.created_at, value.updated_at), (1_000, 1_000));
    assert_eq!(value.executor_id, None);
    assert_eq!(value.children, None);
}

#[test]
fn a_new_sleeping_execution_is_running_until_it_expires() {
    let mut new = new_execution("e");
    new.is_sleeping_task = true;
    new.sleeping_task_unique_id = Some("u".into());
    new.sleep_ms_before_run = 50;
    new.timeout_ms = 70;
    let value = TaskExecutionStorageValue::new_execution(new, 1_000);
    assert_eq!(value.status, TaskExecutionStatus::Running);
    assert_eq!(value.started_at, Some(1_000));
    assert_eq!(value.expires_at, Some(1_120));
    assert_eq!(value.start_at, 1_050);
    assert_eq!(value.sleeping_task_unique_id.as_deref(), Some("u"));
}

#[test]
fn an_update_sets_every_updatable_field() {
    let target = full_value();
    let update = TaskExecutionUpdate {
        executor_id: target.executor_id.clone(),
        status: Some(target.status),
        is_finished: Some(target.is_finished),
        run_output: target.run_output.clone(),
        output: target.output.clone(),
        error: target.error.clone(),
        retry_attempts: Some(target.retry_attempts),
        start_at: Some(target.start_at),
        started_at: target.started_at,
        expires_at: target.expires_at,
        waiting_for_children_started_at: target.waiting_for_children_started_at,
        waiting_for_finalize_started_at: target.waiting_for_finalize_started_at,
        finished_at: target.finished_at,
        children: target.children.clone(),
        active_children_count: Some(target.active_children_count),
        on_children_finished_processing_status: Some(target.on_children_finished_processing_status),
        on_children_finished_processing_expires_at: target
            .on_children_finished_processing_expires_at,
        on_children_finished_processing_finished_at: target
            .on_children_finished_processing_finished_at,
        finalize: target.finalize.clone(),
        close_status: Some(target.close_status),
        close_expires_at: target.close_expires_at,
        closed_at: target.closed_at,
        needs_promise_cancellation: Some(target.needs_promise_cancellation),
        updated_at: target.updated_at,
        unset: None,
    };
    // Start from a value that differs in every updatable field but agrees on identity.
    let base = minimal_value("exec");
    let mut value = TaskExecutionStorageValue {
        executor_id: base.executor_id,
        status: base.status,
        is_finished: base.is_finished,
        run_output: base.run_output,
        output: base.output,
        error: base.error,
        retry_attempts: base.retry_attempts,
        start_at: 1,
        started_at: base.started_at,
        expires_at: base.expires_at,
        waiting_for_children_started_at: base.waiting_for_children_started_at,
        waiting_for_finalize_started_at: base.waiting_for_finalize_started_at,
        finished_at: base.finished_at,
        children: base.children,
        active_children_count: base.active_children_count,
        on_children_finished_processing_status: base.on_children_finished_processing_status,
        on_children_finished_processing_expires_at: base.on_children_finished_processing_expires_at,
        on_children_finished_processing_finished_at: base
            .on_children_finished_processing_finished_at,
        finalize: base.finalize,
        close_status: base.close_status,
        close_expires_at: base.close_expires_at,
        closed_at: base.closed_at,
        needs_promise_cancellation: base.needs_promise_cancellation,
        updated_at: base.updated_at,
        ..target.clone()
    };
    assert_ne!(value, target);
    value.apply_update(&update);
    assert_eq!(value, target);
    // Idempotent: applying it again changes nothing.
    value.apply_update(&update);
    assert_eq!(value, target);
}

#[test]
fn unset_removes_fields_and_wins_over_a_value_set_alongside() {
    let mut value = full_value();
    let update = TaskExecutionUpdate {
        executor_id: Some("new-executor".into()),
        updated_at: 2_000,
        unset: Some(TaskExecutionUnset {
            executor_id: true,
            run_output: true,
            error: true,
            started_at: true,
            expires_at: true,
            on_children_finished_processing_expires_at: true,
            close_expires_at: true,
        }),
        ..TaskExecutionUpdate::default()
    };
    value.apply_update(&update);
    assert_eq!(value.executor_id, None);
    assert_eq!(value.run_output, None);
    assert_eq!(value.error, None);
    assert_eq!(value.started_at, None);
    assert_eq!(value.expires_at, None);
    assert_eq!(value.on_children_finished_processing_expires_at, None);
    assert_eq!(value.close_expires_at, None);
    assert_eq!(value.updated_at, 2_000);
    // Fields neither set nor unset are kept.
    assert_eq!(value.output.as_deref(), Some("out"));
    assert_eq!(value.closed_at, Some(1_009));
}

#[test]
fn false_unset_entries_keep_their_fields() {
    let mut value = full_value();
    value.apply_update(&TaskExecutionUpdate {
        updated_at: 1,
        unset: Some(TaskExecutionUnset {
            error: true,
            ..TaskExecutionUnset::default()
        }),
        ..TaskExecutionUpdate::default()
    });
    assert_eq!(value.error, None);
    assert_eq!(value.executor_id.as_deref(), Some("executor"));
    assert_eq!(value.expires_at, Some(1_002));
}

#[test]
fn filters_match_only_when_every_given_filter_does() {
    let value = full_value();
    let filters = |is_sleeping_task, status, is_finished| TaskExecutionFilters {
        is_sleeping_task,
        status,
        is_finished,
    };
    assert!(value.matches_filters(&TaskExecutionFilters::default()));
    let status = Some(TaskExecutionStatus::WaitingForFinalize);
    assert!(value.matches_filters(&filters(Some(true), status, Some(true))));
    assert!(!value.matches_filters(&filters(Some(false), None, None)));
    assert!(!value.matches_filters(&filters(None, Some(TaskExecutionStatus::Ready), None)));
    assert!(!value.matches_filters(&filters(None, None, Some(false))));
    assert!(!value.matches_filters(&filters(Some(true), status, Some(false))));
}

#[test]
fn error_values_keep_their_type() {
    let mut value = minimal_value("e");
    value.error = Some(ExecutionError {
        error_type: ErrorType::NotFound,
        message: "m".into(),
        is_retryable: false,
        is_internal: false,
    });
    let back = TaskExecutionStorageValue::from_document(value.clone().into_document(0));
    assert_eq!(back.error, value.error);
}
