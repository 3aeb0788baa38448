//! The expansion of the real declaration, used as a user would: wire names, integer format,
//! update/unset encoding and the operation metadata.

use durable_execution_storage_convex::runtime::{ConvexOperation, FunctionKind};
use durable_execution_storage_convex::task_executions::*;
use durable_execution_storage_convex::{Doc, Id};
use serde_json::{json, Value};

fn execution() -> TaskExecution {
    TaskExecution {
        shard: 3,
        root_task_id: None,
        root_execution_id: None,
        parent_task_id: None,
        parent_execution_id: None,
        parent_execution_doc_id: Some(Id::new("parent-doc")),
        index_in_parent_children: Some(1),
        is_only_child_of_parent: None,
        is_finalize_of_parent: None,
        task_id: "task".into(),
        execution_id: "te_1".into(),
        is_sleeping_task: false,
        sleeping_task_unique_id: None,
        retry_options: RetryOptions {
            max_attempts: 2,
            base_delay_ms: Some(100),
            max_delay_ms: None,
            delay_multiplier: Some(1.5),
        },
        sleep_ms_before_run: 0,
        timeout_ms: 60_000,
        are_children_sequential: false,
        input: "{}".into(),
        executor_id: None,
        status: TaskExecutionStatus::WaitingForChildren,
        is_finished: false,
        run_output: None,
        output: None,
        error: None,
        retry_attempts: 0,
        start_at: 1_700_000_000_000,
        started_at: None,
        expires_at: None,
        waiting_for_children_started_at: None,
        waiting_for_finalize_started_at: None,
        finished_at: None,
        children: None,
        active_children_count: 2,
        on_children_finished_processing_status: OnChildrenFinishedProcessingStatus::Idle,
        on_children_finished_processing_expires_at: None,
        on_children_finished_processing_finished_at: None,
        finalize: None,
        close_status: CloseStatus::Idle,
        close_expires_at: None,
        closed_at: None,
        needs_promise_cancellation: false,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_001,
    }
}

#[test]
fn table_struct_travels_with_wire_names_and_json_integers() {
    let value = serde_json::to_value(execution()).unwrap();
    assert_eq!(value["acc"], json!(2));
    assert!(value["acc"].is_u64(), "integers travel as JSON integers");
    assert_eq!(value["ocfpStatus"], json!("idle"));
    assert_eq!(value["npc"], json!(false));
    assert_eq!(value["status"], json!("waiting_for_children"));
    assert_eq!(value["startAt"], json!(1_700_000_000_000_u64));
    assert_eq!(value["parentExecutionDocId"], json!("parent-doc"));
    assert_eq!(value["retryOptions"]["baseDelayMs"], json!(100));
    // Absent optional fields are left out: Convex's `v.optional` refuses `null`.
    assert!(value.get("executorId").is_none());
    assert!(value.get("active_children_count").is_none());
}

#[test]
fn documents_read_back_from_floats_and_ignore_unknown_fields() {
    let mut value = serde_json::to_value(execution()).unwrap();
    value["_id"] = json!("doc-1");
    value["_creationTime"] = json!(1_700_000_000_000.25);
    value["acc"] = json!(2.0);
    value["someFutureField"] = json!(true);
    let doc: Doc<TaskExecution> = serde_json::from_value(value).unwrap();
    assert_eq!(doc.id.as_str(), "doc-1");
    assert_eq!(doc.value, execution());
}

#[test]
fn update_carries_set_fields_and_unset_flags_only() {
    let update = TaskExecutionUpdate {
        status: Some(TaskExecutionStatus::Running),
        active_children_count: Some(0),
        updated_at: 5,
        unset: Some(TaskExecutionUnset {
            executor_id: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&update).unwrap(),
        json!({"status": "running", "acc": 0, "updatedAt": 5, "unset": {"executorId": true}})
    );
    let back: TaskExecutionUpdate =
        serde_json::from_value(json!({"updatedAt": 5.0, "unset": {}})).unwrap();
    assert_eq!(back.unset, Some(TaskExecutionUnset::default()));
}

#[test]
fn unions_list_their_variants_and_wire_strings() {
    assert_eq!(TaskExecutionStatus::ALL.len(), 9);
    assert_eq!(TaskExecutionStatus::TimedOut.as_str(), "timed_out");
    let wire: Vec<Value> = ErrorType::ALL
        .iter()
        .map(|variant| serde_json::to_value(variant).unwrap())
        .collect();
    let names: Vec<&str> = ErrorType::ALL
        .iter()
        .map(|variant| variant.as_str())
        .collect();
    assert_eq!(
        wire,
        names.iter().map(|name| json!(name)).collect::<Vec<_>>()
    );
}

#[test]
fn operations_state_their_name_kind_and_limits() {
    assert_eq!(OPERATION_NAMES.len(), 17);
    assert_eq!(InsertManyArgs::NAME, "insertMany");
    assert_eq!(InsertManyArgs::KIND, FunctionKind::Mutation);
    const { assert!(!InsertManyArgs::TEST_ONLY) };
    const { assert!(DeleteAllArgs::TEST_ONLY) };
    assert_eq!(GetManyByIdArgs::KIND, FunctionKind::Query);
    assert!(InsertManyArgs::LIMITS.max_items.is_some());
    assert!(UpdateByCloseStatusAndReturnArgs::LIMITS.max_limit.is_some());
    assert_eq!(limits::CALL_BUDGET.array_len, 8_192);
    assert_eq!(serde_json::to_value(DeleteAllArgs {}).unwrap(), json!({}));
}

#[test]
fn client_calls_are_send_futures_and_debug_hides_the_secret() {
    fn assert_send<T: Send>(_: &T) {}
    let http = durable_execution_storage_convex::runtime::ConvexHttpClient::new(
        "https://example.convex.cloud",
    )
    .unwrap();
    let secret = durable_execution_storage_convex::runtime::AuthSecret::new("s3cret-value");
    let client = TaskExecutionsStorageClient::new(http, secret);
    assert_eq!(client.module(), APP_MODULE);
    // Futures are created but never polled: no request leaves.
    assert_send(&client.insert_many(&InsertManyArgs { executions: vec![] }));
    assert_send(&client.call(&DeleteAllArgs {}));
    assert!(!format!("{client:?}").contains("s3cret-value"));
    let client = client.with_module("other");
    assert_eq!(client.module(), "other");
}
