//! The engine's scenario suite, reusable against any storage (feature `suite`): the original
//! engine's storage scenarios (its test helpers' `runDurableExecutorTest`), retries,
//! cancellation, shutdown, expired leases, several executors and the interop forms.
//!
//! A [`StorageFactory`] gives each scenario a fresh, empty backend, and a backend gives as many
//! clients of it as a scenario needs (several executors use separate clients, like processes
//! sharing one deployment). Each scenario returns a [`Failure`] instead of panicking.
//!
//! ```no_run
//! # async fn run() {
//! use durable_execution::suite::{run_all, InMemoryStorageFactory};
//! let report = run_all(&InMemoryStorageFactory).await;
//! println!("{report}");
//! report.assert_all_passed();
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::storage::{InMemoryTaskExecutionsStorage, TaskExecutionsStorage};
use crate::{Error, ExecutorOptions};

mod scenarios;

pub use scenarios::*;

/// A boxed future (the suite's traits stay object-safe without extra dependencies).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the suite gets storages from: one fresh backend per scenario.
pub trait StorageFactory: Send + Sync {
    /// A new, empty backend.
    fn create(&self) -> BoxFuture<'_, Result<Arc<dyn StorageBackend>, Failure>>;

    /// Executor options suited to this storage (short intervals for tests).
    fn executor_options(&self) -> ExecutorOptions {
        ExecutorOptions::default()
            .with_background_process_intra_batch_sleep(Duration::from_millis(50))
            .with_max_idle_poll_interval(Duration::from_millis(250))
            .with_max_idle_maintenance_poll_interval(Duration::from_millis(250))
            .with_log_level(crate::LogLevel::Error)
    }

    /// A multiplier for the suite's time bounds (a slow storage gets more time).
    fn time_scale(&self) -> u32 {
        1
    }
}

/// Another factory's storages, with executors that batch their storage calls
/// (`enable_storage_batching`, every `interval`): the suite with batching on, e.g.
/// `scenario_tests!(|_name| WithStorageBatching::new(InMemoryStorageFactory))`.
///
/// Each batchable call waits up to `interval` for others to join it, so a scenario that makes
/// many calls one after the other (e.g. reading 1,000 handles in turn) takes `interval` per
/// call: a short interval keeps the suite fast and still combines concurrent calls.
#[derive(Clone, Copy, Debug)]
pub struct WithStorageBatching<F> {
    pub factory: F,
    pub interval: Duration,
}

impl<F> WithStorageBatching<F> {
    /// `factory` with batching on, at the option's default interval (10 ms).
    pub fn new(factory: F) -> Self {
        Self {
            factory,
            interval: ExecutorOptions::default()
                .storage_background_batching_process_intra_batch_sleep,
        }
    }

    /// With another batching interval (1..=100 ms).
    pub fn with_interval(self, interval: Duration) -> Self {
        Self { interval, ..self }
    }
}

impl<F: StorageFactory> StorageFactory for WithStorageBatching<F> {
    fn create(&self) -> BoxFuture<'_, Result<Arc<dyn StorageBackend>, Failure>> {
        self.factory.create()
    }

    fn executor_options(&self) -> ExecutorOptions {
        self.factory
            .executor_options()
            .with_enable_storage_batching(true)
            .with_storage_background_batching_process_intra_batch_sleep(self.interval)
    }

    fn time_scale(&self) -> u32 {
        self.factory.time_scale()
    }
}

/// One set of stored executions shared by any number of clients.
pub trait StorageBackend: Send + Sync {
    /// Another client of the same executions (like another process on one deployment).
    fn client(&self) -> BoxFuture<'_, Result<Arc<dyn TaskExecutionsStorage>, Failure>>;
}

/// Fresh [`InMemoryTaskExecutionsStorage`]s on the system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct InMemoryStorageFactory;

struct InMemoryBackend(InMemoryTaskExecutionsStorage);

impl StorageFactory for InMemoryStorageFactory {
    fn create(&self) -> BoxFuture<'_, Result<Arc<dyn StorageBackend>, Failure>> {
        Box::pin(async {
            let storage = InMemoryTaskExecutionsStorage::new(Default::default())
                .map_err(|e| Failure(e.to_string()))?;
            Ok(Arc::new(InMemoryBackend(storage)) as Arc<dyn StorageBackend>)
        })
    }
}

impl StorageBackend for InMemoryBackend {
    fn client(&self) -> BoxFuture<'_, Result<Arc<dyn TaskExecutionsStorage>, Failure>> {
        Box::pin(async {
            let client = self
                .0
                .client(Default::default())
                .map_err(|e| Failure(e.to_string()))?;
            Ok(Arc::new(client) as Arc<dyn TaskExecutionsStorage>)
        })
    }
}

/// Why a scenario failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self(format!("unexpected error: {error}"))
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

/// What a scenario gives back.
pub type ScenarioResult = Result<(), Failure>;

/// A scenario: its name and how to run it against a factory.
pub struct Scenario {
    pub name: &'static str,
    pub run: for<'a> fn(&'a dyn StorageFactory) -> BoxFuture<'a, ScenarioResult>,
}

/// One scenario's outcome.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub name: &'static str,
    pub result: ScenarioResult,
    pub duration: Duration,
}

/// The outcomes of a run of the suite.
#[derive(Clone, Debug, Default)]
pub struct SuiteReport {
    pub outcomes: Vec<Outcome>,
}

impl SuiteReport {
    /// How many passed.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_ok()).count()
    }

    /// Panics with every failure.
    pub fn assert_all_passed(&self) {
        let failures: Vec<String> = self
            .outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.name)))
            .collect();
        assert!(
            failures.is_empty(),
            "failed scenarios:\n{}",
            failures.join("\n")
        );
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for outcome in &self.outcomes {
            let status = match &outcome.result {
                Ok(()) => "ok".to_owned(),
                Err(failure) => format!("FAILED: {failure}"),
            };
            writeln!(
                f,
                "{:<50} {:>8.2?} {status}",
                outcome.name, outcome.duration
            )?;
        }
        write!(f, "{}/{} passed", self.passed(), self.outcomes.len())
    }
}

/// Runs one scenario, timing it.
pub async fn run_scenario(scenario: &Scenario, factory: &dyn StorageFactory) -> Outcome {
    let started = Instant::now();
    let result = (scenario.run)(factory).await;
    Outcome {
        name: scenario.name,
        result,
        duration: started.elapsed(),
    }
}

/// Runs the scenario named `name` and panics with its failure, if any (the body of each test
/// [`scenario_tests!`](crate::scenario_tests) generates).
pub async fn assert_scenario_passes(name: &str, factory: &dyn StorageFactory) {
    let scenario = scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario named {name}"));
    let outcome = run_scenario(&scenario, factory).await;
    println!("{} {:?}", outcome.name, outcome.duration);
    if let Err(failure) = outcome.result {
        panic!("{}: {failure}", outcome.name);
    }
}

/// Generates one `#[tokio::test]` per scenario (so that they run in parallel; the calling crate
/// needs `tokio` with its `macros` and multi-threaded runtime), each on the factory the closure
/// gives for the scenario's name. In an integration
/// test: `durable_execution::scenario_tests!(|_name| InMemoryStorageFactory);`.
#[macro_export]
macro_rules! scenario_tests {
    (|$name:ident| $factory:expr) => {
        $crate::__with_scenario_names!({ $crate::__scenario_tests } | $name | $factory);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __scenario_tests {
    (|$param:ident| $factory:expr ; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let $param: &'static str = stringify!($name);
                $crate::suite::assert_scenario_passes(stringify!($name), &$factory).await;
            }
        )*
    };
}

/// Runs every scenario, one after the other.
pub async fn run_all(factory: &dyn StorageFactory) -> SuiteReport {
    let mut report = SuiteReport::default();
    for scenario in scenarios() {
        report.outcomes.push(run_scenario(&scenario, factory).await);
    }
    report
}
