//! Differential test: random sequences of storage operations applied side by side to the
//! in-memory storage (the oracle) and to the Convex storage over the generated component, which
//! must agree on every result and on the final state.
//!
//! ```sh
//! cargo test --test differential -- --nocapture                          # CI: 1,000 cases, fixed seed
//! DIFFERENTIAL_CASES=2000 cargo test --test differential -- --nocapture  # the long run
//! DIFFERENTIAL_SEED=7 DIFFERENTIAL_CASES=500 cargo test --test differential  # another seed
//! ```
//!
//! # What a case is
//!
//! Options (`total_shards` in 1..=3, all shards or a random non-empty subset owned, test mode
//! on 3 times out of 4), a setup insert, then up to [`MAX_OPS`] operations drawn from all 17:
//! inserts (conflicting ids and sleeping task unique ids included), lookups with filters,
//! updates with set fields and `unset` entries, children inserted under a parent, the range
//! operations with limits 0..=4, the parent decrement (limit 0..=6, split across the owned
//! shards), and deletions. Ids come from a small pool
//! (`x0`..`x9`) so that operations meet the same executions. Both storages get the same
//! options; each case gets a fresh, empty Convex database (a new instance of the local server;
//! with `CONVEX_URL`, the deployment emptied with `deleteAll`).
//!
//! # What must be equal
//!
//! Every result (values, counts, `AlreadyExists` refusals), and at the end the state read back:
//! every execution of the pool by id, every sleeping task unique id, every parent's children.
//! Storage values carry no server-assigned field (`_id`, `_creationTime`, `shard`,
//! `parentExecutionDocId` are not part of them), so values compare with `==`. Order is compared
//! exactly except where the contract leaves it open:
//!
//! - the children of a parent are compared as a set (sorted by execution id);
//! - the parent decrement over several owned shards: the Convex storage sends one transaction
//!   per shard concurrently, so they apply in any order, while the oracle applies them in
//!   ascending shard order. Which order wins matters when a child in one shard has its parent
//!   in another shard that the decrement also selects (the decrement rewrites the parent's
//!   `updatedAt` and count). When the results differ, the test accepts the Convex outcome if
//!   the oracle, rebuilt from the same history, gives exactly that outcome (result and every
//!   value) with the shards in another order; the summary counts how often that happened.
//!
//! # Time
//!
//! The conditions `updatedAt < now` use each storage's own clock: the server's for Convex, the
//! system clock for the oracle. Every `updatedAt` is therefore either far in the past
//! ([`PAST`] = 1,000 ms after the epoch, plus 0..2) or far in the future ([`FUTURE`], in 2096,
//! plus 0..1), so both clocks give the same answer even with minutes of skew. Other timestamps
//! (`startAt`, `expiresAt`, bounds) are compared with bounds the client passes, and use values
//! around [`PAST`] so that ties and bounds equal to a value occur.
//!
//! # Not covered here
//!
//! `max_items_per_call` stays at its default: with it lowered, the Convex storage splits
//! batches into several transactions (not atomic as a whole) and caps range limits per call,
//! both documented departures from the single-transaction oracle, tested in `e2e_storage.rs`.
//!
//! # Reproducing and shrinking
//!
//! The cases come from proptest with a fixed ChaCha seed ([`SEED`], or `DIFFERENTIAL_SEED`)
//! and no failure persistence, so every run draws the same cases. A failure is shrunk by
//! proptest, then further by deleting operations while it still fails ([`minimize`]), and
//! printed as options, setup and numbered operations, with the step that disagreed, both
//! sides' results in brief, the fields that differ, and both in full.
//!
//! # Cost
//!
//! About 50 ms per case on the local server (a 2-core machine, debug build): the default
//! 1,000 cases take ~50 s; `DIFFERENTIAL_CASES=10000` about 8 to 9 minutes.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use durable_execution_storage_convex::conformance::StorageFactory;
use durable_execution_storage_convex::storage::{
    split_limit, GetByIdRequest, GetByParentExecutionIdRequest, GetBySleepingTaskUniqueIdRequest,
    NewTaskExecution, ParentTaskExecutionSummary,
    UpdateAndDecrementParentActiveChildrenCountRequest, UpdateByCloseExpiresAtLessThanRequest,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use durable_execution_storage_convex::task_executions::{
    CloseStatus, ErrorType, ExecutionError, OnChildrenFinishedProcessingStatus, RetryOptions,
    TaskExecutionFilters, TaskExecutionStatus, TaskExecutionSummary, TaskExecutionUnset,
    TaskExecutionUpdate,
};
use durable_execution_storage_convex::{
    ConvexStorageOptions, InMemoryTaskExecutionsStorage, StorageError, TaskExecutionStorageValue,
    TaskExecutionsStorage,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use support::ConvexStorageFactory;

/// Cases run when `DIFFERENTIAL_CASES` is not set: about 50 s on a 2-core machine (~50 ms
/// per case against the local server, most of it HTTP round trips and convex-test).
const DEFAULT_CASES: u32 = 1_000;

/// Cases run against a real deployment (`CONVEX_URL`) when `DIFFERENTIAL_CASES` is not set.
const DEFAULT_REMOTE_CASES: u32 = 100;

/// The fixed seed of the CI run (`DIFFERENTIAL_SEED=<u64>` replaces it).
const SEED: u64 = 0x0D1F_F0CA_5E5E_ED01;

/// At most this many operations after the setup insert.
const MAX_OPS: usize = 24;

/// "Long ago" for every clock: `updatedAt < now` holds.
const PAST: u64 = 1_000;

/// Far in the future (2096) for every clock: `updatedAt < now` does not hold.
const FUTURE: u64 = 4_000_000_000_000;

/// The execution ids every case draws from, for roots and children alike.
const IDS: [&str; 10] = ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"];

/// Sleeping task unique ids: few, so that inserts conflict on them too.
const SLEEPING_IDS: [&str; 3] = ["s0", "s1", "s2"];

const EXECUTORS: [&str; 2] = ["ex0", "ex1"];

const STATUSES: [TaskExecutionStatus; 9] = [
    TaskExecutionStatus::Ready,
    TaskExecutionStatus::Running,
    TaskExecutionStatus::Failed,
    TaskExecutionStatus::TimedOut,
    TaskExecutionStatus::WaitingForChildren,
    TaskExecutionStatus::WaitingForFinalize,
    TaskExecutionStatus::FinalizeFailed,
    TaskExecutionStatus::Completed,
    TaskExecutionStatus::Cancelled,
];

const OCFP_STATUSES: [OnChildrenFinishedProcessingStatus; 3] = [
    OnChildrenFinishedProcessingStatus::Idle,
    OnChildrenFinishedProcessingStatus::Processing,
    OnChildrenFinishedProcessingStatus::Processed,
];

const CLOSE_STATUSES: [CloseStatus; 4] = [
    CloseStatus::Idle,
    CloseStatus::Ready,
    CloseStatus::Closing,
    CloseStatus::Closed,
];

// ---------------------------------------------------------------------------------------------
// The operations, in a form that prints readably when a failure is shrunk.

/// Where a new execution sits under its parent.
#[derive(Clone, Debug)]
struct Link {
    parent: String,
    index: u32,
    only_child: bool,
    finalize: bool,
}

/// A new execution: the fields the operations look at; the rest are fixed.
#[derive(Clone)]
struct NewExec {
    id: String,
    parent: Option<Link>,
    is_sleeping_task: bool,
    sleeping_task_unique_id: Option<String>,
    status: TaskExecutionStatus,
    is_finished: bool,
    executor_id: Option<&'static str>,
    npc: bool,
    acc: u32,
    ocfp: OnChildrenFinishedProcessingStatus,
    close: CloseStatus,
    start_at: u64,
    expires_at: Option<u64>,
    ocfp_expires_at: Option<u64>,
    close_expires_at: Option<u64>,
    updated_at: u64,
}

impl fmt::Debug for NewExec {
    /// Only what differs from a fresh ready execution, to keep shrunk cases short.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct(&self.id);
        if let Some(link) = &self.parent {
            s.field("parent", link);
        }
        if self.is_sleeping_task {
            s.field("is_sleeping_task", &true);
        }
        if let Some(unique) = &self.sleeping_task_unique_id {
            s.field("sleeping_task_unique_id", unique);
        }
        s.field("status", &self.status);
        if self.is_finished {
            s.field("is_finished", &true);
        }
        if let Some(executor) = self.executor_id {
            s.field("executor_id", &executor);
        }
        if self.npc {
            s.field("npc", &true);
        }
        if self.acc != 0 {
            s.field("acc", &self.acc);
        }
        if self.ocfp != OnChildrenFinishedProcessingStatus::Idle {
            s.field("ocfp", &self.ocfp);
        }
        if self.close != CloseStatus::Idle {
            s.field("close", &self.close);
        }
        s.field("start_at", &self.start_at);
        for (name, value) in [
            ("expires_at", self.expires_at),
            ("ocfp_expires_at", self.ocfp_expires_at),
            ("close_expires_at", self.close_expires_at),
        ] {
            if let Some(value) = value {
                s.field(name, &value);
            }
        }
        s.field("updated_at", &self.updated_at).finish()
    }
}

impl NewExec {
    fn value(&self) -> TaskExecutionStorageValue {
        let parent_summary = |link: &Link| TaskExecutionSummary {
            task_id: format!("task-{}", link.parent),
            execution_id: link.parent.clone(),
        };
        let mut value = TaskExecutionStorageValue::new_execution(
            NewTaskExecution {
                root: self.parent.as_ref().map(parent_summary),
                parent: self.parent.as_ref().map(|link| ParentTaskExecutionSummary {
                    task_id: format!("task-{}", link.parent),
                    execution_id: link.parent.clone(),
                    index_in_parent_children: link.index,
                    is_only_child_of_parent: link.only_child,
                    is_finalize_of_parent: link.finalize,
                }),
                task_id: format!("task-{}", self.id),
                execution_id: self.id.clone(),
                is_sleeping_task: self.is_sleeping_task,
                sleeping_task_unique_id: self.sleeping_task_unique_id.clone(),
                retry_options: RetryOptions {
                    max_attempts: 2,
                    base_delay_ms: Some(10),
                    max_delay_ms: None,
                    delay_multiplier: Some(1.5),
                },
                sleep_ms_before_run: 0,
                timeout_ms: 100,
                are_children_sequential: false,
                input: format!("{{\"id\":\"{}\"}}", self.id),
            },
            self.updated_at,
        );
        value.status = self.status;
        value.is_finished = self.is_finished;
        value.executor_id = self.executor_id.map(str::to_owned);
        value.needs_promise_cancellation = self.npc;
        value.active_children_count = self.acc;
        value.on_children_finished_processing_status = self.ocfp;
        value.close_status = self.close;
        value.start_at = self.start_at;
        value.expires_at = self.expires_at;
        value.on_children_finished_processing_expires_at = self.ocfp_expires_at;
        value.close_expires_at = self.close_expires_at;
        value
    }
}

/// One field an update sets.
#[derive(Clone, Debug)]
enum Set {
    Status(TaskExecutionStatus),
    IsFinished(bool),
    ExecutorId(&'static str),
    Acc(u32),
    Ocfp(OnChildrenFinishedProcessingStatus),
    Close(CloseStatus),
    Npc(bool),
    StartAt(u64),
    StartedAt(u64),
    ExpiresAt(u64),
    OcfpExpiresAt(u64),
    CloseExpiresAt(u64),
    RetryAttempts(u32),
    RunOutput(&'static str),
    Output(&'static str),
    Error(ErrorType),
    Children(Vec<&'static str>),
    Finalize(&'static str),
    FinishedAt(u64),
}

/// One field an update removes.
#[derive(Clone, Copy, Debug)]
enum Unset {
    ExecutorId,
    RunOutput,
    Error,
    StartedAt,
    ExpiresAt,
    OcfpExpiresAt,
    CloseExpiresAt,
}

#[derive(Clone, Debug)]
struct Update {
    updated_at: u64,
    set: Vec<Set>,
    unset: Vec<Unset>,
}

fn summary(id: &str) -> TaskExecutionSummary {
    TaskExecutionSummary {
        task_id: format!("task-{id}"),
        execution_id: id.to_owned(),
    }
}

impl Update {
    fn build(&self) -> TaskExecutionUpdate {
        let mut update = TaskExecutionUpdate {
            updated_at: self.updated_at,
            ..TaskExecutionUpdate::default()
        };
        for set in &self.set {
            match set {
                Set::Status(v) => update.status = Some(*v),
                Set::IsFinished(v) => update.is_finished = Some(*v),
                Set::ExecutorId(v) => update.executor_id = Some((*v).to_owned()),
                Set::Acc(v) => update.active_children_count = Some(*v),
                Set::Ocfp(v) => update.on_children_finished_processing_status = Some(*v),
                Set::Close(v) => update.close_status = Some(*v),
                Set::Npc(v) => update.needs_promise_cancellation = Some(*v),
                Set::StartAt(v) => update.start_at = Some(*v),
                Set::StartedAt(v) => update.started_at = Some(*v),
                Set::ExpiresAt(v) => update.expires_at = Some(*v),
                Set::OcfpExpiresAt(v) => {
                    update.on_children_finished_processing_expires_at = Some(*v);
                }
                Set::CloseExpiresAt(v) => update.close_expires_at = Some(*v),
                Set::RetryAttempts(v) => update.retry_attempts = Some(*v),
                Set::RunOutput(v) => update.run_output = Some((*v).to_owned()),
                Set::Output(v) => update.output = Some((*v).to_owned()),
                Set::Error(error_type) => {
                    update.error = Some(ExecutionError {
                        error_type: *error_type,
                        message: format!("{error_type:?} happened"),
                        is_retryable: *error_type == ErrorType::Generic,
                        is_internal: false,
                    });
                }
                Set::Children(ids) => {
                    update.children = Some(ids.iter().map(|id| summary(id)).collect());
                }
                Set::Finalize(id) => update.finalize = Some(summary(id)),
                Set::FinishedAt(v) => update.finished_at = Some(*v),
            }
        }
        if !self.unset.is_empty() {
            let mut unset = TaskExecutionUnset::default();
            for field in &self.unset {
                match field {
                    Unset::ExecutorId => unset.executor_id = true,
                    Unset::RunOutput => unset.run_output = true,
                    Unset::Error => unset.error = true,
                    Unset::StartedAt => unset.started_at = true,
                    Unset::ExpiresAt => unset.expires_at = true,
                    Unset::OcfpExpiresAt => {
                        unset.on_children_finished_processing_expires_at = true;
                    }
                    Unset::CloseExpiresAt => unset.close_expires_at = true,
                }
            }
            update.unset = Some(unset);
        }
        update
    }
}

#[derive(Clone, Debug)]
struct ById {
    id: &'static str,
    filters: Option<TaskExecutionFilters>,
    update: Update,
}

/// One storage operation; the variants follow the reference's table.
#[derive(Clone, Debug)]
enum Op {
    Insert(Vec<NewExec>),
    GetById(Vec<(&'static str, Option<TaskExecutionFilters>)>),
    GetBySleepingTaskUniqueId(Vec<&'static str>),
    UpdateById(Vec<ById>),
    UpdateByIdAndInsertChildren(Vec<(ById, Vec<NewExec>)>),
    Claim {
        status: TaskExecutionStatus,
        start_at_less_than: u64,
        expires_at_with_started_at: u64,
        update: Update,
        limit: u32,
    },
    OnChildrenFinished {
        status: TaskExecutionStatus,
        ocfp: OnChildrenFinishedProcessingStatus,
        update: Update,
        limit: u32,
    },
    Close {
        close_status: CloseStatus,
        update: Update,
        limit: u32,
    },
    ExpireByStatus {
        status: TaskExecutionStatus,
        is_sleeping_task: bool,
        expires_at_less_than: u64,
        update: Update,
        limit: u32,
    },
    ExpireOnChildrenFinished {
        less_than: u64,
        update: Update,
        limit: u32,
    },
    ExpireClose {
        less_than: u64,
        update: Update,
        limit: u32,
    },
    CancelPromises {
        executor_id: &'static str,
        npc: bool,
        update: Update,
        limit: u32,
    },
    GetChildren(Vec<&'static str>),
    UpdateChildren(Vec<(&'static str, bool, Update)>),
    Decrement {
        is_finished: bool,
        close_status: CloseStatus,
        update: Update,
        limit: u32,
    },
    DeleteById(&'static str),
    DeleteAll,
}

/// One generated test case.
#[derive(Clone)]
struct Case {
    total_shards: u32,
    /// `None`: every shard.
    shards: Option<Vec<u32>>,
    test_mode: bool,
    /// Inserted first, in one call; distinct ids, so it succeeds.
    setup: Vec<NewExec>,
    ops: Vec<Op>,
}

impl Case {
    fn options(&self) -> ConvexStorageOptions {
        ConvexStorageOptions::default()
            .with_total_shards(self.total_shards)
            .with_shards(self.shards.clone())
            .with_test_mode(self.test_mode)
    }

    /// The setup insert followed by the operations.
    fn steps(&self) -> Vec<Op> {
        std::iter::once(Op::Insert(self.setup.clone()))
            .chain(self.ops.iter().cloned())
            .collect()
    }
}

impl fmt::Debug for Case {
    /// The case as a readable test: options, then numbered steps (0 is the setup insert).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "options: total_shards = {}, shards = {:?}, enable_test_mode = {}",
            self.total_shards, self.shards, self.test_mode
        )?;
        for (n, op) in self.steps().iter().enumerate() {
            writeln!(f, "  {n:>2}. {op:?}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn pick<T: Clone + fmt::Debug + 'static>(values: &[T]) -> impl Strategy<Value = T> {
    prop::sample::select(values.to_vec())
}

fn id() -> impl Strategy<Value = &'static str> {
    pick(&IDS)
}

/// A status, mostly one of the four the engine's range operations use, so that the range
/// operations often find something.
fn status() -> impl Strategy<Value = TaskExecutionStatus> {
    prop_oneof![
        3 => pick(&[
            TaskExecutionStatus::Ready,
            TaskExecutionStatus::Running,
            TaskExecutionStatus::WaitingForChildren,
            TaskExecutionStatus::Completed,
        ]),
        1 => pick(&STATUSES),
    ]
}

/// An `updatedAt`: long ago or far ahead for every clock (see the module docs).
fn updated_at() -> impl Strategy<Value = u64> {
    pick(&[PAST, PAST + 1, PAST + 2, FUTURE, FUTURE + 1])
}

/// A `startAt`, `expiresAt`-like value or bound, around [`PAST`] so that ties occur.
fn instant() -> impl Strategy<Value = u64> {
    pick(&[PAST, PAST + 1, PAST + 2, PAST + 3])
}

fn bound() -> impl Strategy<Value = u64> {
    pick(&[PAST, PAST + 1, PAST + 2, PAST + 3, FUTURE])
}

fn limit() -> impl Strategy<Value = u32> {
    0_u32..=4
}

fn new_exec(
    id: impl Strategy<Value = String>,
    parent: impl Strategy<Value = Option<Link>>,
    sleeping_task_unique_id: impl Strategy<Value = Option<String>>,
) -> impl Strategy<Value = NewExec> {
    (
        (id, parent, any::<bool>(), sleeping_task_unique_id),
        (status(), any::<bool>(), prop::option::of(pick(&EXECUTORS))),
        (
            any::<bool>(),
            // No active children half the time: what the on-children-finished pick needs.
            prop_oneof![Just(0_u32), 1_u32..=2],
            pick(&OCFP_STATUSES),
            pick(&CLOSE_STATUSES),
        ),
        (
            instant(),
            prop::option::of(instant()),
            prop::option::of(instant()),
            prop::option::of(instant()),
            updated_at(),
        ),
    )
        .prop_map(
            |(
                (id, parent, is_sleeping_task, sleeping_task_unique_id),
                (status, is_finished, executor_id),
                (npc, acc, ocfp, close),
                (start_at, expires_at, ocfp_expires_at, close_expires_at, updated_at),
            )| NewExec {
                id,
                parent,
                is_sleeping_task,
                sleeping_task_unique_id,
                status,
                is_finished,
                executor_id,
                npc,
                acc,
                ocfp,
                close,
                start_at,
                expires_at,
                ocfp_expires_at,
                close_expires_at,
                updated_at,
            },
        )
}

/// A link to a random parent, for executions inserted with `insertMany` (which the contract
/// allows: children are found by their `parentExecutionId`, however they were inserted).
fn any_link() -> impl Strategy<Value = Option<Link>> {
    prop::option::weighted(
        0.2,
        (id(), 0_u32..3, any::<bool>(), prop::bool::weighted(0.2)).prop_map(
            |(parent, index, only_child, finalize)| Link {
                parent: parent.to_owned(),
                index,
                only_child,
                finalize,
            },
        ),
    )
}

fn pooled_sleeping_id() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.3, pick(&SLEEPING_IDS).prop_map(str::to_owned))
}

/// The setup insert: distinct ids and sleeping task unique ids, so that it succeeds.
fn setup() -> impl Strategy<Value = Vec<NewExec>> {
    prop::sample::subsequence(IDS.to_vec(), 0..=8).prop_flat_map(|ids| {
        ids.into_iter()
            .map(|id| {
                let unique = prop::option::weighted(0.3, Just(format!("s-{id}")));
                new_exec(Just(id.to_owned()), any_link(), unique)
            })
            .collect::<Vec<_>>()
    })
}

/// The children inserted under `parent`.
fn children_of(parent: &'static str) -> impl Strategy<Value = Vec<NewExec>> {
    prop::collection::vec((id(), any::<bool>(), prop::bool::weighted(0.2)), 0..=3).prop_flat_map(
        move |specs| {
            let count = specs.len();
            specs
                .into_iter()
                .enumerate()
                .map(|(index, (id, only_child, finalize))| {
                    let link = Link {
                        parent: parent.to_owned(),
                        index: u32::try_from(index).unwrap_or(u32::MAX),
                        // Mostly as the engine sets it, sometimes not: the storage must follow
                        // the flag, not count the children.
                        only_child: count == 1 || only_child,
                        finalize,
                    };
                    new_exec(Just(id.to_owned()), Just(Some(link)), pooled_sleeping_id())
                })
                .collect::<Vec<_>>()
        },
    )
}

fn set_field() -> impl Strategy<Value = Set> {
    prop_oneof![
        3 => status().prop_map(Set::Status),
        2 => any::<bool>().prop_map(Set::IsFinished),
        2 => pick(&EXECUTORS).prop_map(Set::ExecutorId),
        2 => (0_u32..=3).prop_map(Set::Acc),
        2 => pick(&OCFP_STATUSES).prop_map(Set::Ocfp),
        2 => pick(&CLOSE_STATUSES).prop_map(Set::Close),
        1 => any::<bool>().prop_map(Set::Npc),
        1 => instant().prop_map(Set::StartAt),
        1 => instant().prop_map(Set::StartedAt),
        1 => instant().prop_map(Set::ExpiresAt),
        1 => instant().prop_map(Set::OcfpExpiresAt),
        1 => instant().prop_map(Set::CloseExpiresAt),
        1 => (0_u32..=3).prop_map(Set::RetryAttempts),
        1 => pick(&["r1", "r2"]).prop_map(Set::RunOutput),
        1 => pick(&["o1", "o2"]).prop_map(Set::Output),
        1 => pick(&[ErrorType::Generic, ErrorType::TimedOut]).prop_map(Set::Error),
        1 => prop::collection::vec(id(), 0..=2).prop_map(Set::Children),
        1 => id().prop_map(Set::Finalize),
        1 => instant().prop_map(Set::FinishedAt),
    ]
}

fn unset_field() -> impl Strategy<Value = Unset> {
    pick(&[
        Unset::ExecutorId,
        Unset::RunOutput,
        Unset::Error,
        Unset::StartedAt,
        Unset::ExpiresAt,
        Unset::OcfpExpiresAt,
        Unset::CloseExpiresAt,
    ])
}

fn update() -> impl Strategy<Value = Update> {
    (
        updated_at(),
        prop::collection::vec(set_field(), 0..=3),
        prop::collection::vec(unset_field(), 0..=2),
    )
        .prop_map(|(updated_at, set, unset)| Update {
            updated_at,
            set,
            unset,
        })
}

fn filters() -> impl Strategy<Value = Option<TaskExecutionFilters>> {
    prop::option::weighted(
        0.4,
        (
            prop::option::of(any::<bool>()),
            prop::option::of(status()),
            prop::option::of(any::<bool>()),
        )
            .prop_map(
                |(is_sleeping_task, status, is_finished)| TaskExecutionFilters {
                    is_sleeping_task,
                    status,
                    is_finished,
                },
            ),
    )
}

fn by_id() -> impl Strategy<Value = ById> {
    (id(), filters(), update()).prop_map(|(id, filters, update)| ById {
        id,
        filters,
        update,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(
            new_exec(id().prop_map(str::to_owned), any_link(), pooled_sleeping_id()),
            1..=3,
        )
        .prop_map(Op::Insert),
        2 => prop::collection::vec((id(), filters()), 1..=3).prop_map(Op::GetById),
        2 => prop::collection::vec(
            prop_oneof![pick(&SLEEPING_IDS), pick(&SETUP_SLEEPING_IDS)],
            1..=2,
        )
            .prop_map(Op::GetBySleepingTaskUniqueId),
        6 => prop::collection::vec(by_id(), 1..=3).prop_map(Op::UpdateById),
        6 => prop::collection::vec(
            by_id().prop_flat_map(|request| {
                let parent = request.id;
                (Just(request), children_of(parent))
            }),
            1..=2,
        )
        .prop_map(Op::UpdateByIdAndInsertChildren),
        6 => (status(), bound(), instant(), update(), limit()).prop_map(
            |(status, start_at_less_than, expires_at_with_started_at, update, limit)| Op::Claim {
                status,
                start_at_less_than,
                expires_at_with_started_at,
                update,
                limit,
            },
        ),
        4 => (status(), pick(&OCFP_STATUSES), update(), limit()).prop_map(
            |(status, ocfp, update, limit)| Op::OnChildrenFinished {
                status,
                ocfp,
                update,
                limit,
            },
        ),
        4 => (pick(&CLOSE_STATUSES), update(), limit()).prop_map(|(close_status, update, limit)| {
            Op::Close {
                close_status,
                update,
                limit,
            }
        }),
        2 => (status(), any::<bool>(), bound(), update(), limit()).prop_map(
            |(status, is_sleeping_task, expires_at_less_than, update, limit)| {
                Op::ExpireByStatus {
                    status,
                    is_sleeping_task,
                    expires_at_less_than,
                    update,
                    limit,
                }
            },
        ),
        2 => (bound(), update(), limit()).prop_map(|(less_than, update, limit)| {
            Op::ExpireOnChildrenFinished {
                less_than,
                update,
                limit,
            }
        }),
        2 => (bound(), update(), limit()).prop_map(|(less_than, update, limit)| {
            Op::ExpireClose {
                less_than,
                update,
                limit,
            }
        }),
        4 => (pick(&EXECUTORS), any::<bool>(), update(), limit()).prop_map(
            |(executor_id, npc, update, limit)| Op::CancelPromises {
                executor_id,
                npc,
                update,
                limit,
            },
        ),
        2 => prop::collection::vec(id(), 1..=3).prop_map(Op::GetChildren),
        4 => prop::collection::vec((id(), any::<bool>(), update()), 1..=2)
            .prop_map(Op::UpdateChildren),
        8 => (any::<bool>(), pick(&CLOSE_STATUSES), update(), 0_u32..=6).prop_map(
            |(is_finished, close_status, update, limit)| Op::Decrement {
                is_finished,
                close_status,
                update,
                limit,
            },
        ),
        2 => id().prop_map(Op::DeleteById),
        // Rarer: it empties everything the case built.
        1 => Just(Op::DeleteAll),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (1_u32..=3)
        .prop_flat_map(|total_shards| {
            let all: Vec<u32> = (0..total_shards).collect();
            let len = all.len();
            (
                Just(total_shards),
                prop::option::weighted(0.5, prop::sample::subsequence(all, 1..=len)),
                prop::bool::weighted(0.75),
            )
        })
        .prop_flat_map(|(total_shards, shards, test_mode)| {
            (
                Just(total_shards),
                Just(shards),
                Just(test_mode),
                setup(),
                prop::collection::vec(op(), 0..=MAX_OPS),
            )
        })
        .prop_map(|(total_shards, shards, test_mode, setup, ops)| Case {
            total_shards,
            shards,
            test_mode,
            setup,
            ops,
        })
}

// ---------------------------------------------------------------------------------------------
// Running an operation on one storage.

/// What an operation gave, comparable across storages.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Done,
    AlreadyExists,
    /// Any other error: the oracle has none, so this always disagrees.
    Failed(String),
    Found(Vec<Option<TaskExecutionStorageValue>>),
    Patched(Vec<TaskExecutionStorageValue>),
    Count(u32),
    /// Children per parent, each list sorted by execution id (their order is unspecified).
    Children(Vec<Vec<TaskExecutionStorageValue>>),
}

impl Outcome {
    fn of<T>(result: Result<T, StorageError>, ok: impl FnOnce(T) -> Self) -> Self {
        match result {
            Ok(value) => ok(value),
            Err(error) if error.is_already_exists() => Self::AlreadyExists,
            Err(error) => Self::Failed(error.to_string()),
        }
    }

    /// Whether an operation that answers found or patched anything (for the summary); `None`
    /// for those that answer nothing.
    fn found_something(&self) -> Option<bool> {
        match self {
            Self::Done | Self::AlreadyExists | Self::Failed(_) => None,
            Self::Found(found) => Some(found.iter().any(Option::is_some)),
            Self::Patched(values) => Some(!values.is_empty()),
            Self::Count(count) => Some(*count > 0),
            Self::Children(lists) => Some(lists.iter().any(|list| !list.is_empty())),
        }
    }
}

fn by_ids(ids: &[&str]) -> Vec<GetByIdRequest> {
    ids.iter()
        .map(|id| GetByIdRequest {
            execution_id: (*id).to_owned(),
            filters: None,
        })
        .collect()
}

fn sorted_children(lists: Vec<Vec<TaskExecutionStorageValue>>) -> Outcome {
    Outcome::Children(
        lists
            .into_iter()
            .map(|mut list| {
                list.sort_by(|a, b| a.execution_id.cmp(&b.execution_id));
                list
            })
            .collect(),
    )
}

async fn apply(storage: &dyn TaskExecutionsStorage, op: &Op) -> Outcome {
    match op {
        Op::Insert(executions) => Outcome::of(
            storage
                .insert_many(executions.iter().map(NewExec::value).collect())
                .await,
            |()| Outcome::Done,
        ),
        Op::GetById(requests) => {
            let requests = requests
                .iter()
                .map(|(id, filters)| GetByIdRequest {
                    execution_id: (*id).to_owned(),
                    filters: filters.clone(),
                })
                .collect();
            Outcome::of(storage.get_many_by_id(requests).await, Outcome::Found)
        }
        Op::GetBySleepingTaskUniqueId(ids) => {
            let requests = ids
                .iter()
                .map(|id| GetBySleepingTaskUniqueIdRequest {
                    sleeping_task_unique_id: (*id).to_owned(),
                })
                .collect();
            Outcome::of(
                storage.get_many_by_sleeping_task_unique_id(requests).await,
                Outcome::Found,
            )
        }
        Op::UpdateById(requests) => {
            let requests = requests
                .iter()
                .map(|r| UpdateByIdRequest {
                    execution_id: r.id.to_owned(),
                    filters: r.filters.clone(),
                    update: r.update.build(),
                })
                .collect();
            Outcome::of(storage.update_many_by_id(requests).await, |()| {
                Outcome::Done
            })
        }
        Op::UpdateByIdAndInsertChildren(requests) => {
            let requests = requests
                .iter()
                .map(|(r, children)| UpdateByIdAndInsertChildrenIfUpdatedRequest {
                    execution_id: r.id.to_owned(),
                    filters: r.filters.clone(),
                    update: r.update.build(),
                    children_task_executions_to_insert_if_any_updated: children
                        .iter()
                        .map(NewExec::value)
                        .collect(),
                })
                .collect();
            Outcome::of(
                storage
                    .update_many_by_id_and_insert_children_if_updated(requests)
                    .await,
                |()| Outcome::Done,
            )
        }
        Op::Claim {
            status,
            start_at_less_than,
            expires_at_with_started_at,
            update,
            limit,
        } => Outcome::of(
            storage
                .update_by_status_and_start_at_less_than_and_return(
                    UpdateByStatusAndStartAtLessThanRequest {
                        status: *status,
                        start_at_less_than: *start_at_less_than,
                        update: update.build(),
                        update_expires_at_with_started_at: *expires_at_with_started_at,
                        limit: *limit,
                    },
                )
                .await,
            Outcome::Patched,
        ),
        Op::OnChildrenFinished {
            status,
            ocfp,
            update,
            limit,
        } => Outcome::of(
            storage
                .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
                    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
                        status: *status,
                        on_children_finished_processing_status: *ocfp,
                        update: update.build(),
                        limit: *limit,
                    },
                )
                .await,
            Outcome::Patched,
        ),
        Op::Close {
            close_status,
            update,
            limit,
        } => Outcome::of(
            storage
                .update_by_close_status_and_return(UpdateByCloseStatusRequest {
                    close_status: *close_status,
                    update: update.build(),
                    limit: *limit,
                })
                .await,
            Outcome::Patched,
        ),
        Op::ExpireByStatus {
            status,
            is_sleeping_task,
            expires_at_less_than,
            update,
            limit,
        } => Outcome::of(
            storage
                .update_by_status_and_is_sleeping_task_and_expires_at_less_than(
                    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                        status: *status,
                        is_sleeping_task: *is_sleeping_task,
                        expires_at_less_than: *expires_at_less_than,
                        update: update.build(),
                        limit: *limit,
                    },
                )
                .await,
            Outcome::Count,
        ),
        Op::ExpireOnChildrenFinished {
            less_than,
            update,
            limit,
        } => Outcome::of(
            storage
                .update_by_on_children_finished_processing_expires_at_less_than(
                    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest {
                        on_children_finished_processing_expires_at_less_than: *less_than,
                        update: update.build(),
                        limit: *limit,
                    },
                )
                .await,
            Outcome::Count,
        ),
        Op::ExpireClose {
            less_than,
            update,
            limit,
        } => Outcome::of(
            storage
                .update_by_close_expires_at_less_than(UpdateByCloseExpiresAtLessThanRequest {
                    close_expires_at_less_than: *less_than,
                    update: update.build(),
                    limit: *limit,
                })
                .await,
            Outcome::Count,
        ),
        Op::CancelPromises {
            executor_id,
            npc,
            update,
            limit,
        } => Outcome::of(
            storage
                .update_by_executor_id_and_needs_promise_cancellation_and_return(
                    UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
                        executor_id: (*executor_id).to_owned(),
                        needs_promise_cancellation: *npc,
                        update: update.build(),
                        limit: *limit,
                    },
                )
                .await,
            Outcome::Patched,
        ),
        Op::GetChildren(parents) => {
            let requests = parents
                .iter()
                .map(|id| GetByParentExecutionIdRequest {
                    parent_execution_id: (*id).to_owned(),
                })
                .collect();
            Outcome::of(
                storage.get_many_by_parent_execution_id(requests).await,
                sorted_children,
            )
        }
        Op::UpdateChildren(requests) => {
            let requests = requests
                .iter()
                .map(
                    |(parent, is_finished, update)| UpdateByParentExecutionIdAndIsFinishedRequest {
                        parent_execution_id: (*parent).to_owned(),
                        is_finished: *is_finished,
                        update: update.build(),
                    },
                )
                .collect();
            Outcome::of(
                storage
                    .update_many_by_parent_execution_id_and_is_finished(requests)
                    .await,
                |()| Outcome::Done,
            )
        }
        Op::Decrement {
            is_finished,
            close_status,
            update,
            limit,
        } => Outcome::of(
            storage
                .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
                    decrement_request(*is_finished, *close_status, update, *limit),
                )
                .await,
            Outcome::Count,
        ),
        Op::DeleteById(id) => Outcome::of(storage.delete_by_id(id).await, |()| Outcome::Done),
        Op::DeleteAll => Outcome::of(storage.delete_all().await, |()| Outcome::Done),
    }
}

fn decrement_request(
    is_finished: bool,
    close_status: CloseStatus,
    update: &Update,
    limit: u32,
) -> UpdateAndDecrementParentActiveChildrenCountRequest {
    UpdateAndDecrementParentActiveChildrenCountRequest {
        is_finished,
        close_status,
        update: update.build(),
        limit,
    }
}

/// Every execution of the pool, by id: the state, as far as the operations can reach it.
async fn snapshot(storage: &dyn TaskExecutionsStorage) -> Outcome {
    Outcome::of(storage.get_many_by_id(by_ids(&IDS)).await, Outcome::Found)
}

// ---------------------------------------------------------------------------------------------
// The oracle, rebuildable with another shard order for the parent decrement.

/// The in-memory storage and how it got to its state.
struct Oracle {
    options: ConvexStorageOptions,
    storage: InMemoryTaskExecutionsStorage,
    /// Every operation applied, with the shard order of a decrement applied in a non-default
    /// order.
    history: Vec<(Op, Option<Vec<u32>>)>,
}

impl Oracle {
    fn new(options: ConvexStorageOptions) -> Self {
        let storage = InMemoryTaskExecutionsStorage::new(options.clone())
            .expect("the generated options are valid");
        Self {
            options,
            storage,
            history: Vec::new(),
        }
    }

    /// The owned shards, ascending.
    fn shards(&self) -> Vec<u32> {
        self.storage.shards().to_vec()
    }

    /// A fresh oracle with the history replayed. The in-memory storage is deterministic (all
    /// `updatedAt` are far from its clock), so this is the same state.
    async fn rebuilt(&self) -> Self {
        let mut oracle = Self::new(self.options.clone());
        for (op, order) in &self.history {
            match order {
                Some(order) => {
                    oracle.decrement_in_order(op, order).await;
                }
                None => {
                    apply(&oracle.storage, op).await;
                }
            }
            oracle.history.push((op.clone(), order.clone()));
        }
        oracle
    }

    /// The parent decrement as the Convex storage may apply it: one transaction per owned
    /// shard (each with the limit split across the owned shards), in `order`.
    async fn decrement_in_order(&self, op: &Op, order: &[u32]) -> Outcome {
        let Op::Decrement {
            is_finished,
            close_status,
            update,
            limit,
        } = op
        else {
            unreachable!("only the decrement is reordered");
        };
        let per_shard = split_limit(*limit, order.len());
        let mut total = 0;
        for &shard in order {
            let client = self
                .storage
                .client(self.options.clone().with_shards(Some(vec![shard])))
                .expect("a subset of valid options");
            let count = client
                .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
                    decrement_request(*is_finished, *close_status, update, per_shard),
                )
                .await
                .expect("the in-memory decrement does not fail");
            total += count;
        }
        Outcome::Count(total)
    }
}

/// Every order of `shards` but the ascending one.
fn other_orders(shards: &[u32]) -> Vec<Vec<u32>> {
    let mut orders: Vec<Vec<u32>> = vec![Vec::new()];
    for _ in shards {
        let mut longer = Vec::new();
        for order in &orders {
            for &shard in shards.iter().filter(|s| !order.contains(s)) {
                longer.push([order.as_slice(), &[shard]].concat());
            }
        }
        orders = longer;
    }
    orders.retain(|order| order.as_slice() != shards);
    orders
}

// ---------------------------------------------------------------------------------------------
// Running a case.

#[derive(Default)]
struct Stats {
    cases: u64,
    steps: u64,
    /// Per operation: how many ran, and how many of them found or patched something.
    per_op: BTreeMap<&'static str, (u64, u64)>,
    already_exists: u64,
    /// Decrements whose Convex outcome matched the oracle only with another shard order.
    reordered_decrements: u64,
    elapsed: Duration,
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Insert(_) => "insertMany",
        Op::GetById(_) => "getManyById",
        Op::GetBySleepingTaskUniqueId(_) => "getManyBySleepingTaskUniqueId",
        Op::UpdateById(_) => "updateManyById",
        Op::UpdateByIdAndInsertChildren(_) => "updateManyByIdAndInsertChildrenIfUpdated",
        Op::Claim { .. } => "updateByStatusAndStartAtLessThanAndReturn",
        Op::OnChildrenFinished { .. } => "updateByStatusAndOCFPStatusAndACCZeroAndReturn",
        Op::Close { .. } => "updateByCloseStatusAndReturn",
        Op::ExpireByStatus { .. } => "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
        Op::ExpireOnChildrenFinished { .. } => "updateByOCFPExpiresAt",
        Op::ExpireClose { .. } => "updateByCloseExpiresAt",
        Op::CancelPromises { .. } => "updateByExecutorIdAndNPCAndReturn",
        Op::GetChildren(_) => "getManyByParentExecutionId",
        Op::UpdateChildren(_) => "updateManyByParentExecutionIdAndIsFinished",
        Op::Decrement { .. } => "updateAndDecrementParentACCByIsFinishedAndCloseStatus",
        Op::DeleteById(_) => "deleteById",
        Op::DeleteAll => "deleteAll",
    }
}

/// The fields of a value by wire name, each printed on its own, to say which fields two values
/// differ in. Read through the document mapping, so that every field is listed (an absent
/// optional field shows as `-`).
fn fields(v: &TaskExecutionStorageValue) -> BTreeMap<String, String> {
    match serde_json::to_value(v.clone().into_document(0)) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .map(|(name, value)| (name, value.to_string()))
            .collect(),
        other => BTreeMap::from([("<document>".to_owned(), format!("{other:?}"))]),
    }
}

/// An outcome in one line: values by execution id only.
fn brief(outcome: &Outcome) -> String {
    let id = |v: &TaskExecutionStorageValue| v.execution_id.clone();
    let found = |v: &Option<TaskExecutionStorageValue>| v.as_ref().map_or("None".to_owned(), id);
    match outcome {
        Outcome::Found(values) => {
            format!("Found {:?}", values.iter().map(found).collect::<Vec<_>>())
        }
        Outcome::Patched(values) => {
            format!("Patched {:?}", values.iter().map(id).collect::<Vec<_>>())
        }
        Outcome::Children(lists) => format!(
            "Children {:?}",
            lists
                .iter()
                .map(|list| list.iter().map(id).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        ),
        other => format!("{other:?}"),
    }
}

/// The values of an outcome, in order.
fn values_of(outcome: &Outcome) -> Vec<Option<&TaskExecutionStorageValue>> {
    match outcome {
        Outcome::Found(values) => values.iter().map(Option::as_ref).collect(),
        Outcome::Patched(values) => values.iter().map(Some).collect(),
        Outcome::Children(lists) => lists.iter().flatten().map(Some).collect(),
        _ => Vec::new(),
    }
}

/// For the values at the same position with the same execution id: the fields that differ.
fn field_differences(expected: &Outcome, actual: &Outcome) -> String {
    let mut out = String::new();
    for (e, a) in values_of(expected).into_iter().zip(values_of(actual)) {
        let (Some(e), Some(a)) = (e, a) else { continue };
        if e == a || e.execution_id != a.execution_id {
            continue;
        }
        let (e_fields, a_fields) = (fields(e), fields(a));
        let names: BTreeSet<&String> = e_fields.keys().chain(a_fields.keys()).collect();
        for name in names {
            let shown = |fields: &BTreeMap<String, String>| {
                fields.get(name).cloned().unwrap_or_else(|| "-".to_owned())
            };
            let (e_field, a_field) = (shown(&e_fields), shown(&a_fields));
            if e_field != a_field {
                out.push_str(&format!(
                    "    {}.{name}: in memory {e_field}, convex {a_field}\n",
                    e.execution_id
                ));
            }
        }
    }
    out
}

fn disagreement(step: usize, op: &Op, what: &str, expected: &Outcome, actual: &Outcome) -> String {
    format!(
        "step {step} ({}): the storages disagree on {what}\n  operation: {op:?}\n  in memory: \
         {}\n  convex:    {}\n  fields that differ:\n{}  in full:\n  in memory: {expected:?}\n  \
         convex:    {actual:?}",
        op_name(op),
        brief(expected),
        brief(actual),
        field_differences(expected, actual),
    )
}

async fn run_case(
    factory: &ConvexStorageFactory,
    case: &Case,
    stats: &Mutex<Stats>,
) -> Result<(), String> {
    let started = Instant::now();
    let backend = factory
        .create()
        .await
        .map_err(|e| format!("no Convex backend: {e}"))?;
    let convex = backend
        .client(case.options())
        .await
        .map_err(|e| format!("no Convex client: {e}"))?;
    let mut oracle = Oracle::new(case.options());
    let mut local = Stats::default();

    for (step, op) in case.steps().iter().enumerate() {
        let expected = apply(&oracle.storage, op).await;
        let actual = apply(&*convex, op).await;
        let entry = local.per_op.entry(op_name(op)).or_default();
        entry.0 += 1;
        entry.1 += u64::from(actual.found_something().unwrap_or(false));
        local.already_exists += u64::from(actual == Outcome::AlreadyExists);

        let shards = oracle.shards();
        if matches!(op, Op::Decrement { .. }) && shards.len() > 1 {
            // The per-shard transactions may apply in any order (module docs): compare the
            // whole state now, and try the other orders when the ascending one disagrees.
            let convex_state = snapshot(&*convex).await;
            let agrees = expected == actual && snapshot(&oracle.storage).await == convex_state;
            let mut order_used = None;
            if !agrees {
                for order in other_orders(&shards) {
                    let candidate = oracle.rebuilt().await;
                    let outcome = candidate.decrement_in_order(op, &order).await;
                    if outcome == actual && snapshot(&candidate.storage).await == convex_state {
                        oracle = candidate;
                        order_used = Some(order);
                        break;
                    }
                }
                if order_used.is_none() {
                    let expected_state = snapshot(&oracle.storage).await;
                    return Err(if expected == actual {
                        disagreement(step, op, "the state after", &expected_state, &convex_state)
                    } else {
                        disagreement(step, op, "the result", &expected, &actual)
                    });
                }
                local.reordered_decrements += 1;
            }
            oracle.history.push((op.clone(), order_used));
        } else {
            if expected != actual {
                return Err(disagreement(step, op, "the result", &expected, &actual));
            }
            oracle.history.push((op.clone(), None));
        }
    }

    // The final state: every execution, every sleeping task unique id, every parent's children.
    let last = case.steps().len();
    let checks: [(&str, Op); 3] = [
        (
            "the final state",
            Op::GetById(IDS.iter().map(|id| (*id, None)).collect()),
        ),
        ("the final sleeping task unique ids", {
            let pooled = SLEEPING_IDS.iter().copied();
            // The setup gives `s-<id>` (see `setup`); those are in a static table.
            let setup = SETUP_SLEEPING_IDS.iter().copied();
            Op::GetBySleepingTaskUniqueId(pooled.chain(setup).collect())
        }),
        ("the final children", Op::GetChildren(IDS.to_vec())),
    ];
    for (what, check) in &checks {
        let expected = apply(&oracle.storage, check).await;
        let actual = apply(&*convex, check).await;
        if expected != actual {
            return Err(disagreement(last, check, what, &expected, &actual));
        }
    }

    local.cases = 1;
    local.steps = u64::try_from(last).unwrap_or(u64::MAX);
    local.elapsed = started.elapsed();
    let mut total = stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    total.cases += local.cases;
    total.steps += local.steps;
    total.already_exists += local.already_exists;
    total.reordered_decrements += local.reordered_decrements;
    total.elapsed += local.elapsed;
    for (name, (ran, effective)) in local.per_op {
        let entry = total.per_op.entry(name).or_default();
        entry.0 += ran;
        entry.1 += effective;
    }
    Ok(())
}

/// Deletes operations (and setup executions) from a failing case for as long as it still
/// fails: proptest's shrinking of a `Vec` tries each deletion once, before it simplifies the
/// elements, so the operations that only mattered to an earlier version of the failure may
/// remain. Returns the smaller case and its failure.
async fn minimize(
    factory: &ConvexStorageFactory,
    mut case: Case,
    mut reason: String,
) -> (Case, String) {
    let scratch = Mutex::new(Stats::default());
    loop {
        let mut smaller = false;
        for n in (0..case.ops.len()).rev() {
            let mut candidate = case.clone();
            candidate.ops.remove(n);
            if let Err(failure) = run_case(factory, &candidate, &scratch).await {
                (case, reason, smaller) = (candidate, failure, true);
            }
        }
        for n in (0..case.setup.len()).rev() {
            let mut candidate = case.clone();
            candidate.setup.remove(n);
            if let Err(failure) = run_case(factory, &candidate, &scratch).await {
                (case, reason, smaller) = (candidate, failure, true);
            }
        }
        if !smaller {
            return (case, reason);
        }
    }
}

/// The sleeping task unique ids the setup gives (`s-<id>`), as statics.
const SETUP_SLEEPING_IDS: [&str; 10] = [
    "s-x0", "s-x1", "s-x2", "s-x3", "s-x4", "s-x5", "s-x6", "s-x7", "s-x8", "s-x9",
];

/// The operations whose answer says nothing about what they did.
const RETURN_NOTHING: [&str; 6] = [
    "insertMany",
    "updateManyById",
    "updateManyByIdAndInsertChildrenIfUpdated",
    "updateManyByParentExecutionIdAndIsFinished",
    "deleteById",
    "deleteAll",
];

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
    )
}

/// A plain test (not `#[tokio::test]`): proptest's runner is synchronous, and each case blocks
/// on this runtime.
#[test]
fn the_convex_storage_agrees_with_the_in_memory_oracle() {
    // A real deployment answers in tens of milliseconds per call rather than one: fewer cases.
    let default_cases = if support::is_remote() {
        DEFAULT_REMOTE_CASES
    } else {
        DEFAULT_CASES
    };
    let cases = env_number("DIFFERENTIAL_CASES").map_or(default_cases, |n| {
        u32::try_from(n).expect("DIFFERENTIAL_CASES fits in u32")
    });
    let seed = env_number("DIFFERENTIAL_SEED").unwrap_or(SEED);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let factory = runtime.block_on(ConvexStorageFactory::new("differential"));

    let config = Config {
        cases,
        // Reproducible: no file of past failures to replay, no seed from the environment.
        failure_persistence: None,
        source_file: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        // Each shrink step is a full case against the server (~0.1 s): bound the search.
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let mut seed_bytes = [0_u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );

    let stats = Mutex::new(Stats::default());
    let started = Instant::now();
    let result = runner.run(&case(), |case| {
        runtime
            .block_on(run_case(&factory, &case, &stats))
            .map_err(TestCaseError::fail)
    });
    let stats = stats
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    println!(
        "differential: {} cases (seed {seed:#x}), {} steps, {:.1?} in all ({:.1?} in passing \
         cases); {} AlreadyExists refusals; {} multi-shard decrements matched another shard order",
        stats.cases,
        stats.steps,
        started.elapsed(),
        stats.elapsed,
        stats.already_exists,
        stats.reordered_decrements,
    );
    for (name, (ran, effective)) in &stats.per_op {
        if RETURN_NOTHING.contains(name) {
            println!("  {name}: {ran} ran");
        } else {
            println!("  {name}: {ran} ran, {effective} found or patched something");
        }
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, shrunk)) => {
            let (minimal, reason) =
                runtime.block_on(minimize(&factory, shrunk, reason.message().to_owned()));
            panic!(
                "the Convex storage disagrees with the in-memory oracle.\nminimal failing case \
                 (seed {seed:#x}; step 0 is the setup insert):\n{minimal:?}\n{reason}"
            )
        }
        Err(TestError::Abort(reason)) => panic!("the differential run aborted: {reason}"),
    }
}

/// Why the decrement over several owned shards may legitimately differ from the oracle's
/// ascending order: a child in one shard whose parent, in another shard, is also selected.
/// Closing the child first rewrites the parent's `updatedAt` (to a future one here), so the
/// parent is no longer selected; closing the parent's shard first patches it too.
#[tokio::test]
async fn the_decrement_over_several_shards_depends_on_their_order() {
    use durable_execution_storage_convex::storage::shard_of_execution;
    let in_shard = |shard| {
        IDS.iter()
            .copied()
            .find(|id| shard_of_execution(id, 2) == shard)
            .expect("the pool has ids in both shards")
    };
    let (child_id, parent_id) = (in_shard(0), in_shard(1));
    let finished = |id: &str, parent: Option<Link>| NewExec {
        id: id.to_owned(),
        parent,
        is_sleeping_task: false,
        sleeping_task_unique_id: None,
        status: TaskExecutionStatus::Completed,
        is_finished: true,
        executor_id: None,
        npc: false,
        acc: 2,
        ocfp: OnChildrenFinishedProcessingStatus::Idle,
        close: CloseStatus::Ready,
        start_at: PAST,
        expires_at: None,
        ocfp_expires_at: None,
        close_expires_at: None,
        updated_at: PAST,
    };
    let link = Link {
        parent: parent_id.to_owned(),
        index: 0,
        only_child: false,
        finalize: false,
    };
    let setup = Op::Insert(vec![
        finished(parent_id, None),
        finished(child_id, Some(link)),
    ]);
    let decrement = Op::Decrement {
        is_finished: true,
        close_status: CloseStatus::Ready,
        update: Update {
            updated_at: FUTURE,
            set: vec![Set::Close(CloseStatus::Closing)],
            unset: Vec::new(),
        },
        limit: 4,
    };
    let options = ConvexStorageOptions::default().with_total_shards(2);
    let mut outcomes = Vec::new();
    for order in [vec![0, 1], vec![1, 0]] {
        let mut oracle = Oracle::new(options.clone());
        assert_eq!(apply(&oracle.storage, &setup).await, Outcome::Done);
        oracle.history.push((setup.clone(), None));
        let count = oracle.decrement_in_order(&decrement, &order).await;
        outcomes.push((count, snapshot(&oracle.storage).await));
    }
    // Child first: only the child is closed. Parent first: both are.
    assert_eq!(outcomes[0].0, Outcome::Count(1));
    assert_eq!(outcomes[1].0, Outcome::Count(2));
    assert_ne!(outcomes[0].1, outcomes[1].1);
    // The oracle's own call applies the ascending order.
    let oracle = Oracle::new(options);
    apply(&oracle.storage, &setup).await;
    assert_eq!(apply(&oracle.storage, &decrement).await, outcomes[0].0);
    assert_eq!(snapshot(&oracle.storage).await, outcomes[0].1);
}

#[test]
fn other_orders_are_every_permutation_but_the_ascending_one() {
    assert!(other_orders(&[1]).is_empty());
    assert_eq!(other_orders(&[0, 2]), vec![vec![2, 0]]);
    let orders = other_orders(&[0, 1, 2]);
    assert_eq!(orders.len(), 5);
    assert!(!orders.contains(&vec![0, 1, 2]));
}
