//! The storage contract the engine runs on, and its value types.
//!
//! Every use of the storage crate goes through this module, so that moving the contract into a
//! crate of its own (the engine and the storages both depending on it) changes only the paths
//! below.

use durable_execution_storage_convex::runtime::ConvexError;
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

/// A copy of `error` (storage errors are not `Clone`), for a failure of a combined call that
/// every caller gets (see `batching`).
pub(crate) fn copy_error(error: &StorageError) -> StorageError {
    match error {
        StorageError::AlreadyExists { message } => StorageError::AlreadyExists {
            message: message.clone(),
        },
        StorageError::InvalidOptions(message) => StorageError::InvalidOptions(message.clone()),
        StorageError::InvalidRequest(message) => StorageError::InvalidRequest(message.clone()),
        StorageError::PartiallyApplied {
            operation,
            applied,
            total,
            source,
        } => StorageError::PartiallyApplied {
            operation,
            applied: *applied,
            total: *total,
            source: Box::new(copy_error(source)),
        },
        StorageError::Unauthorized { function, message } => StorageError::Unauthorized {
            function: function.clone(),
            message: message.clone(),
        },
        StorageError::LimitExceeded {
            function,
            limit,
            fits,
            message,
        } => StorageError::LimitExceeded {
            function: function.clone(),
            limit: limit.clone(),
            fits: *fits,
            message: message.clone(),
        },
        StorageError::TestModeRequired { function, message } => StorageError::TestModeRequired {
            function: function.clone(),
            message: message.clone(),
        },
        StorageError::InvalidArgument {
            function,
            path,
            message,
        } => StorageError::InvalidArgument {
            function: function.clone(),
            path: path.clone(),
            message: message.clone(),
        },
        StorageError::DocumentTooLarge {
            execution_id,
            bytes,
            limit,
        } => StorageError::DocumentTooLarge {
            execution_id: execution_id.clone(),
            bytes: *bytes,
            limit: *limit,
        },
        StorageError::UndecodableDocument(document) => {
            StorageError::UndecodableDocument(document.clone())
        }
        StorageError::Convex(error) => StorageError::Convex(copy_convex_error(error)),
        other => StorageError::InvalidRequest(other.to_string()),
    }
}

fn copy_convex_error(error: &ConvexError) -> ConvexError {
    match error {
        ConvexError::Function {
            path,
            message,
            code,
            data,
        } => ConvexError::Function {
            path: path.clone(),
            message: message.clone(),
            code: code.clone(),
            data: data.clone(),
        },
        ConvexError::Unauthorized { path, message } => ConvexError::Unauthorized {
            path: path.clone(),
            message: message.clone(),
        },
        ConvexError::Http {
            path,
            kind,
            status,
            code,
            message,
        } => ConvexError::Http {
            path: path.clone(),
            kind: *kind,
            status: *status,
            code: code.clone(),
            message: message.clone(),
        },
        ConvexError::Transport {
            path,
            kind,
            message,
            request_sent,
        } => ConvexError::Transport {
            path: path.clone(),
            kind: *kind,
            message: message.clone(),
            request_sent: *request_sent,
        },
        ConvexError::Decode { path, message } => ConvexError::Decode {
            path: path.clone(),
            message: message.clone(),
        },
        ConvexError::Encode { path, message } => ConvexError::Encode {
            path: path.clone(),
            message: message.clone(),
        },
        ConvexError::InvalidUrl { url, message } => ConvexError::InvalidUrl {
            url: url.clone(),
            message: message.clone(),
        },
        ConvexError::Attempts {
            path,
            attempts,
            elapsed,
            stopped,
            earlier,
            earlier_may_have_applied,
            last,
        } => ConvexError::Attempts {
            path: path.clone(),
            attempts: *attempts,
            elapsed: *elapsed,
            stopped: stopped.clone(),
            earlier: earlier.clone(),
            earlier_may_have_applied: *earlier_may_have_applied,
            last: Box::new(copy_convex_error(last)),
        },
        other => ConvexError::Decode {
            path: String::new(),
            message: other.to_string(),
        },
    }
}
