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

/// What re-sending a call does when the first attempt's outcome is unknown (the request may
/// have committed and only its response been lost). Declared per operation
/// (`#[convex(operation(retry = "..."))]`); decides which failures the client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetrySafety {
    /// Applying the call twice leaves the same state as applying it once (queries, patches by
    /// id, expiry sweeps): every transient failure is retried.
    Idempotent,
    /// A re-sent insert may be refused as a duplicate of its own first attempt: every
    /// transient failure is retried, and the caller treats a duplicate refusal that follows an
    /// attempt of unknown outcome as success once it has verified the stored content.
    VerifyDuplicates,
    /// Re-sending after an unknown outcome could apply the call twice (e.g. claim a second
    /// batch while the first is lost): only failures that prove the call did not run are
    /// retried (connection refused, HTTP 429/503).
    OnlyUnsent,
}

impl RetrySafety {
    /// The safety of an operation that declares none: queries never write; a mutation or an
    /// action might, so only calls that provably did not run are retried.
    pub const fn default_for(kind: FunctionKind) -> Self {
        match kind {
            FunctionKind::Query => Self::Idempotent,
            FunctionKind::Mutation | FunctionKind::Action => Self::OnlyUnsent,
        }
    }
}

/// An operation's argument type, with what the client needs to call it.
pub trait ConvexOperation: Serialize + Send + Sync {
    /// The function name, e.g. `insertMany` (the path is `<module>:<NAME>`).
    const NAME: &'static str;
    const KIND: FunctionKind;
    /// What re-sending the call after an unknown outcome does.
    const RETRY_SAFETY: RetrySafety = RetrySafety::default_for(Self::KIND);
    /// Refused by the server outside test mode.
    const TEST_ONLY: bool;
    const LIMITS: OperationLimits;
    type Response: DeserializeOwned + Send;
}
