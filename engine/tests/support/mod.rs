//! The Convex side of the engine's tests.
//!
//! - **Local (default).** The local Convex server of `convex/` (one per test binary, test mode
//!   on), a fresh instance (an empty database) per backend.
//! - **A real deployment.** When `CONVEX_URL` is set (with `TASK_EXECUTIONS_STORAGE_AUTH_SECRET`,
//!   and `CONVEX_ADMIN_KEY` if the deployment needs one), the tests run there instead. It has
//!   one database, so each backend holds a process-wide lock for its whole life (the binary's
//!   scenarios run one after the other) and starts with `deleteAll`, which needs the
//!   deployment in test mode (`TASK_EXECUTIONS_STORAGE_TEST_MODE=true`).
//!
//! Either way, every client is separate (its own HTTP connection pool), like separate
//! processes. A half-configured environment, a server that does not start or a deployment
//! that refuses `deleteAll` fails the test with the reason.

#![allow(dead_code)] // Each test binary uses a part of it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use durable_execution::storage::TaskExecutionsStorage;
use durable_execution::suite::{BoxFuture, Failure, StorageBackend, StorageFactory};
use durable_execution::ExecutorOptions;
use durable_execution_storage_convex::local_server::{
    LocalConvexServer, LocalServerOptions, RemoteDeployment,
};
use durable_execution_storage_convex::runtime::{AuthSecret, ConvexHttpClient};
use durable_execution_storage_convex::task_executions::{
    DeleteAllArgs, TaskExecutionsStorageClient,
};
use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub const SECRET: &str = "engine-test-secret";

/// The deployment the environment names, if any (a half-configured one panics with the
/// reason).
pub fn remote() -> Option<&'static RemoteDeployment> {
    RemoteDeployment::from_env_once().unwrap_or_else(|error| panic!("{error}"))
}

/// The binary's local server (started on first use, dies with the process).
pub fn server() -> &'static LocalConvexServer {
    static SERVER: OnceLock<Result<LocalConvexServer, String>> = OnceLock::new();
    match SERVER.get_or_init(|| {
        LocalConvexServer::start(LocalServerOptions::new(SECRET).test_mode(true))
            .map_err(|e| e.to_string())
    }) {
        Ok(server) => server,
        Err(error) => panic!("cannot start the local Convex server: {error}"),
    }
}

/// One test's database: a fresh instance of the local server, or the emptied deployment
/// (whose lock it holds while it lives).
pub struct Database {
    url: String,
    _lock: Option<OwnedMutexGuard<()>>,
}

impl Database {
    /// A fresh, empty database named after `name` (on the local server; the name shows in its
    /// log).
    pub async fn fresh(name: &str) -> Result<Self, String> {
        let Some(remote) = remote() else {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let instance = format!("engine-{name}-{n}");
            let url = tokio::task::spawn_blocking(move || server().instance_url(&instance))
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Self { url, _lock: None });
        };
        static LOCK: OnceLock<Arc<Mutex<()>>> = OnceLock::new();
        let lock = Arc::clone(LOCK.get_or_init(Default::default))
            .lock_owned()
            .await;
        let database = Self {
            url: remote.url.clone(),
            _lock: Some(lock),
        };
        typed_client(&database.url)?
            .delete_all(&DeleteAllArgs {})
            .await
            .map_err(|e| {
                format!(
                    "deleteAll on {} failed; the engine's tests need the deployment in test \
                     mode (TASK_EXECUTIONS_STORAGE_TEST_MODE=true) and the right secret: {e}",
                    remote.url
                )
            })?;
        Ok(database)
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn typed_client(url: &str) -> Result<TaskExecutionsStorageClient, String> {
    let mut http = ConvexHttpClient::new(url)
        .map_err(|e| e.to_string())?
        .with_timeout(Duration::from_secs(60));
    let secret = match remote() {
        Some(remote) => {
            if let Some(key) = &remote.admin_key {
                http = http.with_admin_key(key.clone());
            }
            remote.auth_secret.as_str()
        }
        None => SECRET,
    };
    Ok(TaskExecutionsStorageClient::new(
        http,
        AuthSecret::new(secret),
    ))
}

/// A new Convex storage client of the database at `url` (a [`Database::url`], e.g. passed to
/// a child process).
pub fn client(url: &str) -> Result<ConvexTaskExecutionsStorage, String> {
    ConvexTaskExecutionsStorage::new(
        typed_client(url)?,
        ConvexStorageOptions::default().with_test_mode(true),
    )
    .map_err(|e| e.to_string())
}

/// Fresh databases for the scenario suite.
pub struct ConvexFactory {
    pub name: &'static str,
}

impl StorageFactory for ConvexFactory {
    fn create(&self) -> BoxFuture<'_, Result<Arc<dyn StorageBackend>, Failure>> {
        Box::pin(async move {
            let database = Database::fresh(self.name).await.map_err(Failure)?;
            Ok(Arc::new(database) as Arc<dyn StorageBackend>)
        })
    }

    fn executor_options(&self) -> ExecutorOptions {
        ExecutorOptions::default()
            .with_background_process_intra_batch_sleep(Duration::from_millis(50))
            .with_max_idle_poll_interval(Duration::from_millis(250))
            .with_max_idle_maintenance_poll_interval(Duration::from_millis(250))
            .with_log_level(durable_execution::LogLevel::Error)
    }

    /// Four times the in-memory bounds over HTTP to the local server; eight over the internet
    /// to a deployment.
    fn time_scale(&self) -> u32 {
        if remote().is_some() {
            8
        } else {
            4
        }
    }
}

impl StorageBackend for Database {
    fn client(&self) -> BoxFuture<'_, Result<Arc<dyn TaskExecutionsStorage>, Failure>> {
        Box::pin(async move {
            let storage = client(&self.url).map_err(Failure)?;
            Ok(Arc::new(storage) as Arc<dyn TaskExecutionsStorage>)
        })
    }
}
