//! A conformance suite for any [`TaskExecutionsStorage`]: what the durable-execution engine
//! relies on, as named cases, in the spirit of the original's storage test utilities.
//!
//! The same cases run against the [`InMemoryTaskExecutionsStorage`] (the oracle) and, through a
//! [`StorageFactory`] of its own, against the Convex storage on a local server, so both are held
//! to one definition of the 17 operations (reference, `storage-api.md`) with the Convex
//! storage's shard semantics: shard `shard_of_execution(executionId, totalShards)` at insert;
//! sharded range operations per owned shard with the full limit each (the parent decrement:
//! the limit split across owned shards, rounding up), concatenated in ascending shard order;
//! expiry operations and lookups across every shard; deletions only in test mode.
//!
//! ```no_run
//! # async fn run() {
//! use durable_execution_storage_convex::conformance::{run_all, InMemoryStorageFactory};
//! let report = run_all(&InMemoryStorageFactory::default()).await;
//! println!("{report}");
//! report.assert_all_passed();
//! # }
//! ```
//!
//! # Cases
//!
//! Each case is named `operation/case` after the Convex function (`insertMany/empty_request`),
//! gets a fresh, empty backend from the factory and the clients it needs, and reports a
//! [`Failure`] instead of panicking (a panic is caught and reported too). [`run_all`] runs every
//! case one after the other and returns a [`ConformanceReport`]; [`run_matching`] and the
//! per-operation functions ([`insert_many`], ...) run a part. [`concurrency`] holds the
//! scenarios that need many clients at once.
//!
//! # Time
//!
//! The storage's clock is authoritative (issue 7, spec §A): on every insert and patch a
//! storage stamps the `now` fields (`createdAt`, `updatedAt`, `startedAt`, `finishedAt`, ...)
//! with its own `now`, raises `startAt` to `now`, gives an expiry time written in the past
//! `now + `[`EXPIRY_GRACE_MS`], lowers the `…LessThan` bounds to `now`, and measures a claim's
//! lease from `now`. The cases hold every storage to those rules, so none of them depends on
//! the client's clock, and none on how the storage's clock is skewed against it:
//!
//! - what a client sends is either [`LONG_AGO`] (1970, a client far behind) or [`FAR_AHEAD`]
//!   (2096, a client far ahead, also "no bound"); a case checks what each becomes;
//! - every write is checked against the rules with the `now` it stamped, read back from the
//!   stored `updatedAt`: one `now` for every execution of a call, inside the call's
//!   [`Window`] (the storage's [`now_millis`](TaskExecutionsStorage::now_millis) before and
//!   after the call, widened by [`StorageFactory::clock_tolerance_ms`]: exact in memory,
//!   2 s for a client that estimates a remote server's clock);
//! - a case that selects by `updatedAt < now` or `startAt < now` what it has just written
//!   first lets the storage's clock pass it ([`settle`], 2 ms);
//! - a case that needs times kept exactly as sent (`startAt` and expiry times, for strict
//!   bounds and ordering) learns the storage's clock from a write ([`Reached`]), places them
//!   [`AHEAD_MARGIN_MS`] (250 ms, more when the storage answers slowly) ahead of it, and
//!   waits until they have passed.
//!
//! The storage's clock must advance with real time (a system clock, skewed or not, or a
//! server's): the cases wait for time to pass rather than move a clock. That
//! `updatedAt < now` is strict (an execution written at `now` waits for the next
//! millisecond) cannot be shown on a clock that moves on its own; the in-memory storage's
//! tests show it on a pinned clock.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::FutureExt;

use crate::storage::{
    Clock, ConvexStorageOptions, InMemoryTaskExecutionsStorage, StorageError, TaskExecutionsStorage,
};

mod cases;
pub mod concurrency;
mod support;

pub use support::{
    settle, CaseResult, Failure, Reached, Window, AHEAD_MARGIN_MS, EXPIRY_GRACE_MS, FAR_AHEAD,
    LONG_AGO,
};

/// Where the suite gets storages from: one fresh backend per case.
#[async_trait]
pub trait StorageFactory: Send + Sync {
    /// A new, empty backend (a deployment, a database, a state in memory). A factory may reuse
    /// one deployment and empty it here, since cases run one after the other.
    async fn create(&self) -> Result<Arc<dyn StorageBackend>, StorageError>;

    /// How far (ms) the [`now_millis`](TaskExecutionsStorage::now_millis) of this factory's
    /// storages may be from the clock they stamp times with. The default, 2 s, suits a client
    /// that estimates a remote server's clock (from HTTP `Date` headers, whole seconds); a
    /// storage that is its own clock (in memory) has 0.
    fn clock_tolerance_ms(&self) -> u64 {
        2_000
    }
}

/// One set of stored executions, which any number of clients share.
///
/// A client must stay usable after the backend value is dropped: cases keep only their
/// clients (a client of a local server should hold what keeps that server alive).
///
/// The cases expect each request to be one transaction, as it is within Convex's limits: a
/// backend may add options of its own (e.g. `max_items_per_call`) but not so low that the
/// cases' requests (at most 30 elements, limits at most 100) are split into several calls.
#[async_trait]
pub trait StorageBackend: Send + Sync {
    /// A client of this backend with its own options (total shards, owned shards, test mode),
    /// like one more process connected to the same deployment.
    async fn client(
        &self,
        options: ConvexStorageOptions,
    ) -> Result<Arc<dyn TaskExecutionsStorage>, StorageError>;
}

/// Fresh [`InMemoryTaskExecutionsStorage`]s, on the system clock unless given one. Every
/// backend of one factory shares its clock, as the databases of one server do.
#[derive(Clone, Default)]
pub struct InMemoryStorageFactory {
    clock: Option<Clock>,
}

impl InMemoryStorageFactory {
    /// Backends whose `now` comes from `clock`, e.g. the system clock skewed against the
    /// client's. The cases wait for time to pass: the clock must advance with real time.
    pub fn with_clock(clock: Clock) -> Self {
        Self { clock: Some(clock) }
    }
}

impl fmt::Debug for InMemoryStorageFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryStorageFactory")
            .field("custom_clock", &self.clock.is_some())
            .finish()
    }
}

#[async_trait]
impl StorageFactory for InMemoryStorageFactory {
    async fn create(&self) -> Result<Arc<dyn StorageBackend>, StorageError> {
        let options = ConvexStorageOptions::default();
        let storage = match &self.clock {
            Some(clock) => InMemoryTaskExecutionsStorage::with_clock(options, Arc::clone(clock))?,
            None => InMemoryTaskExecutionsStorage::new(options)?,
        };
        Ok(Arc::new(InMemoryBackend(storage)))
    }

    /// Exact: the storage's `now_millis` is the clock it stamps with.
    fn clock_tolerance_ms(&self) -> u64 {
        0
    }
}

/// A state in memory; its clients share it through [`InMemoryTaskExecutionsStorage::client`].
struct InMemoryBackend(InMemoryTaskExecutionsStorage);

#[async_trait]
impl StorageBackend for InMemoryBackend {
    async fn client(
        &self,
        options: ConvexStorageOptions,
    ) -> Result<Arc<dyn TaskExecutionsStorage>, StorageError> {
        Ok(Arc::new(self.0.client(options)?))
    }
}

/// A case's body.
pub type CaseFn = for<'a> fn(&'a dyn StorageFactory) -> BoxFuture<'a, CaseResult>;

/// One named case.
#[derive(Clone, Copy)]
pub struct Case {
    /// `operation/case`, the operation being the Convex function name.
    pub name: &'static str,
    pub run: CaseFn,
}

impl Case {
    /// The operation part of the name.
    pub fn operation(&self) -> &'static str {
        self.name.split_once('/').map_or(self.name, |(op, _)| op)
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

/// Every case, grouped by operation in the order of the reference's table.
pub fn cases() -> Vec<Case> {
    cases::all()
}

/// What one case gave.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    pub name: &'static str,
    /// `None` when the case passed.
    pub failure: Option<String>,
    pub elapsed: Duration,
}

/// The outcome of every case run.
#[derive(Clone, Debug, Default)]
pub struct ConformanceReport {
    pub outcomes: Vec<CaseOutcome>,
}

impl ConformanceReport {
    /// The cases that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CaseOutcome> {
        self.outcomes.iter().filter(|o| o.failure.is_some())
    }

    pub fn passed(&self) -> usize {
        self.outcomes.len() - self.failures().count()
    }

    pub fn all_passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Cases run per operation, and how many of them passed.
    pub fn per_operation(&self) -> BTreeMap<&'static str, (usize, usize)> {
        let mut counts = BTreeMap::new();
        for outcome in &self.outcomes {
            let operation = outcome
                .name
                .split_once('/')
                .map_or(outcome.name, |(op, _)| op);
            let entry: &mut (usize, usize) = counts.entry(operation).or_default();
            entry.0 += 1;
            entry.1 += usize::from(outcome.failure.is_none());
        }
        counts
    }

    /// Panics listing every failed case with its message.
    pub fn assert_all_passed(&self) {
        if self.all_passed() {
            return;
        }
        let mut message = format!(
            "{} of {} conformance cases failed:\n",
            self.outcomes.len() - self.passed(),
            self.outcomes.len()
        );
        for outcome in self.failures() {
            let failure = outcome.failure.as_deref().unwrap_or_default();
            message.push_str(&format!("- {}: {failure}\n", outcome.name));
        }
        panic!("{message}");
    }
}

impl fmt::Display for ConformanceReport {
    /// Counts per operation, then the failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: Duration = self.outcomes.iter().map(|o| o.elapsed).sum();
        writeln!(
            f,
            "conformance: {} of {} cases passed in {total:?}",
            self.passed(),
            self.outcomes.len()
        )?;
        // In the reference's order, then any other operation a custom case names.
        let per_operation = self.per_operation();
        let known = OPERATIONS
            .iter()
            .filter_map(|&op| per_operation.get_key_value(op));
        let others = per_operation
            .iter()
            .filter(|(op, _)| !OPERATIONS.contains(op));
        for (operation, (run, passed)) in known.chain(others) {
            writeln!(f, "  {operation}: {passed}/{run} cases passed")?;
        }
        for outcome in self.failures() {
            let failure = outcome.failure.as_deref().unwrap_or_default();
            writeln!(f, "FAILED {}: {failure}", outcome.name)?;
        }
        Ok(())
    }
}

/// Runs one case, turning a panic into a failure.
pub async fn run_case(factory: &dyn StorageFactory, case: &Case) -> CaseOutcome {
    let started = Instant::now();
    let result = AssertUnwindSafe((case.run)(factory)).catch_unwind().await;
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(failure)) => Some(failure.0),
        Err(panic) => Some(format!("panicked: {}", panic_message(panic.as_ref()))),
    };
    CaseOutcome {
        name: case.name,
        failure,
        elapsed: started.elapsed(),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Runs every case whose name contains `pattern` (every case for `""`), one after the other.
pub async fn run_matching(factory: &dyn StorageFactory, pattern: &str) -> ConformanceReport {
    let mut report = ConformanceReport::default();
    for case in cases().iter().filter(|case| case.name.contains(pattern)) {
        report.outcomes.push(run_case(factory, case).await);
    }
    report
}

/// Runs every case.
pub async fn run_all(factory: &dyn StorageFactory) -> ConformanceReport {
    run_matching(factory, "").await
}

macro_rules! per_operation {
    ($($(#[$doc:meta])* $function:ident => $operation:literal,)*) => {
        $(
            $(#[$doc])*
            pub async fn $function(factory: &dyn StorageFactory) -> ConformanceReport {
                run_matching(factory, concat!($operation, "/")).await
            }
        )*

        /// The operations, by Convex function name, in the order of the reference's table.
        pub const OPERATIONS: &[&str] = &[$($operation),*];
    };
}

per_operation! {
    /// The cases of `insertMany`.
    insert_many => "insertMany",
    /// The cases of `getManyById`.
    get_many_by_id => "getManyById",
    /// The cases of `getManyBySleepingTaskUniqueId`.
    get_many_by_sleeping_task_unique_id => "getManyBySleepingTaskUniqueId",
    /// The cases of `updateManyById`.
    update_many_by_id => "updateManyById",
    /// The cases of `updateManyByIdAndInsertChildrenIfUpdated`.
    update_many_by_id_and_insert_children_if_updated => "updateManyByIdAndInsertChildrenIfUpdated",
    /// The cases of `updateByStatusAndStartAtLessThanAndReturn`.
    update_by_status_and_start_at_less_than_and_return => "updateByStatusAndStartAtLessThanAndReturn",
    /// The cases of `updateByStatusAndOCFPStatusAndACCZeroAndReturn`.
    update_by_status_and_ocfp_status_and_acc_zero_and_return => "updateByStatusAndOCFPStatusAndACCZeroAndReturn",
    /// The cases of `updateByCloseStatusAndReturn`.
    update_by_close_status_and_return => "updateByCloseStatusAndReturn",
    /// The cases of `updateByStatusAndIsSleepingTaskAndExpiresAtLessThan`.
    update_by_status_and_is_sleeping_task_and_expires_at_less_than => "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
    /// The cases of `updateByOCFPExpiresAt`.
    update_by_ocfp_expires_at => "updateByOCFPExpiresAt",
    /// The cases of `updateByCloseExpiresAt`.
    update_by_close_expires_at => "updateByCloseExpiresAt",
    /// The cases of `updateByExecutorIdAndNPCAndReturn`.
    update_by_executor_id_and_npc_and_return => "updateByExecutorIdAndNPCAndReturn",
    /// The cases of `getManyByParentExecutionId`.
    get_many_by_parent_execution_id => "getManyByParentExecutionId",
    /// The cases of `updateManyByParentExecutionIdAndIsFinished`.
    update_many_by_parent_execution_id_and_is_finished => "updateManyByParentExecutionIdAndIsFinished",
    /// The cases of `updateAndDecrementParentACCByIsFinishedAndCloseStatus`.
    update_and_decrement_parent_acc_by_is_finished_and_close_status => "updateAndDecrementParentACCByIsFinishedAndCloseStatus",
    /// The cases of `deleteById`.
    delete_by_id => "deleteById",
    /// The cases of `deleteAll`.
    delete_all => "deleteAll",
}
