//! Errors: [`TaskError`] (what a task run fails with, stored on the execution) and [`Error`]
//! (what the executor's own methods fail with).

use std::fmt;

use crate::storage::{ErrorType, ExecutionError, StorageError};

/// Why a task run failed: stored on the execution as `{errorType, message, isRetryable,
/// isInternal}`.
///
/// Any error converts into a retryable `TaskError` with `?` (the original treats every error a
/// task throws as retryable); use [`TaskError::non_retryable`] to stop retries at once.
/// Like `anyhow::Error`, it does not implement [`std::error::Error`] itself, so that the
/// blanket conversion from every error type is possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    error_type: ErrorType,
    message: String,
    is_retryable: bool,
    is_internal: bool,
}

impl TaskError {
    /// A generic error that may be retried (when the task has retries left).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::generic(message, true)
    }

    /// A generic error that is never retried.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        Self::generic(message, false)
    }

    fn generic(message: impl Into<String>, is_retryable: bool) -> Self {
        Self {
            error_type: ErrorType::Generic,
            message: message.into(),
            is_retryable,
            is_internal: false,
        }
    }

    /// The run took longer than the task's timeout (retryable, like the original's).
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self {
            error_type: ErrorType::TimedOut,
            message: message.into(),
            is_retryable: true,
            is_internal: false,
        }
    }

    /// The execution was cancelled (never retried).
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self {
            error_type: ErrorType::Cancelled,
            message: message.into(),
            is_retryable: false,
            is_internal: false,
        }
    }

    /// Something the execution needs does not exist (never retried).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            error_type: ErrorType::NotFound,
            message: message.into(),
            is_retryable: false,
            is_internal: false,
        }
    }

    /// Marks the error as the engine's own (internal) rather than the task's.
    pub(crate) fn internal(mut self) -> Self {
        self.is_internal = true;
        self
    }

    /// The kind of error, as stored (`errorType`).
    pub fn error_type(&self) -> ErrorType {
        self.error_type
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the execution may be retried after this error.
    pub fn is_retryable(&self) -> bool {
        self.is_retryable
    }

    /// Whether the engine (not the task) raised it.
    pub fn is_internal(&self) -> bool {
        self.is_internal
    }

    /// The stored form.
    pub fn to_execution_error(&self) -> ExecutionError {
        ExecutionError {
            error_type: self.error_type,
            message: self.message.clone(),
            is_retryable: self.is_retryable,
            is_internal: self.is_internal,
        }
    }

    /// From the stored form.
    pub fn from_execution_error(error: &ExecutionError) -> Self {
        Self {
            error_type: error.error_type,
            message: error.message.clone(),
            is_retryable: error.is_retryable,
            is_internal: error.is_internal,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    /// Any error is retryable, with its `Display` (and its sources') as the message.
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::retryable(message)
    }
}

/// What the executor's methods fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The executor was shut down: it registers, enqueues, looks up and wakes up nothing more.
    #[error("executor shut down")]
    ShutDown,
    /// Executor options out of their bounds.
    #[error("invalid executor options: {0}")]
    InvalidOptions(String),
    /// A task definition or per-call options out of their bounds, or a task id taken.
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// A task, execution or sleeping task unique id that does not exist (or belongs to
    /// another task).
    #[error("not found: {0}")]
    NotFound(String),
    /// A value that cannot be serialized or deserialized, or is too large.
    #[error("serialization: {0}")]
    Serialization(String),
    /// A storage call failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Waiting for an execution was cancelled by the caller's signal.
    #[error("waiting for the execution was cancelled")]
    WaitCancelled,
    /// The execution finished without completing (see
    /// [`TaskExecution::into_result`](crate::TaskExecution::into_result)).
    #[error("task execution {status}: {error}", status = status.as_str())]
    ExecutionFailed {
        status: crate::storage::TaskExecutionStatus,
        error: TaskError,
    },
    /// The storage holds something the engine cannot make sense of.
    #[error("invalid stored execution: {0}")]
    InvalidState(String),
}

impl Error {
    /// Whether trying the same call again may succeed: only some storage failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(error) => crate::storage::is_retry_safe(error),
            _ => false,
        }
    }
}

impl From<crate::serializer::SerializationError> for Error {
    fn from(error: crate::serializer::SerializationError) -> Self {
        Self::Serialization(error.to_string())
    }
}
