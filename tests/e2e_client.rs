//! End to end through the generated typed client (`TaskExecutionsStorageClient` over
//! `ConvexHttpClient`) against the generated component: each of the 17 operations gives the
//! results of reference §2, plus authentication, test mode and transport failures.
//!
//! Each test has its own empty database (see `support`).
//!
//! # Time: the server's clock is authoritative
//!
//! On every insert and patch the server stamps `createdAt`, `updatedAt` and the event times
//! (`startedAt`, `finishedAt`, ...) with its own `now` (one per call), raises `startAt` to `now`,
//! gives an expiry time already past `now + 1000`, lowers the `…LessThan` bounds to `now` and
//! leases a claim for `now + timeoutMs` (README, "Whose clock"). So the tests:
//!
//! - send times a client far behind ([`PAST`], 1970) or far ahead ([`FUTURE`], 2096) would send,
//!   and check what the server made of them;
//! - check a stamp the server set against this machine's clock around the call ([`Window`],
//!   widened by [`CLOCK_TOLERANCE_MS`]: the local server runs on this machine's clock);
//! - get distinct `updatedAt` ordering keys from calls made one after the other, letting the
//!   server's clock pass each stamp first ([`settle`], [`touch_in_order`]);
//! - place the times that must be kept exactly (`startAt`, expiry times) a little ahead of the
//!   server's clock, learnt from a write ([`soon`]), and wait for them to pass when a selection
//!   needs them past ([`Reached::wait_past`]).

mod support;

use durable_execution_storage_convex::local_server::{LocalConvexServer, LocalServerOptions};
use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use durable_execution_storage_convex::conformance::{
    settle, Reached, AHEAD_MARGIN_MS, EXPIRY_GRACE_MS,
};
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
// The server's clock
// ---------------------------------------------------------------------------------------------

/// How far (ms) a stamp of the server may be outside this machine's clock around the call: the
/// local server runs on this clock (a real deployment's is synchronised to within this).
const CLOCK_TOLERANCE_MS: u64 = 2_000;

/// An hour, for times that must stay ahead of the server's clock for the whole test.
const HOUR_MS: u64 = 3_600_000;

/// This machine's clock, in ms since the epoch.
fn local_now() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since_epoch.as_millis()).expect("ms since the epoch fit in u64")
}

/// The clock around a call, widened by [`CLOCK_TOLERANCE_MS`]: the `now` the server stamped
/// during the call lies in it.
#[derive(Clone, Copy, Debug)]
struct Window {
    from: u64,
    to: u64,
}

impl Window {
    #[track_caller]
    fn assert_contains(&self, stamp: u64, what: impl Display) {
        assert!(
            (self.from..=self.to).contains(&stamp),
            "{what}: {stamp} is not the server's clock during the call ({}..={})",
            self.from,
            self.to
        );
    }
}

/// Runs `call` and gives its output with the [`Window`] around it.
async fn timed<T>(call: impl Future<Output = T>) -> (T, Window) {
    let from = local_now();
    let output = call.await;
    let to = local_now();
    let window = Window {
        from: from.saturating_sub(CLOCK_TOLERANCE_MS),
        to: to.saturating_add(CLOCK_TOLERANCE_MS),
    };
    (output, window)
}

/// Inserts `probe` (an execution the test needs, which what it checks does not select), learns
/// the server's clock from the `updatedAt` it got, and gives a time ahead of that clock
/// ([`AHEAD_MARGIN_MS`], or 8 times the insert's round trip, up to 2 s): times placed from
/// there are kept as sent by a write made at once, and pass after [`Reached::wait_past`].
async fn soon(client: &Client, probe: TaskExecution) -> (u64, Reached) {
    let id = probe.execution_id.clone();
    let started = Instant::now();
    insert(client, vec![probe]).await;
    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let reached = Reached::new(get_one(client, &id).await.updated_at);
    let margin = took.saturating_mul(8).clamp(AHEAD_MARGIN_MS, 2_000);
    (reached.lower_bound() + margin, reached)
}

/// Fails unless a time placed ahead of the server's clock was stored as sent.
#[track_caller]
fn assert_kept(what: &str, stored: Option<u64>, sent: u64) {
    assert_eq!(
        stored,
        Some(sent),
        "{what}, placed ahead of the server's clock, is kept as sent (otherwise the write \
         reached the server later than the margin of `soon`)"
    );
}

/// Sets `updatedAt` of `ids` to the server's `now`, in one call made once the server's clock
/// has passed every stamp so far; gives that `now`.
async fn touch(client: &Client, ids: &[&str]) -> u64 {
    settle().await;
    let requests = ids
        .iter()
        .map(|id| tx::UpdateByExecutionIdRequest {
            execution_id: (*id).to_owned(),
            filters: None,
            update: update(PAST),
        })
        .collect();
    let ((), window) = timed(async {
        client
            .update_many_by_id(&tx::UpdateManyByIdArgs { requests })
            .await
            .expect("updateManyById");
    })
    .await;
    let now = get_one(client, ids[0]).await.updated_at;
    window.assert_contains(now, format_args!("updatedAt of {}", ids[0]));
    for id in ids {
        assert_eq!(
            get_one(client, id).await.updated_at,
            now,
            "one now per call"
        );
    }
    now
}

/// [`touch`]es each of `ids` in a call of its own, in order: their `updatedAt` ascend in that
/// order, and come after every stamp before. Lets the clock pass the last one too, so that a
/// selection by `updatedAt < now` made next includes them.
async fn touch_in_order(client: &Client, ids: &[&str]) {
    let mut stamps = Vec::with_capacity(ids.len());
    for id in ids {
        stamps.push(touch(client, &[id]).await);
    }
    assert!(
        stamps.windows(2).all(|pair| pair[0] < pair[1]),
        "updatedAt ascend in call order: {stamps:?}"
    );
    settle().await;
}

/// `doc` as the server stores it when inserting it at `now`: `createdAt`, `updatedAt` and every
/// present event stamp become `now`, `startAt` is raised to `now`, an expiry time before `now`
/// becomes `now +` [`EXPIRY_GRACE_MS`].
fn inserted_at(doc: &TaskExecution, now: u64) -> TaskExecution {
    let mut doc = doc.clone();
    doc.created_at = now;
    doc.updated_at = now;
    doc.start_at = doc.start_at.max(now);
    for stamp in [
        &mut doc.started_at,
        &mut doc.finished_at,
        &mut doc.waiting_for_children_started_at,
        &mut doc.waiting_for_finalize_started_at,
        &mut doc.on_children_finished_processing_finished_at,
        &mut doc.closed_at,
    ]
    .into_iter()
    .flatten()
    {
        *stamp = now;
    }
    for expiry in [
        &mut doc.expires_at,
        &mut doc.on_children_finished_processing_expires_at,
        &mut doc.close_expires_at,
    ]
    .into_iter()
    .flatten()
    {
        if *expiry < now {
            *expiry = now + EXPIRY_GRACE_MS;
        }
    }
    doc
}

// ---------------------------------------------------------------------------------------------
// insertMany, getManyById, getManyBySleepingTaskUniqueId
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn insert_many_then_get_many_by_id_round_trips_every_field_in_request_order() {
    let deployment = TestDeployment::new("insert_get").await;
    let client = deployment.client();
    let mut a = new_doc("a", 0);
    // Every optional field set, so that the round trip covers them all. The times are what
    // clients far behind (PAST, small numbers) or far ahead (FUTURE) would send.
    a.executor_id = Some("executor-1".into());
    a.run_output = Some("run".into());
    a.output = Some("out".into());
    a.error = Some(ExecutionError {
        error_type: ErrorType::TimedOut,
        message: "late".into(),
        is_retryable: true,
        is_internal: false,
    });
    a.start_at = FUTURE + 1;
    a.started_at = Some(11);
    a.expires_at = Some(FUTURE + 12);
    a.waiting_for_children_started_at = Some(FUTURE + 13);
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
    a.close_expires_at = Some(FUTURE + 18);
    a.closed_at = Some(FUTURE + 19);
    a.updated_at = FUTURE;
    let b = child_doc("b", "a", 2, 1);
    let c = new_doc("c", 2);
    let ((), window) = timed(insert(&client, vec![a.clone(), b.clone(), c.clone()])).await;

    let found = get(&client, &["c", "missing", "a", "b"]).await;
    assert_eq!(found.len(), 4, "one answer per request");
    assert!(found[1].is_none(), "an unknown id answers null");
    let [c_doc, a_doc, b_doc] = [&found[0], &found[2], &found[3]].map(|d| d.clone().unwrap());
    // One server `now` for the whole call, during the call.
    let now = a_doc.updated_at;
    window.assert_contains(now, "updatedAt of a");
    assert_eq!(
        (b_doc.updated_at, c_doc.updated_at),
        (now, now),
        "one now per call"
    );
    // Every field as sent, except the times the server owns.
    let mut expected_a = a;
    expected_a.created_at = now;
    expected_a.updated_at = now; // sent in 2096
    expected_a.started_at = Some(now); // event stamps: the server's now, sent behind or ahead
    expected_a.waiting_for_children_started_at = Some(now);
    expected_a.waiting_for_finalize_started_at = Some(now);
    expected_a.finished_at = Some(now);
    expected_a.on_children_finished_processing_finished_at = Some(now);
    expected_a.closed_at = Some(now);
    expected_a.on_children_finished_processing_expires_at = Some(now + EXPIRY_GRACE_MS); // past
                                                                                         // startAt, expiresAt and closeExpiresAt after now: kept as sent.
    assert_eq!(a_doc.value, expected_a);
    for (doc, sent) in [(&b_doc, &b), (&c_doc, &c)] {
        let mut expected = sent.clone();
        expected.created_at = now;
        expected.updated_at = now;
        expected.start_at = now; // sent long ago: raised to now
        assert_eq!(doc.value, expected, "{}", sent.execution_id);
    }
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
    a.expires_at = Some(FUTURE + 6);
    a.on_children_finished_processing_expires_at = Some(FUTURE + 7);
    a.close_expires_at = Some(FUTURE + 8);
    insert(&client, vec![a, new_doc("b", 0)]).await;
    let (a, b) = (get_one(&client, "a").await, get_one(&client, "b").await);
    assert!(
        a.expires_at.is_some() && a.started_at.is_some(),
        "set, to be unset"
    );

    let summary = |id: &str| TaskExecutionSummary {
        task_id: "t".into(),
        execution_id: id.into(),
    };
    let patch = TaskExecutionUpdate {
        status: Some(TaskExecutionStatus::WaitingForChildren),
        output: Some("o".into()),
        retry_attempts: Some(2),
        start_at: Some(FUTURE + 77),
        waiting_for_children_started_at: Some(21),
        finished_at: Some(FUTURE + 22),
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
        ..update(FUTURE)
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
                ..update(FUTURE)
            },
        },
        // Unknown: skipped, no error.
        tx::UpdateByExecutionIdRequest {
            execution_id: "missing".into(),
            filters: None,
            update: update(FUTURE),
        },
    ];
    settle().await; // so that the patch's stamps differ from the insert's
    let (result, window) =
        timed(client.update_many_by_id(&tx::UpdateManyByIdArgs { requests })).await;
    result.unwrap();

    let stored = get_one(&client, "a").await;
    let now = stored.updated_at;
    window.assert_contains(now, "updatedAt of a (sent in 2096)");
    assert!(now > a.updated_at, "restamped by the patch");
    let mut expected = a.value;
    expected.status = TaskExecutionStatus::WaitingForChildren;
    expected.output = Some("o".into());
    expected.retry_attempts = 2;
    expected.start_at = FUTURE + 77; // after now: kept
                                     // Event stamps, sent behind or ahead: the server's now.
    expected.waiting_for_children_started_at = Some(now);
    expected.finished_at = Some(now);
    expected.children = Some(vec![summary("c1"), summary("c2")]);
    expected.active_children_count = 2;
    expected.on_children_finished_processing_status =
        OnChildrenFinishedProcessingStatus::Processing;
    expected.on_children_finished_processing_finished_at = Some(now);
    expected.finalize = Some(summary("f"));
    expected.close_status = CloseStatus::Ready;
    expected.closed_at = Some(now);
    expected.needs_promise_cancellation = true;
    expected.updated_at = now;
    expected.executor_id = None;
    expected.run_output = None;
    expected.error = None;
    expected.started_at = None;
    expected.expires_at = None;
    expected.on_children_finished_processing_expires_at = None;
    expected.close_expires_at = None;
    assert_eq!(stored.value, expected);
    assert_eq!(
        get_one(&client, "b").await,
        b,
        "skipped: untouched, updatedAt included"
    );
    assert!(!exists(&client, "missing").await, "an update never inserts");
}

#[tokio::test]
async fn update_many_by_id_and_insert_children_links_children_to_their_updated_parent() {
    let deployment = TestDeployment::new("insert_children").await;
    let client = deployment.client();
    insert(&client, vec![new_doc("p1", 0), new_doc("p2", 0)]).await;
    let p2_before = get_one(&client, "p2").await;
    let running = TaskExecutionFilters {
        status: Some(TaskExecutionStatus::Running),
        ..Default::default()
    };
    let to_waiting = TaskExecutionUpdate {
        status: Some(TaskExecutionStatus::WaitingForChildren),
        active_children_count: Some(2),
        ..update(PAST)
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
    let (result, window) = timed(client.update_many_by_id_and_insert_children_if_updated(
        &tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs { requests },
    ))
    .await;
    result.unwrap();

    let p1 = get_one(&client, "p1").await;
    assert_eq!(p1.status, TaskExecutionStatus::WaitingForChildren);
    assert_eq!(p1.active_children_count, 2);
    // The parent's patch and its children's insert share the call's one server now.
    let now = p1.updated_at;
    window.assert_contains(now, "updatedAt of p1 (sent in 1970)");
    for (id, shard) in [("c1", 1), ("c2", 2)] {
        let child = get_one(&client, id).await;
        assert_eq!(child.parent_execution_doc_id.as_ref(), Some(&p1.id), "{id}");
        let mut expected = child_doc(id, "p1", u32::from(id == "c2"), shard);
        expected.parent_execution_doc_id = Some(p1.id.clone());
        assert_eq!(
            child.value,
            inserted_at(&expected, now),
            "{id}: as sent, with the server's times of the call"
        );
    }
    assert_eq!(get_one(&client, "p2").await, p2_before, "p2 untouched");
    assert!(!exists(&client, "c3").await);
    assert!(!exists(&client, "c9").await);
}

#[tokio::test]
async fn a_duplicate_child_rolls_back_the_parent_update_and_its_other_children() {
    let deployment = TestDeployment::new("children_unique").await;
    let client = deployment.client();
    insert(&client, vec![new_doc("p", 0), new_doc("taken", 0)]).await;
    let before = get_one(&client, "p").await;
    settle().await; // a patch that committed would restamp p
    let requests = vec![tx::UpdateByExecutionIdAndInsertChildrenRequest {
        execution_id: "p".into(),
        filters: None,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::WaitingForChildren),
            ..update(PAST)
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
        get_one(&client, "p").await,
        before,
        "parent untouched, updatedAt included"
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
    let mut running = ready("running", 0, PAST, 1_000);
    running.status = TaskExecutionStatus::Running; // other status: never claimed
                                                   // startAt kept exactly as sent: placed ahead of the server's clock, then waited for.
    let (t, reached) = soon(&client, running).await;
    let sent = [
        ready("r30", 0, t + 30, 3_000),
        ready("r10", 0, t + 10, 1_000),
        ready("r20", 0, t + 20, 2_000),
        ready("r40", 0, t + 40, 4_000), // == bound: excluded (strict)
        ready("other-shard", 1, t + 1, 1_000),
        ready("scheduled", 0, t + HOUR_MS, 1_000), // not due during the test
    ];
    insert(&client, sent.to_vec()).await;
    for doc in &sent {
        let stored = get_one(&client, &doc.execution_id).await;
        assert_kept(&doc.execution_id, Some(stored.start_at), doc.start_at);
    }
    reached.wait_past(t + 40).await;
    let claim = |shard: u32, bound: u64, limit: u32| {
        tx::UpdateByStatusAndStartAtLessThanAndReturnArgs {
            shard,
            status: TaskExecutionStatus::Ready,
            start_at_less_than: bound,
            update: TaskExecutionUpdate {
                status: Some(TaskExecutionStatus::Running),
                executor_id: Some("ex".into()),
                started_at: Some(PAST),
                ..update(PAST)
            },
            // What a client far behind would send: the lease is measured on the server's clock.
            update_expires_at_with_started_at: PAST,
            limit,
        }
    };

    let (first, window) =
        timed(client.update_by_status_and_start_at_less_than_and_return(&claim(0, t + 40, 2)))
            .await;
    let first = first.unwrap();
    assert_eq!(
        ids(&first),
        vec!["r10", "r20"],
        "ascending startAt, at most limit"
    );
    let now = first[0].updated_at;
    window.assert_contains(now, "updatedAt of r10");
    for (doc, timeout) in first.iter().zip([1_000, 2_000]) {
        // Returned after the patch (the reference allows before or after).
        assert_eq!(doc.status, TaskExecutionStatus::Running);
        assert_eq!(doc.executor_id.as_deref(), Some("ex"));
        assert_eq!(doc.updated_at, now, "one now per call");
        assert_eq!(doc.started_at, Some(now), "startedAt: the server's now");
        assert_eq!(
            doc.expires_at,
            Some(now + timeout),
            "expiresAt = server now + timeoutMs"
        );
    }
    assert_eq!(
        get_one(&client, "r10").await,
        first[0],
        "stored as returned"
    );

    let rest = client
        .update_by_status_and_start_at_less_than_and_return(&claim(0, t + 40, 10))
        .await
        .unwrap();
    assert_eq!(
        ids(&rest),
        vec!["r30"],
        "claimed ones, r40 (= bound) and other shards stay out"
    );
    let r40 = get_one(&client, "r40").await;
    assert_eq!(
        (r40.status, r40.start_at),
        (TaskExecutionStatus::Ready, t + 40)
    );
    let running = get_one(&client, "running").await;
    assert_eq!(
        (running.status, running.expires_at),
        (TaskExecutionStatus::Running, None)
    );

    let other = client
        .update_by_status_and_start_at_less_than_and_return(&claim(1, t + 40, 10))
        .await
        .unwrap();
    assert_eq!(ids(&other), vec!["other-shard"]);
    let none = client
        .update_by_status_and_start_at_less_than_and_return(&claim(0, FUTURE, 0))
        .await
        .unwrap();
    assert!(none.is_empty(), "limit 0 claims nothing");

    // A bound in 2096 (a client far ahead) is lowered to the server's now: r40, due, is
    // claimed; "scheduled", due in an hour, is not.
    let late = client
        .update_by_status_and_start_at_less_than_and_return(&claim(0, FUTURE, 10))
        .await
        .unwrap();
    assert_eq!(ids(&late), vec!["r40"]);
    let scheduled = get_one(&client, "scheduled").await;
    assert_eq!(
        (scheduled.status, scheduled.start_at),
        (TaskExecutionStatus::Ready, t + HOUR_MS)
    );
}

#[tokio::test]
async fn update_by_status_and_ocfp_status_and_acc_zero_picks_idle_parents_without_children() {
    let deployment = TestDeployment::new("ocfp").await;
    let client = deployment.client();
    let waiting = |id: &str, shard: u32| {
        let mut doc = new_doc(id, shard);
        doc.status = TaskExecutionStatus::WaitingForChildren;
        doc
    };
    let mut with_children = waiting("acc1", 0);
    with_children.active_children_count = 1;
    let mut processing = waiting("processing", 0);
    processing.on_children_finished_processing_status =
        OnChildrenFinishedProcessingStatus::Processing;
    let mut other_status = waiting("ready", 0);
    other_status.status = TaskExecutionStatus::Ready;
    // Sent with updatedAt in 2096 by a client ahead: stored at the server's now, so it looks
    // as old as it is.
    let mut ahead = waiting("ahead", 0);
    ahead.updated_at = FUTURE;
    let ((), window) = timed(insert(
        &client,
        vec![
            waiting("u30", 0),
            waiting("u10", 0),
            waiting("u20", 0),
            ahead,
            with_children,
            processing,
            other_status,
            waiting("other-shard", 1),
        ],
    ))
    .await;
    window.assert_contains(
        get_one(&client, "ahead").await.updated_at,
        "updatedAt of ahead",
    );
    // updatedAt: ahead (the insert's) < u10 < u20 < u30, not the insertion order.
    touch_in_order(&client, &["u10", "u20", "u30"]).await;
    let excluded = get(&client, &["acc1", "processing", "ready", "other-shard"]).await;
    let pick = |limit: u32| tx::UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs {
        shard: 0,
        status: TaskExecutionStatus::WaitingForChildren,
        ocfp_status: OnChildrenFinishedProcessingStatus::Idle,
        update: TaskExecutionUpdate {
            on_children_finished_processing_status: Some(
                OnChildrenFinishedProcessingStatus::Processing,
            ),
            // Already past: the server gives it the grace.
            on_children_finished_processing_expires_at: Some(9_000),
            ..update(PAST)
        },
        limit,
    };
    let (first, window) =
        timed(client.update_by_status_and_ocfp_status_and_acc_zero_and_return(&pick(2))).await;
    let first = first.unwrap();
    assert_eq!(ids(&first), vec!["ahead", "u10"], "ascending updatedAt");
    let now = first[0].updated_at;
    window.assert_contains(now, "updatedAt of the picked");
    for doc in &first {
        assert_eq!(doc.updated_at, now, "one now per call");
        assert_eq!(
            doc.on_children_finished_processing_status,
            OnChildrenFinishedProcessingStatus::Processing
        );
        assert_eq!(
            doc.on_children_finished_processing_expires_at,
            Some(now + EXPIRY_GRACE_MS),
            "an expiry sent in the past: now + grace"
        );
    }
    let rest = client
        .update_by_status_and_ocfp_status_and_acc_zero_and_return(&pick(10))
        .await
        .unwrap();
    assert_eq!(ids(&rest), vec!["u20", "u30"]);
    assert_eq!(
        get(&client, &["acc1", "processing", "ready", "other-shard"]).await,
        excluded,
        "children left, already processing, other status, other shard: untouched"
    );
}

#[tokio::test]
async fn update_by_close_status_picks_ascending_updated_at_before_now() {
    let deployment = TestDeployment::new("close_status").await;
    let client = deployment.client();
    let to_close = |id: &str, shard: u32| {
        let mut doc = new_doc(id, shard);
        doc.close_status = CloseStatus::Ready;
        doc
    };
    // Sent with updatedAt in 2096 by a client ahead: stored at the server's now.
    let mut ahead = to_close("ahead", 0);
    ahead.updated_at = FUTURE;
    let ((), window) = timed(insert(
        &client,
        vec![
            to_close("u30", 0),
            to_close("u10", 0),
            to_close("u20", 0),
            ahead,
            new_doc("idle", 0),
            to_close("other-shard", 2),
        ],
    ))
    .await;
    window.assert_contains(
        get_one(&client, "ahead").await.updated_at,
        "updatedAt of ahead",
    );
    // updatedAt: ahead (the insert's) < u10 < u20 < u30, not the insertion order.
    touch_in_order(&client, &["u10", "u20", "u30"]).await;
    let excluded = get(&client, &["idle", "other-shard"]).await;
    let pick = |limit: u32| tx::UpdateByCloseStatusAndReturnArgs {
        shard: 0,
        close_status: CloseStatus::Ready,
        update: TaskExecutionUpdate {
            close_status: Some(CloseStatus::Closing),
            close_expires_at: Some(FUTURE + 7), // after now: kept
            ..update(PAST)
        },
        limit,
    };
    let (first, window) = timed(client.update_by_close_status_and_return(&pick(2))).await;
    let first = first.unwrap();
    assert_eq!(ids(&first), vec!["ahead", "u10"], "ascending updatedAt");
    let now = first[0].updated_at;
    window.assert_contains(now, "updatedAt of the picked");
    assert!(first.iter().all(|d| d.updated_at == now
        && d.close_status == CloseStatus::Closing
        && d.close_expires_at == Some(FUTURE + 7)));
    let rest = client
        .update_by_close_status_and_return(&pick(10))
        .await
        .unwrap();
    assert_eq!(ids(&rest), vec!["u20", "u30"]);
    assert_eq!(
        get(&client, &["idle", "other-shard"]).await,
        excluded,
        "other closeStatus, other shard: untouched"
    );
}

#[tokio::test]
async fn update_by_executor_id_and_npc_picks_that_executors_flagged_executions() {
    let deployment = TestDeployment::new("npc").await;
    let client = deployment.client();
    let flagged = |id: &str, shard: u32, executor: &str, npc: bool| {
        let mut doc = new_doc(id, shard);
        doc.status = TaskExecutionStatus::Running;
        doc.executor_id = Some(executor.into());
        doc.needs_promise_cancellation = npc;
        doc
    };
    // Sent with updatedAt in 2096 by a client ahead: stored at the server's now.
    let mut ahead = flagged("ahead", 0, "ex", true);
    ahead.updated_at = FUTURE;
    let ((), window) = timed(insert(
        &client,
        vec![
            flagged("u30", 0, "ex", true),
            flagged("u10", 0, "ex", true),
            flagged("u20", 0, "ex", true),
            flagged("other-executor", 0, "ex2", true),
            flagged("not-flagged", 0, "ex", false),
            ahead,
            flagged("other-shard", 1, "ex", true),
        ],
    ))
    .await;
    window.assert_contains(
        get_one(&client, "ahead").await.updated_at,
        "updatedAt of ahead",
    );
    // updatedAt: ahead (the insert's) < u10 < u20 < u30, not the insertion order.
    touch_in_order(&client, &["u10", "u20", "u30"]).await;
    let excluded = get(&client, &["other-executor", "not-flagged", "other-shard"]).await;
    let pick = |limit: u32| tx::UpdateByExecutorIdAndNpcAndReturnArgs {
        shard: 0,
        executor_id: "ex".into(),
        npc: true,
        update: TaskExecutionUpdate {
            needs_promise_cancellation: Some(false),
            ..update(FUTURE)
        },
        limit,
    };
    let (first, window) = timed(client.update_by_executor_id_and_npc_and_return(&pick(2))).await;
    let first = first.unwrap();
    assert_eq!(ids(&first), vec!["ahead", "u10"], "ascending updatedAt");
    let now = first[0].updated_at;
    window.assert_contains(now, "updatedAt of the picked (sent in 2096)");
    assert!(first
        .iter()
        .all(|d| d.updated_at == now && !d.needs_promise_cancellation));
    let rest = client
        .update_by_executor_id_and_npc_and_return(&pick(10))
        .await
        .unwrap();
    assert_eq!(ids(&rest), vec!["u20", "u30"]);
    assert_eq!(
        get(&client, &["other-executor", "not-flagged", "other-shard"]).await,
        excluded,
        "other executor, not flagged, other shard: untouched"
    );
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
    // Expiry times kept exactly as sent: placed ahead of the server's clock, then waited for.
    let (t, reached) = soon(&client, running("no-expiry", 0, None)).await; // absent: excluded
    let mut sleeping = running("sleeping", 0, Some(t + 10));
    sleeping.is_sleeping_task = true;
    let mut ready = new_doc("ready", 0);
    ready.expires_at = Some(t + 10);
    let sent = [
        running("e30", 2, Some(t + 30)),
        running("e10", 0, Some(t + 10)),
        running("e20", 1, Some(t + 20)),
        running("e0", 1, Some(t)),
        running("e40", 0, Some(t + 40)),       // == bound: excluded
        running("hour", 2, Some(t + HOUR_MS)), // not expired during the test
        sleeping,                              // other isSleepingTask
        ready,                                 // other status
    ];
    insert(&client, sent.to_vec()).await;
    for doc in &sent {
        let stored = get_one(&client, &doc.execution_id).await;
        assert_kept(
            &doc.execution_id,
            stored.expires_at,
            doc.expires_at.unwrap(),
        );
    }
    reached.wait_past(t + 40).await;
    let expire =
        |bound: u64, limit: u32| tx::UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs {
            status: TaskExecutionStatus::Running,
            is_sleeping_task: false,
            expires_at_less_than: bound,
            update: TaskExecutionUpdate {
                status: Some(TaskExecutionStatus::TimedOut),
                unset: Some(TaskExecutionUnset {
                    expires_at: true,
                    ..Default::default()
                }),
                ..update(PAST)
            },
            limit,
        };
    let (count, window) = timed(
        client.update_by_status_and_is_sleeping_task_and_expires_at_less_than(&expire(t + 40, 2)),
    )
    .await;
    assert_eq!(count.unwrap(), 2);
    // Ascending expiresAt: e0 and e10 first, across shards.
    for id in ["e0", "e10"] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            (doc.status, doc.expires_at),
            (TaskExecutionStatus::TimedOut, None),
            "{id}"
        );
        window.assert_contains(doc.updated_at, format_args!("updatedAt of {id}"));
    }
    assert_eq!(
        get_one(&client, "e20").await.status,
        TaskExecutionStatus::Running
    );
    assert_eq!(
        client
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(&expire(t + 40, 10))
            .await
            .unwrap(),
        2,
        "e20 and e30, from other shards"
    );
    assert_eq!(
        client
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(&expire(t + 40, 10))
            .await
            .unwrap(),
        0
    );
    for id in ["e40", "hour", "no-expiry", "sleeping"] {
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

    // An expiry sent in the past (0, by a client far behind) gets a second of grace from the
    // server's now, and a bound in 2096 (a client far ahead) is lowered to the server's now:
    // such a sweep takes e40, past, and neither "grace" nor "hour" before their time.
    insert(&client, vec![running("grace", 1, Some(0))]).await;
    let grace = get_one(&client, "grace").await;
    let grace_expires_at = grace.updated_at + EXPIRY_GRACE_MS;
    assert_eq!(grace.expires_at, Some(grace_expires_at), "now + grace");
    let grace_clock = Reached::new(grace.updated_at);
    assert_eq!(
        client
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(&expire(FUTURE, 10))
            .await
            .unwrap(),
        1,
        "e40 only"
    );
    assert_eq!(
        get_one(&client, "e40").await.status,
        TaskExecutionStatus::TimedOut
    );
    for id in ["grace", "hour"] {
        assert_eq!(
            get_one(&client, id).await.status,
            TaskExecutionStatus::Running,
            "{id}"
        );
    }
    grace_clock.wait_past(grace_expires_at).await;
    assert_eq!(
        client
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(&expire(FUTURE, 10))
            .await
            .unwrap(),
        1,
        "grace, once its grace has passed"
    );
    assert_eq!(
        get_one(&client, "grace").await.status,
        TaskExecutionStatus::TimedOut
    );
    assert_eq!(get_one(&client, "hour").await.expires_at, Some(t + HOUR_MS));
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
    // Expiry times kept exactly as sent: placed ahead of the server's clock, then waited for.
    let (t, reached) = soon(&client, processing("none", 0, None)).await;
    let sent = [
        processing("x20", 0, Some(t + 20)),
        processing("x10", 1, Some(t + 10)),
        processing("x30", 2, Some(t + 30)),
        processing("x40", 0, Some(t + 40)), // == bound
        processing("hour", 1, Some(t + HOUR_MS)),
    ];
    insert(&client, sent.to_vec()).await;
    for doc in &sent {
        let stored = get_one(&client, &doc.execution_id).await;
        let sent_at = doc.on_children_finished_processing_expires_at.unwrap();
        assert_kept(
            &doc.execution_id,
            stored.on_children_finished_processing_expires_at,
            sent_at,
        );
    }
    reached.wait_past(t + 40).await;
    let expire = |bound: u64, limit: u32| tx::UpdateByOcfpExpiresAtArgs {
        ocfp_expires_at_less_than: bound,
        update: TaskExecutionUpdate {
            on_children_finished_processing_status: Some(OnChildrenFinishedProcessingStatus::Idle),
            unset: Some(TaskExecutionUnset {
                on_children_finished_processing_expires_at: true,
                ..Default::default()
            }),
            ..update(FUTURE)
        },
        limit,
    };
    let (count, window) = timed(client.update_by_ocfp_expires_at(&expire(t + 40, 2))).await;
    assert_eq!(count.unwrap(), 2);
    for id in ["x10", "x20"] {
        let doc = get_one(&client, id).await;
        assert_eq!(doc.on_children_finished_processing_expires_at, None, "{id}");
        assert_eq!(
            doc.on_children_finished_processing_status,
            OnChildrenFinishedProcessingStatus::Idle
        );
        window.assert_contains(doc.updated_at, format_args!("updatedAt of {id}"));
    }
    assert_eq!(
        client
            .update_by_ocfp_expires_at(&expire(t + 40, 10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        client
            .update_by_ocfp_expires_at(&expire(t + 40, 10))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        get_one(&client, "x40")
            .await
            .on_children_finished_processing_expires_at,
        Some(t + 40)
    );
    // A bound in 2096 is lowered to the server's now: x40 (past) goes, "hour" stays.
    assert_eq!(
        client
            .update_by_ocfp_expires_at(&expire(FUTURE, 10))
            .await
            .unwrap(),
        1
    );
    for (id, status, expires_at) in [
        ("x40", OnChildrenFinishedProcessingStatus::Idle, None),
        (
            "hour",
            OnChildrenFinishedProcessingStatus::Processing,
            Some(t + HOUR_MS),
        ),
        ("none", OnChildrenFinishedProcessingStatus::Processing, None),
    ] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            (
                doc.on_children_finished_processing_status,
                doc.on_children_finished_processing_expires_at
            ),
            (status, expires_at),
            "{id}"
        );
    }
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
    // Expiry times kept exactly as sent: placed ahead of the server's clock, then waited for.
    let (t, reached) = soon(&client, closing("none", 0, None)).await;
    let sent = [
        closing("x20", 0, Some(t + 20)),
        closing("x10", 1, Some(t + 10)),
        closing("x30", 2, Some(t + 30)),
        closing("x40", 0, Some(t + 40)), // == bound
        closing("hour", 2, Some(t + HOUR_MS)),
    ];
    insert(&client, sent.to_vec()).await;
    for doc in &sent {
        let stored = get_one(&client, &doc.execution_id).await;
        assert_kept(
            &doc.execution_id,
            stored.close_expires_at,
            doc.close_expires_at.unwrap(),
        );
    }
    reached.wait_past(t + 40).await;
    let expire = |bound: u64, limit: u32| tx::UpdateByCloseExpiresAtArgs {
        close_expires_at_less_than: bound,
        update: TaskExecutionUpdate {
            close_status: Some(CloseStatus::Ready),
            unset: Some(TaskExecutionUnset {
                close_expires_at: true,
                ..Default::default()
            }),
            ..update(PAST)
        },
        limit,
    };
    let (count, window) = timed(client.update_by_close_expires_at(&expire(t + 40, 2))).await;
    assert_eq!(count.unwrap(), 2);
    for id in ["x10", "x20"] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            (doc.close_status, doc.close_expires_at),
            (CloseStatus::Ready, None),
            "{id}"
        );
        window.assert_contains(doc.updated_at, format_args!("updatedAt of {id}"));
    }
    assert_eq!(
        get_one(&client, "x30").await.close_status,
        CloseStatus::Closing
    );
    assert_eq!(
        client
            .update_by_close_expires_at(&expire(t + 40, 10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        client
            .update_by_close_expires_at(&expire(t + 40, 10))
            .await
            .unwrap(),
        0
    );
    assert_eq!(get_one(&client, "x40").await.close_expires_at, Some(t + 40));
    // A bound in 2096 is lowered to the server's now: x40 (past) goes, "hour" stays.
    assert_eq!(
        client
            .update_by_close_expires_at(&expire(FUTURE, 10))
            .await
            .unwrap(),
        1
    );
    for (id, status, expires_at) in [
        ("x40", CloseStatus::Ready, None),
        ("hour", CloseStatus::Closing, Some(t + HOUR_MS)),
        ("none", CloseStatus::Closing, None),
    ] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            (doc.close_status, doc.close_expires_at),
            (status, expires_at),
            "{id}"
        );
    }
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
    let before = get(&client, &["c1", "c2", "c3", "d1"]).await;
    let requests = vec![tx::UpdateByParentExecutionIdAndIsFinishedRequest {
        parent_execution_id: "p1".into(),
        is_finished: false,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::Cancelled),
            needs_promise_cancellation: Some(true),
            ..update(FUTURE)
        },
    }];
    settle().await; // so that the patch's stamp differs from the insert's
    let (result, window) = timed(client.update_many_by_parent_execution_id_and_is_finished(
        &tx::UpdateManyByParentExecutionIdAndIsFinishedArgs { requests },
    ))
    .await;
    result.unwrap();
    let now = get_one(&client, "c2").await.updated_at;
    window.assert_contains(now, "updatedAt of c2 (sent in 2096)");
    let ids = ["c1", "c2", "c3", "d1"];
    for ((id, cancelled), before) in ids.into_iter().zip([false, true, true, false]).zip(before) {
        let (doc, before) = (get_one(&client, id).await, before.unwrap());
        if cancelled {
            assert_eq!(doc.status, TaskExecutionStatus::Cancelled, "{id}");
            assert!(doc.needs_promise_cancellation, "{id}");
            assert_eq!(doc.updated_at, now, "{id}: one now per call");
            assert!(doc.updated_at > before.updated_at, "{id}: restamped");
        } else {
            assert_eq!(doc, before, "{id}: untouched, updatedAt included");
        }
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
    let closable = |mut doc: TaskExecution| {
        doc.is_finished = true;
        doc.close_status = CloseStatus::Ready;
        doc
    };
    let mut finalize = child_doc("f", "P", 9, 0);
    finalize.is_finalize_of_parent = Some(true);
    let mut only = child_doc("o", "Q", 0, 0);
    only.is_only_child_of_parent = Some(true);
    let mut unfinished = child_doc("unfinished", "P", 3, 0);
    unfinished.close_status = CloseStatus::Ready;
    // Sent with updatedAt in 2096 by a client ahead: stored at the server's now, so it does not
    // look fresh and is closed like the others.
    let mut ahead = closable(child_doc("ahead", "P", 4, 0));
    ahead.updated_at = FUTURE;
    let ((), window) = timed(insert(
        &client,
        vec![
            parent,
            only_parent,
            closable(child_doc("b", "P", 1, 0)),
            closable(finalize),                          // finalize: no decrement
            closable(only),                              // only child: parent acc -> 0
            closable(child_doc("orphan", "gone", 0, 0)), // parent missing: no error
            closable(new_doc("root", 0)),                // no parent
            unfinished,                                  // not finished: not picked
            ahead,
            closable(child_doc("other-shard", "P", 5, 1)),
            closable(child_doc("a", "P", 0, 0)), // inserted last, oldest once the rest is touched
        ],
    ))
    .await;
    window.assert_contains(
        get_one(&client, "ahead").await.updated_at,
        "updatedAt of ahead",
    );
    // a keeps the insert's updatedAt; the other closables of shard 0 get a later one.
    touch(&client, &["b", "f", "o", "orphan", "root", "ahead"]).await;
    settle().await;
    let close = |limit: u32| tx::UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs {
        shard: 0,
        is_finished: true,
        close_status: CloseStatus::Ready,
        update: TaskExecutionUpdate {
            close_status: Some(CloseStatus::Closed),
            closed_at: Some(PAST),
            ..update(PAST)
        },
        limit,
    };

    // Limit 1: only the oldest (a).
    let (count, window) =
        timed(client.update_and_decrement_parent_acc_by_is_finished_and_close_status(&close(1)))
            .await;
    assert_eq!(count.unwrap(), 1);
    let a = get_one(&client, "a").await;
    let now = a.updated_at;
    window.assert_contains(now, "updatedAt of a");
    assert_eq!(
        (a.close_status, a.closed_at),
        (CloseStatus::Closed, Some(now)),
        "closedAt: the server's now"
    );
    assert_eq!(get_one(&client, "b").await.close_status, CloseStatus::Ready);
    let p = get_one(&client, "P").await;
    assert_eq!(
        (p.active_children_count, p.updated_at),
        (4, now),
        "the parent's updatedAt: the update's"
    );

    // The rest: b, f, o, orphan, root, ahead.
    let (count, window) =
        timed(client.update_and_decrement_parent_acc_by_is_finished_and_close_status(&close(100)))
            .await;
    assert_eq!(count.unwrap(), 6);
    let now = get_one(&client, "b").await.updated_at;
    window.assert_contains(now, "updatedAt of b");
    for id in ["b", "f", "o", "orphan", "root", "ahead"] {
        let doc = get_one(&client, id).await;
        assert_eq!(
            (doc.close_status, doc.closed_at, doc.updated_at),
            (CloseStatus::Closed, Some(now), now),
            "{id}"
        );
    }
    assert_eq!(
        get_one(&client, "P").await.active_children_count,
        2,
        "b and ahead only: f is the finalize"
    );
    let q = get_one(&client, "Q").await;
    assert_eq!(
        (q.active_children_count, q.updated_at),
        (0, now),
        "o was the only child"
    );
    for id in ["unfinished", "other-shard"] {
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
