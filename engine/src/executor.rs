//! [`Executor`]: registers tasks, enqueues executions, runs the background processes.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

use crate::background::{run_process, Process, Wakers, PROCESSES};
use crate::context::TaskContext;
use crate::error::{Error, TaskError};
use crate::handle::TaskExecutionHandle;
use crate::ids;
use crate::options::{
    validate_task_id, EnqueueOptions, ExecutorOptions, LogLevel, TaskOptions, ValidatedOptions,
    ValidatedTaskOptions,
};
use crate::serializer::{to_json, Codec};
use crate::signal::Signal;
use crate::storage::{
    NewTaskExecution, ParentTaskExecutionSummary, TaskExecutionStatus, TaskExecutionStorageFilters,
    TaskExecutionStorageValue, TaskExecutionsStorage, UpdateByIdRequest,
};
use crate::store::{StorageMetrics, Store};
use crate::task::{
    looping_kind, Definition, FinalizeDefinition, Kind, LoopIteration, LoopOutput, Registered,
    RegisteredFinalize, Sequence, SleepingTask, Task, TaskDefinition, TaskRef,
};
use crate::update::Update;

/// The timeout of the parents that sequential and looping tasks create (the original's).
const COMPOSITE_TIMEOUT: Duration = Duration::from_secs(30);

/// A durable executor over a [`TaskExecutionsStorage`]. Cheap to clone: clones share one
/// executor.
///
/// Every executor sharing a storage must register every task. Tasks may be registered before
/// or after [`start`](Self::start). After [`shutdown`](Self::shutdown), registering, enqueueing,
/// looking up handles and waking up sleeping tasks fail with [`Error::ShutDown`].
#[derive(Clone)]
pub struct Executor {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("id", &self.inner.id)
            .field("running", &self.running_execution_count())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Lifecycle {
    started: bool,
    shut_down: bool,
}

pub(crate) struct Running {
    token: u64,
    abort: AbortHandle,
    cancellation: Signal,
}

pub(crate) struct Inner {
    pub(crate) id: String,
    pub(crate) store: Store,
    pub(crate) codec: Codec,
    pub(crate) options: ValidatedOptions,
    registry: RwLock<HashMap<String, Arc<Registered>>>,
    running: Mutex<HashMap<String, Running>>,
    running_changed: Notify,
    /// Run tasks not yet ended (aborted ones end when the runtime next polls them).
    live_runs: std::sync::atomic::AtomicUsize,
    next_token: AtomicU64,
    lifecycle: Mutex<Lifecycle>,
    shutdown_lock: tokio::sync::Mutex<()>,
    pub(crate) shutdown: Signal,
    pub(crate) wakers: Wakers,
    processes: Mutex<Vec<(Process, JoinHandle<()>)>>,
    /// Waiters for the execution ids this executor may finish (see `notify_finished`).
    watchers: Mutex<HashMap<String, (Arc<Notify>, usize)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Executor {
    /// An executor over `storage` (e.g. an [`InMemoryTaskExecutionsStorage`] or a
    /// `ConvexTaskExecutionsStorage`), after validating `options`.
    ///
    /// [`InMemoryTaskExecutionsStorage`]: crate::storage::InMemoryTaskExecutionsStorage
    pub fn new<S: TaskExecutionsStorage + 'static>(
        storage: S,
        options: ExecutorOptions,
    ) -> Result<Self, Error> {
        Self::with_shared_storage(Arc::new(storage), options)
    }

    /// An executor over a storage shared with other code.
    pub fn with_shared_storage(
        storage: Arc<dyn TaskExecutionsStorage>,
        options: ExecutorOptions,
    ) -> Result<Self, Error> {
        let validated = options.validate()?;
        let codec = Codec::new(
            Arc::clone(&options.serializer),
            validated.max_input_size,
            validated.max_output_size,
        );
        let inner = Inner {
            id: ids::executor_id(),
            store: Store::new(
                storage,
                validated.storage_max_retry_attempts,
                options
                    .enable_storage_batching
                    .then_some(options.storage_background_batching_process_intra_batch_sleep),
            ),
            codec,
            options: validated,
            registry: RwLock::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            running_changed: Notify::new(),
            live_runs: std::sync::atomic::AtomicUsize::new(0),
            next_token: AtomicU64::new(0),
            lifecycle: Mutex::new(Lifecycle::default()),
            shutdown_lock: tokio::sync::Mutex::new(()),
            shutdown: Signal::new(),
            wakers: Wakers::default(),
            processes: Mutex::new(Vec::new()),
            watchers: Mutex::new(HashMap::new()),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// This executor's id (`de_` and 8 characters).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Registers a task definition (a [`TaskDefinition`], or a [`ParentTaskDefinition`]
    /// with or without finalize) and returns its typed handle.
    ///
    /// [`ParentTaskDefinition`]: crate::ParentTaskDefinition
    pub fn register<I, O>(
        &self,
        definition: impl Into<TaskDefinition<I, O>>,
    ) -> Result<Task<I, O>, Error> {
        let definition = definition.into().definition;
        let id = definition.options.id.clone();
        self.inner.register(definition)?;
        Ok(Task::new(&id))
    }

    /// Registers a plain task: `run(ctx, input)` → output.
    pub fn task<I, O, F, Fut>(&self, options: TaskOptions, run: F) -> Result<Task<I, O>, Error>
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(TaskContext, I) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<O, TaskError>> + Send + 'static,
    {
        self.register(TaskDefinition::new(options, run))
    }

    /// Registers a sleeping task: enqueued with a unique id, it waits to be woken up with
    /// [`wake_up_sleeping_task`](Self::wake_up_sleeping_task) (or times out after `timeout`).
    pub fn sleeping_task<O>(
        &self,
        id: impl Into<String>,
        timeout: Duration,
    ) -> Result<SleepingTask<O>, Error> {
        let id = id.into();
        self.inner.register(Definition {
            kind: Kind::Sleeping,
            options: TaskOptions::new(id.clone(), timeout),
            run: None,
            finalize: None,
        })?;
        Ok(SleepingTask::new(&id))
    }

    /// Registers sequential tasks: a parent whose steps run one after the other, each step's
    /// output being the next one's input; its output is the last step's, and it is
    /// `finalize_failed` when a step does not complete. Every step must be registered.
    pub fn sequential_tasks<I, O>(&self, sequence: Sequence<I, O>) -> Result<Task<I, O>, Error> {
        {
            let registry = self.inner.registry_read();
            for step in &sequence.steps {
                if !registry.contains_key(step) {
                    return Err(Error::InvalidTask(format!(
                        "step {step} of sequential tasks {} is not registered",
                        sequence.id
                    )));
                }
            }
        }
        self.inner.register(Definition {
            kind: Kind::Sequential(sequence.steps),
            options: TaskOptions::new(sequence.id.clone(), COMPOSITE_TIMEOUT),
            run: None,
            finalize: None,
        })?;
        Ok(Task::new(&sequence.id))
    }

    /// Registers a looping task: runs `iteration` on the loop's input until it returns
    /// [`LoopIteration::Done`], at most `max_attempts` times (≥ 1), waiting
    /// `sleep_before_iteration` (default: the iteration task's own sleep) before each.
    pub fn looping_task<I, O>(
        &self,
        id: impl Into<String>,
        iteration: &Task<I, LoopIteration<O>>,
        max_attempts: u32,
        sleep_before_iteration: Option<Duration>,
    ) -> Result<Task<I, LoopOutput<O>>, Error> {
        let id = id.into();
        if !self.inner.registry_read().contains_key(iteration.id()) {
            return Err(Error::InvalidTask(format!(
                "iteration task {} of looping task {id} is not registered",
                iteration.id()
            )));
        }
        let kind = looping_kind(iteration.id(), max_attempts, sleep_before_iteration)?;
        self.inner.register(Definition {
            kind,
            options: TaskOptions::new(id.clone(), COMPOSITE_TIMEOUT),
            run: None,
            finalize: None,
        })?;
        Ok(Task::new(&id))
    }

    /// Enqueues an execution of `task` with `input` (for a sleeping task: its unique id).
    pub async fn enqueue<T: TaskRef>(
        &self,
        task: &T,
        input: T::Input,
    ) -> Result<TaskExecutionHandle<T::Output>, Error> {
        self.enqueue_with_options(task, input, EnqueueOptions::default())
            .await
    }

    /// Enqueues with per-call options (overriding the task's retry options, sleep before run
    /// and timeout).
    pub async fn enqueue_with_options<T: TaskRef>(
        &self,
        task: &T,
        input: T::Input,
        options: EnqueueOptions,
    ) -> Result<TaskExecutionHandle<T::Output>, Error> {
        let inner = &self.inner;
        inner.ensure_not_shut_down()?;
        let definition = inner
            .definition(task.id())
            .ok_or_else(|| Error::NotFound(format!("task {} is not registered", task.id())))?;
        let input_json = to_json(&input)?;
        let (unique_id, stored_input) = if definition.kind == Kind::Sleeping {
            let unique_id: String = serde_json::from_str(&input_json)
                .map_err(|e| Error::InvalidTask(format!("sleeping task input: {e}")))?;
            validate_unique_id(&definition.id, &unique_id).map_err(Error::InvalidTask)?;
            (Some(unique_id), inner.codec.input_json("null")?)
        } else {
            (None, inner.codec.input_json(&input_json)?)
        };
        let task_options = options.apply(&definition.id, &definition.options)?;
        let execution_id = ids::execution_id();
        let now = inner.store.now();
        let value = inner.new_execution(
            &definition,
            &task_options,
            None,
            None,
            execution_id.clone(),
            unique_id,
            stored_input,
            now,
        );
        inner.store.insert_new(value).await?;
        inner.log_debug(format_args!(
            "enqueued task {} execution {execution_id}",
            definition.id
        ));
        if definition.kind == Kind::Sleeping {
            // Its timeout, unless woken up before.
            inner.wakers.wake_after(
                Process::Expired,
                Duration::from_millis(
                    task_options
                        .sleep_ms_before_run
                        .saturating_add(task_options.timeout_ms),
                ),
            );
        } else {
            inner.wakers.ready(
                &execution_id,
                Duration::from_millis(task_options.sleep_ms_before_run),
            );
        }
        Ok(TaskExecutionHandle::new(
            Arc::clone(inner),
            definition.id.clone(),
            execution_id,
        ))
    }

    /// The handle of an existing execution of `task`.
    pub async fn handle<T: TaskRef>(
        &self,
        task: &T,
        execution_id: &str,
    ) -> Result<TaskExecutionHandle<T::Output>, Error> {
        let inner = &self.inner;
        inner.ensure_not_shut_down()?;
        if inner.definition(task.id()).is_none() {
            return Err(Error::NotFound(format!(
                "task {} is not registered",
                task.id()
            )));
        }
        let execution = inner
            .store
            .get_by_id(execution_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("task execution {execution_id}")))?;
        if execution.task_id != task.id() {
            return Err(Error::NotFound(format!(
                "task execution {execution_id} belongs to task {}, not {}",
                execution.task_id,
                task.id()
            )));
        }
        Ok(TaskExecutionHandle::new(
            Arc::clone(inner),
            task.id().to_owned(),
            execution_id.to_owned(),
        ))
    }

    /// Wakes up the execution of a sleeping task with its unique id: it completes with an
    /// output, or fails (not retried). An execution already finished is returned as it is.
    pub async fn wake_up_sleeping_task<O: Serialize + DeserializeOwned>(
        &self,
        task: &SleepingTask<O>,
        unique_id: &str,
        wake_up: WakeUp<O>,
    ) -> Result<crate::handle::TaskExecution<O>, Error> {
        let inner = &self.inner;
        inner.ensure_not_shut_down()?;
        let execution = inner
            .store
            .get_by_sleeping_task_unique_id(unique_id)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "sleeping task execution with unique id {unique_id}"
                ))
            })?;
        if execution.task_id != task.id() {
            return Err(Error::NotFound(format!(
                "sleeping task execution {unique_id} belongs to task {}, not {}",
                execution.task_id,
                task.id()
            )));
        }
        if execution.is_finished {
            return crate::handle::TaskExecution::from_value(&inner.codec, execution);
        }
        let update = match wake_up {
            WakeUp::Completed(output) => Update {
                output: Some(inner.codec.output(&output)?),
                ..Update::status(TaskExecutionStatus::Completed)
            },
            WakeUp::Failed(message) => Update {
                error: Some(TaskError::non_retryable(message).to_execution_error()),
                ..Update::status(TaskExecutionStatus::Failed)
            },
        };
        let now = inner.store.now();
        inner
            .store
            .update_many_by_id(vec![UpdateByIdRequest {
                execution_id: execution.execution_id.clone(),
                filters: Some(TaskExecutionStorageFilters {
                    is_sleeping_task: Some(true),
                    is_finished: Some(false),
                    ..TaskExecutionStorageFilters::default()
                }),
                update: update.at(now),
            }])
            .await?;
        inner.finished(&execution.execution_id);
        let finished = inner
            .store
            .get_by_id(&execution.execution_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("task execution {}", execution.execution_id)))?;
        if !finished.is_finished {
            return Err(Error::InvalidState(format!(
                "task execution {} is not a sleeping task execution",
                execution.execution_id
            )));
        }
        crate::handle::TaskExecution::from_value(&inner.codec, finished)
    }

    /// Starts the background processes (again: no effect; after shutdown: no effect).
    pub fn start(&self) {
        let inner = &self.inner;
        {
            let mut lifecycle = lock(&inner.lifecycle);
            if lifecycle.started || lifecycle.shut_down {
                return;
            }
            lifecycle.started = true;
        }
        let mut processes = lock(&inner.processes);
        for process in PROCESSES {
            let handle = tokio::spawn(run_process(Arc::clone(inner), process));
            processes.push((process, handle));
        }
        inner.log_info(format_args!("executor {} started", inner.id));
    }

    /// Shuts down (again: waits for the first shutdown to end). Signals every running task
    /// (their [`shutdown_signal`](TaskContext::shutdown_signal)), stops the background
    /// processes (each within `background_process_shutdown_timeout`, then aborted), waits up to
    /// `shutdown_drain_timeout` for running tasks, then aborts them (their executions are
    /// picked up again when their lease expires). Last, with storage batching, it sends the
    /// queued storage calls and stops the batching loop (later calls, e.g. of handles, go to
    /// the storage directly).
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        let _serialised = inner.shutdown_lock.lock().await;
        {
            let mut lifecycle = lock(&inner.lifecycle);
            if lifecycle.shut_down {
                return;
            }
            lifecycle.shut_down = true;
        }
        inner.shutdown.fire();
        let processes = std::mem::take(&mut *lock(&inner.processes));
        for (process, mut handle) in processes {
            let timeout = inner.options.process_shutdown_timeout;
            if tokio::time::timeout(timeout, &mut handle).await.is_err() {
                inner.log_error(format_args!(
                    "background process {} did not stop within {timeout:?}: aborted",
                    process.name()
                ));
                handle.abort();
                let _ = handle.await;
            }
        }
        let drain = tokio::time::Instant::now() + inner.options.shutdown_drain_timeout;
        loop {
            let changed = inner.running_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if lock(&inner.running).is_empty() {
                break;
            }
            if tokio::time::timeout_at(drain, changed).await.is_err() {
                break;
            }
        }
        let aborted: Vec<Running> = lock(&inner.running).drain().map(|(_, r)| r).collect();
        if !aborted.is_empty() {
            inner.log_error(format_args!(
                "aborting {} task executions still running after {:?}",
                aborted.len(),
                inner.options.shutdown_drain_timeout
            ));
        }
        for running in aborted {
            running.cancellation.fire();
            running.abort.abort();
        }
        // Aborted futures are dropped when the runtime next polls their tasks: wait for that
        // (briefly), so that no run outlives shutdown.
        let dropped = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let changed = inner.running_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if inner.live_runs.load(Ordering::SeqCst) == 0 {
                break;
            }
            if tokio::time::timeout_at(dropped, changed).await.is_err() {
                break;
            }
        }
        // Runs no longer write: send the calls they queued, then stop batching.
        inner.store.shutdown_batching().await;
        inner.log_info(format_args!("executor {} shut down", inner.id));
    }

    /// Whether the executor has started and not shut down.
    pub fn is_running(&self) -> bool {
        let lifecycle = lock(&self.inner.lifecycle);
        lifecycle.started && !lifecycle.shut_down
    }

    /// The ids of the executions running in this executor.
    pub fn running_execution_ids(&self) -> HashSet<String> {
        lock(&self.inner.running).keys().cloned().collect()
    }

    /// How many executions are running in this executor.
    pub fn running_execution_count(&self) -> usize {
        lock(&self.inner.running).len()
    }

    /// Calls this executor made to its storage, per operation.
    pub fn storage_metrics(&self) -> StorageMetrics {
        self.inner.store.metrics()
    }
}

/// How to wake up a sleeping task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WakeUp<O> {
    /// Complete it with this output.
    Completed(O),
    /// Fail it (not retried) with this message.
    Failed(String),
}

/// A sleeping task's unique id: non-empty, at most 255 characters.
pub(crate) fn validate_unique_id(task_id: &str, unique_id: &str) -> Result<(), String> {
    if unique_id.is_empty() {
        return Err(format!(
            "a non-empty unique id is required for sleeping task {task_id}"
        ));
    }
    let len = unique_id.chars().count();
    if len > 255 {
        return Err(format!(
            "the unique id of sleeping task {task_id} must be at most 255 characters, got {len}"
        ));
    }
    Ok(())
}

impl Inner {
    pub(crate) fn registry_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Registered>>> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn definition(&self, task_id: &str) -> Option<Arc<Registered>> {
        self.registry_read().get(task_id).cloned()
    }

    pub(crate) fn ensure_not_shut_down(&self) -> Result<(), Error> {
        if lock(&self.lifecycle).shut_down {
            return Err(Error::ShutDown);
        }
        Ok(())
    }

    /// Validates a definition (and its finalize tasks) and registers them all, or none.
    fn register(&self, definition: Definition) -> Result<(), Error> {
        self.ensure_not_shut_down()?;
        let mut flattened = Vec::new();
        flatten(definition, &mut flattened)?;
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut seen = HashSet::new();
        for registered in &flattened {
            if registry.contains_key(&registered.id) || !seen.insert(registered.id.clone()) {
                return Err(Error::InvalidTask(format!(
                    "a task with id {} already exists",
                    registered.id
                )));
            }
        }
        for registered in flattened {
            self.log_debug(format_args!("registered task {}", registered.id));
            registry.insert(registered.id.clone(), Arc::new(registered));
        }
        Ok(())
    }

    /// A new execution of `definition` with `options`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_execution(
        &self,
        definition: &Registered,
        options: &ValidatedTaskOptions,
        root: Option<crate::storage::TaskExecutionSummary>,
        parent: Option<ParentTaskExecutionSummary>,
        execution_id: String,
        sleeping_task_unique_id: Option<String>,
        input: String,
        now: u64,
    ) -> TaskExecutionStorageValue {
        let is_sleeping_task = definition.kind == Kind::Sleeping;
        let mut value = TaskExecutionStorageValue::new_execution(
            NewTaskExecution {
                root,
                parent,
                task_id: definition.id.clone(),
                execution_id,
                is_sleeping_task: definition.kind == Kind::Sleeping,
                sleeping_task_unique_id,
                retry_options: options.retry_options.clone(),
                sleep_ms_before_run: options.sleep_ms_before_run,
                timeout_ms: options.timeout_ms,
                are_children_sequential: matches!(definition.kind, Kind::Sequential(_)),
                input,
            },
            now,
        );
        if !is_sleeping_task {
            value.start_at = crate::processes::start_at(now, options.sleep_ms_before_run);
        }
        value
    }

    /// Starts running a claimed execution, unless it already runs here.
    pub(crate) fn spawn_execution(self: &Arc<Self>, execution: TaskExecutionStorageValue) {
        let mut running = lock(&self.running);
        let execution_id = execution.execution_id.clone();
        if running.contains_key(&execution_id) {
            return;
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.live_runs.fetch_add(1, Ordering::SeqCst);
        let cancellation = Signal::new();
        let guard = RunningGuard {
            inner: Arc::clone(self),
            execution_id: execution_id.clone(),
            token,
        };
        let inner = Arc::clone(self);
        let signal = cancellation.clone();
        let handle = tokio::spawn(async move {
            let _guard = guard;
            inner.run_execution(execution, signal).await;
        });
        running.insert(
            execution_id,
            Running {
                token,
                abort: handle.abort_handle(),
                cancellation,
            },
        );
    }

    pub(crate) fn running_count(&self) -> usize {
        lock(&self.running).len()
    }

    /// Aborts a running execution (its future is dropped; it writes nothing more).
    pub(crate) fn abort_running(&self, execution_id: &str) -> bool {
        let removed = lock(&self.running).remove(execution_id);
        match removed {
            Some(running) => {
                running.cancellation.fire();
                running.abort.abort();
                self.running_changed.notify_waiters();
                true
            }
            None => false,
        }
    }

    /// Registers interest in an execution finishing; pair with `unwatch`.
    pub(crate) fn watch(&self, execution_id: &str) -> Arc<Notify> {
        let mut watchers = lock(&self.watchers);
        let entry = watchers
            .entry(execution_id.to_owned())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        entry.1 += 1;
        Arc::clone(&entry.0)
    }

    pub(crate) fn unwatch(&self, execution_id: &str) {
        let mut watchers = lock(&self.watchers);
        if let Some(entry) = watchers.get_mut(execution_id) {
            entry.1 -= 1;
            if entry.1 == 0 {
                watchers.remove(execution_id);
            }
        }
    }

    /// This executor wrote a finished status for `execution_id` (or may have): wakes its
    /// waiters in this process and the process that closes finished executions.
    pub(crate) fn finished(&self, execution_id: &str) {
        if let Some((notify, _)) = lock(&self.watchers).get(execution_id) {
            notify.notify_waiters();
        }
        self.wakers.wake(Process::MarkFinished);
    }

    pub(crate) fn log_debug(&self, message: fmt::Arguments<'_>) {
        if self.options.log_level <= LogLevel::Debug {
            tracing::debug!(executor_id = %self.id, "{message}");
        }
    }

    pub(crate) fn log_info(&self, message: fmt::Arguments<'_>) {
        if self.options.log_level <= LogLevel::Info {
            tracing::info!(executor_id = %self.id, "{message}");
        }
    }

    pub(crate) fn log_error(&self, message: fmt::Arguments<'_>) {
        tracing::error!(executor_id = %self.id, "{message}");
    }
}

/// Removes a running execution from the map when its task ends (or is aborted).
struct RunningGuard {
    inner: Arc<Inner>,
    execution_id: String,
    token: u64,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let was_full;
        {
            let mut running = lock(&self.inner.running);
            was_full = running.len() >= self.inner.options.max_concurrent_task_executions as usize;
            if running
                .get(&self.execution_id)
                .is_some_and(|r| r.token == self.token)
            {
                running.remove(&self.execution_id);
            }
        }
        self.inner.live_runs.fetch_sub(1, Ordering::SeqCst);
        self.inner.running_changed.notify_waiters();
        if was_full {
            self.inner.wakers.wake(Process::ClaimReady);
        }
    }
}

/// A definition and its finalize tasks, validated, in registration order.
fn flatten(definition: Definition, out: &mut Vec<Registered>) -> Result<(), Error> {
    let Definition {
        kind,
        options,
        run,
        finalize,
    } = definition;
    validate_task_id(&options.id)?;
    let validated = options.validate()?;
    if kind == Kind::Sleeping {
        // Sleeping tasks take only an id and a timeout.
        debug_assert!(options.retry_options.is_none() && options.sleep_before_run.is_none());
    }
    let finalize = match finalize {
        None => None,
        Some(FinalizeDefinition::Function(function)) => {
            Some(RegisteredFinalize::Function(function))
        }
        Some(FinalizeDefinition::Task(task)) => {
            let finalize_id = task.options.id.clone();
            if task.kind == Kind::Sleeping {
                return Err(Error::InvalidTask(format!(
                    "finalize task {finalize_id} cannot be a sleeping task"
                )));
            }
            flatten(*task, out)?;
            Some(RegisteredFinalize::Task(finalize_id))
        }
    };
    out.push(Registered {
        kind,
        id: options.id,
        options: validated,
        run,
        finalize,
    });
    Ok(())
}
