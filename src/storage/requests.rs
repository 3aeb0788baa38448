//! The requests of [`TaskExecutionsStorage`](super::TaskExecutionsStorage), in the engine's
//! names. None of them mentions shards: where executions live is the storage's business.

use super::value::{
    TaskExecutionStorageFilters, TaskExecutionStorageUpdate, TaskExecutionStorageValue,
};
use crate::task_executions::{
    CloseStatus, OnChildrenFinishedProcessingStatus, TaskExecutionStatus,
};

/// Look up one execution by id.
#[derive(Clone, Debug, PartialEq)]
pub struct GetByIdRequest {
    pub execution_id: String,
    /// When given, an execution that does not match every filter counts as not found.
    pub filters: Option<TaskExecutionStorageFilters>,
}

/// Look up one sleeping task execution by its unique id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetBySleepingTaskUniqueIdRequest {
    pub sleeping_task_unique_id: String,
}

/// Update one execution by id, when found and matching the filters.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByIdRequest {
    pub execution_id: String,
    pub filters: Option<TaskExecutionStorageFilters>,
    pub update: TaskExecutionStorageUpdate,
}

/// Update one execution by id and, when that update happened, insert its children in the
/// same transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByIdAndInsertChildrenIfUpdatedRequest {
    pub execution_id: String,
    pub filters: Option<TaskExecutionStorageFilters>,
    pub update: TaskExecutionStorageUpdate,
    pub children_task_executions_to_insert_if_any_updated: Vec<TaskExecutionStorageValue>,
}

/// Claim executions whose start time has come.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByStatusAndStartAtLessThanRequest {
    pub status: TaskExecutionStatus,
    pub start_at_less_than: u64,
    pub update: TaskExecutionStorageUpdate,
    /// Each claimed execution gets `expiresAt = this + its timeoutMs`.
    pub update_expires_at_with_started_at: u64,
    pub limit: u32,
}

/// Pick executions whose children have all finished.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
    pub status: TaskExecutionStatus,
    pub on_children_finished_processing_status: OnChildrenFinishedProcessingStatus,
    pub update: TaskExecutionStorageUpdate,
    pub limit: u32,
}

/// Pick executions by close status.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByCloseStatusRequest {
    pub close_status: CloseStatus,
    pub update: TaskExecutionStorageUpdate,
    pub limit: u32,
}

/// Expire executions (of one status, sleeping or not) whose `expiresAt` has passed.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
    pub status: TaskExecutionStatus,
    pub is_sleeping_task: bool,
    pub expires_at_less_than: u64,
    pub update: TaskExecutionStorageUpdate,
    pub limit: u32,
}

/// Expire on-children-finished processing that took too long.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest {
    pub on_children_finished_processing_expires_at_less_than: u64,
    pub update: TaskExecutionStorageUpdate,
    pub limit: u32,
}

/// Expire closings that took too long.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByCloseExpiresAtLessThanRequest {
    pub close_expires_at_less_than: u64,
    pub update: TaskExecutionStorageUpdate,
    pub limit: u32,
}

/// Pick an executor's executions whose promise must be cancelled.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
    pub executor_id: String,
    pub needs_promise_cancellation: bool,
    pub update: TaskExecutionStorageUpdate,
    pub limit: u32,
}

/// Look up every child of one parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetByParentExecutionIdRequest {
    pub parent_execution_id: String,
}

/// Update every child of one parent that is (or is not) finished.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateByParentExecutionIdAndIsFinishedRequest {
    pub parent_execution_id: String,
    pub is_finished: bool,
    pub update: TaskExecutionStorageUpdate,
}

/// Close finished executions and decrement their parents' active children counts.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateAndDecrementParentActiveChildrenCountRequest {
    pub is_finished: bool,
    pub close_status: CloseStatus,
    pub update: TaskExecutionStorageUpdate,
    pub limit: u32,
}
