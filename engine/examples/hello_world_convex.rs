//! The original README's example, in Rust, on Convex:
//!
//! ```text
//! cargo run -p durable-execution --example hello_world_convex
//! ```
//!
//! Starts the local Convex server of `convex/` (it needs Node.js and, once,
//! `cd convex && npm ci`), registers `my-task` (returns `Hello, {name}!`), enqueues
//! `{name: "World"}`, prints the output of the finished execution, then shuts the executor and
//! the server down. With `CONVEX_URL` and `TASK_EXECUTIONS_STORAGE_AUTH_SECRET` set (and
//! `CONVEX_ADMIN_KEY` if needed) it runs against that deployment instead.

use std::error::Error;
use std::time::Duration;

use durable_execution::{Executor, ExecutorOptions, TaskError, TaskOptions, WaitOptions};
use durable_execution_storage_convex::local_server::{
    LocalConvexServer, LocalServerOptions, RemoteDeployment,
};
use durable_execution_storage_convex::runtime::{AuthSecret, ConvexHttpClient};
use durable_execution_storage_convex::task_executions::TaskExecutionsStorageClient;
use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};
use serde::{Deserialize, Serialize};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[derive(Serialize, Deserialize)]
struct Input {
    name: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    // Where to run: a deployment when CONVEX_URL is set, else a local server.
    let (server, url, secret, admin_key) = match RemoteDeployment::from_env()? {
        Some(remote) => (None, remote.url, remote.auth_secret, remote.admin_key),
        None => {
            let secret = "hello-world-secret".to_owned();
            let options = LocalServerOptions::new(secret.clone());
            let server =
                tokio::task::spawn_blocking(move || LocalConvexServer::start(options)).await??;
            let url = server.url().to_owned();
            (Some(server), url, secret, None)
        }
    };

    // Create the Convex client and the storage.
    let mut http = ConvexHttpClient::new(&url)?.with_timeout(Duration::from_secs(30));
    if let Some(key) = admin_key {
        http = http.with_admin_key(key);
    }
    let client = TaskExecutionsStorageClient::new(http, AuthSecret::new(secret));
    let storage = ConvexTaskExecutionsStorage::new(client, ConvexStorageOptions::default())?;

    // Create the executor and a task.
    let executor = Executor::new(storage, ExecutorOptions::default())?;
    let task = executor.task(
        TaskOptions::new("my-task", Duration::from_secs(30)),
        |_ctx, input: Input| async move { Ok::<_, TaskError>(format!("Hello, {}!", input.name)) },
    )?;

    // Start the durable executor, enqueue, wait, print.
    executor.start();
    let outcome = async {
        let handle = executor
            .enqueue(
                &task,
                Input {
                    name: "World".into(),
                },
            )
            .await?;
        let finished = handle.wait_finished(WaitOptions::default()).await?;
        println!("{}", finished.into_result()?); // "Hello, World!"
        Ok::<_, Box<dyn Error + Send + Sync>>(())
    }
    .await;

    executor.shutdown().await;
    if let Some(server) = server {
        tokio::task::spawn_blocking(move || server.stop()).await?;
    }
    outcome
}
