//! End to end through `ConvexTaskExecutionsStorage` (the engine's storage trait) against the
//! generated component: every operation with 1 and 3 shards (sharded operations fan out and
//! concatenate in shard order, the decrement splits its limit), test mode on and off, and
//! batches split over several calls.
//!
//! Batch sizes: convex-test answers index lookups by scanning, so the batch tests lower the
//! per-call budget to [`PER_CALL`] = 100 instead of inserting thousands of documents. 250
//! elements then need 3 calls (100 + 100 + 50), the fewest that show a first, a middle and a
//! last chunk; the local server's call counter checks that it was 3.
//!
//! Times: the server's clock is authoritative (README, "Whose clock"): it stamps `createdAt`,
//! `updatedAt` and the event times with its own `now`, raises `startAt` to `now`, gives an
//! expiry time already past 1 s of grace, and lowers every `…LessThan` bound to `now`. So the
//! tests
//! - check a stamp the server set against this machine's clock around the call ([`Window`]; the
//!   local server runs on it), and the rest of a value exactly ([`inserted_at`], [`patched_at`]);
//! - order executions by stamps of calls made one after the other, letting the server's clock
//!   pass each stamp first ([`settle`]);
//! - place the times they need kept as sent ahead of the server's clock, and wait for them to
//!   pass when a selection needs them past ([`Reached::wait_past`]).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::future::Future;

use durable_execution_storage_convex::conformance::{settle, Reached, EXPIRY_GRACE_MS};
use durable_execution_storage_convex::storage::{
    now_millis, shard_of_execution, split_limit, GetByIdRequest, GetByParentExecutionIdRequest,
    GetBySleepingTaskUniqueIdRequest, UpdateAndDecrementParentActiveChildrenCountRequest,
    UpdateByCloseExpiresAtLessThanRequest, UpdateByCloseStatusRequest,
    UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use durable_execution_storage_convex::task_executions::{
    self as tx, CloseStatus, OnChildrenFinishedProcessingStatus, TaskExecution,
    TaskExecutionFilters, TaskExecutionStatus, TaskExecutionUnset, TaskExecutionUpdate,
};
use durable_execution_storage_convex::{
    ConvexStorageOptions, ConvexTaskExecutionsStorage, Doc, StorageError,
    TaskExecutionStorageValue, TaskExecutionsStorage,
};
use support::{child_value, new_value, TestDeployment, FUTURE, PAST};

/// The lowered per-call budget of the batch tests (see the module docs).
const PER_CALL: u32 = 100;

/// Runs `scenario(total_shards)` as two tests, with 1 and with 3 shards.
macro_rules! with_1_and_3_shards {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn one_shard() {
                super::$scenario(1).await
            }
            #[tokio::test]
            async fn three_shards() {
                super::$scenario(3).await
            }
        }
    };
}

fn options(total_shards: u32) -> ConvexStorageOptions {
    ConvexStorageOptions::default()
        .with_total_shards(total_shards)
        .with_test_mode(true)
}

/// How far the server's clock may be from this machine's: none for the local server, which runs
/// on it; NTP-synchronised for a real deployment.
const CLOCK_TOLERANCE_MS: u64 = 1_000;

/// How far ahead of the server's clock the tests place the times they need kept as sent: the
/// writes that carry them must reach the server within this.
const AHEAD_MARGIN_MS: u64 = 2_000;

/// This machine's clock around a call, widened by [`CLOCK_TOLERANCE_MS`]: a `now` the server
/// stamped during the call lies in it.
#[derive(Clone, Copy, Debug)]
struct Window {
    from: u64,
    to: u64,
}

impl Window {
    /// Runs `call` and gives its output with the window around it.
    async fn around<T>(call: impl Future<Output = T>) -> (T, Window) {
        let from = now_millis().saturating_sub(CLOCK_TOLERANCE_MS);
        let output = call.await;
        let to = now_millis().saturating_add(CLOCK_TOLERANCE_MS);
        (output, Window { from, to })
    }

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

/// The `expiry` rule: kept when not before `now`, else `now + 1 s`.
fn expiry_at(sent: u64, now: u64) -> u64 {
    if sent < now {
        now + EXPIRY_GRACE_MS
    } else {
        sent
    }
}

/// Applies the server's clock `now` to the event stamps and expiry times present.
fn stamp_times(events: [&mut Option<u64>; 6], expiries: [&mut Option<u64>; 3], now: u64) {
    for at in events.into_iter().flatten() {
        *at = now;
    }
    for at in expiries.into_iter().flatten() {
        *at = expiry_at(*at, now);
    }
}

/// `value` as the server stores it when inserting it at `now`: `createdAt`, `updatedAt` and
/// every present event stamp become `now`, `startAt` is raised to `now`, expiry times follow
/// [`expiry_at`]; everything else as sent.
fn inserted_at(value: &TaskExecutionStorageValue, now: u64) -> TaskExecutionStorageValue {
    let mut value = value.clone();
    value.created_at = now;
    value.updated_at = now;
    value.start_at = value.start_at.max(now);
    stamp_times(
        [
            &mut value.started_at,
            &mut value.finished_at,
            &mut value.waiting_for_children_started_at,
            &mut value.waiting_for_finalize_started_at,
            &mut value.on_children_finished_processing_finished_at,
            &mut value.closed_at,
        ],
        [
            &mut value.expires_at,
            &mut value.on_children_finished_processing_expires_at,
            &mut value.close_expires_at,
        ],
        now,
    );
    value
}

/// `value` after `update` applied by the server at `now` (the rules of [`inserted_at`] on the
/// fields the update sets).
fn patched_at(
    value: &TaskExecutionStorageValue,
    update: &TaskExecutionUpdate,
    now: u64,
) -> TaskExecutionStorageValue {
    let mut update = update.clone();
    update.updated_at = now;
    update.start_at = update.start_at.map(|start_at| start_at.max(now));
    stamp_times(
        [
            &mut update.started_at,
            &mut update.finished_at,
            &mut update.waiting_for_children_started_at,
            &mut update.waiting_for_finalize_started_at,
            &mut update.on_children_finished_processing_finished_at,
            &mut update.closed_at,
        ],
        [
            &mut update.expires_at,
            &mut update.on_children_finished_processing_expires_at,
            &mut update.close_expires_at,
        ],
        now,
    );
    let mut value = value.clone();
    value.apply_update(&update);
    value
}

fn update(updated_at: u64) -> TaskExecutionUpdate {
    TaskExecutionUpdate {
        updated_at,
        ..TaskExecutionUpdate::default()
    }
}

fn by_id(id: &str) -> GetByIdRequest {
    GetByIdRequest {
        execution_id: id.to_owned(),
        filters: None,
    }
}

async fn get(
    storage: &ConvexTaskExecutionsStorage,
    ids: &[&str],
) -> Vec<Option<TaskExecutionStorageValue>> {
    storage
        .get_many_by_id(ids.iter().map(|id| by_id(id)).collect())
        .await
        .expect("get_many_by_id")
}

async fn get_one(storage: &ConvexTaskExecutionsStorage, id: &str) -> TaskExecutionStorageValue {
    get(storage, &[id])
        .await
        .pop()
        .flatten()
        .unwrap_or_else(|| panic!("{id} is stored"))
}

/// The stored documents (with `_id`, `shard` and `parentExecutionDocId`), through the client.
async fn docs(storage: &ConvexTaskExecutionsStorage, ids: &[String]) -> Vec<Doc<TaskExecution>> {
    let requests = ids
        .iter()
        .map(|id| tx::ByExecutionIdRequest {
            execution_id: id.clone(),
            filters: None,
        })
        .collect();
    storage
        .client()
        .get_many_by_id(&tx::GetManyByIdArgs { requests })
        .await
        .expect("getManyById")
        .into_iter()
        .zip(ids)
        .map(|(doc, id)| doc.unwrap_or_else(|| panic!("{id} is stored")))
        .collect()
}

/// The stored `updatedAt` of each of `ids`.
async fn updated_at_of(
    storage: &ConvexTaskExecutionsStorage,
    ids: &[String],
) -> HashMap<String, u64> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    get(storage, &ids)
        .await
        .into_iter()
        .zip(&ids)
        .map(|(value, id)| {
            let value = value.unwrap_or_else(|| panic!("{id} is stored"));
            (value.execution_id, value.updated_at)
        })
        .collect()
}

fn ids_of(values: &[TaskExecutionStorageValue]) -> Vec<String> {
    values.iter().map(|v| v.execution_id.clone()).collect()
}

/// `ids` in the order a sharded operation returns them: by shard, then by `key`.
fn in_shard_order(ids: &[String], total_shards: u32, key: impl Fn(&str) -> u64) -> Vec<String> {
    let mut sorted = ids.to_vec();
    sorted.sort_by_key(|id| (shard_of_execution(id, total_shards), key(id)));
    sorted
}

/// `ids` grouped by shard, each group in `key` order.
fn by_shard(
    ids: &[String],
    total_shards: u32,
    key: impl Fn(&str) -> u64,
) -> BTreeMap<u32, Vec<String>> {
    let mut groups: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for id in in_shard_order(ids, total_shards, key) {
        groups
            .entry(shard_of_execution(&id, total_shards))
            .or_default()
            .push(id);
    }
    groups
}

/// The number at the end of an id like `claim-7`.
fn index_of(id: &str) -> u64 {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("an id ending in a number")
}

/// Says that a call count cannot be checked (a real deployment does not count calls).
fn calls_unchecked(what: &str) {
    println!("NOTE: CONVEX_URL deployment: {what} checked by results only (no call counter)");
}

async fn assert_calls(deployment: &TestDeployment, name: &str, expected: u64) {
    match deployment.calls(name).await {
        Some(calls) => assert_eq!(calls, expected, "calls of {name}"),
        None => calls_unchecked(name),
    }
}

// ---------------------------------------------------------------------------------------------
// Inserts and lookups
// ---------------------------------------------------------------------------------------------

async fn inserts_and_lookups(total_shards: u32) {
    let deployment = TestDeployment::new(&format!("inserts_lookups_{total_shards}")).await;
    let storage = deployment.storage(options(total_shards));
    let a = new_value("a");
    let b = new_value("b");
    let mut s = new_value("s");
    s.is_sleeping_task = true;
    s.status = TaskExecutionStatus::Running;
    s.sleeping_task_unique_id = Some("u-s".into());
    s.started_at = Some(PAST);
    s.expires_at = Some(PAST + 60_000);
    let c = child_value("c", "a", 0);
    let (inserted, window) =
        Window::around(storage.insert_many(vec![a.clone(), b.clone(), s.clone(), c.clone()])).await;
    inserted.unwrap();
    // One call, one `now` of the server, taken by every time it stamps.
    let now = get_one(&storage, "a").await.updated_at;
    window.assert_contains(now, "updatedAt of a");
    let stored_s = get_one(&storage, "s").await;
    assert_eq!(
        (stored_s.started_at, stored_s.expires_at),
        (Some(now), Some(now + EXPIRY_GRACE_MS)),
        "sent long ago: startedAt is the server's now, the past expiry gets the grace"
    );
    let [a, b, s, c] = [a, b, s, c].map(|v| inserted_at(&v, now));

    // Values round-trip exactly (but for the server's times), one answer per request, in order.
    assert_eq!(
        get(&storage, &["c", "missing", "a", "s", "b"]).await,
        vec![
            Some(c.clone()),
            None,
            Some(a.clone()),
            Some(s.clone()),
            Some(b)
        ]
    );
    // Every execution went to the shard of its id.
    let ids: Vec<String> = ["a", "b", "s", "c"].map(String::from).to_vec();
    for doc in docs(&storage, &ids).await {
        assert_eq!(
            doc.shard,
            shard_of_execution(&doc.execution_id, total_shards)
        );
    }
    // Filters.
    let filtered = storage
        .get_many_by_id(vec![
            GetByIdRequest {
                execution_id: "a".into(),
                filters: Some(TaskExecutionFilters {
                    status: Some(TaskExecutionStatus::Running),
                    ..Default::default()
                }),
            },
            GetByIdRequest {
                execution_id: "s".into(),
                filters: Some(TaskExecutionFilters {
                    is_sleeping_task: Some(true),
                    ..Default::default()
                }),
            },
        ])
        .await
        .unwrap();
    assert_eq!(filtered, vec![None, Some(s.clone())]);

    let sleeping = storage
        .get_many_by_sleeping_task_unique_id(
            ["nope", "u-s"]
                .map(|u| GetBySleepingTaskUniqueIdRequest {
                    sleeping_task_unique_id: u.into(),
                })
                .to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(sleeping, vec![None, Some(s)]);

    let children = storage
        .get_many_by_parent_execution_id(
            ["a", "b"]
                .map(|p| GetByParentExecutionIdRequest {
                    parent_execution_id: p.into(),
                })
                .to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(children, vec![vec![c], vec![]]);

    // A duplicate refuses the whole call.
    let error = storage
        .insert_many(vec![new_value("fresh"), new_value("a")])
        .await
        .unwrap_err();
    assert!(error.is_already_exists(), "{error}");
    assert_eq!(get(&storage, &["fresh"]).await, vec![None]);
}
with_1_and_3_shards!(inserts_and_lookups);

// ---------------------------------------------------------------------------------------------
// Updates by id, children
// ---------------------------------------------------------------------------------------------

async fn updates_by_id_and_children(total_shards: u32) {
    let deployment = TestDeployment::new(&format!("updates_children_{total_shards}")).await;
    let storage = deployment.storage(options(total_shards));
    let mut p = new_value("p");
    p.executor_id = Some("ex".into());
    p.started_at = Some(5);
    let (inserted, window) =
        Window::around(storage.insert_many(vec![p.clone(), new_value("q"), new_value("r")])).await;
    inserted.unwrap();
    // One call, one `now` of the server.
    let now = get_one(&storage, "p").await.updated_at;
    window.assert_contains(now, "updatedAt of the insert");
    assert_eq!(
        get_one(&storage, "p").await.started_at,
        Some(now),
        "startedAt 5 sent: the server's now"
    );
    let p = inserted_at(&p, now);
    let q = inserted_at(&new_value("q"), now);
    let r = inserted_at(&new_value("r"), now);
    assert_eq!(
        get(&storage, &["p", "q", "r"]).await,
        vec![Some(p.clone()), Some(q.clone()), Some(r.clone())],
        "as sent, with the server's times of the insert"
    );

    let patch = TaskExecutionUpdate {
        status: Some(TaskExecutionStatus::Completed),
        is_finished: Some(true),
        output: Some("done".into()),
        unset: Some(TaskExecutionUnset {
            executor_id: true,
            started_at: true,
            ..Default::default()
        }),
        ..update(500)
    };
    settle().await; // so that the patch's stamp differs from the insert's
    let (updated, window) = Window::around(storage.update_many_by_id(vec![
        UpdateByIdRequest {
            execution_id: "p".into(),
            filters: Some(TaskExecutionFilters {
                status: Some(TaskExecutionStatus::Ready),
                ..Default::default()
            }),
            update: patch.clone(),
        },
        UpdateByIdRequest {
            execution_id: "q".into(),
            filters: Some(TaskExecutionFilters {
                is_finished: Some(true),
                ..Default::default()
            }),
            update: patch.clone(),
        },
    ]))
    .await;
    updated.unwrap();
    let stored_p = get_one(&storage, "p").await;
    window.assert_contains(stored_p.updated_at, "updatedAt of p (500 sent)");
    assert!(stored_p.updated_at > now, "patched after the insert");
    assert_eq!(stored_p, patched_at(&p, &patch, stored_p.updated_at));
    assert_eq!((stored_p.executor_id, stored_p.started_at), (None, None));
    assert_eq!(get_one(&storage, "q").await, q, "filters did not match");

    // r gets 6 children, spread over the shards by their ids.
    let children: Vec<TaskExecutionStorageValue> = (0..6)
        .map(|i| child_value(&format!("r-{i}"), "r", i))
        .collect();
    let r_update = TaskExecutionUpdate {
        status: Some(TaskExecutionStatus::WaitingForChildren),
        active_children_count: Some(6),
        ..update(600)
    };
    settle().await;
    let (updated, window) = Window::around(
        storage.update_many_by_id_and_insert_children_if_updated(vec![
            UpdateByIdAndInsertChildrenIfUpdatedRequest {
                execution_id: "r".into(),
                filters: None,
                update: r_update.clone(),
                children_task_executions_to_insert_if_any_updated: children.clone(),
            },
            // Not updated (filters): its child is not inserted.
            UpdateByIdAndInsertChildrenIfUpdatedRequest {
                execution_id: "q".into(),
                filters: Some(TaskExecutionFilters {
                    status: Some(TaskExecutionStatus::Running),
                    ..Default::default()
                }),
                update: update(600),
                children_task_executions_to_insert_if_any_updated: vec![child_value("q-0", "q", 0)],
            },
        ]),
    )
    .await;
    updated.unwrap();
    let stored_r = get_one(&storage, "r").await;
    let now = stored_r.updated_at;
    window.assert_contains(now, "updatedAt of r (600 sent)");
    assert_eq!(stored_r, patched_at(&r, &r_update, now));
    assert_eq!(
        (stored_r.status, stored_r.active_children_count),
        (TaskExecutionStatus::WaitingForChildren, 6)
    );
    assert_eq!(get(&storage, &["q-0"]).await, vec![None]);
    assert_eq!(get_one(&storage, "q").await, q, "filters did not match");
    let mut listed = storage
        .get_many_by_parent_execution_id(vec![GetByParentExecutionIdRequest {
            parent_execution_id: "r".into(),
        }])
        .await
        .unwrap()
        .remove(0);
    listed.sort_by_key(|v| v.execution_id.clone());
    let inserted_children: Vec<TaskExecutionStorageValue> =
        children.iter().map(|c| inserted_at(c, now)).collect();
    assert_eq!(
        listed, inserted_children,
        "inserted in the call that patched their parent, at its now"
    );
    let r_doc = docs(&storage, &["r".to_owned()]).await.remove(0);
    for doc in docs(&storage, &ids_of(&children)).await {
        assert_eq!(doc.parent_execution_doc_id.as_ref(), Some(&r_doc.id));
        assert_eq!(
            doc.shard,
            shard_of_execution(&doc.execution_id, total_shards)
        );
    }

    // Finish two children, then cancel the unfinished rest.
    storage
        .update_many_by_id(
            ["r-1", "r-4"]
                .map(|id| UpdateByIdRequest {
                    execution_id: id.into(),
                    filters: None,
                    update: TaskExecutionUpdate {
                        is_finished: Some(true),
                        ..update(650)
                    },
                })
                .to_vec(),
        )
        .await
        .unwrap();
    storage
        .update_many_by_parent_execution_id_and_is_finished(vec![
            UpdateByParentExecutionIdAndIsFinishedRequest {
                parent_execution_id: "r".into(),
                is_finished: false,
                update: TaskExecutionUpdate {
                    status: Some(TaskExecutionStatus::Cancelled),
                    ..update(700)
                },
            },
        ])
        .await
        .unwrap();
    for child in &children {
        let stored = get_one(&storage, &child.execution_id).await;
        let finished = ["r-1", "r-4"].contains(&child.execution_id.as_str());
        assert_eq!(
            stored.status == TaskExecutionStatus::Cancelled,
            !finished,
            "{}",
            child.execution_id
        );
    }
}
with_1_and_3_shards!(updates_by_id_and_children);

// ---------------------------------------------------------------------------------------------
// Sharded range updates
// ---------------------------------------------------------------------------------------------

async fn claims_fan_out_over_shards(total_shards: u32) {
    let deployment = TestDeployment::new(&format!("claims_{total_shards}")).await;
    let storage = deployment.storage(options(total_shards));
    // 12 ready executions, inserted in id order.
    let ids: Vec<String> = (0..12).map(|i| format!("claim-{i}")).collect();
    let values: Vec<TaskExecutionStorageValue> = ids
        .iter()
        .map(|id| {
            let mut value = new_value(id);
            value.timeout_ms = 1_000 + index_of(id);
            value
        })
        .collect();
    storage.insert_many(values).await.unwrap();
    // Their startAt in descending id order (claim-11 first), so that start order is not
    // insertion order: each is set by a call of its own, in that order, to a past time the
    // server raises to its `now`.
    let mut start_ats: HashMap<String, u64> = HashMap::new();
    let mut previous = 0;
    for id in ids.iter().rev() {
        settle().await;
        let (updated, window) =
            Window::around(storage.update_many_by_id(vec![UpdateByIdRequest {
                execution_id: id.clone(),
                filters: None,
                update: TaskExecutionUpdate {
                    start_at: Some(PAST),
                    ..update(PAST)
                },
            }]))
            .await;
        updated.unwrap();
        let stored = get_one(&storage, id).await;
        window.assert_contains(stored.start_at, format_args!("startAt of {id}"));
        assert_eq!(stored.start_at, stored.updated_at, "{id}: one now per call");
        assert!(
            stored.start_at > previous,
            "{id}: startAt {} after the previous call's {previous}",
            stored.start_at
        );
        previous = stored.start_at;
        start_ats.insert(id.clone(), stored.start_at);
    }
    let start_at = |id: &str| start_ats[id];
    let groups = by_shard(&ids, total_shards, start_at);
    if total_shards == 3 {
        assert_eq!(
            groups.len(),
            3,
            "the ids spread over all 3 shards: {groups:?}"
        );
    }
    // Sent from long ago or far ahead: the server's clock decides the stamps, the lease and
    // the bound (lowered to its `now`, past every startAt once `settle` has passed).
    let claim = |limit: u32| UpdateByStatusAndStartAtLessThanRequest {
        status: TaskExecutionStatus::Ready,
        start_at_less_than: FUTURE,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::Running),
            executor_id: Some("ex".into()),
            started_at: Some(PAST),
            ..update(PAST)
        },
        update_expires_at_with_started_at: PAST,
        limit,
    };
    let mut claimed: Vec<String> = Vec::new();
    settle().await;

    // A storage serving only the last shard claims only there.
    let last = total_shards - 1;
    let partial = ConvexTaskExecutionsStorage::new(
        deployment.client(),
        options(total_shards).with_shards(Some(vec![last])),
    )
    .unwrap();
    let got = partial
        .update_by_status_and_start_at_less_than_and_return(claim(1))
        .await
        .unwrap();
    assert_eq!(ids_of(&got), groups[&last][..1].to_vec());
    claimed.extend(ids_of(&got));

    // Every shard with the full limit 2, concatenated in shard order.
    let (got, window) =
        Window::around(storage.update_by_status_and_start_at_less_than_and_return(claim(2))).await;
    let got = got.unwrap();
    let expected: Vec<String> = groups
        .values()
        .flat_map(|group| {
            group
                .iter()
                .filter(|id| !claimed.contains(id))
                .take(2)
                .cloned()
        })
        .collect();
    assert_eq!(ids_of(&got), expected);
    for value in &got {
        let id = &value.execution_id;
        window.assert_contains(value.updated_at, format_args!("updatedAt of {id}"));
        assert_eq!(value.status, TaskExecutionStatus::Running);
        assert_eq!(value.started_at, Some(value.updated_at), "{id}: startedAt");
        assert_eq!(
            value.expires_at,
            Some(value.updated_at + value.timeout_ms),
            "{id}: leased for its timeout from the server's now"
        );
        assert_eq!(
            get_one(&storage, &value.execution_id).await,
            *value,
            "stored as returned"
        );
    }
    claimed.extend(ids_of(&got));

    let got = storage
        .update_by_status_and_start_at_less_than_and_return(claim(100))
        .await
        .unwrap();
    claimed.extend(ids_of(&got));
    claimed.sort_by_key(|id| index_of(id));
    assert_eq!(claimed, ids, "each execution claimed exactly once");
}
with_1_and_3_shards!(claims_fan_out_over_shards);

async fn range_updates_fan_out_over_shards(total_shards: u32) {
    let deployment = TestDeployment::new(&format!("ranges_{total_shards}")).await;
    let storage = deployment.storage(options(total_shards));
    // Six executions per operation, x-0 to x-5, inserted in id order.
    let ids = |prefix: &str| -> Vec<String> { (0..6).map(|i| format!("{prefix}-{i}")).collect() };
    let make = |prefix: &str, edit: &dyn Fn(&mut TaskExecutionStorageValue)| {
        ids(prefix)
            .iter()
            .map(|id| {
                let mut value = new_value(id);
                edit(&mut value);
                value
            })
            .collect::<Vec<_>>()
    };
    let mut all = Vec::new();
    all.extend(make("ocfp", &|v| {
        v.status = TaskExecutionStatus::WaitingForChildren
    }));
    all.extend(make("close", &|v| v.close_status = CloseStatus::Ready));
    all.extend(make("npc", &|v| {
        v.status = TaskExecutionStatus::Running;
        v.executor_id = Some("ex".into());
        v.needs_promise_cancellation = true;
    }));
    // Sent as updated in 2096 (a client far ahead): stored with the server's `now`, so it is
    // not kept from the `updatedAt < now` operations whose other conditions it matches.
    let mut ahead = new_value("ahead");
    ahead.status = TaskExecutionStatus::WaitingForChildren;
    ahead.close_status = CloseStatus::Ready;
    ahead.updated_at = FUTURE;
    all.push(ahead);
    let (inserted, window) = Window::around(storage.insert_many(all)).await;
    inserted.unwrap();
    let ahead = get_one(&storage, "ahead").await;
    window.assert_contains(ahead.updated_at, "updatedAt of ahead (2096 sent)");
    let reached = Reached::new(ahead.updated_at);

    // The expiry times the sweeps select by, kept as sent: x-i expires at t + i, t ahead of the
    // server's clock; and one of each in 2096, which no sweep reaches.
    let t = reached.lower_bound() + AHEAD_MARGIN_MS;
    let expires = |v: &TaskExecutionStorageValue| Some(t + index_of(&v.execution_id));
    let mut expiring = Vec::new();
    expiring.extend(make("expiry", &|v| {
        v.status = TaskExecutionStatus::Running;
        v.expires_at = expires(v);
    }));
    expiring.extend(make("ocfpx", &|v| {
        v.on_children_finished_processing_expires_at = expires(v)
    }));
    expiring.extend(make("closex", &|v| v.close_expires_at = expires(v)));
    let mut later = ["later-expiry", "later-ocfpx", "later-closex"].map(new_value);
    later[0].status = TaskExecutionStatus::Running;
    later[0].expires_at = Some(FUTURE);
    later[1].on_children_finished_processing_expires_at = Some(FUTURE);
    later[2].close_expires_at = Some(FUTURE);
    expiring.extend(later.clone());
    storage.insert_many(expiring.clone()).await.unwrap();
    let expiry_times = |v: &TaskExecutionStorageValue| {
        (
            v.expires_at,
            v.on_children_finished_processing_expires_at,
            v.close_expires_at,
        )
    };
    let expiring_ids: Vec<&str> = expiring.iter().map(|v| v.execution_id.as_str()).collect();
    for (sent, stored) in expiring.iter().zip(get(&storage, &expiring_ids).await) {
        let stored = stored.unwrap_or_else(|| panic!("{} is stored", sent.execution_id));
        assert_eq!(
            expiry_times(&stored),
            expiry_times(sent),
            "{}: placed ahead of the server's clock, kept as sent (else the insert took over \
             {AHEAD_MARGIN_MS} ms)",
            sent.execution_id
        );
    }

    // updatedAt in descending index order (x-5 first), so that it is not insertion order:
    // x-i of the three sharded operations in a call of their own, one call after the other.
    let mut previous = ahead.updated_at;
    for i in (0..6).rev() {
        let batch: Vec<String> = ["ocfp", "close", "npc"]
            .map(|prefix| format!("{prefix}-{i}"))
            .to_vec();
        settle().await;
        let (updated, window) = Window::around(
            storage.update_many_by_id(
                batch
                    .iter()
                    .map(|id| UpdateByIdRequest {
                        execution_id: id.clone(),
                        filters: None,
                        update: update(PAST),
                    })
                    .collect(),
            ),
        )
        .await;
        updated.unwrap();
        let stamps = updated_at_of(&storage, &batch).await;
        let now = stamps[&batch[0]];
        window.assert_contains(now, format_args!("updatedAt of {batch:?}"));
        assert!(
            stamps.values().all(|&stamp| stamp == now),
            "one now per call: {stamps:?}"
        );
        assert!(
            now > previous,
            "{batch:?}: {now} after the previous call's {previous}"
        );
        previous = now;
    }

    // Each returns its executions by shard, then least recently updated first: the stamps read
    // just before the call decide the expected order.
    let with_ahead = |prefix: &str| {
        let mut ids = ids(prefix);
        ids.push("ahead".to_owned());
        ids
    };
    let ocfp_ids = with_ahead("ocfp");
    let stamps = updated_at_of(&storage, &ocfp_ids).await;
    settle().await;
    let (ocfp, window) = Window::around(
        storage
        .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
            UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
                status: TaskExecutionStatus::WaitingForChildren,
                on_children_finished_processing_status: OnChildrenFinishedProcessingStatus::Idle,
                update: TaskExecutionUpdate {
                    on_children_finished_processing_status: Some(
                        OnChildrenFinishedProcessingStatus::Processing,
                    ),
                    ..update(PAST + 1)
                },
                limit: 100,
            },
        ),
    )
    .await;
    let ocfp = ocfp.unwrap();
    assert_eq!(
        ids_of(&ocfp),
        in_shard_order(&ocfp_ids, total_shards, |id| stamps[id])
    );
    for v in &ocfp {
        assert_eq!(
            v.on_children_finished_processing_status,
            OnChildrenFinishedProcessingStatus::Processing
        );
        window.assert_contains(
            v.updated_at,
            format_args!("updatedAt of {}", v.execution_id),
        );
    }

    // ahead was just patched: now the last of its shard.
    let close_ids = with_ahead("close");
    let stamps = updated_at_of(&storage, &close_ids).await;
    settle().await;
    let (close, window) = Window::around(storage.update_by_close_status_and_return(
        UpdateByCloseStatusRequest {
            close_status: CloseStatus::Ready,
            update: TaskExecutionUpdate {
                close_status: Some(CloseStatus::Closing),
                ..update(PAST + 1)
            },
            limit: 100,
        },
    ))
    .await;
    let close = close.unwrap();
    assert_eq!(
        ids_of(&close),
        in_shard_order(&close_ids, total_shards, |id| stamps[id])
    );
    for v in &close {
        assert_eq!(v.close_status, CloseStatus::Closing);
        window.assert_contains(
            v.updated_at,
            format_args!("updatedAt of {}", v.execution_id),
        );
    }

    let npc_ids = ids("npc");
    let stamps = updated_at_of(&storage, &npc_ids).await;
    let npc = storage
        .update_by_executor_id_and_needs_promise_cancellation_and_return(
            UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
                executor_id: "ex".into(),
                needs_promise_cancellation: true,
                update: TaskExecutionUpdate {
                    needs_promise_cancellation: Some(false),
                    ..update(PAST + 1)
                },
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ids_of(&npc),
        in_shard_order(&npc_ids, total_shards, |id| stamps[id])
    );
    assert!(npc.iter().all(|v| !v.needs_promise_cancellation));

    // The expiry operations have no shard: one count over all of them; limit 4 then the rest.
    // Their bound, sent in 2096, is lowered to the server's now: once t + 5 has passed, the
    // six x-i, not the one expiring in 2096.
    reached.wait_past(t + 5).await;
    let expire = |limit: u32| UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
        status: TaskExecutionStatus::Running,
        is_sleeping_task: false,
        expires_at_less_than: FUTURE,
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
        storage
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(expire(4))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        storage
            .update_by_status_and_is_sleeping_task_and_expires_at_less_than(expire(100))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        get_one(&storage, "expiry-5").await.status,
        TaskExecutionStatus::TimedOut
    );

    let ocfp_expire = |limit: u32| UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest {
        on_children_finished_processing_expires_at_less_than: FUTURE,
        update: TaskExecutionUpdate {
            unset: Some(TaskExecutionUnset {
                on_children_finished_processing_expires_at: true,
                ..Default::default()
            }),
            ..update(PAST + 1)
        },
        limit,
    };
    assert_eq!(
        storage
            .update_by_on_children_finished_processing_expires_at_less_than(ocfp_expire(4))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        storage
            .update_by_on_children_finished_processing_expires_at_less_than(ocfp_expire(100))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        get_one(&storage, "ocfpx-0")
            .await
            .on_children_finished_processing_expires_at,
        None
    );

    let close_expire = |limit: u32| UpdateByCloseExpiresAtLessThanRequest {
        close_expires_at_less_than: FUTURE,
        update: TaskExecutionUpdate {
            unset: Some(TaskExecutionUnset {
                close_expires_at: true,
                ..Default::default()
            }),
            ..update(PAST + 1)
        },
        limit,
    };
    assert_eq!(
        storage
            .update_by_close_expires_at_less_than(close_expire(4))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        storage
            .update_by_close_expires_at_less_than(close_expire(100))
            .await
            .unwrap(),
        2
    );
    assert_eq!(get_one(&storage, "closex-0").await.close_expires_at, None);

    for value in &later {
        let stored = get_one(&storage, &value.execution_id).await;
        assert_eq!(
            (stored.status, expiry_times(&stored)),
            (value.status, expiry_times(value)),
            "{}: expires in 2096, not reached by a bound sent in 2096",
            value.execution_id
        );
    }
}
with_1_and_3_shards!(range_updates_fan_out_over_shards);

async fn decrement_splits_its_limit_across_shards(total_shards: u32) {
    let deployment = TestDeployment::new(&format!("decrement_{total_shards}")).await;
    let storage = deployment.storage(options(total_shards));
    // Parent P with 9 finished children ready to close, inserted in id order in one call.
    let ids: Vec<String> = (0..9).map(|i| format!("fin-{i}")).collect();
    let mut parent = new_value("P");
    parent.active_children_count = 9;
    let mut values = vec![parent];
    for (i, id) in ids.iter().enumerate() {
        let mut child = child_value(id, "P", u32::try_from(i).unwrap());
        child.is_finished = true;
        child.close_status = CloseStatus::Ready;
        values.push(child);
    }
    storage.insert_many(values).await.unwrap();
    let groups = by_shard(&ids, total_shards, index_of);
    let request = |limit: u32| UpdateAndDecrementParentActiveChildrenCountRequest {
        is_finished: true,
        close_status: CloseStatus::Ready,
        update: TaskExecutionUpdate {
            close_status: Some(CloseStatus::Closed),
            ..update(900)
        },
        limit,
    };
    // What a storage owning `shards` closes with `limit`: each shard gets the limit split
    // across the owned shards, rounding up.
    let expected = |shards: &[u32], limit: u32, groups: &BTreeMap<u32, Vec<String>>| -> u32 {
        let per_shard = split_limit(limit, shards.len()) as usize;
        shards
            .iter()
            .map(|s| groups.get(s).map_or(0, |g| g.len().min(per_shard)))
            .sum::<usize>() as u32
    };

    let all_shards: Vec<u32> = (0..total_shards).collect();
    settle().await; // the children's updatedAt (the insert's now) must be past: `updatedAt < now`
    let (count, window) = Window::around(
        storage.update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            request(3),
        ),
    )
    .await;
    let count = count.unwrap();
    // 1 shard: 3. 3 shards: 1 per shard (3 / 3), so one per shard that has children.
    assert_eq!(count, expected(&all_shards, 3, &groups));
    if total_shards == 3 {
        assert_eq!(
            groups.len(),
            3,
            "the children spread over all 3 shards: {groups:?}"
        );
    }
    let mut acc = 9 - count;
    let parent = get_one(&storage, "P").await;
    assert_eq!(parent.active_children_count, acc);
    window.assert_contains(
        parent.updated_at,
        "the parent's updatedAt (900 sent): the decrement's now",
    );

    // The rest.
    let (count, window) = Window::around(
        storage.update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            request(100),
        ),
    )
    .await;
    acc -= count.unwrap();
    assert_eq!(acc, 0, "every child closed once");
    let parent = get_one(&storage, "P").await;
    assert_eq!(parent.active_children_count, 0);
    window.assert_contains(
        parent.updated_at,
        "the parent's updatedAt (900 sent): the last decrement's now",
    );
}
with_1_and_3_shards!(decrement_splits_its_limit_across_shards);

/// With 3 shards of which 2 are owned, a limit of 3 is 2 per owned shard (rounding up).
#[tokio::test]
async fn decrement_splits_its_limit_across_owned_shards_rounding_up() {
    let deployment = TestDeployment::new("decrement_owned").await;
    let storage = deployment.storage(options(3));
    let ids: Vec<String> = (0..12).map(|i| format!("fin-{i}")).collect();
    let mut values = Vec::new();
    for id in &ids {
        let mut value = new_value(id);
        value.is_finished = true;
        value.close_status = CloseStatus::Ready;
        values.push(value);
    }
    storage.insert_many(values).await.unwrap();
    let groups = by_shard(&ids, 3, index_of);
    let owned = [0u32, 2];
    assert!(
        owned
            .iter()
            .all(|s| groups.get(s).is_some_and(|g| g.len() >= 2)),
        "the test needs 2 executions in shards 0 and 2: {groups:?}"
    );
    let partial = ConvexTaskExecutionsStorage::new(
        deployment.client(),
        options(3).with_shards(Some(owned.to_vec())),
    )
    .unwrap();
    let count = partial
        .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            UpdateAndDecrementParentActiveChildrenCountRequest {
                is_finished: true,
                close_status: CloseStatus::Ready,
                update: TaskExecutionUpdate {
                    close_status: Some(CloseStatus::Closed),
                    ..update(900)
                },
                limit: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(count, 4, "ceil(3 / 2) = 2 in each of the 2 owned shards");
    for id in &groups[&1] {
        assert_eq!(
            get_one(&storage, id).await.close_status,
            CloseStatus::Ready,
            "shard 1 not owned"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Test mode
// ---------------------------------------------------------------------------------------------

async fn delete_operations_follow_test_mode(total_shards: u32) {
    let deployment = TestDeployment::new(&format!("test_mode_on_{total_shards}")).await;
    let off = ConvexTaskExecutionsStorage::new(
        deployment.client(),
        options(total_shards).with_test_mode(false),
    )
    .unwrap();
    let on = deployment.storage(options(total_shards));
    on.insert_many(vec![new_value("a"), new_value("b"), new_value("c")])
        .await
        .unwrap();

    // Storage test mode off: refused by the client, nothing is sent.
    for error in [
        off.delete_by_id("a").await.unwrap_err(),
        off.delete_all().await.unwrap_err(),
    ] {
        assert!(
            matches!(error, StorageError::TestModeRequired { .. }),
            "{error:?}"
        );
    }
    assert!(get(&on, &["a", "b", "c"]).await.iter().all(Option::is_some));
    assert_calls(&deployment, "deleteById", 0).await;
    assert_calls(&deployment, "deleteAll", 0).await;

    // On: they reach the server and delete.
    on.delete_by_id("a").await.unwrap();
    assert_eq!(get(&on, &["a"]).await, vec![None]);
    on.delete_all().await.unwrap();
    assert_eq!(get(&on, &["b", "c"]).await, vec![None, None]);
}
with_1_and_3_shards!(delete_operations_follow_test_mode);

#[tokio::test]
async fn delete_operations_on_a_server_without_test_mode() {
    let Some(deployment) = TestDeployment::without_test_mode("test_mode_off_server").await else {
        return;
    };
    let off =
        ConvexTaskExecutionsStorage::new(deployment.client(), ConvexStorageOptions::default())
            .unwrap();
    off.insert_many(vec![new_value("a")]).await.unwrap();
    // Test mode off in the storage: refused by the client, nothing sent.
    let error = off.delete_by_id("a").await.unwrap_err();
    assert!(
        matches!(&error, StorageError::TestModeRequired { function, .. } if function == "deleteById"),
        "{error:?}"
    );
    assert!(matches!(
        off.delete_all().await.unwrap_err(),
        StorageError::TestModeRequired { .. }
    ));
    assert_calls(&deployment, "deleteById", 0).await;
    assert_calls(&deployment, "deleteAll", 0).await;
    // On in the storage: the server refuses, with the same typed error.
    let on = deployment.storage(options(1));
    for error in [
        on.delete_by_id("a").await.unwrap_err(),
        on.delete_all().await.unwrap_err(),
    ] {
        match &error {
            StorageError::TestModeRequired { function, message } => {
                assert!(
                    function.starts_with("taskExecutionsStorage:delete"),
                    "{function}"
                );
                assert!(
                    message.contains("TASK_EXECUTIONS_STORAGE_TEST_MODE"),
                    "{message}"
                );
            }
            other => panic!("expected TestModeRequired, got {other:?}"),
        }
        assert!(!error.is_transient());
    }
    assert!(get(&on, &["a"]).await[0].is_some(), "nothing deleted");
}

// ---------------------------------------------------------------------------------------------
// Batches over several calls
// ---------------------------------------------------------------------------------------------

async fn batches_are_split_into_calls_in_order(total_shards: u32) {
    let deployment = TestDeployment::new(&format!("batches_{total_shards}")).await;
    let storage = deployment.storage(options(total_shards).with_max_items_per_call(Some(PER_CALL)));
    // 250 ready executions b-i starting at t + 250 - i (start order is the reverse of id
    // order), t ahead of the server's clock so that they are kept as sent; 50 sleeping ones
    // with unique ids and 2 children: 302 inserts, 4 calls (100 + 100 + 100 + 2).
    let t = now_millis() + AHEAD_MARGIN_MS;
    let start_at = |id: &str| t + 250 - index_of(id);
    let ready: Vec<String> = (0..250).map(|i| format!("b-{i}")).collect();
    let mut values: Vec<TaskExecutionStorageValue> = ready
        .iter()
        .map(|id| {
            let mut value = new_value(id);
            value.start_at = start_at(id);
            value
        })
        .collect();
    for i in 0..50 {
        let mut value = new_value(&format!("s-{i}"));
        value.is_sleeping_task = true;
        value.status = TaskExecutionStatus::Running;
        value.sleeping_task_unique_id = Some(format!("u-{i}"));
        values.push(value);
    }
    // And one child each for b-7 and b-200, found by the parent lookups below.
    values.push(child_value("b-7-child", "b-7", 0));
    values.push(child_value("b-200-child", "b-200", 0));
    let inserted: BTreeMap<String, TaskExecutionStorageValue> = values
        .iter()
        .map(|v| (v.execution_id.clone(), v.clone()))
        .collect();
    let (result, insert_window) = Window::around(storage.insert_many(values)).await;
    result.unwrap();
    assert_calls(&deployment, "insertMany", 4).await;

    // getManyById: the 250 in reverse, with a missing id after every 25th: 260 requests, 3 calls.
    let mut wanted: Vec<String> = Vec::new();
    for (i, id) in ready.iter().rev().enumerate() {
        wanted.push(id.clone());
        if i % 25 == 0 {
            wanted.push(format!("missing-{i}"));
        }
    }
    assert_eq!(wanted.len(), 260);
    let found = storage
        .get_many_by_id(wanted.iter().map(|id| by_id(id)).collect())
        .await
        .unwrap();
    // Each as sent, with the times of the server's now of the call that carried it.
    let expected: Vec<Option<TaskExecutionStorageValue>> = wanted
        .iter()
        .zip(&found)
        .map(|(id, got)| {
            let sent = inserted.get(id)?;
            let Some(got) = got else {
                return Some(sent.clone());
            };
            insert_window.assert_contains(got.updated_at, format_args!("updatedAt of {id}"));
            assert_eq!(
                got.start_at, sent.start_at,
                "{id}: startAt placed ahead of the server's clock, kept as sent (else the \
                 insert took over {AHEAD_MARGIN_MS} ms)"
            );
            Some(inserted_at(sent, got.updated_at))
        })
        .collect();
    assert_eq!(found, expected, "answers in request order");
    assert_calls(&deployment, "getManyById", 3).await;
    let reached = Reached::new(
        found
            .iter()
            .flatten()
            .map(|v| v.updated_at)
            .max()
            .expect("found some"),
    );

    // getManyBySleepingTaskUniqueId: 250 requests (each unique id, then 4 missing ones), 3 calls.
    let uniques: Vec<String> = (0..50)
        .flat_map(|i| {
            std::iter::once(format!("u-{i}")).chain((0..4).map(move |k| format!("none-{i}-{k}")))
        })
        .collect();
    let found = storage
        .get_many_by_sleeping_task_unique_id(
            uniques
                .iter()
                .map(|u| GetBySleepingTaskUniqueIdRequest {
                    sleeping_task_unique_id: u.clone(),
                })
                .collect(),
        )
        .await
        .unwrap();
    let found: Vec<Option<String>> = found
        .into_iter()
        .map(|v| v.map(|v| v.execution_id))
        .collect();
    let expected: Vec<Option<String>> = uniques
        .iter()
        .map(|u| u.strip_prefix("u-").map(|i| format!("s-{i}")))
        .collect();
    assert_eq!(found, expected);
    assert_calls(&deployment, "getManyBySleepingTaskUniqueId", 3).await;

    // getManyByParentExecutionId: 250 parents, 3 calls.
    let lists = storage
        .get_many_by_parent_execution_id(
            ready
                .iter()
                .map(|p| GetByParentExecutionIdRequest {
                    parent_execution_id: p.clone(),
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(lists.len(), 250);
    for (parent, list) in ready.iter().zip(&lists) {
        let expected: Vec<String> = match parent.as_str() {
            "b-7" | "b-200" => vec![format!("{parent}-child")],
            _ => vec![],
        };
        assert_eq!(ids_of(list), expected, "children of {parent}");
    }
    assert_calls(&deployment, "getManyByParentExecutionId", 3).await;

    // updateManyById: 250 requests, 3 calls; each execution gets its own retryAttempts.
    storage
        .update_many_by_id(
            ready
                .iter()
                .map(|id| UpdateByIdRequest {
                    execution_id: id.clone(),
                    filters: None,
                    update: TaskExecutionUpdate {
                        retry_attempts: Some(u32::try_from(index_of(id)).unwrap()),
                        ..update(PAST + 1)
                    },
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_calls(&deployment, "updateManyById", 3).await;
    for value in get(&storage, &["b-0", "b-99", "b-100", "b-249"]).await {
        let value = value.unwrap();
        assert_eq!(
            u64::from(value.retry_attempts),
            index_of(&value.execution_id)
        );
    }

    // updateManyByParentExecutionIdAndIsFinished: 250 requests, 3 calls.
    storage
        .update_many_by_parent_execution_id_and_is_finished(
            ready
                .iter()
                .map(|p| UpdateByParentExecutionIdAndIsFinishedRequest {
                    parent_execution_id: p.clone(),
                    is_finished: false,
                    update: TaskExecutionUpdate {
                        status: Some(TaskExecutionStatus::Cancelled),
                        ..update(PAST + 1)
                    },
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_calls(&deployment, "updateManyByParentExecutionIdAndIsFinished", 3).await;
    for id in ["b-7-child", "b-200-child"] {
        assert_eq!(
            get_one(&storage, id).await.status,
            TaskExecutionStatus::Cancelled
        );
    }

    // A claim of up to 250 with at most 100 per call: ONE call per shard, limit clamped to 100
    // (a second call could patch twice what its update leaves in the range). Each shard gives
    // its first 100 by ascending startAt, shards concatenated in order. The bound, sent in
    // 2096, is lowered to the server's now: past every startAt once the latest has passed.
    reached.wait_past(start_at("b-0")).await;
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(
            UpdateByStatusAndStartAtLessThanRequest {
                status: TaskExecutionStatus::Ready,
                start_at_less_than: FUTURE,
                update: TaskExecutionUpdate {
                    status: Some(TaskExecutionStatus::Running),
                    ..update(PAST + 2)
                },
                update_expires_at_with_started_at: PAST + 2,
                limit: 250,
            },
        )
        .await
        .unwrap();
    let expected: Vec<String> = by_shard(&ready, total_shards, start_at)
        .into_values()
        .flat_map(|ids| ids.into_iter().take(PER_CALL as usize))
        .collect();
    assert_eq!(ids_of(&claimed), expected);
    if total_shards == 1 {
        assert_eq!(claimed.len(), 100);
        assert_calls(&deployment, "updateByStatusAndStartAtLessThanAndReturn", 1).await;
    }
}
with_1_and_3_shards!(batches_are_split_into_calls_in_order);

async fn children_batches_keep_parents_with_their_children(total_shards: u32) {
    let deployment = TestDeployment::new(&format!("children_batches_{total_shards}")).await;
    let storage = deployment.storage(options(total_shards).with_max_items_per_call(Some(PER_CALL)));
    // 250 parents (3 insert calls), each getting 2 children: 250 requests = 3 calls.
    let parents: Vec<String> = (0..250).map(|i| format!("p-{i}")).collect();
    storage
        .insert_many(parents.iter().map(|id| new_value(id)).collect())
        .await
        .unwrap();
    let child_ids = |parent: &str| [format!("{parent}-c0"), format!("{parent}-c1")];
    storage
        .update_many_by_id_and_insert_children_if_updated(
            parents
                .iter()
                .map(|p| UpdateByIdAndInsertChildrenIfUpdatedRequest {
                    execution_id: p.clone(),
                    filters: None,
                    update: TaskExecutionUpdate {
                        status: Some(TaskExecutionStatus::WaitingForChildren),
                        active_children_count: Some(2),
                        ..update(PAST + 1)
                    },
                    children_task_executions_to_insert_if_any_updated: child_ids(p)
                        .iter()
                        .enumerate()
                        .map(|(i, c)| child_value(c, p, u32::try_from(i).unwrap()))
                        .collect(),
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_calls(&deployment, "updateManyByIdAndInsertChildrenIfUpdated", 3).await;

    // The server sets parentExecutionDocId from the parent it patched in the same
    // transaction: every child pointing at its own parent's _id shows they travelled together.
    let parent_docs = docs(&storage, &parents).await;
    let all_children: Vec<String> = parents.iter().flat_map(|p| child_ids(p)).collect();
    let child_docs = docs(&storage, &all_children).await;
    for (parent, children) in parent_docs.iter().zip(child_docs.chunks(2)) {
        assert_eq!(parent.status, TaskExecutionStatus::WaitingForChildren);
        for child in children {
            assert_eq!(
                child.parent_execution_id.as_deref(),
                Some(parent.execution_id.as_str())
            );
            assert_eq!(
                child.parent_execution_doc_id.as_ref(),
                Some(&parent.id),
                "{}",
                child.execution_id
            );
        }
    }
}
with_1_and_3_shards!(children_batches_keep_parents_with_their_children);

// ---------------------------------------------------------------------------------------------
// Typed refusals, big documents, the server's clock
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_refusal_of_the_server_is_a_typed_error() {
    let deployment = TestDeployment::new("typed_refusals").await;
    let storage = deployment.storage(options(1));
    storage.insert_many(vec![new_value("dup")]).await.unwrap();
    let error = storage
        .insert_many(vec![new_value("dup")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, StorageError::AlreadyExists { .. }),
        "{error:?}"
    );
    assert!(!error.is_transient());

    let wrong = ConvexTaskExecutionsStorage::new(
        deployment.client_with_secret("not-the-secret"),
        options(1),
    )
    .unwrap();
    let error = wrong.get_many_by_id(vec![by_id("dup")]).await.unwrap_err();
    match &error {
        StorageError::Unauthorized { function, message } => {
            assert_eq!(function, "taskExecutionsStorage:getManyById");
            assert!(!message.contains("not-the-secret"), "{message}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(!error.is_transient() && !error.is_retry_safe());
    assert!(!format!("{error} {error:?}").contains("not-the-secret"));

    // Arguments the typed client cannot produce, sent raw: a negative limit is refused as an
    // invalid argument, one over the per-call maximum as over a budget.
    let http = deployment.http();
    let client = deployment.client();
    let raw = |limit: i64| {
        let client = client.clone();
        async move {
            client
                .call(&RawSweep {
                    close_expires_at_less_than: 10,
                    update: update(1),
                    limit,
                })
                .await
                .unwrap_err()
        }
    };
    let error = StorageError::from(raw(-1).await);
    assert!(
        matches!(error, StorageError::InvalidArgument { .. }),
        "{error:?}"
    );
    let error = StorageError::from(raw(10_000_000).await);
    assert!(
        matches!(error, StorageError::LimitExceeded { .. }),
        "{error:?}"
    );
    drop(http);
}

/// `updateByCloseExpiresAt` with a signed `limit`, to send what the typed client cannot.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RawSweep {
    close_expires_at_less_than: u64,
    update: TaskExecutionUpdate,
    limit: i64,
}

impl durable_execution_storage_convex::runtime::ConvexOperation for RawSweep {
    const NAME: &'static str = tx::UpdateByCloseExpiresAtArgs::NAME;
    const KIND: durable_execution_storage_convex::runtime::FunctionKind =
        durable_execution_storage_convex::runtime::FunctionKind::Action;
    const TEST_ONLY: bool = false;
    const LIMITS: durable_execution_storage_convex::runtime::OperationLimits =
        tx::UpdateByCloseExpiresAtArgs::LIMITS;
    type Response = u32;
}

/// `count` executions `{prefix}{i:05}` whose input is `bytes` long.
fn big_values(prefix: &str, count: usize, bytes: usize) -> Vec<TaskExecutionStorageValue> {
    (0..count)
        .map(|i| {
            let mut value = new_value(&format!("{prefix}{i:05}"));
            // Different contents, so that a mix-up would show.
            value.input = format!("{i:05}{}", "x".repeat(bytes - 5));
            value
        })
        .collect()
}

/// How many `insertMany` calls the planner cuts `values` into (the fewest the per-call
/// budgets allow).
fn planned_insert_calls(values: &[TaskExecutionStorageValue]) -> usize {
    use durable_execution_storage_convex::runtime::ConvexOperation;
    let documents: Vec<TaskExecution> = values.iter().map(|v| v.clone().into_document(0)).collect();
    durable_execution_storage_convex::storage::chunking::plan_elements(
        tx::InsertManyArgs::NAME,
        &tx::InsertManyArgs::LIMITS,
        &documents,
        |_| 0,
        |d| d.execution_id.clone(),
    )
    .expect("plannable")
    .len()
}

async fn assert_read_back_in_order(
    storage: &ConvexTaskExecutionsStorage,
    values: &[TaskExecutionStorageValue],
) {
    let ids: Vec<&str> = values.iter().map(|v| v.execution_id.as_str()).collect();
    let stored = get(storage, &ids).await;
    assert_eq!(stored.len(), values.len());
    for (value, stored) in values.iter().zip(stored) {
        let stored = stored.unwrap_or_else(|| panic!("{} is stored", value.execution_id));
        assert_eq!(stored.execution_id, value.execution_id);
        assert!(
            stored.input == value.input,
            "{}: input differs",
            value.execution_id
        );
    }
}

#[tokio::test]
async fn documents_of_900_kib_are_stored_and_read_back_in_as_few_calls_as_the_limits_allow() {
    let deployment = TestDeployment::new("docs_900_kib").await;
    let storage = deployment.storage(options(1));
    let values = big_values("big", 10, 900 * 1024);
    let planned = planned_insert_calls(&values);
    // 8 MiB of arguments per call (less the envelope's reserve) holds 9 of them.
    assert_eq!(planned, 2);
    storage.insert_many(values.clone()).await.expect("stored");
    assert_calls(&deployment, "insertMany", 2).await;
    assert_read_back_in_order(&storage, &values).await;
    // 9 MiB read and returned: one call.
    assert_calls(&deployment, "getManyById", 1).await;
}

#[tokio::test]
async fn an_execution_over_1_mib_is_refused_before_anything_is_sent() {
    let deployment = TestDeployment::new("doc_1_1_mib").await;
    let storage = deployment.storage(options(1));
    let mut values = big_values("ok", 2, 1024);
    values.extend(big_values("huge", 1, 1_100 * 1024));
    let error = storage.insert_many(values).await.unwrap_err();
    match &error {
        StorageError::DocumentTooLarge {
            execution_id,
            bytes,
            limit,
        } => {
            assert_eq!(execution_id, "huge00000");
            assert!(*bytes > 1_100 * 1024, "{bytes}");
            assert_eq!(*limit, 1024 * 1024);
        }
        other => panic!("expected DocumentTooLarge, got {other:?}"),
    }
    assert!(!error.is_transient() && !error.is_retry_safe());
    assert_calls(&deployment, "insertMany", 0).await;
    assert_eq!(
        get(&storage, &["ok00000"]).await,
        vec![None],
        "nothing was sent"
    );
}

#[tokio::test]
async fn four_thousand_documents_of_8_kib_are_stored_and_read_back_in_order() {
    // Children of 8 parents (500 each), so that reading them back by parent costs the local
    // server 8 index scans instead of 4,000 (convex-test answers each lookup by scanning the
    // table; 4,000 lookups by id of 4,000 documents of 8 KiB take minutes there).
    const PARENTS: usize = 8;
    const PER_PARENT: usize = 500;
    let deployment = TestDeployment::new("docs_4000_8_kib").await;
    let storage = deployment.storage(options(1));
    let values: Vec<TaskExecutionStorageValue> = (0..PARENTS * PER_PARENT)
        .map(|i| {
            let parent = format!("parent{}", i / PER_PARENT);
            let index = u32::try_from(i % PER_PARENT).expect("small");
            let mut value = child_value(&format!("k{i:05}"), &parent, index);
            value.input = format!("{i:05}{}", "x".repeat(8 * 1024 - 5));
            value
        })
        .collect();
    let planned = planned_insert_calls(&values);
    // ~35 MB of arguments at 8 MiB per call.
    assert_eq!(planned, 5);
    storage.insert_many(values.clone()).await.expect("stored");
    assert_calls(&deployment, "insertMany", 5).await;

    // All 4,000 in one planned call would return ~35 MB, over Convex's 16 MiB: the server
    // refuses it (LIMIT_EXCEEDED with `fits`, or Convex's own limit) and the storage splits.
    let requests: Vec<GetByParentExecutionIdRequest> = (0..PARENTS)
        .map(|p| GetByParentExecutionIdRequest {
            parent_execution_id: format!("parent{p}"),
        })
        .collect();
    let children = storage
        .get_many_by_parent_execution_id(requests)
        .await
        .expect("read back");
    assert_eq!(children.len(), PARENTS);
    for (p, children) in children.iter().enumerate() {
        let expected = &values[p * PER_PARENT..(p + 1) * PER_PARENT];
        assert_eq!(children.len(), PER_PARENT, "parent{p}");
        let mut children = children.clone();
        children.sort_by_key(|c| c.parent.as_ref().map(|p| p.index_in_parent_children));
        for (child, value) in children.iter().zip(expected) {
            assert_eq!(child.execution_id, value.execution_id);
            assert!(
                child.input == value.input,
                "{}: input differs",
                value.execution_id
            );
        }
    }
    if let Some(calls) = deployment.calls("getManyByParentExecutionId").await {
        // With `fits` (3 parents, ~13 MB, fit): 1 refused + 3. Halving without it: 8 and 4
        // parents refused, then 4 calls of 2.
        assert!(
            (4..=6).contains(&calls),
            "getManyByParentExecutionId calls: {calls}"
        );
    }
    // And by id, a sample across the batch, in request order.
    let sample: Vec<TaskExecutionStorageValue> = values.iter().step_by(97).cloned().collect();
    assert_read_back_in_order(&storage, &sample).await;
}

#[tokio::test]
async fn now_millis_is_the_servers_clock_whatever_the_local_clock_says() {
    let deployment = TestDeployment::new("server_clock").await;
    for skew in [-600_000_i64, 600_000] {
        let skewed: durable_execution_storage_convex::storage::Clock =
            std::sync::Arc::new(move || {
                durable_execution_storage_convex::storage::now_millis().saturating_add_signed(skew)
            });
        let storage = deployment.storage(options(1)).with_local_clock(skewed);
        let real = durable_execution_storage_convex::storage::now_millis();
        assert!(
            storage.now_millis().abs_diff(real) >= 599_000,
            "before any response: the local clock"
        );
        storage.get_many_by_id(vec![by_id("x")]).await.unwrap();
        let estimate = storage.clock_estimate().expect("the response was dated");
        assert!(
            (estimate.offset_ms + skew).abs() <= 1_100,
            "{skew}: {estimate:?}"
        );
        // The local server runs on this machine's clock: the storage's clock is within the
        // precision of one `Date` header of the real time.
        let real = durable_execution_storage_convex::storage::now_millis();
        assert!(
            storage.now_millis().abs_diff(real) <= 1_100,
            "{skew}: {} vs {real}",
            storage.now_millis()
        );
    }
}
