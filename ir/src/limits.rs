//! Convex's transaction limits, and what one call of each operation may carry so that it stays
//! within them by construction.
//!
//! The numbers are budgets, a little under Convex's own limits per function call (4,096 index
//! ranges or gets, 32,000 documents scanned, 16,000 documents written, 8,192 array elements and
//! 16 MiB of arguments), so that a call that passes the budget never hits the real limit. The
//! Rust client splits larger requests into calls that fit; the generated Convex functions refuse
//! a call over budget with a clear error before touching the database.
//!
//! Counts do not bound the BYTES a call reads, writes and returns, which depend on the size of
//! the documents (their `input` and `output` strings): the generated functions count those as
//! they go, against the byte budgets below, and refuse a call before it would pass Convex's own
//! limits (16 MiB read, written and returned per call, 1 MiB per document), saying how many of
//! its leading requests (or documents) fit.

use serde::Serialize;

use crate::model::{Access, AfterUpdate, Operation};

/// Index lookups (`db.query(...).withIndex` ranges and `db.get`s) one call may make; the
/// per-element costs below count these.
pub const QUERY_BUDGET: u32 = 4_000;
/// Documents one call may scan (reading every child of a parent counts each child).
pub const DOCUMENT_READ_BUDGET: u32 = 30_000;
/// Documents one call may write.
pub const WRITE_BUDGET: u32 = 15_000;
/// Documents `deleteAll` deletes per transaction.
pub const DELETE_ALL_BATCH: u32 = 500;
/// Elements of one array argument.
pub const MAX_ARRAY_LEN: u32 = 8_192;
/// Bytes of JSON arguments the client puts in one call (Convex accepts 16 MiB; half of it
/// leaves room for the envelope and for the size growth of a document once stored).
pub const ARGS_BYTES_BUDGET: u32 = 8 * 1024 * 1024;

/// Convex's limit on the size of one document: 1 MiB, as Convex measures a value (see
/// `getConvexSize` in `convex/values`, which mirrors the backend).
pub const DOCUMENT_BYTES_MAX: u32 = 1 << 20;
/// What the system fields `_id` and `_creationTime` add to a document's size, at most: a
/// document to insert does not have them yet, and its size must not be underestimated
/// (`_id`: 3 + 1 + 2 + up to 64 characters; `_creationTime`: 13 + 1 + 9).
pub const SYSTEM_FIELDS_BYTES_MAX: u32 = 100;
/// Bytes one call may read. Convex allows 16 MiB; a document is counted once read, so the
/// budget leaves room for one more document of the largest size.
pub const READ_BYTES_BUDGET: u32 = 15 << 20;
/// Bytes one call may write (Convex allows 16 MiB).
pub const WRITE_BYTES_BUDGET: u32 = 15 << 20;
/// Bytes one call may return (Convex allows 16 MiB).
pub const RETURN_BYTES_BUDGET: u32 = 15 << 20;

/// What one call of an operation may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OperationLimits {
    /// For list arguments (`each`): at most this many elements per call.
    pub max_items: Option<u32>,
    /// What one element costs.
    pub reads_per_item: u32,
    pub writes_per_item: u32,
    /// What one inserted child costs on top of its request (children inserted with a parent).
    pub reads_per_child: u32,
    pub writes_per_child: u32,
    /// For range updates: the largest `limit` one call accepts.
    pub max_limit: Option<u32>,
}

/// The limits of one operation, from its access pattern.
pub fn operation_limits(operation: &Operation) -> OperationLimits {
    let none = OperationLimits {
        max_items: None,
        reads_per_item: 0,
        writes_per_item: 0,
        reads_per_child: 0,
        writes_per_child: 0,
        max_limit: None,
    };
    let max_items = |reads: u32, writes: u32| {
        let by_reads = QUERY_BUDGET.checked_div(reads).unwrap_or(u32::MAX);
        let by_writes = WRITE_BUDGET.checked_div(writes).unwrap_or(u32::MAX);
        Some(by_reads.min(by_writes).min(MAX_ARRAY_LEN))
    };
    match &operation.access {
        Access::Insert { unique_indexes, .. } => {
            // One uniqueness lookup per unique index, one write.
            let reads = unique_indexes.len() as u32;
            OperationLimits {
                max_items: max_items(reads, 1),
                reads_per_item: reads,
                writes_per_item: 1,
                ..none
            }
        }
        Access::GetEach { .. } => OperationLimits {
            max_items: max_items(1, 0),
            reads_per_item: 1,
            ..none
        },
        Access::UpdateEach {
            first,
            insert_children,
            ..
        } => {
            // A lookup and a patch per request; every matching child when not `first`, which
            // the server counts as it goes.
            let reads_per_child = insert_children
                .as_ref()
                .map_or(0, |children| children.unique_indexes.len() as u32);
            let writes_per_child = u32::from(insert_children.is_some());
            OperationLimits {
                max_items: max_items(1, u32::from(*first)),
                reads_per_item: 1,
                writes_per_item: u32::from(*first),
                reads_per_child,
                writes_per_child,
                ..none
            }
        }
        Access::UpdateRange { then, .. } => {
            // One index range, then a write per patched document; the `then` step adds
            // a lookup and a write per document. The limit also bounds the documents the range
            // reads, hence the query budget rather than the document budget; their bytes are
            // counted by the server as it reads (a call over a byte budget says how many fit).
            let per_document = match then {
                Some(AfterUpdate::DecrementReferenced { .. }) => 2,
                None => 1,
            };
            OperationLimits {
                max_limit: Some((QUERY_BUDGET / per_document).min(WRITE_BUDGET / per_document)),
                ..none
            }
        }
        Access::DeleteOne { .. } => OperationLimits {
            reads_per_item: 1,
            writes_per_item: 1,
            ..none
        },
        // Deletes in batches, one call per batch, until the table is empty. No client can
        // tune this batch; every deleted document is read whole, so a batch also ends early
        // where the bytes it read reach the read budget (large documents).
        Access::DeleteAll => OperationLimits {
            max_limit: Some(DELETE_ALL_BATCH),
            ..none
        },
    }
}
