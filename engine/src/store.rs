//! The executor's access to its storage: every call counted per operation (storage metrics),
//! retried when it failed in a retry-safe way (`storage_max_retry_attempts`), and, with
//! `enable_storage_batching`, small calls combined (see `batching`; a retry queues the
//! caller's part again).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::batching::{
    Batcher, GetManyById, GetManyByParentExecutionId, InsertMany, Operation, UpdateManyById,
    UpdateManyByIdAndInsertChildren, UpdateManyByParentExecutionIdAndIsFinished,
};
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

/// The storage and the metrics of the calls made to it.
pub(crate) struct Core {
    storage: Arc<dyn TaskExecutionsStorage>,
    metrics: Mutex<StorageMetrics>,
}

impl Core {
    fn record(&self, operation: &'static str, elapsed: Duration, failed: bool) {
        let mut metrics = self.metrics.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = metrics.entry(operation).or_default();
        entry.calls += 1;
        entry.total_duration += elapsed;
        if failed {
            entry.failures += 1;
        }
    }

    /// Makes one storage call, counted in the metrics.
    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let started = Instant::now();
        let result = call.await;
        self.record(operation, started.elapsed(), result.is_err());
        result
    }

    /// Makes one call of a batchable operation directly, counted in the metrics.
    pub(crate) async fn direct<O: Operation>(
        &self,
        requests: Vec<O::Request>,
    ) -> Result<Vec<O::Answer>, StorageError> {
        self.timed(O::NAME, O::call(self.storage.as_ref(), requests))
            .await
    }
}

pub(crate) struct Store {
    core: Arc<Core>,
    max_retry_attempts: u32,
    /// With `enable_storage_batching`: where the batchable calls are queued.
    batcher: Option<Batcher>,
}

impl Store {
    /// `batching`: the batching interval, with `enable_storage_batching`.
    pub(crate) fn new(
        storage: Arc<dyn TaskExecutionsStorage>,
        max_retry_attempts: u32,
        batching: Option<Duration>,
    ) -> Self {
        let core = Arc::new(Core {
            storage,
            metrics: Mutex::new(BTreeMap::new()),
        });
        let batcher = batching.map(|interval| Batcher::new(Arc::clone(&core), interval));
        Self {
            core,
            max_retry_attempts,
            batcher,
        }
    }

    /// The storage's clock (epoch ms): every absolute time the engine writes comes from it.
    pub(crate) fn now(&self) -> u64 {
        self.core.storage.now_millis()
    }

    pub(crate) fn metrics(&self) -> StorageMetrics {
        self.core
            .metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops storage batching, if on: what is queued is sent and the loop stops; later calls
    /// go to the storage directly.
    pub(crate) async fn shutdown_batching(&self) {
        if let Some(batcher) = &self.batcher {
            batcher.shutdown().await;
        }
    }

    #[cfg(test)]
    pub(crate) fn batcher(&self) -> Option<&Batcher> {
        self.batcher.as_ref()
    }

    /// Runs `call` (again after a retry-safe failure, 25 ms doubling up to 1 s apart).
    async fn call<T, F, Fut>(&self, operation: &'static str, mut call: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        self.call_with(operation, self.max_retry_attempts, is_retry_safe, || {
            self.core.timed(operation, call())
        })
        .await
    }

    /// One call of a batchable operation: queued when batching is on and the call is small,
    /// else made directly.
    async fn once<O: Operation>(
        &self,
        requests: Vec<O::Request>,
    ) -> Result<Vec<O::Answer>, StorageError> {
        let requests = match &self.batcher {
            Some(batcher) => match batcher.submit::<O>(requests) {
                Ok(answer) => {
                    return answer.await.unwrap_or_else(|_| {
                        Err(StorageError::InvalidRequest(format!(
                            "the storage batching loop stopped before answering a {} call",
                            O::NAME
                        )))
                    })
                }
                Err(requests) => requests,
            },
            None => requests,
        };
        self.core.direct::<O>(requests).await
    }

    /// A batchable operation, retried after a retry-safe failure (see `call`).
    async fn batchable<O: Operation>(
        &self,
        requests: Vec<O::Request>,
    ) -> Result<Vec<O::Answer>, StorageError> {
        self.call_with(O::NAME, self.max_retry_attempts, is_retry_safe, || {
            self.once::<O>(requests.clone())
        })
        .await
    }

    /// A batchable guarded write: its requests are filtered so that applying it twice changes
    /// nothing more (e.g. on `status = running` while it moves the execution out of
    /// `running`), so any transient failure, even one after which the write may have landed,
    /// is worth repeating (at least 4 times).
    async fn batchable_guarded<O: Operation>(
        &self,
        requests: Vec<O::Request>,
    ) -> Result<Vec<O::Answer>, StorageError> {
        let attempts = self.max_retry_attempts.max(4);
        self.call_with(O::NAME, attempts, is_worth_repeating_guarded, || {
            self.once::<O>(requests.clone())
        })
        .await
    }

    /// Runs `call` until it succeeds, fails in a way `retry` refuses, or `max_retry_attempts`
    /// retries were made. `call` counts its storage calls in the metrics.
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
            match call().await {
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
        self.batchable::<InsertMany>(executions).await.map(drop)
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
        self.batchable::<GetManyById>(requests).await
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
                self.core
                    .storage
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
        self.batchable::<UpdateManyById>(requests).await.map(drop)
    }

    /// [`update_many_by_id`](Self::update_many_by_id) for guarded writes (see
    /// `batchable_guarded`).
    pub(crate) async fn update_many_by_id_guarded(
        &self,
        requests: Vec<UpdateByIdRequest>,
    ) -> Result<(), StorageError> {
        self.batchable_guarded::<UpdateManyById>(requests)
            .await
            .map(drop)
    }

    /// [`update_many_by_id_and_insert_children_if_updated`] for guarded writes: the children
    /// are inserted only with an update that moves the parent out of what the filter matches.
    ///
    /// [`update_many_by_id_and_insert_children_if_updated`]: Self::update_many_by_id_and_insert_children_if_updated
    pub(crate) async fn update_and_insert_children_guarded(
        &self,
        requests: Vec<UpdateByIdAndInsertChildrenIfUpdatedRequest>,
    ) -> Result<(), StorageError> {
        self.batchable_guarded::<UpdateManyByIdAndInsertChildren>(requests)
            .await
            .map(drop)
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
        self.batchable::<UpdateManyByIdAndInsertChildren>(requests)
            .await
            .map(drop)
    }

    pub(crate) async fn claim_ready(
        &self,
        request: UpdateByStatusAndStartAtLessThanRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        self.call("updateByStatusAndStartAtLessThanAndReturn", || {
            self.core
                .storage
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
                self.core.storage
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
            self.core
                .storage
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
                self.core
                    .storage
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
                self.core
                    .storage
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
            self.core
                .storage
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
                self.core
                    .storage
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
        self.batchable::<GetManyByParentExecutionId>(requests).await
    }

    pub(crate) async fn update_many_by_parent_execution_id_and_is_finished(
        &self,
        requests: Vec<UpdateByParentExecutionIdAndIsFinishedRequest>,
    ) -> Result<(), StorageError> {
        if requests.is_empty() {
            return Ok(());
        }
        self.batchable::<UpdateManyByParentExecutionIdAndIsFinished>(requests)
            .await
            .map(drop)
    }

    pub(crate) async fn mark_finished_close_ready(
        &self,
        request: UpdateAndDecrementParentActiveChildrenCountRequest,
    ) -> Result<u32, StorageError> {
        self.call(
            "updateAndDecrementParentActiveChildrenCountByIsFinishedAndCloseStatus",
            || {
                self.core.storage
                    .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
                        request.clone(),
                    )
            },
        )
        .await
    }
}
