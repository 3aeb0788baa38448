//! The scenarios. Each is a public async function of a [`StorageFactory`]; [`scenarios`]
//! lists them all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Failure, Scenario, ScenarioResult, StorageBackend, StorageFactory};
use crate::storage::{
    CloseStatus, ErrorType, GetByIdRequest, NewTaskExecution, OnChildrenFinishedProcessingStatus,
    TaskExecutionStatus, TaskExecutionStorageValue, TaskExecutionsStorage,
};
use crate::{
    child, EnqueueOptions, Error, Executor, ExecutorOptions, LoopIteration, LoopOutput,
    ParentOutput, ParentRun, ParentTaskDefinition, Sequence, Signal, Task, TaskDefinition,
    TaskError, TaskExecution, TaskExecutionHandle, TaskOptions, TaskRef, TaskRetryOptions,
    WaitOptions, WakeUp,
};

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(Failure(format!($($arg)+)));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $what:expr) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(Failure(format!("{}: {:?} != {:?}", $what, left, right)));
        }
    }};
}

/// Calls `$callback! { $($args)* ; <every scenario's name> }`, the names in the order
/// [`run_all`](crate::suite::run_all) runs them: the one list of the scenarios, from which both
/// [`scenarios`] and [`scenario_tests!`](crate::scenario_tests) are generated.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_scenario_names {
    ({ $($callback:tt)+ } $($args:tt)*) => {
        $($callback)+! {
            $($args)* ;
            root_parent_tree,
            concurrent_tasks,
            retry_until_success,
            failing_task,
            parent_with_failing_child,
            parent_with_failing_finalize_task,
            parent_with_500_children,
            looping_task,
            sleeping_child_woken_up,
            closing,
            retry_delays_follow_the_formula,
            timeouts_give_timed_out_after_retries,
            non_retryable_errors_stop_at_once,
            cancel_running_task,
            cancel_parent_cancels_children,
            shutdown,
            expired_lease_counts_as_an_attempt,
            several_executors,
            interop_forms,
            child_options_are_validated,
        }
    };
}

macro_rules! scenario_list {
    ( ; $($name:ident),* $(,)?) => {
        /// Every scenario, in the order [`run_all`](super::run_all) runs them.
        pub fn scenarios() -> Vec<Scenario> {
            mod wrappers {
                use super::super::{BoxFuture, ScenarioResult, StorageFactory};
                $(
                    pub(super) fn $name<'a>(
                        factory: &'a dyn StorageFactory,
                    ) -> BoxFuture<'a, ScenarioResult> {
                        Box::pin(super::$name(factory))
                    }
                )*
            }
            vec![$(Scenario { name: stringify!($name), run: wrappers::$name }),*]
        }
    };
}

crate::__with_scenario_names!({ scenario_list });

struct Setup {
    backend: Arc<dyn StorageBackend>,
    storage: Arc<dyn TaskExecutionsStorage>,
    executor: Executor,
    scale: u32,
}

async fn setup(factory: &dyn StorageFactory) -> Result<Setup, Failure> {
    setup_with(factory, factory.executor_options()).await
}

async fn setup_with(
    factory: &dyn StorageFactory,
    options: ExecutorOptions,
) -> Result<Setup, Failure> {
    let backend = factory.create().await?;
    let storage = backend.client().await?;
    let executor = Executor::with_shared_storage(Arc::clone(&storage), options)?;
    Ok(Setup {
        backend,
        storage,
        executor,
        scale: factory.time_scale().max(1),
    })
}

impl Setup {
    fn bound(&self, seconds: u64) -> Duration {
        Duration::from_secs(seconds * u64::from(self.scale))
    }

    async fn wait<O: serde::de::DeserializeOwned>(
        &self,
        handle: &TaskExecutionHandle<O>,
    ) -> Result<TaskExecution<O>, Failure> {
        wait_for(handle, self.bound(30), Duration::from_millis(50)).await
    }

    /// Starts the executor, runs `task` to its end and checks that it ended `status` with the
    /// error "Failed", its times in order; then shuts the executor down.
    async fn run_to_failure<T: TaskRef<Input = Option<()>>>(
        &self,
        task: &T,
        status: TaskExecutionStatus,
        what: &str,
    ) -> ScenarioResult {
        self.executor.start();
        let finished = self.wait(&self.executor.enqueue(task, None).await?).await?;
        ensure_eq!(finished.status, status, "status");
        ensure_eq!(
            finished.error.as_ref().map(|e| e.message().to_owned()),
            Some("Failed".to_owned()),
            "error"
        );
        check_times(&finished, what)?;
        self.executor.shutdown().await;
        Ok(())
    }

    async fn stored(&self, execution_id: &str) -> Result<TaskExecutionStorageValue, Failure> {
        stored(&*self.storage, execution_id).await
    }
}

async fn wait_for<O: serde::de::DeserializeOwned>(
    handle: &TaskExecutionHandle<O>,
    bound: Duration,
    polling: Duration,
) -> Result<TaskExecution<O>, Failure> {
    let options = WaitOptions::default().with_polling_interval(polling);
    match tokio::time::timeout(bound, handle.wait_finished(options)).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            let now = handle.execution().await.map(|e| e.status);
            Err(Failure(format!(
                "{} {} did not finish within {bound:?} (now {now:?})",
                handle.task_id(),
                handle.execution_id()
            )))
        }
    }
}

async fn stored(
    storage: &dyn TaskExecutionsStorage,
    execution_id: &str,
) -> Result<TaskExecutionStorageValue, Failure> {
    storage
        .get_many_by_id(vec![GetByIdRequest {
            execution_id: execution_id.to_owned(),
            filters: None,
        }])
        .await
        .map_err(|e| Failure(e.to_string()))?
        .pop()
        .flatten()
        .ok_or_else(|| Failure(format!("execution {execution_id} not stored")))
}

/// Polls `check` until it holds or `bound` passes.
async fn eventually<F, Fut>(bound: Duration, what: &str, mut check: F) -> ScenarioResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Failure>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure(format!("{what} did not happen within {bound:?}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn opts(id: &str, timeout_ms: u64) -> TaskOptions {
    TaskOptions::new(id, Duration::from_millis(timeout_ms))
}

fn check_times<O>(execution: &TaskExecution<O>, what: &str) -> ScenarioResult {
    let started = execution
        .started_at
        .ok_or_else(|| Failure(format!("{what}: no startedAt")))?;
    let finished = execution
        .finished_at
        .ok_or_else(|| Failure(format!("{what}: no finishedAt")))?;
    ensure!(finished >= started, "{what}: finishedAt before startedAt");
    ensure!(
        execution.execution_id.starts_with("te_"),
        "{what}: execution id {}",
        execution.execution_id
    );
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Name {
    name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct B1Output {
    name: String,
    task_b1_output: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct B2Output {
    name: String,
    task_b1_output: String,
    task_b2_output: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct B3Output {
    task_b1_output: String,
    task_b2_output: String,
    task_b3_output: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AOutput {
    task_a_output: String,
    task_a1_output: String,
    task_a2_output: String,
    task_a3_output: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootOutput {
    root_output: String,
    task_a_output: String,
    task_a1_output: String,
    task_a2_output: String,
    task_a3_output: String,
    task_b1_output: String,
    task_b2_output: String,
    task_b3_output: String,
}

fn hello(task: &'static str, timeout_ms: u64) -> TaskDefinition<Name, String> {
    TaskDefinition::new(opts(task, timeout_ms), move |_, input: Name| async move {
        Ok(format!(
            "Hello from task {}, {}!",
            task.to_uppercase(),
            input.name
        ))
    })
}

/// The original's first scenario: a root parent with a parent child (three children and a
/// finalize task) and a sequential child (three steps), and a root finalize task.
pub async fn root_parent_tree(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let e = &s.executor;
    let b1 = e.task(opts("b1", 5_000), |_, input: Name| async move {
        Ok(B1Output {
            task_b1_output: format!("Hello from task B1, {}!", input.name),
            name: input.name,
        })
    })?;
    let b2 = e.task(opts("b2", 1_000), |_, input: B1Output| async move {
        Ok(B2Output {
            task_b2_output: format!("Hello from task B2, {}!", input.name),
            name: input.name,
            task_b1_output: input.task_b1_output,
        })
    })?;
    let b3 = e.task(opts("b3", 5_000), |_, input: B2Output| async move {
        Ok(B3Output {
            task_b3_output: format!("Hello from task B3, {}!", input.name),
            task_b1_output: input.task_b1_output,
            task_b2_output: input.task_b2_output,
        })
    })?;
    let b: Task<Name, B3Output> =
        e.sequential_tasks(Sequence::new("b", &b1).then(&b2).then(&b3))?;
    let a1 = e.register(hello("a1", 5_000))?;
    let a2 = e.register(hello("a2", 1_000))?;
    let a3 = e.register(hello("a3", 5_000))?;
    let a = e.register(
        ParentTaskDefinition::new(opts("a", 5_000), move |_, input: Name| {
            let (a1, a2, a3) = (a1.clone(), a2.clone(), a3.clone());
            async move {
                Ok(
                    ParentRun::new(format!("Hello from task A, {}!", input.name)).children([
                        child(&a1, input.clone()),
                        child(&a2, input.clone()),
                        child(&a3, input),
                    ]),
                )
            }
        })
        .finalize_task(TaskDefinition::new(
            opts("taskAFinalize", 5_000),
            |_, parent: ParentOutput<String>| async move {
                let [c0, c1, c2] = &parent.children[..] else {
                    return Err(TaskError::non_retryable("expected 3 children"));
                };
                Ok(AOutput {
                    task_a_output: parent.output,
                    task_a1_output: c0.completed_output()?,
                    task_a2_output: c1.completed_output()?,
                    task_a3_output: c2.completed_output()?,
                })
            },
        )),
    )?;
    let root = e.register(
        ParentTaskDefinition::new(opts("root", 5_000), move |_, input: Name| {
            let (a, b) = (a.clone(), b.clone());
            async move {
                Ok(
                    ParentRun::new(format!("Hello from root task, {}!", input.name))
                        .child(child(&a, input.clone()))
                        .child(child(&b, input)),
                )
            }
        })
        .finalize_task(TaskDefinition::new(
            opts("rootFinalize", 5_000),
            |_, parent: ParentOutput<String>| async move {
                let [c0, c1] = &parent.children[..] else {
                    return Err(TaskError::non_retryable("expected 2 children"));
                };
                let a: AOutput = c0.completed_output()?;
                let b: B3Output = c1.completed_output()?;
                Ok(RootOutput {
                    root_output: parent.output,
                    task_a_output: a.task_a_output,
                    task_a1_output: a.task_a1_output,
                    task_a2_output: a.task_a2_output,
                    task_a3_output: a.task_a3_output,
                    task_b1_output: b.task_b1_output,
                    task_b2_output: b.task_b2_output,
                    task_b3_output: b.task_b3_output,
                })
            },
        )),
    )?;
    e.start();
    let handle = e
        .enqueue(
            &root,
            Name {
                name: "world".into(),
            },
        )
        .await?;
    let finished = s.wait(&handle).await?;
    ensure_eq!(
        finished.status,
        TaskExecutionStatus::Completed,
        "root status"
    );
    ensure_eq!(finished.task_id, "root", "root task id");
    let output = finished
        .output
        .clone()
        .ok_or_else(|| Failure("root has no output".into()))?;
    let expected = RootOutput {
        root_output: "Hello from root task, world!".into(),
        task_a_output: "Hello from task A, world!".into(),
        task_a1_output: "Hello from task A1, world!".into(),
        task_a2_output: "Hello from task A2, world!".into(),
        task_a3_output: "Hello from task A3, world!".into(),
        task_b1_output: "Hello from task B1, world!".into(),
        task_b2_output: "Hello from task B2, world!".into(),
        task_b3_output: "Hello from task B3, world!".into(),
    };
    ensure_eq!(output, expected, "root output");
    check_times(&finished, "root")?;
    ensure!(
        finished.waiting_for_children_started_at.is_some(),
        "root: no waitingForChildrenStartedAt"
    );
    ensure!(
        finished.waiting_for_finalize_started_at.is_some(),
        "root: no waitingForFinalizeStartedAt"
    );
    ensure_eq!(finished.children.len(), 2, "root children");
    // The children as stored: a (children + finalize) and b (sequential, three steps).
    let a_value = s.stored(&finished.children[0].execution_id).await?;
    ensure_eq!(a_value.status, TaskExecutionStatus::Completed, "a status");
    ensure!(
        a_value.waiting_for_children_started_at.is_some()
            && a_value.waiting_for_finalize_started_at.is_some()
            && a_value.finished_at >= a_value.started_at,
        "a timestamps: {a_value:?}"
    );
    ensure_eq!(
        a_value.root.as_ref().map(|r| r.execution_id.clone()),
        Some(finished.execution_id.clone()),
        "a's root"
    );
    let b_value = s.stored(&finished.children[1].execution_id).await?;
    ensure_eq!(b_value.status, TaskExecutionStatus::Completed, "b status");
    let steps = b_value.children.clone().unwrap_or_default();
    ensure_eq!(
        steps.iter().map(|c| c.task_id.as_str()).collect::<Vec<_>>(),
        vec!["b1", "b2", "b3"],
        "b steps"
    );
    ensure!(
        steps.iter().all(|c| c.execution_id.starts_with("te_")),
        "b steps not all started: {steps:?}"
    );
    ensure!(
        b_value.waiting_for_children_started_at.is_some()
            && b_value.waiting_for_finalize_started_at.is_none(),
        "b timestamps: {b_value:?}"
    );
    e.shutdown().await;
    Ok(())
}

/// 250 tasks at once.
pub async fn concurrent_tasks(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let mut tasks = Vec::new();
    for i in 0..250 {
        tasks.push(s.executor.task(
            opts(&format!("t{i}"), 5_000),
            move |_, input: String| async move {
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..10))).await;
                Ok(format!("Hello from task T{i}, {input}!"))
            },
        )?);
    }
    s.executor.start();
    // Enqueued at once, as the original does (Promise.all).
    let handles = futures::future::try_join_all(
        tasks
            .iter()
            .map(|task| s.executor.enqueue(task, "world".to_owned())),
    )
    .await?;
    let finished = futures::future::join_all(handles.iter().map(|h| s.wait(h))).await;
    for (i, execution) in finished.into_iter().enumerate() {
        let execution = execution?;
        ensure_eq!(
            execution.status,
            TaskExecutionStatus::Completed,
            format!("status of t{i} (error: {:?})", execution.error)
        );
        ensure_eq!(
            execution.output,
            Some(format!("Hello from task T{i}, world!")),
            "output"
        );
        check_times(&execution, &format!("t{i}"))?;
    }
    s.executor.shutdown().await;
    Ok(())
}

/// Fails twice, then succeeds (`retryAttempts` 2).
pub async fn retry_until_success(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let task = s.executor.task(
        opts("retry", 5_000).with_retry_options(TaskRetryOptions::new(3)),
        |ctx, _: Option<()>| async move {
            if ctx.attempt() < 2 {
                return Err(TaskError::retryable("Failed"));
            }
            Ok("Success".to_owned())
        },
    )?;
    s.executor.start();
    let handle = s.executor.enqueue(&task, None).await?;
    let finished = s.wait(&handle).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::Completed, "status");
    ensure_eq!(finished.output, Some("Success".to_owned()), "output");
    ensure_eq!(finished.retry_attempts, 2, "retry attempts");
    check_times(&finished, "retry")?;
    s.executor.shutdown().await;
    Ok(())
}

fn failing(executor: &Executor) -> Result<Task<Option<()>, ()>, Error> {
    executor.task(opts("failing", 5_000), |_, _: Option<()>| async move {
        Err::<(), _>(TaskError::retryable("Failed"))
    })
}

/// A task that fails.
pub async fn failing_task(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let task = failing(&s.executor)?;
    s.run_to_failure(&task, TaskExecutionStatus::Failed, "failing")
        .await
}

/// A parent whose child fails: its finalize task fails, so the parent is `finalize_failed`.
pub async fn parent_with_failing_child(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let failing = failing(&s.executor)?;
    let parent = s.executor.register(
        ParentTaskDefinition::new(
            opts("parentWithFailingChild", 5_000),
            move |_, _: Option<()>| {
                let failing = failing.clone();
                async move { Ok(ParentRun::new(()).child(child(&failing, None))) }
            },
        )
        .finalize_task(TaskDefinition::new(
            opts("parentWithFailingChildFinalize", 1_000),
            |_, parent: ParentOutput<()>| async move {
                if !parent.children[0].is_completed() {
                    return Err(TaskError::retryable("Failed"));
                }
                Ok("success".to_owned())
            },
        )),
    )?;
    s.run_to_failure(
        &parent,
        TaskExecutionStatus::FinalizeFailed,
        "parentWithFailingChild",
    )
    .await
}

/// A parent whose finalize task fails.
pub async fn parent_with_failing_finalize_task(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let a1 = s.executor.register(hello("a1", 5_000))?;
    let parent = s.executor.register(
        ParentTaskDefinition::new(
            opts("parentWithFailingFinalizeTask", 5_000),
            move |_, _: Option<()>| {
                let a1 = a1.clone();
                async move {
                    Ok(ParentRun::new(()).child(child(
                        &a1,
                        Name {
                            name: "world".into(),
                        },
                    )))
                }
            },
        )
        .finalize_task(TaskDefinition::new(
            opts("parentWithFailingFinalizeTaskFinalize", 1_000),
            |_, _: ParentOutput<()>| async move { Err::<(), _>(TaskError::retryable("Failed")) },
        )),
    )?;
    s.run_to_failure(
        &parent,
        TaskExecutionStatus::FinalizeFailed,
        "parentWithFailingFinalizeTask",
    )
    .await
}

/// A parent with 500 children: the output lists them in order.
pub async fn parent_with_500_children(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let child_task = s.executor.task(
        opts("concurrent_child", 10_000),
        |_, index: u32| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(index)
        },
    )?;
    let parent = s.executor.register(ParentTaskDefinition::new(
        opts("concurrent_parent", 1_000),
        move |_, _: Option<()>| {
            let child_task = child_task.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(ParentRun::new(()).children((0..500).map(|i| child(&child_task, i))))
            }
        },
    ))?;
    s.executor.start();
    let handle = s.executor.enqueue(&parent, None).await?;
    let finished = wait_for(&handle, s.bound(60), Duration::from_millis(50)).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::Completed, "status");
    let output = finished
        .output
        .clone()
        .ok_or_else(|| Failure("no output".into()))?;
    ensure_eq!(output.children.len(), 500, "children");
    for (i, c) in output.children.iter().enumerate() {
        ensure_eq!(c.status, TaskExecutionStatus::Completed, "child status");
        ensure_eq!(c.output_as::<usize>().ok(), Some(i), "child output");
    }
    ensure!(
        finished.started_at.is_some() && finished.waiting_for_children_started_at.is_some(),
        "timestamps"
    );
    ensure!(
        finished.waiting_for_finalize_started_at.is_none(),
        "no finalize, yet waitingForFinalizeStartedAt"
    );
    s.executor.shutdown().await;
    Ok(())
}

/// A looping task whose iteration is done once a timer fired.
pub async fn looping_task(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    // The loop is done once a timer set off by the first iteration has fired.
    let value = Arc::new(AtomicU64::new(0));
    let timer_started = Arc::new(std::sync::Once::new());
    let (seen, once) = (Arc::clone(&value), Arc::clone(&timer_started));
    let iteration = s.executor.task(
        opts("iteration", 1_000).with_sleep_before_run(Duration::from_millis(50)),
        move |_, _: Option<()>| {
            let current = seen.load(Ordering::SeqCst);
            let timer = Arc::clone(&seen);
            once.call_once(move || {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    timer.store(10, Ordering::SeqCst);
                });
            });
            async move {
                Ok(if current == 0 {
                    LoopIteration::NotDone
                } else {
                    LoopIteration::Done(current)
                })
            }
        },
    )?;
    let looping = s.executor.looping_task("looping", &iteration, 20, None)?;
    s.executor.start();
    let handle = s.executor.enqueue(&looping, None).await?;
    let finished = s.wait(&handle).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::Completed, "status");
    ensure_eq!(finished.output, Some(LoopOutput::Success(10)), "output");
    check_times(&finished, "looping")?;
    ensure!(
        finished.waiting_for_children_started_at.is_some()
            && finished.waiting_for_finalize_started_at.is_some(),
        "timestamps"
    );
    ensure!(
        finished.children.len() >= 2 && finished.children.len() <= 20,
        "iterations: {}",
        finished.children.len()
    );
    s.executor.shutdown().await;
    Ok(())
}

/// A parent with a sleeping child woken up from outside.
pub async fn sleeping_child_woken_up(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let sleeping = s
        .executor
        .sleeping_task::<String>("test", Duration::from_secs(300))?;
    let sleeping_child = sleeping.clone();
    let parent = s.executor.register(
        ParentTaskDefinition::new(opts("parent", 1_000), move |_, _: Option<()>| {
            let sleeping = sleeping_child.clone();
            async move {
                Ok(ParentRun::new("parent_output".to_owned())
                    .child(child(&sleeping, "test_unique_id".to_owned())))
            }
        })
        .finalize_task(TaskDefinition::new(
            opts("finalizeTask", 1_000),
            |_, parent: ParentOutput<String>| async move {
                parent.children[0]
                    .completed_output::<String>()
                    .map_err(|_| TaskError::retryable("Finalize task failed"))
            },
        )),
    )?;
    s.executor.start();
    let handle = s.executor.enqueue(&parent, None).await?;
    eventually(s.bound(10), "parent waiting for children", || async {
        let execution = handle.execution().await?;
        Ok(execution.is_finished || execution.status == TaskExecutionStatus::WaitingForChildren)
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let woken = s
        .executor
        .wake_up_sleeping_task(
            &sleeping,
            "test_unique_id",
            WakeUp::Completed("sleeping_task_output".to_owned()),
        )
        .await?;
    ensure_eq!(
        woken.status,
        TaskExecutionStatus::Completed,
        "sleeping status"
    );
    ensure_eq!(
        woken.output,
        Some("sleeping_task_output".to_owned()),
        "sleeping output"
    );
    ensure!(
        woken.waiting_for_children_started_at.is_none()
            && woken.waiting_for_finalize_started_at.is_none(),
        "sleeping timestamps"
    );
    let finished = s.wait(&handle).await?;
    ensure_eq!(
        finished.status,
        TaskExecutionStatus::Completed,
        "parent status"
    );
    ensure_eq!(
        finished.output,
        Some("sleeping_task_output".to_owned()),
        "parent output"
    );
    // Waking it up again returns it as it is.
    let again = s
        .executor
        .wake_up_sleeping_task(&sleeping, "test_unique_id", WakeUp::Failed("late".into()))
        .await?;
    ensure_eq!(again.status, TaskExecutionStatus::Completed, "woken twice");
    s.executor.shutdown().await;
    Ok(())
}

/// Closing: processed, then closed after the processing; the child ran exactly once.
pub async fn closing(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let runs = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&runs);
    let task = s
        .executor
        .task(opts("closeTestTask", 1_000), move |_, _: Option<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok("test".to_owned()) }
        })?;
    let parent = s.executor.register(ParentTaskDefinition::new(
        opts("closeTestParentTask", 1_000),
        move |_, _: Option<()>| {
            let task = task.clone();
            async move { Ok(ParentRun::new("parent_output".to_owned()).child(child(&task, None))) }
        },
    ))?;
    s.executor.start();
    let handle = s.executor.enqueue(&parent, None).await?;
    let finished = s.wait(&handle).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::Completed, "status");
    ensure_eq!(
        finished.output.as_ref().map(|o| o.output.clone()),
        Some("parent_output".to_owned()),
        "output"
    );
    let deadline = Instant::now() + s.bound(10);
    let value = loop {
        let value = s.stored(handle.execution_id()).await?;
        ensure_eq!(
            value.status,
            TaskExecutionStatus::Completed,
            "stored status"
        );
        ensure_eq!(
            value.on_children_finished_processing_status,
            OnChildrenFinishedProcessingStatus::Processed,
            "processing status"
        );
        ensure!(
            value
                .on_children_finished_processing_finished_at
                .is_some_and(|at| at > 0),
            "no processing finish time"
        );
        if value.close_status == CloseStatus::Closed {
            break value;
        }
        ensure!(Instant::now() < deadline, "not closed in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    ensure!(
        value.closed_at > value.on_children_finished_processing_finished_at,
        "closedAt {:?} not after ocfpFinishedAt {:?}",
        value.closed_at,
        value.on_children_finished_processing_finished_at
    );
    // The child is closed too and never ran again.
    let child_id = finished.children[0].execution_id.clone();
    eventually(s.bound(10), "child closed", || async {
        Ok(s.stored(&child_id).await?.close_status == CloseStatus::Closed)
    })
    .await?;
    ensure_eq!(runs.load(Ordering::SeqCst), 1, "child runs");
    s.executor.shutdown().await;
    Ok(())
}

/// Retry delays follow `base × multiplier^n` capped at the maximum; `maxAttempts` counts
/// retries.
pub async fn retry_delays_follow_the_formula(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let starts = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&starts);
    let storage = Arc::clone(&s.storage);
    let task = s.executor.task(
        opts("delays", 5_000).with_retry_options(
            TaskRetryOptions::new(3)
                .with_base_delay(Duration::from_millis(100))
                .with_delay_multiplier(2.0)
                .with_max_delay(Duration::from_millis(300)),
        ),
        move |_, _: Option<()>| {
            recorder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(storage.now_millis());
            async move { Err::<(), _>(TaskError::retryable("again")) }
        },
    )?;
    s.executor.start();
    let finished = s.wait(&s.executor.enqueue(&task, None).await?).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::Failed, "status");
    ensure_eq!(finished.retry_attempts, 3, "retry attempts");
    let starts = starts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ensure_eq!(starts.len(), 4, "runs (maxAttempts + 1)");
    let slack = 1_000 * u64::from(s.scale);
    for (i, expected) in [100_u64, 200, 300].into_iter().enumerate() {
        let gap = starts[i + 1] - starts[i];
        ensure!(
            gap >= expected && gap < expected + slack,
            "gap {i}: {gap} ms, expected {expected} ms (+ < {slack} ms)"
        );
    }
    s.executor.shutdown().await;
    Ok(())
}

/// Counts drops of a run's future.
struct DropCounter(Arc<AtomicU32>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A run longer than its timeout is dropped and retried; after the retries, `timed_out`.
pub async fn timeouts_give_timed_out_after_retries(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let runs = Arc::new(AtomicU32::new(0));
    let drops = Arc::new(AtomicU32::new(0));
    let signals = Arc::new(Mutex::new(Vec::<Signal>::new()));
    let (r, d, sig) = (Arc::clone(&runs), Arc::clone(&drops), Arc::clone(&signals));
    let task = s.executor.task(
        opts("slow", 100).with_retry_options(TaskRetryOptions::new(1)),
        move |ctx, _: Option<()>| {
            r.fetch_add(1, Ordering::SeqCst);
            sig.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ctx.cancellation_signal().clone());
            let guard = DropCounter(Arc::clone(&d));
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            }
        },
    )?;
    s.executor.start();
    let finished = s.wait(&s.executor.enqueue(&task, None).await?).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::TimedOut, "status");
    ensure_eq!(
        finished.error.as_ref().map(|e| e.error_type()),
        Some(ErrorType::TimedOut),
        "error type"
    );
    ensure_eq!(finished.retry_attempts, 1, "retry attempts");
    ensure_eq!(runs.load(Ordering::SeqCst), 2, "runs");
    ensure_eq!(drops.load(Ordering::SeqCst), 2, "dropped futures");
    ensure!(
        signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .all(Signal::is_fired),
        "a timed out run's cancellation signal did not fire"
    );
    s.executor.shutdown().await;
    Ok(())
}

/// A non-retryable error fails at once, retries left or not.
pub async fn non_retryable_errors_stop_at_once(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let runs = Arc::new(AtomicU32::new(0));
    let r = Arc::clone(&runs);
    let task = s.executor.task(
        opts("fatal", 1_000).with_retry_options(TaskRetryOptions::new(5)),
        move |_, _: Option<()>| {
            r.fetch_add(1, Ordering::SeqCst);
            async move { Err::<(), _>(TaskError::non_retryable("Nope")) }
        },
    )?;
    s.executor.start();
    let finished = s.wait(&s.executor.enqueue(&task, None).await?).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::Failed, "status");
    ensure_eq!(finished.retry_attempts, 0, "retry attempts");
    ensure_eq!(runs.load(Ordering::SeqCst), 1, "runs");
    ensure!(
        finished.error.as_ref().is_some_and(|e| !e.is_retryable()),
        "error: {:?}",
        finished.error
    );
    s.executor.shutdown().await;
    Ok(())
}

fn blocking_task(
    executor: &Executor,
    id: &str,
    started: &Arc<AtomicU32>,
    drops: &Arc<AtomicU32>,
    completed: &Arc<AtomicU32>,
) -> Result<Task<Option<()>, ()>, Error> {
    let (s, d, c) = (
        Arc::clone(started),
        Arc::clone(drops),
        Arc::clone(completed),
    );
    executor.task(opts(id, 60_000), move |_, _: Option<()>| {
        s.fetch_add(1, Ordering::SeqCst);
        let guard = DropCounter(Arc::clone(&d));
        let c = Arc::clone(&c);
        async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(30)).await;
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    })
}

/// Cancelling a running execution drops its future; nothing is written after the cancel.
pub async fn cancel_running_task(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let (started, drops, completed) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
    );
    let task = blocking_task(&s.executor, "blocking", &started, &drops, &completed)?;
    s.executor.start();
    let handle = s.executor.enqueue(&task, None).await?;
    eventually(s.bound(10), "run started", || async {
        Ok(started.load(Ordering::SeqCst) == 1)
    })
    .await?;
    handle.cancel().await?;
    let finished = s.wait(&handle).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::Cancelled, "status");
    ensure_eq!(
        finished.error.as_ref().map(|e| e.error_type()),
        Some(ErrorType::Cancelled),
        "error type"
    );
    eventually(s.bound(10), "future dropped", || async {
        Ok(drops.load(Ordering::SeqCst) == 1)
    })
    .await?;
    ensure!(
        s.executor.running_execution_ids().is_empty(),
        "still running"
    );
    let before = s.stored(handle.execution_id()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = s.stored(handle.execution_id()).await?;
    ensure_eq!(after.status, TaskExecutionStatus::Cancelled, "status later");
    ensure!(after.output.is_none(), "output written after the cancel");
    ensure_eq!(after.retry_attempts, before.retry_attempts, "attempts");
    ensure_eq!(completed.load(Ordering::SeqCst), 0, "the run went on");
    ensure_eq!(started.load(Ordering::SeqCst), 1, "runs");
    s.executor.shutdown().await;
    Ok(())
}

/// Cancelling a parent cancels its unfinished children (and drops their futures).
pub async fn cancel_parent_cancels_children(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let (started, drops, completed) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
    );
    let blocking = blocking_task(&s.executor, "blocking_child", &started, &drops, &completed)?;
    let parent = s.executor.register(ParentTaskDefinition::new(
        opts("cancelled_parent", 5_000),
        move |_, _: Option<()>| {
            let blocking = blocking.clone();
            async move {
                Ok(ParentRun::new(())
                    .child(child(&blocking, None))
                    .child(child(&blocking, None)))
            }
        },
    ))?;
    s.executor.start();
    let handle = s.executor.enqueue(&parent, None).await?;
    eventually(s.bound(10), "children started", || async {
        Ok(started.load(Ordering::SeqCst) == 2)
    })
    .await?;
    handle.cancel().await?;
    let finished = s.wait(&handle).await?;
    ensure_eq!(
        finished.status,
        TaskExecutionStatus::Cancelled,
        "parent status"
    );
    for summary in &finished.children {
        let id = summary.execution_id.clone();
        eventually(s.bound(10), "child cancelled", || async {
            Ok(s.stored(&id).await?.status == TaskExecutionStatus::Cancelled)
        })
        .await?;
    }
    eventually(s.bound(10), "children futures dropped", || async {
        Ok(drops.load(Ordering::SeqCst) == 2)
    })
    .await?;
    ensure_eq!(completed.load(Ordering::SeqCst), 0, "children went on");
    s.executor.shutdown().await;
    Ok(())
}

/// Shutdown: a task that watches the signal and returns still has its result written; one
/// that does not is aborted after the drain bound; no background loop survives; the executor
/// refuses new work.
pub async fn shutdown(factory: &dyn StorageFactory) -> ScenarioResult {
    let drain = Duration::from_millis(300);
    let s = setup_with(
        factory,
        factory
            .executor_options()
            .with_shutdown_drain_timeout(drain),
    )
    .await?;
    let started = Arc::new(AtomicU32::new(0));
    let st = Arc::clone(&started);
    let cooperative = s
        .executor
        .task(opts("cooperative", 60_000), move |ctx, _: Option<()>| {
            st.fetch_add(1, Ordering::SeqCst);
            async move {
                ctx.shutdown_signal().fired().await;
                Ok("drained".to_owned())
            }
        })?;
    let (drops, completed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let stubborn = blocking_task(&s.executor, "stubborn", &started, &drops, &completed)?;
    s.executor.start();
    let cooperative_handle = s.executor.enqueue(&cooperative, None).await?;
    let stubborn_handle = s.executor.enqueue(&stubborn, None).await?;
    eventually(s.bound(10), "both running", || async {
        Ok(started.load(Ordering::SeqCst) == 2)
    })
    .await?;
    let begun = Instant::now();
    s.executor.shutdown().await;
    let took = begun.elapsed();
    ensure!(
        took >= drain && took < drain + s.bound(5),
        "shutdown took {took:?} with a drain bound of {drain:?}"
    );
    let cooperative_value = s.stored(cooperative_handle.execution_id()).await?;
    ensure_eq!(
        cooperative_value.status,
        TaskExecutionStatus::Completed,
        "cooperative status"
    );
    ensure_eq!(
        cooperative_value.output.as_deref(),
        Some(r#"{"json":"drained"}"#),
        "cooperative output"
    );
    ensure_eq!(drops.load(Ordering::SeqCst), 1, "stubborn future dropped");
    ensure_eq!(completed.load(Ordering::SeqCst), 0, "stubborn went on");
    ensure_eq!(
        s.stored(stubborn_handle.execution_id()).await?.status,
        TaskExecutionStatus::Running,
        "stubborn status (left to its lease)"
    );
    ensure!(s.executor.running_execution_count() == 0, "still running");
    let calls = |m: &crate::StorageMetrics| m.values().map(|o| o.calls).sum::<u64>();
    let before = calls(&s.executor.storage_metrics());
    ensure!(before > 0, "no storage calls counted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure_eq!(
        calls(&s.executor.storage_metrics()),
        before,
        "storage calls after shutdown"
    );
    ensure!(!s.executor.is_running(), "still running after shutdown");
    ensure!(
        matches!(
            s.executor.enqueue(&cooperative, None).await,
            Err(Error::ShutDown)
        ),
        "enqueue after shutdown"
    );
    ensure!(
        matches!(
            s.executor
                .task(opts("late", 1_000), |_, _: Option<()>| async { Ok(()) }),
            Err(Error::ShutDown)
        ),
        "register after shutdown"
    );
    ensure!(
        matches!(
            s.executor
                .handle(&cooperative, cooperative_handle.execution_id())
                .await,
            Err(Error::ShutDown)
        ),
        "handle after shutdown"
    );
    // Idempotent; start after shutdown does nothing.
    s.executor.shutdown().await;
    s.executor.start();
    ensure!(!s.executor.is_running(), "started after shutdown");
    Ok(())
}

/// Decision: an expired lease counts as an attempt. The executor holding two executions is
/// gone (aborted); another one recovers them when their leases expire: the one without retry
/// attempts left fails, the other runs again as attempt 1.
pub async fn expired_lease_counts_as_an_attempt(factory: &dyn StorageFactory) -> ScenarioResult {
    const LEASE_TIMEOUT_MS: u64 = 4_000;
    // The first executor goes away at once (processes and runs aborted), before the runs'
    // own timeouts could fire: the timeout is long enough (4 s) that a loaded 2-core machine
    // still starts both runs and shuts the executor down within it (at 1 s the first
    // executor's own timeout fired first under CI load, giving `timed_out`).
    let options = factory
        .executor_options()
        .with_expire_leeway(Duration::ZERO)
        .with_shutdown_drain_timeout(Duration::ZERO)
        .with_background_process_shutdown_timeout(Duration::ZERO);
    let s = setup_with(factory, options.clone()).await?;
    let started = Arc::new(AtomicU32::new(0));
    let register = |executor: &Executor, hang: bool, started: Arc<AtomicU32>| {
        let mut tasks = Vec::new();
        for max_attempts in [0, 1] {
            let started = Arc::clone(&started);
            tasks.push(
                executor.task(
                    opts(&format!("lease_{max_attempts}"), LEASE_TIMEOUT_MS)
                        .with_retry_options(TaskRetryOptions::new(max_attempts)),
                    move |ctx, _: Option<()>| {
                        started.fetch_add(1, Ordering::SeqCst);
                        async move {
                            if hang {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                            }
                            Ok(ctx.attempt())
                        }
                    },
                )?,
            );
        }
        Ok::<_, Error>(tasks)
    };
    let first = register(&s.executor, true, Arc::clone(&started))?;
    s.executor.start();
    let h0 = s.executor.enqueue(&first[0], None).await?;
    let h1 = s.executor.enqueue(&first[1], None).await?;
    eventually(s.bound(10), "both running", || async {
        Ok(started.load(Ordering::SeqCst) == 2)
    })
    .await?;
    s.executor.shutdown().await;
    for handle in [&h0, &h1] {
        let left = handle.execution().await?;
        ensure_eq!(
            left.status,
            TaskExecutionStatus::Running,
            "left running by the aborted executor (its own timeout must not have fired)"
        );
    }
    let second_storage = s.backend.client().await?;
    let second = Executor::with_shared_storage(second_storage, options)?;
    let rerun = Arc::new(AtomicU32::new(0));
    let tasks = register(&second, false, Arc::clone(&rerun))?;
    second.start();
    let h0 = second.handle(&tasks[0], h0.execution_id()).await?;
    let h1 = second.handle(&tasks[1], h1.execution_id()).await?;
    let f0 = s.wait(&h0).await?;
    let f1 = s.wait(&h1).await?;
    ensure_eq!(
        f0.status,
        TaskExecutionStatus::Failed,
        "no attempts left: status"
    );
    ensure!(
        f0.error
            .as_ref()
            .is_some_and(|e| e.message().contains("expired")),
        "no attempts left: error {:?}",
        f0.error
    );
    ensure_eq!(
        f1.status,
        TaskExecutionStatus::Completed,
        "one attempt left: status"
    );
    ensure_eq!(
        f1.output,
        Some(1),
        "one attempt left: attempt seen by the run"
    );
    ensure_eq!(f1.retry_attempts, 1, "one attempt left: retry attempts");
    ensure_eq!(
        rerun.load(Ordering::SeqCst),
        1,
        "runs on the second executor"
    );
    second.shutdown().await;
    Ok(())
}

/// Three executors on separate clients of one storage, 1,000 tasks: every task completes,
/// each runs exactly once, and the work is spread.
pub async fn several_executors(factory: &dyn StorageFactory) -> ScenarioResult {
    const TASKS: u32 = 1_000;
    let backend = factory.create().await?;
    let runs: Arc<Mutex<HashMap<u32, u32>>> = Arc::new(Mutex::new(HashMap::new()));
    let per_executor: Arc<Vec<AtomicU32>> = Arc::new((0..3).map(|_| AtomicU32::new(0)).collect());
    let mut executors = Vec::new();
    let mut tasks = Vec::new();
    for index in 0..3 {
        let storage = backend.client().await?;
        let executor = Executor::with_shared_storage(storage, factory.executor_options())?;
        let (runs, per_executor) = (Arc::clone(&runs), Arc::clone(&per_executor));
        tasks.push(executor.task(opts("shared", 10_000), move |_, input: u32| {
            *runs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(input)
                .or_default() += 1;
            per_executor[index].fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(fastrand::u64(1..5))).await;
                Ok(input * 2)
            }
        })?);
        executor.start();
        executors.push(executor);
    }
    let mut handles = Vec::new();
    for chunk in (0..TASKS).collect::<Vec<_>>().chunks(50) {
        let enqueued = futures::future::try_join_all(chunk.iter().map(|&i| {
            let which = (i % 3) as usize;
            executors[which].enqueue(&tasks[which], i)
        }))
        .await?;
        handles.extend(enqueued);
    }
    // Waiting on 1,000 handles would poll 1,000 times per interval: read them in batches.
    let bound = Duration::from_secs(60 * u64::from(factory.time_scale().max(1)));
    let reader = backend.client().await?;
    let deadline = Instant::now() + bound;
    let ids: Vec<String> = handles
        .iter()
        .map(|h| h.execution_id().to_owned())
        .collect();
    loop {
        let mut finished = 0;
        for chunk in ids.chunks(100) {
            let values = reader
                .get_many_by_id(
                    chunk
                        .iter()
                        .map(|id| GetByIdRequest {
                            execution_id: id.clone(),
                            filters: None,
                        })
                        .collect(),
                )
                .await
                .map_err(|e| Failure(e.to_string()))?;
            finished += values.iter().flatten().filter(|v| v.is_finished).count();
        }
        if finished == ids.len() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{finished} of {TASKS} finished within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (i, handle) in handles.iter().enumerate() {
        let execution = handle.execution().await?;
        ensure!(
            execution.status == TaskExecutionStatus::Completed,
            "task {i}: {:?} ({:?})",
            execution.status,
            execution.error
        );
        ensure_eq!(execution.output, Some(i as u32 * 2), "output");
    }
    let runs = runs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ensure_eq!(runs.len(), TASKS as usize, "distinct tasks run");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    ensure!(twice.is_empty(), "tasks not run exactly once: {twice:?}");
    let spread: Vec<u32> = per_executor
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect();
    ensure!(spread.iter().all(|n| *n > 0), "work not spread: {spread:?}");
    for executor in &executors {
        executor.shutdown().await;
    }
    Ok(())
}

/// The stored forms the original writes and reads: superjson's `{"json": …}`.
pub async fn interop_forms(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let task = s
        .executor
        .task(opts("my-task", 30_000), |_, input: Name| async move {
            Ok(format!("Hello, {}!", input.name))
        })?;
    let child_task = s
        .executor
        .task(opts("c", 5_000), |_, _: Option<()>| async move { Ok(1) })?;
    let parent = s.executor.register(ParentTaskDefinition::new(
        opts("p", 5_000),
        move |_, _: Option<()>| {
            let child_task = child_task.clone();
            async move { Ok(ParentRun::new("p".to_owned()).child(child(&child_task, None))) }
        },
    ))?;
    s.executor.start();
    let handle = s
        .executor
        .enqueue(
            &task,
            Name {
                name: "World".into(),
            },
        )
        .await?;
    let finished = s.wait(&handle).await?;
    ensure_eq!(finished.output, Some("Hello, World!".to_owned()), "output");
    let value = s.stored(handle.execution_id()).await?;
    ensure_eq!(value.input, r#"{"json":{"name":"World"}}"#, "stored input");
    ensure_eq!(
        value.output.as_deref(),
        Some(r#"{"json":"Hello, World!"}"#),
        "stored output"
    );
    // An execution as the TypeScript executor enqueues it.
    let now = s.storage.now_millis();
    let ts = TaskExecutionStorageValue::new_execution(
        NewTaskExecution {
            root: None,
            parent: None,
            task_id: "my-task".into(),
            execution_id: "te_typescriptEnqueued000000".into(),
            is_sleeping_task: false,
            sleeping_task_unique_id: None,
            retry_options: crate::options::no_retries(),
            sleep_ms_before_run: 0,
            timeout_ms: 30_000,
            are_children_sequential: false,
            input: r#"{"json":{"name":"TypeScript","extra":null},"meta":{"values":{"extra":["undefined"]}}}"#.into(),
        },
        now,
    );
    s.storage
        .insert_many(vec![ts])
        .await
        .map_err(|e| Failure(e.to_string()))?;
    let ts_handle = s
        .executor
        .handle(&task, "te_typescriptEnqueued000000")
        .await?;
    let ts_finished = s.wait(&ts_handle).await?;
    ensure_eq!(
        ts_finished.output,
        Some("Hello, TypeScript!".to_owned()),
        "output of a TypeScript-enqueued execution"
    );
    // A parent's output.
    let parent_handle = s.executor.enqueue(&parent, None).await?;
    let parent_finished = s.wait(&parent_handle).await?;
    let child_id = parent_finished.children[0].execution_id.clone();
    let stored_parent = s.stored(parent_handle.execution_id()).await?;
    let expected = format!(
        r#"{{"json":{{"output":"p","children":[{{"taskId":"c","executionId":"{child_id}","status":"completed","output":1}}]}}}}"#
    );
    ensure_eq!(
        stored_parent.output.as_deref(),
        Some(expected.as_str()),
        "stored parent output"
    );
    // What the original writes for a parent output of undefined reads as None.
    let codec = crate::serializer::SuperjsonSerializer;
    let read: ParentOutput<Option<String>> = crate::serializer::from_value(
        crate::Serializer::deserialize(
            &codec,
            r#"{"json":{"children":[]},"meta":{"values":{"output":["undefined"]}}}"#,
        )
        .map_err(|e| Failure(e.to_string()))?,
    )
    .map_err(|e| Failure(e.to_string()))?;
    ensure_eq!(read.output, None, "undefined output");
    s.executor.shutdown().await;
    Ok(())
}

/// Decision: child options are validated like enqueue options; a parent with an invalid
/// child fails (not retried) with a clear error.
pub async fn child_options_are_validated(factory: &dyn StorageFactory) -> ScenarioResult {
    let s = setup(factory).await?;
    let child_task = s
        .executor
        .task(opts("valid_child", 5_000), |_, _: Option<()>| async move {
            Ok(())
        })?;
    let parent = s.executor.register(ParentTaskDefinition::new(
        opts("invalid_children", 5_000).with_retry_options(TaskRetryOptions::new(3)),
        move |_, _: Option<()>| {
            let child_task = child_task.clone();
            async move {
                Ok(ParentRun::new(()).child(
                    child(&child_task, None)
                        .with_options(EnqueueOptions::default().with_timeout(Duration::ZERO)),
                ))
            }
        },
    ))?;
    s.executor.start();
    let finished = s.wait(&s.executor.enqueue(&parent, None).await?).await?;
    ensure_eq!(finished.status, TaskExecutionStatus::Failed, "status");
    ensure_eq!(finished.retry_attempts, 0, "retried");
    ensure!(
        finished
            .error
            .as_ref()
            .is_some_and(|e| e.message().contains("timeout")),
        "error: {:?}",
        finished.error
    );
    s.executor.shutdown().await;
    Ok(())
}
