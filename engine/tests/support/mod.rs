//! The Convex side of the engine's tests: the local Convex server of `convex/` (one per test
//! binary, test mode on), a fresh instance (an empty database) per backend, and separate
//! clients of it (each with its own HTTP connection pool, like separate processes).

#![allow(dead_code)] // Each test binary uses a part of it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use durable_execution::storage::TaskExecutionsStorage;
use durable_execution::suite::{BoxFuture, Failure, StorageBackend, StorageFactory};
use durable_execution::ExecutorOptions;
use durable_execution_storage_convex::local_server::{LocalConvexServer, LocalServerOptions};
use durable_execution_storage_convex::runtime::{AuthSecret, ConvexHttpClient};
use durable_execution_storage_convex::task_executions::TaskExecutionsStorageClient;
use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};

pub const SECRET: &str = "engine-test-secret";

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

/// A fresh instance URL on the server.
pub fn fresh_instance(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    server().instance_url(&format!("engine-{name}-{n}"))
}

/// A Convex storage client of the database at `url`.
pub fn client(url: &str) -> Result<ConvexTaskExecutionsStorage, String> {
    let http = ConvexHttpClient::new(url)
        .map_err(|e| e.to_string())?
        .with_timeout(Duration::from_secs(60));
    let client = TaskExecutionsStorageClient::new(http, AuthSecret::new(SECRET));
    ConvexTaskExecutionsStorage::new(client, ConvexStorageOptions::default().with_test_mode(true))
        .map_err(|e| e.to_string())
}

/// Fresh instances of the local server for the scenario suite.
pub struct ConvexFactory {
    pub name: &'static str,
}

struct Backend(String);

impl StorageFactory for ConvexFactory {
    fn create(&self) -> BoxFuture<'_, Result<Arc<dyn StorageBackend>, Failure>> {
        Box::pin(async move {
            let name = self.name;
            let url = tokio::task::spawn_blocking(move || fresh_instance(name))
                .await
                .map_err(|e| Failure(e.to_string()))?;
            Ok(Arc::new(Backend(url)) as Arc<dyn StorageBackend>)
        })
    }

    fn executor_options(&self) -> ExecutorOptions {
        ExecutorOptions::default()
            .with_background_process_intra_batch_sleep(Duration::from_millis(50))
            .with_max_idle_poll_interval(Duration::from_millis(250))
            .with_max_idle_maintenance_poll_interval(Duration::from_millis(250))
            .with_log_level(durable_execution::LogLevel::Error)
    }

    fn time_scale(&self) -> u32 {
        4
    }
}

impl StorageBackend for Backend {
    fn client(&self) -> BoxFuture<'_, Result<Arc<dyn TaskExecutionsStorage>, Failure>> {
        Box::pin(async move {
            let storage = client(&self.0).map_err(Failure)?;
            Ok(Arc::new(storage) as Arc<dyn TaskExecutionsStorage>)
        })
    }
}
