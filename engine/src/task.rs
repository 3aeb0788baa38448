//! Tasks: their definitions (what runs), the typed handles registration gives back
//! ([`Task`], [`SleepingTask`]), children, parent outputs, sequences and loops.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::context::TaskContext;
use crate::error::TaskError;
use crate::options::{EnqueueOptions, TaskOptions, ValidatedTaskOptions};
use crate::serializer::{from_value, to_json, SerializationError};
use crate::storage::{ExecutionError, TaskExecutionStatus};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a run produced: the output's JSON text and the children to spawn.
pub(crate) struct RunResult {
    pub output_json: String,
    pub children: Vec<Child>,
}

/// A type-erased run function: context and JSON input to output and children.
pub(crate) type RunFn =
    Arc<dyn Fn(TaskContext, Value) -> BoxFuture<Result<RunResult, TaskError>> + Send + Sync>;

/// A type-erased finalize function: the parent output (JSON) to the output's JSON text.
pub(crate) type FinalizeFn =
    Arc<dyn Fn(Value) -> BoxFuture<Result<String, TaskError>> + Send + Sync>;

/// The kinds of task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Task,
    Sleeping,
    Parent,
    /// Steps by task id, run one after the other.
    Sequential(Vec<String>),
    /// Runs `iteration` until it is done, at most `max_attempts` times.
    Looping {
        iteration: String,
        max_attempts: u32,
        sleep_ms_before_run: Option<u64>,
    },
}

impl Kind {
    /// Whether the default output (without finalize) is `{output, children}`.
    pub(crate) fn is_parent(&self) -> bool {
        matches!(
            self,
            Self::Parent | Self::Sequential(_) | Self::Looping { .. }
        )
    }
}

/// A task definition before registration.
#[derive(Clone)]
pub(crate) struct Definition {
    pub kind: Kind,
    pub options: TaskOptions,
    pub run: Option<RunFn>,
    pub finalize: Option<FinalizeDefinition>,
}

#[derive(Clone)]
pub(crate) enum FinalizeDefinition {
    Function(FinalizeFn),
    Task(Box<Definition>),
}

/// A registered task.
pub(crate) struct Registered {
    pub kind: Kind,
    pub id: String,
    pub options: ValidatedTaskOptions,
    pub run: Option<RunFn>,
    pub finalize: Option<RegisteredFinalize>,
}

pub(crate) enum RegisteredFinalize {
    Function(FinalizeFn),
    /// The id of the registered finalize task.
    Task(String),
}

/// A task to register with [`Executor::register`](crate::Executor::register): a plain task
/// (`I` → `O`), or a parent task with its finalize.
pub struct TaskDefinition<I, O> {
    pub(crate) definition: Definition,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> TaskDefinition<I, O>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
{
    /// A task whose run turns an input into an output.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use durable_execution::{TaskDefinition, TaskOptions, TaskError};
    /// let greet = TaskDefinition::new(
    ///     TaskOptions::new("greet", Duration::from_secs(30)),
    ///     |_ctx, name: String| async move { Ok::<_, TaskError>(format!("Hello, {name}!")) },
    /// );
    /// ```
    pub fn new<F, Fut>(options: TaskOptions, run: F) -> Self
    where
        F: Fn(TaskContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
    {
        let run: RunFn = Arc::new(move |ctx, input| {
            let input = decode_input::<I>(input);
            match input {
                Ok(input) => {
                    let future = run(ctx, input);
                    Box::pin(async move {
                        let output = future.await?;
                        Ok(RunResult {
                            output_json: encode_output(&output)?,
                            children: Vec::new(),
                        })
                    })
                }
                Err(error) => Box::pin(async move { Err(error) }),
            }
        });
        Self::from_definition(Definition {
            kind: Kind::Task,
            options,
            run: Some(run),
            finalize: None,
        })
    }
}

impl<I, O> TaskDefinition<I, O> {
    pub(crate) fn from_definition(definition: Definition) -> Self {
        Self {
            definition,
            _types: PhantomData,
        }
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.definition.options.id
    }
}

fn decode_input<I: DeserializeOwned>(input: Value) -> Result<I, TaskError> {
    from_value(input).map_err(|e| TaskError::non_retryable(format!("Invalid input: {e}")))
}

fn encode_output<O: Serialize + ?Sized>(output: &O) -> Result<String, TaskError> {
    to_json(output).map_err(|e| TaskError::non_retryable(format!("Invalid output: {e}")))
}

/// A parent task before registration: its run returns an output `R` and children, which run in
/// parallel. Without finalize, the parent's output is [`ParentOutput<R>`]; with
/// [`finalize_fn`](Self::finalize_fn) or [`finalize_task`](Self::finalize_task) it is the
/// finalize's output.
pub struct ParentTaskDefinition<I, R> {
    definition: Definition,
    _types: PhantomData<fn(I) -> R>,
}

impl<I, R> ParentTaskDefinition<I, R>
where
    I: DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    /// A parent task whose run returns a [`ParentRun`].
    pub fn new<F, Fut>(options: TaskOptions, run: F) -> Self
    where
        F: Fn(TaskContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ParentRun<R>, TaskError>> + Send + 'static,
    {
        let run: RunFn = Arc::new(move |ctx, input| match decode_input::<I>(input) {
            Ok(input) => {
                let future = run(ctx, input);
                Box::pin(async move {
                    let ParentRun { output, children } = future.await?;
                    Ok(RunResult {
                        output_json: encode_output(&output)?,
                        children,
                    })
                })
            }
            Err(error) => Box::pin(async move { Err(error) }),
        });
        Self {
            definition: Definition {
                kind: Kind::Parent,
                options,
                run: Some(run),
                finalize: None,
            },
            _types: PhantomData,
        }
    }

    /// Finalizes with a function of the run's output and the finished children (every child,
    /// whatever its status). It runs inline, without retries; an error makes the parent
    /// `finalize_failed`.
    pub fn finalize_fn<O, F, Fut>(mut self, finalize: F) -> TaskDefinition<I, O>
    where
        O: Serialize + Send + 'static,
        F: Fn(ParentOutput<R>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
    {
        let finalize: FinalizeFn = Arc::new(move |input| match from_value(input) {
            Ok(input) => {
                let future = finalize(input);
                Box::pin(async move { encode_output(&future.await?) })
            }
            Err(error) => Box::pin(async move {
                Err(TaskError::non_retryable(format!(
                    "Invalid finalize input: {error}"
                )))
            }),
        });
        self.definition.finalize = Some(FinalizeDefinition::Function(finalize));
        TaskDefinition::from_definition(self.definition)
    }

    /// Finalizes with a task (a plain or a parent task, registered under its own id along with
    /// this one) whose input is the run's output and the finished children. The parent
    /// completes with its output, or is `finalize_failed` with its error.
    pub fn finalize_task<O>(
        mut self,
        finalize: impl Into<TaskDefinition<ParentOutput<R>, O>>,
    ) -> TaskDefinition<I, O> {
        let finalize = finalize.into().definition;
        self.definition.finalize = Some(FinalizeDefinition::Task(Box::new(finalize)));
        TaskDefinition::from_definition(self.definition)
    }
}

impl<I, R> From<ParentTaskDefinition<I, R>> for TaskDefinition<I, ParentOutput<R>> {
    /// A parent task without finalize: its output is `{output, children}`.
    fn from(parent: ParentTaskDefinition<I, R>) -> Self {
        TaskDefinition::from_definition(parent.definition)
    }
}

/// What a parent task's run returns: its own output and the children to run.
#[derive(Debug)]
pub struct ParentRun<R> {
    pub output: R,
    pub children: Vec<Child>,
}

impl<R> ParentRun<R> {
    /// No children yet.
    pub fn new(output: R) -> Self {
        Self {
            output,
            children: Vec::new(),
        }
    }

    /// Adds a child.
    pub fn child(mut self, child: Child) -> Self {
        self.children.push(child);
        self
    }

    /// Adds children.
    pub fn children(mut self, children: impl IntoIterator<Item = Child>) -> Self {
        self.children.extend(children);
        self
    }
}

/// A child of a parent run: a registered task, its input and per-child options (validated like
/// enqueue options).
#[derive(Debug)]
pub struct Child {
    pub(crate) task_id: String,
    /// The input's JSON text (an error is reported when the parent's run is stored).
    pub(crate) input_json: Result<String, SerializationError>,
    pub(crate) options: EnqueueOptions,
}

impl Child {
    /// Overrides the child task's options for this child.
    pub fn with_options(mut self, options: EnqueueOptions) -> Self {
        self.options = options;
        self
    }

    /// The child's task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }
}

/// A child running `task` on `input` (for a sleeping task, `input` is its unique id).
pub fn child<T: TaskRef>(task: &T, input: T::Input) -> Child {
    Child {
        task_id: task.id().to_owned(),
        input_json: to_json(&input),
        options: EnqueueOptions::default(),
    }
}

/// A parent's output without finalize, and a finalize's input: the run's output and every
/// child as it finished, in the order they were given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentOutput<R> {
    pub output: R,
    pub children: Vec<FinishedChild>,
}

/// A finished child: its status and its output (completed) or error (anything else).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishedChild {
    pub task_id: String,
    pub execution_id: String,
    pub status: TaskExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExecutionError>,
}

impl FinishedChild {
    /// Whether the child completed.
    pub fn is_completed(&self) -> bool {
        self.status == TaskExecutionStatus::Completed
    }

    /// The output as `T` (`null` when there is none).
    pub fn output_as<T: DeserializeOwned>(&self) -> Result<T, SerializationError> {
        from_value(self.output.clone().unwrap_or(Value::Null))
    }

    /// The output as `T` when completed, else a [`TaskError`] with the child's error message
    /// (handy in a finalize: `let a: String = children[0].completed_output()?;`).
    pub fn completed_output<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        if !self.is_completed() {
            let message = self
                .error
                .as_ref()
                .map_or("child did not complete", |e| e.message.as_str());
            return Err(TaskError::non_retryable(message));
        }
        self.output_as()
            .map_err(|e| TaskError::non_retryable(format!("Invalid child output: {e}")))
    }
}

/// A reference to a registered task: its id and its input and output types.
pub trait TaskRef {
    type Input: Serialize;
    type Output: DeserializeOwned;
    /// The task id.
    fn id(&self) -> &str;
    /// Whether it is a sleeping task (its input is its unique id).
    fn is_sleeping(&self) -> bool {
        false
    }
}

/// A registered task, `I` → `O`; cheap to clone.
pub struct Task<I, O> {
    id: Arc<str>,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Task<I, O> {
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: Arc::from(id),
            _types: PhantomData,
        }
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<I, O> Clone for Task<I, O> {
    fn clone(&self) -> Self {
        Self {
            id: Arc::clone(&self.id),
            _types: PhantomData,
        }
    }
}

impl<I, O> std::fmt::Debug for Task<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Task").field(&self.id).finish()
    }
}

impl<I: Serialize, O: DeserializeOwned> TaskRef for Task<I, O> {
    type Input = I;
    type Output = O;
    fn id(&self) -> &str {
        &self.id
    }
}

/// A registered sleeping task: enqueued with a unique id, it waits until woken up with an
/// output `O` (or a failure) or until its timeout.
pub struct SleepingTask<O> {
    id: Arc<str>,
    _types: PhantomData<fn() -> O>,
}

impl<O> SleepingTask<O> {
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: Arc::from(id),
            _types: PhantomData,
        }
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<O> Clone for SleepingTask<O> {
    fn clone(&self) -> Self {
        Self {
            id: Arc::clone(&self.id),
            _types: PhantomData,
        }
    }
}

impl<O> std::fmt::Debug for SleepingTask<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SleepingTask").field(&self.id).finish()
    }
}

impl<O: DeserializeOwned> TaskRef for SleepingTask<O> {
    type Input = String;
    type Output = O;
    fn id(&self) -> &str {
        &self.id
    }
    fn is_sleeping(&self) -> bool {
        true
    }
}

/// Sequential tasks (reference §2), typed at compile time: each step's input type is the
/// previous step's output type.
///
/// ```
/// # use durable_execution::{Sequence, Task};
/// # fn f(parse: Task<String, u32>, double: Task<u32, u32>, show: Task<u32, String>) {
/// let pipeline: Sequence<String, String> = Sequence::new("pipeline", &parse)
///     .then(&double)
///     .then(&show);
/// # }
/// ```
pub struct Sequence<I, O> {
    pub(crate) id: String,
    pub(crate) steps: Vec<String>,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Sequence<I, O> {
    /// A sequence `id` starting with `first`.
    pub fn new<T>(id: impl Into<String>, first: &T) -> Self
    where
        T: TaskRef<Input = I, Output = O>,
    {
        Self {
            id: id.into(),
            steps: vec![first.id().to_owned()],
            _types: PhantomData,
        }
    }

    /// Adds a step whose input is the previous step's output.
    pub fn then<T>(mut self, next: &T) -> Sequence<I, T::Output>
    where
        T: TaskRef<Input = O>,
    {
        self.steps.push(next.id().to_owned());
        Sequence {
            id: self.id,
            steps: self.steps,
            _types: PhantomData,
        }
    }
}

/// What one iteration of a looping task returns: done with an output, or not done yet
/// (stored as `{"isDone":false}` / `{"isDone":true,"output":…}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoopIteration<O> {
    NotDone,
    Done(O),
}

/// A looping task's output: `{"isSuccess":true,"output":…}` when an iteration was done within
/// the allowed attempts, else `{"isSuccess":false}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoopOutput<O> {
    Success(O),
    Exhausted,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IterationRepr<O> {
    is_done: bool,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    output: Option<O>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoopOutputRepr<O> {
    is_success: bool,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    output: Option<O>,
}

fn none<T>() -> Option<T> {
    None
}

/// `Serialize` and `Deserialize` of an enum with a value-less variant and one holding the
/// output, through its repr `{flag: bool, output?}` (an absent output reads as `()`'s).
macro_rules! flagged_output_serde {
    ($ty:ident via $repr:ident { $flag:ident }, $with:ident(output), $without:ident) => {
        impl<O: Serialize> Serialize for $ty<O> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    Self::$without => $repr::<&O> {
                        $flag: false,
                        output: None,
                    },
                    Self::$with(output) => $repr {
                        $flag: true,
                        output: Some(output),
                    },
                }
                .serialize(serializer)
            }
        }

        impl<'de, O: Deserialize<'de>> Deserialize<'de> for $ty<O> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let repr = $repr::<O>::deserialize(deserializer)?;
                match (repr.$flag, repr.output) {
                    (false, _) => Ok(Self::$without),
                    (true, Some(output)) => Ok(Self::$with(output)),
                    (true, None) => {
                        O::deserialize(serde::de::value::UnitDeserializer::new()).map(Self::$with)
                    }
                }
            }
        }
    };
}

flagged_output_serde!(LoopIteration via IterationRepr { is_done }, Done(output), NotDone);
flagged_output_serde!(LoopOutput via LoopOutputRepr { is_success }, Success(output), Exhausted);

/// The looping task's definition: how many attempts and the sleep between them.
pub(crate) fn looping_kind(
    iteration: &str,
    max_attempts: u32,
    sleep_before_iteration: Option<Duration>,
) -> Result<Kind, crate::Error> {
    if max_attempts == 0 {
        return Err(crate::Error::InvalidTask(
            "max_attempts of a looping task must be greater than 0".into(),
        ));
    }
    let sleep_ms_before_run = sleep_before_iteration
        .map(|sleep| crate::options::sleep_ms(iteration, sleep))
        .transpose()?;
    Ok(Kind::Looping {
        iteration: iteration.to_owned(),
        max_attempts,
        sleep_ms_before_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_values_have_the_original_shapes() {
        let done = serde_json::to_string(&LoopIteration::Done(10)).unwrap();
        assert_eq!(done, r#"{"isDone":true,"output":10}"#);
        assert_eq!(
            serde_json::to_string(&LoopIteration::<u32>::NotDone).unwrap(),
            r#"{"isDone":false}"#
        );
        assert_eq!(
            serde_json::from_str::<LoopOutput<u32>>(r#"{"isSuccess":true,"output":10}"#).unwrap(),
            LoopOutput::Success(10)
        );
        assert_eq!(
            serde_json::from_str::<LoopOutput<u32>>(r#"{"isSuccess":false}"#).unwrap(),
            LoopOutput::Exhausted
        );
        assert_eq!(
            serde_json::from_str::<LoopIteration<()>>(r#"{"isDone":true}"#).unwrap(),
            LoopIteration::Done(())
        );
    }
}
