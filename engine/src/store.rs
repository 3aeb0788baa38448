//! The executor's access to its storage: every call counted per operation (storage metrics),
//! and retried when it failed in a retry-safe way (`storage_max_retry_attempts`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::storage::{
    is_retry_safe, is_worth_repeating_guarded, GetByIdRequest, GetByParentExecutionIdRequest,
    GetBySleepingTaskUniqueIdRequest, StorageError, TaskExecutionStorageValue,
    TaskExecutionsStorage, UpdateAndDecrementParentActiveChildrenCountRequest,
    UpdateByCloseExpiresAtLessThanRequest, UpdateByCloseStatusRequest,
    UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};

/// Calls of one storage operation by one executor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationMetrics {
    /// Calls made (each retry counts).
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Time spent in the calls.
    pub total_duration: Duration,
}

/// Per storage operation (named as in the storage API, e.g. `insertMany`).
pub type StorageMetrics = BTreeMap<&'static str, OperationMetrics>;

pub(crate) struct Store {
    storage: Arc<dyn TaskExecutionsStorage>,
    metrics: Mutex<StorageMetrics>,
    max_retry_attempts: u32,
}

impl Store {
    pub(crate) fn new(storage: Arc<dyn TaskExecutionsStorage>, max_retry_attempts: u32) -> Self {
        Self {
            storage,
            metrics: Mutex::new(BTreeMap::new()),
            max_retry_attempts,
        }
    }

    /// The storage's clock (epoch ms): every absolute time the engine writes comes from it.
    pub(crate) fn now(&self) -> u64 {
        self.storage.now_millis()
    }

    pub(crate) fn metrics(&self) -> StorageMetrics {
        self.metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, operation: &'static str, elapsed: Duration, failed: bool) {
        let mut metrics = self.metrics.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = metrics.entry(operation).or_default();
        entry.calls += 1;
        entry.total_duration += elapsed;
        if failed {
            entry.failures += 1;
        }
    }

    /// Runs `call` (again after a retry-safe failure, 25 ms doubling up to 1 s apart).
    async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        self.call_with(operation, self.max_retry_attempts, is_retry_safe, call)
            .await
    }

    /// Runs a guarded write: its requests are filtered so that applying it twice changes
    /// nothing more (e.g. on `status = running` while it moves the execution out of
    /// `running`), so any transient failure, even one after which the write may have landed,
    /// is worth repeating (at least 4 times).
    async fn call_guarded<T, F, Fut>(
        &self,
        operation: &'static str,
        call: F,
    ) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let attempts = self.max_retry_attempts.max(4);
        self.call_with(operation, attempts, is_worth_repeating_guarded, call)
            .await
    }

    async fn call_with<T, F, Fut>(
        &self,
        operation: &'static str,
        max_retry_attempts: u32,
        retry: fn(&StorageError) -> bool,
        mut call: F,
    ) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let mut delay = Duration::from_millis(25);
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let result = call().await;
            self.record(operation, started.elapsed(), result.is_err());
            match result {
                Err(error) if attempt < max_retry_attempts && retry(&error) => {
                    tracing::debug!(operation, %error, "retrying a storage call");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    pub(crate) async fn insert_many(
        &self,
        executions: Vec<TaskExecutionStorageValue>,
    ) -> Result<(), StorageError> {
        self.call("insertMany", || {
            self.storage.insert_many(executions.clone())
        })
        .await
    }

    pub(crate) async fn get_by_id(
        &self,
        execution_id: &str,
    ) -> Result<Option<TaskExecutionStorageValue>, StorageError> {
        let mut found = self
            .get_many_by_id(vec![GetByIdRequest {
                execution_id: execution_id.to_owned(),
                filters: None,
            }])
            .await?;
        Ok(found.pop().flatten())
    }

    pub(crate) async fn get_many_by_id(
        &self,
        requests: Vec<GetByIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        self.call("getManyById", || {
            self.storage.get_many_by_id(requests.clone())
        })
        .await
    }

    pub(crate) async fn get_by_sleeping_task_unique_id(
        &self,
        unique_id: &str,
    ) -> Result<Option<TaskExecutionStorageValue>, StorageError> {
        let request = GetBySleepingTaskUniqueIdRequest {
            sleeping_task_unique_id: unique_id.to_owned(),
        };
        let mut found = self
            .call("getManyBySleepingTaskUniqueId", || {
                self.storage
                    .get_many_by_sleeping_task_unique_id(vec![request.clone()])
            })
            .await?;
        Ok(found.pop().flatten())
    }

    pub(crate) async fn update_many_by_id(
        &self,
        requests: Vec<UpdateByIdRequest>,
    ) -> Result<(), StorageError> {
        if requests.is_empty() {
            return Ok(());
        }
        self.call("updateManyById", || {
            self.storage.update_many_by_id(requests.clone())
        })
        .await
    }

    /// [`update_many_by_id`](Self::update_many_by_id) for guarded writes (see
    /// `call_guarded`).
    pub(crate) async fn update_many_by_id_guarded(
        &self,
        requests: Vec<UpdateByIdRequest>,
    ) -> Result<(), StorageError> {
        self.call_guarded("updateManyById", || {
            self.storage.update_many_by_id(requests.clone())
        })
        .await
    }

    /// [`update_many_by_id_and_insert_children_if_updated`] for guarded writes: the children
    /// are inserted only with an update that moves the parent out of what the filter matches.
    ///
    /// [`update_many_by_id_and_insert_children_if_updated`]: Self::update_many_by_id_and_insert_children_if_updated
    pub(crate) async fn update_and_insert_children_guarded(
        &self,
        requests: Vec<UpdateByIdAndInsertChildrenIfUpdatedRequest>,
    ) -> Result<(), StorageError> {
        self.call_guarded("updateManyByIdAndInsertChildrenIfUpdated", || {
            self.storage
                .update_many_by_id_and_insert_children_if_updated(requests.clone())
        })
        .await
    }

    /// Inserts one new execution; a repeat after a transient failure that finds its own
    /// execution id taken means the first attempt landed.
    pub(crate) async fn insert_new(
        &self,
        value: TaskExecutionStorageValue,
    ) -> Result<(), StorageError> {
        let execution_id = value.execution_id.clone();
        let mut first_error = None;
        let mut delay = Duration::from_millis(25);
        for attempt in 0..=self.max_retry_attempts.max(4) {
            match self.insert_many(vec![value.clone()]).await {
                Ok(()) => return Ok(()),
                Err(error) if attempt > 0 && error.is_already_exists() => {
                    if let Ok(Some(stored)) = self.get_by_id(&execution_id).await {
                        if stored.task_id == value.task_id && stored.input == value.input {
                            return Ok(());
                        }
                    }
                    return Err(first_error.unwrap_or(error));
                }
                Err(error) if is_worth_repeating_guarded(&error) => {
                    first_error.get_or_insert(error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(error) => return Err(error),
            }
        }
        Err(first_error.unwrap_or_else(|| {
            StorageError::InvalidRequest("insert failed without an error".into())
        }))
    }

    pub(crate) async fn update_many_by_id_and_insert_children_if_updated(
        &self,
        requests: Vec<UpdateByIdAndInsertChildrenIfUpdatedRequest>,
    ) -> Result<(), StorageError> {
        if requests.is_empty() {
            return Ok(());
        }
        self.call("updateManyByIdAndInsertChildrenIfUpdated", || {
            self.storage
                .update_many_by_id_and_insert_children_if_updated(requests.clone())
        })
        .await
    }

    pub(crate) async fn claim_ready(
        &self,
        request: UpdateByStatusAndStartAtLessThanRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        self.call("updateByStatusAndStartAtLessThanAndReturn", || {
            self.storage
                .update_by_status_and_start_at_less_than_and_return(request.clone())
        })
        .await
    }

    pub(crate) async fn claim_children_finished(
        &self,
        request: UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        self.call(
            "updateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroAndReturn",
            || {
                self.storage
                    .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
                        request.clone(),
                    )
            },
        )
        .await
    }

    pub(crate) async fn claim_close(
        &self,
        request: UpdateByCloseStatusRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        self.call("updateByCloseStatusAndReturn", || {
            self.storage
                .update_by_close_status_and_return(request.clone())
        })
        .await
    }

    pub(crate) async fn expire_running(
        &self,
        request: UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        self.call(
            "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
            || {
                self.storage
                    .update_by_status_and_is_sleeping_task_and_expires_at_less_than(request.clone())
            },
        )
        .await
    }

    pub(crate) async fn expire_processing(
        &self,
        request: UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        self.call(
            "updateByOnChildrenFinishedProcessingExpiresAtLessThan",
            || {
                self.storage
                    .update_by_on_children_finished_processing_expires_at_less_than(request.clone())
            },
        )
        .await
    }

    pub(crate) async fn expire_closing(
        &self,
        request: UpdateByCloseExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        self.call("updateByCloseExpiresAtLessThan", || {
            self.storage
                .update_by_close_expires_at_less_than(request.clone())
        })
        .await
    }

    pub(crate) async fn claim_cancellations(
        &self,
        request: UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        self.call(
            "updateByExecutorIdAndNeedsPromiseCancellationAndReturn",
            || {
                self.storage
                    .update_by_executor_id_and_needs_promise_cancellation_and_return(
                        request.clone(),
                    )
            },
        )
        .await
    }

    pub(crate) async fn get_many_by_parent_execution_id(
        &self,
        requests: Vec<GetByParentExecutionIdRequest>,
    ) -> Result<Vec<Vec<TaskExecutionStorageValue>>, StorageError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        self.call("getManyByParentExecutionId", || {
            self.storage
                .get_many_by_parent_execution_id(requests.clone())
        })
        .await
    }

    pub(crate) async fn update_many_by_parent_execution_id_and_is_finished(
        &self,
        requests: Vec<UpdateByParentExecutionIdAndIsFinishedRequest>,
    ) -> Result<(), StorageError> {
        if requests.is_empty() {
            return Ok(());
        }
        self.call("updateManyByParentExecutionIdAndIsFinished", || {
            self.storage
                .update_many_by_parent_execution_id_and_is_finished(requests.clone())
        })
        .await
    }

    pub(crate) async fn mark_finished_close_ready(
        &self,
        request: UpdateAndDecrementParentActiveChildrenCountRequest,
    ) -> Result<u32, StorageError> {
        self.call(
            "updateAndDecrementParentActiveChildrenCountByIsFinishedAndCloseStatus",
            || {
                self.storage
                    .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
                        request.clone(),
                    )
            },
        )
        .await
    }
}
