//! The end-to-end test harness: a fresh, isolated database for every test.
//!
//! - **Local (default).** One local server per test binary and test mode (at most two, started
//!   lazily on first use and shared by the binary's tests): test mode ON and test mode OFF.
//!   Every test gets its own instance on it (`/instance/<unique id>`), an empty database, so
//!   tests run in parallel without seeing each other's documents. The servers die with the
//!   test process (they watch their stdin).
//! - **A real deployment.** When `CONVEX_URL` is set (with `TASK_EXECUTIONS_STORAGE_AUTH_SECRET`,
//!   and `CONVEX_ADMIN_KEY` if the deployment needs one), tests run there instead. There is
//!   only one database, so the tests take a global lock one after the other and each starts
//!   with `deleteAll`, which needs the deployment in test mode
//!   (`TASK_EXECUTIONS_STORAGE_TEST_MODE=true`). Tests that need test mode OFF cannot run
//!   there: they print why and return (see [`TestDeployment::without_test_mode`]).
//!
//! [`ConvexStorageFactory`] gives the conformance suite and the multi-client tests (differential,
//! concurrency) Convex storages the same way: a fresh instance per backend locally, the emptied
//! deployment with `CONVEX_URL`.
//!
//! [`fault_proxy`] puts a programmable, loopback-only HTTP proxy between a client and the
//! local server (refused connections, resets, delays, 429/502/503/504, responses lost after the
//! commit, blackouts), for the fault-injection tests (`tests/faults.rs`).
//!
//! Nothing here passes silently: a server that does not start, a deployment that is not in
//! test mode, or missing credentials fail the test with the reason.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod fault_proxy;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use durable_execution_storage_convex::conformance::{StorageBackend, StorageFactory};

use durable_execution_storage_convex::local_server::{
    LocalConvexServer, LocalServerOptions, RemoteDeployment,
};
use durable_execution_storage_convex::runtime::{AuthSecret, ConvexHttpClient};
use durable_execution_storage_convex::storage::{
    NewTaskExecution, ParentTaskExecutionSummary, StorageError, TaskExecutionStorageValue,
    TaskExecutionsStorage,
};
use durable_execution_storage_convex::task_executions::{
    RetryOptions, TaskExecution, TaskExecutionSummary, TaskExecutionsStorageClient,
};
use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};
use tokio::sync::{Mutex, MutexGuard};

/// The secret of the local servers.
pub const LOCAL_SECRET: &str = "e2e-test-secret";

/// Where the tests run: the deployment the environment names, or (`None`) the local servers.
/// A half-configured environment panics with the reason.
fn remote() -> Option<&'static RemoteDeployment> {
    RemoteDeployment::from_env_once().unwrap_or_else(|error| panic!("{error}"))
}

/// Whether the tests run against a real deployment (`CONVEX_URL`).
pub fn is_remote() -> bool {
    remote().is_some()
}

/// The shared local server of this binary with test mode `on` (started on first use).
///
/// A failed start is remembered, so that every later test of the binary fails at once with
/// the same message instead of waiting for its own start-up timeout.
pub fn local_server(test_mode: bool) -> &'static LocalConvexServer {
    static ON: OnceLock<Result<LocalConvexServer, String>> = OnceLock::new();
    static OFF: OnceLock<Result<LocalConvexServer, String>> = OnceLock::new();
    let cell = if test_mode { &ON } else { &OFF };
    let started = cell.get_or_init(|| {
        LocalConvexServer::start(LocalServerOptions::new(LOCAL_SECRET).test_mode(test_mode))
            .map_err(|error| error.to_string())
    });
    match started {
        Ok(server) => server,
        Err(error) => panic!("cannot start the local Convex server: {error}"),
    }
}

/// An instance id unique in this test binary (each binary has its own servers): the test's
/// name, for the server's verbose log, and a counter.
fn unique_instance_id(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    format!("{clean}-{n}")
}

/// Serialises the tests on a real deployment, which has a single database.
fn remote_lock() -> &'static Mutex<()> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| Mutex::new(()))
}

/// One test's database: an instance of a local server, or the (emptied) real deployment.
pub struct TestDeployment {
    url: String,
    secret: String,
    admin_key: Option<String>,
    /// The local server's base URL and the instance id, for [`calls`](Self::calls).
    local: Option<(String, String)>,
    test_mode: bool,
    /// Held for the whole test on a real deployment.
    _lock: Option<MutexGuard<'static, ()>>,
}

impl TestDeployment {
    /// A fresh, empty database with test mode ON (deleteById and deleteAll allowed).
    pub async fn new(name: &str) -> Self {
        match remote() {
            None => Self::local(name, true),
            Some(RemoteDeployment {
                url,
                auth_secret,
                admin_key,
            }) => {
                let lock = remote_lock().lock().await;
                let deployment = Self {
                    url: url.clone(),
                    secret: auth_secret.clone(),
                    admin_key: admin_key.clone(),
                    local: None,
                    test_mode: true,
                    _lock: Some(lock),
                };
                deployment
                    .client()
                    .delete_all(
                        &durable_execution_storage_convex::task_executions::DeleteAllArgs {},
                    )
                    .await
                    .unwrap_or_else(|error| {
                        panic!(
                            "deleteAll on {url} failed; the e2e tests need the deployment in \
                             test mode (TASK_EXECUTIONS_STORAGE_TEST_MODE=true) and the right \
                             secret: {error}"
                        )
                    });
                deployment
            }
        }
    }

    /// A fresh, empty database with test mode OFF, on the local server without test mode.
    /// `None` on a real deployment, whose test mode cannot be switched per test: the caller
    /// returns, and the reason is printed.
    pub async fn without_test_mode(name: &str) -> Option<Self> {
        if is_remote() {
            println!(
                "SKIPPED {name}: needs a deployment with test mode OFF; CONVEX_URL points at one \
                 in test mode (the e2e tests need it for deleteAll). It runs on the local server."
            );
            return None;
        }
        Some(Self::local(name, false))
    }

    /// A fresh, empty database on this binary's local server, whatever `CONVEX_URL` says: for
    /// the tests that need the local server itself (the fault proxy forwards plain HTTP to
    /// loopback only; the bad-input test reads `/stats`).
    pub fn local_only(name: &str, test_mode: bool) -> Self {
        Self::local(name, test_mode)
    }

    fn local(name: &str, test_mode: bool) -> Self {
        let server = local_server(test_mode);
        let instance = unique_instance_id(name);
        Self {
            url: server.instance_url(&instance),
            secret: LOCAL_SECRET.to_owned(),
            admin_key: None,
            local: Some((server.url().to_owned(), instance)),
            test_mode,
            _lock: None,
        }
    }

    /// The deployment URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the deployment lets deleteById and deleteAll run.
    pub fn test_mode(&self) -> bool {
        self.test_mode
    }

    /// An HTTP client for this test's database.
    pub fn http(&self) -> ConvexHttpClient {
        let http = ConvexHttpClient::new(&self.url).expect("a valid deployment URL");
        match &self.admin_key {
            Some(key) => http.with_admin_key(key.clone()),
            None => http,
        }
    }

    /// The secret of this test's database.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The local server's base URL and this test's instance id (`None` on a real deployment).
    pub fn local_instance(&self) -> Option<(&str, &str)> {
        self.local
            .as_ref()
            .map(|(base, instance)| (base.as_str(), instance.as_str()))
    }

    /// The generated typed client over `http` (e.g. a client pointed at a fault proxy, with
    /// its own retry policy), with the right secret.
    pub fn client_over(&self, http: ConvexHttpClient) -> TaskExecutionsStorageClient {
        TaskExecutionsStorageClient::new(http, AuthSecret::new(&self.secret))
    }

    /// The generated typed client, with the right secret.
    pub fn client(&self) -> TaskExecutionsStorageClient {
        self.client_with_secret(&self.secret)
    }

    /// The generated typed client, with `secret`.
    pub fn client_with_secret(&self, secret: &str) -> TaskExecutionsStorageClient {
        TaskExecutionsStorageClient::new(self.http(), AuthSecret::new(secret))
    }

    /// The storage over this test's database.
    pub fn storage(&self, options: ConvexStorageOptions) -> ConvexTaskExecutionsStorage {
        ConvexTaskExecutionsStorage::new(self.client(), options).expect("valid storage options")
    }

    /// How many times the function `taskExecutionsStorage:<name>` ran in this test's
    /// database, from the local server's `/stats`. `None` on a real deployment, which does not
    /// count calls (the caller then checks the results only, and says so).
    pub async fn calls(&self, name: &str) -> Option<u64> {
        let (base, instance) = self.local.as_ref()?;
        let stats: serde_json::Value = reqwest::get(format!("{base}/instance/{instance}/stats"))
            .await
            .expect("GET /stats")
            .json()
            .await
            .expect("stats are JSON");
        let path = format!("taskExecutionsStorage:{name}");
        Some(stats["calls"][&path].as_u64().unwrap_or(0))
    }
}

/// Convex storages for [`conformance`](durable_execution_storage_convex::conformance) and the
/// other tests that need many clients of one database (differential, concurrency).
///
/// - **Local**: each [`create`](StorageFactory::create) is a fresh instance (an empty database)
///   on this binary's shared test-mode-ON server, so backends never see each other's
///   documents. Test mode ON on the server only *allows* deletions: each client still decides
///   with its own `enable_test_mode`, which is what the cases vary.
/// - **`CONVEX_URL`**: there is one database. The factory holds the deployment's lock for its
///   whole life (so a test binary's factories and [`TestDeployment`]s run one after the
///   other), and each `create` empties the deployment with `deleteAll`. This is right because
///   a user of a factory (the conformance suite, one differential case, one concurrency
///   scenario) works on one backend at a time and creates the next only when done with the
///   previous: the cases run serially, with a `deleteAll` between them.
pub struct ConvexStorageFactory {
    name: String,
    /// The real deployment (and its lock) with `CONVEX_URL`; `None` locally.
    remote: Option<TestDeployment>,
}

impl ConvexStorageFactory {
    /// A factory whose local instances are named after `name` (visible in the server's log).
    pub async fn new(name: &str) -> Self {
        let remote = if is_remote() {
            Some(TestDeployment::new(name).await)
        } else {
            None
        };
        Self {
            name: name.to_owned(),
            remote,
        }
    }
}

#[async_trait]
impl StorageFactory for ConvexStorageFactory {
    async fn create(&self) -> Result<Arc<dyn StorageBackend>, StorageError> {
        let backend = match &self.remote {
            Some(deployment) => {
                deployment
                    .client()
                    .delete_all(
                        &durable_execution_storage_convex::task_executions::DeleteAllArgs {},
                    )
                    .await?;
                ConvexBackend::of(deployment)
            }
            None => ConvexBackend::of(&TestDeployment::local(&self.name, true)),
        };
        Ok(Arc::new(backend))
    }
}

/// One database of a [`ConvexStorageFactory`]. Its clients hold only the deployment URL and
/// secret: the local server outlives them (it is a static of the test binary).
struct ConvexBackend {
    url: String,
    secret: String,
    admin_key: Option<String>,
}

impl ConvexBackend {
    fn of(deployment: &TestDeployment) -> Self {
        Self {
            url: deployment.url.clone(),
            secret: deployment.secret.clone(),
            admin_key: deployment.admin_key.clone(),
        }
    }
}

#[async_trait]
impl StorageBackend for ConvexBackend {
    async fn client(
        &self,
        options: ConvexStorageOptions,
    ) -> Result<Arc<dyn TaskExecutionsStorage>, StorageError> {
        // Each client gets its own HTTP client (connection pool), like a separate process.
        let http = ConvexHttpClient::new(&self.url)?;
        let http = match &self.admin_key {
            Some(key) => http.with_admin_key(key.clone()),
            None => http,
        };
        let client = TaskExecutionsStorageClient::new(http, AuthSecret::new(&self.secret));
        Ok(Arc::new(ConvexTaskExecutionsStorage::new(client, options)?))
    }
}

/// Epoch ms used as "long ago" in documents: every `updatedAt < now` bound includes it.
pub const PAST: u64 = 1_000;

/// Epoch ms far in the future: every `updatedAt < now` bound excludes it.
pub const FUTURE: u64 = 4_000_000_000_000;

/// A new execution `id` of task `task`, created at [`PAST`], ready, no parent.
pub fn new_value(id: &str) -> TaskExecutionStorageValue {
    TaskExecutionStorageValue::new_execution(
        NewTaskExecution {
            root: None,
            parent: None,
            task_id: format!("task-of-{id}"),
            execution_id: id.to_owned(),
            is_sleeping_task: false,
            sleeping_task_unique_id: None,
            retry_options: RetryOptions {
                max_attempts: 3,
                base_delay_ms: Some(100),
                max_delay_ms: None,
                delay_multiplier: Some(2.0),
            },
            sleep_ms_before_run: 0,
            timeout_ms: 60_000,
            are_children_sequential: false,
            input: format!("{{\"of\":\"{id}\"}}"),
        },
        PAST,
    )
}

/// A child `id` of `parent` at `index`.
pub fn child_value(id: &str, parent: &str, index: u32) -> TaskExecutionStorageValue {
    let mut value = new_value(id);
    value.root = Some(TaskExecutionSummary {
        task_id: format!("task-of-{parent}"),
        execution_id: parent.to_owned(),
    });
    value.parent = Some(ParentTaskExecutionSummary {
        task_id: format!("task-of-{parent}"),
        execution_id: parent.to_owned(),
        index_in_parent_children: index,
        is_only_child_of_parent: false,
        is_finalize_of_parent: false,
    });
    value
}

/// The document of [`new_value`] in `shard`.
pub fn new_doc(id: &str, shard: u32) -> TaskExecution {
    new_value(id).into_document(shard)
}

/// The document of [`child_value`] in `shard`.
pub fn child_doc(id: &str, parent: &str, index: u32, shard: u32) -> TaskExecution {
    child_value(id, parent, index).into_document(shard)
}
