//! The engine's scenario suite on the in-memory storage, one test per scenario (so that they
//! run in parallel).

use durable_execution::suite::{self, InMemoryStorageFactory};

macro_rules! scenario_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let outcome = suite::run_scenario(
                    &suite::scenarios()
                        .into_iter()
                        .find(|s| s.name == stringify!($name))
                        .expect("scenario"),
                    &InMemoryStorageFactory,
                )
                .await;
                println!("{} {:?}", outcome.name, outcome.duration);
                if let Err(failure) = outcome.result {
                    panic!("{}: {failure}", outcome.name);
                }
            }
        )*

        #[test]
        fn every_scenario_has_a_test() {
            let tested = [$(stringify!($name)),*];
            for scenario in suite::scenarios() {
                assert!(tested.contains(&scenario.name), "{} has no test", scenario.name);
            }
        }
    };
}

scenario_tests!(
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
);
