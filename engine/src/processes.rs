//! One iteration of each background process (reference §3). Each returns whether it should
//! run again at once (a full batch: there may be more).
//!
//! Processes 2 and 4 handle their whole batch with a few batched storage calls (one read of
//! every parent's children, one write of every result) instead of a call per execution.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use serde_json::Value;

use crate::background::Process;
use crate::error::{Error, TaskError};
use crate::executor::Inner;
use crate::run::{
    parent_output_json, ChildInput, PendingChild, EXPIRED_MESSAGE, PLACEHOLDER_EXECUTION_ID,
};
use crate::serializer::to_json;
use crate::storage::{
    is_already_exists, CloseStatus, GetByIdRequest, GetByParentExecutionIdRequest,
    OnChildrenFinishedProcessingStatus, TaskExecutionStatus, TaskExecutionStorageFilters,
    TaskExecutionStorageValue, UpdateAndDecrementParentActiveChildrenCountRequest,
    UpdateByCloseExpiresAtLessThanRequest, UpdateByCloseStatusRequest,
    UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use crate::task::{FinishedChild, Kind, Registered, RegisteredFinalize};
use crate::update::{is_finished, Update};

/// How long on-children-finished processing and closing may take before another executor
/// takes over: 2 minutes plus the expire leeway (the original's).
const PROCESSING_EXPIRY_MS: u64 = 2 * 60 * 1000;

/// How far back an undelayed `startAt` is sent. The storage raises it to its own `now` (the
/// storage API's `at_least_now` rule: both storages do), so the execution is claimable at once
/// on the storage's clock, even when `store.now()`, this process's estimate of that clock (for
/// Convex, from the `Date` headers of its responses: off by up to about half a second), runs
/// ahead of it.
pub(crate) const CLOCK_MARGIN_MS: u64 = 1_000;

/// The `startAt` of an execution to run after `delay_ms`: with no delay, `CLOCK_MARGIN_MS`
/// before `now`, which the storage raises to its own `now` (the `at_least_now` rule), so that
/// an estimate of the storage's clock that runs ahead does not delay the start.
pub(crate) fn start_at(now: u64, delay_ms: u64) -> u64 {
    if delay_ms == 0 {
        now.saturating_sub(CLOCK_MARGIN_MS)
    } else {
        now.saturating_add(delay_ms)
    }
}

/// What processing a parent whose children finished writes.
struct ParentWrite {
    execution_id: String,
    update: Update,
    children: Vec<TaskExecutionStorageValue>,
    finishes: bool,
}

fn filter_status(status: TaskExecutionStatus) -> Option<TaskExecutionStorageFilters> {
    Some(TaskExecutionStorageFilters {
        status: Some(status),
        ..TaskExecutionStorageFilters::default()
    })
}

/// What an iteration found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// It found work.
    pub found: bool,
    /// It found a full batch: there may be more, run again at once.
    pub more: bool,
}

fn full(count: usize, limit: u32) -> Progress {
    Progress {
        found: count > 0,
        more: count >= limit as usize,
    }
}

impl Inner {
    pub(crate) async fn iterate(self: &Arc<Self>, process: Process) -> Result<Progress, Error> {
        match process {
            Process::ClaimReady => self.claim_ready().await,
            Process::ChildrenFinished => self.process_children_finished().await,
            Process::MarkFinished => self.mark_finished().await,
            Process::Close => self.close_finished().await,
            Process::Cancellations => self.deliver_cancellations().await,
            Process::Expired => self.recover_expired().await,
        }
    }

    /// When a pick made at `now` (on-children-finished processing, closing) expires.
    fn processing_expires_at(&self, now: u64) -> u64 {
        now.saturating_add(PROCESSING_EXPIRY_MS + self.options.expire_leeway_ms)
    }

    /// Process 1: claims ready executions whose start time has come and runs them.
    async fn claim_ready(self: &Arc<Self>) -> Result<Progress, Error> {
        let max = self.options.max_concurrent_task_executions as usize;
        let running = self.running_count();
        if running >= max {
            return Ok(Progress::default());
        }
        let free = u32::try_from(max - running).unwrap_or(u32::MAX);
        let limit = self.options.max_task_executions_per_batch.min(free);
        let now = self.store.now();
        let executions = self
            .store
            .claim_ready(UpdateByStatusAndStartAtLessThanRequest {
                status: TaskExecutionStatus::Ready,
                start_at_less_than: now.saturating_add(1),
                update: Update {
                    executor_id: Some(self.id.clone()),
                    ..Update::status(TaskExecutionStatus::Running)
                }
                .at(now),
                update_expires_at_with_started_at: now
                    .saturating_add(self.options.expire_leeway_ms),
                limit,
            })
            .await?;
        let claimed = executions.len();
        self.wakers
            .claimed(executions.iter().map(|e| e.execution_id.as_str()));
        if claimed > 0 {
            self.log_debug(format_args!("claimed {claimed} task executions"));
        }
        for execution in executions {
            self.spawn_execution(execution);
        }
        Ok(full(claimed, limit))
    }

    /// Process 2: completes, finalizes or continues parents whose children all finished.
    async fn process_children_finished(self: &Arc<Self>) -> Result<Progress, Error> {
        let now = self.store.now();
        let limit = self.options.children_finished_batch_size;
        let executions = self
            .store
            .claim_children_finished(
                UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
                    status: TaskExecutionStatus::WaitingForChildren,
                    on_children_finished_processing_status:
                        OnChildrenFinishedProcessingStatus::Idle,
                    update: Update {
                        ocfp_status: Some(OnChildrenFinishedProcessingStatus::Processing),
                        ocfp_expires_at: Some(self.processing_expires_at(now)),
                        ..Update::default()
                    }
                    .at(now),
                    limit,
                },
            )
            .await?;
        let count = executions.len();
        if count == 0 {
            return Ok(Progress::default());
        }
        match self.children_finished_batch(&executions).await {
            Ok(()) => {}
            Err(error) => {
                // Give them back at once rather than after the processing expiry.
                let now = self.store.now();
                let requests = executions
                    .iter()
                    .map(|e| UpdateByIdRequest {
                        execution_id: e.execution_id.clone(),
                        filters: filter_status(TaskExecutionStatus::WaitingForChildren),
                        update: Update {
                            ocfp_status: Some(OnChildrenFinishedProcessingStatus::Idle),
                            ..Update::default()
                        }
                        .at(now),
                    })
                    .collect();
                if let Err(revert) = self.store.update_many_by_id(requests).await {
                    self.log_error(format_args!(
                        "could not release parents after a failure ({revert}): they are \
                         released when their processing expires"
                    ));
                }
                return Err(error);
            }
        }
        Ok(full(count, limit))
    }

    async fn children_finished_batch(
        self: &Arc<Self>,
        executions: &[TaskExecutionStorageValue],
    ) -> Result<(), Error> {
        // Reads: every child of the plain parents, the last step of the composite ones.
        let definitions: Vec<Option<Arc<Registered>>> = executions
            .iter()
            .map(|e| self.definition(&e.task_id))
            .collect();
        let mut all_children_of = Vec::new();
        let mut last_child_of = Vec::new();
        for (execution, definition) in executions.iter().zip(&definitions) {
            match definition.as_ref().map(|d| &d.kind) {
                Some(Kind::Sequential(_) | Kind::Looping { .. }) => {
                    if let Some(id) = last_started_child(execution) {
                        last_child_of.push(id);
                    }
                }
                Some(_) if execution.children.as_ref().is_some_and(|c| !c.is_empty()) => {
                    all_children_of.push(execution.execution_id.clone());
                }
                _ => {}
            }
        }
        let (children, last_children) = futures::try_join!(
            self.store.get_many_by_parent_execution_id(
                all_children_of
                    .iter()
                    .map(|id| GetByParentExecutionIdRequest {
                        parent_execution_id: id.clone(),
                    })
                    .collect(),
            ),
            self.store.get_many_by_id(
                last_child_of
                    .iter()
                    .map(|id| GetByIdRequest {
                        execution_id: id.clone(),
                        filters: None,
                    })
                    .collect(),
            ),
        )?;
        let mut children_of: HashMap<String, Vec<TaskExecutionStorageValue>> =
            all_children_of.into_iter().zip(children).collect();
        let mut by_id: HashMap<String, TaskExecutionStorageValue> = last_children
            .into_iter()
            .flatten()
            .map(|child| (child.execution_id.clone(), child))
            .collect();
        let now = self.store.now();
        let writes = join_all(
            executions
                .iter()
                .zip(definitions)
                .map(|(execution, definition)| {
                    let children = children_of.remove(&execution.execution_id);
                    let last = last_started_child(execution).and_then(|id| by_id.remove(&id));
                    async move {
                        let result = match definition {
                            None => Err(TaskError::not_found(format!(
                                "Task not found [taskId={}]",
                                execution.task_id
                            ))),
                            Some(definition) => {
                                self.children_finished_write(
                                    execution,
                                    &definition,
                                    children,
                                    last,
                                    now,
                                )
                                .await
                            }
                        };
                        result.unwrap_or_else(|error| fail_parent(execution, error, false))
                    }
                }),
        )
        .await;
        self.write_parents(writes).await
    }

    /// Writes every parent's result in one call; when an insert is refused (a sleeping child's
    /// unique id already exists), writes them one by one and fails the refused ones.
    async fn write_parents(&self, writes: Vec<ParentWrite>) -> Result<(), Error> {
        let now = self.store.now();
        let request = |write: &ParentWrite| UpdateByIdAndInsertChildrenIfUpdatedRequest {
            execution_id: write.execution_id.clone(),
            filters: filter_status(TaskExecutionStatus::WaitingForChildren),
            update: write.update.clone().at(now),
            children_task_executions_to_insert_if_any_updated: write.children.clone(),
        };
        let requests = writes.iter().map(request).collect();
        match self
            .store
            .update_many_by_id_and_insert_children_if_updated(requests)
            .await
        {
            Ok(()) => {}
            Err(error) if is_already_exists(&error) && writes.len() > 1 => {
                for write in &writes {
                    let result = self
                        .store
                        .update_many_by_id_and_insert_children_if_updated(vec![request(write)])
                        .await;
                    if let Err(error) = result {
                        if !is_already_exists(&error) {
                            return Err(error.into());
                        }
                        self.fail_refused_parent(write, &error).await?;
                    }
                }
            }
            Err(error) if is_already_exists(&error) => {
                if let Some(write) = writes.first() {
                    self.fail_refused_parent(write, &error).await?;
                }
            }
            Err(error) => return Err(error.into()),
        }
        for write in &writes {
            self.wake_for_children(crate::run::child_sleeps(&write.children));
            if write.finishes {
                self.finished(&write.execution_id);
            }
        }
        Ok(())
    }

    async fn fail_refused_parent(
        &self,
        write: &ParentWrite,
        error: &crate::storage::StorageError,
    ) -> Result<(), Error> {
        let now = self.store.now();
        let update = Update {
            error: Some(TaskError::non_retryable(error.to_string()).to_execution_error()),
            ocfp_status: Some(OnChildrenFinishedProcessingStatus::Processed),
            ..Update::status(TaskExecutionStatus::Failed)
        };
        self.store
            .update_many_by_id(vec![UpdateByIdRequest {
                execution_id: write.execution_id.clone(),
                filters: filter_status(TaskExecutionStatus::WaitingForChildren),
                update: update.at(now),
            }])
            .await?;
        self.finished(&write.execution_id);
        Ok(())
    }

    /// What to write for one parent whose children finished.
    async fn children_finished_write(
        &self,
        execution: &TaskExecutionStorageValue,
        definition: &Registered,
        children: Option<Vec<TaskExecutionStorageValue>>,
        last_child: Option<TaskExecutionStorageValue>,
        now: u64,
    ) -> Result<ParentWrite, TaskError> {
        match &definition.kind {
            Kind::Sequential(_) => self.next_sequential_step(execution, last_child, now),
            Kind::Looping {
                iteration,
                max_attempts,
                sleep_ms_before_run,
            } => self.next_loop_iteration(
                execution,
                last_child,
                iteration,
                *max_attempts,
                *sleep_ms_before_run,
                now,
            ),
            _ => {
                self.finalize_parent(execution, definition, children.unwrap_or_default(), now)
                    .await
            }
        }
    }

    async fn finalize_parent(
        &self,
        execution: &TaskExecutionStorageValue,
        definition: &Registered,
        children: Vec<TaskExecutionStorageValue>,
        now: u64,
    ) -> Result<ParentWrite, TaskError> {
        let expected = execution.children.clone().unwrap_or_default();
        let mut by_id: HashMap<String, TaskExecutionStorageValue> = children
            .into_iter()
            .map(|child| (child.execution_id.clone(), child))
            .collect();
        let mut finished = Vec::with_capacity(expected.len());
        for summary in &expected {
            let Some(child) = by_id.remove(&summary.execution_id) else {
                return Err(TaskError::not_found(format!(
                    "Some children task executions not found [parentTaskId={}] [total={}]",
                    execution.task_id,
                    expected.len()
                )));
            };
            finished.push(self.finished_child(child)?);
        }
        let run_output_json = match &execution.run_output {
            Some(stored) => to_json(
                &self
                    .codec
                    .value(stored)
                    .map_err(|e| TaskError::non_retryable(format!("Invalid run output: {e}")))?,
            )
            .map_err(|e| TaskError::non_retryable(e.to_string()))?,
            None => "null".into(),
        };
        let parent_output = parent_output_json(&run_output_json, &finished)?;
        let output_error =
            |e: crate::serializer::SerializationError| TaskError::non_retryable(e.to_string());
        let processed = Some(OnChildrenFinishedProcessingStatus::Processed);
        match &definition.finalize {
            None => {
                let output = if definition.kind.is_parent() {
                    self.codec
                        .output_json(&parent_output)
                        .map_err(output_error)?
                } else {
                    execution
                        .run_output
                        .clone()
                        .unwrap_or(self.codec.output_json("null").map_err(output_error)?)
                };
                Ok(ParentWrite {
                    execution_id: execution.execution_id.clone(),
                    update: Update {
                        output: Some(output),
                        ocfp_status: processed,
                        ..Update::status(TaskExecutionStatus::Completed)
                    },
                    children: Vec::new(),
                    finishes: true,
                })
            }
            Some(RegisteredFinalize::Function(finalize)) => {
                let input: Value = serde_json::from_str(&parent_output)
                    .map_err(|e| TaskError::non_retryable(e.to_string()))?;
                let update = match finalize(input).await {
                    Ok(json) => match self.codec.output_json(&json) {
                        Ok(output) => Update {
                            output: Some(output),
                            ..Update::status(TaskExecutionStatus::Completed)
                        },
                        Err(error) => Update {
                            error: Some(
                                TaskError::non_retryable(error.to_string()).to_execution_error(),
                            ),
                            ..Update::status(TaskExecutionStatus::FinalizeFailed)
                        },
                    },
                    Err(error) => Update {
                        error: Some(TaskError::non_retryable(error.message()).to_execution_error()),
                        ..Update::status(TaskExecutionStatus::FinalizeFailed)
                    },
                };
                Ok(ParentWrite {
                    execution_id: execution.execution_id.clone(),
                    update: Update {
                        waiting_for_finalize_started_at: Some(now),
                        ocfp_status: processed,
                        ..update
                    },
                    children: Vec::new(),
                    finishes: true,
                })
            }
            Some(RegisteredFinalize::Task(finalize_id)) => {
                let (value, summary) =
                    self.finalize_value(execution, finalize_id, &parent_output, now)?;
                Ok(ParentWrite {
                    execution_id: execution.execution_id.clone(),
                    update: Update {
                        finalize: Some(summary),
                        ocfp_status: processed,
                        ..Update::status(TaskExecutionStatus::WaitingForFinalize)
                    },
                    children: vec![value],
                    finishes: false,
                })
            }
        }
    }

    /// A finished child as a finalize sees it.
    fn finished_child(&self, child: TaskExecutionStorageValue) -> Result<FinishedChild, TaskError> {
        let completed = child.status == TaskExecutionStatus::Completed;
        let output = match (&child.output, completed) {
            (Some(stored), true) => Some(self.codec.value(stored).map_err(|e| {
                TaskError::non_retryable(format!(
                    "Invalid output of child {}: {e}",
                    child.execution_id
                ))
            })?),
            (None, true) => Some(Value::Null),
            _ => None,
        };
        let error = if completed {
            None
        } else {
            Some(child.error.clone().unwrap_or_else(|| {
                TaskError::non_retryable(format!(
                    "Unknown child task execution error [childTaskId={}]",
                    child.task_id
                ))
                .to_execution_error()
            }))
        };
        Ok(FinishedChild {
            task_id: child.task_id,
            execution_id: child.execution_id,
            status: child.status,
            output,
            error,
        })
    }

    /// Sequential tasks: inserts the next step with the previous step's output, or finishes
    /// with the last step's output.
    fn next_sequential_step(
        &self,
        execution: &TaskExecutionStorageValue,
        last_child: Option<TaskExecutionStorageValue>,
        now: u64,
    ) -> Result<ParentWrite, TaskError> {
        let mut children = execution.children.clone().unwrap_or_default();
        let next = children
            .iter()
            .position(|c| c.execution_id == PLACEHOLDER_EXECUTION_ID);
        let invalid = || {
            TaskError::non_retryable(format!(
                "Sequential tasks is in an invalid state [taskId={}]",
                execution.task_id
            ))
        };
        if children.is_empty() || next == Some(0) {
            return Err(invalid());
        }
        let previous_index = next.unwrap_or(children.len()) - 1;
        let previous = last_child.ok_or_else(|| {
            TaskError::not_found(format!(
                "Sequential task not found [parentTaskId={}] [index={previous_index}]",
                execution.task_id
            ))
        })?;
        if previous.status != TaskExecutionStatus::Completed {
            let error = TaskError::non_retryable(format!(
                "Sequential task failed [parentTaskId={}] [index={previous_index}]: {}",
                execution.task_id,
                previous
                    .error
                    .as_ref()
                    .map_or("Unknown error", |e| e.message.as_str())
            ));
            return Ok(fail_parent(execution, error, true));
        }
        let output = match previous.output {
            Some(output) => output,
            None => self
                .codec
                .output_json("null")
                .map_err(|e| TaskError::non_retryable(e.to_string()))?,
        };
        let Some(next) = next else {
            return Ok(ParentWrite {
                execution_id: execution.execution_id.clone(),
                update: Update {
                    output: Some(output),
                    ocfp_status: Some(OnChildrenFinishedProcessingStatus::Processed),
                    ..Update::status(TaskExecutionStatus::Completed)
                },
                children: Vec::new(),
                finishes: true,
            });
        };
        let step = PendingChild {
            task_id: children[next].task_id.clone(),
            input: ChildInput::Stored(output),
            options: crate::options::EnqueueOptions::default(),
        };
        let index = u32::try_from(next).unwrap_or(u32::MAX);
        let value = self.child_value(execution, step, index, true, now)?;
        children[next].execution_id = value.execution_id.clone();
        Ok(continue_with(execution, children, value))
    }

    /// Looping tasks: finishes when the last iteration was done or the attempts are used up,
    /// else inserts the next iteration.
    fn next_loop_iteration(
        &self,
        execution: &TaskExecutionStorageValue,
        last_child: Option<TaskExecutionStorageValue>,
        iteration: &str,
        max_attempts: u32,
        sleep_ms_before_run: Option<u64>,
        now: u64,
    ) -> Result<ParentWrite, TaskError> {
        let mut children = execution.children.clone().unwrap_or_default();
        let last = last_child.ok_or_else(|| {
            TaskError::not_found(format!(
                "Iteration task execution not found [taskId={}]",
                execution.task_id
            ))
        })?;
        if last.status != TaskExecutionStatus::Completed {
            let error = TaskError::non_retryable(format!(
                "Iteration task failed [taskId={iteration}]: {}",
                last.error
                    .as_ref()
                    .map_or("Unknown error", |e| e.message.as_str())
            ));
            return Ok(fail_parent(execution, error, true));
        }
        let output = match &last.output {
            Some(stored) => self
                .codec
                .value(stored)
                .map_err(|e| TaskError::non_retryable(format!("Invalid iteration output: {e}")))?,
            None => Value::Null,
        };
        let done = output
            .get("isDone")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                TaskError::non_retryable(format!(
                    "Invalid iteration output of task {iteration}: expected {{isDone, output?}}"
                ))
            })?;
        let finish = |json: String| -> Result<ParentWrite, TaskError> {
            Ok(ParentWrite {
                execution_id: execution.execution_id.clone(),
                update: Update {
                    output: Some(
                        self.codec
                            .output_json(&json)
                            .map_err(|e| TaskError::non_retryable(e.to_string()))?,
                    ),
                    waiting_for_finalize_started_at: Some(now),
                    ocfp_status: Some(OnChildrenFinishedProcessingStatus::Processed),
                    ..Update::status(TaskExecutionStatus::Completed)
                },
                children: Vec::new(),
                finishes: true,
            })
        };
        if done {
            let output = to_json(output.get("output").unwrap_or(&Value::Null))
                .map_err(|e| TaskError::non_retryable(e.to_string()))?;
            return finish(format!(r#"{{"isSuccess":true,"output":{output}}}"#));
        }
        let attempts = children.len();
        if attempts >= max_attempts as usize {
            return finish(r#"{"isSuccess":false}"#.into());
        }
        let mut options = crate::options::EnqueueOptions::default();
        if let Some(sleep) = sleep_ms_before_run {
            options.sleep_before_run = Some(std::time::Duration::from_millis(sleep));
        }
        let next = PendingChild {
            task_id: iteration.to_owned(),
            input: ChildInput::Stored(execution.input.clone()),
            options,
        };
        let index = u32::try_from(attempts).unwrap_or(u32::MAX);
        let value = self.child_value(execution, next, index, true, now)?;
        children.push(crate::storage::TaskExecutionSummary {
            task_id: value.task_id.clone(),
            execution_id: value.execution_id.clone(),
        });
        Ok(continue_with(execution, children, value))
    }

    /// Process 3: marks finished executions ready to close, decrementing their parents'
    /// active children counts.
    async fn mark_finished(self: &Arc<Self>) -> Result<Progress, Error> {
        let now = self.store.now();
        let limit = self.options.mark_finished_batch_size;
        let count = self
            .store
            .mark_finished_close_ready(UpdateAndDecrementParentActiveChildrenCountRequest {
                is_finished: true,
                close_status: CloseStatus::Idle,
                update: Update {
                    close_status: Some(CloseStatus::Ready),
                    ..Update::default()
                }
                .at(now),
                limit,
            })
            .await?;
        if count > 0 {
            self.wakers.wake(Process::ChildrenFinished);
            self.wakers.wake(Process::Close);
        }
        Ok(full(count as usize, limit))
    }

    /// Process 4: closes finished executions: a finalize child finishes its parent; an
    /// execution that did not complete cancels its unfinished children.
    async fn close_finished(self: &Arc<Self>) -> Result<Progress, Error> {
        let now = self.store.now();
        let limit = self.options.close_batch_size;
        let executions = self
            .store
            .claim_close(UpdateByCloseStatusRequest {
                close_status: CloseStatus::Ready,
                update: Update {
                    close_status: Some(CloseStatus::Closing),
                    close_expires_at: Some(self.processing_expires_at(now)),
                    ..Update::default()
                }
                .at(now),
                limit,
            })
            .await?;
        let count = executions.len();
        if count == 0 {
            return Ok(Progress::default());
        }
        let now = self.store.now();
        let mut parent_updates = Vec::new();
        let mut finished_parents = Vec::new();
        let mut cancellations = Vec::new();
        for execution in &executions {
            if let Some(parent) = execution
                .parent
                .as_ref()
                .filter(|p| p.is_finalize_of_parent)
            {
                let update = if execution.status == TaskExecutionStatus::Completed {
                    Update {
                        output: execution.output.clone(),
                        ..Update::status(TaskExecutionStatus::Completed)
                    }
                } else {
                    let error = execution.error.clone().unwrap_or_else(|| {
                        TaskError::non_retryable(format!(
                            "Finalize task failed with an unknown error [parentTaskId={}] \
                             [finalizeTaskId={}] [finalizeExecutionId={}]",
                            parent.task_id, execution.task_id, execution.execution_id
                        ))
                        .to_execution_error()
                    });
                    Update {
                        error: Some(error),
                        ..Update::status(TaskExecutionStatus::FinalizeFailed)
                    }
                };
                parent_updates.push(UpdateByIdRequest {
                    execution_id: parent.execution_id.clone(),
                    filters: filter_status(TaskExecutionStatus::WaitingForFinalize),
                    update: update.at(now),
                });
                finished_parents.push(parent.execution_id.clone());
            }
            let has_children = execution.children.as_ref().is_some_and(|c| !c.is_empty())
                || execution.finalize.is_some();
            if execution.status != TaskExecutionStatus::Completed && has_children {
                let error = TaskError::cancelled(format!(
                    "Parent task failed [parentTaskId={}] [parentExecutionId={}]: {}",
                    execution.task_id,
                    execution.execution_id,
                    execution
                        .error
                        .as_ref()
                        .map_or("Unknown error", |e| e.message.as_str())
                ));
                cancellations.push(UpdateByParentExecutionIdAndIsFinishedRequest {
                    parent_execution_id: execution.execution_id.clone(),
                    is_finished: false,
                    update: Update {
                        error: Some(error.to_execution_error()),
                        needs_promise_cancellation: Some(true),
                        ..Update::status(TaskExecutionStatus::Cancelled)
                    }
                    .at(now),
                });
            }
        }
        let cancelled_any = !cancellations.is_empty();
        futures::try_join!(
            self.store.update_many_by_id(parent_updates),
            self.store
                .update_many_by_parent_execution_id_and_is_finished(cancellations),
        )?;
        for parent in &finished_parents {
            self.finished(parent);
        }
        if cancelled_any {
            self.wakers.wake(Process::MarkFinished);
            self.wakers.wake(Process::Cancellations);
        }
        let now = self.store.now();
        let closed = executions
            .iter()
            .map(|execution| UpdateByIdRequest {
                execution_id: execution.execution_id.clone(),
                filters: Some(TaskExecutionStorageFilters {
                    is_finished: Some(true),
                    ..TaskExecutionStorageFilters::default()
                }),
                update: Update {
                    close_status: Some(CloseStatus::Closed),
                    ..Update::default()
                }
                .at(now),
            })
            .collect();
        self.store.update_many_by_id(closed).await?;
        Ok(full(count, limit))
    }

    /// Process 5: aborts the running executions of this executor that were cancelled.
    async fn deliver_cancellations(self: &Arc<Self>) -> Result<Progress, Error> {
        if self.running_count() == 0 {
            return Ok(Progress::default());
        }
        let now = self.store.now();
        let limit = self.options.cancellation_batch_size;
        let executions = self
            .store
            .claim_cancellations(UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
                executor_id: self.id.clone(),
                needs_promise_cancellation: true,
                update: Update {
                    needs_promise_cancellation: Some(false),
                    ..Update::default()
                }
                .at(now),
                limit,
            })
            .await?;
        for execution in &executions {
            if self.abort_running(&execution.execution_id) {
                self.log_debug(format_args!(
                    "cancelled running task execution {}",
                    execution.execution_id
                ));
            }
            if is_finished(execution.status) {
                self.finished(&execution.execution_id);
            }
        }
        Ok(full(executions.len(), limit))
    }

    /// Process 6: recovers expired leases: running executions back to ready (the lease
    /// counts as an attempt when they are claimed again), sleeping ones timed out, stuck
    /// processing and closing released.
    async fn recover_expired(self: &Arc<Self>) -> Result<Progress, Error> {
        let now = self.store.now();
        let limit = self.options.expired_batch_size;
        let expired = self
            .store
            .expire_running(UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                status: TaskExecutionStatus::Running,
                is_sleeping_task: false,
                expires_at_less_than: now,
                update: Update {
                    error: Some(TaskError::non_retryable(EXPIRED_MESSAGE).to_execution_error()),
                    start_at: Some(start_at(now, 0)),
                    ..Update::status(TaskExecutionStatus::Ready)
                }
                .at(now),
                limit,
            })
            .await?;
        let timed_out = self
            .store
            .expire_running(UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                status: TaskExecutionStatus::Running,
                is_sleeping_task: true,
                expires_at_less_than: now,
                update: Update {
                    error: Some(
                        TaskError::timed_out("Task execution timed out").to_execution_error(),
                    ),
                    start_at: Some(now),
                    ..Update::status(TaskExecutionStatus::TimedOut)
                }
                .at(now),
                limit,
            })
            .await?;
        let processing = self
            .store
            .expire_processing(
                UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest {
                    on_children_finished_processing_expires_at_less_than: now,
                    update: Update {
                        ocfp_status: Some(OnChildrenFinishedProcessingStatus::Idle),
                        ..Update::default()
                    }
                    .at(now),
                    limit,
                },
            )
            .await?;
        let closing = self
            .store
            .expire_closing(UpdateByCloseExpiresAtLessThanRequest {
                close_expires_at_less_than: now,
                update: Update {
                    close_status: Some(CloseStatus::Ready),
                    ..Update::default()
                }
                .at(now),
                limit,
            })
            .await?;
        for (count, process) in [
            (expired, Process::ClaimReady),
            (timed_out, Process::MarkFinished),
            (processing, Process::ChildrenFinished),
            (closing, Process::Close),
        ] {
            if count > 0 {
                self.wakers.wake(process);
            }
        }
        let total =
            u64::from(expired) + u64::from(timed_out) + u64::from(processing) + u64::from(closing);
        Ok(Progress {
            found: total > 0,
            more: total * 4 >= u64::from(limit),
        })
    }
}

/// The execution id of a composite parent's last started child.
fn last_started_child(execution: &TaskExecutionStorageValue) -> Option<String> {
    execution
        .children
        .as_ref()?
        .iter()
        .rev()
        .find(|c| c.execution_id != PLACEHOLDER_EXECUTION_ID)
        .map(|c| c.execution_id.clone())
}

/// Fails a parent whose children finished: `failed`, or `finalize_failed` when a step,
/// iteration or finalize failed.
fn fail_parent(
    execution: &TaskExecutionStorageValue,
    error: TaskError,
    finalize_failed: bool,
) -> ParentWrite {
    let status = if finalize_failed {
        TaskExecutionStatus::FinalizeFailed
    } else {
        TaskExecutionStatus::Failed
    };
    ParentWrite {
        execution_id: execution.execution_id.clone(),
        update: Update {
            error: Some(error.to_execution_error()),
            ocfp_status: Some(OnChildrenFinishedProcessingStatus::Processed),
            ..Update::status(status)
        },
        children: Vec::new(),
        finishes: true,
    }
}

/// Continues a composite parent with one more child (the next step or iteration).
fn continue_with(
    execution: &TaskExecutionStorageValue,
    children: Vec<crate::storage::TaskExecutionSummary>,
    child: TaskExecutionStorageValue,
) -> ParentWrite {
    ParentWrite {
        execution_id: execution.execution_id.clone(),
        update: Update {
            children: Some(children),
            active_children_count: Some(1),
            ocfp_status: Some(OnChildrenFinishedProcessingStatus::Idle),
            ..Update::default()
        },
        children: vec![child],
        finishes: false,
    }
}
