//! The conformance suite and the concurrency scenarios against the in-memory storage, plus
//! what only the in-memory storage can show (its injectable clock, its introspection).
//!
//! The suite runs three times: on the system clock, and with the storage's clock (the server
//! it plays) 10 minutes ahead of and behind this process's: the cases never use the client's
//! clock, so skew changes nothing. The server-time rules are then checked to the millisecond
//! on a pinned clock, where the suite (whose storages' clocks move on their own) cannot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use durable_execution_storage_convex::conformance::{
    self, concurrency, InMemoryStorageFactory, OPERATIONS,
};
use durable_execution_storage_convex::storage::{
    Clock, GetByIdRequest, NewTaskExecution, TaskExecutionStorageUpdate,
    UpdateAndDecrementParentActiveChildrenCountRequest, UpdateByCloseExpiresAtLessThanRequest,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use durable_execution_storage_convex::task_executions::{
    CloseStatus, OnChildrenFinishedProcessingStatus, RetryOptions, TaskExecutionStatus,
};
use durable_execution_storage_convex::{
    ConvexStorageOptions, InMemoryTaskExecutionsStorage, StorageError, TaskExecutionStorageValue,
    TaskExecutionsStorage,
};

#[tokio::test]
async fn the_in_memory_storage_passes_every_conformance_case() {
    let report = conformance::run_all(&InMemoryStorageFactory::default()).await;
    println!("{report}");
    let per_operation = report.per_operation();
    for operation in OPERATIONS {
        let (run, _) = per_operation.get(operation).copied().unwrap_or_default();
        assert!(run >= 3, "{operation} has only {run} cases");
    }
    assert_eq!(per_operation.len(), OPERATIONS.len(), "{per_operation:?}");
    report.assert_all_passed();
}

/// The storage's clock `skew_ms` ahead of the system clock (behind when negative).
fn skewed_clock(skew_ms: i64) -> Clock {
    Arc::new(move || {
        let now = durable_execution_storage_convex::storage::now_millis();
        now.saturating_add_signed(skew_ms)
    })
}

const TEN_MINUTES_MS: i64 = 10 * 60 * 1_000;

#[tokio::test]
async fn every_case_passes_with_the_storage_clock_ten_minutes_ahead_of_the_client() {
    let factory = InMemoryStorageFactory::with_clock(skewed_clock(TEN_MINUTES_MS));
    let report = conformance::run_all(&factory).await;
    println!("server clock +10 min: {report}");
    report.assert_all_passed();
}

#[tokio::test]
async fn every_case_passes_with_the_storage_clock_ten_minutes_behind_the_client() {
    let factory = InMemoryStorageFactory::with_clock(skewed_clock(-TEN_MINUTES_MS));
    let report = conformance::run_all(&factory).await;
    println!("server clock -10 min: {report}");
    report.assert_all_passed();
}

#[tokio::test]
async fn case_names_are_unique_and_name_their_operation() {
    let cases = conformance::cases();
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
    for case in &cases {
        assert!(OPERATIONS.contains(&case.operation()), "{}", case.name);
    }
}

#[tokio::test]
async fn a_per_operation_function_runs_only_its_cases() {
    let report = conformance::update_many_by_id(&InMemoryStorageFactory::default()).await;
    assert!(!report.outcomes.is_empty());
    assert!(report
        .outcomes
        .iter()
        .all(|o| o.name.starts_with("updateManyById/")));
    report.assert_all_passed();
}

/// Issue 4 §4: 8 executors claiming from 2,000 ready executions over 4 shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_claimers_claim_each_execution_exactly_once() {
    let report = concurrency::claims_exactly_once(&InMemoryStorageFactory::default(), 2_000, 8, 4)
        .await
        .expect("scenario");
    println!("{report:?}");
    assert!(report.is_exact(), "{report:?}");
    assert_eq!(report.per_claimer.iter().sum::<usize>(), 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_closers_leave_every_parent_counter_exact() {
    let report =
        concurrency::parent_counters_exact(&InMemoryStorageFactory::default(), 50, 12, 8, 4)
            .await
            .expect("scenario");
    println!("{report:?}");
    assert!(report.is_exact(), "{report:?}");
}

fn fixed_clock(now: &Arc<AtomicU64>) -> Clock {
    let now = Arc::clone(now);
    Arc::new(move || now.load(Ordering::SeqCst))
}

fn execution(id: &str, now: u64) -> TaskExecutionStorageValue {
    TaskExecutionStorageValue::new_execution(
        NewTaskExecution {
            root: None,
            parent: None,
            task_id: "task".into(),
            execution_id: id.into(),
            is_sleeping_task: false,
            sleeping_task_unique_id: None,
            retry_options: RetryOptions {
                max_attempts: 0,
                base_delay_ms: None,
                max_delay_ms: None,
                delay_multiplier: None,
            },
            sleep_ms_before_run: 0,
            timeout_ms: 1_000,
            are_children_sequential: false,
            input: String::new(),
        },
        now,
    )
}

/// A storage whose clock reads `clock`, one shard.
fn pinned(clock: &Arc<AtomicU64>) -> InMemoryTaskExecutionsStorage {
    InMemoryTaskExecutionsStorage::with_clock(ConvexStorageOptions::default(), fixed_clock(clock))
        .expect("options")
}

async fn stored(storage: &InMemoryTaskExecutionsStorage, id: &str) -> TaskExecutionStorageValue {
    storage
        .get_many_by_id(vec![GetByIdRequest {
            execution_id: id.into(),
            filters: None,
        }])
        .await
        .expect("get")
        .pop()
        .flatten()
        .unwrap_or_else(|| panic!("{id} is stored"))
}

const GRACE: u64 = InMemoryTaskExecutionsStorage::EXPIRY_GRACE_MS;

/// Insert at 50,000: every `now` field is 50,000; `startAt` and the expiry times are kept
/// from 50,000 on (equal included), raised (to 50,000; to 51,000) below.
#[tokio::test]
async fn insert_applies_the_server_time_rules_to_the_millisecond() {
    let now = Arc::new(AtomicU64::new(50_000));
    let storage = pinned(&now);
    let mut sent = Vec::new();
    for (id, at) in [("before", 49_999), ("at", 50_000), ("after", 50_001)] {
        let mut value = execution(id, at);
        value.created_at = at;
        value.updated_at = 4_000_000_000_000;
        value.started_at = Some(at);
        value.finished_at = Some(1);
        value.waiting_for_children_started_at = Some(at);
        value.waiting_for_finalize_started_at = Some(at);
        value.on_children_finished_processing_finished_at = Some(at);
        value.closed_at = Some(4_000_000_000_000);
        value.start_at = at;
        value.expires_at = Some(at);
        value.on_children_finished_processing_expires_at = Some(at);
        value.close_expires_at = Some(at);
        sent.push(value);
    }
    storage.insert_many(sent.clone()).await.expect("insert");
    for value in sent {
        let at = value.start_at;
        let mut expected = value.clone();
        expected.created_at = 50_000;
        expected.updated_at = 50_000;
        for stamp in [
            &mut expected.started_at,
            &mut expected.finished_at,
            &mut expected.waiting_for_children_started_at,
            &mut expected.waiting_for_finalize_started_at,
            &mut expected.on_children_finished_processing_finished_at,
            &mut expected.closed_at,
        ] {
            *stamp = Some(50_000);
        }
        expected.start_at = at.max(50_000);
        let expiry = if at >= 50_000 { at } else { 50_000 + GRACE };
        expected.expires_at = Some(expiry);
        expected.on_children_finished_processing_expires_at = Some(expiry);
        expected.close_expires_at = Some(expiry);
        assert_eq!(stored(&storage, &value.execution_id).await, expected);
    }
}

/// A patch at 60,000 applies the same rules to the fields it sets, and only to those.
#[tokio::test]
async fn a_patch_applies_the_server_time_rules_to_the_fields_it_sets() {
    let now = Arc::new(AtomicU64::new(50_000));
    let storage = pinned(&now);
    let mut value = execution("a", 50_000);
    value.expires_at = Some(70_000);
    value.close_expires_at = Some(80_000);
    storage.insert_many(vec![value]).await.expect("insert");
    now.store(60_000, Ordering::SeqCst);
    let update = TaskExecutionStorageUpdate {
        start_at: Some(59_999),
        started_at: Some(1),
        finished_at: Some(4_000_000_000_000),
        expires_at: Some(59_999),
        on_children_finished_processing_expires_at: Some(60_000),
        closed_at: Some(7),
        updated_at: 1,
        ..TaskExecutionStorageUpdate::default()
    };
    storage
        .update_many_by_id(vec![UpdateByIdRequest {
            execution_id: "a".into(),
            filters: None,
            update,
        }])
        .await
        .expect("update");
    let a = stored(&storage, "a").await;
    assert_eq!(
        (a.created_at, a.updated_at, a.start_at),
        (50_000, 60_000, 60_000)
    );
    assert_eq!(
        (a.started_at, a.finished_at, a.closed_at),
        (Some(60_000), Some(60_000), Some(60_000))
    );
    assert_eq!(a.expires_at, Some(60_000 + GRACE));
    assert_eq!(a.on_children_finished_processing_expires_at, Some(60_000));
    // Not in the update: kept, although earlier than now.
    assert_eq!(a.close_expires_at, Some(80_000));
    assert_eq!(a.waiting_for_children_started_at, None);
}

/// The claim's bound is `min(bound, now)`, strict; its lease is `now + timeoutMs` when
/// `updateExpiresAtWithStartedAt` is in the past (here 1).
#[tokio::test]
async fn the_claim_is_bounded_by_now_and_leases_from_now() {
    let now = Arc::new(AtomicU64::new(50_000));
    let storage = pinned(&now);
    let mut scheduled = execution("scheduled", 50_000);
    scheduled.start_at = 50_005;
    storage
        .insert_many(vec![execution("due", 1), scheduled])
        .await
        .expect("insert");
    let claim = |bound: u64| UpdateByStatusAndStartAtLessThanRequest {
        status: TaskExecutionStatus::Ready,
        start_at_less_than: bound,
        update: TaskExecutionStorageUpdate {
            status: Some(TaskExecutionStatus::Running),
            ..TaskExecutionStorageUpdate::default()
        },
        update_expires_at_with_started_at: 1,
        limit: 10,
    };
    let ids = |values: Vec<TaskExecutionStorageValue>| {
        values
            .into_iter()
            .map(|v| (v.execution_id, v.expires_at))
            .collect::<Vec<_>>()
    };
    let claim_at = |at: u64, bound: u64| {
        now.store(at, Ordering::SeqCst);
        storage.update_by_status_and_start_at_less_than_and_return(claim(bound))
    };
    // "due" was sent long ago: its startAt is the insert's now, 50,000, not before now.
    assert!(claim_at(50_000, u64::MAX).await.expect("claim").is_empty());
    assert_eq!(
        ids(claim_at(50_001, u64::MAX).await.expect("claim")),
        vec![("due".to_owned(), Some(50_001 + 1_000))]
    );
    // A bound far ahead is lowered to now: "scheduled" is not due before 50,005.
    assert!(claim_at(50_005, u64::MAX).await.expect("claim").is_empty());
    assert!(claim_at(50_009, 50_005).await.expect("claim").is_empty());
    assert_eq!(
        ids(claim_at(50_006, u64::MAX).await.expect("claim")),
        vec![("scheduled".to_owned(), Some(50_006 + 1_000))]
    );
}

/// The three sweeps: bound `min(bound, now)`, strict. An expiry written at `now` (kept) is
/// expired from the next millisecond; one written before `now` only after the grace.
#[tokio::test]
async fn the_expiry_sweeps_are_bounded_by_now() {
    let now = Arc::new(AtomicU64::new(50_000));
    let storage = pinned(&now);
    let mut on_time = execution("on-time", 1);
    on_time.status = TaskExecutionStatus::Running;
    on_time.expires_at = Some(50_000);
    on_time.on_children_finished_processing_expires_at = Some(50_000);
    on_time.close_expires_at = Some(50_000);
    let mut late = on_time.clone();
    late.execution_id = "late".into();
    late.expires_at = Some(49_999);
    late.on_children_finished_processing_expires_at = Some(1);
    late.close_expires_at = Some(0);
    storage
        .insert_many(vec![on_time, late])
        .await
        .expect("insert");
    let touch = TaskExecutionStorageUpdate::default;
    for (at, expected) in [
        (50_000, 0),
        (50_001, 1),
        (50_000 + GRACE, 1),
        (50_001 + GRACE, 2),
    ] {
        now.store(at, Ordering::SeqCst);
        let expired = storage
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(
                UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                    status: TaskExecutionStatus::Running,
                    is_sleeping_task: false,
                    expires_at_less_than: u64::MAX,
                    update: touch(),
                    limit: 10,
                },
            )
            .await
            .expect("sweep");
        let ocfp = storage
            .update_by_on_children_finished_processing_expires_at_less_than(
                UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest {
                    on_children_finished_processing_expires_at_less_than: u64::MAX,
                    update: touch(),
                    limit: 10,
                },
            )
            .await
            .expect("sweep");
        let close = storage
            .update_by_close_expires_at_less_than(UpdateByCloseExpiresAtLessThanRequest {
                close_expires_at_less_than: u64::MAX,
                update: touch(),
                limit: 10,
            })
            .await
            .expect("sweep");
        // The sweeps leave the expiry fields as they are: each counts everything expired.
        assert_eq!(
            (expired, ocfp, close),
            (expected, expected, expected),
            "at {at}"
        );
    }
}

/// With a pinned clock, `updatedAt < now` is exact for the four operations that use it: an
/// execution written at `now` waits for the next millisecond. One execution matches all
/// four; each patch (of `updatedAt` only) stamps the instant it ran, which hides it from the
/// others until the clock moves on.
#[tokio::test]
async fn updated_at_equal_to_now_is_excluded_with_a_pinned_clock() {
    let now = Arc::new(AtomicU64::new(10_000));
    let storage = pinned(&now);
    let mut value = execution("a", 1);
    value.status = TaskExecutionStatus::WaitingForChildren;
    value.is_finished = true;
    value.close_status = CloseStatus::Ready;
    value.executor_id = Some("executor".into());
    value.needs_promise_cancellation = true;
    // Sent far ahead: stored at the insert's now, 10,000.
    value.updated_at = 4_000_000_000_000;
    storage.insert_many(vec![value]).await.expect("insert");
    let update = TaskExecutionStorageUpdate::default;
    // Counts of (on children finished, close, promise cancellation, decrement), one call each.
    let run = || async {
        let ocfp = storage
            .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
                UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
                    status: TaskExecutionStatus::WaitingForChildren,
                    on_children_finished_processing_status: OnChildrenFinishedProcessingStatus::Idle,
                    update: update(),
                    limit: 10,
                },
            )
            .await
            .expect("ocfp");
        let close = storage
            .update_by_close_status_and_return(UpdateByCloseStatusRequest {
                close_status: CloseStatus::Ready,
                update: update(),
                limit: 10,
            })
            .await
            .expect("close");
        let npc = storage
            .update_by_executor_id_and_needs_promise_cancellation_and_return(
                UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
                    executor_id: "executor".into(),
                    needs_promise_cancellation: true,
                    update: update(),
                    limit: 10,
                },
            )
            .await
            .expect("npc");
        let decrement = storage
            .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
                UpdateAndDecrementParentActiveChildrenCountRequest {
                    is_finished: true,
                    close_status: CloseStatus::Ready,
                    update: update(),
                    limit: 10,
                },
            )
            .await
            .expect("decrement");
        (ocfp.len(), close.len(), npc.len(), decrement)
    };
    // At the insert's millisecond: nothing. Then each operation in turn takes it and stamps
    // the instant, which hides it from the next ones within that millisecond.
    for (at, expected) in [
        (10_000, (0, 0, 0, 0)),
        (10_001, (1, 0, 0, 0)),
        (10_002, (1, 0, 0, 0)),
    ] {
        now.store(at, Ordering::SeqCst);
        assert_eq!(run().await, expected, "at {at}");
    }
    // Each alone, one millisecond apart.
    now.store(10_003, Ordering::SeqCst);
    let close = storage
        .update_by_close_status_and_return(UpdateByCloseStatusRequest {
            close_status: CloseStatus::Ready,
            update: update(),
            limit: 10,
        })
        .await
        .expect("close");
    assert_eq!(close.first().map(|v| v.updated_at), Some(10_003));
    assert_eq!(
        run().await,
        (0, 0, 0, 0),
        "at 10,003, right after the close"
    );
    now.store(10_004, Ordering::SeqCst);
    assert_eq!(run().await, (1, 0, 0, 0), "at 10,004");
}

/// One `now` per request: the decrement over two shards patches a parent (in shard 1) from
/// its child's close (shard 0), and the same request's selection in shard 1 then sees the
/// parent written at `now`: not selected. (The Convex storage runs one transaction per
/// shard, each with its own `now`: the differential test allows for both.)
#[tokio::test]
async fn the_decrement_over_several_shards_has_one_now() {
    use durable_execution_storage_convex::storage::shard_of_execution;
    let now = Arc::new(AtomicU64::new(10_000));
    let storage = InMemoryTaskExecutionsStorage::with_clock(
        ConvexStorageOptions::default().with_total_shards(2),
        fixed_clock(&now),
    )
    .expect("options");
    let id_in = |shard| {
        (0..100)
            .map(|n| format!("e{n}"))
            .find(|id| shard_of_execution(id, 2) == shard)
            .expect("an id in each shard")
    };
    let (child_id, parent_id) = (id_in(0), id_in(1));
    let finished = |id: &str| {
        let mut value = execution(id, 1);
        value.is_finished = true;
        value.close_status = CloseStatus::Ready;
        value.active_children_count = 2;
        value
    };
    let mut child = finished(&child_id);
    child.parent = Some(
        durable_execution_storage_convex::storage::ParentTaskExecutionSummary {
            task_id: "task".into(),
            execution_id: parent_id.clone(),
            index_in_parent_children: 0,
            is_only_child_of_parent: false,
            is_finalize_of_parent: false,
        },
    );
    storage
        .insert_many(vec![finished(&parent_id), child])
        .await
        .expect("insert");
    now.store(10_001, Ordering::SeqCst);
    let count = storage
        .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            UpdateAndDecrementParentActiveChildrenCountRequest {
                is_finished: true,
                close_status: CloseStatus::Ready,
                update: TaskExecutionStorageUpdate {
                    close_status: Some(CloseStatus::Closed),
                    ..TaskExecutionStorageUpdate::default()
                },
                limit: 10,
            },
        )
        .await
        .expect("decrement");
    assert_eq!(
        count, 1,
        "the parent, patched at now by its child, is not selected"
    );
    let parent = stored(&storage, &parent_id).await;
    assert_eq!(
        (
            parent.active_children_count,
            parent.updated_at,
            parent.close_status
        ),
        (1, 10_001, CloseStatus::Ready)
    );
}

#[tokio::test]
async fn clients_share_executions_and_keep_their_own_options() {
    let first =
        InMemoryTaskExecutionsStorage::new(ConvexStorageOptions::default().with_total_shards(4))
            .expect("options");
    let second = first
        .client(
            ConvexStorageOptions::default()
                .with_total_shards(4)
                .with_shards(Some(vec![3, 1, 3]))
                .with_test_mode(true),
        )
        .expect("options");
    assert_eq!(second.shards(), &[1, 3]);
    assert!(second.is_test_mode_enabled() && !first.is_test_mode_enabled());
    first
        .insert_many(vec![execution("a", 1)])
        .await
        .expect("insert");
    assert_eq!(second.len(), 1);
    let refused = first.delete_all().await.expect_err("outside test mode");
    assert!(
        matches!(refused, StorageError::TestModeRequired { .. }),
        "{refused}"
    );
    assert_eq!(second.len(), 1);
    second.delete_all().await.expect("delete");
    assert!(first.is_empty());
}

#[tokio::test]
async fn invalid_options_are_refused_like_the_convex_storage_does() {
    for options in [
        ConvexStorageOptions::default().with_total_shards(0),
        ConvexStorageOptions::default().with_total_shards(65),
        ConvexStorageOptions::default()
            .with_total_shards(2)
            .with_shards(Some(vec![2])),
        ConvexStorageOptions::default().with_shards(Some(Vec::new())),
    ] {
        let error = InMemoryTaskExecutionsStorage::new(options.clone()).expect_err("invalid");
        assert!(
            matches!(error, StorageError::InvalidOptions(_)),
            "{options:?}: {error}"
        );
    }
}

#[tokio::test]
async fn executions_are_placed_by_fnv_and_children_linked_to_their_parent() {
    let storage =
        InMemoryTaskExecutionsStorage::new(ConvexStorageOptions::default().with_total_shards(8))
            .expect("options");
    storage
        .insert_many(vec![execution("p", 1)])
        .await
        .expect("insert");
    let mut child = execution("c", 1);
    child.parent = Some(
        durable_execution_storage_convex::storage::ParentTaskExecutionSummary {
            task_id: "task".into(),
            execution_id: "p".into(),
            index_in_parent_children: 0,
            is_only_child_of_parent: true,
            is_finalize_of_parent: false,
        },
    );
    storage
        .update_many_by_id_and_insert_children_if_updated(vec![
            UpdateByIdAndInsertChildrenIfUpdatedRequest {
                execution_id: "p".into(),
                filters: None,
                update: TaskExecutionStorageUpdate {
                    status: Some(TaskExecutionStatus::WaitingForChildren),
                    updated_at: 2,
                    ..TaskExecutionStorageUpdate::default()
                },
                children_task_executions_to_insert_if_any_updated: vec![child],
            },
        ])
        .await
        .expect("update");
    for id in ["p", "c"] {
        assert_eq!(
            storage.shard_of(id),
            Some(durable_execution_storage_convex::storage::shard_of_execution(id, 8))
        );
    }
    assert_eq!(storage.inserted_under("c").as_deref(), Some("p"));
    assert_eq!(storage.inserted_under("p"), None);
    stored(&storage, "c").await;
}

/// A refused request leaves nothing behind, also when it had patched before failing.
#[tokio::test]
async fn a_refused_request_is_rolled_back_entirely() {
    let storage =
        InMemoryTaskExecutionsStorage::new(ConvexStorageOptions::default()).expect("options");
    storage
        .insert_many(vec![execution("p", 1), execution("taken", 1)])
        .await
        .expect("insert");
    let before = stored(&storage, "p").await;
    let error = storage
        .update_many_by_id_and_insert_children_if_updated(vec![
            UpdateByIdAndInsertChildrenIfUpdatedRequest {
                execution_id: "p".into(),
                filters: None,
                update: TaskExecutionStorageUpdate {
                    status: Some(TaskExecutionStatus::WaitingForChildren),
                    updated_at: 5,
                    ..TaskExecutionStorageUpdate::default()
                },
                children_task_executions_to_insert_if_any_updated: vec![
                    execution("new", 1),
                    execution("taken", 1),
                ],
            },
        ])
        .await
        .expect_err("taken");
    assert!(error.is_already_exists(), "{error}");
    assert_eq!(storage.len(), 2);
    let after = stored(&storage, "p").await;
    assert_eq!(before, after);
}
