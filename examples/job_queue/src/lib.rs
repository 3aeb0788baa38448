//! A job queue on Convex, declared the way a user of this toolkit declares their own schema:
//! two tables (`jobs`, `workers`), an object, unions, optional and array fields, and one
//! operation of every access pattern of the vocabulary (see the README, "Use it for your own
//! schema").
//!
//! `#[convex_component]` expands the module below into the Rust types and the typed client
//! ([`job_queue::JobQueueClient`]); `cargo codegen generate` reads this very file and writes
//! the Convex component and its public API into `examples/job_queue/generated/` and
//! `examples/job_queue/app/` (targets listed in the repository's `codegen.json`).

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "jobQueue", app_module = "jobQueue")]
pub mod job_queue {
    /// Where a job is in its life.
    #[convex(union)]
    pub enum JobStatus {
        Queued,
        Running,
        Succeeded,
        Failed,
    }

    /// What a worker is doing.
    #[convex(union)]
    pub enum WorkerState {
        Idle,
        Busy,
        Draining,
    }

    /// What to run: a handler name and its serialized input.
    #[convex(object)]
    pub struct JobPayload {
        pub handler: String,
        pub input: String,
        /// Higher runs first within a queue (informational here).
        pub priority: Option<u32>,
    }

    /// One job of a queue.
    #[convex(table = "jobs")]
    #[convex(index(name = "by_jobId", fields(job_id)))]
    #[convex(index(name = "by_dedupKey", fields(dedup_key)))]
    #[convex(index(name = "by_queue_status_runAt", fields(queue, status, run_at)))]
    #[convex(index(name = "by_status_leaseExpiresAt", fields(status, lease_expires_at)))]
    pub struct Job {
        /// Unique across the table.
        pub job_id: String,
        pub queue: String,
        /// Unique across the table when present.
        pub dedup_key: Option<String>,
        pub payload: JobPayload,
        pub tags: Vec<String>,
        #[convex(update, filter)]
        pub status: JobStatus,
        #[convex(update(unset))]
        pub worker_id: Option<String>,
        #[convex(update, max = 100)]
        pub attempts: u32,
        pub timeout_ms: u64,
        /// Epoch milliseconds, never before the server's time.
        #[convex(update, server_time = "at_least_now")]
        pub run_at: u64,
        /// Set by a claim: the lease start plus `timeoutMs`.
        #[convex(update(unset), server_time = "expiry")]
        pub lease_expires_at: Option<u64>,
        #[convex(update(unset))]
        pub output: Option<String>,
        #[convex(update)]
        pub errors: Option<Vec<String>>,
        /// Set by the server on jobs spawned by another job.
        pub parent_job_doc_id: Option<Id<Job>>,
        #[convex(server_time = "now")]
        pub created_at: u64,
        #[convex(update(required), server_time = "now")]
        pub updated_at: u64,
    }

    /// A worker taking jobs from some queues.
    #[convex(table = "workers")]
    #[convex(index(name = "by_workerId", fields(worker_id)))]
    #[convex(index(name = "by_state", fields(state)))]
    pub struct Worker {
        pub worker_id: String,
        pub queues: Vec<String>,
        #[convex(update, filter)]
        pub state: WorkerState,
        #[convex(update(unset))]
        pub current_job_id: Option<String>,
        #[convex(update(required), server_time = "now")]
        pub last_seen_at: u64,
    }

    /// A lookup of one job.
    #[convex(object)]
    pub struct ByJobIdRequest {
        pub job_id: String,
        pub filters: Option<JobFilters>,
    }

    /// A lookup of every job of a queue in a status.
    #[convex(object)]
    pub struct ByQueueAndStatusRequest {
        pub queue: String,
        pub status: JobStatus,
    }

    /// A lookup of one worker.
    #[convex(object)]
    pub struct ByWorkerIdRequest {
        pub worker_id: String,
    }

    /// A patch of one job when its filters match.
    #[convex(object)]
    pub struct UpdateJobRequest {
        pub job_id: String,
        pub filters: Option<JobFilters>,
        pub update: JobUpdate,
    }

    /// A patch of one job that spawns follow-up jobs when it happened.
    #[convex(object)]
    pub struct UpdateJobAndSpawnRequest {
        pub job_id: String,
        pub filters: Option<JobFilters>,
        pub update: JobUpdate,
        pub spawn: Vec<Job>,
    }

    /// A patch of every job of a queue in a status.
    #[convex(object)]
    pub struct UpdateQueueRequest {
        pub queue: String,
        pub status: JobStatus,
        pub update: JobUpdate,
    }

    /// A patch of every worker with that id whose filters match.
    #[convex(object)]
    pub struct UpdateWorkerRequest {
        pub worker_id: String,
        pub filters: Option<WorkerFilters>,
        pub update: WorkerUpdate,
    }

    /// Enqueues jobs; the whole call fails when a job id or a dedup key already exists.
    #[convex(operation(
        name = "enqueueJobs",
        kind = "mutation",
        returns = "()",
        table = "Job",
        retry = "verify_duplicates"
    ))]
    #[convex(access(insert, each = jobs, unique("by_jobId", "by_dedupKey")))]
    pub struct EnqueueJobsArgs {
        pub jobs: Vec<Job>,
    }

    /// Registers workers (no uniqueness: a worker id may register twice).
    #[convex(operation(
        name = "registerWorkers",
        kind = "mutation",
        returns = "()",
        table = "Worker"
    ))]
    #[convex(access(insert, each = workers))]
    pub struct RegisterWorkersArgs {
        pub workers: Vec<Worker>,
    }

    /// One job or none per request, in order; a job whose filters do not match is none.
    #[convex(operation(
        name = "getJobs",
        kind = "query",
        returns = "Vec<Option<Doc<Job>>>",
        table = "Job"
    ))]
    #[convex(access(
        get_each,
        each = requests,
        index = "by_jobId",
        eq(job_id = job_id),
        filters = filters,
        first
    ))]
    pub struct GetJobsArgs {
        pub requests: Vec<ByJobIdRequest>,
    }

    /// Every job of a queue in a status, oldest `runAt` first, one list per request.
    #[convex(operation(
        name = "listJobs",
        kind = "query",
        returns = "Vec<Vec<Doc<Job>>>",
        table = "Job"
    ))]
    #[convex(access(
        get_each,
        each = requests,
        index = "by_queue_status_runAt",
        eq(queue = queue, status = status)
    ))]
    pub struct ListJobsArgs {
        pub requests: Vec<ByQueueAndStatusRequest>,
    }

    /// One worker or none per request, in order.
    #[convex(operation(
        name = "getWorkers",
        kind = "query",
        returns = "Vec<Option<Doc<Worker>>>",
        table = "Worker"
    ))]
    #[convex(access(
        get_each,
        each = requests,
        index = "by_workerId",
        eq(worker_id = worker_id),
        first
    ))]
    pub struct GetWorkersArgs {
        pub requests: Vec<ByWorkerIdRequest>,
    }

    /// Patches each job when found and its filters match.
    #[convex(operation(
        name = "updateJobs",
        kind = "mutation",
        returns = "()",
        table = "Job",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_jobId",
        eq(job_id = job_id),
        filters = filters,
        update = update,
        first
    ))]
    pub struct UpdateJobsArgs {
        pub requests: Vec<UpdateJobRequest>,
    }

    /// As `updateJobs`; when the patch happened, the spawned jobs are enqueued in the same
    /// transaction with `parentJobDocId` set to the job's `_id`.
    #[convex(operation(
        name = "completeJobsAndSpawn",
        kind = "action",
        returns = "()",
        table = "Job",
        retry = "verify_duplicates"
    ))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_jobId",
        eq(job_id = job_id),
        filters = filters,
        update = update,
        first,
        insert_children = spawn,
        parent_link = parent_job_doc_id,
        unique("by_jobId", "by_dedupKey")
    ))]
    pub struct CompleteJobsAndSpawnArgs {
        pub requests: Vec<UpdateJobAndSpawnRequest>,
    }

    /// Patches every job of a queue in a status (e.g. requeues the failed ones).
    #[convex(operation(
        name = "updateQueues",
        kind = "mutation",
        returns = "()",
        table = "Job",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_queue_status_runAt",
        eq(queue = queue, status = status),
        update = update
    ))]
    pub struct UpdateQueuesArgs {
        pub requests: Vec<UpdateQueueRequest>,
    }

    /// Patches every registration of each worker whose filters match.
    #[convex(operation(
        name = "updateWorkers",
        kind = "mutation",
        returns = "()",
        table = "Worker",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_workerId",
        eq(worker_id = worker_id),
        filters = filters,
        update = update
    ))]
    pub struct UpdateWorkersArgs {
        pub requests: Vec<UpdateWorkerRequest>,
    }

    /// Claims due jobs of a queue: `leaseExpiresAt` becomes `leaseStartedAt + timeoutMs`,
    /// where `leaseStartedAt` is never before the server's time.
    #[convex(operation(
        name = "claimJobs",
        kind = "action",
        returns = "Vec<Doc<Job>>",
        table = "Job",
        retry = "only_unsent"
    ))]
    #[convex(access(
        update_range,
        index = "by_queue_status_runAt",
        eq(queue = queue, status = "queued"),
        lt(run_at = run_at_before),
        limit = limit,
        update = update,
        add(lease_expires_at = (lease_started_at, timeout_ms))
    ))]
    pub struct ClaimJobsArgs {
        pub queue: String,
        #[convex(server_time = "at_most_now")]
        pub run_at_before: u64,
        pub update: JobUpdate,
        #[convex(server_time = "at_least_now")]
        pub lease_started_at: u64,
        #[convex(min = 1, max = 100)]
        pub limit: u32,
    }

    /// Running jobs whose lease expired before the server's time; returns how many were
    /// patched (jobs without a lease never match).
    #[convex(operation(
        name = "expireLeases",
        kind = "mutation",
        returns = "u32",
        table = "Job",
        retry = "idempotent"
    ))]
    #[convex(access(
        update_range,
        index = "by_status_leaseExpiresAt",
        eq(status = "running"),
        gte(lease_expires_at = 0),
        lt(lease_expires_at = now),
        limit = limit,
        update = update
    ))]
    pub struct ExpireLeasesArgs {
        pub update: JobUpdate,
        pub limit: u32,
    }

    /// Deletes one job if present. Refused by the server outside test mode.
    #[convex(operation(
        name = "deleteJob",
        kind = "mutation",
        returns = "()",
        table = "Job",
        retry = "idempotent",
        test_only
    ))]
    #[convex(access(delete_one, index = "by_jobId", eq(job_id = job_id)))]
    pub struct DeleteJobArgs {
        pub job_id: String,
    }

    /// Deletes every job. Refused by the server outside test mode.
    #[convex(operation(
        name = "deleteAllJobs",
        kind = "action",
        returns = "()",
        table = "Job",
        retry = "idempotent",
        test_only
    ))]
    #[convex(access(delete_all))]
    pub struct DeleteAllJobsArgs {}

    /// Deletes every worker. Refused by the server outside test mode.
    #[convex(operation(
        name = "deleteAllWorkers",
        kind = "mutation",
        returns = "()",
        table = "Worker",
        retry = "idempotent",
        test_only
    ))]
    #[convex(access(delete_all))]
    pub struct DeleteAllWorkersArgs {}
}
