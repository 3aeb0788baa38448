//! What the cases are written with: failures, checks, executions and updates to start from.

use std::fmt;
use std::sync::Arc;

use super::StorageFactory;
use crate::storage::{
    shard_of_execution, ConvexStorageOptions, GetByIdRequest, NewTaskExecution,
    ParentTaskExecutionSummary, StorageError, TaskExecutionStorageUpdate,
    TaskExecutionStorageValue, TaskExecutionsStorage,
};
use crate::task_executions::{
    ErrorType, ExecutionError, RetryOptions, TaskExecutionFilters, TaskExecutionStatus,
    TaskExecutionSummary, TaskExecutionUnset,
};

/// Why a case failed: a broken expectation, or an error of the storage under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        Self(format!("unexpected storage error: {error}"))
    }
}

/// What a case gives back.
pub type CaseResult = Result<(), Failure>;

/// Fails the case with the message when the condition is false.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err($crate::conformance::Failure::new(format!($($message)+)));
        }
    };
}

/// Fails the case, showing both values, when they differ.
macro_rules! ensure_eq {
    ($actual:expr, $expected:expr, $($message:tt)+) => {{
        let (actual, expected) = (&$actual, &$expected);
        if actual != expected {
            return Err($crate::conformance::Failure::new(format!(
                "{}\n  expected: {:?}\n    actual: {:?}",
                format_args!($($message)+),
                expected,
                actual
            )));
        }
    }};
}

pub(crate) use {ensure, ensure_eq};

/// How far from the server's `now` the cases put every timestamp that a `updatedAt < now`
/// condition looks at (see the module documentation).
pub const CLOCK_SKEW_TOLERANCE_MS: u64 = 300_000;

/// The client's clock, in epoch milliseconds.
pub fn client_now() -> u64 {
    crate::storage::now_millis()
}

/// A time surely before the server's `now` (by at least the tolerance, even with skew).
pub fn past() -> u64 {
    client_now().saturating_sub(2 * CLOCK_SKEW_TOLERANCE_MS)
}

/// A time surely after the server's `now`.
pub fn future() -> u64 {
    client_now().saturating_add(2 * CLOCK_SKEW_TOLERANCE_MS)
}

/// Options with `total_shards`, the owned `shards` (all when empty) and test mode.
pub fn options(total_shards: u32, shards: &[u32], enable_test_mode: bool) -> ConvexStorageOptions {
    ConvexStorageOptions {
        total_shards,
        shards: (!shards.is_empty()).then(|| shards.to_vec()),
        enable_test_mode,
        ..ConvexStorageOptions::default()
    }
}

/// One shard, test mode off: what most cases need.
pub fn single() -> ConvexStorageOptions {
    options(1, &[], false)
}

/// A client with `options` on a fresh, empty backend.
pub async fn storage(
    factory: &dyn StorageFactory,
    options: ConvexStorageOptions,
) -> Result<Arc<dyn TaskExecutionsStorage>, Failure> {
    let backend = factory.create().await?;
    Ok(backend.client(options).await?)
}

/// The first execution id `<prefix>-<n>` that lands in `shard` of `total_shards`.
pub fn id_in_shard(prefix: &str, shard: u32, total_shards: u32) -> String {
    let mut n = 0_u64;
    loop {
        let id = format!("{prefix}-{n}");
        if shard_of_execution(&id, total_shards) == shard || n > 1_000_000 {
            return id;
        }
        n += 1;
    }
}

/// A ready root execution created at `at`: `startAt = createdAt = updatedAt = at`, timeout 1 s.
pub fn execution(id: &str, at: u64) -> TaskExecutionStorageValue {
    let new = NewTaskExecution {
        root: None,
        parent: None,
        task_id: "task".to_owned(),
        execution_id: id.to_owned(),
        is_sleeping_task: false,
        sleeping_task_unique_id: None,
        retry_options: RetryOptions {
            max_attempts: 3,
            base_delay_ms: Some(100),
            max_delay_ms: None,
            delay_multiplier: Some(2.0),
        },
        sleep_ms_before_run: 0,
        timeout_ms: 1_000,
        are_children_sequential: false,
        input: format!("{{\"id\":\"{id}\"}}"),
    };
    TaskExecutionStorageValue::new_execution(new, at)
}

/// A sleeping task execution with its unique id, created at `at`.
pub fn sleeping(id: &str, unique_id: &str, at: u64) -> TaskExecutionStorageValue {
    let new = NewTaskExecution {
        is_sleeping_task: true,
        sleeping_task_unique_id: Some(unique_id.to_owned()),
        ..new_of(execution(id, at))
    };
    TaskExecutionStorageValue::new_execution(new, at)
}

fn new_of(value: TaskExecutionStorageValue) -> NewTaskExecution {
    NewTaskExecution {
        root: value.root,
        parent: value.parent,
        task_id: value.task_id,
        execution_id: value.execution_id,
        is_sleeping_task: value.is_sleeping_task,
        sleeping_task_unique_id: value.sleeping_task_unique_id,
        retry_options: value.retry_options,
        sleep_ms_before_run: value.sleep_ms_before_run,
        timeout_ms: value.timeout_ms,
        are_children_sequential: value.are_children_sequential,
        input: value.input,
    }
}

/// A child of `parent` at `index` among its children, created at `at`.
pub fn child(parent: &str, id: &str, index: u32, at: u64) -> TaskExecutionStorageValue {
    let mut value = execution(id, at);
    value.root = Some(summary(parent));
    value.parent = Some(ParentTaskExecutionSummary {
        task_id: "task".to_owned(),
        execution_id: parent.to_owned(),
        index_in_parent_children: index,
        is_only_child_of_parent: false,
        is_finalize_of_parent: false,
    });
    value
}

pub fn summary(execution_id: &str) -> TaskExecutionSummary {
    TaskExecutionSummary {
        task_id: "task".to_owned(),
        execution_id: execution_id.to_owned(),
    }
}

/// `value` with every field an update may unset present.
pub fn with_unsettable(mut value: TaskExecutionStorageValue) -> TaskExecutionStorageValue {
    value.executor_id = Some("executor-u".to_owned());
    value.run_output = Some("run-output".to_owned());
    value.error = Some(ExecutionError {
        error_type: ErrorType::Generic,
        message: "failed".to_owned(),
        is_retryable: true,
        is_internal: false,
    });
    value.started_at = Some(value.start_at);
    value.expires_at = Some(value.start_at.saturating_add(value.timeout_ms));
    value.on_children_finished_processing_expires_at = Some(value.start_at.saturating_add(7));
    value.close_expires_at = Some(value.start_at.saturating_add(8));
    value
}

/// An update that sets only `updatedAt`.
pub fn touch(updated_at: u64) -> TaskExecutionStorageUpdate {
    TaskExecutionStorageUpdate {
        updated_at,
        ..TaskExecutionStorageUpdate::default()
    }
}

/// A field an update may unset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsetField {
    ExecutorId,
    RunOutput,
    Error,
    StartedAt,
    ExpiresAt,
    OnChildrenFinishedProcessingExpiresAt,
    CloseExpiresAt,
}

impl UnsetField {
    pub const ALL: [Self; 7] = [
        Self::ExecutorId,
        Self::RunOutput,
        Self::Error,
        Self::StartedAt,
        Self::ExpiresAt,
        Self::OnChildrenFinishedProcessingExpiresAt,
        Self::CloseExpiresAt,
    ];

    /// An `unset` with only this entry true.
    pub fn only(self) -> TaskExecutionUnset {
        let mut unset = TaskExecutionUnset::default();
        self.mark(&mut unset);
        unset
    }

    /// An `unset` with each of `fields` true.
    pub fn all_of(fields: &[Self]) -> TaskExecutionUnset {
        let mut unset = TaskExecutionUnset::default();
        for field in fields {
            field.mark(&mut unset);
        }
        unset
    }

    fn mark(self, unset: &mut TaskExecutionUnset) {
        match self {
            Self::ExecutorId => unset.executor_id = true,
            Self::RunOutput => unset.run_output = true,
            Self::Error => unset.error = true,
            Self::StartedAt => unset.started_at = true,
            Self::ExpiresAt => unset.expires_at = true,
            Self::OnChildrenFinishedProcessingExpiresAt => {
                unset.on_children_finished_processing_expires_at = true;
            }
            Self::CloseExpiresAt => unset.close_expires_at = true,
        }
    }

    /// Whether `unset` removes this field.
    pub fn is_marked(self, unset: &TaskExecutionUnset) -> bool {
        match self {
            Self::ExecutorId => unset.executor_id,
            Self::RunOutput => unset.run_output,
            Self::Error => unset.error,
            Self::StartedAt => unset.started_at,
            Self::ExpiresAt => unset.expires_at,
            Self::OnChildrenFinishedProcessingExpiresAt => {
                unset.on_children_finished_processing_expires_at
            }
            Self::CloseExpiresAt => unset.close_expires_at,
        }
    }

    /// Whether the field is present in `value`.
    pub fn is_present(self, value: &TaskExecutionStorageValue) -> bool {
        match self {
            Self::ExecutorId => value.executor_id.is_some(),
            Self::RunOutput => value.run_output.is_some(),
            Self::Error => value.error.is_some(),
            Self::StartedAt => value.started_at.is_some(),
            Self::ExpiresAt => value.expires_at.is_some(),
            Self::OnChildrenFinishedProcessingExpiresAt => {
                value.on_children_finished_processing_expires_at.is_some()
            }
            Self::CloseExpiresAt => value.close_expires_at.is_some(),
        }
    }
}

/// Fails unless exactly `removed` of the unsettable fields are absent from `value`.
pub fn ensure_unset(value: &TaskExecutionStorageValue, removed: &[UnsetField]) -> CaseResult {
    for field in UnsetField::ALL {
        let expected_present = !removed.contains(&field);
        ensure!(
            field.is_present(value) == expected_present,
            "{field:?} of {} should be {}",
            value.execution_id,
            if expected_present { "kept" } else { "unset" }
        );
    }
    Ok(())
}

/// The stored execution, if any (no filters).
pub async fn get(
    storage: &dyn TaskExecutionsStorage,
    execution_id: &str,
) -> Result<Option<TaskExecutionStorageValue>, Failure> {
    let mut answers = storage
        .get_many_by_id(vec![GetByIdRequest {
            execution_id: execution_id.to_owned(),
            filters: None,
        }])
        .await?;
    ensure_eq!(answers.len(), 1, "getManyById answers for one request");
    Ok(answers.pop().flatten())
}

/// The stored execution; a failure when there is none.
pub async fn must_get(
    storage: &dyn TaskExecutionsStorage,
    execution_id: &str,
) -> Result<TaskExecutionStorageValue, Failure> {
    get(storage, execution_id)
        .await?
        .ok_or_else(|| Failure::new(format!("execution {execution_id} not found")))
}

/// Fails unless the stored execution equals `expected`.
pub async fn ensure_stored(
    storage: &dyn TaskExecutionsStorage,
    expected: &TaskExecutionStorageValue,
) -> CaseResult {
    let stored = must_get(storage, &expected.execution_id).await?;
    ensure_eq!(stored, *expected, "stored {}", expected.execution_id);
    Ok(())
}

/// `value` after `update`, as every storage must apply it.
pub fn patched(
    value: &TaskExecutionStorageValue,
    update: &TaskExecutionStorageUpdate,
) -> TaskExecutionStorageValue {
    let mut value = value.clone();
    value.apply_update(update);
    value
}

/// By-id filters, in the order of their fields.
pub fn filters(
    is_sleeping_task: Option<bool>,
    status: Option<TaskExecutionStatus>,
    is_finished: Option<bool>,
) -> TaskExecutionFilters {
    TaskExecutionFilters {
        is_sleeping_task,
        status,
        is_finished,
    }
}

/// The execution ids of `values`, in order.
pub fn ids(values: &[TaskExecutionStorageValue]) -> Vec<String> {
    values.iter().map(|v| v.execution_id.clone()).collect()
}

/// Strings from string slices, for comparing id lists.
pub fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|&id| id.to_owned()).collect()
}

/// Fails unless the stored executions are unchanged.
pub async fn ensure_untouched(
    storage: &dyn TaskExecutionsStorage,
    values: &[&TaskExecutionStorageValue],
) -> CaseResult {
    for value in values {
        ensure_stored(storage, value).await?;
    }
    Ok(())
}

/// Inserts each execution in a call of its own, so that insertion order (which breaks ties of
/// index keys) is the order given, whatever a storage does within one call.
pub async fn insert_in_order(
    storage: &dyn TaskExecutionsStorage,
    values: &[&TaskExecutionStorageValue],
) -> CaseResult {
    for value in values {
        storage.insert_many(vec![(*value).clone()]).await?;
    }
    Ok(())
}
