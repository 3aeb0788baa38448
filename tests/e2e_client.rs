//! End to end through the generated typed client (`TaskExecutionsStorageClient` over
//! `ConvexHttpClient`) against the generated component: each of the 17 operations gives the
//! results of reference §2, plus authentication, test mode and transport failures.
//!
//! Each test has its own empty database (see `support`). Timestamps in documents are small
//! fixed numbers ([`PAST`] and friends), so that `updatedAt < now` holds for them and
//! [`FUTURE`] shows the bound is applied.

mod support;

use durable_execution_storage_convex::local_server::{LocalConvexServer, LocalServerOptions};
use std::time::Duration;

use durable_execution_storage_convex::runtime::{
    AuthSecret, ConvexError, ConvexHttpClient, ConvexOperation, RetryPolicy, StopReason,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
};
use durable_execution_storage_convex::task_executions::{
    self as tx, CloseStatus, ErrorType, ExecutionError, OnChildrenFinishedProcessingStatus,
    TaskExecution, TaskExecutionFilters, TaskExecutionStatus, TaskExecutionSummary,
    TaskExecutionUnset, TaskExecutionUpdate, TaskExecutionsStorageClient,
};
use durable_execution_storage_convex::Doc;
use support::{child_doc, new_doc, TestDeployment, FUTURE, PAST};

type Client = TaskExecutionsStorageClient;

async fn insert(client: &Client, executions: Vec<TaskExecution>) {
    client
        .insert_many(&tx::InsertManyArgs { executions })
        .await
        .expect("insertMany");
}

async fn get(client: &Client, ids: &[&str]) -> Vec<Option<Doc<TaskExecution>>> {
    let requests = ids
        .iter()
        .map(|id| tx::ByExecutionIdRequest {
            execution_id: (*id).to_owned(),
            filters: None,
        })
        .collect();
    client
        .get_many_by_id(&tx::GetManyByIdArgs { requests })
        .await
        .expect("getManyById")
}

async fn get_one(client: &Client, id: &str) -> Doc<TaskExecution> {
    get(client, &[id])
        .await
        .pop()
        .flatten()
        .unwrap_or_else(|| panic!("{id} is stored"))
}

async fn exists(client: &Client, id: &str) -> bool {
    get(client, &[id]).await[0].is_some()
}

fn update(updated_at: u64) -> TaskExecutionUpdate {
    TaskExecutionUpdate {
        updated_at,
        ..TaskExecutionUpdate::default()
    }
}

fn ids(docs: &[Doc<TaskExecution>]) -> Vec<&str> {
    docs.iter().map(|d| d.execution_id.as_str()).collect()
}

fn error_code(error: &ConvexError) -> Option<&str> {
    error.code()
}

// ---------------------------------------------------------------------------------------------
// insertMany, getManyById, getManyBySleepingTaskUniqueId
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn insert_many_then_get_many_by_id_round_trips_every_field_in_request_order() {
    let deployment = TestDeployment::new("insert_get").await;
    let client = deployment.client();
    let mut a = new_doc("a", 0);
    // Every optional field set, so that the round trip covers them all.
    a.executor_id = Some("executor-1".into());
    a.run_output = Some("run".into());
    a.output = Some("out".into());
    a.error = Some(ExecutionError {
        error_type: ErrorType::TimedOut,
        message: "late".into(),
        is_retryable: true,
        is_internal: false,
    });
    a.started_at = Some(11);
    a.expires_at = Some(12);
    a.waiting_for_children_started_at = Some(13);
    a.waiting_for_finalize_started_at = Some(14);
    a.finished_at = Some(15);
    a.children = Some(vec![TaskExecutionSummary {
        task_id: "t".into(),
        execution_id: "c".into(),
    }]);
    a.on_children_finished_processing_expires_at = Some(16);
    a.on_children_finished_processing_finished_at = Some(17);
    a.finalize = Some(TaskExecutionSummary {
        task_id: "t".into(),
        execution_id: "f".into(),
    });
    a.close_expires_at = Some(18);
    a.closed_at = Some(19);
    let b = child_doc("b", "a", 2, 1);
    let c = new_doc("c", 2);
    insert(&client, vec![a.clone(), b.clone(), c.clone()]).await;

    let found = get(&client, &["c", "missing", "a", "b"]).await;
    assert_eq!(found.len(), 4, "one answer per request");
    assert!(found[1].is_none(), "an unknown id answers null");
    let [c_doc, a_doc, b_doc] = [&found[0], &found[2], &found[3]].map(|d| d.clone().unwrap());
    assert_eq!(a_doc.value, a);
    assert_eq!(b_doc.value, b);
    assert_eq!(c_doc.value, c);
    // System fields: distinct ids, creation times set.
    assert_ne!(a_doc.id, b_doc.id);
    assert_ne!(a_doc.id, c_doc.id);
    assert!(a_doc.creation_time > 0.0);
    // insertMany does not set parentExecutionDocId (only children inserted under a parent get it).
    assert_eq!(b_doc.parent_execution_doc_id, None);
}

#[tokio::test]
async fn get_many_by_id_filters_count_a_mismatch_as_not_found() {
    let deployment = TestDeployment::new("get_filters").await;
    let client = deployment.client();
    insert(&client, vec![new_doc("a", 0)]).await; // ready, not sleeping, not finished
    let filtered = |filters: TaskExecutionFilters| tx::ByExecutionIdRequest {
        execution_id: "a".into(),
        filters: Some(filters),
    };
    let cases = [
        (TaskExecutionFilters::default(), true),
        (
            TaskExecutionFilters {
                status: Some(TaskExecutionStatus::Ready),
                is_sleeping_task: Some(false),
                is_finished: Some(false),
            },
            true,
        ),
        (
            TaskExecutionFilters {
                status: Some(TaskExecutionStatus::Running),
                ..Default::default()
            },
            false,
        ),
        (
            TaskExecutionFilters {
                is_sleeping_task: Some(true),
                ..Default::default()
            },
            false,
        ),
        (
            TaskExecutionFilters {
                status: Some(TaskExecutionStatus::Ready),
                is_finished: Some(true),
                ..Default::default()
            },
            false,
        ),
    ];
    let requests = cases.iter().map(|(f, _)| filtered(f.clone())).collect();
    let found = client
        .get_many_by_id(&tx::GetManyByIdArgs { requests })
        .await
        .unwrap();
    let expected: Vec<bool> = cases.iter().map(|(_, found)| *found).collect();
    let actual: Vec<bool> = found.iter().map(Option::is_some).collect();
    assert_eq!(actual, expected);
}

#[tokio::test]
async fn insert_many_refuses_a_duplicate_and_rolls_back_the_whole_call() {
    let deployment = TestDeployment::new("insert_unique").await;
    let client = deployment.client();
    let mut sleeping = new_doc("s1", 0);
    sleeping.is_sleeping_task = true;
    sleeping.sleeping_task_unique_id = Some("u1".into());
    insert(&client, vec![new_doc("taken", 0), sleeping]).await;

    // An existing executionId, after a fresh execution in the same call.
    let error = client
        .insert_many(&tx::InsertManyArgs {
            executions: vec![new_doc("fresh1", 0), new_doc("taken", 1)],
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), Some("ALREADY_EXISTS"), "{error}");
    assert!(!exists(&client, "fresh1").await, "rolled back");

    // An existing sleepingTaskUniqueId under a new executionId.
    let mut other = new_doc("s2", 0);
    other.is_sleeping_task = true;
    other.sleeping_task_unique_id = Some("u1".into());
    let error = client
        .insert_many(&tx::InsertManyArgs {
            executions: vec![new_doc("fresh2", 0), other],
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), Some("ALREADY_EXISTS"), "{error}");
    assert!(!exists(&client, "fresh2").await, "rolled back");
    assert!(!exists(&client, "s2").await);

    // Duplicates within one call.
    let error = client
        .insert_many(&tx::InsertManyArgs {
            executions: vec![new_doc("twice", 0), new_doc("twice", 0)],
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), Some("ALREADY_EXISTS"), "{error}");
    assert!(!exists(&client, "twice").await, "rolled back");

    // An absent sleepingTaskUniqueId is not a key: many executions without one coexist.
    insert(&client, vec![new_doc("n1", 0), new_doc("n2", 0)]).await;
    assert!(exists(&client, "n1").await && exists(&client, "n2").await);
}

#[tokio::test]
async fn get_many_by_sleeping_task_unique_id_answers_in_request_order() {
    let deployment = TestDeployment::new("get_sleeping").await;
    let client = deployment.client();
    let sleeping = |id: &str, unique: &str| {
        let mut doc = new_doc(id, 0);
        doc.is_sleeping_task = true;
        doc.sleeping_task_unique_id = Some(unique.into());
        doc
    };
    insert(
        &client,
        vec![
            sleeping("s1", "u1"),
            sleeping("s2", "u2"),
            new_doc("plain", 0),
        ],
    )
    .await;
    let requests = ["u2", "nope", "u1"]
        .iter()
        .map(|u| tx::BySleepingTaskUniqueIdRequest {
            sleeping_task_unique_id: (*u).into(),
        })
        .collect();
    let found = client
        .get_many_by_sleeping_task_unique_id(&tx::GetManyBySleepingTaskUniqueIdArgs { requests })
        .await
        .unwrap();
    let found: Vec<Option<&str>> = found
        .iter()
        .map(|d| d.as_ref().map(|d| d.execution_id.as_str()))
        .collect();
    assert_eq!(found, vec![Some("s2"), None, Some("s1")]);
}

// ---------------------------------------------------------------------------------------------
// updateManyById, updateManyByIdAndInsertChildrenIfUpdated
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn update_many_by_id_sets_unsets_and_skips_mismatches() {
    let deployment = TestDeployment::new("update_by_id").await;
    let client = deployment.client();
    let mut a = new_doc("a", 0);
    a.executor_id = Some("ex".into());
    a.run_output = Some("r".into());
    a.error = Some(ExecutionError {
        error_type: ErrorType::Generic,
        message: "m".into(),
        is_retryable: false,
        is_internal: true,
    });
    a.started_at = Some(5);
    a.expires_at = Some(6);
    a.on_children_finished_processing_expires_at = Some(7);
    a.close_expires_at = Some(8);
    insert(&client, vec![a.clone(), new_doc("b", 0)]).await;

    let summary = |id: &str| TaskExecutionSummary {
        task_id: "t".into(),
        execution_id: id.into(),
    };
    let patch = TaskExecutionUpdate {
        status: Some(TaskExecutionStatus::WaitingForChildren),
        output: Some("o".into()),
        retry_attempts: Some(2),
        start_at: Some(77),
        waiting_for_children_started_at: Some(21),
        finished_at: Some(22),
        children: Some(vec![summary("c1"), summary("c2")]),
        active_children_count: Some(2),
        on_children_finished_processing_status: Some(
            OnChildrenFinishedProcessingStatus::Processing,
        ),
        on_children_finished_processing_finished_at: Some(23),
        finalize: Some(summary("f")),
        close_status: Some(CloseStatus::Ready),
        closed_at: Some(24),
        needs_promise_cancellation: Some(true),
        unset: Some(TaskExecutionUnset {
            executor_id: true,
            run_output: true,
            error: true,
            started_at: true,
            expires_at: true,
            on_children_finished_processing_expires_at: true,
            close_expires_at: true,
        }),
        ..update(500)
    };
    let requests = vec![
        tx::UpdateByExecutionIdRequest {
            execution_id: "a".into(),
            filters: Some(TaskExecutionFilters {
                status: Some(TaskExecutionStatus::Ready),
                ..Default::default()
            }),
            update: patch,
        },
        // Filters do not match: skipped.
        tx::UpdateByExecutionIdRequest {
            execution_id: "b".into(),
            filters: Some(TaskExecutionFilters {
                status: Some(TaskExecutionStatus::Running),
                ..Default::default()
            }),
            update: TaskExecutionUpdate {
                output: Some("must not be set".into()),
                ..update(500)
            },
        },
        // Unknown: skipped, no error.
        tx::UpdateByExecutionIdRequest {
            execution_id: "missing".into(),
            filters: None,
            update: update(500),
        },
    ];
    client
        .update_many_by_id(&tx::UpdateManyByIdArgs { requests })
        .await
        .unwrap();

    let mut expected = a;
    expected.status = TaskExecutionStatus::WaitingForChildren;
    expected.output = Some("o".into());
    expected.retry_attempts = 2;
    expected.start_at = 77;
    expected.waiting_for_children_started_at = Some(21);
    expected.finished_at = Some(22);
    expected.children = Some(vec![summary("c1"), summary("c2")]);
    expected.active_children_count = 2;
    expected.on_children_finished_processing_status =
        OnChildrenFinishedProcessingStatus::Processing;
    expected.on_children_finished_processing_finished_at = Some(23);
    expected.finalize = Some(summary("f"));
    expected.close_status = CloseStatus::Ready;
    expected.closed_at = Some(24);
    expected.needs_promise_cancellation = true;
    expected.updated_at = 500;
    expected.executor_id = None;
    expected.run_output = None;
    expected.error = None;
    expected.started_at = None;
    expected.expires_at = None;
    expected.on_children_finished_processing_expires_at = None;
    expected.close_expires_at = None;
    assert_eq!(get_one(&client, "a").await.value, expected);
    assert_eq!(get_one(&client, "b").await.value, new_doc("b", 0));
    assert!(!exists(&client, "missing").await, "an update never inserts");
}

#[tokio::test]
async fn update_many_by_id_and_insert_children_links_children_to_their_updated_parent() {
    let deployment = TestDeployment::new("insert_children").await;
    let client = deployment.client();
    insert(&client, vec![new_doc("p1", 0), new_doc("p2", 0)]).await;
    let running = TaskExecutionFilters {
        status: Some(TaskExecutionStatus::Running),
        ..Default::default()
    };
    let to_waiting = TaskExecutionUpdate {
        status: Some(TaskExecutionStatus::WaitingForChildren),
        active_children_count: Some(2),
        ..update(600)
    };
    let requests = vec![
        tx::UpdateByExecutionIdAndInsertChildrenRequest {
            execution_id: "p1".into(),
            filters: None,
            update: to_waiting.clone(),
            children_task_executions_to_insert_if_any_updated: vec![
                child_doc("c1", "p1", 0, 1),
                child_doc("c2", "p1", 1, 2),
            ],
        },
        // Filters do not match: neither the update nor its children happen.
        tx::UpdateByExecutionIdAndInsertChildrenRequest {
            execution_id: "p2".into(),
            filters: Some(running),
            update: to_waiting.clone(),
            children_task_executions_to_insert_if_any_updated: vec![child_doc("c3", "p2", 0, 0)],
        },
        // Unknown parent: its children are not inserted.
        tx::UpdateByExecutionIdAndInsertChildrenRequest {
            execution_id: "p9".into(),
            filters: None,
            update: to_waiting,
            children_task_executions_to_insert_if_any_updated: vec![child_doc("c9", "p9", 0, 0)],
        },
    ];
    client
        .update_many_by_id_and_insert_children_if_updated(
            &tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs { requests },
        )
        .await
        .unwrap();

    let p1 = get_one(&client, "p1").await;
    assert_eq!(p1.status, TaskExecutionStatus::WaitingForChildren);
    assert_eq!(p1.active_children_count, 2);
    for (id, shard) in [("c1", 1), ("c2", 2)] {
        let child = get_one(&client, id).await;
        assert_eq!(child.parent_execution_doc_id.as_ref(), Some(&p1.id), "{id}");
        let mut expected = child_doc(id, "p1", u32::from(id == "c2"), shard);
        expected.parent_execution_doc_id = Some(p1.id.clone());
        assert_eq!(child.value, expected);
    }
    assert_eq!(
        get_one(&client, "p2").await.status,
        TaskExecutionStatus::Ready
    );
    assert!(!exists(&client, "c3").await);
    assert!(!exists(&client, "c9").await);
}

#[tokio::test]
async fn a_duplicate_child_rolls_back_the_parent_update_and_its_other_children() {
    let deployment = TestDeployment::new("children_unique").await;
    let client = deployment.client();
    insert(&client, vec![new_doc("p", 0), new_doc("taken", 0)]).await;
    let requests = vec![tx::UpdateByExecutionIdAndInsertChildrenRequest {
        execution_id: "p".into(),
        filters: None,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::WaitingForChildren),
            ..update(600)
        },
        children_task_executions_to_insert_if_any_updated: vec![
            child_doc("new-child", "p", 0, 0),
            child_doc("taken", "p", 1, 0),
        ],
    }];
    let error = client
        .update_many_by_id_and_insert_children_if_updated(
            &tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs { requests },
        )
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), Some("ALREADY_EXISTS"), "{error}");
    assert_eq!(
        get_one(&client, "p").await.value,
        new_doc("p", 0),
        "parent untouched"
    );
    assert!(!exists(&client, "new-child").await);
}

// ---------------------------------------------------------------------------------------------
// The sharded range updates that return documents
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn update_by_status_and_start_at_less_than_claims_ascending_within_bound_shard_and_limit() {
    let deployment = TestDeployment::new("claim").await;
    let client = deployment.client();
    let ready = |id: &str, shard: u32, start_at: u64, timeout_ms: u64| {
        let mut doc = new_doc(id, shard);
        doc.start_at = start_at;
        doc.timeout_ms = timeout_ms;
        doc
    };
    let mut running = ready("running", 0, 5, 1);
    running.status = TaskExecutionStatus::Running;
    insert(
        &client,
        vec![
            ready("r30", 0, 30, 3),
            ready("r10", 0, 10, 1),
            ready("r20", 0, 20, 2),
            ready("r40", 0, 40, 4), // == bound: excluded (strict)
            running,                // other status
            ready("other-shard", 1, 1, 1),
        ],
    )
    .await;
    let claim = |shard: u32, limit: u32| tx::UpdateByStatusAndStartAtLessThanAndReturnArgs {
        shard,
        status: TaskExecutionStatus::Ready,
        start_at_less_than: 40,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::Running),
            executor_id: Some("ex".into()),
            started_at: Some(1_000),
            ..update(1_000)
        },
        update_expires_at_with_started_at: 1_000,
        limit,
    };

    let first = client
        .update_by_status_and_start_at_less_than_and_return(&claim(0, 2))
        .await
        .unwrap();
    assert_eq!(
        ids(&first),
        vec!["r10", "r20"],
        "ascending startAt, at most limit"
    );
    for (doc, timeout) in first.iter().zip([1, 2]) {
        // Returned after the patch (the reference allows before or after).
        assert_eq!(doc.status, TaskExecutionStatus::Running);
        assert_eq!(doc.executor_id.as_deref(), Some("ex"));
        assert_eq!(
            doc.expires_at,
            Some(1_000 + timeout),
            "expiresAt = bound + timeoutMs"
        );
    }
    let stored = get_one(&client, "r10").await;
    assert_eq!(stored.status, TaskExecutionStatus::Running);
    assert_eq!(stored.expires_at, Some(1_001));
    assert_eq!(stored.started_at, Some(1_000));

    let rest = client
        .update_by_status_and_start_at_less_than_and_return(&claim(0, 10))
        .await
        .unwrap();
    assert_eq!(
        ids(&rest),
        vec!["r30"],
        "claimed ones, r40 (= bound) and other shards stay out"
    );
    assert_eq!(
        get_one(&client, "r40").await.status,
        TaskExecutionStatus::Ready
    );
    assert_eq!(get_one(&client, "running").await.expires_at, None);

    let other = client
        .update_by_status_and_start_at_less_than_and_return(&claim(1, 10))
        .await
        .unwrap();
    assert_eq!(ids(&other), vec!["other-shard"]);
    let none = client
        .update_by_status_and_start_at_less_than_and_return(&claim(0, 0))
        .await
        .unwrap();
    assert!(none.is_empty(), "limit 0 claims nothing");
}

#[tokio::test]
async fn update_by_status_and_ocfp_status_and_acc_zero_picks_idle_parents_without_children() {
    let deployment = TestDeployment::new("ocfp").await;
    let client = deployment.client();
    let waiting = |id: &str, shard: u32, updated_at: u64| {
        let mut doc = new_doc(id, shard);
        doc.status = TaskExecutionStatus::WaitingForChildren;
        doc.updated_at = updated_at;
        doc
    };
    let mut with_children = waiting("acc1", 0, PAST);
    with_children.active_children_count = 1;
    let mut processing = waiting("processing", 0, PAST);
    processing.on_children_finished_processing_status =
        OnChildrenFinishedProcessingStatus::Processing;
    let mut other_status = waiting("ready", 0, PAST);
    other_status.status = TaskExecutionStatus::Ready;
    insert(
        &client,
        vec![
            waiting("u30", 0, 30),
            waiting("u10", 0, 10),
            waiting("u20", 0, 20),
            waiting("future", 0, FUTURE), // updatedAt not < now
            with_children,
            processing,
            other_status,
            waiting("other-shard", 1, 10),
        ],
    )
    .await;
    let pick = |limit: u32| tx::UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs {
        shard: 0,
        status: TaskExecutionStatus::WaitingForChildren,
        ocfp_status: OnChildrenFinishedProcessingStatus::Idle,
        update: TaskExecutionUpdate {
            on_children_finished_processing_status: Some(
                OnChildrenFinishedProcessingStatus::Processing,
            ),
            on_children_finished_processing_expires_at: Some(9_000),
            ..update(PAST + 1)
        },
        limit,
    };
    let first = client
        .update_by_status_and_ocfp_status_and_acc_zero_and_return(&pick(2))
        .await
        .unwrap();
    assert_eq!(ids(&first), vec!["u10", "u20"]);
    assert!(first
        .iter()
        .all(|d| d.on_children_finished_processing_status
            == OnChildrenFinishedProcessingStatus::Processing
            && d.on_children_finished_processing_expires_at == Some(9_000)));
    let rest = client
        .update_by_status_and_ocfp_status_and_acc_zero_and_return(&pick(10))
        .await
        .unwrap();
    assert_eq!(ids(&rest), vec!["u30"]);
    assert_eq!(
        get_one(&client, "future")
            .await
            .on_children_finished_processing_status,
        OnChildrenFinishedProcessingStatus::Idle
    );
}

#[tokio::test]
async fn update_by_close_status_picks_ascending_updated_at_before_now() {
    let deployment = TestDeployment::new("close_status").await;
    let client = deployment.client();
    let to_close = |id: &str, shard: u32, updated_at: u64| {
        let mut doc = new_doc(id, shard);
        doc.close_status = CloseStatus::Ready;
        doc.updated_at = updated_at;
        doc
    };
    insert(
        &client,
        vec![
            to_close("u30", 0, 30),
            to_close("u10", 0, 10),
            to_close("u20", 0, 20),
            to_close("future", 0, FUTURE),
            new_doc("idle", 0),
            to_close("other-shard", 2, 10),
        ],
    )
    .await;
    let pick = |limit: u32| tx::UpdateByCloseStatusAndReturnArgs {
        shard: 0,
        close_status: CloseStatus::Ready,
        update: TaskExecutionUpdate {
            close_status: Some(CloseStatus::Closing),
            close_expires_at: Some(7_000),
            ..update(PAST + 1)
        },
        limit,
    };
    let first = client
        .update_by_close_status_and_return(&pick(2))
        .await
        .unwrap();
    assert_eq!(ids(&first), vec!["u10", "u20"]);
    assert!(first
        .iter()
        .all(|d| d.close_status == CloseStatus::Closing && d.close_expires_at == Some(7_000)));
    let rest = client
        .update_by_close_status_and_return(&pick(10))
        .await
        .unwrap();
    assert_eq!(ids(&rest), vec!["u30"]);
    assert_eq!(
        get_one(&client, "future").await.close_status,
        CloseStatus::Ready
    );
    assert_eq!(
        get_one(&client, "other-shard").await.close_status,
        CloseStatus::Ready
    );
}

#[tokio::test]
async fn update_by_executor_id_and_npc_picks_that_executors_flagged_executions() {
    let deployment = TestDeployment::new("npc").await;
    let client = deployment.client();
    let flagged = |id: &str, shard: u32, executor: &str, npc: bool, updated_at: u64| {
        let mut doc = new_doc(id, shard);
        doc.status = TaskExecutionStatus::Running;
        doc.executor_id = Some(executor.into());
        doc.needs_promise_cancellation = npc;
        doc.updated_at = updated_at;
        doc
    };
    insert(
        &client,
        vec![
            flagged("u30", 0, "ex", true, 30),
            flagged("u10", 0, "ex", true, 10),
            flagged("u20", 0, "ex", true, 20),
            flagged("other-executor", 0, "ex2", true, 10),
            flagged("not-flagged", 0, "ex", false, 10),
            flagged("future", 0, "ex", true, FUTURE),
            flagged("other-shard", 1, "ex", true, 10),
        ],
    )
    .await;
    let pick = |limit: u32| tx::UpdateByExecutorIdAndNpcAndReturnArgs {
        shard: 0,
        executor_id: "ex".into(),
        npc: true,
        update: TaskExecutionUpdate {
            needs_promise_cancellation: Some(false),
            ..update(PAST + 1)
        },
        limit,
    };
    let first = client
        .update_by_executor_id_and_npc_and_return(&pick(2))
        .await
        .unwrap();
    assert_eq!(ids(&first), vec!["u10", "u20"]);
    assert!(first.iter().all(|d| !d.needs_promise_cancellation));
    let rest = client
        .update_by_executor_id_and_npc_and_return(&pick(10))
        .await
        .unwrap();
    assert_eq!(ids(&rest), vec!["u30"]);
    for id in ["other-executor", "future", "other-shard"] {
        assert!(
            get_one(&client, id).await.needs_promise_cancellation,
            "{id}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The expiry updates (all shards, counts)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn update_by_status_and_is_sleeping_task_and_expires_at_less_than_counts_across_shards() {
    let deployment = TestDeployment::new("expire").await;
    let client = deployment.client();
    let running = |id: &str, shard: u32, expires_at: Option<u64>| {
        let mut doc = new_doc(id, shard);
        doc.status = TaskExecutionStatus::Running;
        doc.expires_at = expires_at;
        doc
    };
    let mut sleeping = running("sleeping", 0, Some(10));
    sleeping.is_sleeping_task = true;
    insert(
        &client,
        vec![
            running("e30", 2, Some(30)),
            running("e10", 0, Some(10)),
            running("e20", 1, Some(20)),
            running("e0", 1, Some(0)),     // 0 is in [0, bound)
            running("e40", 0, Some(40)),   // == bound: excluded
            running("no-expiry", 0, None), // absent: excluded
            sleeping,                      // other isSleepingTask
            {
                let mut ready = new_doc("ready", 0);
                ready.expires_at = Some(10); // other status
                ready
            },
        ],
    )
    .await;
    let expire = |limit: u32| tx::UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs {
        status: TaskExecutionStatus::Running,
        is_sleeping_task: false,
        expires_at_less_than: 40,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::TimedOut),
            unset: Some(TaskExecutionUnset {
                expires_at: true,
                ..Default::default()
            }),
            ..update(PAST + 1)
        },
        limit,
    };
    assert_eq!(
        client
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(&expire(2))
            .await
            .unwrap(),
        2
    );
    // Ascending expiresAt: e0 and e10 first.
    for id in ["e0", "e10"] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            (doc.status, doc.expires_at),
            (TaskExecutionStatus::TimedOut, None),
            "{id}"
        );
    }
    assert_eq!(
        get_one(&client, "e20").await.status,
        TaskExecutionStatus::Running
    );
    assert_eq!(
        client
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(&expire(10))
            .await
            .unwrap(),
        2,
        "e20 and e30, from other shards"
    );
    assert_eq!(
        client
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(&expire(10))
            .await
            .unwrap(),
        0
    );
    for id in ["e40", "no-expiry", "sleeping"] {
        assert_eq!(
            get_one(&client, id).await.status,
            TaskExecutionStatus::Running,
            "{id}"
        );
    }
    assert_eq!(
        get_one(&client, "ready").await.status,
        TaskExecutionStatus::Ready
    );
}

#[tokio::test]
async fn update_by_ocfp_expires_at_counts_expired_processing_in_bound() {
    let deployment = TestDeployment::new("ocfp_expire").await;
    let client = deployment.client();
    let processing = |id: &str, shard: u32, expires: Option<u64>| {
        let mut doc = new_doc(id, shard);
        doc.on_children_finished_processing_status = OnChildrenFinishedProcessingStatus::Processing;
        doc.on_children_finished_processing_expires_at = expires;
        doc
    };
    insert(
        &client,
        vec![
            processing("x20", 0, Some(20)),
            processing("x10", 1, Some(10)),
            processing("x30", 2, Some(30)),
            processing("x40", 0, Some(40)), // == bound
            processing("none", 0, None),
        ],
    )
    .await;
    let expire = |limit: u32| tx::UpdateByOcfpExpiresAtArgs {
        ocfp_expires_at_less_than: 40,
        update: TaskExecutionUpdate {
            on_children_finished_processing_status: Some(OnChildrenFinishedProcessingStatus::Idle),
            unset: Some(TaskExecutionUnset {
                on_children_finished_processing_expires_at: true,
                ..Default::default()
            }),
            ..update(PAST + 1)
        },
        limit,
    };
    assert_eq!(
        client.update_by_ocfp_expires_at(&expire(2)).await.unwrap(),
        2
    );
    for id in ["x10", "x20"] {
        let doc = get_one(&client, id).await;
        assert_eq!(doc.on_children_finished_processing_expires_at, None, "{id}");
        assert_eq!(
            doc.on_children_finished_processing_status,
            OnChildrenFinishedProcessingStatus::Idle
        );
    }
    assert_eq!(
        client.update_by_ocfp_expires_at(&expire(10)).await.unwrap(),
        1
    );
    assert_eq!(
        client.update_by_ocfp_expires_at(&expire(10)).await.unwrap(),
        0
    );
    assert_eq!(
        get_one(&client, "x40")
            .await
            .on_children_finished_processing_expires_at,
        Some(40)
    );
}

#[tokio::test]
async fn update_by_close_expires_at_counts_expired_closings_in_bound() {
    let deployment = TestDeployment::new("close_expire").await;
    let client = deployment.client();
    let closing = |id: &str, shard: u32, expires: Option<u64>| {
        let mut doc = new_doc(id, shard);
        doc.close_status = CloseStatus::Closing;
        doc.close_expires_at = expires;
        doc
    };
    insert(
        &client,
        vec![
            closing("x20", 0, Some(20)),
            closing("x10", 1, Some(10)),
            closing("x30", 2, Some(30)),
            closing("x40", 0, Some(40)), // == bound
            closing("none", 0, None),
        ],
    )
    .await;
    let expire = |limit: u32| tx::UpdateByCloseExpiresAtArgs {
        close_expires_at_less_than: 40,
        update: TaskExecutionUpdate {
            close_status: Some(CloseStatus::Ready),
            unset: Some(TaskExecutionUnset {
                close_expires_at: true,
                ..Default::default()
            }),
            ..update(PAST + 1)
        },
        limit,
    };
    assert_eq!(
        client.update_by_close_expires_at(&expire(2)).await.unwrap(),
        2
    );
    for id in ["x10", "x20"] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            (doc.close_status, doc.close_expires_at),
            (CloseStatus::Ready, None),
            "{id}"
        );
    }
    assert_eq!(
        get_one(&client, "x30").await.close_status,
        CloseStatus::Closing
    );
    assert_eq!(
        client
            .update_by_close_expires_at(&expire(10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        client
            .update_by_close_expires_at(&expire(10))
            .await
            .unwrap(),
        0
    );
    assert_eq!(get_one(&client, "x40").await.close_expires_at, Some(40));
}

// ---------------------------------------------------------------------------------------------
// Children: getManyByParentExecutionId, updateManyByParentExecutionIdAndIsFinished, decrement
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_many_by_parent_execution_id_lists_each_parents_children() {
    let deployment = TestDeployment::new("children_get").await;
    let client = deployment.client();
    let mut finished = child_doc("c2", "p1", 1, 1);
    finished.is_finished = true;
    insert(
        &client,
        vec![
            new_doc("p1", 0),
            child_doc("c1", "p1", 0, 0),
            finished, // finished or not, a child is listed
            child_doc("d1", "p2", 0, 2),
            new_doc("p3", 0),
        ],
    )
    .await;
    let requests = ["p2", "p3", "p1", "unknown"]
        .iter()
        .map(|p| tx::ByParentExecutionIdRequest {
            parent_execution_id: (*p).into(),
        })
        .collect();
    let lists = client
        .get_many_by_parent_execution_id(&tx::GetManyByParentExecutionIdArgs { requests })
        .await
        .unwrap();
    let mut lists: Vec<Vec<&str>> = lists.iter().map(|l| ids(l)).collect();
    lists.iter_mut().for_each(|l| l.sort_unstable());
    assert_eq!(lists, vec![vec!["d1"], vec![], vec!["c1", "c2"], vec![]]);
}

#[tokio::test]
async fn update_many_by_parent_execution_id_and_is_finished_patches_only_matching_children() {
    let deployment = TestDeployment::new("children_update").await;
    let client = deployment.client();
    let mut done = child_doc("c1", "p1", 0, 0);
    done.is_finished = true;
    insert(
        &client,
        vec![
            done,
            child_doc("c2", "p1", 1, 1),
            child_doc("c3", "p1", 2, 2),
            child_doc("d1", "p2", 0, 0),
        ],
    )
    .await;
    let requests = vec![tx::UpdateByParentExecutionIdAndIsFinishedRequest {
        parent_execution_id: "p1".into(),
        is_finished: false,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::Cancelled),
            needs_promise_cancellation: Some(true),
            ..update(700)
        },
    }];
    client
        .update_many_by_parent_execution_id_and_is_finished(
            &tx::UpdateManyByParentExecutionIdAndIsFinishedArgs { requests },
        )
        .await
        .unwrap();
    for (id, cancelled) in [("c1", false), ("c2", true), ("c3", true), ("d1", false)] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            doc.status == TaskExecutionStatus::Cancelled,
            cancelled,
            "{id}"
        );
        assert_eq!(doc.needs_promise_cancellation, cancelled, "{id}");
        assert_eq!(doc.updated_at == 700, cancelled, "{id}");
    }
}

#[tokio::test]
async fn update_and_decrement_parent_acc_follows_the_decrement_rules() {
    let deployment = TestDeployment::new("decrement").await;
    let client = deployment.client();
    let mut parent = new_doc("P", 0);
    parent.active_children_count = 5;
    let mut only_parent = new_doc("Q", 1);
    only_parent.active_children_count = 4;
    let closable = |mut doc: TaskExecution, updated_at: u64| {
        doc.is_finished = true;
        doc.close_status = CloseStatus::Ready;
        doc.updated_at = updated_at;
        doc
    };
    let mut finalize = child_doc("f", "P", 9, 0);
    finalize.is_finalize_of_parent = Some(true);
    let mut only = child_doc("o", "Q", 0, 0);
    only.is_only_child_of_parent = Some(true);
    let mut unfinished = child_doc("unfinished", "P", 3, 0);
    unfinished.close_status = CloseStatus::Ready;
    insert(
        &client,
        vec![
            parent,
            only_parent,
            closable(child_doc("a", "P", 0, 0), 10),
            closable(child_doc("b", "P", 1, 0), 20),
            closable(finalize, 30), // finalize: no decrement
            closable(only, 40),     // only child: parent acc -> 0
            closable(child_doc("orphan", "gone", 0, 0), 50), // parent missing: no error
            closable(new_doc("root", 0), 60), // no parent
            unfinished,             // not finished: not picked
            closable(child_doc("future", "P", 4, 0), FUTURE), // updatedAt not < now
            closable(child_doc("other-shard", "P", 5, 1), 10),
        ],
    )
    .await;
    let close = |limit: u32| tx::UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs {
        shard: 0,
        is_finished: true,
        close_status: CloseStatus::Ready,
        update: TaskExecutionUpdate {
            close_status: Some(CloseStatus::Closed),
            closed_at: Some(800),
            ..update(800)
        },
        limit,
    };

    // Limit 1: only the oldest (a).
    assert_eq!(
        client
            .update_and_decrement_parent_acc_by_is_finished_and_close_status(&close(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        get_one(&client, "a").await.close_status,
        CloseStatus::Closed
    );
    assert_eq!(get_one(&client, "b").await.close_status, CloseStatus::Ready);
    let p = get_one(&client, "P").await;
    assert_eq!((p.active_children_count, p.updated_at), (4, 800));

    // The rest: b, f, o, orphan, root.
    assert_eq!(
        client
            .update_and_decrement_parent_acc_by_is_finished_and_close_status(&close(100))
            .await
            .unwrap(),
        5
    );
    for id in ["b", "f", "o", "orphan", "root"] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            (doc.close_status, doc.closed_at),
            (CloseStatus::Closed, Some(800)),
            "{id}"
        );
    }
    assert_eq!(
        get_one(&client, "P").await.active_children_count,
        3,
        "b only: f is the finalize"
    );
    assert_eq!(
        get_one(&client, "Q").await.active_children_count,
        0,
        "o was the only child"
    );
    for id in ["unfinished", "future", "other-shard"] {
        assert_eq!(
            get_one(&client, id).await.close_status,
            CloseStatus::Ready,
            "{id}"
        );
    }
    assert_eq!(
        client
            .update_and_decrement_parent_acc_by_is_finished_and_close_status(&close(100))
            .await
            .unwrap(),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// deleteById, deleteAll and test mode
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_by_id_and_delete_all_work_in_test_mode() {
    let deployment = TestDeployment::new("delete").await;
    assert!(deployment.test_mode());
    let client = deployment.client();
    insert(
        &client,
        vec![new_doc("a", 0), new_doc("b", 1), new_doc("c", 2)],
    )
    .await;
    client
        .delete_by_id(&tx::DeleteByIdArgs {
            execution_id: "b".into(),
        })
        .await
        .unwrap();
    client
        .delete_by_id(&tx::DeleteByIdArgs {
            execution_id: "missing".into(),
        })
        .await
        .expect("deleting an unknown id is not an error");
    let left: Vec<bool> = get(&client, &["a", "b", "c"])
        .await
        .iter()
        .map(Option::is_some)
        .collect();
    assert_eq!(left, vec![true, false, true]);
    client.delete_all(&tx::DeleteAllArgs {}).await.unwrap();
    assert_eq!(get(&client, &["a", "c"]).await, vec![None, None]);
}

#[tokio::test]
async fn test_only_operations_are_refused_without_test_mode() {
    let Some(deployment) = TestDeployment::without_test_mode("no_test_mode").await else {
        return;
    };
    let client = deployment.client();
    insert(&client, vec![new_doc("a", 0)]).await;
    let by_id = client
        .delete_by_id(&tx::DeleteByIdArgs {
            execution_id: "a".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&by_id), Some("TEST_MODE_REQUIRED"), "{by_id}");
    let all = client.delete_all(&tx::DeleteAllArgs {}).await.unwrap_err();
    assert_eq!(error_code(&all), Some("TEST_MODE_REQUIRED"), "{all}");
    assert!(!all.is_retry_safe());
    assert!(exists(&client, "a").await, "nothing was deleted");
}

// ---------------------------------------------------------------------------------------------
// Failures: wrong secret, unreachable server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_secret_is_unauthorized_and_not_retry_safe_for_every_kind() {
    let deployment = TestDeployment::new("wrong_secret").await;
    let wrong = deployment.client_with_secret("not-the-secret");
    let query = wrong
        .get_many_by_id(&tx::GetManyByIdArgs { requests: vec![] })
        .await
        .unwrap_err();
    let mutation = wrong
        .insert_many(&tx::InsertManyArgs {
            executions: vec![new_doc("a", 0)],
        })
        .await
        .unwrap_err();
    let action = wrong
        .update_many_by_id(&tx::UpdateManyByIdArgs { requests: vec![] })
        .await
        .unwrap_err();
    for error in [&query, &mutation, &action] {
        assert!(error.is_unauthorized(), "{error}");
        assert!(!error.is_retry_safe(), "{error}");
        assert!(
            !error.to_string().contains("not-the-secret"),
            "secret redacted: {error}"
        );
    }
    assert!(
        !exists(&deployment.client(), "a").await,
        "refused before doing anything"
    );
}

#[tokio::test]
async fn a_stopped_server_is_retried_then_a_transport_error() {
    // Its own server, so that stopping it disturbs no other test.
    let server = LocalConvexServer::start(LocalServerOptions::new("stop-secret"))
        .unwrap_or_else(|error| panic!("cannot start the local Convex server: {error}"));
    let policy = RetryPolicy::default()
        .with_max_attempts(4)
        .with_initial_backoff(Duration::from_millis(20));
    let http = ConvexHttpClient::new(server.url())
        .expect("valid URL")
        .with_retry_policy(policy);
    let client = TaskExecutionsStorageClient::new(http.clone(), AuthSecret::new("stop-secret"));
    let args = tx::GetManyByIdArgs {
        requests: vec![tx::ByExecutionIdRequest {
            execution_id: "a".into(),
            filters: None,
        }],
    };
    assert_eq!(client.get_many_by_id(&args).await.unwrap(), vec![None]);
    server.stop();
    let before = http.stats();
    let error = client.get_many_by_id(&args).await.unwrap_err();
    // A query: every transient failure is retried, here up to the policy's 4 attempts.
    match &error {
        ConvexError::Attempts {
            attempts,
            stopped,
            last,
            ..
        } => {
            assert_eq!(*attempts, 4);
            assert_eq!(*stopped, StopReason::MaxAttempts(4));
            assert!(
                matches!(**last, ConvexError::Transport { .. }),
                "expected a transport error, got {last:?}"
            );
        }
        other => panic!("expected Attempts, got {other:?}"),
    }
    assert!(error.is_transient(), "{error}");
    // Nothing listens any more: the last request was provably not sent, so retrying is safe.
    assert!(error.is_retry_safe(), "{error}");
    let after = http.stats();
    assert_eq!(after.calls - before.calls, 1);
    assert_eq!(after.requests - before.requests, 4);
    assert_eq!(after.retries - before.retries, 3);
    assert_eq!(after.failed_calls - before.failed_calls, 1);
}

#[tokio::test]
async fn calls_carry_the_operations_retry_safety_and_are_counted() {
    if support::is_remote() {
        println!(
            "SKIPPED calls_carry_the_operations_retry_safety_and_are_counted: it needs the \
             local server's secret (runs on the local server)"
        );
        return;
    }
    let deployment = TestDeployment::new("call_operation").await;
    let http = deployment.http();
    assert_eq!(
        http.timeouts(),
        (DEFAULT_CONNECT_TIMEOUT, Some(DEFAULT_REQUEST_TIMEOUT)),
        "documented defaults"
    );
    let secret = AuthSecret::new(support::LOCAL_SECRET);
    let path = |name: &str| format!("taskExecutionsStorage:{name}");
    http.call_operation(
        &path(tx::InsertManyArgs::NAME),
        &secret,
        &tx::InsertManyArgs {
            executions: vec![new_doc("op-a", 0), new_doc("op-b", 1)],
        },
    )
    .await
    .expect("insertMany through call_operation");
    let found = http
        .call_operation(
            &path(tx::GetManyByIdArgs::NAME),
            &secret,
            &tx::GetManyByIdArgs {
                requests: ["op-a", "op-b", "op-c"]
                    .map(|id| tx::ByExecutionIdRequest {
                        execution_id: id.into(),
                        filters: None,
                    })
                    .to_vec(),
            },
        )
        .await
        .expect("getManyById through call_operation");
    let found: Vec<bool> = found.iter().map(Option::is_some).collect();
    assert_eq!(found, [true, true, false]);
    // A refusal is not retried: one request.
    let before = http.stats();
    let error = http
        .call_operation(
            &path(tx::InsertManyArgs::NAME),
            &secret,
            &tx::InsertManyArgs {
                executions: vec![new_doc("op-a", 0)],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ALREADY_EXISTS"), "{error}");
    assert!(!error.is_transient());
    let after = http.stats();
    assert_eq!(after.requests - before.requests, 1);
    assert_eq!(after.failures.function - before.failures.function, 1);
    assert_eq!(after.calls, 3);
    assert_eq!(after.retries, 0);
}

#[test]
fn the_local_server_says_which_command_installs_missing_dependencies() {
    // A convex/ directory with the server but without node_modules.
    let dir = std::env::temp_dir().join(format!("no-node-modules-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("server")).unwrap();
    std::fs::write(dir.join("server").join("main.ts"), "").unwrap();
    let error =
        LocalConvexServer::start(LocalServerOptions::new("s").convex_dir(&dir)).unwrap_err();
    let message = error.to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        message.contains(&format!("run `cd {} && npm ci`", dir.display())),
        "{message}"
    );

    let missing = std::env::temp_dir().join("surely-not-a-convex-dir");
    let error = LocalConvexServer::start(LocalServerOptions::new("s").convex_dir(&missing))
        .unwrap_err()
        .to_string();
    assert!(error.contains("expected server/main.ts"), "{error}");
}
