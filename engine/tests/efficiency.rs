//! Storage calls: an idle executor backs off (adaptive polling), and in-process wake-ups keep
//! the calls per task low. Prints the figures (issue 10 measures them properly).

use std::time::Duration;

use durable_execution::storage::{InMemoryTaskExecutionsStorage, TaskExecutionStatus};
use durable_execution::{
    EnqueueOptions, Executor, ExecutorOptions, LogLevel, StorageMetrics, TaskError, TaskOptions,
    WaitOptions,
};

fn total(metrics: &StorageMetrics) -> u64 {
    metrics.values().map(|m| m.calls).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_executor_backs_off_to_its_idle_bound() {
    let storage = InMemoryTaskExecutionsStorage::new(Default::default()).expect("storage");
    let options = ExecutorOptions::default()
        .with_background_process_intra_batch_sleep(Duration::from_millis(100))
        .with_max_idle_poll_interval(Duration::from_secs(1))
        .with_log_level(LogLevel::Error);
    let executor = Executor::new(storage, options).expect("executor");
    executor.start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = total(&executor.storage_metrics());
    executor.shutdown().await;
    // Polling every 100 ms: 3 s / 100 ms = 30 rounds of 5 processes (the cancellation
    // process makes no call without running tasks), 8 calls each: 240 calls. Idle, the
    // claiming process polls every second (about 4 calls) and the others, at the default
    // maintenance bound (5 min), only at start (7 calls).
    println!("idle executor, 3 s, claims polled every 1 s: {calls} storage calls");
    assert!(calls < 20, "{calls} calls while idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_calls_per_task() {
    let storage = InMemoryTaskExecutionsStorage::new(Default::default()).expect("storage");
    // Polls a minute apart: only the in-process wake-ups (enqueue, finish, close) can get 100
    // tasks through within the test's bound below.
    let executor = Executor::new(
        storage,
        ExecutorOptions::default()
            .with_background_process_intra_batch_sleep(Duration::from_secs(60))
            .with_max_idle_poll_interval(Duration::from_secs(60))
            .with_log_level(LogLevel::Error),
    )
    .expect("executor");
    let task = executor
        .task(
            TaskOptions::new("t", Duration::from_secs(10)),
            |_, i: u32| async move { Ok::<_, TaskError>(i) },
        )
        .expect("task");
    executor.start();
    let started = std::time::Instant::now();
    let mut handles = Vec::new();
    for i in 0..100 {
        handles.push(executor.enqueue(&task, i).await.expect("enqueue"));
    }
    let all_finished = async {
        for handle in &handles {
            handle
                .wait_finished(WaitOptions::default())
                .await
                .expect("finished");
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all_finished)
        .await
        .expect("every task finished through wake-ups, without waiting for a 60 s poll");
    let elapsed = started.elapsed();
    let metrics = executor.storage_metrics();
    executor.shutdown().await;
    let calls = total(&metrics);
    println!(
        "100 tasks, polls 60 s apart: all finished in {elapsed:?}, \
         {calls} storage calls (waits included) = {:.2} per task",
        calls as f64 / 100.0
    );
    for (operation, m) in &metrics {
        println!("  {operation}: {}", m.calls);
    }
}

/// Polls a minute apart: a delayed start and a sleeping task's timeout happen on time through
/// the wake-ups this executor schedules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_starts_and_sleeping_timeouts_do_not_wait_for_a_poll() {
    let storage = InMemoryTaskExecutionsStorage::new(Default::default()).expect("storage");
    let executor = Executor::new(
        storage,
        ExecutorOptions::default()
            .with_background_process_intra_batch_sleep(Duration::from_secs(60))
            .with_max_idle_poll_interval(Duration::from_secs(60))
            .with_max_idle_maintenance_poll_interval(Duration::from_secs(60))
            .with_log_level(LogLevel::Error),
    )
    .expect("executor");
    let task = executor
        .task(
            TaskOptions::new("t", Duration::from_secs(10)),
            |_, i: u32| async move { Ok::<_, TaskError>(i) },
        )
        .expect("task");
    let sleeping = executor
        .sleeping_task::<u32>("sleeping", Duration::from_millis(300))
        .expect("sleeping task");
    executor.start();
    // Let the start-up polls pass.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let delayed = executor
        .enqueue_with_options(
            &task,
            7,
            EnqueueOptions::default().with_sleep_before_run(Duration::from_millis(300)),
        )
        .await
        .expect("enqueue");
    let asleep = executor
        .enqueue(&sleeping, "unique".to_owned())
        .await
        .expect("enqueue sleeping");
    let wait = WaitOptions::default().with_polling_interval(Duration::from_millis(50));
    let (delayed, asleep) = tokio::time::timeout(Duration::from_secs(30), async {
        (
            delayed.wait_finished(wait.clone()).await.expect("delayed"),
            asleep.wait_finished(wait).await.expect("sleeping"),
        )
    })
    .await
    .expect("both finished without waiting for a 60 s poll");
    let elapsed = started.elapsed();
    executor.shutdown().await;
    println!("delayed start and sleeping timeout (300 ms each): finished after {elapsed:?}");
    assert_eq!(delayed.output, Some(7));
    assert_eq!(asleep.status, TaskExecutionStatus::TimedOut);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
}
