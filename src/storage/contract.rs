//! [`TaskExecutionsStorage`]: the contract between the durable-execution engine and a storage.

use async_trait::async_trait;

use super::requests::{
    GetByIdRequest, GetByParentExecutionIdRequest, GetBySleepingTaskUniqueIdRequest,
    UpdateAndDecrementParentActiveChildrenCountRequest, UpdateByCloseExpiresAtLessThanRequest,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use super::value::TaskExecutionStorageValue;
use super::StorageError;

/// Where the engine keeps task executions (reference §4).
///
/// Every method is atomic per request (per element of a list request): many executors, in
/// many processes, call the same storage at once, and the claiming methods must never hand the
/// same execution to two of them. "Patch" below means: apply the update as
/// [`TaskExecutionStorageValue::apply_update`] does (present fields replace, true `unset`
/// entries remove).
///
/// Range methods take a `limit`. A storage that partitions its data (the Convex storage's
/// shards) may apply the limit per partition, so callers must accept more results than
/// `limit`; an unpartitioned storage returns at most `limit`. A `limit` of 0 does nothing.
/// "Not updated since now" means `updatedAt` strictly earlier than the storage's clock when
/// the request runs. Returned values are as they are after the patch.
///
/// Object-safe: the engine holds an `Arc<dyn TaskExecutionsStorage>`.
#[async_trait]
pub trait TaskExecutionsStorage: Send + Sync {
    /// The storage's clock, in epoch milliseconds: the time the storage itself uses for its
    /// `now` (for a remote storage, its server's clock as this client estimates it). The engine
    /// computes every absolute time it writes (`startAt`, expiry times, `…LessThan` bounds)
    /// from this clock, so that a skewed local clock neither delays work nor expires leases
    /// early. The default is this process's system clock.
    fn now_millis(&self) -> u64 {
        super::now_millis()
    }

    /// Inserts every execution. Fails with [`StorageError::AlreadyExists`] when an execution id,
    /// or a present sleeping task unique id, already exists (in the storage or twice in the
    /// batch); the executions of the refused call are then not inserted.
    ///
    /// The batch should be atomic. A storage that must split large batches into several
    /// transactions (the Convex one) inserts them in order and reports a failure after the
    /// first as [`StorageError::PartiallyApplied`], with how many were inserted before.
    async fn insert_many(
        &self,
        executions: Vec<TaskExecutionStorageValue>,
    ) -> Result<(), StorageError>;

    /// One answer per request, in request order: the execution with that id, or `None` when
    /// there is none or it does not match every given filter.
    async fn get_many_by_id(
        &self,
        requests: Vec<GetByIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError>;

    /// One answer per request, in request order: the execution with that sleeping task unique
    /// id, if any.
    async fn get_many_by_sleeping_task_unique_id(
        &self,
        requests: Vec<GetBySleepingTaskUniqueIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError>;

    /// For each request: patches the execution when it exists and matches every given filter;
    /// otherwise skips it silently.
    async fn update_many_by_id(&self, requests: Vec<UpdateByIdRequest>)
        -> Result<(), StorageError>;

    /// As [`update_many_by_id`](Self::update_many_by_id); when a request's patch happened, its
    /// children are inserted in the same transaction as that patch (and linked to the parent).
    /// A request whose patch did not happen inserts nothing.
    async fn update_many_by_id_and_insert_children_if_updated(
        &self,
        requests: Vec<UpdateByIdAndInsertChildrenIfUpdatedRequest>,
    ) -> Result<(), StorageError>;

    /// Claims executions: those with `status` and `startAt < start_at_less_than`, by ascending
    /// `startAt`, at most `limit`; each is patched and also gets
    /// `expiresAt = update_expires_at_with_started_at + its timeoutMs`. Returns them.
    async fn update_by_status_and_start_at_less_than_and_return(
        &self,
        request: UpdateByStatusAndStartAtLessThanRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError>;

    /// Executions with `status`, `on_children_finished_processing_status`, no active children
    /// and not updated since now, by ascending `updatedAt`, at most `limit`: patched and
    /// returned.
    async fn update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
        &self,
        request: UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError>;

    /// Executions with `close_status`, not updated since now, by ascending `updatedAt`, at most
    /// `limit`: patched and returned.
    async fn update_by_close_status_and_return(
        &self,
        request: UpdateByCloseStatusRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError>;

    /// Executions with `status` and `is_sleeping_task` whose `expiresAt` is in
    /// `[0, expires_at_less_than)`, by ascending `expiresAt`, at most `limit`: patched. Returns
    /// how many.
    async fn update_by_status_and_is_sleeping_task_and_expires_at_less_than(
        &self,
        request: UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError>;

    /// Executions whose `onChildrenFinishedProcessingExpiresAt` is in `[0, bound)`, ascending,
    /// at most `limit`: patched. Returns how many.
    async fn update_by_on_children_finished_processing_expires_at_less_than(
        &self,
        request: UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError>;

    /// Executions whose `closeExpiresAt` is in `[0, bound)`, ascending, at most `limit`:
    /// patched. Returns how many.
    async fn update_by_close_expires_at_less_than(
        &self,
        request: UpdateByCloseExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError>;

    /// Executions of `executor_id` with that `needs_promise_cancellation`, not updated since
    /// now, by ascending `updatedAt`, at most `limit`: patched and returned.
    async fn update_by_executor_id_and_needs_promise_cancellation_and_return(
        &self,
        request: UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError>;

    /// One list per request, in request order: every child of that parent.
    async fn get_many_by_parent_execution_id(
        &self,
        requests: Vec<GetByParentExecutionIdRequest>,
    ) -> Result<Vec<Vec<TaskExecutionStorageValue>>, StorageError>;

    /// For each request: patches every child of the parent with that `is_finished`.
    async fn update_many_by_parent_execution_id_and_is_finished(
        &self,
        requests: Vec<UpdateByParentExecutionIdAndIsFinishedRequest>,
    ) -> Result<(), StorageError>;

    /// Executions with `is_finished` and `close_status`, not updated since now, by ascending
    /// `updatedAt`, at most `limit`: patched; then, in the same transaction, for each of them
    /// that has a parent and is not the parent's finalize task, the parent's active children
    /// count is decremented by one (set to 0 when it is the parent's only child). Returns how
    /// many were patched.
    async fn update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
        &self,
        request: UpdateAndDecrementParentActiveChildrenCountRequest,
    ) -> Result<u32, StorageError>;

    /// Deletes the execution if present. For tests: a storage not in test mode refuses with
    /// [`StorageError::TestModeRequired`] and deletes nothing.
    async fn delete_by_id(&self, execution_id: &str) -> Result<(), StorageError>;

    /// Deletes every execution. For tests: a storage not in test mode refuses with
    /// [`StorageError::TestModeRequired`] and deletes nothing.
    async fn delete_all(&self) -> Result<(), StorageError>;
}
