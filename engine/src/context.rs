//! [`TaskContext`]: what a running task knows about its execution.

use crate::error::TaskError;
use crate::signal::Signal;
use crate::storage::{ParentTaskExecutionSummary, TaskExecutionSummary};

/// The context of one run of a task.
#[derive(Clone, Debug)]
pub struct TaskContext {
    pub(crate) root: Option<TaskExecutionSummary>,
    pub(crate) parent: Option<ParentTaskExecutionSummary>,
    pub(crate) task_id: String,
    pub(crate) execution_id: String,
    pub(crate) attempt: u32,
    pub(crate) previous_error: Option<TaskError>,
    pub(crate) shutdown: Signal,
    pub(crate) cancellation: Signal,
}

impl TaskContext {
    /// The root of the task tree (absent for a root execution).
    pub fn root(&self) -> Option<&TaskExecutionSummary> {
        self.root.as_ref()
    }

    /// The parent (absent for a root execution).
    pub fn parent(&self) -> Option<&ParentTaskExecutionSummary> {
        self.parent.as_ref()
    }

    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The execution id.
    pub fn execution_id(&self) -> &str {
        &self.execution_id
    }

    /// The attempt: 0 on the first run, then the number of retries so far (`retryAttempts`).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The error of the previous attempt, if any.
    pub fn previous_error(&self) -> Option<&TaskError> {
        self.previous_error.as_ref()
    }

    /// Fires when the executor shuts down: a task that sees it and returns still has its
    /// result written (within the shutdown's drain bound).
    pub fn shutdown_signal(&self) -> &Signal {
        &self.shutdown
    }

    /// Fires when this run is cancelled, times out or is aborted, just before its future is
    /// dropped: watch it to stop work spawned outside the future.
    pub fn cancellation_signal(&self) -> &Signal {
        &self.cancellation
    }
}
