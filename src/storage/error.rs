//! [`StorageError`]: why a storage operation failed, and whether retrying it is safe.

use crate::runtime::ConvexError;

/// The `errorData.code` with which the server refuses an insert whose `executionId` or
/// `sleepingTaskUniqueId` already exists.
pub const ALREADY_EXISTS_CODE: &str = "ALREADY_EXISTS";

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An insert was refused because an execution id, or a present sleeping task unique id,
    /// already exists. Nothing of the refused call was written.
    #[error("task execution already exists: {message}")]
    AlreadyExists {
        /// What the storage said, e.g. which id.
        message: String,
    },

    /// The storage options are invalid (e.g. `totalShards` out of range). Nothing was created.
    #[error("invalid storage options: {0}")]
    InvalidOptions(String),

    /// The request cannot be carried out as given (e.g. one execution too large for a single
    /// call). Nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// A batch was split into several calls (see `chunking`) and one of them failed after
    /// `applied` of `total` elements had been written. Each call is atomic; the batch is not.
    #[error("{operation} failed after {applied} of {total} elements were applied: {source}")]
    PartiallyApplied {
        /// The operation, e.g. `insertMany`.
        operation: &'static str,
        /// Elements written by the calls that succeeded, all before the failing one.
        applied: usize,
        /// Elements in the whole batch.
        total: usize,
        /// Why the failing call failed.
        #[source]
        source: Box<StorageError>,
    },

    /// The Convex call failed for another reason.
    #[error(transparent)]
    Convex(ConvexError),
}

impl From<ConvexError> for StorageError {
    /// Recognises the server's `ALREADY_EXISTS` refusal; anything else stays a Convex error.
    fn from(error: ConvexError) -> Self {
        match &error {
            ConvexError::Function { message, code, .. }
                if code.as_deref() == Some(ALREADY_EXISTS_CODE) =>
            {
                Self::AlreadyExists {
                    message: message.clone(),
                }
            }
            _ => Self::Convex(error),
        }
    }
}

impl StorageError {
    /// Whether the same operation may be called again without applying a write twice: only a
    /// Convex failure that [`ConvexError::is_retry_safe`] says is safe. A partially applied
    /// batch is never retry-safe as a whole (its first calls did write).
    pub fn is_retry_safe(&self) -> bool {
        match self {
            Self::Convex(error) => error.is_retry_safe(),
            Self::AlreadyExists { .. }
            | Self::InvalidOptions(_)
            | Self::InvalidRequest(_)
            | Self::PartiallyApplied { .. } => false,
        }
    }

    /// Whether this is (or, for a partially applied batch, was caused by) an
    /// [`AlreadyExists`](Self::AlreadyExists) refusal.
    pub fn is_already_exists(&self) -> bool {
        match self {
            Self::AlreadyExists { .. } => true,
            Self::PartiallyApplied { source, .. } => source.is_already_exists(),
            _ => false,
        }
    }

    /// The underlying Convex error, if any (looking through a partially applied batch).
    pub fn convex_error(&self) -> Option<&ConvexError> {
        match self {
            Self::Convex(error) => Some(error),
            Self::PartiallyApplied { source, .. } => source.convex_error(),
            _ => None,
        }
    }
}
