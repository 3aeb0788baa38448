//! [`ConvexTaskExecutionsStorage`]: the storage contract over the generated Convex client.

use std::future::Future;
use std::ops::Range;

use async_trait::async_trait;
use futures::future::try_join_all;
use serde::Serialize;

use super::chunking::{lower_limits, plan_elements, split_into};
use super::options::{shard_of_execution, split_limit, ConvexStorageOptions, ValidatedOptions};
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
use super::value::{TaskExecutionStorageUpdate, TaskExecutionStorageValue};
use super::{StorageError, TaskExecutionsStorage};
use crate::runtime::{AuthSecret, ConvexError, ConvexHttpClient, ConvexOperation, OperationLimits};
use crate::task_executions as tx;
use crate::task_executions::{TaskExecution, TaskExecutionsStorageClient};
use crate::Doc;

/// The engine's storage on a Convex deployment running the generated component.
///
/// - **Shards.** Every inserted execution (children included) gets the shard
///   [`shard_of_execution`] gives for its id, in `[0, total_shards)`. The operations whose
///   Convex arguments name a shard (claiming, on-children-finished processing, closing,
///   promise cancellation, parent decrement) run once per owned shard, concurrently, and
///   their results are concatenated in shard order. Each shard gets the full `limit`, as in
///   the original, except the parent decrement, whose limit is split across the owned shards
///   rounding up. The expiry operations have no shard and run once.
/// - **Limits.** List requests are cut into calls within Convex's limits (see `chunking`);
///   an element too large for any call is refused before anything is sent. Lookups send their
///   calls concurrently and reassemble the answers in request order. Writes send their calls
///   one after the other: each call is atomic, the batch as a whole is not, and a failure after
///   the first call is a [`StorageError::PartiallyApplied`] saying how many elements were
///   written before. A parent and the children it inserts always travel in the same call.
///   Range operations with a `limit` above what one call may patch are served in one call up
///   to that maximum (see `range_call` for why they do not continue).
/// - **Returned values** have the update applied locally, which gives the same result whether
///   the server returns documents before or after its patch.
/// - **Test mode.** Without `enable_test_mode`, `delete_by_id` and `delete_all` do nothing.
///
/// If a call fails after the server patched documents (e.g. a lost response), those
/// documents are not returned; claimed executions then expire through their `expiresAt` like
/// those of a crashed executor.
#[derive(Clone, Debug)]
pub struct ConvexTaskExecutionsStorage {
    client: TaskExecutionsStorageClient,
    options: ValidatedOptions,
}

impl ConvexTaskExecutionsStorage {
    /// A storage over `client`, after validating `options`.
    pub fn new(
        client: TaskExecutionsStorageClient,
        options: ConvexStorageOptions,
    ) -> Result<Self, StorageError> {
        let options = options.validate()?;
        Ok(Self { client, options })
    }

    /// A storage for the deployment at `url` whose public API expects `auth_secret`.
    pub fn connect(
        url: &str,
        auth_secret: AuthSecret,
        options: ConvexStorageOptions,
    ) -> Result<Self, StorageError> {
        let http = ConvexHttpClient::new(url)?;
        Self::new(TaskExecutionsStorageClient::new(http, auth_secret), options)
    }

    /// The typed client underneath.
    pub fn client(&self) -> &TaskExecutionsStorageClient {
        &self.client
    }

    /// The number of shards executions are spread over.
    pub fn total_shards(&self) -> u32 {
        self.options.total_shards
    }

    /// The shards this storage serves, sorted and without duplicates.
    pub fn shards(&self) -> &[u32] {
        &self.options.shards
    }

    /// Whether `delete_by_id` and `delete_all` reach the server.
    pub fn is_test_mode_enabled(&self) -> bool {
        self.options.enable_test_mode
    }

    /// The per-call limits of `O`, lowered by `max_items_per_call` when set.
    fn limits<O: ConvexOperation>(&self) -> OperationLimits {
        lower_limits(&O::LIMITS, self.options.max_items_per_call)
    }

    /// Plans the calls of a list request of `O` (see `chunking`).
    fn plan<T: Serialize, O: ConvexOperation>(
        &self,
        elements: &[T],
        children_of: impl Fn(&T) -> usize,
        name_of: impl Fn(&T) -> String,
    ) -> Result<Vec<Range<usize>>, StorageError> {
        plan_elements(O::NAME, &self.limits::<O>(), elements, children_of, name_of)
    }

    /// The document of a new execution, in its shard.
    fn document(&self, value: TaskExecutionStorageValue) -> TaskExecution {
        let shard = shard_of_execution(&value.execution_id, self.options.total_shards);
        value.into_document(shard)
    }

    async fn call<O: ConvexOperation>(&self, args: &O) -> Result<O::Response, StorageError> {
        Ok(self.client.call(args).await?)
    }

    /// Sends the chunks of a write one call after the other, so that a failure can say how
    /// much was written before it.
    async fn send_in_order<T, O>(
        &self,
        elements: Vec<T>,
        chunks: &[Range<usize>],
        args_of: impl Fn(Vec<T>) -> O,
    ) -> Result<(), StorageError>
    where
        T: Send,
        O: ConvexOperation<Response = ()>,
    {
        let total = elements.len();
        let mut applied = 0;
        for chunk in split_into(elements, chunks) {
            let len = chunk.len();
            if let Err(error) = self.call(&args_of(chunk)).await {
                return Err(partially_applied(O::NAME, applied, total, error));
            }
            applied += len;
        }
        Ok(())
    }

    /// Sends the chunks of a lookup concurrently and reassembles the answers in request order,
    /// checking that each call answered once per request.
    async fn look_up<T, O, R>(
        &self,
        elements: Vec<T>,
        chunks: &[Range<usize>],
        args_of: impl Fn(Vec<T>) -> O,
    ) -> Result<Vec<R>, StorageError>
    where
        O: ConvexOperation<Response = Vec<R>>,
    {
        let calls = split_into(elements, chunks).into_iter().map(|chunk| {
            let expected = chunk.len();
            let args = args_of(chunk);
            async move {
                let answers = self.call(&args).await?;
                check_answer_count::<O, R>(&answers, expected)?;
                Ok::<_, StorageError>(answers)
            }
        });
        Ok(try_join_all(calls).await?.into_iter().flatten().collect())
    }

    /// Runs `run` once per owned shard, concurrently; results in shard order.
    async fn per_shard<R, F, Fut>(&self, run: F) -> Result<Vec<R>, StorageError>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<R, StorageError>>,
    {
        try_join_all(self.options.shards.iter().map(|&shard| run(shard))).await
    }

    /// A range update of up to `limit` documents, in ONE call: at most the operation's
    /// per-call maximum (`max_limit`, lowered by `max_items_per_call`).
    ///
    /// A larger `limit` is not continued in a second call on purpose: that call would be a new
    /// transaction, and documents the update leaves inside the range (an update that changes
    /// neither the status nor the bounded field) would be patched and counted twice. Returning
    /// fewer than `limit` is within the contract; the engine's pollers simply ask again.
    async fn range_call<O>(
        &self,
        limit: u32,
        args_of: impl Fn(u32) -> O,
    ) -> Result<O::Response, StorageError>
    where
        O: ConvexOperation,
        O::Response: Default,
    {
        if limit == 0 {
            return Ok(O::Response::default());
        }
        let per_call = self.limits::<O>().max_limit.unwrap_or(limit);
        self.call(&args_of(limit.min(per_call))).await
    }
}

/// A failure of the call after `applied` elements were written by earlier calls.
fn partially_applied(
    operation: &'static str,
    applied: usize,
    total: usize,
    error: StorageError,
) -> StorageError {
    if applied == 0 {
        return error;
    }
    StorageError::PartiallyApplied {
        operation,
        applied,
        total,
        source: Box::new(error),
    }
}

fn check_answer_count<O: ConvexOperation, R>(
    answers: &[R],
    expected: usize,
) -> Result<(), StorageError> {
    if answers.len() == expected {
        return Ok(());
    }
    Err(StorageError::Convex(ConvexError::Decode {
        path: O::NAME.to_owned(),
        message: format!(
            "expected one answer per request ({expected}), got {}",
            answers.len()
        ),
    }))
}

/// The storage values of returned documents, with the update applied (and, for a claim,
/// `expiresAt` computed as the server does).
fn patched_values(
    documents: Vec<Doc<TaskExecution>>,
    update: &TaskExecutionStorageUpdate,
    expires_at_with_started_at: Option<u64>,
) -> Vec<TaskExecutionStorageValue> {
    documents
        .into_iter()
        .map(|document| {
            let mut value = TaskExecutionStorageValue::from(document);
            value.apply_update(update);
            if let Some(started_at) = expires_at_with_started_at {
                value.expires_at = Some(started_at.saturating_add(value.timeout_ms));
            }
            value
        })
        .collect()
}

fn values(documents: Vec<Doc<TaskExecution>>) -> Vec<TaskExecutionStorageValue> {
    documents
        .into_iter()
        .map(TaskExecutionStorageValue::from)
        .collect()
}

fn execution_name(execution_id: &str) -> String {
    format!("execution \"{execution_id}\"")
}

#[async_trait]
impl TaskExecutionsStorage for ConvexTaskExecutionsStorage {
    async fn insert_many(
        &self,
        executions: Vec<TaskExecutionStorageValue>,
    ) -> Result<(), StorageError> {
        let documents: Vec<TaskExecution> =
            executions.into_iter().map(|v| self.document(v)).collect();
        let chunks = self.plan::<_, tx::InsertManyArgs>(
            &documents,
            |_| 0,
            |d| execution_name(&d.execution_id),
        )?;
        self.send_in_order(documents, &chunks, |executions| tx::InsertManyArgs {
            executions,
        })
        .await
    }

    async fn get_many_by_id(
        &self,
        requests: Vec<GetByIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
        let requests: Vec<tx::ByExecutionIdRequest> = requests
            .into_iter()
            .map(|r| tx::ByExecutionIdRequest {
                execution_id: r.execution_id,
                filters: r.filters,
            })
            .collect();
        let chunks = self.plan::<_, tx::GetManyByIdArgs>(
            &requests,
            |_| 0,
            |r| execution_name(&r.execution_id),
        )?;
        let answers = self
            .look_up(requests, &chunks, |requests| tx::GetManyByIdArgs {
                requests,
            })
            .await?;
        Ok(answers
            .into_iter()
            .map(|d| d.map(TaskExecutionStorageValue::from))
            .collect())
    }

    async fn get_many_by_sleeping_task_unique_id(
        &self,
        requests: Vec<GetBySleepingTaskUniqueIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
        let requests: Vec<tx::BySleepingTaskUniqueIdRequest> = requests
            .into_iter()
            .map(|r| tx::BySleepingTaskUniqueIdRequest {
                sleeping_task_unique_id: r.sleeping_task_unique_id,
            })
            .collect();
        let chunks = self.plan::<_, tx::GetManyBySleepingTaskUniqueIdArgs>(
            &requests,
            |_| 0,
            |r| format!("sleeping task \"{}\"", r.sleeping_task_unique_id),
        )?;
        let answers = self
            .look_up(requests, &chunks, |requests| {
                tx::GetManyBySleepingTaskUniqueIdArgs { requests }
            })
            .await?;
        Ok(answers
            .into_iter()
            .map(|d| d.map(TaskExecutionStorageValue::from))
            .collect())
    }

    async fn update_many_by_id(
        &self,
        requests: Vec<UpdateByIdRequest>,
    ) -> Result<(), StorageError> {
        let requests: Vec<tx::UpdateByExecutionIdRequest> = requests
            .into_iter()
            .map(|r| tx::UpdateByExecutionIdRequest {
                execution_id: r.execution_id,
                filters: r.filters,
                update: r.update,
            })
            .collect();
        let chunks = self.plan::<_, tx::UpdateManyByIdArgs>(
            &requests,
            |_| 0,
            |r| execution_name(&r.execution_id),
        )?;
        self.send_in_order(requests, &chunks, |requests| tx::UpdateManyByIdArgs {
            requests,
        })
        .await
    }

    async fn update_many_by_id_and_insert_children_if_updated(
        &self,
        requests: Vec<UpdateByIdAndInsertChildrenIfUpdatedRequest>,
    ) -> Result<(), StorageError> {
        let requests: Vec<tx::UpdateByExecutionIdAndInsertChildrenRequest> = requests
            .into_iter()
            .map(|r| tx::UpdateByExecutionIdAndInsertChildrenRequest {
                execution_id: r.execution_id,
                filters: r.filters,
                update: r.update,
                children_task_executions_to_insert_if_any_updated: r
                    .children_task_executions_to_insert_if_any_updated
                    .into_iter()
                    .map(|child| self.document(child))
                    .collect(),
            })
            .collect();
        let chunks = self.plan::<_, tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs>(
            &requests,
            |r| r.children_task_executions_to_insert_if_any_updated.len(),
            |r| execution_name(&r.execution_id),
        )?;
        self.send_in_order(requests, &chunks, |requests| {
            tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs { requests }
        })
        .await
    }

    async fn update_by_status_and_start_at_less_than_and_return(
        &self,
        request: UpdateByStatusAndStartAtLessThanRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let r = &request;
        let documents = self
            .per_shard(|shard| {
                self.range_call(r.limit, move |limit| {
                    tx::UpdateByStatusAndStartAtLessThanAndReturnArgs {
                        shard,
                        status: r.status,
                        start_at_less_than: r.start_at_less_than,
                        update: r.update.clone(),
                        update_expires_at_with_started_at: r.update_expires_at_with_started_at,
                        limit,
                    }
                })
            })
            .await?;
        Ok(patched_values(
            documents.into_iter().flatten().collect(),
            &request.update,
            Some(request.update_expires_at_with_started_at),
        ))
    }

    async fn update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
        &self,
        request: UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let r = &request;
        let documents = self
            .per_shard(|shard| {
                self.range_call(r.limit, move |limit| {
                    tx::UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs {
                        shard,
                        status: r.status,
                        ocfp_status: r.on_children_finished_processing_status,
                        update: r.update.clone(),
                        limit,
                    }
                })
            })
            .await?;
        Ok(patched_values(
            documents.into_iter().flatten().collect(),
            &request.update,
            None,
        ))
    }

    async fn update_by_close_status_and_return(
        &self,
        request: UpdateByCloseStatusRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let r = &request;
        let documents = self
            .per_shard(|shard| {
                self.range_call(r.limit, move |limit| tx::UpdateByCloseStatusAndReturnArgs {
                    shard,
                    close_status: r.close_status,
                    update: r.update.clone(),
                    limit,
                })
            })
            .await?;
        Ok(patched_values(
            documents.into_iter().flatten().collect(),
            &request.update,
            None,
        ))
    }

    async fn update_by_status_and_is_sleeping_task_and_expires_at_less_than(
        &self,
        request: UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let r = &request;
        self.range_call(r.limit, |limit| {
            tx::UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs {
                status: r.status,
                is_sleeping_task: r.is_sleeping_task,
                expires_at_less_than: r.expires_at_less_than,
                update: r.update.clone(),
                limit,
            }
        })
        .await
    }

    async fn update_by_on_children_finished_processing_expires_at_less_than(
        &self,
        request: UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let r = &request;
        self.range_call(r.limit, |limit| tx::UpdateByOcfpExpiresAtArgs {
            ocfp_expires_at_less_than: r.on_children_finished_processing_expires_at_less_than,
            update: r.update.clone(),
            limit,
        })
        .await
    }

    async fn update_by_close_expires_at_less_than(
        &self,
        request: UpdateByCloseExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let r = &request;
        self.range_call(r.limit, |limit| tx::UpdateByCloseExpiresAtArgs {
            close_expires_at_less_than: r.close_expires_at_less_than,
            update: r.update.clone(),
            limit,
        })
        .await
    }

    async fn update_by_executor_id_and_needs_promise_cancellation_and_return(
        &self,
        request: UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let r = &request;
        let documents = self
            .per_shard(|shard| {
                self.range_call(r.limit, move |limit| {
                    tx::UpdateByExecutorIdAndNpcAndReturnArgs {
                        shard,
                        executor_id: r.executor_id.clone(),
                        npc: r.needs_promise_cancellation,
                        update: r.update.clone(),
                        limit,
                    }
                })
            })
            .await?;
        Ok(patched_values(
            documents.into_iter().flatten().collect(),
            &request.update,
            None,
        ))
    }

    async fn get_many_by_parent_execution_id(
        &self,
        requests: Vec<GetByParentExecutionIdRequest>,
    ) -> Result<Vec<Vec<TaskExecutionStorageValue>>, StorageError> {
        let requests: Vec<tx::ByParentExecutionIdRequest> = requests
            .into_iter()
            .map(|r| tx::ByParentExecutionIdRequest {
                parent_execution_id: r.parent_execution_id,
            })
            .collect();
        let chunks = self.plan::<_, tx::GetManyByParentExecutionIdArgs>(
            &requests,
            |_| 0,
            |r| format!("parent {}", execution_name(&r.parent_execution_id)),
        )?;
        let answers = self
            .look_up(requests, &chunks, |requests| {
                tx::GetManyByParentExecutionIdArgs { requests }
            })
            .await?;
        Ok(answers.into_iter().map(values).collect())
    }

    async fn update_many_by_parent_execution_id_and_is_finished(
        &self,
        requests: Vec<UpdateByParentExecutionIdAndIsFinishedRequest>,
    ) -> Result<(), StorageError> {
        let requests: Vec<tx::UpdateByParentExecutionIdAndIsFinishedRequest> = requests
            .into_iter()
            .map(|r| tx::UpdateByParentExecutionIdAndIsFinishedRequest {
                parent_execution_id: r.parent_execution_id,
                is_finished: r.is_finished,
                update: r.update,
            })
            .collect();
        let chunks = self.plan::<_, tx::UpdateManyByParentExecutionIdAndIsFinishedArgs>(
            &requests,
            |_| 0,
            |r| format!("parent {}", execution_name(&r.parent_execution_id)),
        )?;
        self.send_in_order(requests, &chunks, |requests| {
            tx::UpdateManyByParentExecutionIdAndIsFinishedArgs { requests }
        })
        .await
    }

    async fn update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
        &self,
        request: UpdateAndDecrementParentActiveChildrenCountRequest,
    ) -> Result<u32, StorageError> {
        let r = &request;
        let per_shard_limit = split_limit(r.limit, self.options.shards.len());
        let counts = self
            .per_shard(|shard| {
                self.range_call(per_shard_limit, move |limit| {
                    tx::UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs {
                        shard,
                        is_finished: r.is_finished,
                        close_status: r.close_status,
                        update: r.update.clone(),
                        limit,
                    }
                })
            })
            .await?;
        Ok(counts.into_iter().fold(0, u32::saturating_add))
    }

    async fn delete_by_id(&self, execution_id: &str) -> Result<(), StorageError> {
        if !self.options.enable_test_mode {
            return Ok(());
        }
        self.call(&tx::DeleteByIdArgs {
            execution_id: execution_id.to_owned(),
        })
        .await
    }

    async fn delete_all(&self) -> Result<(), StorageError> {
        if !self.options.enable_test_mode {
            return Ok(());
        }
        self.call(&tx::DeleteAllArgs {}).await
    }
}
