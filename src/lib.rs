//! Durable-execution task storage on Convex.
//!
//! - [`task_executions`]: the declaration (table, indexes, operations) and the typed client
//!   that `#[convex_component]` generates from it;
//! - [`runtime`]: what the generated client stands on (Convex's HTTP API, `Id`, `Doc`, the
//!   integer wire format, errors);
//! - [`storage`]: the engine's storage contract, its Convex implementation and an in-memory
//!   one with the same semantics;
//! - `conformance` (feature `conformance`): the suite every storage of the contract must pass;
//! - `local_server` (feature `local-server`): starts the local Convex server of `convex/`
//!   for development and tests.
//!
//! Both are test support, off by default (feature `test-support` turns both on).

// The generated code names this crate by its public path, also from inside the crate.
extern crate self as durable_execution_storage_convex;

#[cfg(feature = "conformance")]
pub mod conformance;
mod declaration;
#[cfg(feature = "local-server")]
pub mod local_server;
pub mod runtime;
pub mod storage;

pub use declaration::task_executions;
pub use durable_execution_storage_convex_macros::convex_component;
pub use runtime::{Doc, Id};
pub use storage::{
    ConvexStorageOptions, ConvexTaskExecutionsStorage, InMemoryTaskExecutionsStorage, StorageError,
    TaskExecutionStorageValue, TaskExecutionsStorage,
};

#[doc(hidden)]
pub mod __private {
    pub use serde;
}
