//! `enable_storage_batching`: the single calls of concurrent enqueues and finishing runs are
//! combined into a few storage calls, and every task still gets its own result.
//!
//! A call made alone goes at once, so batching combines the calls made while one of the same
//! operation is on its way: the storage here answers after a network-like latency.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use durable_execution::storage::{
    GetByIdRequest, GetByParentExecutionIdRequest, GetBySleepingTaskUniqueIdRequest,
    InMemoryTaskExecutionsStorage, StorageError, TaskExecutionStatus, TaskExecutionStorageValue,
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
use durable_execution::{
    Executor, ExecutorOptions, LogLevel, StorageMetrics, TaskError, TaskOptions, WaitOptions,
};

const TASKS: u32 = 200;

/// The in-memory storage, answering each call after `LATENCY` (like a storage over a network).
struct Slow(InMemoryTaskExecutionsStorage);

const LATENCY: Duration = Duration::from_millis(3);

macro_rules! slow {
    ($($name:ident($arg:ty) -> $out:ty;)*) => {
        #[async_trait]
        impl TaskExecutionsStorage for Slow {
            $(
                async fn $name(&self, arg: $arg) -> Result<$out, StorageError> {
                    tokio::time::sleep(LATENCY).await;
                    self.0.$name(arg).await
                }
            )*

            async fn delete_by_id(&self, execution_id: &str) -> Result<(), StorageError> {
                self.0.delete_by_id(execution_id).await
            }

            async fn delete_all(&self) -> Result<(), StorageError> {
                self.0.delete_all().await
            }
        }
    };
}

slow! {
        insert_many(Vec<TaskExecutionStorageValue>) -> ();
        get_many_by_id(Vec<GetByIdRequest>) -> Vec<Option<TaskExecutionStorageValue>>;
        get_many_by_sleeping_task_unique_id(Vec<GetBySleepingTaskUniqueIdRequest>)
            -> Vec<Option<TaskExecutionStorageValue>>;
        update_many_by_id(Vec<UpdateByIdRequest>) -> ();
        update_many_by_id_and_insert_children_if_updated(
            Vec<UpdateByIdAndInsertChildrenIfUpdatedRequest>
        ) -> ();
        update_by_status_and_start_at_less_than_and_return(
            UpdateByStatusAndStartAtLessThanRequest
        ) -> Vec<TaskExecutionStorageValue>;
        update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
            UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest
        ) -> Vec<TaskExecutionStorageValue>;
        update_by_close_status_and_return(UpdateByCloseStatusRequest)
            -> Vec<TaskExecutionStorageValue>;
        update_by_status_and_is_sleeping_task_and_expires_at_less_than(
            UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest
        ) -> u32;
        update_by_on_children_finished_processing_expires_at_less_than(
            UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest
        ) -> u32;
        update_by_close_expires_at_less_than(UpdateByCloseExpiresAtLessThanRequest) -> u32;
        update_by_executor_id_and_needs_promise_cancellation_and_return(
            UpdateByExecutorIdAndNeedsPromiseCancellationRequest
        ) -> Vec<TaskExecutionStorageValue>;
        get_many_by_parent_execution_id(Vec<GetByParentExecutionIdRequest>)
            -> Vec<Vec<TaskExecutionStorageValue>>;
        update_many_by_parent_execution_id_and_is_finished(
            Vec<UpdateByParentExecutionIdAndIsFinishedRequest>
        ) -> ();
        update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            UpdateAndDecrementParentActiveChildrenCountRequest
        ) -> u32;
}

/// Enqueues `TASKS` tasks at once, waits for every one of them and returns the storage calls.
async fn run_tasks(enable_storage_batching: bool) -> StorageMetrics {
    let storage = Slow(InMemoryTaskExecutionsStorage::new(Default::default()).expect("storage"));
    let executor = Executor::with_shared_storage(
        Arc::new(storage),
        ExecutorOptions::default()
            .with_background_process_intra_batch_sleep(Duration::from_millis(50))
            .with_max_idle_poll_interval(Duration::from_millis(250))
            .with_max_idle_maintenance_poll_interval(Duration::from_millis(250))
            .with_enable_storage_batching(enable_storage_batching)
            .with_log_level(LogLevel::Error),
    )
    .expect("executor");
    let task = executor
        .task(
            TaskOptions::new("double", Duration::from_secs(10)),
            |_, i: u32| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, TaskError>(i * 2)
            },
        )
        .expect("task");
    executor.start();
    let handles = futures::future::try_join_all((0..TASKS).map(|i| executor.enqueue(&task, i)))
        .await
        .expect("enqueue");
    let finished = futures::future::try_join_all(
        handles
            .iter()
            .map(|handle| handle.wait_finished(WaitOptions::default())),
    );
    let finished = tokio::time::timeout(Duration::from_secs(30), finished)
        .await
        .expect("every task finished in time")
        .expect("finished");
    for (i, execution) in (0..TASKS).zip(&finished) {
        assert_eq!(execution.status, TaskExecutionStatus::Completed);
        assert_eq!(execution.output, Some(i * 2));
    }
    let metrics = executor.storage_metrics();
    executor.shutdown().await;
    metrics
}

fn calls(metrics: &StorageMetrics, operations: &[&str]) -> u64 {
    operations
        .iter()
        .map(|operation| metrics.get(operation).map_or(0, |m| m.calls))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batching_combines_the_calls_of_concurrent_enqueues_and_runs() {
    let unbatched = run_tasks(false).await;
    let batched = run_tasks(true).await;
    for (name, metrics) in [("off", &unbatched), ("on", &batched)] {
        println!("storage batching {name}:");
        for (operation, m) in metrics {
            println!("  {operation}: {} calls, {} failed", m.calls, m.failures);
        }
    }
    let writes = ["insertMany", "updateManyById"];
    let (off, on) = (calls(&unbatched, &writes), calls(&batched, &writes));
    println!("insertMany + updateManyById: {off} calls without batching, {on} with");
    assert!(
        off >= u64::from(2 * TASKS),
        "{off} write calls without batching"
    );
    assert!(
        on * 4 < off,
        "{on} write calls with batching, {off} without"
    );
    let (inserts_off, inserts_on) = (
        calls(&unbatched, &["insertMany"]),
        calls(&batched, &["insertMany"]),
    );
    assert!(
        inserts_on * 4 < inserts_off,
        "{inserts_on} vs {inserts_off} inserts"
    );
    let (updates_off, updates_on) = (
        calls(&unbatched, &["updateManyById"]),
        calls(&batched, &["updateManyById"]),
    );
    assert!(
        updates_on * 4 < updates_off,
        "{updates_on} vs {updates_off} updates"
    );
    assert_eq!(batched.values().map(|m| m.failures).sum::<u64>(), 0);
}
