//! Splitting list requests into calls that stay within Convex's limits by construction.
//!
//! A Convex function call may make about 4,096 index lookups, scan 32,000 documents, write
//! 16,000, carry arrays of 8,192 elements and 16 MiB of arguments. The generated server refuses a call over the budgets of
//! `ir::limits` (a little under those limits) before touching the database, and each
//! operation states what one element costs ([`OperationLimits`]). The planner here cuts a list
//! into consecutive chunks that each fit, so a storage request of any size becomes calls the
//! server accepts:
//!
//! - at most `max_items` elements (and never more than the array budget);
//! - reads and writes of the elements and of the children they carry within the budgets;
//! - children carried in one call within the array budget;
//! - serialized JSON of the elements within the argument byte budget.
//!
//! Order is preserved: concatenating the chunks gives the input back. An element that does not
//! fit in a call on its own is refused up front, naming it, so nothing is sent for a request
//! that could only partly succeed.
//!
//! What the plan cannot know — the bytes a call will read, write and return on the server,
//! which depend on the stored documents — the server's own byte budgets catch: it refuses such
//! a call with `LIMIT_EXCEEDED` (and how many leading requests fit) before writing anything,
//! and the storage splits it further (see `ConvexTaskExecutionsStorage`). [`document_size`]
//! measures a document as Convex does, for its 1 MiB document limit.

use std::io;
use std::ops::Range;

use serde::Serialize;

use super::StorageError;
use crate::runtime::{CallBudget, OperationLimits};

/// The budgets the generated server enforces per call (`QUERY_BUDGET`, `WRITE_BUDGET`,
/// `MAX_ARRAY_LEN`, `ARGS_BYTES_BUDGET` of `ir::limits`), as the generated code states them.
pub use crate::task_executions::limits::CALL_BUDGET;

/// Bytes kept free in every call for what surrounds the elements: the function path, the
/// `{"authSecret", "args"}` envelope and the argument object's own keys.
pub const ENVELOPE_RESERVE_BYTES: u64 = 64 * 1024;

/// What one element of a list request costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemCost {
    /// Length of the element's serialized JSON.
    pub json_bytes: u64,
    /// Children inserted along with the element.
    pub children: u32,
}

/// An element that cannot go in any call, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Oversize {
    /// Its position in the request.
    pub index: usize,
    /// Which budget it exceeds on its own.
    pub reason: String,
}

/// What a chunk holds so far.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    items: u64,
    children: u64,
    json_bytes: u64,
}

impl Load {
    fn with(self, cost: ItemCost) -> Self {
        Self {
            items: self.items + 1,
            children: self.children + u64::from(cost.children),
            // One more byte for the comma between elements.
            json_bytes: self.json_bytes + cost.json_bytes + 1,
        }
    }

    /// Why this load does not fit in one call, if it does not.
    fn excess(&self, limits: &OperationLimits, budget: &CallBudget) -> Option<String> {
        let max_items = limits
            .max_items
            .map_or(budget.array_len, |max| max.min(budget.array_len));
        let reads = self.items * u64::from(limits.reads_per_item)
            + self.children * u64::from(limits.reads_per_child);
        let writes = self.items * u64::from(limits.writes_per_item)
            + self.children * u64::from(limits.writes_per_child);
        let bytes = self.json_bytes + ENVELOPE_RESERVE_BYTES;
        let over = |what: &str, value: u64, max: u32| {
            (value > u64::from(max)).then(|| format!("{value} {what}, more than the {max} allowed"))
        };
        over("elements", self.items, max_items)
            .or_else(|| over("children", self.children, budget.array_len))
            .or_else(|| over("reads", reads, budget.reads))
            .or_else(|| over("writes", writes, budget.writes))
            .or_else(|| {
                over(
                    "bytes of arguments (with the envelope)",
                    bytes,
                    budget.args_bytes,
                )
            })
    }
}

/// Cuts `costs` into consecutive chunks (index ranges) that each fit in one call. Greedy:
/// a chunk takes elements until the next one would not fit. Fails with the first element that
/// does not fit on its own.
pub fn plan_chunks(
    limits: &OperationLimits,
    budget: &CallBudget,
    costs: &[ItemCost],
) -> Result<Vec<Range<usize>>, Oversize> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut load = Load::default();
    for (index, &cost) in costs.iter().enumerate() {
        let grown = load.with(cost);
        if grown.excess(limits, budget).is_none() {
            load = grown;
            continue;
        }
        if let Some(reason) = Load::default().with(cost).excess(limits, budget) {
            return Err(Oversize { index, reason });
        }
        chunks.push(start..index);
        start = index;
        load = Load::default().with(cost);
    }
    if start < costs.len() {
        chunks.push(start..costs.len());
    }
    Ok(chunks)
}

/// `limits` with at most `max_items_per_call` elements per call and at most that `limit` per
/// range call (see `ConvexStorageOptions::max_items_per_call`). Only ever lowers: a cap above
/// the generated limit, or `None`, leaves the limits as they are. A list operation without a
/// `max_items` of its own gets the cap (the array budget still applies on top).
pub fn lower_limits(limits: &OperationLimits, max_items_per_call: Option<u32>) -> OperationLimits {
    let Some(cap) = max_items_per_call else {
        return *limits;
    };
    let lower = |limit: Option<u32>| Some(limit.map_or(cap, |limit| limit.min(cap)));
    OperationLimits {
        max_items: lower(limits.max_items),
        // Only range operations have a `max_limit`; the others must keep `None`.
        max_limit: limits.max_limit.map(|limit| limit.min(cap)),
        ..*limits
    }
}

/// Plans the chunks of a list of wire elements: measures each element's JSON and counts its
/// children. `name_of` names an element in errors (e.g. `execution "e1"`).
pub fn plan_elements<T: Serialize>(
    operation: &str,
    limits: &OperationLimits,
    elements: &[T],
    children_of: impl Fn(&T) -> usize,
    name_of: impl Fn(&T) -> String,
) -> Result<Vec<Range<usize>>, StorageError> {
    let costs = elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            let json_bytes = json_len(element).map_err(|error| {
                invalid_element(operation, index, &name_of(element), &error.to_string())
            })?;
            let children = u32::try_from(children_of(element)).unwrap_or(u32::MAX);
            Ok(ItemCost {
                json_bytes,
                children,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    plan_chunks(limits, &CALL_BUDGET, &costs).map_err(|oversize| {
        let name = name_of(&elements[oversize.index]);
        let reason = format!("too large for one call: {}", oversize.reason);
        invalid_element(operation, oversize.index, &name, &reason)
    })
}

fn invalid_element(operation: &str, index: usize, name: &str, reason: &str) -> StorageError {
    StorageError::InvalidRequest(format!(
        "{operation}: element {index} ({name}) cannot be sent, nothing was sent: {reason}"
    ))
}

/// Moves `items` into the planned chunks (which must cover them in order).
pub fn split_into<T>(items: Vec<T>, chunks: &[Range<usize>]) -> Vec<Vec<T>> {
    let mut items = items.into_iter();
    chunks
        .iter()
        .map(|range| items.by_ref().take(range.len()).collect())
        .collect()
}

/// The size of `value` as Convex counts it for its document limit (`Size` in Convex's `value`
/// crate): 1 byte for null and booleans, 9 for numbers, 2 plus the UTF-8 length for strings,
/// 2 plus the elements for arrays, and for objects 2 plus, per field, the name's length, 1 and
/// the value. Computed from the JSON `value` serializes to (an absent optional field counts
/// nothing, as it is not stored).
pub fn document_size<T: Serialize>(value: &T) -> Result<u64, serde_json::Error> {
    Ok(convex_size(&serde_json::to_value(value)?))
}

/// See [`document_size`].
pub fn convex_size(value: &serde_json::Value) -> u64 {
    use serde_json::Value;
    let len = |s: &str| u64::try_from(s.len()).unwrap_or(u64::MAX);
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(_) => 9,
        Value::String(s) => 2 + len(s),
        Value::Array(items) => 2 + items.iter().map(convex_size).sum::<u64>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(name, value)| len(name) + 1 + convex_size(value))
                .sum::<u64>()
        }
    }
}

/// The length of `value`'s JSON, without building the text.
fn json_len<T: Serialize>(value: &T) -> Result<u64, serde_json::Error> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value)?;
    Ok(counter.0)
}

struct ByteCounter(u64);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
