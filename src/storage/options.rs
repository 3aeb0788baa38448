//! [`ConvexStorageOptions`], their validation, and the shard of an execution.

use super::StorageError;

/// The largest number of shards (reference §3).
pub const MAX_TOTAL_SHARDS: u32 = 64;

/// How a [`ConvexTaskExecutionsStorage`](super::ConvexTaskExecutionsStorage) spreads
/// executions over shards, and which of them this process serves.
///
/// Shards let several groups of executors poll disjoint parts of the table: every process
/// inserts into all `total_shards`, but claims and closes executions only in its own `shards`.
///
/// `#[non_exhaustive]`, so that new options do not break users: start from
/// [`Default::default()`] and set what you need with the `with_…` methods
/// (`ConvexStorageOptions::default().with_total_shards(4)`), or assign the public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConvexStorageOptions {
    /// In `1..=64`. Must be the same for every process sharing the deployment.
    pub total_shards: u32,
    /// The shards this process serves: a non-empty subset of `[0, total_shards)`; `None` for
    /// all of them.
    pub shards: Option<Vec<u32>>,
    /// Lets [`delete_by_id`](super::TaskExecutionsStorage::delete_by_id) and
    /// [`delete_all`](super::TaskExecutionsStorage::delete_all) reach the server; without it
    /// they do nothing, so production code cannot wipe the table by mistake.
    pub enable_test_mode: bool,
    /// Lowers how many elements one call carries (list requests) and how many documents one
    /// call may patch (range updates), for tests and for deployments with large documents.
    /// At least 1. It can only lower the limits generated from Convex's transaction limits,
    /// never raise them: a value above an operation's own limit leaves that limit as it is.
    /// `None` (the default) uses the generated limits.
    ///
    /// Tests use it to exercise batches split over several calls without thousands of
    /// documents; a deployment whose documents are large (long inputs or outputs) can use it
    /// to keep each call well under Convex's byte limits.
    pub max_items_per_call: Option<u32>,
}

impl Default for ConvexStorageOptions {
    fn default() -> Self {
        Self {
            total_shards: 1,
            shards: None,
            enable_test_mode: false,
            max_items_per_call: None,
        }
    }
}

impl ConvexStorageOptions {
    /// Sets [`total_shards`](Self::total_shards).
    pub fn with_total_shards(mut self, total_shards: u32) -> Self {
        self.total_shards = total_shards;
        self
    }

    /// Sets [`shards`](Self::shards): the shards this process serves (`None` for all).
    pub fn with_shards(mut self, shards: Option<Vec<u32>>) -> Self {
        self.shards = shards;
        self
    }

    /// Sets [`enable_test_mode`](Self::enable_test_mode).
    pub fn with_test_mode(mut self, enable_test_mode: bool) -> Self {
        self.enable_test_mode = enable_test_mode;
        self
    }

    /// Sets [`max_items_per_call`](Self::max_items_per_call).
    pub fn with_max_items_per_call(mut self, max_items_per_call: Option<u32>) -> Self {
        self.max_items_per_call = max_items_per_call;
        self
    }
}

/// Options that passed validation: the owned shards are sorted and deduplicated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ValidatedOptions {
    pub total_shards: u32,
    pub shards: Vec<u32>,
    pub enable_test_mode: bool,
    pub max_items_per_call: Option<u32>,
}

impl ConvexStorageOptions {
    /// Checks the options; the error says which rule was broken and by what value.
    pub(crate) fn validate(&self) -> Result<ValidatedOptions, StorageError> {
        let invalid = |message: String| Err(StorageError::InvalidOptions(message));
        let total = self.total_shards;
        if !(1..=MAX_TOTAL_SHARDS).contains(&total) {
            return invalid(format!(
                "totalShards must be in 1..={MAX_TOTAL_SHARDS}, got {total}"
            ));
        }
        let mut shards = match &self.shards {
            None => (0..total).collect(),
            Some(shards) if shards.is_empty() => {
                return invalid("shards must not be empty".to_owned())
            }
            Some(shards) => shards.clone(),
        };
        if let Some(shard) = shards.iter().find(|&&shard| shard >= total) {
            return invalid(format!("shard {shard} is not in [0, {total})"));
        }
        shards.sort_unstable();
        shards.dedup();
        if self.max_items_per_call == Some(0) {
            return invalid("maxItemsPerCall must be at least 1, got 0".to_owned());
        }
        Ok(ValidatedOptions {
            total_shards: total,
            shards,
            enable_test_mode: self.enable_test_mode,
            max_items_per_call: self.max_items_per_call,
        })
    }
}

/// The shard of an execution: the 32-bit FNV-1a hash of its execution id (UTF-8 bytes) modulo
/// `total_shards`.
///
/// A stable hash, rather than the original's random pick, makes the placement deterministic:
/// the same execution lands in the same shard in every process, every run and every version
/// of this crate, which makes tests reproducible and placement explainable. FNV-1a spreads
/// typical ids (UUIDs, counters) evenly. `total_shards` must be at least 1.
pub fn shard_of_execution(execution_id: &str, total_shards: u32) -> u32 {
    fnv1a_32(execution_id.as_bytes()) % total_shards.max(1)
}

pub(crate) fn fnv1a_32(bytes: &[u8]) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(PRIME)
    })
}

/// The limit each of `owned_shards` gets when a total `limit` is split across them, rounding
/// up (reference §3): 10 over 3 shards is 4 each.
pub fn split_limit(limit: u32, owned_shards: usize) -> u32 {
    let shards = u32::try_from(owned_shards.max(1)).unwrap_or(u32::MAX);
    limit.div_ceil(shards)
}
