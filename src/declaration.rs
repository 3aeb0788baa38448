//! THE single source of truth: the `taskExecutions` table, its indexes and the 17 operations of
//! the storage API (see `shared/reference/storage-api.md`).
//!
//! `#[convex_component]` checks this module at `cargo check` and expands it into the Rust types
//! and the typed client ([`TaskExecutionsStorageClient`]); `cargo codegen generate` parses this
//! very file with the same parser and writes the Convex component into `generated/`.
//! The attribute vocabulary is documented on
//! [`convex_component`](durable_execution_storage_convex_macros::convex_component).

use durable_execution_storage_convex_macros::convex_component;

// `compat_factory`: the original package's entry point, for apps moving over.
#[convex_component(
    name = "taskExecutionsStorage",
    app_module = "taskExecutionsStorage",
    compat_factory = "convertDurableExecutionStorageComponentToPublicApiImpl"
)]
pub mod task_executions {
    /// Retry policy of a task: the delay before attempt `n` is
    /// `min(baseDelayMs * delayMultiplier^n, maxDelayMs)`.
    #[convex(object)]
    pub struct RetryOptions {
        pub max_attempts: u32,
        pub base_delay_ms: Option<u64>,
        pub max_delay_ms: Option<u64>,
        pub delay_multiplier: Option<f64>,
    }

    /// The error a failed execution carries.
    #[convex(object)]
    pub struct ExecutionError {
        pub error_type: ErrorType,
        pub message: String,
        pub is_retryable: bool,
        pub is_internal: bool,
    }

    /// A child (or the finalize task) of an execution.
    #[convex(object)]
    pub struct TaskExecutionSummary {
        pub task_id: String,
        pub execution_id: String,
    }

    /// Life-cycle status of an execution. Variants travel in snake_case (`TimedOut` is
    /// `"timed_out"`), fields in camelCase, unless renamed.
    #[convex(union)]
    pub enum TaskExecutionStatus {
        Ready,
        Running,
        Failed,
        TimedOut,
        WaitingForChildren,
        WaitingForFinalize,
        FinalizeFailed,
        Completed,
        Cancelled,
    }

    /// Kind of an [`ExecutionError`].
    #[convex(union)]
    pub enum ErrorType {
        Generic,
        NotFound,
        TimedOut,
        Cancelled,
    }

    /// Status of the processing that runs once all children of an execution have finished.
    #[convex(union)]
    pub enum OnChildrenFinishedProcessingStatus {
        Idle,
        Processing,
        Processed,
    }

    /// Status of the closing of a finished execution.
    #[convex(union)]
    pub enum CloseStatus {
        Idle,
        Ready,
        Closing,
        Closed,
    }

    /// One execution of a task, as stored in Convex (system fields `_id` and `_creationTime`
    /// travel in [`Doc`](crate::Doc)).
    #[convex(table = "taskExecutions")]
    #[convex(index(name = "by_executionId", fields(execution_id)))]
    #[convex(index(name = "by_sleepingTaskUniqueId", fields(sleeping_task_unique_id)))]
    #[convex(index(name = "by_shard_status_startAt", fields(shard, status, start_at)))]
    #[convex(index(
        name = "by_shard_status_ocfpStatus_acc_updatedAt",
        fields(
            shard,
            status,
            on_children_finished_processing_status,
            active_children_count,
            updated_at
        )
    ))]
    #[convex(index(
        name = "by_shard_closeStatus_updatedAt",
        fields(shard, close_status, updated_at)
    ))]
    #[convex(index(
        name = "by_status_isSleepingTask_expiresAt",
        fields(status, is_sleeping_task, expires_at)
    ))]
    #[convex(index(
        name = "by_ocfpExpiresAt",
        fields(on_children_finished_processing_expires_at)
    ))]
    #[convex(index(name = "by_closeExpiresAt", fields(close_expires_at)))]
    #[convex(index(
        name = "by_shard_executorId_npc_updatedAt",
        fields(shard, executor_id, needs_promise_cancellation, updated_at)
    ))]
    #[convex(index(
        name = "by_parentExecutionId_isFinished",
        fields(parent_execution_id, is_finished)
    ))]
    #[convex(index(
        name = "by_shard_isFinished_closeStatus_updatedAt",
        fields(shard, is_finished, close_status, updated_at)
    ))]
    pub struct TaskExecution {
        /// Chosen by the client at insert, in `[0, totalShards)`; at most 64 shards.
        #[convex(max = 63)]
        pub shard: u32,
        pub root_task_id: Option<String>,
        pub root_execution_id: Option<String>,
        pub parent_task_id: Option<String>,
        pub parent_execution_id: Option<String>,
        /// Set by the server when children are inserted under their parent.
        pub parent_execution_doc_id: Option<Id<TaskExecution>>,
        pub index_in_parent_children: Option<u32>,
        pub is_only_child_of_parent: Option<bool>,
        pub is_finalize_of_parent: Option<bool>,
        pub task_id: String,
        /// Unique across the table.
        pub execution_id: String,
        #[convex(filter)]
        pub is_sleeping_task: bool,
        /// Unique across the table when present.
        pub sleeping_task_unique_id: Option<String>,
        pub retry_options: RetryOptions,
        pub sleep_ms_before_run: u64,
        pub timeout_ms: u64,
        pub are_children_sequential: bool,
        /// The serialized input.
        pub input: String,
        #[convex(update(unset))]
        pub executor_id: Option<String>,
        #[convex(update, filter)]
        pub status: TaskExecutionStatus,
        #[convex(update, filter)]
        pub is_finished: bool,
        #[convex(update(unset))]
        pub run_output: Option<String>,
        #[convex(update)]
        pub output: Option<String>,
        #[convex(update(unset))]
        pub error: Option<ExecutionError>,
        #[convex(update)]
        pub retry_attempts: u32,
        /// Epoch milliseconds, as every time below.
        #[convex(update, server_time = "at_least_now")]
        pub start_at: u64,
        #[convex(update(unset), server_time = "now")]
        pub started_at: Option<u64>,
        #[convex(update(unset), server_time = "expiry")]
        pub expires_at: Option<u64>,
        #[convex(update, server_time = "now")]
        pub waiting_for_children_started_at: Option<u64>,
        #[convex(update, server_time = "now")]
        pub waiting_for_finalize_started_at: Option<u64>,
        #[convex(update, server_time = "now")]
        pub finished_at: Option<u64>,
        #[convex(update)]
        pub children: Option<Vec<TaskExecutionSummary>>,
        #[convex(rename = "acc", update)]
        pub active_children_count: u32,
        #[convex(rename = "ocfpStatus", update)]
        pub on_children_finished_processing_status: OnChildrenFinishedProcessingStatus,
        #[convex(rename = "ocfpExpiresAt", update(unset), server_time = "expiry")]
        pub on_children_finished_processing_expires_at: Option<u64>,
        #[convex(rename = "ocfpFinishedAt", update, server_time = "now")]
        pub on_children_finished_processing_finished_at: Option<u64>,
        #[convex(update)]
        pub finalize: Option<TaskExecutionSummary>,
        #[convex(update)]
        pub close_status: CloseStatus,
        #[convex(update(unset), server_time = "expiry")]
        pub close_expires_at: Option<u64>,
        #[convex(update, server_time = "now")]
        pub closed_at: Option<u64>,
        #[convex(rename = "npc", update)]
        pub needs_promise_cancellation: bool,
        #[convex(server_time = "now")]
        pub created_at: u64,
        #[convex(update(required), server_time = "now")]
        pub updated_at: u64,
    }

    /// A lookup by execution id.
    #[convex(object)]
    pub struct ByExecutionIdRequest {
        pub execution_id: String,
        pub filters: Option<TaskExecutionFilters>,
    }

    /// A lookup by sleeping task unique id.
    #[convex(object)]
    pub struct BySleepingTaskUniqueIdRequest {
        pub sleeping_task_unique_id: String,
    }

    /// An update of one execution, by id.
    #[convex(object)]
    pub struct UpdateByExecutionIdRequest {
        pub execution_id: String,
        pub filters: Option<TaskExecutionFilters>,
        pub update: TaskExecutionUpdate,
    }

    /// An update of one execution, by id, that inserts its children when it happened.
    #[convex(object)]
    pub struct UpdateByExecutionIdAndInsertChildrenRequest {
        pub execution_id: String,
        pub filters: Option<TaskExecutionFilters>,
        pub update: TaskExecutionUpdate,
        pub children_task_executions_to_insert_if_any_updated: Vec<TaskExecution>,
    }

    /// A lookup of the children of one parent.
    #[convex(object)]
    pub struct ByParentExecutionIdRequest {
        pub parent_execution_id: String,
    }

    /// An update of the children of one parent that are (or are not) finished.
    #[convex(object)]
    pub struct UpdateByParentExecutionIdAndIsFinishedRequest {
        pub parent_execution_id: String,
        pub is_finished: bool,
        pub update: TaskExecutionUpdate,
    }

    /// Inserts executions; the whole call fails when an execution id or a sleeping task unique
    /// id already exists.
    #[convex(operation(
        name = "insertMany",
        kind = "mutation",
        returns = "()",
        retry = "verify_duplicates"
    ))]
    #[convex(access(
        insert,
        each = executions,
        unique("by_executionId", "by_sleepingTaskUniqueId")
    ))]
    pub struct InsertManyArgs {
        pub executions: Vec<TaskExecution>,
    }

    /// One answer per request, in order.
    #[convex(operation(
        name = "getManyById",
        kind = "query",
        returns = "Vec<Option<Doc<TaskExecution>>>",
        retry = "idempotent"
    ))]
    #[convex(access(
        get_each,
        each = requests,
        index = "by_executionId",
        eq(execution_id = execution_id),
        filters = filters,
        first
    ))]
    pub struct GetManyByIdArgs {
        pub requests: Vec<ByExecutionIdRequest>,
    }

    /// One answer per request, in order.
    #[convex(operation(
        name = "getManyBySleepingTaskUniqueId",
        kind = "query",
        returns = "Vec<Option<Doc<TaskExecution>>>",
        retry = "idempotent"
    ))]
    #[convex(access(
        get_each,
        each = requests,
        index = "by_sleepingTaskUniqueId",
        eq(sleeping_task_unique_id = sleeping_task_unique_id),
        first
    ))]
    pub struct GetManyBySleepingTaskUniqueIdArgs {
        pub requests: Vec<BySleepingTaskUniqueIdRequest>,
    }

    /// Each request patches its execution when found and its filters match.
    #[convex(operation(
        name = "updateManyById",
        kind = "action",
        returns = "()",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_executionId",
        eq(execution_id = execution_id),
        filters = filters,
        update = update,
        first
    ))]
    pub struct UpdateManyByIdArgs {
        pub requests: Vec<UpdateByExecutionIdRequest>,
    }

    /// As `updateManyById`; when the patch happened, the children are inserted in the same
    /// transaction with `parentExecutionDocId` set to the parent's `_id`.
    #[convex(operation(
        name = "updateManyByIdAndInsertChildrenIfUpdated",
        kind = "action",
        returns = "()",
        retry = "verify_duplicates"
    ))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_executionId",
        eq(execution_id = execution_id),
        filters = filters,
        update = update,
        first,
        insert_children = children_task_executions_to_insert_if_any_updated,
        parent_link = parent_execution_doc_id,
        unique("by_executionId", "by_sleepingTaskUniqueId")
    ))]
    pub struct UpdateManyByIdAndInsertChildrenIfUpdatedArgs {
        pub requests: Vec<UpdateByExecutionIdAndInsertChildrenRequest>,
    }

    /// Claims ready executions: `expiresAt` becomes `updateExpiresAtWithStartedAt + timeoutMs`,
    /// where `updateExpiresAtWithStartedAt` is never before the server's time.
    #[convex(operation(
        name = "updateByStatusAndStartAtLessThanAndReturn",
        kind = "action",
        returns = "Vec<Doc<TaskExecution>>",
        retry = "only_unsent"
    ))]
    #[convex(access(
        update_range,
        index = "by_shard_status_startAt",
        eq(shard = shard, status = status),
        lt(start_at = start_at_less_than),
        limit = limit,
        update = update,
        add(expires_at = (update_expires_at_with_started_at, timeout_ms))
    ))]
    pub struct UpdateByStatusAndStartAtLessThanAndReturnArgs {
        #[convex(max = 63)]
        pub shard: u32,
        pub status: TaskExecutionStatus,
        #[convex(server_time = "at_most_now")]
        pub start_at_less_than: u64,
        pub update: TaskExecutionUpdate,
        /// The start of the lease (the engine sends its now plus its expire leeway), never
        /// before the server's time: `expiresAt` = this + `timeoutMs` is never shorter than
        /// `timeoutMs` on the server's clock, and a client behind cannot expire it early.
        #[convex(server_time = "at_least_now")]
        pub update_expires_at_with_started_at: u64,
        pub limit: u32,
    }

    /// Executions whose children have all finished, not updated since `now`.
    #[convex(operation(
        name = "updateByStatusAndOCFPStatusAndACCZeroAndReturn",
        kind = "action",
        returns = "Vec<Doc<TaskExecution>>",
        retry = "only_unsent"
    ))]
    #[convex(access(
        update_range,
        index = "by_shard_status_ocfpStatus_acc_updatedAt",
        eq(
            shard = shard,
            status = status,
            on_children_finished_processing_status = ocfp_status,
            active_children_count = 0
        ),
        lt(updated_at = now),
        limit = limit,
        update = update
    ))]
    pub struct UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs {
        #[convex(max = 63)]
        pub shard: u32,
        pub status: TaskExecutionStatus,
        pub ocfp_status: OnChildrenFinishedProcessingStatus,
        pub update: TaskExecutionUpdate,
        pub limit: u32,
    }

    /// Executions with a close status, not updated since `now`.
    #[convex(operation(
        name = "updateByCloseStatusAndReturn",
        kind = "action",
        returns = "Vec<Doc<TaskExecution>>",
        retry = "only_unsent"
    ))]
    #[convex(access(
        update_range,
        index = "by_shard_closeStatus_updatedAt",
        eq(shard = shard, close_status = close_status),
        lt(updated_at = now),
        limit = limit,
        update = update
    ))]
    pub struct UpdateByCloseStatusAndReturnArgs {
        #[convex(max = 63)]
        pub shard: u32,
        pub close_status: CloseStatus,
        pub update: TaskExecutionUpdate,
        pub limit: u32,
    }

    /// Expired executions of every shard; returns how many were patched.
    #[convex(operation(
        name = "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
        kind = "action",
        returns = "u32",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_range,
        index = "by_status_isSleepingTask_expiresAt",
        eq(status = status, is_sleeping_task = is_sleeping_task),
        gte(expires_at = 0),
        lt(expires_at = expires_at_less_than),
        limit = limit,
        update = update
    ))]
    pub struct UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs {
        pub status: TaskExecutionStatus,
        pub is_sleeping_task: bool,
        #[convex(server_time = "at_most_now")]
        pub expires_at_less_than: u64,
        pub update: TaskExecutionUpdate,
        pub limit: u32,
    }

    /// Executions whose on-children-finished processing expired; returns the count.
    #[convex(operation(
        name = "updateByOCFPExpiresAt",
        kind = "action",
        returns = "u32",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_range,
        index = "by_ocfpExpiresAt",
        gte(on_children_finished_processing_expires_at = 0),
        lt(on_children_finished_processing_expires_at = ocfp_expires_at_less_than),
        limit = limit,
        update = update
    ))]
    pub struct UpdateByOcfpExpiresAtArgs {
        #[convex(server_time = "at_most_now")]
        pub ocfp_expires_at_less_than: u64,
        pub update: TaskExecutionUpdate,
        pub limit: u32,
    }

    /// Executions whose closing expired; returns the count.
    #[convex(operation(
        name = "updateByCloseExpiresAt",
        kind = "action",
        returns = "u32",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_range,
        index = "by_closeExpiresAt",
        gte(close_expires_at = 0),
        lt(close_expires_at = close_expires_at_less_than),
        limit = limit,
        update = update
    ))]
    pub struct UpdateByCloseExpiresAtArgs {
        #[convex(server_time = "at_most_now")]
        pub close_expires_at_less_than: u64,
        pub update: TaskExecutionUpdate,
        pub limit: u32,
    }

    /// Executions of an executor that need their promise cancelled, not updated since `now`.
    #[convex(operation(
        name = "updateByExecutorIdAndNPCAndReturn",
        kind = "action",
        returns = "Vec<Doc<TaskExecution>>",
        retry = "only_unsent"
    ))]
    #[convex(access(
        update_range,
        index = "by_shard_executorId_npc_updatedAt",
        eq(
            shard = shard,
            executor_id = executor_id,
            needs_promise_cancellation = npc
        ),
        lt(updated_at = now),
        limit = limit,
        update = update
    ))]
    pub struct UpdateByExecutorIdAndNpcAndReturnArgs {
        #[convex(max = 63)]
        pub shard: u32,
        pub executor_id: String,
        pub npc: bool,
        pub update: TaskExecutionUpdate,
        pub limit: u32,
    }

    /// All children of each parent, one list per request, in order.
    #[convex(operation(
        name = "getManyByParentExecutionId",
        kind = "query",
        returns = "Vec<Vec<Doc<TaskExecution>>>",
        retry = "idempotent"
    ))]
    #[convex(access(
        get_each,
        each = requests,
        index = "by_parentExecutionId_isFinished",
        eq(parent_execution_id = parent_execution_id)
    ))]
    pub struct GetManyByParentExecutionIdArgs {
        pub requests: Vec<ByParentExecutionIdRequest>,
    }

    /// Patches every child of the parent with that `isFinished`.
    #[convex(operation(
        name = "updateManyByParentExecutionIdAndIsFinished",
        kind = "action",
        returns = "()",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_parentExecutionId_isFinished",
        eq(parent_execution_id = parent_execution_id, is_finished = is_finished),
        update = update
    ))]
    pub struct UpdateManyByParentExecutionIdAndIsFinishedArgs {
        pub requests: Vec<UpdateByParentExecutionIdAndIsFinishedRequest>,
    }

    /// Patches finished executions, then decrements each parent's active children count (set
    /// to 0 for an only child; a finalize child does not count), in one transaction.
    #[convex(operation(
        name = "updateAndDecrementParentACCByIsFinishedAndCloseStatus",
        kind = "action",
        returns = "u32",
        retry = "only_unsent"
    ))]
    #[convex(access(
        update_range,
        index = "by_shard_isFinished_closeStatus_updatedAt",
        eq(shard = shard, is_finished = is_finished, close_status = close_status),
        lt(updated_at = now),
        limit = limit,
        update = update,
        then(decrement_referenced(
            counter = active_children_count,
            via = parent_execution_id,
            index = "by_executionId",
            unless = is_finalize_of_parent,
            reset_if = is_only_child_of_parent
        ))
    ))]
    pub struct UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs {
        #[convex(max = 63)]
        pub shard: u32,
        pub is_finished: bool,
        pub close_status: CloseStatus,
        pub update: TaskExecutionUpdate,
        pub limit: u32,
    }

    /// Deletes one execution if present. Refused by the server outside test mode.
    #[convex(operation(
        name = "deleteById",
        kind = "mutation",
        returns = "()",
        retry = "idempotent",
        test_only
    ))]
    #[convex(access(delete_one, index = "by_executionId", eq(execution_id = execution_id)))]
    pub struct DeleteByIdArgs {
        pub execution_id: String,
    }

    /// Deletes every execution. Refused by the server outside test mode.
    #[convex(operation(
        name = "deleteAll",
        kind = "action",
        returns = "()",
        retry = "idempotent",
        test_only
    ))]
    #[convex(access(delete_all))]
    pub struct DeleteAllArgs {}
}
