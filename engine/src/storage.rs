//! The storage contract the engine runs on, and its value types.
//!
//! Every use of the storage crate goes through this module, so that moving the contract into a
//! crate of its own (the engine and the storages both depending on it) changes only the paths
//! below.

pub use durable_execution_storage_convex::storage::{
    GetByIdRequest, GetByParentExecutionIdRequest, GetBySleepingTaskUniqueIdRequest,
    ParentTaskExecutionSummary, StorageError, TaskExecutionStorageFilters,
    TaskExecutionStorageUpdate, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateAndDecrementParentActiveChildrenCountRequest, UpdateByCloseExpiresAtLessThanRequest,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
pub use durable_execution_storage_convex::storage::{
    InMemoryTaskExecutionsStorage, NewTaskExecution,
};
pub use durable_execution_storage_convex::task_executions::{
    CloseStatus, ErrorType, ExecutionError, OnChildrenFinishedProcessingStatus, RetryOptions,
    TaskExecutionStatus, TaskExecutionSummary, TaskExecutionUnset,
};

/// Whether calling the same operation again cannot apply a write twice.
pub(crate) fn is_retry_safe(error: &StorageError) -> bool {
    error.is_retry_safe()
}

/// Whether an insert was refused because an id already exists.
pub(crate) fn is_already_exists(error: &StorageError) -> bool {
    error.is_already_exists()
}

/// Whether a call whose repetition cannot apply a write twice (its requests are filtered so
/// that a second application matches nothing) is worth repeating: a transient failure (the
/// storage already retried what it could; the outcome may be unknown). Never a refusal
/// (secret, limits, invalid arguments, a refused insert).
pub(crate) fn is_worth_repeating_guarded(error: &StorageError) -> bool {
    error.is_transient()
}
