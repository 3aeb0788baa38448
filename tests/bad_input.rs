//! Bad input over HTTP: random garbage sent raw (reqwest, no typed client) to every public
//! function of the local server.
//!
//! Each case takes a VALID call of one of the 17 functions (its arguments serialized from the
//! generated Rust types, so they follow the declaration) and breaks it in one way:
//!
//! - a value of the wrong JSON type anywhere in the arguments (numbers where strings go,
//!   NaN-like strings where numbers go, `null`, arrays, objects, Convex-encoded int64 and bytes);
//! - a required field removed; an unknown field added (including `_id`, `$`-prefixed,
//!   non-ASCII and control-character keys); a bogus enum value; deeply nested junk;
//! - the envelope broken: not JSON, not an object, no `path`, an unknown/internal/component
//!   path, no `args`, a bad `format`, the wrong content type, the wrong method or route;
//! - the wrong secret (or none, or not a string); the wrong endpoint for the function's kind.
//!
//! Every answer must be a 4xx with `{code, message}` or a 560 with a non-empty `errorMessage`;
//! the server must keep serving (a valid query after every case); and nothing may be written:
//! after every case the test reads back every document the test knows (the seeded ones, and
//! every id any of the valid calls would insert) and compares them with what they were.
//! Because each case is a VALID call broken once, the test first sends each valid call to a
//! scratch instance and checks that it succeeds and that the read-back sees its write: the
//! "nothing written" check is not vacuous.
//!
//! A second property (`bad_numbers_inside_documents_are_refused`) puts out-of-range numbers
//! (negative, fractional, beyond 2^53, NaN and ±Infinity as Convex-encoded floats, a shard of 64)
//! inside documents and updates: the server must refuse them (its own validation, issue 7 §4).
//!
//! Seeded (ChaCha, fixed seed), sized for CI. `BAD_INPUT_CASES=<n>` runs more.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use durable_execution_storage_convex::runtime::{ConvexOperation, FunctionKind};
use durable_execution_storage_convex::task_executions::{
    self as tx, ByExecutionIdRequest, ByParentExecutionIdRequest, BySleepingTaskUniqueIdRequest,
    CloseStatus, DeleteAllArgs, DeleteByIdArgs, GetManyByIdArgs, GetManyByParentExecutionIdArgs,
    GetManyBySleepingTaskUniqueIdArgs, InsertManyArgs, OnChildrenFinishedProcessingStatus,
    TaskExecution, TaskExecutionStatus, TaskExecutionUpdate,
    UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs, UpdateByCloseExpiresAtArgs,
    UpdateByCloseStatusAndReturnArgs, UpdateByExecutionIdAndInsertChildrenRequest,
    UpdateByExecutionIdRequest, UpdateByExecutorIdAndNpcAndReturnArgs, UpdateByOcfpExpiresAtArgs,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs,
    UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs,
    UpdateByStatusAndStartAtLessThanAndReturnArgs, UpdateManyByIdAndInsertChildrenIfUpdatedArgs,
    UpdateManyByIdArgs, UpdateManyByParentExecutionIdAndIsFinishedArgs,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Value};
use support::{child_doc, new_doc, TestDeployment, PAST};

const SEED: u64 = 0x0bad_1a70;
/// Cases of the main property: every function gets ~55 of them.
const DEFAULT_CASES: u32 = 1_000;
/// Cases of the numbers property.
const DEFAULT_NUMBER_CASES: u32 = 120;

/// A far-future bound: every `…LessThan` of the valid calls includes every seeded document.
const FAR: u64 = 4_000_000_000_000;

// ---------------------------------------------------------------------------------------------
// The seeded documents, and the valid calls (each would change them, or insert a known id).
// ---------------------------------------------------------------------------------------------

/// Ids the valid calls insert (they must stay absent).
const INSERTED_IDS: [&str; 2] = ["bad-insert", "bad-child"];
const INSERTED_SLEEPING_ID: &str = "bad-sleep";
const SEED_PARENT: &str = "seed-parent";
const SEED_SLEEPING_ID: &str = "seed-sleep";

/// Documents each valid call of a writing function would patch (all in shard 0).
fn seeded_documents() -> Vec<TaskExecution> {
    let mut docs = Vec::new();
    // Claimable (status ready, startAt past).
    docs.push(new_doc("seed-ready", 0));
    // A parent waiting for children, no active children: OCFP pick.
    let mut parent = new_doc(SEED_PARENT, 0);
    parent.status = TaskExecutionStatus::WaitingForChildren;
    parent.active_children_count = 0;
    docs.push(parent);
    // Its finished child, ready to close: close pick and decrement.
    let mut finished = child_doc("seed-child-finished", SEED_PARENT, 0, 0);
    finished.status = TaskExecutionStatus::Completed;
    finished.is_finished = true;
    finished.close_status = CloseStatus::Ready;
    docs.push(finished);
    // Its running child: update by parent (isFinished false).
    let mut running = child_doc("seed-child-running", SEED_PARENT, 1, 0);
    running.status = TaskExecutionStatus::Running;
    running.executor_id = Some("seed-executor".to_owned());
    running.needs_promise_cancellation = true;
    docs.push(running);
    // An expired sleeping task; processing and closing that expired.
    let mut sleeping = new_doc("seed-sleeping", 0);
    sleeping.is_sleeping_task = true;
    sleeping.sleeping_task_unique_id = Some(SEED_SLEEPING_ID.to_owned());
    sleeping.status = TaskExecutionStatus::Running;
    sleeping.expires_at = Some(PAST + 1);
    sleeping.on_children_finished_processing_expires_at = Some(PAST + 1);
    sleeping.close_expires_at = Some(PAST + 1);
    docs.push(sleeping);
    docs
}

fn seeded_ids() -> Vec<String> {
    seeded_documents()
        .into_iter()
        .map(|d| d.execution_id)
        .collect()
}

fn touch(status: Option<TaskExecutionStatus>) -> TaskExecutionUpdate {
    TaskExecutionUpdate {
        status,
        retry_attempts: Some(7),
        updated_at: PAST + 50,
        ..TaskExecutionUpdate::default()
    }
}

/// One public function and a valid call of it.
struct Function {
    name: &'static str,
    kind: FunctionKind,
    /// The inner `args` (inside `{authSecret, args}`).
    args: Value,
}

fn function<O: ConvexOperation>(args: O) -> Function {
    Function {
        name: O::NAME,
        kind: O::KIND,
        args: serde_json::to_value(&args).expect("the arguments serialize"),
    }
}

/// A valid call of each of the 17 functions; the writing ones would change the seeded
/// documents or insert [`INSERTED_IDS`].
fn functions() -> Vec<Function> {
    let mut inserted = new_doc(INSERTED_IDS[0], 0);
    inserted.sleeping_task_unique_id = Some(INSERTED_SLEEPING_ID.to_owned());
    let functions = vec![
        function(InsertManyArgs {
            executions: vec![inserted],
        }),
        function(GetManyByIdArgs {
            requests: vec![ByExecutionIdRequest {
                execution_id: "seed-ready".to_owned(),
                filters: None,
            }],
        }),
        function(GetManyBySleepingTaskUniqueIdArgs {
            requests: vec![BySleepingTaskUniqueIdRequest {
                sleeping_task_unique_id: SEED_SLEEPING_ID.to_owned(),
            }],
        }),
        function(UpdateManyByIdArgs {
            requests: vec![UpdateByExecutionIdRequest {
                execution_id: "seed-ready".to_owned(),
                filters: None,
                update: touch(Some(TaskExecutionStatus::Cancelled)),
            }],
        }),
        function(UpdateManyByIdAndInsertChildrenIfUpdatedArgs {
            requests: vec![UpdateByExecutionIdAndInsertChildrenRequest {
                execution_id: "seed-ready".to_owned(),
                filters: None,
                update: touch(Some(TaskExecutionStatus::WaitingForChildren)),
                children_task_executions_to_insert_if_any_updated: vec![child_doc(
                    INSERTED_IDS[1],
                    "seed-ready",
                    0,
                    0,
                )],
            }],
        }),
        function(UpdateByStatusAndStartAtLessThanAndReturnArgs {
            shard: 0,
            status: TaskExecutionStatus::Ready,
            start_at_less_than: FAR,
            update: touch(Some(TaskExecutionStatus::Running)),
            update_expires_at_with_started_at: PAST + 50,
            limit: 10,
        }),
        function(UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs {
            shard: 0,
            status: TaskExecutionStatus::WaitingForChildren,
            ocfp_status: OnChildrenFinishedProcessingStatus::Idle,
            update: touch(None),
            limit: 10,
        }),
        function(UpdateByCloseStatusAndReturnArgs {
            shard: 0,
            close_status: CloseStatus::Ready,
            update: TaskExecutionUpdate {
                close_status: Some(CloseStatus::Closing),
                ..touch(None)
            },
            limit: 10,
        }),
        function(UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs {
            status: TaskExecutionStatus::Running,
            is_sleeping_task: true,
            expires_at_less_than: FAR,
            update: touch(Some(TaskExecutionStatus::TimedOut)),
            limit: 10,
        }),
        function(UpdateByOcfpExpiresAtArgs {
            ocfp_expires_at_less_than: FAR,
            update: touch(None),
            limit: 10,
        }),
        function(UpdateByCloseExpiresAtArgs {
            close_expires_at_less_than: FAR,
            update: touch(None),
            limit: 10,
        }),
        function(UpdateByExecutorIdAndNpcAndReturnArgs {
            shard: 0,
            executor_id: "seed-executor".to_owned(),
            npc: true,
            update: TaskExecutionUpdate {
                needs_promise_cancellation: Some(false),
                ..touch(None)
            },
            limit: 10,
        }),
        function(GetManyByParentExecutionIdArgs {
            requests: vec![ByParentExecutionIdRequest {
                parent_execution_id: SEED_PARENT.to_owned(),
            }],
        }),
        function(UpdateManyByParentExecutionIdAndIsFinishedArgs {
            requests: vec![UpdateByParentExecutionIdAndIsFinishedRequest {
                parent_execution_id: SEED_PARENT.to_owned(),
                is_finished: false,
                update: touch(None),
            }],
        }),
        function(UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs {
            shard: 0,
            is_finished: true,
            close_status: CloseStatus::Ready,
            update: TaskExecutionUpdate {
                close_status: Some(CloseStatus::Closed),
                ..touch(None)
            },
            limit: 10,
        }),
        function(DeleteByIdArgs {
            execution_id: "seed-ready".to_owned(),
        }),
        function(DeleteAllArgs {}),
    ];
    let mut names: Vec<&str> = functions.iter().map(|f| f.name).collect();
    names.sort_unstable();
    let mut declared = tx::OPERATION_NAMES.to_vec();
    declared.sort_unstable();
    assert_eq!(names, declared, "one valid call per declared operation");
    functions
}

fn full_path(name: &str) -> String {
    format!("{}:{name}", tx::APP_MODULE)
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP.
// ---------------------------------------------------------------------------------------------

/// One HTTP request, exactly as sent.
#[derive(Clone, Debug)]
struct RawRequest {
    method: &'static str,
    /// After the deployment URL, e.g. `/api/mutation`.
    route: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl RawRequest {
    fn call(kind: FunctionKind, body: &Value) -> Self {
        Self {
            method: "POST",
            route: format!("/api/{}", kind.endpoint()),
            content_type: Some("application/json"),
            body: body.to_string().into_bytes(),
        }
    }

    fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let shown: String = body.chars().take(600).collect();
        format!(
            "{} {} (content-type {:?}, {} bytes): {shown}{}",
            self.method,
            self.route,
            self.content_type,
            self.body.len(),
            if shown.len() < body.len() { "…" } else { "" }
        )
    }
}

struct Server {
    http: reqwest::Client,
    url: String,
    secret: String,
}

impl Server {
    fn new(deployment: &TestDeployment) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a reqwest client"),
            url: deployment.url().to_owned(),
            secret: deployment.secret().to_owned(),
        }
    }

    async fn send(&self, request: &RawRequest) -> Result<(u16, Vec<u8>), String> {
        let url = format!("{}{}", self.url, request.route);
        let mut builder = match request.method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url),
            _ => self.http.post(url),
        };
        if let Some(content_type) = request.content_type {
            builder = builder.header("content-type", content_type);
        }
        let response = builder
            .body(request.body.clone())
            .send()
            .await
            .map_err(|e| format!("no answer (the server may be down): {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("no body: {e}"))?;
        Ok((status, body.to_vec()))
    }

    /// A valid call; its value.
    async fn call(&self, name: &str, kind: FunctionKind, args: Value) -> Result<Value, String> {
        let body = json!({
            "path": full_path(name),
            "args": {"authSecret": self.secret, "args": args},
            "format": "json",
        });
        let (status, bytes) = self.send(&RawRequest::call(kind, &body)).await?;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{name}: HTTP {status}, not JSON: {e}"))?;
        if status != 200 || answer["status"] != "success" {
            return Err(format!("{name}: HTTP {status}: {answer}"));
        }
        Ok(answer["value"].clone())
    }

    /// Everything the test can see of the database: every seeded document and every id a
    /// valid call would insert, by execution id, by sleeping task unique id and by parent.
    async fn snapshot(&self) -> Result<Value, String> {
        let mut ids = seeded_ids();
        ids.extend(INSERTED_IDS.iter().map(|s| (*s).to_owned()));
        let by_id = self
            .call(
                "getManyById",
                FunctionKind::Query,
                json!({"requests": ids.iter().map(|id| json!({"executionId": id})).collect::<Vec<_>>()}),
            )
            .await?;
        let by_sleeping = self
            .call(
                "getManyBySleepingTaskUniqueId",
                FunctionKind::Query,
                json!({"requests": [
                    {"sleepingTaskUniqueId": SEED_SLEEPING_ID},
                    {"sleepingTaskUniqueId": INSERTED_SLEEPING_ID},
                ]}),
            )
            .await?;
        let by_parent = self
            .call(
                "getManyByParentExecutionId",
                FunctionKind::Query,
                json!({"requests": [
                    {"parentExecutionId": SEED_PARENT},
                    {"parentExecutionId": "seed-ready"},
                ]}),
            )
            .await?;
        Ok(json!({"byId": by_id, "bySleepingTaskUniqueId": by_sleeping, "byParent": by_parent}))
    }

    /// Inserts the seeded documents. Returns the latest time (epoch ms, server clock) stored
    /// in them: the server may raise an expiry it finds in the past (and stamps `updatedAt`
    /// with its own clock), so the valid calls find them only once its clock has passed that.
    async fn seed(&self) -> Result<u64, String> {
        let docs = serde_json::to_value(seeded_documents()).map_err(|e| e.to_string())?;
        self.call(
            "insertMany",
            FunctionKind::Mutation,
            json!({ "executions": docs }),
        )
        .await?;
        let stored = self
            .call(
                "getManyById",
                FunctionKind::Query,
                json!({"requests": seeded_ids().iter().map(|id| json!({"executionId": id})).collect::<Vec<_>>()}),
            )
            .await?;
        let latest = stored
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|doc| {
                ["updatedAt", "expiresAt", "ocfpExpiresAt", "closeExpiresAt"]
                    .map(|field| doc[field].as_u64().unwrap_or(0))
            })
            .max()
            .unwrap_or(0);
        Ok(latest)
    }

    /// Seeds, and waits until the server's clock has passed every seeded time.
    async fn seed_and_settle(&self) -> Result<(), String> {
        let latest = self.seed().await?;
        settle(latest).await;
        Ok(())
    }
}

/// Waits until the clock passes `at` (epoch ms) by a margin. The local server runs on this
/// machine, so its clock is this process's system clock.
async fn settle(at: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while durable_execution_storage_convex::storage::now_millis() <= at + 20
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Breaking a valid call.
// ---------------------------------------------------------------------------------------------

/// The JSON type of a value as Convex sees it (`{"$integer": …}` is an int64, and so on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
    Int64,
    Bytes,
}

fn class_of(value: &Value) -> Class {
    match value {
        Value::Null => Class::Null,
        Value::Bool(_) => Class::Bool,
        Value::Number(_) => Class::Number,
        Value::String(_) => Class::String,
        Value::Array(_) => Class::Array,
        Value::Object(map) if map.len() == 1 && map.contains_key("$integer") => Class::Int64,
        Value::Object(map) if map.len() == 1 && map.contains_key("$bytes") => Class::Bytes,
        Value::Object(map) if map.len() == 1 && map.contains_key("$float") => Class::Number,
        Value::Object(_) => Class::Object,
    }
}

/// `$float` encodings (little-endian float64, base64) of the floats JSON cannot carry.
const NAN: &str = "AAAAAAAA+H8=";
const INFINITY: &str = "AAAAAAAA8H8=";
const NEG_INFINITY: &str = "AAAAAAAA8P8=";

/// Junk values of every class: NaN-like strings, huge and odd numbers, encoded floats, int64
/// and bytes, nested arrays and objects with unknown keys.
fn junk_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e308),
        json!(-1e308),
        json!(9_007_199_254_740_993_u64),
        json!(u64::MAX),
        json!({"$float": NAN}),
        json!({"$float": INFINITY}),
        json!("NaN"),
        json!("Infinity"),
        json!("-Infinity"),
        json!("1e999"),
        json!("-0"),
        json!("0x10"),
        json!(""),
        json!("12abc"),
        json!("null"),
        json!("ready"),
        json!([1, [2, [3]]]),
        json!([null]),
        json!([{"junk": 1}]),
        json!({"junk": {"nested": [1, "two", null]}}),
        json!({"executionId": 1}),
        json!({"$integer": "AQAAAAAAAAA="}),
        json!({"$bytes": "3q2+7w=="}),
    ]
}

/// Keys that are not fields of anything (or that must never be accepted in arguments).
const EXTRA_KEYS: &[&str] = &[
    "junk",
    "_id",
    "_creationTime",
    "Status",
    "executionID",
    "$junk",
    "",
    " ",
    "a.b",
    "ключ",
    "\u{1}",
];

/// Names of `Object.prototype` properties. As argument fields they are unknown fields, which a
/// deployment refuses; the local server (convex-test's JavaScript validator looks fields up with
/// `validator[k] === undefined`, and `jsonToConvex` assigns `__proto__`) lets them through.
/// Kept out of [`EXTRA_KEYS`]; see `prototype_named_fields_are_refused`.
const PROTOTYPE_KEYS: &[&str] = &[
    "constructor",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "__proto__",
];

/// Fields whose value is one of a few strings.
const ENUM_KEYS: &[&str] = &["status", "ocfpStatus", "closeStatus", "errorType"];
const BOGUS_ENUMS: &[&str] = &["READY", "Ready", "ready ", "bogus", "", "timedOut", "0"];

/// The fields every document has: those of a new execution with every optional field unset.
fn required_document_fields() -> Vec<String> {
    let mut doc = new_doc("x", 0);
    doc.retry_options.base_delay_ms = None;
    doc.retry_options.delay_multiplier = None;
    match serde_json::to_value(doc) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Whether the field `key` of an object held by the field `holder` may be absent (removing it
/// would leave a valid call). Conservative: when unsure, optional (never removed).
fn is_optional(holder: Option<&str>, key: &str) -> bool {
    match holder {
        // Every field of an update is optional but `updatedAt`; `unset` is optional.
        Some("update") => key != "updatedAt",
        Some("retryOptions") => key != "maxAttempts",
        Some("filters" | "unset") => true,
        Some("executions" | "childrenTaskExecutionsToInsertIfAnyUpdated") => {
            !required_document_fields().iter().any(|k| k == key)
        }
        _ => matches!(key, "sleepingTaskUniqueId" | "filters"),
    }
}

/// A location in a JSON value: the keys and indexes from the root.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every location under `value`, the root included (as an empty path).
fn locations(value: &Value) -> Vec<Vec<Step>> {
    fn walk(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(path.clone());
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push(Step::Key(key.clone()));
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// The value at `path`.
fn value_at<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    value.pointer(&pointer(path))
}

fn at_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut node = value;
    for step in path {
        node = match (step, node) {
            (Step::Key(key), Value::Object(map)) => map.get_mut(key)?,
            (Step::Index(i), Value::Array(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The key a location is reached by, if it is an object field.
fn last_key(path: &[Step]) -> Option<&str> {
    match path.last() {
        Some(Step::Key(key)) => Some(key),
        _ => None,
    }
}

/// The field name of the object that holds the field at `path`: for
/// `requests[0].update.status` that is `update`.
fn holder_of(path: &[Step]) -> Option<&str> {
    path[..path.len().saturating_sub(1)]
        .iter()
        .rev()
        .find_map(|step| match step {
            Step::Key(key) => Some(key.as_str()),
            Step::Index(_) => None,
        })
}

fn nested(depth: usize, object: bool) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = if object {
            json!({ "junk": value })
        } else {
            json!([value])
        };
    }
    value
}

/// How a valid call is broken.
#[derive(Clone, Debug)]
enum Corruption {
    /// The value at a location replaced with a junk value of another class.
    WrongType { at: usize, junk: usize },
    /// A required field removed.
    Remove { at: usize },
    /// An unknown field added to an object.
    Extra { at: usize, key: usize, junk: usize },
    /// An enum field set to a string that is not one of its values.
    BadEnum { at: usize, bogus: usize },
    /// A location replaced with nested arrays or objects.
    Nested {
        at: usize,
        depth: usize,
        object: bool,
    },
    /// The request itself broken (body, path, envelope, content type, method, route).
    Envelope { variant: usize },
    /// The wrong secret, no secret, or a secret of the wrong type.
    Secret { variant: usize },
    /// The right call sent to the endpoint of another kind.
    WrongKind { other: usize },
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let any_index = 0..10_000_usize;
    prop_oneof![
        4 => (any_index.clone(), 0..64_usize).prop_map(|(at, junk)| Corruption::WrongType { at, junk }),
        2 => any_index.clone().prop_map(|at| Corruption::Remove { at }),
        2 => (any_index.clone(), 0..64_usize, 0..64_usize)
            .prop_map(|(at, key, junk)| Corruption::Extra { at, key, junk }),
        1 => (any_index.clone(), 0..16_usize).prop_map(|(at, bogus)| Corruption::BadEnum { at, bogus }),
        1 => (any_index, 1..200_usize, any::<bool>())
            .prop_map(|(at, depth, object)| Corruption::Nested { at, depth, object }),
        2 => (0..ENVELOPE_VARIANTS).prop_map(|variant| Corruption::Envelope { variant }),
        1 => (0..4_usize).prop_map(|variant| Corruption::Secret { variant }),
        1 => (0..2_usize).prop_map(|other| Corruption::WrongKind { other }),
    ]
}

const ENVELOPE_VARIANTS: usize = 22;

/// The request of `function`'s valid call broken by `corruption`. `None` when the corruption
/// does not apply to this call (e.g. no enum field): the case is then skipped.
fn broken_request(
    function: &Function,
    corruption: &Corruption,
    secret: &str,
) -> Option<RawRequest> {
    let path = full_path(function.name);
    let mut args = function.args.clone();
    let envelope = |args: Value| json!({"authSecret": secret, "args": args});
    let body = |envelope: Value| json!({"path": path, "args": envelope, "format": "json"});
    let junk = junk_values();
    let request = match corruption {
        Corruption::WrongType { at, junk: j } => {
            let places = locations(&args);
            let place = &places[at % places.len()];
            let node = at_mut(&mut args, place)?;
            let class = class_of(node);
            let candidates: Vec<&Value> = junk.iter().filter(|v| class_of(v) != class).collect();
            *node = candidates[j % candidates.len()].clone();
            RawRequest::call(function.kind, &body(envelope(args)))
        }
        Corruption::Remove { at } => {
            let places: Vec<_> = locations(&args)
                .into_iter()
                .filter(|p| last_key(p).is_some_and(|key| !is_optional(holder_of(p), key)))
                .collect();
            if places.is_empty() {
                return None;
            }
            let place = &places[at % places.len()];
            let key = last_key(place)?.to_owned();
            let parent = at_mut(&mut args, &place[..place.len() - 1])?;
            parent.as_object_mut()?.remove(&key);
            RawRequest::call(function.kind, &body(envelope(args)))
        }
        Corruption::Extra { at, key, junk: j } => {
            let places: Vec<_> = locations(&args)
                .into_iter()
                .filter(|p| value_at(&args, p).is_some_and(|v| class_of(v) == Class::Object))
                .collect();
            // Also the envelope itself, next to `authSecret` and `args`.
            let key = EXTRA_KEYS[key % EXTRA_KEYS.len()];
            let value = junk[j % junk.len()].clone();
            if places.is_empty() || at % (places.len() + 1) == places.len() {
                let mut wrapped = envelope(args);
                wrapped.as_object_mut()?.insert(key.to_owned(), value);
                RawRequest::call(function.kind, &body(wrapped))
            } else {
                let place = &places[at % places.len()];
                at_mut(&mut args, place)?
                    .as_object_mut()?
                    .insert(key.to_owned(), value);
                RawRequest::call(function.kind, &body(envelope(args)))
            }
        }
        Corruption::BadEnum { at, bogus } => {
            let places: Vec<_> = locations(&args)
                .into_iter()
                .filter(|p| last_key(p).is_some_and(|k| ENUM_KEYS.contains(&k)))
                .collect();
            if places.is_empty() {
                return None;
            }
            let place = &places[at % places.len()];
            *at_mut(&mut args, place)? = json!(BOGUS_ENUMS[bogus % BOGUS_ENUMS.len()]);
            RawRequest::call(function.kind, &body(envelope(args)))
        }
        Corruption::Nested { at, depth, object } => {
            let places = locations(&args);
            let place = &places[at % places.len()];
            *at_mut(&mut args, place)? = nested(*depth, *object);
            RawRequest::call(function.kind, &body(envelope(args)))
        }
        Corruption::Envelope { variant } => envelope_variant(function, *variant, secret),
        Corruption::Secret { variant } => {
            let wrapped = match variant {
                0 => json!({"authSecret": format!("{secret}x"), "args": args}),
                1 => json!({"args": args}),
                2 => json!({"authSecret": 12345, "args": args}),
                _ => json!({"authSecret": "", "args": args}),
            };
            RawRequest::call(function.kind, &body(wrapped))
        }
        Corruption::WrongKind { other } => {
            let kinds: Vec<FunctionKind> = [
                FunctionKind::Query,
                FunctionKind::Mutation,
                FunctionKind::Action,
            ]
            .into_iter()
            .filter(|k| *k != function.kind)
            .collect();
            RawRequest::call(kinds[other % kinds.len()], &body(envelope(args)))
        }
    };
    Some(request)
}

/// The request broken at the HTTP or envelope level.
fn envelope_variant(function: &Function, variant: usize, secret: &str) -> RawRequest {
    let path = full_path(function.name);
    let valid_envelope = json!({"authSecret": secret, "args": function.args});
    let json_body = |value: Value| RawRequest::call(function.kind, &value);
    let raw = |body: &[u8]| RawRequest {
        body: body.to_vec(),
        ..RawRequest::call(function.kind, &json!(null))
    };
    let valid = json!({"path": path, "args": valid_envelope, "format": "json"});
    match variant {
        0 => raw(b"{"),
        1 => raw(b""),
        2 => raw(b"nul"),
        3 => raw(&[0xff, 0xfe, b'{', b'}']),
        4 => raw(format!("{valid}trailing").as_bytes()),
        5 => json_body(json!([valid])),
        6 => json_body(json!("a string")),
        7 => json_body(json!({"args": valid_envelope, "format": "json"})),
        8 => json_body(json!({"path": 17, "args": valid_envelope})),
        9 => json_body(json!({"path": format!("{path}Nope"), "args": valid_envelope})),
        10 => json_body(
            json!({"path": format!("taskExecutionsStorage/lib:{}", function.name), "args": valid_envelope}),
        ),
        11 => {
            json_body(json!({"path": format!("_system:{}", function.name), "args": valid_envelope}))
        }
        12 => json_body(json!({"path": path, "format": "json"})),
        13 => json_body(json!({"path": path, "args": [valid_envelope, valid_envelope]})),
        14 => json_body(json!({"path": path, "args": "args"})),
        15 => json_body(json!({"path": path, "args": valid_envelope, "format": "yaml"})),
        16 => RawRequest {
            content_type: Some("text/plain"),
            ..json_body(valid)
        },
        17 => RawRequest {
            content_type: None,
            ..json_body(valid)
        },
        18 => RawRequest {
            content_type: Some("application/x-www-form-urlencoded"),
            ..json_body(valid)
        },
        19 => RawRequest {
            method: "GET",
            ..json_body(valid)
        },
        20 => RawRequest {
            route: "/api/function".to_owned(),
            ..json_body(valid)
        },
        _ => {
            json_body(json!({"path": path, "args": {"authSecret": secret, "args": valid_envelope}}))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checking an answer.
// ---------------------------------------------------------------------------------------------

/// The answer's category for the tally, or why it is not acceptable.
fn refusal(status: u16, body: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match status {
        400..=499 => {
            let message = parsed
                .as_ref()
                .and_then(|v| v["message"].as_str())
                .filter(|m| !m.is_empty());
            let code = parsed.as_ref().and_then(|v| v["code"].as_str());
            match (code, message) {
                (Some(code), Some(_)) => Ok(format!("{status} {code}")),
                _ => Err(format!("HTTP {status} without {{code, message}}: {text}")),
            }
        }
        560 => {
            let Some(answer) = parsed else {
                return Err(format!("HTTP 560 that is not JSON: {text}"));
            };
            let message = answer["errorMessage"].as_str().unwrap_or_default();
            if answer["status"] != "error" || message.is_empty() {
                return Err(format!("HTTP 560 without an error: {text}"));
            }
            let code = answer["errorData"]["code"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    // Convex's own refusals carry no errorData: name them by the message.
                    [
                        "ArgumentValidationError",
                        "Could not find public function",
                        "Trying to execute",
                    ]
                    .iter()
                    .find(|m| message.contains(*m))
                    .map(|m| (*m).to_owned())
                })
                .unwrap_or_else(|| "(no code)".to_owned());
            Ok(format!("560 {code}"))
        }
        _ => Err(format!("HTTP {status} (neither 4xx nor 560): {text}")),
    }
}

#[derive(Default)]
struct Tally {
    cases: u64,
    skipped: u64,
    by_answer: BTreeMap<String, u64>,
    by_function: BTreeMap<&'static str, u64>,
    /// The first message of each answer category.
    examples: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

fn env_number(name: &str) -> Option<u32> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        source_file: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut seed_bytes = [0_u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    )
}

/// The valid calls are valid, and each writing one changes what [`Server::snapshot`] sees:
/// otherwise "nothing was written" would prove nothing.
#[test]
fn the_valid_calls_succeed_and_their_writes_are_seen() {
    let runtime = runtime();
    let functions = functions();
    let deployments: Vec<TestDeployment> = functions
        .iter()
        .map(|f| TestDeployment::local_only(&format!("valid-{}", f.name), true))
        .collect();
    let servers: Vec<Server> = deployments.iter().map(Server::new).collect();
    // Seed every instance, then wait once for the latest seeded time.
    runtime.block_on(async {
        let mut latest = 0;
        for server in &servers {
            latest = latest.max(server.seed().await.expect("seeded"));
        }
        settle(latest).await;
    });
    for (function, server) in functions.iter().zip(&servers) {
        runtime.block_on(async {
            let before = server.snapshot().await.expect("snapshot");
            server
                .call(function.name, function.kind, function.args.clone())
                .await
                .unwrap_or_else(|e| panic!("the valid call of {} failed: {e}", function.name));
            let after = server.snapshot().await.expect("snapshot");
            let writes = function.kind != FunctionKind::Query;
            assert_eq!(
                before != after,
                writes,
                "{}: a writing call must change the snapshot, a query must not",
                function.name
            );
        });
    }
}

#[test]
fn random_bad_input_is_refused_and_writes_nothing() {
    let cases = env_number("BAD_INPUT_CASES").unwrap_or(DEFAULT_CASES);
    let runtime = runtime();
    let deployment = TestDeployment::local_only("bad_input", true);
    let server = Server::new(&deployment);
    let functions = functions();
    let initial = runtime.block_on(async {
        server.seed_and_settle().await.expect("seeded");
        server.snapshot().await.expect("snapshot")
    });
    let last = Mutex::new(initial.clone());
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    let strategy = (0..functions.len(), corruption());
    let result = runner(cases, SEED).run(&strategy, |(f, corruption)| {
        let function = &functions[f];
        let Some(request) = broken_request(function, &corruption, &server.secret) else {
            tally.lock().expect("tally").skipped += 1;
            return Ok(());
        };
        runtime
            .block_on(check_case(
                &server,
                function,
                &corruption,
                &request,
                &last,
                &tally,
            ))
            .map(|_| ())
            .map_err(TestCaseError::fail)
    });
    let tally = tally.into_inner().expect("tally");
    println!(
        "bad input: {} cases ({} not applicable) in {:.1?}, seed {SEED:#x}",
        tally.cases,
        tally.skipped,
        started.elapsed()
    );
    for (answer, n) in &tally.by_answer {
        let example = tally.examples.get(answer).map_or("", String::as_str);
        println!("  {answer}: {n}   e.g. {example}");
    }
    println!("  per function: {:?}", tally.by_function);
    if let Err(error) = result {
        panic!("{error}");
    }
    let last = last.into_inner().expect("snapshot");
    assert_eq!(last, initial, "the documents changed");
    assert!(tally.cases >= u64::from(cases) * 8 / 10);
    assert_eq!(tally.by_function.len(), 17, "every function got cases");
}

async fn check_case(
    server: &Server,
    function: &Function,
    corruption: &Corruption,
    request: &RawRequest,
    last: &Mutex<Value>,
    tally: &Mutex<Tally>,
) -> Result<Vec<u8>, String> {
    let describe = || format!("{} {corruption:?}: {}", function.name, request.describe());
    let answer = server.send(request).await;
    // Still serving, and nothing written: compared with the snapshot after the previous case,
    // always (even when the answer is wrong), so that the case that wrote is the one blamed.
    let now = server
        .snapshot()
        .await
        .map_err(|e| format!("after {}\n  the server no longer serves: {e}", describe()))?;
    let wrote = {
        let mut last = last.lock().expect("snapshot");
        let before = std::mem::replace(&mut *last, now.clone());
        (before != now).then_some(before)
    };
    let (status, body) = answer.map_err(|e| format!("{}: {e}", describe()))?;
    let category = refusal(status, &body);
    if let Some(before) = wrote {
        return Err(format!(
            "{}\n  answered {category:?} but WROTE:\n  before {before}\n  after  {now}",
            describe()
        ));
    }
    let category = category.map_err(|e| format!("{}\n  answered {e}", describe()))?;
    let mut tally = tally.lock().expect("tally");
    if !tally.examples.contains_key(&category) {
        let text: String = String::from_utf8_lossy(&body).chars().take(160).collect();
        tally.examples.insert(category.clone(), text);
    }
    tally.cases += 1;
    *tally.by_answer.entry(category).or_default() += 1;
    *tally.by_function.entry(function.name).or_default() += 1;
    Ok(body)
}

/// Bodies past the 16 MiB limit and JSON nested far deeper than any argument: refused, and
/// the server keeps serving.
#[test]
fn oversized_and_deeply_nested_bodies_are_refused() {
    let runtime = runtime();
    let deployment = TestDeployment::local_only("bad_input_big", true);
    let server = Server::new(&deployment);
    let insert = &functions()[0];
    runtime.block_on(async {
        server.seed_and_settle().await.expect("seeded");
        let before = server.snapshot().await.expect("snapshot");
        let mut requests = Vec::new();
        // 17 MiB of a valid call: a long input string.
        let mut big = insert.args.clone();
        big["executions"][0]["input"] = json!("x".repeat(17 * 1024 * 1024));
        requests.push(RawRequest::call(
            insert.kind,
            &json!({"path": full_path(insert.name), "args": {"authSecret": server.secret, "args": big}, "format": "json"}),
        ));
        // 17 MiB that is not JSON.
        requests.push(RawRequest {
            body: vec![b'['; 17 * 1024 * 1024],
            ..RawRequest::call(insert.kind, &json!(null))
        });
        // Nested 100,000 deep, as text (a serde_json::Value that deep would overflow here).
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let depth = 100_000;
            let mut text = String::from("{\"path\":\"taskExecutionsStorage:insertMany\",\"args\":{\"authSecret\":\"");
            text.push_str(&server.secret);
            text.push_str("\",\"args\":{\"executions\":");
            text.push_str(&open.repeat(depth));
            text.push('1');
            text.push_str(&close.repeat(depth));
            text.push_str("}},\"format\":\"json\"}");
            requests.push(RawRequest {
                body: text.into_bytes(),
                ..RawRequest::call(insert.kind, &json!(null))
            });
        }
        for request in &requests {
            let started = Instant::now();
            let (status, body) = server.send(request).await.expect("an answer");
            let category = refusal(status, &body)
                .unwrap_or_else(|e| panic!("{}: {e}", request.describe()));
            println!(
                "{} bytes: {category} in {:.1?}",
                request.body.len(),
                started.elapsed()
            );
            assert_eq!(server.snapshot().await.expect("still serving"), before);
        }
    });
}

/// A document over Convex's 1 MiB limit, in a body well under the 16 MiB one: refused as a
/// deployment refuses it (the local server's document limit, branch `server`), nothing
/// written — inserted directly and as a child.
#[test]
fn a_document_over_one_mib_is_refused() {
    let runtime = runtime();
    let deployment = TestDeployment::local_only("bad_input_2mb", true);
    let server = Server::new(&deployment);
    let functions = functions();
    runtime.block_on(async {
        server.seed_and_settle().await.expect("seeded");
        let before = server.snapshot().await.expect("snapshot");
        let big = json!("x".repeat(2 * 1024 * 1024));
        let mut requests = Vec::new();
        for (name, pointer) in [
            ("insertMany", "/executions/0/input"),
            (
                "updateManyByIdAndInsertChildrenIfUpdated",
                "/requests/0/childrenTaskExecutionsToInsertIfAnyUpdated/0/input",
            ),
            ("updateManyById", "/requests/0/update"),
        ] {
            let function = functions
                .iter()
                .find(|f| f.name == name)
                .expect("declared");
            let mut args = function.args.clone();
            let target = args.pointer_mut(pointer).expect("the field");
            match target {
                // An update: a 2 MiB output.
                Value::Object(update) => {
                    update.insert("output".to_owned(), big.clone());
                }
                other => *other = big.clone(),
            }
            requests.push(RawRequest::call(
                function.kind,
                &json!({"path": full_path(name), "args": {"authSecret": server.secret, "args": args}, "format": "json"}),
            ));
        }
        for request in &requests {
            let (status, body) = server.send(request).await.expect("an answer");
            let category =
                refusal(status, &body).unwrap_or_else(|e| panic!("{}: {e}", request.describe()));
            println!("{} bytes: {category}", request.body.len());
            assert_eq!(
                server.snapshot().await.expect("still serving"),
                before,
                "{}",
                request.describe()
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Numbers inside documents and updates (the server's own validation, issue 7 §4).
// ---------------------------------------------------------------------------------------------

/// Out-of-range values for integer fields.
fn bad_integers() -> Vec<Value> {
    vec![
        json!(-1),
        json!(0.5),
        json!(-0.5),
        json!(1e300),
        json!(9_007_199_254_740_992_u64),
        json!(18_014_398_509_481_984_u64),
        json!({"$float": NAN}),
        json!({"$float": INFINITY}),
        json!({"$float": NEG_INFINITY}),
    ]
}

/// Integer fields inside documents and updates (every number but `delayMultiplier`).
fn is_integer_field(path: &[Step]) -> bool {
    let inside = path.iter().any(|step| {
        matches!(step, Step::Key(k) if k == "executions" || k == "update" || k == "childrenTaskExecutionsToInsertIfAnyUpdated")
    });
    inside && last_key(path) != Some("delayMultiplier")
}

/// Out-of-range numbers inside documents and updates (negative, fractional, past 2^53, NaN and
/// ±Infinity as Convex-encoded floats, a shard of 64): each refused with `INVALID_ARGUMENT`
/// whose `path` names the field, nothing written. The checks are the generated component's
/// (issue 7 §4, branch `server`); Convex's validators alone (`v.number()`) accept all of them.
#[test]
fn bad_numbers_inside_documents_are_refused() {
    let cases = env_number("BAD_INPUT_NUMBER_CASES").unwrap_or(DEFAULT_NUMBER_CASES);
    let runtime = runtime();
    let deployment = TestDeployment::local_only("bad_numbers", true);
    let server = Server::new(&deployment);
    let functions: Vec<Function> = functions()
        .into_iter()
        .filter(|f| {
            locations(&f.args).iter().any(|p| {
                is_integer_field(p) && matches!(value_at(&f.args, p), Some(Value::Number(_)))
            })
        })
        .collect();
    let initial = runtime.block_on(async {
        server.seed_and_settle().await.expect("seeded");
        server.snapshot().await.expect("snapshot")
    });
    let last = Mutex::new(initial.clone());
    let tally = Mutex::new(Tally::default());
    let strategy = (
        0..functions.len(),
        0..10_000_usize,
        0..64_usize,
        any::<bool>(),
    );
    let result = runner(cases, SEED ^ 0x5eed).run(&strategy, |(f, at, bad, shard)| {
        let function = &functions[f];
        let mut args = function.args.clone();
        let places: Vec<Vec<Step>> = locations(&args)
            .into_iter()
            .filter(|p| is_integer_field(p) && matches!(value_at(&args, p), Some(Value::Number(_))))
            .collect();
        let place = &places[at % places.len()];
        let value = if shard && last_key(place) == Some("shard") {
            json!(64)
        } else {
            bad_integers()[bad % bad_integers().len()].clone()
        };
        if let Some(node) = at_mut(&mut args, place) {
            *node = value;
        }
        let field = last_key(place).unwrap_or_default().to_owned();
        let corruption = Corruption::WrongType { at, junk: bad };
        let request = RawRequest::call(
            function.kind,
            &json!({"path": full_path(function.name), "args": {"authSecret": server.secret, "args": args}, "format": "json"}),
        );
        let body = runtime
            .block_on(check_case(&server, function, &corruption, &request, &last, &tally))
            .map_err(TestCaseError::fail)?;
        // Refused as an invalid argument, naming the field.
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let data = &answer["errorData"];
        prop_assert_eq!(data["code"].as_str(), Some("INVALID_ARGUMENT"), "{}", answer);
        let path = data["path"].as_str().unwrap_or_default();
        prop_assert!(path.ends_with(&field), "the path {:?} names {:?}: {}", path, field, answer);
        Ok(())
    });
    let tally = tally.into_inner().expect("tally");
    println!("bad numbers: {} cases", tally.cases);
    for (answer, n) in &tally.by_answer {
        println!("  {answer}: {n}");
    }
    if let Err(error) = result {
        panic!("{error}");
    }
    assert_eq!(last.into_inner().expect("snapshot"), initial);
}

/// Fields named like `Object.prototype` properties are unknown fields: a deployment refuses
/// them. convex-test alone would let them through (its validator and `jsonToConvex` are
/// JavaScript object lookups) and the handler would store them; the local server refuses them
/// as extra fields (convex/server/http.ts `prototypeNamedField`).
#[test]
fn prototype_named_fields_are_refused() {
    let runtime = runtime();
    let deployment = TestDeployment::local_only("bad_input_prototype", true);
    let server = Server::new(&deployment);
    let initial = runtime.block_on(async {
        server.seed_and_settle().await.expect("seeded");
        server.snapshot().await.expect("snapshot")
    });
    let last = Mutex::new(initial.clone());
    let tally = Mutex::new(Tally::default());
    let mut failures = Vec::new();
    for function in functions() {
        let objects: Vec<Vec<Step>> = locations(&function.args)
            .into_iter()
            .filter(|p| value_at(&function.args, p).is_some_and(|v| class_of(v) == Class::Object))
            .collect();
        for place in &objects {
            for key in PROTOTYPE_KEYS {
                let mut args = function.args.clone();
                if let Some(Value::Object(object)) = at_mut(&mut args, place) {
                    object.insert((*key).to_owned(), json!(-1));
                }
                let request = RawRequest::call(
                    function.kind,
                    &json!({"path": full_path(function.name), "args": {"authSecret": server.secret, "args": args}, "format": "json"}),
                );
                let corruption = Corruption::Extra {
                    at: 0,
                    key: 0,
                    junk: 0,
                };
                if let Err(error) = runtime.block_on(check_case(
                    &server,
                    &function,
                    &corruption,
                    &request,
                    &last,
                    &tally,
                )) {
                    failures.push(format!(
                        "{} {key} at /{}: {}",
                        function.name,
                        pointer(place),
                        error.lines().nth(1).unwrap_or_default()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} accepted:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A JSON pointer for `path`.
fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}
