//! Storage calls: an idle executor backs off (adaptive polling), and in-process wake-ups keep
//! the calls per task low. Prints the figures (issue 10 measures them properly).

use std::time::Duration;

use durable_execution::storage::InMemoryTaskExecutionsStorage;
use durable_execution::{
    Executor, ExecutorOptions, LogLevel, StorageMetrics, TaskError, TaskOptions, WaitOptions,
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
    // Without back-off: 3 s / 100 ms = 30 iterations of 5 processes (the cancellation
    // process makes no call without running tasks), 8 calls each round: 240 calls.
    println!("idle executor, 3 s at 100 ms up to 1 s: {calls} storage calls");
    assert!(calls < 80, "{calls} calls while idle");
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
