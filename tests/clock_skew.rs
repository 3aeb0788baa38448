//! A client whose clock is 10 minutes behind or ahead of the server's (issue 7 §1), on both
//! storages:
//!
//! - **in memory**: the storage's clock is the server's (the system clock); the client's clock
//!   is that skewed, and only code that reads it directly sees the skew;
//! - **Convex** on the local server: the client's local clock is injected, skewed, with
//!   `ConvexTaskExecutionsStorage::with_local_clock`; the storage estimates the server's clock
//!   from the responses it gets, and `now_millis` gives that estimate.
//!
//! Each scenario runs the way the engine does it, computing every absolute time it writes or
//! bounds with from [`TaskExecutionsStorage::now_millis`] ([`Time::Storage`]), and the naive
//! way, from the skewed local clock ([`Time::Local`]), which shows what the server-time rules
//! (spec §A) protect on their own and what they cannot:
//!
//! | what | engine (`now_millis`), ±10 min | naive, client behind | naive, client ahead |
//! | --- | --- | --- | --- |
//! | a ready execution claimable | at once | not for 10 min: its own bound (`startAtLessThan`) is 10 min in the past; `startAt` itself is raised to now (`at_least_now`) | not for 10 min: `startAt` 10 min ahead is kept |
//! | an expired lease recovered | on time (the lease is `now + timeoutMs` on the server's clock) | 10 min late: its own bound is in the past | on time, not early: the bound is lowered to now (`at_most_now`) |
//! | a finished execution closable | at once | at once: `updatedAt` is the server's now (`now` rule) | at once: same |
//! | `updatedAt < now` selections | as with no skew | as with no skew (`now` rule) | as with no skew |
//! | a closing lease (`closeExpiresAt = now + 60 s`) | 60 s | 1 s: written in the past, it gets the grace (`expiry`), so it expires early rather than at once | 10 min + 60 s: kept |
//!
//! "At once" and "on time" are within the precision of `now_millis`: exact in memory; for
//! Convex, the estimate's uncertainty after its first response (about ±0.5 s from one `Date`
//! header, narrowing with more responses). Measured on the local server: a ready execution
//! claimed 0.2–0.3 s after its insert when the estimate was that much ahead (its `startAt`,
//! written on the estimate, is kept until the server's clock reaches it); leases recovered
//! 10–60 ms after they expired; finished executions closed within 35 ms.
//!
//! So the rules make every `updatedAt < now` selection and the claim's lease immune to the
//! client's clock, stop a client ahead from claiming or expiring early, and stop a client
//! behind from writing work that looks old or leases that expire the moment they are written;
//! the rest (the bounds and schedules a client computes) is why the engine reads `now_millis`.
//!
//! ```sh
//! cargo test --test clock_skew -- --nocapture   # prints what each scenario observed
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use durable_execution_storage_convex::storage::{
    now_millis, Clock, GetByIdRequest, NewTaskExecution, ParentTaskExecutionSummary,
    TaskExecutionStorageUpdate, UpdateAndDecrementParentActiveChildrenCountRequest,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use durable_execution_storage_convex::task_executions::{
    CloseStatus, ErrorType, ExecutionError, OnChildrenFinishedProcessingStatus, RetryOptions,
    TaskExecutionStatus, TaskExecutionSummary,
};
use durable_execution_storage_convex::{
    ConvexStorageOptions, InMemoryTaskExecutionsStorage, TaskExecutionStorageValue,
    TaskExecutionsStorage,
};

/// The skew of the tests: 10 minutes.
const SKEW_MS: i64 = 10 * 60 * 1_000;

/// The lease of a claimed execution in the recovery scenario.
const LEASE_MS: u64 = 1_000;

/// The closing lease the closer writes.
const CLOSE_LEASE_MS: u64 = 60_000;

/// How long a scenario waits for something that should happen at once, or on time, before it
/// concludes that it does not (a skew would delay it by 10 minutes, far beyond).
const PATIENCE: Duration = Duration::from_secs(3);

/// Between two polls of a scenario.
const POLL: Duration = Duration::from_millis(25);

/// Where the engine-like code reads the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Time {
    /// `storage.now_millis()`: what the engine does.
    Storage,
    /// The client's own (skewed) clock: what code that ignores `now_millis` would do.
    Local,
}

/// One storage seen by one client whose clock is `skew_ms` off the server's.
struct World {
    name: String,
    storage: Arc<dyn TaskExecutionsStorage>,
    /// The client's clock.
    local: Clock,
    /// How far `now_millis` may be from the server's clock (0 in memory, where it is the
    /// server's clock).
    tolerance_ms: u64,
    /// What keeps the Convex database of the test (a real deployment's lock).
    _deployment: Option<support::TestDeployment>,
}

/// The system clock `skew_ms` off (ahead when positive).
fn skewed(skew_ms: i64) -> Clock {
    Arc::new(move || now_millis().saturating_add_signed(skew_ms))
}

impl World {
    /// The in-memory storage: its clock (the server's) is the system clock.
    fn memory(skew_ms: i64) -> Self {
        let storage = InMemoryTaskExecutionsStorage::new(ConvexStorageOptions::default())
            .expect("valid options");
        Self {
            name: format!("memory, client {}", describe(skew_ms)),
            storage: Arc::new(storage),
            local: skewed(skew_ms),
            tolerance_ms: 0,
            _deployment: None,
        }
    }

    /// The Convex storage on a fresh database, its local clock skewed. Before its first
    /// response it knows nothing of the server's clock (`now_millis` is the local clock): one
    /// call first, as any engine makes. The tolerance is the estimate's uncertainty then.
    async fn convex(skew_ms: i64) -> Self {
        let name = format!("clock-skew-{}", describe(skew_ms).replace(' ', "-"));
        let deployment = support::TestDeployment::new(&name).await;
        let storage = deployment
            .storage(ConvexStorageOptions::default())
            .with_local_clock(skewed(skew_ms));
        storage
            .get_many_by_id(vec![by_id("warm-up")])
            .await
            .expect("a first call");
        let estimate = storage
            .clock_estimate()
            .expect("an estimate after the first response");
        Self {
            name: format!("convex, client {}", describe(skew_ms)),
            storage: Arc::new(storage),
            local: skewed(skew_ms),
            tolerance_ms: estimate.uncertainty_ms + 50,
            _deployment: Some(deployment),
        }
    }

    fn now(&self, time: Time) -> u64 {
        match time {
            Time::Storage => self.storage.now_millis(),
            Time::Local => (self.local)(),
        }
    }

    async fn get(&self, id: &str) -> TaskExecutionStorageValue {
        self.storage
            .get_many_by_id(vec![by_id(id)])
            .await
            .expect("getManyById")
            .pop()
            .flatten()
            .unwrap_or_else(|| panic!("{}: {id} is stored", self.name))
    }
}

/// A request for execution `id`, unfiltered.
fn by_id(id: &str) -> GetByIdRequest {
    GetByIdRequest {
        execution_id: id.to_owned(),
        filters: None,
    }
}

fn describe(skew_ms: i64) -> String {
    match skew_ms {
        0 => "on time".to_owned(),
        s if s < 0 => format!("{} min behind", -s / 60_000),
        s => format!("{} min ahead", s / 60_000),
    }
}

fn new_execution(id: &str, now: u64, parent: Option<&str>) -> TaskExecutionStorageValue {
    TaskExecutionStorageValue::new_execution(
        NewTaskExecution {
            root: parent.map(summary),
            parent: parent.map(|parent| ParentTaskExecutionSummary {
                task_id: "task".to_owned(),
                execution_id: parent.to_owned(),
                index_in_parent_children: 0,
                is_only_child_of_parent: false,
                is_finalize_of_parent: false,
            }),
            task_id: "task".to_owned(),
            execution_id: id.to_owned(),
            is_sleeping_task: false,
            sleeping_task_unique_id: None,
            retry_options: RetryOptions {
                max_attempts: 1,
                base_delay_ms: None,
                max_delay_ms: None,
                delay_multiplier: None,
            },
            sleep_ms_before_run: 0,
            timeout_ms: LEASE_MS,
            are_children_sequential: false,
            input: String::new(),
        },
        now,
    )
}

fn summary(id: &str) -> TaskExecutionSummary {
    TaskExecutionSummary {
        task_id: "task".to_owned(),
        execution_id: id.to_owned(),
    }
}

/// Claims ready executions the way the engine does, at `time`.
async fn claim(world: &World, time: Time, executor: &str) -> Vec<TaskExecutionStorageValue> {
    let now = world.now(time);
    world
        .storage
        .update_by_status_and_start_at_less_than_and_return(
            UpdateByStatusAndStartAtLessThanRequest {
                status: TaskExecutionStatus::Ready,
                start_at_less_than: now,
                update: TaskExecutionStorageUpdate {
                    status: Some(TaskExecutionStatus::Running),
                    executor_id: Some(executor.to_owned()),
                    started_at: Some(now),
                    updated_at: now,
                    ..TaskExecutionStorageUpdate::default()
                },
                update_expires_at_with_started_at: now,
                limit: 10,
            },
        )
        .await
        .expect("claim")
}

/// Polls `attempt` until it gives something or [`PATIENCE`] runs out; how long it took.
/// The first attempt comes 2 ms after the write before it, once the server's clock has left
/// that write's millisecond (`updatedAt < now` and `startAt < now` are strict).
async fn within_patience<T>(mut attempt: impl AsyncFnMut() -> Option<T>) -> Option<(T, Duration)> {
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(2)).await;
    loop {
        if let Some(found) = attempt().await {
            return Some((found, started.elapsed()));
        }
        if started.elapsed() > PATIENCE {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A ready execution the engine has just created: how long until a claim (at `time`) gets it.
async fn ready_execution_claimed_after(world: &World, time: Time) -> Option<Duration> {
    let value = new_execution("ready", world.now(time), None);
    world
        .storage
        .insert_many(vec![value])
        .await
        .expect("insert");
    let claimed = within_patience(async || {
        let claimed = claim(world, time, "executor").await;
        claimed
            .iter()
            .any(|v| v.execution_id == "ready")
            .then_some(())
    })
    .await;
    let delay = claimed.map(|((), delay)| delay);
    println!(
        "{}, time from {time:?}: claimed after {delay:?}",
        world.name
    );
    delay
}

/// A claimed execution whose lease runs out, swept by the expiry sweep at `time`: by how
/// many ms (on the server's clock) after its `expiresAt` the sweep recovered it.
async fn lease_recovered_late_by(world: &World, time: Time) -> Option<i64> {
    world
        .storage
        .insert_many(vec![new_execution(
            "leased",
            world.now(Time::Storage),
            None,
        )])
        .await
        .expect("insert");
    let (claimed, _) = within_patience(async || {
        claim(world, Time::Storage, "executor")
            .await
            .into_iter()
            .next()
    })
    .await
    .unwrap_or_else(|| panic!("{}: the execution is claimed", world.name));
    // The lease is measured on the server's clock: it starts at the `now_millis` the claim
    // sent, never before the server's now (the claim's `updatedAt`), so it is never shorter
    // than LEASE_MS there and at most the estimate's uncertainty longer.
    let expires_at = claimed.expires_at.expect("a lease");
    let lease = expires_at - claimed.updated_at;
    assert!(
        (LEASE_MS..=LEASE_MS + world.tolerance_ms).contains(&lease),
        "{}: a lease of {lease} ms on the server's clock, expected {LEASE_MS} ms (+ up to {} ms)",
        world.name,
        world.tolerance_ms
    );
    let recovered = within_patience(async || {
        let now = world.now(time);
        let count = world
            .storage
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(
                UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                    status: TaskExecutionStatus::Running,
                    is_sleeping_task: false,
                    expires_at_less_than: now,
                    update: TaskExecutionStorageUpdate {
                        status: Some(TaskExecutionStatus::TimedOut),
                        error: Some(ExecutionError {
                            error_type: ErrorType::TimedOut,
                            message: "timed out".to_owned(),
                            is_retryable: false,
                            is_internal: false,
                        }),
                        updated_at: now,
                        ..TaskExecutionStorageUpdate::default()
                    },
                    limit: 10,
                },
            )
            .await
            .expect("sweep");
        (count > 0).then_some(())
    })
    .await;
    // Patience counts from the claim: the lease itself takes a second of it.
    let late_by = match recovered {
        Some(((), _)) => {
            let swept = world.get("leased").await;
            let late_by = i64::try_from(swept.updated_at).unwrap_or(i64::MAX)
                - i64::try_from(expires_at).unwrap_or(i64::MAX);
            Some(late_by)
        }
        None => None,
    };
    println!(
        "{}, time from {time:?}: lease recovered {late_by:?} ms after it expired",
        world.name
    );
    late_by
}

/// What closing a finished execution observed.
#[derive(Debug)]
struct Closing {
    /// How long after the engine finished it a closer got it.
    closable_after: Option<Duration>,
    /// The closing lease stored, from the closer's `now` (server's clock).
    close_lease_ms: Option<i64>,
}

/// The engine finishes an execution (at `time`), then a closer (at `time`) closes it.
async fn finished_execution_closing(world: &World, time: Time) -> Closing {
    let mut running = new_execution("done", world.now(Time::Storage), None);
    running.status = TaskExecutionStatus::Running;
    world
        .storage
        .insert_many(vec![running])
        .await
        .expect("insert");
    let now = world.now(time);
    world
        .storage
        .update_many_by_id(vec![UpdateByIdRequest {
            execution_id: "done".to_owned(),
            filters: None,
            update: TaskExecutionStorageUpdate {
                status: Some(TaskExecutionStatus::Completed),
                is_finished: Some(true),
                output: Some("output".to_owned()),
                finished_at: Some(now),
                close_status: Some(CloseStatus::Ready),
                updated_at: now,
                ..TaskExecutionStorageUpdate::default()
            },
        }])
        .await
        .expect("finish");
    let closed = within_patience(async || {
        let now = world.now(time);
        world
            .storage
            .update_by_close_status_and_return(UpdateByCloseStatusRequest {
                close_status: CloseStatus::Ready,
                update: TaskExecutionStorageUpdate {
                    close_status: Some(CloseStatus::Closing),
                    close_expires_at: Some(now + CLOSE_LEASE_MS),
                    updated_at: now,
                    ..TaskExecutionStorageUpdate::default()
                },
                limit: 10,
            })
            .await
            .expect("close")
            .pop()
    })
    .await;
    let closing = Closing {
        closable_after: closed.as_ref().map(|(_, after)| *after),
        close_lease_ms: closed.map(|(value, _)| {
            let expires = value.close_expires_at.unwrap_or(0);
            i64::try_from(expires).unwrap_or(i64::MAX)
                - i64::try_from(value.updated_at).unwrap_or(i64::MAX)
        }),
    };
    println!("{}, time from {time:?}: {closing:?}", world.name);
    closing
}

/// Every `updatedAt < now` operation once, after the writes the engine makes (at `time`):
/// what each selected, by execution id or count.
async fn updated_at_selections(world: &World, time: Time) -> Vec<String> {
    let s = &world.storage;
    let now = || world.now(time);
    let mut parent = new_execution("parent", now(), None);
    parent.status = TaskExecutionStatus::Running;
    let mut cancelled = new_execution("cancelled", now(), None);
    cancelled.status = TaskExecutionStatus::Cancelled;
    cancelled.executor_id = Some("executor".to_owned());
    cancelled.needs_promise_cancellation = true;
    s.insert_many(vec![parent, cancelled])
        .await
        .expect("insert");
    let at = now();
    s.update_many_by_id_and_insert_children_if_updated(vec![
        UpdateByIdAndInsertChildrenIfUpdatedRequest {
            execution_id: "parent".to_owned(),
            filters: None,
            update: TaskExecutionStorageUpdate {
                status: Some(TaskExecutionStatus::WaitingForChildren),
                waiting_for_children_started_at: Some(at),
                children: Some(vec![summary("child-0"), summary("child-1")]),
                active_children_count: Some(2),
                updated_at: at,
                ..TaskExecutionStorageUpdate::default()
            },
            children_task_executions_to_insert_if_any_updated: vec![
                new_execution("child-0", at, Some("parent")),
                new_execution("child-1", at, Some("parent")),
            ],
        },
    ])
    .await
    .expect("children");
    let at = now();
    let finish = |id: &str| UpdateByIdRequest {
        execution_id: id.to_owned(),
        filters: None,
        update: TaskExecutionStorageUpdate {
            status: Some(TaskExecutionStatus::Completed),
            is_finished: Some(true),
            finished_at: Some(at),
            close_status: Some(CloseStatus::Ready),
            updated_at: at,
            ..TaskExecutionStorageUpdate::default()
        },
    };
    s.update_many_by_id(vec![finish("child-0"), finish("child-1")])
        .await
        .expect("finish");
    // What the engine's pollers then do, one after the other, each a moment later.
    let mut seen = Vec::new();
    let ids = |values: Vec<TaskExecutionStorageValue>| {
        values
            .into_iter()
            .map(|v| v.execution_id)
            .collect::<Vec<_>>()
            .join(",")
    };
    tokio::time::sleep(Duration::from_millis(2)).await;
    let at = now();
    let decremented = s
        .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            UpdateAndDecrementParentActiveChildrenCountRequest {
                is_finished: true,
                close_status: CloseStatus::Ready,
                update: TaskExecutionStorageUpdate {
                    close_status: Some(CloseStatus::Closed),
                    closed_at: Some(at),
                    updated_at: at,
                    ..TaskExecutionStorageUpdate::default()
                },
                limit: 10,
            },
        )
        .await
        .expect("decrement");
    seen.push(format!("decrement: {decremented}"));
    tokio::time::sleep(Duration::from_millis(2)).await;
    let at = now();
    let picked = s
        .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
            UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
                status: TaskExecutionStatus::WaitingForChildren,
                on_children_finished_processing_status: OnChildrenFinishedProcessingStatus::Idle,
                update: TaskExecutionStorageUpdate {
                    on_children_finished_processing_status: Some(
                        OnChildrenFinishedProcessingStatus::Processing,
                    ),
                    on_children_finished_processing_expires_at: Some(at + CLOSE_LEASE_MS),
                    updated_at: at,
                    ..TaskExecutionStorageUpdate::default()
                },
                limit: 10,
            },
        )
        .await
        .expect("on children finished");
    seen.push(format!("on children finished: {}", ids(picked)));
    let at = now();
    let cancellations = s
        .update_by_executor_id_and_needs_promise_cancellation_and_return(
            UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
                executor_id: "executor".to_owned(),
                needs_promise_cancellation: true,
                update: TaskExecutionStorageUpdate {
                    needs_promise_cancellation: Some(false),
                    updated_at: at,
                    ..TaskExecutionStorageUpdate::default()
                },
                limit: 10,
            },
        )
        .await
        .expect("promise cancellation");
    seen.push(format!("promise cancellation: {}", ids(cancellations)));
    let acc = world.get("parent").await.active_children_count;
    seen.push(format!("parent acc: {acc}"));
    println!("{}, time from {time:?}: {seen:?}", world.name);
    seen
}

// ---------------------------------------------------------------------------------------------
// The tests, per storage.

/// How late a lease may be recovered: one poll, and how far `now_millis` may be from the
/// server's clock.
fn on_time(world: &World) -> i64 {
    let poll = i64::try_from(POLL.as_millis()).unwrap_or(i64::MAX);
    poll * 4 + i64::try_from(world.tolerance_ms).unwrap_or(i64::MAX)
}

/// How soon "at once" is.
fn at_once(world: &World) -> Duration {
    POLL * 4 + Duration::from_millis(world.tolerance_ms)
}

async fn ready_claimable_at_once(world: impl AsyncFn(i64) -> World) {
    for skew in [-SKEW_MS, 0, SKEW_MS] {
        let w = world(skew).await;
        let delay = ready_execution_claimed_after(&w, Time::Storage).await;
        assert!(
            delay.is_some_and(|d| d <= at_once(&w)),
            "{}: claimed after {delay:?}",
            w.name
        );
    }
}

async fn ready_not_claimable_by_naive_skewed_code(world: impl AsyncFn(i64) -> World) {
    for skew in [-SKEW_MS, SKEW_MS] {
        let w = world(skew).await;
        let delay = ready_execution_claimed_after(&w, Time::Local).await;
        assert_eq!(
            delay, None,
            "{}: a skewed bound or startAt delays it",
            w.name
        );
    }
    let w = world(0).await;
    let delay = ready_execution_claimed_after(&w, Time::Local).await;
    assert!(
        delay.is_some_and(|d| d <= at_once(&w)),
        "{}: {delay:?}",
        w.name
    );
}

async fn lease_recovered_on_time(world: impl AsyncFn(i64) -> World) {
    for skew in [-SKEW_MS, 0, SKEW_MS] {
        let w = world(skew).await;
        let late_by = lease_recovered_late_by(&w, Time::Storage).await;
        assert!(
            late_by.is_some_and(|late| late > 0 && late <= on_time(&w)),
            "{}: recovered {late_by:?} ms after expiry",
            w.name
        );
    }
}

async fn lease_with_naive_skewed_bounds(world: impl AsyncFn(i64) -> World) {
    // Ahead: its bound is lowered to the server's now: on time, never early.
    let w = world(SKEW_MS).await;
    let late_by = lease_recovered_late_by(&w, Time::Local).await;
    assert!(
        late_by.is_some_and(|late| late > 0 && late <= on_time(&w)),
        "{}: recovered {late_by:?} ms after expiry",
        w.name
    );
    // Behind: its bound is 10 minutes in the past: not recovered in time. (The first world
    // goes first: on a real deployment it holds the one database.)
    drop(w);
    let w = world(-SKEW_MS).await;
    let late_by = lease_recovered_late_by(&w, Time::Local).await;
    assert_eq!(late_by, None, "{}: a bound 10 minutes behind", w.name);
}

async fn finished_closable_at_once(world: impl AsyncFn(i64) -> World) {
    for time in [Time::Storage, Time::Local] {
        for skew in [-SKEW_MS, 0, SKEW_MS] {
            let w = world(skew).await;
            let closing = finished_execution_closing(&w, time).await;
            assert!(
                closing.closable_after.is_some_and(|d| d <= at_once(&w)),
                "{}, time from {time:?}: {closing:?}",
                w.name
            );
            let tolerance = i64::try_from(w.tolerance_ms).unwrap_or(i64::MAX);
            let lease = closing.close_lease_ms.unwrap_or(0);
            let lease_ms = i64::try_from(CLOSE_LEASE_MS).unwrap_or(i64::MAX);
            match (time, skew.signum()) {
                // On the server's clock (or a client on time): the lease asked for.
                (Time::Storage, _) | (Time::Local, 0) => assert!(
                    (lease - lease_ms).abs() <= tolerance + 50,
                    "{}: closing lease {lease} ms",
                    w.name
                ),
                // Written 10 minutes in the past: the grace, 1 s.
                (Time::Local, -1) => assert_eq!(lease, 1_000, "{}: closing lease", w.name),
                // Written 10 minutes ahead: kept, 10 minutes too long.
                _ => assert!(
                    (lease - lease_ms - SKEW_MS).abs() <= 50,
                    "{}: closing lease {lease} ms",
                    w.name
                ),
            }
        }
    }
}

async fn updated_at_selections_as_without_skew(world: impl AsyncFn(i64) -> World) {
    let expected = updated_at_selections(&world(0).await, Time::Storage).await;
    assert_eq!(
        expected,
        vec![
            "decrement: 2",
            "on children finished: parent",
            "promise cancellation: cancelled",
            "parent acc: 0",
        ],
        "with no skew"
    );
    for time in [Time::Storage, Time::Local] {
        for skew in [-SKEW_MS, SKEW_MS] {
            let w = world(skew).await;
            assert_eq!(
                updated_at_selections(&w, time).await,
                expected,
                "{}, time from {time:?}",
                w.name
            );
        }
    }
}

async fn memory(skew_ms: i64) -> World {
    World::memory(skew_ms)
}

mod memory {
    use super::*;

    #[tokio::test]
    async fn a_ready_execution_is_claimable_at_once() {
        ready_claimable_at_once(memory).await;
    }

    #[tokio::test]
    async fn naive_skewed_code_delays_a_ready_execution_by_the_skew() {
        ready_not_claimable_by_naive_skewed_code(memory).await;
    }

    #[tokio::test]
    async fn an_expired_lease_is_recovered_on_time() {
        lease_recovered_on_time(memory).await;
    }

    #[tokio::test]
    async fn naive_bounds_recover_on_time_when_ahead_and_late_when_behind() {
        lease_with_naive_skewed_bounds(memory).await;
    }

    #[tokio::test]
    async fn a_finished_execution_is_closable_at_once() {
        finished_closable_at_once(memory).await;
    }

    #[tokio::test]
    async fn updated_at_conditions_select_as_without_skew() {
        updated_at_selections_as_without_skew(memory).await;
    }
}

mod convex {
    use super::*;

    #[tokio::test]
    async fn a_ready_execution_is_claimable_at_once() {
        ready_claimable_at_once(World::convex).await;
    }

    #[tokio::test]
    async fn naive_skewed_code_delays_a_ready_execution_by_the_skew() {
        ready_not_claimable_by_naive_skewed_code(World::convex).await;
    }

    #[tokio::test]
    async fn an_expired_lease_is_recovered_on_time() {
        lease_recovered_on_time(World::convex).await;
    }

    #[tokio::test]
    async fn naive_bounds_recover_on_time_when_ahead_and_late_when_behind() {
        lease_with_naive_skewed_bounds(World::convex).await;
    }

    #[tokio::test]
    async fn a_finished_execution_is_closable_at_once() {
        finished_closable_at_once(World::convex).await;
    }

    #[tokio::test]
    async fn updated_at_conditions_select_as_without_skew() {
        updated_at_selections_as_without_skew(World::convex).await;
    }

    /// Before its first response the storage knows nothing of the server's clock: its
    /// `now_millis` is the local clock, skew included. One response later it is the server's
    /// clock within the estimate's uncertainty (here the local server, on this machine's
    /// clock, so the system clock is the server's).
    #[tokio::test]
    async fn now_millis_is_the_server_clock_from_the_first_response() {
        for skew in [-SKEW_MS, SKEW_MS] {
            let deployment = support::TestDeployment::new("clock-skew-estimate").await;
            let storage = deployment
                .storage(ConvexStorageOptions::default())
                .with_local_clock(skewed(skew));
            let before = storage.now_millis().abs_diff(now_millis());
            assert!(
                before.abs_diff(SKEW_MS.unsigned_abs()) <= 50,
                "before any response: off by {before} ms"
            );
            storage
                .get_many_by_id(vec![by_id("any")])
                .await
                .expect("a call");
            let estimate = storage.clock_estimate().expect("an estimate");
            let off = storage.now_millis().abs_diff(now_millis());
            println!(
                "client {}: after one response, {estimate:?}; off by {off} ms",
                describe(skew)
            );
            assert!(estimate.uncertainty_ms <= 1_000, "{estimate:?}");
            assert!(
                off <= estimate.uncertainty_ms + 50,
                "off by {off} ms: {estimate:?}"
            );
        }
    }
}
