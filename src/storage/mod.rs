//! The storage layer: what the durable-execution engine calls, and its Convex implementation.
//!
//! - [`TaskExecutionsStorage`]: the engine's storage contract (17 async methods, reference §4),
//!   in storage-value terms and without shards, so that other implementations (in memory,
//!   other databases) and a conformance suite can be written against it alone;
//! - [`TaskExecutionStorageValue`]: an execution as the engine sees it, and its exact mapping
//!   to and from the stored Convex document;
//! - [`ConvexTaskExecutionsStorage`]: the contract over the generated Convex client, with
//!   shards, test mode, and requests of any size split into calls within Convex's limits
//!   ([`chunking`]);
//! - [`InMemoryTaskExecutionsStorage`]: the same contract and semantics in memory, the oracle
//!   the Convex storage is compared against.

pub mod chunking;
mod contract;
pub(crate) mod convex;
mod decode;
mod error;
mod memory;
mod options;
mod requests;
pub mod server_clock;
mod value;

#[cfg(test)]
mod tests;

pub use contract::TaskExecutionsStorage;
pub use convex::{ConvexTaskExecutionsStorage, SYSTEM_FIELDS_RESERVE_BYTES};
pub use error::{
    StorageError, UndecodableDocument, ALREADY_EXISTS_CODE, CONVEX_DOCUMENT_LIMIT_BYTES,
    INVALID_ARGUMENT_CODE, LIMIT_EXCEEDED_CODE, TEST_MODE_REQUIRED_CODE,
};
pub use memory::{now_millis, system_clock, Clock, InMemoryTaskExecutionsStorage};
pub use options::{shard_of_execution, split_limit, ConvexStorageOptions, MAX_TOTAL_SHARDS};
pub use requests::{
    GetByIdRequest, GetByParentExecutionIdRequest, GetBySleepingTaskUniqueIdRequest,
    UpdateAndDecrementParentActiveChildrenCountRequest, UpdateByCloseExpiresAtLessThanRequest,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
pub use server_clock::{ClockEstimate, ServerClock};
pub use value::{
    NewTaskExecution, ParentTaskExecutionSummary, TaskExecutionStorageFilters,
    TaskExecutionStorageUpdate, TaskExecutionStorageValue,
};
