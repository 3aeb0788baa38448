//! The engine's view of an execution ([`TaskExecutionStorageValue`]) and its exact mapping to
//! and from the stored Convex document ([`TaskExecution`]).
//!
//! The two differ only in shape (reference, "Storage value vs. document"): the value groups the
//! root and parent fields into [`TaskExecutionSummary`] / [`ParentTaskExecutionSummary`] and has
//! neither the shard (a storage placement decision) nor `parentExecutionDocId` (a server-side
//! link). Both mappings destructure their input exhaustively, so adding a field to the
//! declaration without mapping it here is a compile error, not a silently dropped field.

use crate::task_executions::{
    CloseStatus, ExecutionError, OnChildrenFinishedProcessingStatus, RetryOptions, TaskExecution,
    TaskExecutionFilters, TaskExecutionStatus, TaskExecutionSummary, TaskExecutionUpdate,
};
use crate::Doc;

/// An update of an execution, in the engine's names (the generated update type already uses
/// them: `active_children_count` travels as `acc`, and so on).
pub type TaskExecutionStorageUpdate = TaskExecutionUpdate;

/// The by-id filters: a document that does not match every given filter counts as not found.
pub type TaskExecutionStorageFilters = TaskExecutionFilters;

/// Where an execution sits under its parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentTaskExecutionSummary {
    pub task_id: String,
    pub execution_id: String,
    /// Position among the parent's children (0 when the document does not say).
    pub index_in_parent_children: u32,
    /// Finishing this child finishes the parent's children at once.
    pub is_only_child_of_parent: bool,
    /// This is the parent's finalize task, which does not count as an active child.
    pub is_finalize_of_parent: bool,
}

/// One execution of a task as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskExecutionStorageValue {
    /// The root of the task tree; absent for a root execution.
    pub root: Option<TaskExecutionSummary>,
    /// The parent; absent for a root execution.
    pub parent: Option<ParentTaskExecutionSummary>,
    pub task_id: String,
    /// Unique across the storage.
    pub execution_id: String,
    pub is_sleeping_task: bool,
    /// Unique across the storage when present.
    pub sleeping_task_unique_id: Option<String>,
    pub retry_options: RetryOptions,
    pub sleep_ms_before_run: u64,
    pub timeout_ms: u64,
    pub are_children_sequential: bool,
    /// The serialized input.
    pub input: String,
    pub executor_id: Option<String>,
    pub status: TaskExecutionStatus,
    pub is_finished: bool,
    pub run_output: Option<String>,
    pub output: Option<String>,
    pub error: Option<ExecutionError>,
    pub retry_attempts: u32,
    /// Epoch milliseconds, like every other timestamp here.
    pub start_at: u64,
    pub started_at: Option<u64>,
    pub expires_at: Option<u64>,
    pub waiting_for_children_started_at: Option<u64>,
    pub waiting_for_finalize_started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub children: Option<Vec<TaskExecutionSummary>>,
    pub active_children_count: u32,
    pub on_children_finished_processing_status: OnChildrenFinishedProcessingStatus,
    pub on_children_finished_processing_expires_at: Option<u64>,
    pub on_children_finished_processing_finished_at: Option<u64>,
    pub finalize: Option<TaskExecutionSummary>,
    pub close_status: CloseStatus,
    pub close_expires_at: Option<u64>,
    pub closed_at: Option<u64>,
    pub needs_promise_cancellation: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

/// What the engine decides about a new execution; everything else starts from the defaults of
/// [`TaskExecutionStorageValue::new_execution`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewTaskExecution {
    pub root: Option<TaskExecutionSummary>,
    pub parent: Option<ParentTaskExecutionSummary>,
    pub task_id: String,
    pub execution_id: String,
    pub is_sleeping_task: bool,
    pub sleeping_task_unique_id: Option<String>,
    pub retry_options: RetryOptions,
    pub sleep_ms_before_run: u64,
    pub timeout_ms: u64,
    pub are_children_sequential: bool,
    pub input: String,
}

impl TaskExecutionStorageValue {
    /// A new execution created at `now` (epoch ms), as the engine creates it (reference §4):
    /// status `ready`, not finished, no retries yet, `startAt = now + sleepMsBeforeRun`, no
    /// active children, idle processing and closing, no promise cancellation, and
    /// `createdAt = updatedAt = now`.
    ///
    /// A sleeping task starts `running` instead, with `startedAt = now` and
    /// `expiresAt = now + sleepMsBeforeRun + timeoutMs`: nothing executes it, it only waits to
    /// be woken up (or to expire). Sums saturate rather than overflow.
    pub fn new_execution(new: NewTaskExecution, now: u64) -> Self {
        let NewTaskExecution {
            root,
            parent,
            task_id,
            execution_id,
            is_sleeping_task,
            sleeping_task_unique_id,
            retry_options,
            sleep_ms_before_run,
            timeout_ms,
            are_children_sequential,
            input,
        } = new;
        let start_at = now.saturating_add(sleep_ms_before_run);
        let (status, started_at, expires_at) = if is_sleeping_task {
            let expires_at = start_at.saturating_add(timeout_ms);
            (TaskExecutionStatus::Running, Some(now), Some(expires_at))
        } else {
            (TaskExecutionStatus::Ready, None, None)
        };
        Self {
            root,
            parent,
            task_id,
            execution_id,
            is_sleeping_task,
            sleeping_task_unique_id,
            retry_options,
            sleep_ms_before_run,
            timeout_ms,
            are_children_sequential,
            input,
            executor_id: None,
            status,
            is_finished: false,
            run_output: None,
            output: None,
            error: None,
            retry_attempts: 0,
            start_at,
            started_at,
            expires_at,
            waiting_for_children_started_at: None,
            waiting_for_finalize_started_at: None,
            finished_at: None,
            children: None,
            active_children_count: 0,
            on_children_finished_processing_status: OnChildrenFinishedProcessingStatus::Idle,
            on_children_finished_processing_expires_at: None,
            on_children_finished_processing_finished_at: None,
            finalize: None,
            close_status: CloseStatus::Idle,
            close_expires_at: None,
            closed_at: None,
            needs_promise_cancellation: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies an update the way every storage must: each present field replaces the stored
    /// one, then each `unset` entry that is `true` removes its field (so an `unset` wins over a
    /// value set in the same update). Identity fields are not part of an update.
    ///
    /// Applying the same update twice gives the same value, which lets the Convex storage apply
    /// it to returned documents whether the server returned them before or after the patch.
    pub fn apply_update(&mut self, update: &TaskExecutionStorageUpdate) {
        self.apply_set_fields(update);
        if let Some(unset) = &update.unset {
            clear_if(unset.executor_id, &mut self.executor_id);
            clear_if(unset.run_output, &mut self.run_output);
            clear_if(unset.error, &mut self.error);
            clear_if(unset.started_at, &mut self.started_at);
            clear_if(unset.expires_at, &mut self.expires_at);
            clear_if(
                unset.on_children_finished_processing_expires_at,
                &mut self.on_children_finished_processing_expires_at,
            );
            clear_if(unset.close_expires_at, &mut self.close_expires_at);
        }
    }

    fn apply_set_fields(&mut self, update: &TaskExecutionStorageUpdate) {
        let TaskExecutionUpdate {
            executor_id,
            status,
            is_finished,
            run_output,
            output,
            error,
            retry_attempts,
            start_at,
            started_at,
            expires_at,
            waiting_for_children_started_at,
            waiting_for_finalize_started_at,
            finished_at,
            children,
            active_children_count,
            on_children_finished_processing_status,
            on_children_finished_processing_expires_at,
            on_children_finished_processing_finished_at,
            finalize,
            close_status,
            close_expires_at,
            closed_at,
            needs_promise_cancellation,
            updated_at,
            unset: _,
        } = update;
        set_optional(executor_id, &mut self.executor_id);
        set_required(status, &mut self.status);
        set_required(is_finished, &mut self.is_finished);
        set_optional(run_output, &mut self.run_output);
        set_optional(output, &mut self.output);
        set_optional(error, &mut self.error);
        set_required(retry_attempts, &mut self.retry_attempts);
        set_required(start_at, &mut self.start_at);
        set_optional(started_at, &mut self.started_at);
        set_optional(expires_at, &mut self.expires_at);
        set_optional(
            waiting_for_children_started_at,
            &mut self.waiting_for_children_started_at,
        );
        set_optional(
            waiting_for_finalize_started_at,
            &mut self.waiting_for_finalize_started_at,
        );
        set_optional(finished_at, &mut self.finished_at);
        set_optional(children, &mut self.children);
        set_required(active_children_count, &mut self.active_children_count);
        set_required(
            on_children_finished_processing_status,
            &mut self.on_children_finished_processing_status,
        );
        set_optional(
            on_children_finished_processing_expires_at,
            &mut self.on_children_finished_processing_expires_at,
        );
        set_optional(
            on_children_finished_processing_finished_at,
            &mut self.on_children_finished_processing_finished_at,
        );
        set_optional(finalize, &mut self.finalize);
        set_required(close_status, &mut self.close_status);
        set_optional(close_expires_at, &mut self.close_expires_at);
        set_optional(closed_at, &mut self.closed_at);
        set_required(
            needs_promise_cancellation,
            &mut self.needs_promise_cancellation,
        );
        self.updated_at = *updated_at;
    }

    /// Whether this execution matches every given by-id filter (an absent filter matches).
    pub fn matches_filters(&self, filters: &TaskExecutionStorageFilters) -> bool {
        let TaskExecutionFilters {
            is_sleeping_task,
            status,
            is_finished,
        } = filters;
        is_sleeping_task.is_none_or(|want| want == self.is_sleeping_task)
            && status.as_ref().is_none_or(|want| *want == self.status)
            && is_finished.is_none_or(|want| want == self.is_finished)
    }

    /// The document to insert into shard `shard`. `parentExecutionDocId` stays absent: the
    /// server sets it when it inserts children under their parent.
    pub fn into_document(self, shard: u32) -> TaskExecution {
        let Self {
            root,
            parent,
            task_id,
            execution_id,
            is_sleeping_task,
            sleeping_task_unique_id,
            retry_options,
            sleep_ms_before_run,
            timeout_ms,
            are_children_sequential,
            input,
            executor_id,
            status,
            is_finished,
            run_output,
            output,
            error,
            retry_attempts,
            start_at,
            started_at,
            expires_at,
            waiting_for_children_started_at,
            waiting_for_finalize_started_at,
            finished_at,
            children,
            active_children_count,
            on_children_finished_processing_status,
            on_children_finished_processing_expires_at,
            on_children_finished_processing_finished_at,
            finalize,
            close_status,
            close_expires_at,
            closed_at,
            needs_promise_cancellation,
            created_at,
            updated_at,
        } = self;
        let (root_task_id, root_execution_id) = match root {
            Some(root) => (Some(root.task_id), Some(root.execution_id)),
            None => (None, None),
        };
        let parent = ParentFields::from(parent);
        TaskExecution {
            shard,
            root_task_id,
            root_execution_id,
            parent_task_id: parent.task_id,
            parent_execution_id: parent.execution_id,
            parent_execution_doc_id: None,
            index_in_parent_children: parent.index_in_parent_children,
            is_only_child_of_parent: parent.is_only_child_of_parent,
            is_finalize_of_parent: parent.is_finalize_of_parent,
            task_id,
            execution_id,
            is_sleeping_task,
            sleeping_task_unique_id,
            retry_options,
            sleep_ms_before_run,
            timeout_ms,
            are_children_sequential,
            input,
            executor_id,
            status,
            is_finished,
            run_output,
            output,
            error,
            retry_attempts,
            start_at,
            started_at,
            expires_at,
            waiting_for_children_started_at,
            waiting_for_finalize_started_at,
            finished_at,
            children,
            active_children_count,
            on_children_finished_processing_status,
            on_children_finished_processing_expires_at,
            on_children_finished_processing_finished_at,
            finalize,
            close_status,
            close_expires_at,
            closed_at,
            needs_promise_cancellation,
            created_at,
            updated_at,
        }
    }

    /// The value of a stored document. The root is present only when both root ids are; the
    /// parent only when both parent ids are, with a missing index read as 0 and missing flags
    /// as `false` (what the original client does).
    pub fn from_document(document: TaskExecution) -> Self {
        let TaskExecution {
            shard: _,
            root_task_id,
            root_execution_id,
            parent_task_id,
            parent_execution_id,
            parent_execution_doc_id: _,
            index_in_parent_children,
            is_only_child_of_parent,
            is_finalize_of_parent,
            task_id,
            execution_id,
            is_sleeping_task,
            sleeping_task_unique_id,
            retry_options,
            sleep_ms_before_run,
            timeout_ms,
            are_children_sequential,
            input,
            executor_id,
            status,
            is_finished,
            run_output,
            output,
            error,
            retry_attempts,
            start_at,
            started_at,
            expires_at,
            waiting_for_children_started_at,
            waiting_for_finalize_started_at,
            finished_at,
            children,
            active_children_count,
            on_children_finished_processing_status,
            on_children_finished_processing_expires_at,
            on_children_finished_processing_finished_at,
            finalize,
            close_status,
            close_expires_at,
            closed_at,
            needs_promise_cancellation,
            created_at,
            updated_at,
        } = document;
        let root = match (root_task_id, root_execution_id) {
            (Some(task_id), Some(execution_id)) => Some(TaskExecutionSummary {
                task_id,
                execution_id,
            }),
            _ => None,
        };
        let parent = ParentFields {
            task_id: parent_task_id,
            execution_id: parent_execution_id,
            index_in_parent_children,
            is_only_child_of_parent,
            is_finalize_of_parent,
        }
        .into_summary();
        Self {
            root,
            parent,
            task_id,
            execution_id,
            is_sleeping_task,
            sleeping_task_unique_id,
            retry_options,
            sleep_ms_before_run,
            timeout_ms,
            are_children_sequential,
            input,
            executor_id,
            status,
            is_finished,
            run_output,
            output,
            error,
            retry_attempts,
            start_at,
            started_at,
            expires_at,
            waiting_for_children_started_at,
            waiting_for_finalize_started_at,
            finished_at,
            children,
            active_children_count,
            on_children_finished_processing_status,
            on_children_finished_processing_expires_at,
            on_children_finished_processing_finished_at,
            finalize,
            close_status,
            close_expires_at,
            closed_at,
            needs_promise_cancellation,
            created_at,
            updated_at,
        }
    }
}

impl From<Doc<TaskExecution>> for TaskExecutionStorageValue {
    fn from(document: Doc<TaskExecution>) -> Self {
        Self::from_document(document.into_value())
    }
}

impl From<TaskExecution> for TaskExecutionStorageValue {
    fn from(document: TaskExecution) -> Self {
        Self::from_document(document)
    }
}

/// The flat parent fields of a document.
struct ParentFields {
    task_id: Option<String>,
    execution_id: Option<String>,
    index_in_parent_children: Option<u32>,
    is_only_child_of_parent: Option<bool>,
    is_finalize_of_parent: Option<bool>,
}

impl ParentFields {
    fn into_summary(self) -> Option<ParentTaskExecutionSummary> {
        let (task_id, execution_id) = self.task_id.zip(self.execution_id)?;
        Some(ParentTaskExecutionSummary {
            task_id,
            execution_id,
            index_in_parent_children: self.index_in_parent_children.unwrap_or(0),
            is_only_child_of_parent: self.is_only_child_of_parent.unwrap_or(false),
            is_finalize_of_parent: self.is_finalize_of_parent.unwrap_or(false),
        })
    }
}

impl From<Option<ParentTaskExecutionSummary>> for ParentFields {
    fn from(parent: Option<ParentTaskExecutionSummary>) -> Self {
        match parent {
            Some(parent) => Self {
                task_id: Some(parent.task_id),
                execution_id: Some(parent.execution_id),
                index_in_parent_children: Some(parent.index_in_parent_children),
                is_only_child_of_parent: Some(parent.is_only_child_of_parent),
                is_finalize_of_parent: Some(parent.is_finalize_of_parent),
            },
            None => Self {
                task_id: None,
                execution_id: None,
                index_in_parent_children: None,
                is_only_child_of_parent: None,
                is_finalize_of_parent: None,
            },
        }
    }
}

fn set_required<T: Clone>(update: &Option<T>, field: &mut T) {
    if let Some(value) = update {
        *field = value.clone();
    }
}

fn set_optional<T: Clone>(update: &Option<T>, field: &mut Option<T>) {
    if let Some(value) = update {
        *field = Some(value.clone());
    }
}

fn clear_if<T>(unset: bool, field: &mut Option<T>) {
    if unset {
        *field = None;
    }
}
