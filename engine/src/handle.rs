//! Handles of executions and the executions they read (reference §4).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::error::{Error, TaskError};
use crate::executor::Inner;
use crate::serializer::Codec;
use crate::signal::Signal;
use crate::storage::{
    CloseStatus, ParentTaskExecutionSummary, TaskExecutionStatus, TaskExecutionStorageFilters,
    TaskExecutionStorageValue, TaskExecutionSummary, UpdateByIdRequest,
};
use crate::update::Update;

/// An execution as the handle reads it: the stored fields with typed times, and the output
/// (when completed) or the error.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TaskExecution<O> {
    pub root: Option<TaskExecutionSummary>,
    pub parent: Option<ParentTaskExecutionSummary>,
    pub task_id: String,
    pub execution_id: String,
    pub is_sleeping_task: bool,
    pub sleeping_task_unique_id: Option<String>,
    pub status: TaskExecutionStatus,
    pub is_finished: bool,
    /// The output, when completed.
    pub output: Option<O>,
    /// The error of a failed, timed out, finalize-failed or cancelled execution (or of the
    /// previous attempt of one waiting for a retry).
    pub error: Option<TaskError>,
    pub retry_attempts: u32,
    pub children: Vec<TaskExecutionSummary>,
    pub finalize: Option<TaskExecutionSummary>,
    pub close_status: CloseStatus,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub start_at: SystemTime,
    pub started_at: Option<SystemTime>,
    pub expires_at: Option<SystemTime>,
    pub waiting_for_children_started_at: Option<SystemTime>,
    pub waiting_for_finalize_started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub closed_at: Option<SystemTime>,
}

fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl<O: DeserializeOwned> TaskExecution<O> {
    pub(crate) fn from_value(
        codec: &Codec,
        value: TaskExecutionStorageValue,
    ) -> Result<Self, Error> {
        let output = match (&value.output, value.status) {
            (Some(stored), TaskExecutionStatus::Completed) => Some(codec.decode(stored)?),
            _ => None,
        };
        Ok(Self {
            root: value.root,
            parent: value.parent,
            task_id: value.task_id,
            execution_id: value.execution_id,
            is_sleeping_task: value.is_sleeping_task,
            sleeping_task_unique_id: value.sleeping_task_unique_id,
            status: value.status,
            is_finished: value.is_finished,
            output,
            error: value.error.as_ref().map(TaskError::from_execution_error),
            retry_attempts: value.retry_attempts,
            children: value.children.unwrap_or_default(),
            finalize: value.finalize,
            close_status: value.close_status,
            created_at: time(value.created_at),
            updated_at: time(value.updated_at),
            start_at: time(value.start_at),
            started_at: value.started_at.map(time),
            expires_at: value.expires_at.map(time),
            waiting_for_children_started_at: value.waiting_for_children_started_at.map(time),
            waiting_for_finalize_started_at: value.waiting_for_finalize_started_at.map(time),
            finished_at: value.finished_at.map(time),
            closed_at: value.closed_at.map(time),
        })
    }
}

impl<O> TaskExecution<O> {
    /// The output of a completed execution, else [`Error::ExecutionFailed`] with its status
    /// and error.
    pub fn into_result(self) -> Result<O, Error> {
        match (self.status, self.output) {
            (TaskExecutionStatus::Completed, Some(output)) => Ok(output),
            (status, _) => Err(Error::ExecutionFailed {
                status,
                error: self.error.unwrap_or_else(|| {
                    TaskError::non_retryable(format!("task execution is {}", status.as_str()))
                }),
            }),
        }
    }
}

/// How [`wait_finished`](TaskExecutionHandle::wait_finished) waits.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WaitOptions {
    /// How often the storage is read; at least 50 ms. Default 2.5 s. (An execution this
    /// executor finishes ends the wait at once.)
    pub polling_interval: Duration,
    /// Stops waiting (with [`Error::WaitCancelled`]) when it fires.
    pub cancel: Option<Signal>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            polling_interval: Duration::from_millis(2_500),
            cancel: None,
        }
    }
}

impl WaitOptions {
    /// Sets [`polling_interval`](Self::polling_interval).
    pub fn with_polling_interval(mut self, polling_interval: Duration) -> Self {
        self.polling_interval = polling_interval;
        self
    }

    /// Sets [`cancel`](Self::cancel).
    pub fn with_cancel(mut self, cancel: Signal) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// A handle on one execution, with its output type `O`.
pub struct TaskExecutionHandle<O> {
    inner: Arc<Inner>,
    task_id: String,
    execution_id: String,
    _output: PhantomData<fn() -> O>,
}

impl<O> Clone for TaskExecutionHandle<O> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            task_id: self.task_id.clone(),
            execution_id: self.execution_id.clone(),
            _output: PhantomData,
        }
    }
}

impl<O> fmt::Debug for TaskExecutionHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskExecutionHandle")
            .field("task_id", &self.task_id)
            .field("execution_id", &self.execution_id)
            .finish()
    }
}

/// Unregisters a waiter when the wait ends, however it ends.
struct Watch<'a> {
    inner: &'a Inner,
    execution_id: &'a str,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.inner.unwatch(self.execution_id);
    }
}

impl<O: DeserializeOwned> TaskExecutionHandle<O> {
    pub(crate) fn new(inner: Arc<Inner>, task_id: String, execution_id: String) -> Self {
        Self {
            inner,
            task_id,
            execution_id,
            _output: PhantomData,
        }
    }

    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The execution id.
    pub fn execution_id(&self) -> &str {
        &self.execution_id
    }

    /// The execution as stored now.
    pub async fn execution(&self) -> Result<TaskExecution<O>, Error> {
        let value = self
            .inner
            .store
            .get_by_id(&self.execution_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("task execution {}", self.execution_id)))?;
        TaskExecution::from_value(&self.inner.codec, value)
    }

    /// Waits until the execution is finished (polling the storage, and woken at once when this
    /// executor finishes it) and returns it.
    pub async fn wait_finished(&self, options: WaitOptions) -> Result<TaskExecution<O>, Error> {
        let interval = options.polling_interval.max(Duration::from_millis(50));
        let notify = self.inner.watch(&self.execution_id);
        let _watch = Watch {
            inner: &self.inner,
            execution_id: &self.execution_id,
        };
        loop {
            let finished = notify.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let execution = self.execution().await?;
            if execution.is_finished {
                return Ok(execution);
            }
            let cancelled = async {
                match &options.cancel {
                    Some(signal) => signal.fired().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = &mut finished => {}
                () = cancelled => return Err(Error::WaitCancelled),
            }
        }
    }

    /// Cancels the execution unless it has finished: it becomes `cancelled`, its running
    /// future (in whichever executor runs it) is dropped and writes nothing more, and its
    /// unfinished children are cancelled when it is closed.
    pub async fn cancel(&self) -> Result<(), Error> {
        let now = self.inner.store.now();
        let update = Update {
            error: Some(TaskError::cancelled("Task execution cancelled").to_execution_error()),
            needs_promise_cancellation: Some(true),
            ..Update::status(TaskExecutionStatus::Cancelled)
        };
        self.inner
            .store
            .update_many_by_id(vec![UpdateByIdRequest {
                execution_id: self.execution_id.clone(),
                filters: Some(TaskExecutionStorageFilters {
                    is_finished: Some(false),
                    ..TaskExecutionStorageFilters::default()
                }),
                update: update.at(now),
            }])
            .await?;
        self.inner.finished(&self.execution_id);
        self.inner
            .wakers
            .wake(crate::background::Process::Cancellations);
        Ok(())
    }
}
