//! Running one claimed execution and storing what came of it (reference §3, "Running a
//! task"). Every write after a run is filtered on `status = running`, so that a cancellation
//! that landed first wins.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use crate::background::Process;
use crate::context::TaskContext;
use crate::error::TaskError;
use crate::executor::{validate_unique_id, Inner};
use crate::ids;
use crate::options::retry_delay_ms;
use crate::serializer::to_json;
use crate::signal::Signal;
use crate::storage::{
    is_already_exists, ParentTaskExecutionSummary, StorageError, TaskExecutionStatus,
    TaskExecutionStorageFilters, TaskExecutionStorageValue, TaskExecutionSummary,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
};
use crate::task::{Child, FinishedChild, Kind, Registered, RegisteredFinalize};
use crate::update::{is_finished, Update};

/// The message of the error an expired lease leaves (the original's).
pub(crate) const EXPIRED_MESSAGE: &str = "Task execution expired";

/// The stand-in execution id of a sequential step not started yet (the original's).
pub(crate) const PLACEHOLDER_EXECUTION_ID: &str = "dummy";

/// A child to insert: its task, its input and its per-child options.
pub(crate) struct PendingChild {
    pub task_id: String,
    pub input: ChildInput,
    pub options: crate::options::EnqueueOptions,
}

pub(crate) enum ChildInput {
    /// JSON text, to serialize (or an error to report).
    Json(Result<String, crate::serializer::SerializationError>),
    /// Already in stored form (a sequential step or loop iteration reuses a stored value).
    Stored(String),
}

impl From<Child> for PendingChild {
    fn from(child: Child) -> Self {
        Self {
            task_id: child.task_id,
            input: ChildInput::Json(child.input_json),
            options: child.options,
        }
    }
}

/// What a run produced, ready to store.
pub(crate) struct RunOutcome {
    pub output_json: String,
    pub children: Vec<PendingChild>,
}

/// `{"output":…,"children":[…]}`, the original's parent output, with its key order.
pub(crate) fn parent_output_json(
    output_json: &str,
    children: &[FinishedChild],
) -> Result<String, TaskError> {
    let children = to_json(children).map_err(|e| TaskError::non_retryable(e.to_string()))?;
    Ok(format!(
        r#"{{"output":{output_json},"children":{children}}}"#
    ))
}

/// A storage failure while storing a run's result: refused inserts are final, anything else
/// may work on a retry of the task.
pub(crate) fn storage_task_error(error: &StorageError) -> TaskError {
    if is_already_exists(error) {
        TaskError::non_retryable(error.to_string())
    } else {
        TaskError::retryable(error.to_string())
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

fn running_filter() -> Option<TaskExecutionStorageFilters> {
    Some(TaskExecutionStorageFilters {
        status: Some(TaskExecutionStatus::Running),
        ..TaskExecutionStorageFilters::default()
    })
}

impl Inner {
    /// Runs a claimed execution to its stored result (unless aborted).
    pub(crate) async fn run_execution(
        self: &Arc<Self>,
        mut execution: TaskExecutionStorageValue,
        cancellation: Signal,
    ) {
        let Some(definition) = self.definition(&execution.task_id) else {
            let error =
                TaskError::not_found(format!("Task not found [taskId={}]", execution.task_id));
            self.store_run_error(&execution, error).await;
            return;
        };
        // Decision (reference §3): an expired lease counts as an attempt. Only an expiry puts
        // an execution back to ready with a non-retryable error.
        let lease_expired = execution
            .error
            .as_ref()
            .is_some_and(|error| !error.is_retryable);
        if lease_expired {
            if execution.retry_attempts >= execution.retry_options.max_attempts {
                let error = TaskError::non_retryable(format!(
                    "{EXPIRED_MESSAGE}: its lease ran out on attempt {} and no retry attempts \
                     are left [maxAttempts={}]",
                    execution.retry_attempts, execution.retry_options.max_attempts
                ));
                self.store_run_error(&execution, error).await;
                return;
            }
            execution.retry_attempts += 1;
            let update = Update {
                retry_attempts: Some(execution.retry_attempts),
                ..Update::default()
            };
            if let Err(error) = self.update_running(&execution, update).await {
                self.log_error(format_args!(
                    "could not count the expired lease of {}: {error}",
                    execution.execution_id
                ));
            }
        }
        let context = TaskContext {
            root: execution.root.clone(),
            parent: execution.parent.clone(),
            task_id: execution.task_id.clone(),
            execution_id: execution.execution_id.clone(),
            attempt: execution.retry_attempts,
            previous_error: execution
                .error
                .as_ref()
                .map(TaskError::from_execution_error),
            shutdown: self.shutdown.clone(),
            cancellation: cancellation.clone(),
        };
        let outcome = self
            .run_with_timeout(&definition, &execution, context, &cancellation)
            .await;
        let stored = match outcome {
            Ok(outcome) => {
                self.store_run_result(&execution, &definition, outcome)
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = stored {
            self.store_run_error(&execution, error).await;
        }
    }

    async fn run_with_timeout(
        &self,
        definition: &Registered,
        execution: &TaskExecutionStorageValue,
        context: TaskContext,
        cancellation: &Signal,
    ) -> Result<RunOutcome, TaskError> {
        match &definition.kind {
            Kind::Task | Kind::Parent => {}
            Kind::Sequential(steps) => {
                let first = steps.first().ok_or_else(|| {
                    TaskError::non_retryable("sequential tasks without steps").internal()
                })?;
                return Ok(RunOutcome {
                    output_json: "null".into(),
                    children: vec![PendingChild {
                        task_id: first.clone(),
                        input: ChildInput::Stored(execution.input.clone()),
                        options: crate::options::EnqueueOptions::default(),
                    }],
                });
            }
            Kind::Looping {
                iteration,
                sleep_ms_before_run,
                ..
            } => {
                let mut options = crate::options::EnqueueOptions::default();
                if let Some(sleep) = sleep_ms_before_run {
                    options.sleep_before_run = Some(Duration::from_millis(*sleep));
                }
                return Ok(RunOutcome {
                    output_json: "null".into(),
                    children: vec![PendingChild {
                        task_id: iteration.clone(),
                        input: ChildInput::Stored(execution.input.clone()),
                        options,
                    }],
                });
            }
            Kind::Sleeping => {
                return Err(TaskError::non_retryable("Sleeping tasks cannot be run").internal())
            }
        }
        let run = definition
            .run
            .clone()
            .ok_or_else(|| TaskError::non_retryable("task has no run function").internal())?;
        let input = self
            .codec
            .value(&execution.input)
            .map_err(|e| TaskError::non_retryable(format!("Invalid input: {e}")))?;
        let future = AssertUnwindSafe(run(context, input)).catch_unwind();
        let timeout = Duration::from_millis(execution.timeout_ms);
        tokio::select! {
            result = future => match result {
                Ok(result) => result.map(|r| RunOutcome {
                    output_json: r.output_json,
                    children: r.children.into_iter().map(PendingChild::from).collect(),
                }),
                Err(panic) => Err(TaskError::retryable(format!(
                    "task panicked: {}",
                    panic_message(panic.as_ref())
                ))),
            },
            () = tokio::time::sleep(timeout) => {
                cancellation.fire();
                Err(TaskError::timed_out("Task execution timed out"))
            }
        }
    }

    /// Writes `update` to a running execution (filter `status = running`).
    async fn update_running(
        &self,
        execution: &TaskExecutionStorageValue,
        update: Update,
    ) -> Result<(), StorageError> {
        let now = self.store.now();
        self.store
            .update_many_by_id_guarded(vec![UpdateByIdRequest {
                execution_id: execution.execution_id.clone(),
                filters: running_filter(),
                update: update.at(now),
            }])
            .await
    }

    async fn store_run_result(
        self: &Arc<Self>,
        execution: &TaskExecutionStorageValue,
        definition: &Registered,
        outcome: RunOutcome,
    ) -> Result<(), TaskError> {
        let RunOutcome {
            output_json,
            children,
        } = outcome;
        let max = self.options.max_children as usize;
        if children.len() > max {
            return Err(TaskError::non_retryable(format!(
                "Parent task tried to spawn more than max children tasks [taskId={}] \
                 [attempted={}] [max={max}]",
                definition.id,
                children.len()
            )));
        }
        let now = self.store.now();
        let output_error = |e: crate::serializer::SerializationError| {
            TaskError::non_retryable(format!("Invalid output: {e}"))
        };
        if !children.is_empty() {
            let (values, summaries) = self.children_values(execution, definition, children, now)?;
            let inserted = u32::try_from(values.len()).unwrap_or(u32::MAX);
            let sleeps = child_sleeps(&values);
            let update = Update {
                run_output: Some(self.codec.output_json(&output_json).map_err(output_error)?),
                children: Some(summaries),
                active_children_count: Some(inserted),
                ..Update::status(TaskExecutionStatus::WaitingForChildren)
            };
            self.store
                .update_and_insert_children_guarded(vec![
                    UpdateByIdAndInsertChildrenIfUpdatedRequest {
                        execution_id: execution.execution_id.clone(),
                        filters: running_filter(),
                        update: update.at(now),
                        children_task_executions_to_insert_if_any_updated: values,
                    },
                ])
                .await
                .map_err(|e| storage_task_error(&e))?;
            self.wake_for_children(sleeps);
            return Ok(());
        }
        match &definition.finalize {
            Some(RegisteredFinalize::Function(finalize)) => {
                let input = parent_output_json(&output_json, &[])?;
                let input: serde_json::Value = serde_json::from_str(&input)
                    .map_err(|e| TaskError::non_retryable(e.to_string()))?;
                let update = match finalize(input).await {
                    Ok(json) => Update {
                        output: Some(self.codec.output_json(&json).map_err(output_error)?),
                        waiting_for_finalize_started_at: Some(now),
                        children: Some(Vec::new()),
                        ..Update::status(TaskExecutionStatus::Completed)
                    },
                    Err(error) => Update {
                        error: Some(TaskError::non_retryable(error.message()).to_execution_error()),
                        waiting_for_finalize_started_at: Some(now),
                        children: Some(Vec::new()),
                        ..Update::status(TaskExecutionStatus::FinalizeFailed)
                    },
                };
                self.update_running(execution, update)
                    .await
                    .map_err(|e| storage_task_error(&e))?;
                self.finished(&execution.execution_id);
            }
            Some(RegisteredFinalize::Task(finalize_id)) => {
                let input = parent_output_json(&output_json, &[])?;
                let (value, summary) = self.finalize_value(execution, finalize_id, &input, now)?;
                let finalize_execution_id = value.execution_id.clone();
                let update = Update {
                    waiting_for_children_started_at: Some(now),
                    children: Some(Vec::new()),
                    finalize: Some(summary),
                    ..Update::status(TaskExecutionStatus::WaitingForFinalize)
                };
                self.store
                    .update_and_insert_children_guarded(vec![
                        UpdateByIdAndInsertChildrenIfUpdatedRequest {
                            execution_id: execution.execution_id.clone(),
                            filters: running_filter(),
                            update: update.at(now),
                            children_task_executions_to_insert_if_any_updated: vec![value],
                        },
                    ])
                    .await
                    .map_err(|e| storage_task_error(&e))?;
                self.wakers.ready(&finalize_execution_id, Duration::ZERO);
            }
            None => {
                let output = if definition.kind.is_parent() {
                    parent_output_json(&output_json, &[])?
                } else {
                    output_json
                };
                let update = Update {
                    output: Some(self.codec.output_json(&output).map_err(output_error)?),
                    children: Some(Vec::new()),
                    ..Update::status(TaskExecutionStatus::Completed)
                };
                self.update_running(execution, update)
                    .await
                    .map_err(|e| storage_task_error(&e))?;
                self.finished(&execution.execution_id);
            }
        }
        Ok(())
    }

    /// Wakes process 1 for inserted children, now or when their start times come, and the
    /// expiry process when sleeping ones time out.
    pub(crate) fn wake_for_children(&self, wakes: ChildWakes) {
        self.wakers.ready_many(
            wakes
                .ready
                .iter()
                .map(|(id, sleep)| (id.as_str(), Duration::from_millis(*sleep))),
        );
        for expiry in wakes.expiries {
            self.wakers
                .wake_after(Process::Expired, Duration::from_millis(expiry));
        }
    }

    /// The finalize child of `parent` with `input_json` (the parent output), and its summary.
    pub(crate) fn finalize_value(
        &self,
        parent: &TaskExecutionStorageValue,
        finalize_id: &str,
        input_json: &str,
        now: u64,
    ) -> Result<(TaskExecutionStorageValue, TaskExecutionSummary), TaskError> {
        let definition = self.definition(finalize_id).ok_or_else(|| {
            TaskError::not_found(format!("Finalize task not found [taskId={finalize_id}]"))
        })?;
        let input = self
            .codec
            .input_json(input_json)
            .map_err(|e| TaskError::non_retryable(format!("Invalid finalize input: {e}")))?;
        let execution_id = ids::execution_id();
        let value = self.new_execution(
            &definition,
            &definition.options,
            Some(root_of(parent)),
            Some(ParentTaskExecutionSummary {
                task_id: parent.task_id.clone(),
                execution_id: parent.execution_id.clone(),
                index_in_parent_children: 0,
                is_only_child_of_parent: false,
                is_finalize_of_parent: true,
            }),
            execution_id.clone(),
            None,
            input,
            now,
        );
        Ok((
            value,
            TaskExecutionSummary {
                task_id: definition.id.clone(),
                execution_id,
            },
        ))
    }

    /// The children to insert and the parent's `children` list (for sequential tasks, only
    /// the first step is inserted; the others are placeholders).
    fn children_values(
        &self,
        parent: &TaskExecutionStorageValue,
        definition: &Registered,
        children: Vec<PendingChild>,
        now: u64,
    ) -> Result<(Vec<TaskExecutionStorageValue>, Vec<TaskExecutionSummary>), TaskError> {
        let sequential_steps = match &definition.kind {
            Kind::Sequential(steps) => Some(steps),
            _ => None,
        };
        let inserted_count = if sequential_steps.is_some() {
            1
        } else {
            children.len()
        };
        let mut values = Vec::with_capacity(inserted_count);
        let mut summaries = Vec::new();
        for (index, child) in children.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let value = self.child_value(parent, child, index, inserted_count == 1, now)?;
            summaries.push(TaskExecutionSummary {
                task_id: value.task_id.clone(),
                execution_id: value.execution_id.clone(),
            });
            values.push(value);
        }
        if let Some(steps) = sequential_steps {
            for step in steps.iter().skip(1) {
                summaries.push(TaskExecutionSummary {
                    task_id: step.clone(),
                    execution_id: PLACEHOLDER_EXECUTION_ID.into(),
                });
            }
        }
        Ok((values, summaries))
    }

    /// One child of `parent`, at `index`; its options are validated like enqueue options
    /// (a decision: the original does not validate them).
    pub(crate) fn child_value(
        &self,
        parent: &TaskExecutionStorageValue,
        child: PendingChild,
        index: u32,
        is_only_child: bool,
        now: u64,
    ) -> Result<TaskExecutionStorageValue, TaskError> {
        let definition = self.definition(&child.task_id).ok_or_else(|| {
            TaskError::not_found(format!("Child task not found [taskId={}]", child.task_id))
        })?;
        let options = child
            .options
            .apply(&definition.id, &definition.options)
            .map_err(|e| TaskError::non_retryable(e.to_string()))?;
        let invalid_input = |e: String| {
            TaskError::non_retryable(format!(
                "Invalid input of child task {}: {e}",
                definition.id
            ))
        };
        let (unique_id, input) = if definition.kind == Kind::Sleeping {
            let unique_id: String = match child.input {
                ChildInput::Json(json) => {
                    let json = json.map_err(|e| invalid_input(e.to_string()))?;
                    serde_json::from_str(&json).map_err(|e| invalid_input(e.to_string()))?
                }
                ChildInput::Stored(stored) => self
                    .codec
                    .decode(&stored)
                    .map_err(|e| invalid_input(e.to_string()))?,
            };
            validate_unique_id(&definition.id, &unique_id).map_err(invalid_input)?;
            let input = self
                .codec
                .input_json("null")
                .map_err(|e| invalid_input(e.to_string()))?;
            (Some(unique_id), input)
        } else {
            let input = match child.input {
                ChildInput::Json(json) => {
                    let json = json.map_err(|e| invalid_input(e.to_string()))?;
                    self.codec
                        .input_json(&json)
                        .map_err(|e| invalid_input(e.to_string()))?
                }
                ChildInput::Stored(stored) => stored,
            };
            (None, input)
        };
        Ok(self.new_execution(
            &definition,
            &options,
            Some(root_of(parent)),
            Some(ParentTaskExecutionSummary {
                task_id: parent.task_id.clone(),
                execution_id: parent.execution_id.clone(),
                index_in_parent_children: index,
                is_only_child_of_parent: is_only_child,
                is_finalize_of_parent: false,
            }),
            ids::execution_id(),
            unique_id,
            input,
            now,
        ))
    }

    /// Stores a failed run: back to ready with a delay when it may be retried, else finished
    /// (`timed_out`, `cancelled` or `failed`).
    pub(crate) async fn store_run_error(
        &self,
        execution: &TaskExecutionStorageValue,
        error: TaskError,
    ) {
        let now = self.store.now();
        let retry =
            error.is_retryable() && execution.retry_attempts < execution.retry_options.max_attempts;
        let (update, delay) = if retry {
            let delay = retry_delay_ms(&execution.retry_options, execution.retry_attempts);
            let update = Update {
                error: Some(error.to_execution_error()),
                retry_attempts: Some(execution.retry_attempts + 1),
                start_at: Some(crate::processes::start_at(now, delay)),
                ..Update::status(TaskExecutionStatus::Ready)
            };
            (update, Some(delay))
        } else {
            let status = match error.error_type() {
                crate::storage::ErrorType::TimedOut => TaskExecutionStatus::TimedOut,
                crate::storage::ErrorType::Cancelled => TaskExecutionStatus::Cancelled,
                _ => TaskExecutionStatus::Failed,
            };
            debug_assert!(is_finished(status));
            let update = Update {
                error: Some(error.to_execution_error()),
                ..Update::status(status)
            };
            (update, None)
        };
        self.log_debug(format_args!(
            "task execution {} failed (retry: {retry}): {error}",
            execution.execution_id
        ));
        if let Err(storage_error) = self.update_running(execution, update).await {
            self.log_error(format_args!(
                "could not store the failure of task execution {} ({error}): {storage_error}; \
                 it is retried when its lease expires",
                execution.execution_id
            ));
            return;
        }
        match delay {
            Some(delay) => self
                .wakers
                .ready(&execution.execution_id, Duration::from_millis(delay)),
            None => self.finished(&execution.execution_id),
        }
    }
}

/// When inserted executions need a background process: the children that run, with their
/// delays before they can be claimed, and the distinct delays before the sleeping ones time
/// out.
#[derive(Debug, Default)]
pub(crate) struct ChildWakes {
    ready: Vec<(String, u64)>,
    expiries: Vec<u64>,
}

pub(crate) fn child_sleeps(children: &[TaskExecutionStorageValue]) -> ChildWakes {
    let distinct = |mut delays: Vec<u64>| {
        delays.sort_unstable();
        delays.dedup();
        delays
    };
    ChildWakes {
        ready: children
            .iter()
            .filter(|c| !c.is_sleeping_task)
            .map(|c| (c.execution_id.clone(), c.sleep_ms_before_run))
            .collect(),
        expiries: distinct(
            children
                .iter()
                .filter(|c| c.is_sleeping_task)
                .map(|c| c.sleep_ms_before_run.saturating_add(c.timeout_ms))
                .collect(),
        ),
    }
}

/// The root of a child of `parent`: the parent's root, or the parent itself.
pub(crate) fn root_of(parent: &TaskExecutionStorageValue) -> TaskExecutionSummary {
    parent.root.clone().unwrap_or_else(|| TaskExecutionSummary {
        task_id: parent.task_id.clone(),
        execution_id: parent.execution_id.clone(),
    })
}
