//! The original README's example, in Rust, on the in-memory storage:
//!
//! ```text
//! cargo run -p durable-execution --example hello_world
//! ```
//!
//! Registers `my-task` (returns `Hello, {name}!`), starts the executor, enqueues
//! `{name: "World"}`, waits for the finished execution, prints its output and shuts down.

use std::error::Error;
use std::time::Duration;

use durable_execution::storage::InMemoryTaskExecutionsStorage;
use durable_execution::{Executor, ExecutorOptions, TaskError, TaskOptions, WaitOptions};
use durable_execution_storage_convex::ConvexStorageOptions;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Input {
    name: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // Create the storage and the executor.
    let storage = InMemoryTaskExecutionsStorage::new(ConvexStorageOptions::default())?;
    let executor = Executor::new(storage, ExecutorOptions::default())?;

    // Create a task.
    let task = executor.task(
        TaskOptions::new("my-task", Duration::from_secs(30)),
        |_ctx, input: Input| async move { Ok::<_, TaskError>(format!("Hello, {}!", input.name)) },
    )?;

    // Start the durable executor.
    executor.start();

    // Use the executor.
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

    executor.shutdown().await;
    Ok(())
}
