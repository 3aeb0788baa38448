//! What the cases are written with: failures, checks, executions and updates to start from.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// What an expiry time written before the storage's `now` becomes: `now` plus this (spec §A,
/// `expiry` rule).
pub const EXPIRY_GRACE_MS: u64 = 1_000;

/// Long ago for every clock (one second after the epoch): what a client far behind sends.
pub const LONG_AGO: u64 = 1_000;

/// Far ahead of every clock (in 2096): what a client far ahead sends; as a bound, "no bound".
pub const FAR_AHEAD: u64 = 4_000_000_000_000;

/// How far ahead of the storage's clock the cases place the times they need kept as sent
/// (`startAt`, expiry times), at least: the write that carries them must reach the storage
/// within this, and the case then waits this long for them to pass. [`soon`] gives more when
/// the storage answers slowly (8 times the round trip it measures, up to 2 s).
pub const AHEAD_MARGIN_MS: u64 = 250;

/// A time the storage stamps over: what a client far behind would send ([`LONG_AGO`]).
pub fn past() -> u64 {
    LONG_AGO
}

/// A time after the storage's clock, kept where kept times are ([`FAR_AHEAD`]).
pub fn future() -> u64 {
    FAR_AHEAD
}

/// Lets the storage's clock pass every time it has stamped so far: a storage stamps a write
/// before it answers, so once 1 ms has passed after the answer its clock is past the stamp
/// (whatever the skew between its clock and this process's). Needed before a call that
/// selects by `updatedAt < now` or `startAt < now` what the case has just written.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}

/// A time the storage's clock is known to have reached, and the local instant it was known:
/// typically the `updatedAt` a write stamped, seen once the write answered. Real time passes
/// at one rate for both, so `d` later the storage's clock is at least `at + d`, whatever the
/// skew between the two clocks.
#[derive(Clone, Copy, Debug)]
pub struct Reached {
    pub at: u64,
    seen: Instant,
}

impl Reached {
    /// The storage's clock reached `at`, as known now.
    pub fn new(at: u64) -> Self {
        Self {
            at,
            seen: Instant::now(),
        }
    }

    /// Learns the storage's clock from a write: inserts an execution into a fresh backend of
    /// `factory` (whose backends share one clock: one server, or one in-memory clock) and reads
    /// back the `updatedAt` it got.
    pub async fn learn(factory: &dyn StorageFactory) -> Result<Self, Failure> {
        Ok(Self::learn_timed(factory).await?.0)
    }

    /// [`learn`](Self::learn), and how long creating the backend and the write took.
    async fn learn_timed(factory: &dyn StorageFactory) -> Result<(Self, Duration), Failure> {
        let started = Instant::now();
        let backend = factory.create().await?;
        let probe = backend.client(single()).await?;
        probe
            .insert_many(vec![execution("clock-probe", past())])
            .await?;
        let took = started.elapsed();
        let stored = must_get(&*probe, "clock-probe").await?;
        Ok((Self::new(stored.updated_at), took))
    }

    /// A time the storage's clock has reached by now.
    pub fn lower_bound(&self) -> u64 {
        self.at.saturating_add(millis(self.seen.elapsed()))
    }

    /// Waits until the storage's clock is past `time`.
    pub async fn wait_past(&self, time: u64) {
        // `at` is a whole millisecond the clock had reached at `seen`: 2 ms more make sure.
        let after = time.saturating_sub(self.at).saturating_add(2);
        let deadline = self.seen + Duration::from_millis(after);
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Learns the storage's clock and gives a time ahead of it ([`AHEAD_MARGIN_MS`], or 8 times
/// what creating the probe's backend and its write took, up to 2 s): times placed from there
/// are kept as sent by a write made soon after, and pass after [`Reached::wait_past`].
///
/// A case calls it first, before it creates its own backend: the probe's backend is a new
/// one, and on a factory whose backends share one database (a real deployment, emptied by
/// every `create`) a probe made later would empty the case's and leave the probe in it.
pub async fn soon(factory: &dyn StorageFactory) -> Result<(u64, Reached), Failure> {
    let (reached, took) = Reached::learn_timed(factory).await?;
    let margin = millis(took * 8).clamp(AHEAD_MARGIN_MS, 2_000);
    Ok((reached.lower_bound() + margin, reached))
}

/// Fails unless the time a case placed ahead of the storage's clock was kept: otherwise the
/// write reached the storage later than the margin of [`soon`], and what the case checks
/// next would not hold.
pub fn ensure_kept(field: &str, stored: u64, sent: u64) -> CaseResult {
    ensure!(
        stored == sent,
        "{field} {sent}, placed ahead of the storage's clock, was stored as {stored}: the write \
         reached the storage too late for this case"
    );
    Ok(())
}

/// The storage's clock around a call, from [`TaskExecutionsStorage::now_millis`] before and
/// after it, widened by the factory's
/// [`clock_tolerance_ms`](StorageFactory::clock_tolerance_ms): the `now` a call stamps must
/// lie in it.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub from: u64,
    pub to: u64,
}

/// A [`Window`] still open: the call has not returned yet.
#[derive(Clone, Copy, Debug)]
pub struct Opening {
    from: u64,
    tolerance: u64,
}

impl Window {
    /// Opens the window before a call (see [`Opening::close`]).
    pub fn open(factory: &dyn StorageFactory, storage: &dyn TaskExecutionsStorage) -> Opening {
        Opening {
            from: storage.now_millis(),
            tolerance: factory.clock_tolerance_ms(),
        }
    }

    /// Fails unless `now`, a time the call stamped, is in the window.
    pub fn ensure_contains(&self, now: u64, what: impl fmt::Display) -> CaseResult {
        ensure!(
            (self.from..=self.to).contains(&now),
            "{what}: {now} is not the storage's clock during the call ({}..={})",
            self.from,
            self.to
        );
        Ok(())
    }
}

impl Opening {
    /// Closes the window once the call has returned.
    pub fn close(self, storage: &dyn TaskExecutionsStorage) -> Window {
        Window {
            from: self.from.saturating_sub(self.tolerance),
            to: storage.now_millis().saturating_add(self.tolerance),
        }
    }
}

/// The `expiry` rule: kept when not before `now`, else `now +` [`EXPIRY_GRACE_MS`].
pub fn expiry_at(sent: u64, now: u64) -> u64 {
    if sent >= now {
        sent
    } else {
        now + EXPIRY_GRACE_MS
    }
}

/// `value` as a storage stores it when inserting it at `now` (spec §A): `createdAt`,
/// `updatedAt` and every present event stamp (`startedAt`, `finishedAt`,
/// `waitingForChildrenStartedAt`, `waitingForFinalizeStartedAt`, `ocfpFinishedAt`, `closedAt`)
/// become `now`; `startAt` is raised to `now`; the expiry times follow [`expiry_at`].
pub fn inserted_at(value: &TaskExecutionStorageValue, now: u64) -> TaskExecutionStorageValue {
    let mut value = value.clone();
    value.created_at = now;
    value.updated_at = now;
    value.start_at = value.start_at.max(now);
    stamp_times(
        &mut [
            &mut value.started_at,
            &mut value.finished_at,
            &mut value.waiting_for_children_started_at,
            &mut value.waiting_for_finalize_started_at,
            &mut value.on_children_finished_processing_finished_at,
            &mut value.closed_at,
        ],
        &mut [
            &mut value.expires_at,
            &mut value.on_children_finished_processing_expires_at,
            &mut value.close_expires_at,
        ],
        now,
    );
    value
}

/// `update` as a storage applies it at `now`: the same rules as [`inserted_at`] on the fields
/// it sets.
pub fn stamped(update: &TaskExecutionStorageUpdate, now: u64) -> TaskExecutionStorageUpdate {
    let mut update = update.clone();
    update.updated_at = now;
    update.start_at = update.start_at.map(|start_at| start_at.max(now));
    stamp_times(
        &mut [
            &mut update.started_at,
            &mut update.finished_at,
            &mut update.waiting_for_children_started_at,
            &mut update.waiting_for_finalize_started_at,
            &mut update.on_children_finished_processing_finished_at,
            &mut update.closed_at,
        ],
        &mut [
            &mut update.expires_at,
            &mut update.on_children_finished_processing_expires_at,
            &mut update.close_expires_at,
        ],
        now,
    );
    update
}

fn stamp_times(events: &mut [&mut Option<u64>], expiries: &mut [&mut Option<u64>], now: u64) {
    for at in events.iter_mut().filter_map(|event| event.as_mut()) {
        *at = now;
    }
    for at in expiries.iter_mut().filter_map(|expiry| expiry.as_mut()) {
        *at = expiry_at(*at, now);
    }
}

/// `value` after `update` applied at `now`, as every storage must apply it.
pub fn patched_at(
    value: &TaskExecutionStorageValue,
    update: &TaskExecutionStorageUpdate,
    now: u64,
) -> TaskExecutionStorageValue {
    patched(value, &stamped(update, now))
}

/// Inserts `values` in one call and checks how they were stored: as sent, with the storage's
/// times of that call ([`inserted_at`], one `now` for all of them, in the call's window).
/// Returns them as stored.
pub async fn insert(
    factory: &dyn StorageFactory,
    storage: &dyn TaskExecutionsStorage,
    values: &[&TaskExecutionStorageValue],
) -> Result<Vec<TaskExecutionStorageValue>, Failure> {
    let window = Window::open(factory, storage);
    storage
        .insert_many(values.iter().map(|v| (*v).clone()).collect())
        .await?;
    let window = window.close(storage);
    ensure_inserted(storage, values, &window).await
}

/// Fails unless each of `values` is stored as inserted at one `now` of `window`; returns them
/// as stored.
pub async fn ensure_inserted(
    storage: &dyn TaskExecutionsStorage,
    values: &[&TaskExecutionStorageValue],
    window: &Window,
) -> Result<Vec<TaskExecutionStorageValue>, Failure> {
    let mut stored = Vec::with_capacity(values.len());
    let mut call_now = None;
    for value in values {
        let got = must_get(storage, &value.execution_id).await?;
        let now = got.updated_at;
        window.ensure_contains(now, format_args!("updatedAt of {}", value.execution_id))?;
        ensure_eq!(
            now,
            *call_now.get_or_insert(now),
            "updatedAt of {}: one now for every execution of a call",
            value.execution_id
        );
        ensure_eq!(
            got,
            inserted_at(value, now),
            "{} as stored (sent, with the storage's times)",
            value.execution_id
        );
        stored.push(got);
    }
    Ok(stored)
}

/// Inserts each execution in a call of its own, so that insertion order (which breaks ties of
/// index keys) is the order given, whatever a storage does within one call. Returns them as
/// stored.
pub async fn insert_in_order(
    factory: &dyn StorageFactory,
    storage: &dyn TaskExecutionsStorage,
    values: &[&TaskExecutionStorageValue],
) -> Result<Vec<TaskExecutionStorageValue>, Failure> {
    let mut stored = Vec::with_capacity(values.len());
    for value in values {
        stored.extend(insert(factory, storage, &[*value]).await?);
    }
    Ok(stored)
}

/// Fails unless the stored `before` is now `before` patched with `update` at its new
/// `updatedAt`, a `now` of `window`. Returns it as stored.
pub async fn ensure_patched(
    storage: &dyn TaskExecutionsStorage,
    before: &TaskExecutionStorageValue,
    update: &TaskExecutionStorageUpdate,
    window: &Window,
) -> Result<TaskExecutionStorageValue, Failure> {
    let stored = must_get(storage, &before.execution_id).await?;
    let now = stored.updated_at;
    window.ensure_contains(now, format_args!("updatedAt of {}", before.execution_id))?;
    ensure_eq!(
        stored,
        patched_at(before, update, now),
        "{} after the update (at the storage's now)",
        before.execution_id
    );
    Ok(stored)
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
