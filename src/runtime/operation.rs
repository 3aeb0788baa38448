//! What the generated code says about each operation, so that generic code (the request
//! splitter, the storage layer, tests) can handle any of them.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::FunctionKind;

/// What one call of an operation may carry to stay within Convex's transaction limits
/// (computed from the declaration by `durable_execution_storage_convex_ir::limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationLimits {
    /// For list arguments: at most this many elements per call.
    pub max_items: Option<u32>,
    pub reads_per_item: u32,
    pub writes_per_item: u32,
    /// Cost of one child inserted along with its request.
    pub reads_per_child: u32,
    pub writes_per_child: u32,
    /// For range updates (and batched deletes): the largest `limit` of one call.
    pub max_limit: Option<u32>,
}

/// The budgets the limits were computed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    pub reads: u32,
    pub writes: u32,
    pub array_len: u32,
    pub args_bytes: u32,
}

/// An operation's argument type, with what the client needs to call it.
pub trait ConvexOperation: Serialize + Send + Sync {
    /// The function name, e.g. `insertMany` (the path is `<module>:<NAME>`).
    const NAME: &'static str;
    const KIND: FunctionKind;
    /// Refused by the server outside test mode.
    const TEST_ONLY: bool;
    const LIMITS: OperationLimits;
    type Response: DeserializeOwned + Send;
}
