//! Durable-execution task storage on Convex.
//!
//! - [`task_executions`]: the declaration (table, indexes, operations) and the typed client
//!   that `#[convex_component]` generates from it;
//! - [`runtime`]: what the generated client stands on (Convex's HTTP API, `Id`, `Doc`, the
//!   integer wire format, errors);
//! - [`storage`]: the engine's storage contract and its Convex implementation.

// The generated code names this crate by its public path, also from inside the crate.
extern crate self as durable_execution_storage_convex;

mod declaration;
pub mod runtime;
pub mod storage;

pub use declaration::task_executions;
pub use durable_execution_storage_convex_macros::convex_component;
pub use runtime::{Doc, Id};
pub use storage::{
    ConvexStorageOptions, ConvexTaskExecutionsStorage, StorageError, TaskExecutionStorageValue,
    TaskExecutionsStorage,
};

#[doc(hidden)]
pub mod __private {
    pub use serde;
}
