//! Crash recovery on the Convex storage (the local server, or the deployment `CONVEX_URL`
//! names; see `support`): an executor in a child process is
//! killed (SIGKILL) in the middle of a task; a second executor on the same database completes
//! the task once the lease has expired, and the task ran once more than it started.
//!
//! The child process is this test binary run again with `CRASH_CHILD_URL` set: its test
//! `crash_child_process` is then the crashing executor (and does nothing otherwise).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use durable_execution::{
    Executor, ExecutorOptions, LogLevel, Task, TaskOptions, TaskRetryOptions, WaitOptions,
};

const URL_VAR: &str = "CRASH_CHILD_URL";
const MARKER_VAR: &str = "CRASH_CHILD_MARKER";
/// The lease: leeway + timeout, short for the test.
const LEEWAY: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(2);

fn options() -> ExecutorOptions {
    ExecutorOptions::default()
        .with_expire_leeway(LEEWAY)
        .with_background_process_intra_batch_sleep(Duration::from_millis(50))
        .with_max_idle_poll_interval(Duration::from_millis(250))
        .with_max_idle_maintenance_poll_interval(Duration::from_millis(250))
        .with_log_level(LogLevel::Error)
}

fn register(
    executor: &Executor,
    on_run: impl Fn() + Send + Sync + 'static,
    hang: bool,
) -> Task<String, String> {
    executor
        .task(
            TaskOptions::new("crashy", TIMEOUT).with_retry_options(TaskRetryOptions::new(1)),
            move |_, input: String| {
                on_run();
                async move {
                    if hang {
                        tokio::time::sleep(Duration::from_secs(120)).await;
                    }
                    Ok(format!("recovered {input}"))
                }
            },
        )
        .expect("register")
}

fn append(path: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("marker file");
    writeln!(file, "{line}").expect("write marker");
    file.sync_all().expect("sync marker");
}

/// The crashing executor (only when run as the child process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_process() {
    let (Ok(url), Ok(marker)) = (std::env::var(URL_VAR), std::env::var(MARKER_VAR)) else {
        return;
    };
    let marker = PathBuf::from(marker);
    let storage = support::client(&url).expect("client");
    let executor = Executor::new(storage, options()).expect("executor");
    let started = marker.clone();
    let task = register(&executor, move || append(&started, "start"), true);
    executor.start();
    let handle = executor
        .enqueue(&task, "after a crash".to_owned())
        .await
        .expect("enqueue");
    append(&marker, &format!("id {}", handle.execution_id()));
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_killed_with_its_executor_completes_on_another_after_the_lease() {
    if std::env::var(URL_VAR).is_ok() {
        return;
    }
    let database = support::Database::fresh("crash").await.expect("database");
    let url = database.url().to_owned();
    let marker = std::env::temp_dir().join(format!(
        "engine-crash-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "crash_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(URL_VAR, &url)
        .env(MARKER_VAR, &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("child process");
    // Wait until the child's run started and its execution id is known.
    let deadline = Instant::now() + Duration::from_secs(60);
    let execution_id = loop {
        let text = std::fs::read_to_string(&marker).unwrap_or_default();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("id ").map(str::to_owned));
        if text.lines().any(|l| l == "start") {
            if let Some(id) = id {
                break id;
            }
        }
        assert!(Instant::now() < deadline, "the child never started its run");
        assert!(
            child.try_wait().expect("child").is_none(),
            "the child exited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().expect("SIGKILL"); // Unix: SIGKILL.
    child.wait().expect("reaped");
    let killed_at = Instant::now();

    let storage = support::client(&url).expect("client");
    let executor = Executor::new(storage, options()).expect("executor");
    let runs = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&runs);
    let task = register(
        &executor,
        move || {
            counter.fetch_add(1, Ordering::SeqCst);
        },
        false,
    );
    executor.start();
    let handle = executor.handle(&task, &execution_id).await.expect("handle");
    let finished = tokio::time::timeout(
        Duration::from_secs(60),
        handle
            .wait_finished(WaitOptions::default().with_polling_interval(Duration::from_millis(50))),
    )
    .await
    .expect("completed in time")
    .expect("finished");
    let recovery = killed_at.elapsed();
    executor.shutdown().await;
    let child_starts = std::fs::read_to_string(&marker)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == "start")
        .count();
    let _ = std::fs::remove_file(&marker);
    println!(
        "crash recovery: completed {recovery:?} after the kill (lease: leeway {LEEWAY:?} + \
         timeout {TIMEOUT:?}); runs: {child_starts} in the killed executor, {} after",
        runs.load(Ordering::SeqCst)
    );
    assert_eq!(
        finished.output.as_deref(),
        Some("recovered after a crash"),
        "{finished:?}"
    );
    assert_eq!(child_starts, 1, "runs in the killed executor");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "runs after the crash");
    // The expired lease counted as an attempt.
    assert_eq!(finished.retry_attempts, 1);
    assert!(
        recovery < LEEWAY + TIMEOUT + Duration::from_secs(10),
        "{recovery:?}"
    );
}
