//! The Rust storage pointed at a deployment of the ORIGINAL TypeScript component (0.32): what
//! that component stores and answers, as fixtures, served by a stand-in deployment on
//! `127.0.0.1:0` (no need to run the original).
//!
//! What the original does differently, and what these tests hold the storage to:
//! - its decrement has no floor, so documents with a negative `acc` exist: read as 0, and one
//!   such document never fails the documents around it;
//! - it omits what it does not know (no `parentExecutionDocId`, `indexInParentChildren`,
//!   `isOnlyChildOfParent`, `isFinalizeOfParent` on older documents), may render integers as
//!   floats (`3.0`) and may carry fields this crate does not declare;
//! - its range updates return the documents as they were BEFORE the patch: the storage applies
//!   the update to them (and computes a claim's `expiresAt`);
//! - it refuses duplicates with plain errors (`Execution id already exists`, `Sleeping task
//!   unique id already exists`), which map to the same typed `AlreadyExists` as our code;
//! - a document that cannot be read at all is reported with its id and left out, and a
//!   claim that returned it still returns the healthy executions it claimed.

use std::sync::{Arc, Mutex};

use durable_execution_storage_convex::runtime::{AuthSecret, ConvexHttpClient, RetryPolicy};
use durable_execution_storage_convex::storage::{
    GetByIdRequest, GetByParentExecutionIdRequest, GetBySleepingTaskUniqueIdRequest,
    NewTaskExecution, StorageError, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateAndDecrementParentActiveChildrenCountRequest, UpdateByCloseStatusRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use durable_execution_storage_convex::task_executions::{
    CloseStatus, OnChildrenFinishedProcessingStatus, RetryOptions, TaskExecutionStatus,
    TaskExecutionUpdate, TaskExecutionsStorageClient,
};
use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A document as the original component stores it: its field names, `acc` as written by its
/// decrement, integers as floats where JavaScript may render them so, no
/// `parentExecutionDocId` or parent flags, and a field this crate does not know.
fn original_document(execution_id: &str, acc: f64) -> Value {
    json!({
        "_id": format!("k57{execution_id}"),
        "_creationTime": 1_754_000_000_123.456,
        "shard": 0.0,
        "rootTaskId": "root-task",
        "rootExecutionId": "root",
        "parentTaskId": "parent-task",
        "parentExecutionId": "parent",
        "taskId": "task",
        "executionId": execution_id,
        "isSleepingTask": false,
        "retryOptions": {"maxAttempts": 3.0, "baseDelayMs": 100, "futureOption": true},
        "sleepMsBeforeRun": 0,
        "timeoutMs": 30_000.0,
        "areChildrenSequential": false,
        "input": "{\"n\":1}",
        "status": "ready",
        "isFinished": false,
        "retryAttempts": 0,
        "startAt": 1_754_000_000_000.0,
        "acc": acc,
        "ocfpStatus": "idle",
        "closeStatus": "idle",
        "npc": false,
        "createdAt": 1_754_000_000_000.0,
        "updatedAt": 1_754_000_000_000.0,
        "lockedByOriginal": "an extra field"
    })
}

/// A document no version of the component writes: a string where a number belongs.
fn unreadable_document(execution_id: &str) -> Value {
    let mut doc = original_document(execution_id, 0.0);
    doc["retryAttempts"] = json!("2");
    doc
}

/// What the stand-in deployment answers to one call: `(function, args)` → a response body.
type Handler = dyn Fn(&str, &Value) -> Value + Send + Sync;

fn success(value: Value) -> Value {
    json!({"status": "success", "value": value})
}

/// How the original's plain `throw new Error(...)` reaches a client.
fn plain_error(message: &str) -> Value {
    json!({
        "status": "error",
        "errorMessage": format!("[Request ID: 1a2b] Server Error\nUncaught Error: {message}\n    at handler (../../convex/lib.ts:120:13)"),
    })
}

/// A stand-in deployment of the original app on `127.0.0.1:0`; records the functions called.
struct OriginalDeployment {
    url: String,
    calls: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for OriginalDeployment {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl OriginalDeployment {
    async fn start(handler: impl Fn(&str, &Value) -> Value + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let calls: Arc<Mutex<Vec<String>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = Arc::clone(&calls);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&handler), Arc::clone(&recorded)));
            }
        });
        Self { url, calls, server }
    }

    fn storage(&self) -> ConvexTaskExecutionsStorage {
        let http = ConvexHttpClient::new(&self.url)
            .expect("url")
            .with_retry_policy(RetryPolicy::none());
        let client = TaskExecutionsStorageClient::new(http, AuthSecret::new("secret"));
        ConvexTaskExecutionsStorage::new(client, ConvexStorageOptions::default()).expect("options")
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, calls: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request: Value = serde_json::from_slice(&body).expect("JSON request");
    let path = request["path"].as_str().unwrap_or_default();
    let function = path.split_once(':').map_or(path, |(_, f)| f).to_owned();
    calls.lock().expect("calls").push(function.clone());
    let answer = handler(&function, &request["args"]["args"]).to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn by_id(id: &str) -> GetByIdRequest {
    GetByIdRequest {
        execution_id: id.to_owned(),
        filters: None,
    }
}

fn new_value(id: &str) -> TaskExecutionStorageValue {
    TaskExecutionStorageValue::new_execution(
        NewTaskExecution {
            root: None,
            parent: None,
            task_id: "task".into(),
            execution_id: id.into(),
            is_sleeping_task: true,
            sleeping_task_unique_id: Some(format!("unique-{id}")),
            retry_options: RetryOptions {
                max_attempts: 1,
                base_delay_ms: None,
                max_delay_ms: None,
                delay_multiplier: None,
            },
            sleep_ms_before_run: 0,
            timeout_ms: 1_000,
            are_children_sequential: false,
            input: String::new(),
        },
        1_000,
    )
}

/// A `getManyById` answer: `document` of each request's `executionId`, in order.
fn by_execution_id(args: &Value, document: impl Fn(Option<&str>) -> Value) -> Value {
    Value::Array(
        args["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| document(r["executionId"].as_str()))
            .collect(),
    )
}

#[tokio::test]
async fn the_originals_documents_are_read_negative_acc_missing_and_extra_fields_included() {
    let deployment = OriginalDeployment::start(|function, args| match function {
        "getManyById" => success(by_execution_id(args, |id| match id {
            Some("negative") => original_document("negative", -3.0),
            Some("plain") => original_document("plain", 2.0),
            _ => Value::Null,
        })),
        "getManyBySleepingTaskUniqueId" => success(json!([original_document("slept", -1.0)])),
        "getManyByParentExecutionId" => success(json!([[
            original_document("child-a", 0.0),
            original_document("child-b", -1.0)
        ]])),
        _ => plain_error("unexpected"),
    })
    .await;
    let storage = deployment.storage();
    let answers = storage
        .get_many_by_id(vec![by_id("negative"), by_id("plain"), by_id("absent")])
        .await
        .expect("every document of the original is read");
    let negative = answers[0].as_ref().expect("negative");
    assert_eq!(
        negative.active_children_count, 0,
        "a negative acc reads as 0"
    );
    let plain = answers[1].as_ref().expect("plain");
    assert_eq!(plain.active_children_count, 2);
    assert_eq!(plain.timeout_ms, 30_000, "an integral float is an integer");
    assert_eq!(plain.retry_options.max_attempts, 3);
    let parent = plain.parent.as_ref().expect("parent ids are present");
    assert_eq!(parent.execution_id, "parent");
    assert_eq!(
        parent.index_in_parent_children, 0,
        "missing index reads as 0"
    );
    assert!(!parent.is_only_child_of_parent && !parent.is_finalize_of_parent);
    assert_eq!(
        plain.root.as_ref().map(|r| r.execution_id.as_str()),
        Some("root")
    );
    assert!(answers[2].is_none());

    let slept = storage
        .get_many_by_sleeping_task_unique_id(vec![GetBySleepingTaskUniqueIdRequest {
            sleeping_task_unique_id: "u".into(),
        }])
        .await
        .expect("read");
    assert_eq!(slept[0].as_ref().map(|v| v.active_children_count), Some(0));
    let children = storage
        .get_many_by_parent_execution_id(vec![GetByParentExecutionIdRequest {
            parent_execution_id: "parent".into(),
        }])
        .await
        .expect("read");
    let ids: Vec<&str> = children[0]
        .iter()
        .map(|c| c.execution_id.as_str())
        .collect();
    assert_eq!(ids, ["child-a", "child-b"]);
    assert_eq!(storage.undecodable_document_count(), 0, "all were readable");
}

fn claim() -> UpdateByStatusAndStartAtLessThanRequest {
    UpdateByStatusAndStartAtLessThanRequest {
        status: TaskExecutionStatus::Ready,
        start_at_less_than: 1_754_000_100_000,
        update: TaskExecutionUpdate {
            status: Some(TaskExecutionStatus::Running),
            executor_id: Some("rust-executor".into()),
            started_at: Some(1_754_000_050_000),
            updated_at: 1_754_000_050_000,
            ..TaskExecutionUpdate::default()
        },
        update_expires_at_with_started_at: 1_754_000_050_000,
        limit: 10,
    }
}

#[tokio::test]
async fn a_claim_on_the_original_applies_the_update_to_the_documents_it_returns_before_the_patch() {
    // The original returns the claimed documents as they were before its patch, one of them
    // unreadable: the claim already committed on the server.
    let deployment = OriginalDeployment::start(|function, _| match function {
        "updateByStatusAndStartAtLessThanAndReturn" => success(json!([
            original_document("healthy-1", 0.0),
            unreadable_document("broken"),
            original_document("healthy-2", -1.0),
        ])),
        _ => plain_error("unexpected"),
    })
    .await;
    let storage = deployment.storage();
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(claim())
        .await
        .expect("the healthy claimed executions are not stranded");
    let ids: Vec<&str> = claimed.iter().map(|v| v.execution_id.as_str()).collect();
    assert_eq!(ids, ["healthy-1", "healthy-2"]);
    for value in &claimed {
        assert_eq!(
            value.status,
            TaskExecutionStatus::Running,
            "patched locally"
        );
        assert_eq!(value.executor_id.as_deref(), Some("rust-executor"));
        assert_eq!(value.started_at, Some(1_754_000_050_000));
        assert_eq!(value.updated_at, 1_754_000_050_000);
        assert_eq!(
            value.expires_at,
            Some(1_754_000_050_000 + 30_000),
            "updateExpiresAtWithStartedAt + timeoutMs"
        );
        assert_eq!(value.active_children_count, 0);
    }
    let reported = storage.undecodable_documents();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].id.as_deref(), Some("k57broken"));
    assert_eq!(reported[0].execution_id.as_deref(), Some("broken"));
    assert_eq!(
        reported[0].function,
        "updateByStatusAndStartAtLessThanAndReturn"
    );
    assert!(
        reported[0].to_string().contains("k57broken"),
        "{}",
        reported[0]
    );
}

#[tokio::test]
async fn closing_on_the_original_patches_the_returned_documents_locally() {
    let deployment = OriginalDeployment::start(|function, _| match function {
        "updateByCloseStatusAndReturn" => {
            let mut doc = original_document("finished", -2.0);
            doc["status"] = json!("completed");
            doc["isFinished"] = json!(true);
            doc["closeStatus"] = json!("ready");
            success(json!([doc]))
        }
        "updateAndDecrementParentACCByIsFinishedAndCloseStatus" => success(json!(3.0)),
        _ => plain_error("unexpected"),
    })
    .await;
    let storage = deployment.storage();
    let closing = storage
        .update_by_close_status_and_return(UpdateByCloseStatusRequest {
            close_status: CloseStatus::Ready,
            update: TaskExecutionUpdate {
                close_status: Some(CloseStatus::Closing),
                close_expires_at: Some(1_754_000_060_000),
                updated_at: 1_754_000_050_000,
                ..TaskExecutionUpdate::default()
            },
            limit: 5,
        })
        .await
        .expect("read");
    assert_eq!(closing.len(), 1);
    assert_eq!(closing[0].close_status, CloseStatus::Closing);
    assert_eq!(closing[0].close_expires_at, Some(1_754_000_060_000));
    assert_eq!(
        closing[0].on_children_finished_processing_status,
        OnChildrenFinishedProcessingStatus::Idle
    );
    let count = storage
        .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            UpdateAndDecrementParentActiveChildrenCountRequest {
                is_finished: true,
                close_status: CloseStatus::Ready,
                update: TaskExecutionUpdate {
                    updated_at: 1,
                    ..TaskExecutionUpdate::default()
                },
                limit: 5,
            },
        )
        .await
        .expect("a count rendered as a float");
    assert_eq!(count, 3);
}

#[tokio::test]
async fn the_originals_plain_duplicate_errors_are_already_exists() {
    for message in [
        "Execution id already exists",
        "Sleeping task unique id already exists",
    ] {
        let deployment = OriginalDeployment::start(move |_, _| plain_error(message)).await;
        let storage = deployment.storage();
        let error = storage
            .insert_many(vec![new_value("dup")])
            .await
            .unwrap_err();
        match &error {
            StorageError::AlreadyExists { message: m } => assert!(m.contains(message), "{m}"),
            other => panic!("{message}: expected AlreadyExists, got {other:?}"),
        }
        assert!(error.is_already_exists());
        assert!(!error.is_transient());
        assert_eq!(deployment.calls(), ["insertMany"]);
    }
    // Children inserted with their parent: the same.
    let deployment =
        OriginalDeployment::start(|_, _| plain_error("Execution id already exists")).await;
    let error = deployment
        .storage()
        .update_many_by_id_and_insert_children_if_updated(vec![
            durable_execution_storage_convex::storage::UpdateByIdAndInsertChildrenIfUpdatedRequest {
                execution_id: "parent".into(),
                filters: None,
                update: TaskExecutionUpdate {
                    updated_at: 1,
                    ..TaskExecutionUpdate::default()
                },
                children_task_executions_to_insert_if_any_updated: vec![new_value("child")],
            },
        ])
        .await
        .unwrap_err();
    assert!(error.is_already_exists(), "{error:?}");
}

#[tokio::test]
async fn one_unreadable_document_of_the_original_asked_for_alone_is_a_typed_error() {
    let deployment = OriginalDeployment::start(|function, args| match function {
        "getManyById" => success(by_execution_id(args, |id| match id {
            Some("broken") => unreadable_document("broken"),
            Some(id) => original_document(id, -1.0),
            None => Value::Null,
        })),
        _ => plain_error("unexpected"),
    })
    .await;
    let storage = deployment.storage();
    let error = storage
        .get_many_by_id(vec![by_id("broken")])
        .await
        .unwrap_err();
    match &error {
        StorageError::UndecodableDocument(bad) => {
            assert_eq!(bad.id.as_deref(), Some("k57broken"));
            assert_eq!(bad.execution_id.as_deref(), Some("broken"));
            assert_eq!(bad.function, "getManyById");
        }
        other => panic!("expected UndecodableDocument, got {other:?}"),
    }
    assert!(!error.is_transient());
    // Among others, it is left out and they are returned.
    let answers = storage
        .get_many_by_id(vec![by_id("a"), by_id("broken"), by_id("b")])
        .await
        .expect("neighbours are returned");
    let found: Vec<Option<&str>> = answers
        .iter()
        .map(|a| a.as_ref().map(|v| v.execution_id.as_str()))
        .collect();
    assert_eq!(found, [Some("a"), None, Some("b")]);
    assert_eq!(storage.undecodable_document_count(), 2);
}
