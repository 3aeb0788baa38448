//! The storage under refusals and lost responses, against [`FakeConvex`]: splitting calls the
//! server refuses over a budget, verifying re-sent inserts, reading documents one at a time,
//! the server's clock and the returned values.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};

use super::convex_tests::{doc_json, options, storage};
use super::fake_convex::{Answer, Call, FakeConvex};
use super::fixtures::{child_value, minimal_value};
use crate::runtime::{ConvexOperation, FunctionKind, OperationLimits, RetrySafety};
use crate::storage::convex::{children_groups, insert_groups};
use crate::storage::{
    ConvexStorageOptions, GetByIdRequest, GetByParentExecutionIdRequest, StorageError,
    TaskExecutionStorageValue, TaskExecutionsStorage, UpdateByCloseStatusRequest,
    UpdateByIdRequest, UpdateByStatusAndStartAtLessThanRequest,
};
use crate::task_executions as tx;
use crate::task_executions::{
    CloseStatus, TaskExecution, TaskExecutionStatus, TaskExecutionUpdate,
};

fn ids_of(call: &Call, key: &str) -> Vec<String> {
    call.args[key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    i["executionId"]
                        .as_str()
                        .or_else(|| i["parentExecutionId"].as_str())
                        .unwrap_or("?")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn values(ids: &[&str]) -> Vec<TaskExecutionStorageValue> {
    ids.iter().map(|id| minimal_value(id)).collect()
}

fn limit_exceeded(limit: &str, fits: Option<u32>) -> Answer {
    let mut data = json!({"code": "LIMIT_EXCEEDED", "limit": limit});
    if let Some(fits) = fits {
        data["fits"] = json!(fits);
    }
    Answer::ErrorData {
        message: format!("over the {limit} budget"),
        data: Some(data),
    }
}

#[tokio::test]
async fn a_write_refused_over_a_budget_is_split_at_fits_and_sent_in_order() {
    // The server takes at most 3 executions per call and says so.
    let fake = FakeConvex::start(|call| {
        let n = call.args["executions"].as_array().map_or(0, Vec::len);
        if n > 3 {
            limit_exceeded("bytesWritten", Some(3))
        } else {
            Answer::Value(Value::Null)
        }
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let all: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
    let ids: Vec<&str> = all.iter().map(String::as_str).collect();
    storage
        .insert_many(values(&ids))
        .await
        .expect("split and sent");
    let sizes: Vec<usize> = fake
        .calls()
        .iter()
        .map(|c| c.args["executions"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(
        sizes,
        [10, 3, 3, 3, 1],
        "refused once, then pieces of `fits`"
    );
    let sent: Vec<String> = fake.calls()[1..]
        .iter()
        .flat_map(|c| ids_of(c, "executions"))
        .collect();
    assert_eq!(sent, all, "in order");
}

#[tokio::test]
async fn without_fits_a_refused_call_is_halved_convex_own_limit_included() {
    // Convex's own transaction limit (no code, no fits): more than 2 updates are too much.
    let fake = FakeConvex::start(|call| {
        let n = call.args["requests"].as_array().map_or(0, Vec::len);
        if n > 2 {
            Answer::ErrorData {
                message: "Uncaught Error: Wrote too much data in a single function execution \
                          (limit: 16777216 bytes). This is a Convex limit."
                    .into(),
                data: None,
            }
        } else {
            Answer::Value(Value::Null)
        }
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let requests: Vec<UpdateByIdRequest> = (0..7)
        .map(|i| UpdateByIdRequest {
            execution_id: format!("u{i}"),
            filters: None,
            update: TaskExecutionUpdate {
                updated_at: 5,
                ..Default::default()
            },
        })
        .collect();
    storage
        .update_many_by_id(requests)
        .await
        .expect("halved until it fits");
    let sizes: Vec<usize> = fake
        .calls()
        .iter()
        .map(|c| c.args["requests"].as_array().map_or(0, Vec::len))
        .collect();
    // 7 refused → pieces of 4 and 3; 4 refused → everything left in pieces of 2.
    assert_eq!(sizes, [7, 4, 2, 2, 2, 1]);
    let sent: Vec<String> = fake
        .calls()
        .iter()
        .filter(|c| c.args["requests"].as_array().map_or(0, Vec::len) <= 2)
        .flat_map(|c| ids_of(c, "requests"))
        .collect();
    assert_eq!(sent, ["u0", "u1", "u2", "u3", "u4", "u5", "u6"]);
}

#[tokio::test]
async fn a_single_request_over_the_budget_is_a_clear_error_and_says_what_was_applied() {
    let fake = FakeConvex::start(|call| {
        let ids = ids_of(call, "executions");
        if ids.iter().any(|id| id == "e3") {
            limit_exceeded("documentSize", Some(0))
        } else {
            Answer::Value(Value::Null)
        }
    })
    .await;
    let storage = storage(
        &fake.url,
        ConvexStorageOptions::default().with_max_items_per_call(Some(2)),
    );
    let error = storage
        .insert_many(values(&["e0", "e1", "e2", "e3", "e4"]))
        .await
        .unwrap_err();
    let StorageError::PartiallyApplied {
        applied,
        total,
        source,
        ..
    } = &error
    else {
        panic!("expected PartiallyApplied, got {error:?}");
    };
    assert_eq!((*applied, *total), (3, 5), "e0, e1, then e2 alone");
    match &**source {
        StorageError::LimitExceeded {
            function,
            limit,
            fits,
            message,
        } => {
            assert_eq!(function, "taskExecutionsStorage:insertMany");
            assert_eq!(limit, "documentSize");
            assert_eq!(*fits, Some(0));
            assert!(message.contains("documentSize"), "{message}");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert!(!error.is_transient());
    let calls: Vec<Vec<String>> = fake
        .calls()
        .iter()
        .map(|c| ids_of(c, "executions"))
        .collect();
    assert_eq!(
        calls,
        [vec!["e0", "e1"], vec!["e2", "e3"], vec!["e2"], vec!["e3"]]
    );
}

#[tokio::test]
async fn lookups_refused_over_a_budget_are_split_and_answered_in_order() {
    let fake = FakeConvex::start(|call| {
        let ids = ids_of(call, "requests");
        if ids.len() > 4 {
            return limit_exceeded("bytesReturned", Some(4));
        }
        Answer::Value(Value::Array(
            ids.iter()
                .map(|id| doc_json(minimal_value(id), 0))
                .collect(),
        ))
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let requests: Vec<GetByIdRequest> = (0..11)
        .map(|i| GetByIdRequest {
            execution_id: format!("g{i:02}"),
            filters: None,
        })
        .collect();
    let answers = storage.get_many_by_id(requests).await.expect("split");
    let got: Vec<String> = answers
        .into_iter()
        .map(|a| a.expect("found").execution_id)
        .collect();
    let want: Vec<String> = (0..11).map(|i| format!("g{i:02}")).collect();
    assert_eq!(got, want);
    assert_eq!(fake.calls().len(), 4, "11 refused, then 4, 4, 3");
}

fn claim(limit: u32) -> UpdateByStatusAndStartAtLessThanRequest {
    UpdateByStatusAndStartAtLessThanRequest {
        status: TaskExecutionStatus::Ready,
        start_at_less_than: 5_000,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::Running),
            executor_id: Some("ex".into()),
            started_at: Some(4_000),
            updated_at: 4_000,
            ..Default::default()
        },
        update_expires_at_with_started_at: 4_000,
        limit,
    }
}

#[tokio::test]
async fn a_range_call_refused_over_a_budget_is_sent_again_with_a_lower_limit() {
    let fake = FakeConvex::start(|call| {
        let limit = call.args["limit"].as_u64().unwrap_or(0);
        if limit > 2 {
            return limit_exceeded("bytesReturned", Some(2));
        }
        Answer::Value(Value::Array(
            (0..limit)
                .map(|i| doc_json(minimal_value(&format!("c{i}")), 0))
                .collect(),
        ))
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(claim(50))
        .await
        .expect("lowered to fits");
    assert_eq!(claimed.len(), 2);
    let limits: Vec<u64> = fake
        .calls()
        .iter()
        .map(|c| c.args["limit"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(limits, [50, 2]);

    // Refused even at limit 1: a clear error.
    let fake = FakeConvex::start(|_| limit_exceeded("bytesRead", None)).await;
    let storage = self::storage(&fake.url, ConvexStorageOptions::default());
    let error = storage
        .update_by_close_status_and_return(UpdateByCloseStatusRequest {
            close_status: CloseStatus::Ready,
            update: TaskExecutionUpdate {
                updated_at: 1,
                ..Default::default()
            },
            limit: 8,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StorageError::LimitExceeded { limit, fits: None, .. } if limit == "bytesRead"),
        "{error:?}"
    );
    let limits: Vec<u64> = fake
        .calls()
        .iter()
        .map(|c| c.args["limit"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(limits, [8, 4, 2, 1], "halved down to 1");
}

/// An `insertMany` declared `verify_duplicates`, whatever the declaration says today.
#[derive(Serialize)]
struct VerifiedInsert {
    executions: Vec<TaskExecution>,
}

impl ConvexOperation for VerifiedInsert {
    const NAME: &'static str = "insertMany";
    const KIND: FunctionKind = FunctionKind::Mutation;
    const RETRY_SAFETY: RetrySafety = RetrySafety::VerifyDuplicates;
    const TEST_ONLY: bool = false;
    const LIMITS: OperationLimits = <tx::InsertManyArgs as ConvexOperation>::LIMITS;
    type Response = ();
}

/// An `updateManyByIdAndInsertChildrenIfUpdated` declared `verify_duplicates`.
#[derive(Serialize)]
struct VerifiedChildren {
    requests: Vec<tx::UpdateByExecutionIdAndInsertChildrenRequest>,
}

impl ConvexOperation for VerifiedChildren {
    const NAME: &'static str = "updateManyByIdAndInsertChildrenIfUpdated";
    const KIND: FunctionKind = FunctionKind::Action;
    const RETRY_SAFETY: RetrySafety = RetrySafety::VerifyDuplicates;
    const TEST_ONLY: bool = false;
    const LIMITS: OperationLimits =
        <tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs as ConvexOperation>::LIMITS;
    type Response = ();
}

/// A `getManyById` answer from the documents `stored`: each request's document, or null.
fn get_many_by_id_from(stored: &[Value], call: &Call) -> Answer {
    let answers: Vec<Value> = call.args["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            stored
                .iter()
                .find(|d| d["executionId"] == r["executionId"])
                .cloned()
                .unwrap_or(Value::Null)
        })
        .collect();
    Answer::Value(Value::Array(answers))
}

/// A deployment that stores what the first write inserts, loses that response, refuses the
/// re-sent write as a duplicate, and answers lookups from what it stored (with `tamper`
/// applied to the stored documents).
async fn losing_deployment(
    write: &'static str,
    tamper: fn(&mut Value),
) -> (FakeConvex, Arc<Mutex<Vec<Value>>>) {
    let stored: Arc<Mutex<Vec<Value>>> = Arc::default();
    let writes = Arc::new(AtomicUsize::new(0));
    let store = Arc::clone(&stored);
    let fake = FakeConvex::start(move |call| {
        if call.function == write {
            if writes.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut docs: Vec<Value> = match write {
                    "insertMany" => call.args["executions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                    _ => call.args["requests"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| r["executionId"] == json!("matching-parent"))
                        .flat_map(|r| {
                            r["childrenTaskExecutionsToInsertIfAnyUpdated"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default()
                        })
                        .collect(),
                };
                for doc in &mut docs {
                    doc["_id"] = json!(format!("id-{}", doc["executionId"].as_str().unwrap_or("")));
                    doc["_creationTime"] = json!(1.5);
                    doc["createdAt"] = json!(9_999_999);
                    tamper(doc);
                }
                store.lock().expect("store").extend(docs);
                return Answer::Lost;
            }
            return Answer::Error {
                code: "ALREADY_EXISTS",
                message: "execution already exists".into(),
            };
        }
        if call.function == "getManyById" {
            return get_many_by_id_from(&store.lock().expect("store"), call);
        }
        Answer::Status(500)
    })
    .await;
    (fake, stored)
}

fn documents(storage: &crate::ConvexTaskExecutionsStorage, ids: &[&str]) -> Vec<TaskExecution> {
    ids.iter()
        .map(|id| {
            minimal_value(id).into_document(crate::storage::shard_of_execution(
                id,
                storage.total_shards(),
            ))
        })
        .collect()
}

/// Inserts minimal executions `ids` as `insertMany` does: planned, sent in order, a refused
/// re-send verified by reading the executions back.
async fn insert_verified(
    storage: &crate::ConvexTaskExecutionsStorage,
    ids: &[&str],
) -> Result<(), StorageError> {
    let docs = documents(storage, ids);
    let chunks = storage
        .plan::<_, VerifiedInsert>(&docs, |_| 0, |d| d.execution_id.clone())
        .expect("plan");
    storage
        .send_in_order(
            docs,
            &chunks,
            |executions| VerifiedInsert { executions },
            |args| args.executions,
            Some(&insert_groups),
        )
        .await
}

/// A split write whose second part commits but loses its answer: the re-send is refused as
/// a duplicate, verified, and the parts after it are still sent (none is skipped).
#[tokio::test]
async fn a_verified_duplicate_in_a_split_write_still_sends_the_parts_after_it() {
    let stored: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = Arc::clone(&stored);
    let lost_once = Arc::new(AtomicUsize::new(0));
    let fake = FakeConvex::start(move |call| {
        if call.function == "getManyById" {
            return get_many_by_id_from(&store.lock().expect("store"), call);
        }
        let docs = call.args["executions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if docs.len() > 2 {
            return limit_exceeded("bytesWritten", Some(2));
        }
        let mut stored = store.lock().expect("store");
        if docs
            .iter()
            .any(|d| stored.iter().any(|s| s["executionId"] == d["executionId"]))
        {
            return Answer::Error {
                code: "ALREADY_EXISTS",
                message: "execution already exists".into(),
            };
        }
        for doc in &docs {
            let mut doc = doc.clone();
            doc["_id"] = json!(format!("id-{}", doc["executionId"].as_str().unwrap_or("")));
            doc["_creationTime"] = json!(1.5);
            stored.push(doc);
        }
        // The second part (e2, e3) commits and its answer is lost, once.
        if docs.iter().any(|d| d["executionId"] == json!("e2"))
            && lost_once.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Answer::Lost;
        }
        Answer::Value(Value::Null)
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    insert_verified(&storage, &["e0", "e1", "e2", "e3", "e4", "e5"])
        .await
        .expect("every part sent, the lost one verified");
    let mut inserted: Vec<String> = stored
        .lock()
        .expect("store")
        .iter()
        .filter_map(|d| d["executionId"].as_str().map(str::to_owned))
        .collect();
    inserted.sort();
    assert_eq!(inserted, ["e0", "e1", "e2", "e3", "e4", "e5"]);
}

#[tokio::test]
async fn a_resent_insert_refused_as_its_own_duplicate_is_verified_as_a_success() {
    let (fake, _) = losing_deployment("insertMany", |_| {}).await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    insert_verified(&storage, &["v1", "v2"])
        .await
        .expect("verified: the first attempt inserted them as sent");
    let functions: Vec<String> = fake.calls().iter().map(|c| c.function.clone()).collect();
    assert_eq!(functions, ["insertMany", "insertMany", "getManyById"]);
}

#[tokio::test]
async fn a_duplicate_with_other_content_stays_a_duplicate() {
    let (fake, _) = losing_deployment("insertMany", |doc| doc["input"] = json!("other")).await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let error = insert_verified(&storage, &["v1"]).await.unwrap_err();
    assert!(
        matches!(error, StorageError::AlreadyExists { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_resent_parent_update_whose_children_exist_is_verified_as_a_success() {
    let (fake, _) = losing_deployment("updateManyByIdAndInsertChildrenIfUpdated", |_| {}).await;
    let storage = storage(&fake.url, options(2, None, false));
    let request = |parent: &str| tx::UpdateByExecutionIdAndInsertChildrenRequest {
        execution_id: parent.to_owned(),
        filters: None,
        update: TaskExecutionUpdate {
            updated_at: 3,
            ..Default::default()
        },
        children_task_executions_to_insert_if_any_updated: (0..2)
            .map(|i| {
                let child = child_value(parent, i);
                let shard = crate::storage::shard_of_execution(&child.execution_id, 2);
                child.into_document(shard)
            })
            .collect(),
    };
    // The first attempt patched `matching-parent` (and inserted its children); the other
    // parent's filters did not match, so its children were not inserted.
    let requests = vec![request("matching-parent"), request("other-parent")];
    let chunks = storage
        .plan::<_, VerifiedChildren>(
            &requests,
            |r| r.children_task_executions_to_insert_if_any_updated.len(),
            |r| r.execution_id.clone(),
        )
        .expect("plan");
    storage
        .send_in_order(
            requests,
            &chunks,
            |requests| VerifiedChildren { requests },
            |args| args.requests,
            Some(&children_groups),
        )
        .await
        .expect("verified");
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn insert_many_follows_the_declared_retry_safety_of_insert_many() {
    // The declaration says `retry = "verify_duplicates"` for insertMany.
    assert_eq!(
        <tx::InsertManyArgs as ConvexOperation>::RETRY_SAFETY,
        RetrySafety::VerifyDuplicates
    );
    let (fake, _) = losing_deployment("insertMany", |_| {}).await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    // The response of the first attempt is lost after the commit: re-sent, refused as a
    // duplicate of itself, read back, verified.
    storage
        .insert_many(values(&["w1", "w2"]))
        .await
        .expect("verified");
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn now_millis_follows_the_servers_date_headers_not_a_skewed_local_clock() {
    let fake = FakeConvex::start(|_| Answer::Value(json!(0))).await;
    let behind: crate::storage::Clock =
        Arc::new(|| crate::storage::now_millis().saturating_sub(600_000));
    let storage = storage(&fake.url, ConvexStorageOptions::default()).with_local_clock(behind);
    // Before any response: the local clock, 10 minutes behind.
    assert_eq!(storage.clock_estimate(), None);
    let real = crate::storage::now_millis();
    assert!(real.abs_diff(storage.now_millis()) > 590_000);
    storage
        .update_by_close_expires_at_less_than(
            crate::storage::UpdateByCloseExpiresAtLessThanRequest {
                close_expires_at_less_than: 1,
                update: TaskExecutionUpdate {
                    updated_at: 1,
                    ..Default::default()
                },
                limit: 1,
            },
        )
        .await
        .expect("one call");
    let estimate = storage.clock_estimate().expect("a response was dated");
    assert!(
        (estimate.offset_ms - 600_000).abs() <= 1_000 + 50,
        "{estimate:?}"
    );
    assert!(estimate.uncertainty_ms <= 600, "{estimate:?}");
    let real = crate::storage::now_millis();
    assert!(
        real.abs_diff(storage.now_millis()) <= 1_100,
        "server time now"
    );
    // Clones share the estimate.
    assert_eq!(storage.clone().clock_estimate(), Some(estimate));
}

#[tokio::test]
async fn returned_documents_after_the_patch_keep_the_servers_time_stamps() {
    let fake = FakeConvex::start(|call| {
        // Our component: documents after the patch, stamped with the server's clock.
        let mut after = minimal_value("after");
        after.status = TaskExecutionStatus::Running;
        after.executor_id = Some("ex".into());
        after.started_at = Some(7_000);
        after.updated_at = 7_000;
        after.expires_at = Some(7_000 + after.timeout_ms);
        // The original component: documents before the patch.
        let before = minimal_value("before");
        let shard = call.args["shard"].as_u64().unwrap_or(0) as u32;
        Answer::Value(json!([doc_json(after, shard), doc_json(before, shard)]))
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(claim(10))
        .await
        .expect("claimed");
    let after = &claimed[0];
    assert_eq!(after.execution_id, "after");
    assert_eq!(
        after.updated_at, 7_000,
        "the server's stamp, not the client's 4,000"
    );
    assert_eq!(after.started_at, Some(7_000));
    assert_eq!(after.expires_at, Some(7_000 + after.timeout_ms));
    let before = &claimed[1];
    assert_eq!(before.execution_id, "before");
    assert_eq!(
        before.status,
        TaskExecutionStatus::Running,
        "patched locally"
    );
    assert_eq!(before.executor_id.as_deref(), Some("ex"));
    assert_eq!(before.updated_at, 4_000);
    assert_eq!(before.expires_at, Some(4_000 + before.timeout_ms));
}

fn bad_document(id: &str) -> Value {
    let mut doc = doc_json(minimal_value(id), 0);
    doc["retryAttempts"] = json!("three");
    doc
}

fn negative_acc_document(id: &str) -> Value {
    let mut doc = doc_json(minimal_value(id), 0);
    doc["acc"] = json!(-2);
    doc
}

#[tokio::test]
async fn one_undecodable_document_never_fails_its_neighbours() {
    let fake = FakeConvex::start(|call| match call.function.as_str() {
        "getManyById" => {
            let ids = ids_of(call, "requests");
            Answer::Value(Value::Array(
                ids.iter()
                    .map(|id| match id.as_str() {
                        "bad" => bad_document(id),
                        "negative" => negative_acc_document(id),
                        "missing" => Value::Null,
                        _ => doc_json(minimal_value(id), 0),
                    })
                    .collect(),
            ))
        }
        "updateByStatusAndStartAtLessThanAndReturn" => Answer::Value(json!([
            doc_json(minimal_value("ok-1"), 0),
            bad_document("bad-claimed"),
            negative_acc_document("ok-2"),
        ])),
        "getManyByParentExecutionId" => Answer::Value(json!([[
            doc_json(minimal_value("child-1"), 0),
            bad_document("bad-child"),
        ]])),
        _ => Answer::Status(500),
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let by_id = |id: &str| GetByIdRequest {
        execution_id: id.to_owned(),
        filters: None,
    };
    let answers = storage
        .get_many_by_id(vec![
            by_id("good"),
            by_id("bad"),
            by_id("negative"),
            by_id("missing"),
        ])
        .await
        .expect("the healthy documents are returned");
    assert_eq!(
        answers[0].as_ref().map(|v| v.execution_id.as_str()),
        Some("good")
    );
    assert!(answers[1].is_none(), "the bad one is left out");
    let negative = answers[2].as_ref().expect("a negative acc is tolerated");
    assert_eq!(negative.active_children_count, 0);
    assert!(answers[3].is_none());
    let reported = storage.undecodable_documents();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].function, "getManyById");
    assert_eq!(reported[0].id.as_deref(), Some("id-bad"));
    assert_eq!(reported[0].execution_id.as_deref(), Some("bad"));
    assert!(
        reported[0].message.contains("retryAttempts") || reported[0].message.contains("integer"),
        "{:?}",
        reported[0]
    );

    // Asked for alone, the bad document is the error.
    let error = storage
        .get_many_by_id(vec![by_id("bad")])
        .await
        .unwrap_err();
    match &error {
        StorageError::UndecodableDocument(bad) => {
            assert_eq!(bad.execution_id.as_deref(), Some("bad"));
            assert!(error.to_string().contains("id-bad"), "{error}");
        }
        other => panic!("expected UndecodableDocument, got {other:?}"),
    }

    // A committed claim is not stranded: the healthy documents come back.
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(claim(10))
        .await
        .expect("the healthy claimed documents");
    let ids: Vec<&str> = claimed.iter().map(|v| v.execution_id.as_str()).collect();
    assert_eq!(ids, ["ok-1", "ok-2"]);
    let children = storage
        .get_many_by_parent_execution_id(vec![GetByParentExecutionIdRequest {
            parent_execution_id: "p".into(),
        }])
        .await
        .expect("the healthy children");
    assert_eq!(children[0].len(), 1);
    assert_eq!(storage.undecodable_document_count(), 4);
    let reported: Vec<Option<String>> = storage
        .undecodable_documents()
        .into_iter()
        .map(|d| d.execution_id)
        .collect();
    assert_eq!(
        reported,
        [
            Some("bad".into()),
            Some("bad".into()),
            Some("bad-claimed".into()),
            Some("bad-child".into())
        ]
    );
}

#[tokio::test]
async fn an_update_too_large_for_a_document_is_refused_before_sending() {
    let storage = storage("http://127.0.0.1:1", ConvexStorageOptions::default());
    let error = storage
        .update_many_by_id(vec![UpdateByIdRequest {
            execution_id: "huge".into(),
            filters: None,
            update: TaskExecutionUpdate {
                output: Some("o".repeat(1024 * 1024)),
                updated_at: 1,
                ..Default::default()
            },
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StorageError::DocumentTooLarge { execution_id, .. } if execution_id == "huge"),
        "{error:?}"
    );
    // Just under the limit with the system fields: accepted and sent (here: refused by the
    // unreachable server, i.e. it was attempted).
    let mut value = minimal_value("fits");
    value.input = String::new();
    let base = crate::storage::chunking::document_size(&value.clone().into_document(0))
        .expect("size")
        + crate::storage::SYSTEM_FIELDS_RESERVE_BYTES;
    // Exactly at the limit.
    value.input = "x".repeat(usize::try_from(1024 * 1024 - base).expect("size"));
    let error = storage.insert_many(vec![value.clone()]).await.unwrap_err();
    assert!(matches!(error, StorageError::Convex(_)), "{error:?}");
    value.input.push('x');
    let error = storage.insert_many(vec![value]).await.unwrap_err();
    assert!(
        matches!(&error, StorageError::DocumentTooLarge { bytes, .. } if *bytes == 1024 * 1024 + 1),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_range_call_whose_first_document_alone_is_too_large_fails_at_once() {
    let fake = FakeConvex::start(|_| limit_exceeded("bytesReturned", Some(0))).await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let error = storage
        .update_by_status_and_start_at_less_than_and_return(claim(100))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StorageError::LimitExceeded { fits: Some(0), .. }),
        "{error:?}"
    );
    assert_eq!(fake.calls().len(), 1, "a lower limit cannot help");
}
