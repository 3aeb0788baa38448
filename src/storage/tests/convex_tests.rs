//! [`ConvexTaskExecutionsStorage`] against an unreachable URL (to prove no call is made) and
//! against [`FakeConvex`] (to observe the calls it makes).

use std::sync::Arc;

use serde_json::{json, Value};

use super::fake_convex::{Answer, Call, FakeConvex};
use super::fixtures::{child_value, minimal_value};
use crate::runtime::{AuthSecret, ConvexError, ConvexHttpClient, RetryPolicy};
use crate::storage::{
    shard_of_execution, ConvexStorageOptions, ConvexTaskExecutionsStorage, GetByIdRequest,
    GetByParentExecutionIdRequest, StorageError, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateAndDecrementParentActiveChildrenCountRequest, UpdateByCloseExpiresAtLessThanRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use crate::task_executions::{
    CloseStatus, TaskExecutionStatus, TaskExecutionUpdate, TaskExecutionsStorageClient,
};

/// Nothing listens there: any call fails with a transport error that was never sent.
const UNREACHABLE: &str = "http://127.0.0.1:1";

pub fn options(
    total_shards: u32,
    shards: Option<Vec<u32>>,
    test_mode: bool,
) -> ConvexStorageOptions {
    ConvexStorageOptions {
        total_shards,
        shards,
        enable_test_mode: test_mode,
        max_items_per_call: None,
    }
}

/// A storage whose client retries quickly (3 attempts, backoffs of a few ms).
pub fn storage(url: &str, options: ConvexStorageOptions) -> ConvexTaskExecutionsStorage {
    let policy = RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(1))
        .with_max_backoff(std::time::Duration::from_millis(5));
    let http = ConvexHttpClient::new(url)
        .unwrap()
        .with_retry_policy(policy);
    let client = TaskExecutionsStorageClient::new(http, AuthSecret::new("secret"));
    ConvexTaskExecutionsStorage::new(client, options).unwrap()
}

fn update(updated_at: u64) -> TaskExecutionUpdate {
    TaskExecutionUpdate {
        updated_at,
        ..TaskExecutionUpdate::default()
    }
}

/// A returned document (with system fields) of `value` in `shard`.
pub fn doc_json(value: TaskExecutionStorageValue, shard: u32) -> Value {
    let mut json = serde_json::to_value(value.into_document(shard)).unwrap();
    json["_id"] = json!(format!("id-{}", json["executionId"].as_str().unwrap()));
    json["_creationTime"] = json!(1.0);
    json
}

fn ids(values: &[TaskExecutionStorageValue]) -> Vec<&str> {
    values.iter().map(|v| v.execution_id.as_str()).collect()
}

fn array_len(call: &Call, key: &str) -> usize {
    call.args[key].as_array().map_or(0, Vec::len)
}

#[test]
fn the_storage_is_object_safe_and_shareable() {
    let storage = storage(UNREACHABLE, ConvexStorageOptions::default());
    let shared: Arc<dyn TaskExecutionsStorage> = Arc::new(storage);
    let _clone = Arc::clone(&shared);
}

#[test]
fn construction_validates_url_and_options() {
    let error = ConvexTaskExecutionsStorage::connect(
        "ftp://x",
        AuthSecret::new("s"),
        ConvexStorageOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, StorageError::Convex(ConvexError::InvalidUrl { .. })),
        "{error:?}"
    );
    let error = ConvexTaskExecutionsStorage::connect(
        UNREACHABLE,
        AuthSecret::new("s"),
        options(0, None, false),
    )
    .unwrap_err();
    assert!(
        matches!(error, StorageError::InvalidOptions(_)),
        "{error:?}"
    );
    let storage = storage(UNREACHABLE, options(8, Some(vec![6, 2, 6]), true));
    assert_eq!(storage.total_shards(), 8);
    assert_eq!(storage.shards(), &[2, 6]);
    assert!(storage.is_test_mode_enabled());
}

#[tokio::test]
async fn without_test_mode_deletes_make_no_call_and_say_so() {
    let storage = storage(UNREACHABLE, options(1, None, false));
    for (error, function) in [
        (storage.delete_by_id("e").await.unwrap_err(), "deleteById"),
        (storage.delete_all().await.unwrap_err(), "deleteAll"),
    ] {
        match &error {
            StorageError::TestModeRequired {
                function: f,
                message,
            } => {
                assert_eq!(f, function);
                assert!(message.contains("enable_test_mode is off"), "{message}");
            }
            other => panic!("expected TestModeRequired, got {other:?}"),
        }
        assert!(!error.is_transient());
        assert!(!error.is_retry_safe());
    }
}

#[tokio::test]
async fn with_test_mode_deletes_reach_the_server() {
    let storage = storage(UNREACHABLE, options(1, None, true));
    for error in [
        storage.delete_by_id("e").await.unwrap_err(),
        storage.delete_all().await.unwrap_err(),
    ] {
        let convex = error.convex_error().expect("a Convex error");
        assert!(
            matches!(convex.last_attempt(), ConvexError::Transport { .. }),
            "{error:?}"
        );
        assert_eq!(convex.attempts(), 3, "retried: nothing was sent");
        assert!(error.is_retry_safe(), "nothing was sent");
        assert!(error.is_transient());
    }
    let fake = FakeConvex::start(|_| Answer::Value(Value::Null)).await;
    let storage = self::storage(&fake.url, options(1, None, true));
    storage.delete_by_id("e").await.unwrap();
    storage.delete_all().await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls[0].function, "deleteById");
    assert_eq!(calls[0].args, json!({"executionId": "e"}));
    assert_eq!(calls[1].function, "deleteAll");
    assert_eq!(calls[1].args, json!({}));
}

#[tokio::test]
async fn empty_requests_and_zero_limits_make_no_call() {
    let storage = storage(UNREACHABLE, options(2, None, false));
    storage.insert_many(vec![]).await.unwrap();
    assert!(storage.get_many_by_id(vec![]).await.unwrap().is_empty());
    storage.update_many_by_id(vec![]).await.unwrap();
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(
            UpdateByStatusAndStartAtLessThanRequest {
                status: TaskExecutionStatus::Ready,
                start_at_less_than: 10,
                update: update(1),
                update_expires_at_with_started_at: 1,
                limit: 0,
            },
        )
        .await
        .unwrap();
    assert!(claimed.is_empty());
    let count = storage
        .update_by_close_expires_at_less_than(UpdateByCloseExpiresAtLessThanRequest {
            close_expires_at_less_than: 10,
            update: update(1),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn an_oversize_execution_is_refused_before_anything_is_sent() {
    let storage = storage(UNREACHABLE, ConvexStorageOptions::default());
    let mut big = minimal_value("big");
    big.input = "x".repeat(9 * 1024 * 1024);
    let error = storage
        .insert_many(vec![minimal_value("small"), big])
        .await
        .unwrap_err();
    let StorageError::DocumentTooLarge {
        execution_id,
        bytes,
        limit,
    } = &error
    else {
        panic!("expected DocumentTooLarge, got {error:?}");
    };
    assert_eq!(execution_id, "big");
    assert!(*bytes > 9 * 1024 * 1024, "{bytes}");
    assert_eq!(*limit, 1024 * 1024);
    assert!(error.to_string().contains("execution \"big\""), "{error}");
    assert!(!error.is_transient() && !error.is_retry_safe());
}

fn executions(count: usize) -> Vec<TaskExecutionStorageValue> {
    (0..count)
        .map(|i| minimal_value(&format!("e{i:05}")))
        .collect()
}

#[tokio::test]
async fn inserts_are_sent_in_order_in_chunks_with_their_shards() {
    let fake = FakeConvex::start(|_| Answer::Value(Value::Null)).await;
    let storage = storage(&fake.url, options(4, Some(vec![0]), false));
    let values = executions(5_000);
    storage.insert_many(values.clone()).await.unwrap();
    let calls = fake.calls();
    let sizes: Vec<usize> = calls.iter().map(|c| array_len(c, "executions")).collect();
    assert_eq!(sizes, vec![2_000, 2_000, 1_000]);
    let sent: Vec<&Value> = calls
        .iter()
        .flat_map(|c| c.args["executions"].as_array().unwrap())
        .collect();
    for (document, value) in sent.iter().zip(&values) {
        assert_eq!(document["executionId"], json!(value.execution_id));
        let shard = shard_of_execution(&value.execution_id, 4);
        assert_eq!(
            document["shard"],
            json!(shard),
            "every shard, not only the owned"
        );
        assert!(document.get("parentExecutionDocId").is_none());
    }
}

#[tokio::test]
async fn a_failed_insert_chunk_says_how_many_were_inserted_before() {
    let fake = FakeConvex::start(|call| {
        let first = call.args["executions"][0]["executionId"]
            .as_str()
            .unwrap_or("");
        if first == "e02000" {
            Answer::Error {
                code: "ALREADY_EXISTS",
                message: "execution e02001 already exists".into(),
            }
        } else {
            Answer::Value(Value::Null)
        }
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let error = storage.insert_many(executions(5_000)).await.unwrap_err();
    let StorageError::PartiallyApplied {
        operation,
        applied,
        total,
        source,
    } = &error
    else {
        panic!("expected PartiallyApplied, got {error:?}");
    };
    assert_eq!((*operation, *applied, *total), ("insertMany", 2_000, 5_000));
    assert!(matches!(**source, StorageError::AlreadyExists { .. }));
    assert!(error.is_already_exists());
    assert_eq!(fake.calls().len(), 2, "no call after the failing one");

    // A failure of the first call is the plain error: nothing was inserted.
    let fake = FakeConvex::start(|_| Answer::Error {
        code: "ALREADY_EXISTS",
        message: "exists".into(),
    })
    .await;
    let storage = self::storage(&fake.url, ConvexStorageOptions::default());
    let error = storage.insert_many(executions(10)).await.unwrap_err();
    assert!(
        matches!(error, StorageError::AlreadyExists { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn lookups_are_chunked_and_answers_reassembled_in_order() {
    // Found when the id's number is even.
    let fake = FakeConvex::start(|call| {
        let answers: Vec<Value> = call.args["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|request| {
                let id = request["executionId"].as_str().unwrap();
                let number: u32 = id[1..].parse().unwrap();
                if number.is_multiple_of(2) {
                    doc_json(minimal_value(id), 0)
                } else {
                    Value::Null
                }
            })
            .collect();
        Answer::Value(Value::Array(answers))
    })
    .await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let requests: Vec<GetByIdRequest> = (0..10_000)
        .map(|i| GetByIdRequest {
            execution_id: format!("e{i:05}"),
            filters: None,
        })
        .collect();
    let answers = storage.get_many_by_id(requests).await.unwrap();
    assert_eq!(answers.len(), 10_000);
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            Some(value) => {
                assert_eq!(i % 2, 0);
                assert_eq!(value.execution_id, format!("e{i:05}"));
            }
            None => assert_eq!(i % 2, 1),
        }
    }
    let mut sizes: Vec<usize> = fake
        .calls()
        .iter()
        .map(|c| array_len(c, "requests"))
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![2_000, 4_000, 4_000]);
}

#[tokio::test]
async fn a_wrong_number_of_answers_is_a_decode_error() {
    let fake = FakeConvex::start(|_| Answer::Value(json!([null]))).await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let requests = ["a", "b"]
        .map(|id| GetByParentExecutionIdRequest {
            parent_execution_id: id.into(),
        })
        .to_vec();
    let error = storage
        .get_many_by_parent_execution_id(requests)
        .await
        .unwrap_err();
    assert!(
        matches!(error, StorageError::Convex(ConvexError::Decode { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn claims_run_per_owned_shard_and_return_patched_values_in_shard_order() {
    let fake = FakeConvex::start(|call| {
        let shard = call.args["shard"].as_u64().unwrap() as u32;
        let mut value = minimal_value(&format!("s{shard}"));
        value.timeout_ms = 100;
        Answer::Value(json!([doc_json(value, shard)]))
    })
    .await;
    let storage = storage(&fake.url, options(4, Some(vec![3, 1]), false));
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(
            UpdateByStatusAndStartAtLessThanRequest {
                status: TaskExecutionStatus::Ready,
                start_at_less_than: 5_000,
                update: TaskExecutionUpdate {
                    status: Some(TaskExecutionStatus::Running),
                    executor_id: Some("ex".into()),
                    started_at: Some(4_000),
                    updated_at: 4_000,
                    ..TaskExecutionUpdate::default()
                },
                update_expires_at_with_started_at: 4_000,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["s1", "s3"]);
    for value in &claimed {
        assert_eq!(value.status, TaskExecutionStatus::Running);
        assert_eq!(value.executor_id.as_deref(), Some("ex"));
        assert_eq!(value.expires_at, Some(4_100), "started + timeoutMs");
        assert_eq!(value.updated_at, 4_000);
    }
    let mut calls = fake.calls();
    calls.sort_by_key(|c| c.args["shard"].as_u64());
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].args,
        json!({
            "shard": 1, "status": "ready", "startAtLessThan": 5000,
            "update": {"status": "running", "executorId": "ex", "startedAt": 4000, "updatedAt": 4000},
            "updateExpiresAtWithStartedAt": 4000, "limit": 10
        })
    );
    assert_eq!(calls[1].args["shard"], json!(3));
}

#[tokio::test]
async fn a_limit_above_one_calls_maximum_is_served_in_one_call_up_to_that_maximum() {
    // 9,000 matching documents; a second call could patch documents the update leaves in the
    // range twice, so one call with the per-call maximum (4,000) is all that is sent.
    let fake = FakeConvex::start(|call| Answer::Value(call.args["limit"].clone())).await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    let count = storage
        .update_by_close_expires_at_less_than(UpdateByCloseExpiresAtLessThanRequest {
            close_expires_at_less_than: 10,
            update: update(1),
            limit: 10_000,
        })
        .await
        .unwrap();
    assert_eq!(count, 4_000);
    let limits: Vec<u64> = fake
        .calls()
        .iter()
        .map(|c| c.args["limit"].as_u64().unwrap())
        .collect();
    assert_eq!(limits, vec![4_000]);
    assert!(fake.calls().iter().all(|c| c.args.get("shard").is_none()));
}

#[tokio::test]
async fn the_decrement_limit_is_split_across_owned_shards() {
    let fake = FakeConvex::start(|call| Answer::Value(call.args["limit"].clone())).await;
    let storage = storage(&fake.url, options(3, None, false));
    let count = storage
        .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            UpdateAndDecrementParentActiveChildrenCountRequest {
                is_finished: true,
                close_status: CloseStatus::Ready,
                update: update(1),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(count, 12, "4 per shard, rounding up");
    let mut shards: Vec<(u64, u64)> = fake
        .calls()
        .iter()
        .map(|c| {
            assert_eq!(
                c.function,
                "updateAndDecrementParentACCByIsFinishedAndCloseStatus"
            );
            (
                c.args["shard"].as_u64().unwrap(),
                c.args["limit"].as_u64().unwrap(),
            )
        })
        .collect();
    shards.sort_unstable();
    assert_eq!(shards, vec![(0, 4), (1, 4), (2, 4)]);
}

#[tokio::test]
async fn children_travel_with_their_parent_as_documents() {
    let fake = FakeConvex::start(|_| Answer::Value(Value::Null)).await;
    let storage = storage(&fake.url, options(2, None, false));
    storage
        .update_many_by_id_and_insert_children_if_updated(vec![
            UpdateByIdAndInsertChildrenIfUpdatedRequest {
                execution_id: "p".into(),
                filters: None,
                update: update(7),
                children_task_executions_to_insert_if_any_updated: vec![
                    child_value("p", 0),
                    child_value("p", 1),
                ],
            },
        ])
        .await
        .unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].function,
        "updateManyByIdAndInsertChildrenIfUpdated"
    );
    let request = &calls[0].args["requests"][0];
    assert_eq!(request["executionId"], json!("p"));
    assert_eq!(request["update"], json!({"updatedAt": 7}));
    let children = request["childrenTaskExecutionsToInsertIfAnyUpdated"]
        .as_array()
        .unwrap();
    assert_eq!(children.len(), 2);
    for child in children {
        let id = child["executionId"].as_str().unwrap();
        assert_eq!(child["shard"], json!(shard_of_execution(id, 2)));
        assert_eq!(child["parentExecutionId"], json!("p"));
        assert!(child.get("parentExecutionDocId").is_none());
    }
}

#[tokio::test]
async fn updates_by_id_carry_filters_and_update() {
    let fake = FakeConvex::start(|_| Answer::Value(Value::Null)).await;
    let storage = storage(&fake.url, ConvexStorageOptions::default());
    storage
        .update_many_by_id(vec![UpdateByIdRequest {
            execution_id: "e".into(),
            filters: Some(crate::task_executions::TaskExecutionFilters {
                status: Some(TaskExecutionStatus::Running),
                ..Default::default()
            }),
            update: update(3),
        }])
        .await
        .unwrap();
    assert_eq!(
        fake.calls()[0].args,
        json!({"requests": [{"executionId": "e", "filters": {"status": "running"}, "update": {"updatedAt": 3}}]})
    );
}
