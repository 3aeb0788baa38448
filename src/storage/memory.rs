//! [`InMemoryTaskExecutionsStorage`]: the storage contract in process memory, with the Convex
//! storage's exact semantics, so that it can serve as the oracle of differential tests and as a
//! fast storage for the engine's own tests.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

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

/// Where the storage reads "now" (epoch milliseconds): the clock of the server it plays, for
/// its `updatedAt < now` conditions and the server-time rules.
///
/// Injectable so that tests can pin time, or skew it against a client's; [`system_clock`] is
/// the default.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system time in epoch milliseconds (0 before 1970, saturating far in the future), as
/// Convex's `Date.now()` gives it to a function.
pub fn system_clock() -> Clock {
    Arc::new(now_millis)
}

/// The system time in epoch milliseconds (0 before 1970, which no clock here reports).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The storage contract in memory, behaving exactly as [`ConvexTaskExecutionsStorage`]
/// over the generated component does:
///
/// - **Options** are the Convex storage's ([`ConvexStorageOptions`]): every insert puts the
///   execution in shard [`shard_of_execution`]`(executionId, total_shards)`; the sharded range
///   operations (claim by status and `startAt`, on-children-finished processing, close status,
///   promise cancellation, parent decrement) visit each owned shard in ascending order with the
///   full `limit` each (the decrement: `limit` split across the owned shards, rounding up) and
///   concatenate (the Convex storage sends the per-shard calls concurrently, so their
///   transactions may commit in another order, each with its own `now`: a decrement whose
///   child and parent sit in two owned shards may then select differently, which the
///   differential test allows for); the expiry operations and every lookup by id span all
///   shards; `delete_by_id` and `delete_all` fail with [`StorageError::TestModeRequired`]
///   (deleting nothing) without `enable_test_mode`. `max_items_per_call` is
///   accepted and has no effect: there are no calls to split, every request is one
///   transaction.
/// - **Order** is the Convex index order: ascending index key, ties by insertion order (what
///   `_creationTime` gives Convex). Children of a parent come unfinished first, then finished
///   (index `by_parentExecutionId_isFinished`).
/// - **Server time.** The [`Clock`] is the server's clock, read once per request (one `now`
///   for every execution the request writes, children included, and for every condition it
///   evaluates). Times the client sends are reconciled with it as the generated component
///   does (issue 7, spec §A), on insert and on every patch, for the fields present in the
///   execution or update:
///   - `now`: `createdAt`, `updatedAt`, `startedAt`, `finishedAt`,
///     `waitingForChildrenStartedAt`, `waitingForFinalizeStartedAt`, `ocfpFinishedAt`,
///     `closedAt` become `now`, whatever was sent (they record that something happened now);
///   - `at_least_now`: `startAt` becomes `max(startAt, now)` (a client behind cannot make
///     work look older than it is);
///   - `expiry`: `expiresAt`, `ocfpExpiresAt`, `closeExpiresAt` are kept when `>= now`, and
///     become `now + `[`EXPIRY_GRACE_MS`](Self::EXPIRY_GRACE_MS) when earlier (nothing expires
///     the moment it is written);
///   - `at_most_now`: the `…LessThan` bounds of the claim and of the three expiry sweeps
///     become `min(bound, now)` (a client ahead can neither claim work before its `startAt`
///     nor expire a lease early);
///   - the claim's `updateExpiresAtWithStartedAt` (the engine's now plus its expire leeway) is
///     `at_least_now`: `expiresAt = max(it, now) + timeoutMs` (then the `expiry` rule, which
///     keeps it), so a lease is never shorter than `timeoutMs` on this clock.
///
///   So the `now` fields of a stored execution say what this clock said when it was last
///   written, not what the client sent.
/// - **Bounds** are strict: `startAt < bound`, `updatedAt < now` (the request's `now`, never
///   nudged: an execution written at `now` waits for the next millisecond), `expiresAt`-like
///   fields in `[0, bound)` (absent fields never match).
/// - **Parent decrement** looks the parent up by `parentExecutionId`, as the generated
///   component does, and patches its count and `updatedAt` (which, a `now` field, becomes
///   the request's `now`).
/// - **Atomicity**: one mutex guards the whole state, and each request runs under it from
///   start to end as one transaction; a request that fails (an `AlreadyExists` refusal) is
///   rolled back entirely. Clients made with [`client`](Self::client) share that state, like
///   processes sharing one deployment.
///
/// Complexity: lookups by id are hash lookups; range operations scan every execution and sort
/// the matches (O(n log n) per owned shard), which keeps them obviously correct and is fast
/// enough for tests with tens of thousands of executions.
///
/// [`ConvexTaskExecutionsStorage`]: super::ConvexTaskExecutionsStorage
#[derive(Clone)]
pub struct InMemoryTaskExecutionsStorage {
    state: Arc<Mutex<State>>,
    clock: Clock,
    options: ValidatedOptions,
}

impl fmt::Debug for InMemoryTaskExecutionsStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `try_lock`: formatting must not wait for (or deadlock with) a running request.
        let executions = self.state.try_lock().map(|state| state.executions.len());
        let mut debug = f.debug_struct("InMemoryTaskExecutionsStorage");
        debug.field("options", &self.options);
        if let Ok(executions) = executions {
            debug.field("executions", &executions);
        }
        debug.finish_non_exhaustive()
    }
}

impl InMemoryTaskExecutionsStorage {
    /// What an expiry time earlier than `now` becomes: `now + EXPIRY_GRACE_MS` (spec §A, the
    /// generated component's `EXPIRY_GRACE_MS`).
    pub const EXPIRY_GRACE_MS: u64 = EXPIRY_GRACE_MS;

    /// An empty storage on the system clock, after validating `options` as the Convex storage
    /// does.
    pub fn new(options: ConvexStorageOptions) -> Result<Self, StorageError> {
        Self::with_clock(options, system_clock())
    }

    /// An empty storage whose `now` comes from `clock`: the clock of the server it plays
    /// (see the server-time rules on the type).
    pub fn with_clock(options: ConvexStorageOptions, clock: Clock) -> Result<Self, StorageError> {
        Ok(Self {
            state: Arc::new(Mutex::new(State::default())),
            clock,
            options: options.validate()?,
        })
    }

    /// Another client of the same executions (and clock) with its own `options`, e.g. other
    /// owned shards: what another process connected to the same deployment would be.
    pub fn client(&self, options: ConvexStorageOptions) -> Result<Self, StorageError> {
        Ok(Self {
            state: Arc::clone(&self.state),
            clock: Arc::clone(&self.clock),
            options: options.validate()?,
        })
    }

    /// The number of shards executions are spread over.
    pub fn total_shards(&self) -> u32 {
        self.options.total_shards
    }

    /// The shards this client serves, sorted and without duplicates.
    pub fn shards(&self) -> &[u32] {
        &self.options.shards
    }

    /// Whether `delete_by_id` and `delete_all` are allowed.
    pub fn is_test_mode_enabled(&self) -> bool {
        self.options.enable_test_mode
    }

    /// How many executions are stored (in every shard).
    pub fn len(&self) -> usize {
        self.lock().executions.len()
    }

    /// Whether no execution is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard an execution was stored in, for tests (the storage value has no shard).
    pub fn shard_of(&self, execution_id: &str) -> Option<u32> {
        let state = self.lock();
        state
            .find(execution_id)
            .map(|key| state.executions[&key].shard)
    }

    /// The execution id of the execution this one was inserted under as a child (what Convex
    /// stores as `parentExecutionDocId`), for tests; `None` for executions inserted directly.
    pub fn inserted_under(&self, execution_id: &str) -> Option<String> {
        let state = self.lock();
        let key = state.find(execution_id)?;
        let parent = state.executions[&key].inserted_under?;
        state
            .executions
            .get(&parent)
            .map(|parent| parent.value.execution_id.clone())
    }

    /// The whole state. A poisoned lock is taken over: every request checks what may fail
    /// before writing or rolls back on failure, so a panic cannot have left half a request.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `run` as one transaction over the locked state with this request's `now`; on
    /// error every change it made is undone.
    fn transaction<T>(
        &self,
        run: impl FnOnce(&mut Transaction<'_>, u64) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut state = self.lock();
        // Read under the lock, so that `now` follows the order in which requests apply.
        let now = (self.clock)();
        let mut transaction = Transaction {
            state: &mut state,
            undo: Vec::new(),
        };
        let result = run(&mut transaction, now);
        if result.is_err() {
            transaction.roll_back();
        }
        result
    }

    /// Patches, in each owned shard in ascending order, the executions selected by `key_of`
    /// (ascending key, ties by insertion, at most `limit` per shard), and returns them.
    /// `key_of` and `after_patch` get the request's `now`; `update` is stamped with it.
    fn patch_sharded(
        &self,
        limit: u32,
        key_of: impl Fn(&TaskExecutionStorageValue, u64) -> Option<u64>,
        update: &TaskExecutionStorageUpdate,
        after_patch: impl Fn(&mut TaskExecutionStorageValue, u64),
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        self.transaction(|tx, now| {
            let update = stamp_update(update, now);
            let mut patched = Vec::new();
            for &shard in &self.options.shards {
                let keys = tx.state.select(Some(shard), limit, |v| key_of(v, now));
                patched.extend(
                    keys.into_iter()
                        .filter_map(|key| tx.patch(key, &update, |v| after_patch(v, now))),
                );
            }
            Ok(patched)
        })
    }

    /// Patches the executions of every shard selected by `key_of` (ascending key, ties by
    /// insertion, at most `limit`) and returns how many. `key_of` gets the request's `now`;
    /// `update` is stamped with it.
    fn patch_all_shards(
        &self,
        limit: u32,
        key_of: impl Fn(&TaskExecutionStorageValue, u64) -> Option<u64>,
        update: &TaskExecutionStorageUpdate,
    ) -> Result<u32, StorageError> {
        self.transaction(|tx, now| {
            let update = stamp_update(update, now);
            let keys = tx.state.select(None, limit, |v| key_of(v, now));
            let patched = keys
                .into_iter()
                .filter_map(|key| tx.patch(key, &update, |_| {}))
                .count();
            Ok(count(patched))
        })
    }
}

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// What an expiry time earlier than `now` becomes: `now` plus this (spec §A).
const EXPIRY_GRACE_MS: u64 = 1_000;

/// The `at_least_now` rule: a time before `now` is raised to `now`.
fn at_least_now(value: u64, now: u64) -> u64 {
    value.max(now)
}

/// The `expiry` rule: kept when not before `now`, else `now + EXPIRY_GRACE_MS`.
fn expiry(value: u64, now: u64) -> u64 {
    if value >= now {
        value
    } else {
        now.saturating_add(EXPIRY_GRACE_MS)
    }
}

/// The `at_most_now` rule, for the `…LessThan` bounds: a bound after `now` is lowered to it.
fn at_most_now(bound: u64, now: u64) -> u64 {
    bound.min(now)
}

/// A present `now` field becomes `now`.
fn stamp_now(field: &mut Option<u64>, now: u64) {
    if let Some(at) = field {
        *at = now;
    }
}

/// A present `expiry` field follows the `expiry` rule.
fn stamp_expiry(field: &mut Option<u64>, now: u64) {
    if let Some(at) = field {
        *at = expiry(*at, now);
    }
}

/// `value` as the server stores it when inserted at `now`. Every field is named, so that a
/// new timestamp cannot be added to the declaration without a rule here.
fn stamp_new(mut value: TaskExecutionStorageValue, now: u64) -> TaskExecutionStorageValue {
    let TaskExecutionStorageValue {
        root: _,
        parent: _,
        task_id: _,
        execution_id: _,
        is_sleeping_task: _,
        sleeping_task_unique_id: _,
        retry_options: _,
        sleep_ms_before_run: _,
        timeout_ms: _,
        are_children_sequential: _,
        input: _,
        executor_id: _,
        status: _,
        is_finished: _,
        run_output: _,
        output: _,
        error: _,
        retry_attempts: _,
        start_at,
        started_at,
        expires_at,
        waiting_for_children_started_at,
        waiting_for_finalize_started_at,
        finished_at,
        children: _,
        active_children_count: _,
        on_children_finished_processing_status: _,
        on_children_finished_processing_expires_at,
        on_children_finished_processing_finished_at,
        finalize: _,
        close_status: _,
        close_expires_at,
        closed_at,
        needs_promise_cancellation: _,
        created_at,
        updated_at,
    } = &mut value;
    *created_at = now;
    *updated_at = now;
    for field in [
        started_at,
        waiting_for_children_started_at,
        waiting_for_finalize_started_at,
        finished_at,
        on_children_finished_processing_finished_at,
        closed_at,
    ] {
        stamp_now(field, now);
    }
    *start_at = at_least_now(*start_at, now);
    for field in [
        expires_at,
        on_children_finished_processing_expires_at,
        close_expires_at,
    ] {
        stamp_expiry(field, now);
    }
    value
}

/// `update` as the server applies it at `now` (its present fields only). Every field is
/// named, as in [`stamp_new`].
fn stamp_update(update: &TaskExecutionStorageUpdate, now: u64) -> TaskExecutionStorageUpdate {
    let mut update = update.clone();
    let TaskExecutionStorageUpdate {
        executor_id: _,
        status: _,
        is_finished: _,
        run_output: _,
        output: _,
        error: _,
        retry_attempts: _,
        start_at,
        started_at,
        expires_at,
        waiting_for_children_started_at,
        waiting_for_finalize_started_at,
        finished_at,
        children: _,
        active_children_count: _,
        on_children_finished_processing_status: _,
        on_children_finished_processing_expires_at,
        on_children_finished_processing_finished_at,
        finalize: _,
        close_status: _,
        close_expires_at,
        closed_at,
        needs_promise_cancellation: _,
        updated_at,
        unset: _,
    } = &mut update;
    *updated_at = now;
    for field in [
        started_at,
        waiting_for_children_started_at,
        waiting_for_finalize_started_at,
        finished_at,
        on_children_finished_processing_finished_at,
        closed_at,
    ] {
        stamp_now(field, now);
    }
    if let Some(start_at) = start_at {
        *start_at = at_least_now(*start_at, now);
    }
    for field in [
        expires_at,
        on_children_finished_processing_expires_at,
        close_expires_at,
    ] {
        stamp_expiry(field, now);
    }
    update
}

/// `Some(value)` when `value < bound`: the key of an execution in `[0, bound)`.
fn below(value: Option<u64>, bound: u64) -> Option<u64> {
    value.filter(|&value| value < bound)
}

/// What is stored of one execution.
#[derive(Clone, Debug)]
struct Stored {
    shard: u32,
    /// The key of the execution it was inserted under as a child (`parentExecutionDocId`).
    inserted_under: Option<u64>,
    value: TaskExecutionStorageValue,
}

/// Every execution, keyed by insertion order (Convex's `_creationTime`), with the two unique
/// indexes.
#[derive(Default)]
struct State {
    next_key: u64,
    executions: BTreeMap<u64, Stored>,
    by_execution_id: HashMap<String, u64>,
    by_sleeping_task_unique_id: HashMap<String, u64>,
}

impl State {
    fn find(&self, execution_id: &str) -> Option<u64> {
        self.by_execution_id.get(execution_id).copied()
    }

    fn value(&self, key: u64) -> Option<&TaskExecutionStorageValue> {
        self.executions.get(&key).map(|stored| &stored.value)
    }

    /// The keys of the executions (of `shard`, or of every shard) for which `key_of` gives an
    /// index key, by ascending index key then insertion order, at most `limit`.
    fn select(
        &self,
        shard: Option<u32>,
        limit: u32,
        key_of: impl Fn(&TaskExecutionStorageValue) -> Option<u64>,
    ) -> Vec<u64> {
        if limit == 0 {
            return Vec::new();
        }
        // Iterating in insertion order and sorting stably keeps insertion order among ties.
        let mut matches: Vec<(u64, u64)> = self
            .executions
            .iter()
            .filter(|(_, stored)| shard.is_none_or(|shard| stored.shard == shard))
            .filter_map(|(&key, stored)| key_of(&stored.value).map(|index| (index, key)))
            .collect();
        matches.sort_by_key(|&(index, _)| index);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        matches
            .into_iter()
            .take(limit)
            .map(|(_, key)| key)
            .collect()
    }

    /// The children of a parent in index order: unfinished first, then finished, each in
    /// insertion order.
    fn children(&self, parent_execution_id: &str) -> Vec<u64> {
        let mut children: Vec<(bool, u64)> = self
            .executions
            .iter()
            .filter(|(_, stored)| {
                stored
                    .value
                    .parent
                    .as_ref()
                    .is_some_and(|parent| parent.execution_id == parent_execution_id)
            })
            .map(|(&key, stored)| (stored.value.is_finished, key))
            .collect();
        children.sort_by_key(|&(is_finished, _)| is_finished);
        children.into_iter().map(|(_, key)| key).collect()
    }
}

/// A change to undo if the request fails.
enum Undo {
    Inserted(u64),
    Patched(u64, Box<TaskExecutionStorageValue>),
}

/// The locked state during one request, with what to undo.
struct Transaction<'a> {
    state: &'a mut State,
    undo: Vec<Undo>,
}

impl Transaction<'_> {
    /// Inserts `value` in `shard`, refusing an execution id or present sleeping task unique id
    /// that exists already (including earlier in this request).
    fn insert(
        &mut self,
        value: TaskExecutionStorageValue,
        shard: u32,
        inserted_under: Option<u64>,
    ) -> Result<(), StorageError> {
        if self.state.by_execution_id.contains_key(&value.execution_id) {
            return Err(StorageError::AlreadyExists {
                message: format!("execution id \"{}\" already exists", value.execution_id),
            });
        }
        if let Some(unique_id) = &value.sleeping_task_unique_id {
            if self
                .state
                .by_sleeping_task_unique_id
                .contains_key(unique_id)
            {
                return Err(StorageError::AlreadyExists {
                    message: format!("sleeping task unique id \"{unique_id}\" already exists"),
                });
            }
        }
        let key = self.state.next_key;
        self.state.next_key += 1;
        self.state
            .by_execution_id
            .insert(value.execution_id.clone(), key);
        if let Some(unique_id) = &value.sleeping_task_unique_id {
            self.state
                .by_sleeping_task_unique_id
                .insert(unique_id.clone(), key);
        }
        self.state.executions.insert(
            key,
            Stored {
                shard,
                inserted_under,
                value,
            },
        );
        self.undo.push(Undo::Inserted(key));
        Ok(())
    }

    /// Applies `update` (then `after_patch`) to the execution at `key` and returns its new
    /// value. Keys come from a selection under the same lock, so the execution exists; `None`
    /// otherwise.
    fn patch(
        &mut self,
        key: u64,
        update: &TaskExecutionStorageUpdate,
        after_patch: impl Fn(&mut TaskExecutionStorageValue),
    ) -> Option<TaskExecutionStorageValue> {
        let stored = self.state.executions.get_mut(&key)?;
        self.undo
            .push(Undo::Patched(key, Box::new(stored.value.clone())));
        stored.value.apply_update(update);
        after_patch(&mut stored.value);
        Some(stored.value.clone())
    }

    fn roll_back(mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Inserted(key) => {
                    if let Some(stored) = self.state.executions.remove(&key) {
                        self.state
                            .by_execution_id
                            .remove(&stored.value.execution_id);
                        if let Some(unique_id) = &stored.value.sleeping_task_unique_id {
                            self.state.by_sleeping_task_unique_id.remove(unique_id);
                        }
                    }
                }
                Undo::Patched(key, value) => {
                    if let Some(stored) = self.state.executions.get_mut(&key) {
                        stored.value = *value;
                    }
                }
            }
        }
    }
}

#[async_trait]
impl TaskExecutionsStorage for InMemoryTaskExecutionsStorage {
    /// The storage's own [`Clock`]: it plays the server, so this is exactly the `now` its next
    /// request will use (if the clock does not move in between).
    fn now_millis(&self) -> u64 {
        (self.clock)()
    }

    async fn insert_many(
        &self,
        executions: Vec<TaskExecutionStorageValue>,
    ) -> Result<(), StorageError> {
        let total_shards = self.options.total_shards;
        self.transaction(|tx, now| {
            for value in executions {
                let shard = shard_of_execution(&value.execution_id, total_shards);
                tx.insert(stamp_new(value, now), shard, None)?;
            }
            Ok(())
        })
    }

    async fn get_many_by_id(
        &self,
        requests: Vec<GetByIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
        let state = self.lock();
        Ok(requests
            .iter()
            .map(|request| {
                let value = state
                    .find(&request.execution_id)
                    .and_then(|k| state.value(k))?;
                let matches = request
                    .filters
                    .as_ref()
                    .is_none_or(|filters| value.matches_filters(filters));
                matches.then(|| value.clone())
            })
            .collect())
    }

    async fn get_many_by_sleeping_task_unique_id(
        &self,
        requests: Vec<GetBySleepingTaskUniqueIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
        let state = self.lock();
        Ok(requests
            .iter()
            .map(|request| {
                let key = state
                    .by_sleeping_task_unique_id
                    .get(&request.sleeping_task_unique_id)?;
                state.value(*key).cloned()
            })
            .collect())
    }

    async fn update_many_by_id(
        &self,
        requests: Vec<UpdateByIdRequest>,
    ) -> Result<(), StorageError> {
        self.transaction(|tx, now| {
            for request in &requests {
                if let Some(key) = matching(tx.state, &request.execution_id, &request.filters) {
                    tx.patch(key, &stamp_update(&request.update, now), |_| {});
                }
            }
            Ok(())
        })
    }

    async fn update_many_by_id_and_insert_children_if_updated(
        &self,
        requests: Vec<UpdateByIdAndInsertChildrenIfUpdatedRequest>,
    ) -> Result<(), StorageError> {
        let total_shards = self.options.total_shards;
        self.transaction(|tx, now| {
            for request in requests {
                let Some(key) = matching(tx.state, &request.execution_id, &request.filters) else {
                    continue;
                };
                tx.patch(key, &stamp_update(&request.update, now), |_| {});
                for child in request.children_task_executions_to_insert_if_any_updated {
                    let shard = shard_of_execution(&child.execution_id, total_shards);
                    tx.insert(stamp_new(child, now), shard, Some(key))?;
                }
            }
            Ok(())
        })
    }

    async fn update_by_status_and_start_at_less_than_and_return(
        &self,
        request: UpdateByStatusAndStartAtLessThanRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let r = &request;
        self.patch_sharded(
            r.limit,
            |v, now| {
                let bound = at_most_now(r.start_at_less_than, now);
                (v.status == r.status)
                    .then_some(v.start_at)
                    .filter(|&start_at| start_at < bound)
            },
            &r.update,
            // `update_expires_at_with_started_at` is `at_least_now`: the lease starts no
            // earlier than now.
            |v, now| {
                let started = r.update_expires_at_with_started_at.max(now);
                v.expires_at = Some(expiry(started.saturating_add(v.timeout_ms), now));
            },
        )
    }

    async fn update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
        &self,
        request: UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let r = &request;
        self.patch_sharded(
            r.limit,
            |v, now| {
                let selected = v.status == r.status
                    && v.on_children_finished_processing_status
                        == r.on_children_finished_processing_status
                    && v.active_children_count == 0;
                selected.then_some(v.updated_at).filter(|&at| at < now)
            },
            &r.update,
            |_, _| {},
        )
    }

    async fn update_by_close_status_and_return(
        &self,
        request: UpdateByCloseStatusRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let r = &request;
        self.patch_sharded(
            r.limit,
            |v, now| {
                (v.close_status == r.close_status)
                    .then_some(v.updated_at)
                    .filter(|&at| at < now)
            },
            &r.update,
            |_, _| {},
        )
    }

    async fn update_by_status_and_is_sleeping_task_and_expires_at_less_than(
        &self,
        request: UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let r = &request;
        self.patch_all_shards(
            r.limit,
            |v, now| {
                let selected = v.status == r.status && v.is_sleeping_task == r.is_sleeping_task;
                let bound = at_most_now(r.expires_at_less_than, now);
                below(v.expires_at.filter(|_| selected), bound)
            },
            &r.update,
        )
    }

    async fn update_by_on_children_finished_processing_expires_at_less_than(
        &self,
        request: UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let r = &request;
        self.patch_all_shards(
            r.limit,
            |v, now| {
                below(
                    v.on_children_finished_processing_expires_at,
                    at_most_now(r.on_children_finished_processing_expires_at_less_than, now),
                )
            },
            &r.update,
        )
    }

    async fn update_by_close_expires_at_less_than(
        &self,
        request: UpdateByCloseExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let r = &request;
        self.patch_all_shards(
            r.limit,
            |v, now| {
                below(
                    v.close_expires_at,
                    at_most_now(r.close_expires_at_less_than, now),
                )
            },
            &r.update,
        )
    }

    async fn update_by_executor_id_and_needs_promise_cancellation_and_return(
        &self,
        request: UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let r = &request;
        self.patch_sharded(
            r.limit,
            |v, now| {
                let selected = v.executor_id.as_deref() == Some(r.executor_id.as_str())
                    && v.needs_promise_cancellation == r.needs_promise_cancellation;
                selected.then_some(v.updated_at).filter(|&at| at < now)
            },
            &r.update,
            |_, _| {},
        )
    }

    async fn get_many_by_parent_execution_id(
        &self,
        requests: Vec<GetByParentExecutionIdRequest>,
    ) -> Result<Vec<Vec<TaskExecutionStorageValue>>, StorageError> {
        let state = self.lock();
        Ok(requests
            .iter()
            .map(|request| {
                state
                    .children(&request.parent_execution_id)
                    .into_iter()
                    .filter_map(|key| state.value(key).cloned())
                    .collect()
            })
            .collect())
    }

    async fn update_many_by_parent_execution_id_and_is_finished(
        &self,
        requests: Vec<UpdateByParentExecutionIdAndIsFinishedRequest>,
    ) -> Result<(), StorageError> {
        self.transaction(|tx, now| {
            for request in &requests {
                let update = stamp_update(&request.update, now);
                // Collected before patching, as the index query is: a patch that changes
                // isFinished does not change which children this request patches.
                let keys: Vec<u64> = tx
                    .state
                    .children(&request.parent_execution_id)
                    .into_iter()
                    .filter(|&key| {
                        tx.state
                            .value(key)
                            .is_some_and(|v| v.is_finished == request.is_finished)
                    })
                    .collect();
                for key in keys {
                    tx.patch(key, &update, |_| {});
                }
            }
            Ok(())
        })
    }

    async fn update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
        &self,
        request: UpdateAndDecrementParentActiveChildrenCountRequest,
    ) -> Result<u32, StorageError> {
        let r = &request;
        let per_shard_limit = split_limit(r.limit, self.options.shards.len());
        self.transaction(|tx, now| {
            let update = stamp_update(&r.update, now);
            let mut patched = 0_usize;
            // One transaction per shard on Convex: patch the shard's selection, then decrement.
            for &shard in &self.options.shards {
                let keys = tx.state.select(Some(shard), per_shard_limit, |v| {
                    let selected =
                        v.is_finished == r.is_finished && v.close_status == r.close_status;
                    selected.then_some(v.updated_at).filter(|&at| at < now)
                });
                let children: Vec<TaskExecutionStorageValue> = keys
                    .iter()
                    .filter_map(|&key| tx.patch(key, &update, |_| {}))
                    .collect();
                patched += children.len();
                for child in children {
                    let Some(link) = child.parent.as_ref() else {
                        continue;
                    };
                    if link.is_finalize_of_parent {
                        continue;
                    }
                    let Some(parent_key) = tx.state.find(&link.execution_id) else {
                        continue;
                    };
                    let Some(parent) = tx.state.value(parent_key) else {
                        continue;
                    };
                    // Read again for every child: several may share this parent.
                    let active_children_count = if link.is_only_child_of_parent {
                        0
                    } else {
                        parent.active_children_count.saturating_sub(1)
                    };
                    // A patch like any other: its `updatedAt` is the request's `now`.
                    let decrement = TaskExecutionStorageUpdate {
                        active_children_count: Some(active_children_count),
                        updated_at: now,
                        ..TaskExecutionStorageUpdate::default()
                    };
                    tx.patch(parent_key, &decrement, |_| {});
                }
            }
            Ok(count(patched))
        })
    }

    async fn delete_by_id(&self, execution_id: &str) -> Result<(), StorageError> {
        if !self.options.enable_test_mode {
            return Err(test_mode_off("deleteById"));
        }
        let mut state = self.lock();
        if let Some(key) = state.by_execution_id.remove(execution_id) {
            if let Some(stored) = state.executions.remove(&key) {
                if let Some(unique_id) = &stored.value.sleeping_task_unique_id {
                    state.by_sleeping_task_unique_id.remove(unique_id);
                }
            }
        }
        Ok(())
    }

    async fn delete_all(&self) -> Result<(), StorageError> {
        if !self.options.enable_test_mode {
            return Err(test_mode_off("deleteAll"));
        }
        let mut state = self.lock();
        // Keys keep increasing, as Convex's creation times do after a deletion.
        state.executions.clear();
        state.by_execution_id.clear();
        state.by_sleeping_task_unique_id.clear();
        Ok(())
    }
}

/// The refusal of a deletion without `enable_test_mode`, as the Convex storage makes it.
fn test_mode_off(function: &str) -> StorageError {
    StorageError::TestModeRequired {
        function: function.to_owned(),
        message: "the storage's enable_test_mode is off, so nothing was deleted \
                  (ConvexStorageOptions::with_test_mode(true))"
            .to_owned(),
    }
}

/// The key of the execution `execution_id` when it exists and matches `filters`.
fn matching(
    state: &State,
    execution_id: &str,
    filters: &Option<super::value::TaskExecutionStorageFilters>,
) -> Option<u64> {
    let key = state.find(execution_id)?;
    let value = state.value(key)?;
    filters
        .as_ref()
        .is_none_or(|filters| value.matches_filters(filters))
        .then_some(key)
}
