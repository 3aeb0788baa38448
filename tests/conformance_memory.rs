//! The conformance suite and the concurrency scenarios against the in-memory storage, plus
//! what only the in-memory storage can show (its injectable clock, its introspection).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use durable_execution_storage_convex::conformance::{
    self, concurrency, InMemoryStorageFactory, OPERATIONS,
};
use durable_execution_storage_convex::storage::{
    Clock, GetByIdRequest, NewTaskExecution, TaskExecutionStorageUpdate,
    UpdateByCloseStatusRequest, UpdateByIdAndInsertChildrenIfUpdatedRequest,
};
use durable_execution_storage_convex::task_executions::{
    CloseStatus, RetryOptions, TaskExecutionStatus,
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

/// With a pinned clock, `updatedAt < now` is exact: an execution updated at `now` waits for
/// the next millisecond.
#[tokio::test]
async fn updated_at_equal_to_now_is_excluded_with_a_pinned_clock() {
    let now = Arc::new(AtomicU64::new(10_000));
    let storage = InMemoryTaskExecutionsStorage::with_clock(
        ConvexStorageOptions::default(),
        fixed_clock(&now),
    )
    .expect("options");
    let mut value = execution("a", 10_000);
    value.close_status = CloseStatus::Ready;
    storage.insert_many(vec![value]).await.expect("insert");
    let request = UpdateByCloseStatusRequest {
        close_status: CloseStatus::Ready,
        update: TaskExecutionStorageUpdate {
            close_status: Some(CloseStatus::Closing),
            updated_at: 10_000,
            ..TaskExecutionStorageUpdate::default()
        },
        limit: 10,
    };
    let picked = storage
        .update_by_close_status_and_return(request.clone())
        .await
        .expect("at now");
    assert!(picked.is_empty());
    now.store(10_001, Ordering::SeqCst);
    let picked = storage
        .update_by_close_status_and_return(request)
        .await
        .expect("after now");
    assert_eq!(picked.len(), 1);
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
    first.delete_all().await.expect("no-op outside test mode");
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
    let got = storage
        .get_many_by_id(vec![GetByIdRequest {
            execution_id: "c".into(),
            filters: None,
        }])
        .await
        .expect("get");
    assert!(got[0].is_some());
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
    let before = storage
        .get_many_by_id(vec![GetByIdRequest {
            execution_id: "p".into(),
            filters: None,
        }])
        .await
        .expect("get");
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
    let after = storage
        .get_many_by_id(vec![GetByIdRequest {
            execution_id: "p".into(),
            filters: None,
        }])
        .await
        .expect("get");
    assert_eq!(before, after);
}
