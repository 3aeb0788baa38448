//! [`StorageError`]: why a storage operation failed, whether it may go away by itself, and
//! whether retrying it is safe.

use serde_json::Value;

use crate::runtime::ConvexError;

/// The `errorData.code` with which the server refuses an insert whose `executionId` or
/// `sleepingTaskUniqueId` already exists.
pub const ALREADY_EXISTS_CODE: &str = "ALREADY_EXISTS";
/// The `errorData.code` of a call over one of the server's per-call budgets
/// (`errorData.limit` names it; `errorData.fits`, when present, says how many leading requests
/// or documents fit).
pub const LIMIT_EXCEEDED_CODE: &str = "LIMIT_EXCEEDED";
/// The `errorData.code` of a test-only function called on a deployment not in test mode.
pub const TEST_MODE_REQUIRED_CODE: &str = "TEST_MODE_REQUIRED";
/// The `errorData.code` of an argument the server refuses (`errorData.path` names it).
pub const INVALID_ARGUMENT_CODE: &str = "INVALID_ARGUMENT";

/// What the original TypeScript component (0.32) throws, as plain errors without a code, for
/// a duplicate execution id or sleeping task unique id.
const ORIGINAL_DUPLICATE_MESSAGES: [&str; 2] = [
    "Execution id already exists",
    "Sleeping task unique id already exists",
];

/// How Convex (and the local server) report a call over one of Convex's own transaction
/// limits (bytes or documents read or written, index ranges): a plain function error.
const CONVEX_TRANSACTION_LIMIT_MARKER: &str = "in a single function execution";

/// Convex's document size limit (1 MiB, its `MAX_USER_SIZE`).
pub const CONVEX_DOCUMENT_LIMIT_BYTES: u64 = 1 << 20;

/// A stored document the client could not read as an execution: reported instead of failing
/// the documents around it (see `ConvexTaskExecutionsStorage::undecodable_documents`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndecodableDocument {
    /// The function that returned it, e.g. `getManyById`.
    pub function: String,
    /// Its Convex `_id`, when it has a string one.
    pub id: Option<String>,
    /// Its `executionId`, when it has a string one.
    pub execution_id: Option<String>,
    /// Why it could not be read.
    pub message: String,
}

impl std::fmt::Display for UndecodableDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_owned());
        write!(
            f,
            "document {} (execution {}) returned by {} cannot be read: {}",
            or_unknown(&self.id),
            or_unknown(&self.execution_id),
            self.function,
            self.message
        )
    }
}

/// Why a storage operation failed.
///
/// [`is_transient`](Self::is_transient) says whether the same operation may succeed later
/// unchanged; [`is_retry_safe`](Self::is_retry_safe) whether calling it again cannot apply a
/// write twice. Every refusal of the server has its own variant; no variant holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An insert was refused because an execution id, or a present sleeping task unique id,
    /// already exists. Nothing of the refused call was written. Also what the original
    /// component's plain `Execution id already exists` / `Sleeping task unique id already
    /// exists` errors map to.
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

    /// The deployment refused the auth secret (`UNAUTHORIZED`). Not transient: fix the secret.
    #[error("`{function}` refused the call as unauthorized: {message}")]
    Unauthorized {
        /// The function path.
        function: String,
        /// What the server said (never the secret).
        message: String,
    },

    /// One request (or a range call of `limit` 1) alone exceeds one of the server's per-call
    /// budgets (`LIMIT_EXCEEDED`), or one of Convex's own transaction limits. The storage
    /// splits larger calls by itself (at `fits`, or in halves) down to one request, so this
    /// error names a request that cannot be served. Nothing of the refused call was written.
    #[error("`{function}` refused a call over its `{limit}` budget{}: {message}",
            fits.map(|n| format!(" ({n} would fit)")).unwrap_or_default())]
    LimitExceeded {
        /// The function path.
        function: String,
        /// Which budget: `items`, `documentsRead`, `documentsWritten`, `indexLookups`,
        /// `bytesRead`, `bytesWritten`, `bytesReturned`, `documentSize`, or `transaction` for
        /// one of Convex's own limits.
        limit: String,
        /// How many leading requests (list calls) or documents (range calls) fit, when known.
        fits: Option<u32>,
        /// What the server said.
        message: String,
    },

    /// A test-only operation (`delete_by_id`, `delete_all`) was called without test mode: the
    /// storage's `enable_test_mode` is off (nothing was sent), or the deployment is not in test
    /// mode (`TEST_MODE_REQUIRED`). Nothing was deleted.
    #[error("`{function}` needs test mode: {message}")]
    TestModeRequired {
        /// The function (path, or name when refused before sending).
        function: String,
        /// Which side refused, and how to enable it.
        message: String,
    },

    /// The server refused an argument (`INVALID_ARGUMENT`, or Convex's argument validation).
    /// Nothing was written.
    #[error("`{function}` refused an invalid argument{}: {message}",
            path.as_ref().map(|p| format!(" at `{p}`")).unwrap_or_default())]
    InvalidArgument {
        /// The function path.
        function: String,
        /// The offending field, e.g. `executions[3].retryAttempts`, when the server names it.
        path: Option<String>,
        /// What the server said.
        message: String,
    },

    /// An execution whose stored document would exceed Convex's 1 MiB document limit, refused
    /// before anything was sent (for an update: the update alone is over the limit).
    #[error("execution \"{execution_id}\" would be a document of {bytes} bytes, over Convex's limit of {limit} bytes (nothing was sent)")]
    DocumentTooLarge {
        /// The execution.
        execution_id: String,
        /// Its size as Convex counts it (see `ConvexTaskExecutionsStorage` for how).
        bytes: u64,
        /// The limit (1 MiB).
        limit: u64,
    },

    /// A document the caller asked for cannot be read as an execution. (Documents around it
    /// are returned; a document returned among others is reported instead, see
    /// `ConvexTaskExecutionsStorage::undecodable_documents`.)
    #[error("{0}")]
    UndecodableDocument(UndecodableDocument),

    /// The Convex call failed for another reason (transport, HTTP status, a function error
    /// without one of our codes, an unexpected answer).
    #[error(transparent)]
    Convex(ConvexError),
}

impl From<ConvexError> for StorageError {
    /// Maps every refusal of the server to its variant, looking through retried attempts to
    /// the last one; anything else stays a [`StorageError::Convex`].
    fn from(error: ConvexError) -> Self {
        let last = error.last_attempt();
        let function = last.path().unwrap_or_default().to_owned();
        match last {
            ConvexError::Unauthorized { message, .. } => {
                return Self::Unauthorized {
                    function,
                    message: message.clone(),
                }
            }
            ConvexError::Function {
                message,
                code,
                data,
                ..
            } => {
                let field = |name: &str| data.as_ref().and_then(|d| d.get(name));
                let text = |name: &str| field(name).and_then(Value::as_str).map(str::to_owned);
                let message = message.clone();
                match code.as_deref() {
                    Some(ALREADY_EXISTS_CODE) => return Self::AlreadyExists { message },
                    Some(LIMIT_EXCEEDED_CODE) => {
                        return Self::LimitExceeded {
                            function,
                            limit: text("limit").unwrap_or_else(|| "unknown".to_owned()),
                            fits: field("fits")
                                .and_then(Value::as_f64)
                                .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                                .map(|n| n.min(f64::from(u32::MAX)) as u32),
                            message,
                        }
                    }
                    Some(TEST_MODE_REQUIRED_CODE) => {
                        return Self::TestModeRequired { function, message }
                    }
                    Some(INVALID_ARGUMENT_CODE) | Some("INVALID_ARGUMENTS") => {
                        return Self::InvalidArgument {
                            function,
                            path: text("path"),
                            message,
                        }
                    }
                    Some(_) => {}
                    None => {
                        if ORIGINAL_DUPLICATE_MESSAGES
                            .iter()
                            .any(|m| message.contains(m))
                        {
                            return Self::AlreadyExists { message };
                        }
                        if message.contains("ArgumentValidationError") {
                            return Self::InvalidArgument {
                                function,
                                path: validation_path(&message),
                                message,
                            };
                        }
                        if message.contains(CONVEX_TRANSACTION_LIMIT_MARKER) {
                            return Self::LimitExceeded {
                                function,
                                limit: "transaction".to_owned(),
                                fits: None,
                                message,
                            };
                        }
                    }
                }
            }
            _ => {}
        }
        Self::Convex(error)
    }
}

/// The `Path: .a.b[0]` line of a Convex argument validation message, without the leading
/// dot (and without the `args.` of our envelope).
fn validation_path(message: &str) -> Option<String> {
    let line = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("Path: "))?;
    let path = line.trim().trim_start_matches('.');
    let path = path.strip_prefix("args.").unwrap_or(path);
    (!path.is_empty()).then(|| path.to_owned())
}

impl StorageError {
    /// The refusal of a test-only operation (`function`: `deleteById` or `deleteAll`) by a
    /// storage whose `enable_test_mode` is off: nothing was sent or deleted. Every storage
    /// refuses with this same error, so that they can be compared.
    pub fn test_mode_off(function: &str) -> Self {
        Self::TestModeRequired {
            function: function.to_owned(),
            message: "the storage's enable_test_mode is off, so nothing was done \
                      (ConvexStorageOptions::with_test_mode(true); a Convex deployment also \
                      needs TASK_EXECUTIONS_STORAGE_TEST_MODE=true)"
                .to_owned(),
        }
    }

    /// Whether the failure may go away by itself, so that the same operation may succeed
    /// later: a transient Convex failure (connection, timeout, 429, 502-504, overload, write
    /// conflict) that the client's retries did not overcome. For a partially applied batch,
    /// whether the failing call's failure was transient (re-sending the whole batch is still
    /// not safe: see [`is_retry_safe`](Self::is_retry_safe)). Every refusal of the server is
    /// not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Convex(error) => error.is_transient(),
            Self::PartiallyApplied { source, .. } => source.is_transient(),
            Self::AlreadyExists { .. }
            | Self::InvalidOptions(_)
            | Self::InvalidRequest(_)
            | Self::Unauthorized { .. }
            | Self::LimitExceeded { .. }
            | Self::TestModeRequired { .. }
            | Self::InvalidArgument { .. }
            | Self::DocumentTooLarge { .. }
            | Self::UndecodableDocument(_) => false,
        }
    }

    /// Whether calling the same operation again is worthwhile and cannot apply a write
    /// twice: only a Convex failure that [`ConvexError::is_retry_safe`] says is safe. A refusal
    /// would be refused again, and a partially applied batch is never retry-safe as a whole
    /// (its first calls did write).
    pub fn is_retry_safe(&self) -> bool {
        match self {
            Self::Convex(error) => error.is_retry_safe(),
            _ => false,
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

    /// The error of the failing call (looking through a partially applied batch).
    pub fn cause(&self) -> &StorageError {
        match self {
            Self::PartiallyApplied { source, .. } => source.cause(),
            other => other,
        }
    }
}
