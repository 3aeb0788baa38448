//! A durable executor: tasks whose executions live in a [`TaskExecutionsStorage`] (the Convex
//! storage, or the in-memory one), so that they survive restarts and spread over executors.
//!
//! The Rust counterpart of the TypeScript `durable-execution` engine (0.32), with the same
//! storage contract and stored forms, so that both can share one deployment's data:
//!
//! ```no_run
//! use std::time::Duration;
//! use durable_execution::storage::InMemoryTaskExecutionsStorage;
//! use durable_execution::{Executor, ExecutorOptions, TaskOptions, TaskError, WaitOptions};
//! # use durable_execution_storage_convex::ConvexStorageOptions;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Input { name: String }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let storage = InMemoryTaskExecutionsStorage::new(ConvexStorageOptions::default())?;
//! let executor = Executor::new(storage, ExecutorOptions::default())?;
//! let task = executor.task(
//!     TaskOptions::new("my-task", Duration::from_secs(30)),
//!     |_ctx, input: Input| async move { Ok::<_, TaskError>(format!("Hello, {}!", input.name)) },
//! )?;
//! executor.start();
//! let handle = executor.enqueue(&task, Input { name: "World".into() }).await?;
//! let finished = handle.wait_finished(WaitOptions::default()).await?;
//! println!("{}", finished.output.unwrap_or_default()); // Hello, World!
//! executor.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! - Task kinds: [`Executor::task`], [`Executor::sleeping_task`], parent tasks
//!   ([`ParentTaskDefinition`], registered with [`Executor::register`]), sequential tasks
//!   ([`Sequence`], [`Executor::sequential_tasks`]) and looping tasks
//!   ([`Executor::looping_task`]).
//! - Executions: [`Executor::enqueue`] gives a [`TaskExecutionHandle`] to read, wait for or
//!   cancel it.
//! - Every absolute time the executor writes comes from the storage's clock
//!   ([`TaskExecutionsStorage::now_millis`]).

mod background;
mod batching;
mod context;
mod error;
mod executor;
mod handle;
mod ids;
mod options;
mod processes;
mod run;
pub mod serializer;
mod signal;
pub mod storage;
mod store;
#[cfg(feature = "suite")]
pub mod suite;
mod task;
mod update;

pub use context::TaskContext;
pub use error::{Error, TaskError};
pub use executor::{Executor, WakeUp};
pub use handle::{TaskExecution, TaskExecutionHandle, WaitOptions};
pub use options::{
    retry_delay_ms, EnqueueOptions, ExecutorOptions, LogLevel, TaskOptions, TaskRetryOptions,
};
pub use serializer::{JsonSerializer, SerializationError, Serializer, SuperjsonSerializer};
pub use signal::Signal;
pub use storage::TaskExecutionsStorage;
pub use store::{OperationMetrics, StorageMetrics};
pub use task::{
    child, Child, FinishedChild, LoopIteration, LoopOutput, ParentOutput, ParentRun,
    ParentTaskDefinition, Sequence, SleepingTask, Task, TaskDefinition, TaskRef,
};
