//! Options of the executor, of tasks and of one enqueue, with their validation (reference §1,
//! §2). Durations are [`Duration`]s in whole milliseconds (what the storage keeps); every bound
//! is checked when the options are used, with an error that names the option.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::serializer::{Serializer, SuperjsonSerializer};
use crate::storage::RetryOptions;

/// The largest integer a Convex number holds exactly (2^53 − 1): no stored time exceeds it.
pub(crate) const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// How much the executor logs (through `tracing`): `Debug` everything, `Info` the default,
/// `Error` failures only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Error,
}

/// The executor's options (reference §1). Start from [`Default::default()`] and change what
/// you need with the `with_…` methods; [`Executor::new`](crate::Executor::new) validates them.
#[derive(Clone)]
#[non_exhaustive]
pub struct ExecutorOptions {
    /// Added to a task's timeout to form its lease (`expiresAt`); ≥ 0. Default 5 min.
    pub expire_leeway: Duration,
    /// The polling interval of a background process after a poll found work created
    /// elsewhere (it then doubles back up to its idle bound, `max_idle_poll_interval` or
    /// `max_idle_maintenance_poll_interval`), and the base of the back-off after errors; > 0.
    /// Default 500 ms.
    pub background_process_intra_batch_sleep: Duration,
    /// The bound on picking up work created elsewhere: a ready execution enqueued by another
    /// process (or whose retry or delayed start came due there) is claimed within this time,
    /// and a cancellation made elsewhere reaches a run of this executor within it. The claiming
    /// process polls this often while it finds nothing (work this executor creates wakes it at
    /// once, without a poll); after a poll that found work it polls from
    /// `background_process_intra_batch_sleep`, doubling back up to this bound. Each poll is
    /// one storage call (one billed function execution on Convex, plus its component's).
    /// ≥ the intra-batch sleep, ≤ 1 h. Default 10 s.
    pub max_idle_poll_interval: Duration,
    /// The same bound for the other background processes (marking finished executions,
    /// processing parents whose children finished, closing, recovering expired leases): their
    /// work normally follows from what this executor does, which wakes them at once; this
    /// bound applies to work left elsewhere: executions finished, cancelled or woken up by a
    /// process that runs no started executor, work of an executor that stopped mid-way, and
    /// expired leases of crashed executors (whose recovery takes the lease, at least the expire
    /// leeway, plus up to this bound). Sleeping tasks this executor enqueued are timed out on
    /// time. ≤ 1 h; a value below `max_idle_poll_interval` counts as that. Default 5 min: an idle executor then makes
    /// about 0.12 storage calls per second.
    pub max_idle_maintenance_poll_interval: Duration,
    /// Task executions running at once in this executor; ≥ 1. Default 5,000.
    pub max_concurrent_task_executions: u32,
    /// Executions claimed by one call; ≥ 1. Default 100.
    pub max_task_executions_per_batch: u32,
    /// Batch sizes of the background processes, each in 1..=200, default 100.
    pub process_on_children_finished_task_executions_batch_size: u32,
    pub mark_finished_task_executions_as_close_status_ready_batch_size: u32,
    pub close_finished_task_executions_batch_size: u32,
    pub cancel_needs_promise_cancellation_task_executions_batch_size: u32,
    pub retry_expired_task_executions_batch_size: u32,
    /// Children one parent run may spawn; 1..=1,000. Default 1,000.
    pub max_children_per_task_execution: u32,
    /// Largest stored input, in bytes; 1 KiB..=10 MiB. Default 1 MiB.
    pub max_serialized_input_data_size: usize,
    /// Largest stored output, in bytes; 1 KiB..=10 MiB. Default 1 MiB.
    pub max_serialized_output_data_size: usize,
    /// Batch small storage calls. When on, the calls of at most 5 requests of `insertMany`,
    /// `getManyById`, `updateManyById`, `updateManyByIdAndInsertChildrenIfUpdated`,
    /// `getManyByParentExecutionId` and `updateManyByParentExecutionIdAndIsFinished` (those of
    /// enqueues, finishing runs, handles) are combined: such a call goes to the storage at once
    /// when no combined call of its operation is in flight; the calls made while one is in
    /// flight are queued and sent together (at most 100 rows; 3 requests for the by-parent
    /// operations) when it is answered, or once the oldest has waited
    /// [`storage_background_batching_process_intra_batch_sleep`], each caller getting its own
    /// answer. A combined call refused for a reason that is not transient (e.g. one caller's
    /// duplicate insert) is sent again per caller, so that each gets its own result; a
    /// transient or partially applied failure goes to every caller of the batch. Claims and the
    /// processes' own batches are never queued. Fewer storage calls under concurrency (each is
    /// a billed function execution on Convex), at no cost for a call made alone. Shutdown
    /// sends what is queued and stops the batching loop. Default true.
    ///
    /// [`storage_background_batching_process_intra_batch_sleep`]: Self::storage_background_batching_process_intra_batch_sleep
    pub enable_storage_batching: bool,
    /// The longest a batchable call waits for a combined call of its operation in flight
    /// before it is sent anyway (see [`enable_storage_batching`](Self::enable_storage_batching));
    /// 1..=100 ms. Default 10 ms.
    pub storage_background_batching_process_intra_batch_sleep: Duration,
    /// How many times the executor retries a storage call that failed in a retry-safe way
    /// (25 ms, doubling, at most 1 s apart); 0..=10. Default 1.
    pub storage_max_retry_attempts: u32,
    /// What the executor logs.
    pub log_level: LogLevel,
    /// How inputs and outputs are stored. Default [`SuperjsonSerializer`].
    pub serializer: Arc<dyn Serializer>,
    /// How long shutdown waits for running tasks before aborting them; ≤ 1 h. Default 15 s.
    pub shutdown_drain_timeout: Duration,
    /// How long shutdown waits for each background process to stop before aborting it;
    /// ≤ 1 h. Default 15 s.
    pub background_process_shutdown_timeout: Duration,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            expire_leeway: Duration::from_secs(300),
            background_process_intra_batch_sleep: Duration::from_millis(500),
            max_idle_poll_interval: Duration::from_secs(10),
            max_idle_maintenance_poll_interval: Duration::from_secs(300),
            max_concurrent_task_executions: 5_000,
            max_task_executions_per_batch: 100,
            process_on_children_finished_task_executions_batch_size: 100,
            mark_finished_task_executions_as_close_status_ready_batch_size: 100,
            close_finished_task_executions_batch_size: 100,
            cancel_needs_promise_cancellation_task_executions_batch_size: 100,
            retry_expired_task_executions_batch_size: 100,
            max_children_per_task_execution: 1_000,
            max_serialized_input_data_size: 1024 * 1024,
            max_serialized_output_data_size: 1024 * 1024,
            enable_storage_batching: true,
            storage_background_batching_process_intra_batch_sleep: Duration::from_millis(10),
            storage_max_retry_attempts: 1,
            log_level: LogLevel::Info,
            serializer: Arc::new(SuperjsonSerializer),
            shutdown_drain_timeout: Duration::from_secs(15),
            background_process_shutdown_timeout: Duration::from_secs(15),
        }
    }
}

impl fmt::Debug for ExecutorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorOptions")
            .field("expire_leeway", &self.expire_leeway)
            .field(
                "background_process_intra_batch_sleep",
                &self.background_process_intra_batch_sleep,
            )
            .field("max_idle_poll_interval", &self.max_idle_poll_interval)
            .field(
                "max_idle_maintenance_poll_interval",
                &self.max_idle_maintenance_poll_interval,
            )
            .field(
                "max_concurrent_task_executions",
                &self.max_concurrent_task_executions,
            )
            .field(
                "max_task_executions_per_batch",
                &self.max_task_executions_per_batch,
            )
            .field(
                "max_children_per_task_execution",
                &self.max_children_per_task_execution,
            )
            .field("log_level", &self.log_level)
            .field("shutdown_drain_timeout", &self.shutdown_drain_timeout)
            .finish_non_exhaustive()
    }
}

macro_rules! with {
    ($(#[$doc:meta] $name:ident: $field:ident: $ty:ty;)*) => {
        $(
            #[$doc]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            }
        )*
    };
}

/// Setters of optional fields: `with_x(value)` sets `x` to `Some(value)`.
macro_rules! with_some {
    ($(#[$doc:meta] $name:ident: $field:ident: $ty:ty;)*) => {
        $(
            #[$doc]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$field = Some(value);
                self
            }
        )*
    };
}

impl ExecutorOptions {
    with! {
        /// Sets [`expire_leeway`](Self::expire_leeway).
        with_expire_leeway: expire_leeway: Duration;
        /// Sets [`background_process_intra_batch_sleep`](Self::background_process_intra_batch_sleep).
        with_background_process_intra_batch_sleep: background_process_intra_batch_sleep: Duration;
        /// Sets [`max_idle_poll_interval`](Self::max_idle_poll_interval).
        with_max_idle_poll_interval: max_idle_poll_interval: Duration;
        /// Sets [`max_idle_maintenance_poll_interval`](Self::max_idle_maintenance_poll_interval).
        with_max_idle_maintenance_poll_interval: max_idle_maintenance_poll_interval: Duration;
        /// Sets [`max_concurrent_task_executions`](Self::max_concurrent_task_executions).
        with_max_concurrent_task_executions: max_concurrent_task_executions: u32;
        /// Sets [`max_task_executions_per_batch`](Self::max_task_executions_per_batch).
        with_max_task_executions_per_batch: max_task_executions_per_batch: u32;
        /// Sets [`process_on_children_finished_task_executions_batch_size`](Self::process_on_children_finished_task_executions_batch_size).
        with_process_on_children_finished_task_executions_batch_size: process_on_children_finished_task_executions_batch_size: u32;
        /// Sets [`mark_finished_task_executions_as_close_status_ready_batch_size`](Self::mark_finished_task_executions_as_close_status_ready_batch_size).
        with_mark_finished_task_executions_as_close_status_ready_batch_size: mark_finished_task_executions_as_close_status_ready_batch_size: u32;
        /// Sets [`close_finished_task_executions_batch_size`](Self::close_finished_task_executions_batch_size).
        with_close_finished_task_executions_batch_size: close_finished_task_executions_batch_size: u32;
        /// Sets [`cancel_needs_promise_cancellation_task_executions_batch_size`](Self::cancel_needs_promise_cancellation_task_executions_batch_size).
        with_cancel_needs_promise_cancellation_task_executions_batch_size: cancel_needs_promise_cancellation_task_executions_batch_size: u32;
        /// Sets [`retry_expired_task_executions_batch_size`](Self::retry_expired_task_executions_batch_size).
        with_retry_expired_task_executions_batch_size: retry_expired_task_executions_batch_size: u32;
        /// Sets [`max_children_per_task_execution`](Self::max_children_per_task_execution).
        with_max_children_per_task_execution: max_children_per_task_execution: u32;
        /// Sets [`max_serialized_input_data_size`](Self::max_serialized_input_data_size).
        with_max_serialized_input_data_size: max_serialized_input_data_size: usize;
        /// Sets [`max_serialized_output_data_size`](Self::max_serialized_output_data_size).
        with_max_serialized_output_data_size: max_serialized_output_data_size: usize;
        /// Sets [`enable_storage_batching`](Self::enable_storage_batching).
        with_enable_storage_batching: enable_storage_batching: bool;
        /// Sets [`storage_background_batching_process_intra_batch_sleep`](Self::storage_background_batching_process_intra_batch_sleep).
        with_storage_background_batching_process_intra_batch_sleep: storage_background_batching_process_intra_batch_sleep: Duration;
        /// Sets [`storage_max_retry_attempts`](Self::storage_max_retry_attempts).
        with_storage_max_retry_attempts: storage_max_retry_attempts: u32;
        /// Sets [`log_level`](Self::log_level).
        with_log_level: log_level: LogLevel;
        /// Sets [`serializer`](Self::serializer).
        with_serializer: serializer: Arc<dyn Serializer>;
        /// Sets [`shutdown_drain_timeout`](Self::shutdown_drain_timeout).
        with_shutdown_drain_timeout: shutdown_drain_timeout: Duration;
        /// Sets [`background_process_shutdown_timeout`](Self::background_process_shutdown_timeout).
        with_background_process_shutdown_timeout: background_process_shutdown_timeout: Duration;
    }

    pub(crate) fn validate(&self) -> Result<ValidatedOptions, Error> {
        let invalid = |message: String| Err(Error::InvalidOptions(message));
        let hour = Duration::from_secs(3_600);
        let expire_leeway_ms = millis("expire_leeway", self.expire_leeway, 0, MAX_SAFE_INTEGER)
            .map_err(Error::InvalidOptions)?;
        let intra = millis(
            "background_process_intra_batch_sleep",
            self.background_process_intra_batch_sleep,
            1,
            3_600_000,
        )
        .map_err(Error::InvalidOptions)?;
        if self.max_idle_poll_interval < self.background_process_intra_batch_sleep
            || self.max_idle_poll_interval > hour
        {
            return invalid(format!(
                "max_idle_poll_interval must be between background_process_intra_batch_sleep \
                 ({:?}) and 1 h, got {:?}",
                self.background_process_intra_batch_sleep, self.max_idle_poll_interval
            ));
        }
        if self.max_idle_maintenance_poll_interval > hour {
            return invalid(format!(
                "max_idle_maintenance_poll_interval must be at most 1 h, got {:?}",
                self.max_idle_maintenance_poll_interval
            ));
        }
        at_least(
            "max_concurrent_task_executions",
            self.max_concurrent_task_executions,
            1,
        )?;
        at_least(
            "max_task_executions_per_batch",
            self.max_task_executions_per_batch,
            1,
        )?;
        for (name, value) in [
            (
                "process_on_children_finished_task_executions_batch_size",
                self.process_on_children_finished_task_executions_batch_size,
            ),
            (
                "mark_finished_task_executions_as_close_status_ready_batch_size",
                self.mark_finished_task_executions_as_close_status_ready_batch_size,
            ),
            (
                "close_finished_task_executions_batch_size",
                self.close_finished_task_executions_batch_size,
            ),
            (
                "cancel_needs_promise_cancellation_task_executions_batch_size",
                self.cancel_needs_promise_cancellation_task_executions_batch_size,
            ),
            (
                "retry_expired_task_executions_batch_size",
                self.retry_expired_task_executions_batch_size,
            ),
        ] {
            between(name, u64::from(value), 1, 200)?;
        }
        between(
            "max_children_per_task_execution",
            u64::from(self.max_children_per_task_execution),
            1,
            1_000,
        )?;
        for (name, value) in [
            (
                "max_serialized_input_data_size",
                self.max_serialized_input_data_size,
            ),
            (
                "max_serialized_output_data_size",
                self.max_serialized_output_data_size,
            ),
        ] {
            between(
                name,
                u64::try_from(value).unwrap_or(u64::MAX),
                1024,
                10 * 1024 * 1024,
            )?;
        }
        millis(
            "storage_background_batching_process_intra_batch_sleep",
            self.storage_background_batching_process_intra_batch_sleep,
            1,
            100,
        )
        .map_err(Error::InvalidOptions)?;
        between(
            "storage_max_retry_attempts",
            u64::from(self.storage_max_retry_attempts),
            0,
            10,
        )?;
        for (name, value) in [
            ("shutdown_drain_timeout", self.shutdown_drain_timeout),
            (
                "background_process_shutdown_timeout",
                self.background_process_shutdown_timeout,
            ),
        ] {
            if value > hour {
                return invalid(format!("{name} must be at most 1 h, got {value:?}"));
            }
        }
        Ok(ValidatedOptions {
            expire_leeway_ms,
            intra_batch_sleep: Duration::from_millis(intra),
            max_idle_poll_interval: self.max_idle_poll_interval,
            max_idle_maintenance_poll_interval: self
                .max_idle_maintenance_poll_interval
                .max(self.max_idle_poll_interval),
            max_concurrent_task_executions: self.max_concurrent_task_executions,
            max_task_executions_per_batch: self.max_task_executions_per_batch,
            children_finished_batch_size: self
                .process_on_children_finished_task_executions_batch_size,
            mark_finished_batch_size: self
                .mark_finished_task_executions_as_close_status_ready_batch_size,
            close_batch_size: self.close_finished_task_executions_batch_size,
            cancellation_batch_size: self
                .cancel_needs_promise_cancellation_task_executions_batch_size,
            expired_batch_size: self.retry_expired_task_executions_batch_size,
            max_children: self.max_children_per_task_execution,
            max_input_size: self.max_serialized_input_data_size,
            max_output_size: self.max_serialized_output_data_size,
            storage_max_retry_attempts: self.storage_max_retry_attempts,
            log_level: self.log_level,
            shutdown_drain_timeout: self.shutdown_drain_timeout,
            process_shutdown_timeout: self.background_process_shutdown_timeout,
        })
    }
}

/// The executor's options after validation.
#[derive(Clone, Debug)]
pub(crate) struct ValidatedOptions {
    pub expire_leeway_ms: u64,
    pub intra_batch_sleep: Duration,
    pub max_idle_poll_interval: Duration,
    pub max_idle_maintenance_poll_interval: Duration,
    pub max_concurrent_task_executions: u32,
    pub max_task_executions_per_batch: u32,
    pub children_finished_batch_size: u32,
    pub mark_finished_batch_size: u32,
    pub close_batch_size: u32,
    pub cancellation_batch_size: u32,
    pub expired_batch_size: u32,
    pub max_children: u32,
    pub max_input_size: usize,
    pub max_output_size: usize,
    pub storage_max_retry_attempts: u32,
    pub log_level: LogLevel,
    pub shutdown_drain_timeout: Duration,
    pub process_shutdown_timeout: Duration,
}

fn at_least(name: &str, value: u32, min: u32) -> Result<(), Error> {
    if value < min {
        return Err(Error::InvalidOptions(format!(
            "{name} must be at least {min}, got {value}"
        )));
    }
    Ok(())
}

fn between(name: &str, value: u64, min: u64, max: u64) -> Result<(), Error> {
    if !(min..=max).contains(&value) {
        return Err(Error::InvalidOptions(format!(
            "{name} must be between {min} and {max}, got {value}"
        )));
    }
    Ok(())
}

/// A duration as whole milliseconds in `min..=max`, or a message naming the option.
pub(crate) fn millis(name: &str, value: Duration, min: u64, max: u64) -> Result<u64, String> {
    if !value.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(format!(
            "{name} must be a whole number of milliseconds, got {value:?}"
        ));
    }
    let ms = u64::try_from(value.as_millis()).unwrap_or(u64::MAX);
    if !(min..=max).contains(&ms) {
        return Err(format!(
            "{name} must be between {min} ms and {max} ms, got {ms} ms"
        ));
    }
    Ok(ms)
}

/// When and how often a failed run is retried (reference §2): the delay before retry `n`
/// (0-based) is `base_delay × delay_multiplier^n`, capped at `max_delay`; `max_attempts`
/// counts retries, so a task runs at most `max_attempts + 1` times.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TaskRetryOptions {
    /// 0..=1,000.
    pub max_attempts: u32,
    /// 0..=1 h; absent = 0.
    pub base_delay: Option<Duration>,
    /// 0.1..=10; absent = 1.
    pub delay_multiplier: Option<f64>,
    /// 0..=24 h and ≥ `base_delay`; absent = no cap.
    pub max_delay: Option<Duration>,
}

impl TaskRetryOptions {
    /// `max_attempts` retries without delay.
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            base_delay: None,
            delay_multiplier: None,
            max_delay: None,
        }
    }

    with_some! {
        /// Sets [`base_delay`](Self::base_delay).
        with_base_delay: base_delay: Duration;
        /// Sets [`delay_multiplier`](Self::delay_multiplier).
        with_delay_multiplier: delay_multiplier: f64;
        /// Sets [`max_delay`](Self::max_delay).
        with_max_delay: max_delay: Duration;
    }

    /// The stored form, after validation.
    pub(crate) fn validate(&self, task_id: &str) -> Result<RetryOptions, Error> {
        let invalid = |message: String| {
            Error::InvalidTask(format!(
                "invalid retry options for task {task_id}: {message}"
            ))
        };
        if self.max_attempts > 1_000 {
            return Err(invalid(format!(
                "max_attempts must be between 0 and 1000, got {}",
                self.max_attempts
            )));
        }
        let base_delay_ms = self
            .base_delay
            .map(|d| millis("base_delay", d, 0, 3_600_000))
            .transpose()
            .map_err(invalid)?;
        let max_delay_ms = self
            .max_delay
            .map(|d| millis("max_delay", d, 0, 86_400_000))
            .transpose()
            .map_err(invalid)?;
        if let Some(multiplier) = self.delay_multiplier {
            if !(0.1..=10.0).contains(&multiplier) {
                return Err(invalid(format!(
                    "delay_multiplier must be between 0.1 and 10, got {multiplier}"
                )));
            }
        }
        if let (Some(base), Some(max)) = (base_delay_ms, max_delay_ms) {
            if max < base {
                return Err(invalid(format!(
                    "max_delay ({max} ms) must be at least base_delay ({base} ms)"
                )));
            }
        }
        Ok(RetryOptions {
            max_attempts: self.max_attempts,
            base_delay_ms,
            max_delay_ms,
            delay_multiplier: self.delay_multiplier,
        })
    }
}

/// No retries: what a task without retry options stores.
pub(crate) fn no_retries() -> RetryOptions {
    RetryOptions {
        max_attempts: 0,
        base_delay_ms: None,
        max_delay_ms: None,
        delay_multiplier: None,
    }
}

/// The delay before retry number `retry_attempts` (0-based) under `options` (reference §3):
/// `baseDelayMs × delayMultiplier^retryAttempts` (× 1 on the first retry), capped at
/// `maxDelayMs`.
pub fn retry_delay_ms(options: &RetryOptions, retry_attempts: u32) -> u64 {
    let base = options.base_delay_ms.unwrap_or(0) as f64;
    let multiplier = options.delay_multiplier.unwrap_or(1.0);
    let mut delay = base;
    if retry_attempts > 0 && delay > 0.0 {
        delay *= multiplier.powi(i32::try_from(retry_attempts).unwrap_or(i32::MAX));
    }
    if let Some(max) = options.max_delay_ms {
        delay = delay.min(max as f64);
    }
    // Finite and non-negative by validation; saturate anyway.
    if delay.is_finite() && delay > 0.0 {
        (delay.min(MAX_SAFE_INTEGER as f64)) as u64
    } else {
        0
    }
}

/// The options of a task (reference §2).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TaskOptions {
    /// Non-empty, at most 255 characters: letters, digits, `_` and `-`. Unique per executor.
    pub id: String,
    /// How long one run may take; at least 1 ms.
    pub timeout: Duration,
    /// Retries after a retryable failure; `None` = no retries.
    pub retry_options: Option<TaskRetryOptions>,
    /// Delay between enqueueing and the first run; `None` = none.
    pub sleep_before_run: Option<Duration>,
}

impl TaskOptions {
    /// A task `id` whose runs time out after `timeout`.
    pub fn new(id: impl Into<String>, timeout: Duration) -> Self {
        Self {
            id: id.into(),
            timeout,
            retry_options: None,
            sleep_before_run: None,
        }
    }

    with_some! {
        /// Sets [`retry_options`](Self::retry_options).
        with_retry_options: retry_options: TaskRetryOptions;
        /// Sets [`sleep_before_run`](Self::sleep_before_run).
        with_sleep_before_run: sleep_before_run: Duration;
    }

    pub(crate) fn validate(&self) -> Result<ValidatedTaskOptions, Error> {
        validate_task_id(&self.id)?;
        Ok(ValidatedTaskOptions {
            retry_options: match &self.retry_options {
                Some(options) => options.validate(&self.id)?,
                None => no_retries(),
            },
            sleep_ms_before_run: match self.sleep_before_run {
                Some(sleep) => sleep_ms(&self.id, sleep)?,
                None => 0,
            },
            timeout_ms: timeout_ms(&self.id, self.timeout)?,
        })
    }
}

/// A task's options after validation, as stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ValidatedTaskOptions {
    pub retry_options: RetryOptions,
    pub sleep_ms_before_run: u64,
    pub timeout_ms: u64,
}

pub(crate) fn timeout_ms(task_id: &str, timeout: Duration) -> Result<u64, Error> {
    millis("timeout", timeout, 1, MAX_SAFE_INTEGER)
        .map_err(|m| Error::InvalidTask(format!("invalid timeout for task {task_id}: {m}")))
}

pub(crate) fn sleep_ms(task_id: &str, sleep: Duration) -> Result<u64, Error> {
    millis("sleep_before_run", sleep, 0, MAX_SAFE_INTEGER).map_err(|m| {
        Error::InvalidTask(format!("invalid sleep before run for task {task_id}: {m}"))
    })
}

/// Task ids: non-empty, at most 255 characters, ASCII letters, digits, `_` and `-`.
///
/// The original allows word characters only (`/^\w+$/`); `-` is accepted too so that the
/// original README's own example (`my-task`) works as written.
pub(crate) fn validate_task_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::InvalidTask("task id cannot be empty".into()));
    }
    if id.chars().count() > 255 {
        return Err(Error::InvalidTask(format!(
            "task id cannot be longer than 255 characters, got {}",
            id.chars().count()
        )));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::InvalidTask(format!(
            "task id {id:?} can only contain ASCII letters, digits, '_' and '-'"
        )));
    }
    Ok(())
}

/// Options of one enqueue (or one child), overriding the task's own; validated like them.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct EnqueueOptions {
    pub retry_options: Option<TaskRetryOptions>,
    pub sleep_before_run: Option<Duration>,
    pub timeout: Option<Duration>,
}

impl EnqueueOptions {
    with_some! {
        /// Sets [`retry_options`](Self::retry_options).
        with_retry_options: retry_options: TaskRetryOptions;
        /// Sets [`sleep_before_run`](Self::sleep_before_run).
        with_sleep_before_run: sleep_before_run: Duration;
        /// Sets [`timeout`](Self::timeout).
        with_timeout: timeout: Duration;
    }

    /// The task's options with these overrides, validated.
    pub(crate) fn apply(
        &self,
        task_id: &str,
        task: &ValidatedTaskOptions,
    ) -> Result<ValidatedTaskOptions, Error> {
        Ok(ValidatedTaskOptions {
            retry_options: match &self.retry_options {
                Some(options) => options.validate(task_id)?,
                None => task.retry_options.clone(),
            },
            sleep_ms_before_run: match self.sleep_before_run {
                Some(sleep) => sleep_ms(task_id, sleep)?,
                None => task.sleep_ms_before_run,
            },
            timeout_ms: match self.timeout {
                Some(timeout) => timeout_ms(task_id, timeout)?,
                None => task.timeout_ms,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_checked() {
        let validated = ExecutorOptions::default().validate().unwrap();
        assert_eq!(validated.expire_leeway_ms, 300_000);
        assert_eq!(validated.intra_batch_sleep, Duration::from_millis(500));
        for bad in [
            ExecutorOptions::default().with_background_process_intra_batch_sleep(Duration::ZERO),
            ExecutorOptions::default().with_max_concurrent_task_executions(0),
            ExecutorOptions::default().with_close_finished_task_executions_batch_size(201),
            ExecutorOptions::default().with_max_children_per_task_execution(1_001),
            ExecutorOptions::default().with_max_serialized_input_data_size(1_023),
            ExecutorOptions::default().with_max_serialized_output_data_size(10 * 1024 * 1024 + 1),
            ExecutorOptions::default().with_storage_max_retry_attempts(11),
            ExecutorOptions::default()
                .with_storage_background_batching_process_intra_batch_sleep(Duration::ZERO),
            ExecutorOptions::default().with_max_idle_poll_interval(Duration::from_millis(10)),
            ExecutorOptions::default()
                .with_max_idle_maintenance_poll_interval(Duration::from_secs(3_601)),
            ExecutorOptions::default().with_expire_leeway(Duration::from_micros(1_500)),
        ] {
            let error = bad.validate().unwrap_err();
            assert!(matches!(error, Error::InvalidOptions(_)), "{error}");
        }
    }

    #[test]
    fn retry_options_are_validated() {
        assert!(TaskRetryOptions::new(1_001).validate("t").is_err());
        assert!(TaskRetryOptions::new(1)
            .with_delay_multiplier(0.05)
            .validate("t")
            .is_err());
        assert!(TaskRetryOptions::new(1)
            .with_base_delay(Duration::from_secs(2))
            .with_max_delay(Duration::from_secs(1))
            .validate("t")
            .is_err());
        assert!(TaskRetryOptions::new(1)
            .with_base_delay(Duration::from_secs(3_601))
            .validate("t")
            .is_err());
        let ok = TaskRetryOptions::new(3)
            .with_base_delay(Duration::from_millis(100))
            .with_delay_multiplier(2.0)
            .with_max_delay(Duration::from_millis(300))
            .validate("t")
            .unwrap();
        assert_eq!(
            (0..4).map(|n| retry_delay_ms(&ok, n)).collect::<Vec<_>>(),
            vec![100, 200, 300, 300]
        );
    }

    #[test]
    fn task_ids_are_validated() {
        assert!(validate_task_id("my-task").is_ok());
        assert!(validate_task_id("a_1").is_ok());
        assert!(validate_task_id("").is_err());
        assert!(validate_task_id("a b").is_err());
        assert!(validate_task_id(&"a".repeat(256)).is_err());
        assert!(TaskOptions::new("t", Duration::ZERO).validate().is_err());
    }
}
