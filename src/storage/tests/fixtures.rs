//! Values with every field set, or none of the optional ones.

use crate::storage::{NewTaskExecution, ParentTaskExecutionSummary, TaskExecutionStorageValue};
use crate::task_executions::{
    CloseStatus, ErrorType, ExecutionError, OnChildrenFinishedProcessingStatus, RetryOptions,
    TaskExecutionStatus, TaskExecutionSummary,
};

pub fn summary(task_id: &str, execution_id: &str) -> TaskExecutionSummary {
    TaskExecutionSummary {
        task_id: task_id.to_owned(),
        execution_id: execution_id.to_owned(),
    }
}

/// Every field present, each with a value no other field has.
pub fn full_value() -> TaskExecutionStorageValue {
    TaskExecutionStorageValue {
        root: Some(summary("root-task", "root-exec")),
        parent: Some(ParentTaskExecutionSummary {
            task_id: "parent-task".into(),
            execution_id: "parent-exec".into(),
            index_in_parent_children: 3,
            is_only_child_of_parent: true,
            is_finalize_of_parent: true,
        }),
        task_id: "task".into(),
        execution_id: "exec".into(),
        is_sleeping_task: true,
        sleeping_task_unique_id: Some("sleep-uid".into()),
        retry_options: RetryOptions {
            max_attempts: 5,
            base_delay_ms: Some(100),
            max_delay_ms: Some(10_000),
            delay_multiplier: Some(1.5),
        },
        sleep_ms_before_run: 11,
        timeout_ms: 12,
        are_children_sequential: true,
        input: "{\"in\":1}".into(),
        executor_id: Some("executor".into()),
        status: TaskExecutionStatus::WaitingForFinalize,
        is_finished: true,
        run_output: Some("run-out".into()),
        output: Some("out".into()),
        error: Some(ExecutionError {
            error_type: ErrorType::TimedOut,
            message: "boom".into(),
            is_retryable: true,
            is_internal: true,
        }),
        retry_attempts: 2,
        start_at: 1_000,
        started_at: Some(1_001),
        expires_at: Some(1_002),
        waiting_for_children_started_at: Some(1_003),
        waiting_for_finalize_started_at: Some(1_004),
        finished_at: Some(1_005),
        children: Some(vec![
            summary("c-task", "c-exec-0"),
            summary("c-task", "c-exec-1"),
        ]),
        active_children_count: 7,
        on_children_finished_processing_status: OnChildrenFinishedProcessingStatus::Processed,
        on_children_finished_processing_expires_at: Some(1_006),
        on_children_finished_processing_finished_at: Some(1_007),
        finalize: Some(summary("fin-task", "fin-exec")),
        close_status: CloseStatus::Closing,
        close_expires_at: Some(1_008),
        closed_at: Some(1_009),
        needs_promise_cancellation: true,
        created_at: 900,
        updated_at: 950,
    }
}

/// A new, ready root execution: no optional field present.
pub fn minimal_value(execution_id: &str) -> TaskExecutionStorageValue {
    TaskExecutionStorageValue::new_execution(new_execution(execution_id), 1_000)
}

pub fn new_execution(execution_id: &str) -> NewTaskExecution {
    NewTaskExecution {
        root: None,
        parent: None,
        task_id: "task".into(),
        execution_id: execution_id.to_owned(),
        is_sleeping_task: false,
        sleeping_task_unique_id: None,
        retry_options: RetryOptions {
            max_attempts: 0,
            base_delay_ms: None,
            max_delay_ms: None,
            delay_multiplier: None,
        },
        sleep_ms_before_run: 0,
        timeout_ms: 1_000,
        are_children_sequential: false,
        input: String::new(),
    }
}

/// A child of `parent` at `index`.
pub fn child_value(parent: &str, index: u32) -> TaskExecutionStorageValue {
    let mut child = minimal_value(&format!("{parent}-child-{index}"));
    child.root = Some(summary("task", parent));
    child.parent = Some(ParentTaskExecutionSummary {
        task_id: "task".into(),
        execution_id: parent.to_owned(),
        index_in_parent_children: index,
        is_only_child_of_parent: false,
        is_finalize_of_parent: false,
    });
    child
}
